// The server path (DESIGN.md, Async): ...Async twins equal their sync results, run on the
// library's own pool (the event loop and libuv's pool stay free), honour AbortSignal, and work
// from worker_threads, including workers terminated mid-call.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, describe, expect, test } from 'vitest';
import * as native from '../lib/index.js';
import * as js from '../lib/js.js';
import { nativeBinding } from '../lib/backend/select.js';
import { callerError, withCallerStack } from '../lib/validate-async.js';
import { fill, lastJsonLine, runTsx, runWorker } from './helpers.js';

/** Set by scripts/test-asan.sh: the addon is an ASan+UBSan build. */
const SANITIZED = process.env.QKV_SANITIZED === '1';

const apis = [{ name: 'js', api: js }, ...(nativeBinding ? [{ name: 'native', api: native }] : [])];

function layerWeights(E: number) {
  return {
    inProjWeight: fill(3 * E * E, (i) => Math.sin(i * 0.013) * 0.1),
    inProjBias: fill(3 * E, (i) => Math.cos(i) * 0.01),
    outProjWeight: fill(E * E, (i) => Math.cos(i * 0.007) * 0.1),
    outProjBias: fill(E, (i) => Math.sin(i) * 0.01),
  };
}

describe.each(apis)('async equals sync [$name]', ({ api }) => {
  const B = 2, H = 4, Hkv = 2, S = 37, D = 16;
  const q = fill(B * H * S * D, (i) => Math.sin(i * 0.3));
  const k = fill(B * Hkv * S * D, (i) => Math.cos(i * 0.7));
  const v = fill(B * Hkv * S * D, (i) => Math.sin(i * 0.11));
  const options = { batch: B, heads: H, kvHeads: Hkv, seqQ: S, headDim: D, causal: true };

  test('scaledDotProductAttentionAsync', async () => {
    const want = api.scaledDotProductAttention(q, k, v, options);
    expect(await api.scaledDotProductAttentionAsync(q, k, v, options)).toEqual(want);
    const both = await api.scaledDotProductAttentionAsync(q, k, v, { ...options, weights: true, scores: true });
    const wantBoth = api.scaledDotProductAttention(q, k, v, { ...options, weights: true, scores: true });
    expect(both.output).toEqual(wantBoth.output);
    expect(both.weights).toEqual(wantBoth.weights);
    expect(both.scores).toEqual(wantBoth.scores);
    const out = new Float32Array(want.length);
    expect(await api.scaledDotProductAttentionAsync(q, k, v, { ...options, out })).toBe(out);
  });

  test('linearAsync and Linear#forwardAsync', async () => {
    const x = fill(5 * 24, (i) => Math.sin(i));
    const w = fill(7 * 24, (i) => Math.cos(i * 0.3));
    const b = fill(7, (i) => i * 0.1);
    const want = api.linear(x, w, b, { inFeatures: 24 });
    expect(await api.linearAsync(x, w, b, { inFeatures: 24 })).toEqual(want);
    const fc = new api.Linear({ weight: w, bias: b, inFeatures: 24 });
    expect(await fc.forwardAsync(x)).toEqual(want);
  });

  test('MultiHeadAttention#forwardAsync, concurrent calls on one layer', async () => {
    const E = 32;
    const layer = new api.MultiHeadAttention({ embedDim: E, numHeads: 4, weights: layerWeights(E) });
    const xs = [1, 2, 3].map((s) => fill(2 * 9 * E, (i) => Math.sin(i * 0.05 * s)));
    const want = xs.map((x) => layer.forward(x, { batch: 2, causal: true }));
    const got = await Promise.all(xs.map((x) => layer.forwardAsync(x, { batch: 2, causal: true })));
    got.forEach((y, i) => expect(y).toEqual(want[i]));
    const withWeights = await layer.forwardAsync(xs[0], { batch: 2, needWeights: true, averageWeights: true });
    expect(withWeights.weights).toEqual(layer.forward(xs[0], { batch: 2, needWeights: true, averageWeights: true }).weights);
  });

  test('validation throws synchronously, before any Promise exists', () => {
    expect(() => api.scaledDotProductAttentionAsync(q, k, v, { ...options, casual: true } as never)).toThrow(TypeError);
    expect(() => api.scaledDotProductAttentionAsync(q, k, v, { ...options, signal: 'stop' } as never)).toThrow(/AbortSignal for options\.signal/);
    expect(() => api.linearAsync(q, k, { inFeatures: 7 })).toThrow(RangeError);
  });

  test('an already-aborted signal rejects (no throw) and leaves out untouched', async () => {
    const controller = new AbortController();
    controller.abort(new Error('client went away'));
    const out = new Float32Array(B * H * S * D).fill(7);
    const p = api.scaledDotProductAttentionAsync(q, k, v, { ...options, out, signal: controller.signal });
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    expect(out.every((x) => x === 7)).toBe(true);
  });
});

// Layers share their scratch sets: concurrent calls on layers of different shapes each own a set
// from start to settle, and get what their own sync call gets.
describe.each(apis)('concurrent calls on layers of different shapes [$name]', ({ api }) => {
  test('equal their sync results', async () => {
    const layers = [32, 48].map((E) => new api.MultiHeadAttention({ embedDim: E, numHeads: 4, weights: layerWeights(E) }));
    const calls = Array.from({ length: 12 }, (_, c) => {
      const l = c % 2, E = layers[l]!.embedDim, S = 5 + 9 * c;
      return { l, x: fill(S * E, (i) => Math.sin(i * 0.01 * (c + 1))) };
    });
    const want = calls.map((c) => layers[c.l]!.forward(c.x, { causal: true }));
    const got = await Promise.all(calls.map((c) => layers[c.l]!.forwardAsync(c.x, { causal: true })));
    got.forEach((y, i) => expect(y).toEqual(want[i]));
  });
});

test('a RangeError found on the pool is re-told with the stack of the line that made the call', () => {
  const caller = (function requestHandler() {
    return callerError();
  })();
  expect(caller.stack!.split('\n')[1]).toMatch(/at requestHandler /);
  const told = withCallerStack(new RangeError('Could not allocate the workspace'), caller) as RangeError;
  expect(told).toBe(caller);
  expect(told.message).toBe('Could not allocate the workspace');
  const other = new TypeError('x');
  expect(withCallerStack(other, callerError())).toBe(other);
});

/**
 * Wraps the binding's runAsync to record, until restore(), the most calls in flight at once and the
 * order calls reach the pool (the first op's x tells which of `xs` a call is).
 */
function watchPool(xs: Float32Array[]) {
  const binding = nativeBinding as unknown as { runAsync: (ops: unknown[][], cb: (e: Error | null) => void) => number };
  const original = binding.runAsync;
  let inFlight = 0;
  const seen = { most: 0, order: [] as number[], restore: () => void (binding.runAsync = original) };
  binding.runAsync = (ops, cb) => {
    seen.most = Math.max(seen.most, ++inFlight);
    seen.order.push((xs as unknown[]).indexOf(ops[0]![1]));
    return original.call(binding, ops, (e) => {
      inFlight--;
      cb(e);
    });
  };
  return seen;
}

describe.runIf(nativeBinding)('native pool', () => {
  const threadsBefore = native.info().threads;
  afterAll(() => native.setThreads(threadsBefore));

  test('setThreads validates and info() reports it', () => {
    expect(() => native.setThreads(0)).toThrow(RangeError);
    expect(() => native.setThreads(1.5)).toThrow(RangeError);
    expect(() => native.setThreads('2' as never)).toThrow(TypeError);
    native.setThreads(1);
    expect(native.info().threads).toBe(1);
    native.setThreads(threadsBefore);
  });

  test('results do not depend on the thread count', () => {
    const H = 8, S = 200, D = 64;
    const q = fill(H * S * D, (i) => Math.sin(i * 0.3));
    const k = fill(H * S * D, (i) => Math.cos(i * 0.7));
    const options = { heads: H, seqQ: S, headDim: D, causal: true };
    const decode = { heads: H, seqQ: 1, seqK: S, headDim: D };
    // Long enough to be split over keys (chunks of >= 512) and run on the pool: the partial
    // softmax states merge in the same order whichever thread computed them.
    const Sk = 4096;
    const kLong = fill(2 * Sk * D, (i) => Math.cos(i * 0.37));
    const split = { heads: H, kvHeads: 2, seqQ: 1, seqK: Sk, headDim: D, kvLengths: Int32Array.of(Sk - 5) };
    const results = [1, 2, 3].map((t) => {
      native.setThreads(t);
      return [
        native.scaledDotProductAttention(q, k, k, options),
        native.scaledDotProductAttention(q.subarray(0, H * D), k, k, decode),
        native.scaledDotProductAttention(q.subarray(0, H * D), kLong, kLong, split),
      ];
    });
    native.setThreads(threadsBefore);
    for (const r of results.slice(1)) r.forEach((y, i) => expect(y).toEqual(results[0]![i]));
    // And the split result is the unsplit one up to float rounding of the merge (js: one pass).
    const js1 = js.scaledDotProductAttention(q.subarray(0, H * D), kLong, kLong, split) as Float32Array;
    (results[0]![2] as Float32Array).forEach((y, i) => expect(Math.abs(y - js1[i]!)).toBeLessThan(1e-5 + 1e-4 * Math.abs(js1[i]!)));
  });

  test('a queued call aborted before it starts rejects and leaves out untouched', async () => {
    native.setThreads(1);
    const H = 8, S = 1024, D = 64;
    const q = fill(H * S * D, (i) => Math.sin(i));
    const options = { heads: H, seqQ: S, headDim: D };
    const busy = [1, 2].map(() => native.scaledDotProductAttentionAsync(q, q, q, options));
    const controller = new AbortController();
    const out = new Float32Array(H * S * D).fill(3);
    const queued = native.scaledDotProductAttentionAsync(q, q, q, { ...options, out, signal: controller.signal });
    controller.abort();
    await expect(queued).rejects.toMatchObject({ name: 'AbortError' });
    await Promise.all(busy);
    expect(out.every((x) => x === 3)).toBe(true);
    native.setThreads(threadsBefore);
  });

  // MultiHeadAttention admits 2 × threads async calls at a time; the rest wait in JS, holding no
  // scratch, and start in order as calls settle.
  test('a burst of layer calls runs at most 2 per thread at once, in order, with the right results', async () => {
    native.setThreads(1);
    const E = 64;
    const layer = new native.MultiHeadAttention({ embedDim: E, numHeads: 4, weights: layerWeights(E) });
    const xs = Array.from({ length: 24 }, (_, c) => fill(40 * E, (i) => Math.sin(i * 0.01 * (c + 1))));
    const want = xs.map((x) => layer.forward(x, { causal: true }));
    const pool = watchPool(xs);
    try {
      const got = await Promise.all(xs.map((x) => layer.forwardAsync(x, { causal: true })));
      got.forEach((y, c) => expect(y).toEqual(want[c]));
    } finally {
      pool.restore();
      native.setThreads(threadsBefore);
    }
    expect(pool.most).toBe(2);
    expect(pool.order).toEqual(xs.map((_, c) => c));
  });

  // Raising the thread count while calls wait lets several of them start at once, oldest first; a
  // call made while others wait queues behind them even if a place is free.
  test('setThreads raised during a burst: waiting calls fill the new places in order', async () => {
    native.setThreads(1);
    const E = 64;
    const layer = new native.MultiHeadAttention({ embedDim: E, numHeads: 4, weights: layerWeights(E) });
    const xs = Array.from({ length: 10 }, (_, c) => fill(300 * E, (i) => Math.cos(i * 0.002 * (c + 1))));
    const want = xs.map((x) => layer.forward(x));
    const pool = watchPool(xs);
    try {
      const first = xs.slice(0, 9).map((x) => layer.forwardAsync(x)); // 2 run, 7 wait
      native.setThreads(2); // 4 places now: 2 are free, but the 7 waiters were here first
      const last = layer.forwardAsync(xs[9]!);
      const got = await Promise.all([...first, last]);
      got.forEach((y, c) => expect(y).toEqual(want[c]));
    } finally {
      pool.restore();
      native.setThreads(threadsBefore);
    }
    expect(pool.order).toEqual(xs.map((_, c) => c));
    expect(pool.most).toBe(4);
  });

  test('layer calls that fail to start give their place back', async () => {
    native.setThreads(1);
    const E = 1024, S = 4096; // averaged weights need [B, H, S, S] per-head scratch first: 2^34 floats
    const layer = new native.MultiHeadAttention({ embedDim: E, numHeads: E, weights: {
      inProjWeight: new Float32Array(3 * E * E), outProjWeight: new Float32Array(E * E) } });
    const big = new Float32Array(S * E);
    try {
      expect(() => layer.forward(big, { needWeights: true, averageWeights: true })).toThrow(
        /^Could not allocate the per-head weights \(B\*H\*S\*Sk\)/);
      // More failures than places: a leaked place would leave the last call waiting for ever.
      for (let i = 0; i < 5; i++) {
        await expect(layer.forwardAsync(big, { needWeights: true, averageWeights: true })).rejects.toThrow(/^Could not allocate/);
      }
      const small = new Float32Array(3 * E).fill(0.5);
      expect(await layer.forwardAsync(small)).toEqual(layer.forward(small));
    } finally {
      native.setThreads(threadsBefore);
    }
  });

  test('a layer call aborted while waiting for its turn rejects at once; the others still run', async () => {
    native.setThreads(1);
    const E = 64;
    const layer = new native.MultiHeadAttention({ embedDim: E, numHeads: 4, weights: layerWeights(E) });
    const x = fill(256 * E, (i) => Math.cos(i * 0.003));
    const want = layer.forward(x);
    const running = [1, 2, 3].map(() => layer.forwardAsync(x)); // two start, the third waits
    const controller = new AbortController();
    const out = new Float32Array(x.length).fill(5);
    const waiting = layer.forwardAsync(x, { out, signal: controller.signal });
    let settledFirst = '';
    waiting.catch(() => (settledFirst ||= 'aborted'));
    running[0]!.then(() => (settledFirst ||= 'running'));
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
    const got = await Promise.all(running);
    native.setThreads(threadsBefore);
    expect(settledFirst).toBe('aborted');
    expect(out.every((v) => v === 5)).toBe(true);
    for (const y of got) expect(y).toEqual(want);
  });

  // Timing tests say nothing about memory safety and an instrumented build is several times slower.
  test.skipIf(SANITIZED)('the event loop stays responsive while async layer calls run', async () => {
    const E = 768, S = 512;
    const layer = new native.MultiHeadAttention({ embedDim: E, numHeads: 12, weights: layerWeights(E) });
    const x = fill(S * E, (i) => Math.sin(i * 0.001));
    const t0 = performance.now();
    layer.forward(x);
    const callMs = performance.now() - t0;
    const histogram = monitorEventLoopDelay({ resolution: 1 });
    histogram.enable();
    const ticker = setInterval(() => {}, 1);
    await Promise.all(Array.from({ length: 8 }, () => layer.forwardAsync(x)));
    clearInterval(ticker);
    histogram.disable();
    const p99 = histogram.percentile(99) / 1e6;
    expect(p99, `p99 event-loop delay ${p99.toFixed(1)} ms with calls of ${callMs.toFixed(0)} ms`).toBeLessThan(20);
  });

  test.skipIf(SANITIZED)("libuv's pool stays free: readFile completes while 8 calls run (UV_THREADPOOL_SIZE=2)", () => {
    const { readMs, callMs } = lastJsonLine(runTsx(['test/fixtures/libuv-probe.ts'], { ...process.env, UV_THREADPOOL_SIZE: '2' }));
    expect(readMs, `readFile took ${readMs} ms; one call ${callMs} ms`).toBeLessThan(Math.max(callMs / 4, 10));
  });

  // Linux only: /proc shows each thread's policy, and SCHED_IDLE is a Linux policy.
  describe.runIf(process.platform === 'linux')('QKV_ASYNC_PRIORITY', () => {
    const probe = (value: string | undefined, ...args: string[]) => {
      const env = { ...process.env };
      if (value === undefined) delete env.QKV_ASYNC_PRIORITY;
      else env.QKV_ASYNC_PRIORITY = value;
      return lastJsonLine(runTsx(['test/fixtures/priority-probe.ts', ...args], env));
    };
    test('by default the threads running async calls are SCHED_IDLE', () => {
      expect(probe(undefined)).toMatchObject({ asyncPriority: 'idle', same: true, idleThreads: 2 });
    });
    test("'normal' keeps the normal policy", () => {
      expect(probe('normal')).toEqual({ asyncPriority: 'normal', same: true, idleThreads: 0 });
    });
    test('the value at load holds: setting the variable later moves neither the threads nor info()', () => {
      const got = probe(undefined, '--set-normal-after-load');
      expect(got).toMatchObject({ asyncPriority: 'idle', same: true, idleThreads: 2 });
    });
    test('another value fails at load with a RangeError naming it', () => {
      expect(() => probe('low')).toThrow(/RangeError: Expected 'idle' \| 'normal' for QKV_ASYNC_PRIORITY but received 'low'/);
    });
  });

  test('4 worker_threads x 50 concurrent calls each are correct', async () => {
    const workers = [0, 1, 2, 3].map((seed) => runWorker({ calls: 50, seqQ: 33, heads: 4, headDim: 16, seed }));
    const results = await Promise.all(workers.map((w) => w.done));
    for (const r of results) expect(r).toEqual({ done: true, ok: true, calls: 50 });
  });

  test('terminating a worker with calls in flight keeps the process alive and working', async () => {
    for (let round = 0; round < 3; round++) {
      const w = runWorker({ calls: 20, seqQ: 512, heads: 8, headDim: 64, seed: round });
      await w.started;
      await new Promise((r) => setTimeout(r, 5));
      await w.worker.terminate();
    }
    const q = fill(4 * 8 * 16, Math.sin);
    const out = await native.scaledDotProductAttentionAsync(q, q, q, { heads: 4, seqQ: 8, headDim: 16 });
    expect(out).toEqual(native.scaledDotProductAttention(q, q, q, { heads: 4, seqQ: 8, headDim: 16 }));
  });
});
