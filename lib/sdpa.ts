// scaledDotProductAttention: validates the call once and resolves it into an SdpaPlan that any
// backend can run. Every check happens here, before any output is written, so both backends
// reject exactly the same calls with exactly the same errors.
import { makeSdpaPlan, type Layout, type SdpaPlan } from './plan.js';
import type { SdpaAsyncOptions, SdpaResult } from './types.js';
import {
  expectAllFinite, expectBoolean, expectChoice, expectDim, expectF32, expectOptions,
  expectScale, expectSoftcap, optionalDim, product, rangeError,
} from './validate.js';
import { allocateF32, expectNoOverlap, typedArrayKind } from './validate-buffer.js';
import { expectFixedLength, expectSignal } from './validate-async.js';
import {
  expectKeyTensor, expectKvLengths, expectMask, expectMaterialized, expectPerHead, expectQueryOffset, expectWindow, resolveWindow,
} from './validate-tensor.js';

const SDPA_OPTIONS = new Set([
  'batch', 'heads', 'kvHeads', 'seqQ', 'seqK', 'headDim', 'valueDim', 'layout', 'scale', 'softcap',
  'causal', 'queryOffset', 'mask', 'kvLengths', 'window', 'sinks', 'alibi', 'out', 'weights', 'scores', 'lse',
  'checkFinite',
]);
const SDPA_ASYNC_OPTIONS = new Set([...SDPA_OPTIONS, 'signal']);
const LAYOUTS: readonly Layout[] = ['bhsd', 'bshd'];
const CAUSAL_MODES = ['bottom-right', 'top-left'] as const;

/** A validated call: the plan, and what the caller gets back. */
export interface SdpaCall {
  plan: SdpaPlan;
  /** True when the result is `{ output, weights?, scores?, lse? }` rather than `output`. */
  wantsResult: boolean;
  returnWeights: boolean;
  returnScores: boolean;
  returnLse: boolean;
  /** options.signal of an async call (read from the copy of the options, once). */
  signal: AbortSignal | undefined;
}

export function planSdpa(q: unknown, k: unknown, v: unknown, options: unknown, isAsync: boolean): SdpaCall {
  const o = expectOptions('options', options, isAsync ? SDPA_ASYNC_OPTIONS : SDPA_OPTIONS) as Partial<SdpaAsyncOptions> & Record<string, unknown>;
  const signal = isAsync ? expectSignal('options.signal', o.signal) : undefined;

  const B = optionalDim('options.batch', o.batch, 1);
  const H = expectDim('options.heads', o.heads);
  const Hkv = optionalDim('options.kvHeads', o.kvHeads, H);
  const Sq = expectDim('options.seqQ', o.seqQ);
  const Sk = optionalDim('options.seqK', o.seqK, Sq);
  const D = expectDim('options.headDim', o.headDim);
  const Dv = optionalDim('options.valueDim', o.valueDim, D);
  if (H % Hkv !== 0) throw rangeError('options.kvHeads', `a divisor of heads = ${H}`, Hkv);
  const layout = o.layout === undefined ? 'bhsd' : expectChoice('options.layout', o.layout, LAYOUTS);
  const scale = o.scale === undefined ? 1 / Math.sqrt(D) : expectScale('options.scale', o.scale);
  const softcap = o.softcap === undefined ? 0 : expectSoftcap('options.softcap', o.softcap);

  // Dims named in the caller's layout, so a length message reads `B*Sq*H*D = ...` for 'bshd'.
  const bhsd = layout === 'bhsd';
  const qt = expectF32('q', q, bhsd ? { B, H, Sq, D } : { B, Sq, H, D });
  const seqKGiven = o.seqK !== undefined;
  const kt = expectKeyTensor('k', k, bhsd ? { B, Hkv, Sk, D } : { B, Sk, Hkv, D }, B * Hkv * D, seqKGiven);
  const vt = expectKeyTensor('v', v, bhsd ? { B, Hkv, Sk, Dv } : { B, Sk, Hkv, Dv }, B * Hkv * Dv, seqKGiven);

  const kvLengths = o.kvLengths === undefined ? null : expectKvLengths(o.kvLengths, B, Sk);
  const mask = o.mask === undefined ? null : expectMask(o.mask, B, H, Sq, Sk);

  const window = o.window === undefined ? null : expectWindow(o.window);
  const sinks = o.sinks === undefined ? null : expectPerHead('options.sinks', o.sinks, H);
  const alibi = o.alibi === undefined ? null : expectPerHead('options.alibi', o.alibi, H);

  // Positions (DESIGN.md): query row i of batch b sits at offsets[b] + i. queryOffset gives them
  // (and means causal); causal aligns them ('top-left': 0; true: the last row on the last valid
  // key); a call that is not causal puts the last row on key Sk − 1. Only causal masking, windows
  // and ALiBi read positions, so without them the plan holds none.
  let causal = false;
  let offsets: Int32Array | null = null;
  if (o.queryOffset !== undefined) {
    offsets = expectQueryOffset(o.queryOffset, B);
    causal = true;
  } else if (o.causal !== undefined) {
    const c = o.causal;
    if (typeof c === 'string') expectChoice('options.causal', c, CAUSAL_MODES);
    else expectBoolean('options.causal', c);
    if (c !== false) {
      causal = true;
      offsets = new Int32Array(B);
      if (c !== 'top-left') for (let b = 0; b < B; b++) offsets[b] = (kvLengths ? kvLengths[b] : Sk) - Sq;
    }
  }
  if (offsets === null && (window !== null || alibi !== null)) offsets = new Int32Array(B).fill(Sk - Sq);
  const sides = window === null ? null : resolveWindow(window, offsets!, Sq, Sk);

  const outDims = bhsd ? { B, H, Sq, Dv } : { B, Sq, H, Dv };
  const probDims = { B, H, Sq, Sk };
  const out = o.out === undefined ? null : expectF32('options.out', o.out, outDims);
  const weightsArg = expectMaterialized('options.weights', o.weights, probDims);
  const scoresArg = expectMaterialized('options.scores', o.scores, probDims);
  const lseDims = { B, H, Sq };
  const lseArg = expectMaterialized('options.lse', o.lse, lseDims);

  const inputs = [
    ['q', qt],
    ['k', kt],
    ['v', vt],
    ['options.mask.data', mask?.data],
    // The caller's arrays (kvLengths and queryOffset were checked on copies, the plan holds those).
    ['options.kvLengths', kvLengths ? (o.kvLengths as Int32Array) : null],
    ['options.queryOffset', offsets && typedArrayKind(o.queryOffset) === 'Int32Array' ? (o.queryOffset as Int32Array) : null],
    ['options.sinks', sinks],
    ['options.alibi', alibi],
  ] as const;
  const given: Array<readonly [string, Float32Array]> = [];
  if (out) given.push(['options.out', out]);
  if (weightsArg !== true && weightsArg !== false) given.push(['options.weights', weightsArg]);
  if (scoresArg !== true && scoresArg !== false) given.push(['options.scores', scoresArg]);
  if (lseArg !== true && lseArg !== false) given.push(['options.lse', lseArg]);
  for (let i = 0; i < given.length; i++) {
    expectNoOverlap(given[i][0], given[i][1], [...inputs, ...given.slice(0, i)]);
  }

  // The float arrays the kernels read or write: q, k, v, mask data, sinks, alibi and the outputs.
  if (isAsync) expectFixedLength([...inputs.slice(0, 4), inputs[6], inputs[7], ...given]);

  // Opt-in (it reads every input once): NaN and ±Infinity otherwise flow through IEEE arithmetic.
  if (o.checkFinite !== undefined && expectBoolean('options.checkFinite', o.checkFinite)) {
    expectAllFinite('q', qt);
    expectAllFinite('k', kt);
    expectAllFinite('v', vt);
    // Not sinks: −Infinity is a sink's way of saying "none".
    if (alibi) expectAllFinite('options.alibi', alibi);
  }

  // Nothing is allocated before every check has passed. An allocation that fails is a RangeError
  // naming the buffer (B·H·Sq·Sk weights can be far larger than the inputs).
  const probLen = B * H * Sq * Sk;
  const plan = makeSdpaPlan({
    q: qt,
    k: kt,
    v: vt,
    out: out ?? allocateF32('the output', product('out', outDims)),
    B, H, Hkv, Sq, Sk, D, Dv, layout, scale, softcap, causal, offsets, kvLengths, mask, sinks, alibi,
    windowLeft: sides?.left, windowRight: sides?.right,
    weights: weightsArg === true ? allocateF32('options.weights (B*H*Sq*Sk)', probLen) : weightsArg || null,
    scores: scoresArg === true ? allocateF32('options.scores (B*H*Sq*Sk)', probLen) : scoresArg || null,
    lse: lseArg === true ? allocateF32('options.lse (B*H*Sq)', B * H * Sq) : lseArg || null,
  });
  return {
    plan,
    wantsResult: weightsArg === true || scoresArg === true || lseArg === true,
    returnWeights: weightsArg === true,
    returnScores: scoresArg === true,
    returnLse: lseArg === true,
    signal,
  };
}

/** What the caller gets back for a plan that has run. */
export function sdpaResult(call: SdpaCall): Float32Array | SdpaResult {
  const { plan } = call;
  if (!call.wantsResult) return plan.out;
  const result: SdpaResult = { output: plan.out };
  if (call.returnWeights) result.weights = plan.weights!;
  if (call.returnScores) result.scores = plan.scores!;
  if (call.returnLse) result.lse = plan.lse!;
  return result;
}
