// SPDX-License-Identifier: MIT
//
// The score modifiers of DESIGN.md "Positions and score modifiers": sliding windows, attention
// sinks, ALiBi and the log-sum-exp output, on every backend (js and each native kernel set this
// machine runs):
//   - randomized parity against the float64 reference (test/reference.ts) over windows of every
//     kind, sinks, ALiBi, lse and all of them with masks, kvLengths, causal alignments, GQA, both
//     layouts and Dv != D; decode shapes (Sq = 1, long Sk) that split over keys, at 1..3 threads
//     (bitwise the same at every count); float16 K/V through the plan the KV cache uses;
//   - semantics that can be checked by hand;
//   - errors for every new option, nothing written.
import { afterAll, describe, expect, test } from 'vitest';
import * as N from '../lib/index.js';
import * as J from '../lib/js.js';
import { jsBackend } from '../lib/backend/js.js';
import { nativeBinding } from '../lib/backend/select.js';
import { nativeBackend } from '../lib/backend/native.js';
import { makeSdpaPlan } from '../lib/plan.js';
import { floatsToHalves } from '../lib/kernels/half.js';
import {
  allclose, expectError, makeRng, nativeKernelSets, pick, publicApis, randInt, randn, runners, sameBits, sdpaBindingDims,
  withSimd, type Rng, type Runner,
} from './helpers.js';
import { referenceHalf, referenceSdpa, type RefOptions } from './reference.js';

const TOL = { atol: 1e-5, rtol: 1e-4 };
const MAX_COST = 4e6; // B*H*Sq*Sk*(D+Dv) per random case

type Window = { left?: number; right?: number } | undefined;

interface Inputs {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  options: RefOptions & Record<string, unknown>;
}

function windowOf(rng: Rng, Sk: number): Window {
  const w = (): number => pick(rng, [0, 1, 2, 5, randInt(rng, 0, 40), 63, 64, 100, Sk + 7]);
  switch (randInt(rng, 0, 4)) {
    case 0: return undefined;
    case 1: return { left: w() };
    case 2: return { right: w() };
    case 3: return { left: w(), right: w() };
    default: return { left: w(), right: 0 };
  }
}

function randomCase(seed: number): Inputs {
  const rng = makeRng(seed);
  for (;;) {
    const [H, Hkv] = pick(rng, [[1, 1], [2, 2], [4, 2], [4, 1], [6, 3], [8, 8]] as const);
    const B = randInt(rng, 1, 3);
    const Sq = pick(rng, [1, 1, randInt(rng, 2, 20), randInt(rng, 21, 90), randInt(rng, 120, 200)]);
    const Sk = pick(rng, [Sq, Sq, randInt(rng, 1, 40), randInt(rng, 40, 300)]);
    const D = pick(rng, [4, 8, 17, 64]);
    const Dv = pick(rng, [D, D, 8, 33]);
    if (B * H * Sq * Sk * (D + Dv) > MAX_COST) continue;
    const options: Inputs['options'] = { batch: B, heads: H, kvHeads: Hkv, seqQ: Sq, seqK: Sk, headDim: D, valueDim: Dv };
    options.layout = pick(rng, ['bhsd', 'bshd'] as const);
    const causal = randInt(rng, 0, 5);
    if (causal === 1) options.causal = true;
    else if (causal === 2) options.causal = 'top-left';
    else if (causal === 3) options.queryOffset = Int32Array.from({ length: B }, () => randInt(rng, -3, Sk));
    const window = windowOf(rng, Sk);
    if (window) options.window = window;
    if (rng() < 0.4) options.sinks = Float32Array.from({ length: H }, () => pick(rng, [-Infinity, 3 * rng() - 1, 8, -30]));
    if (rng() < 0.4) options.alibi = Float32Array.from({ length: H }, () => pick(rng, [0, 0.5 * rng(), 2 ** -randInt(rng, 1, 8)]));
    if (rng() < 0.5) options.lse = true;
    if (rng() < 0.2) options.softcap = 5;
    if (rng() < 0.3) options.kvLengths = Int32Array.from({ length: B }, () => randInt(rng, 0, Sk));
    if (rng() < 0.25) {
      const data = new Float32Array(B * Sq * Sk).map(() => (rng() < 0.15 ? -Infinity : rng() - 0.5));
      options.mask = { data, dims: [B, 1, Sq, Sk] };
    } else if (rng() < 0.15) {
      const data = new Uint8Array(Sq * Sk).map(() => (rng() < 0.2 ? 0 : 1));
      options.mask = { data, dims: [Sq, Sk] };
    }
    if (rng() < 0.2) options.weights = true;
    if (rng() < 0.2) options.scores = true;
    return {
      q: randn(rng, B * H * Sq * D), k: randn(rng, B * Hkv * Sk * D), v: randn(rng, B * Hkv * Sk * Dv), options,
    };
  }
}

function describeOptions(o: Record<string, unknown>): string {
  return JSON.stringify(o, (_k, val) => {
    if (ArrayBuffer.isView(val)) {
      const a = val as unknown as ArrayLike<number>;
      return a.length <= 8 ? `${val.constructor.name}[${Array.from(a).join(',')}]` : `${val.constructor.name}(${a.length})`;
    }
    return typeof val === 'number' && !Number.isFinite(val) ? String(val) : val;
  });
}

type Got = { output: Float32Array; weights?: Float32Array; scores?: Float32Array; lse?: Float32Array };
const asResult = (r: Float32Array | Got): Got => (r instanceof Float32Array ? { output: r } : r);

function expectMatches(got: Got, want: ReturnType<typeof referenceSdpa>, o: Record<string, unknown>, where: string): void {
  const checks: Array<[string, Float32Array | undefined, Float64Array]> = [['out', got.output, want.out]];
  if (o.weights) checks.push(['weights', got.weights, want.weights]);
  if (o.scores) checks.push(['scores', got.scores, want.scores]);
  if (o.lse) checks.push(['lse', got.lse, want.lse]);
  for (const [what, g, w] of checks) {
    expect(g, `${what} missing: ${where}`).toBeInstanceOf(Float32Array);
    const r = allclose(g!, w, TOL);
    const at = r.index >= 0 ? ` first bad index ${r.index}: got ${g![r.index]} want ${w[r.index]}` : '';
    expect(r.ok, `${what} mismatch: ${where}\n  options: ${describeOptions(o)}\n  maxAbs=${r.maxAbs.toExponential(2)}${at}`).toBe(true);
  }
}

const CASES = Array.from({ length: 90 }, (_, i) => 0x3a11 + i * 7919);
const references = new Map<number, ReturnType<typeof referenceSdpa>>();
const referenceOf = (seed: number, inp: Inputs) => {
  let r = references.get(seed);
  if (!r) references.set(seed, (r = referenceSdpa(inp.q, inp.k, inp.v, inp.options)));
  return r;
};

describe.each(runners)('score modifiers: parity with the float64 reference [$name]', (runner) => {
  test.each(CASES)('random case %i', (seed) => {
    const inp = randomCase(seed);
    const got = asResult(runner.sdpa(inp.q, inp.k, inp.v, inp.options) as Float32Array | Got);
    expectMatches(got, referenceOf(seed, inp), inp.options, `${runner.name} seed ${seed}`);
  });

  // Every modifier at once, with what already existed, in shapes that cross the 256-key block.
  test.each([
    ['bhsd', 1], ['bshd', 2],
  ] as const)('all at once, %s, B=%i, GQA, masks, kvLengths, ragged offsets, Dv != D', (layout, B) => {
    const rng = makeRng(77 + B);
    const H = 4, Hkv = 2, Sq = 40, Sk = 300, D = 16, Dv = 24;
    const options: Inputs['options'] = {
      batch: B, heads: H, kvHeads: Hkv, seqQ: Sq, seqK: Sk, headDim: D, valueDim: Dv, layout,
      queryOffset: Int32Array.from({ length: B }, (_, b) => 250 - 20 * b), kvLengths: Int32Array.from({ length: B }, (_, b) => 290 - 30 * b),
      window: { left: 70, right: 3 }, sinks: Float32Array.of(0.5, -1, 2, -Infinity), alibi: Float32Array.of(0.25, 0, 0.0625, 0.5),
      softcap: 20, mask: { data: new Float32Array(Sq * Sk).map(() => (rng() < 0.1 ? -Infinity : rng())), dims: [Sq, Sk] },
      lse: true, weights: true, scores: true,
    };
    const q = randn(rng, B * H * Sq * D), k = randn(rng, B * Hkv * Sk * D), v = randn(rng, B * Hkv * Sk * Dv);
    const got = asResult(runner.sdpa(q, k, v, options) as Got);
    expectMatches(got, referenceSdpa(q, k, v, options), options, runner.name);
  });
});

// Decode: one query row over a long cache, split over keys by the native driver; results are the
// same bits at every thread count.
describe.each(runners)('score modifiers: decode shapes [$name]', (runner) => {
  const shapes = [
    { B: 1, H: 8, Hkv: 8, Sk: 5000, layout: 'bhsd' },
    { B: 2, H: 8, Hkv: 2, Sk: 3000, layout: 'bshd' },
    { B: 1, H: 4, Hkv: 1, Sk: 4100, layout: 'bshd' },
    // One row per kv head (the native single-row path): several heads per tile in 'bshd', a head
    // dim that is no whole number of vectors, key counts that leave partial groups of eight.
    { B: 2, H: 6, Hkv: 6, Sk: 2053, layout: 'bshd', D: 20 },
    { B: 1, H: 3, Hkv: 3, Sk: 1029, layout: 'bhsd', D: 36 },
  ] as const;
  const modifiers = [
    { window: { left: 255 }, causal: true },
    { window: { left: 1000 }, causal: true, sinks: Float32Array.of(1, 2, -1, 0, 3, -2, 0.5, -Infinity), lse: true },
    { sinks: Float32Array.of(4, -4, 0, 1, 2, 3, 5, 6), alibi: Float32Array.of(0.001, 0.002, 0.004, 0.008, 0, 0.03, 0.06, 0.1), lse: true },
    { window: { left: 40, right: 0 }, alibi: Float32Array.of(0.5, 0.25, 0.125, 0.0625, 0.03, 0.01, 0, 1), kvLengths: true, lse: true },
  ];
  test.each(shapes.flatMap((s) => modifiers.map((m, i) => [`${s.layout} B=${s.B} H=${s.H}/${s.Hkv} Sk=${s.Sk}, modifiers #${i}`, s, m] as const)))(
    '%s',
    (_name, s, m) => {
      const rng = makeRng(s.Sk + s.H);
      const D = 'D' in s ? s.D : 64;
      const options: Inputs['options'] = { batch: s.B, heads: s.H, kvHeads: s.Hkv, seqQ: 1, seqK: s.Sk, headDim: D, layout: s.layout };
      if (m.window) options.window = m.window;
      if (m.causal) options.causal = true;
      if (m.sinks) options.sinks = m.sinks.subarray(0, s.H);
      if (m.alibi) options.alibi = m.alibi.subarray(0, s.H);
      if (m.lse) options.lse = true;
      if (m.kvLengths) options.kvLengths = Int32Array.from({ length: s.B }, (_, b) => s.Sk - 100 * b - 7);
      const q = randn(rng, s.B * s.H * D), k = randn(rng, s.B * s.Hkv * s.Sk * D), v = randn(rng, s.B * s.Hkv * s.Sk * D);
      const results: Got[] = [];
      const counts = runner.name === 'js' ? [1] : [1, 2, 3];
      try {
        for (const n of counts) {
          N.setThreads(n);
          results.push(asResult(runner.sdpa(q, k, v, options) as Got));
        }
      } finally {
        N.setThreads(threadsBefore);
      }
      expectMatches(results[0]!, referenceSdpa(q, k, v, options), options, runner.name);
      for (let x = 1; x < results.length; x++) {
        expect(sameBits(results[x]!.output, results[0]!.output), `out at ${counts[x]} threads`).toBe(true);
        if (m.lse) expect(sameBits(results[x]!.lse!, results[0]!.lse!), `lse at ${counts[x]} threads`).toBe(true);
      }
    },
  );
});
const threadsBefore = N.info().threads;
afterAll(() => N.setThreads(threadsBefore));

// float16 K/V (what a float16 KVCache hands the kernels): the same plan on the js backend and on
// each native kernel set, against the reference on the widened halves.
describe('score modifiers: float16 K/V', () => {
  const B = 2, H = 4, Hkv = 2, Sq = 3, Sk = 700, D = 32;
  const rng = makeRng(16);
  const q = randn(rng, B * Sq * H * D);
  const k32 = randn(rng, B * Sk * Hkv * D).map(referenceHalf), v32 = randn(rng, B * Sk * Hkv * D).map(referenceHalf);
  const k16 = new Uint16Array(k32.length), v16 = new Uint16Array(v32.length);
  floatsToHalves(k32, k16, 0);
  floatsToHalves(v32, v16, 0);
  const offsets = Int32Array.of(600, 400);
  const kvLengths = Int32Array.of(603, 403);
  const sinks = Float32Array.of(1, -1, 0.5, 2), alibi = Float32Array.of(0.01, 0.1, 0, 0.3);
  const planFor = (Sqx: number, qx: Float32Array) => {
    const out = new Float32Array(B * Sqx * H * D);
    const lse = new Float32Array(B * H * Sqx);
    const plan = makeSdpaPlan({
      q: qx, k: k16, v: v16, kvDtype: 'float16', out, B, H, Hkv, Sq: Sqx, Sk, D, Dv: D, layout: 'bshd', scale: 1 / Math.sqrt(D),
      softcap: 0, causal: true, offsets, kvLengths, mask: null, weights: null, scores: null,
      windowLeft: 300, sinks, alibi, lse,
    });
    return { plan, out, lse };
  };
  const want = referenceSdpa(q, k32, v32, {
    batch: B, heads: H, kvHeads: Hkv, seqQ: Sq, seqK: Sk, headDim: D, layout: 'bshd', queryOffset: offsets, kvLengths,
    window: { left: 300 }, sinks, alibi,
  });
  const backends = [
    ['js', () => jsBackend],
    ...nativeKernelSets.map((set) => [`native-${set}`, () => nativeBackend(nativeBinding!), set] as const),
  ] as const;
  test.each(backends.map((b) => [b[0], b] as const))('%s', (_name, b) => {
    const { plan, out, lse } = planFor(Sq, q);
    const run = () => b[1]().sdpa(plan);
    if (b.length === 3) withSimd(b[2], run);
    else run();
    expect(allclose(out, want.out, TOL).ok).toBe(true);
    expect(allclose(lse, want.lse, TOL).ok).toBe(true);
    // Decode rows over the same float16 keys (the few-row path), against the reference too.
    const q1 = q.subarray(0, B * H * D);
    const one = planFor(1, q1);
    if (b.length === 3) withSimd(b[2], () => b[1]().sdpa(one.plan));
    else b[1]().sdpa(one.plan);
    const want1 = referenceSdpa(q1, k32, v32, {
      batch: B, heads: H, kvHeads: Hkv, seqQ: 1, seqK: Sk, headDim: D, layout: 'bshd', queryOffset: offsets, kvLengths,
      window: { left: 300 }, sinks, alibi,
    });
    expect(allclose(one.out, want1.out, TOL).ok).toBe(true);
    expect(allclose(one.lse, want1.lse, TOL).ok).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Semantics by hand

describe.each(runners)('score modifiers: semantics [$name]', (runner: Runner) => {
  const rng = makeRng(5);
  const H = 2, S = 37, D = 8;
  const q = randn(rng, H * S * D), k = randn(rng, H * S * D), v = randn(rng, H * S * D);
  const base = { heads: H, seqQ: S, headDim: D };

  test('a window of 0 sees only the row itself: out is its own value row', () => {
    const out = runner.sdpa(q, k, v, { ...base, window: { left: 0, right: 0 } }) as Float32Array;
    for (let x = 0; x < out.length; x++) expect(out[x]).toBeCloseTo(v[x]!, 6);
    const causal0 = runner.sdpa(q, k, v, { ...base, causal: true, window: { left: 0 } }) as Float32Array;
    expect(sameBits(causal0, out)).toBe(true);
  });

  test('a window wider than the keys is no window; left-only with causal is a band', () => {
    const plain = runner.sdpa(q, k, v, { ...base, causal: true }) as Float32Array;
    const wide = runner.sdpa(q, k, v, { ...base, causal: true, window: { left: S + 100, right: 2 ** 40 } }) as Float32Array;
    expect(sameBits(wide, plain)).toBe(true);
    const { weights } = runner.sdpa(q, k, v, { ...base, causal: true, window: { left: 3 }, weights: true }) as Got;
    for (let i = 0; i < S; i++) {
      for (let j = 0; j < S; j++) {
        const visible = j <= i && j >= i - 3;
        expect(weights![i * S + j]! > 0, `row ${i} key ${j}`).toBe(visible);
      }
    }
  });

  test('a sink lowers every weight by the sink\'s share and carries no value', () => {
    const sinks = Float32Array.of(0.7, -2);
    const plain = runner.sdpa(q, k, v, { ...base, weights: true, lse: true }) as Got;
    const sunk = runner.sdpa(q, k, v, { ...base, weights: true, lse: true, sinks }) as Got;
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < S; i++) {
        const row = h * S + i;
        const share = 1 / (1 + Math.exp(sinks[h]! - plain.lse![row]!)); // what is left for the keys
        let sum = 0;
        for (let j = 0; j < S; j++) {
          expect(sunk.weights![row * S + j]).toBeCloseTo(plain.weights![row * S + j]! * share, 6);
          sum += sunk.weights![row * S + j]!;
        }
        expect(sum).toBeCloseTo(share, 5);
        for (let x = 0; x < D; x++) expect(sunk.output[row * D + x]).toBeCloseTo(plain.output[row * D + x]! * share, 5);
        expect(sunk.lse![row]).toBeCloseTo(Math.log(Math.exp(plain.lse![row]!) + Math.exp(sinks[h]!)), 5);
      }
    }
  });

  test('a sink of -Infinity is no sink; +Infinity takes the whole row; rows with every key blocked stay zeros', () => {
    const plain = runner.sdpa(q, k, v, { ...base, lse: true }) as Got;
    const none = runner.sdpa(q, k, v, { ...base, lse: true, sinks: Float32Array.of(-Infinity, -Infinity) }) as Got;
    expect(sameBits(none.output, plain.output)).toBe(true);
    const all = runner.sdpa(q, k, v, { ...base, lse: true, weights: true, sinks: Float32Array.of(Infinity, 0) }) as Got;
    for (let x = 0; x < S * D; x++) expect(all.output[x]).toBe(0);
    for (let x = 0; x < S * S; x++) expect(all.weights![x]).toBe(0);
    expect(all.lse![0]).toBe(Infinity);
    const blocked = runner.sdpa(q, k, v, {
      ...base, sinks: Float32Array.of(1, 1), lse: true, weights: true, kvLengths: Int32Array.of(0),
    }) as Got;
    expect(blocked.output.every((x) => x === 0)).toBe(true);
    expect(blocked.weights!.every((x) => x === 0)).toBe(true);
    expect(Array.from(blocked.lse!)).toEqual(new Array(H * S).fill(1)); // log e^sink
    const nothing = runner.sdpa(q, k, v, { ...base, lse: true, kvLengths: Int32Array.of(0) }) as Got;
    expect(Array.from(nothing.lse!)).toEqual(new Array(H * S).fill(-Infinity));
  });

  test('ALiBi with slope 0 is a no-op; a slope is a bias of -m|i - j| on the scores', () => {
    const plain = runner.sdpa(q, k, v, { ...base, causal: true, scores: true }) as Got;
    const zero = runner.sdpa(q, k, v, { ...base, causal: true, scores: true, alibi: new Float32Array(H) }) as Got;
    expect(sameBits(zero.output, plain.output)).toBe(true);
    const m = Float32Array.of(0.5, 0.125);
    const biased = runner.sdpa(q, k, v, { ...base, scores: true, alibi: m }) as Got;
    const unbiased = runner.sdpa(q, k, v, { ...base, scores: true }) as Got;
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < S; i += 5) {
        for (let j = 0; j < S; j += 3) {
          const x = (h * S + i) * S + j;
          expect(biased.scores![x]).toBeCloseTo(unbiased.scores![x]! - m[h]! * Math.abs(i - j), 4);
        }
      }
    }
  });

  test('lse equals log Σ e^scores of the scores output', () => {
    const r = runner.sdpa(q, k, v, { ...base, causal: true, window: { left: 9 }, alibi: Float32Array.of(0.1, 0.2), scores: true, lse: true }) as Got;
    for (let row = 0; row < H * S; row++) {
      let max = -Infinity;
      for (let j = 0; j < S; j++) max = Math.max(max, r.scores![row * S + j]!);
      let sum = 0;
      for (let j = 0; j < S; j++) sum += Math.exp(r.scores![row * S + j]! - max);
      expect(r.lse![row]).toBeCloseTo(max + Math.log(sum), 5);
    }
  });

  test('two halves of the keys merged through their lse give the whole', () => {
    // One head, 'bhsd': keys [0, half) and [half, S) are contiguous ranges of k and v.
    const half = 20;
    const q1 = q.subarray(0, S * D), k1 = k.subarray(0, S * D), v1 = v.subarray(0, S * D);
    const o = { heads: 1, seqQ: S, headDim: D, lse: true } as const;
    const whole = runner.sdpa(q1, k1, v1, { ...o, seqK: S }) as Got;
    const a = runner.sdpa(q1, k1.subarray(0, half * D), v1.subarray(0, half * D), { ...o, seqK: half }) as Got;
    const b = runner.sdpa(q1, k1.subarray(half * D), v1.subarray(half * D), { ...o, seqK: S - half }) as Got;
    for (let i = 0; i < S; i++) {
      const l = Math.log(Math.exp(a.lse![i]!) + Math.exp(b.lse![i]!));
      expect(whole.lse![i]).toBeCloseTo(l, 5);
      const wa = Math.exp(a.lse![i]! - l), wb = Math.exp(b.lse![i]! - l);
      for (let x = 0; x < D; x++) expect(whole.output[i * D + x]).toBeCloseTo(wa * a.output[i * D + x]! + wb * b.output[i * D + x]!, 5);
    }
  });

  test('positions in a call that is not causal: the last row sits on the last key (Sq < Sk)', () => {
    const Sk = 30, Sq = 4;
    const kk = k.subarray(0, Sk * D), vv = v.subarray(0, Sk * D), qq = q.subarray(0, Sq * D);
    const { weights } = runner.sdpa(qq, kk, vv, { heads: 1, seqQ: Sq, seqK: Sk, headDim: D, window: { left: 2, right: 1 }, weights: true }) as Got;
    for (let i = 0; i < Sq; i++) {
      const p = Sk - Sq + i;
      for (let j = 0; j < Sk; j++) expect(weights![i * Sk + j]! > 0, `row ${i} key ${j}`).toBe(j >= p - 2 && j <= p + 1);
    }
  });

  test('NaN in a sink or a slope flows through IEEE arithmetic', () => {
    const r = runner.sdpa(q, k, v, { ...base, sinks: Float32Array.of(NaN, 0), lse: true }) as Got;
    expect(Number.isNaN(r.output[0])).toBe(true);
    expect(Number.isNaN(r.lse![0])).toBe(true);
    expect(r.output.subarray(S * D).every(Number.isFinite)).toBe(true);
    const a = runner.sdpa(q, k, v, { ...base, alibi: Float32Array.of(0, NaN) }) as Float32Array;
    expect(a.subarray(0, S * D).every(Number.isFinite)).toBe(true);
    expect(Number.isNaN(a[S * D])).toBe(true);
  });

  // The async job runs on the pool with the kernel set in force when it runs (withSimd has been
  // undone by then), so native results are compared within the tolerance, js ones bit for bit.
  test('async twin: the same result, lse included', async () => {
    const o = { ...base, causal: true, window: { left: 5 }, sinks: Float32Array.of(1, 2), lse: true } as const;
    const sync = runner.sdpa(q, k, v, o) as Got;
    const got = await (runner.name === 'js' ? J : N).scaledDotProductAttentionAsync(q, k, v, o);
    if (runner.name === 'js') {
      expect(sameBits(got.output, sync.output)).toBe(true);
      expect(sameBits(got.lse, sync.lse!)).toBe(true);
    } else {
      expect(allclose(got.output, sync.output, TOL).ok).toBe(true);
      expect(allclose(got.lse, sync.lse!, TOL).ok).toBe(true);
    }
  });
});

// Positions near the int32 limits: ALiBi's distances past 2^24 and window sides past INT32_MAX.
describe.each(runners)('score modifiers: extreme positions [$name]', (runner) => {
  const rng = makeRng(24);
  const H = 2, Sq = 3, Sk = 200, D = 16;
  const q = randn(rng, H * Sq * D), k = randn(rng, H * Sk * D), v = randn(rng, H * Sk * D);
  const base = { heads: H, seqQ: Sq, seqK: Sk, headDim: D, weights: true, lse: true };
  // There a score is ~ -slope·2^30 and a float32 holds it to a step of slope·2^7: any float32
  // implementation is far from the float64 reference, so the backends are held to each other
  // (each rounds scale·q·k + bias once).
  test.each([2 ** 23, 2 ** 24 + 1, 2 ** 25 + 3, 2 ** 30 + 7])('ALiBi with the rows at queryOffset %i: the same as js', (offset) => {
    const options = { ...base, queryOffset: offset, alibi: Float32Array.of(1 / 64, 1 / 1024) };
    const got = asResult(runner.sdpa(q, k, v, options) as Got);
    const js = asResult(J.scaledDotProductAttention(q, k, v, options) as Got);
    for (const key of ['output', 'weights', 'lse'] as const) {
      const r = allclose(got[key]!, js[key]!, TOL);
      expect(r.ok, `${key}: maxAbs ${r.maxAbs}`).toBe(true);
    }
  });
  test('window sides past INT32_MAX: unbounded where they bound no row, an error where they would', () => {
    const top = { ...base, queryOffset: 0x7fffffff - 1 };
    const wide = runner.sdpa(q, k, v, { ...top, window: { left: 2 ** 40, right: 2 ** 53 } }) as Got;
    const none = runner.sdpa(q, k, v, top) as Got;
    expect(sameBits(wide.output, none.output)).toBe(true);
    expectMatches(wide, referenceSdpa(q, k, v, { ...top, window: { left: 2 ** 40 } }), top, runner.name);
    // Positions up to 2^31 + 1: a left side of 2^31 still hides key 0 from the last row.
    const atTop = { ...base, queryOffset: 0x7fffffff };
    expectError(() => runner.sdpa(q, k, v, { ...atTop, window: { left: 2 ** 31 } }), RangeError, /options\.window\.left/);
    // The most negative offset: row 0 sits at -2^31, so a right side of 2^31 + 199 (Sk - 1 - p)
    // bounds no row, and one of 2^31 would.
    const atBottom = { ...base, queryOffset: -0x80000000 };
    const far = runner.sdpa(q, k, v, { ...atBottom, window: { right: 2 ** 31 + 199 } }) as Got;
    expect(sameBits(far.output, (runner.sdpa(q, k, v, atBottom) as Got).output)).toBe(true);
    expectError(() => runner.sdpa(q, k, v, { ...atBottom, window: { right: 2 ** 31 } }), RangeError, /options\.window\.right/);
  });
});

describe.each(publicApis)('alibiSlopes [%s]', (_name, api) => {
  test('powers of two: 2^(-8(h+1)/H)', () => {
    expect(Array.from(api.alibiSlopes(8))).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((h) => 2 ** -h));
    expect(Array.from(api.alibiSlopes(1))).toEqual([2 ** -8]);
    const s16 = api.alibiSlopes(16);
    for (let h = 0; h < 16; h++) expect(s16[h]).toBe(Math.fround(Math.fround(2 ** -0.5) ** (h + 1)));
  });
  test('BLOOM\'s rule for other counts: the 8 slopes of 8 heads, then odd powers of 2^(-1/2)', () => {
    const s = api.alibiSlopes(12);
    expect(Array.from(s.subarray(0, 8))).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((h) => 2 ** -h));
    expect(Array.from(s.subarray(8))).toEqual([1, 3, 5, 7].map((p) => Math.fround(Math.fround(2 ** -0.5) ** p)));
    expect(api.alibiSlopes(5).length).toBe(5);
  });
  test('bad head counts', () => {
    expectError(() => api.alibiSlopes(0), RangeError, /heads/);
    expectError(() => api.alibiSlopes(2.5), RangeError, /heads/);
    expectError(() => api.alibiSlopes('8' as never), TypeError, /heads/);
  });
});

// ---------------------------------------------------------------------------------------------
// Errors: named, before anything is written, on both backends

describe.each(publicApis)('score modifiers: errors [%s]', (_name, api) => {
  const H = 2, S = 5, D = 4;
  const q = new Float32Array(H * S * D).fill(0.5), k = q.slice(), v = q.slice();
  const base = { heads: H, seqQ: S, headDim: D };
  const cases: Array<[string, Record<string, unknown>, typeof TypeError | typeof RangeError, RegExp]> = [
    ['window not an object', { window: 3 }, TypeError, /options\.window/],
    ['window unknown side', { window: { lefty: 2 } }, TypeError, /'lefty' in options\.window/],
    ['window.left negative', { window: { left: -1 } }, RangeError, /options\.window\.left/],
    ['window.left fractional', { window: { left: 1.5 } }, RangeError, /options\.window\.left/],
    ['window.right NaN', { window: { right: NaN } }, RangeError, /options\.window\.right/],
    ['window.right a string', { window: { right: '2' } }, TypeError, /options\.window\.right/],
    ['sinks too short', { sinks: new Float32Array(1) }, RangeError, /options\.sinks\.length to be H = 2/],
    ['sinks a Float64Array', { sinks: new Float64Array(2) }, TypeError, /options\.sinks/],
    ['sinks an array', { sinks: [0, 0] }, TypeError, /options\.sinks/],
    ['alibi too long', { alibi: new Float32Array(3) }, RangeError, /options\.alibi\.length/],
    ['alibi a number', { alibi: 0.5 }, TypeError, /options\.alibi/],
    ['lse wrong length', { lse: new Float32Array(H * S + 1) }, RangeError, /options\.lse\.length to be B\*H\*Sq/],
    ['lse a string', { lse: 'yes' }, TypeError, /options\.lse/],
    ['lse over q', { lse: q.subarray(0, H * S) }, RangeError, /options\.lse.*q/],
  ];
  test.each(cases)('%s', (_what, extra, cls, message) => {
    const out = new Float32Array(H * S * D).fill(7);
    expectError(() => api.scaledDotProductAttention(q, k, v, { ...base, out, ...extra } as never), cls, message);
    expect(out.every((x) => x === 7)).toBe(true);
  });
  test('lse overlapping out, and a sinks array under lse', () => {
    const buf = new Float32Array(H * S * D + H * S);
    const out = buf.subarray(0, H * S * D).fill(7);
    expectError(() => api.scaledDotProductAttention(q, k, v, { ...base, out, lse: buf.subarray(H * S * D - 1, H * S * D - 1 + H * S) }), RangeError, /options\.lse.*options\.out/);
    const sinks = new Float32Array(H * S + H);
    expectError(() => api.scaledDotProductAttention(q, k, v, { ...base, sinks: sinks.subarray(0, H), lse: sinks.subarray(1, 1 + H * S) }), RangeError, /options\.lse.*options\.sinks/);
    expect(out.every((x) => x === 7)).toBe(true);
  });
  test('async: the same errors, thrown before a Promise exists', () => {
    expectError(() => api.scaledDotProductAttentionAsync(q, k, v, { ...base, window: { left: -2 } } as never), RangeError, /options\.window\.left/);
  });
});

describe.runIf(nativeBinding)('score modifiers: the binding re-checks', () => {
  const b = nativeBinding!;
  const H = 2, Sq = 3, Sk = 4, D = 4;
  const q = new Float32Array(H * Sq * D), k = new Float32Array(H * Sk * D), v = k.slice();
  const dims = (wl = -1, wr = -1) => sdpaBindingDims([1, H, H, Sq, Sk, D, D, 0, 0, 1, 1, 1, 1, 0, wl, wr]);
  const call = (d: Int32Array, offsets: Int32Array | null, sinks: unknown, alibi: unknown, lse: unknown) =>
    b.sdpa(q, k, v, new Float32Array(H * Sq * D), d, 0.5, 0, null, offsets, null, null, null, sinks as never, alibi as never, lse as never);
  test('lengths and slots', () => {
    expectError(() => call(dims(-2), Int32Array.of(0), null, null, null), RangeError, /dims\.windowLeft/);
    expectError(() => call(dims(-1, -5), Int32Array.of(0), null, null, null), RangeError, /dims\.windowRight/);
    expectError(() => call(dims(2), null, null, null, null), RangeError, /offsets/);
    expectError(() => call(dims(), null, null, new Float32Array(H), null), RangeError, /offsets/);
    expectError(() => call(dims(), null, new Float32Array(H + 1), null, null), RangeError, /sinks\.length/);
    expectError(() => call(dims(), Int32Array.of(0), null, new Float32Array(1), null), RangeError, /alibi\.length/);
    expectError(() => call(dims(), null, null, null, new Float32Array(H * Sq - 1)), RangeError, /lse\.length/);
    expectError(() => call(dims(), null, new Float64Array(H), null, null), TypeError, /sinks/);
    expect(() => call(dims(1, 0), Int32Array.of(1), new Float32Array(H), new Float32Array(H), new Float32Array(H * Sq))).not.toThrow();
  });
});
