// SPDX-License-Identifier: MIT
//
// linear() and Linear on every runner (js, native-scalar, native-<each SIMD set>) against a float64
// reference, over random M, N, K in [1, 300], both weight layouts, with and without bias; native and
// js against each other; then every TypeError / RangeError, with nothing written on a throw.
//
// Tolerance per element (as test/gemm.test.ts): |y - ref| <= (2 + 2 sqrt(K)) * 2^-24 * S with
// S = sum_k |x_ik W_kj| + |b_j|: fp32 roundings, each at most 2^-24 of a value bounded by S.
import { describe, expect, test } from 'vitest';
import { expectLinearClose, makeLinearData, makeRng, randInt, runners, type LinearData } from './helpers.js';

interface Case {
  M: number;
  N: number;
  K: number;
  layout: 'out-in' | 'in-out';
  bias: boolean;
  seed: number;
}

// x is a view with a nonzero byteOffset in every other case.
const makeData = (c: Case): LinearData => makeLinearData(c.seed, c.M, c.N, c.K, c.layout === 'out-in', c.bias, c.seed % 2);
const expectClose = expectLinearClose;

const rng = makeRng(0x11ea);
const dim = () => (rng() < 0.4 ? randInt(rng, 1, 24) : randInt(rng, 1, 300));
const cases: Case[] = [];
for (let n = 0; n < 24; n++) {
  cases.push({ M: dim(), N: dim(), K: dim(), layout: n % 2 ? 'in-out' : 'out-in', bias: (n >> 1) % 2 === 0, seed: 500 + n });
}
cases.push(
  { M: 1, N: 1, K: 1, layout: 'out-in', bias: true, seed: 1 },
  { M: 1, N: 300, K: 300, layout: 'in-out', bias: false, seed: 2 },
  { M: 300, N: 1, K: 300, layout: 'out-in', bias: true, seed: 3 },
  { M: 300, N: 300, K: 1, layout: 'in-out', bias: true, seed: 4 },
);
const label = (c: Case) => `M=${c.M} N=${c.N} K=${c.K} ${c.layout} bias=${c.bias}`;
const data = new Map<Case, LinearData>();
const dataOf = (c: Case) => data.get(c) ?? (data.set(c, makeData(c)), data.get(c)!);

describe.each(runners)('linear [$name]', (r) => {
  test.each(cases.map((c) => [label(c), c] as const))('linear() %s', (_, c) => {
    const d = dataOf(c);
    const y = r.linear(d.x, d.w, d.bias, { inFeatures: c.K, outFeatures: c.N, weightLayout: c.layout });
    expectClose(y, d, c.K);
  });

  test.each(cases.map((c) => [label(c), c] as const))('Linear %s', (_, c) => {
    const d = dataOf(c);
    const w = d.w.slice();
    const layer = r.newLinear({ weight: w, bias: d.bias?.slice(), inFeatures: c.K, outFeatures: c.N, weightLayout: c.layout });
    w.fill(NaN);  // copied at construction: later writes to the caller's array do not matter
    const out = new Float32Array(c.M * c.N).fill(NaN);
    expect(layer.forward(d.x, { out })).toBe(out);
    expectClose(out, d, c.K);
    expectClose(layer.forward(d.x), d, c.K);  // and again, allocating
  });

  test('outFeatures defaults to weight.length / inFeatures; bias may be left out', () => {
    const c: Case = { M: 5, N: 7, K: 3, layout: 'out-in', bias: false, seed: 9 };
    const d = dataOf(c);
    expectClose(r.linear(d.x, d.w, { inFeatures: 3 }), d, 3);
    expectClose(r.linear(d.x, d.w, null, { inFeatures: 3 }), d, 3);
    expectClose(r.newLinear({ weight: d.w, inFeatures: 3 }).forward(d.x), d, 3);
  });

  test('hand-checked: [1,2]·[[1,0],[0,1],[1,1]]ᵀ + [0,0,10] = [1,2,13], and the in-out transpose', () => {
    const x = Float32Array.of(1, 2);
    const outIn = Float32Array.of(1, 0, 0, 1, 1, 1);  // [3, 2]
    const inOut = Float32Array.of(1, 0, 1, 0, 1, 1);  // [2, 3], its transpose
    const b = Float32Array.of(0, 0, 10);
    expect(Array.from(r.linear(x, outIn, b, { inFeatures: 2 }))).toEqual([1, 2, 13]);
    expect(Array.from(r.linear(x, inOut, b, { inFeatures: 2, weightLayout: 'in-out' }))).toEqual([1, 2, 13]);
  });
});

describe.skipIf(runners.length < 2)('linear: native and js agree', () => {
  test.each(cases.slice(0, 8).map((c) => [label(c), c] as const))('%s', (_, c) => {
    const d = dataOf(c);
    const opts = { inFeatures: c.K, outFeatures: c.N, weightLayout: c.layout };
    const [a, ...others] = runners.map((r) => r.linear(d.x, d.w, d.bias, opts));
    for (const b of others) {
      for (let i = 0; i < a!.length; i++) expect(Math.abs(a![i]! - b[i]!)).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(a![i]!)));
    }
  });
});

describe.each(runners)('linear errors [$name]', (r) => {
  const K = 3, N = 2, M = 4;
  const x = Float32Array.from({ length: M * K }, (_, i) => i);
  const w = Float32Array.from({ length: N * K }, (_, i) => i);
  const b = new Float32Array(N);
  const SENTINEL = 31337;
  type Err = typeof TypeError | typeof RangeError;

  const fnCases: Array<[string, unknown[], Err, RegExp]> = [
    ['x not a Float32Array', [Array.from(x), w, b, { inFeatures: K }], TypeError, /Float32Array for x but received Array\(12\)/],
    ['weight a Float64Array', [x, new Float64Array(6), b, { inFeatures: K }], TypeError, /Float32Array for weight/],
    ['bias an Array', [x, w, [0, 0], { inFeatures: K }], TypeError, /for bias/],
    ['options missing', [x, w, b], TypeError, /an object for options but received undefined/],
    ['inFeatures missing', [x, w, b, {}], TypeError, /options\.inFeatures/],
    ['inFeatures zero', [x, w, b, { inFeatures: 0 }], RangeError, /options\.inFeatures but received 0/],
    ['unknown option (typo)', [x, w, b, { inFeatures: K, outFeature: N }], TypeError, /Unknown option 'outFeature'.*did you mean 'outFeatures'/],
    ['weightLayout unknown', [x, w, b, { inFeatures: K, weightLayout: 'row-major' }], RangeError, /'out-in' \| 'in-out' for options\.weightLayout/],
    ['weightLayout not a string', [x, w, b, { inFeatures: K, weightLayout: 1 }], TypeError, /options\.weightLayout/],
    ['x not a multiple of inFeatures', [x.subarray(1), w, b, { inFeatures: K }], RangeError, /x\.length to be a positive multiple of inFeatures = 3 but received 11/],
    ['weight not a multiple of inFeatures', [x, w.subarray(1), b, { inFeatures: K }], RangeError, /weight\.length to be a positive multiple/],
    ['weight length vs outFeatures', [x, w, b, { inFeatures: K, outFeatures: 3 }], RangeError, /weight\.length to be outFeatures\*inFeatures = 3\*3 = 9 but received 6/],
    ['bias length', [x, w, new Float32Array(3), { inFeatures: K }], RangeError, /bias\.length to be outFeatures = 2 but received 3/],
    ['out length', [x, w, b, { inFeatures: K, out: new Float32Array(M * N + 1) }], RangeError, /options\.out\.length to be M\*outFeatures = 4\*2 = 8/],
    ['out a Float64Array', [x, w, b, { inFeatures: K, out: new Float64Array(M * N) }], TypeError, /Float32Array for options\.out/],
  ];
  test.each(fnCases)('linear(): %s', (_, args, cls, msg) => {
    expect(() => (r.linear as (...a: unknown[]) => unknown)(...args)).toThrow(cls);
    expect(() => (r.linear as (...a: unknown[]) => unknown)(...args)).toThrow(msg);
  });

  test('out overlapping x, weight or bias is a RangeError and nothing is written', () => {
    const buf = new Float32Array(64).fill(SENTINEL);
    const xs = buf.subarray(0, M * K);
    xs.set(x);
    const before = buf.slice();
    for (const [name, out] of [['x', buf.subarray(4, 4 + M * N)]] as const) {
      expect(() => r.linear(xs, w, b, { inFeatures: K, out })).toThrow(new RegExp(`options\\.out not to overlap ${name}`));
    }
    expect(buf).toEqual(before);
    const wb = new Float32Array(N * K + M * N);
    wb.set(w);
    expect(() => r.linear(x, wb.subarray(0, N * K), b, { inFeatures: K, out: wb.subarray(N * K - 1, N * K - 1 + M * N) }))
      .toThrow(/overlap weight/);
    const bb = new Float32Array(M * N + 1);
    expect(() => r.linear(x, w, bb.subarray(0, N), { inFeatures: K, out: bb.subarray(1) })).toThrow(/overlap bias/);
  });

  test('nothing is written to out when a later check fails', () => {
    const out = new Float32Array(M * N).fill(SENTINEL);
    expect(() => r.linear(x, w, new Float32Array(5), { inFeatures: K, out })).toThrow(RangeError);
    expect(out.every((v) => v === SENTINEL)).toBe(true);
  });

  const ctorCases: Array<[string, unknown, Err, RegExp]> = [
    ['config not an object', 3, TypeError, /an object for config/],
    ['weight missing', { inFeatures: K }, TypeError, /Float32Array for config\.weight but received undefined/],
    ['unknown key', { weight: w, inFeatures: K, bais: b }, TypeError, /Unknown option 'bais' in config \(did you mean 'bias'\?\)/],
    ['inFeatures fractional', { weight: w, inFeatures: 1.5 }, RangeError, /config\.inFeatures but received 1\.5/],
    ['weight length', { weight: w, inFeatures: K, outFeatures: 4 }, RangeError, /config\.weight\.length to be outFeatures\*inFeatures = 4\*3 = 12 but received 6/],
    ['in-out names the dims in order', { weight: w, inFeatures: K, outFeatures: 4, weightLayout: 'in-out' }, RangeError, /inFeatures\*outFeatures = 3\*4 = 12/],
    ['bias length', { weight: w, bias: new Float32Array(1), inFeatures: K }, RangeError, /config\.bias\.length to be outFeatures = 2/],
  ];
  test.each(ctorCases)('new Linear(): %s', (_, config, cls, msg) => {
    expect(() => r.newLinear(config)).toThrow(cls);
    expect(() => r.newLinear(config)).toThrow(msg);
  });

  test('Linear.forward checks x, options and out', () => {
    const layer = r.newLinear({ weight: w, bias: b, inFeatures: K });
    const out = new Float32Array(M * N).fill(SENTINEL);
    expect(() => layer.forward(x.subarray(1), { out })).toThrow(/x\.length to be a positive multiple of inFeatures = 3/);
    expect(() => layer.forward(x, { out, bias: b })).toThrow(/Unknown option 'bias'/);
    expect(() => layer.forward(x, { out: out.subarray(1) })).toThrow(/options\.out\.length to be M\*outFeatures = 4\*2 = 8 but received 7/);
    const shared = new Float32Array(M * K + M * N);
    shared.set(x);
    expect(() => layer.forward(shared.subarray(0, M * K), { out: shared.subarray(M * K - 2, M * K - 2 + M * N) })).toThrow(/overlap x/);
    expect(out.every((v) => v === SENTINEL)).toBe(true);
    expect(layer.forward(x, { out })).toBe(out);
  });
});
