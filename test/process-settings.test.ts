// The native pool and kernel choice are process-wide: the first load of the package in a process
// sets them from the environment, later loads (worker_threads) leave them alone, and the
// environment is validated in TypeScript with the same clarity for every QKV_* variable.
import { describe, expect, test } from 'vitest';
import { inChild, lastJsonLine, nativeBinaryBuilt } from './helpers.js';

const native = nativeBinaryBuilt && process.env.QKV_BACKEND !== 'js';

describe.runIf(native)('process-wide settings', () => {
  // The built package (dist/, made by npm install): a worker_thread does not inherit tsx's loader.
  test('a worker_thread that loads the package keeps the thread count the main thread set', () => {
    const code = `
      import { Worker } from 'node:worker_threads';
      import { info, setThreads } from './dist/index.js';
      setThreads(1);
      const w = new Worker("Promise.all([import('node:worker_threads'), import('./dist/index.js')]).then(([wt, q]) => wt.parentPort.postMessage(q.info().threads))",
        { eval: true, env: { ...process.env, QKV_THREADS: '2' } });
      const inWorker = await new Promise((resolve) => w.once('message', resolve));
      await w.terminate();
      console.log(JSON.stringify({ main: info().threads, inWorker }));`;
    expect(lastJsonLine(inChild(code, { QKV_THREADS: '' }))).toEqual({ main: 1, inWorker: 1 });
  });

  test('QKV_SIMD naming a kernel set this CPU cannot run is an error that lists the ones it can', () => {
    const supported = JSON.parse(inChild(
      "import { nativeBinding } from './lib/backend/select.ts'; console.log(JSON.stringify(nativeBinding.supportedSimd()));", {},
    )) as string[];
    const missing = ['avx512', 'avx2', 'neon'].find((s) => !supported.includes(s))!;
    const list = ['auto', ...supported].map((s) => `'${s}'`).join(' \\| ');
    expect(() => inChild("import { info } from './lib/index.ts'; console.log(info().simd);", { QKV_SIMD: missing }))
      .toThrow(new RegExp(`RangeError: Expected ${list} for QKV_SIMD but received '${missing}'`));
  });
});
