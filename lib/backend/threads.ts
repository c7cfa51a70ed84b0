// How many threads native calls use by default: QKV_THREADS when set (lib/backend/env.ts),
// otherwise the CPUs this process may use (os.availableParallelism() follows the affinity mask; a
// cgroup v2 CPU quota, as containers set, lowers it further).
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { MAX_THREADS } from './abi.js';

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

/** `requested` (QKV_THREADS, validated) or the CPUs this process may use. */
export function defaultThreads(requested: number | null): number {
  if (requested !== null) return requested;
  return Math.max(1, Math.min(os.availableParallelism(), cgroupCpuLimit(), MAX_THREADS));
}
