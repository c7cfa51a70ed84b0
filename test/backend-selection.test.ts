// Which backend is active, and how the environment chooses it. A build that silently failed must
// not pass as native: CI sets QKV_EXPECT_BACKEND=native, and a binary that exists but does not
// load fails here on any machine.
import { describe, expect, test } from 'vitest';
import { backend, info } from '../lib/index.js';
import * as jsApi from '../lib/js.js';
import { cpuKernelSet, inChild, nativeBinaryBuilt as built, nativeKernelSets, runners } from './helpers.js';
const printInfo = "import { info } from './lib/index.ts'; console.log(JSON.stringify(info()));";

describe('backend selection', () => {
  test('the expected backend is active', ({ task }) => {
    const requested = process.env.QKV_BACKEND;
    const expected = process.env.QKV_EXPECT_BACKEND ?? (requested === 'js' ? 'js' : built ? 'native' : undefined);
    if (expected) expect(backend(), JSON.stringify(info())).toBe(expected);
    expect(info().backend).toBe(backend());
    // For the run's closing lines (test/summary-reporter.ts): what this suite ran on.
    task.meta.qkvTested = { backend: backend(), simd: info().simd, runners: runners.map((r) => r.name) };
  });

  test('info() describes the active backend', () => {
    const i = info();
    expect(i.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(i.threads).toBeGreaterThanOrEqual(1);
    if (i.backend === 'native') {
      expect(['avx512', 'avx2', 'neon', 'scalar']).toContain(i.simd);
      expect(i.nativeError).toBeUndefined();
    } else {
      expect(i.simd).toBe('js');
      expect(typeof i.nativeError).toBe('string');
    }
  });

  test('qkv/js always runs the TypeScript kernels', () => {
    expect(jsApi.backend()).toBe('js');
    expect(jsApi.info().simd).toBe('js');
  });

  test('QKV_BACKEND=js switches the addon off and says so', () => {
    const i = JSON.parse(inChild(printInfo, { QKV_BACKEND: 'js' }));
    expect(i.backend).toBe('js');
    expect(i.nativeError).toMatch(/QKV_BACKEND=js/);
  });

  test('an unknown QKV_BACKEND is an error', () => {
    expect(() => inChild(printInfo, { QKV_BACKEND: 'gpu' })).toThrow(/QKV_BACKEND but received 'gpu'/);
  });

  test.runIf(built)('QKV_SIMD=scalar forces the scalar kernels', () => {
    const i = JSON.parse(inChild(printInfo, { QKV_BACKEND: 'native', QKV_SIMD: 'scalar' }));
    expect(i).toMatchObject({ backend: 'native', simd: 'scalar' });
  });

  // The expected set comes from the CPU flags, not from the addon under test (QKV_EXPECT_SIMD, when
  // set, must agree with both).
  const cpuSet = cpuKernelSet();
  test.runIf(built && cpuSet !== null)('by default the kernel set the CPU flags imply is picked', () => {
    const i = JSON.parse(inChild(printInfo, { QKV_BACKEND: 'native', QKV_SIMD: '' }));
    expect(i.simd).toBe(cpuSet);
    if (process.env.QKV_EXPECT_SIMD) expect(i.simd).toBe(process.env.QKV_EXPECT_SIMD);
    // And the runners (test/helpers.ts) test it.
    if (process.env.QKV_BACKEND !== 'js') expect(nativeKernelSets).toContain(cpuSet);
  });
});
