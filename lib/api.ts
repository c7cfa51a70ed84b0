// The public functions, bound to one backend, and their documentation (written here once; both
// faces, lib/index.ts and lib/js.ts, export what createApi returns). Validation is the same for
// both backends: lib/sdpa.ts and lib/linear.ts.
import type { Backend } from './backend/types.js';
import { createLinear, createLinearAsync } from './linear.js';
import { planRope } from './rope.js';
import { planSdpa, sdpaResult } from './sdpa.js';
import type {
  BackendInfo, BackendName, RotaryEmbeddingAsyncOptions, RotaryEmbeddingOptions, SdpaAsyncOptions, SdpaOptions,
} from './types.js';
import { callerError, withCallerStack } from './validate-async.js';

/** Whether an option flag is true for certain ('yes'), may be ('maybe': a `boolean`), or is not ('no'). */
type Flag<W> = [W] extends [true] ? 'yes' : true extends W ? 'maybe' : 'no';
// A key O does not have is 'no' outright (not Flag<undefined>: without strictNullChecks,
// undefined is assignable to true).
type FlagOf<O, K extends string> = K extends keyof O ? Flag<O[K]> : 'no';
/** Option names O has beyond `Known`, each typed never: a typo such as `casual` stays a compile error. */
type NoExtra<O, Known> = { [K in Exclude<keyof O, keyof Known>]: never };
type Flat<T> = { [K in keyof T]: T[K] };
type Field<N extends string, F> = F extends 'yes' ? { [P in N]: Float32Array } : F extends 'maybe' ? { [P in N]?: Float32Array } : unknown;

/**
 * What scaledDotProductAttention returns for options of type O: `out` (a Float32Array) unless
 * `weights`, `scores` or `lse` is `true`, then `{ output, weights?, scores?, lse? }` with each field
 * asked for present. A flag typed `boolean` (not a literal) may be either, so the result is the
 * union: the type holds for every value of O, not only for literals.
 */
export type SdpaReturn<O> = FlagOf<O, 'weights'> | FlagOf<O, 'scores'> | FlagOf<O, 'lse'> extends 'no'
  ? Float32Array
  : ('yes' extends FlagOf<O, 'weights'> | FlagOf<O, 'scores'> | FlagOf<O, 'lse'> ? never : Float32Array)
    | Flat<{ output: Float32Array } & Field<'weights', FlagOf<O, 'weights'>> & Field<'scores', FlagOf<O, 'scores'>>
      & Field<'lse', FlagOf<O, 'lse'>>>;

/** scaledDotProductAttention's type; its documentation is on the call signature, where editors show it. */
export interface ScaledDotProductAttention {
  /**
   * Scaled dot-product attention: out = softmax(scale·q·kᵀ + mask) · v, per batch and head, with
   * the score modifiers of today's models fused in (softcap, ALiBi, sliding windows, sinks; the
   * log-sum-exp on request).
   *
   * Shapes ('bhsd', the default layout): q [B,H,Sq,D], k [B,Hkv,Sk,D], v [B,Hkv,Sk,Dv] →
   * out [B,H,Sq,Dv]; with layout 'bshd' the head and sequence axes swap. Inputs are read in place
   * (any byteOffset, never copied). Returns `out`, or `{ output, weights?, scores?, lse? }` when
   * `weights`, `scores` or `lse` is `true` (arrays passed as `weights`/`scores`/`lse` are filled and
   * the return stays `out`); the return type follows the options ({@link SdpaReturn}).
   *
   * @throws TypeError for a wrong kind of argument or an unknown option name.
   * @throws RangeError for a wrong size, dim or value. Nothing is written when it throws.
   * @example
   * const out = scaledDotProductAttention(q, k, v, { heads: 8, seqQ: 128, headDim: 64, causal: true });
   * const { output, weights } = scaledDotProductAttention(q, k, v, { heads: 8, seqQ: 128, headDim: 64, weights: true });
   */
  <const O extends SdpaOptions>(q: Float32Array, k: Float32Array, v: Float32Array, options: O & NoExtra<O, SdpaOptions>): SdpaReturn<O>;
}

/** scaledDotProductAttentionAsync's type; documented on its call signature. */
export interface ScaledDotProductAttentionAsync {
  /**
   * scaledDotProductAttention computed off the event loop, on the library's own native thread pool
   * (not libuv's; the js backend runs it on a later turn of the loop), resolving to the same result.
   * Arguments are validated synchronously (a bad call throws before any Promise exists).
   * `options.signal` (an AbortSignal) rejects a call that has not started with an AbortError, leaving
   * `out` untouched. q, k, v, mask, `out`, weights and scores are kept alive until the Promise
   * settles; do not write to, transfer or resize them before then.
   * @example
   * const out = await scaledDotProductAttentionAsync(q, k, v, { heads: 8, seqQ: 4096, headDim: 64, signal });
   */
  <const O extends SdpaAsyncOptions>(
    q: Float32Array, k: Float32Array, v: Float32Array, options: O & NoExtra<O, SdpaAsyncOptions>,
  ): Promise<SdpaReturn<O>>;
}

/** applyRotaryEmbedding's type; documented on its call signature. */
export interface ApplyRotaryEmbedding {
  /**
   * Rotary position embedding (RoPE) of x, [B, H, S, D] ('bhsd', the default) or [B, S, H, D]
   * ('bshd'): the first rotaryDim values of each head rotate by the angle position·f_t, pairing
   * (x[t], x[t + r/2]) ('half', Hugging Face's rotate_half) or (x[2t], x[2t+1]) ('interleaved',
   * GPT-J). Frequencies f_t = theta^(−2t/r) with the scaling of `rope.scaling` ('linear', 'llama3',
   * 'yarn', as Hugging Face computes them) or `rope.invFreq`. Angles in float64, cos and sin rounded
   * to float32 once. `positions`: a start (default 0), S shared positions or B·S. Returns `out`
   * (a new array, or `options.out`, which may be x itself: in place).
   * @throws TypeError for a wrong kind of argument or an unknown option name; RangeError for a
   * wrong size or value (odd rotaryDim, invFreq with theta or scaling, a negative position...).
   * Nothing is written when it throws.
   * @example
   * applyRotaryEmbedding(q, { heads: 32, headDim: 128, layout: 'bshd', positions: 17, out: q, rope: { theta: 500000 } });
   */
  (x: Float32Array, options: RotaryEmbeddingOptions): Float32Array;
}

/** applyRotaryEmbeddingAsync's type: applyRotaryEmbedding off the event loop; same buffer rules as the other Async calls. */
export interface ApplyRotaryEmbeddingAsync {
  (x: Float32Array, options: RotaryEmbeddingAsyncOptions): Promise<Float32Array>;
}

/**
 * A fully connected layer: y = x·Wᵀ + b for `weightLayout: 'out-in'` (the default; weight
 * [outFeatures, inFeatures], PyTorch nn.Linear) or y = x·W + b for `'in-out'` (weight
 * [inFeatures, outFeatures], GPT-2 Conv1D). x is [M, inFeatures] with M = x.length / inFeatures;
 * the result is [M, outFeatures]. `outFeatures` defaults to weight.length / inFeatures; `bias` may be
 * omitted (`linear(x, w, options)`), null or undefined. `options.out` is written and returned.
 * The weight is packed on every call: for a weight used more than once, build a `Linear`.
 * `weightDtype: 'bfloat16' | 'float16'` takes the weight (and a bias, or a Float32Array one) as a
 * Uint16Array of bits, widened exactly inside the kernel: y is the float32 result on the widened weight.
 * @throws TypeError for a wrong kind of argument or an unknown option name.
 * @throws RangeError for a wrong size, a length that is not the product of its dims, or `out`
 * overlapping an input. Nothing is written when it throws.
 * @example
 * const y = linear(x, weight, bias, { inFeatures: 768, outFeatures: 3072 }); // PyTorch nn.Linear(768, 3072)
 */
export type LinearFunction = ReturnType<typeof createLinear>;
/** `linear` computed off the event loop; same buffer rules as the other Async calls. */
export type LinearAsyncFunction = ReturnType<typeof createLinearAsync>;

export interface Api {
  scaledDotProductAttention: ScaledDotProductAttention;
  scaledDotProductAttentionAsync: ScaledDotProductAttentionAsync;
  linear: LinearFunction;
  linearAsync: LinearAsyncFunction;
  applyRotaryEmbedding: ApplyRotaryEmbedding;
  applyRotaryEmbeddingAsync: ApplyRotaryEmbeddingAsync;
  /** 'native' or 'js': which kernels this module runs. */
  backend(): BackendName;
  /** Backend, SIMD kernel set, threads, version, and why native did not load (if it did not). */
  info(): BackendInfo;
}

export function createApi(backend: Backend): Api {
  function scaledDotProductAttention(q: Float32Array, k: Float32Array, v: Float32Array, options: SdpaOptions) {
    const call = planSdpa(q, k, v, options, false);
    backend.sdpa(call.plan);
    return sdpaResult(call);
  }
  // Validation throws synchronously; everything after it settles the Promise.
  function scaledDotProductAttentionAsync(q: Float32Array, k: Float32Array, v: Float32Array, options: SdpaAsyncOptions) {
    const call = planSdpa(q, k, v, options, true);
    const caller = callerError();
    return backend.runAsync([{ kind: 'sdpa', plan: call.plan }], call.signal).then(
      () => sdpaResult(call),
      (err: unknown) => Promise.reject(withCallerStack(err, caller)),
    );
  }
  function applyRotaryEmbedding(x: Float32Array, options: RotaryEmbeddingOptions): Float32Array {
    const call = planRope(x, options, false);
    backend.rope(call.plan);
    return call.plan.out;
  }
  function applyRotaryEmbeddingAsync(x: Float32Array, options: RotaryEmbeddingAsyncOptions): Promise<Float32Array> {
    const call = planRope(x, options, true);
    const caller = callerError();
    return backend.runAsync([{ kind: 'rope', plan: call.plan }], call.signal).then(
      () => call.plan.out,
      (err: unknown) => Promise.reject(withCallerStack(err, caller)),
    );
  }
  return {
    applyRotaryEmbedding,
    applyRotaryEmbeddingAsync,
    scaledDotProductAttention: scaledDotProductAttention as ScaledDotProductAttention,
    scaledDotProductAttentionAsync: scaledDotProductAttentionAsync as ScaledDotProductAttentionAsync,
    linear: createLinear(backend),
    linearAsync: createLinearAsync(backend),
    backend: () => backend.name,
    info: () => backend.info(),
  };
}
