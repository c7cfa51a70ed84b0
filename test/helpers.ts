// The pieces the tests share, in one place (the float64 references are test/reference.ts):
//   - seeded random data and weights (mulberry32, Box-Muller)
//   - closeness checks against a float64 reference, and error checks
//   - the runners: every way this machine runs the public API (js, native per kernel set)
//   - the native binding's own argument forms (sdpa dims, packed weights, kernel sets)
//   - the fuzz pieces: a seeded generator, buffers of every backing kind, the checks and the loop
//   - child processes and worker threads, and what the machine itself says (CPU flags, the binary)
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { expect } from 'vitest';
import * as N from '../lib/index.js';
import * as J from '../lib/js.js';
import { nativeBinding } from '../lib/backend/select.js';
import { SDPA_DIM_SLOTS, WINDOW_UNBOUNDED } from '../lib/backend/abi.js';
import type { KVCache, MhaResult, SdpaResult } from '../lib/index.js';
import { referenceLinear } from './reference.js';

// ---------------------------------------------------------------------------------------------
// Seeded random data

export type Rng = () => number;

/** mulberry32: a small seeded PRNG giving uniform numbers in [0, 1). */
export function makeRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One standard normal sample (Box-Muller). */
export function normal(rng: Rng): number {
  const u = 1 - rng(); // (0, 1]
  const w = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * w);
}

/** Integer in [lo, hi]. */
export function randInt(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/** Pick one element. */
export function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[Math.floor(rng() * xs.length)]!;
}

/**
 * n N(0,1) floats. With offsetElems > 0 the result is a subarray view of a larger buffer, starting
 * offsetElems elements in (nonzero byteOffset), with garbage before and after it.
 */
export function randn(rng: Rng, n: number, offsetElems = 0): Float32Array {
  const pad = offsetElems > 0 ? 3 : 0;
  const buf = new Float32Array(offsetElems + n + pad);
  for (let i = 0; i < buf.length; i++) buf[i] = normal(rng);
  return offsetElems > 0 ? buf.subarray(offsetElems, offsetElems + n) : buf;
}

/** A [rows, cols] weight of N(0, 1/cols) entries, so that activations stay at unit scale. */
export function randWeight(rng: Rng, rows: number, cols: number): Float32Array {
  const w = new Float32Array(rows * cols);
  for (let i = 0; i < w.length; i++) w[i] = normal(rng) / Math.sqrt(cols);
  return w;
}

/** n floats f(0), f(1), ... (deterministic data that needs no generator; by default sin(0.7 i)). */
export function fill(n: number, f: (i: number) => number = (i) => Math.sin(i * 0.7)): Float32Array<ArrayBuffer> {
  return Float32Array.from({ length: n }, (_, i) => f(i));
}

// ---------------------------------------------------------------------------------------------
// Closeness and errors

export interface CloseResult {
  ok: boolean;
  /** Largest |got - want| over finite pairs (Infinity if an infinity or NaN mismatched). */
  maxAbs: number;
  /** Largest |got - want| / |want| over finite pairs with want != 0. */
  maxRel: number;
  /** First index failing |got - want| <= atol + rtol*|want|, or -1. */
  index: number;
}

/** Elementwise |got - want| <= atol + rtol*|want|; equal infinities match, NaN never does. */
export function allclose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  { atol = 1e-5, rtol = 1e-4 }: { atol?: number; rtol?: number } = {},
): CloseResult {
  let maxAbs = 0;
  let maxRel = 0;
  let index = -1;
  if (got.length !== want.length) return { ok: false, maxAbs: Infinity, maxRel: Infinity, index: 0 };
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (g === w) continue; // includes -Infinity == -Infinity
    const diff = Math.abs(g - w);
    if (!Number.isFinite(diff)) {
      maxAbs = Infinity;
      maxRel = Infinity;
      if (index < 0) index = i;
      continue;
    }
    if (diff > maxAbs) maxAbs = diff;
    if (w !== 0 && diff / Math.abs(w) > maxRel) maxRel = diff / Math.abs(w);
    if (diff > atol + rtol * Math.abs(w) && index < 0) index = i;
  }
  return { ok: index < 0, maxAbs, maxRel, index };
}

/** expect(allclose(got, want, tol).ok), with the first bad element in the message. */
export function expectAllClose(got: Float32Array, want: ArrayLike<number>, what: string, tol = { atol: 1e-5, rtol: 1e-4 }): void {
  const r = allclose(got, want, tol);
  expect(r.ok, `${what}: maxAbs=${r.maxAbs.toExponential(2)} first bad index ${r.index}: got ${got[r.index]} want ${want[r.index]}`).toBe(true);
}

/** One linear / GEMM case's data and its float64 reference y = x·B + bias, with Σ|terms| per element. */
export interface LinearData {
  x: Float32Array;
  w: Float32Array;
  bias: Float32Array | undefined;
  ref: Float64Array;
  mag: Float64Array;
}

/** x [M, K], w [N, K] (outIn) or [K, N], bias [N] (if asked) from `seed`; x is a view at `xOffset`. */
export function makeLinearData(seed: number, M: number, N: number, K: number, outIn: boolean, bias: boolean, xOffset: number): LinearData {
  const rng = makeRng(seed);
  const x = randn(rng, M * K, xOffset);
  const w = randn(rng, N * K);
  const b = bias ? randn(rng, N) : undefined;
  const { ref, mag } = referenceLinear(x, w, b, M, N, K, outIn);
  return { x, w, bias: b, ref, mag };
}

/**
 * |y - ref| <= (2 + 2 sqrt(K)) * 2^-24 * S per element, S = sum_k |x_ik B_kj| + |bias_j|: every fp32
 * rounding errs by at most 2^-24 times a value bounded by S, and the K rounding errors of a sum grow
 * like sqrt(K) (the worst case is K); a wrong or missing term is ~ S / sqrt(K) and fails.
 */
export function expectLinearClose(y: Float32Array, d: LinearData, K: number): void {
  expect(y.length).toBe(d.ref.length);
  const factor = (2 + 2 * Math.sqrt(K)) * 2 ** -24;
  let bad = -1;
  let worst = 0;
  for (let i = 0; i < d.ref.length; i++) {
    const ratio = Math.abs(y[i]! - d.ref[i]!) / (factor * d.mag[i]! + 1e-30);
    if (!(ratio <= 1) && bad < 0) bad = i;
    if (ratio > worst) worst = ratio;
  }
  expect(bad, `first bad index ${bad}: got ${y[bad]} want ${d.ref[bad]}, worst err/tol ${worst.toExponential(2)}`).toBe(-1);
}

/** What fn threw (undefined if it returned). */
export function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

/** fn throws an instance of `cls` whose message matches `message`. */
export function expectError(fn: () => unknown, cls: typeof TypeError | typeof RangeError, message: RegExp): void {
  const err = thrownBy(fn);
  expect(err).toBeInstanceOf(cls);
  expect((err as Error).message).toMatch(message);
}

// ---------------------------------------------------------------------------------------------
// The runners: every way this machine can run the public API. The TypeScript kernels, and the
// native addon once per kernel set it supports (scalar, then every SIMD one). Besides
// scaledDotProductAttention, a runner builds linear / Linear / MultiHeadAttention bound to its
// backend; on native runners every call (construction included) runs under that runner's kernel set.

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

/** Runs fn under the native kernel set `simd`, restoring 'auto' afterwards. */
export function withSimd<R>(simd: string, fn: () => R): R {
  const binding = nativeBinding!;
  if (!binding._setSimd(simd)) throw new Error(`kernel set ${simd} is not supported here`);
  try {
    return fn();
  } finally {
    binding._setSimd('auto');
  }
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

const jsApi = { sdpa: J.scaledDotProductAttention, linear: J.linear, Linear: J.Linear as Ctor<LinearLike>, Mha: J.MultiHeadAttention as Ctor<MhaInstance> };
const nativeApi = {
  sdpa: N.scaledDotProductAttention, linear: N.linear, Linear: N.Linear as Ctor<LinearLike>, Mha: N.MultiHeadAttention as Ctor<MhaInstance>,
};
const onSimd = (simd: string) => <A extends unknown[], R>(fn: (...args: A) => R) => (...args: A) => withSimd(simd, () => fn(...args));

/** The native kernel sets this machine runs: scalar, then every SIMD one (an AVX-512 machine checks AVX2 too). */
export const nativeKernelSets: string[] = [];
if (nativeBinding) {
  nativeKernelSets.push('scalar');
  for (const set of ['avx2', 'avx512', 'neon'] as const) if (nativeBinding._setSimd(set)) nativeKernelSets.push(set);
  nativeBinding._setSimd('auto');
}

export const runners: Runner[] = [
  runner('js', (fn) => fn, jsApi),
  ...nativeKernelSets.map((set) => runner(`native-${set}`, onSimd(set), nativeApi)),
];

/** The two public entry points: 'qkv' (the native addon when it loaded, else the TypeScript kernels) and 'qkv/js'. */
export const publicApis = [
  ['native', N],
  ['js', J],
] as const;

// ---------------------------------------------------------------------------------------------
// The native binding's own argument forms

/**
 * A dims array for the binding's sdpa: `values` fill the first slots (SDPA_DIM_SLOTS order); the
 * rest take their neutral value (kvDtype float32, the window sides unbounded).
 */
export function sdpaBindingDims(values: readonly number[]): Int32Array {
  const dims = Int32Array.from(SDPA_DIM_SLOTS, (slot) => (slot === 'windowLeft' || slot === 'windowRight' ? WINDOW_UNBOUNDED : 0));
  dims.set(values);
  return dims;
}

/** w ([N, K] if outIn, else [K, N]) packed by the binding for gemm. */
export function packWeight(w: Float32Array, N: number, K: number, outIn = true): Float32Array {
  const b = nativeBinding!;
  return b.gemmPack(w, outIn, N, K, new Float32Array(b.gemmPackedLength(N, K)));
}

// ---------------------------------------------------------------------------------------------
// Fuzzing: a seeded generator (every call reproducible from its seed and index), buffers of every
// backing kind, and the checks every fuzzed call must pass.

/** The seed of a run: QKV_FUZZ_SEED when set (to replay a failure), else a fixed one. */
export const FUZZ_SEED = process.env.QKV_FUZZ_SEED ? Number(process.env.QKV_FUZZ_SEED) : 0x51c0ffee;

/** Wall-clock budget of one fuzz loop, in ms (QKV_FUZZ_SCALE multiplies it). */
export function budget(ms: number): number {
  const scale = process.env.QKV_FUZZ_SCALE ? Number(process.env.QKV_FUZZ_SCALE) : 1;
  return ms * scale;
}

export class Gen {
  readonly r: () => number;
  constructor(seed: number) {
    this.r = makeRng(seed);
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.r() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.r() * xs.length)];
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  /** n floats in [-1, 1), on a backing picked at random: plain, offset view, shared, resizable. */
  f32(n: number, kind: BufferKind = this.pick(BUFFER_KINDS)): Float32Array {
    const a = makeF32(n, kind);
    for (let i = 0; i < n; i++) a[i] = this.r() * 2 - 1;
    return a;
  }
}

export type BufferKind = 'plain' | 'offset4' | 'offset12' | 'shared' | 'shared-offset' | 'resizable';
export const BUFFER_KINDS: readonly BufferKind[] = ['plain', 'plain', 'plain', 'offset4', 'offset12', 'shared', 'shared-offset', 'resizable'];

/** A Float32Array of n elements over the given kind of buffer (all valid inputs). */
export function makeF32(n: number, kind: BufferKind): Float32Array {
  switch (kind) {
    case 'plain':
      return new Float32Array(n);
    case 'offset4':
      return new Float32Array(new ArrayBuffer(4 * (n + 2)), 4, n);
    case 'offset12':
      return new Float32Array(new ArrayBuffer(4 * (n + 5)), 12, n);
    case 'shared':
      return new Float32Array(new SharedArrayBuffer(4 * n));
    case 'shared-offset':
      return new Float32Array(new SharedArrayBuffer(4 * (n + 3)), 8, n);
    case 'resizable': {
      // Length-tracking view over a resizable buffer (Node 20 has them; the ES2022 lib types do not).
      const Ctor = ArrayBuffer as unknown as new (len: number, opts: { maxByteLength: number }) => ArrayBuffer;
      return new Float32Array(new Ctor(4 * n, { maxByteLength: 4 * n + 64 }));
    }
  }
}

/** A Float32Array whose buffer has been transferred away (length 0, detached). */
export function detached(n: number): Float32Array {
  const a = new Float32Array(n);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}

/** |a - b| <= 1e-5 + 1e-4·|b| everywhere (NaN matches NaN). Returns the first bad index or -1. */
export function firstMismatch(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (x === y) continue;
    if (!(Math.abs(x - y) <= 1e-5 + 1e-4 * Math.abs(y))) return i;
  }
  return -1;
}

/** The thrown value is a TypeError/RangeError whose message names an argument in the house format. */
export function namesArgument(err: unknown): boolean {
  if (!(err instanceof TypeError || err instanceof RangeError)) return false;
  return ARG_MESSAGE.test(err.message);
}

const ARG_MESSAGE = new RegExp(
  [
    String.raw`^Expected .+ for \S.* but received .*$`,
    String.raw`^Expected .+ for \w+$`,
    String.raw`^Expected \S+ to be .+ but received .*$`,
    String.raw`^Expected [\w.\[\]]+ not to overlap [\w.\[\]]+ but they share memory$`,
    String.raw`^Unknown option '[^']+' in [\w.]+`,
    String.raw`^Could not allocate \S+`,
    String.raw`^Expected finite values in [\w.\[\]]+ but [\w.\[\]]+\[\d+\] is`,
  ].join('|'),
  's',
);

/** A copy of a typed array's contents (or null when it cannot be read). */
export function snapshot(a: unknown): Float32Array | null {
  if (!(a instanceof Float32Array) || a.byteLength === 0) return null; // byteLength: see lengthOf in lib/validate.ts
  return Float32Array.from(a);
}

export function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Short text of an argument for a failure report (never the contents of big arrays). */
export function show(v: unknown, depth = 0): string {
  if (v === null) return 'null';
  if (ArrayBuffer.isView(v)) {
    const t = v as unknown as { length: number; byteOffset: number; buffer: ArrayBufferLike };
    const shared = typeof SharedArrayBuffer !== 'undefined' && t.buffer instanceof SharedArrayBuffer ? ',shared' : '';
    const n = (v as unknown as { byteLength: number }).byteLength / ((v as unknown as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1);
    return `${v.constructor.name}(${n}@${t.byteOffset}${shared})`;
  }
  if (Array.isArray(v)) return depth > 2 ? 'Array' : `[${v.map((x) => show(x, depth + 1)).join(', ')}]`;
  if (typeof v === 'object') {
    if (depth > 2) return '{…}';
    return `{ ${Object.entries(v as object).map(([k, x]) => `${k}: ${show(x, depth + 1)}`).join(', ')} }`;
  }
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}

/** An error as one line: its class and message. */
export function describeError(e: unknown): string {
  return e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e);
}

/** What one fuzzed call reports: a problem (null: none) and whether the call was refused. */
export interface FuzzOutcome {
  problem: string | null;
  threw?: boolean;
}

/**
 * Runs `body` on generators seeded from FUZZ_SEED, the call index i, `mix` and `salt`, for about
 * `ms` ms and at least `min` calls (QKV_FUZZ_ONLY=<i>: that call alone). Stops at 10 failures;
 * logs one line of counts; returns the failures, each with what replays it.
 */
export async function fuzzLoop(
  label: string, { salt, mix, ms, min }: { salt: number; mix: number; ms: number; min: number },
  body: (g: Gen) => Promise<FuzzOutcome>,
): Promise<string[]> {
  const only = process.env.QKV_FUZZ_ONLY ? Number(process.env.QKV_FUZZ_ONLY) : -1;
  const failures: string[] = [];
  const deadline = Date.now() + budget(ms);
  let calls = 0;
  let refused = 0;
  for (let i = only >= 0 ? only : 0; only >= 0 ? i === only : calls < min || Date.now() < deadline; i++) {
    const { problem, threw } = await body(new Gen((FUZZ_SEED ^ Math.imul(i + 1, mix) ^ salt) >>> 0));
    calls++;
    if (threw) refused++;
    if (problem !== null) {
      failures.push(`${label} #${i} (QKV_FUZZ_SEED=${FUZZ_SEED} QKV_FUZZ_ONLY=${i}): ${problem}`);
      if (failures.length >= 10) break;
    }
  }
  console.log(`fuzz ${label}: ${calls} calls (${refused} refused), seed ${FUZZ_SEED}, ${failures.length} failures`);
  return failures;
}

// ---------------------------------------------------------------------------------------------
// Child processes and worker threads

/** The package root. */
export const root = fileURLToPath(new URL('..', import.meta.url));

/** Runs `node --import tsx ...args` at the package root; returns its stdout (throws with its stderr if it fails). */
export function runTsx(args: string[], env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(process.execPath, ['--import', 'tsx', ...args], {
    cwd: root, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs a module snippet in a fresh Node process with these variables added; returns its stdout. */
export function inChild(code: string, env: Record<string, string>): string {
  return runTsx(['--input-type=module', '-e', code], { ...process.env, ...env });
}

/** The last line of a child's stdout, parsed as JSON. */
export function lastJsonLine(stdout: string): any {
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

/** test/fixtures/attention-worker.ts in a worker thread: `started` once its calls are in flight, `done` with its report. */
export function runWorker(workerData: object) {
  const worker = new Worker(new URL('./fixtures/ts-worker.mjs', import.meta.url), {
    workerData: { ...workerData, script: new URL('./fixtures/attention-worker.ts', import.meta.url).href },
  });
  let onStarted!: () => void;
  const started = new Promise<void>((r) => (onStarted = r));
  const done = new Promise((resolve, reject) => {
    worker.on('message', (m) => (m.started ? onStarted() : resolve(m)));
    worker.on('error', reject);
  });
  return { worker, started, done };
}

// ---------------------------------------------------------------------------------------------
// The machine

/** A native build is on disk (it may still fail to load: test/backend-selection.test.ts says so). */
export const nativeBinaryBuilt = existsSync(`${root}/build/Release/qkv.node`);

/**
 * The kernel set native/dispatch.cc picks by default on this CPU, from the flags Linux reports in
 * /proc/cpuinfo (the kernel clears a flag the OS does not save the registers of): avx512 needs
 * avx512f on top of avx2; avx2 needs avx2, fma and f16c; aarch64 always has neon; anything else
 * runs scalar. null on x86-64 outside Linux, where there is no /proc/cpuinfo to read.
 */
export function cpuKernelSet(): 'avx512' | 'avx2' | 'neon' | 'scalar' | null {
  if (process.arch === 'arm64') return 'neon';
  if (process.arch !== 'x64') return 'scalar';
  if (process.platform !== 'linux') return null;
  const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => /^flags\s*:/.test(l)) ?? '';
  const flags = new Set(line.slice(line.indexOf(':') + 1).trim().split(/\s+/));
  const avx2 = flags.has('avx2') && flags.has('fma') && flags.has('f16c');
  if (avx2 && flags.has('avx512f')) return 'avx512';
  return avx2 ? 'avx2' : 'scalar';
}

// ---------------------------------------------------------------------------------------------
// Hostile callers: values that answer differently on a second read, typed arrays that lie about
// themselves, and what the process reports (uncaught errors, warnings) while a test runs.

/** How an object's flipping keys are made: own getters, a Proxy's get trap, or getters on its prototype. */
export type FlipForm = 'getters' | 'proxy' | 'inherited';
export const FLIP_FORMS: readonly FlipForm[] = ['getters', 'proxy', 'inherited'];

/**
 * An object with the keys of `first`, each answering first[key] on its first read; the keys of
 * `later` answer later[key] on every read after that (`onFirstRead`, when given, runs inside the
 * first read of that key). Counts reads per key in `reads`.
 */
export function flipping(
  form: FlipForm, first: Record<string, unknown>, later: Record<string, unknown>,
  onFirstRead: Record<string, () => void> = {}, reads: Record<string, number> = {},
): Record<string, unknown> {
  const answer = (key: string): unknown => {
    const n = (reads[key] = (reads[key] ?? 0) + 1);
    if (n === 1) onFirstRead[key]?.();
    return n > 1 && key in later ? later[key] : first[key];
  };
  if (form === 'proxy') {
    return new Proxy({ ...first }, {
      get: (target, key, receiver) => (typeof key === 'string' && key in first ? answer(key) : Reflect.get(target, key, receiver)),
    });
  }
  const descriptors: PropertyDescriptorMap = {};
  for (const key of Object.keys(first)) descriptors[key] = { get: () => answer(key), enumerable: true, configurable: true };
  if (form === 'getters') return Object.defineProperties({}, descriptors);
  return Object.create(Object.defineProperties({}, descriptors)) as Record<string, unknown>;
}

/** A Proxy over an array whose listed indices (or 'length') answer `later[i]` after their first read. */
export function flippingArray<T extends object>(target: T, later: Record<string, unknown>, reads: Record<string, number> = {}): T {
  return new Proxy(target, {
    get(t, key, receiver) {
      if (typeof key === 'string' && key in later) {
        const n = (reads[key] = (reads[key] ?? 0) + 1);
        if (n > 1) return later[key];
      }
      const v = Reflect.get(t, key, receiver);
      return typeof v === 'function' && ArrayBuffer.isView(t) ? v.bind(t) : v;
    },
  });
}

/** What a lying typed array misreports or replaces; every lie is an own accessor or method of its class. */
export interface Lies {
  /** What `length` (and `byteLength`, in bytes) claim. */
  length?: number;
  /** subarray / slice / fill / set / map: throw, or answer with garbage of the wrong size. */
  methods?: 'throw' | 'garbage';
  /** `constructor` (and Symbol.species through it) makes arrays of garbage. */
  species?: boolean;
}

/**
 * An instance of a Float32Array (or Int32Array / Uint8Array) subclass that lies as `lies` says,
 * over `real` elements (copied from `data`) placed inside a larger buffer whose `guard` elements
 * before and after hold `guardValue`. `guardsIntact()` says whether anything wrote outside the view.
 */
export function liar<T extends Float32Array | Int32Array | Uint8Array>(
  Base: new (...args: never[]) => T, data: ArrayLike<number>, lies: Lies, guard = 4, guardValue = 77,
): { array: T; guardsIntact: () => boolean } {
  const B = Base as unknown as { new (buffer: ArrayBufferLike, offset: number, length: number): T; new (n: number): T; BYTES_PER_ELEMENT: number };
  const elem = B.BYTES_PER_ELEMENT;
  const claimed = lies.length;
  const garbage = (n: number): T => {
    const g = new B(Math.max(0, n));
    g.fill(-999 as never);
    return g;
  };
  const liarMethod = (name: string) => function (this: T, ...args: unknown[]): unknown {
    if (lies.methods === 'throw') throw new Error(`the lying ${name}() was called`);
    return garbage((claimed ?? data.length) + args.length + 2);
  };
  const LyingBase = B as unknown as new (buffer: ArrayBufferLike, offset: number, length: number) => object;
  class Lying extends LyingBase {}
  const proto = Lying.prototype as unknown as Record<PropertyKey, unknown>;
  if (claimed !== undefined) {
    Object.defineProperty(proto, 'length', { get: () => claimed, configurable: true });
    Object.defineProperty(proto, 'byteLength', { get: () => claimed * elem, configurable: true });
  }
  if (lies.methods) for (const m of ['subarray', 'slice', 'fill', 'set', 'map', 'at', 'copyWithin']) Object.defineProperty(proto, m, { value: liarMethod(m), configurable: true, writable: true });
  if (lies.species) {
    const Species = function (this: unknown, ...args: unknown[]) {
      if (lies.methods === 'throw') throw new Error('the lying species constructor was called');
      return garbage(typeof args[0] === 'number' ? args[0] + 5 : (claimed ?? data.length) + 5);
    };
    Object.defineProperty(proto, 'constructor', { value: { [Symbol.species]: Species }, configurable: true, writable: true });
  }
  const buffer = new ArrayBuffer(elem * (data.length + 2 * guard));
  const whole = new B(buffer, 0, data.length + 2 * guard);
  whole.fill(guardValue as never);
  const array = new Lying(buffer, elem * guard, data.length) as T;
  B.prototype.set.call(array, data as never);
  const guardsIntact = () => {
    for (let i = 0; i < guard; i++) if (whole[i] !== guardValue || whole[guard + data.length + i] !== guardValue) return false;
    return true;
  };
  return { array, guardsIntact };
}

/** A Proxy over a typed array that forwards everything (it is still not a typed array). */
export function proxied<T extends object>(target: T): T {
  return new Proxy(target, {
    get(t, key) {
      const v = Reflect.get(t, key, t);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
}

/** What the process reported while `fn` ran: uncaught exceptions, unhandled rejections, warnings (by name). */
export async function watchProcess<R>(fn: () => Promise<R>): Promise<{ result: R; uncaught: unknown[]; warnings: string[] }> {
  const uncaught: unknown[] = [];
  const warnings: string[] = [];
  const onError = (e: unknown) => uncaught.push(e);
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on('uncaughtException', onError);
  process.on('unhandledRejection', onError);
  process.on('warning', onWarning);
  try {
    const result = await fn();
    // Warnings and unhandled rejections are reported on a later turn.
    await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setImmediate(r));
    return { result, uncaught, warnings };
  } finally {
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onError);
    process.off('warning', onWarning);
  }
}

/** How a Promise settled within `ms` ms: its value, its rejection, or 'hang'. */
export function settleWithin<T>(p: Promise<T>, ms: number): Promise<{ status: 'fulfilled'; value: T } | { status: 'rejected'; reason: unknown } | { status: 'hang' }> {
  let timer: ReturnType<typeof setTimeout>;
  const hang = new Promise<{ status: 'hang' }>((r) => (timer = setTimeout(() => r({ status: 'hang' }), ms)));
  return Promise.race([
    p.then((value) => ({ status: 'fulfilled' as const, value }), (reason: unknown) => ({ status: 'rejected' as const, reason })),
    hang,
  ]).finally(() => clearTimeout(timer));
}

/**
 * Every way this machine serves the public API, with the whole face at hand (async functions and
 * classes included): qkv/js, then qkv under each native kernel set (run() holds the kernel set
 * while the call's synchronous part runs), or qkv alone when it has no native binary.
 */
export interface Target {
  name: string;
  face: any;
  run<R>(fn: () => R): R;
}
export const targets: Target[] = [
  { name: 'js', face: J, run: (fn) => fn() },
  ...(nativeKernelSets.length > 0
    ? nativeKernelSets.map((set): Target => ({ name: `native-${set}`, face: N, run: (fn) => withSimd(set, fn) }))
    : [{ name: 'qkv', face: N, run: <R>(fn: () => R): R => fn() }]),
];

/** How a call ended: the Float32Arrays of its result (copied), or what it threw or rejected with. */
export type CallOutcome = { arrays: Float32Array[]; error?: undefined } | { error: unknown; arrays?: undefined };

/** Runs fn (awaiting a Promise it returns) and copies the Float32Arrays of its result. */
export async function outcomeOf(fn: () => unknown): Promise<CallOutcome> {
  try {
    let r = fn();
    if (r instanceof Promise) r = await r;
    const copy = (a: Float32Array) => Float32Array.from(a);
    if (r instanceof Float32Array) return { arrays: [copy(r)] };
    if (r && typeof r === 'object') return { arrays: Object.values(r).filter((a) => a instanceof Float32Array).map((a) => copy(a as Float32Array)) };
    return { arrays: [] };
  } catch (error) {
    return { error };
  }
}

/** null when two outcomes are the same (same error class and message, or results within firstMismatch's tolerance). */
export function outcomeDifference(a: CallOutcome, b: CallOutcome, tol?: (x: ArrayLike<number>, y: ArrayLike<number>) => number): string | null {
  if (a.error !== undefined || b.error !== undefined) {
    if (a.error !== undefined && b.error !== undefined && describeError(a.error) === describeError(b.error)) return null;
    return `${a.error !== undefined ? describeError(a.error) : 'a result'} / ${b.error !== undefined ? describeError(b.error) : 'a result'}`;
  }
  const x = a.arrays!;
  const y = b.arrays!;
  if (x.length !== y.length) return `${x.length} result arrays / ${y.length}`;
  for (let i = 0; i < x.length; i++) {
    const bad = (tol ?? firstMismatch)(x[i]!, y[i]!);
    if (bad >= 0) return `result ${i} differs at [${bad}]: ${x[i]![bad]} / ${y[i]![bad]}`;
  }
  return null;
}
