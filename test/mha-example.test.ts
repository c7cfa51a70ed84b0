// SPDX-License-Identifier: MIT
//
// The classic self-attention example, small enough to check by hand: the sentence "I like apple"
// as three tokens with 4-dimensional embeddings, one head (H = 1, headDim = 4, so the scale is
// 1/√4 = 1/2), no biases, and hand-written 4×4 weights:
//
//   Wq = Wk = identity        so q = k = the embedding, and score(i, j) = (x_i · x_j) / 2
//   Wv = swap the last two    v = [x0, x1, x3, x2]
//   Wo = identity             the layer's output is the attention output itself
//
// What changes with the neighbours, and what does not: in one layer the query, key and value of a
// token are x·Wqᵀ, x·Wkᵀ, x·Wvᵀ — they depend only on that token's own embedding and the fixed
// weights, so "apple" has the same q, k and v in every sentence. What changes is whom it attends to
// (its row of attention weights, because the other tokens' keys differ) and therefore its output,
// the context vector Σ_j w_j v_j. (Its q/k/v would differ only in a later layer, whose input already
// mixes the neighbours in.)
import { describe, expect, test } from 'vitest';
import { runners } from './helpers.js';
import type { MhaResult } from '../lib/index.js';

const I4 = Float32Array.of(
  1, 0, 0, 0,
  0, 1, 0, 0,
  0, 0, 1, 0,
  0, 0, 0, 1,
);
const SWAP_LAST_TWO = Float32Array.of(
  1, 0, 0, 0,
  0, 1, 0, 0,
  0, 0, 0, 1,
  0, 0, 1, 0,
);

const EMBEDDING = {
  I: [1, 0, 1, 0],
  like: [0, 2, 0, 0],
  apple: [1, 0, 0, 2],
  makes: [0, 1, 1, 0],
  phones: [1, 0, 0, 1],
} as const;
const sentence = (...words: Array<keyof typeof EMBEDDING>) => Float32Array.from(words.flatMap((w) => EMBEDDING[w]));

// "I like apple". Dot products x_i·x_j: I·I = 2, I·like = 0, I·apple = 1, like·like = 4,
// like·apple = 0, apple·apple = 5. Halved (scale 1/2), the scores are
//   I:     [0.5·2, 0, 0.5·1] = [1,   0, 0.5]
//   like:  [0,   0.5·4, 0]   = [0,   2, 0  ]
//   apple: [0.5,  0,  0.5·5] = [0.5, 0, 2.5]
// Softmax row by row, with e^0 = 1, e^0.5 = 1.64872, e^1 = 2.71828, e^2 = 7.38906, e^2.5 = 12.18249:
//   I:     [2.71828, 1, 1.64872] / 5.36700   = [0.50648, 0.18632, 0.30720]
//   like:  [1, 7.38906, 1]       / 9.38906   = [0.10651, 0.78699, 0.10651]
//   apple: [1.64872, 1, 12.18249] / 14.83121 = [0.11117, 0.06743, 0.82141]
const WEIGHTS_I_LIKE_APPLE = [
  [0.50648, 0.18632, 0.3072],
  [0.10651, 0.78699, 0.10651],
  [0.11117, 0.06743, 0.82141],
];
// Values v = [x0, x1, x3, x2]: I → [1, 0, 0, 1], like → [0, 2, 0, 0], apple → [1, 0, 2, 0].
// apple's output = 0.11117·[1,0,0,1] + 0.06743·[0,2,0,0] + 0.82141·[1,0,2,0]
//               = [0.11117 + 0.82141, 2·0.06743, 2·0.82141, 0.11117] = [0.93258, 0.13486, 1.64282, 0.11117]
const APPLE_OUT_I_LIKE_APPLE = [0.93258, 0.13486, 1.64282, 0.11117];

// "apple makes phones": apple is token 0. apple·apple = 5, apple·makes = 0, apple·phones = 1 + 2 = 3,
// so its scores are [2.5, 0, 1.5] and its weights
//   [12.18249, 1, 4.48169] / 17.66418 = [0.68967, 0.05661, 0.25372]
// and values apple → [1, 0, 2, 0], makes → [0, 1, 0, 1], phones → [1, 0, 1, 0]:
// apple's output = [0.68967 + 0.25372, 0.05661, 2·0.68967 + 0.25372, 0.05661] = [0.94339, 0.05661, 1.63306, 0.05661]
const APPLE_WEIGHTS_APPLE_MAKES_PHONES = [0.68967, 0.05661, 0.25372];
const APPLE_OUT_APPLE_MAKES_PHONES = [0.94339, 0.05661, 1.63306, 0.05661];

const closeTo = (got: ArrayLike<number>, want: readonly number[]) => {
  expect(got.length).toBe(want.length);
  want.forEach((w, i) => expect(got[i]).toBeCloseTo(w, 4));
};

describe.each(runners)('"I like apple", by hand [$name]', (r) => {
  const weights = { wq: I4.slice(), wk: I4.slice(), wv: SWAP_LAST_TWO.slice(), wo: I4.slice() };
  const snapshot = Object.fromEntries(Object.entries(weights).map(([k, v]) => [k, v.slice()]));
  const layer = r.newMha({ embedDim: 4, numHeads: 1, bias: false, weights });

  test('the 3×3 attention weights match the hand computation and every row sums to 1', () => {
    const { output, weights: w } = layer.forward(sentence('I', 'like', 'apple'), { needWeights: true }) as MhaResult;
    expect(w.length).toBe(9);  // [B=1, H=1, Sq=3, Sk=3]
    for (let i = 0; i < 3; i++) {
      closeTo(w.subarray(i * 3, i * 3 + 3), WEIGHTS_I_LIKE_APPLE[i]!);
      expect(w[i * 3]! + w[i * 3 + 1]! + w[i * 3 + 2]!).toBeCloseTo(1, 6);
    }
    closeTo(output.subarray(8, 12), APPLE_OUT_I_LIKE_APPLE);
  });

  test('new neighbours: apple keeps its q, k, v but attends differently and outputs another vector', () => {
    const a = layer.forward(sentence('I', 'like', 'apple'), { needWeights: true }) as MhaResult;
    const b = layer.forward(sentence('apple', 'makes', 'phones'), { needWeights: true }) as MhaResult;
    // q, k, v of apple: its embedding times the fixed weights, the same in both sentences.
    const apple = Float32Array.from(EMBEDDING.apple);
    const qkv = (w: Float32Array) => Array.from(r.linear(apple, w, null, { inFeatures: 4 }));
    expect(qkv(weights.wq)).toEqual([1, 0, 0, 2]);
    expect(qkv(weights.wk)).toEqual([1, 0, 0, 2]);
    expect(qkv(weights.wv)).toEqual([1, 0, 2, 0]);
    // Its attention weights (row 2 of the first sentence, row 0 of the second) differ...
    closeTo(a.weights.subarray(6, 9), WEIGHTS_I_LIKE_APPLE[2]!);
    closeTo(b.weights.subarray(0, 3), APPLE_WEIGHTS_APPLE_MAKES_PHONES);
    // ...and so does its output, the context vector.
    closeTo(a.output.subarray(8, 12), APPLE_OUT_I_LIKE_APPLE);
    closeTo(b.output.subarray(0, 4), APPLE_OUT_APPLE_MAKES_PHONES);
    // The weight matrices are the same ones throughout (one layer, the caller's arrays untouched).
    for (const [k, v] of Object.entries(weights)) expect(v).toEqual(snapshot[k]);
  });

  test('causal: "I" sees only itself, "like" sees I and like, "apple" sees all three', () => {
    const { weights: w } = layer.forward(sentence('I', 'like', 'apple'), { needWeights: true, causal: true }) as MhaResult;
    // Row like: scores [0, 2] → [1, 7.38906] / 8.38906 = [0.11920, 0.88080].
    closeTo(w, [1, 0, 0, 0.1192, 0.8808, 0, ...WEIGHTS_I_LIKE_APPLE[2]!]);
  });
});
