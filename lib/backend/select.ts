// Backend selection: once, at load, from QKV_BACKEND (auto | native | js). auto uses the native
// addon when it loads and otherwise the TypeScript kernels, keeping the reason in
// info().nativeError (also printed under NODE_DEBUG=qkv). native throws a help text instead.
import { debuglog } from 'node:util';
import { expectEnvChoice, expectInt } from '../validate.js';
import { readEnv, type SimdChoice } from './env.js';
import { jsBackend } from './js.js';
import { loadHelp, loadNative, nativeBackend, type NativeBinding } from './native.js';
import { MAX_THREADS } from './abi.js';
import { defaultThreads } from './threads.js';
import type { Backend } from './types.js';

const debug = debuglog('qkv');

function withLoadError(errors: string[]): Backend {
  const nativeError = `native addon not loaded, using the TypeScript backend (${errors.join('; ')})`;
  return { ...jsBackend, info: () => ({ ...jsBackend.info(), nativeError }) };
}

// Every variable is validated before the addon loads: a bad value fails before any native code runs.
const env = readEnv();
const load = env.backend === 'js' ? { binding: null, errors: ['QKV_BACKEND=js'] } : loadNative(env.addonPath);
if (env.backend === 'native' && !load.binding) throw new Error(loadHelp(load.errors));
if (!load.binding && env.backend === 'auto') debug('native backend unavailable, using js: %s', load.errors.join('; '));

// Kernel set, async priority and threads are process-wide: the first load in the process sets
// them, and a worker_thread that loads the package later leaves them as they are (setThreads
// included). QKV_SIMD must name a set this CPU runs: the addon is loaded to know which.
if (load.binding) {
  const simd = expectEnvChoice('QKV_SIMD', env.simd, ['auto', ...(load.binding.supportedSimd() as SimdChoice[])]);
  load.binding.configure(simd, env.asyncPriority, defaultThreads(env.threads));
}

/** The addon, when it loaded and was not switched off (tests use it to force a kernel set). */
export const nativeBinding: NativeBinding | null = load.binding;

export const activeBackend: Backend = load.binding ? nativeBackend(load.binding) : withLoadError(load.errors);

/** setThreads(): the native pool's size, validated here like every other argument. */
export function setPoolThreads(n: number): void {
  expectInt('threads', n, 1, MAX_THREADS);
  nativeBinding?.setThreads(n);
}
