// The resolved form of one scaledDotProductAttention call, built once by lib/sdpa.ts after all
// validation, and handed unchanged to whichever backend runs it. Backends trust it (the native
// binding re-checks lengths anyway); nothing in it is a default any more.

/** Layout of q, k, v and out. weights/scores are always [B, H, Sq, Sk]. */
export type Layout = 'bhsd' | 'bshd';

/** Element type of k and v in a plan. */
export type KvDtype = 'float32' | 'float16';

export interface SdpaPlan {
  q: Float32Array;
  /**
   * Float32Array, or (kvDtype 'float16', internal use only: a float16 KVCache) a Uint16Array of
   * IEEE binary16 bits. The public scaledDotProductAttention only ever builds float32 plans.
   */
  k: Float32Array | Uint16Array;
  v: Float32Array | Uint16Array;
  /** Element type of k and v; absent means 'float32'. */
  kvDtype?: KvDtype;
  out: Float32Array;
  B: number;
  H: number;
  Hkv: number;
  Sq: number;
  Sk: number;
  D: number;
  Dv: number;
  layout: Layout;
  scale: number;
  /** 0 = off. */
  softcap: number;
  /** When true, query row i of batch b may see key j iff j <= offsets[b] + i. */
  causal: boolean;
  /** [B] absolute position of query row 0, per batch; null unless causal. */
  offsets: Int32Array | null;
  /** [B] values in [0, Sk]; keys j >= kvLengths[b] are blocked. */
  kvLengths: Int32Array | null;
  /** Float: added to the score (-Infinity blocks). Uint8: 0 blocks. */
  mask: Float32Array | Uint8Array | null;
  /** Mask dims right-aligned and padded with 1 to [B, H, Sq, Sk] rank. */
  maskDims: [number, number, number, number];
  /** Element strides of the mask over (b, h, i, j); 0 where a dim is broadcast. */
  maskStrides: [number, number, number, number];
  /** [B, H, Sq, Sk] probabilities to fill, or null. */
  weights: Float32Array | null;
  /** [B, H, Sq, Sk] pre-softmax scores to fill (-Infinity where blocked), or null. */
  scores: Float32Array | null;
}

/** Element strides over (batch, head, seq) for a tensor of the given layout; width is contiguous. */
export function stridesFor(layout: Layout, heads: number, seq: number, width: number): [number, number, number] {
  return layout === 'bhsd' ? [heads * seq * width, seq * width, width] : [seq * heads * width, width, heads * width];
}
