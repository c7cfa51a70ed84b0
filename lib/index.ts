/**
 * qkv: transformer self-attention on the CPU.
 *
 * The backend is chosen once, at load, from QKV_BACKEND (auto | native | js): auto uses the
 * native SIMD addon when it loads and the TypeScript kernels otherwise (info().nativeError says
 * why). `qkv/js` exports the same API on the TypeScript kernels.
 * @module
 */
import { createApi } from './api.js';
import { LinearBase } from './linear.js';
import { MultiHeadAttentionBase } from './mha.js';
import { activeBackend, setPoolThreads } from './select.js';
import type { KVCache, LinearConfig, MultiHeadAttentionConfig } from './types.js';

const BACKEND = activeBackend;

const api = createApi(activeBackend);

/**
 * Scaled dot-product attention: out = softmax(scale·q·kᵀ + mask) · v, per batch and head.
 *
 * Shapes ('bhsd', the default layout): q [B,H,Sq,D], k [B,Hkv,Sk,D], v [B,Hkv,Sk,Dv] →
 * out [B,H,Sq,Dv]; with layout 'bshd' the head and sequence axes swap. Inputs are read in place
 * (any byteOffset, never copied). Returns `out`, or `{ output, weights?, scores? }` when
 * `weights: true` or `scores: true`.
 *
 * @throws TypeError for a wrong kind of argument or an unknown option name.
 * @throws RangeError for a wrong size, dim or value. Nothing is written when it throws.
 * @example
 * const out = scaledDotProductAttention(q, k, v, { heads: 8, seqQ: 128, headDim: 64, causal: true });
 */
export const scaledDotProductAttention = api.scaledDotProductAttention;

/**
 * {@link scaledDotProductAttention} computed off the event loop, on the library's own native
 * thread pool (not libuv's), resolving to the same result. Arguments are validated synchronously
 * (a bad call throws before any Promise exists). `options.signal` (an AbortSignal) rejects a call
 * that has not started with an AbortError, leaving `out` untouched. q, k, v, mask, `out`, weights
 * and scores are kept alive until the Promise settles; do not write to, transfer or resize them
 * before then.
 * @example
 * const out = await scaledDotProductAttentionAsync(q, k, v, { heads: 8, seqQ: 4096, headDim: 64, signal });
 */
export const scaledDotProductAttentionAsync = api.scaledDotProductAttentionAsync;

/** 'native' or 'js': which kernels this module runs. */
export const backend = api.backend;

/** Backend, SIMD kernel set, threads, version, and why native did not load (if it did not). */
export const info = api.info;

/**
 * A fully connected layer: y = x·Wᵀ + b for `weightLayout: 'out-in'` (the default; weight
 * [outFeatures, inFeatures], PyTorch nn.Linear) or y = x·W + b for `'in-out'` (weight
 * [inFeatures, outFeatures], GPT-2 Conv1D). x is [M, inFeatures] with M = x.length / inFeatures;
 * the result is [M, outFeatures]. `outFeatures` defaults to weight.length / inFeatures; `bias` may be
 * omitted (`linear(x, w, options)`), null or undefined. `options.out` is written and returned.
 *
 * The weight is packed on every call: for a weight used more than once, build a {@link Linear}.
 * @throws TypeError for a wrong kind of argument or an unknown option name.
 * @throws RangeError for a wrong size, a length that is not the product of its dims, or `out`
 * overlapping an input. Nothing is written when it throws.
 * @example
 * const y = linear(x, weight, bias, { inFeatures: 768, outFeatures: 3072 }); // PyTorch nn.Linear(768, 3072)
 */
export const linear = api.linear;

/** {@link linear} computed off the event loop on the native pool; same buffer rules as the other Async calls. */
export const linearAsync = api.linearAsync;

/**
 * Sets how many threads one native call may use (the pool is process-wide: every call, layer and
 * worker_thread shares it). Default: QKV_THREADS, else the CPUs this process may use (affinity and
 * cgroup quota). No effect on the js backend.
 */
export function setThreads(n: number): void {
  setPoolThreads(n);
}

/**
 * A fully connected layer whose weight is copied and packed once (into the backend's SGEMM panel
 * format) and then applied many times: `new Linear({ weight, bias?, inFeatures, outFeatures?,
 * weightLayout? })`, `.forward(x, { out? })` with x [M, inFeatures] → [M, outFeatures].
 * Same layouts and errors as {@link linear}.
 * @example
 * const fc = new Linear({ weight: fcWeight, bias: fcBias, inFeatures: 768, outFeatures: 3072 });
 * const h = fc.forward(x);
 */
export class Linear extends LinearBase {
  constructor(config: LinearConfig) {
    super(BACKEND, config);
  }
}

/**
 * Multi-head attention, the layer: Q, K, V projections, scaled dot-product attention per head,
 * output projection (DESIGN.md, MultiHeadAttention).
 *
 * `new MultiHeadAttention({ embedDim, numHeads, numKvHeads?, headDim?, bias?, weights, weightLayout? })`
 * with `weights` either `{ wq, wk, wv, wo, bq?, bk?, bv?, bo? }` or PyTorch nn.MultiheadAttention's
 * state `{ inProjWeight, inProjBias?, outProjWeight, outProjBias? }`. In 'out-in' (default, PyTorch):
 * wq [H·Dh, E], wk and wv [Hkv·Dh, E], wo [E, H·Dh], inProjWeight [3E, E]; 'in-out' (GPT-2) is the
 * transpose of each (inProjWeight [E, 3E], c_attn). Weights are copied and packed at construction.
 *
 * `forward(x, { batch?, seqLen?, causal?, mask?, kvLengths?, seqLens?, context?, needWeights?,
 * averageWeights?, out? })`: x [B, S, E] → [B, S, E]; with `needWeights`, `{ output, weights }`
 * (weights [B, H, Sq, Sk], or [B, Sq, Sk] averaged over heads with `averageWeights`). `causal`: token i
 * sees tokens j ≤ i of its own sequence; `kvLengths` blocks padded keys; `seqLens` marks padded query
 * rows (output 0); `context` [B, Sk, E] gives cross-attention. A layer reuses its scratch buffers
 * across calls; `forwardAsync` gives each call in flight its own, so concurrent async calls are safe.
 *
 * Incremental decoding: `layer.createCache({ batch?, maxLength, dtype?: 'float32' | 'float16', from? })`
 * gives a {@link KVCache}; `forward(x, { cache, seqLens? })` projects the new tokens, appends their K
 * and V at each sequence's length, attends over the cache (bottom-right causal) and advances the
 * lengths. Step-by-step decoding equals the full causal forward row by row (with a 'float16' cache,
 * up to the rounding of K and V to halves). Past `maxLength` is a RangeError that changes nothing.
 * @throws TypeError for a wrong kind of argument, an unknown option name, or a bias with `bias: false`.
 * @throws RangeError for a wrong size or dim (the message gives the formula, e.g. `H*Dh*E = 12*64*768`),
 * numHeads % numKvHeads ≠ 0, a mask that does not broadcast, lengths out of range, or `out`
 * overlapping an input. Nothing is written when it throws.
 * @example
 * const mha = new MultiHeadAttention({ embedDim: 768, numHeads: 12, weights: { inProjWeight, inProjBias, outProjWeight, outProjBias } });
 * const y = mha.forward(x, { batch: 2, causal: true });
 * const cache = mha.createCache({ maxLength: 2048 });
 * mha.forward(prompt, { cache });          // prefill [1, S, E]
 * const next = mha.forward(token, { cache }); // one decode step [1, 1, E]
 */
export class MultiHeadAttention extends MultiHeadAttentionBase {
  constructor(config: MultiHeadAttentionConfig) {
    super(BACKEND, config);
  }
}

export type { LinearAsyncFunction, LinearFunction, ScaledDotProductAttention, ScaledDotProductAttentionAsync } from './api.js';
export type * from './types.js';
