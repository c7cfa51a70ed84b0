// MultiHeadAttention, the layer: projections + scaled dot-product attention + output projection.
// The class owns the packed weights (weights.ts) and runs calls: forward.ts plans a call into
// backend ops, scratch.ts lends it intermediates, admission.ts bounds the async calls that hold
// them, cache.ts keeps the keys and values of incremental decoding.
import type { Backend } from '../backend/types.js';
import type { KVCache, KVCacheOptions, MhaForwardAsyncOptions, MhaForwardOptions, MhaResult, MultiHeadAttentionConfig, WeightDtype, WeightLayout } from '../types.js';
import { expectCacheOptions } from '../validate-cache.js';
import { callerError, withCallerStack } from '../validate-async.js';
import { Admission } from './admission.js';
import { KVCache as KVCacheStore, importInto } from './cache.js';
import { planForward, type LayerCall, type LayerRef } from './forward.js';
import { loadMhaParams, type MhaParams } from './weights.js';

/**
 * Multi-head attention, the layer: Q, K, V projections, scaled dot-product attention per head,
 * output projection. Each face (`qkv`, `qkv/js`) binds it to its backend.
 *
 * `new MultiHeadAttention({ embedDim, numHeads, numKvHeads?, headDim?, bias?, weights, weightLayout?, weightDtype? })`
 * with `weights` either `{ wq, wk, wv, wo, bq?, bk?, bv?, bo? }` or PyTorch nn.MultiheadAttention's
 * state `{ inProjWeight, inProjBias?, outProjWeight, outProjBias? }`. In 'out-in' (default, PyTorch):
 * wq [H·Dh, E], wk and wv [Hkv·Dh, E], wo [E, H·Dh], inProjWeight [3E, E]; 'in-out' (GPT-2) is the
 * transpose of each (inProjWeight [E, 3E], c_attn). Weights are copied and packed at construction.
 * `weightDtype: 'bfloat16' | 'float16'` takes every weight as a Uint16Array of bits (a safetensors
 * BF16 / F16 tensor as stored), packs it 16-bit and widens it exactly inside the kernels: the
 * layer computes what the float32 layer on the widened weights computes.
 *
 * `forward(x, { batch?, seqLen?, causal?, mask?, kvLengths?, seqLens?, context?, needWeights?,
 * averageWeights?, out? })`: x [B, S, E] → [B, S, E]; with `needWeights`, `{ output, weights }`
 * (weights [B, H, Sq, Sk], or [B, Sq, Sk] averaged over heads with `averageWeights`). `causal`: token i
 * sees tokens j ≤ i of its own sequence; `kvLengths` blocks padded keys; `seqLens` marks padded query
 * rows (output 0); `context` [B, Sk, E] gives cross-attention. Intermediate buffers are reused
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
export class MultiHeadAttentionBase {
  /** E. */
  readonly embedDim: number;
  /** H. */
  readonly numHeads: number;
  /** Hkv. */
  readonly numKvHeads: number;
  /** Dh. */
  readonly headDim: number;
  /** Whether the layer has biases. */
  readonly bias: boolean;
  readonly weightLayout: WeightLayout;
  /** The dtype the weights were given (and are packed) in. */
  readonly weightDtype: WeightDtype;
  readonly #backend: Backend;
  readonly #p: MhaParams;
  readonly #admission: Admission;
  readonly #ref: LayerRef;

  protected constructor(backend: Backend, config: MultiHeadAttentionConfig) {
    const p = loadMhaParams(backend, config);
    this.#backend = backend;
    this.#p = p;
    this.#admission = new Admission(() => backend.threads());
    const admission = this.#admission;
    this.#ref = { owner: this, p, settled: () => admission.settled() };
    this.embedDim = p.E;
    this.numHeads = p.H;
    this.numKvHeads = p.Hkv;
    this.headDim = p.Dh;
    this.bias = p.bias;
    this.weightLayout = p.weightLayout;
    this.weightDtype = p.weightDtype;
  }

  /**
   * x [B, S, E] → [B, S, E]; `{ output, weights }` when `needWeights` (weights [B, H, Sq, Sk], or
   * [B, Sq, Sk] with `averageWeights`).
   */
  forward(x: Float32Array, options: MhaForwardOptions & { needWeights: true }): MhaResult;
  forward(x: Float32Array, options?: MhaForwardOptions & { needWeights?: false }): Float32Array;
  forward(x: Float32Array, options?: MhaForwardOptions): Float32Array | MhaResult;
  forward(x: Float32Array, options?: MhaForwardOptions): Float32Array | MhaResult {
    const call = planForward(this.#ref, x, options, false);
    if (!call.pre) {
      this.#backend.run(call.ops);
      return call.finish();
    }
    try {
      this.#backend.run(call.pre);
      call.append!();
      this.#backend.run(call.ops);
      return call.finish();
    } finally {
      call.cache!.busy = false;
    }
  }

  /**
   * {@link forward} computed off the event loop (on the native pool; the js backend runs it on a
   * later turn of the loop). Each call gets its own intermediate buffers, so concurrent calls on
   * one layer are safe. Inputs and `out` must not be written until the Promise settles.
   */
  forwardAsync(x: Float32Array, options: MhaForwardAsyncOptions & { needWeights: true }): Promise<MhaResult>;
  forwardAsync(x: Float32Array, options?: MhaForwardAsyncOptions & { needWeights?: false }): Promise<Float32Array>;
  forwardAsync(x: Float32Array, options?: MhaForwardAsyncOptions): Promise<Float32Array | MhaResult>;
  forwardAsync(x: Float32Array, options?: MhaForwardAsyncOptions): Promise<Float32Array | MhaResult> {
    const call = planForward(this.#ref, x, options, true);
    const caller = callerError();
    return call.pre ? this.#runCached(call, caller) : this.#runAdmitted(call, caller);
  }

  /**
   * A KV cache for incremental decoding with this layer: K and V storage for `batch` sequences of
   * up to `maxLength` tokens, preallocated ([B, maxLength, Hkv, Dh] each, `byteLength` =
   * 2·B·maxLength·Hkv·Dh·4, or ·2 with `dtype: 'float16'`, which rounds K and V to halves and still
   * attends in fp32). Pass it as `forward(x, { cache })`. `from` restores the contents of
   * `cache.export()` (k and v [B, Hkv, L, Dh], lengths [B], L = max(lengths) ≤ maxLength), into
   * either dtype.
   * @throws TypeError for an unknown option name or a wrong kind of value.
   * @throws RangeError for a bad dim, a `dtype` other than 'float32' or 'float16', or a `from` whose
   * sizes or lengths do not fit.
   */
  createCache(options: KVCacheOptions): KVCache {
    const { Hkv, Dh } = this.#p;
    const c = expectCacheOptions(options, Hkv, Dh);
    const cache = new KVCacheStore(this, c.B, c.maxLength, Hkv, Dh, c.dtype);
    if (c.from) importInto(cache, c.from, c.L);
    return cache;
  }

  /** An async call without a cache: waits for an admission place, then runs on its own scratch. */
  #runAdmitted(call: LayerCall, caller: RangeError): Promise<Float32Array | MhaResult> {
    const backend = this.#backend;
    return this.#admission.admit(call.signal)
      .then(() => {
        call.start!();
        return backend.runAsync(call.ops, call.signal);
      })
      .then(
        () => {
          // finally: a throwing finish must still give the place and scratch back.
          try {
            return call.finish();
          } finally {
            call.release!();
          }
        },
        (err: unknown) => {
          call.release?.();
          return Promise.reject(withCallerStack(err, caller));
        },
      );
  }

  /**
   * With a cache: projections on the pool, the append on the JS thread, then attention and the
   * output projection on the pool. The appended rows sit past lengths[b] (invisible) until finish()
   * advances the lengths, so an abort or error at any point changes nothing observable. The cache
   * is locked until the Promise settles.
   */
  #runCached(call: LayerCall, caller: RangeError): Promise<Float32Array | MhaResult> {
    const backend = this.#backend;
    const cache = call.cache!; // locked by planForward
    return backend.runAsync(call.pre!, call.signal)
      .then(() => {
        call.append!();
        return backend.runAsync(call.ops, call.signal);
      })
      .then(
        () => {
          cache.busy = false;
          try {
            return call.finish();
          } finally {
            call.release?.();
          }
        },
        (err: unknown) => {
          cache.busy = false;
          call.release?.();
          return Promise.reject(withCallerStack(err, caller));
        },
      );
  }
}
