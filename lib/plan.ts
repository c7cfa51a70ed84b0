// The resolved form of one attention call, handed unchanged to whichever backend runs it: what
// lib/sdpa.ts makes of a scaledDotProductAttention call, and what the layer (lib/layer/forward.ts)
// makes of its own attention step. Both build it with makeSdpaPlan, after all validation. Backends
// trust it (the native binding re-checks lengths anyway); nothing in it is a default any more.

/** A window side with no bound (SdpaPlan.windowLeft / windowRight; the binding's dims slots too). */
export const WINDOW_UNBOUNDED = -1;

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
  /** When true, query row i of batch b may see key j iff j <= p(i) = offsets[b] + i. */
  causal: boolean;
  /** Keys a row sees before its position (key j visible only if j >= p(i) − windowLeft); −1 = unbounded. */
  windowLeft: number;
  /** Keys a row sees after its position (key j visible only if j <= p(i) + windowRight); −1 = unbounded. */
  windowRight: number;
  /**
   * [B] position of query row 0 per batch (row i sits at offsets[b] + i); non-null whenever causal,
   * a window or ALiBi needs positions, else null.
   */
  offsets: Int32Array | null;
  /** [B] values in [0, Sk]; keys j >= kvLengths[b] are blocked. */
  kvLengths: Int32Array | null;
  /** [H] sink logits (they join each row's softmax denominator and carry no value), or null. */
  sinks: Float32Array | null;
  /** [H] ALiBi slopes: −alibi[h]·|p(i) − j| is added to each score after softcap, or null. */
  alibi: Float32Array | null;
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
  /** [B, H, Sq] each row's log-sum-exp to fill (log(e^sink + Σ visible e^s)), or null. */
  lse: Float32Array | null;
}

/**
 * What makeSdpaPlan derives the rest of a plan from: the mask's strides from its dims; the
 * modifiers a caller does not use may be left out.
 */
export type SdpaPlanInput = Omit<
  SdpaPlan, 'mask' | 'maskDims' | 'maskStrides' | 'windowLeft' | 'windowRight' | 'sinks' | 'alibi' | 'lse'
> & {
  /** Mask data and its dims right-aligned to [B, H, Sq, Sk] (1 = broadcast), or null. */
  mask: { data: Float32Array | Uint8Array; dims: [number, number, number, number] } | null;
  windowLeft?: number;
  windowRight?: number;
  sinks?: Float32Array | null;
  alibi?: Float32Array | null;
  lse?: Float32Array | null;
};

/** The one place a plan is put together: mask strides from its dims, the defaults of the modifiers. */
export function makeSdpaPlan(i: SdpaPlanInput): SdpaPlan {
  const maskDims: [number, number, number, number] = i.mask ? i.mask.dims : [1, 1, 1, 1];
  const maskStrides: [number, number, number, number] = [0, 0, 0, 0];
  let stride = 1;
  for (let axis = 3; axis >= 0; axis--) {
    maskStrides[axis] = maskDims[axis] === 1 ? 0 : stride;
    stride *= maskDims[axis];
  }
  // scale and softcap rounded to float32 here, once: the native kernels compute with float32
  // values, and the TypeScript kernels then compute with the same ones.
  // Every field written out, in one order: one object shape for every plan (a spread of the input
  // was several microseconds per call).
  const plan: SdpaPlan = {
    q: i.q, k: i.k, v: i.v, out: i.out,
    B: i.B, H: i.H, Hkv: i.Hkv, Sq: i.Sq, Sk: i.Sk, D: i.D, Dv: i.Dv,
    layout: i.layout, scale: Math.fround(i.scale), softcap: Math.fround(i.softcap),
    causal: i.causal, windowLeft: i.windowLeft ?? WINDOW_UNBOUNDED, windowRight: i.windowRight ?? WINDOW_UNBOUNDED,
    offsets: i.offsets, kvLengths: i.kvLengths, sinks: i.sinks ?? null, alibi: i.alibi ?? null,
    mask: i.mask ? i.mask.data : null, maskDims, maskStrides,
    weights: i.weights, scores: i.scores, lse: i.lse ?? null,
  };
  if (i.kvDtype !== undefined) plan.kvDtype = i.kvDtype;
  return plan;
}

/** Element strides over (batch, head, seq) for a tensor of the given layout; width is contiguous. */
export function stridesFor(layout: Layout, heads: number, seq: number, width: number): [number, number, number] {
  return layout === 'bhsd' ? [heads * seq * width, seq * width, width] : [seq * heads * width, width, heads * width];
}

/**
 * The resolved form of one rotary (and RMSNorm) pass, handed unchanged to a backend: what
 * lib/rope.ts makes of an applyRotaryEmbedding call, and what the layer makes of its qkNorm and
 * RoPE step on q and k. x holds B·S·H vectors of D floats, vector (b, s, h) at element
 * b·strides[0] + s·strides[1] + h·strides[2]. For each token (b, s), in this order:
 *   1. norm (normSpan 'head'): each head's D values y = x / √(mean(x²) + normEps) · (normOffset + norm[d]);
 *      normSpan 'all': the token's H·D values together, with norm [H·D] (then the H vectors must be
 *      adjacent: strides[2] = D);
 *   2. rotation (positions non-null): pairs (t, t + r/2) ('half') or (2t, 2t + 1) ('interleaved'),
 *      t < r/2 = invFreq.length, rotate by the angle positions[b·S + s]·invFreq[t], computed in
 *      float64, with c = fround(cos·attentionFactor), s = fround(sin·attentionFactor):
 *      y₁ = x₁·c − x₂·s, y₂ = x₂·c + x₁·s. Values from r = rotaryDim to D pass through.
 * out may be x (in place); otherwise they do not overlap and out has x's layout.
 */
export interface RopePlan {
  x: Float32Array;
  out: Float32Array;
  B: number;
  S: number;
  H: number;
  D: number;
  /** Element strides of (b, s, h); the D values of a vector are contiguous. */
  strides: [number, number, number];
  /** [B·S] position of each token, or null: no rotation (norm only). */
  positions: Int32Array | null;
  /** [rotaryDim / 2] frequencies (empty when positions is null). */
  invFreq: Float64Array;
  rotaryDim: number;
  interleaved: boolean;
  attentionFactor: number;
  /** RMSNorm weights ([D] for 'head', [H·D] for 'all'), or null: no norm. */
  norm: Float32Array | null;
  normSpan: 'head' | 'all';
  normEps: number;
  normOffset: number;
}
