// Public types of the package. Shapes use DESIGN.md's letters: B batch, H query heads, Hkv
// key/value heads, Sq query length, Sk key length, D query/key head size, Dv value head size.
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
  /** Causal masking and its alignment when Sq ≠ Sk. Default false. */
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
}

export interface SdpaAsyncOptions extends SdpaOptions {
  /** Rejects with an AbortError if aborted before the work starts; `out` is then untouched. */
  signal?: AbortSignal;
}

export interface SdpaResult {
  output: Float32Array;
  weights?: Float32Array;
  scores?: Float32Array;
}

/** Options asking for a `{ output, weights?, scores? }` result. */
export type SdpaOptionsWithResult = SdpaOptions & ({ weights: true } | { scores: true });

export type BackendName = 'native' | 'js';
export type SimdName = 'avx2' | 'neon' | 'scalar' | 'js';

export interface BackendInfo {
  backend: BackendName;
  /** Kernel set in use: 'js' for the TypeScript backend. */
  simd: SimdName;
  threads: number;
  version: string;
  /** Why the native addon did not load, when it did not. */
  nativeError?: string;
}
