// npm run bench [-- --filter <substring>] [--quick]
// Native vs TypeScript with benchmark.js: scaled dot-product attention, the packed SGEMM (through
// Linear) and the full MultiHeadAttention layer. Outputs are compared before anything is timed.
// Prints median ms, ±RME, GFLOP/s and speedup; pastes into RESULTS.md.
import Benchmark from 'benchmark';
import os from 'node:os';
import {
  Linear as LinearNative,
  MultiHeadAttention as MhaNative,
  info,
  scaledDotProductAttention as sdpaNative,
} from '../lib/index.js';
import {
  Linear as LinearJs,
  MultiHeadAttention as MhaJs,
  scaledDotProductAttention as sdpaJs,
} from '../lib/js/index.js';
import type { MhaForwardOptions, SdpaOptions } from '../lib/index.js';

type SdpaWorkload = SdpaOptions & { batch: number; seqK: number; kvHeads?: number; valueDim?: number };
interface GemmWorkload { M: number; N: number; K: number }
interface LayerWorkload { B: number; S: number; E: number; H: number; Hkv?: number; causal?: boolean }

type Workload =
  | { name: string; kind: 'sdpa'; options: SdpaWorkload }
  | { name: string; kind: 'gemm'; gemm: GemmWorkload }
  | { name: string; kind: 'layer'; layer: LayerWorkload };

const workloads: Workload[] = [
  { name: 'sdpa small B=1 H=1 S=16 D=64', kind: 'sdpa', options: { batch: 1, heads: 1, seqQ: 16, seqK: 16, headDim: 64 } },
  { name: 'sdpa B=1 H=12 S=128 D=64', kind: 'sdpa', options: { batch: 1, heads: 12, seqQ: 128, seqK: 128, headDim: 64 } },
  { name: 'sdpa long B=1 H=8 S=4096 D=64', kind: 'sdpa', options: { batch: 1, heads: 8, seqQ: 4096, seqK: 4096, headDim: 64 } },
  { name: 'sdpa long causal B=1 H=8 S=4096 D=64', kind: 'sdpa', options: { batch: 1, heads: 8, seqQ: 4096, seqK: 4096, headDim: 64, causal: true } },
  { name: 'decode B=1 H=12 Sq=1 Sk=2048 D=64', kind: 'sdpa', options: { batch: 1, heads: 12, seqQ: 1, seqK: 2048, headDim: 64 } },
  { name: 'sgemm M=N=K=512', kind: 'gemm', gemm: { M: 512, N: 512, K: 512 } },
  { name: 'sgemm M=N=K=1024', kind: 'gemm', gemm: { M: 1024, N: 1024, K: 1024 } },
  { name: 'sgemm M=N=K=2048', kind: 'gemm', gemm: { M: 2048, N: 2048, K: 2048 } },
  { name: 'layer BERT-base B=1 S=128 E=768 H=12', kind: 'layer', layer: { B: 1, S: 128, E: 768, H: 12 } },
  { name: 'layer B=8 S=512 E=768 H=12', kind: 'layer', layer: { B: 8, S: 512, E: 768, H: 12 } },
];

const args = process.argv.slice(2);
const filter = args.includes('--filter') ? args[args.indexOf('--filter') + 1] : undefined;
const quick = args.includes('--quick');

/** Flops of one call: 2·(D+Dv) per (query, key) pair that is not causally masked. */
function flops(o: SdpaWorkload): number {
  const D = o.headDim;
  const Dv = o.valueDim ?? D;
  let pairs = o.seqQ * o.seqK;
  if (o.causal) {
    pairs = 0;
    const offset = o.seqK - o.seqQ;
    for (let i = 0; i < o.seqQ; i++) pairs += Math.max(0, Math.min(o.seqK, offset + i + 1));
  }
  return 2 * o.batch * o.heads * pairs * (D + Dv);
}

function randn(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
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

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

interface Timing { medianMs: number; rme: number; samples: number }

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** benchmark.js for calls under ~1 s; a few plain timed runs above that (it would take minutes). */
function time(fn: () => void, estimateMs: number): Timing {
  if (estimateMs > 1000) {
    const runs = quick ? 1 : 3;
    const ms: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = process.hrtime.bigint();
      fn();
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return { medianMs: median(ms), rme: NaN, samples: runs };
  }
  const bench = new Benchmark(fn, { maxTime: quick ? 0.5 : 2, minSamples: quick ? 5 : 20 });
  bench.run();
  return { medianMs: median(bench.stats.sample) * 1e3, rme: bench.stats.rme, samples: bench.stats.sample.length };
}

function estimate(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

const i = info();
console.log(`qkv ${i.version} | backend ${i.backend} (${i.simd}), ${i.threads} thread(s) | ${os.cpus()[0]?.model} | node ${process.version}`);
if (i.backend !== 'native') console.log(`native backend unavailable: ${i.nativeError}`);
console.log('');
const header = '| workload | js ms | native ms | speedup | native GFLOP/s | js GFLOP/s |';
console.log(header);
console.log('|---|---:|---:|---:|---:|---:|');

/** What one workload runs: both backends writing into their own output, and its flop count. */
interface Prepared {
  runNative: () => void;
  runJs: () => void;
  outNative: Float32Array;
  outJs: Float32Array;
  flops: number;
}

function prepare(w: Workload): Prepared {
  if (w.kind === 'sdpa') {
    const o = w.options;
    const D = o.headDim, Dv = o.valueDim ?? D, Hkv = o.kvHeads ?? o.heads;
    const q = randn(o.batch * o.heads * o.seqQ * D, 1);
    const k = randn(o.batch * Hkv * o.seqK * D, 2);
    const v = randn(o.batch * Hkv * o.seqK * Dv, 3);
    const outNative = new Float32Array(o.batch * o.heads * o.seqQ * Dv);
    const outJs = new Float32Array(outNative.length);
    return {
      runNative: () => sdpaNative(q, k, v, { ...o, out: outNative }),
      runJs: () => sdpaJs(q, k, v, { ...o, out: outJs }),
      outNative, outJs, flops: flops(o),
    };
  }
  if (w.kind === 'gemm') {
    // y[M, N] = x[M, K]·Wᵀ with W [N, K] ('out-in'), packed once by Linear; W ~ N(0, 1/K) keeps y at unit scale.
    const { M, N, K } = w.gemm;
    const x = randn(M * K, 4);
    const weight = randn(N * K, 5).map((v) => v / Math.sqrt(K));
    const config = { weight, inFeatures: K, outFeatures: N };
    const native = new LinearNative(config);
    const js = new LinearJs(config);
    const outNative = new Float32Array(M * N);
    const outJs = new Float32Array(M * N);
    return {
      runNative: () => native.forward(x, { out: outNative }),
      runJs: () => js.forward(x, { out: outJs }),
      outNative, outJs, flops: 2 * M * N * K,
    };
  }
  // The layer: Q, K, V projections 2·B·S·E·(H·Dh + 2·Hkv·Dh), attention 2·B·H·S·S·(Dh + Dh) (halved
  // pairs when causal), output projection 2·B·S·(H·Dh)·E.
  const { B, S, E, H } = w.layer;
  const Hkv = w.layer.Hkv ?? H;
  const Dh = E / H;
  const mat = (rows: number, cols: number, seed: number) => randn(rows * cols, seed).map((v) => v / Math.sqrt(cols));
  const weights = {
    wq: mat(H * Dh, E, 6), wk: mat(Hkv * Dh, E, 7), wv: mat(Hkv * Dh, E, 8), wo: mat(E, H * Dh, 9),
    bq: randn(H * Dh, 10), bk: randn(Hkv * Dh, 11), bv: randn(Hkv * Dh, 12), bo: randn(E, 13),
  };
  const config = { embedDim: E, numHeads: H, numKvHeads: Hkv, weights };
  const native = new MhaNative(config);
  const js = new MhaJs(config);
  const x = randn(B * S * E, 14);
  const outNative = new Float32Array(B * S * E);
  const outJs = new Float32Array(B * S * E);
  const opts: MhaForwardOptions = { batch: B, causal: w.layer.causal ?? false };
  const attention = flops({ batch: B, heads: H, seqQ: S, seqK: S, headDim: Dh, causal: opts.causal });
  return {
    runNative: () => native.forward(x, { ...opts, out: outNative }),
    runJs: () => js.forward(x, { ...opts, out: outJs }),
    outNative, outJs,
    flops: 2 * B * S * E * (H * Dh + 2 * Hkv * Dh) + attention + 2 * B * S * H * Dh * E,
  };
}

for (const w of workloads) {
  if (filter && !w.name.includes(filter)) continue;
  const { runNative, runJs, outNative, outJs, flops: count } = prepare(w);

  const jsEstimate = estimate(runJs);
  const nativeEstimate = estimate(runNative);
  const diff = maxAbsDiff(outNative, outJs);
  if (!(diff < 1e-4)) throw new Error(`${w.name}: native and js differ by ${diff}`);

  const tn = time(runNative, nativeEstimate);
  const tj = time(runJs, jsEstimate);
  const gf = count / 1e9;
  const fmt = (t: Timing) => `${t.medianMs.toFixed(t.medianMs < 1 ? 4 : 2)}${Number.isNaN(t.rme) ? ` (${t.samples} runs)` : ` ±${t.rme.toFixed(1)}%`}`;
  console.log(
    `| ${w.name} | ${fmt(tj)} | ${fmt(tn)} | ${(tj.medianMs / tn.medianMs).toFixed(1)}× | ` +
      `${(gf / (tn.medianMs / 1e3)).toFixed(1)} | ${(gf / (tj.medianMs / 1e3)).toFixed(2)} |`,
  );
}
