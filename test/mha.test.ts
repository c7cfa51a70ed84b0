// SPDX-License-Identifier: MIT
//
// MultiHeadAttention on every runner against a float64 reference written out below (it shares no
// code with lib/), for every combination of the forward options (causal, mask kinds, kvLengths,
// seqLens, context, needWeights / averageWeights, out), with the layer's shape rotating through
// GQA / MQA, headDim ≠ E/H, bias true / false / partly missing, and both weight layouts. Then the
// PyTorch nn.MultiheadAttention form against softmax((X·Wqᵀ+bq)(X·Wkᵀ+bk)ᵀ/√d)(X·Wvᵀ+bv)·Woᵀ + bo
// computed head by head, GPT-2's in-out c_attn form, and scratch reuse across calls.
import { Buffer } from 'node:buffer';
import { describe, expect, test, vi } from 'vitest';
import { expectAllClose, makeRng, normal, randInt, randn, randWeight, runners, type MhaLike, type Rng } from './helpers.js';
import type { MhaResult } from '../lib/index.js';

const TOL = { atol: 2e-5, rtol: 2e-4 };

// ---------------------------------------------------------------------------------------------
// The float64 reference

interface Shape {
  E: number;
  H: number;
  Hkv: number;
  Dh: number;
}

/** Weights in 'out-in' form: wq [H·Dh, E], wk wv [Hkv·Dh, E], wo [E, H·Dh]; biases may be absent (zero). */
interface RefWeights {
  wq: Float32Array; wk: Float32Array; wv: Float32Array; wo: Float32Array;
  bq?: Float32Array; bk?: Float32Array; bv?: Float32Array; bo?: Float32Array;
}

interface RefForward {
  B: number;
  S: number;
  Sk: number;
  causal: boolean;
  mask?: { data: Float32Array | Uint8Array; dims: number[] };
  kvLengths?: Int32Array;
  seqLens?: Int32Array;
  context?: Float32Array;
}

/** y[r, n] = sum_k x[r, k] · W[n, k] + b[n]  (W [N, K], 'out-in'), in float64. */
function project(x: ArrayLike<number>, rows: number, w: Float32Array, N: number, K: number, b?: Float32Array): Float64Array {
  const y = new Float64Array(rows * N);
  for (let r = 0; r < rows; r++) {
    for (let n = 0; n < N; n++) {
      let s = b ? b[n]! : 0;
      for (let k = 0; k < K; k++) s += x[r * K + k]! * w[n * K + k]!;
      y[r * N + n] = s;
    }
  }
  return y;
}

/** The layer, spelled out: returns the output [B, S, E] and the per-head weights [B, H, S, Sk]. */
function referenceMha(s: Shape, w: RefWeights, x: Float32Array, f: RefForward) {
  const { E, H, Hkv, Dh } = s;
  const { B, S, Sk } = f;
  const src = f.context ?? x;
  const Q = project(x, B * S, w.wq, H * Dh, E, w.bq);       // [B, S, H, Dh]
  const K = project(src, B * Sk, w.wk, Hkv * Dh, E, w.bk);  // [B, Sk, Hkv, Dh]
  const V = project(src, B * Sk, w.wv, Hkv * Dh, E, w.bv);
  const A = new Float64Array(B * S * H * Dh);               // [B, S, H, Dh]
  const P = new Float64Array(B * H * S * Sk);
  const mask = f.mask;
  const mdims = mask ? [...Array(4 - mask.dims.length).fill(1), ...mask.dims] : [1, 1, 1, 1];
  const maskAt = (b: number, h: number, i: number, j: number) => {
    const idx = [b, h, i, j].map((v, a) => (mdims[a] === 1 ? 0 : v));
    return mask!.data[((idx[0]! * mdims[1]! + idx[1]!) * mdims[2]! + idx[2]!) * mdims[3]! + idx[3]!]!;
  };
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / (H / Hkv));
      for (let i = 0; i < S; i++) {
        const sc = new Array<number>(Sk).fill(-Infinity);
        for (let j = 0; j < Sk; j++) {
          if (f.causal && j > i) continue;
          if (f.kvLengths && j >= f.kvLengths[b]!) continue;
          let add = 0;
          if (mask) {
            const m = maskAt(b, h, i, j);
            if (mask.data instanceof Uint8Array ? m === 0 : m === -Infinity) continue;
            if (mask.data instanceof Float32Array) add = m;
          }
          let dot = 0;
          for (let d = 0; d < Dh; d++) dot += Q[((b * S + i) * H + h) * Dh + d]! * K[((b * Sk + j) * Hkv + hk) * Dh + d]!;
          sc[j] = dot / Math.sqrt(Dh) + add;
        }
        const max = Math.max(...sc);
        if (max === -Infinity) continue;  // every key blocked: zero weights, zero attention output
        const e = sc.map((v) => Math.exp(v - max));
        const sum = e.reduce((a, c) => a + c, 0);
        for (let j = 0; j < Sk; j++) {
          const p = e[j]! / sum;
          P[((b * H + h) * S + i) * Sk + j] = p;
          for (let d = 0; d < Dh; d++) A[((b * S + i) * H + h) * Dh + d] += p * V[((b * Sk + j) * Hkv + hk) * Dh + d]!;
        }
      }
    }
  }
  const Y = project(A, B * S, w.wo, E, H * Dh, w.bo);
  if (f.seqLens) {
    for (let b = 0; b < B; b++) {
      for (let i = f.seqLens[b]!; i < S; i++) {
        Y.fill(0, (b * S + i) * E, (b * S + i + 1) * E);
        for (let h = 0; h < H; h++) P.fill(0, ((b * H + h) * S + i) * Sk, ((b * H + h) * S + i + 1) * Sk);
      }
    }
  }
  return { output: Y, weights: P };
}

function averageOverHeads(P: Float64Array, B: number, H: number, R: number): Float64Array {
  const out = new Float64Array(B * R);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let r = 0; r < R; r++) out[b * R + r] += P[(b * H + h) * R + r]! / H;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Weights and cases

/** [rows, cols] → [cols, rows]. */
function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c]!;
  return t;
}

function makeWeights(rng: Rng, s: Shape, biases: 'all' | 'none' | 'some'): RefWeights {
  const { E, H, Hkv, Dh } = s;
  const w: RefWeights = {
    wq: randWeight(rng, H * Dh, E), wk: randWeight(rng, Hkv * Dh, E), wv: randWeight(rng, Hkv * Dh, E), wo: randWeight(rng, E, H * Dh),
  };
  if (biases !== 'none') {
    w.bq = randn(rng, H * Dh);
    w.bv = randn(rng, Hkv * Dh);
    if (biases === 'all') {
      w.bk = randn(rng, Hkv * Dh);
      w.bo = randn(rng, E);
    }
  }
  return w;
}

/** The same weights as the layer's `weights` argument in the given layout. */
function layerWeights(s: Shape, w: RefWeights, layout: 'out-in' | 'in-out'): Record<string, Float32Array> {
  const { E, H, Hkv, Dh } = s;
  const t = (m: Float32Array, rows: number, cols: number) => (layout === 'out-in' ? m : transpose(m, rows, cols));
  const out: Record<string, Float32Array> = {
    wq: t(w.wq, H * Dh, E), wk: t(w.wk, Hkv * Dh, E), wv: t(w.wv, Hkv * Dh, E), wo: t(w.wo, E, H * Dh),
  };
  for (const key of ['bq', 'bk', 'bv', 'bo'] as const) if (w[key]) out[key] = w[key]!;
  return out;
}

const SHAPES: Array<Shape & { headDimGiven: boolean }> = [
  { E: 8, H: 2, Hkv: 2, Dh: 4, headDimGiven: false },   // plain multi-head
  { E: 12, H: 4, Hkv: 2, Dh: 3, headDimGiven: false },  // grouped-query
  { E: 12, H: 4, Hkv: 1, Dh: 3, headDimGiven: false },  // multi-query
  { E: 10, H: 2, Hkv: 2, Dh: 7, headDimGiven: true },   // headDim ≠ E / H
  { E: 16, H: 6, Hkv: 3, Dh: 5, headDimGiven: true },   // GQA and headDim ≠ E / H
  { E: 5, H: 1, Hkv: 1, Dh: 5, headDimGiven: false },   // one head
];

type MaskKind = 'none' | 'float [Sq,Sk]' | 'bool [B,1,1,Sk]' | 'float [B,H,Sq,Sk] with -inf';
type WeightsKind = 'none' | 'per-head' | 'averaged';

interface Combo {
  id: number;
  causal: boolean;
  mask: MaskKind;
  kvLengths: boolean;
  seqLens: boolean;
  context: boolean;
  weights: WeightsKind;
}

const combos: Combo[] = [];
for (const causal of [false, true]) {
  for (const mask of ['none', 'float [Sq,Sk]', 'bool [B,1,1,Sk]', 'float [B,H,Sq,Sk] with -inf'] as MaskKind[]) {
    for (const kvLengths of [false, true]) {
      for (const seqLens of [false, true]) {
        for (const context of [false, true]) {
          for (const weights of ['none', 'per-head', 'averaged'] as WeightsKind[]) {
            combos.push({ id: combos.length, causal, mask, kvLengths, seqLens, context, weights });
          }
        }
      }
    }
  }
}

const comboLabel = (c: Combo) =>
  `#${c.id} causal=${c.causal} mask=${c.mask} kvLengths=${c.kvLengths} seqLens=${c.seqLens} context=${c.context} weights=${c.weights}`;

/** Everything one case needs, built once and shared by the runners. */
function buildCase(c: Combo) {
  const rng = makeRng(0xa77e + c.id * 7919);
  const s = SHAPES[c.id % SHAPES.length]!;
  const layout = c.id % 2 ? 'in-out' : 'out-in';
  const biases = (['all', 'none', 'some'] as const)[Math.floor(c.id / 2) % 3]!;
  const B = randInt(rng, 1, 3);
  const S = randInt(rng, 1, 7);
  const Sk = c.context ? randInt(rng, 1, 9) : S;
  const w = makeWeights(rng, s, biases);
  const x = randn(rng, B * S * s.E, c.id % 3);  // sometimes a view with a nonzero byteOffset
  const f: RefForward = { B, S, Sk, causal: c.causal };
  if (c.context) f.context = randn(rng, B * Sk * s.E);
  if (c.kvLengths) f.kvLengths = Int32Array.from({ length: B }, (_, b) => (b === 1 ? 0 : randInt(rng, 0, Sk)));
  if (c.seqLens) f.seqLens = Int32Array.from({ length: B }, () => randInt(rng, 0, S));
  if (c.mask === 'float [Sq,Sk]') f.mask = { data: randn(rng, S * Sk), dims: [S, Sk] };
  if (c.mask === 'bool [B,1,1,Sk]') f.mask = { data: Uint8Array.from({ length: B * Sk }, () => (rng() < 0.7 ? 1 : 0)), dims: [B, 1, 1, Sk] };
  if (c.mask === 'float [B,H,Sq,Sk] with -inf') {
    const data = Float32Array.from({ length: B * s.H * S * Sk }, () => (rng() < 0.25 ? -Infinity : normal(rng)));
    f.mask = { data, dims: [B, s.H, S, Sk] };
  }
  const config = {
    embedDim: s.E, numHeads: s.H, ...(s.Hkv !== s.H || c.id % 4 === 0 ? { numKvHeads: s.Hkv } : {}),
    ...(s.headDimGiven ? { headDim: s.Dh } : {}), ...(biases === 'none' && c.id % 4 < 2 ? { bias: false } : {}),
    weights: layerWeights(s, w, layout), ...(layout === 'in-out' || c.id % 3 === 0 ? { weightLayout: layout } : {}),
  };
  const ref = referenceMha(s, w, x, f);
  const options: Record<string, unknown> = { batch: B, causal: c.causal };
  if (c.id % 2) options.seqLen = S;  // given or derived
  for (const key of ['mask', 'kvLengths', 'seqLens', 'context'] as const) if (f[key]) options[key] = f[key];
  if (c.weights !== 'none') options.needWeights = true;
  if (c.weights === 'averaged') options.averageWeights = true;
  const wantWeights = c.weights === 'averaged' ? averageOverHeads(ref.weights, B, s.H, S * Sk) : ref.weights;
  return { s, B, S, Sk, x, config, options, ref, wantWeights, useOut: c.id % 5 === 0 };
}

const built = new Map<number, ReturnType<typeof buildCase>>();
const caseOf = (c: Combo) => built.get(c.id) ?? (built.set(c.id, buildCase(c)), built.get(c.id)!);

const expectClose = (got: Float32Array, want: Float64Array, what: string) => expectAllClose(got, want, what, TOL);

describe.each(runners)('MultiHeadAttention vs float64 reference [$name]', (r) => {
  test.each(combos.map((c) => [comboLabel(c), c] as const))('%s', (_, c) => {
    const k = caseOf(c);
    const layer = r.newMha(k.config);
    const options = { ...k.options };
    const out = new Float32Array(k.B * k.S * k.s.E).fill(NaN);
    if (k.useOut) options.out = out;
    const res = layer.forward(k.x, options);
    const output = c.weights === 'none' ? (res as Float32Array) : (res as MhaResult).output;
    if (k.useOut) expect(output).toBe(out);
    expectClose(output, k.ref.output, 'output');
    if (c.weights !== 'none') {
      const weights = (res as MhaResult).weights;
      expect(weights.length).toBe(c.weights === 'averaged' ? k.B * k.S * k.Sk : k.B * k.s.H * k.S * k.Sk);
      expectClose(weights, k.wantWeights, 'weights');
    } else {
      expect(res).toBeInstanceOf(Float32Array);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// PyTorch nn.MultiheadAttention form, checked against the formula computed head by head

/** C[m, n] = sum_k A[m, k] · Bt[n, k] (A·Bᵀ), plain arrays of rows. */
const matMulT = (A: number[][], Bt: number[][]) => A.map((a) => Bt.map((b) => a.reduce((s, v, k) => s + v * b[k]!, 0)));
const rowsOf = (a: ArrayLike<number>, rows: number, cols: number, r0 = 0) =>
  Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => a[(r0 + r) * cols + c]!));
const addRow = (A: number[][], b: ArrayLike<number>, off = 0) => A.map((row) => row.map((v, j) => v + b[off + j]!));
const softmaxRows = (A: number[][]) => A.map((row) => {
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const s = e.reduce((a, c) => a + c, 0);
  return e.map((v) => v / s);
});
const cols = (A: number[][], c0: number, n: number) => A.map((row) => row.slice(c0, c0 + n));
const T = (A: number[][]) => A[0]!.map((_, j) => A.map((row) => row[j]!));

describe.each(runners)('PyTorch and GPT-2 weight forms [$name]', (r) => {
  const E = 12, H = 3, Dh = 4, S = 5;
  const rng = makeRng(0x7017);
  const inProjWeight = randWeight(rng, 3 * E, E);  // [3E, E] = [Wq; Wk; Wv]
  const inProjBias = randn(rng, 3 * E);
  const outProjWeight = randWeight(rng, E, E);
  const outProjBias = randn(rng, E);
  const x = randn(rng, S * E);

  // Expected: per head h, softmax((X·Wqᵀ+bq)_h (X·Wkᵀ+bk)_hᵀ / √Dh) (X·Wvᵀ+bv)_h, heads concatenated, ·Woᵀ + bo.
  const X = rowsOf(x, S, E);
  const Qf = addRow(matMulT(X, rowsOf(inProjWeight, E, E, 0)), inProjBias, 0);
  const Kf = addRow(matMulT(X, rowsOf(inProjWeight, E, E, E)), inProjBias, E);
  const Vf = addRow(matMulT(X, rowsOf(inProjWeight, E, E, 2 * E)), inProjBias, 2 * E);
  const heads = Array.from({ length: H }, (_, h) => {
    const scores = matMulT(cols(Qf, h * Dh, Dh), cols(Kf, h * Dh, Dh)).map((row) => row.map((v) => v / Math.sqrt(Dh)));
    return matMulT(softmaxRows(scores), T(cols(Vf, h * Dh, Dh)));  // [S, Dh]
  });
  const concat = Array.from({ length: S }, (_, i) => heads.flatMap((hd) => hd[i]!));
  const expected = Float64Array.from(addRow(matMulT(concat, rowsOf(outProjWeight, E, E)), outProjBias).flat());

  test('inProjWeight [3E, E], out-in (PyTorch state_dict)', () => {
    const layer = r.newMha({ embedDim: E, numHeads: H, weights: { inProjWeight, inProjBias, outProjWeight, outProjBias } });
    expectClose(layer.forward(x) as Float32Array, expected, 'output');
  });

  test('the same weights split into wq, wk, wv give the same output', () => {
    const layer = r.newMha({
      embedDim: E, numHeads: H,
      weights: {
        wq: inProjWeight.subarray(0, E * E), wk: inProjWeight.subarray(E * E, 2 * E * E), wv: inProjWeight.subarray(2 * E * E),
        bq: inProjBias.subarray(0, E), bk: inProjBias.subarray(E, 2 * E), bv: inProjBias.subarray(2 * E),
        wo: outProjWeight, bo: outProjBias,
      },
    });
    expectClose(layer.forward(x) as Float32Array, expected, 'output');
  });

  test("inProjWeight [E, 3E] with weightLayout 'in-out' (GPT-2 c_attn, c_proj)", () => {
    const cAttn = transpose(inProjWeight, 3 * E, E);  // [E, 3E]: x·c_attn = [q | k | v]
    const cProj = transpose(outProjWeight, E, E);
    const layer = r.newMha({
      embedDim: E, numHeads: H, weightLayout: 'in-out',
      weights: { inProjWeight: cAttn, inProjBias, outProjWeight: cProj, outProjBias },
    });
    expectClose(layer.forward(x) as Float32Array, expected, 'output');
  });

  test('weights are copied at construction', () => {
    const w = inProjWeight.slice();
    const layer = r.newMha({ embedDim: E, numHeads: H, weights: { inProjWeight: w, inProjBias, outProjWeight, outProjBias } });
    w.fill(0);
    expectClose(layer.forward(x) as Float32Array, expected, 'output');
  });
});

// ---------------------------------------------------------------------------------------------
// Scratch reuse

describe.each(runners)('scratch buffers [$name]', (r) => {
  test('calls of growing and shrinking size match fresh layers; outputs are never aliased', () => {
    const s: Shape = { E: 12, H: 4, Hkv: 2, Dh: 3 };
    const rng = makeRng(99);
    const w = makeWeights(rng, s, 'all');
    const config = { embedDim: s.E, numHeads: s.H, numKvHeads: s.Hkv, weights: layerWeights(s, w, 'out-in') };
    const layer: MhaLike = r.newMha(config);
    const calls = [
      { B: 1, S: 3 }, { B: 2, S: 17 }, { B: 1, S: 2 }, { B: 3, S: 40 }, { B: 1, S: 3 },
    ].map(({ B, S }) => ({ B, S, x: randn(rng, B * S * s.E) }));
    const results = calls.map((c) => layer.forward(c.x, { batch: c.B, causal: true }) as Float32Array);
    calls.forEach((c, i) => {
      const fresh = r.newMha(config).forward(c.x, { batch: c.B, causal: true }) as Float32Array;
      expect(results[i]).toEqual(fresh);
      expectClose(results[i]!, referenceMha(s, w, c.x, { B: c.B, S: c.S, Sk: c.S, causal: true }).output, 'output');
    });
  });
});

// Scratch is shared by every layer of a thread: layers of different shapes, called in turn, must
// not see each other's intermediates (async calls: test/async.test.ts).
describe.each(runners)('scratch shared across layers [$name]', (r) => {
  test('two layers of different shapes, interleaved, match their reference', () => {
    const rng = makeRng(5);
    const shapes: Shape[] = [{ E: 12, H: 4, Hkv: 2, Dh: 3 }, { E: 20, H: 5, Hkv: 5, Dh: 6 }];
    const weights = shapes.map((s) => makeWeights(rng, s, 'all'));
    const layers = shapes.map((s, i) => r.newMha({ embedDim: s.E, numHeads: s.H, numKvHeads: s.Hkv, headDim: s.Dh,
      weights: layerWeights(s, weights[i]!, 'out-in') }));
    const calls = [0, 1, 0, 1, 1, 0].map((l, c) => ({ l, S: 3 + 7 * c, x: randn(rng, (3 + 7 * c) * shapes[l]!.E) }));
    const want = calls.map((c) => referenceMha(shapes[c.l]!, weights[c.l]!, c.x, { B: 1, S: c.S, Sk: c.S, causal: true }).output);
    calls.forEach((c, i) => expectClose(layers[c.l]!.forward(c.x, { causal: true }) as Float32Array, want[i]!, `call ${i}`));
  });
});

// The layer's output is allocated without zeroing (the output projection writes every row). Here
// that memory comes back full of NaN: any element a kernel skipped would show.
describe.each(runners)('unzeroed output memory [$name]', (r) => {
  test('every element of a new output is written, with and without a cache, padded rows included', () => {
    const s: Shape = { E: 12, H: 4, Hkv: 2, Dh: 3 };
    const rng = makeRng(7);
    const w = makeWeights(rng, s, 'all');
    const layer: MhaLike = r.newMha({ embedDim: s.E, numHeads: s.H, numKvHeads: s.Hkv, weights: layerWeights(s, w, 'out-in') });
    const B = 2, S = 5;
    const x = randn(rng, B * S * s.E);
    const seqLens = Int32Array.of(5, 3);
    const real = Buffer.allocUnsafeSlow;
    const poisoned = vi.spyOn(Buffer, 'allocUnsafeSlow').mockImplementation((size: number) => real(size).fill(0xff)); // 0xffffffff: NaN
    try {
      const y = layer.forward(x, { batch: B, causal: true, seqLens }) as Float32Array;
      expectClose(y, referenceMha(s, w, x, { B, S, Sk: S, causal: true, seqLens }).output, 'output');
      const cache = layer.createCache({ batch: B, maxLength: 8 });
      const yc = layer.forward(x, { batch: B, cache, seqLens }) as Float32Array;
      expectClose(yc, Float64Array.from(y), 'output with a cache');
      expect(poisoned).toHaveBeenCalledTimes(2);
    } finally {
      poisoned.mockRestore();
    }
  });
});
