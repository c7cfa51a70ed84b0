// What validation and the native binding defend against beyond wrong arguments: a Node 20 (V8)
// stale length of detached views, SharedArrayBuffer-backed arrays on the native path, and the
// binding's own checks, reached directly (a getter that detaches a buffer while runAsync reads its
// ops, kvLengths aliasing `out`, one op's output over another op's packed weight, detached and
// offset views).
import { describe, expect, test } from 'vitest';
import * as N from '../lib/index.js';
import * as J from '../lib/js.js';
import { nativeBinding } from '../lib/backend/select.js';
import { detached, fill, firstMismatch, makeF32, packWeight, sdpaBindingDims } from './helpers.js';

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
  /** dims for the binding's sdpa. */
  const dimsOf = (B: number, H: number, Hkv: number, Sq: number, Sk: number, D: number, Dv: number, causal = 0) =>
    sdpaBindingDims([B, H, Hkv, Sq, Sk, D, Dv, 0, causal, 1, 1, 1, 1]);
  const pack = (N: number, K: number, w = fill(N * K)) => packWeight(w, N, K);

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
      const args = [q, k, v, out, dimsOf(B, H, H, Sq, Sk, D, D, 1), 1, 0, null, offsets, kvLengths, null, null, null, null, null] as const;
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
    expect(() => b.sdpa(detached(4), ok(), ok(), new Float32Array(4), dims, 1, 0, null, null, null, null, null, null, null, null)).toThrow(
      new RangeError('Expected q.length to be B*H*Sq*D = 1*1*1*4 = 4 but received 0'),
    );
    const offset = makeF32(4, 'offset12');
    offset.set(ok());
    const out = makeF32(4, 'offset4');
    b.sdpa(offset, ok(), ok(), out, dims, 0.5, 0, null, null, null, null, null, null, null, null);
    expect(firstMismatch(out, J.scaledDotProductAttention(ok(), ok(), ok(), { heads: 1, seqQ: 1, headDim: 4, scale: 0.5 }) as Float32Array)).toBe(-1);
  });
});
