// How many threads native calls use by default: QKV_THREADS when set, otherwise the CPUs this
// process may use (os.availableParallelism() follows the affinity mask; a cgroup v2 CPU quota,
// as containers set, lowers it further).
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { MAX_THREADS } from './backend/abi.js';

export { MAX_THREADS };

/** ceil(quota / period) from /sys/fs/cgroup/cpu.max, or Infinity when there is no quota. */
function cgroupCpuLimit(): number {
  try {
    const [quota, period] = readFileSync('/sys/fs/cgroup/cpu.max', 'utf8').trim().split(/\s+/);
    const q = Number(quota);
    const p = Number(period);
    return quota !== 'max' && q > 0 && p > 0 ? Math.max(1, Math.ceil(q / p)) : Infinity;
  } catch {
    return Infinity;
  }
}

export function defaultThreads(): number {
  const env = process.env.QKV_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS) {
      throw new RangeError(`Expected an integer in [1, ${MAX_THREADS}] for QKV_THREADS but received '${env}'`);
    }
    return n;
  }
  return Math.max(1, Math.min(os.availableParallelism(), cgroupCpuLimit(), MAX_THREADS));
}

/** Scheduling of the pool threads that run async calls (native/thread_pool.h). */
export type AsyncPriority = 'idle' | 'normal';

/**
 * QKV_ASYNC_PRIORITY, read once at load: 'idle' (the default) runs async calls on pool threads
 * under Linux's SCHED_IDLE policy, so a woken event loop takes a core from them at once; 'normal'
 * keeps the usual policy (for machines where other busy processes would otherwise starve them).
 * Validated here, before the addon loads, and passed to it by configure() (lib/select.ts); the
 * first configure in the process fixes it.
 */
export function asyncPriority(): AsyncPriority {
  const env = process.env.QKV_ASYNC_PRIORITY;
  if (env === undefined || env === '' || env === 'idle') return 'idle';
  if (env === 'normal') return 'normal';
  throw new RangeError(`Expected 'idle' | 'normal' for QKV_ASYNC_PRIORITY but received '${env}'`);
}
