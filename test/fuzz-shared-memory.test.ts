// Fuzzing SharedArrayBuffer arguments that a worker_thread writes while sync and async calls run.
// The worker toggles kvLengths / queryOffset / seqLens between valid values (0, the full length)
// and invalid ones, and (in one mode) scribbles over q, k, v, mask data and `out` as well. Values
// racing with a call may give any numbers, but:
//   - a call never crashes, and never writes outside `out` (guard elements around it, in the same
//     shared buffer, that the worker leaves alone);
//   - it either throws a clean RangeError naming the steering array (its copy saw an invalid value)
//     or uses one copy of it throughout: with q, k, v left alone, every batch's block of the output
//     equals the block of a plain call made with one of the values the worker writes;
//   - a KVCache advances each sequence by one valid seqLens value, and exactly the rows past it
//     are zero in the output.
// On qkv/js and on qkv under every native kernel set. QKV_FUZZ_SEED / _ONLY / _SCALE as in
// test/fuzz-api.test.ts.
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Gen, describeError, firstMismatch, fuzzLoop, namesArgument, outcomeOf, targets, type Target } from './helpers.js';

const WORKER = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', ({ ctl, ints, floats }) => {
  let x = ctl[3] >>> 0 || 1;
  Atomics.store(ctl, 2, 1);
  Atomics.notify(ctl, 2);
  while (Atomics.load(ctl, 0) === 1) {
    for (const { a, values } of ints) {
      for (let i = 0; i < a.length; i++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        Atomics.store(a, i, values[(x >>> 8) % values.length]);
      }
    }
    for (const f of floats) {
      if (f.length === 0) continue;
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      f[(x >>> 8) % f.length] = (x / 4294967296) * 2 - 1;
    }
    Atomics.add(ctl, 4, 1);
  }
  Atomics.store(ctl, 2, 0);
  Atomics.store(ctl, 1, 1);
  Atomics.notify(ctl, 1);
});
`;

let worker: Worker;
/** [run, idle, started, seed, rounds written]. */
const ctl = new Int32Array(new SharedArrayBuffer(20));
beforeAll(() => {
  worker = new Worker(WORKER, { eval: true });
  worker.unref();
});
afterAll(() => worker.terminate());

/** Runs fn while the worker writes `ints` (each element one of its values) and scribbles `floats`. */
async function whileRacing<R>(seed: number, ints: Array<{ a: Int32Array; values: number[] }>, floats: Float32Array[], fn: () => Promise<R>): Promise<R> {
  Atomics.store(ctl, 0, 1);
  Atomics.store(ctl, 1, 0);
  Atomics.store(ctl, 2, 0);
  Atomics.store(ctl, 3, seed);
  worker.postMessage({ ctl, ints, floats });
  while (Atomics.load(ctl, 2) === 0) await new Promise((r) => setTimeout(r, 0));
  try {
    return await fn();
  } finally {
    Atomics.store(ctl, 0, 0);
    while (Atomics.load(ctl, 1) === 0) await new Promise((r) => setTimeout(r, 0));
  }
}

const sharedI32 = (n: number) => new Int32Array(new SharedArrayBuffer(4 * Math.max(n, 1)), 0, n);
function sharedF32(g: Gen, n: number): Float32Array {
  const a = new Float32Array(new SharedArrayBuffer(4 * Math.max(n, 1)), 0, n);
  for (let i = 0; i < n; i++) a[i] = g.r() * 2 - 1;
  return a;
}

const GUARD = 8;
const GUARD_VALUE = -31.5;
/** `out` of n floats inside a shared buffer with GUARD guard floats each side. */
function guardedOut(n: number) {
  const whole = new Float32Array(new SharedArrayBuffer(4 * (n + 2 * GUARD))).fill(GUARD_VALUE);
  const out = whole.subarray(GUARD, GUARD + n);
  const intact = () => {
    for (let i = 0; i < GUARD; i++) if (whole[i] !== GUARD_VALUE || whole[GUARD + n + i] !== GUARD_VALUE) return false;
    return true;
  };
  return { out, intact };
}

const clean = (e: unknown, names: RegExp) => namesArgument(e) && e instanceof RangeError && names.test((e as Error).message);

/** Whether each batch block [b*blk, (b+1)*blk) of `got` equals that block of one of `candidates`. */
function blocksMatch(got: Float32Array, candidates: Float32Array[], B: number): number {
  const blk = got.length / B;
  for (let b = 0; b < B; b++) {
    const block = got.subarray(b * blk, (b + 1) * blk);
    if (!candidates.some((c) => firstMismatch(block, c.subarray(b * blk, (b + 1) * blk)) < 0)) return b;
  }
  return -1;
}

// -------------------------------------------------------------------------------------------------

async function sdpaCase(g: Gen, t: Target): Promise<string | null> {
  const H = g.int(1, 2);
  const [B, Sq, Sk, D] = [g.int(1, 3), g.int(1, 4), g.int(2, 6), g.int(1, 6)];
  const scribble = g.chance(0.3);
  const isAsync = g.chance(0.4);
  const q = scribble ? sharedF32(g, B * H * Sq * D) : g.f32(B * H * Sq * D, 'plain');
  const k = scribble ? sharedF32(g, B * H * Sk * D) : g.f32(B * H * Sk * D, 'plain');
  const v = scribble ? sharedF32(g, B * H * Sk * D) : g.f32(B * H * Sk * D, 'plain');
  const { out, intact } = guardedOut(B * H * Sq * D);
  const base: Record<string, unknown> = { batch: B, heads: H, seqQ: Sq, seqK: Sk, headDim: D };
  const ints: Array<{ a: Int32Array; values: number[] }> = [];
  const invalid = g.chance(0.4);
  // A middle value too: bottom-right causal offsets come from kvLengths, so a call that derived
  // them from one read and masked keys with another matches none of the plain calls.
  const kvValues = [0, ...(Sk > 1 ? [g.int(1, Sk - 1)] : []), Sk, ...(invalid ? [g.pick([Sk + 1, 2 ** 30, -1, -(2 ** 31)])] : [])];
  const kvLengths = sharedI32(B).fill(Sk);
  ints.push({ a: kvLengths, values: kvValues });
  const opts: Record<string, unknown> = { ...base, kvLengths, out };
  let offValues: number[] = [];
  if (g.chance(0.4)) {
    offValues = [0, Sk, -3, 2 ** 30];
    const queryOffset = sharedI32(B);
    ints.push({ a: queryOffset, values: offValues });
    opts.queryOffset = queryOffset;
  } else if (g.chance(0.6)) {
    opts.causal = g.pick([true, 'bottom-right', 'top-left']);
  }
  if (scribble && g.chance(0.5)) opts.mask = { data: sharedF32(g, Sq * Sk), dims: [Sq, Sk] };
  const floats = scribble ? [q, k, v, out, ...(opts.mask ? [(opts.mask as { data: Float32Array }).data] : [])] : [];
  const call = (o: Record<string, unknown>) => t.run(() => (isAsync ? t.face.scaledDotProductAttentionAsync : t.face.scaledDotProductAttention)(q, k, v, o));
  const h = await whileRacing(g.int(1, 2 ** 30), ints, floats, () => outcomeOf(() => call(opts)));
  const where = `${t.name}${isAsync ? ' async' : ''}${scribble ? ' scribbled' : ''} kvLengths in [${kvValues}]${offValues.length ? ` queryOffset in [${offValues}]` : ''} ${JSON.stringify(base)}`;
  if (!intact()) return `${where}: wrote outside out`;
  if (h.error !== undefined) return clean(h.error, /kvLengths|queryOffset/) ? null : `${where}: threw ${describeError(h.error)}`;
  if (scribble) return null;
  // One copy of each steering array was used: every batch's block is one of the plain results.
  const candidates: Float32Array[] = [];
  for (const kv of kvValues.filter((x) => x >= 0 && x <= Sk)) {
    for (const off of offValues.length ? offValues : [null]) {
      const o: Record<string, unknown> = { ...opts, kvLengths: new Int32Array(B).fill(kv), out: undefined };
      if (off !== null) o.queryOffset = new Int32Array(B).fill(off);
      candidates.push(t.run(() => t.face.scaledDotProductAttention(q, k, v, o)) as Float32Array);
    }
  }
  const bad = blocksMatch(h.arrays![0]!, candidates, B);
  return bad < 0 ? null : `${where}: batch ${bad}'s output matches no plain call with one of the written values`;
}

async function layerCase(g: Gen, t: Target): Promise<string | null> {
  const E = g.int(1, 6);
  const H = g.int(1, 2);
  const Dh = g.int(1, 3);
  const w = () => g.f32(H * Dh * E, 'plain');
  const layer = t.run(() => new t.face.MultiHeadAttention({ embedDim: E, numHeads: H, headDim: Dh, weights: { wq: w(), wk: w(), wv: w(), wo: w() } }));
  const B = g.int(1, 3);
  const S = g.int(1, 4);
  const isAsync = g.chance(0.4);
  const invalid = g.chance(0.4);
  const seqValues = [0, S, ...(invalid ? [g.pick([S + 1, -1, 2 ** 30])] : [])];
  const seqLens = sharedI32(B).fill(S);
  const x = g.f32(B * S * E, 'plain');
  const { out, intact } = guardedOut(B * S * E);
  const where = `${t.name}${isAsync ? ' async' : ''} B=${B} S=${S} E=${E} seqLens in [${seqValues}]`;
  if (g.chance(0.5)) {
    // With a cache: each sequence advances by the seqLens value of the one copy, whose padded rows are zero.
    const maxLength = 3 * S + g.int(0, 3);
    const cache = layer.createCache({ batch: B, maxLength });
    const before = Array.from(cache.lengths as Int32Array);
    const opts = { batch: B, seqLen: S, seqLens, cache, out };
    const h = await whileRacing(g.int(1, 2 ** 30), [{ a: seqLens, values: seqValues }], [], () =>
      outcomeOf(() => t.run(() => (isAsync ? layer.forwardAsync(x, opts) : layer.forward(x, opts)))));
    if (!intact()) return `${where} cache: wrote outside out`;
    const after = Array.from(cache.lengths as Int32Array);
    if (h.error !== undefined) {
      if (!clean(h.error, /seqLens/)) return `${where} cache: threw ${describeError(h.error)}`;
      return after.join() === before.join() ? null : `${where} cache: refused but moved the lengths ${before} -> ${after}`;
    }
    for (let b = 0; b < B; b++) {
      const d = after[b]! - before[b]!;
      if (!seqValues.includes(d) || d < 0 || d > S || after[b]! > maxLength) return `${where} cache: sequence ${b} advanced by ${d} (${before} -> ${after})`;
      const y = h.arrays![0]!;
      for (let i = d; i < S; i++) {
        for (let e = 0; e < E; e++) if (y[(b * S + i) * E + e] !== 0) return `${where} cache: row ${i} of sequence ${b} (advanced by ${d}) is not zero`;
      }
    }
    return null;
  }
  // Without a cache: kvLengths races too; every batch's block is one of the plain results.
  const kvValues = [0, S, ...(invalid ? [g.pick([S + 1, -1])] : [])];
  const kvLengths = sharedI32(B).fill(S);
  const opts = { batch: B, seqLens, kvLengths, out, causal: g.chance(0.5) };
  const h = await whileRacing(g.int(1, 2 ** 30), [{ a: seqLens, values: seqValues }, { a: kvLengths, values: kvValues }], [], () =>
    outcomeOf(() => t.run(() => (isAsync ? layer.forwardAsync(x, opts) : layer.forward(x, opts)))));
  if (!intact()) return `${where}: wrote outside out`;
  if (h.error !== undefined) return clean(h.error, /seqLens|kvLengths/) ? null : `${where}: threw ${describeError(h.error)}`;
  const candidates: Float32Array[] = [];
  for (const sl of seqValues.filter((n) => n >= 0 && n <= S)) {
    for (const kl of kvValues.filter((n) => n >= 0 && n <= S)) {
      const o = { ...opts, seqLens: new Int32Array(B).fill(sl), kvLengths: new Int32Array(B).fill(kl), out: undefined };
      candidates.push(Float32Array.from(t.run(() => layer.forward(x, o)) as Float32Array));
    }
  }
  const bad = blocksMatch(h.arrays![0]!, candidates, B);
  return bad < 0 ? null : `${where} kvLengths in [${kvValues}]: batch ${bad}'s output matches no plain call with one of the written values`;
}

describe('fuzz: shared buffers written by a worker while calls run', () => {
  test('scaledDotProductAttention / Async: kvLengths, queryOffset, tensors and out raced', async () => {
    const rounds = Atomics.load(ctl, 4);
    const failures = await fuzzLoop('shared sdpa', { salt: 0x301, mix: 0x9e3779b9, ms: 1500, min: 60 }, async (g) => ({ problem: await sdpaCase(g, g.pick(targets)) }));
    expect(failures, failures.join('\n')).toEqual([]);
    expect(Atomics.load(ctl, 4) - rounds, 'the worker wrote while the calls ran').toBeGreaterThan(60);
  });
  test('MultiHeadAttention forward / forwardAsync: seqLens and kvLengths raced, with and without a cache', async () => {
    const failures = await fuzzLoop('shared layer', { salt: 0x302, mix: 0x9e3779b9, ms: 1500, min: 60 }, async (g) => ({ problem: await layerCase(g, g.pick(targets)) }));
    expect(failures, failures.join('\n')).toEqual([]);
  });
});
