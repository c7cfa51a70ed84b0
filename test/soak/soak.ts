// npm run test:soak (issue 6): long runs must not leak. Runs node --expose-gc (scripts/test-soak.sh).
//   1. 200k sync calls of varying small shapes (sdpa, linear, Linear, MultiHeadAttention)
//   2. 20k async calls (64 in flight; some aborted before they start)
//   3. layer construction + garbage collection loops (Linear, MultiHeadAttention)
//   4. KV cache create / forward / reset / truncate loops
//   5. worker_thread create / terminate loops (some with calls in flight)
// Every phase runs once briefly as warm-up, then the whole soak runs twice. The first round lets
// the allocator settle (pool threads' arenas, grown per-thread workspaces: RSS that stays flat
// afterwards). RSS is read after gc() at the end of every phase, and each round's plateau is the
// highest of those readings: a single reading can land in a trough (glibc giving pages back, a
// terminated worker's heap just freed: a CI run once read 96 MiB between rounds whose readings
// peaked at 132-133 MiB). A leak raises every round's plateau, so round 2's plateau may exceed
// round 1's by less than QKV_SOAK_MAX_GROWTH_MIB (default 30 MiB). Prints the figures and closes
// with "N passed, N failed" for CI. QKV_SOAK_SCALE scales the call counts.
import { Worker } from 'node:worker_threads';
import * as N from '../../lib/index.js';

const SCALE = Number(process.env.QKV_SOAK_SCALE ?? 1);
const MAX_GROWTH_MIB = Number(process.env.QKV_SOAK_MAX_GROWTH_MIB ?? 30);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error('run with node --expose-gc (scripts/test-soak.sh)');
  process.exit(2);
}

let seed = 12345;
const rand = () => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed / 2 ** 32;
};
const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
const f32 = (n: number) => Float32Array.from({ length: n }, () => rand() * 2 - 1);
const MiB = (b: number) => b / 1048576;

const results: Array<{ name: string; ok: boolean; detail: string }> = [];
function record(name: string, ok: boolean, detail: string) {
  results.push({ name, ok, detail });
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${detail}`);
}

/** A small sdpa call of a random shape. */
function sdpaCase() {
  const Hkv = int(1, 2), H = Hkv * int(1, 2), Sq = int(1, 8), Sk = int(1, 16), D = int(4, 32), B = int(1, 2);
  return {
    q: f32(B * H * Sq * D),
    k: f32(B * Hkv * Sk * D),
    v: f32(B * Hkv * Sk * D),
    options: { batch: B, heads: H, kvHeads: Hkv, seqQ: Sq, seqK: Sk, headDim: D, causal: rand() < 0.5 },
  };
}

// A pool of prepared inputs, so that the loops measure the library, not input generation.
const sdpaPool = Array.from({ length: 64 }, sdpaCase);
const linPool = Array.from({ length: 32 }, () => {
  const K = int(1, 48), Nf = int(1, 48), M = int(1, 6);
  return { x: f32(M * K), w: f32(Nf * K), b: f32(Nf), K, layer: new N.Linear({ weight: f32(Nf * K), bias: f32(Nf), inFeatures: K }) };
});
const mhaLayer = (E: number, H: number) =>
  new N.MultiHeadAttention({
    embedDim: E,
    numHeads: H,
    weights: { wq: f32(E * E), wk: f32(E * E), wv: f32(E * E), wo: f32(E * E), bq: f32(E), bk: f32(E), bv: f32(E), bo: f32(E) },
  });
const mha = mhaLayer(32, 4);
const mhaX = f32(3 * 32);

function syncCalls(n: number) {
  for (let i = 0; i < n; i++) {
    const r = i % 10;
    if (r < 6) {
      const c = sdpaPool[i % sdpaPool.length];
      N.scaledDotProductAttention(c.q, c.k, c.v, c.options);
    } else if (r < 8) {
      const c = linPool[i % linPool.length];
      N.linear(c.x, c.w, c.b, { inFeatures: c.K });
    } else if (r < 9) {
      const c = linPool[i % linPool.length];
      c.layer.forward(c.x);
    } else {
      mha.forward(mhaX, { causal: true });
    }
  }
}

async function asyncCalls(n: number) {
  const inFlight = new Set<Promise<unknown>>();
  let aborted = 0;
  for (let i = 0; i < n; i++) {
    const r = i % 8;
    let p: Promise<unknown>;
    if (r < 4) {
      const c = sdpaPool[i % sdpaPool.length];
      const ctl = i % 16 === 3 ? new AbortController() : null;
      p = N.scaledDotProductAttentionAsync(c.q, c.k, c.v, { ...c.options, signal: ctl?.signal });
      ctl?.abort();
      p = p.catch((e: unknown) => {
        if ((e as Error).name !== 'AbortError') throw e;
        aborted++;
      });
    } else if (r < 6) {
      const c = linPool[i % linPool.length];
      p = N.linearAsync(c.x, c.w, c.b, { inFeatures: c.K });
    } else if (r < 7) {
      p = linPool[i % linPool.length].layer.forwardAsync(linPool[i % linPool.length].x);
    } else {
      p = mha.forwardAsync(mhaX, { causal: true });
    }
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    if (inFlight.size >= 64) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  return aborted;
}

function layerLoops(n: number) {
  for (let i = 0; i < n; i++) {
    const K = int(1, 64), Nf = int(1, 64);
    const l = new N.Linear({ weight: f32(Nf * K), inFeatures: K });
    l.forward(f32(K));
    const E = 8 * int(1, 4);
    mhaLayer(E, 2).forward(f32(2 * E));
    if (i % 50 === 0) gc!();
  }
}

function cacheLoops(n: number) {
  for (let i = 0; i < n; i++) {
    const cache = mha.createCache({ batch: 1, maxLength: int(8, 64) });
    for (let t = 0; t < 4; t++) mha.forward(f32(32), { cache });
    if (i % 2) cache.truncate(1);
    cache.reset();
    mha.forward(f32(2 * 32), { cache });
  }
}

async function workerLoops(n: number) {
  for (let i = 0; i < n; i++) {
    const worker = new Worker(new URL('../fixtures/ts-worker.mjs', import.meta.url), {
      workerData: { calls: 8, seqQ: 64, heads: 4, headDim: 32, seed: i, script: new URL('../fixtures/attention-worker.ts', import.meta.url).href },
    });
    const done = new Promise<unknown>((resolve, reject) => {
      worker.on('message', (m: { started?: boolean }) => {
        if (m.started && i % 2 === 1) void worker.terminate().then(() => resolve('terminated'));
        else if (!m.started) resolve(m);
      });
      worker.on('error', reject);
    });
    const r = await done;
    if (typeof r === 'object' && !(r as { ok: boolean }).ok) throw new Error('a worker computed a wrong result');
    await worker.terminate();
  }
}

function rss() {
  for (let i = 0; i < 3; i++) gc!();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}

/** The highest RSS read after a phase (after gc) since the last reset: a round's plateau. */
let plateau = 0;

async function timed<T>(name: string, f: () => T | Promise<T>): Promise<T> {
  const t0 = performance.now();
  const r = await f();
  const seconds = (performance.now() - t0) / 1000;
  const m = rss();
  plateau = Math.max(plateau, m.rss);
  console.log(`  ${name}: ${seconds.toFixed(1)} s, RSS ${MiB(m.rss).toFixed(1)} MiB`);
  return r;
}

const counts = {
  sync: Math.round(200_000 * SCALE),
  async: Math.round(20_000 * SCALE),
  layers: Math.round(2_000 * SCALE),
  caches: Math.round(2_000 * SCALE),
  workers: Math.max(4, Math.round(24 * SCALE)),
};

const start = performance.now();
try {
  console.log('warm-up');
  await timed('sync', () => syncCalls(5_000));
  await timed('async', () => asyncCalls(1_000));
  await timed('layers', () => layerLoops(100));
  await timed('caches', () => cacheLoops(100));
  await timed('workers', () => workerLoops(4));
  const warm = rss();
  console.log(`after warm-up: RSS ${MiB(warm.rss).toFixed(1)} MiB, heap ${MiB(warm.heap).toFixed(1)} MiB, external ${MiB(warm.external).toFixed(1)} MiB`);
  const round = async (name: string) => {
    console.log(name);
    plateau = 0;
    await timed(`${counts.sync} sync calls`, () => syncCalls(counts.sync));
    const aborted = await timed(`${counts.async} async calls`, () => asyncCalls(counts.async));
    console.log(`  (${aborted} aborted before they started)`);
    await timed(`${counts.layers} Linear + MultiHeadAttention constructions`, () => layerLoops(counts.layers));
    await timed(`${counts.caches} KV cache create/forward/reset loops`, () => cacheLoops(counts.caches));
    await timed(`${counts.workers} worker create/terminate loops`, () => workerLoops(counts.workers));
  };
  await round('soak, round 1 (settling)');
  const plateau1 = plateau;
  const before = rss();
  console.log(`round 1: RSS plateau ${MiB(plateau1).toFixed(1)} MiB (+${MiB(plateau1 - warm.rss).toFixed(1)} MiB over warm-up), ${MiB(before.rss).toFixed(1)} MiB at its end`);
  await round('soak, round 2 (measured)');
  const plateau2 = plateau;
  const after = rss();
  const growth = MiB(plateau2 - plateau1);
  console.log(
    `round 2: RSS plateau ${MiB(plateau2).toFixed(1)} MiB (${growth >= 0 ? '+' : ''}${growth.toFixed(1)} MiB), ${MiB(after.rss).toFixed(1)} MiB at its end; ` +
      `heap ${MiB(after.heap).toFixed(1)} MiB (${MiB(after.heap - before.heap).toFixed(1)}), external ${MiB(after.external).toFixed(1)} MiB (${MiB(after.external - before.external).toFixed(1)})`,
  );
  record('every soak call succeeded', true, `${counts.sync} sync, ${counts.async} async, ${counts.layers} layers, ${counts.caches} caches, ${counts.workers} workers`);
  record(`RSS plateau growth, round 1 → round 2, < ${MAX_GROWTH_MIB} MiB`, growth < MAX_GROWTH_MIB, `${growth.toFixed(1)} MiB (${MiB(plateau1).toFixed(1)} → ${MiB(plateau2).toFixed(1)} MiB)`);
  record('JS heap growth < 10 MiB', MiB(after.heap - before.heap) < 10, `${MiB(after.heap - before.heap).toFixed(1)} MiB`);
} catch (err) {
  record('soak ran to the end', false, err instanceof Error ? (err.stack ?? err.message) : String(err));
}
console.log(`total ${((performance.now() - start) / 1000).toFixed(1)} s`);
const failed = results.filter((r) => !r.ok).length;
console.log(`\n${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
