// Issue 6, the cases the fuzzers found or cannot reach by chance: out-of-memory requests, the
// checkFinite option and NaN/Infinity propagation, SharedArrayBuffer-backed arrays on the native
// path, a Node 20 (V8) stale-length bug with detached views, and the binding's own defences
// (a getter that detaches a buffer while runAsync reads its ops, kvLengths aliasing `out`, one
// op's output over another op's packed weight).
import { describe, expect, test } from 'vitest';
import * as N from '../lib/index.js';
import * as J from '../lib/js/index.js';
import { nativeBinding } from '../lib/select.js';
import { detached, firstMismatch, makeF32 } from './fuzz-util.js';

const apis = [
  ['native', N],
  ['js', J],
] as const;
const fill = (n: number, f = (i: number) => Math.sin(i * 0.7)) => Float32Array.from({ length: n }, (_, i) => f(i));

describe.each(apis)('%s: out of memory is a RangeError that says so', (_name, api) => {
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

describe.each(apis)('%s: NaN and Infinity', (_name, api) => {
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

describe('V8 (Node 20) stale length of a detached view', () => {
  test('a detached out is rejected even after views over resizable buffers went through validation', () => {
    // In Node 20 the optimized `.length` of a detached view can read its old length once a view
    // over a resizable ArrayBuffer has passed through the same code (lib/validate.ts, lengthOf).
    const Rab = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer;
    const q = fill(4);
    const options = { heads: 1, seqQ: 1, headDim: 4 };
    let accepted = 0;
    for (let i = 0; i < 20000; i++) {
      const out = i % 2 ? new Float32Array(new Rab(16, { maxByteLength: 64 })) : new Float32Array(4);
      if (i % 4 === 0) structuredClone(out.buffer, { transfer: [out.buffer as ArrayBuffer] });
      try {
        J.scaledDotProductAttention(q, q, q, { ...options, out });
        if (out.byteLength === 0) accepted++;
      } catch (e) {
        expect(e).toBeInstanceOf(RangeError);
      }
    }
    expect(accepted).toBe(0);
  });
});

describe.skipIf(!nativeBinding)('native: the binding defends itself', () => {
  const b = nativeBinding!;
  /** dims for the binding's sdpa (13 entries, or 14 with kvDtype). */
  const dimsOf = (B: number, H: number, Hkv: number, Sq: number, Sk: number, D: number, Dv: number, causal = 0) => {
    const base = [B, H, Hkv, Sq, Sk, D, Dv, 0, causal, 1, 1, 1, 1];
    try {
      b.sdpa(fill(1), fill(1), fill(1), new Float32Array(1), new Int32Array([1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1]), 1, 0, null, null, null, null, null);
      return new Int32Array(base);
    } catch {
      return new Int32Array([...base, 0]);
    }
  };
  const pack = (N: number, K: number, w = fill(N * K)) => b.gemmPack(w, true, N, K, new Float32Array(b.gemmPackedLength(N, K)));

  test('SharedArrayBuffer-backed inputs and outputs work (and match js)', async () => {
    const shared = (a: Float32Array, offset = 0) => {
      const s = new Float32Array(new SharedArrayBuffer(4 * (a.length + offset)), 4 * offset, a.length);
      s.set(a);
      return s;
    };
    const q = shared(fill(2 * 3 * 4), 1), k = shared(fill(2 * 5 * 4, Math.cos)), v = shared(fill(2 * 5 * 4, Math.sin), 3);
    const options = { heads: 2, seqQ: 3, seqK: 5, headDim: 4 };
    const out = shared(new Float32Array(24));
    N.scaledDotProductAttention(q, k, v, { ...options, out });
    const want = J.scaledDotProductAttention(q, k, v, options) as Float32Array;
    expect(firstMismatch(out, want)).toBe(-1);
    const outAsync = shared(new Float32Array(24), 2);
    await N.scaledDotProductAttentionAsync(q, k, v, { ...options, out: outAsync });
    expect(firstMismatch(outAsync, want)).toBe(-1);
    const y = N.linear(shared(fill(6)), shared(fill(9)), shared(fill(3)), { inFeatures: 3, out: shared(new Float32Array(6)) });
    expect(firstMismatch(y, J.linear(fill(6), fill(9), fill(3), { inFeatures: 3 }))).toBe(-1);
  });

  test('runAsync: a getter that detaches an earlier op\'s buffer while the ops are read is caught', async () => {
    const M = 4, K = 8, Nn = 8;
    const x = fill(M * K);
    const first = ['gemm', x, M, K, pack(Nn, K), Nn, null, new Float32Array(M * Nn)];
    const second = ['gemm', fill(K), 1, K, pack(Nn, K), Nn, null, new Float32Array(Nn)];
    const ops: unknown[] = [first];
    Object.defineProperty(ops, 1, {
      enumerable: true,
      get() {
        structuredClone(x.buffer, { transfer: [x.buffer] });
        return second;
      },
    });
    let called = false;
    expect(() => b.runAsync(ops as never, () => (called = true))).toThrow(
      new RangeError('Expected x.length to be M*K = 4*8 = 32 but received 0'),
    );
    await new Promise((r) => setTimeout(r, 10));
    expect(called).toBe(false);
  });

  test('runAsync: an op\'s output over another op\'s packed weight is a RangeError', () => {
    const K = 4, Nn = 4;
    const packed = pack(Nn, K);
    const y = new Float32Array(packed.buffer, 0, Nn); // over the header
    const before = Float32Array.from(packed);
    expect(() =>
      b.runAsync([
        ['gemm', fill(K), 1, K, pack(Nn, K), Nn, null, y],
        ['gemm', fill(K), 1, K, packed, Nn, null, new Float32Array(Nn)],
      ] as never, () => {}),
    ).toThrow(/memory that does not overlap any op's packed/);
    expect(packed).toEqual(before);
  });

  test('kvLengths (or offsets) sharing memory with out: the kernel reads what was checked', async () => {
    const B = 2, H = 1, Sq = 2, Sk = 3, D = 2;
    const q = fill(B * H * Sq * D), k = fill(B * H * Sk * D, Math.cos), v = fill(B * H * Sk * D, Math.sin);
    for (const isAsync of [false, true]) {
      const buf = new ArrayBuffer(4 * B * H * Sq * D);
      const out = new Float32Array(buf);
      const kvLengths = new Int32Array(buf, 0, B);
      kvLengths.set([2, 3]);
      const offsets = new Int32Array([5, 5]);
      const args = [q, k, v, out, dimsOf(B, H, H, Sq, Sk, D, D, 1), 1, 0, null, offsets, kvLengths, null, null] as const;
      if (isAsync) {
        await new Promise<void>((resolve, reject) => b.runAsync([['sdpa', ...args]] as never, (e) => (e ? reject(e) : resolve())));
      } else {
        b.sdpa(...(args as unknown as Parameters<typeof b.sdpa>));
      }
      const want = J.scaledDotProductAttention(q, k, v, { batch: B, heads: H, seqQ: Sq, seqK: Sk, headDim: D, kvLengths: Int32Array.of(2, 3), queryOffset: 5, scale: 1 });
      expect(firstMismatch(out, want as Float32Array)).toBe(-1);
    }
  });

  test('detached and offset views are checked by the binding itself', () => {
    const dims = dimsOf(1, 1, 1, 1, 1, 4, 4);
    const ok = () => fill(4);
    expect(() => b.sdpa(detached(4), ok(), ok(), new Float32Array(4), dims, 1, 0, null, null, null, null, null)).toThrow(
      new RangeError('Expected q.length to be B*H*Sq*D = 1*1*1*4 = 4 but received 0'),
    );
    const offset = makeF32(4, 'offset12');
    offset.set(ok());
    const out = makeF32(4, 'offset4');
    b.sdpa(offset, ok(), ok(), out, dims, 0.5, 0, null, null, null, null, null);
    expect(firstMismatch(out, J.scaledDotProductAttention(ok(), ok(), ok(), { heads: 1, seqQ: 1, headDim: 4, scale: 0.5 }) as Float32Array)).toBe(-1);
  });
});

describe.each(apis)('%s: MultiHeadAttention checkFinite', (_name, api) => {
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
