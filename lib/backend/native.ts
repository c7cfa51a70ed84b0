// The native backend: loading the addon, the binding's positional argument form, and the Backend
// built on it. Loading never throws: a missing or broken binary is reported as an error value, and
// lib/backend/select.ts decides whether that is fatal (QKV_BACKEND=native) or a reason to use the
// TypeScript backend (auto).
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { abortError, isAborted, watchAbort } from '../abort.js';
import { packageRequire, packageRoot } from '../package-root.js';
import type { RopePlan, SdpaPlan } from '../plan.js';
import { WEIGHT_DTYPES, sdpaDims } from './abi.js';
import type { AsyncPriority } from './env.js';
import type { Backend, Op } from './types.js';
import { version } from './version.js';

/** k and v: Float32Array, or Uint16Array (IEEE binary16 bits) when dims[13] (kvDtype) is 1. */
type SdpaArgs = [
  q: Float32Array, k: Float32Array | Uint16Array, v: Float32Array | Uint16Array, out: Float32Array, dims: Int32Array, scale: number,
  softcap: number, mask: Float32Array | Uint8Array | null, offsets: Int32Array | null,
  kvLengths: Int32Array | null, weights: Float32Array | null, scores: Float32Array | null,
  sinks: Float32Array | null, alibi: Float32Array | null, lse: Float32Array | null,
];
type RopeArgs = [
  x: Float32Array, out: Float32Array, dims: Int32Array, positions: Int32Array | null, invFreq: Float64Array,
  norm: Float32Array | null, attentionFactor: number, normEps: number, normOffset: number,
];
type NativeOp = ['sdpa', ...SdpaArgs] | ['gemm', ...GemmArgs] | ['rope', ...RopeArgs];
type GemmArgs = [
  x: Float32Array, M: number, K: number, packed: Float32Array, N: number, bias: Float32Array | null, y: Float32Array,
];

/** The raw binding (native/*.cc). Positional arguments keep the per-call cost low. */
export interface NativeBinding {
  simd(): 'avx512' | 'avx2' | 'neon' | 'scalar';
  bestSimd(): 'avx512' | 'avx2' | 'neon' | 'scalar';
  /** Test hook: forces a kernel set ('scalar', the best one's name, or 'auto'); false if unsupported. */
  _setSimd(name: string): boolean;
  /** The kernel sets this CPU and OS can run, 'scalar' first and the best last. */
  supportedSimd(): string[];
  /**
   * Called at load with validated values: the kernel set ('auto' = the best, else one of
   * supportedSimd()), the async priority and the default thread count. Only the first configure in
   * the process applies them (the pool is process-wide); returns whether this one did.
   */
  configure(simd: string, asyncPriority: AsyncPriority, threads: number): boolean;
  /** Test hook: native/abi.h's tables (test/native-abi.test.ts compares them with lib/backend/abi.ts). */
  _abi(): {
    sdpaDimSlots: string[]; maxThreads: number; layouts: string[]; kvDtypes: string[]; weightDtypes: string[];
    maskKinds: string[]; windowUnbounded: number; sdpaArgCount: number;
  };
  sdpa(...args: SdpaArgs): Float32Array;
  /** Norm and rotation of a RopePlan (native/rope_binding.cc); returns out. */
  rope(...args: RopeArgs): Float32Array;
  /** Floats a packed [N, K] weight of that dtype (a WEIGHT_DTYPES index, default 0) needs (native/gemm_binding.cc). */
  gemmPackedLength(N: number, K: number, dtype?: number): number;
  /**
   * Packs w ([N, K] if outIn, else [K, N]; a Float32Array for dtype 0, a Uint16Array of bits for
   * 1 bfloat16 and 2 float16) into `packed`; returns it.
   */
  gemmPack(w: Float32Array | Uint16Array, outIn: boolean, N: number, K: number, packed: Float32Array, dtype?: number): Float32Array;
  /** y[M, N] = x[M, K] · B + bias; exact lengths, y disjoint from the inputs. Returns y. */
  gemm(...args: GemmArgs): Float32Array;
  /**
   * Queues ops on the native pool; callback(error | null) on this thread when done. Every op is
   * checked before anything is queued (throws synchronously). Returns an id for cancelAsync.
   */
  runAsync(ops: NativeOp[], callback: (err: Error | null) => void): number;
  /** The same op list run before it returns (one call into the addon for a whole layer forward). */
  runOps(ops: NativeOp[]): void;
  /** Removes a queued call that has not started (its callback is then never called). */
  cancelAsync(id: number): boolean;
  /** Threads one call may use (the pool is process-wide). */
  threads(): number;
  /** The async priority in effect: fixed by the first configure() in this process. */
  asyncPriority(): AsyncPriority;
  setThreads(n: number): void;
}

export interface NativeLoad {
  binding: NativeBinding | null;
  /** One line per place tried, when nothing loaded. */
  errors: string[];
}

/**
 * Candidate binaries, relative to the package root: a test build named by QKV_ADDON_PATH (e.g.
 * scripts/test-asan.sh), a local build (npm install at the root, or a consumer whose npm ran the
 * install script), a debug build, then the binary `npm pack` put in the tarball
 * (scripts/prebuild.cjs), which needs no build step at all.
 */
function candidates(addonPath: string | null): string[] {
  return [
    ...(addonPath ? [path.relative(packageRoot, addonPath)] : []),
    'build/Release/qkv.node',
    'build/Debug/qkv.node',
    `prebuilds/${process.platform}-${process.arch}/qkv.node`,
  ];
}

/** What lib/ calls on a binding; a binary without one of them is not used. */
const REQUIRED = [
  'sdpa', 'gemm', 'rope', 'runOps', 'gemmPack', 'gemmPackedLength', 'runAsync', 'cancelAsync', 'configure', 'supportedSimd', 'setThreads',
  'threads', 'simd', 'asyncPriority',
] as const;

/** The glibc the prebuilt Linux binaries need (CMakeLists.txt's QKV_PORTABLE; scripts/elf-check.cjs). */
const PREBUILT_GLIBC = [2, 28] as const;

/**
 * Why a Linux system cannot use the prebuilt binary, said plainly, or null when it should: the
 * loader's own message (e.g. "version `GLIBC_2.28' not found", or a missing ld-linux on musl) names
 * a symptom, not the cause. glibc is the running glibc's version (undefined: another C library).
 */
export function prebuiltMismatch(platform: string, glibc: string | undefined): string | null {
  if (platform !== 'linux') return null;
  const fix = 'build from source with `npm rebuild qkv` (needs CMake >= 3.15 and a C++17 compiler)';
  if (!glibc) return `this system's C library is not glibc (musl, e.g. Alpine?): the prebuilt binaries need glibc >= ${PREBUILT_GLIBC.join('.')}; ${fix}`;
  const [major = 0, minor = 0] = glibc.split('.').map(Number);
  if (major < PREBUILT_GLIBC[0] || (major === PREBUILT_GLIBC[0] && minor < PREBUILT_GLIBC[1])) {
    return `this system's glibc ${glibc} is older than the ${PREBUILT_GLIBC.join('.')} the prebuilt binaries need; ${fix}`;
  }
  return null;
}

/** The running glibc's version, from Node's diagnostic report (undefined on musl and off Linux). */
function runtimeGlibc(): string | undefined {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime;
}

/** The platforms the package carries a prebuilt binary for (the directories of prebuilds/). */
function prebuiltPlatforms(): string[] {
  try {
    return readdirSync(path.join(packageRoot, 'prebuilds')).sort();
  } catch {
    return [];
  }
}

export function loadNative(addonPath: string | null): NativeLoad {
  const errors: string[] = [];
  const prebuilt = `prebuilds/${process.platform}-${process.arch}/qkv.node`;
  for (const rel of candidates(addonPath)) {
    const file = path.join(packageRoot, rel);
    try {
      const binding = packageRequire(file) as Partial<NativeBinding>;
      // A binary built from another version of the sources (a stale build/, an old prebuild)
      // lacks what this lib/ calls: skip it, as if it had not loaded.
      const missing = REQUIRED.filter((fn) => typeof binding[fn] !== 'function');
      if (missing.length === 0) return { binding: binding as NativeBinding, errors };
      errors.push(`${rel}: built from another version of qkv (no ${missing.join(', ')})`);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'MODULE_NOT_FOUND') {
        const others = rel === prebuilt ? prebuiltPlatforms() : [];
        errors.push(`${rel}: not found${others.length > 0 ? ` (prebuilt binaries are for ${others.join(', ')} only)` : ''}`);
      } else {
        const why = rel === prebuilt ? prebuiltMismatch(process.platform, runtimeGlibc()) : null;
        errors.push(`${rel}: ${why ? `${why} (${e.message.split('\n')[0]})` : e.message.split('\n')[0]}`);
      }
    }
  }
  return { binding: null, errors };
}

/** The sharp-style help text thrown when QKV_BACKEND=native and nothing loaded. */
export function loadHelp(errors: string[]): string {
  return [
    'qkv: QKV_BACKEND=native was requested but the native addon could not be loaded.',
    ...errors.map((e) => `  - ${e}`),
    'Possible solutions:',
    '  - Build it: run `npm rebuild qkv` (needs CMake >= 3.15 and a C++17 compiler).',
    '  - Use the TypeScript backend: unset QKV_BACKEND or set QKV_BACKEND=js.',
  ].join('\n');
}

/** The binding's positional form of a plan. The dims array is per call: async calls hold theirs. */
function sdpaArgs(p: SdpaPlan): SdpaArgs {
  return [
    p.q, p.k, p.v, p.out, sdpaDims(p), p.scale, p.softcap, p.mask, p.offsets, p.kvLengths, p.weights, p.scores,
    p.sinks, p.alibi, p.lse,
  ];
}

/** The binding's positional form of a RopePlan (dims slots: native/abi.h RopeDim). */
function ropeArgs(p: RopePlan): RopeArgs {
  const dims = Int32Array.of(
    p.B, p.S, p.H, p.D, p.strides[0], p.strides[1], p.strides[2], p.interleaved ? 1 : 0,
    p.norm === null ? 0 : p.normSpan === 'head' ? 1 : 2,
  );
  return [p.x, p.out, dims, p.positions, p.invFreq, p.norm, p.attentionFactor, p.normEps, p.normOffset];
}

/**
 * Runs ops on the native pool. An abort before they start cancels them: the Promise rejects with
 * an AbortError and nothing is written.
 */
function nativeOps(ops: readonly Op[]): NativeOp[] {
  return ops.map((op) =>
    op.kind === 'sdpa'
      ? (['sdpa', ...sdpaArgs(op.plan)] as ['sdpa', ...SdpaArgs])
      : op.kind === 'rope'
        ? (['rope', ...ropeArgs(op.plan)] as ['rope', ...RopeArgs])
        : (['gemm', op.x, op.M, op.K, op.packed.data as Float32Array, op.N, op.bias, op.y] as ['gemm', ...GemmArgs]),
  );
}

function nativeRunAsync(binding: NativeBinding, ops: readonly Op[], signal: AbortSignal | undefined): Promise<void> {
  const list = nativeOps(ops);
  return new Promise<void>((resolve, reject) => {
    if (signal && isAborted(signal)) return reject(abortError(signal));
    // The completion runs inside N-API, where a throw would be swallowed and the Promise never
    // settle: nothing in it can throw (unwatch and the settle functions are ours).
    let unwatch = (): void => {};
    const id = binding.runAsync(list, (err) => {
      unwatch();
      if (err) reject(err);
      else resolve();
    });
    if (signal) {
      unwatch = watchAbort(signal, () => {
        if (binding.cancelAsync(id)) reject(abortError(signal));
      });
    }
  });
}

export function nativeBackend(binding: NativeBinding): Backend {
  return {
    name: 'native',
    sdpa: (plan) => void binding.sdpa(...sdpaArgs(plan)),
    rope: (plan) => void binding.rope(...ropeArgs(plan)),
    packWeight: (w, outIn, N, K, dtype) => {
      const code = WEIGHT_DTYPES.indexOf(dtype);
      return { dtype, data: binding.gemmPack(w, outIn, N, K, new Float32Array(binding.gemmPackedLength(N, K, code)), code) };
    },
    gemm: (x, M, K, packed, N, bias, y) => void binding.gemm(x, M, K, packed.data as Float32Array, N, bias, y),
    run: (ops) => binding.runOps(nativeOps(ops)),
    runAsync: (ops, signal) => nativeRunAsync(binding, ops, signal),
    threads: () => binding.threads(),
    info: () => ({ backend: 'native', simd: binding.simd(), threads: binding.threads(), version, asyncPriority: binding.asyncPriority() }),
  };
}
