// Fuzzing the public API: thousands of random calls to scaledDotProductAttention,
// linear, Linear and MultiHeadAttention (and their Async twins) with wrong types, bad and
// overflowing dims, detached buffers, views at odd offsets, SharedArrayBuffer and resizable
// backings, missing and extra options, overlapping outputs and masks that do not broadcast.
// Every call either succeeds and matches the js backend, or throws a TypeError/RangeError naming
// the argument, with `out` (and weights/scores) untouched; the process never dies.
// Reproducible: QKV_FUZZ_SEED=<seed> replays a run (QKV_FUZZ_ONLY=<index> one call of it);
// QKV_FUZZ_SCALE multiplies the time budget. A failure prints the seed, the index and the call.
// Callers that lie have fuzzers of their own: fuzz-hostile-options (getters and Proxies that change
// their answer), fuzz-lying-arrays (typed-array subclasses and Proxies), fuzz-shared-memory (buffers a
// worker writes during calls), fuzz-signals (hostile AbortSignals), fuzz-float-range (scale and
// softcap at float32's limits) and fuzz-allocation (allocation failure under ulimit -v).
import { describe, expect, test } from 'vitest';
import * as N from '../lib/index.js';
import * as J from '../lib/js.js';
import {
  Gen, describeError, detached, firstMismatch, fuzzLoop, makeF32, namesArgument, sameBits, show, snapshot,
} from './helpers.js';

type Fn = (...args: unknown[]) => unknown;

/** One generated call, run the same way on both backends. */
interface Case {
  /** Mutations applied to a valid call (empty: the call is valid). */
  tags: string[];
  /** A mutation that makes the call invalid whatever else was picked. */
  mustThrow: boolean;
  /** Inputs hold NaN/Infinity: results are not compared, only "no crash, no error". */
  nonFinite: boolean;
  /** Runs the call on a backend; returns the arrays to compare (or throws). */
  run: (api: Api, isAsync: boolean) => unknown;
  /** Caller-provided output buffers, which must be untouched on error. */
  outputs: () => Float32Array[];
  describe: () => string;
}

interface Api {
  sdpa: Fn;
  sdpaAsync: Fn;
  linear: Fn;
  linearAsync: Fn;
  newLinear: (c: unknown) => { forward: Fn; forwardAsync: Fn };
  newMha: (c: unknown) => { forward: Fn; forwardAsync: Fn };
}

const native: Api = {
  sdpa: N.scaledDotProductAttention as Fn,
  sdpaAsync: N.scaledDotProductAttentionAsync as Fn,
  linear: N.linear as Fn,
  linearAsync: N.linearAsync as Fn,
  newLinear: (c) => new N.Linear(c as never) as never,
  newMha: (c) => new N.MultiHeadAttention(c as never) as never,
};
const js: Api = {
  sdpa: J.scaledDotProductAttention as Fn,
  sdpaAsync: J.scaledDotProductAttentionAsync as Fn,
  linear: J.linear as Fn,
  linearAsync: J.linearAsync as Fn,
  newLinear: (c) => new J.Linear(c as never) as never,
  newMha: (c) => new J.MultiHeadAttention(c as never) as never,
};

const BAD_DIMS: readonly unknown[] = [
  0, -1, -3, NaN, 2.5, 1e-9, Infinity, -Infinity, 2 ** 31, 2 ** 31 - 1, 2 ** 32 + 1, 2 ** 53, 2 ** 53 + 2, 1e300,
  '2', null, true, {}, [2], 2n,
];
const BAD_TENSORS = (g: Gen, n: number): unknown[] => [
  new Float64Array(n), Array.from({ length: n }, () => 0), new Uint8Array(n), new Int32Array(n), null, undefined, {},
  'q', 3, detached(n), makeF32(Math.max(0, n - 1), 'plain'), makeF32(n + 1, 'plain'), new Float32Array(0),
  new DataView(new ArrayBuffer(4 * n)), g.f32(n * 2 + 3),
];
const SENTINEL = 12345.5;

function withSentinel(a: Float32Array): Float32Array {
  a.fill(SENTINEL);
  return a;
}

/** An input of n floats and an `out` of outLen floats over one buffer, `out` starting `shift` floats in. */
function overlapping(g: Gen, n: number, outLen: number): { input: Float32Array; out: Float32Array; shift: number } {
  const shift = g.int(0, n - 1);
  const buf = new ArrayBuffer(4 * (n + outLen));
  const input = new Float32Array(buf, 0, n);
  input.set(g.f32(n, 'plain'));
  return { input, out: withSentinel(new Float32Array(buf, 4 * shift, outLen)), shift };
}

function injectNonFinite(g: Gen, a: Float32Array): void {
  if (a.byteLength === 0) return;
  a[g.int(0, a.length - 1)] = g.pick([NaN, Infinity, -Infinity]);
}

// -------------------------------------------------------------------------------------------------
// scaledDotProductAttention

function genSdpa(g: Gen): Case {
  const Hkv = g.int(1, 3);
  const H = Hkv * g.int(1, 3);
  const B = g.int(1, 3);
  const Sq = g.int(1, 5);
  const Sk = g.int(1, 6);
  const D = g.int(1, 9);
  const Dv = g.chance(0.5) ? D : g.int(1, 9);
  const layout = g.pick(['bhsd', 'bshd', undefined] as const);
  const o: Record<string, unknown> = { heads: H, seqQ: Sq, headDim: D };
  if (B > 1 || g.chance(0.3)) o.batch = B;
  if (Hkv !== H || g.chance(0.3)) o.kvHeads = Hkv;
  if (Sk !== Sq || g.chance(0.3)) o.seqK = Sk;
  if (Dv !== D || g.chance(0.3)) o.valueDim = Dv;
  if (layout) o.layout = layout;
  const qLen = B * H * Sq * D, kLen = B * Hkv * Sk * D, vLen = B * Hkv * Sk * Dv;
  const outLen = B * H * Sq * Dv, probLen = B * H * Sq * Sk;
  let q: unknown = g.f32(qLen);
  let k: unknown = g.f32(kLen);
  let v: unknown = g.f32(vLen);
  if (g.chance(0.3)) o.causal = g.pick([true, false, 'top-left', 'bottom-right']);
  else if (g.chance(0.1)) o.queryOffset = g.chance(0.5) ? g.int(-3, 8) : Int32Array.from({ length: B }, () => g.int(-3, 8));
  if (g.chance(0.25)) {
    const full = [B, H, Sq, Sk];
    const rank = g.int(1, 4);
    const dims = full.slice(4 - rank).map((d) => (g.chance(0.5) ? d : 1));
    const n = dims.reduce((a, b) => a * b, 1);
    const data = g.chance(0.5)
      ? Float32Array.from({ length: n }, () => (g.chance(0.2) ? -Infinity : g.r() - 0.5))
      : Uint8Array.from({ length: n }, () => (g.chance(0.7) ? 1 : 0));
    o.mask = { data, dims };
  }
  if (g.chance(0.2)) o.kvLengths = Int32Array.from({ length: B }, () => g.int(0, Sk));
  if (g.chance(0.2)) o.scale = g.r() * 2 - 0.5;
  if (g.chance(0.1)) o.softcap = g.r() * 5;
  if (g.chance(0.2)) o.out = withSentinel(makeF32(outLen, g.pick(['plain', 'offset4', 'shared', 'resizable'])));
  if (g.chance(0.15)) o.weights = g.chance(0.5) ? true : withSentinel(makeF32(probLen, 'plain'));
  if (g.chance(0.1)) o.scores = g.chance(0.5) ? true : withSentinel(makeF32(probLen, 'offset12'));

  const tags: string[] = [];
  let mustThrow = false;
  let nonFinite = false;
  let options: unknown = o;
  const mutations = g.chance(0.3) ? 0 : g.int(1, 2);
  for (let m = 0; m < mutations; m++) {
    const kind = g.int(0, 16);
    switch (kind) {
      case 0: {
        const key = g.pick(['batch', 'heads', 'kvHeads', 'seqQ', 'seqK', 'headDim', 'valueDim']);
        const val = g.pick(BAD_DIMS);
        o[key] = val;
        tags.push(`${key}=${show(val)}`);
        mustThrow = true;
        break;
      }
      case 1: {
        // Products beyond 2^31 and 2^53 (each dim alone is valid).
        const big = g.pick([
          { heads: 2 ** 16, seqQ: 2 ** 16 },
          { batch: 2 ** 31 - 1, heads: 2 ** 31 - 1, kvHeads: 1 },
          { heads: 2 ** 20, seqQ: 2 ** 20, headDim: 2 ** 20, kvHeads: 1 },
          { seqK: 2 ** 31 - 1, valueDim: 2 ** 31 - 1 },
          { batch: 2 ** 30, heads: 2 ** 30, seqQ: 2 ** 30, headDim: 2 ** 30, kvHeads: 2 ** 30 },
        ]);
        Object.assign(o, big);
        tags.push(`big ${show(big)}`);
        mustThrow = true;
        break;
      }
      case 2: {
        const which = g.int(0, 2);
        const bad = g.pick(BAD_TENSORS(g, [qLen, kLen, vLen][which]));
        if (which === 0) q = bad;
        else if (which === 1) k = bad;
        else v = bad;
        tags.push(`${'qkv'[which]}=${show(bad)}`);
        mustThrow = true;
        break;
      }
      case 3:
        options = g.pick([null, undefined, 5, 'opts', [], new Float32Array(2), () => 0]);
        tags.push(`options=${show(options)}`);
        mustThrow = true;
        break;
      case 4: {
        const key = g.pick(['casual', 'head', 'seqLen', 'constructor', 'toString', 'signal', 'Heads', 'mask ']);
        o[key] = 1;
        tags.push(`extra ${key}`);
        mustThrow = true; // 'signal' is unknown to the sync form and not an AbortSignal for the async one
        break;
      }
      case 5: {
        const key = g.pick(['heads', 'seqQ', 'headDim']);
        delete o[key];
        tags.push(`missing ${key}`);
        mustThrow = true;
        break;
      }
      case 6: {
        // `out` (or weights) sharing memory with an input or with each other.
        const target = g.pick(['q', 'k', 'v', 'weights'] as const);
        const [len, set] =
          target === 'q' ? [qLen, (a: Float32Array) => (q = a)] :
          target === 'k' ? [kLen, (a: Float32Array) => (k = a)] :
          target === 'v' ? [vLen, (a: Float32Array) => (v = a)] :
          [probLen, (a: Float32Array) => (o.weights = a)];
        const { input, out, shift } = overlapping(g, len, outLen);
        set(input);
        o.out = out;
        if (target === 'weights') input.fill(SENTINEL);
        tags.push(`out overlaps ${target} at ${shift}`);
        mustThrow = true;
        break;
      }
      case 7: {
        o.out = g.pick([
          makeF32(outLen + 1, 'plain'), makeF32(outLen - 1, 'plain'), new Float64Array(outLen), detached(outLen), [], 0,
          null,
        ]);
        tags.push(`out=${show(o.out)}`);
        mustThrow = true;
        break;
      }
      case 8: {
        const full = [B, H, Sq, Sk];
        const axis = g.int(0, 3);
        const dims = [1, 1, 1, 1];
        dims[axis] = full[axis] + 1;
        const variants: unknown[] = [
          { data: new Float32Array(dims.reduce((a, b) => a * b, 1)), dims },
          { data: new Float64Array(Sk), dims: [Sk] },
          { data: new Int8Array(Sk), dims: [Sk] },
          { data: new Float32Array(Sk + 1), dims: [Sk] },
          { data: new Float32Array(Sk), dims: Sk },
          { data: new Float32Array(Sk), dims: [] },
          { data: new Float32Array(Sk), dims: [1, 1, 1, 1, Sk] },
          { data: new Float32Array(Sk), dims: [Sk], extra: 1 },
          { data: new Float32Array(Sk), dims: [Sk + 0.5] },
          { data: detached(Sk), dims: [Sk] },
          { dims: [Sk] },
          new Float32Array(Sk),
        ];
        o.mask = g.pick(variants);
        tags.push(`mask=${show(o.mask)}`);
        mustThrow = true;
        break;
      }
      case 9:
        o.kvLengths = g.pick([
          Int32Array.from({ length: B }, (_, b) => (b === B - 1 ? g.pick([-1, Sk + 1, 2 ** 31 - 1, -(2 ** 31)]) : 0)),
          new Uint32Array(B), new Float32Array(B), new Int32Array(B + 1), Array(B).fill(0), 3,
        ]);
        tags.push(`kvLengths=${show(o.kvLengths)}`);
        mustThrow = true;
        break;
      case 10:
        delete o.causal;
        o.queryOffset = g.pick([2.5, NaN, 2 ** 31, -(2 ** 31) - 1, 'x', new Int32Array(B + 1), new Uint32Array(B), null]);
        tags.push(`queryOffset=${show(o.queryOffset)}`);
        mustThrow = true;
        break;
      case 11: {
        const key = g.pick(['scale', 'softcap']);
        o[key] = g.pick([NaN, Infinity, -Infinity, '1', null, ...(key === 'softcap' ? [-1] : [])]);
        tags.push(`${key}=${show(o[key])}`);
        mustThrow = true;
        break;
      }
      case 12:
        delete o.queryOffset;
        o.causal = g.pick(['yes', 1, 0, null, 'bottom_right']);
        tags.push(`causal=${show(o.causal)}`);
        mustThrow = true;
        break;
      case 13:
        o.layout = g.pick(['BHSD', 'bsdh', 0, null, '']);
        tags.push(`layout=${show(o.layout)}`);
        mustThrow = true;
        break;
      case 14: {
        const key = g.pick(['weights', 'scores']);
        o[key] = g.pick([1, 'true', new Float64Array(probLen), makeF32(probLen + 1, 'plain'), detached(probLen), null]);
        tags.push(`${key}=${show(o[key])}`);
        mustThrow = true;
        break;
      }
      case 15: {
        for (const t of [q, k, v]) if (t instanceof Float32Array && g.chance(0.6)) injectNonFinite(g, t);
        tags.push('non-finite data');
        nonFinite = true;
        break;
      }
      default: {
        // Same call over other backings (all valid): must still succeed.
        if (tags.some((t) => t.startsWith('out overlaps'))) break;
        if (q instanceof Float32Array && q.byteLength === 4 * qLen) q = makeF32(qLen, 'shared-offset').fill(0.25);
        if (k instanceof Float32Array && k.byteLength === 4 * kLen) {
          const c = makeF32(kLen, 'offset12');
          c.set(k);
          k = c;
        }
        tags.push('rebacked q,k');
      }
    }
  }
  const outputs = () =>
    [o.out, o.weights, o.scores].filter((a): a is Float32Array => a instanceof Float32Array && a.byteLength > 0);
  return {
    tags,
    mustThrow,
    nonFinite,
    outputs,
    run: (api, isAsync) => (isAsync ? api.sdpaAsync : api.sdpa)(q, k, v, options),
    describe: () => `scaledDotProductAttention(${show(q)}, ${show(k)}, ${show(v)}, ${show(options)})`,
  };
}

// -------------------------------------------------------------------------------------------------
// linear and Linear

function genLinear(g: Gen, asClass: boolean): Case {
  const K = g.int(1, 12);
  const Nf = g.int(1, 12);
  const M = g.int(1, 5);
  const outIn = g.chance(0.6);
  let x: unknown = g.f32(M * K);
  let weight: unknown = g.f32(Nf * K);
  let bias: unknown = g.chance(0.5) ? g.f32(Nf) : g.pick([undefined, null]);
  const o: Record<string, unknown> = { inFeatures: K };
  if (g.chance(0.5)) o.outFeatures = Nf;
  if (!outIn || g.chance(0.3)) o.weightLayout = outIn ? 'out-in' : 'in-out';
  const fwd: Record<string, unknown> = {};
  const outTarget = asClass ? fwd : o;
  if (g.chance(0.3)) outTarget.out = withSentinel(makeF32(M * Nf, g.pick(['plain', 'offset4', 'shared'])));
  const tags: string[] = [];
  let mustThrow = false;
  let nonFinite = false;
  let form = g.int(0, 1); // 0: linear(x, w, bias, options), 1: linear(x, w, options)
  if (form === 1 && bias !== undefined) form = 0;
  let options: unknown = o;
  const mutations = g.chance(0.3) ? 0 : g.int(1, 2);
  for (let m = 0; m < mutations; m++) {
    switch (g.int(0, 10)) {
      case 0: {
        const key = g.pick(['inFeatures', 'outFeatures']);
        o[key] = g.pick(BAD_DIMS);
        tags.push(`${key}=${show(o[key])}`);
        mustThrow = true;
        break;
      }
      case 1: {
        const big = g.pick([
          { inFeatures: 2 ** 31 - 1 }, { inFeatures: 2 ** 16, outFeatures: 2 ** 16 },
          { inFeatures: 2 ** 31 - 1, outFeatures: 2 ** 31 - 1 },
        ]);
        Object.assign(o, big);
        tags.push(`big ${show(big)}`);
        mustThrow = true;
        break;
      }
      case 2:
        x = g.pick(BAD_TENSORS(g, M * K).filter((t) => !(t instanceof Float32Array && t.byteLength > 0 && (t.byteLength / 4) % K === 0)));
        tags.push(`x=${show(x)}`);
        mustThrow = true;
        break;
      case 3:
        weight = g.pick([new Float64Array(Nf * K), null, 'w', detached(Nf * K), new Float32Array(0)]);
        tags.push(`weight=${show(weight)}`);
        mustThrow = true;
        break;
      case 4:
        bias = g.pick([makeF32(Nf + 1, 'plain'), new Float64Array(Nf), detached(Nf), 'b', 0]);
        form = 0;
        tags.push(`bias=${show(bias)}`);
        mustThrow = true;
        break;
      case 5:
        if (asClass) {
          fwd[g.pick(['signal ', 'outt', 'inFeatures'])] = 1;
        } else {
          o[g.pick(['infeatures', 'bias', 'layout', 'constructor'])] = 1;
        }
        tags.push('extra option');
        mustThrow = true;
        break;
      case 6: {
        // out overlapping x.
        const { input, out, shift } = overlapping(g, M * K, M * Nf);
        x = input;
        outTarget.out = out;
        tags.push(`out overlaps x at ${shift}`);
        mustThrow = true;
        break;
      }
      case 7:
        outTarget.out = g.pick([makeF32(M * Nf + 1, 'plain'), new Float64Array(M * Nf), detached(M * Nf), []]);
        tags.push(`out=${show(outTarget.out)}`);
        mustThrow = true;
        break;
      case 8:
        o.weightLayout = g.pick(['OUT-IN', 'inout', 1, null]);
        tags.push(`weightLayout=${show(o.weightLayout)}`);
        mustThrow = true;
        break;
      case 9:
        if (x instanceof Float32Array) injectNonFinite(g, x);
        if (weight instanceof Float32Array) injectNonFinite(g, weight);
        tags.push('non-finite data');
        nonFinite = true;
        break;
      default:
        options = g.pick([null, 5, 'o', []]);
        tags.push(`options=${show(options)}`);
        mustThrow = !(asClass && options === undefined);
        break;
    }
  }
  const outputs = () => [outTarget.out].filter((a): a is Float32Array => a instanceof Float32Array && a.byteLength > 0);
  if (!asClass) {
    return {
      tags, mustThrow, nonFinite, outputs,
      run: (api, isAsync) => {
        const f = isAsync ? api.linearAsync : api.linear;
        return form === 0 ? f(x, weight, bias, options) : f(x, weight, options);
      },
      describe: () => `linear(${show(x)}, ${show(weight)}, ${form === 0 ? `${show(bias)}, ` : ''}${show(options)})`,
    };
  }
  const config: Record<string, unknown> = options === o ? { ...o, weight, bias } : (options as Record<string, unknown>);
  const fwdOptions: unknown = g.chance(0.2) && Object.keys(fwd).length === 0 ? undefined : fwd;
  return {
    tags, mustThrow, nonFinite, outputs,
    run: (api, isAsync) => {
      const layer = api.newLinear(config);
      return isAsync ? layer.forwardAsync(x, fwdOptions) : layer.forward(x, fwdOptions);
    },
    describe: () => `new Linear(${show(config)}).forward(${show(x)}, ${show(fwdOptions)})`,
  };
}

// -------------------------------------------------------------------------------------------------
// MultiHeadAttention

function genMha(g: Gen): Case {
  const Hkv = g.int(1, 2);
  const H = Hkv * g.int(1, 2);
  const Dh = g.int(1, 4);
  const E = g.int(1, 8);
  const B = g.int(1, 2);
  const S = g.int(1, 4);
  const hasBias = g.chance(0.5);
  const outIn = g.chance(0.6);
  const weights: Record<string, unknown> = {
    wq: g.f32(H * Dh * E), wk: g.f32(Hkv * Dh * E), wv: g.f32(Hkv * Dh * E), wo: g.f32(E * H * Dh),
  };
  if (hasBias) Object.assign(weights, { bq: g.f32(H * Dh), bk: g.f32(Hkv * Dh), bv: g.f32(Hkv * Dh), bo: g.f32(E) });
  const config: Record<string, unknown> = { embedDim: E, numHeads: H, headDim: Dh, weights };
  if (Hkv !== H || g.chance(0.3)) config.numKvHeads = Hkv;
  if (!outIn) config.weightLayout = 'in-out';
  let x: unknown = g.f32(B * S * E);
  const fo: Record<string, unknown> = {};
  if (B > 1 || g.chance(0.3)) fo.batch = B;
  if (g.chance(0.3)) fo.seqLen = S;
  if (g.chance(0.3)) fo.causal = g.chance(0.5);
  if (g.chance(0.2)) fo.kvLengths = Int32Array.from({ length: B }, () => g.int(0, S));
  if (g.chance(0.2)) fo.seqLens = Int32Array.from({ length: B }, () => g.int(0, S));
  if (g.chance(0.2)) fo.needWeights = true;
  if (g.chance(0.2)) fo.out = withSentinel(makeF32(B * S * E, g.pick(['plain', 'shared', 'offset4'])));
  const tags: string[] = [];
  let mustThrow = false;
  let nonFinite = false;
  let cfg: unknown = config;
  let fwd: unknown = fo;
  const mutations = g.chance(0.3) ? 0 : g.int(1, 2);
  for (let m = 0; m < mutations; m++) {
    switch (g.int(0, 9)) {
      case 0: {
        const key = g.pick(['embedDim', 'numHeads', 'numKvHeads', 'headDim']);
        config[key] = g.pick(BAD_DIMS);
        tags.push(`${key}=${show(config[key])}`);
        mustThrow = !(key === 'numKvHeads' && config[key] === undefined);
        break;
      }
      case 1: {
        const key = g.pick(['wq', 'wk', 'wv', 'wo', 'bq', 'bo']);
        weights[key] = g.pick([new Float64Array(4), makeF32(g.int(0, 3) + 50, 'plain'), detached(E), 'w', null]);
        tags.push(`weights.${key}=${show(weights[key])}`);
        mustThrow = true;
        break;
      }
      case 2:
        cfg = g.pick([null, 1, 'cfg', { ...config, extra: 1 }, { ...config, weights: undefined }]);
        tags.push(`config=${show(cfg)}`);
        mustThrow = true;
        break;
      case 3:
        x = g.pick(BAD_TENSORS(g, B * S * E).filter((t) => !(t instanceof Float32Array && t.byteLength > 0 && (t.byteLength / 4) % E === 0)));
        tags.push(`x=${show(x)}`);
        mustThrow = true;
        break;
      case 4: {
        const key = g.pick(['batch', 'seqLen']);
        fo[key] = g.pick(BAD_DIMS);
        tags.push(`${key}=${show(fo[key])}`);
        mustThrow = true;
        break;
      }
      case 5: {
        const key = g.pick(['kvLengths', 'seqLens']);
        fo[key] = g.pick([Int32Array.from({ length: B }, () => S + 1), Int32Array.of(-1), new Float32Array(B), new Int32Array(B + 1)]);
        tags.push(`${key}=${show(fo[key])}`);
        mustThrow = true;
        break;
      }
      case 6: {
        const { input, out, shift } = overlapping(g, B * S * E, B * S * E);
        x = input;
        fo.out = out;
        tags.push(`out overlaps x at ${shift}`);
        mustThrow = true;
        break;
      }
      case 7:
        fo.mask = { data: new Float32Array(S + 1), dims: [S + 1] };
        tags.push('mask does not broadcast');
        mustThrow = true;
        break;
      case 8:
        if (x instanceof Float32Array) injectNonFinite(g, x);
        tags.push('non-finite data');
        nonFinite = true;
        break;
      default:
        fwd = g.pick([null, 3, { ...fo, casual: true }, { ...fo, out: new Float64Array(B * S * E) }]);
        tags.push(`options=${show(fwd)}`);
        mustThrow = true;
    }
  }
  const outputs = () =>
    [(fwd as Record<string, unknown> | null)?.out].filter((a): a is Float32Array => a instanceof Float32Array && a.byteLength > 0);
  return {
    tags, mustThrow, nonFinite, outputs,
    run: (api, isAsync) => {
      const layer = api.newMha(cfg);
      return isAsync ? layer.forwardAsync(x, fwd) : layer.forward(x, fwd);
    },
    describe: () => `new MultiHeadAttention(${show(cfg)}).forward(${show(x)}, ${show(fwd)})`,
  };
}

// -------------------------------------------------------------------------------------------------
// The harness

/** Float32Arrays of a result, copied (so that a later run cannot change them). */
function arraysOf(result: unknown): Float32Array[] {
  const copy = (a: Float32Array) => {
    if (a.byteLength === 0) throw new Error(`the result is an empty or detached ${show(a)}`);
    return Float32Array.from(a);
  };
  if (result instanceof Float32Array) return [copy(result)];
  if (result && typeof result === 'object') {
    return Object.values(result as object).filter((a) => a instanceof Float32Array).map((a) => copy(a as Float32Array));
  }
  return [];
}

interface Outcome {
  arrays?: Float32Array[];
  error?: unknown;
  /** The async form rejected (rather than threw synchronously). */
  rejected?: boolean;
}

async function runOnce(c: Case, api: Api, isAsync: boolean): Promise<Outcome> {
  let pending: unknown;
  try {
    pending = c.run(api, isAsync);
  } catch (error) {
    return { error };
  }
  if (!isAsync) {
    try {
      return { arrays: arraysOf(pending) };
    } catch (error) {
      return { error: new Error(`succeeded with an unusable result: ${describeError(error)}`) };
    }
  }
  if (!(pending instanceof Promise)) return { error: new Error('async form did not return a Promise') };
  try {
    return { arrays: arraysOf(await pending) };
  } catch (error) {
    return { error, rejected: true };
  }
}

/** Runs a case on js then native: [a problem description or null, whether native threw]. */
async function check(c: Case, isAsync: boolean): Promise<[string | null, boolean]> {
  const outs = c.outputs();
  const before = outs.map((a) => snapshot(a));
  const j = await runOnce(c, js, isAsync);
  if (j.error !== undefined) {
    for (let i = 0; i < outs.length; i++) {
      if (before[i] && !sameBits(outs[i], before[i]!)) return [`js: an output was written before the error (${describeError(j.error)})`, false];
    }
  }
  for (let i = 0; i < outs.length; i++) {
    if (!before[i]) continue;
    if (outs[i].byteLength === 0) return [`an output was detached during the js call`, false];
    outs[i].set(before[i]!);
  }
  const n = await runOnce(c, native, isAsync);
  if (n.error !== undefined) {
    const problem = (() => {
      if (n.rejected) return `native: rejected instead of throwing synchronously: ${describeError(n.error)}`;
      if (!namesArgument(n.error)) return `native: not a TypeError/RangeError naming the argument: ${describeError(n.error)}`;
      for (let i = 0; i < outs.length; i++) {
        if (before[i] && !sameBits(outs[i], before[i]!)) return `native: an output was written before the error (${describeError(n.error)})`;
      }
      if (j.error === undefined) return `native threw but js succeeded: ${describeError(n.error)}`;
      if (describeError(j.error) !== describeError(n.error)) {
        return `different errors: js ${describeError(j.error)} / native ${describeError(n.error)}`;
      }
      return null;
    })();
    return [problem, true];
  }
  if (c.mustThrow) return ['native: succeeded on an invalid call', false];
  if (j.error !== undefined) return [`js threw but native succeeded: ${describeError(j.error)}`, false];
  if (c.nonFinite) return [null, false];
  if (n.arrays!.length !== j.arrays!.length) return ['results differ in shape', false];
  for (let i = 0; i < n.arrays!.length; i++) {
    const bad = firstMismatch(n.arrays![i], j.arrays![i]);
    if (bad >= 0) return [`result ${i} differs at [${bad}]: native ${n.arrays![i][bad]}, js ${j.arrays![i][bad]}`, false];
  }
  return [null, false];
}

/** Fuzzes `gen` for about `ms` ms (at least `min` calls); returns the report of failures. */
function fuzz(label: string, salt: number, gen: (g: Gen) => Case, ms: number, min: number): Promise<string[]> {
  return fuzzLoop(label, { salt, mix: 0x9e3779b9, ms, min }, async (g) => {
    const c = gen(g);
    const isAsync = g.chance(0.25);
    const [problem, threw] = await check(c, isAsync);
    if (problem === null) return { problem, threw };
    return { problem: `${isAsync ? 'async ' : ''}[${c.tags.join('; ')}]\n  ${problem}\n  ${c.describe()}`, threw };
  });
}

describe('fuzz: the public API never crashes, rejects bad input by name, matches js', () => {
  test('scaledDotProductAttention / Async', async () => {
    const failures = await fuzz('sdpa', 0x1, genSdpa, 5500, 1500);
    expect(failures, failures.join('\n')).toEqual([]);
  });
  test('linear / linearAsync', async () => {
    const failures = await fuzz('linear', 0x2, (g) => genLinear(g, false), 2500, 1000);
    expect(failures, failures.join('\n')).toEqual([]);
  });
  test('Linear: constructor, forward, forwardAsync', async () => {
    const failures = await fuzz('Linear', 0x3, (g) => genLinear(g, true), 2000, 800);
    expect(failures, failures.join('\n')).toEqual([]);
  });
  test('MultiHeadAttention: constructor, forward, forwardAsync', async () => {
    const failures = await fuzz('mha', 0x4, genMha, 3500, 600);
    expect(failures, failures.join('\n')).toEqual([]);
  });
});
