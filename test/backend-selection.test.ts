// Which backend is active, and how the environment chooses it. A build that silently failed must
// not pass as native: CI sets QKV_EXPECT_BACKEND=native, and a binary that exists but does not
// load fails here on any machine.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { backend, info } from '../lib/index.js';
import * as jsApi from '../lib/js/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const built = existsSync(`${root}/build/Release/qkv.node`);

/** Runs a snippet in a fresh Node process with the given environment and returns its stdout. */
function inChild(code: string, env: Record<string, string>): string {
  return execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}
const printInfo = "import { info } from './lib/index.ts'; console.log(JSON.stringify(info()));";

describe('backend selection', () => {
  test('the expected backend is active', () => {
    const expected = process.env.QKV_EXPECT_BACKEND ?? (built && process.env.QKV_BACKEND !== 'js' ? 'native' : undefined);
    if (expected) expect(backend(), JSON.stringify(info())).toBe(expected);
    expect(info().backend).toBe(backend());
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

  test.runIf(built && process.arch === 'x64')('x86-64 with AVX2 picks the avx2 kernels by default', () => {
    const i = JSON.parse(inChild(printInfo, { QKV_BACKEND: 'native', QKV_SIMD: '' }));
    expect(i.simd).toBe(process.env.QKV_EXPECT_SIMD ?? i.simd);
  });
});
