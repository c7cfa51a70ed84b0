// Type-level tests of the public API: the return types follow the options for every value, not
// only for literals. The expectations are checked by tsc (`npm run typecheck`, run by .ci/run over
// test/); an @ts-expect-error line that stops being an error fails that check. At run time each
// test also checks that the value has the shape its type promises.
import { describe, expectTypeOf, test, expect } from 'vitest';
import { scaledDotProductAttention, scaledDotProductAttentionAsync, type SdpaOptions } from '../lib/index.js';

const q = new Float32Array(4 * 2);
const opts = { heads: 1, seqQ: 4, headDim: 2 } as const;

describe('scaledDotProductAttention return types', () => {
  test('no weights or scores: a Float32Array', () => {
    const out = scaledDotProductAttention(q, q, q, opts);
    expectTypeOf(out).toEqualTypeOf<Float32Array>();
    expect(out).toBeInstanceOf(Float32Array);
  });

  test('weights: true gives a result whose weights are present', () => {
    const r = scaledDotProductAttention(q, q, q, { ...opts, weights: true });
    expectTypeOf(r.weights).toEqualTypeOf<Float32Array>();
    expectTypeOf(r.output).toEqualTypeOf<Float32Array>();
    // @ts-expect-error scores were not asked for
    void r.scores;
    expect(r.weights).toBeInstanceOf(Float32Array);
  });

  test('scores: true and weights: true together', () => {
    const r = scaledDotProductAttention(q, q, q, { ...opts, weights: true, scores: true });
    expectTypeOf(r.weights).toEqualTypeOf<Float32Array>();
    expectTypeOf(r.scores).toEqualTypeOf<Float32Array>();
    expect(r.scores).toBeInstanceOf(Float32Array);
  });

  test('lse: true gives { output, lse }; an lse array to fill keeps the Float32Array', () => {
    const r = scaledDotProductAttention(q, q, q, { ...opts, lse: true, window: { left: 1 } });
    expectTypeOf(r).toEqualTypeOf<{ output: Float32Array; lse: Float32Array }>();
    expect(r.lse).toBeInstanceOf(Float32Array);
    expectTypeOf(scaledDotProductAttention(q, q, q, { ...opts, lse: new Float32Array(4) })).toEqualTypeOf<Float32Array>();
    // @ts-expect-error a window side is a number
    void (() => scaledDotProductAttention(q, q, q, { ...opts, window: { left: '1' } }));
  });

  test('a boolean flag gives the union, which must be narrowed', () => {
    for (const flag of [true, false] as boolean[]) {
      const r = scaledDotProductAttention(q, q, q, { ...opts, weights: flag });
      expectTypeOf(r).toEqualTypeOf<Float32Array | { output: Float32Array; weights?: Float32Array }>();
      // @ts-expect-error a Float32Array method on what may be a result object
      void r.fill;
      if (r instanceof Float32Array) expect(flag).toBe(false);
      else expect(r.weights).toBeInstanceOf(Float32Array);
    }
  });

  test('a Float32Array to fill keeps the return a Float32Array', () => {
    const weights = new Float32Array(16);
    expectTypeOf(scaledDotProductAttention(q, q, q, { ...opts, weights })).toEqualTypeOf<Float32Array>();
  });

  test('options typed as SdpaOptions: the union', () => {
    const o: SdpaOptions = { ...opts };
    expectTypeOf(scaledDotProductAttention(q, q, q, o)).toEqualTypeOf<
      Float32Array | { output: Float32Array; weights?: Float32Array; scores?: Float32Array; lse?: Float32Array }
    >();
  });

  test('an unknown option name is a compile error (and a TypeError at run time)', () => {
    // @ts-expect-error 'casual' is not an option (did you mean causal?)
    expect(() => scaledDotProductAttention(q, q, q, { ...opts, casual: true })).toThrow(TypeError);
  });

  test('the async twin resolves to the same types', async () => {
    const r = await scaledDotProductAttentionAsync(q, q, q, { ...opts, scores: true });
    expectTypeOf(r.scores).toEqualTypeOf<Float32Array>();
    expect(r.scores).toBeInstanceOf(Float32Array);
    expectTypeOf(scaledDotProductAttentionAsync(q, q, q, opts)).toEqualTypeOf<Promise<Float32Array>>();
  });
});
