// MultiHeadAttention: projections + scaled dot-product attention + output projection.
//   x [B, S, E] (context [B, Sk, E] for cross-attention; else Sk = S and context = x)
//   q = x·Wq + bq        [B·S,  H·Dh]   = [B, S,  H,   Dh] ('bshd')
//   k = context·Wk + bk  [B·Sk, Hkv·Dh] = [B, Sk, Hkv, Dh]
//   v = context·Wv + bv  [B·Sk, Hkv·Dh]
//   a = sdpa(q, k, v)    [B·S,  H·Dh]   per head: softmax(q·kᵀ/√Dh + masks)·v
//   y = a·Wo + bo        [B, S, E]; rows i ≥ seqLens[b] set to 0
// (W·s in the 'in-out' sense; 'out-in' weights were packed transposed, see lib/mha-weights.ts.)
//
// Q, K and V are three GEMMs into three dense scratch buffers rather than one fused GEMM. The
// fused [q | k | v] row cannot be read in place (the attention kernels take dense 'bshd' q, k and v,
// with no row stride), so fusing needs a de-interleave copy. Measured on the native AVX2 kernels,
// one thread, E = 768: B·S = 128: three GEMMs 4.5-4.8 ms, fused 4.2-4.7 ms + copy 0.07 ms (within
// noise); B·S = 4096: three GEMMs 142-153 ms, fused 152-154 ms + copy 5-6 ms. So the simpler form
// stays. Scratch buffers belong to the layer and grow to the largest call; nothing
// proportional to the input is allocated per call except the returned output (and weights).
//
// With a KVCache (lib/cache.ts) the same GEMMs project only the new tokens; their K and V rows are
// then copied into the cache's [B, maxLength, Hkv, Dh] storage ('bshd' with Sk = maxLength, read in
// place by the same sdpa kernels, kvLengths = the new lengths, queryOffset = the old ones). A
// 'float16' cache rounds the rows to halves as it copies them, and its plan says kvDtype 'float16'.
import { abortError, callerError, expectSignal, withCallerStack } from './async.js';
import type { Backend } from './backend.js';
import { KVCache, cacheState, importInto, writeRows, type CacheState } from './cache.js';
import { runOps, type Op } from './ops.js';
import { rowsOf } from './linear.js';
import { loadMhaParams, type MhaParams } from './mha-weights.js';
import type { SdpaPlan } from './plan.js';
import { expectKvLengths, expectMask } from './sdpa.js';
import type {
  KVCacheDType, KVCacheExport, KVCacheOptions, MhaForwardAsyncOptions, MhaForwardOptions, MhaResult, MultiHeadAttentionConfig, WeightLayout,
} from './types.js';
import {
  allocateF32,
  expectAllFinite,
  expectBoolean,
  expectDim,
  expectF32,
  expectKnownKeys,
  expectNoOverlap,
  expectObject,
  expectTensor,
  optionalDim,
  product,
  rangeError,
  typeError,
} from './validate.js';

const FORWARD_OPTIONS = new Set([
  'batch', 'seqLen', 'causal', 'mask', 'kvLengths', 'seqLens', 'context', 'needWeights', 'averageWeights', 'out',
  'cache', 'checkFinite',
]);
const CACHE_OPTIONS = new Set(['batch', 'maxLength', 'dtype', 'from']);
const EXPORT_KEYS = new Set(['k', 'v', 'lengths']);
/** Options that have no meaning with a cache (it decides the keys, their lengths and the causal rule). */
const NOT_WITH_CACHE = ['mask', 'kvLengths', 'context', 'needWeights', 'averageWeights'] as const;
const FORWARD_ASYNC_OPTIONS = new Set([...FORWARD_OPTIONS, 'signal']);

/** A validated forward call: the ops to run, then what finishes it on the JS thread. */
interface LayerCall {
  /** With a cache: the projections, run before `append`; `ops` then attend and project out. */
  pre?: Op[];
  /** With a cache: copies the new K and V rows into it (on the JS thread, between pre and ops). */
  append?: () => void;
  /** With a cache: its state, locked while a forwardAsync on it is in flight. */
  cache?: CacheState;
  /**
   * Async calls without a cache: takes the call's scratch set and output and fills `ops` and
   * `release`. Until then the call holds no memory but its arguments (see MAX_ACTIVE_FACTOR).
   */
  start?: () => void;
  ops: Op[];
  signal: AbortSignal | undefined;
  finish(): Float32Array | MhaResult;
  /** Async calls: gives the call's scratch buffers back to the layer once the call has settled. */
  release?: () => void;
}

/** A Float32Array reused across calls, grown when a call needs more; `name` is for the error. */
class Scratch {
  #buf: Float32Array = new Float32Array(0);
  constructor(readonly name: string) {}
  take(n: number): Float32Array {
    if (this.#buf.length < n) this.#buf = allocateF32(this.name, n);
    return this.#buf.length === n ? this.#buf : this.#buf.subarray(0, n);
  }
}

/** The intermediates of one forward call: projected q, k, v, the attention output, head weights. */
class ScratchSet {
  readonly q = new Scratch('the projected q (B*S*H*Dh)');
  readonly k = new Scratch('the projected k (B*Sk*Hkv*Dh)');
  readonly v = new Scratch('the projected v (B*Sk*Hkv*Dh)');
  readonly attn = new Scratch('the attention output (B*S*H*Dh)');
  readonly weights = new Scratch('the per-head weights (B*H*S*Sk)');
}

/**
 * Most scratch sets kept for async calls. Reusing them instead of allocating four intermediates
 * per async call halves the call's synchronous part (BERT-base layer, S = 128: 0.41 → 0.19 ms at
 * p50, measured with performance.now() around forwardAsync).
 */
const MAX_SPARE_SCRATCH = 8;

// Scratch is shared by every layer of this thread (each Scratch grows to the largest call that
// used it), so a model of L layers holds one set of intermediates for its sync calls and at most
// MAX_SPARE_SCRATCH for its async ones, not L times that. Sync calls cannot overlap: one set
// serves them all. An async call owns its set from its start until it settles.
const syncScratch = new ScratchSet();
const spareScratch: ScratchSet[] = [];

function takeSpare(): ScratchSet {
  return spareScratch.pop() ?? new ScratchSet();
}

/** An async call's scratch set, back for reuse once nothing reads or writes it any more. */
function giveBack(set: ScratchSet): void {
  if (spareScratch.length < MAX_SPARE_SCRATCH) spareScratch.push(set);
}

/** What a layer's SDPA plan points at until `bind` gives it the scratch of the call. */
const UNBOUND = new Float32Array(0);

/**
 * Async forward calls (without a cache) of one layer that hold scratch and run at once: this many
 * per pool thread; later ones wait, in order, holding only their arguments. A burst of N calls
 * would otherwise allocate N sets of intermediates up front (1.5 MiB each for a BERT-base request
 * of 128 tokens): memory that grows with the queue, and ~0.5 ms of page faults per call on the
 * event loop. Two per thread keep every thread busy while the next call is set up.
 */
const MAX_ACTIVE_FACTOR = 2;

/**
 * The attention layer of a transformer block (DESIGN.md, MultiHeadAttention). Subclassed in
 * lib/index.ts and lib/js/index.ts to bind the backend.
 */
export class MultiHeadAttentionBase {
  /** E. */
  readonly embedDim: number;
  /** H. */
  readonly numHeads: number;
  /** Hkv. */
  readonly numKvHeads: number;
  /** Dh. */
  readonly headDim: number;
  /** Whether the layer has biases. */
  readonly bias: boolean;
  readonly weightLayout: WeightLayout;
  readonly #backend: Backend;
  readonly #p: MhaParams;
  /** Async calls started and not yet settled (see MAX_ACTIVE_FACTOR). */
  #active = 0;
  /** Async calls waiting for one of them to settle, first in first out. */
  readonly #waiting: Array<() => void> = [];

  protected constructor(backend: Backend, config: MultiHeadAttentionConfig) {
    const p = loadMhaParams(backend, config);
    this.#backend = backend;
    this.#p = p;
    this.embedDim = p.E;
    this.numHeads = p.H;
    this.numKvHeads = p.Hkv;
    this.headDim = p.Dh;
    this.bias = p.bias;
    this.weightLayout = p.weightLayout;
  }

  /**
   * x [B, S, E] → [B, S, E]; `{ output, weights }` when `needWeights` (weights [B, H, Sq, Sk], or
   * [B, Sq, Sk] with `averageWeights`).
   */
  forward(x: Float32Array, options: MhaForwardOptions & { needWeights: true }): MhaResult;
  forward(x: Float32Array, options?: MhaForwardOptions & { needWeights?: false }): Float32Array;
  forward(x: Float32Array, options?: MhaForwardOptions): Float32Array | MhaResult;
  forward(x: Float32Array, options?: MhaForwardOptions): Float32Array | MhaResult {
    const call = this.#plan(x, options, false);
    if (call.pre) {
      runOps(this.#backend, call.pre);
      call.append!();
    }
    runOps(this.#backend, call.ops);
    return call.finish();
  }

  /**
   * {@link forward} computed off the event loop (on the native pool; the js backend runs it on a
   * later turn of the loop). Each call gets its own intermediate buffers, so concurrent calls on
   * one layer are safe. Inputs and `out` must not be written until the Promise settles.
   */
  forwardAsync(x: Float32Array, options: MhaForwardAsyncOptions & { needWeights: true }): Promise<MhaResult>;
  forwardAsync(x: Float32Array, options?: MhaForwardAsyncOptions & { needWeights?: false }): Promise<Float32Array>;
  forwardAsync(x: Float32Array, options?: MhaForwardAsyncOptions): Promise<Float32Array | MhaResult>;
  forwardAsync(x: Float32Array, options?: MhaForwardAsyncOptions): Promise<Float32Array | MhaResult> {
    const call = this.#plan(x, options, true);
    const caller = callerError();
    const backend = this.#backend;
    if (!call.pre) {
      return this.#admit(call.signal)
        .then(() => {
          call.start!();
          return backend.runAsync(call.ops, call.signal);
        })
        .then(
          () => {
            // finally: a throwing finish must still give the place and scratch back.
            try {
              return call.finish();
            } finally {
              call.release!();
            }
          },
          (err: unknown) => {
            call.release?.();
            return Promise.reject(withCallerStack(err, caller));
          },
        );
    }
    // With a cache: projections on the pool, the append on the JS thread, then attention and the
    // output projection on the pool. The appended rows sit past lengths[b] (invisible) until finish()
    // advances the lengths, so an abort or error at any point changes nothing observable. The cache
    // is locked until the Promise settles.
    const cache = call.cache!;
    cache.busy = true;
    return backend.runAsync(call.pre, call.signal)
      .then(() => {
        call.append!();
        return backend.runAsync(call.ops, call.signal);
      })
      .then(
        () => {
          cache.busy = false;
          try {
            return call.finish();
          } finally {
            call.release?.();
          }
        },
        (err: unknown) => {
          cache.busy = false;
          call.release?.();
          return Promise.reject(withCallerStack(err, caller));
        },
      );
  }

  /**
   * A KV cache for incremental decoding with this layer (DESIGN.md, KVCache): K and V storage for
   * `batch` sequences of up to `maxLength` tokens, preallocated ([B, maxLength, Hkv, Dh] each,
   * `byteLength` = 2·B·maxLength·Hkv·Dh·4, or ·2 with `dtype: 'float16'`, which rounds K and V to
   * halves and still attends in fp32). Pass it as `forward(x, { cache })`. `from` restores the
   * contents of `cache.export()` (k and v [B, Hkv, L, Dh], lengths [B], L = max(lengths) ≤ maxLength),
   * into either dtype.
   * @throws TypeError for an unknown option name or a wrong kind of value.
   * @throws RangeError for a bad dim, a `dtype` other than 'float32' or 'float16', or a `from` whose
   * sizes or lengths do not fit.
   */
  createCache(options: KVCacheOptions): KVCache {
    const { Hkv, Dh } = this.#p;
    const o = expectObject('options', options) as Partial<KVCacheOptions> & Record<string, unknown>;
    expectKnownKeys('options', o, CACHE_OPTIONS);
    let dtype: KVCacheDType = 'float32';
    if (o.dtype !== undefined) {
      if (typeof o.dtype !== 'string') throw typeError('options.dtype', "'float32' or 'float16'", o.dtype);
      if (o.dtype !== 'float32' && o.dtype !== 'float16') throw rangeError('options.dtype', "'float32' or 'float16'", o.dtype);
      dtype = o.dtype;
    }
    const maxLength = expectDim('options.maxLength', o.maxLength);
    let from: KVCacheExport | null = null;
    let B: number;
    let L = 0;
    if (o.from === undefined) {
      B = optionalDim('options.batch', o.batch, 1);
    } else {
      const f = expectObject('options.from', o.from) as Partial<KVCacheExport> & Record<string, unknown>;
      expectKnownKeys('options.from', f, EXPORT_KEYS);
      if (!(f.lengths instanceof Int32Array)) throw typeError('options.from.lengths', 'Int32Array', f.lengths);
      B = optionalDim('options.batch', o.batch, f.lengths.length);
      const lengths = expectTensor('options.from.lengths', f.lengths, Int32Array, { B });
      for (let b = 0; b < B; b++) {
        const n = lengths[b]!;
        if (n < 0 || n > maxLength) throw rangeError(`options.from.lengths[${b}]`, `an integer in [0, maxLength = ${maxLength}]`, n);
        if (n > L) L = n;
      }
      const k = expectF32('options.from.k', f.k, { B, Hkv, L, Dh });
      const v = expectF32('options.from.v', f.v, { B, Hkv, L, Dh });
      from = { k, v, lengths };
    }
    product('options', { B, maxLength, Hkv, Dh, two: 2 });
    const cache = new KVCache(this, B, maxLength, Hkv, Dh, dtype);
    if (from) importInto(cache, from, L);
    return cache;
  }

  /**
   * Resolves when the call may take its scratch and run (at once while fewer than
   * MAX_ACTIVE_FACTOR × threads calls are active); the call then counts as active until `#settled`.
   * An abort while waiting rejects at once with an AbortError and gives the place up.
   */
  #admit(signal: AbortSignal | undefined): Promise<void> {
    // Only when nobody waits: a free place goes to the oldest waiter first (first in, first out).
    if (this.#waiting.length === 0 && this.#active < this.#limit()) {
      this.#active++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const go = (): void => {
        signal?.removeEventListener('abort', onAbort);
        this.#active++;
        resolve();
      };
      const onAbort = (): void => {
        const i = this.#waiting.indexOf(go);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(abortError(signal!));
      };
      if (signal?.aborted) return reject(abortError(signal));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(go);
    });
  }

  /**
   * An admitted call has settled: its place goes to the next waiting call, and to more than one
   * when setThreads raised the limit meanwhile.
   */
  #settled(): void {
    this.#active--;
    while (this.#waiting.length > 0 && this.#active < this.#limit()) this.#waiting.shift()!();
  }

  /** Async calls that may run at once on this layer (read per call: setThreads may change it). */
  #limit(): number {
    return MAX_ACTIVE_FACTOR * this.#backend.threads();
  }

  /** Validates a forward call and lays it out as ops. Nothing is written before it returns. */
  #plan(x: Float32Array, options: MhaForwardAsyncOptions | undefined, isAsync: boolean): LayerCall {
    const { E, H, Hkv, Dh, q: pq, k: pk, v: pv, o: po } = this.#p;
    const o = (options === undefined ? {} : expectObject('options', options)) as MhaForwardAsyncOptions & Record<string, unknown>;
    expectKnownKeys('options', o, isAsync ? FORWARD_ASYNC_OPTIONS : FORWARD_OPTIONS);
    const signal = isAsync ? expectSignal('options.signal', o.signal) : undefined;
    if (o.checkFinite !== undefined && expectBoolean('options.checkFinite', o.checkFinite)) {
      // Only the inputs are scanned (weights were given at construction); a wrong type is left to
      // the checks below, which name it.
      if (x instanceof Float32Array) expectAllFinite('x', x);
      if (o.context instanceof Float32Array) expectAllFinite('options.context', o.context);
    }
    if (o.cache !== undefined) return this.#planCached(x, o, isAsync, signal);
    const B = optionalDim('options.batch', o.batch, 1);
    let S: number;
    if (o.seqLen === undefined) {
      S = rowsOf('x', x, B * E, `batch*embedDim = ${B}*${E}`);
    } else {
      S = expectDim('options.seqLen', o.seqLen);
      expectF32('x', x, { B, S, E });
    }
    const context = o.context === undefined ? null : o.context;
    const Sk = context === null ? S : rowsOf('options.context', context, B * E, `batch*embedDim = ${B}*${E}`);
    const causal = o.causal === undefined ? false : expectBoolean('options.causal', o.causal);
    const needWeights = o.needWeights === undefined ? false : expectBoolean('options.needWeights', o.needWeights);
    const average = o.averageWeights === undefined ? false : expectBoolean('options.averageWeights', o.averageWeights);
    const seqLens = o.seqLens === undefined ? null : expectSeqLens(o.seqLens, B, S);

    const Mq = B * S;
    const Mk = B * Sk;
    const probLen = B * H * S * Sk;
    // mask and kvLengths are checked by scaledDotProductAttention's own functions (same names and
    // messages). Causal is about token positions: key j is visible from query i iff j <= i
    // (offset 0, 'top-left'). q, k, v and the attention output are the layer's scratch, which
    // `bind` gives the plan once the call has its set.
    const kvLengths = o.kvLengths === undefined ? null : expectKvLengths(o.kvLengths, B, Sk);
    const mask = o.mask === undefined ? null : expectMask(o.mask, B, H, S, Sk);
    const plan: SdpaPlan = {
      q: UNBOUND, k: UNBOUND, v: UNBOUND, out: UNBOUND,
      B, H, Hkv, Sq: S, Sk, D: Dh, Dv: Dh, layout: 'bshd', scale: 1 / Math.sqrt(Dh), softcap: 0,
      causal, offsets: causal ? new Int32Array(B) : null, kvLengths,
      mask: mask ? mask.data : null,
      maskDims: mask ? mask.dims : [1, 1, 1, 1],
      maskStrides: mask ? mask.strides : [0, 0, 0, 0],
      weights: null, scores: null,
    };
    const out = o.out === undefined ? null : expectF32('options.out', o.out, { B, S, E });
    if (out) {
      expectNoOverlap('options.out', out, [
        ['x', x], ['options.context', context], ['options.mask.data', plan.mask],
        ['options.kvLengths', plan.kvLengths], ['options.seqLens', seqLens],
      ]);
    }

    // Every check has passed. Sync calls reuse the layer's scratch; async calls may overlap, so
    // each takes its own when it starts (`start`), and allocates its output then too: a failure to
    // allocate then rejects the call (RangeError) instead of throwing.
    let y = out ?? new Float32Array(0);
    let averaged: Float32Array | null = null;
    const call: LayerCall = {
      ops: [],
      signal,
      finish: () => {
        if (seqLens) zeroPaddedRows(y, plan.weights, seqLens, B, H, S, Sk, E);
        if (!needWeights) return y;
        return { output: y, weights: averaged ? averageHeads(plan.weights!, B, H, S * Sk, averaged) : plan.weights! };
      },
    };
    const bind = (set: ScratchSet): void => {
      const q = set.q.take(Mq * H * Dh);
      const k = set.k.take(Mk * Hkv * Dh);
      const v = set.v.take(Mk * Hkv * Dh);
      const attn = set.attn.take(Mq * H * Dh);
      plan.q = q;
      plan.k = k;
      plan.v = v;
      plan.out = attn;
      if (needWeights) plan.weights = average ? set.weights.take(probLen) : allocateF32('the weights (B*H*S*Sk)', probLen);
      if (needWeights && average) averaged = allocateF32('the averaged weights (B*S*Sk)', B * S * Sk);
      if (!out) y = allocateF32('the output (B*S*E)', Mq * E, 'overwritten'); // the output projection writes every row
      const src = context ?? x;
      call.ops = [
        { kind: 'gemm', x, M: Mq, K: E, packed: pq.packed, N: pq.N, bias: pq.bias, y: q },
        { kind: 'gemm', x: src, M: Mk, K: E, packed: pk.packed, N: pk.N, bias: pk.bias, y: k },
        { kind: 'gemm', x: src, M: Mk, K: E, packed: pv.packed, N: pv.N, bias: pv.bias, y: v },
        { kind: 'sdpa', plan },
        { kind: 'gemm', x: attn, M: Mq, K: H * Dh, packed: po.packed, N: po.N, bias: po.bias, y },
      ];
    };
    if (!isAsync) {
      bind(syncScratch);
    } else {
      call.start = () => {
        const set = takeSpare();
        // Set first: if bind fails (out of memory), the rejection still gives the place back.
        call.release = () => {
          giveBack(set);
          this.#settled();
        };
        bind(set);
      };
    }
    return call;
  }

  /** forward(x, { cache }): validates, then projections → append → attention over the cache → out. */
  #planCached(
    x: Float32Array, o: MhaForwardAsyncOptions & Record<string, unknown>, isAsync: boolean, signal: AbortSignal | undefined,
  ): LayerCall {
    const { E, H, Hkv, Dh, q: pq, k: pk, v: pv, o: po } = this.#p;
    const cs = cacheState(o.cache);
    if (!cs) throw typeError('options.cache', 'a KVCache (from layer.createCache)', o.cache);
    if (cs.owner !== this) {
      throw new TypeError('Expected a KVCache created by this layer for options.cache but received one created by another layer');
    }
    if (cs.busy) throw new Error('Cannot use a KVCache while a forwardAsync on it is in flight (options.cache)');
    for (const name of NOT_WITH_CACHE) {
      if (o[name] !== undefined) throw new TypeError(`options.${name} cannot be combined with options.cache`);
    }
    if (o.causal !== undefined && expectBoolean('options.causal', o.causal) !== true) {
      throw rangeError('options.causal', 'true (or omitted) with options.cache (decoding is causal)', o.causal);
    }
    const B = optionalDim('options.batch', o.batch, cs.B);
    if (B !== cs.B) throw rangeError('options.batch', `cache.batch = ${cs.B}`, B);
    let S: number;
    if (o.seqLen === undefined) {
      S = rowsOf('x', x, B * E, `batch*embedDim = ${B}*${E}`);
    } else {
      S = expectDim('options.seqLen', o.seqLen);
      expectF32('x', x, { B, S, E });
    }
    const seqLens = o.seqLens === undefined ? null : expectSeqLens(o.seqLens, B, S);
    const maxL = cs.maxLength;
    const oldLens = cs.lengths.slice();
    const newLens = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      const n = seqLens ? seqLens[b]! : S;
      if (oldLens[b]! + n > maxL) {
        throw new RangeError(
          `Expected at most maxLength = ${maxL} tokens in the cache for options.cache but sequence ${b} would hold ` +
          `lengths[${b}] + ${n} = ${oldLens[b]! + n}`,
        );
      }
      newLens[b] = oldLens[b]! + n;
    }

    const M = B * S;
    const W = Hkv * Dh;
    const set = isAsync ? takeSpare() : syncScratch;
    const release = isAsync ? () => giveBack(set) : undefined;
    const q = set.q.take(M * H * Dh);
    const k = set.k.take(M * W);
    const v = set.v.take(M * W);
    const attn = set.attn.take(M * H * Dh);
    // Key j of sequence b is visible from query row i iff j <= oldLens[b] + i and j < newLens[b].
    // The plan is built here rather than by planSdpa (whose k and v are the public Float32Arrays):
    // every value in it comes from this layer and its cache, already checked. It is what planSdpa
    // makes of { layout: 'bshd', seqK: maxLength, queryOffset: oldLens, kvLengths: newLens, out }.
    const plan: SdpaPlan = {
      q, k: cs.k, v: cs.v, kvDtype: cs.dtype, out: attn,
      B, H, Hkv, Sq: S, Sk: maxL, D: Dh, Dv: Dh, layout: 'bshd', scale: 1 / Math.sqrt(Dh), softcap: 0,
      causal: true, offsets: oldLens, kvLengths: newLens,
      mask: null, maskDims: [1, 1, 1, 1], maskStrides: [0, 0, 0, 0], weights: null, scores: null,
    };

    let y: Float32Array;
    if (o.out === undefined) {
      y = allocateF32('the output (B*S*E)', M * E, 'overwritten'); // the output projection writes every row
    } else {
      y = expectF32('options.out', o.out, { B, S, E });
      expectNoOverlap('options.out', y, [['x', x], ['options.seqLens', seqLens], ['options.cache (K)', cs.k], ['options.cache (V)', cs.v]]);
    }
    expectNoOverlap('x', x, [['options.cache (K)', cs.k], ['options.cache (V)', cs.v]]);

    // Every check has passed.
    const pre: Op[] = [
      { kind: 'gemm', x, M, K: E, packed: pq.packed, N: pq.N, bias: pq.bias, y: q },
      { kind: 'gemm', x, M, K: E, packed: pk.packed, N: pk.N, bias: pk.bias, y: k },
      { kind: 'gemm', x, M, K: E, packed: pv.packed, N: pv.N, bias: pv.bias, y: v },
    ];
    const ops: Op[] = [
      { kind: 'sdpa', plan },
      { kind: 'gemm', x: attn, M, K: H * Dh, packed: po.packed, N: po.N, bias: po.bias, y },
    ];
    const append = (): void => {
      // Sequence b's new rows [b, 0..n_b) of the 'bshd' scratch are contiguous, and so are its
      // positions [oldLens[b], newLens[b]) of the cache: one copy per sequence for K and for V.
      for (let b = 0; b < B; b++) {
        const n = newLens[b]! - oldLens[b]!;
        if (n === 0) continue;
        const src = b * S * W;
        const dst = (b * maxL + oldLens[b]!) * W;
        writeRows(cs, 'k', k.subarray(src, src + n * W), dst);
        writeRows(cs, 'v', v.subarray(src, src + n * W), dst);
      }
    };
    const finish = (): Float32Array => {
      cs.lengths.set(newLens);
      if (seqLens) zeroPaddedRows(y, null, seqLens, B, H, S, maxL, E);
      return y;
    };
    return { pre, append, cache: cs, ops, signal, finish, release };
  }
}

function expectSeqLens(v: unknown, B: number, S: number): Int32Array {
  if (!(v instanceof Int32Array)) throw typeError('options.seqLens', 'Int32Array', v);
  const lens = expectTensor('options.seqLens', v, Int32Array, { B });
  for (let b = 0; b < B; b++) {
    if (lens[b]! < 0 || lens[b]! > S) throw rangeError(`options.seqLens[${b}]`, `an integer in [0, seqLen = ${S}]`, lens[b]);
  }
  return lens;
}

/** Rows i >= seqLens[b] are padding: output rows [E] and weights rows [Sk] of every head become 0. */
function zeroPaddedRows(
  y: Float32Array, weights: Float32Array | null, seqLens: Int32Array, B: number, H: number, S: number, Sk: number, E: number,
): void {
  for (let b = 0; b < B; b++) {
    const n = seqLens[b]!;
    if (n >= S) continue;
    y.fill(0, (b * S + n) * E, (b + 1) * S * E);
    if (weights) for (let h = 0; h < H; h++) weights.fill(0, ((b * H + h) * S + n) * Sk, (b * H + h + 1) * S * Sk);
  }
}

/** [B, H, R] → avg [B, R], the mean over heads (R = Sq·Sk), summed in double. */
function averageHeads(w: Float32Array, B: number, H: number, R: number, avg: Float32Array): Float32Array {
  const acc = new Float64Array(R);
  for (let b = 0; b < B; b++) {
    acc.fill(0);
    for (let h = 0; h < H; h++) {
      const base = (b * H + h) * R;
      for (let r = 0; r < R; r++) acc[r] = acc[r]! + w[base + r]!;
    }
    for (let r = 0; r < R; r++) avg[b * R + r] = acc[r]! / H;
  }
  return avg;
}
