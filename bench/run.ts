// npm run bench [-- --filter <substring>[,<substring>…]] [--quick] [--json <file>] [--list]
//
// The named workloads of issue 7 (SDPA small, BERT-base layer, throughput layer, long SDPA causal
// and not, two decode steps, SGEMM 1024³) on every implementation available here:
//   qkv native on 1 thread and on all threads (setThreads), qkv js (the TypeScript kernels),
//   onnxruntime-node (the same computation as an ONNX graph built at bench time, bench/onnx.ts:
//   plain MatMul/Softmax ops, and its fused com.microsoft MultiHeadAttention / Attention op where it
//   runs), on 1 and all threads, and @tensorflow/tfjs-core with its pure-JS CPU backend.
// A peer that is not installed or does not load is skipped with a note. Every implementation's
// output is compared with qkv's before it is timed (a mismatch is reported and not timed).
// Timing: benchmark.js (median of its samples, ±RME); calls over 1 s are timed by hand (3 runs,
// 1 with --quick; the median); for calls over 10 s the checked run is the one sample.
// "% of limit" divides by the ceilings of the CPU it runs on (bench/ceilings.ts: measured at the start
// when bench/.cache has none for this CPU): for GEMM, layer and prefill rows the FMA peak of the
// kernel set in use at the row's thread count (qkv native: info().simd; qkv js and tfjs: scalar;
// onnxruntime: the CPU's widest); for decode rows the read bandwidth of the L3 when K, V, q and out fit
// in it (they are re-read call after call), else of DRAM.
import Benchmark from 'benchmark';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import {
  Linear as LinearNative,
  MultiHeadAttention as MhaNative,
  info,
  scaledDotProductAttention as sdpaNative,
  setThreads,
} from '../lib/index.js';
import {
  Linear as LinearJs,
  MultiHeadAttention as MhaJs,
  scaledDotProductAttention as sdpaJs,
} from '../lib/js.js';
import { bestIsa, describeCeilings, fmaLimit, formatPercent, loadCeilings, percentOf, readLimit, type Limit } from './ceilings.js';
import { gemmPlain, layerFused, layerPlain, modelBytes, sdpaFused, sdpaPlain, type LayerWeightsT, type OnnxGraph } from './onnx.js';

// ---- workloads ------------------------------------------------------------------------------------
interface SdpaShape { B: number; H: number; Sq: number; Sk: number; D: number; causal: boolean }
interface LayerShape { B: number; S: number; E: number; H: number; causal: boolean }
interface GemmShape { M: number; N: number; K: number }
type Workload = { id: string; name: string; quick: boolean } & (
  | { kind: 'sdpa'; s: SdpaShape }
  | { kind: 'layer'; l: LayerShape }
  | { kind: 'gemm'; g: GemmShape }
);

const workloads: Workload[] = [
  { id: 'sdpa-small', name: 'SDPA small B=1 H=1 S=16 D=64', quick: true, kind: 'sdpa', s: { B: 1, H: 1, Sq: 16, Sk: 16, D: 64, causal: false } },
  { id: 'bert-layer', name: 'BERT-base layer B=1 S=128 E=768 H=12', quick: true, kind: 'layer', l: { B: 1, S: 128, E: 768, H: 12, causal: false } },
  { id: 'throughput-layer', name: 'throughput layer B=8 S=512 E=768 H=12', quick: false, kind: 'layer', l: { B: 8, S: 512, E: 768, H: 12, causal: false } },
  { id: 'long-sdpa', name: 'long SDPA B=1 H=8 S=4096 D=64', quick: false, kind: 'sdpa', s: { B: 1, H: 8, Sq: 4096, Sk: 4096, D: 64, causal: false } },
  { id: 'long-sdpa-causal', name: 'long SDPA causal B=1 H=8 S=4096 D=64', quick: false, kind: 'sdpa', s: { B: 1, H: 8, Sq: 4096, Sk: 4096, D: 64, causal: true } },
  { id: 'decode-12x64x2048', name: 'decode B=1 H=12 D=64 L=2048', quick: true, kind: 'sdpa', s: { B: 1, H: 12, Sq: 1, Sk: 2048, D: 64, causal: false } },
  { id: 'decode-32x128x4096', name: 'decode B=1 H=32 D=128 L=4096', quick: false, kind: 'sdpa', s: { B: 1, H: 32, Sq: 1, Sk: 4096, D: 128, causal: false } },
  { id: 'sgemm-1024', name: 'SGEMM 1024³', quick: true, kind: 'gemm', g: { M: 1024, N: 1024, K: 1024 } },
];

// ---- arguments --------------------------------------------------------------------------------------
const args = process.argv.slice(2);
const opt = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const quick = args.includes('--quick');
const filters = opt('--filter')?.split(',').map((f) => f.trim().toLowerCase()).filter(Boolean);
const jsonFile = opt('--json');
if (args.includes('--list') || args.includes('--help')) {
  console.log('usage: npm run bench -- [--quick] [--filter id-or-name[,…]] [--json file]\nworkloads:');
  for (const w of workloads) console.log(`  ${w.id.padEnd(20)} ${w.name}${w.quick ? '  (in --quick)' : ''}`);
  process.exit(0);
}
const selected = workloads.filter((w) =>
  filters ? filters.some((f) => w.id.includes(f) || w.name.toLowerCase().includes(f)) : !quick || w.quick,
);
if (selected.length === 0) {
  console.error(`no workload matches --filter ${opt('--filter')}; try --list`);
  process.exit(2);
}

// ---- machine ceilings ---------------------------------------------------------------------------------
const { ceilings, source: ceilingsSource } = loadCeilings({ quick });

// ---- helpers ------------------------------------------------------------------------------------------
function randn(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    // xorshift32 + Box–Muller: reproducible unit-scale inputs.
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    const u = ((s >>> 0) + 1) / 4294967297;
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    const w = ((s >>> 0) + 1) / 4294967297;
    a[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * w);
  }
  return a;
}
const scaled = (a: Float32Array, f: number) => a.map((x) => x * f);

/** [rows, cols] → [cols, rows]. */
function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
  return t;
}
/** [B, X, Y, D] → [B, Y, X, D] (bhsd ↔ bshd). */
function swap12(a: Float32Array, B: number, X: number, Y: number, D: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let b = 0; b < B; b++)
    for (let x = 0; x < X; x++)
      for (let y = 0; y < Y; y++) t.set(a.subarray(((b * X + x) * Y + y) * D, ((b * X + x) * Y + y + 1) * D), ((b * Y + y) * X + x) * D);
  return t;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Flops of attention: 2·(D+Dv) per (query, key) pair that is not causally masked. */
function attentionFlops(s: SdpaShape): number {
  let pairs = s.Sq * s.Sk;
  if (s.causal) {
    pairs = 0;
    const offset = s.Sk - s.Sq;
    for (let i = 0; i < s.Sq; i++) pairs += Math.max(0, Math.min(s.Sk, offset + i + 1));
  }
  return 2 * s.B * s.H * pairs * (2 * s.D);
}

const progressTty = process.stderr.isTTY;
/** A progress line on stderr: rewritten in place on a terminal; elsewhere only steps expected to take over a second. */
function progress(msg: string, long = false): void {
  if (progressTty) process.stderr.write(`\r\x1b[K${msg}`);
  else if (long) process.stderr.write(`${msg}\n`);
}
const clearProgress = () => progressTty && process.stderr.write('\r\x1b[K');

// ---- implementations --------------------------------------------------------------------------------
/** One implementation of one workload: `run` computes into its own output; `result` reads it back. */
interface Impl {
  label: string;
  family: 'qkv-native' | 'qkv-js' | 'onnxruntime' | 'tfjs';
  threads: number;
  before?: () => void; // e.g. setThreads
  run: () => void | Promise<void>;
  result: () => ArrayLike<number>;
  dispose?: () => void;
}

interface Prepared {
  flops: number;
  /** Bytes a bandwidth-bound call must read (decode: all of K and V), else undefined. */
  bytes?: number;
  impls: Impl[];
  notes: string[];
}

const native = info();
const allThreads = native.threads;

// Peers: loaded lazily, once; a failure is a note, never an error.
// The part of onnxruntime-node this bench uses. It is not a devDependency: its install script
// downloads CUDA binaries from outside the npm registry. Install it by hand to compare:
//   npm install --no-save --ignore-scripts onnxruntime-node@1.30.0   (the CPU binaries ship in the tarball)
interface OrtTensor { data: unknown }
interface OrtSession { run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>; release(): Promise<void> }
interface Ort {
  env?: { versions?: { node?: string; common?: string } };
  Tensor: new (type: 'float32', data: Float32Array, dims: number[]) => OrtTensor;
  InferenceSession: { create(model: Uint8Array, options: Record<string, unknown>): Promise<OrtSession> };
}
const ORT_MODULE = 'onnxruntime-node'; // a variable, so the type checker does not look for the package
type Tf = typeof import('@tensorflow/tfjs-core');
let ort: Ort | null = null;
let tf: Tf | null = null;
const peerNotes: string[] = [];
try {
  const mod = (await import(ORT_MODULE)) as { default?: Ort } & Partial<Ort>;
  ort = mod.default?.InferenceSession ? mod.default : (mod as Ort);
} catch (err) {
  peerNotes.push(`onnxruntime-node not available, skipped (${(err as Error).message.split('\n')[0]})`);
}
try {
  const core = (await import('@tensorflow/tfjs-core')) as Tf;
  await import('@tensorflow/tfjs-backend-cpu');
  await core.setBackend('cpu');
  if (core.getBackend() !== 'cpu') throw new Error(`backend ${core.getBackend()}`);
  // The cpu backend prints a one-time banner on stderr (it suggests installing tfjs-node) when it
  // stores its first tensor, which would land in the middle of the table. Store that first tensor
  // here, before anything is printed, and drop the banner; any other warning is passed on.
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (!/looks like you are running TensorFlow\.js in Node\.js/.test(args.map(String).join(' '))) warn(...args);
  };
  try {
    core.tensor1d([0]).dispose();
  } finally {
    console.warn = warn;
  }
  tf = core;
} catch (err) {
  peerNotes.push(`@tensorflow/tfjs-core + tfjs-backend-cpu not available, skipped (${(err as Error).message.split('\n')[0]})`);
}
const ortVersion = ort ? (ort.env?.versions?.node ?? ort.env?.versions?.common ?? '?') : null;
const tfVersion = tf ? tf.version_core : null;

const threadCounts = allThreads > 1 ? [1, allThreads] : [1];

/** The ceiling a row is held to: read bandwidth for the bandwidth-bound decode steps, else the FMA peak of its kernels. */
function limitOf(impl: Impl, p: Prepared): Limit | null {
  if (!ceilings) return null;
  if (p.bytes !== undefined) return readLimit(ceilings, impl.threads, p.bytes);
  const simd = impl.family === 'qkv-native' ? native.simd : impl.family === 'onnxruntime' ? bestIsa(ceilings.cpu) : 'js';
  return fmaLimit(ceilings, simd, impl.threads);
}

/** ONNX Runtime sessions for a graph on 1 and all threads; feeds built once. */
async function ortImpls(
  label: string, graph: () => OnnxGraph, feeds: () => Record<string, { data: Float32Array; dims: number[] }>,
  outName: string, toRef: (y: Float32Array) => Float32Array, notes: string[],
): Promise<Impl[]> {
  if (!ort) return [];
  const o = ort;
  const impls: Impl[] = [];
  let bytes: Uint8Array;
  let feedTensors: Record<string, OrtTensor>;
  try {
    bytes = modelBytes(graph());
    feedTensors = Object.fromEntries(Object.entries(feeds()).map(([k, v]) => [k, new o.Tensor('float32', v.data, v.dims)]));
  } catch (err) {
    notes.push(`${label}: could not build the graph (${(err as Error).message.split('\n')[0]})`);
    return [];
  }
  for (const t of threadCounts) {
    try {
      const session = await o.InferenceSession.create(bytes, {
        intraOpNumThreads: t, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
      });
      let last: Float32Array | null = null;
      impls.push({
        label: `${label} ×${t}`, family: 'onnxruntime', threads: t,
        run: async () => {
          const r = await session.run(feedTensors);
          last = r[outName].data as Float32Array;
        },
        result: () => toRef(last!),
        dispose: () => void session.release(),
      });
    } catch (err) {
      notes.push(`${label} ×${t}: does not run here (${(err as Error).message.split('\n')[0].slice(0, 160)})`);
      break;
    }
  }
  return impls;
}

async function prepare(w: Workload): Promise<Prepared> {
  const notes: string[] = [];
  const impls: Impl[] = [];
  const nativeImpls = (run: () => void, result: () => ArrayLike<number>) => {
    if (native.backend !== 'native') return;
    for (const t of threadCounts) impls.push({ label: `qkv native ×${t}`, family: 'qkv-native', threads: t, before: () => setThreads(t), run, result });
  };

  if (w.kind === 'sdpa') {
    const { B, H, Sq, Sk, D, causal } = w.s;
    const q = randn(B * H * Sq * D, 1), k = randn(B * H * Sk * D, 2), v = randn(B * H * Sk * D, 3);
    const opts = { batch: B, heads: H, seqQ: Sq, seqK: Sk, headDim: D, causal };
    const outN = new Float32Array(B * H * Sq * D), outJ = new Float32Array(outN.length);
    nativeImpls(() => void sdpaNative(q, k, v, { ...opts, out: outN }), () => outN);
    impls.push({ label: 'qkv js', family: 'qkv-js', threads: 1, run: () => void sdpaJs(q, k, v, { ...opts, out: outJ }), result: () => outJ });
    impls.push(...(await ortImpls('onnxruntime', () => sdpaPlain(B, H, Sq, Sk, D, causal),
      () => ({ q: { data: q, dims: [B, H, Sq, D] }, k: { data: k, dims: [B, H, Sk, D] }, v: { data: v, dims: [B, H, Sk, D] } }),
      'out', (y) => y, notes)));
    impls.push(...(await ortImpls('onnxruntime fused MHA', () => sdpaFused(B, H, Sq, Sk, D, causal),
      () => ({ q: { data: swap12(q, B, H, Sq, D), dims: [B, Sq, H * D] }, k: { data: swap12(k, B, H, Sk, D), dims: [B, Sk, H * D] }, v: { data: swap12(v, B, H, Sk, D), dims: [B, Sk, H * D] } }),
      'out', (y) => swap12(y, B, Sq, H, D), notes)));
    if (tf) {
      const t = tf;
      const tq = t.tensor3d(q, [B * H, Sq, D]), tk = t.tensor3d(k, [B * H, Sk, D]), tv = t.tensor3d(v, [B * H, Sk, D]);
      const mask = causal ? t.tensor2d(Float32Array.from({ length: Sq * Sk }, (_, i) => ((i % Sk) <= Sk - Sq + Math.floor(i / Sk) ? 0 : -Infinity)), [Sq, Sk]) : null;
      let last: Float32Array = new Float32Array(0);
      impls.push({
        label: 'tfjs cpu', family: 'tfjs', threads: 1,
        run: () => {
          const y = t.tidy(() => {
            let s = t.mul(t.matMul(tq, tk, false, true), 1 / Math.sqrt(D));
            if (mask) s = t.add(s, mask);
            return t.matMul(t.softmax(s), tv);
          });
          last = y.dataSync() as Float32Array;
          y.dispose();
        },
        result: () => last,
        dispose: () => t.dispose([tq, tk, tv, ...(mask ? [mask] : [])]),
      });
    }
    const decode = Sq === 1;
    return { flops: attentionFlops(w.s), bytes: decode ? (k.length + v.length + q.length + outN.length) * 4 : undefined, impls, notes };
  }

  if (w.kind === 'gemm') {
    // y[M, N] = x[M, K]·Wᵀ with W [N, K] ('out-in'), packed once by Linear (and prepacked by ORT).
    const { M, N, K } = w.g;
    const x = randn(M * K, 4);
    const weight = scaled(randn(N * K, 5), 1 / Math.sqrt(K));
    const config = { weight, inFeatures: K, outFeatures: N };
    const ln = native.backend === 'native' ? new LinearNative(config) : null;
    const lj = new LinearJs(config);
    const yN = new Float32Array(M * N), yJ = new Float32Array(M * N);
    if (ln) nativeImpls(() => void ln.forward(x, { out: yN }), () => yN);
    impls.push({ label: 'qkv js', family: 'qkv-js', threads: 1, run: () => void lj.forward(x, { out: yJ }), result: () => yJ });
    const wt = transpose(weight, N, K);
    impls.push(...(await ortImpls('onnxruntime', () => gemmPlain(M, N, K, wt), () => ({ x: { data: x, dims: [M, K] } }), 'y', (y) => y, notes)));
    if (tf) {
      const t = tf;
      const tx = t.tensor2d(x, [M, K]), tw = t.tensor2d(weight, [N, K]);
      let last: Float32Array = new Float32Array(0);
      impls.push({
        label: 'tfjs cpu', family: 'tfjs', threads: 1,
        run: () => {
          const y = t.matMul(tx, tw, false, true);
          last = y.dataSync() as Float32Array;
          y.dispose();
        },
        result: () => last,
        dispose: () => t.dispose([tx, tw]),
      });
    }
    return { flops: 2 * M * N * K, impls, notes };
  }

  // The layer (H = Hkv, Dh = E/H): projections 2·B·S·E·3E, attention, output projection 2·B·S·E·E.
  const { B, S, E, H, causal } = w.l;
  const Dh = E / H;
  const mat = (seed: number) => scaled(randn(E * E, seed), 1 / Math.sqrt(E));
  const weights = { wq: mat(6), wk: mat(7), wv: mat(8), wo: mat(9), bq: randn(E, 10), bk: randn(E, 11), bv: randn(E, 12), bo: randn(E, 13) };
  const config = { embedDim: E, numHeads: H, weights };
  const mn = native.backend === 'native' ? new MhaNative(config) : null;
  const mj = new MhaJs(config);
  const x = randn(B * S * E, 14);
  const yN = new Float32Array(B * S * E), yJ = new Float32Array(B * S * E);
  if (mn) nativeImpls(() => void mn.forward(x, { batch: B, causal, out: yN }), () => yN);
  impls.push({ label: 'qkv js', family: 'qkv-js', threads: 1, run: () => void mj.forward(x, { batch: B, causal, out: yJ }), result: () => yJ });
  const wT: LayerWeightsT = {
    wq: transpose(weights.wq, E, E), wk: transpose(weights.wk, E, E), wv: transpose(weights.wv, E, E), wo: transpose(weights.wo, E, E),
    bq: weights.bq, bk: weights.bk, bv: weights.bv, bo: weights.bo,
  };
  const feeds = () => ({ x: { data: x, dims: [B, S, E] } });
  impls.push(...(await ortImpls('onnxruntime', () => layerPlain(B, S, E, H, wT, causal), feeds, 'y', (y) => y, notes)));
  impls.push(...(await ortImpls('onnxruntime fused Attention', () => layerFused(B, S, E, H, wT, causal), feeds, 'y', (y) => y, notes)));
  if (tf) {
    const t = tf;
    const tx = t.tensor2d(x, [B * S, E]);
    const tw = Object.fromEntries(Object.entries(wT).map(([k2, v2]) => [k2, v2.length === E ? t.tensor1d(v2) : t.tensor2d(v2, [E, E])]));
    const mask = causal ? t.tensor2d(Float32Array.from({ length: S * S }, (_, i) => ((i % S) <= Math.floor(i / S) ? 0 : -Infinity)), [S, S]) : null;
    let last: Float32Array = new Float32Array(0);
    impls.push({
      label: 'tfjs cpu', family: 'tfjs', threads: 1,
      run: () => {
        const y = t.tidy(() => {
          const proj = (w2: string, b2: string) => t.add(t.matMul(tx, tw[w2] as never), tw[b2] as never);
          const heads = (m: ReturnType<typeof proj>) => t.transpose(t.reshape(m, [B, S, H, Dh]), [0, 2, 1, 3]);
          const qh = heads(proj('wq', 'bq')), kh = heads(proj('wk', 'bk')), vh = heads(proj('wv', 'bv'));
          let s = t.mul(t.matMul(t.reshape(qh, [B * H, S, Dh]), t.reshape(kh, [B * H, S, Dh]), false, true), 1 / Math.sqrt(Dh));
          if (mask) s = t.add(s, mask);
          const ctx = t.reshape(t.matMul(t.softmax(s), t.reshape(vh, [B * H, S, Dh])), [B, H, S, Dh]);
          const merged = t.reshape(t.transpose(ctx, [0, 2, 1, 3]), [B * S, E]);
          return t.add(t.matMul(merged, tw.wo as never), tw.bo as never);
        });
        last = y.dataSync() as Float32Array;
        y.dispose();
      },
      result: () => last,
      dispose: () => t.dispose([tx, ...Object.values(tw), ...(mask ? [mask] : [])]),
    });
  }
  const flops = 2 * B * S * E * 3 * E + attentionFlops({ B, H, Sq: S, Sk: S, D: Dh, causal }) + 2 * B * S * E * E;
  return { flops, impls, notes };
}

// ---- timing -----------------------------------------------------------------------------------------
interface Timing { medianMs: number; rme: number | null; samples: number; method: 'benchmark.js' | 'timed runs' }

async function once(impl: Impl): Promise<number> {
  const t0 = performance.now();
  await impl.run();
  return performance.now() - t0;
}

async function time(impl: Impl, estimateMs: number): Promise<Timing> {
  // Over 10 s a call (tfjs on the long workloads) is not repeated: the checked run is the sample.
  if (estimateMs > 10_000) return { medianMs: estimateMs, rme: null, samples: 1, method: 'timed runs' };
  if (estimateMs > 1000) {
    const runs = quick ? 1 : 3;
    const ms: number[] = [];
    for (let r = 0; r < runs; r++) ms.push(await once(impl));
    return { medianMs: median(ms), rme: null, samples: runs, method: 'timed runs' };
  }
  const maxTime = quick ? 0.25 : 2;
  const minSamples = quick ? 5 : 20;
  const isAsync = impl.family === 'onnxruntime';
  const bench = isAsync
    ? new Benchmark({
        defer: true, maxTime, minSamples,
        fn: (deferred: { resolve(): void }) => void (impl.run() as Promise<void>).then(() => deferred.resolve()),
      } as Benchmark.Options)
    : new Benchmark(impl.run as () => void, { maxTime, minSamples });
  await new Promise<void>((resolve, reject) => {
    bench.on('complete', () => resolve());
    bench.on('error', (e: Benchmark.Event) => reject((e.target as unknown as { error: Error }).error));
    bench.run({ async: true });
  });
  return { medianMs: median(bench.stats.sample) * 1e3, rme: bench.stats.rme, samples: bench.stats.sample.length, method: 'benchmark.js' };
}

// ---- run ----------------------------------------------------------------------------------------------
interface Row {
  workload: string; workloadName: string; impl: string; family: Impl['family']; threads: number;
  medianMs: number; rme: number | null; samples: number; method: Timing['method'];
  gflops: number; gbs: number | null; pctLimit: number | null; limit: string; limitValue: number | null;
  maxAbsDiff: number; vsQkvJs: number | null; vsOnnxruntime: number | null; vsTfjs: number | null;
}
const rows: Row[] = [];
const skipped: Array<{ workload: string; impl: string; reason: string }> = [];

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const loadAverageAtStart = os.loadavg();
console.log(
  `qkv ${native.version} | backend ${native.backend} (${native.simd}), ${allThreads} thread(s) | ${cpu} | ${os.cpus().length} logical CPUs | node ${process.version}`,
);
console.log(`peers: onnxruntime-node ${ortVersion ?? '—'}, @tensorflow/tfjs-core ${tfVersion ?? '—'} (cpu backend)`);
console.log(ceilings ? `limits: ${describeCeilings(ceilings, ceilingsSource)}` : 'limits: not measured on this CPU ("% of limit" left blank)');
console.log(`load average at start: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}${quick ? ' | --quick' : ''}`);
if (native.backend !== 'native') console.log(`native backend unavailable: ${native.nativeError}`);
for (const n of peerNotes) console.log(`note: ${n}`);
console.log('');

const fmt = (ms: number) => ms.toFixed(ms < 1 ? 4 : ms < 100 ? 2 : 1);
const fx = (x: number | null) => (x === null ? '—' : `${x.toFixed(x < 10 ? 2 : 1)}×`);
console.log('| workload | implementation | median ms | ±RME | GFLOP/s | % of limit | vs qkv js | vs onnxruntime | vs tfjs |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|');

let failures = 0;
for (const [wi, w] of selected.entries()) {
  progress(`[${wi + 1}/${selected.length}] ${w.id}: preparing inputs and peer sessions…`);
  const p = await prepare(w);
  for (const n of p.notes) skipped.push({ workload: w.id, impl: n.split(':')[0], reason: n });

  // The reference: qkv native on all threads, else qkv js.
  const ref = p.impls.find((i) => i.family === 'qkv-native' && i.threads === allThreads) ?? p.impls.find((i) => i.family === 'qkv-js')!;
  const timed: Array<{ impl: Impl; t: Timing; diff: number }> = [];
  ref.before?.();
  await ref.run();
  const refOut = Float32Array.from(ref.result());
  let refMax = 0;
  for (const x of refOut) refMax = Math.max(refMax, Math.abs(x));
  const tol = 1e-3 * Math.max(1, refMax);

  for (const impl of p.impls) {
    impl.before?.();
    progress(`[${wi + 1}/${selected.length}] ${w.id}: checking ${impl.label}…`);
    let estimate: number;
    try {
      estimate = await once(impl);
    } catch (err) {
      skipped.push({ workload: w.id, impl: impl.label, reason: `failed to run: ${(err as Error).message.split('\n')[0]}` });
      continue;
    }
    const diff = maxAbsDiff(impl.result(), refOut);
    if (!(diff <= tol)) {
      skipped.push({ workload: w.id, impl: impl.label, reason: `output differs from ${ref.label} by ${diff.toExponential(2)} (tolerance ${tol.toExponential(1)}); not timed` });
      if (impl.family.startsWith('qkv')) failures++;
      continue;
    }
    if (estimate > 1000) progress(`[${wi + 1}/${selected.length}] ${w.id}: timing ${impl.label} (~${(estimate / 1000).toFixed(1)} s per call)…`, true);
    else progress(`[${wi + 1}/${selected.length}] ${w.id}: timing ${impl.label}…`);
    timed.push({ impl, t: await time(impl, estimate), diff });
  }
  for (const impl of p.impls) impl.dispose?.();
  setThreads(allThreads);
  clearProgress();

  const best = (family: Impl['family'], threads: number) => {
    const c = timed.filter((x) => x.impl.family === family && x.impl.threads === threads);
    return c.length ? Math.min(...c.map((x) => x.t.medianMs)) : null;
  };
  for (const { impl, t, diff } of timed) {
    const secs = t.medianMs / 1e3;
    const gflops = p.flops / 1e9 / secs;
    const gbs = p.bytes ? p.bytes / 1e9 / secs : null;
    const limit = limitOf(impl, p);
    const pct = percentOf(gbs ?? gflops, limit);
    // Speedups: the peer's time over this one's, at the same thread count (qkv js and tfjs are 1 thread).
    const js = best('qkv-js', 1);
    const ortT = best('onnxruntime', impl.threads);
    const tfT = best('tfjs', 1);
    const row: Row = {
      workload: w.id, workloadName: w.name, impl: impl.label, family: impl.family, threads: impl.threads,
      medianMs: t.medianMs, rme: t.rme, samples: t.samples, method: t.method,
      gflops, gbs, pctLimit: pct, limit: limit ? `${limit.label} ${limit.value} ${limit.unit}` : 'none', limitValue: limit?.value ?? null, maxAbsDiff: diff,
      vsQkvJs: js && impl.family !== 'qkv-js' ? js / t.medianMs : null,
      vsOnnxruntime: ortT && impl.family !== 'onnxruntime' ? ortT / t.medianMs : null,
      vsTfjs: tfT && impl.family !== 'tfjs' ? tfT / t.medianMs : null,
    };
    rows.push(row);
    console.log(
      `| ${w.name} | ${impl.label} | ${fmt(t.medianMs)} | ${t.rme === null ? `(${t.samples} run${t.samples > 1 ? 's' : ''})` : `±${t.rme.toFixed(1)}%`} | ` +
        `${gflops.toFixed(gflops < 10 ? 2 : 1)} | ${formatPercent(pct, limit)}${gbs !== null ? ` (${gbs.toFixed(1)} GB/s)` : ''} | ${fx(row.vsQkvJs)} | ${fx(row.vsOnnxruntime)} | ${fx(row.vsTfjs)} |`,
    );
  }
}

console.log('');
console.log(
  'median ms: benchmark.js median of its samples (±RME), or the median of timed runs for calls over 1 s. ' +
    `% of limit: of this CPU's measured ceiling at the row's thread count: the FMA peak of the kernel set in use (qkv native: ${native.simd}; qkv js, tfjs: scalar; onnxruntime: ${ceilings ? bestIsa(ceilings.cpu) : 'the widest'}), ` +
    'or for decode (bandwidth-bound; bytes = K + V + q + out per call) the read bandwidth of the L3 when those fit in it, else of DRAM. ' +
    'vs X: X\'s time / this time, X at the same thread count (its fastest variant); > 1 means this is faster.',
);
for (const s of skipped) console.log(`skipped: ${s.workload} ${s.reason.startsWith(s.impl) ? s.reason : `${s.impl}: ${s.reason}`}`);

if (jsonFile) {
  const out = {
    date: new Date().toISOString(),
    command: `npm run bench -- ${args.join(' ')}`.trim(),
    quick,
    loadAverageAtStart,
    machine: {
      cpu, logicalCpus: os.cpus().length, availableParallelism: os.availableParallelism(), memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      os: `${os.type()} ${os.release()}`, node: process.version, loadAverageAtEnd: os.loadavg(),
    },
    qkv: native,
    peers: { 'onnxruntime-node': ortVersion, '@tensorflow/tfjs-core': tfVersion },
    ceilings, ceilingsSource,
    workloads: selected.map((w) => ({ id: w.id, name: w.name })),
    results: rows,
    skipped,
    notes: peerNotes,
  };
  writeFileSync(jsonFile, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`wrote ${jsonFile}`);
}
if (failures) {
  console.error(`${failures} qkv implementation(s) disagreed with the reference`);
  process.exit(1);
}
