// Greedy decoding with a KV cache per layer: a toy 2-layer attention-only "model" with random
// weights (no training, so the tokens mean nothing), a prompt prefilled in one call, then one token
// per step. It checks the cached decode against recomputing every step from scratch and prints the
// decode speed.   node examples/generate.mjs     (NEW_TOKENS=64 to generate more)
import { MultiHeadAttention, info } from 'qkv';

const VOCAB = 512;
const E = 256;
const HEADS = 8;
const KV_HEADS = 2;   // grouped-query attention: 4 query heads share each K/V head
const LAYERS = 2;
const PROMPT = [1, 17, 42, 7, 99, 3, 250, 11];
const NEW_TOKENS = Number(process.env.NEW_TOKENS ?? 32);
const MAX_LENGTH = PROMPT.length + NEW_TOKENS;

// A seeded PRNG, so every run generates the same tokens.
let seed = 12345;
const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 2;
const random = (n, scale) => Float32Array.from({ length: n }, () => rand() * scale);

const Dh = E / HEADS;
const embedding = random(VOCAB * E, 1);                      // [VOCAB, E]
const unembedding = random(VOCAB * E, 1);                    // [VOCAB, E], the output head
const layers = Array.from({ length: LAYERS }, () => new MultiHeadAttention({
  embedDim: E, numHeads: HEADS, numKvHeads: KV_HEADS,
  weights: {
    wq: random(HEADS * Dh * E, 1 / Math.sqrt(E)), wk: random(KV_HEADS * Dh * E, 1 / Math.sqrt(E)),
    wv: random(KV_HEADS * Dh * E, 1 / Math.sqrt(E)), wo: random(E * HEADS * Dh, 1 / Math.sqrt(E)),
  },
}));

/** RMS-normalizes each row of [n, E] into a new array. */
function rmsNorm(x) {
  const y = new Float32Array(x.length);
  for (let r = 0; r < x.length / E; r++) {
    let ss = 0;
    for (let e = 0; e < E; e++) ss += x[r * E + e] ** 2;
    const s = 1 / Math.sqrt(ss / E + 1e-6);
    for (let e = 0; e < E; e++) y[r * E + e] = x[r * E + e] * s;
  }
  return y;
}

/** Runs tokens through the layers (x += attention(norm(x)) per layer); returns the next token of each row. */
function step(tokens, caches) {
  const n = tokens.length;
  const x = new Float32Array(n * E);
  tokens.forEach((t, i) => x.set(embedding.subarray(t * E, (t + 1) * E), i * E));
  layers.forEach((layer, l) => {
    const options = caches ? { cache: caches[l] } : { causal: true };
    const a = layer.forward(rmsNorm(x), options);
    for (let i = 0; i < x.length; i++) x[i] += a[i];
  });
  const h = rmsNorm(x);
  const next = [];
  for (let r = 0; r < n; r++) {
    let best = 0;
    let bestLogit = -Infinity;
    for (let v = 0; v < VOCAB; v++) {
      let logit = 0;
      for (let e = 0; e < E; e++) logit += h[r * E + e] * unembedding[v * E + e];
      if (logit > bestLogit) [best, bestLogit] = [v, logit];
    }
    next.push(best);
  }
  return next;
}

// Prefill the prompt in one call per layer, then decode one token per call.
const caches = layers.map((layer) => layer.createCache({ maxLength: MAX_LENGTH }));
const tokens = [...PROMPT];
tokens.push(step(PROMPT, caches).at(-1));
const t0 = performance.now();
let steps = 0;
for (; tokens.length < MAX_LENGTH; steps++) tokens.push(step([tokens.at(-1)], caches)[0]);
const ms = performance.now() - t0;
const generated = tokens.slice(PROMPT.length);

// The same greedy choices, recomputing the whole sequence without a cache.
const recomputed = step(tokens.slice(0, -1), null).slice(PROMPT.length - 1);
const agrees = recomputed.every((t, i) => t === generated[i]);

const { backend, simd } = info();
const cacheBytes = caches.reduce((sum, c) => sum + c.byteLength, 0);
console.log(`tokens: ${generated.join(' ')}`);
console.log(`cache: ${LAYERS} layers, ${caches[0].length} positions, ${cacheBytes} bytes; matches full recompute: ${agrees ? 'yes' : 'NO'}`);
console.log(`generated ${generated.length} tokens (${steps} decode steps in ${ms.toFixed(1)} ms): ${(steps / (ms / 1000)).toFixed(0)} tokens/s (${backend}, ${simd})`);
if (!agrees) process.exitCode = 1;
