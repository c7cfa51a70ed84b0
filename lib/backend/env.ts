// Every QKV_* environment variable the library reads, read and validated here, once, as the module
// loads: a bad value is a RangeError naming the variable, before any native code runs. The addon
// reads none of them itself; it receives the values from lib/backend/select.ts.
import path from 'node:path';
import { MAX_THREADS } from './abi.js';
import { expectEnvChoice, expectEnvInt } from '../validate.js';

export type BackendChoice = 'auto' | 'native' | 'js';
/** Scheduling of the pool threads that run async calls (native/thread_pool.h). */
export type AsyncPriority = 'idle' | 'normal';
export type SimdChoice = 'auto' | 'avx512' | 'avx2' | 'neon' | 'scalar';

export interface QkvEnv {
  /** QKV_BACKEND: which backend serves (default auto: native when it loads, else js). */
  backend: BackendChoice;
  /** QKV_THREADS: threads per native call, or null for the default (the CPUs this process may use). */
  threads: number | null;
  /**
   * QKV_ASYNC_PRIORITY: 'idle' (the default) runs async calls on pool threads under Linux's
   * SCHED_IDLE policy, so a woken event loop takes a core from them at once; 'normal' keeps the
   * usual policy (for machines where other busy processes would otherwise starve them).
   */
  asyncPriority: AsyncPriority;
  /** QKV_SIMD: force a native kernel set ('auto', the default, takes the best this CPU runs). */
  simd: SimdChoice;
  /** QKV_ADDON_PATH: a binary to try before the others (a test build, e.g. the sanitizer one). */
  addonPath: string | null;
}

function read(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
}

export function readEnv(): QkvEnv {
  const threads = read('QKV_THREADS');
  const addonPath = read('QKV_ADDON_PATH');
  return {
    backend: expectEnvChoice('QKV_BACKEND', read('QKV_BACKEND') ?? 'auto', ['auto', 'native', 'js']),
    threads: threads === undefined ? null : expectEnvInt('QKV_THREADS', threads, 1, MAX_THREADS),
    asyncPriority: expectEnvChoice('QKV_ASYNC_PRIORITY', read('QKV_ASYNC_PRIORITY') ?? 'idle', ['idle', 'normal']),
    simd: expectEnvChoice('QKV_SIMD', read('QKV_SIMD') ?? 'auto', ['auto', 'avx512', 'avx2', 'neon', 'scalar']),
    addonPath: addonPath === undefined ? null : path.resolve(addonPath),
  };
}
