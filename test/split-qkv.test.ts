// examples/split-qkv.mjs undoes GPT-NeoX's / BLOOM's per-head interleaved fused query_key_value
// ([H, 3, Dh] rows) into separate q, k, v weights and biases.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { root } from './helpers.js';
// @ts-expect-error a plain-JS example without type declarations
import { splitFusedQkv } from '../examples/split-qkv.mjs';

const H = 3, Dh = 2, E = 4;
// The value of fused row r, column c encodes (head, part, row-in-head, column), so any misplaced
// row shows up: code = 1000·h + 100·part + 10·d + c.
const code = (h: number, part: number, d: number, c: number) => 1000 * h + 100 * part + 10 * d + c;

function fused() {
  const weight = new Float32Array(3 * H * Dh * E);
  const bias = new Float32Array(3 * H * Dh);
  let r = 0;
  for (let h = 0; h < H; h++) {
    for (let part = 0; part < 3; part++) {       // q, then k, then v of head h
      for (let d = 0; d < Dh; d++, r++) {
        for (let c = 0; c < E; c++) weight[r * E + c] = code(h, part, d, c);
        bias[r] = code(h, part, d, 9);
      }
    }
  }
  return { weight, bias };
}

test('splits a hand-built [H, 3, Dh] interleaved weight and bias into wq, wk, wv, bq, bk, bv', () => {
  const { weight, bias } = fused();
  const s = splitFusedQkv(weight, bias, { numHeads: H, headDim: Dh, embedDim: E });
  (['wq', 'wk', 'wv'] as const).forEach((name, part) => {
    const w = s[name] as Float32Array;
    expect(w).toBeInstanceOf(Float32Array);
    expect(w.length).toBe(H * Dh * E);
    const want = new Float32Array(H * Dh * E);
    for (let h = 0; h < H; h++) for (let d = 0; d < Dh; d++) for (let c = 0; c < E; c++) want[(h * Dh + d) * E + c] = code(h, part, d, c);
    expect(Array.from(w)).toEqual(Array.from(want));
  });
  (['bq', 'bk', 'bv'] as const).forEach((name, part) => {
    const want: number[] = [];
    for (let h = 0; h < H; h++) for (let d = 0; d < Dh; d++) want.push(code(h, part, d, 9));
    expect(Array.from(s[name] as Float32Array)).toEqual(want);
  });
  // Spot check against the literal layout: wk's row 3 is head 1's second key row, fused row (1·3 + 1)·2 + 1 = 9.
  expect(Array.from((s.wk as Float32Array).subarray(3 * E, 4 * E))).toEqual(Array.from(weight.subarray(9 * E, 10 * E)));
});

test('keeps Uint16Array bits (BF16) and works without a bias', () => {
  const { weight } = fused();
  const bits = Uint16Array.from(weight);
  const s = splitFusedQkv(bits, null, { numHeads: H, headDim: Dh, embedDim: E });
  expect(s.wq).toBeInstanceOf(Uint16Array);
  expect(s.bq).toBeUndefined();
  expect(Array.from((s.wv as Uint16Array).subarray(0, E))).toEqual([200, 201, 202, 203]);
});

test('rejects a weight or bias of the wrong size', () => {
  const { weight, bias } = fused();
  expect(() => splitFusedQkv(weight.subarray(1), bias, { numHeads: H, headDim: Dh, embedDim: E })).toThrow(RangeError);
  expect(() => splitFusedQkv(weight, bias.subarray(1), { numHeads: H, headDim: Dh, embedDim: E })).toThrow(RangeError);
  expect(() => splitFusedQkv(weight, bias, { numHeads: 0, headDim: Dh, embedDim: E })).toThrow(RangeError);
});

// The README's block under "### Weights: safetensors names" runs as written from the checkout
// (it imports 'qkv', i.e. dist/, and ./examples/split-qkv.mjs).
const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
test.skipIf(!existsSync(dist))('the README splitFusedQkv block runs and prints "160 true"', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const at = readme.indexOf('### Weights: safetensors names');
  expect(at).toBeGreaterThanOrEqual(0);
  const block = /^```js\n([\s\S]*?)^```$/m.exec(readme.slice(at))![1]!;
  expect(block).toContain('splitFusedQkv(');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', block], { cwd: root, encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.stdout.trim()).toBe('160 true');
});
