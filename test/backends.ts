// Every way this machine can run scaledDotProductAttention: the TypeScript kernels, and the
// native addon once per kernel set it supports (scalar, then the best SIMD one). Parity and
// semantics tests run each case on all of them.
import { scaledDotProductAttention as sdpaNative } from '../lib/index.js';
import { scaledDotProductAttention as sdpaJs } from '../lib/js/index.js';
import { nativeBinding } from '../lib/select.js';
import type { SdpaResult } from '../lib/index.js';

/** Loosely typed on purpose: tests build options generically and pass bad ones on purpose. */
export type RunSdpa = (q: Float32Array, k: Float32Array, v: Float32Array, options: object) => Float32Array | SdpaResult;

export interface Runner {
  name: string;
  sdpa: RunSdpa;
}

function onSimd(name: string): RunSdpa {
  const binding = nativeBinding!;
  return (q, k, v, options) => {
    if (!binding._setSimd(name)) throw new Error(`kernel set ${name} is not supported here`);
    try {
      return sdpaNative(q, k, v, options as never);
    } finally {
      binding._setSimd('auto');
    }
  };
}

export const runners: Runner[] = [{ name: 'js', sdpa: sdpaJs as RunSdpa }];
if (nativeBinding) {
  runners.push({ name: 'native-scalar', sdpa: onSimd('scalar') });
  const best = nativeBinding.bestSimd();
  if (best !== 'scalar') runners.push({ name: `native-${best}`, sdpa: onSimd(best) });
}
