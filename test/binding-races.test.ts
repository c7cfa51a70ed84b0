// The binding reads what steers indexing once: a worker_thread rewrites SharedArrayBuffer-backed
// dims, kvLengths, offsets and packed-weight headers in a tight loop while this thread calls the
// binding directly, sync and async. Every call either runs (reading only inside its buffers:
// test:asan runs this file too) or throws a clean RangeError / TypeError; nothing crashes (a
// second read of Hkv that sees 0 would divide by zero).
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, test } from 'vitest';
import { nativeBinding } from '../lib/backend/select.js';
import { fill, sdpaBindingDims } from './helpers.js';

/**
 * Worker code that writes array[index] = a, then b, for every target, until stop[0] != 0, holding
 * each state for a short spin of varying length (2 to 17 atomic loads): flips much faster than a
 * binding's check-then-use window mostly land on one side of it, much slower ones rarely inside.
 * The stores are written out with their constants, so the loop is as tight as it gets.
 */
const flipper = (targets: Target[]) => `
const { workerData, parentPort } = require('node:worker_threads');
const { stop, arrays } = workerData;
${targets.map((_, t) => `const a${t} = arrays[${t}];`).join('\n')}
parentPort.postMessage('started');
let n = 0;
while (Atomics.load(stop, 0) === 0) {
  const spin = 2 + (n & 15);
  ${targets.map((t, i) => `a${i}[${t.index}] = ${t.a};`).join(' ')}
  for (let i = 0; i < spin; i++) Atomics.load(stop, 0);
  ${targets.map((t, i) => `a${i}[${t.index}] = ${t.b};`).join(' ')}
  for (let i = 0; i < spin; i++) Atomics.load(stop, 0);
  n++;
}
parentPort.postMessage(n);
`;

interface Target { array: Int32Array | Float32Array; index: number; a: number; b: number }

let running: { stop: Int32Array; worker: Worker; done: Promise<number> } | undefined;

/** Starts the flipping worker; resolves once it runs. */
async function flip(targets: Target[]): Promise<void> {
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(flipper(targets), { eval: true, workerData: { stop, arrays: targets.map((t) => t.array) } });
  const started = new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
  });
  const done = new Promise<number>((resolve, reject) => {
    worker.on('message', (m) => typeof m === 'number' && resolve(m));
    worker.on('error', reject);
  });
  running = { stop, worker, done };
  await started;
}

async function stopFlipping(): Promise<number> {
  if (!running) return 0;
  const { stop, worker, done } = running;
  running = undefined;
  Atomics.store(stop, 0, 1);
  const flips = await done;
  await worker.terminate();
  return flips;
}

afterEach(async () => {
  await stopFlipping();
});

const sharedI32 = (values: ArrayLike<number>) => {
  const a = new Int32Array(new SharedArrayBuffer(4 * values.length));
  a.set(values);
  return a;
};
const sharedF32 = (n: number) => new Float32Array(new SharedArrayBuffer(4 * n));

/**
 * Runs call() again and again for `ms`; every throw must be a RangeError or a TypeError. Without
 * stack traces, so that a rejected call costs about what an accepted one does.
 */
function hammer(ms: number, call: () => void): { ok: number; rejected: number } {
  let ok = 0, rejected = 0;
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    const end = performance.now() + ms;
    while (performance.now() < end) {
      for (let i = 0; i < 64; i++) {
        try {
          call();
          ok++;
        } catch (e) {
          if (!(e instanceof RangeError || e instanceof TypeError)) throw e;
          rejected++;
        }
      }
    }
  } finally {
    Error.stackTraceLimit = limit;
  }
  return { ok, rejected };
}

/** Same with async calls, `inFlight` at a time; a rejection must be a RangeError or TypeError too. */
async function hammerAsync(ms: number, call: () => Promise<void>, inFlight = 8) {
  let ok = 0, rejected = 0;
  const one = async () => {
    try {
      await call();
      ok++;
    } catch (e) {
      if (!(e instanceof RangeError || e instanceof TypeError)) throw e;
      rejected++;
    }
  };
  const end = performance.now() + ms;
  while (performance.now() < end) await Promise.all(Array.from({ length: inFlight }, one));
  return { ok, rejected };
}

describe.skipIf(!nativeBinding)('native: caller memory rewritten during a call', () => {
  const b = nativeBinding!;
  const MS = 700;
  const dimsOf = (B: number, H: number, Hkv: number, Sq: number, Sk: number, D: number, causal = 0) =>
    sharedI32([...sdpaBindingDims([B, H, Hkv, Sq, Sk, D, D, 0, causal, 1, 1, 1, 1])]);
  const runAsync = (ops: unknown[]) =>
    new Promise<void>((resolve, reject) => b.runAsync(ops as never, (e) => (e ? reject(e) : resolve())));
  const finite = (a: Float32Array) => a.every(Number.isFinite);

  // B, H, Sq, Sk, D of the calls below; q, k, v and out fit these dims exactly.
  const B = 2, H = 2, Sq = 3, Sk = 5, D = 4;
  const q = fill(B * H * Sq * D), k = fill(B * H * Sk * D, Math.cos), v = fill(B * H * Sk * D, Math.sin);
  const sdpaArgs = (dims: Int32Array, out: Float32Array, offsets: Int32Array | null = null, kvLengths: Int32Array | null = null) =>
    [q, k, v, out, dims, 0.5, 0, null, offsets, kvLengths, null, null, null, null, null] as const;

  test('dims: each shape slot flipping between its value and 0 (Hkv: a division), sync and async', async () => {
    const dims = dimsOf(B, H, H, Sq, Sk, D);
    await flip([0, 1, 2, 3, 4, 5, 6].map((index) => ({ array: dims, index, a: 0, b: dims[index] })));
    const out = new Float32Array(B * H * Sq * D);
    const sync = hammer(MS, () => void b.sdpa(...sdpaArgs(dims, out)));
    const queued = await hammerAsync(MS, () => runAsync([['sdpa', ...sdpaArgs(dims, new Float32Array(out.length))]]));
    expect(await stopFlipping()).toBeGreaterThan(0);
    expect(sync.ok).toBeGreaterThan(0);
    expect(queued.ok).toBeGreaterThan(0);
    expect(finite(out)).toBe(true);
  });

  test('dims: Hkv flipping between 1 and 0 (H = 1, a division by Hkv)', async () => {
    const dims = dimsOf(1, 1, 1, Sq, Sk, D);
    await flip([{ array: dims, index: 2, a: 1, b: 0 }]);
    const q1 = fill(Sq * D), k1 = fill(Sk * D), out = new Float32Array(Sq * D);
    // Long enough that, before the fix, a sanitized build hit the division most runs.
    const sync = hammer(4 * MS, () => void b.sdpa(q1, k1, k1, out, dims, 1, 0, null, null, null, null, null, null, null, null));
    expect(await stopFlipping()).toBeGreaterThan(0);
    expect(sync.ok).toBeGreaterThan(0);
    expect(sync.rejected).toBeGreaterThan(0);
  });

  test('dims: layout, causal, kv dtype and mask dims flipping between two codes', async () => {
    const dims = dimsOf(B, H, H, Sq, Sk, D, 1);
    const offsets = sharedI32([2, 2]);
    const mask = new Float32Array(H * Sq * Sk);  // [1, H, Sq, Sk]
    dims.set([1, H, Sq, Sk], 9);
    await flip([
      { array: dims, index: 7, a: 1, b: 0 },       // layout bshd / bhsd (the same lengths here)
      { array: dims, index: 8, a: 0, b: 1 },       // causal
      { array: dims, index: 9, a: B, b: 1 },       // mask dims: B (not the mask's length) / 1
      { array: dims, index: 10, a: 1, b: H },
      { array: dims, index: 11, a: 7, b: Sq },     // 7 is neither 1 nor Sq
      { array: dims, index: 12, a: 1, b: Sk },
      { array: dims, index: 13, a: 1, b: 0 },      // kv dtype float16 (k is not) / float32
      { array: dims, index: 14, a: 2, b: -1 },     // window left: 2 keys / unbounded
      { array: dims, index: 15, a: 2 ** 31 - 1, b: 0 }, // window right: everything / only itself
    ]);
    const out = new Float32Array(B * H * Sq * D);
    const sync = hammer(MS, () => void b.sdpa(q, k, v, out, dims, 0.5, 0, mask, offsets, null, null, null, null, null, null));
    const queued = await hammerAsync(MS, () => runAsync([['sdpa', q, k, v, new Float32Array(out.length), dims, 0.5, 0, mask, offsets, null, null, null, null, null, null]]));
    expect(await stopFlipping()).toBeGreaterThan(0);
    expect(sync.ok).toBeGreaterThan(0);
    expect(queued.ok).toBeGreaterThan(0);
    expect(finite(out)).toBe(true);
  });

  test('kvLengths and offsets flipping between in-range and far out-of-range values, sync and async', async () => {
    const dims = dimsOf(B, H, H, Sq, Sk, D, 1);
    const kvLengths = sharedI32([Sk, 0]);
    const offsets = sharedI32([0, 0]);
    await flip([
      { array: kvLengths, index: 0, a: 1 << 30, b: Sk },
      { array: kvLengths, index: 1, a: -(1 << 30), b: 0 },
      { array: offsets, index: 0, a: -(2 ** 31), b: 2 ** 31 - 1 },
      { array: offsets, index: 1, a: 2 ** 31 - 1, b: 1 },
    ]);
    const out = new Float32Array(B * H * Sq * D);
    const sync = hammer(MS, () => void b.sdpa(...sdpaArgs(dims, out, offsets, kvLengths)));
    const outs: Float32Array[] = [];
    const queued = await hammerAsync(MS, async () => {
      const o = new Float32Array(out.length);
      outs.push(o);
      await runAsync([['sdpa', ...sdpaArgs(dims, o, offsets, kvLengths)]]);
    });
    expect(await stopFlipping()).toBeGreaterThan(0);
    expect(sync.ok).toBeGreaterThan(0);
    expect(queued.ok).toBeGreaterThan(0);
    expect(finite(out) && outs.every(finite)).toBe(true);
  });

  test('a packed weight\'s header flipping (panel offset, N, K) under gemm, sync and async', async () => {
    const M = 3, K = 40, Nn = 20;
    const packed = sharedF32(b.gemmPackedLength(Nn, K));
    b.gemmPack(fill(Nn * K), true, Nn, K, packed);
    const x = fill(M * K);
    await flip([
      { array: packed, index: 7, a: 1e9, b: packed[7] },  // the panel offset: far past the buffer
      { array: packed, index: 4, a: 9999, b: packed[4] }, // the low half of N
      { array: packed, index: 6, a: 9999, b: packed[6] }, // the low half of K
    ]);
    const y = new Float32Array(M * Nn);
    const sync = hammer(MS, () => void b.gemm(x, M, K, packed, Nn, null, y));
    const queued = await hammerAsync(MS, () => runAsync([['gemm', x, M, K, packed, Nn, null, new Float32Array(M * Nn)]]));
    expect(await stopFlipping()).toBeGreaterThan(0);
    expect(sync.ok).toBeGreaterThan(0);
    expect(queued.ok).toBeGreaterThan(0);
    expect(finite(y)).toBe(true);
  });
});
