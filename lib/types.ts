// Public types of the package, on the bottom floor of lib/: they import nothing but the plan's
// Layout, so every module may use them. Shapes: B batch, H query heads, Hkv key/value heads,
// Sq query length, Sk key length, D query/key head size, Dv value head size, E model width.
export type { Layout } from './plan.js';
import type { Layout } from './plan.js';

/**
 * Causal alignment. `true` and `'bottom-right'`: the last query lines up with the last valid key
 * (offset = L_b − Sq, the KV-cache rule). `'top-left'`: offset 0 (PyTorch `is_causal`).
 */
export type Causal = boolean | 'bottom-right' | 'top-left';

/**
 * A mask broadcastable to [B, H, Sq, Sk]: dims are right-aligned as in NumPy and each is the
 * full size or 1. Float32Array data is added to the scaled scores (−Infinity blocks); Uint8Array
 * data is boolean, 1 = may attend, 0 = blocked (PyTorch SDPA polarity).
 */
export interface AttentionMask {
  data: Float32Array | Uint8Array;
  dims: readonly number[];
}

export interface SdpaOptions {
  /** B, default 1. */
  batch?: number;
  /** H, query heads. */
  heads: number;
  /** Hkv, key/value heads; must divide heads. Default heads. Query head h reads kv head ⌊h / (H/Hkv)⌋. */
  kvHeads?: number;
  /** Sq, query length. */
  seqQ: number;
  /** Sk, key length. Default seqQ. */
  seqK?: number;
  /** D, query/key head size. */
  headDim: number;
  /** Dv, value head size. Default headDim. */
  valueDim?: number;
  /** 'bhsd' (default): q [B,H,Sq,D]. 'bshd': q [B,Sq,H,D], what projections produce. */
  layout?: Layout;
  /** Multiplies q·k. Default 1/√headDim. */
  scale?: number;
  /** If c > 0, s = c·tanh(s/c) after scaling and before the mask. Default 0 (off). */
  softcap?: number;
  /**
   * Causal masking and its alignment when Sq ≠ Sk. Default false. Positions (for causal, `window`
   * and `alibi`): query row i of batch b sits at p(i) = offset_b + i and key j at j, with offset_b =
   * `queryOffset` when given, else 0 for 'top-left', else L_b − Sq for `true` / 'bottom-right'
   * (L_b = kvLengths[b] or Sk), else Sk − Sq in a call that is not causal.
   */
  causal?: Causal;
  /** Absolute position of query row 0 (per batch with an Int32Array [B]); implies causal. */
  queryOffset?: number | Int32Array;
  mask?: AttentionMask;
  /** Int32Array [B], values in [0, Sk]: keys at positions ≥ kvLengths[b] are blocked. */
  kvLengths?: Int32Array;
  /** Output buffer [B,H,Sq,Dv] (or [B,Sq,H,Dv]); written and returned. */
  out?: Float32Array;
  /** true: also return the probabilities [B,H,Sq,Sk]; a Float32Array: fill it. */
  weights?: boolean | Float32Array;
  /** true: also return the pre-softmax scores [B,H,Sq,Sk]; a Float32Array: fill it. */
  scores?: boolean | Float32Array;
  /**
   * Sliding window over positions (FlashAttention's `window_size`): key j is visible from query row
   * i iff p(i) − left ≤ j ≤ p(i) + right, where p(i) is the row's position (see `causal`); an
   * omitted side (or `Infinity`) is unbounded. Integers ≥ 0. Combines with causal: Hugging Face's
   * `sliding_window: W` (Mistral, Gemma 2/3, gpt-oss, Qwen 2) is `{ left: W − 1 }` with
   * `causal: true`; ModernBERT's `local_attention: A` is `{ left: A / 2, right: A / 2 }`. Key blocks
   * outside every row's window are never read: the cost is O(Sq·window).
   */
  window?: AttentionWindow;
  /**
   * Float32Array [H]: one logit per query head that joins each row's softmax denominator and
   * carries no value (gpt-oss): w_j = e^(s_j) / (e^(sink_h) + Σ_k e^(s_k)). Returned weights
   * exclude it (a row sums to less than 1); a row with every key blocked still gives zeros. A sink
   * of −Infinity is the same as none; +Infinity takes the whole row (zeros); NaN gives NaN.
   */
  sinks?: Float32Array;
  /**
   * Float32Array [H] of ALiBi slopes m_h: −m_h·|p(i) − j| is added to each score after softcap and
   * before the masks (BLOOM, MPT; under causal masking the same as their +m_h·j). `alibiSlopes(H)`
   * gives the standard slopes.
   */
  alibi?: Float32Array;
  /**
   * `true`: also return each row's log-sum-exp [B, H, Sq], log(e^(sink_h) + Σ_visible e^(s_j)) in
   * score units (−Infinity for a row with nothing visible and no sink); a Float32Array [B, H, Sq]
   * (in both layouts): fill it. Two pieces of one row's keys, computed apart with their lse
   * (l₁, l₂) and outputs (o₁, o₂), merge exactly: l = log(e^l₁ + e^l₂), o = e^(l₁−l)·o₁ + e^(l₂−l)·o₂
   * (a sink belongs to one piece only).
   */
  lse?: boolean | Float32Array;
  /** Opt-in: a RangeError naming the first NaN or ±Infinity in q, k, v or alibi (`Expected finite values in q but q[17] is NaN`; sinks are not checked: −Infinity there means no sink). Default false: they propagate per IEEE. */
  checkFinite?: boolean;
}

/** A sliding window: how many keys before (`left`) and after (`right`) its own position a query row sees. */
export interface AttentionWindow {
  /** Keys before the row's position it sees (j ≥ p(i) − left). Integer ≥ 0; omitted: unbounded. */
  left?: number;
  /** Keys after the row's position it sees (j ≤ p(i) + right). Integer ≥ 0; omitted: unbounded. */
  right?: number;
}

/** How a rotary embedding pairs the values it rotates. */
export type RopeStyle = 'half' | 'interleaved';

/** Frequency scaling of a rotary embedding, each exactly as Hugging Face's `rope_init_fn` of that `rope_type`. */
export type RopeScaling =
  | {
    /** f / factor (Hugging Face 'linear'). */
    type: 'linear';
    factor: number;
  }
  | {
    /** Llama 3.1's rule: low frequencies divided by factor, high ones kept, a smooth ramp between. */
    type: 'llama3';
    factor: number;
    lowFreqFactor: number;
    highFreqFactor: number;
    /** `original_max_position_embeddings`. */
    originalMaxPositions: number;
  }
  | {
    /** YaRN (gpt-oss, Qwen long context): interpolation and extrapolation blended by a linear ramp. */
    type: 'yarn';
    factor: number;
    /** `original_max_position_embeddings`. */
    originalMaxPositions: number;
    /** Default 32. */
    betaFast?: number;
    /** Default 1. */
    betaSlow?: number;
    /** Round the ramp's ends to integers (floor / ceil), as Hugging Face does unless `truncate: false`. Default true. */
    truncate?: boolean;
  };

/** The rotary settings of a model (its Hugging Face config's `rope_theta`, `partial_rotary_factor`, `rope_scaling`). */
export interface RopeSettings {
  /** Base of the frequencies f_t = theta^(−2t/r). Default 10000. Not with `invFreq`. */
  theta?: number;
  /** r: the first r values of each head rotate, the rest pass through. Even, ≤ headDim. Default headDim. */
  rotaryDim?: number;
  /** 'half' (default; Hugging Face rotate_half) pairs (x[t], x[t + r/2]); 'interleaved' (GPT-J) pairs (x[2t], x[2t+1]). */
  style?: RopeStyle;
  /** Frequency scaling; default none. Not with `invFreq`. */
  scaling?: RopeScaling;
  /** [r/2] frequencies given directly (any other scheme: LongRoPE, dynamic NTK). Excludes `theta` and `scaling`. */
  invFreq?: Float32Array | Float64Array;
  /** Multiplies cos and sin. Default 1, or YaRN's 0.1·ln(factor) + 1 with `scaling.type: 'yarn'`. */
  attentionFactor?: number;
}

/**
 * Token positions: an integer start (row s of every sequence at start + s), or an Int32Array of S
 * positions shared by the batch, or of B·S positions (one row of S per sequence). Integers ≥ 0.
 */
export type Positions = number | Int32Array;

export interface RotaryEmbeddingOptions {
  /** B, default 1. */
  batch?: number;
  /** H, heads in x. */
  heads: number;
  /** S, default x.length / (B·H·D). */
  seqLen?: number;
  /** D, values per head. */
  headDim: number;
  /** 'bhsd' (default): x is [B, H, S, D]; 'bshd': [B, S, H, D]. */
  layout?: Layout;
  /** Written and returned; may be x itself (in place). Otherwise must not overlap x. Default a new array. */
  out?: Float32Array;
  /** Default 0 (row s at position s). */
  positions?: Positions;
  /** Default: theta 10000, every value rotated, 'half' style. */
  rope?: RopeSettings;
}

export interface RotaryEmbeddingAsyncOptions extends RotaryEmbeddingOptions {
  /** Rejects with an AbortError if aborted before the work starts; `out` is then untouched. */
  signal?: AbortSignal;
}

/** What `rotaryFrequencies` returns: the frequencies a RopeSettings resolves to. */
export interface RotaryFrequencies {
  /** [rotaryDim / 2], f_t in float64. */
  invFreq: Float64Array;
  rotaryDim: number;
  style: RopeStyle;
  /** Multiplies cos and sin. */
  attentionFactor: number;
}

/**
 * RMSNorm of queries and keys after the projections (Qwen 3, Gemma 3, OLMo 2):
 * y = x / √(mean(x²) + eps) · (weightOffset + w).
 */
export interface QkNormSettings {
  /** Query norm weights: [headDim] with span 'head', [numHeads·headDim] with 'all'. Omitted: queries are not normalized. */
  q?: Float32Array;
  /** Key norm weights: [headDim] with span 'head', [numKvHeads·headDim] with 'all'. Omitted: keys are not normalized. */
  k?: Float32Array;
  /** Default 1e-6. */
  eps?: number;
  /** Added to every weight: 1 for Gemma's (1 + w). Default 0. */
  weightOffset?: number;
  /** 'head' (default): each head's Dh values; 'all': a token's whole query or key vector (OLMo 2). */
  span?: 'head' | 'all';
}

export interface SdpaAsyncOptions extends SdpaOptions {
  /** Rejects with an AbortError if aborted before the work starts; `out` is then untouched. */
  signal?: AbortSignal;
}

export interface SdpaResult {
  output: Float32Array;
  weights?: Float32Array;
  scores?: Float32Array;
  /** [B, H, Sq] log-sum-exp of each row, when `lse: true`. */
  lse?: Float32Array;
}

/** Options asking for a `{ output, weights?, scores?, lse? }` result. */
export type SdpaOptionsWithResult = SdpaOptions & ({ weights: true } | { scores: true } | { lse: true });

export type BackendName = 'native' | 'js';
export type SimdName = 'avx512' | 'avx2' | 'neon' | 'scalar' | 'js';

export interface BackendInfo {
  backend: BackendName;
  /** Kernel set in use: 'js' for the TypeScript backend. */
  simd: SimdName;
  threads: number;
  version: string;
  /**
   * Native backend: how the pool threads that run async calls are scheduled, from
   * QKV_ASYNC_PRIORITY as the process had it when the addon first loaded (later changes, and a
   * worker_thread's own `env`, do not apply: the pool is process-wide). `'idle'` (default): Linux
   * SCHED_IDLE, so the event loop never waits for a core they hold (elsewhere, or if the OS
   * refuses, they keep the normal policy).
   */
  asyncPriority?: 'idle' | 'normal';
  /** Why the native addon did not load, when it did not. */
  nativeError?: string;
}

// ---------------------------------------------------------------------------------------------
// Projections and the layer

/**
 * How a weight matrix is stored. `'out-in'`: W is [out, in] and y = x·Wᵀ + b (PyTorch nn.Linear,
 * the default). `'in-out'`: W is [in, out] and y = x·W + b (the Q = X·W^Q form; GPT-2 Conv1D).
 */
export type WeightLayout = 'out-in' | 'in-out';

/**
 * Element type of the weights of a Linear or MultiHeadAttention. 'bfloat16' and 'float16' weights
 * are `Uint16Array`s of raw bits, exactly as a safetensors BF16 / F16 tensor stores them (pass
 * `new Uint16Array(file.buffer, offset, n)`, no conversion). They stay 16-bit when packed (half
 * the memory, half the bytes a decode step reads) and are widened exactly to float32 inside the
 * kernels, which accumulate in float32: the result is that of the float32 layer whose weights
 * are the widened values (bitwise, at the same thread count and kernel set). Activations are
 * never rounded to 16 bits.
 */
export type WeightDtype = 'float32' | 'bfloat16' | 'float16';

/** A weight tensor: a Float32Array, or with a half `weightDtype` a Uint16Array of its bits. */
export type WeightArray = Float32Array | Uint16Array;

export interface LinearOptions {
  /** K, floats per input row. Required: x is [M, K] with M = x.length / K. */
  inFeatures: number;
  /** N, floats per output row. Default weight.length / inFeatures. */
  outFeatures?: number;
  /** Default 'out-in' (weight [N, K]); 'in-out' is weight [K, N]. */
  weightLayout?: WeightLayout;
  /** Default 'float32'; 'bfloat16' | 'float16': weight (and bias, if not a Float32Array) is a Uint16Array of bits. */
  weightDtype?: WeightDtype;
  /** Output [M, N], written and returned; must not overlap x, weight or bias. */
  out?: Float32Array;
  /** Opt-in: a RangeError naming the first NaN or ±Infinity in x, weight or bias (`Expected finite values in q but q[17] is NaN`). Default false: they propagate per IEEE. */
  checkFinite?: boolean;
}

export interface LinearAsyncOptions extends LinearOptions {
  /** Rejects with an AbortError if aborted before the work starts; `out` is then untouched. */
  signal?: AbortSignal;
}

export interface LinearConfig {
  /** [outFeatures, inFeatures] ('out-in') or [inFeatures, outFeatures] ('in-out'); copied. */
  weight: WeightArray;
  /** [outFeatures]; copied. Default none (zero). A Float32Array, or bits in the weightDtype. */
  bias?: WeightArray | null;
  inFeatures: number;
  /** Default weight.length / inFeatures. */
  outFeatures?: number;
  weightLayout?: WeightLayout;
  /** Default 'float32'; 'bfloat16' | 'float16': weight is a Uint16Array of bits, kept 16-bit when packed. */
  weightDtype?: WeightDtype;
  /** Opt-in: a RangeError naming the first NaN or ±Infinity in weight or bias, at construction (`Expected finite values in q but q[17] is NaN`). Default false: they propagate per IEEE. */
  checkFinite?: boolean;
}

export interface LinearForwardOptions {
  /** Output [M, outFeatures], written and returned; must not overlap x. */
  out?: Float32Array;
  /** Opt-in: a RangeError naming the first NaN or ±Infinity in x (`Expected finite values in q but q[17] is NaN`). Default false: they propagate per IEEE. */
  checkFinite?: boolean;
}

export interface LinearForwardAsyncOptions extends LinearForwardOptions {
  /** Rejects with an AbortError if aborted before the work starts; `out` is then untouched. */
  signal?: AbortSignal;
}

/**
 * Projection weights of a MultiHeadAttention layer, with Dh = headDim. In 'out-in': wq [H·Dh, E],
 * wk and wv [Hkv·Dh, E], wo [E, H·Dh]; 'in-out' stores the transpose of each. Biases: bq [H·Dh],
 * bk and bv [Hkv·Dh], bo [E]; a missing bias is zero.
 */
export interface MhaSeparateWeights {
  wq: WeightArray;
  wk: WeightArray;
  wv: WeightArray;
  wo: WeightArray;
  bq?: WeightArray;
  bk?: WeightArray;
  bv?: WeightArray;
  bo?: WeightArray;
}

/**
 * PyTorch nn.MultiheadAttention's state (`in_proj_weight`, `in_proj_bias`, `out_proj.weight`,
 * `out_proj.bias`): inProjWeight [3E, E] = [Wq; Wk; Wv] in 'out-in', [E, 3E] = [Wq | Wk | Wv] in
 * 'in-out' (GPT-2 c_attn). Needs numKvHeads = numHeads and numHeads·headDim = embedDim.
 */
export interface MhaPackedWeights {
  inProjWeight: WeightArray;
  inProjBias?: WeightArray;
  outProjWeight: WeightArray;
  outProjBias?: WeightArray;
}

export type MhaWeights = MhaSeparateWeights | MhaPackedWeights;

export interface MultiHeadAttentionConfig {
  /** E, floats per token in and out. */
  embedDim: number;
  /** H, query heads. */
  numHeads: number;
  /** Hkv, key/value heads; must divide numHeads. Default numHeads. */
  numKvHeads?: number;
  /** Dh, per-head size of q, k and v. Default embedDim / numHeads (which must then be an integer). */
  headDim?: number;
  /** false: the layer has no biases (giving one is a TypeError). Default true (missing ones are zero). */
  bias?: boolean;
  /** Copied and packed at construction. */
  weights: MhaWeights;
  /** Default 'out-in'. */
  weightLayout?: WeightLayout;
  /**
   * Default 'float32'. 'bfloat16' | 'float16': every weight is a Uint16Array of bits (safetensors
   * BF16 / F16), kept 16-bit when packed; biases are Uint16Arrays of the same dtype or Float32Arrays.
   */
  weightDtype?: WeightDtype;
  /** Rotary embedding of queries and keys (after the projections and qkNorm). Default none. */
  rope?: RopeSettings;
  /** RMSNorm of queries and keys after the projections, before RoPE. Default none. */
  qkNorm?: QkNormSettings;
  /** Score scale. Default 1/√headDim (Gemma: query_pre_attn_scalar^(−1/2)). */
  scale?: number;
  /** Scores become c·tanh(s/c) (Gemma 2's attn_logit_softcapping). Default 0 (off). */
  softcap?: number;
  /** Sliding window, as in scaledDotProductAttention (Hugging Face sliding_window W is { left: W − 1 }). */
  window?: AttentionWindow;
  /** Float32Array [numHeads]: learned sink logits (gpt-oss). */
  sinks?: Float32Array;
  /** ALiBi slopes: true = alibiSlopes(numHeads), or a Float32Array [numHeads]. */
  alibi?: boolean | Float32Array;
}

export interface MhaForwardOptions {
  /** B, default 1. */
  batch?: number;
  /** S, tokens per sequence. Default x.length / (batch·E). */
  seqLen?: number;
  /** A token sees itself and the earlier tokens of its own sequence (key j ≤ query i). Default false. */
  causal?: boolean;
  /** Broadcastable to [B, H, Sq, Sk], as in scaledDotProductAttention. */
  mask?: AttentionMask;
  /** Int32Array [B]: keys at positions ≥ kvLengths[b] are padding and blocked. */
  kvLengths?: Int32Array;
  /** Int32Array [B] in [0, S]: query rows i ≥ seqLens[b] are padding; their output (and weights) are 0. */
  seqLens?: Int32Array;
  /** [B, Sk, E]: cross-attention, K and V projected from it (Sk = context.length / (B·E)). */
  context?: Float32Array;
  /** Also return the attention probabilities. Default false. */
  needWeights?: boolean;
  /** With needWeights: their mean over heads, [B, Sq, Sk]. Default false (ignored without needWeights). */
  averageWeights?: boolean;
  /** Output [B, S, E], written and returned; must not overlap any input. */
  out?: Float32Array;
  /**
   * Incremental decoding: a cache made by this layer's `createCache`. The new
   * tokens' K and V are appended to sequence b at positions [lengths[b], lengths[b] + n_b)
   * (n_b = seqLens[b], default S), attention runs over each sequence's valid cache with the
   * bottom-right causal rule (query row i of sequence b sits at position lengths[b] + i), then the
   * lengths advance. With a cache, `causal` defaults to true (`false` is a RangeError), `batch`
   * defaults to `cache.batch`, and `mask`, `kvLengths`, `context` and `needWeights` are not allowed.
   */
  cache?: KVCache;
  /** Throw a RangeError naming the first NaN or ±Infinity in x (or context) before computing. Default false. */
  checkFinite?: boolean;
  /**
   * Positions of the rotary embedding (layers with `rope`), as in applyRotaryEmbedding: a start,
   * S shared positions or B·S. Default: row i of sequence b at i, or cache.lengths[b] + i with a
   * cache. They steer the rotation only: causal masking, windows and ALiBi follow the row index.
   */
  positions?: Positions;
}

/**
 * Element type of a KVCache's storage: 'float32', or 'float16' (IEEE binary16: half the memory and
 * about half the decode time; K and V rounded to the nearest half, attention computed in fp32).
 */
export type KVCacheDType = 'float32' | 'float16';

/** A KVCache's contents as plain arrays (what `cache.export()` returns and `from` accepts). */
export interface KVCacheExport {
  /** [B, Hkv, L, Dh]; rows at positions ≥ lengths[b] are ignored on import (0 on export). */
  k: Float32Array;
  /** [B, Hkv, L, Dh]. */
  v: Float32Array;
  /** Int32Array [B]; L = max(lengths). */
  lengths: Int32Array;
}

export interface KVCacheOptions {
  /** B, sequences decoded together. Default 1 (or from.lengths.length with `from`). */
  batch?: number;
  /** Positions per sequence; appending past it is a RangeError that changes nothing. */
  maxLength: number;
  /**
   * Storage type. Default 'float32'. 'float16' stores K and V as IEEE binary16: half the memory per
   * token and close to half the decode time (decode streams the whole cache once per token); each
   * K and V element is rounded to the nearest half (relative error <= 2^-11), the attention itself
   * still runs in fp32. `export()` still gives Float32Arrays.
   */
  dtype?: KVCacheDType;
  /** Contents to start from, as returned by `cache.export()` (of a cache of any layer with the same Hkv and Dh). */
  from?: KVCacheExport;
}

export interface MhaForwardAsyncOptions extends MhaForwardOptions {
  /** Rejects with an AbortError if aborted before the work starts; `out` is then untouched. */
  signal?: AbortSignal;
}

export interface MhaResult {
  /** [B, S, E]. */
  output: Float32Array;
  /** [B, H, Sq, Sk], or [B, Sq, Sk] with averageWeights. */
  weights: Float32Array;
}

/**
 * Preallocated keys and values of one MultiHeadAttention layer for a batch of `batch` sequences of
 * up to `maxLength` tokens each. Made by `layer.createCache(...)`; pass it as `forward(x, { cache })`
 * to that same layer (it belongs to it). Each sequence has its own length (ragged batches).
 */
export interface KVCache {
  /** B, sequences in the batch. */
  readonly batch: number;
  /** Positions per sequence. */
  readonly maxLength: number;
  /**
   * Storage element type: 'float32', or 'float16' (half the memory; K and V rounded to the nearest
   * half on append, attention still computed in fp32).
   */
  readonly dtype: KVCacheDType;
  /** Bytes held by K and V: 2·B·maxLength·Hkv·Dh·(4, or 2 for 'float16'). */
  readonly byteLength: number;
  /** Int32Array [B]: the valid positions of each sequence (a copy; change them with truncate / reset). */
  readonly lengths: Int32Array;
  /** The longest sequence: max over `lengths`. */
  readonly length: number;
  /** Empties every sequence (lengths become 0; storage is kept). */
  reset(): void;
  /**
   * Rolls every sequence back to at most n tokens (lengths[b] = min(lengths[b], n)), e.g. to drop
   * rejected draft tokens in speculative decoding. The next forward appends at the new lengths.
   */
  truncate(n: number): void;
  /**
   * A copy of the valid contents: `{ k [B, Hkv, L, Dh], v [B, Hkv, L, Dh], lengths [B] }` with
   * L = cache.length; rows at positions >= lengths[b] are 0. Restore with
   * `layer.createCache({ batch, maxLength, from })`. A 'float16' cache exports the exact values of
   * its halves, as float32.
   */
  export(): KVCacheExport;
}
