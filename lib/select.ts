// Backend selection: once, at load, from QKV_BACKEND (auto | native | js). auto uses the native
// addon when it loads and otherwise the TypeScript kernels, keeping the reason in
// info().nativeError (also printed under NODE_DEBUG=qkv). native throws a help text instead.
import { debuglog } from 'node:util';
import { jsBackend, version, type Backend } from './backend.js';
import { loadHelp, loadNative, nativeRunAsync, nativeSdpa, type NativeBinding } from './native.js';
import { asyncPriority, defaultThreads, MAX_THREADS } from './threads.js';
import { expectInt } from './validate.js';

const debug = debuglog('qkv');

function requestedBackend(): 'auto' | 'native' | 'js' {
  const want = process.env.QKV_BACKEND ?? 'auto';
  if (want === '' || want === 'auto') return 'auto';
  if (want === 'native' || want === 'js') return want;
  throw new RangeError(`Expected 'auto' | 'native' | 'js' for QKV_BACKEND but received '${want}'`);
}

function nativeBackend(binding: NativeBinding): Backend {
  return {
    name: 'native',
    sdpa: (plan) => nativeSdpa(binding, plan),
    packWeight: (w, outIn, N, K) => binding.gemmPack(w, outIn, N, K, new Float32Array(binding.gemmPackedLength(N, K))),
    gemm: (x, M, K, packed, N, bias, y) => void binding.gemm(x, M, K, packed, N, bias, y),
    runAsync: (ops, signal) => nativeRunAsync(binding, ops, signal),
    threads: () => binding.threads(),
    info: () => ({ backend: 'native', simd: binding.simd(), threads: binding.threads(), version, asyncPriority: binding.asyncPriority() }),
  };
}

function withLoadError(errors: string[]): Backend {
  const nativeError = `native addon not loaded, using the TypeScript backend (${errors.join('; ')})`;
  return { ...jsBackend, info: () => ({ ...jsBackend.info(), nativeError }) };
}

const requested = requestedBackend();
// Validated before the addon loads (a bad value fails before any native code runs), then handed to
// it by configure(): the first configure in the process fixes the priority, and info() reports
// it, so a worker_thread's own env copy, or a change made after load, does not move the pool's threads.
const priority = asyncPriority();
const load = requested === 'js' ? { binding: null, errors: ['QKV_BACKEND=js'] } : loadNative();
load.binding?.configure(process.env.QKV_SIMD || 'auto', priority);
if (requested === 'native' && !load.binding) throw new Error(loadHelp(load.errors));
if (!load.binding && requested === 'auto') debug('native backend unavailable, using js: %s', load.errors.join('; '));

// The pool is process-wide: a worker_thread loading the module sets the same value again.
load.binding?.setThreads(defaultThreads());

/** The addon, when it loaded and was not switched off (tests use it to force a kernel set). */
export const nativeBinding: NativeBinding | null = load.binding;

export const activeBackend: Backend = load.binding ? nativeBackend(load.binding) : withLoadError(load.errors);

/** setThreads(): the native pool's size, validated here like every other argument. */
export function setPoolThreads(n: number): void {
  expectInt('threads', n, 1, MAX_THREADS);
  nativeBinding?.setThreads(n);
}
