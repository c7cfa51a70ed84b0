// npm run bench:modifiers [-- --quick] [--json <file>] — what the score modifiers cost (or save),
// as ratios against the plain call measured in the same run:
//   - causal S=4096, H=8, D=64 with window.left = 511 against no window (ideal ~0.25: each row
//     reads 512 keys instead of 2048 on average);
//   - a decode step (Sq = 1) over 8192 keys, H=8, D=64, with a 256-key window against none (ideal
//     256 / 8192 = 0.03 plus the call's fixed cost);
//   - sinks, and ALiBi, against the plain causal call at S=2048, H=8, D=64 (targets 1.05x, 1.15x).
// Each row runs qkv native on 1 thread and on 2 threads (all the machine has, when fewer) and qkv
// js. The base and the variant alternate call by call, and the figure is the median of each; the
// ratio is median(variant) / median(base) of one run. Every variant's output is compared with
// the js backend's before it is timed. --quick: fewer samples, and js on S/4 for the long rows.
//
// The peer, when onnxruntime-node is installed (see below): the com.microsoft GroupQueryAttention
// operator (bench/onnx-gqa.ts) on 1 and 2 intra-op threads, for the three rows it can express, on
// the same q, k, v, its base and variant alternating as qkv's do. Its output (plain and modified)
// must match qkv's within 1e-4 or the row is reported and not timed. What it computes, row by row
// (kernel paths as the operator's source reads since pull request #28962, which gave the CPU kernel
// a tiled online-softmax path for Sq > 1 that head_sink, softcap and smooth softmax do not take;
// that 1.30 has it shows in the peak memory, bench/RESULTS.md). In every path the window is a
// mask over scores that are computed anyway: no key block before a row's window is skipped.
//   - window S=4096: one first-prompt call, q, k, v [1, 4096, H·D], no past; each row sees keys
//     0 … i. The variant sets local_window_size = 512 (each row's last 512 keys, itself included:
//     qkv's left = 511). Both take the tiled path, which skips the key blocks above the diagonal.
//   - decode over 8192 keys: one token-generation call, q, k, v [1, 1, H·D] after 8191 cached keys
//     (past_key, past_value [1, H, 8192, D] bound as present_key, present_value, so the new key is
//     written in place; seqlens_k = 8191, total_sequence_length = 8192). The variant sets
//     local_window_size = 256 (qkv's left = 255); all 8192 scores are still computed.
//   - sinks S=2048: a first-prompt call as above; the variant adds head_sink [H] = the same sinks
//     (e^(sink_h) joins the softmax's denominator), which moves it off the tiled path onto the one
//     that forms each head's whole [S, S] q·kᵀ, softmaxes it and multiplies it by V: the ratio
//     compares two kernels, not the cost of a sink.
// Both calls of a pair also write present_key, present_value (the prompt rows copy k and v there).
// ALiBi has no fused GroupQueryAttention form (only attention_bias, a materialised [1, H, S, S]
// tensor), so that row has no peer.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { info, scaledDotProductAttention as sdpaNative, setThreads } from '../lib/index.js';
import { scaledDotProductAttention as sdpaJs, alibiSlopes } from '../lib/js.js';
import type { SdpaOptions } from '../lib/types.js';
import { modelBytes } from './onnx.js';
import { gqaGraph, swapMiddle, type GqaModifiers, type GqaShape } from './onnx-gqa.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const jsonFile = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;

interface Row {
  name: string;
  impl: string;
  baseMs: number;
  variantMs: number;
  ratio: number;
  target: string;
}

function randn(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5) * 2;
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;

type Sdpa = (q: Float32Array, k: Float32Array, v: Float32Array, o: SdpaOptions) => unknown;

/** Timed pairs for a budget, from the warm-up pair's time. */
const repsFor = (warmMs: number, budgetMs: number) => Math.max(quick ? 3 : 5, Math.min(quick ? 50 : 400, Math.floor(budgetMs / Math.max(warmMs, 1e-3))));

/** Median ms of base and variant, alternating, after one warm-up call of each. */
function pair(run: Sdpa, q: Float32Array, k: Float32Array, v: Float32Array, base: SdpaOptions, variant: SdpaOptions, budgetMs: number): [number, number] {
  const t0 = performance.now();
  run(q, k, v, base);
  run(q, k, v, variant);
  const reps = repsFor(performance.now() - t0, budgetMs);
  const a: number[] = [], b: number[] = [];
  for (let r = 0; r < reps; r++) {
    let s = performance.now();
    run(q, k, v, base);
    a.push(performance.now() - s);
    s = performance.now();
    run(q, k, v, variant);
    b.push(performance.now() - s);
  }
  return [median(a), median(b)];
}

function maxDiff(x: Float32Array, y: Float32Array): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

interface Case {
  name: string;
  target: string;
  H: number;
  Sq: number;
  Sk: number;
  D: number;
  base: SdpaOptions;
  variant: SdpaOptions;
  /** Shape for js under --quick (the long rows take tens of seconds on the TypeScript kernels). */
  jsQuick?: { Sq: number; Sk: number };
  /** The same pair as onnxruntime's GroupQueryAttention, for the rows it can express. */
  ort?: { base: GqaModifiers; variant: GqaModifiers };
}

const H = 8, D = 64;
const sinks = Float32Array.from({ length: H }, (_, h) => 0.5 * h - 1);
const cases: Case[] = [
  {
    name: 'causal S=4096 H=8 D=64: window.left 511 vs none', target: '≤ 0.3 (ideal ~0.25)', H, Sq: 4096, Sk: 4096, D,
    base: { heads: H, seqQ: 4096, headDim: D, causal: true },
    variant: { heads: H, seqQ: 4096, headDim: D, causal: true, window: { left: 511 } },
    jsQuick: { Sq: 1024, Sk: 1024 },
    ort: { base: {}, variant: { localWindow: 512 } },
  },
  {
    name: 'decode Sq=1 over 8192 keys H=8 D=64: window.left 255 vs none', target: '≤ 0.1', H, Sq: 1, Sk: 8192, D,
    base: { heads: H, seqQ: 1, seqK: 8192, headDim: D, causal: true },
    variant: { heads: H, seqQ: 1, seqK: 8192, headDim: D, causal: true, window: { left: 255 } },
    ort: { base: {}, variant: { localWindow: 256 } },
  },
  {
    name: 'causal S=2048 H=8 D=64: sinks vs none', target: '≤ 1.05', H, Sq: 2048, Sk: 2048, D,
    base: { heads: H, seqQ: 2048, headDim: D, causal: true },
    variant: { heads: H, seqQ: 2048, headDim: D, causal: true, sinks },
    jsQuick: { Sq: 512, Sk: 512 },
    ort: { base: {}, variant: { sinks } },
  },
  {
    name: 'causal S=2048 H=8 D=64: ALiBi vs none', target: '≤ 1.15', H, Sq: 2048, Sk: 2048, D,
    base: { heads: H, seqQ: 2048, headDim: D, causal: true },
    variant: { heads: H, seqQ: 2048, headDim: D, causal: true, alibi: alibiSlopes(H) },
    jsQuick: { Sq: 512, Sk: 512 },
  },
];

const native = info();
const threadCounts = [1, Math.min(2, os.availableParallelism())].filter((t, i, a) => a.indexOf(t) === i);

// onnxruntime-node, the peer: not a devDependency (its install script downloads CUDA binaries
// from outside the npm registry), loaded when present. Install it by hand to compare:
//   npm install --no-save --ignore-scripts onnxruntime-node@1.30.0   (the CPU binaries ship in the tarball)
interface OrtTensor { data: unknown }
interface OrtSession {
  run(feeds: Record<string, OrtTensor>, fetches?: Record<string, OrtTensor | null>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
interface Ort {
  env?: { versions?: { node?: string; common?: string } };
  Tensor: new (type: 'float32', data: Float32Array, dims: number[]) => OrtTensor;
  InferenceSession: { create(model: Uint8Array, options: Record<string, unknown>): Promise<OrtSession> };
}
const ORT_MODULE = 'onnxruntime-node'; // a variable, so the type checker does not look for the package
let ort: Ort | null = null;
const notes: string[] = [];
try {
  const mod = (await import(ORT_MODULE)) as { default?: Ort } & Partial<Ort>;
  ort = mod.default?.InferenceSession ? mod.default : (mod as Ort);
} catch (err) {
  notes.push(`onnxruntime-node not available, its rows skipped (${(err as Error).message.split('\n')[0]})`);
}
const ortVersion = ort ? (ort.env?.versions?.node ?? ort.env?.versions?.common ?? '?') : null;

/** Median ms of base and variant, alternating as pair() does, for async runs. */
async function pairAsync(runBase: () => Promise<unknown>, runVariant: () => Promise<unknown>, budgetMs: number): Promise<[number, number]> {
  const t0 = performance.now();
  await runBase();
  await runVariant();
  const reps = repsFor(performance.now() - t0, budgetMs);
  const a: number[] = [], b: number[] = [];
  for (let r = 0; r < reps; r++) {
    let s = performance.now();
    await runBase();
    a.push(performance.now() - s);
    s = performance.now();
    await runVariant();
    b.push(performance.now() - s);
  }
  return [median(a), median(b)];
}

/**
 * A case's base and variant as onnxruntime GroupQueryAttention sessions on each thread count,
 * on the same q, k, v as the qkv rows. A decode case (Sq < Sk) binds present_key / present_value
 * onto the past inputs, so the operator appends in place instead of copying the cache each call,
 * as a decode loop would run it. Each output is compared with qkv's before it is timed.
 */
async function ortRows(o: Ort, c: Case & { ort: NonNullable<Case['ort']> }): Promise<Row[]> {
  const shape: GqaShape = { B: 1, H: c.H, Hkv: c.H, Sq: c.Sq, Sk: c.Sk, D: c.D };
  const { Sq, Sk, D } = c;
  const sharedCache = Sk > Sq;
  const q = randn(c.H * Sq * D, 1), k = randn(c.H * Sk * D, 2), v = randn(c.H * Sk * D, 3);
  const reference = (native.backend === 'native' ? sdpaNative : sdpaJs) as Sdpa;
  setThreads(native.threads);
  const expected = [reference(q, k, v, c.base) as Float32Array, reference(q, k, v, c.variant) as Float32Array];
  // The new tokens are the last Sq of k and v, in bshd; the cache (decode) is all of them, in bhsd.
  const newTokens = (x: Float32Array) => {
    const y = new Float32Array(c.H * Sq * D);
    for (let h = 0; h < c.H; h++) y.set(x.subarray((h * Sk + Sk - Sq) * D, (h * Sk + Sk) * D), h * Sq * D);
    return swapMiddle(y, 1, c.H, Sq, D);
  };
  const t = (x: Float32Array, dims: number[]) => new o.Tensor('float32', x, dims);
  const feeds: Record<string, OrtTensor> = { q: t(swapMiddle(q, 1, c.H, Sq, D), [1, Sq, c.H * D]), k: t(newTokens(k), [1, Sq, c.H * D]), v: t(newTokens(v), [1, Sq, c.H * D]) };
  let fetches: Record<string, OrtTensor | null> | undefined;
  if (sharedCache) {
    feeds.past_key = t(k.slice(), [1, c.H, Sk, D]);
    feeds.past_value = t(v.slice(), [1, c.H, Sk, D]);
    fetches = { out: null, present_key: feeds.past_key, present_value: feeds.past_value };
  }
  const models = [c.ort.base, c.ort.variant].map((m) => modelBytes(gqaGraph(shape, { ...m, sharedCache })));
  const rows: Row[] = [];
  for (const threads of threadCounts) {
    const impl = `onnxruntime GQA ${threads} thread${threads > 1 ? 's' : ''}`;
    let sessions: OrtSession[] = [];
    try {
      sessions = await Promise.all(models.map((bytes) => o.InferenceSession.create(bytes, {
        intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
      })));
      const runs = sessions.map((s) => () => s.run(feeds, fetches));
      let mismatch = '';
      for (const [i, run] of runs.entries()) {
        const out = swapMiddle((await run()).out!.data as Float32Array, 1, Sq, c.H, D);
        const diff = maxDiff(out, expected[i]!);
        if (!(diff < 1e-4)) mismatch += `${i === 0 ? 'plain' : 'with the modifier'}: output differs from qkv by ${diff}; `;
      }
      if (mismatch) {
        console.log(`${c.name} [${impl}]: ${mismatch}not timed`);
        notes.push(`${c.name} [${impl}]: ${mismatch}not timed`);
        continue;
      }
      const [b, x] = await pairAsync(runs[0]!, runs[1]!, quick ? 1500 : 6000);
      rows.push({ name: c.name, impl, baseMs: b, variantMs: x, ratio: x / b, target: '— (peer)' });
      console.log(`${c.name} [${impl}]: ${b.toFixed(3)} ms → ${x.toFixed(3)} ms = ${(x / b).toFixed(3)}×`);
    } catch (err) {
      const note = `${c.name} [${impl}]: does not run here (${(err as Error).message.split('\n')[0]!.slice(0, 160)})`;
      console.log(note);
      notes.push(note);
      break;
    } finally {
      for (const s of sessions) await s.release();
    }
  }
  return rows;
}

console.log(`qkv ${native.version} | ${native.backend} (${native.simd}) | ${os.cpus()[0]?.model ?? 'unknown CPU'} | node ${process.version}`);
console.log(`load average at start: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}${quick ? ' | --quick' : ''}`);
console.log(`peer: onnxruntime-node ${ortVersion ?? '— (not installed)'}\n`);

const rows: Row[] = [];
for (const c of cases) {
  const impls: Array<[string, Sdpa, number, { Sq: number; Sk: number }]> = [];
  if (native.backend === 'native') for (const t of threadCounts) impls.push([`native ${t} thread${t > 1 ? 's' : ''}`, sdpaNative as Sdpa, t, c]);
  impls.push(['js', sdpaJs as Sdpa, 1, quick && c.jsQuick ? c.jsQuick : c]);
  for (const [impl, run, threads, shape] of impls) {
    if (impl.startsWith('native')) setThreads(threads);
    const resize = (o: SdpaOptions): SdpaOptions => ({ ...o, seqQ: shape.Sq, ...(o.seqK !== undefined ? { seqK: shape.Sk } : {}) });
    const base = resize(c.base), variant = resize(c.variant);
    const q = randn(c.H * shape.Sq * c.D, 1), k = randn(c.H * shape.Sk * c.D, 2), v = randn(c.H * shape.Sk * c.D, 3);
    if (impl !== 'js') {
      const diff = maxDiff(run(q, k, v, variant) as Float32Array, (sdpaJs as Sdpa)(q, k, v, variant) as Float32Array);
      if (!(diff < 1e-4)) {
        console.log(`${c.name} [${impl}]: output differs from js by ${diff}; not timed`);
        continue;
      }
    }
    const budget = impl === 'js' ? (quick ? 2000 : 8000) : quick ? 1500 : 6000;
    const [b, x] = pair(run, q, k, v, base, variant, budget);
    const name = shape === c || (shape.Sq === c.Sq && shape.Sk === c.Sk) ? c.name : `${c.name} (js at S=${shape.Sq})`;
    rows.push({ name, impl, baseMs: b, variantMs: x, ratio: x / b, target: c.target });
    console.log(`${name} [${impl}]: ${b.toFixed(3)} ms → ${x.toFixed(3)} ms = ${(x / b).toFixed(3)}× (target ${c.target})`);
  }
  if (ort && c.ort) rows.push(...(await ortRows(ort, { ...c, ort: c.ort })));
}
setThreads(native.threads);

console.log('\n| workload | implementation | plain (ms) | with the modifier (ms) | ratio | target |');
console.log('|---|---|---:|---:|---:|---|');
for (const r of rows) {
  console.log(`| ${r.name} | ${r.impl} | ${r.baseMs.toFixed(3)} | ${r.variantMs.toFixed(3)} | ${r.ratio.toFixed(3)} | ${r.target} |`);
}
if (notes.length) console.log(`\n${notes.map((n) => `note: ${n}`).join('\n')}`);
if (jsonFile) {
  const peers = { 'onnxruntime-node': ortVersion };
  writeFileSync(jsonFile, JSON.stringify({ cpu: os.cpus()[0]?.model, simd: native.simd, quick, peers, rows, notes }, null, 2));
}
