// SPDX-License-Identifier: MIT
//
// KVCache (DESIGN.md, KVCache) on every runner: incremental decoding equals the layer's full causal
// forward row by row (token by token, chunked prefill, ragged batches), overflow changes nothing,
// truncate / reset / export / import, errors; forwardAsync with a cache on each backend; float16
// caches (long decodes, import from float32). The float16 conversion itself: test/float16.test.ts.
import { describe, expect, test } from 'vitest';
import { expectAllClose, makeRng, randn, randWeight, runners, type MhaLike } from './helpers.js';
import { MultiHeadAttention as MhaAuto } from '../lib/index.js';
import { MultiHeadAttention as MhaJs } from '../lib/js.js';
import type { KVCache } from '../lib/index.js';
import { floatsToHalves, halvesToFloats } from '../lib/kernels/half.js';
import { referenceHalf } from './reference.js';

const TOL = { atol: 1e-5, rtol: 1e-4 };
// A 'float16' cache against the float32 full forward. Its K and V (unit scale here: projections of
// unit normals plus N(0, 1) biases) are each rounded to the nearest half, a relative error of at
// most 2^-11 ≈ 4.9e-4. That moves a score q·k/√Dh by about 2^-11 times its own scale (≲ 1e-3 here)
// and so each softmax weight by ≲ 1e-3 relative, and each value by 2^-11 relative; the output
// projection mixes these independent errors without growing them much. So errors around 1e-3
// absolute are expected (measured over these tests: max 1.4e-3 absolute, and every element within a
// third of atol + rtol |x|); atol 2e-3 + rtol 1e-2 leaves that 3x margin while still catching a wrong
// conversion (an exponent bit off doubles or halves an element; a misread element is O(1)).
const TOL_F16 = { atol: 2e-3, rtol: 1e-2 };

interface Shape { E: number; H: number; Hkv: number; Dh: number }
const SHAPES: Array<Shape & { name: string }> = [
  { name: 'MHA', E: 8, H: 2, Hkv: 2, Dh: 4 },
  { name: 'GQA', E: 12, H: 4, Hkv: 2, Dh: 3 },
  { name: 'MQA, headDim != E/H', E: 10, H: 2, Hkv: 1, Dh: 7 },
  { name: 'GQA, SIMD-sized', E: 64, H: 8, Hkv: 2, Dh: 16 },
];

function makeConfig(s: Shape, seed: number) {
  const rng = makeRng(seed);
  const { E, H, Hkv, Dh } = s;
  return {
    embedDim: E, numHeads: H, numKvHeads: Hkv, headDim: Dh,
    weights: {
      wq: randWeight(rng, H * Dh, E), wk: randWeight(rng, Hkv * Dh, E), wv: randWeight(rng, Hkv * Dh, E),
      wo: randWeight(rng, E, H * Dh), bq: randn(rng, H * Dh), bk: randn(rng, Hkv * Dh), bv: randn(rng, Hkv * Dh),
      bo: randn(rng, E),
    },
  };
}

/** Rows [from, to) of a [T, E] sequence. */
const rows = (x: Float32Array, E: number, from: number, to: number) => x.slice(from * E, to * E);

const expectClose = (actual: Float32Array, expected: Float32Array, what: string, tol = TOL) => expectAllClose(actual, expected, what, tol);

/** The oracle: the layer's own full causal forward of one sequence [T, E]. */
const full = (layer: MhaLike, x: Float32Array) => layer.forward(x, { causal: true }) as Float32Array;

/** Feeds one sequence through a cache in chunks; returns the concatenated outputs. */
function decodeChunks(layer: MhaLike, cache: KVCache, x: Float32Array, chunks: number[]): Float32Array {
  const E = layer.embedDim;
  const out = new Float32Array(x.length);
  let t = 0;
  for (const n of chunks) {
    out.set(layer.forward(rows(x, E, t, t + n), { cache }) as Float32Array, t * E);
    t += n;
  }
  return out;
}

for (const r of runners) {
  describe(`KVCache on ${r.name}`, () => {
    for (const dtype of ['float32', 'float16'] as const) for (const [si, s] of SHAPES.entries()) {
      describe(`${s.name}, ${dtype} cache`, () => {
        const tol = dtype === 'float16' ? TOL_F16 : TOL;
        const close = (a: Float32Array, e: Float32Array, what: string) => expectClose(a, e, what, tol);
        const T = 17;
        const make = () => r.newMha(makeConfig(s, 100 + si));
        const seq = (seed: number, n = T) => randn(makeRng(seed), n * s.E);

        test('token by token equals the full causal forward, row by row', () => {
          const layer = make();
          const x = seq(1);
          const cache = layer.createCache({ dtype, maxLength: T });
          const got = decodeChunks(layer, cache, x, Array(T).fill(1));
          close(got, full(layer, x), 'decode');
          expect(cache.length).toBe(T);
          expect(Array.from(cache.lengths)).toEqual([T]);
        });

        test('chunked prefill (3, 1, 2, ...) equals the full causal forward', () => {
          const layer = make();
          const x = seq(2);
          const cache = layer.createCache({ dtype, maxLength: 32 });
          const got = decodeChunks(layer, cache, x, [3, 1, 2, 5, 1, 1, 4]);
          close(got, full(layer, x), 'chunked');
        });

        test('a ragged batch decodes in one call per step; each sequence equals its own decode', () => {
          const layer = make();
          const B = 3;
          const xs = [seq(10, 12), seq(11, 12), seq(12, 12)];
          // Tokens each sequence feeds per call; S of a call is the largest, the rest is padding.
          const schedule = [[3, 1, 0], [1, 4, 2], [0, 1, 1], [5, 2, 6], [3, 4, 3]];
          const cache = layer.createCache({ dtype, batch: B, maxLength: 12 });
          const outs = xs.map(() => new Float32Array(12 * s.E));
          const pos = [0, 0, 0];
          for (const step of schedule) {
            const S = Math.max(...step);
            const x = new Float32Array(B * S * s.E).fill(NaN);  // padding rows must not matter
            for (let b = 0; b < B; b++) x.set(rows(xs[b]!, s.E, pos[b]!, pos[b]! + step[b]!), b * S * s.E);
            const y = layer.forward(x, { cache, seqLens: Int32Array.from(step) }) as Float32Array;
            for (let b = 0; b < B; b++) {
              outs[b]!.set(y.subarray(b * S * s.E, (b * S + step[b]!) * s.E), pos[b]! * s.E);
              expect(y.subarray((b * S + step[b]!) * s.E, (b + 1) * S * s.E).every((v) => v === 0)).toBe(true);
              pos[b] += step[b]!;
            }
            expect(Array.from(cache.lengths)).toEqual(pos);
          }
          for (let b = 0; b < B; b++) {
            const single = layer.createCache({ dtype, maxLength: 12 });
            const own = decodeChunks(layer, single, xs[b]!, Array(12).fill(1));
            close(outs[b]!, own, `sequence ${b} vs its own decode`);
            close(outs[b]!, full(layer, xs[b]!), `sequence ${b} vs full forward`);
          }
        });

        test('appending past maxLength throws RangeError and changes nothing', () => {
          const layer = make();
          const x = seq(3, 6);
          const cache = layer.createCache({ dtype, batch: 2, maxLength: 5 });
          const two = new Float32Array(2 * 3 * s.E);
          two.set(rows(x, s.E, 0, 3));
          two.set(rows(x, s.E, 3, 6), 3 * s.E);
          layer.forward(two, { cache, batch: 2, seqLens: Int32Array.of(3, 1) });
          const before = cache.export();
          const out = new Float32Array(2 * 3 * s.E).fill(7);
          // Sequence 0 would reach 6 > 5; sequence 1 (1 + 3 = 4) fits but must not be written either.
          expect(() => layer.forward(two, { cache, out })).toThrow(RangeError);
          expect(() => layer.forward(two, { cache, out })).toThrow(/maxLength = 5/);
          expect(out.every((v) => v === 7)).toBe(true);
          const after = cache.export();
          expect(Array.from(after.lengths)).toEqual([3, 1]);
          expect(after.k).toEqual(before.k);
          expect(after.v).toEqual(before.v);
          // It still works up to exactly maxLength.
          layer.forward(two, { cache, seqLens: Int32Array.of(2, 3), out });
          expect(Array.from(cache.lengths)).toEqual([5, 4]);
        });

        test('truncate then re-append equals never having appended', () => {
          const layer = make();
          const a = seq(4, 8);
          const b = seq(5, 8);
          const cache = layer.createCache({ dtype, maxLength: 8 });
          decodeChunks(layer, cache, a, [3, 3]);     // a[0:6]
          cache.truncate(4);                          // keep a[0:4]
          expect(cache.length).toBe(4);
          const tail = decodeChunks(layer, cache, rows(b, s.E, 4, 8), [1, 3]);
          const mixed = new Float32Array(8 * s.E);
          mixed.set(rows(a, s.E, 0, 4));
          mixed.set(rows(b, s.E, 4, 8), 4 * s.E);
          close(tail, rows(full(layer, mixed), s.E, 4, 8), 'after truncate');
          const direct = layer.createCache({ dtype, maxLength: 8 });
          decodeChunks(layer, direct, mixed, [8]);
          const e1 = cache.export();
          const e2 = direct.export();
          close(e1.k, e2.k, 'K');
          close(e1.v, e2.v, 'V');
          cache.truncate(100);                        // never grows
          expect(cache.length).toBe(8);
        });

        test('export gives [B, Hkv, L, Dh] projections; createCache({ from }) continues like the original', () => {
          const cfg = makeConfig(s, 100 + si);
          const layer = r.newMha(cfg);
          const { E, Hkv, Dh } = s;
          const x0 = seq(6, 10);
          const x1 = seq(7, 10);
          const cache = layer.createCache({ dtype, batch: 2, maxLength: 10 });
          const both = (from: number, to: number, lens?: number[]) => {
            const n = to - from;
            const x = new Float32Array(2 * n * E);
            x.set(rows(x0, E, from, to));
            x.set(rows(x1, E, from, to), n * E);
            return layer.forward(x, { cache, ...(lens ? { seqLens: Int32Array.from(lens) } : {}) }) as Float32Array;
          };
          both(0, 4, [4, 2]);
          const saved = cache.export();
          expect(Array.from(saved.lengths)).toEqual([4, 2]);
          expect(saved.k.length).toBe(2 * Hkv * 4 * Dh);
          // K[b, h, t, :] = x_t · Wk[h]ᵀ + bk[h]; rows past lengths[b] are 0.
          const { wk, bk } = cfg.weights;
          for (const [b, xb, n] of [[0, x0, 4], [1, x1, 2]] as const) {
            for (let h = 0; h < Hkv; h++) {
              for (let t = 0; t < 4; t++) {
                for (let d = 0; d < Dh; d++) {
                  let want = 0;
                  if (t < n) {
                    want = bk[h * Dh + d]!;
                    for (let e = 0; e < E; e++) want += xb[t * E + e]! * wk[(h * Dh + d) * E + e]!;
                  }
                  const got = saved.k[((b * Hkv + h) * 4 + t) * Dh + d]!;
                  // float16: the half nearest the float32 projection, so within 2^-11 relative.
                  if (dtype === 'float16') expect(Math.abs(got - want)).toBeLessThanOrEqual(Math.abs(want) * 2 ** -11 + 1e-4);
                  else expect(got).toBeCloseTo(want, 4);
                }
              }
            }
          }
          const restored = layer.createCache({ dtype, maxLength: 10, from: saved });
          expect(restored.batch).toBe(2);
          expect(Array.from(restored.lengths)).toEqual([4, 2]);
          // The same weights in another layer object: export / import is how a cache moves.
          const twin = r.newMha(cfg);
          const moved = twin.createCache({ dtype, batch: 2, maxLength: 10, from: saved });
          const step = (l: MhaLike, c: KVCache, t0: number, t1: number) => {
            const x = new Float32Array(2 * 3 * E);
            x.set(rows(x0, E, t0, t0 + 3));
            x.set(rows(x1, E, t1, t1 + 3), 3 * E);
            return l.forward(x, { cache: c }) as Float32Array;
          };
          const a = step(layer, restored, 4, 2);
          const c = step(twin, moved, 4, 2);
          const b = step(layer, cache, 4, 2);
          close(a, b, 'restored vs uninterrupted');
          close(c, b, 'moved vs uninterrupted');
          expect(restored.export()).toEqual(cache.export());
        });

        test('reset empties the cache; decoding again matches a fresh cache', () => {
          const layer = make();
          const x = seq(8, 6);
          const cache = layer.createCache({ dtype, maxLength: 6 });
          decodeChunks(layer, cache, seq(9, 6), [6]);
          cache.reset();
          expect(cache.length).toBe(0);
          expect(cache.export().k.length).toBe(0);
          close(decodeChunks(layer, cache, x, [2, 1, 3]), full(layer, x), 'after reset');
        });
      });
    }

    test('createCache: byteLength, defaults, and errors', () => {
      const s = SHAPES[1]!;
      const layer = r.newMha(makeConfig(s, 1));
      const cache = layer.createCache({ batch: 3, maxLength: 7, dtype: 'float32' });
      expect(cache.byteLength).toBe(2 * 3 * 7 * s.Hkv * s.Dh * 4);
      expect([cache.batch, cache.maxLength, cache.length, cache.dtype]).toEqual([3, 7, 0, 'float32']);
      expect(layer.createCache({ maxLength: 2 }).batch).toBe(1);

      const half = layer.createCache({ batch: 3, maxLength: 7, dtype: 'float16' });
      expect(half.byteLength).toBe(2 * 3 * 7 * s.Hkv * s.Dh * 2);
      expect(half.dtype).toBe('float16');
      expect(() => layer.createCache({ maxLength: 4, dtype: 'bf16' })).toThrow(RangeError);
      expect(() => layer.createCache({ maxLength: 4, dtype: 'bf16' })).toThrow(/'float32' or 'float16' for options\.dtype/);
      expect(() => layer.createCache({ maxLength: 4, dtype: 16 })).toThrow(TypeError);
      expect(() => layer.createCache({ maxLength: 4, maxLen: 3 })).toThrow(TypeError);
      expect(() => layer.createCache({ batch: 2 })).toThrow(TypeError);
      expect(() => layer.createCache(undefined)).toThrow(TypeError);
      for (const bad of [0, -1, 2.5, NaN]) {
        expect(() => layer.createCache({ batch: bad, maxLength: 4 })).toThrow(RangeError);
        expect(() => layer.createCache({ maxLength: bad })).toThrow(RangeError);
      }
      expect(() => layer.createCache({ batch: '2', maxLength: 4 })).toThrow(TypeError);

      // from: shapes and lengths are checked.
      const full3 = layer.createCache({ batch: 2, maxLength: 4 });
      layer.forward(randn(makeRng(3), 2 * 3 * s.E), { cache: full3 });
      const saved = full3.export();
      expect(() => layer.createCache({ maxLength: 2, from: saved })).toThrow(RangeError);   // lengths 3 > 2
      expect(() => layer.createCache({ batch: 3, maxLength: 4, from: saved })).toThrow(RangeError);
      expect(() => layer.createCache({ maxLength: 4, from: { ...saved, k: saved.k.subarray(1) } })).toThrow(RangeError);
      expect(() => layer.createCache({ maxLength: 4, from: { ...saved, lengths: [3, 3] } })).toThrow(TypeError);
      expect(() => layer.createCache({ maxLength: 4, from: { ...saved, extra: 1 } })).toThrow(TypeError);
      expect(() => layer.createCache({ maxLength: 4, from: { ...saved, lengths: Int32Array.of(3, -1) } })).toThrow(RangeError);
      // A layer with another Hkv or Dh cannot import it.
      const other = r.newMha(makeConfig(SHAPES[0]!, 2));
      expect(() => other.createCache({ maxLength: 4, from: saved })).toThrow(RangeError);

      expect(() => cache.truncate(-1)).toThrow(RangeError);
      expect(() => cache.truncate(1.5)).toThrow(RangeError);
    });

    test('forward with a cache: errors', () => {
      const s = SHAPES[1]!;
      const layer = r.newMha(makeConfig(s, 1));
      const other = r.newMha(makeConfig(s, 1));  // same shape, other layer
      const cache = layer.createCache({ batch: 2, maxLength: 8 });
      const x = randn(makeRng(4), 2 * s.E);
      expect(() => layer.forward(x, { cache: other.createCache({ batch: 2, maxLength: 8 }) })).toThrow(TypeError);
      expect(() => layer.forward(x, { cache: {} })).toThrow(TypeError);
      expect(() => layer.forward(x, { cache, causal: false })).toThrow(RangeError);
      expect(() => layer.forward(x, { cache, batch: 1 })).toThrow(RangeError);
      expect(() => layer.forward(x, { cache, kvLengths: Int32Array.of(1, 1) })).toThrow(TypeError);
      expect(() => layer.forward(x, { cache, mask: { data: new Float32Array(1), dims: [1] } })).toThrow(TypeError);
      expect(() => layer.forward(x, { cache, context: x })).toThrow(TypeError);
      expect(() => layer.forward(x, { cache, needWeights: true })).toThrow(TypeError);
      expect(() => layer.forward(x, { cache, seqLens: Int32Array.of(2, 0) })).toThrow(RangeError);
      expect(() => layer.forward(x, { cache, out: x })).toThrow(RangeError);
      expect(cache.length).toBe(0);
      layer.forward(x, { cache, causal: true });
      expect(Array.from(cache.lengths)).toEqual([1, 1]);
    });
  });
}

// forwardAsync runs on the module's backend (its kernel set is chosen per call on the pool).
for (const [name, Mha] of [['js', MhaJs], ['auto', MhaAuto]] as const) {
  describe(`KVCache with forwardAsync (${name})`, () => {
    const s = SHAPES[3]!;
    test('async decoding equals sync decoding; the cache is locked while in flight', async () => {
      const cfg = makeConfig(s, 77);
      const layer = new Mha(cfg);
      const x = randn(makeRng(5), 9 * s.E);
      const syncCache = layer.createCache({ maxLength: 9 });
      const asyncCache = layer.createCache({ maxLength: 9 });
      let t = 0;
      for (const n of [4, 1, 1, 3]) {
        const xs = x.slice(t * s.E, (t + n) * s.E);
        const want = layer.forward(xs, { cache: syncCache });
        const pending = layer.forwardAsync(xs, { cache: asyncCache });
        expect(() => layer.forward(xs, { cache: asyncCache })).toThrow(/in flight/);
        expect(() => asyncCache.truncate(0)).toThrow(/in flight/);
        expectClose(await pending, want, `async chunk at ${t}`);
        t += n;
      }
      expect(Array.from(asyncCache.lengths)).toEqual([9]);
      expectClose(asyncCache.export().k, syncCache.export().k, 'K');
      expectClose(asyncCache.export().v, syncCache.export().v, 'V');
    });

    test('an aborted forwardAsync changes nothing; overflow throws synchronously', async () => {
      const layer = new Mha(makeConfig(s, 78));
      const cache = layer.createCache({ maxLength: 3 });
      const x = randn(makeRng(6), 2 * s.E);
      await layer.forwardAsync(x, { cache });
      const before = cache.export();
      const ac = new AbortController();
      ac.abort();
      await expect(layer.forwardAsync(x.subarray(0, s.E), { cache, signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' });
      expect(cache.export()).toEqual(before);
      expect(() => layer.forwardAsync(x, { cache })).toThrow(RangeError);
      await layer.forwardAsync(x.subarray(0, s.E), { cache });
      expect(cache.length).toBe(3);
    });
  });
}

// float16 caches across dtypes and on the async path.
for (const r of runners) {
  describe(`float16 KVCache extras on ${r.name}`, () => {
    const s = SHAPES[3]!;
    test('a long decode (GQA, SIMD-sized, crossing key blocks) stays within the float16 tolerance', () => {
      const layer = r.newMha(makeConfig(s, 90));
      const T = 150;
      const x = randn(makeRng(91), T * s.E);
      const cache = layer.createCache({ maxLength: T, dtype: 'float16' });
      const got = decodeChunks(layer, cache, x, [70, ...Array(80).fill(1)]);
      expectClose(got, full(layer, x), 'long fp16 decode', TOL_F16);
    });

    test('export of a float32 cache imports into float16 and back; values are the halves', () => {
      const layer = r.newMha(makeConfig(s, 92));
      const x = randn(makeRng(93), 5 * s.E);
      const f32 = layer.createCache({ maxLength: 8 });
      layer.forward(x, { cache: f32 });
      const e32 = f32.export();
      const f16 = layer.createCache({ maxLength: 8, dtype: 'float16', from: e32 });
      const e16 = f16.export();
      const rounded = new Uint16Array(e32.k.length);
      floatsToHalves(e32.k, rounded, 0);
      const want = new Float32Array(rounded.length);
      halvesToFloats(rounded, want, 0);
      expect(e16.k).toEqual(want);
      // The halves themselves, by the definition (not by lib/kernels/half.ts, which the cache uses).
      expect(e16.k.every((y, i) => Object.is(y, referenceHalf(e32.k[i]!)))).toBe(true);
      const again = layer.createCache({ maxLength: 8, from: e16 });  // float32 holds halves exactly
      expect(again.export()).toEqual(e16);
    });
  });
}
