// Fuzzing option objects that lie: getters and Proxies that answer one value on their first read
// and another after (scaledDotProductAttention's options, mask objects and their dims, a layer's
// forward options with seqLens / kvLengths / cache, the layer's config). Every call must end as the
// same call with the first-read values ends (same result, or same error), or in a clean
// TypeError/RangeError with the outputs untouched; the later values (decoy outputs, a decoy cache)
// are never written; a KVCache driven with such options stays equal, lengths and contents, to a
// twin driven with the plain values. On qkv/js and on qkv under every native kernel set.
// QKV_FUZZ_SEED / QKV_FUZZ_ONLY / QKV_FUZZ_SCALE as in test/fuzz-api.test.ts.
import { describe, expect, test } from 'vitest';
import {
  FLIP_FORMS, Gen, describeError, firstMismatch, flipping, flippingArray, fuzzLoop, namesArgument, outcomeDifference, outcomeOf,
  proxied, sameBits, show, targets, type CallOutcome, type Target,
} from './helpers.js';

const SENTINEL = 4321.5;
const sentinel = (n: number) => new Float32Array(n).fill(SENTINEL);

/** Arrays that only a later read could have handed the call: they must never be written. */
class Decoys {
  readonly list: Array<[Float32Array, Float32Array]> = [];
  add(a: Float32Array): Float32Array {
    this.list.push([a, Float32Array.from(a)]);
    return a;
  }
  written(): boolean {
    return this.list.some(([a, copy]) => !sameBits(a, copy));
  }
}

/** The hostile call's outcome against the plain twin's; outputs are the hostile call's own `out`s. */
function judge(hostile: CallOutcome, plain: CallOutcome, outputs: Array<[Float32Array, Float32Array]>, decoys: Decoys): string | null {
  if (decoys.written()) return 'a value only a later read returned (a decoy output) was written';
  if (hostile.error !== undefined) {
    if (outcomeDifference(hostile, plain) === null) return null;
    if (!namesArgument(hostile.error)) return `threw ${describeError(hostile.error)} (plain call: ${plain.error !== undefined ? describeError(plain.error) : 'succeeded'})`;
    if (outputs.some(([a, before]) => !sameBits(a, before))) return `an output was written before ${describeError(hostile.error)}`;
    return null;
  }
  const diff = outcomeDifference(hostile, plain);
  return diff === null ? null : `differs from the call with the first-read values: ${diff}`;
}

/** Lays `first` out as a hostile object: some keys flip to `later` values (and nested objects flip too). */
function hostile(g: Gen, first: Record<string, unknown>, later: Record<string, unknown>, tags: string[]): Record<string, unknown> {
  const form = g.pick(FLIP_FORMS);
  const flips: Record<string, unknown> = {};
  for (const key of Object.keys(later)) if (g.chance(0.6)) flips[key] = later[key];
  tags.push(`${form}: ${Object.keys(flips).map((k) => `${k}->${show(flips[k])}`).join(', ') || 'none'}`);
  return flipping(form, first, flips);
}

// -------------------------------------------------------------------------------------------------
// scaledDotProductAttention

interface SdpaCase {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  /** The options with fresh output arrays (one set per side). */
  plain: () => Record<string, unknown>;
  later: (g: Gen, decoys: Decoys) => Record<string, unknown>;
  B: number;
  Sk: number;
}

function genSdpa(g: Gen): SdpaCase {
  const Hkv = g.int(1, 2);
  const H = Hkv * g.int(1, 2);
  const [B, Sq, Sk, D] = [g.int(1, 2), g.int(1, 4), g.int(1, 5), g.int(1, 6)];
  const Dv = g.chance(0.7) ? D : g.int(1, 6);
  const base: Record<string, unknown> = { batch: B, heads: H, kvHeads: Hkv, seqQ: Sq, seqK: Sk, headDim: D, valueDim: Dv };
  if (g.chance(0.3)) base.layout = g.pick(['bhsd', 'bshd']);
  if (g.chance(0.3)) base.causal = g.pick([true, false, 'top-left', 'bottom-right']);
  else if (g.chance(0.2)) base.queryOffset = g.chance(0.5) ? g.int(-2, 4) : Int32Array.from({ length: B }, () => g.int(-2, 4));
  if (g.chance(0.35)) {
    const rank = g.int(1, 4);
    const dims = [B, H, Sq, Sk].slice(4 - rank).map((d) => (g.chance(0.5) ? d : 1));
    const n = dims.reduce((a, b) => a * b, 1);
    base.mask = {
      data: g.chance(0.5) ? Float32Array.from({ length: n }, () => (g.chance(0.2) ? -Infinity : g.r() - 0.5)) : Uint8Array.from({ length: n }, () => (g.chance(0.7) ? 1 : 0)),
      dims,
    };
  }
  if (g.chance(0.35)) base.kvLengths = Int32Array.from({ length: B }, () => g.int(0, Sk));
  if (g.chance(0.25)) base.scale = g.r() * 2 - 0.5;
  if (g.chance(0.15)) base.softcap = g.r() * 5;
  const outLen = B * H * Sq * Dv;
  const probLen = B * H * Sq * Sk;
  const wantOut = g.chance(0.5);
  const wantWeights = g.int(0, 2); // 0 none, 1 true, 2 an array
  const wantScores = g.chance(0.15);
  const plain = () => {
    const o: Record<string, unknown> = { ...base };
    if (wantOut) o.out = sentinel(outLen);
    if (wantWeights) o.weights = wantWeights === 1 ? true : sentinel(probLen);
    if (wantScores) o.scores = true;
    return o;
  };
  const later = (g2: Gen, decoys: Decoys): Record<string, unknown> => {
    const l: Record<string, unknown> = {};
    for (const key of ['batch', 'heads', 'kvHeads', 'seqQ', 'seqK', 'headDim', 'valueDim']) {
      const v = base[key] as number;
      l[key] = g2.pick([v + 1, 2 * v + 1, 2 ** 20, 0, -1, 2 ** 31 - 1]);
    }
    l.layout = base.layout === 'bshd' ? 'bhsd' : 'bshd';
    l.causal = g2.pick([true, 'top-left', 'bottom-right', false, 'sideways']);
    l.queryOffset = g2.pick([2 ** 30, -(2 ** 30), Int32Array.from({ length: B }, () => 2 ** 30)]);
    l.kvLengths = g2.pick([new Int32Array(B).fill(Sk + 7), new Int32Array(B).fill(-5), new Int32Array(B + 3), new Int32Array(B)]);
    l.mask = g2.pick([
      { data: new Float32Array(1), dims: [2 ** 16] },
      { data: new Float32Array(B * H * Sq * Sk).fill(-Infinity), dims: [B, H, Sq, Sk] },
      { data: new Uint8Array(Sk), dims: [Sk] },
    ]);
    l.scale = g2.pick([NaN, 1e39, 1e6, 0]);
    l.softcap = g2.pick([-1, 1e-3, Infinity]);
    l.out = decoys.add(sentinel(g2.pick([outLen, 1, outLen + 64])));
    l.weights = decoys.add(sentinel(g2.pick([probLen, 1])));
    l.scores = decoys.add(sentinel(probLen));
    return l;
  };
  return { q: g.f32(B * H * Sq * D, 'plain'), k: g.f32(B * Hkv * Sk * D, 'plain'), v: g.f32(B * Hkv * Sk * Dv, 'plain'), plain, later, B, Sk };
}

/** Nested hostility inside the first-read values: the mask object, its dims, the Int32Arrays. */
function hostileNested(g: Gen, o: Record<string, unknown>, later: Record<string, unknown>, c: SdpaCase, tags: string[]): void {
  const mask = o.mask as { data: Float32Array | Uint8Array; dims: number[] } | undefined;
  if (mask && g.chance(0.5)) {
    const dims = g.chance(0.5)
      ? flippingArray([...mask.dims], g.pick([{ 0: 2 ** 16 }, { length: 4, 0: 1, 1: 1, 2: 1, 3: 1 }, { [mask.dims.length - 1]: 1 }]))
      : [...mask.dims];
    const laterMask = later.mask as Record<string, unknown>;
    o.mask = g.chance(0.6) ? hostile(g, { data: mask.data, dims }, { data: laterMask.data, dims: laterMask.dims }, tags) : { data: mask.data, dims };
    tags.push(`mask.dims ${dims === mask.dims ? 'plain' : 'flipping'}`);
  }
  for (const key of ['kvLengths', 'queryOffset'] as const) {
    const a = o[key];
    if (a instanceof Int32Array && g.chance(0.25)) {
      // A Proxy of an Int32Array is not a typed array: a clean TypeError.
      o[key] = g.chance(0.5) ? proxied(a) : flippingArray(a, { 0: key === 'kvLengths' ? c.Sk + 9 : 2 ** 30 });
      tags.push(`${key} is a Proxy`);
    }
  }
}

// -------------------------------------------------------------------------------------------------
// MultiHeadAttention: config and forward options

function layerWeights(g: Gen, E: number, H: number, Hkv: number, Dh: number) {
  return { wq: g.f32(H * Dh * E, 'plain'), wk: g.f32(Hkv * Dh * E, 'plain'), wv: g.f32(Hkv * Dh * E, 'plain'), wo: g.f32(E * H * Dh, 'plain') };
}

interface LayerSpec {
  E: number;
  H: number;
  Hkv: number;
  Dh: number;
  config: Record<string, unknown>;
}

function genLayerSpec(g: Gen): LayerSpec {
  const Hkv = g.int(1, 2);
  const H = Hkv * g.int(1, 2);
  const Dh = g.int(1, 4);
  const E = g.int(1, 8);
  return { E, H, Hkv, Dh, config: { embedDim: E, numHeads: H, numKvHeads: Hkv, headDim: Dh, weights: layerWeights(g, E, H, Hkv, Dh) } };
}

function hostileConfig(g: Gen, s: LayerSpec, tags: string[]): Record<string, unknown> {
  if (!g.chance(0.4)) return s.config;
  const other = layerWeights(g, s.E, s.H, s.Hkv, s.Dh);
  const w = s.config.weights as Record<string, unknown>;
  const weights = g.chance(0.5) ? hostile(g, w, { ...other, wq: new Float32Array(3) }, tags) : w;
  return hostile(g, { ...s.config, weights }, { embedDim: s.E + 1, numHeads: 2 * s.H, headDim: s.Dh + 1, weights: other }, tags);
}

async function layerCase(g: Gen, t: Target): Promise<{ problem: string | null; threw: boolean }> {
  const s = genLayerSpec(g);
  const tags: string[] = [];
  const B = g.int(1, 2);
  const S = g.int(1, 4);
  const x = g.f32(B * S * s.E, 'plain');
  const base: Record<string, unknown> = { batch: B, seqLen: S };
  if (g.chance(0.4)) base.causal = g.chance(0.5);
  if (g.chance(0.3)) base.kvLengths = Int32Array.from({ length: B }, () => g.int(0, S));
  if (g.chance(0.3)) base.seqLens = Int32Array.from({ length: B }, () => g.int(0, S));
  if (g.chance(0.25)) base.mask = { data: Float32Array.from({ length: S * S }, () => (g.chance(0.2) ? -Infinity : 0)), dims: [S, S] };
  const needWeights = g.chance(0.25);
  if (needWeights) base.needWeights = true;
  const wantOut = g.chance(0.4);
  const isAsync = g.chance(0.3);
  const decoys = new Decoys();
  const later: Record<string, unknown> = {
    batch: g.pick([B + 1, 2 ** 20, 0]), seqLen: g.pick([S + 1, 2 ** 20]), causal: g.pick([true, false, 1]),
    kvLengths: g.pick([new Int32Array(B).fill(S + 3), new Int32Array(B + 2), new Int32Array(B)]),
    seqLens: g.pick([new Int32Array(B).fill(-1), new Int32Array(B).fill(S + 3), new Int32Array(B)]),
    mask: g.pick([{ data: new Float32Array(S * S).fill(-Infinity), dims: [S, S] }, { data: new Float32Array(1), dims: [S + 5] }]),
    needWeights: !needWeights,
    out: decoys.add(sentinel(g.pick([B * S * s.E, 1]))),
  };
  const hostileOut = sentinel(B * S * s.E);
  const first: Record<string, unknown> = { ...base, ...(wantOut ? { out: hostileOut } : {}) };
  for (const key of ['kvLengths', 'seqLens']) {
    if (first[key] instanceof Int32Array && g.chance(0.2)) {
      // A Proxy of an Int32Array is not a typed array: a clean TypeError.
      first[key] = flippingArray(first[key] as Int32Array, { 0: S + 5 });
      tags.push(`${key} is a Proxy`);
    }
  }
  const hostileOpts = hostile(g, first, later, tags);
  const cfg = hostileConfig(g, s, tags);
  const call = (config: unknown, options: unknown) => () => t.run(() => {
    const layer = new t.face.MultiHeadAttention(config);
    return isAsync ? layer.forwardAsync(x, options) : layer.forward(x, options);
  });
  const h = await outcomeOf(call(cfg, hostileOpts));
  const plainOpts: Record<string, unknown> = { ...base, ...(wantOut ? { out: sentinel(B * S * s.E) } : {}) };
  const p = await outcomeOf(call(s.config, plainOpts));
  const problem = judge(h, p, wantOut ? [[hostileOut, sentinel(B * S * s.E)]] : [], decoys);
  return {
    problem: problem && `${t.name}${isAsync ? ' async' : ''} [${tags.join(' | ')}] ${problem}\n  forward(${show(x)}, ${show(base)})`,
    threw: h.error !== undefined,
  };
}

// -------------------------------------------------------------------------------------------------
// A KVCache driven with hostile options against a twin driven with the plain values

interface CacheContents {
  lengths: number[];
  k: Float32Array;
  v: Float32Array;
}

function cacheSnapshot(c: any): CacheContents {
  const e = c.export();
  return { lengths: Array.from(c.lengths as Int32Array), k: e.k, v: e.v };
}

/** null when two caches hold the same lengths and (within rounding: kernel sets may differ) the same rows. */
function cacheDifference(a: CacheContents, b: CacheContents): string | null {
  if (a.lengths.join() !== b.lengths.join()) return `lengths ${a.lengths} / ${b.lengths}`;
  for (const key of ['k', 'v'] as const) {
    const bad = firstMismatch(a[key], b[key]);
    if (bad >= 0) return `${key}[${bad}] ${a[key][bad]} / ${b[key][bad]} (lengths ${a.lengths})`;
  }
  return null;
}

async function cacheCase(g: Gen, t: Target): Promise<string | null> {
  const s = genLayerSpec(g);
  const layer = t.run(() => new t.face.MultiHeadAttention(s.config));
  const B = g.int(1, 2);
  const maxLength = g.int(4, 12);
  const dtype = g.pick(['float32', 'float16']);
  const A = layer.createCache({ batch: B, maxLength, dtype });
  let twin = layer.createCache({ batch: B, maxLength, dtype });
  const decoyCache = layer.createCache({ batch: B, maxLength, dtype });
  const decoyState = cacheSnapshot(decoyCache);
  const steps = g.int(2, 5);
  const log: string[] = [];
  for (let step = 0; step < steps; step++) {
    const tags: string[] = [];
    const S = g.int(1, 3);
    const x = g.f32(B * S * s.E, 'plain');
    const base: Record<string, unknown> = { seqLen: S };
    if (g.chance(0.5)) base.batch = B;
    if (g.chance(0.4)) base.seqLens = Int32Array.from({ length: B }, () => g.int(0, S));
    if (g.chance(0.2)) base.causal = true;
    const wantOut = g.chance(0.3);
    const isAsync = g.chance(0.35);
    const decoys = new Decoys();
    const later: Record<string, unknown> = {
      cache: g.pick([decoyCache, {}, null]),
      seqLen: g.pick([S + 1, maxLength + 1]),
      batch: B + 1,
      seqLens: g.pick([new Int32Array(B).fill(maxLength + 1), new Int32Array(B).fill(-1), new Int32Array(B).fill(S)]),
      causal: false,
      out: decoys.add(sentinel(B * S * s.E)),
    };
    // An action run inside the first read of one option (so before the call has its lock): it is
    // replayed on the twin before the twin's call, so both caches see the same history.
    const actionKind = g.chance(0.3) ? g.pick(['reset', 'truncate', 'forward', 'forwardAsync']) : null;
    const n = g.int(0, 3);
    const xa = g.f32(B * s.E, 'plain');
    const inner: Array<Promise<CallOutcome>> = [];
    const act = (c: any) => {
      if (actionKind === 'reset') c.reset();
      else if (actionKind === 'truncate') c.truncate(n);
      else if (actionKind === 'forward') layer.forward(xa, { cache: c });
      else if (actionKind === 'forwardAsync') inner.push(outcomeOf(() => layer.forwardAsync(xa, { cache: c })));
    };
    const actions: Record<string, () => void> = {};
    const first: Record<string, unknown> = { ...base, cache: A };
    const hostileOut = sentinel(B * S * s.E);
    if (wantOut) first.out = hostileOut;
    if (actionKind) {
      const key = g.pick(Object.keys(first));
      actions[key] = () => {
        try {
          act(A);
        } catch {
          // the same action on the twin fails the same way
        }
      };
      tags.push(`${actionKind}(${n}) inside the read of ${key}`);
    }
    const form = g.pick(FLIP_FORMS);
    const flips: Record<string, unknown> = {};
    for (const key of Object.keys(later)) if (g.chance(0.5)) flips[key] = later[key];
    tags.push(`${form}: ${Object.keys(flips).map((k) => `${k}->${show(flips[k] === decoyCache ? 'decoy cache' : flips[k])}`).join(', ')}`);
    const opts = flipping(form, first, flips, actions);
    const before = cacheSnapshot(A);
    const h = await outcomeOf(() => t.run(() => (isAsync ? layer.forwardAsync(x, opts) : layer.forward(x, opts))));
    if (actionKind) {
      try {
        t.run(() => act(twin));
      } catch {
        // as on A
      }
    }
    const afterActions = cacheSnapshot(twin);
    const p = await outcomeOf(() => t.run(() => (isAsync ? layer.forwardAsync(x, { ...base, cache: twin, ...(wantOut ? { out: sentinel(B * S * s.E) } : {}) }) : layer.forward(x, { ...base, cache: twin, ...(wantOut ? { out: sentinel(B * S * s.E) } : {}) }))));
    const innerOutcomes = await Promise.all(inner);
    const where = `${t.name} step ${step}${isAsync ? ' async' : ''} [${tags.join(' | ')}] (${log.join('; ')})`;
    log.push(`${show(base)}${actionKind ? ` +${actionKind}` : ''}`);
    if (innerOutcomes.length === 2 && outcomeDifference(innerOutcomes[0]!, innerOutcomes[1]!) !== null) {
      return `${where} the inner call differs: ${outcomeDifference(innerOutcomes[0]!, innerOutcomes[1]!)}`;
    }
    if (cacheDifference(cacheSnapshot(decoyCache), decoyState) !== null) return `${where} the decoy cache (a later read's value) was changed`;
    const problem = judge(h, p, wantOut ? [[hostileOut, sentinel(B * S * s.E)]] : [], decoys);
    if (problem) return `${where} ${problem}`;
    if (h.error !== undefined && p.error === undefined) {
      // A clean refusal: A must hold what it held before the call plus the actions; the twin is re-synced.
      const changed = cacheDifference(cacheSnapshot(A), afterActions);
      if (changed !== null) {
        return `${where} refused (${describeError(h.error)}) but changed the cache (${changed}; before: lengths ${before.lengths})`;
      }
      // The twin ran the call A refused: continue from a copy of A.
      twin = layer.createCache({ batch: B, maxLength, dtype, from: A.export() });
      continue;
    }
    const diff = cacheDifference(cacheSnapshot(A), cacheSnapshot(twin));
    if (diff !== null) return `${where} the cache differs from its twin: ${diff}`;
  }
  return null;
}

describe('fuzz: options that change their answer between reads', () => {
  test('scaledDotProductAttention / Async: options, mask, mask.dims, kvLengths, queryOffset', async () => {
    const failures = await fuzzLoop('hostile sdpa options', { salt: 0x101, mix: 0x9e3779b9, ms: 1500, min: 300 }, async (g) => {
      const t = g.pick(targets);
      const c = genSdpa(g);
      const tags: string[] = [];
      const decoys = new Decoys();
      const first = c.plain();
      const later = c.later(g, decoys);
      hostileNested(g, first, later, c, tags);
      const opts = hostile(g, first, later, tags);
      const isAsync = g.chance(0.3);
      const call = (o: unknown) => () => t.run(() => (isAsync ? t.face.scaledDotProductAttentionAsync : t.face.scaledDotProductAttention)(c.q, c.k, c.v, o));
      const outputs: Array<[Float32Array, Float32Array]> = [first.out, first.weights]
        .filter((a): a is Float32Array => a instanceof Float32Array).map((a) => [a, Float32Array.from(a)]);
      const h = await outcomeOf(call(opts));
      const p = await outcomeOf(call(c.plain()));
      const problem = judge(h, p, outputs, decoys);
      return { problem: problem && `${t.name}${isAsync ? ' async' : ''} [${tags.join(' | ')}] ${problem}\n  options ${show(c.plain())}`, threw: h.error !== undefined };
    });
    expect(failures, failures.join('\n')).toEqual([]);
  });

  test('MultiHeadAttention: config and forward / forwardAsync options (seqLens, kvLengths, mask, out)', async () => {
    const failures = await fuzzLoop('hostile layer options', { salt: 0x102, mix: 0x9e3779b9, ms: 1500, min: 200 }, (g) => layerCase(g, g.pick(targets)));
    expect(failures, failures.join('\n')).toEqual([]);
  });

  test('KVCache: forward / forwardAsync with flipping cache, seqLens, seqLen, batch and getters that act on the cache', async () => {
    const failures = await fuzzLoop('hostile cache options', { salt: 0x103, mix: 0x9e3779b9, ms: 1500, min: 100 }, async (g) => ({
      problem: await cacheCase(g, g.pick(targets)),
    }));
    expect(failures, failures.join('\n')).toEqual([]);
  });
});
