// applyRotaryEmbedding and rotaryFrequencies (DESIGN.md "Positions and score modifiers"), on js
// and every native kernel set this machine runs, against the float64 references of
// test/rope-reference.ts: both styles, partial rotary, every scaling, explicit invFreq, the
// attention factor, positions as a start / S shared / B·S, both layouts, in place and into out,
// long positions; the norm + rotation plans the layer runs, straight on each backend; async and
// abort; every bad input (nothing written).
import { describe, expect, test } from 'vitest';
import * as N from '../lib/index.js';
import * as J from '../lib/js.js';
import type { RopeSettings, RotaryEmbeddingOptions } from '../lib/index.js';
import { jsBackend } from '../lib/backend/js.js';
import { nativeBackend } from '../lib/backend/native.js';
import { nativeBinding } from '../lib/backend/select.js';
import type { RopePlan } from '../lib/plan.js';
import { expectAllClose, expectError, makeRng, nativeKernelSets, randn, withSimd } from './helpers.js';
import { referenceFrequencies, referenceRope } from './rope-reference.js';

const TOL = { atol: 2e-6, rtol: 2e-6 };

type Apply = (x: Float32Array, o: RotaryEmbeddingOptions) => Float32Array;
const faces: Array<{ name: string; apply: Apply }> = [
  { name: 'js', apply: J.applyRotaryEmbedding },
  ...nativeKernelSets.map((set) => ({ name: `native-${set}`, apply: ((x, o) => withSimd(set, () => N.applyRotaryEmbedding(x, o))) as Apply })),
];

const llama3: RopeSettings = { theta: 500000, scaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 } };
const yarnOss: RopeSettings = { theta: 150000, scaling: { type: 'yarn', factor: 32, originalMaxPositions: 4096, betaFast: 32, betaSlow: 1, truncate: false } };
const settings: Array<[string, number, RopeSettings]> = [
  ['default half', 64, {}],
  ['interleaved (GPT-J: 64 of 256)', 256, { rotaryDim: 64, style: 'interleaved' }],
  ['partial half (NeoX 25%)', 32, { rotaryDim: 8 }],
  ['linear scaling', 16, { theta: 1e6, scaling: { type: 'linear', factor: 8 } }],
  ['llama3 scaling', 128, llama3],
  ['yarn (gpt-oss)', 64, yarnOss],
  ['yarn truncated, default betas', 64, { theta: 10000, scaling: { type: 'yarn', factor: 4, originalMaxPositions: 2048 } }],
  ['explicit invFreq + attentionFactor', 8, { invFreq: Float32Array.of(1, 0.1, 0.01, 0.001), attentionFactor: 1.25 }],
  ['odd width tail (D = 22)', 22, { theta: 10000 }],
];

describe('rotaryFrequencies', () => {
  test('hand-computed values', () => {
    expect(Array.from(N.rotaryFrequencies(4).invFreq)).toEqual([1, 0.01]);
    expect(Array.from(N.rotaryFrequencies(4, { scaling: { type: 'linear', factor: 2 } }).invFreq)).toEqual([0.5, 0.005]);
    expect(N.rotaryFrequencies(64, yarnOss).attentionFactor).toBeCloseTo(0.1 * Math.log(32) + 1, 15);
    expect(N.rotaryFrequencies(8, { rotaryDim: 4, style: 'interleaved' })).toMatchObject({ rotaryDim: 4, style: 'interleaved', attentionFactor: 1 });
  });
  test.each(settings)('%s: equals the reference', (_name, D, rope) => {
    const got = N.rotaryFrequencies(D, rope);
    const want = referenceFrequencies(D, rope);
    expect(got.invFreq.length).toBe(want.invFreq.length);
    for (let t = 0; t < got.invFreq.length; t++) expect(got.invFreq[t]).toBeCloseTo(want.invFreq[t]!, 14);
    expect(got.attentionFactor).toBeCloseTo(want.attentionFactor, 14);
  });
  test('llama3 keeps high frequencies, divides low ones by factor', () => {
    const base = N.rotaryFrequencies(128, { theta: 500000 }).invFreq;
    const scaled = N.rotaryFrequencies(128, llama3).invFreq;
    expect(scaled[0]).toBe(base[0]);
    expect(scaled[63]).toBeCloseTo(base[63]! / 8, 20);
  });
});

describe.each(faces)('$name', ({ apply }) => {
  test.each(settings)('%s: both layouts, positions start / shared / per sequence, into out and in place', (_name, D, rope) => {
    const B = 2, H = 3, S = 5;
    const rng = makeRng(D);
    for (const layout of ['bhsd', 'bshd'] as const) {
      const x = randn(rng, B * H * S * D);
      const perSeq = Int32Array.from({ length: B * S }, (_, i) => 3 * i + 1);
      const shared = Int32Array.from({ length: S }, (_, i) => 7 + i * i);
      const cases: Array<[RotaryEmbeddingOptions['positions'], ArrayLike<number>]> = [
        [undefined, Int32Array.from({ length: B * S }, (_, i) => i % S)],
        [11, Int32Array.from({ length: B * S }, (_, i) => 11 + (i % S))],
        [shared, Int32Array.from({ length: B * S }, (_, i) => shared[i % S]!)],
        [perSeq, perSeq],
      ];
      for (const [positions, flat] of cases) {
        const want = referenceRope(x, B, H, S, D, layout, flat, rope);
        const options: RotaryEmbeddingOptions = { batch: B, heads: H, headDim: D, layout, rope };
        if (positions !== undefined) options.positions = positions;
        const copy = x.slice();
        const out = apply(x, options);
        expect(out).not.toBe(x);
        expect(x).toEqual(copy);
        expectAllClose(out, want, `${layout} into a new array`, TOL);
        const inPlace = x.slice();
        expect(apply(inPlace, { ...options, out: inPlace })).toBe(inPlace);
        expectAllClose(inPlace, want, `${layout} in place`, TOL);
      }
    }
  });

  test('long positions (1e5) keep their accuracy; a float32 angle would not', () => {
    const D = 128, S = 4;
    const x = randn(makeRng(5), S * D);
    const positions = Int32Array.of(100000, 100001, 123457, 2 ** 20 + 3);
    const want = referenceRope(x, 1, 1, S, D, 'bhsd', positions, llama3);
    expectAllClose(apply(x, { heads: 1, headDim: D, positions, rope: llama3 }), want, 'long positions', TOL);
    // The same rotation with angles rounded to float32 first is visibly off.
    const f = referenceFrequencies(D, llama3).invFreq;
    let worst = 0;
    for (let t = 0; t < f.length; t++) worst = Math.max(worst, Math.abs(Math.fround(100000 * Math.fround(f[t]!)) - 100000 * f[t]!));
    expect(worst).toBeGreaterThan(1e-3);
  });
});

describe('RopePlan on each backend: the layer\'s norm + rotation', () => {
  const backends = [['js', jsBackend] as const, ...(nativeBinding ? nativeKernelSets.map((s) => [`native-${s}`, nativeBackend(nativeBinding!)] as const) : [])];
  const sets = ['js', ...nativeKernelSets];
  test.each(backends.map((b, i) => [b[0], b[1], sets[i]!] as const))('%s', (_name, backend, set) => {
    const B = 2, S = 3, H = 4, D = 24;
    const rng = makeRng(9);
    for (const span of ['head', 'all'] as const) {
      for (const rotate of [false, true]) {
        const x = randn(rng, B * S * H * D);
        const norm = Float32Array.from(randn(rng, span === 'head' ? D : H * D), (v) => 0.1 * v);
        const fr = N.rotaryFrequencies(D, { rotaryDim: 16 });
        const positions = Int32Array.from({ length: B * S }, (_, i) => 5 * i);
        const plan: RopePlan = {
          x, out: new Float32Array(x.length), B, S, H, D, strides: [S * H * D, H * D, D],
          positions: rotate ? positions : null, invFreq: rotate ? fr.invFreq : new Float64Array(0), rotaryDim: rotate ? 16 : 0,
          interleaved: false, attentionFactor: 1, norm, normSpan: span, normEps: 1e-6, normOffset: 1,
        };
        const run = () => backend.rope(plan);
        if (set === 'js') run();
        else withSimd(set, run);
        // Reference: RMSNorm with (1 + w), then the rotation.
        const want = new Float64Array(x.length);
        const width = span === 'head' ? D : H * D;
        for (let at = 0; at < x.length; at += width) {
          let ss = 0;
          for (let d = 0; d < width; d++) ss += x[at + d]! ** 2;
          const inv = 1 / Math.sqrt(ss / width + 1e-6);
          for (let d = 0; d < width; d++) want[at + d] = x[at + d]! * inv * (1 + norm[d]!);
        }
        const normed = Float32Array.from(want);
        const expected = rotate ? referenceRope(normed, B, H, S, D, 'bshd', positions, { rotaryDim: 16 }) : want;
        expectAllClose(plan.out, expected, `norm ${span}${rotate ? ' + rope' : ''}`, { atol: 1e-5, rtol: 1e-5 });
      }
    }
  });
});

describe.each([['qkv', N], ['qkv/js', J]] as const)('%s applyRotaryEmbeddingAsync', (_name, api) => {
  test('resolves to the sync result; an aborted signal rejects and writes nothing', async () => {
    const x = randn(makeRng(3), 2 * 4 * 6 * 32);
    const options = { batch: 2, heads: 4, headDim: 32, layout: 'bshd' as const, positions: 9, rope: llama3 };
    const want = api.applyRotaryEmbedding(x, options);
    expect(await api.applyRotaryEmbeddingAsync(x, options)).toEqual(want);
    const out = new Float32Array(x.length).fill(3);
    const ac = new AbortController();
    ac.abort();
    await expect(api.applyRotaryEmbeddingAsync(x, { ...options, out, signal: ac.signal })).rejects.toThrow(/abort/i);
    expect(out.every((v) => v === 3)).toBe(true);
  });
});

describe('bad input: clear errors, nothing written', () => {
  const x = new Float32Array(2 * 3 * 8).fill(1);
  const base = { heads: 2, headDim: 8, seqLen: 3 };
  const out = new Float32Array(x.length).fill(5);
  const bad = (o: Record<string, unknown>) => () => N.applyRotaryEmbedding(x, { ...base, out, ...o } as RotaryEmbeddingOptions);
  test.each([
    ['invFreq with theta', { rope: { invFreq: new Float32Array(4), theta: 10 } }, TypeError, /options\.rope\.theta/],
    ['invFreq with scaling', { rope: { invFreq: new Float32Array(4), scaling: { type: 'linear', factor: 2 } } }, TypeError, /options\.rope\.scaling/],
    ['invFreq of the wrong length', { rope: { invFreq: new Float32Array(3) } }, RangeError, /invFreq\.length/],
    ['odd rotaryDim', { rope: { rotaryDim: 5 } }, RangeError, /rotaryDim/],
    ['rotaryDim past headDim', { rope: { rotaryDim: 10 } }, RangeError, /rotaryDim/],
    ['unknown style', { rope: { style: 'neox' } }, RangeError, /options\.rope\.style/],
    ['unknown scaling type', { rope: { scaling: { type: 'ntk', factor: 2 } } }, RangeError, /options\.rope\.scaling\.type/],
    ['non-finite factor', { rope: { scaling: { type: 'linear', factor: NaN } } }, RangeError, /factor/],
    ['llama3 without its fields', { rope: { scaling: { type: 'llama3', factor: 8 } } }, TypeError, /originalMaxPositions/],
    ['unknown rope key', { rope: { base: 10000 } }, TypeError, /base/],
    ['negative theta', { rope: { theta: -1 } }, RangeError, /theta/],
    ['negative start', { positions: -1 }, RangeError, /options\.positions/],
    ['fractional start', { positions: 1.5 }, RangeError, /options\.positions/],
    ['positions of the wrong length', { positions: new Int32Array(4) }, RangeError, /options\.positions\.length/],
    ['a negative position', { positions: Int32Array.of(0, -1, 2) }, RangeError, /options\.positions\[1\]/],
    ['positions of another type', { positions: new Float64Array(3) }, TypeError, /options\.positions/],
    ['unknown option', { postions: 3 }, TypeError, /postions/],
    ['x of the wrong length', { seqLen: 4 }, RangeError, /x\.length/],
    ['unknown layout', { layout: 'sbhd' }, RangeError, /options\.layout/],
  ] as const)('%s', (_name, o, cls, message) => {
    expectError(bad(o), cls, message);
    expect(out.every((v) => v === 5)).toBe(true);
  });
  test('out overlapping x (but not x itself) is a RangeError', () => {
    const buf = new Float32Array(x.length + 4);
    const a = buf.subarray(0, x.length), b = buf.subarray(4, 4 + x.length);
    expectError(() => N.applyRotaryEmbedding(a, { ...base, out: b }), RangeError, /options\.out/);
  });
  test('the binding checks lengths itself', () => {
    if (!nativeBinding) return;
    const dims = Int32Array.of(1, 3, 2, 8, 48, 16, 8, 0, 0);
    const inv = new Float64Array(4);
    expectError(() => nativeBinding!.rope(new Float32Array(40), new Float32Array(40), dims, new Int32Array(3), inv, null, 1, 0, 0), RangeError, /x\.length/);
    expectError(() => nativeBinding!.rope(x, x, dims, new Int32Array(2), inv, null, 1, 0, 0), RangeError, /positions\.length/);
    expectError(() => nativeBinding!.rope(x, x, dims, new Int32Array(3), new Float64Array(5), null, 1, 0, 0), RangeError, /invFreq/);
    const normDims = Int32Array.of(1, 3, 2, 8, 48, 16, 8, 0, 1);
    expectError(() => nativeBinding!.rope(x, x, normDims, null, inv, new Float32Array(7), 1, 1e-6, 0), RangeError, /norm\.length/);
    const stride = Int32Array.of(1, 3, 2, 8, 48, 16, 9, 0, 0);
    expectError(() => nativeBinding!.rope(x, x, stride, null, inv, null, 1, 0, 0), RangeError, /x\.length/);
    // Strides of 0 would let a short x stand for any number of vectors: the work is bounded too.
    const huge = Int32Array.of(0x7fffffff, 0x7fffffff, 0x7fffffff, 8, 0, 0, 0, 0, 0);
    expectError(() => nativeBinding!.rope(x, x, huge, null, inv, null, 1, 0, 0), RangeError, /x/);
    expectError(() => nativeBinding!.rope(x, x, dims, new Int32Array(3), inv, null, 1e300, 0, 0), RangeError, /attentionFactor/);
  });
});
