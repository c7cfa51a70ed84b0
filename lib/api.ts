// The public functions, bound to one backend. lib/index.ts binds them to the backend chosen at
// load; lib/js/index.ts to the TypeScript kernels. Validation is the same for both.
import type { Backend } from './backend.js';
import { createLinear } from './linear.js';
import { planSdpa, sdpaResult } from './sdpa.js';
import type { BackendInfo, BackendName, SdpaOptions, SdpaOptionsWithResult, SdpaResult } from './types.js';

export interface ScaledDotProductAttention {
  (q: Float32Array, k: Float32Array, v: Float32Array, options: SdpaOptionsWithResult): SdpaResult;
  (q: Float32Array, k: Float32Array, v: Float32Array, options: SdpaOptions): Float32Array;
}

/** y = x·Wᵀ + b ('out-in', default) or x·W + b ('in-out'); `bias` may be left out. */
export type LinearFunction = ReturnType<typeof createLinear>;

export interface Api {
  scaledDotProductAttention: ScaledDotProductAttention;
  linear: LinearFunction;
  backend(): BackendName;
  info(): BackendInfo;
}

export function createApi(backend: Backend): Api {
  function scaledDotProductAttention(q: Float32Array, k: Float32Array, v: Float32Array, options: SdpaOptions) {
    const call = planSdpa(q, k, v, options, false);
    backend.sdpa(call.plan);
    return sdpaResult(call);
  }
  return {
    scaledDotProductAttention: scaledDotProductAttention as ScaledDotProductAttention,
    linear: createLinear(backend),
    backend: () => backend.name,
    info: () => backend.info(),
  };
}
