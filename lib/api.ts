// The public functions, bound to one backend. lib/index.ts binds them to the backend chosen at
// load; lib/js/index.ts to the TypeScript kernels. Validation is the same for both.
import type { Backend } from './backend.js';
import { planSdpa, sdpaResult } from './sdpa.js';
import type { BackendInfo, BackendName, SdpaOptions, SdpaOptionsWithResult, SdpaResult } from './types.js';

export interface ScaledDotProductAttention {
  (q: Float32Array, k: Float32Array, v: Float32Array, options: SdpaOptionsWithResult): SdpaResult;
  (q: Float32Array, k: Float32Array, v: Float32Array, options: SdpaOptions): Float32Array;
}

export interface Api {
  scaledDotProductAttention: ScaledDotProductAttention;
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
    backend: () => backend.name,
    info: () => backend.info(),
  };
}
