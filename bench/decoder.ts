// npm run bench:decoder [-- --threads N] [--steps N] [--prefills N] — what RoPE and QK-norm cost in
// a Llama-3-8B-shaped attention layer (E = 4096, H = 32, Hkv = 8, Dh = 128, float32 weights):
//   - prefill of S = 512 tokens (causal, no cache);
//   - one decode step (x [1, 1, E]) over a KV cache of L = 2048 positions (projections, RoPE and
//     qk-norm of the new token, cache append, attention, output projection).
// Two layers with the same weights: a plain one, and one with Llama 3.1's rope (theta 500000,
// llama3 scaling) plus a per-head qk-norm (Qwen 3's). Their calls alternate, so the ratio comes
// from one run on whatever load the machine had; the figures are medians. Target (issue: decoder
// models): rope + qk-norm add at most 3% to prefill and 5% to a decode step.
// Before timing, the two layers' prefill outputs must differ: the settings are really applied in
// the timed layer, not skipped (their correctness is the tests' job: test/layer-decoder.test.ts).
import { MultiHeadAttention, info, setThreads } from '../lib/index.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
setThreads(arg('--threads', 1));
const steps = arg('--steps', 21);
const prefills = arg('--prefills', 5);
const i = info();
console.log(`qkv ${i.version} | ${i.backend} (${i.simd}) | ${i.threads} thread(s) | node ${process.version}`);

const E = 4096, H = 32, Hkv = 8, Dh = 128, L = 2048, S = 512;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

function randomWeight(n: number, seed: number): Float32Array {
  const w = new Float32Array(n);
  let s = seed >>> 0;
  for (let j = 0; j < n; j++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    w[j] = ((s >>> 8) / 2 ** 24 - 0.5) * 0.03;
  }
  return w;
}

const weights = {
  wq: randomWeight(H * Dh * E, 1), wk: randomWeight(Hkv * Dh * E, 2), wv: randomWeight(Hkv * Dh * E, 3), wo: randomWeight(E * H * Dh, 4),
};
const base = { embedDim: E, numHeads: H, numKvHeads: Hkv, headDim: Dh, bias: false, weights };
const normWeight = Float32Array.from({ length: Dh }, (_, d) => 1 + 0.01 * Math.sin(d));
const decoderSettings = {
  rope: { theta: 500000, scaling: { type: 'llama3' as const, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 } },
  qkNorm: { q: normWeight, k: normWeight, eps: 1e-6 },
};
const plain = new MultiHeadAttention(base);
const decoder = new MultiHeadAttention({ ...base, ...decoderSettings });
const layers = [['plain', plain], ['rope + qk-norm', decoder]] as const;

const x = randomWeight(S * E, 9).map((v) => v * 30);
const yPlain = plain.forward(x, { causal: true }) as Float32Array;
const yDecoder = decoder.forward(x, { causal: true }) as Float32Array;
let diff = 0;
for (let j = 0; j < yPlain.length; j++) diff = Math.max(diff, Math.abs(yPlain[j]! - yDecoder[j]!));
if (!(diff > 1e-4)) throw new Error(`the rope + qk-norm layer gave the plain layer's output (max diff ${diff}): settings not applied`);

const now = () => Number(process.hrtime.bigint()) / 1e6;

console.log(`\nprefill S=${S} (causal), median of ${prefills}, alternating`);
const prefillMs: Record<string, number[]> = { plain: [], 'rope + qk-norm': [] };
const out = new Float32Array(S * E);
for (let r = 0; r < prefills + 1; r++) {
  for (const [name, layer] of layers) {
    const t0 = now();
    layer.forward(x, { causal: true, out });
    if (r > 0) prefillMs[name]!.push(now() - t0); // the first round warms up
  }
}
const pp = median(prefillMs.plain!), pd = median(prefillMs['rope + qk-norm']!);
const flops = 2 * S * E * (H * Dh + 2 * Hkv * Dh) + 2 * S * H * Dh * E + 2 * H * S * S * Dh; // projections + causal attention
console.log(`  plain          ${pp.toFixed(1)} ms  (${(flops / pp / 1e6).toFixed(1)} GFLOP/s)`);
console.log(`  rope + qk-norm ${pd.toFixed(1)} ms  ratio ${(pd / pp).toFixed(3)} (target <= 1.03)`);

console.log(`\ndecode step over L=${L}, median of ${steps}, alternating`);
// The past comes in through createCache({ from }) (random keys and values at unit scale): a
// prefill of 2048 tokens per layer would cost more than the whole measurement.
const past = { k: randomWeight(Hkv * L * Dh, 11).map((v) => v * 60), v: randomWeight(Hkv * L * Dh, 12).map((v) => v * 60), lengths: Int32Array.of(L) };
const caches = layers.map(([, layer]) => layer.createCache({ maxLength: L + 1, from: past }));
const token = randomWeight(E, 13).map((v) => v * 30);
const y1 = new Float32Array(E);
const decodeMs: Record<string, number[]> = { plain: [], 'rope + qk-norm': [] };
for (let r = 0; r < steps + 2; r++) {
  layers.forEach(([name, layer], c) => {
    const cache = caches[c]!;
    const t0 = now();
    layer.forward(token, { cache, out: y1 });
    if (r > 1) decodeMs[name]!.push(now() - t0);
    cache.truncate(L);
  });
}
const dp = median(decodeMs.plain!), dd = median(decodeMs['rope + qk-norm']!);
const bytes = 4 * (E * H * Dh * 2 + 2 * E * Hkv * Dh) + 2 * 4 * L * Hkv * Dh; // weights + K/V read
console.log(`  plain          ${dp.toFixed(2)} ms  (${(bytes / dp / 1e6).toFixed(1)} GB/s of weights + K/V)`);
console.log(`  rope + qk-norm ${dd.toFixed(2)} ms  ratio ${(dd / dp).toFixed(3)} (target <= 1.05)`);
