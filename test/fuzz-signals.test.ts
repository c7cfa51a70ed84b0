// Fuzzing AbortSignals that misbehave: objects that only inherit from AbortSignal.prototype,
// Proxies of signals, signals whose own `aborted` / `reason` / `addEventListener` /
// `removeEventListener` throw, reasons whose reading throws, signals aborted at random moments
// (before the call, right after it, on a microtask, a later turn, a timer), AbortSignal.abort /
// timeout / any, and many concurrent calls (sdpa, linear, Linear, a layer with and without a cache)
// sharing one signal. Every call either throws a TypeError at once (a signal that is not one) or
// returns a Promise that settles (fulfilled, or rejected with an AbortError) within a timeout;
// nothing is thrown where nobody catches it, no unhandled rejection, no MaxListenersExceededWarning,
// and each layer keeps admitting calls afterwards. On qkv (native when built) and on qkv/js.
// QKV_FUZZ_SEED / QKV_FUZZ_ONLY / QKV_FUZZ_SCALE as in test/fuzz-api.test.ts.
import { describe, expect, test } from 'vitest';
import * as N from '../lib/index.js';
import * as J from '../lib/js.js';
import { Gen, describeError, fuzzLoop, settleWithin, watchProcess } from './helpers.js';

const FACES = [['qkv', N], ['qkv/js', J]] as const;
const HANG_MS = 5_000;
/** After a hang, later cases are skipped (each would wait HANG_MS): the first one is the report. */
let hung = false;

const w = (g: Gen, n: number) => g.f32(n, 'plain');

type Timing = 'before' | 'sync-after' | 'microtask' | 'immediate' | 'timer' | 'never';
const TIMINGS: readonly Timing[] = ['before', 'sync-after', 'microtask', 'immediate', 'timer', 'timer', 'never', 'never'];

interface SignalCase {
  signal: unknown;
  /** Not an AbortSignal the API can read: every call must throw a TypeError synchronously. */
  fake: boolean;
  /**
   * AbortSignal.any: Node's own addEventListener for it reads `this.aborted` through the property,
   * so its own throwing getter may reject a call with that getter's error (the call still settles).
   */
  composite?: boolean;
  /** A transparent Proxy of a real signal: a TypeError is allowed. */
  proxy?: boolean;
  /** Whether (and when) it aborts. */
  timing: Timing;
  abort: () => void;
  tags: string[];
}

function reasonFor(g: Gen): unknown {
  return g.pick([
    undefined, new Error('stop'), 'a string', 42,
    Object.defineProperty({}, 'message', { get: () => { throw new Error('reason.message read'); } }),
    new Proxy({}, { get: () => { throw new Error('reason read through a Proxy'); } }),
  ]);
}

function genSignal(g: Gen): SignalCase {
  const tags: string[] = [];
  const kind = g.int(0, 9);
  if (kind === 0) {
    tags.push('Object.create(AbortSignal.prototype)');
    return { signal: Object.create(AbortSignal.prototype), fake: true, timing: 'never', abort: () => {}, tags };
  }
  if (kind === 1) {
    const c = new AbortController();
    // Node's AbortSignal keeps its state in symbol-keyed properties, which a transparent Proxy
    // forwards: such a Proxy may be refused (TypeError) or work as the signal it wraps.
    const timing = g.pick(TIMINGS);
    tags.push(`a Proxy of a signal, aborts ${timing}`);
    return { signal: new Proxy(c.signal, {}), fake: false, proxy: true, timing, abort: () => c.abort(), tags };
  }
  if (kind === 2) {
    tags.push('a look-alike object');
    const signal = g.pick<unknown>([{ aborted: false, addEventListener() {}, removeEventListener() {} }, new EventTarget(), Object.setPrototypeOf(new AbortController().signal, Object.prototype)]);
    return { signal, fake: true, timing: 'never', abort: () => {}, tags };
  }
  if (kind === 3) {
    tags.push('AbortSignal.abort()');
    return { signal: AbortSignal.abort(reasonFor(g)), fake: false, timing: 'before', abort: () => {}, tags };
  }
  if (kind === 4) {
    const ms = g.int(0, 3);
    tags.push(`AbortSignal.timeout(${ms})`);
    return { signal: AbortSignal.timeout(ms), fake: false, timing: 'timer', abort: () => {}, tags };
  }
  const c = new AbortController();
  let signal: AbortSignal = c.signal;
  if (kind === 5 && typeof (AbortSignal as unknown as { any?: unknown }).any === 'function') {
    signal = (AbortSignal as unknown as { any(s: AbortSignal[]): AbortSignal }).any([c.signal, new AbortController().signal]);
    tags.push('AbortSignal.any');
  }
  // Own properties that throw (the real internal state stays readable through the intrinsics).
  // (Not dispatchEvent: AbortController.abort() itself calls it through the property.)
  for (const key of ['aborted', 'reason', 'addEventListener', 'removeEventListener', 'throwIfAborted', 'onabort']) {
    if (!g.chance(0.3)) continue;
    if (key === 'aborted' || key === 'reason' || key === 'onabort') Object.defineProperty(signal, key, { get: () => { throw new Error(`${key} read`); } });
    else Object.defineProperty(signal, key, { value: () => { throw new Error(`${key} called`); } });
    tags.push(`own throwing ${key}`);
  }
  const timing = g.pick(TIMINGS);
  const reason = reasonFor(g);
  tags.push(`aborts ${timing}`);
  return { signal, fake: false, composite: tags.includes('AbortSignal.any'), timing, abort: () => c.abort(reason), tags };
}

interface Calls {
  start: Array<() => Promise<unknown>>;
  /** Layers whose admission must still take calls afterwards, with an input each. */
  layers: Array<{ layer: any; x: Float32Array; cache?: any }>;
}

function genCalls(g: Gen, api: any, signal: () => unknown): Calls {
  const E = 4;
  const layer = new api.MultiHeadAttention({ embedDim: E, numHeads: 2, weights: { wq: w(g, E * E), wk: w(g, E * E), wv: w(g, E * E), wo: w(g, E * E) } });
  const fc = new api.Linear({ weight: w(g, 12), inFeatures: 4 });
  const cache = layer.createCache({ maxLength: 64 });
  const q = w(g, 2 * 3 * 4);
  const count = g.int(1, 30);
  const start: Array<() => Promise<unknown>> = [];
  for (let i = 0; i < count; i++) {
    const kind = g.int(0, 4);
    if (kind === 0) start.push(() => api.scaledDotProductAttentionAsync(q, q, q, { heads: 2, seqQ: 3, headDim: 4, signal: signal() }));
    else if (kind === 1) start.push(() => api.linearAsync(w(g, 8), w(g, 12), { inFeatures: 4, signal: signal() }));
    else if (kind === 2) start.push(() => fc.forwardAsync(w(g, 8), { signal: signal() }));
    else if (kind === 3) start.push(() => layer.forwardAsync(w(g, 3 * E), { signal: signal() }));
    else start.push(() => layer.forwardAsync(w(g, E), { cache, signal: signal() }));
  }
  return { start, layers: [{ layer, x: w(g, 2 * E), cache }] };
}

const isAbortError = (e: unknown) => e instanceof Error && e.name === 'AbortError';
const isBusy = (e: unknown) => e instanceof Error && /in flight/.test(e.message);

async function signalCase(g: Gen): Promise<string | null> {
  if (hung) return null;
  const [faceName, api] = g.pick(FACES);
  const s = genSignal(g);
  const second = g.chance(0.2) ? genSignal(g) : null;
  const pickSignal = () => (second && g.chance(0.3) ? second.signal : s.signal);
  const calls = genCalls(g, api, pickSignal);
  const where = `${faceName} [${s.tags.join(', ')}${second ? ` + ${second.tags.join(', ')}` : ''}]`;
  const settle = (c: SignalCase) => {
    if (c.timing === 'before') c.abort();
  };
  settle(s);
  if (second) settle(second);
  const pending: Array<Promise<unknown>> = [];
  // A failure found before the calls are awaited: their rejections are still handled.
  const early = (problem: string) => {
    for (const p of pending) p.catch(() => {});
    return problem;
  };
  for (const start of calls.start) {
    let p: Promise<unknown>;
    try {
      p = start();
    } catch (e) {
      if (isBusy(e)) continue; // a second call on the cache while the first is in flight
      if (e instanceof TypeError && (s.fake || s.proxy || second?.fake || second?.proxy)) continue;
      return early(`${where} threw ${describeError(e)}`);
    }
    if (!(p instanceof Promise)) return early(`${where} an async call returned ${String(p)}`);
    pending.push(p);
  }
  if (s.fake && !second && pending.length > 0) return early(`${where} a call took a signal that is not an AbortSignal`);
  const later = (c: SignalCase) => {
    if (c.timing === 'sync-after') c.abort();
    else if (c.timing === 'microtask') queueMicrotask(c.abort);
    else if (c.timing === 'immediate') setImmediate(c.abort);
    else if (c.timing === 'timer') setTimeout(c.abort, g.int(0, 4));
  };
  later(s);
  if (second) later(second);
  const all = await settleWithin(Promise.allSettled(pending), HANG_MS);
  if (all.status === 'hang') {
    hung = true;
    return `${where} a Promise did not settle within ${HANG_MS} ms`;
  }
  const results = (all as { value: PromiseSettledResult<unknown>[] }).value;
  for (const r of results) {
    const ownGetter = (c: SignalCase | null) => c?.composite && r.status === 'rejected' && (r.reason as Error)?.message === 'aborted read';
    if (r.status === 'rejected' && !isAbortError(r.reason) && !ownGetter(s) && !ownGetter(second)) {
      return `${where} rejected with ${describeError(r.reason)} (${String((r.reason as Error)?.stack).split('\n').slice(1, 4).join(' <- ')})`;
    }
  }
  const neverAborts = (c: SignalCase | null) => c === null || c.fake || c.timing === 'never';
  if (neverAborts(s) && neverAborts(second) && results.some((r) => r.status === 'rejected' && isAbortError(r.reason))) return `${where} rejected without an abort`;
  if (s.timing === 'before' && !second && results.some((r) => r.status === 'fulfilled')) return `${where} ran a call whose signal had already aborted`;
  // Admission places and the cache lock all came back.
  for (const { layer, x, cache } of calls.layers) {
    const after = await settleWithin(layer.forwardAsync(x) as Promise<unknown>, HANG_MS);
    if (after.status === 'hang') hung = true;
    if (after.status !== 'fulfilled') return `${where} the layer admits no call afterwards (${after.status === 'hang' ? 'hang' : describeError((after as { reason: unknown }).reason)})`;
    try {
      layer.forward(x.subarray(0, 4), { cache });
    } catch (e) {
      return `${where} the cache stays locked afterwards: ${describeError(e)}`;
    }
  }
  return null;
}

describe('fuzz: hostile AbortSignals', () => {
  test('every call settles, nothing escapes, one listener per signal, layers keep admitting', async () => {
    const { result: failures, uncaught, warnings } = await watchProcess(() =>
      fuzzLoop('hostile signals', { salt: 0x401, mix: 0x9e3779b9, ms: 2500, min: 60 }, async (g) => ({ problem: await signalCase(g) })),
    );
    const listenerWarnings = warnings.filter((x) => x.startsWith('MaxListenersExceededWarning'));
    const report = { uncaught: uncaught.map(describeError), listenerWarnings, failures };
    expect(report, failures.join('\n')).toEqual({ uncaught: [], listenerWarnings: [], failures: [] });
  });
});
