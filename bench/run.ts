// npm run bench [-- --filter <substring>] [--quick]
// Native vs TypeScript scaled dot-product attention with benchmark.js. Outputs are compared
// before anything is timed. Prints median ms, ±RME, GFLOP/s and speedup; pastes into RESULTS.md.
import Benchmark from 'benchmark';
import os from 'node:os';
import { info, scaledDotProductAttention as sdpaNative } from '../lib/index.js';
import { scaledDotProductAttention as sdpaJs } from '../lib/js/index.js';
import type { SdpaOptions } from '../lib/index.js';

interface Workload {
  name: string;
  options: SdpaOptions & { batch: number; seqK: number; kvHeads?: number; valueDim?: number };
}

const workloads: Workload[] = [
  { name: 'sdpa small B=1 H=1 S=16 D=64', options: { batch: 1, heads: 1, seqQ: 16, seqK: 16, headDim: 64 } },
  { name: 'sdpa B=1 H=12 S=128 D=64', options: { batch: 1, heads: 12, seqQ: 128, seqK: 128, headDim: 64 } },
  { name: 'sdpa long B=1 H=8 S=4096 D=64', options: { batch: 1, heads: 8, seqQ: 4096, seqK: 4096, headDim: 64 } },
  { name: 'sdpa long causal B=1 H=8 S=4096 D=64', options: { batch: 1, heads: 8, seqQ: 4096, seqK: 4096, headDim: 64, causal: true } },
  { name: 'decode B=1 H=12 Sq=1 Sk=2048 D=64', options: { batch: 1, heads: 12, seqQ: 1, seqK: 2048, headDim: 64 } },
];

const args = process.argv.slice(2);
const filter = args.includes('--filter') ? args[args.indexOf('--filter') + 1] : undefined;
const quick = args.includes('--quick');

/** Flops of one call: 2·(D+Dv) per (query, key) pair that is not causally masked. */
function flops(o: Workload['options']): number {
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

for (const w of workloads) {
  if (filter && !w.name.includes(filter)) continue;
  const o = w.options;
  const D = o.headDim, Dv = o.valueDim ?? D, Hkv = o.kvHeads ?? o.heads;
  const q = randn(o.batch * o.heads * o.seqQ * D, 1);
  const k = randn(o.batch * Hkv * o.seqK * D, 2);
  const v = randn(o.batch * Hkv * o.seqK * Dv, 3);
  const outNative = new Float32Array(o.batch * o.heads * o.seqQ * Dv);
  const outJs = new Float32Array(outNative.length);
  const runNative = () => sdpaNative(q, k, v, { ...o, out: outNative });
  const runJs = () => sdpaJs(q, k, v, { ...o, out: outJs });

  const jsEstimate = estimate(runJs);
  const nativeEstimate = estimate(runNative);
  const diff = maxAbsDiff(outNative, outJs);
  if (!(diff < 1e-4)) throw new Error(`${w.name}: native and js differ by ${diff}`);

  const tn = time(runNative, nativeEstimate);
  const tj = time(runJs, jsEstimate);
  const gf = flops(o) / 1e9;
  const fmt = (t: Timing) => `${t.medianMs.toFixed(t.medianMs < 1 ? 4 : 2)}${Number.isNaN(t.rme) ? ` (${t.samples} runs)` : ` ±${t.rme.toFixed(1)}%`}`;
  console.log(
    `| ${w.name} | ${fmt(tj)} | ${fmt(tn)} | ${(tj.medianMs / tn.medianMs).toFixed(1)}× | ` +
      `${(gf / (tn.medianMs / 1e3)).toFixed(1)} | ${(gf / (tj.medianMs / 1e3)).toFixed(2)} |`,
  );
}
