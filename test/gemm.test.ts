// SPDX-License-Identifier: MIT
//
// Packed SGEMM (the projections): the native binding on every kernel set this machine runs
// (scalar and each SIMD set, through _setSimd) and the TypeScript twin gemmJs, against a float64
// reference, over random M, N, K in [1, 300] and a few larger shapes, both weight layouts, with and
// without bias. Then every TypeError / RangeError of the binding, with nothing written on a throw.
//
// Tolerance per element: |y - ref| <= (2 + 2 sqrt(K)) * 2^-24 * S, S = sum_k |x_ik B_kj| + |bias_j|:
// every fp32 rounding errs by at most 2^-24 times a value bounded by S, and the K rounding errors
// of a sum grow like sqrt(K) (the worst case is K); a wrong or missing term is ~ S / sqrt(K) and fails.
import { describe, expect, test } from 'vitest';
import { gemmJs, packWeightJs, packedLengthJs } from '../lib/kernels/gemm.js';
import { nativeBinding } from '../lib/backend/select.js';
import {
  expectError, expectLinearClose, makeLinearData, makeRng, nativeKernelSets, packWeight, randInt, thrownBy, withSimd, type LinearData,
} from './helpers.js';

const binding = nativeBinding;

interface Case {
  M: number;
  N: number;
  K: number;
  outIn: boolean;
  bias: boolean;
  seed: number;
}

// x is sometimes a view with a nonzero byteOffset.
const makeData = (c: Case): LinearData => makeLinearData(c.seed, c.M, c.N, c.K, c.outIn, c.bias, c.seed % 3);
const check = expectLinearClose;

const rng = makeRng(0x6e33);
const dim = (hi: number) => (rng() < 0.5 ? randInt(rng, 1, 40) : randInt(rng, 1, hi));
const cases: Case[] = [];
for (let n = 0; n < 48; n++) {
  cases.push({ M: dim(300), N: dim(300), K: dim(300), outIn: rng() < 0.5, bias: rng() < 0.5, seed: 100 + n });
}
cases.push(
  { M: 1, N: 1, K: 1, outIn: true, bias: true, seed: 1 },
  { M: 1, N: 2048, K: 512, outIn: true, bias: true, seed: 2 },      // decode-sized
  { M: 7, N: 300, K: 1100, outIn: false, bias: true, seed: 3 },      // K over 2 K-blocks
  { M: 200, N: 1040, K: 513, outIn: true, bias: false, seed: 4 },    // N over an NC block
  { M: 389, N: 77, K: 257, outIn: false, bias: true, seed: 5 },      // M over 2 M-blocks
);
const label = (c: Case) => `M=${c.M} N=${c.N} K=${c.K} ${c.outIn ? 'out-in' : 'in-out'} bias=${c.bias}`;
const dataCache = new Map<Case, LinearData>();
const dataOf = (c: Case) => {
  let d = dataCache.get(c);
  if (!d) dataCache.set(c, (d = makeData(c)));
  return d;
};

describe('gemmJs', () => {
  test.each(cases.map((c) => [label(c), c] as const))('%s', (_, c) => {
    const d = dataOf(c);
    const packed = packWeightJs(d.w, c.outIn, c.N, c.K);
    expect(packed.length).toBe(packedLengthJs(c.N, c.K));
    const y = new Float32Array(c.M * c.N).fill(NaN);
    expect(gemmJs(d.x, c.M, c.K, packed, c.N, d.bias, y)).toBe(y);
    check(y, d, c.K);
  });

  test('wrong lengths are RangeErrors', () => {
    const packed = packWeightJs(new Float32Array(12), true, 3, 4);
    const y = new Float32Array(6);
    expect(() => packWeightJs(new Float32Array(11), true, 3, 4)).toThrow(RangeError);
    expect(() => gemmJs(new Float32Array(7), 2, 4, packed, 3, null, y)).toThrow(/x\.length/);
    expect(() => gemmJs(new Float32Array(8), 2, 4, packed.subarray(1), 3, null, y)).toThrow(/packed\.length/);
    expect(() => gemmJs(new Float32Array(8), 2, 4, packed, 3, new Float32Array(2), y)).toThrow(/bias\.length/);
    expect(() => gemmJs(new Float32Array(8), 2, 4, packed, 3, null, new Float32Array(5))).toThrow(/y\.length/);
  });
});

const simds = nativeKernelSets;

describe.skipIf(!binding)('native gemm', () => {
  const b = binding!;
  describe.each(simds)('simd %s', (simd) => {
    test.each(cases.map((c) => [label(c), c] as const))('%s', (_, c) => {
      const d = dataOf(c);
      const packed = new Float32Array(b.gemmPackedLength(c.N, c.K));
      expect(b.gemmPack(d.w, c.outIn, c.N, c.K, packed)).toBe(packed);
      const y = new Float32Array(c.M * c.N).fill(NaN);
      expect(withSimd(simd, () => b.gemm(d.x, c.M, c.K, packed, c.N, d.bias ?? null, y))).toBe(y);
      check(y, d, c.K);
    });
  });

  test('a weight packed under one kernel set runs under another, and after a copy', () => {
    const c: Case = { M: 33, N: 70, K: 45, outIn: false, bias: true, seed: 77 };
    const d = dataOf(c);
    b._setSimd('auto');
    const packed = packWeight(d.w, c.N, c.K, false);
    const copy = new Float32Array(packed.length + 1).subarray(1);  // another alignment
    copy.set(packed);
    for (const simd of simds) {
      for (const p of [packed, copy]) {
        const y = new Float32Array(c.M * c.N);
        withSimd(simd, () => b.gemm(d.x, c.M, c.K, p, c.N, d.bias ?? null, y));
        check(y, d, c.K);
      }
    }
  });

  test.skipIf(simds.length < 2)('_setSimd switches the GEMM kernels too', () => {
    // FMA (one rounding) and mul + add (two) round differently: some element must differ.
    const c: Case = { M: 12, N: 32, K: 300, outIn: true, bias: false, seed: 5150 };
    const d = dataOf(c);
    const packed = packWeight(d.w, c.N, c.K);
    const ys = simds.map((simd) => withSimd(simd, () => b.gemm(d.x, c.M, c.K, packed, c.N, null, new Float32Array(c.M * c.N))));
    expect(ys[0]!.some((v, i) => v !== ys[1]![i])).toBe(true);
  });

  describe('errors (nothing written)', () => {
    const M = 2, N = 3, K = 4;
    const x = Float32Array.from({ length: M * K }, (_, i) => i);
    const w = Float32Array.from({ length: N * K }, (_, i) => i);
    // Built while the tests are collected, which happens without a binary too (then nothing runs).
    const packed = binding ? packWeight(w, N, K) : new Float32Array(0);
    const SENTINEL = 4242;
    /** gemm with `args` in place of the defaults: y is left untouched, and what gemm threw is rethrown. */
    const run = (args: unknown[]) => {
      const y = new Float32Array(M * N).fill(SENTINEL);
      const full = [x, M, K, packed, N, null, y].map((v, i) => (i < args.length && args[i] !== undefined ? args[i] : v));
      const err = thrownBy(() => (b.gemm as (...a: unknown[]) => unknown)(...full));
      expect(y.every((v) => v === SENTINEL)).toBe(true);
      if (err !== undefined) throw err;
    };
    const cases: [string, unknown[], typeof TypeError | typeof RangeError, RegExp][] = [
      ['x a Float64Array', [new Float64Array(M * K)], TypeError, /Float32Array for x but received Float64Array\(8\)/],
      ['x a plain array', [Array.from(x)], TypeError, /Float32Array for x/],
      ['M a string', [x, '2'], TypeError, /integer for M/],
      ['M zero', [x, 0], RangeError, /for M but received 0/],
      ['K fractional', [x, M, 4.5], RangeError, /for K but received 4\.5/],
      ['N negative', [x, M, K, packed, -3], RangeError, /for N/],
      ['x too short', [new Float32Array(7)], RangeError, /x\.length/],
      ['packed too short', [x, M, K, packed.subarray(1)], RangeError, /packed\.length/],
      ['packed never packed', [x, M, K, new Float32Array(packed.length)], RangeError, /packed by gemmPack/],
      ['bias wrong length', [x, M, K, packed, N, new Float32Array(N + 1)], RangeError, /bias\.length/],
      ['bias a Float64Array', [x, M, K, packed, N, new Float64Array(N)], TypeError, /Float32Array for bias/],
      ['y too long', [x, M, K, packed, N, null, new Float32Array(M * N + 1)], RangeError, /y\.length/],
      ['y overlaps x', [x, M, K, packed, N, null, new Float32Array(x.buffer, 0, M * N)], RangeError, /overlap x/],
      ['y a Uint8Array', [x, M, K, packed, N, null, new Uint8Array(M * N)], TypeError, /Float32Array for y/],
    ];
    test.each(cases)('%s', (_, args, cls, msg) => expectError(() => run(args), cls, msg));

    test('too few arguments', () => {
      expect(() => (b.gemm as (...a: unknown[]) => unknown)(x, M, K, packed, N, null)).toThrow(TypeError);
      expect(() => (b.gemmPack as (...a: unknown[]) => unknown)(w, true, N, K)).toThrow(TypeError);
    });

    test('a header for other dims of the same length is a RangeError', () => {
      // N=16, K=2 and N=32, K=1 both pack into 32 floats of panels (one 16-wide panel of depth 2,
      // two of depth 1).
      const p = packWeight(new Float32Array(32), 16, 2);
      expect(b.gemmPackedLength(32, 1)).toBe(p.length);
      const y = new Float32Array(32).fill(SENTINEL);
      expect(() => b.gemm(new Float32Array(1), 1, 1, p, 32, null, y)).toThrow(/packed by gemmPack for N = 32, K = 1/);
      expect(y.every((v) => v === SENTINEL)).toBe(true);
    });

    test('gemmPack and gemmPackedLength check their arguments', () => {
      const out = new Float32Array(packed.length);
      expect(() => b.gemmPack(w, 1 as never, N, K, out)).toThrow(/boolean for outIn/);
      expect(() => b.gemmPack(w.subarray(1), true, N, K, out)).toThrow(/w\.length/);
      expect(() => b.gemmPack(w, true, N, K, out.subarray(1))).toThrow(RangeError);
      const shared = new Float32Array(packed.length + w.length);
      const wView = shared.subarray(0, w.length);
      wView.set(w);
      expect(() => b.gemmPack(wView, true, N, K, shared.subarray(2, 2 + packed.length))).toThrow(/overlap w/);
      expect(() => b.gemmPackedLength(0, 3)).toThrow(RangeError);
      expect(() => b.gemmPackedLength(3, 2 ** 31)).toThrow(RangeError);
      expect(() => b.gemmPackedLength('3' as never, 3)).toThrow(TypeError);
    });
  });
});
