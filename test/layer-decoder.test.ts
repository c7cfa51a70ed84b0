// MultiHeadAttention and KVCache with today's decoder settings (DESIGN.md "The layer with these
// settings"): rope, qkNorm, scale, softcap, window, sinks, alibi and forward positions, on every
// backend (js and each native kernel set this machine runs):
//   - one layer per family shape against the float64 reference of the whole block
//     (test/layer-reference.ts), rotary frequencies from test/rope-reference.ts;
//   - cached decoding equals the full forward row by row: step by step, chunked prefill, ragged
//     batches, a window shorter than the prompt, float16 caches, truncate-and-regenerate; a
//     windowed decode step never reads the keys outside its window;
//   - errors for every new setting, nothing written and the cache unchanged.
import { describe, expect, test } from 'vitest';
import type { KVCache, MultiHeadAttentionConfig } from '../lib/index.js';
import { MultiHeadAttention, alibiSlopes } from '../lib/index.js';
import { expectAllClose, expectError, makeRng, randn, runners, type MhaLike, type Rng, type Runner } from './helpers.js';
import { referenceBlock, type RefBlock, type RefCall } from './layer-reference.js';
import { referenceFrequencies } from './rope-reference.js';

const TOL = { atol: 2e-4, rtol: 1e-3 };

/** Weights of a unit-scale block: x·Wᵀ stays O(1). */
function weight(rng: Rng, rows: number, cols: number): Float32Array {
  const w = randn(rng, rows * cols);
  const s = 1 / Math.sqrt(cols);
  for (let i = 0; i < w.length; i++) w[i] = w[i]! * s;
  return w;
}

/** Norm weights around 1 (or around 0 for Gemma's 1 + w). */
function normWeight(rng: Rng, n: number, around: number): Float32Array {
  const w = randn(rng, n);
  for (let i = 0; i < n; i++) w[i] = around + 0.2 * w[i]!;
  return w;
}

interface Family {
  name: string;
  E: number;
  H: number;
  Hkv: number;
  Dh: number;
  /** Which biases the checkpoint has. */
  biases: Array<'bq' | 'bk' | 'bv' | 'bo'>;
  causal: boolean;
  settings(rng: Rng, f: Family): Partial<MultiHeadAttentionConfig>;
}

const families: Family[] = [
  {
    name: 'Llama 3.1 (GQA, llama3 scaling)', E: 64, H: 4, Hkv: 2, Dh: 16, biases: [], causal: true,
    settings: () => ({ rope: { theta: 500000, scaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 } } }),
  },
  {
    name: 'Qwen 2.5 (q, k, v biases)', E: 48, H: 6, Hkv: 2, Dh: 8, biases: ['bq', 'bk', 'bv'], causal: true,
    settings: () => ({ rope: { theta: 1000000 } }),
  },
  {
    name: 'Qwen 3 (qk-norm per head, head_dim ≠ E/H)', E: 64, H: 4, Hkv: 2, Dh: 32, biases: [], causal: true,
    settings: (rng, f) => ({ rope: { theta: 1000000 }, qkNorm: { q: normWeight(rng, f.Dh, 1), k: normWeight(rng, f.Dh, 1), eps: 1e-6 } }),
  },
  {
    name: 'OLMo 2 (qk-norm over the whole vector)', E: 64, H: 4, Hkv: 4, Dh: 16, biases: [], causal: true,
    settings: (rng, f) => ({
      rope: { theta: 500000 },
      qkNorm: { q: normWeight(rng, f.H * f.Dh, 1), k: normWeight(rng, f.Hkv * f.Dh, 1), eps: 1e-6, span: 'all' },
    }),
  },
  {
    name: 'Mistral (sliding window shorter than the prompt)', E: 64, H: 4, Hkv: 1, Dh: 16, biases: [], causal: true,
    settings: () => ({ rope: { theta: 1000000 }, window: { left: 3 } }),
  },
  {
    name: 'Gemma 2 (query_pre_attn_scalar, softcap, window)', E: 64, H: 4, Hkv: 2, Dh: 16, biases: [], causal: true,
    settings: () => ({ rope: { theta: 10000 }, scale: 24 ** -0.5, softcap: 0.5, window: { left: 4 } }),
  },
  {
    name: 'Gemma 3 local (qk-norm 1 + w, window)', E: 64, H: 4, Hkv: 2, Dh: 16, biases: [], causal: true,
    settings: (rng, f) => ({
      rope: { theta: 10000 }, scale: 16 ** -0.5, window: { left: 5 },
      qkNorm: { q: normWeight(rng, f.Dh, 0), k: normWeight(rng, f.Dh, 0), eps: 1e-6, weightOffset: 1 },
    }),
  },
  {
    name: 'Gemma 3 global (linear scaling)', E: 64, H: 4, Hkv: 2, Dh: 16, biases: [], causal: true,
    settings: (rng, f) => ({
      rope: { theta: 1000000, scaling: { type: 'linear', factor: 8 } },
      qkNorm: { q: normWeight(rng, f.Dh, 0), k: normWeight(rng, f.Dh, 0), eps: 1e-6, weightOffset: 1 },
    }),
  },
  {
    name: 'gpt-oss (biases, sinks, window, YaRN)', E: 64, H: 8, Hkv: 2, Dh: 16, biases: ['bq', 'bk', 'bv', 'bo'], causal: true,
    settings: (rng, f) => ({
      rope: { theta: 150000, scaling: { type: 'yarn', factor: 32, originalMaxPositions: 4096, betaFast: 32, betaSlow: 1, truncate: false } },
      window: { left: 3 }, sinks: randn(rng, f.H),
    }),
  },
  {
    name: 'GPT-J (interleaved, partial rotary)', E: 64, H: 4, Hkv: 4, Dh: 16, biases: [], causal: true,
    settings: () => ({ rope: { rotaryDim: 8, style: 'interleaved' } }),
  },
  {
    name: 'GPT-NeoX / Pythia (partial rotary 25%, biases)', E: 64, H: 4, Hkv: 4, Dh: 16, biases: ['bq', 'bk', 'bv', 'bo'], causal: true,
    settings: () => ({ rope: { rotaryDim: 4 } }),
  },
  {
    name: 'BLOOM (ALiBi)', E: 48, H: 6, Hkv: 6, Dh: 8, biases: ['bq', 'bk', 'bv', 'bo'], causal: true,
    settings: () => ({ alibi: true }),
  },
  {
    name: 'ModernBERT local (bidirectional window)', E: 64, H: 4, Hkv: 4, Dh: 16, biases: [], causal: false,
    settings: () => ({ rope: { theta: 10000 }, window: { left: 2, right: 2 } }),
  },
];

interface Built {
  config: MultiHeadAttentionConfig;
  ref: RefBlock;
}

function build(f: Family, seed: number): Built {
  const rng = makeRng(seed);
  const { E, H, Hkv, Dh } = f;
  const weights: Record<string, Float32Array> = {
    wq: weight(rng, H * Dh, E), wk: weight(rng, Hkv * Dh, E), wv: weight(rng, Hkv * Dh, E), wo: weight(rng, E, H * Dh),
  };
  const sizes = { bq: H * Dh, bk: Hkv * Dh, bv: Hkv * Dh, bo: E };
  for (const b of f.biases) weights[b] = randn(rng, sizes[b]);
  const settings = f.settings(rng, f);
  const config = {
    embedDim: E, numHeads: H, numKvHeads: Hkv, headDim: Dh, bias: f.biases.length > 0, weights, ...settings,
  } as MultiHeadAttentionConfig;
  const ref: RefBlock = { E, H, Hkv, Dh, wq: weights.wq!, wk: weights.wk!, wv: weights.wv!, wo: weights.wo!, ...weights };
  if (settings.rope) {
    const fr = referenceFrequencies(Dh, settings.rope);
    ref.rope = { invFreq: fr.invFreq, interleaved: settings.rope.style === 'interleaved', attentionFactor: fr.attentionFactor };
  }
  const norm = settings.qkNorm;
  if (norm?.q) ref.qNorm = { weight: norm.q, span: norm.span ?? 'head', eps: norm.eps ?? 1e-6, offset: norm.weightOffset ?? 0 };
  if (norm?.k) ref.kNorm = { weight: norm.k, span: norm.span ?? 'head', eps: norm.eps ?? 1e-6, offset: norm.weightOffset ?? 0 };
  if (settings.scale !== undefined) ref.scale = settings.scale;
  if (settings.softcap !== undefined) ref.softcap = settings.softcap;
  if (settings.window) ref.window = settings.window;
  if (settings.sinks) ref.sinks = settings.sinks;
  if (settings.alibi) ref.alibi = settings.alibi === true ? alibiSlopes(H) : settings.alibi;
  return { config, ref };
}

const forwardOf = (layer: MhaLike, x: Float32Array, options: object): Float32Array => layer.forward(x, options) as Float32Array;

/** Rows [from, to) of sequence b of y [B, S, E]. */
function rows(y: ArrayLike<number>, b: number, S: number, E: number, from: number, to: number): Float32Array {
  return Float32Array.from(Array.prototype.slice.call(y, (b * S + from) * E, (b * S + to) * E) as number[]);
}

/** Sequence b's tokens [from, to) of x [B, S, E], as a [1, to − from, E] input. */
const tokens = rows;

describe.each(runners)('$name', (r: Runner) => {
  describe.each(families)('$name', (f) => {
    const { config, ref } = build(f, 0x5eed + f.name.length);
    const B = 2;
    const S = 11;

    test('forward equals the float64 reference of the whole block', () => {
      const layer = r.newMha(config);
      const x = randn(makeRng(7), B * S * f.E);
      const call: RefCall = { B, S, causal: f.causal };
      if (!f.causal) {
        // ModernBERT-style padding: the second sequence has 8 real tokens.
        call.kvLengths = Int32Array.of(S, 8);
        call.seqLens = Int32Array.of(S, 8);
      }
      const options: Record<string, unknown> = { batch: B, causal: f.causal };
      if (call.kvLengths) options.kvLengths = call.kvLengths;
      if (call.seqLens) options.seqLens = call.seqLens;
      expectAllClose(forwardOf(layer, x, options), referenceBlock(ref, x, call), `${f.name} forward`, TOL);
    });

    if (config.rope) {
      test('explicit positions (B·S, shared S, a start) rotate as given; masks keep following the row index', () => {
        const layer = r.newMha(config);
        const x = randn(makeRng(8), B * S * f.E);
        const perSeq = Int32Array.from({ length: B * S }, (_, i) => 100000 + 3 * (i % S) + 17 * Math.floor(i / S));
        const want = referenceBlock(ref, x, { B, S, causal: f.causal, positions: perSeq });
        expectAllClose(forwardOf(layer, x, { batch: B, causal: f.causal, positions: perSeq }), want, 'B·S positions', TOL);
        const shared = Int32Array.from({ length: S }, (_, i) => 5 + 2 * i);
        const sharedAll = Int32Array.from({ length: B * S }, (_, i) => shared[i % S]!);
        expectAllClose(forwardOf(layer, x, { batch: B, causal: f.causal, positions: shared }),
          referenceBlock(ref, x, { B, S, causal: f.causal, positions: sharedAll }), 'S shared positions', TOL);
        const start = Int32Array.from({ length: B * S }, (_, i) => 40 + (i % S));
        expectAllClose(forwardOf(layer, x, { batch: B, causal: f.causal, positions: 40 }),
          referenceBlock(ref, x, { B, S, causal: f.causal, positions: start }), 'a start', TOL);
      });
    }

    if (!f.causal) return;

    test('cached decoding equals the full forward row by row (prefill, chunks, steps)', () => {
      const layer = r.newMha(config);
      const x = randn(makeRng(9), B * S * f.E);
      const full = forwardOf(layer, x, { batch: B, causal: true });
      const cache = layer.createCache({ batch: B, maxLength: 32 });
      // Chunks 4 + 3, then single steps.
      const cuts = [0, 4, 7, 8, 9, 10, 11];
      for (let c = 0; c + 1 < cuts.length; c++) {
        const n = cuts[c + 1]! - cuts[c]!;
        const xs = new Float32Array(B * n * f.E);
        for (let b = 0; b < B; b++) xs.set(tokens(x, b, S, f.E, cuts[c]!, cuts[c + 1]!), b * n * f.E);
        const y = forwardOf(layer, xs, { cache, batch: B });
        for (let b = 0; b < B; b++) {
          expectAllClose(rows(y, b, n, f.E, 0, n), rows(full, b, S, f.E, cuts[c]!, cuts[c + 1]!), `rows ${cuts[c]}..${cuts[c + 1]} of sequence ${b}`, TOL);
        }
      }
      expect(Array.from(cache.lengths)).toEqual([S, S]);
    });

    test('ragged batch (seqLens) and float16 cache: each sequence equals its own full forward', () => {
      for (const dtype of ['float32', 'float16'] as const) {
        const tol = dtype === 'float16' ? { atol: 4e-3, rtol: 4e-3 } : TOL;
        const layer = r.newMha(config);
        const lens = [9, 6];
        const seqs = lens.map((n, b) => randn(makeRng(20 + b), n * f.E));
        const fulls = seqs.map((s, b) => forwardOf(layer, s, { causal: true, seqLen: lens[b] }));
        const cache: KVCache = layer.createCache({ batch: B, maxLength: 16, dtype });
        // Prefill 5 and 3 tokens in one padded call, then steps until each sequence is done.
        const prefill = [5, 3];
        const P = 5;
        const xp = new Float32Array(B * P * f.E);
        for (let b = 0; b < B; b++) xp.set(seqs[b]!.subarray(0, prefill[b]! * f.E), b * P * f.E);
        const yp = forwardOf(layer, xp, { cache, batch: B, seqLens: Int32Array.from(prefill) });
        for (let b = 0; b < B; b++) {
          expectAllClose(rows(yp, b, P, f.E, 0, prefill[b]!), rows(fulls[b]!, 0, lens[b]!, f.E, 0, prefill[b]!), `${dtype} prefill of ${b}`, tol);
        }
        const done = prefill.slice();
        while (done.some((d, b) => d < lens[b]!)) {
          const xs = new Float32Array(B * f.E);
          const step = new Int32Array(B);
          for (let b = 0; b < B; b++) {
            if (done[b]! >= lens[b]!) continue;
            xs.set(seqs[b]!.subarray(done[b]! * f.E, (done[b]! + 1) * f.E), b * f.E);
            step[b] = 1;
          }
          const y = forwardOf(layer, xs, { cache, batch: B, seqLens: step });
          for (let b = 0; b < B; b++) {
            if (step[b] === 0) continue;
            expectAllClose(rows(y, b, 1, f.E, 0, 1), rows(fulls[b]!, 0, lens[b]!, f.E, done[b]!, done[b]! + 1), `${dtype} step ${done[b]} of ${b}`, tol);
            done[b] = done[b]! + 1;
          }
        }
        expect(Array.from(cache.lengths)).toEqual(lens);
      }
    });

    test('truncate and regenerate equals the full forward of the new sequence', () => {
      const layer = r.newMha(config);
      const E = f.E;
      const a = randn(makeRng(30), 10 * E);
      const cache = layer.createCache({ maxLength: 16 });
      forwardOf(layer, a, { cache });
      cache.truncate(6);
      const tail = randn(makeRng(31), 3 * E);
      const y = forwardOf(layer, tail, { cache });
      const seq = new Float32Array(9 * E);
      seq.set(a.subarray(0, 6 * E));
      seq.set(tail, 6 * E);
      const full = forwardOf(layer, seq, { causal: true });
      expectAllClose(y, full.subarray(6 * E), 'regenerated rows', TOL);
    });

    if (config.window?.left !== undefined) {
      test('a windowed decode step reads no cached key outside its window', () => {
        const layer = r.newMha(config);
        const E = f.E;
        const x = randn(makeRng(40), 12 * E);
        const cache = layer.createCache({ maxLength: 16 });
        forwardOf(layer, x.subarray(0, 11 * E), { cache });
        const step = x.subarray(11 * E);
        const exported = cache.export();
        // Keys and values at positions < 11 − left are outside the step's window: poison them.
        const L = exported.lengths[0]!;
        const firstVisible = 11 - config.window!.left!;
        for (let h = 0; h < f.Hkv; h++) {
          for (let t = 0; t < firstVisible; t++) {
            exported.k.fill(NaN, (h * L + t) * f.Dh, (h * L + t + 1) * f.Dh);
            exported.v.fill(NaN, (h * L + t) * f.Dh, (h * L + t + 1) * f.Dh);
          }
        }
        const poisoned = layer.createCache({ maxLength: 16, from: exported });
        const want = forwardOf(layer, step, { cache });
        const got = forwardOf(layer, step, { cache: poisoned });
        expect(got.every(Number.isFinite)).toBe(true);
        expectAllClose(got, want, 'step over a poisoned past', { atol: 0, rtol: 0 });
      });
    }

    if (config.rope) {
      test('with a cache, positions default to lengths[b] + i and explicit B·S positions are used as given', () => {
        const layer = r.newMha(config);
        const E = f.E;
        const x = randn(makeRng(50), 6 * E);
        const c1 = layer.createCache({ maxLength: 8 });
        const c2 = layer.createCache({ maxLength: 8 });
        forwardOf(layer, x.subarray(0, 4 * E), { cache: c1 });
        forwardOf(layer, x.subarray(0, 4 * E), { cache: c2, positions: Int32Array.of(0, 1, 2, 3) });
        const a = forwardOf(layer, x.subarray(4 * E), { cache: c1 });
        const b = forwardOf(layer, x.subarray(4 * E), { cache: c2, positions: 4 });
        expectAllClose(b, a, 'explicit = default positions', { atol: 0, rtol: 0 });
        // Shifted positions (e.g. after left padding): the reference with the same positions.
        const c3 = layer.createCache({ maxLength: 8 });
        const pos = Int32Array.of(7, 8, 9, 10, 11, 12);
        const y3 = forwardOf(layer, x, { cache: c3, positions: pos });
        expectAllClose(y3, referenceBlock(ref, x, { B: 1, S: 6, causal: true, positions: pos }), 'shifted positions', TOL);
      });
    }
  });
});

describe('async: one job per forward, same result', () => {
  test.each(['qkv', 'qkv/js'] as const)('%s forwardAsync with rope + qkNorm + window + sinks, with and without a cache', async (name) => {
    const mod = name === 'qkv' ? await import('../lib/index.js') : await import('../lib/js.js');
    const f = families.find((x) => x.name.startsWith('gpt-oss'))!;
    const { config } = build(f, 90);
    const layer = new mod.MultiHeadAttention({ ...config, qkNorm: { q: normWeight(makeRng(1), f.Dh, 1), k: normWeight(makeRng(2), f.Dh, 1) } });
    const x = randn(makeRng(91), 2 * 7 * f.E);
    const want = layer.forward(x, { batch: 2, causal: true }) as Float32Array;
    const got = await layer.forwardAsync(x, { batch: 2, causal: true }) as Float32Array;
    expectAllClose(got, want, 'forwardAsync', { atol: 0, rtol: 0 });
    const c1 = layer.createCache({ batch: 2, maxLength: 8 });
    const c2 = layer.createCache({ batch: 2, maxLength: 8 });
    const a = layer.forward(x, { cache: c1 }) as Float32Array;
    const b = await layer.forwardAsync(x, { cache: c2 }) as Float32Array;
    expectAllClose(b, a, 'forwardAsync with a cache', { atol: 0, rtol: 0 });
    expect(Array.from(c2.lengths)).toEqual([7, 7]);
  });
});

describe('bad settings and positions: clear errors, nothing changed', () => {
  const f = families[0]!;
  const { config } = build(f, 5);
  const with_ = (extra: Record<string, unknown>) => () => new MultiHeadAttention({ ...config, ...extra } as MultiHeadAttentionConfig);

  test('rope settings that contradict each other name the option', () => {
    expectError(with_({ rope: { invFreq: new Float32Array(8), theta: 10000 } }), TypeError, /config\.rope/);
    expectError(with_({ rope: { rotaryDim: 7 } }), RangeError, /rotaryDim/);
    expectError(with_({ rope: { rotaryDim: 18 } }), RangeError, /rotaryDim/);
    expectError(with_({ rope: { style: 'rotate' } }), RangeError, /style/);
    expectError(with_({ rope: { scaling: { type: 'dynamic', factor: 2 } } }), RangeError, /type/);
    expectError(with_({ rope: { scaling: { type: 'linear', factor: Infinity } } }), RangeError, /factor/);
    expectError(with_({ rope: { thetaa: 1 } }), TypeError, /thetaa/);
  });

  test('qkNorm weights of the wrong length, window, sinks, alibi, scale', () => {
    expectError(with_({ qkNorm: { q: new Float32Array(f.Dh + 1) } }), RangeError, /config\.qkNorm\.q/);
    expectError(with_({ qkNorm: { k: new Float32Array(f.Dh), span: 'all' } }), RangeError, /config\.qkNorm\.k/);
    expectError(with_({ qkNorm: { q: new Float32Array(f.Dh), span: 'token' } }), RangeError, /span/);
    expectError(with_({ qkNorm: {} }), TypeError, /config\.qkNorm/);
    expectError(with_({ window: { left: -1 } }), RangeError, /config\.window\.left/);
    expectError(with_({ sinks: new Float32Array(f.H + 1) }), RangeError, /config\.sinks/);
    expectError(with_({ alibi: 'yes' }), TypeError, /config\.alibi/);
    expectError(with_({ scale: NaN }), RangeError, /config\.scale/);
    expectError(with_({ softcap: -1 }), RangeError, /config\.softcap/);
  });

  test('positions of the wrong length or negative, on a layer without rope, or shared over a ragged cache', () => {
    const layer = new MultiHeadAttention(config);
    const x = randn(makeRng(3), 2 * 4 * f.E);
    const out = new Float32Array(x.length).fill(7);
    expectError(() => layer.forward(x, { batch: 2, positions: new Int32Array(5), out }), RangeError, /options\.positions/);
    expectError(() => layer.forward(x, { batch: 2, positions: Int32Array.of(0, 1, -2, 3), out }), RangeError, /options\.positions/);
    expectError(() => layer.forward(x, { batch: 2, positions: -1, out }), RangeError, /options\.positions/);
    expectError(() => layer.forward(x, { batch: 2, positions: new Float32Array(4) as never, out }), TypeError, /options\.positions/);
    expect(out.every((v) => v === 7)).toBe(true);
    const plain = new MultiHeadAttention({ ...config, rope: undefined } as MultiHeadAttentionConfig);
    expectError(() => plain.forward(x, { batch: 2, positions: 0 }), TypeError, /options\.positions/);
    expectError(() => layer.forward(x, { batch: 2, context: x }), TypeError, /options\.context/);

    const cache = layer.createCache({ batch: 2, maxLength: 8 });
    layer.forward(x, { cache, seqLens: Int32Array.of(4, 2) });
    const before = cache.export();
    const step = randn(makeRng(4), 2 * f.E);
    expectError(() => layer.forward(step, { cache, positions: 4 }), RangeError, /different lengths.*options\.positions/);
    expectError(() => layer.forward(step, { cache, positions: Int32Array.of(4) }), RangeError, /options\.positions/);
    expect(Array.from(cache.lengths)).toEqual([4, 2]);
    expect(cache.export()).toEqual(before);
    // B·S positions are accepted with a ragged cache.
    layer.forward(step, { cache, positions: Int32Array.of(4, 2) });
    expect(Array.from(cache.lengths)).toEqual([5, 3]);
  });

  test('an aborted forwardAsync leaves the cache as it was', async () => {
    const layer = new MultiHeadAttention(config);
    const cache = layer.createCache({ maxLength: 8 });
    const x = randn(makeRng(6), 3 * f.E);
    layer.forward(x, { cache });
    const before = cache.export();
    const ac = new AbortController();
    ac.abort();
    await expect(layer.forwardAsync(x, { cache, signal: ac.signal, positions: 3 })).rejects.toThrow(/abort/i);
    expect(cache.export()).toEqual(before);
  });
});
