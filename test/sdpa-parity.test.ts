// SPDX-License-Identifier: MIT
//
// Randomized parity: every backend's scaledDotProductAttention against the float64 reference
// (test/reference.ts), within atol 1e-5 + rtol 1e-4, on ~150 seeded cases covering shapes (GQA, MQA,
// Sq != Sk, multi-block Sk >= 256, odd D/Dv), both layouts, every mask kind and broadcast, causal
// alignments, queryOffset, kvLengths, softcap, custom scale, fully blocked rows, input views with a
// nonzero byteOffset, and the optional weights/scores outputs.

import { describe, expect, test } from 'vitest';
import { allclose, makeRng, pick, randInt, randn, runners, type Rng } from './helpers.js';
import { referenceSdpa, type RefOptions } from './reference.js';

const SEED = 0x5eed;
const TOL = { atol: 1e-5, rtol: 1e-4 };
/** Upper bound on B*H*Sq*Sk*(D+Dv) per case: keeps the whole file well under 20 s on the js backend. */
const MAX_COST = 8e6;

type CausalKind = 'none' | 'true' | 'bottom-right' | 'top-left' | 'offset' | 'offsets' | 'top-left+offset';

interface Case {
  id: number;
  seed: number;
  B: number;
  H: number;
  Hkv: number;
  Sq: number;
  Sk: number;
  D: number;
  Dv: number;
  layout: 'bhsd' | 'bshd';
  scale: number | undefined;
  softcap: number | undefined;
  causal: CausalKind;
  mask: 'none' | 'float' | 'bool';
  /** Mask dims as passed (rank 2..4), with 1 where broadcast. */
  maskDims: number[];
  /** Block one whole (b, h, i) row through the mask (needs full Sq and Sk dims). */
  blockRow: boolean;
  kvLengths: 'none' | 'random' | 'with-zero';
  weights: boolean;
  scores: boolean;
  /** Element offset of every input view (0 = a fresh array). */
  view: number;
}

const HEADS: ReadonlyArray<[number, number]> = [
  [1, 1], [2, 2], [4, 4], [4, 2], [4, 1], [3, 1], [6, 3], [8, 2], [8, 1], [8, 8],
];
const DIMS = [1, 3, 8, 17, 64, 67, 128] as const;
const CAUSAL: readonly CausalKind[] = [
  'none', 'none', 'none', 'true', 'bottom-right', 'top-left', 'top-left', 'offset', 'offsets', 'top-left+offset',
];

function seqLen(rng: Rng): number {
  const r = rng();
  if (r < 0.15) return 1;
  if (r < 0.6) return randInt(rng, 2, 40);
  if (r < 0.85) return randInt(rng, 41, 160);
  return randInt(rng, 250, 300); // crosses the 256-key block
}

const cost = (c: Pick<Case, 'B' | 'H' | 'Sq' | 'Sk' | 'D' | 'Dv'>) => c.B * c.H * c.Sq * c.Sk * (c.D + c.Dv);

function makeCases(n: number): Case[] {
  const rng = makeRng(SEED);
  const cases: Case[] = [];
  for (let id = 0; id < n; id++) {
    let B = randInt(rng, 1, 3);
    let [H, Hkv] = pick(rng, HEADS);
    let Sq = seqLen(rng);
    let Sk = rng() < 0.3 ? Sq : seqLen(rng);
    let D = pick(rng, DIMS);
    let Dv = rng() < 0.6 ? D : pick(rng, DIMS);
    // Shrink until affordable: heads, batch, then head sizes, then the shorter sequence.
    while (cost({ B, H, Sq, Sk, D, Dv }) > MAX_COST) {
      if (H > 2 && H >= B) {
        H >>= 1;
        if (Hkv > H || H % Hkv !== 0) Hkv = 1;
      } else if (B > 1) B--;
      else if (D + Dv > 40) [D, Dv] = [D > 17 ? 17 : D, Dv > 17 ? 8 : Dv];
      else if (Sq < Sk) Sq = Math.max(1, Sq >> 1);
      else Sk = Math.max(1, Sk >> 1);
    }

    const mask = pick(rng, ['none', 'none', 'float', 'float', 'bool'] as const);
    // Rank 2..4, right-aligned; each dim full or 1.
    let maskDims: number[] = [];
    if (mask !== 'none') {
      const rank = randInt(rng, 2, 4);
      const full = [B, H, Sq, Sk].slice(4 - rank);
      maskDims = full.map((d) => (rng() < 0.3 ? 1 : d));
    }
    const fullRow = maskDims.length >= 2 && maskDims.at(-1) === Sk && maskDims.at(-2) === Sq;
    const area = B * H * Sq * Sk;
    cases.push({
      id,
      seed: (SEED * 7919 + id * 104729) >>> 0,
      B, H, Hkv, Sq, Sk, D, Dv,
      layout: rng() < 0.5 ? 'bhsd' : 'bshd',
      scale: rng() < 0.2 ? pick(rng, [0.05, 0.3, 1]) : undefined,
      softcap: rng() < 0.2 ? pick(rng, [1, 5, 30]) : undefined,
      causal: pick(rng, CAUSAL),
      mask,
      maskDims,
      blockRow: fullRow && rng() < 0.4,
      kvLengths: rng() < 0.7 ? 'none' : rng() < 0.5 ? 'random' : 'with-zero',
      weights: area <= 2e5 && rng() < 0.3,
      scores: area <= 2e5 && rng() < 0.3,
      view: rng() < 0.3 ? randInt(rng, 1, 7) : 0,
    });
  }
  return cases;
}

/** A few hand-picked cases that must always be present, then the random ones. */
function allCases(): Case[] {
  const base = {
    seed: 0, scale: undefined, softcap: undefined, maskDims: [] as number[], blockRow: false,
    causal: 'none' as const, kvLengths: 'none' as const, weights: false, scores: false, view: 0, mask: 'none' as const, layout: 'bhsd' as const,
  };
  const fixed: Omit<Case, 'id'>[] = [
    { ...base, B: 1, H: 2, Hkv: 1, Sq: 300, Sk: 300, D: 8, Dv: 8, causal: 'true', weights: true, scores: true },
    { ...base, B: 2, H: 2, Hkv: 2, Sq: 3, Sk: 290, D: 17, Dv: 3, causal: 'true', kvLengths: 'with-zero', layout: 'bshd' },
    { ...base, B: 1, H: 1, Hkv: 1, Sq: 280, Sk: 270, D: 3, Dv: 8, causal: 'true', scores: true, weights: true },
    { ...base, B: 2, H: 4, Hkv: 2, Sq: 20, Sk: 600, D: 8, Dv: 8, mask: 'float', maskDims: [2, 1, 1, 600] },
    { ...base, B: 1, H: 4, Hkv: 4, Sq: 17, Sk: 40, D: 64, Dv: 64, mask: 'bool', maskDims: [17, 40], blockRow: true, weights: true },
    { ...base, B: 3, H: 2, Hkv: 1, Sq: 8, Sk: 8, D: 1, Dv: 1, mask: 'float', maskDims: [3, 2, 8, 8], blockRow: true, causal: 'top-left', view: 5 },
    { ...base, B: 2, H: 8, Hkv: 1, Sq: 1, Sk: 257, D: 128, Dv: 128, causal: 'true', kvLengths: 'random' },
    // Decode tiles spanning several kv heads (native/attention.cc): more kv heads than one tile holds
    // (70 and 45), GQA groups of 3, split over keys, ragged lengths, a per-head mask.
    { ...base, B: 2, H: 70, Hkv: 70, Sq: 1, Sk: 1500, D: 24, Dv: 19, layout: 'bshd', kvLengths: 'random' },
    { ...base, B: 1, H: 135, Hkv: 45, Sq: 1, Sk: 700, D: 16, Dv: 16, layout: 'bshd', mask: 'float', maskDims: [1, 135, 1, 700], softcap: 20 },
  ];
  const n = 150 - fixed.length;
  return [...fixed.map((c, i) => ({ ...c, id: n + i, seed: 1000 + i })), ...makeCases(n)].sort((a, b) => a.id - b.id);
}

const CASES = allCases();

/** Case name: readable, unique. */
function caseName(c: Case): string {
  const parts = [
    `#${c.id}`, `B=${c.B}`, `H=${c.H}/${c.Hkv}`, `Sq=${c.Sq}`, `Sk=${c.Sk}`, `D=${c.D}/${c.Dv}`, c.layout,
  ];
  if (c.causal !== 'none') parts.push(`causal=${c.causal}`);
  if (c.mask !== 'none') parts.push(`${c.mask}[${c.maskDims.join(',')}]${c.blockRow ? '+row' : ''}`);
  if (c.kvLengths !== 'none') parts.push(`kvLengths=${c.kvLengths}`);
  if (c.scale !== undefined) parts.push(`scale=${c.scale}`);
  if (c.softcap !== undefined) parts.push(`softcap=${c.softcap}`);
  if (c.view) parts.push(`view+${c.view}`);
  if (c.weights) parts.push('weights');
  if (c.scores) parts.push('scores');
  return parts.join(' ');
}

interface Inputs {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  options: RefOptions & Record<string, unknown>;
}

/** Deterministic inputs and public options for a case. */
function makeInputs(c: Case): Inputs {
  const rng = makeRng(c.seed);
  const { B, H, Hkv, Sq, Sk, D, Dv } = c;
  const q = randn(rng, B * H * Sq * D, c.view);
  const k = randn(rng, B * Hkv * Sk * D, c.view);
  const v = randn(rng, B * Hkv * Sk * Dv, c.view);
  const options: RefOptions & Record<string, unknown> = {
    batch: B, heads: H, kvHeads: Hkv, seqQ: Sq, seqK: Sk, headDim: D, valueDim: Dv, layout: c.layout,
  };
  if (c.scale !== undefined) options.scale = c.scale;
  if (c.softcap !== undefined) options.softcap = c.softcap;
  switch (c.causal) {
    case 'none': break;
    case 'true': options.causal = true; break;
    case 'bottom-right': options.causal = 'bottom-right'; break;
    case 'top-left': options.causal = 'top-left'; break;
    case 'offset': options.queryOffset = randInt(rng, 0, Math.max(0, Sk - 1)); break;
    case 'offsets': options.queryOffset = Int32Array.from({ length: B }, () => randInt(rng, 0, Sk)); break;
    case 'top-left+offset': options.causal = 'top-left'; options.queryOffset = randInt(rng, 0, Sk); break;
  }
  if (c.mask !== 'none') {
    const n = c.maskDims.reduce((a, b) => a * b, 1);
    const data = c.mask === 'float' ? new Float32Array(n + c.view).subarray(c.view) : new Uint8Array(n);
    for (let x = 0; x < n; x++) {
      const r = rng();
      if (c.mask === 'bool') data[x] = r < 0.8 ? 1 : 0;
      else data[x] = r < 0.15 ? -Infinity : 2 * (rng() - 0.5) * 3;
    }
    if (c.blockRow) {
      // Block a whole (b, h, i) row: the last [Sq, Sk] plane's row i0 in every leading slice.
      const i0 = randInt(rng, 0, c.Sq - 1);
      for (let base = 0; base < n; base += c.Sq * c.Sk) {
        for (let j = 0; j < c.Sk; j++) data[base + i0 * c.Sk + j] = c.mask === 'float' ? -Infinity : 0;
      }
    }
    options.mask = { data, dims: c.maskDims };
  }
  if (c.kvLengths !== 'none') {
    const lens = Int32Array.from({ length: B }, () => randInt(rng, 0, Sk));
    if (c.kvLengths === 'with-zero') lens[randInt(rng, 0, B - 1)] = 0;
    options.kvLengths = lens;
  }
  if (c.weights) options.weights = true;
  if (c.scores) options.scores = true;
  return { q, k, v, options };
}

/** The options as text for a failure message (typed arrays summarized unless short). */
function describeOptions(o: Record<string, unknown>): string {
  return JSON.stringify(o, (_key, val) => {
    if (ArrayBuffer.isView(val)) {
      const a = val as unknown as ArrayLike<number>;
      return a.length <= 8 ? `${val.constructor.name}[${Array.from(a).join(',')}]` : `${val.constructor.name}(${a.length})`;
    }
    return val;
  });
}

// The reference of each case is computed once and shared by all runners.
const refCache = new Map<number, ReturnType<typeof referenceSdpa>>();
function reference(c: Case, inp: Inputs) {
  let r = refCache.get(c.id);
  if (!r) {
    r = referenceSdpa(inp.q, inp.k, inp.v, inp.options);
    refCache.set(c.id, r);
  }
  return r;
}

describe.each(runners)('sdpa parity [$name]', (runner) => {
  test.each(CASES.map((c) => [caseName(c), c] as const))('%s', (_name, c) => {
    const inp = makeInputs(c);
    const want = reference(c, inp);
    const res = runner.sdpa(inp.q, inp.k, inp.v, inp.options);
    const got = res instanceof Float32Array ? { output: res } : res;
    const where = `${runner.name} ${caseName(c)}\n  options: ${describeOptions(inp.options)}`;

    const checks: Array<[string, Float32Array | undefined, Float64Array]> = [['out', got.output, want.out]];
    if (c.weights) checks.push(['weights', got.weights, want.weights]);
    if (c.scores) checks.push(['scores', got.scores, want.scores]);
    for (const [what, g, w] of checks) {
      expect(g, `${what} missing: ${where}`).toBeInstanceOf(Float32Array);
      const r = allclose(g!, w, TOL);
      const at = r.index >= 0 ? ` first bad index ${r.index}: got ${g![r.index]} want ${w[r.index]}` : '';
      expect(r.ok, `${what} mismatch: ${where}\n  maxAbs=${r.maxAbs.toExponential(2)} maxRel=${r.maxRel.toExponential(2)}${at}`).toBe(true);
    }
    if (c.weights) {
      for (let x = 0; x < got.weights!.length; x++) {
        if (Number.isNaN(got.weights![x])) expect.fail(`NaN in weights at ${x}: ${where}`);
      }
    }
    for (let x = 0; x < got.output.length; x++) {
      if (Number.isNaN(got.output[x])) expect.fail(`NaN in out at ${x}: ${where}`);
    }
  });
});

test('the case grid covers what it claims', () => {
  const has = (f: (c: Case) => boolean) => CASES.some(f);
  expect(CASES.length).toBeGreaterThanOrEqual(140);
  expect(has((c) => c.Hkv === 1 && c.H > 1)).toBe(true);
  expect(has((c) => c.Hkv > 1 && c.Hkv < c.H)).toBe(true);
  expect(has((c) => c.Sq > c.Sk)).toBe(true);
  expect(has((c) => c.Sk >= 256 && c.mask !== 'none')).toBe(true);
  expect(has((c) => c.Dv !== c.D)).toBe(true);
  expect(has((c) => c.layout === 'bshd' && c.causal !== 'none')).toBe(true);
  expect(has((c) => c.blockRow)).toBe(true);
  expect(has((c) => c.kvLengths === 'with-zero')).toBe(true);
  for (const kind of ['none', 'true', 'bottom-right', 'top-left', 'offset', 'offsets', 'top-left+offset']) {
    expect(has((c) => c.causal === kind), kind).toBe(true);
  }
  for (const rank of [2, 3, 4]) expect(has((c) => c.maskDims.length === rank), `mask rank ${rank}`).toBe(true);
  expect(has((c) => c.view > 0)).toBe(true);
  expect(has((c) => c.softcap !== undefined && c.mask === 'float')).toBe(true);
});
