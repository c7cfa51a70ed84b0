// npm run bench:server — what a Node server sees (DESIGN.md, Async):
//   1. thread scaling: 1 vs all threads on a layer, long SDPA and decode (split over keys);
//   2. event-loop responsiveness while the cores are saturated: async, sync, and onnxruntime-node's
//      run() when it is installed (npm install --no-save --ignore-scripts onnxruntime-node@1.30.0);
//   3. throughput of N concurrent async requests vs N sequential ones.
//
// Two probes run during every mode of 2 and 3:
//   - monitorEventLoopDelay({ resolution: 1 }) with a 1 ms interval running: the period of a 1 ms
//     timer (so 1 ms is the floor). libuv keeps loop time in whole milliseconds, so whenever the
//     loop wakes for anything between two ticks (here: a request completing), the next tick can
//     come up to 1 ms late with the loop idle. The "no compute" row measures that floor: the loop
//     woken every 4 ms (about the rate requests complete) by messages from another thread.
//   - ping: a worker_thread posts a timestamped message every millisecond and the main thread
//     records how long each waited to be handled. Messages wake the loop directly (no timer
//     rounding), so this is the delay an incoming request would see.
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { info, MultiHeadAttention, scaledDotProductAttention, setThreads } from '../lib/index.js';
import { layerFused, modelBytes, type LayerWeightsT } from './onnx.js';

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
console.log(`qkv ${i.version} | ${i.backend} (${i.simd}) | ${allThreads} threads | async priority ${i.asyncPriority} | ${os.cpus()[0]?.model} | node ${process.version}\n`);
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

// 2 and 3: BERT-base-sized requests, N of them after a warm-up.
const x1 = fill(128 * E, (j) => Math.sin(j * 0.002));
// 1024 requests take ~4 s per mode: ~4000 timer periods, so p99 is the 40th longest, not one GC's worth.
const N = Number(process.env.QKV_BENCH_REQUESTS ?? 1024);
if (!(Number.isInteger(N) && N >= 16)) throw new Error(`QKV_BENCH_REQUESTS must be an integer >= 16, not ${process.env.QKV_BENCH_REQUESTS}`);
const CLIENTS = 8;
// Warm-up (JIT, pool threads, allocator): with few samples, p99 would just be the first call's cost.
await Promise.all(Array.from({ length: 16 }, () => layer.forwardAsync(x1)));
for (let r = 0; r < 16; r++) layer.forward(x1);

// Posts timestamps every `ms` milliseconds between 'start' and 'stop'.
const ticking = (ms: number) => new Worker(
  `const { parentPort } = require('node:worker_threads');
   let timer = null;
   parentPort.on('message', (m) => {
     if (m === 'start') timer = setInterval(() => parentPort.postMessage(performance.timeOrigin + performance.now()), ${ms});
     else { clearInterval(timer); parentPort.postMessage('stopped'); }
   });`,
  { eval: true },
);
const pinger = ticking(1);
const waker = ticking(4);
await Promise.all([pinger, waker].map((w) => new Promise((r) => w.once('online', r))));
/** The no-compute load: n "requests" that each end when the waker's next message arrives. */
async function wakes(n: number): Promise<void> {
  waker.postMessage('start');
  for (let r = 0; r < n; r++) await new Promise((res) => waker.once('message', res));
  waker.postMessage('stop');
  await new Promise((res) => waker.once('message', (m) => m === 'stopped' && res(m)));
}

interface Probe { eldP50: number; eldP99: number; eldMax: number; pingP50: number; pingP99: number; pingMax: number; ms: number; blockedMs: number }
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

/** Runs `load` with both probes on; blockedMs: how long `load` kept the loop busy before it first yielded (its synchronous part and the microtasks it queued). */
async function probe(load: () => Promise<unknown>): Promise<Probe> {
  const pings: number[] = [];
  const onPing = (sent: unknown) => {
    if (typeof sent === 'number') pings.push(performance.timeOrigin + performance.now() - sent);
  };
  pinger.on('message', onPing);
  pinger.postMessage('start');
  await new Promise((r) => setTimeout(r, 20));
  const h = monitorEventLoopDelay({ resolution: 1 });
  const ticker = setInterval(() => {}, 1);
  h.enable();
  pings.length = 0;
  const t0 = performance.now();
  const running = load();
  await new Promise((r) => setImmediate(r)); // after load's synchronous part and the microtasks it queued
  const blockedMs = performance.now() - t0;
  await running;
  const ms = performance.now() - t0;
  h.disable();
  clearInterval(ticker);
  pinger.postMessage('stop');
  await new Promise<void>((r) => {
    const done = (m: unknown) => {
      if (m === 'stopped') {
        pinger.off('message', done);
        r();
      }
    };
    pinger.on('message', done);
  });
  pinger.off('message', onPing);
  return {
    eldP50: h.percentile(50) / 1e6, eldP99: h.percentile(99) / 1e6, eldMax: h.max / 1e6,
    pingP50: pct(pings, 50), pingP99: pct(pings, 99), pingMax: Math.max(...pings), ms, blockedMs,
  };
}

/** n requests from `clients` closed-loop clients (each sends its next request when its last one is answered). */
async function clients(n: number, k: number, request: () => Promise<unknown>): Promise<void> {
  let sent = 0;
  await Promise.all(Array.from({ length: k }, async () => {
    while (sent < n) {
      sent++;
      await request();
    }
  }));
}

// onnxruntime-node, when installed by hand: the same layer as its fused Attention graph.
interface OrtSession { run(feeds: Record<string, unknown>): Promise<Record<string, { data: unknown }>> }
const ORT_MODULE = 'onnxruntime-node';
let ortRun: (() => Promise<unknown>) | null = null;
let ortNote = '';
try {
  const mod = (await import(ORT_MODULE)) as { default?: unknown };
  const ort = (mod.default ?? mod) as {
    Tensor: new (t: 'float32', d: Float32Array, dims: number[]) => unknown;
    InferenceSession: { create(m: Uint8Array, o: object): Promise<OrtSession> };
  };
  const rows = (w: Float32Array, r0: number) => { // rows [r0, r0 + E) of an out-in [*, E] matrix, as in-out [E, E]
    const t = new Float32Array(E * E);
    for (let o = 0; o < E; o++) for (let c = 0; c < E; c++) t[c * E + o] = w[(r0 + o) * E + c]!;
    return t;
  };
  const wT: LayerWeightsT = {
    wq: rows(weights.inProjWeight, 0), wk: rows(weights.inProjWeight, E), wv: rows(weights.inProjWeight, 2 * E), wo: rows(weights.outProjWeight, 0),
    bq: weights.inProjBias.slice(0, E), bk: weights.inProjBias.slice(E, 2 * E), bv: weights.inProjBias.slice(2 * E), bo: weights.outProjBias,
  };
  const session = await ort.InferenceSession.create(modelBytes(layerFused(1, 128, E, 12, wT, false)), {
    intraOpNumThreads: allThreads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  const feeds = { x: new ort.Tensor('float32', x1, [1, 128, E]) };
  const got = (await session.run(feeds)).y!.data as Float32Array;
  const want = layer.forward(x1);
  let maxDiff = 0;
  for (let j = 0; j < want.length; j++) maxDiff = Math.max(maxDiff, Math.abs(got[j]! - want[j]!));
  if (!(maxDiff <= 1e-3)) throw new Error(`its output differs from qkv's by ${maxDiff}`);
  ortRun = () => session.run(feeds);
  for (let r = 0; r < 16; r++) await ortRun();
} catch (err) {
  ortNote = `onnxruntime-node not measured (${(err as Error).message.split('\n')[0]})`;
}

const modes: Array<[string, () => Promise<unknown>]> = [
  ['no compute: the loop woken every 4 ms by a worker_thread (the floor)', () => wakes(N)],
  [`forwardAsync, ${CLIENTS} clients`, () => clients(N, CLIENTS, () => layer.forwardAsync(x1))],
  [`forwardAsync, ${CLIENTS} clients, each reusing its out`, () => {
    const outs = Array.from({ length: CLIENTS }, () => new Float32Array(x1.length));
    let sent = 0;
    return Promise.all(outs.map(async (out) => {
      while (sent < N) {
        sent++;
        await layer.forwardAsync(x1, { out });
      }
    }));
  }],
  ['forwardAsync, one after another', () => clients(N, 1, () => layer.forwardAsync(x1))],
  [`forwardAsync, all ${N} sent at once`, () => Promise.all(Array.from({ length: N }, () => layer.forwardAsync(x1)))],
  ['forward (sync), one after another', () => clients(N, 1, async () => {
    layer.forward(x1);
    await new Promise((res) => setImmediate(res));
  })],
  ...(ortRun ? ([
    [`onnxruntime-node run(), ${CLIENTS} clients`, () => clients(N, CLIENTS, ortRun!)],
    ['onnxruntime-node run(), one after another', () => clients(N, 1, ortRun!)],
  ] as Array<[string, () => Promise<unknown>]>) : []),
];
console.log(`\n${N} requests of a BERT-base layer (B=1 S=128 E=768 H=12), ${allThreads} threads${ortRun ? '' : `; ${ortNote}`}:\n`);
console.log('| mode | total ms | requests/s | loop blocked at start ms | timer period p50 / p99 / max ms | ping p50 / p99 / max ms |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const [name, load] of modes) {
  const r = await probe(load);
  const f = (x: number) => x.toFixed(2);
  const rps = name.startsWith('no compute') ? '–' : ((N * 1000) / r.ms).toFixed(0);
  console.log(`| ${name} | ${r.ms.toFixed(1)} | ${rps} | ${f(r.blockedMs)} | ${f(r.eldP50)} / ${f(r.eldP99)} / ${f(r.eldMax)} | ${f(r.pingP50)} / ${f(r.pingP99)} / ${f(r.pingMax)} |`);
}
await Promise.all([pinger.terminate(), waker.terminate()]);
