// The public functions, bound to one backend. lib/index.ts binds them to the backend chosen at
// load; lib/js/index.ts to the TypeScript kernels. Validation is the same for both.
import { callerError, expectSignal, withCallerStack } from './async.js';
import type { Backend } from './backend.js';
import { createLinear, createLinearAsync } from './linear.js';
import { planSdpa, sdpaResult } from './sdpa.js';
import type {
  BackendInfo, BackendName, SdpaAsyncOptions, SdpaOptions, SdpaOptionsWithResult, SdpaResult,
} from './types.js';

export interface ScaledDotProductAttention {
  (q: Float32Array, k: Float32Array, v: Float32Array, options: SdpaOptionsWithResult): SdpaResult;
  (q: Float32Array, k: Float32Array, v: Float32Array, options: SdpaOptions): Float32Array;
}

export interface ScaledDotProductAttentionAsync {
  (q: Float32Array, k: Float32Array, v: Float32Array, options: SdpaAsyncOptions & ({ weights: true } | { scores: true })): Promise<SdpaResult>;
  (q: Float32Array, k: Float32Array, v: Float32Array, options: SdpaAsyncOptions): Promise<Float32Array>;
}

/** y = x·Wᵀ + b ('out-in', default) or x·W + b ('in-out'); `bias` may be left out. */
export type LinearFunction = ReturnType<typeof createLinear>;
export type LinearAsyncFunction = ReturnType<typeof createLinearAsync>;

export interface Api {
  scaledDotProductAttention: ScaledDotProductAttention;
  scaledDotProductAttentionAsync: ScaledDotProductAttentionAsync;
  linear: LinearFunction;
  linearAsync: LinearAsyncFunction;
  backend(): BackendName;
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
    const signal = expectSignal('options.signal', (options as SdpaAsyncOptions).signal);
    const caller = callerError();
    return backend.runAsync([{ kind: 'sdpa', plan: call.plan }], signal).then(
      () => sdpaResult(call),
      (err: unknown) => Promise.reject(withCallerStack(err, caller)),
    );
  }
  return {
    scaledDotProductAttention: scaledDotProductAttention as ScaledDotProductAttention,
    scaledDotProductAttentionAsync: scaledDotProductAttentionAsync as ScaledDotProductAttentionAsync,
    linear: createLinear(backend),
    linearAsync: createLinearAsync(backend),
    backend: () => backend.name,
    info: () => backend.info(),
  };
}
