// npm run bench:server — what a Node server sees (DESIGN.md, Async):
//   1. thread scaling: 1 vs all threads on a layer, long SDPA and decode (split over keys);
//   2. event-loop delay (p50/p99, monitorEventLoopDelay) while the cores are saturated, async vs sync;
//   3. throughput of N concurrent async requests vs N sequential ones.
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { info, MultiHeadAttention, scaledDotProductAttention, setThreads } from '../lib/index.js';

const fill = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => f(i));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
function timeMs(fn: () => void, runs: number): number {
  fn();
  const ms: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

const i = info();
const allThreads = i.threads;
console.log(`qkv ${i.version} | ${i.backend} (${i.simd}) | ${allThreads} threads | ${os.cpus()[0]?.model} | node ${process.version}\n`);
if (i.backend !== 'native') throw new Error(`native backend required: ${i.nativeError}`);

const E = 768;
const weights = {
  inProjWeight: fill(3 * E * E, (j) => Math.sin(j * 0.013) * 0.05),
  inProjBias: fill(3 * E, (j) => Math.cos(j) * 0.01),
  outProjWeight: fill(E * E, (j) => Math.cos(j * 0.007) * 0.05),
  outProjBias: fill(E, (j) => Math.sin(j) * 0.01),
};
const layer = new MultiHeadAttention({ embedDim: E, numHeads: 12, weights });
const x8 = fill(8 * 512 * E, (j) => Math.sin(j * 0.001));
const qLong = fill(8 * 4096 * 64, (j) => Math.sin(j * 0.3));
const kLong = fill(8 * 4096 * 64, (j) => Math.cos(j * 0.7));
const qDec = fill(32 * 128, (j) => Math.sin(j));
const kDec = fill(32 * 4096 * 128, (j) => Math.cos(j * 0.01));

const cases: Array<[string, () => void, number]> = [
  ['layer B=8 S=512 E=768 H=12', () => layer.forward(x8, { batch: 8 }), 5],
  ['sdpa B=1 H=8 S=4096 D=64', () => scaledDotProductAttention(qLong, kLong, kLong, { heads: 8, seqQ: 4096, headDim: 64 }), 3],
  ['decode B=1 H=32 Sq=1 Sk=4096 D=128', () => scaledDotProductAttention(qDec, kDec, kDec, { heads: 32, seqQ: 1, seqK: 4096, headDim: 128 }), 30],
];
console.log(`| workload | 1 thread ms | ${allThreads} threads ms | scaling |`);
console.log('|---|---:|---:|---:|');
for (const [name, fn, runs] of cases) {
  setThreads(1);
  const one = timeMs(fn, runs);
  setThreads(allThreads);
  const all = timeMs(fn, runs);
  console.log(`| ${name} | ${one.toFixed(2)} | ${all.toFixed(2)} | ${(one / all).toFixed(2)}× |`);
}

// 2 and 3: BERT-base-sized requests, 256 of them after a warm-up.
const x1 = fill(128 * E, (j) => Math.sin(j * 0.002));
const N = 256;
// Warm-up (JIT, pool threads, allocator): with few samples, p99 would just be the first call's cost.
await Promise.all(Array.from({ length: 16 }, () => layer.forwardAsync(x1)));
for (let r = 0; r < 16; r++) layer.forward(x1);
async function loopDelay(run: () => Promise<unknown>): Promise<{ p50: number; p99: number; ms: number }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  const ticker = setInterval(() => {}, 1);
  h.enable();
  const t0 = performance.now();
  await run();
  const ms = performance.now() - t0;
  h.disable();
  clearInterval(ticker);
  return { p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, ms };
}
const asyncConcurrent = await loopDelay(() => Promise.all(Array.from({ length: N }, () => layer.forwardAsync(x1))));
const asyncSequential = await loopDelay(async () => {
  for (let r = 0; r < N; r++) await layer.forwardAsync(x1);
});
const syncSequential = await loopDelay(async () => {
  for (let r = 0; r < N; r++) {
    layer.forward(x1);
    await new Promise((res) => setImmediate(res));
  }
});
console.log(`\n${N} requests of a BERT-base layer (B=1 S=128 E=768 H=12), ${allThreads} threads:\n`);
console.log('| mode | total ms | requests/s | event-loop delay p50 ms | p99 ms |');
console.log('|---|---:|---:|---:|---:|');
for (const [name, r] of [
  ['forwardAsync, all concurrent', asyncConcurrent],
  ['forwardAsync, one after another', asyncSequential],
  ['forward (sync), one after another', syncSequential],
] as const) {
  console.log(`| ${name} | ${r.ms.toFixed(1)} | ${((N * 1000) / r.ms).toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`);
}
