// Fuzzing scale and softcap near and past float32's limits (subnormals, FLT_MIN, FLT_MAX and just
// past them, 1e-39, 1e-300, 1e38, 3.5e38, ±0, either sign): qkv/js and qkv under every native
// kernel set must agree on every value, both refusing it with the same error class and message, or
// both giving results within tolerance of each other (NaN where the other has NaN).
// QKV_FUZZ_SEED / QKV_FUZZ_ONLY / QKV_FUZZ_SCALE as in test/fuzz-api.test.ts.
import { describe, expect, test } from 'vitest';
import * as N from '../lib/index.js';
import * as J from '../lib/js.js';
import { Gen, fuzzLoop, nativeKernelSets, outcomeDifference, outcomeOf, show, targets, type CallOutcome } from './helpers.js';

const FLT_MAX = 3.4028234663852886e38;
const FLT_MIN = 1.1754943508222875e-38;
const EDGES: readonly number[] = [
  0, -0, 1e-39, 1e-300, 5e-324, 1e-45, 2 ** -149, 2 ** -140, FLT_MIN, FLT_MIN * (1 - 2 ** -20), FLT_MIN * (1 + 2 ** -20),
  1e-38, 1e38, 3.4e38, 3.5e38, FLT_MAX, FLT_MAX * (1 + 2 ** -26), FLT_MAX * (1 + 2 ** -23), 2 ** 128, 1e300,
  1, 0.5, 8, 1e-8, 1e8,
];

/** |a - b| <= 1e-4 + 1e-3·|b| (the two backends' exp and tanh differ in their last bits). */
function looseMismatch(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (x === y) continue;
    if (!(Math.abs(x - y) <= 1e-4 + 1e-3 * Math.abs(y))) return i;
  }
  return -1;
}

/**
 * Known gaps, reproduced by the test.fails below: where |scale·q·k| passes FLT_MAX the backends
 * part. Native scores overflow to ±Infinity in float32 while the TypeScript kernels multiply in
 * float64: with a softcap the outputs then differ (native caps an infinity, js a finite score);
 * without one both outputs are NaN but the weights are NaN on native and 0 on qkv/js. Such calls
 * are compared only for how they end (both succeed or both throw the same) unless QKV_FUZZ_KNOWN_GAPS=1.
 */
const WITH_KNOWN_GAPS = process.env.QKV_FUZZ_KNOWN_GAPS === '1';

/** An upper bound of |scale·q·k| over the call: max|q|·max|k|·D·|scale|. */
function scoreBound(q: Float32Array, k: Float32Array, D: number, scale: number): number {
  const m = (a: Float32Array) => a.reduce((x, y) => Math.max(x, Math.abs(y)), 0);
  return m(q) * m(k) * D * Math.abs(scale);
}

function value(g: Gen): number {
  const v = g.pick(EDGES);
  return g.chance(0.3) ? -v : v;
}

describe('fuzz: scale and softcap at float32 limits', () => {
  test('qkv/js and every native kernel set agree (same error, or results within tolerance)', async () => {
    const natives = targets.filter((t) => t.name !== 'js');
    const js = targets.find((t) => t.name === 'js')!;
    const failures = await fuzzLoop('float range', { salt: 0x501, mix: 0x9e3779b9, ms: 1200, min: 200 }, async (g) => {
      const [B, H, Sq, Sk, D] = [g.int(1, 2), g.int(1, 2), g.int(1, 4), g.int(1, 5), g.int(1, 8)];
      const o: Record<string, unknown> = { batch: B, heads: H, seqQ: Sq, seqK: Sk, headDim: D };
      const which = g.int(0, 2);
      if (which !== 1) o.scale = value(g);
      if (which !== 0) o.softcap = value(g);
      if (g.chance(0.3)) o.causal = true;
      if (g.chance(0.3)) o.weights = true;
      const q = g.f32(B * H * Sq * D, 'plain');
      const k = g.f32(B * H * Sk * D, 'plain');
      const v = g.f32(B * H * Sk * D, 'plain');
      const isAsync = g.chance(0.25);
      const run = (t: typeof js) => outcomeOf(() => t.run(() => (isAsync ? t.face.scaledDotProductAttentionAsync : t.face.scaledDotProductAttention)(q, k, v, o)));
      const overflows = !WITH_KNOWN_GAPS && typeof o.scale === 'number' && scoreBound(q, k, D, o.scale) > FLT_MAX / 4;
      const ending = (c: CallOutcome): CallOutcome => (overflows && c.arrays ? { arrays: [] } : c);
      const want = ending(await run(js));
      for (const t of natives) {
        const got = ending(await run(t));
        const diff = outcomeDifference(got, want, looseMismatch);
        if (diff !== null) return { problem: `${t.name} / js${isAsync ? ' async' : ''} ${show({ scale: o.scale, softcap: o.softcap })} ${show(o)}: ${diff}`, threw: want.error !== undefined };
      }
      return { problem: null, threw: want.error !== undefined };
    });
    expect(failures, failures.join('\n')).toEqual([]);
  });
});

describe('known gaps (expected to fail until fixed)', () => {
  const known = nativeKernelSets.length > 0 ? test.fails : test.skip;
  const q = Float32Array.from({ length: 8 }, (_, i) => Math.sin(i + 1));
  known('a score overflowing float32 gives the same weights on both backends', () => {
    const o = { heads: 1, seqQ: 2, headDim: 4, scale: 3.4e38, weights: true } as const;
    expect(Array.from(N.scaledDotProductAttention(q, q, q, o).weights)).toEqual(Array.from(J.scaledDotProductAttention(q, q, q, o).weights));
  });
  known('a softcapped score overflowing float32 gives the same output on both backends', () => {
    const g = new Gen(1);
    const [qq, k, v] = [g.f32(64, 'plain'), g.f32(80, 'plain'), g.f32(80, 'plain')];
    const o = { heads: 2, seqQ: 4, seqK: 5, headDim: 8, scale: 3.4e38, softcap: 1e38 } as const;
    expect(looseMismatch(N.scaledDotProductAttention(qq, k, v, o), J.scaledDotProductAttention(qq, k, v, o))).toBe(-1);
  });
});
