// A layer forward call, validated and laid out as backend ops (nothing is written before the plan
// exists). E embedDim, H numHeads, Hkv numKvHeads, Dh headDim, B batch, S tokens per sequence.
//   q = x·Wq + bq        [B·S,  H·Dh]   = [B, S,  H,   Dh] ('bshd')
//   k = context·Wk + bk  [B·Sk, Hkv·Dh] = [B, Sk, Hkv, Dh]   (context = x unless cross-attention)
//   v = context·Wv + bv  [B·Sk, Hkv·Dh]
//   q, k ← RoPE(RMSNorm(q)), RoPE(RMSNorm(k))   in place, layers with qkNorm / rope (settings.ts)
//   a = sdpa(q, k, v)    [B·S,  H·Dh]   per head: softmax(scale·q·kᵀ + modifiers + masks)·v
//   y = a·Wo + bo        [B, S, E]; rows i ≥ seqLens[b] set to 0
// (W·s in the 'in-out' sense; 'out-in' weights were packed transposed, see weights.ts.)
//
// Q, K and V are three GEMMs into three dense scratch buffers rather than one fused GEMM: the
// fused [q | k | v] row cannot be read in place (the attention kernels take dense 'bshd' q, k and
// v, with no row stride), so fusing needs a de-interleave copy, and measured it gained nothing
// (bench/RESULTS.md).
//
// With a KVCache the same GEMMs project only the new tokens; their K and V rows are then copied
// into the cache's [B, maxLength, Hkv, Dh] storage ('bshd' with Sk = maxLength, read in place by the
// same kernels, kvLengths = the new lengths, queryOffset = the old ones). A 'float16' cache rounds
// the rows to halves as it copies them, and its plan says kvDtype 'float16'.
import type { Op } from '../backend/types.js';
import { makeSdpaPlan, type SdpaPlan } from '../plan.js';
import type { MhaForwardAsyncOptions, MhaResult } from '../types.js';
import {
  expectAllFinite, expectBoolean, expectDim, expectF32, expectOptions, optionalDim,
  rangeError, typeError,
} from '../validate.js';
import { allocateF32, expectNoOverlap, fillF32, typedArrayKind } from '../validate-buffer.js';
import { expectFixedLength, expectSignal } from '../validate-async.js';
import { expectRoomInCache, expectUsableCache } from '../validate-cache.js';
import { expectKvLengths, expectMask, expectSeqLens, resolveWindow, rowsOf } from '../validate-tensor.js';
import { cacheState, writeRows, type CacheState } from './cache.js';
import { forwardPositions, needsPass, qkPass, type LayerSettings } from './settings.js';
import { giveBack, syncScratch, takeSpare, type ScratchSet } from './scratch.js';
import type { MhaParams } from './weights.js';

const FORWARD_OPTIONS = new Set([
  'batch', 'seqLen', 'causal', 'mask', 'kvLengths', 'seqLens', 'context', 'needWeights', 'averageWeights', 'out',
  'cache', 'checkFinite', 'positions',
]);
const FORWARD_ASYNC_OPTIONS = new Set([...FORWARD_OPTIONS, 'signal']);

/** A validated forward call: the ops to run, then what finishes it on the JS thread. */
export interface LayerCall {
  /** With a cache: the projections, run before `append`; `ops` then attend and project out. */
  pre?: Op[];
  /** With a cache: copies the new K and V rows into it (on the JS thread, between pre and ops). */
  append?: () => void;
  /** With a cache: its state, locked while the call is in flight (forward until it returns, forwardAsync until it settles). */
  cache?: CacheState;
  /**
   * Async calls without a cache: takes the call's scratch set and output and fills `ops` and
   * `release`. Until then the call holds no memory but its arguments (see admission.ts).
   */
  start?: () => void;
  ops: Op[];
  signal: AbortSignal | undefined;
  finish(): Float32Array | MhaResult;
  /** Async calls: gives the call's scratch buffers (and its admission place) back once it has settled. */
  release?: () => void;
}

/** What planning needs of the layer: its parameters, itself (a cache's owner), and its admission. */
export interface LayerRef {
  readonly owner: object;
  readonly p: MhaParams;
  /** An admitted async call has settled (admission.ts). */
  settled(): void;
}

/** Validates a forward call and lays it out as ops. */
export function planForward(layer: LayerRef, x: Float32Array, options: unknown, isAsync: boolean): LayerCall {
  const known = isAsync ? FORWARD_ASYNC_OPTIONS : FORWARD_OPTIONS;
  const o = (options === undefined ? {} : expectOptions('options', options, known)) as Options;
  const signal = isAsync ? expectSignal('options.signal', o.signal) : undefined;
  if (o.checkFinite !== undefined && expectBoolean('options.checkFinite', o.checkFinite)) {
    // Only the inputs are scanned (weights were given at construction); a wrong type is left to
    // the checks below, which name it.
    if (typedArrayKind(x) === 'Float32Array') expectAllFinite('x', x);
    if (typedArrayKind(o.context) === 'Float32Array') expectAllFinite('options.context', o.context as Float32Array);
  }
  return o.cache === undefined ? planPlain(layer, x, o, isAsync, signal) : planCached(layer, x, o, isAsync, signal);
}

/** S, the tokens per sequence of x [B, S, E]: options.seqLen, or x.length / (B·E). */
function tokensPerSequence(x: unknown, seqLen: unknown, B: number, E: number): number {
  if (seqLen === undefined) return rowsOf('x', x, B * E, `batch*embedDim = ${B}*${E}`);
  const S = expectDim('options.seqLen', seqLen);
  expectF32('x', x, { B, S, E });
  return S;
}

/**
 * The three projections of q, k and v into the call's scratch, then (layers with qkNorm or rope)
 * the pass that normalizes and rotates q and k in place, in the same op list: one native job.
 * q is [B, Sq, H, Dh], k [B, Sk, Hkv, Dh]; `positions` [B·Sq] (self-attention: Sk = Sq).
 */
function projections(p: MhaParams, x: Float32Array, src: Float32Array, B: number, Sq: number, Sk: number,
  q: Float32Array, k: Float32Array, v: Float32Array, positions: Int32Array | null): Op[] {
  const ops: Op[] = [
    { kind: 'gemm', x, M: B * Sq, K: p.E, packed: p.q.packed, N: p.q.N, bias: p.q.bias, y: q },
    { kind: 'gemm', x: src, M: B * Sk, K: p.E, packed: p.k.packed, N: p.k.N, bias: p.k.bias, y: k },
    { kind: 'gemm', x: src, M: B * Sk, K: p.E, packed: p.v.packed, N: p.v.N, bias: p.v.bias, y: v },
  ];
  if (needsPass(p.s, 'q')) ops.push({ kind: 'rope', plan: qkPass(p.s, 'q', q, B, Sq, p.H, p.Dh, positions) });
  if (needsPass(p.s, 'k')) ops.push({ kind: 'rope', plan: qkPass(p.s, 'k', k, B, Sk, p.Hkv, p.Dh, positions) });
  return ops;
}

/** The plan fields the layer's settings decide: scale, softcap, window, sinks, ALiBi. */
function modifiers(s: LayerSettings, offsets: Int32Array | null, Sq: number, Sk: number) {
  const sides = s.window && offsets ? resolveWindow(s.window, offsets, Sq, Sk) : null;
  return {
    scale: s.scale, softcap: s.softcap, sinks: s.sinks, alibi: s.alibi,
    windowLeft: sides?.left, windowRight: sides?.right,
  };
}

/**
 * Row offsets of a plan without a cache: causal rows sit at their index (offset 0); windows and
 * ALiBi need positions even when not causal (row i at Sk − Sq + i, the rule of a call that is not
 * causal: with Sq = Sk, row i at i).
 */
function plainOffsets(s: LayerSettings, causal: boolean, B: number, Sq: number, Sk: number): Int32Array | null {
  if (causal) return new Int32Array(B);
  if (s.window !== null || s.alibi !== null) return new Int32Array(B).fill(Sk - Sq);
  return null;
}

/** The output projection y = a·Wo + bo. */
function outputProjection(p: MhaParams, attn: Float32Array, M: number, y: Float32Array): Op {
  return { kind: 'gemm', x: attn, M, K: p.H * p.Dh, packed: p.o.packed, N: p.o.N, bias: p.o.bias, y };
}

/** What a layer's plan points at until `bind` gives it the scratch of the call. */
const UNBOUND = new Float32Array(0);

/** A forward call's options, checked for unknown names, not yet for their values. */
type Options = MhaForwardAsyncOptions & Record<string, unknown>;

function planPlain(layer: LayerRef, x: Float32Array, o: Options, isAsync: boolean, signal: AbortSignal | undefined): LayerCall {
  const { p } = layer;
  const { E, H, Hkv, Dh } = p;
  const B = optionalDim('options.batch', o.batch, 1);
  const S = tokensPerSequence(x, o.seqLen, B, E);
  const context = o.context === undefined ? null : o.context;
  const Sk = context === null ? S : rowsOf('options.context', context, B * E, `batch*embedDim = ${B}*${E}`);
  const causal = o.causal === undefined ? false : expectBoolean('options.causal', o.causal);
  const needWeights = o.needWeights === undefined ? false : expectBoolean('options.needWeights', o.needWeights);
  const average = o.averageWeights === undefined ? false : expectBoolean('options.averageWeights', o.averageWeights);
  const seqLens = o.seqLens === undefined ? null : expectSeqLens(o.seqLens, B, S);

  const Mq = B * S;
  const Mk = B * Sk;
  const probLen = B * H * S * Sk;
  // Causal is about token positions: key j is visible from query i iff j <= i (offset 0,
  // 'top-left'). q, k, v and the attention output are scratch, which `bind` gives the plan once
  // the call has its set.
  const kvLengths = o.kvLengths === undefined ? null : expectKvLengths(o.kvLengths, B, Sk);
  const mask = o.mask === undefined ? null : expectMask(o.mask, B, H, S, Sk);
  // Cross-attention has no positions to rotate its keys by: a layer with rope attends to itself.
  if (context !== null && p.s.rope !== null) throw typeError('options.context', 'no context (the layer has rope)', context);
  const positions = p.s.rope ? forwardPositions(o.positions, B, S, null) : expectNoPositions(o.positions);
  const offsets = plainOffsets(p.s, causal, B, S, Sk);
  const plan: SdpaPlan = makeSdpaPlan({
    q: UNBOUND, k: UNBOUND, v: UNBOUND, out: UNBOUND,
    B, H, Hkv, Sq: S, Sk, D: Dh, Dv: Dh, layout: 'bshd', ...modifiers(p.s, offsets, S, Sk),
    causal, offsets, kvLengths, mask, weights: null, scores: null,
  });
  const out = o.out === undefined ? null : expectF32('options.out', o.out, { B, S, E });
  if (out) {
    expectNoOverlap('options.out', out, [
      ['x', x], ['options.context', context], ['options.mask.data', plan.mask],
      // The caller's kvLengths and seqLens (checked on copies, which the call uses).
      ['options.kvLengths', kvLengths ? (o.kvLengths as Int32Array) : null], ['options.seqLens', seqLens ? (o.seqLens as Int32Array) : null],
    ]);
  }

  if (isAsync) expectFixedLength([['x', x], ['options.context', context], ['options.mask.data', plan.mask], ['options.out', out]]);

  // Every check has passed. Sync calls reuse the thread's scratch; async calls may overlap, so
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
    call.ops = [...projections(p, x, context ?? x, B, S, Sk, q, k, v, positions), { kind: 'sdpa', plan }, outputProjection(p, attn, Mq, y)];
  };
  if (!isAsync) {
    bind(syncScratch);
  } else {
    call.start = () => {
      const set = takeSpare();
      // Set first: if bind fails (out of memory), the rejection still gives the place back.
      call.release = () => {
        giveBack(set);
        layer.settled();
      };
      bind(set);
    };
  }
  return call;
}

/** forward(x, { cache }): projections → append → attention over the cache → output projection. */
function planCached(layer: LayerRef, x: Float32Array, o: Options, isAsync: boolean, signal: AbortSignal | undefined): LayerCall {
  const { p } = layer;
  const { E, H, Hkv, Dh } = p;
  const cs = cacheState(o.cache);
  expectUsableCache(cs, o.cache, layer.owner, o);
  const cache = cs!;
  // The options were all read (once) before this point, so no getter of the caller's runs from
  // here on; the lock is taken before the cache's lengths are read and held until the call ends
  // (forward returns, forwardAsync settles), so no second call can interleave with this one.
  cache.busy = true;
  try {
    const B = optionalDim('options.batch', o.batch, cache.B);
    if (B !== cache.B) throw rangeError('options.batch', `cache.batch = ${cache.B}`, B);
    const S = tokensPerSequence(x, o.seqLen, B, E);
    const seqLens = o.seqLens === undefined ? null : expectSeqLens(o.seqLens, B, S);
    const maxL = cache.maxLength;
    const oldLens = cache.lengths.slice();
    const positions = p.s.rope ? forwardPositions(o.positions, B, S, oldLens) : expectNoPositions(o.positions);
    const newLens = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      const n = seqLens ? seqLens[b]! : S;
      expectRoomInCache(b, oldLens[b]!, n, maxL);
      newLens[b] = oldLens[b]! + n;
    }

    const M = B * S;
    const W = Hkv * Dh;
    let y: Float32Array;
    if (o.out === undefined) {
      y = allocateF32('the output (B*S*E)', M * E, 'overwritten'); // the output projection writes every row
    } else {
      y = expectF32('options.out', o.out, { B, S, E });
      expectNoOverlap('options.out', y, [
        ['x', x], ['options.seqLens', seqLens ? (o.seqLens as Int32Array) : null], ['options.cache (K)', cache.k], ['options.cache (V)', cache.v],
      ]);
    }
    expectNoOverlap('x', x, [['options.cache (K)', cache.k], ['options.cache (V)', cache.v]]);
    if (isAsync) expectFixedLength([['x', x], ['options.out', o.out === undefined ? null : y]]);

    // Every check has passed: only now a scratch set is taken.
    const set = isAsync ? takeSpare() : syncScratch;
    const release = isAsync ? () => giveBack(set) : undefined;
    const q = set.q.take(M * H * Dh);
    const k = set.k.take(M * W);
    const v = set.v.take(M * W);
    const attn = set.attn.take(M * H * Dh);
    // Key j of sequence b is visible from query row i iff j <= oldLens[b] + i and j < newLens[b]:
    // what scaledDotProductAttention makes of { layout: 'bshd', seqK: maxLength, queryOffset:
    // oldLens, kvLengths: newLens }, on the cache's own storage.
    const plan = makeSdpaPlan({
      q, k: cache.k, v: cache.v, kvDtype: cache.dtype, out: attn,
      B, H, Hkv, Sq: S, Sk: maxL, D: Dh, Dv: Dh, layout: 'bshd', ...modifiers(p.s, oldLens, S, maxL),
      causal: true, offsets: oldLens, kvLengths: newLens, mask: null, weights: null, scores: null,
    });

    const append = (): void => {
      // Sequence b's new rows [b, 0..n_b) of the 'bshd' scratch are contiguous, and so are its
      // positions [oldLens[b], newLens[b]) of the cache: one copy per sequence for K and for V.
      for (let b = 0; b < B; b++) {
        const n = newLens[b]! - oldLens[b]!;
        if (n === 0) continue;
        const src = b * S * W;
        const dst = (b * maxL + oldLens[b]!) * W;
        writeRows(cache, 'k', k.subarray(src, src + n * W), dst);
        writeRows(cache, 'v', v.subarray(src, src + n * W), dst);
      }
    };
    const finish = (): Float32Array => {
      cache.lengths.set(newLens);
      if (seqLens) zeroPaddedRows(y, null, seqLens, B, H, S, maxL, E);
      return y;
    };
    return {
      pre: projections(p, x, x, B, S, S, q, k, v, positions),
      append,
      cache,
      ops: [{ kind: 'sdpa', plan }, outputProjection(p, attn, M, y)],
      signal,
      finish,
      release,
    };
  } catch (err) {
    cache.busy = false;
    throw err;
  }
}

/** options.positions on a layer without rope: a TypeError (they would steer nothing). */
function expectNoPositions(v: unknown): null {
  if (v !== undefined) throw typeError('options.positions', 'no positions (the layer has no rope)', v);
  return null;
}

/** Rows i >= seqLens[b] are padding: output rows [E] and weights rows [Sk] of every head become 0. */
function zeroPaddedRows(
  y: Float32Array, weights: Float32Array | null, seqLens: Int32Array, B: number, H: number, S: number, Sk: number, E: number,
): void {
  for (let b = 0; b < B; b++) {
    const n = seqLens[b]!;
    if (n >= S) continue;
    fillF32(y, 0, (b * S + n) * E, (b + 1) * S * E); // y may be the caller's out: not its own fill()
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
