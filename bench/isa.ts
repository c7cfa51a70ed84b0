// npm run bench:isa [-- --threads N] — the native kernel sets against each other on the workloads
// of the headline table: every set this machine runs (scalar, avx2, avx512 / neon), switched in
// one process and interleaved run by run, so drift in clock speed or load hits every set alike.
// Prints a Markdown table of medians, each set's speed relative to the first SIMD set, and each set's
// "% of limit": of this CPU's FMA peak for that set's ISA at --threads (bench/ceilings.ts), or for the
// decode row (bandwidth-bound) of its L3 or DRAM read bandwidth, whichever the working set needs.
import os from 'node:os';
import { info, linear, MultiHeadAttention, scaledDotProductAttention, setThreads } from '../lib/index.js';
import { nativeBinding } from '../lib/backend/select.js';
import { describeCeilings, fmaLimit, formatPercent, loadCeilings, percentOf, readLimit } from './ceilings.js';

if (!nativeBinding) throw new Error(`native backend required: ${info().nativeError}`);
const binding = nativeBinding;
const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const threads = Number(arg('--threads') ?? 1);
if (!(Number.isInteger(threads) && threads >= 1)) throw new Error(`--threads must be a positive integer, not ${arg('--threads')}`);
setThreads(threads);

const sets = ['scalar', 'avx2', 'avx512', 'neon'].filter((s) => binding._setSimd(s));
binding._setSimd('auto');
const fill = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => f(i));
const E = 768;
const weights = {
  inProjWeight: fill(3 * E * E, (j) => Math.sin(j * 0.013) * 0.05), inProjBias: fill(3 * E, (j) => Math.cos(j) * 0.01),
  outProjWeight: fill(E * E, (j) => Math.cos(j * 0.007) * 0.05), outProjBias: fill(E, (j) => Math.sin(j) * 0.01),
};
const layer = new MultiHeadAttention({ embedDim: E, numHeads: 12, weights });
const x1 = fill(128 * E, (j) => Math.sin(j * 0.002));
const x8 = fill(8 * 512 * E, (j) => Math.sin(j * 0.001));
const qLong = fill(8 * 4096 * 64, (j) => Math.sin(j * 0.3));
const kLong = fill(8 * 4096 * 64, (j) => Math.cos(j * 0.7));
const qDec = fill(32 * 128, (j) => Math.sin(j));
const kDec = fill(32 * 4096 * 128, (j) => Math.cos(j * 0.01));
const a1024 = fill(1024 * 1024, (j) => Math.sin(j * 0.001));
const w1024 = fill(1024 * 1024, (j) => Math.cos(j * 0.002));

// Work per call. Attention: 4·D flops per unmasked (query, key) pair (q·k and p·v, 2·D each);
// causal (bottom-right, Sq = Sk = S) keeps S·(S+1)/2 pairs. The layer adds its four E×E projections.
const attn = (H: number, S: number, D: number, causal: boolean) => 4 * H * (causal ? (S * (S + 1)) / 2 : S * S) * D;
const layerFlops = (B: number, S: number) => 2 * B * S * E * 4 * E + B * attn(12, S, E / 12, false);
// The decode row passes one buffer as both K and V: the bytes it moves are that buffer once, plus q and out.
const decodeBytes = (kDec.length + 2 * qDec.length) * 4;

// [name, call, runs per set, work]: runs chosen so a workload takes about a second per set.
type Work = { flops: number } | { bytes: number };
const workloads: Array<[string, () => unknown, number, Work]> = [
  ['BERT-base layer B=1 S=128 E=768 H=12', () => layer.forward(x1), 40, { flops: layerFlops(1, 128) }],
  ['throughput layer B=8 S=512 E=768 H=12', () => layer.forward(x8, { batch: 8 }), 3, { flops: layerFlops(8, 512) }],
  ['long SDPA B=1 H=8 S=4096 D=64', () => scaledDotProductAttention(qLong, kLong, kLong, { heads: 8, seqQ: 4096, headDim: 64 }), 3, { flops: attn(8, 4096, 64, false) }],
  ['long SDPA causal B=1 H=8 S=4096 D=64', () => scaledDotProductAttention(qLong, kLong, kLong, { heads: 8, seqQ: 4096, headDim: 64, causal: true }), 5, { flops: attn(8, 4096, 64, true) }],
  ['decode B=1 H=32 D=128 L=4096', () => scaledDotProductAttention(qDec, kDec, kDec, { heads: 32, seqQ: 1, seqK: 4096, headDim: 128 }), 60, { bytes: decodeBytes }],
  ['SGEMM 1024³', () => linear(a1024, w1024, { inFeatures: 1024 }), 20, { flops: 2 * 1024 ** 3 }],
];
const { ceilings, source } = loadCeilings();
/** "% of limit" of one set's median on one workload. */
function pctCell(set: string, ms: number, work: Work): string {
  if (!ceilings) return '—';
  if ('bytes' in work) {
    const limit = readLimit(ceilings, threads, work.bytes);
    return formatPercent(percentOf(work.bytes / ms / 1e6, limit), limit);
  }
  const limit = fmaLimit(ceilings, set, threads);
  return formatPercent(percentOf(work.flops / ms / 1e6, limit), limit);
}

const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[xs.length >> 1]!;
const i = info();
console.log(`qkv ${i.version} | ${os.cpus()[0]?.model} | ${threads} thread${threads > 1 ? 's' : ''} | node ${process.version} | sets: ${sets.join(', ')}`);
console.log(ceilings ? `limits: ${describeCeilings(ceilings, source)}\n` : 'limits: not measured on this CPU ("% of limit" left blank)\n');
const base = sets.find((s) => s !== 'scalar') ?? 'scalar';
console.log(`| workload | ${sets.map((s) => `${s} ms`).join(' | ')} | ${sets.filter((s) => s !== base).map((s) => `${s} vs ${base}`).join(' | ')} | ${sets.map((s) => `${s} % of limit`).join(' | ')} |`);
console.log(`|---|${sets.map(() => '---:').join('|')}|${sets.filter((s) => s !== base).map(() => '---:').join('|')}|${sets.map(() => '---:').join('|')}|`);
for (const [name, call, runs, work] of workloads) {
  const times = new Map(sets.map((s) => [s, [] as number[]]));
  const n = Math.max(3, runs);
  for (const s of sets) { // warm-up, once per set
    binding._setSimd(s);
    call();
  }
  for (let r = 0; r < n; r++) {
    for (const s of sets) {
      if (s === 'scalar' && r >= 3) continue; // scalar is slow and only for reference: three runs
      binding._setSimd(s);
      const t0 = performance.now();
      call();
      times.get(s)!.push(performance.now() - t0);
    }
  }
  binding._setSimd('auto');
  const ms = new Map([...times].map(([s, t]) => [s, median(t)]));
  const ratios = sets.filter((s) => s !== base).map((s) => `${(ms.get(base)! / ms.get(s)!).toFixed(2)}×`);
  console.log(`| ${name} | ${sets.map((s) => ms.get(s)!.toFixed(2)).join(' | ')} | ${ratios.join(' | ')} | ${sets.map((s) => pctCell(s, ms.get(s)!, work)).join(' | ')} |`);
}
