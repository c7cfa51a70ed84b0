// NaN and Infinity on both public entry points: without checkFinite they propagate per IEEE (no
// crash, no error, rows that never read them stay finite); with checkFinite the call is a RangeError
// naming the first non-finite input and its index, and `out` is untouched.
import { describe, expect, test } from 'vitest';
import { fill, publicApis } from './helpers.js';

describe.each(publicApis)('%s: NaN and Infinity', (_name, api) => {
  const B = 1, H = 2, Sq = 3, Sk = 4, D = 5;
  const options = { batch: B, heads: H, seqQ: Sq, seqK: Sk, headDim: D };
  const q = fill(B * H * Sq * D);
  const k = fill(B * H * Sk * D, (i) => Math.cos(i));
  const v = fill(B * H * Sk * D, (i) => Math.sin(i * 1.3));

  test('propagate per IEEE without checkFinite (no crash, no error)', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const v2 = v.slice();
      v2[0] = bad; // key 0 of head 0: every query of head 0 sees it
      const out = api.scaledDotProductAttention(q, k, v2, options) as Float32Array;
      for (let i = 0; i < Sq; i++) expect(Number.isFinite(out[i * D])).toBe(false);
      // Head 1 never reads it.
      for (let i = H * Sq * D / 2; i < out.length; i++) expect(Number.isFinite(out[i])).toBe(true);
      const q2 = q.slice();
      q2[D] = bad; // query row 1 of head 0
      const out2 = api.scaledDotProductAttention(q2, k, v, options) as Float32Array;
      expect(out2.slice(0, D).every(Number.isFinite)).toBe(true); // row 0 untouched by it
    }
    const x = fill(12);
    x[4] = NaN;
    const y = api.linear(x, fill(6), { inFeatures: 3 });
    expect(Number.isNaN(y[2])).toBe(true); // row 1 (x[3..5]) · w → NaN
    expect(Number.isFinite(y[0])).toBe(true);
  });

  test('checkFinite: a RangeError naming the first non-finite input and its index; out untouched', () => {
    const q2 = q.slice();
    q2[17] = NaN;
    q2[20] = Infinity;
    const out = new Float32Array(B * H * Sq * D).fill(7);
    expect(() => api.scaledDotProductAttention(q2, k, v, { ...options, checkFinite: true, out })).toThrow(
      new RangeError('Expected finite values in q but q[17] is NaN'),
    );
    expect(out.every((x) => x === 7)).toBe(true);
    const k2 = k.slice();
    k2[3] = -Infinity;
    expect(() => api.scaledDotProductAttention(q, k2, v, { ...options, checkFinite: true })).toThrow(
      'Expected finite values in k but k[3] is -Infinity',
    );
    const v2 = v.slice();
    v2[v2.length - 1] = Infinity;
    expect(() => api.scaledDotProductAttentionAsync(q, k, v2, { ...options, checkFinite: true })).toThrow(
      `Expected finite values in v but v[${v2.length - 1}] is Infinity`,
    );
    // Off, or finite data: no error.
    expect(() => api.scaledDotProductAttention(q2, k, v, { ...options, checkFinite: false })).not.toThrow();
    expect(() => api.scaledDotProductAttention(q, k, v, { ...options, checkFinite: true })).not.toThrow();
    expect(() => api.scaledDotProductAttention(q, k, v, { ...options, checkFinite: 'yes' as never })).toThrow(
      new TypeError("Expected a boolean for options.checkFinite but received 'yes'"),
    );
  });

  test('checkFinite on linear, linearAsync and Linear', async () => {
    const x = fill(12);
    x[5] = -Infinity;
    const w = fill(6);
    const out = new Float32Array(8).fill(3);
    expect(() => api.linear(x, w, { inFeatures: 3, checkFinite: true, out })).toThrow('Expected finite values in x but x[5] is -Infinity');
    expect(out.every((y) => y === 3)).toBe(true);
    const wBad = w.slice();
    wBad[1] = NaN;
    expect(() => api.linearAsync(fill(12), wBad, null, { inFeatures: 3, checkFinite: true })).toThrow('weight[1] is NaN');
    expect(() => new api.Linear({ weight: wBad, inFeatures: 3, checkFinite: true })).toThrow(
      'Expected finite values in config.weight but config.weight[1] is NaN',
    );
    const layer = new api.Linear({ weight: wBad, inFeatures: 3 }); // not asked: accepted
    expect(() => layer.forward(x, { checkFinite: true })).toThrow('x[5] is -Infinity');
    expect(() => layer.forwardAsync(x, { checkFinite: true })).toThrow('x[5] is -Infinity');
    await expect(layer.forwardAsync(fill(12), { checkFinite: true })).resolves.toHaveLength(8);
  });
});

describe.each(publicApis)('%s: MultiHeadAttention checkFinite', (_name, api) => {
  const E = 8;
  const weights = {
    inProjWeight: Float32Array.from({ length: 3 * E * E }, (_, i) => Math.sin(i) * 0.2),
    outProjWeight: Float32Array.from({ length: E * E }, (_, i) => Math.cos(i) * 0.2),
  };
  const layer = new api.MultiHeadAttention({ embedDim: E, numHeads: 2, weights });

  test('names the first non-finite value of x or context; out untouched', () => {
    const x = Float32Array.from({ length: 3 * E }, (_, i) => Math.sin(i));
    x[13] = -Infinity;
    const out = new Float32Array(3 * E).fill(5);
    expect(() => layer.forward(x, { checkFinite: true, out })).toThrow(/Expected finite values in x but x\[13\] is -Infinity/);
    expect(out.every((v) => v === 5)).toBe(true);
    const context = Float32Array.from({ length: 2 * E }, (_, i) => Math.cos(i));
    context[3] = NaN;
    x[13] = 0;
    expect(() => layer.forward(x, { checkFinite: true, context })).toThrow(/options\.context\[3\] is NaN/);
    expect(() => layer.forward(x, { checkFinite: 'yes' } as never)).toThrow(TypeError);
    expect(layer.forward(x, { checkFinite: true }).every(Number.isFinite)).toBe(true);
  });
});
