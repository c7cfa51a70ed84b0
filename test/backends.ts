// Every way this machine can run the public API: the TypeScript kernels, and the native addon once
// per kernel set it supports (scalar, then the best SIMD one). Parity and semantics tests run each
// case on all of them. Besides scaledDotProductAttention, a runner builds linear / Linear /
// MultiHeadAttention bound to its backend; on native runners every call (construction included)
// runs under that runner's kernel set.
import {
  Linear as LinearNative,
  MultiHeadAttention as MhaNative,
  linear as linearNative,
  scaledDotProductAttention as sdpaNative,
} from '../lib/index.js';
import {
  Linear as LinearJs,
  MultiHeadAttention as MhaJs,
  linear as linearJs,
  scaledDotProductAttention as sdpaJs,
} from '../lib/js.js';
import { nativeBinding } from '../lib/backend/select.js';
import type { KVCache, MhaResult, SdpaResult } from '../lib/index.js';

/** Loosely typed on purpose: tests build options generically and pass bad ones on purpose. */
export type RunSdpa = (q: Float32Array, k: Float32Array, v: Float32Array, options: object) => Float32Array | SdpaResult;
export type RunLinear = (x: unknown, weight: unknown, bias: unknown, options?: unknown) => Float32Array;
export interface LinearLike {
  forward(x: unknown, options?: unknown): Float32Array;
}
export interface MhaLike {
  readonly embedDim: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  forward(x: unknown, options?: unknown): Float32Array | MhaResult;
  createCache(options: unknown): KVCache;
}

export interface Runner {
  name: string;
  sdpa: RunSdpa;
  linear: RunLinear;
  newLinear(config: unknown): LinearLike;
  newMha(config: unknown): MhaLike;
}

type Ctor<T> = new (config: never) => T;
type MhaInstance = Omit<MhaLike, 'createCache'> & { createCache(options: never): KVCache };

/** Runs fn with the native kernel set `name`, restoring 'auto' afterwards. */
function onSimd<A extends unknown[], R>(name: string, fn: (...args: A) => R): (...args: A) => R {
  const binding = nativeBinding!;
  return (...args: A) => {
    if (!binding._setSimd(name)) throw new Error(`kernel set ${name} is not supported here`);
    try {
      return fn(...args);
    } finally {
      binding._setSimd('auto');
    }
  };
}

function runner(name: string, wrap: <A extends unknown[], R>(fn: (...args: A) => R) => (...args: A) => R, api: {
  sdpa: unknown; linear: unknown; Linear: Ctor<LinearLike>; Mha: Ctor<MhaInstance>;
}): Runner {
  const newLinear = (config: unknown): LinearLike => {
    const layer = new api.Linear(config as never);
    return { forward: wrap((x: unknown, options?: unknown) => layer.forward(x, options)) };
  };
  const newMha = (config: unknown): MhaLike => {
    const layer = new api.Mha(config as never);
    const forward = wrap((x: unknown, options?: unknown) => layer.forward(x, options));
    return {
      embedDim: layer.embedDim, numHeads: layer.numHeads, numKvHeads: layer.numKvHeads, headDim: layer.headDim, forward,
      createCache: (options: unknown) => layer.createCache(options as never),
    };
  };
  return {
    name,
    sdpa: wrap(api.sdpa as RunSdpa),
    linear: wrap(api.linear as RunLinear),
    newLinear: wrap(newLinear),
    newMha: wrap(newMha),
  };
}

const jsApi = { sdpa: sdpaJs, linear: linearJs, Linear: LinearJs as Ctor<LinearLike>, Mha: MhaJs as Ctor<MhaInstance> };
const nativeApi = {
  sdpa: sdpaNative, linear: linearNative, Linear: LinearNative as Ctor<LinearLike>, Mha: MhaNative as Ctor<MhaInstance>,
};

export const runners: Runner[] = [runner('js', (fn) => fn, jsApi)];
if (nativeBinding) {
  runners.push(runner('native-scalar', (fn) => onSimd('scalar', fn), nativeApi));
  // Every SIMD set this machine runs, not only the best: an AVX-512 machine checks AVX2 too.
  for (const set of ['avx2', 'avx512', 'neon'] as const) {
    if (nativeBinding._setSimd(set)) runners.push(runner(`native-${set}`, (fn) => onSimd(set, fn), nativeApi));
  }
  nativeBinding._setSimd('auto');
}
