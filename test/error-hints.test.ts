// Error messages that point at the fix, not only at the fault: both backends, same wording.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import * as native from '../lib/index.js';
import * as js from '../lib/js.js';

const root = fileURLToPath(new URL('..', import.meta.url));

describe.each([['default', native], ['js', js]] as const)('error hints (%s face)', (_name, api) => {
  test('a bare typed array as mask asks for { data, dims }', () => {
    const q = new Float32Array(4 * 8);
    const mask = new Float32Array(16);
    expect(() => api.scaledDotProductAttention(q, q, q, { heads: 1, seqQ: 4, headDim: 8, mask: mask as never }))
      .toThrow(/Expected a mask object \{ data, dims \} \(e\.g\. \{ data: mask, dims: \[Sq, Sk\] \}\), not a bare typed array for options\.mask but received Float32Array\(16\)/);
  });

  test('k longer than q without seqK hints at seqK', () => {
    const q = new Float32Array(4 * 8);
    const k = new Float32Array(6 * 8);
    let message = '';
    try {
      api.scaledDotProductAttention(q, k, k, { heads: 1, seqQ: 4, headDim: 8 });
    } catch (e) {
      expect(e).toBeInstanceOf(RangeError);
      message = (e as Error).message;
    }
    expect(message).toMatch(/^Expected k\.length to be B\*Hkv\*Sk\*D = 1\*1\*4\*8 = 32 but received 48 \(6 keys\? give options\.seqK when it differs from seqQ\)$/);
    // With seqK given, the plain message: the hint would mislead.
    expect(() => api.scaledDotProductAttention(q, k, k, { heads: 1, seqQ: 4, seqK: 5, headDim: 8 }))
      .toThrow(/^Expected k\.length to be B\*Hkv\*Sk\*D = 1\*1\*5\*8 = 40 but received 48$/);
  });

  test('both weight forms say that they are exclusive', () => {
    const E = 4;
    const w = new Float32Array(E * E);
    const weights = { wq: w, wk: w, wv: w, wo: w, inProjWeight: new Float32Array(3 * E * E), outProjWeight: w };
    expect(() => new api.MultiHeadAttention({ embedDim: E, numHeads: 1, weights: weights as never }))
      .toThrow(/^Expected either \{ wq, wk, wv, wo, bq\?, bk\?, bv\?, bo\? \} or PyTorch's \{ inProjWeight, inProjBias\?, outProjWeight, outProjBias\? \} for config\.weights but received both \('wq' and 'inProjWeight'\): the two forms are exclusive$/);
  });
});

describe('environment variables', () => {
  const run = (env: Record<string, string>) =>
    execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', "import { info } from './lib/index.ts'; console.log(info().simd);"], {
      cwd: root, env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
    });

  test('an unknown QKV_SIMD is as clear an error as an unknown QKV_BACKEND', () => {
    expect(() => run({ QKV_SIMD: 'bogus' })).toThrow(/RangeError: Expected 'auto' \| 'avx512' \| 'avx2' \| 'neon' \| 'scalar' for QKV_SIMD but received 'bogus'/);
  });
});
