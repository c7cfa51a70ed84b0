// How many threads native calls use by default: QKV_THREADS when set, otherwise the CPUs this
// process may use (os.availableParallelism() follows the affinity mask; a cgroup v2 CPU quota,
// as containers set, lowers it further).
import { readFileSync } from 'node:fs';
import os from 'node:os';

export const MAX_THREADS = 1024;

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
