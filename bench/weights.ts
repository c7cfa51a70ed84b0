// npm run bench:weights [-- --threads N] [--steps N] — float32 against bfloat16 weights in an
// 8B-class attention layer (E = 4096, H = 32, Hkv = 8, Dh = 128, the shape of Llama-3-8B):
//   - packed memory of the layer's four projections (ArrayBuffer bytes the constructor allocates);
//   - one decode step (x [1, 1, E]) over a float32 KV cache of L = 2048 positions: projections,
//     cache append, attention, output projection;
//   - prefill of S = 512 tokens (causal, no cache).
// Both layers hold the same weights: the float32 one the exact widening of the bfloat16 bits,
// and the bench checks that their outputs are bitwise equal before timing anything.
//
// A decode step is bandwidth-bound: it reads every packed weight once plus the cache, so the
// figure is GB/s of those bytes, set against this CPU's read bandwidth (bench/ceilings.ts: DRAM's, or
// the L3's if all the copies below fit in it; measured when bench/.cache has none for this CPU;
// `npm run bench:peak` measures again). In a model every layer's weights come from DRAM, and this VM
// reports an L3 (480 MiB) larger than one layer's weights, so each timed step runs `--copies`
// layers (default 8: 1.3 GB of float32 weights, 0.67 GB of bfloat16) one after another, each with
// its own cache, as a decoder's layers do, and the figure is per layer. (Flushing with a big
// TypedArray fill does not do it: memset's non-temporal stores leave the cache in place.)
// float32 and bfloat16 steps alternate, so their ratio comes from one run on whatever load the
// machine had.
import { describeCeilings, formatPercent, loadCeilings, percentOf, readLimit } from './ceilings.js';
import { MultiHeadAttention, info, setThreads } from '../lib/index.js';
import { widenHalves } from '../lib/kernels/half.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
setThreads(arg('--threads', 1));
const steps = arg('--steps', 15);
const prefills = arg('--prefills', 5);
const copies = arg('--copies', 8);
const i = info();
console.log(`qkv ${i.version} | ${i.backend} (${i.simd}) | ${i.threads} thread(s) | node ${process.version}`);

const E = 4096, H = 32, Hkv = 8, Dh = 128, L = 2048, S = 512;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** A weight's bfloat16 bits: N(0, 0.02)-ish values, as a checkpoint has (sign, exponent, 7 bits). */
function bf16Weight(n: number, seed: number): Uint16Array {
  const w = new Uint16Array(n);
  let s = seed >>> 0;
  for (let j = 0; j < n; j++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const exponent = 118 + (s >>> 29); // 2^-9 .. 2^-2
    w[j] = ((s >>> 28) & 1) << 15 | exponent << 7 | ((s >>> 8) & 0x7f);
  }
  return w;
}

const bits = {
  wq: bf16Weight(H * Dh * E, 1), wk: bf16Weight(Hkv * Dh * E, 2), wv: bf16Weight(Hkv * Dh * E, 3), wo: bf16Weight(E * H * Dh, 4),
};
const config = { embedDim: E, numHeads: H, numKvHeads: Hkv, headDim: Dh, bias: false };

/** A layer and the ArrayBuffer bytes its constructor kept (the packed weights). */
function build(make: () => InstanceType<typeof MultiHeadAttention>): { layer: InstanceType<typeof MultiHeadAttention>; bytes: number } {
  global.gc?.();
  const before = process.memoryUsage().arrayBuffers;
  const layer = make();
  global.gc?.();
  return { layer, bytes: process.memoryUsage().arrayBuffers - before };
}
const layers = { f32: [] as Array<InstanceType<typeof MultiHeadAttention>>, bf16: [] as Array<InstanceType<typeof MultiHeadAttention>> };
const packedBytes = { f32: 0, bf16: 0 };
for (let c = 0; c < copies; c++) {
  // Copy c holds the same weights rotated by c elements: equal sizes, different memory.
  const copy = c === 0 ? bits : Object.fromEntries(Object.entries(bits).map(([key, w]) => [key, w.map((_, j) => w[(j + c) % w.length]!)])) as typeof bits;
  const bf16 = build(() => new MultiHeadAttention({ ...config, weightDtype: 'bfloat16', weights: copy }));
  const f32 = build(() => new MultiHeadAttention({
    ...config,
    weights: {
      wq: widenHalves(copy.wq, 'bfloat16'), wk: widenHalves(copy.wk, 'bfloat16'),
      wv: widenHalves(copy.wv, 'bfloat16'), wo: widenHalves(copy.wo, 'bfloat16'),
    },
  }));
  layers.bf16.push(bf16.layer);
  layers.f32.push(f32.layer);
  if (c === 0) [packedBytes.f32, packedBytes.bf16] = [f32.bytes, bf16.bytes];
}
const weightBytes = { f32: 4 * (2 * E * H * Dh + 2 * E * Hkv * Dh), bf16: 2 * (2 * E * H * Dh + 2 * E * Hkv * Dh) };
const MB = (b: number) => (b / 1e6).toFixed(1);
console.log(`packed weights of one layer: float32 ${MB(packedBytes.f32)} MB, bfloat16 ${MB(packedBytes.bf16)} MB (${(packedBytes.bf16 / packedBytes.f32).toFixed(3)}x)` +
  `${global.gc ? '' : ' (run with node --expose-gc for exact figures)'}; the weights themselves: ${MB(weightBytes.f32)} / ${MB(weightBytes.bf16)} MB`);

// Same cache contents for both layers: L positions of smooth values.
const kv = new Float32Array(Hkv * L * Dh).map((_, j) => Math.sin(j * 0.001));
const from = { k: kv, v: kv.map((x) => -x), lengths: Int32Array.of(L) };
const caches = {
  f32: layers.f32.map((l) => l.createCache({ maxLength: L + 1, from })),
  bf16: layers.bf16.map((l) => l.createCache({ maxLength: L + 1, from })),
};
const token = new Float32Array(E).map((_, j) => Math.cos(j * 0.37));

// Parity first: the widened float32 layer and the bfloat16 one give the same bits.
const yF = layers.f32[0]!.forward(token, { cache: caches.f32[0] });
const yB = layers.bf16[0]!.forward(token, { cache: caches.bf16[0] });
for (let j = 0; j < E; j++) {
  if (!Object.is(yF[j], yB[j])) throw new Error(`decode outputs differ at ${j}: ${yF[j]} vs ${yB[j]}`);
}

const decodeMs = { f32: [] as number[], bf16: [] as number[] };
for (let r = 0; r < steps; r++) {
  for (const kind of r % 2 === 0 ? (['f32', 'bf16'] as const) : (['bf16', 'f32'] as const)) {
    for (const cache of caches[kind]) cache.truncate(L);
    const t0 = process.hrtime.bigint();
    for (let c = 0; c < copies; c++) layers[kind][c]!.forward(token, { cache: caches[kind][c] });
    decodeMs[kind].push(Number(process.hrtime.bigint() - t0) / 1e6 / copies);
  }
}

const { ceilings, source } = loadCeilings();
console.log(ceilings ? `limits: ${describeCeilings(ceilings, source)}` : 'limits: not measured on this CPU ("% of limit" left blank)');

const cacheBytes = 2 * L * Hkv * Dh * 4;
const row = (name: string, ms: number, bytes: number) => {
  const gbs = bytes / ms / 1e6;
  const limit = ceilings ? readLimit(ceilings, i.threads, copies * bytes) : null; // every copy is read between two reads of one
  return `| ${name} | ${ms.toFixed(2)} ms | ${MB(bytes)} MB | ${gbs.toFixed(1)} GB/s | ${formatPercent(percentOf(gbs, limit), limit)} |`;
};
const dF = median(decodeMs.f32), dB = median(decodeMs.bf16);
console.log(`\ndecode step per layer, L = ${L}, float32 KV cache; median of ${steps} passes over ${copies} layers`);
console.log('| weights | step | bytes read (weights + K/V) | GB/s | % of limit |');
console.log('|---|---|---|---|---|');
console.log(row('float32', dF, weightBytes.f32 + cacheBytes));
console.log(row('bfloat16', dB, weightBytes.bf16 + cacheBytes));
console.log(`bfloat16 / float32 decode time: ${(dB / dF).toFixed(3)}x`);

const x = new Float32Array(S * E).map((_, j) => Math.sin(j * 0.013));
const outF = new Float32Array(S * E), outB = new Float32Array(S * E);
layers.f32[0]!.forward(x, { causal: true, out: outF });
layers.bf16[0]!.forward(x, { causal: true, out: outB });
for (let j = 0; j < S * E; j++) {
  if (!Object.is(outF[j], outB[j])) throw new Error(`prefill outputs differ at ${j}: ${outF[j]} vs ${outB[j]}`);
}
const prefillMs = { f32: [] as number[], bf16: [] as number[] };
for (let r = 0; r < prefills; r++) {
  for (const kind of r % 2 === 0 ? (['f32', 'bf16'] as const) : (['bf16', 'f32'] as const)) {
    const t0 = process.hrtime.bigint();
    layers[kind][0]!.forward(x, { causal: true, out: kind === 'f32' ? outF : outB });
    prefillMs[kind].push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
}
const pF = median(prefillMs.f32), pB = median(prefillMs.bf16);
console.log(`\nprefill S = ${S}, causal, median of ${prefills}: float32 ${pF.toFixed(1)} ms, bfloat16 ${pB.toFixed(1)} ms, bfloat16 / float32 ${(pB / pF).toFixed(3)}x`);
