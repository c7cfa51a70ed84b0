// SPDX-License-Identifier: MIT
//
// Hand-checkable semantics of scaledDotProductAttention (DESIGN.md), on every backend.
//
// The main trick: with q = k = 0 every visible key gets the same weight, so with Dv = 1 and
// V[j] = j + 1 the output of a row is the mean of (j + 1) over its visible keys. When keys 0..n-1
// are visible that is (n + 1) / 2, and a row that sees nothing gives 0.

import { describe, expect, test } from 'vitest';
import { makeRng, randn, runners, type Runner } from './helpers.js';
import { referenceSdpa } from './reference.js';

type Layout = 'bhsd' | 'bshd';
interface Result {
  output: Float32Array;
  weights?: Float32Array;
  scores?: Float32Array;
}

function run(runner: Runner, q: Float32Array, k: Float32Array, v: Float32Array, options: object): Result {
  const r = runner.sdpa(q, k, v, options);
  return r instanceof Float32Array ? { output: r } : r;
}

/** A [B, heads, S, W] ('bhsd') or [B, S, heads, W] ('bshd') tensor with element f(b, h, s, x). */
function tensor(
  layout: Layout, B: number, heads: number, S: number, W: number,
  f: (b: number, h: number, s: number, x: number) => number,
): Float32Array {
  const t = new Float32Array(B * heads * S * W);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < heads; h++) {
      for (let s = 0; s < S; s++) {
        for (let x = 0; x < W; x++) {
          const at = layout === 'bhsd' ? ((b * heads + h) * S + s) * W + x : ((b * S + s) * heads + h) * W + x;
          t[at] = f(b, h, s, x);
        }
      }
    }
  }
  return t;
}

/** Rows of out ([B*Sq] with H = 1, Dv = 1) for visible-key counts n: (n + 1) / 2, or 0. */
const meanOfFirst = (counts: number[]) => counts.map((n) => (n === 0 ? 0 : (n + 1) / 2));

/** q = k = 0, V[j] = j + 1, H = Dv = D = 1: out row i = mean of (j + 1) over row i's visible keys. */
function visibility(runner: Runner, B: number, Sq: number, Sk: number, extra: object, layout: Layout = 'bhsd') {
  const q = new Float32Array(B * Sq);
  const k = new Float32Array(B * Sk);
  const v = tensor(layout, B, 1, Sk, 1, (_b, _h, j) => j + 1);
  return run(runner, q, k, v, { batch: B, heads: 1, seqQ: Sq, seqK: Sk, headDim: 1, layout, ...extra });
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5, what = '') {
  expect(got.length, `${what} length`).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (g === w) continue;
    if (!(Math.abs(g - w) <= tol + 1e-5 * Math.abs(w))) {
      expect.fail(`${what}[${i}]: got ${g}, want ${w} (got [${Array.from(got).join(', ')}])`);
    }
  }
}

describe.each(runners)('sdpa semantics [$name]', (runner) => {
  describe('causal alignment', () => {
    test.each([
      // [name, Sq, Sk, options, visible-key counts per row]
      ['bottom-right true, Sq < Sk', 3, 5, { causal: true }, [3, 4, 5]],
      ["'bottom-right', Sq < Sk", 3, 5, { causal: 'bottom-right' }, [3, 4, 5]],
      ['bottom-right, Sq = Sk is the lower triangle', 4, 4, { causal: true }, [1, 2, 3, 4]],
      ['bottom-right, Sq > Sk: rows with p(i) < 0 see nothing', 5, 3, { causal: true }, [0, 0, 1, 2, 3]],
      ["'top-left', Sq < Sk", 3, 5, { causal: 'top-left' }, [1, 2, 3]],
      ["'top-left', Sq > Sk", 5, 3, { causal: 'top-left' }, [1, 2, 3, 3, 3]],
      ['queryOffset 1', 3, 5, { queryOffset: 1 }, [2, 3, 4]],
      ['queryOffset 0 = top-left', 3, 5, { queryOffset: 0 }, [1, 2, 3]],
      ["queryOffset wins over causal 'top-left'", 3, 5, { causal: 'top-left', queryOffset: 2 }, [3, 4, 5]],
      ['queryOffset wins over causal true', 2, 6, { causal: true, queryOffset: 0 }, [1, 2]],
      ['decode step: Sq = 1 sees everything', 1, 7, { causal: true }, [7]],
    ] as const)('%s', (_name, Sq, Sk, extra, counts) => {
      for (const layout of ['bhsd', 'bshd'] as const) {
        const r = visibility(runner, 1, Sq, Sk, { ...extra, weights: true }, layout);
        expectClose(r.output, meanOfFirst([...counts]), 1e-6, `out (${layout})`);
        // The weights of row i: 1/n on keys 0..n-1, 0 elsewhere.
        const want = counts.flatMap((n) => Array.from({ length: Sk }, (_, j) => (j < n ? 1 / n : 0)));
        expectClose(r.weights!, want, 1e-6, `weights (${layout})`);
      }
    });

    test('queryOffset as an Int32Array: one offset per batch', () => {
      const r = visibility(runner, 2, 2, 4, { queryOffset: Int32Array.from([0, 2]) });
      expectClose(r.output, meanOfFirst([1, 2, 3, 4]), 1e-6, 'out');
    });

    test('bottom-right aligns to kvLengths[b], not Sk', () => {
      // b0: L = 3, offset 1 -> rows see 2, 3 keys. b1: L = 5, offset 3 -> 4, 5. b2: L = 1, offset -1 -> 0, 1.
      const r = visibility(runner, 3, 2, 5, { causal: true, kvLengths: Int32Array.from([3, 5, 1]) });
      expectClose(r.output, meanOfFirst([2, 3, 4, 5, 0, 1]), 1e-6, 'out');
    });

    test("'top-left' and queryOffset combine with kvLengths (both block)", () => {
      const tl = visibility(runner, 2, 3, 5, { causal: 'top-left', kvLengths: Int32Array.from([2, 5]) });
      expectClose(tl.output, meanOfFirst([1, 2, 2, 1, 2, 3]), 1e-6, 'top-left');
      const qo = visibility(runner, 1, 2, 6, { queryOffset: 3, kvLengths: Int32Array.from([4]) });
      expectClose(qo.output, meanOfFirst([4, 4]), 1e-6, 'queryOffset');
    });

    test('rows with p(i) < 0 give zeros in out, weights and -Infinity scores, never NaN', () => {
      const rng = makeRng(7);
      const [Sq, Sk, D] = [6, 2, 8];
      const r = run(runner, randn(rng, Sq * D), randn(rng, Sk * D), randn(rng, Sk * D), {
        heads: 1, seqQ: Sq, seqK: Sk, headDim: D, causal: true, weights: true, scores: true,
      });
      // offset = Sk - Sq = -4: rows 0..3 see nothing, row 4 sees key 0, row 5 keys 0..1.
      for (let i = 0; i < 4; i++) {
        expect(Array.from(r.output.subarray(i * D, (i + 1) * D))).toEqual(new Array(D).fill(0));
        expect(Array.from(r.weights!.subarray(i * Sk, (i + 1) * Sk))).toEqual([0, 0]);
        expect(Array.from(r.scores!.subarray(i * Sk, (i + 1) * Sk))).toEqual([-Infinity, -Infinity]);
      }
      expect(r.weights![4 * Sk]).toBeCloseTo(1, 6);
      expect(r.weights![4 * Sk + 1]).toBe(0);
      expect(r.scores![4 * Sk + 1]).toBe(-Infinity);
      expect(r.weights![5 * Sk]! + r.weights![5 * Sk + 1]!).toBeCloseTo(1, 6);
      expect(r.output.every((x) => !Number.isNaN(x))).toBe(true);
    });
  });

  describe('masks', () => {
    const Sq = 2;
    const Sk = 3;
    // q = k = 0, V = [1, 2, 3]: out = mean of V over the visible keys.

    test('Uint8Array: 1 = may attend, 0 = blocked', () => {
      const data = Uint8Array.from([1, 0, 1, 0, 0, 1]);
      const r = visibility(runner, 1, Sq, Sk, { mask: { data, dims: [Sq, Sk] }, weights: true });
      expectClose(r.output, [2, 3], 1e-6, 'out');
      expectClose(r.weights!, [0.5, 0, 0.5, 0, 0, 1], 1e-6, 'weights');
    });

    test('Float32Array: added, -Infinity blocks', () => {
      const data = Float32Array.from([0, -Infinity, 0, -Infinity, -Infinity, 0]);
      const r = visibility(runner, 1, Sq, Sk, { mask: { data, dims: [Sq, Sk] }, weights: true, scores: true });
      expectClose(r.output, [2, 3], 1e-6, 'out');
      expectClose(r.weights!, [0.5, 0, 0.5, 0, 0, 1], 1e-6, 'weights');
      expect(Array.from(r.scores!)).toEqual([0, -Infinity, 0, -Infinity, -Infinity, 0]);
    });

    test('a large finite negative is added, not a block', () => {
      // Row 0: [-1e9, -1e9, -inf] -> weights [0.5, 0.5, 0]. Row 1: [0, ln 3, -inf] -> [0.25, 0.75, 0].
      const data = Float32Array.from([-1e9, -1e9, -Infinity, 0, Math.log(3), -Infinity]);
      const r = visibility(runner, 1, Sq, Sk, { mask: { data, dims: [Sq, Sk] }, weights: true });
      expectClose(r.weights!, [0.5, 0.5, 0, 0.25, 0.75, 0], 1e-6, 'weights');
      expectClose(r.output, [1.5, 1.75], 1e-6, 'out');
    });

    test('a blocked key stays blocked whatever its score (NaN or Infinity from q.k)', () => {
      // q = [1], k = [1, NaN, Infinity], V = [7, 100, 100]: keys 1 and 2 blocked -> out 7.
      const q = Float32Array.from([1]);
      const k = Float32Array.from([1, NaN, Infinity]);
      const v = Float32Array.from([7, 100, 100]);
      const base = { heads: 1, seqQ: 1, seqK: 3, headDim: 1, weights: true };
      const masks = [
        { data: Float32Array.from([0, -Infinity, -Infinity]), dims: [1, 3] },
        { data: Uint8Array.from([1, 0, 0]), dims: [1, 3] },
      ];
      for (const mask of masks) {
        const r = run(runner, q, k, v, { ...base, mask });
        expectClose(r.output, [7], 1e-6, `out (${mask.data.constructor.name})`);
        expectClose(r.weights!, [1, 0, 0], 1e-6, `weights (${mask.data.constructor.name})`);
      }
      // Also blocked by kvLengths.
      const r = run(runner, q, k, v, { ...base, kvLengths: Int32Array.from([1]) });
      expectClose(r.output, [7], 1e-6, 'out (kvLengths)');
    });

    test('broadcast: a [B, 1, 1, Sk] padding mask and a [H, Sq, Sk] mask', () => {
      const [B, H] = [2, 2];
      const q = new Float32Array(B * H * Sq);
      const k = new Float32Array(B * Sk);
      const v = tensor('bhsd', B, 1, Sk, 1, (_b, _h, j) => j + 1);
      const shape = { batch: B, heads: H, kvHeads: 1, seqQ: Sq, seqK: Sk, headDim: 1 };
      const pad = { data: Uint8Array.from([1, 1, 0, 1, 0, 0]), dims: [B, 1, 1, Sk] };
      const r1 = run(runner, q, k, v, { ...shape, mask: pad });
      expectClose(r1.output, [1.5, 1.5, 1.5, 1.5, 1, 1, 1, 1], 1e-6, 'padding mask');
      // [H, Sq, Sk]: head 0 rows see {0}, {0,1}; head 1 rows see {2}, {1,2}; same for both batches.
      const per = Float32Array.from([0, -Infinity, -Infinity, 0, 0, -Infinity, -Infinity, -Infinity, 0, -Infinity, 0, 0]);
      const r2 = run(runner, q, k, v, { ...shape, mask: { data: per, dims: [H, Sq, Sk] } });
      expectClose(r2.output, [1, 1.5, 3, 2.5, 1, 1.5, 3, 2.5], 1e-6, '[H, Sq, Sk] mask');
    });

    test('mask, causal and kvLengths all combine', () => {
      // Sq = Sk = 3, kvLengths 2 (blocks key 2), so bottom-right offset = 2 - 3 = -1: row i sees
      // keys j <= i - 1. The mask blocks key 0 everywhere. Row 0: none; row 1: {0} masked -> none;
      // row 2: {0, 1} minus key 0 -> {1}, V = 2.
      const mask = { data: Uint8Array.from([0, 1, 1]), dims: [1, 3] };
      const r = visibility(runner, 1, 3, 3, { causal: true, mask, kvLengths: Int32Array.from([2]), weights: true });
      expectClose(r.output, [0, 0, 2], 1e-6, 'out');
      expectClose(r.weights!, [0, 0, 0, 0, 0, 0, 0, 1, 0], 1e-6, 'weights');
      // 'top-left' instead: row i sees 0..i, then key 0 masked, key 2 past kvLengths: {}, {1}, {1}.
      const tl = visibility(runner, 1, 3, 3, { causal: 'top-left', mask, kvLengths: Int32Array.from([2]) });
      expectClose(tl.output, [0, 2, 2], 1e-6, 'top-left out');
    });
  });

  describe('grouped-query heads', () => {
    test.each(['bhsd', 'bshd'] as const)('H = 4, Hkv = 2: heads 0,1 read kv head 0; heads 2,3 read kv head 1 (%s)', (layout) => {
      const [B, H, Hkv, Sq, Sk] = [2, 4, 2, 3, 2];
      const q = new Float32Array(B * H * Sq);
      const k = new Float32Array(B * Hkv * Sk);
      // V of (b, kv head c, key j) = 100 b + 10 c + 2 j + 1: mean over the 2 keys = 100 b + 10 c + 2.
      const v = tensor(layout, B, Hkv, Sk, 1, (b, c, j) => 100 * b + 10 * c + 2 * j + 1);
      const r = run(runner, q, k, v, { batch: B, heads: H, kvHeads: Hkv, seqQ: Sq, seqK: Sk, headDim: 1, layout });
      const want = tensor(layout, B, H, Sq, 1, (b, h) => 100 * b + 10 * Math.floor(h / 2) + 2);
      expectClose(r.output, want, 1e-5, 'out');
    });

    test('multi-query (Hkv = 1): every head reads the one kv head', () => {
      const [H, Sk, D] = [3, 4, 2];
      const rng = makeRng(3);
      const q1 = randn(rng, D);
      const q = new Float32Array(H * D);
      for (let h = 0; h < H; h++) q.set(q1, h * D); // same query in every head
      const k = randn(rng, Sk * D);
      const v = randn(rng, Sk * D);
      const r = run(runner, q, k, v, { heads: H, kvHeads: 1, seqQ: 1, seqK: Sk, headDim: D });
      // Head 0 against the float64 reference (one head, one query), then every other head against head 0.
      const one = referenceSdpa(q1, k, v, { heads: 1, seqQ: 1, seqK: Sk, headDim: D }).out;
      expectClose(r.output.subarray(0, D), one, 1e-5, 'head 0');
      for (let h = 1; h < H; h++) expectClose(r.output.subarray(h * D, (h + 1) * D), r.output.subarray(0, D), 1e-7, `head ${h}`);
    });
  });

  describe('score pipeline', () => {
    test('softcap applies before the mask is added: s = c*tanh(scale*q.k/c) + mask', () => {
      // scale 0.5, q = [3], k = [4, 0]: scale*q.k = [6, 0]; softcap 2 -> [2 tanh 3, 0]; mask [-1, 0.5].
      const s0 = 2 * Math.tanh(3) - 1; // 0.990109...; mask first would give 2 tanh(2.5) = 1.973...
      const r = run(runner, Float32Array.from([3]), Float32Array.from([4, 0]), Float32Array.from([1, 0]), {
        heads: 1, seqQ: 1, seqK: 2, headDim: 1, scale: 0.5, softcap: 2,
        mask: { data: Float32Array.from([-1, 0.5]), dims: [1, 2] }, scores: true, weights: true,
      });
      expectClose(r.scores!, [s0, 0.5], 1e-6, 'scores');
      const w0 = 1 / (1 + Math.exp(0.5 - s0));
      expectClose(r.weights!, [w0, 1 - w0], 1e-6, 'weights');
      expectClose(r.output, [w0], 1e-6, 'out');
    });

    test('default scale is 1/sqrt(headDim); scale is applied before softcap', () => {
      const D = 4;
      const q = Float32Array.from([1, 1, 1, 1]);
      const k = Float32Array.from([1, 1, 1, 1, 0, 0, 0, 0]); // q.k = [4, 0]
      const v = new Float32Array(2 * D);
      const base = { heads: 1, seqQ: 1, seqK: 2, headDim: D, scores: true };
      expectClose(run(runner, q, k, v, base).scores!, [2, 0], 1e-6, 'default scale');
      expectClose(run(runner, q, k, v, { ...base, scale: 0.25, softcap: 0.5 }).scores!, [0.5 * Math.tanh(2), 0], 1e-6, 'scale then softcap');
    });

    test('scores of magnitude 1e4 stay finite and correct', () => {
      // q = [1], k = [1e4, 1e4 - 1, -1e4], scale 1: weights [1/(1+e^-1), e^-1/(1+e^-1), 0].
      const r = run(runner, Float32Array.from([1]), Float32Array.from([10000, 9999, -10000]), Float32Array.from([1, 0, 5]), {
        heads: 1, seqQ: 1, seqK: 3, headDim: 1, scale: 1, weights: true, scores: true,
      });
      const w0 = 1 / (1 + Math.exp(-1));
      expectClose(r.scores!, [10000, 9999, -10000], 0, 'scores');
      expectClose(r.weights!, [w0, 1 - w0, 0], 1e-6, 'weights');
      expectClose(r.output, [w0], 1e-6, 'out');
      // All scores -1e4: uniform.
      const u = run(runner, Float32Array.from([1]), Float32Array.from([-10000, -10000]), Float32Array.from([1, 3]), {
        heads: 1, seqQ: 1, seqK: 2, headDim: 1, scale: 1, weights: true,
      });
      expectClose(u.weights!, [0.5, 0.5], 1e-6, 'uniform weights');
      expectClose(u.output, [2], 1e-6, 'uniform out');
    });

    test('a jump from -1e4 to +1e4 between key blocks (Sk = 300) rescales without NaN', () => {
      // Keys 0..255 score -1e4, keys 256..299 score +1e4: out = mean of V over keys 256..299.
      const Sk = 300;
      const k = Float32Array.from({ length: Sk }, (_, j) => (j < 256 ? -10000 : 10000));
      const v = Float32Array.from({ length: Sk }, (_, j) => j + 1);
      const r = run(runner, Float32Array.from([1]), k, v, { heads: 1, seqQ: 1, seqK: Sk, headDim: 1, scale: 1, weights: true });
      expectClose(r.output, [(257 + 300) / 2], 1e-4, 'out');
      expect(r.weights!.every((w, j) => Math.abs(w - (j < 256 ? 0 : 1 / 44)) < 1e-6)).toBe(true);
      // And the other way: the large scores come first.
      const k2 = k.map((x) => -x);
      const r2 = run(runner, Float32Array.from([1]), k2, v, { heads: 1, seqQ: 1, seqK: Sk, headDim: 1, scale: 1 });
      expectClose(r2.output, [(1 + 256) / 2], 1e-4, 'out (reversed)');
    });
  });

  describe('blocked rows and kvLengths', () => {
    test('kvLengths blocks keys >= kvLengths[b], including a length of 0', () => {
      const r = visibility(runner, 3, 1, 4, { kvLengths: Int32Array.from([4, 2, 0]), weights: true });
      expectClose(r.output, [2.5, 1.5, 0], 1e-6, 'out');
      expectClose(r.weights!, [0.25, 0.25, 0.25, 0.25, 0.5, 0.5, 0, 0, 0, 0, 0, 0], 1e-6, 'weights');
    });

    test('fully blocked rows give zeros in out and weights, never NaN (all mask kinds)', () => {
      const rng = makeRng(11);
      const [B, H, Sq, Sk, D] = [2, 2, 3, 5, 4];
      const q = randn(rng, B * H * Sq * D);
      const k = randn(rng, B * H * Sk * D);
      const v = randn(rng, B * H * Sk * D);
      const shape = { batch: B, heads: H, seqQ: Sq, seqK: Sk, headDim: D, weights: true, scores: true };
      // Row 1 of every (b, h) blocked.
      const bool = new Uint8Array(Sq * Sk).fill(1).fill(0, Sk, 2 * Sk);
      const flt = new Float32Array(Sq * Sk).fill(-Infinity, Sk, 2 * Sk);
      for (const mask of [{ data: bool, dims: [Sq, Sk] }, { data: flt, dims: [1, 1, Sq, Sk] }]) {
        const r = run(runner, q, k, v, { ...shape, mask });
        for (let bh = 0; bh < B * H; bh++) {
          const row = bh * Sq + 1;
          expect(Array.from(r.output.subarray(row * D, (row + 1) * D))).toEqual([0, 0, 0, 0]);
          expect(Array.from(r.weights!.subarray(row * Sk, (row + 1) * Sk))).toEqual([0, 0, 0, 0, 0]);
          expect(r.scores!.subarray(row * Sk, (row + 1) * Sk).every((s) => s === -Infinity)).toBe(true);
        }
        expect(r.output.some(Number.isNaN) || r.weights!.some(Number.isNaN)).toBe(false);
      }
      // Every key of batch 1 blocked by kvLengths 0.
      const r = run(runner, q, k, v, { ...shape, kvLengths: Int32Array.from([Sk, 0]) });
      const half = H * Sq;
      expect(r.output.subarray(half * D).every((x) => x === 0)).toBe(true);
      expect(r.weights!.subarray(half * Sk).every((x) => x === 0)).toBe(true);
      expect(r.output.subarray(0, half * D).some((x) => x !== 0)).toBe(true);
    });

    test('weights rows sum to 1 (0 for a fully blocked row)', () => {
      const rng = makeRng(5);
      const [B, H, Hkv, Sq, Sk, D] = [2, 4, 2, 7, 300, 8];
      const mask = { data: new Uint8Array(Sq * Sk).map(() => (rng() < 0.7 ? 1 : 0)), dims: [Sq, Sk] };
      mask.data.fill(0, 3 * Sk, 4 * Sk); // row 3 fully blocked
      const r = run(runner, randn(rng, B * H * Sq * D), randn(rng, B * Hkv * Sk * D), randn(rng, B * Hkv * Sk * D), {
        batch: B, heads: H, kvHeads: Hkv, seqQ: Sq, seqK: Sk, headDim: D, causal: true, mask, weights: true,
      });
      for (let row = 0; row < B * H * Sq; row++) {
        let sum = 0;
        for (let j = 0; j < Sk; j++) sum += r.weights![row * Sk + j]!;
        expect(sum, `row ${row}`).toBeCloseTo(row % Sq === 3 ? 0 : 1, 5);
      }
    });
  });

  describe('output arrays', () => {
    test('`out` is written and returned (same object)', () => {
      const rng = makeRng(9);
      const [H, Sq, Sk, D] = [2, 3, 4, 5];
      const q = randn(rng, H * Sq * D);
      const k = randn(rng, H * Sk * D);
      const v = randn(rng, H * Sk * D);
      const shape = { heads: H, seqQ: Sq, seqK: Sk, headDim: D };
      const want = run(runner, q, k, v, shape).output;
      const out = new Float32Array(H * Sq * D).fill(NaN);
      const got = runner.sdpa(q, k, v, { ...shape, out });
      expect(got).toBe(out);
      expectClose(out, want, 0, 'out');
      // A view with a nonzero byteOffset works as well, and nothing outside it is touched.
      const big = new Float32Array(H * Sq * D + 4).fill(7);
      const view = big.subarray(2, 2 + H * Sq * D);
      expect(runner.sdpa(q, k, v, { ...shape, out: view })).toBe(view);
      expectClose(view, want, 0, 'out view');
      expect([big[0], big[1], big.at(-2), big.at(-1)]).toEqual([7, 7, 7, 7]);
    });

    test('weights/scores arrays passed in are filled, and the return stays `out`', () => {
      const rng = makeRng(10);
      const [Sq, Sk, D] = [2, 3, 4];
      const q = randn(rng, Sq * D);
      const k = randn(rng, Sk * D);
      const v = randn(rng, Sk * D);
      const shape = { heads: 1, seqQ: Sq, seqK: Sk, headDim: D, causal: true };
      const ref = run(runner, q, k, v, { ...shape, weights: true, scores: true });
      const weights = new Float32Array(Sq * Sk).fill(NaN);
      const scores = new Float32Array(Sq * Sk).fill(NaN);
      const got = runner.sdpa(q, k, v, { ...shape, weights, scores });
      expect(got).toBeInstanceOf(Float32Array);
      expectClose(got as Float32Array, ref.output, 0, 'out');
      expectClose(weights, ref.weights!, 0, 'weights');
      expectClose(scores, ref.scores!, 0, 'scores');
    });
  });
});
