// Requests too large to allocate, on both public entry points: a RangeError that names what could
// not be allocated and its size, thrown (or, for a layer's forwardAsync, rejected) before any work,
// and the process carries on.
import { describe, expect, test } from 'vitest';
import { fill, publicApis } from './helpers.js';

describe.each(publicApis)('%s: out of memory is a RangeError that says so', (_name, api) => {
  // B·H·Sq·Sk = 1·1024·1024·65536 = 2^36 weights from inputs of a few MiB.
  const H = 1024, Sq = 1024, Sk = 65536, D = 1;
  const q = new Float32Array(H * Sq * D);
  const k = new Float32Array(Sk * D);
  const v = new Float32Array(Sk * D);
  const options = { heads: H, kvHeads: 1, seqQ: Sq, seqK: Sk, headDim: D };

  test('weights: true whose [B, H, Sq, Sk] cannot be allocated', () => {
    expect(() => api.scaledDotProductAttention(q, k, v, { ...options, weights: true })).toThrow(
      /^Could not allocate options\.weights \(B\*H\*Sq\*Sk\): 68719476736 floats \(256\.0 GiB\)/,
    );
    expect(() => api.scaledDotProductAttention(q, k, v, { ...options, scores: true })).toThrow(RangeError);
    expect(() => api.scaledDotProductAttentionAsync(q, k, v, { ...options, weights: true })).toThrow(
      /Could not allocate options\.weights/,
    );
  });

  test('a linear output [M, N] that cannot be allocated', () => {
    const x = new Float32Array(2 ** 20); // M = 2^20 rows of 1
    const w = new Float32Array(2 ** 20); // N = 2^20 outputs of 1
    expect(() => api.linear(x, w, { inFeatures: 1 })).toThrow(/^Could not allocate the output \(M\*outFeatures\): 1099511627776 floats/);
    expect(() => api.linearAsync(x, w, { inFeatures: 1 })).toThrow(RangeError);
    const layer = new api.Linear({ weight: w, inFeatures: 1 });
    expect(() => layer.forward(x)).toThrow(/Could not allocate the output/);
  });

  test('layer weights [B, H, S, S] that cannot be allocated: forward throws, forwardAsync rejects', async () => {
    const E = 1024, S = 4096; // B·H·S·S = 2^34 floats, past the longest Float32Array
    const layer = new api.MultiHeadAttention({ embedDim: E, numHeads: E, weights: {
      inProjWeight: new Float32Array(3 * E * E), outProjWeight: new Float32Array(E * E) } });
    const x = new Float32Array(S * E);
    expect(() => layer.forward(x, { needWeights: true })).toThrow(/^Could not allocate the weights \(B\*H\*S\*Sk\): 17179869184 floats/);
    await expect(layer.forwardAsync(x, { needWeights: true })).rejects.toThrow(/^Could not allocate the weights/);
  });

  test('the process is fine afterwards', () => {
    const small = fill(8);
    expect(api.scaledDotProductAttention(small, small, small, { heads: 1, seqQ: 2, headDim: 4 })).toHaveLength(8);
  });
});
