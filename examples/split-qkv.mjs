// GPT-NeoX / Pythia and BLOOM store q, k and v as one fused `query_key_value` nn.Linear whose
// weight is [3·H·Dh, E] ('out-in') with its rows per head interleaved: viewed as [H, 3, Dh, E],
// head h's Dh query rows come first, then its key rows, then its value rows (the bias [3·H·Dh]
// likewise). splitFusedQkv undoes that into the separate weights MultiHeadAttention takes.
//
//   import { splitFusedQkv } from './examples/split-qkv.mjs';
//   const { wq, wk, wv, bq, bk, bv } = splitFusedQkv(weight, bias, { numHeads, headDim, embedDim });

/**
 * @param {Float32Array | Uint16Array} weight [3·numHeads·headDim, embedDim], rows [H, 3, Dh] (float32, or BF16/F16 bits)
 * @param {Float32Array | Uint16Array | null | undefined} bias [3·numHeads·headDim] in the same order, or none
 * @param {{ numHeads: number, headDim: number, embedDim: number }} shape
 * @returns {{ wq, wk, wv, bq?, bk?, bv? }} wq/wk/wv [H·Dh, E] ('out-in'), bq/bk/bv [H·Dh]; arrays of weight's (bias's) type
 */
export function splitFusedQkv(weight, bias, { numHeads, headDim, embedDim }) {
  const H = numHeads, Dh = headDim, E = embedDim;
  for (const [name, v] of [['numHeads', H], ['headDim', Dh], ['embedDim', E]]) {
    if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  }
  if (weight.length !== 3 * H * Dh * E) {
    throw new RangeError(`weight has ${weight.length} values; [3·${H}·${Dh}, ${E}] is ${3 * H * Dh * E}`);
  }
  if (bias != null && bias.length !== 3 * H * Dh) {
    throw new RangeError(`bias has ${bias.length} values; [3·${H}·${Dh}] is ${3 * H * Dh}`);
  }
  const W = weight.constructor;
  const out = { wq: new W(H * Dh * E), wk: new W(H * Dh * E), wv: new W(H * Dh * E) };
  const B = bias == null ? null : bias.constructor;
  if (B) Object.assign(out, { bq: new B(H * Dh), bk: new B(H * Dh), bv: new B(H * Dh) });
  const parts = [['wq', 'bq'], ['wk', 'bk'], ['wv', 'bv']];
  for (let h = 0; h < H; h++) {
    for (let p = 0; p < 3; p++) {
      const src = (h * 3 + p) * Dh;   // first fused row of head h's part p
      const dst = h * Dh;             // first row of head h in the separate tensor
      out[parts[p][0]].set(weight.subarray(src * E, (src + Dh) * E), dst * E);
      if (B) out[parts[p][1]].set(bias.subarray(src, src + Dh), dst);
    }
  }
  return out;
}
