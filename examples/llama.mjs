// A small Llama-style decoder in plain JavaScript: token embeddings, RMSNorm, attention through
// MultiHeadAttention (RoPE with optional llama3 scaling, grouped-query heads, a KV cache per layer),
// a SwiGLU MLP through Linear, a final norm and the lm_head (the embeddings when tied), decoded
// greedily. It checks itself: the tokens generated step by step with the caches must equal greedy
// decoding by full recompute (every step re-runs the whole sequence with causal: true and no cache),
// and the logits of the two must agree within a tolerance; it exits non-zero if they do not.
//
//   node examples/llama.mjs                 seeded random weights of a small config
//   node examples/llama.mjs <dir>           a Hugging Face checkpoint: <dir>/config.json and
//                                           <dir>/model.safetensors (or sharded, with
//                                           model.safetensors.index.json); F32, BF16 or F16 tensors
//   PROMPT=1,15043,3186 NEW_TOKENS=16       token ids of the prompt (no tokenizer here), tokens to generate
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { Linear, MultiHeadAttention } from 'qkv';

const NEW_TOKENS = Number(process.env.NEW_TOKENS ?? 12);

// ---- safetensors -----------------------------------------------------------------------------

/** One .safetensors file: its header, and a reader of each tensor's raw elements (copied, aligned). */
function openSafetensors(path) {
  const fd = openSync(path, 'r');
  const len = Buffer.alloc(8);
  readSync(fd, len, 0, 8, 0);
  const headerLength = Number(len.readBigUInt64LE(0));
  const headerBytes = Buffer.alloc(headerLength);
  readSync(fd, headerBytes, 0, headerLength, 8);
  const header = JSON.parse(headerBytes.toString('utf8'));
  delete header.__metadata__;
  const dataStart = 8 + headerLength;
  const TYPES = { F32: Float32Array, BF16: Uint16Array, F16: Uint16Array };
  return {
    header,
    /** { dtype, shape, data }: data a Float32Array (F32) or a Uint16Array of bits (BF16, F16). */
    read(name) {
      const t = header[name];
      const Type = TYPES[t.dtype];
      if (!Type) throw new TypeError(`${path}: ${name} is ${t.dtype}; this example reads F32, BF16 and F16`);
      const [begin, end] = t.data_offsets;
      const data = new Type((end - begin) / Type.BYTES_PER_ELEMENT);
      const bytes = new Uint8Array(data.buffer);
      for (let done = 0; done < bytes.length;) {
        const n = readSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30), dataStart + begin + done);
        if (n === 0) throw new RangeError(`${path}: ${name} runs past the end of the file`);
        done += n;
      }
      return { dtype: t.dtype, shape: t.shape, data };
    },
    close: () => closeSync(fd),
  };
}

/** Every tensor of a checkpoint directory (one file, or shards listed by model.safetensors.index.json). */
function openCheckpoint(dir) {
  const index = join(dir, 'model.safetensors.index.json');
  const files = existsSync(index)
    ? [...new Set(Object.values(JSON.parse(readFileSync(index, 'utf8')).weight_map))]
    : ['model.safetensors'];
  const where = new Map();
  for (const file of files) {
    const st = openSafetensors(join(dir, file));
    for (const name of Object.keys(st.header)) where.set(name, st);
  }
  return {
    has: (name) => where.has(name),
    dtype: (name) => where.get(name)?.header[name].dtype,
    read(name) {
      const st = where.get(name);
      if (!st) throw new RangeError(`the checkpoint has no tensor ${name}`);
      return st.read(name);
    },
    close: () => new Set(where.values()).forEach((st) => st.close()),
  };
}

/** IEEE binary16 bits → float. */
function halfToFloat(h) {
  const e = (h >> 10) & 31, m = h & 1023, s = h & 32768 ? -1 : 1;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Widens a tensor's data to float32 (BF16: bits << 16). */
function widen({ dtype, data }) {
  if (dtype === 'F32') return data;
  if (dtype === 'BF16') {
    const bits = new Uint32Array(data.length);
    for (let i = 0; i < data.length; i++) bits[i] = data[i] << 16;
    return new Float32Array(bits.buffer);
  }
  return Float32Array.from(data, halfToFloat);
}

// ---- the model -------------------------------------------------------------------------------

/** Hugging Face rope_scaling → qkv's RopeSettings.scaling. */
function ropeScaling(s) {
  const type = s?.rope_type ?? s?.type;
  if (!s || type === 'default') return undefined;
  if (type === 'linear') return { type: 'linear', factor: s.factor };
  if (type === 'llama3') {
    return {
      type: 'llama3', factor: s.factor, lowFreqFactor: s.low_freq_factor, highFreqFactor: s.high_freq_factor,
      originalMaxPositions: s.original_max_position_embeddings,
    };
  }
  if (type === 'yarn') {
    return {
      type: 'yarn', factor: s.factor, originalMaxPositions: s.original_max_position_embeddings,
      betaFast: s.beta_fast, betaSlow: s.beta_slow, truncate: s.truncate,
    };
  }
  throw new RangeError(`rope_scaling type ${type} is not handled by this example`);
}

/**
 * Builds the decoder from a Hugging Face config and a tensor source: get(name) → { dtype, data }
 * (dtype 'F32' with a Float32Array, or 'BF16' / 'F16' with a Uint16Array of bits), has(name).
 */
function buildModel(config, get, has) {
  const E = config.hidden_size;
  const H = config.num_attention_heads;
  const Hkv = config.num_key_value_heads ?? H;
  const Dh = config.head_dim ?? E / H;
  const V = config.vocab_size;
  const eps = config.rms_norm_eps ?? 1e-6;
  const rope = {
    theta: config.rope_theta ?? 10000,
    rotaryDim: config.partial_rotary_factor ? Math.round(Dh * config.partial_rotary_factor) : undefined,
    scaling: ropeScaling(config.rope_scaling),
  };
  const p = (l) => `model.layers.${l}.`;
  // The projections stay in the checkpoint's dtype (BF16 / F16 as Uint16Array bits, packed 16-bit);
  // if they are not all of one dtype, everything is widened to float32.
  const linearNames = [];
  for (let l = 0; l < config.num_hidden_layers; l++) {
    for (const n of ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj']) linearNames.push(`${p(l)}${n}.weight`);
  }
  const headName = config.tie_word_embeddings || !has('lm_head.weight') ? 'model.embed_tokens.weight' : 'lm_head.weight';
  linearNames.push(headName);
  const dtypes = new Set(linearNames.map((n) => get(n, true)));
  const DTYPE = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' };
  const weightDtype = dtypes.size === 1 ? DTYPE[[...dtypes][0]] : 'float32';
  const w = (name) => (weightDtype === 'float32' ? widen(get(name)) : get(name).data);
  const f32 = (name) => widen(get(name));
  const optional = (name) => (has(name) ? f32(name) : undefined);

  const layers = [];
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const a = `${p(l)}self_attn.`;
    const bq = optional(`${a}q_proj.bias`), bk = optional(`${a}k_proj.bias`), bv = optional(`${a}v_proj.bias`), bo = optional(`${a}o_proj.bias`);
    const bias = Boolean(bq || bk || bv || bo);
    const mlp = (n) => new Linear({ weight: w(`${p(l)}mlp.${n}_proj.weight`), inFeatures: n === 'down' ? config.intermediate_size : E, weightDtype });
    layers.push({
      inputNorm: f32(`${p(l)}input_layernorm.weight`),
      attention: new MultiHeadAttention({
        embedDim: E, numHeads: H, numKvHeads: Hkv, headDim: Dh, bias, weightDtype, rope,
        weights: {
          wq: w(`${a}q_proj.weight`), wk: w(`${a}k_proj.weight`), wv: w(`${a}v_proj.weight`), wo: w(`${a}o_proj.weight`),
          ...(bias ? { bq, bk, bv, bo } : {}),
        },
      }),
      postNorm: f32(`${p(l)}post_attention_layernorm.weight`),
      gate: mlp('gate'), up: mlp('up'), down: mlp('down'),
    });
  }
  const embeddings = get('model.embed_tokens.weight');
  return {
    E, H, Hkv, Dh, V, eps, rope, weightDtype, layers,
    embeddings,
    finalNorm: f32('model.norm.weight'),
    lmHead: new Linear({ weight: w(headName), inFeatures: E, weightDtype }),
    tied: headName === 'model.embed_tokens.weight',
  };
}

/** y = x / √(mean(x²) + eps) · w, per row of [n, E]. */
function rmsNorm(x, weight, E, eps) {
  const y = new Float32Array(x.length);
  for (let r = 0; r < x.length / E; r++) {
    let ss = 0;
    for (let e = 0; e < E; e++) ss += x[r * E + e] ** 2;
    const s = 1 / Math.sqrt(ss / E + eps);
    for (let e = 0; e < E; e++) y[r * E + e] = x[r * E + e] * s * weight[e];
  }
  return y;
}

/**
 * Runs tokens [n] through the model and returns the logits [V] of the last one. With caches the
 * tokens continue the cached sequence; without, they are the whole sequence (causal: true).
 */
function logitsOfLast(model, tokens, caches) {
  const { E, eps, embeddings } = model;
  const n = tokens.length;
  const x = new Float32Array(n * E);
  tokens.forEach((t, i) => x.set(widen({ dtype: embeddings.dtype, data: embeddings.data.subarray(t * E, (t + 1) * E) }), i * E));
  model.layers.forEach((layer, l) => {
    const a = layer.attention.forward(rmsNorm(x, layer.inputNorm, E, eps), caches ? { cache: caches[l] } : { causal: true });
    for (let i = 0; i < x.length; i++) x[i] += a[i];
    const h = rmsNorm(x, layer.postNorm, E, eps);
    const g = layer.gate.forward(h), u = layer.up.forward(h);
    for (let i = 0; i < g.length; i++) g[i] = (g[i] / (1 + Math.exp(-g[i]))) * u[i];   // SiLU(gate) · up
    const d = layer.down.forward(g);
    for (let i = 0; i < x.length; i++) x[i] += d[i];
  });
  return model.lmHead.forward(rmsNorm(x.subarray((n - 1) * E), model.finalNorm, E, eps));
}

const argmax = (a) => a.reduce((best, v, i) => (v > a[best] ? i : best), 0);

// ---- seeded random weights -------------------------------------------------------------------

function randomCheckpoint() {
  const config = {
    hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, intermediate_size: 128,
    num_hidden_layers: 2, vocab_size: 97, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false,
    rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 },
  };
  let seed = 20240731;
  const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 2;
  const random = (n, scale, offset = 0) => ({ dtype: 'F32', data: Float32Array.from({ length: n }, () => offset + rand() * scale) });
  const { hidden_size: E, num_attention_heads: H, num_key_value_heads: Hkv, head_dim: Dh, intermediate_size: I } = config;
  const tensors = new Map([
    ['model.embed_tokens.weight', random(config.vocab_size * E, 1)], ['model.norm.weight', random(E, 0.2, 1)],
    ['lm_head.weight', random(config.vocab_size * E, 1)],   // untied: tied random embeddings just repeat the last token
  ]);
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    tensors.set(`${p}input_layernorm.weight`, random(E, 0.2, 1));
    tensors.set(`${p}post_attention_layernorm.weight`, random(E, 0.2, 1));
    tensors.set(`${p}self_attn.q_proj.weight`, random(H * Dh * E, 3 / Math.sqrt(E)));
    tensors.set(`${p}self_attn.k_proj.weight`, random(Hkv * Dh * E, 3 / Math.sqrt(E)));
    tensors.set(`${p}self_attn.v_proj.weight`, random(Hkv * Dh * E, 1.7 / Math.sqrt(E)));
    tensors.set(`${p}self_attn.o_proj.weight`, random(E * H * Dh, 1.7 / Math.sqrt(H * Dh)));
    tensors.set(`${p}mlp.gate_proj.weight`, random(I * E, 1.7 / Math.sqrt(E)));
    tensors.set(`${p}mlp.up_proj.weight`, random(I * E, 1.7 / Math.sqrt(E)));
    tensors.set(`${p}mlp.down_proj.weight`, random(E * I, 1.7 / Math.sqrt(I)));
  }
  return { config, tensors };
}

// ---- run -------------------------------------------------------------------------------------

const dir = process.argv[2];
let model, config, source;
if (dir) {
  config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const ckpt = openCheckpoint(dir);
  model = buildModel(config, (name, dtypeOnly) => (dtypeOnly ? ckpt.dtype(name) : ckpt.read(name)), ckpt.has);
  ckpt.close();
  source = `checkpoint ${dir}`;
} else {
  const random = randomCheckpoint();
  config = random.config;
  model = buildModel(config, (name, dtypeOnly) => (dtypeOnly ? random.tensors.get(name).dtype : random.tensors.get(name)), (name) => random.tensors.has(name));
  source = 'seeded random weights';
}

const defaultPrompt = [config.bos_token_id ?? 1, 17, 42, 7, 3, 60].map((t) => t % model.V);
const PROMPT = process.env.PROMPT ? process.env.PROMPT.split(',').map(Number) : defaultPrompt;
const scaling = model.rope.scaling ? ` + ${model.rope.scaling.type} scaling` : '';
console.log(`model: ${source}; E=${model.E}, ${model.H} heads (${model.Hkv} kv) of ${model.Dh}, ${model.layers.length} layers, vocab ${model.V}, rope theta ${model.rope.theta}${scaling}, ${model.weightDtype} weights${model.tied ? ', tied lm_head' : ''}`);
console.log(`prompt: ${PROMPT.join(' ')}`);

// Step by step with a cache per layer: the prompt in one call, then one token per call.
const maxLength = PROMPT.length + NEW_TOKENS;
const caches = model.layers.map((layer) => layer.attention.createCache({ maxLength }));
const cached = [];
const cachedLogits = [];
let logits = logitsOfLast(model, PROMPT, caches);
const t0 = performance.now();
for (let i = 0; i < NEW_TOKENS; i++) {
  cachedLogits.push(logits);
  cached.push(argmax(logits));
  if (i + 1 < NEW_TOKENS) logits = logitsOfLast(model, [cached.at(-1)], caches);
}
const ms = performance.now() - t0;

// Greedy decoding by full recompute: each step re-runs the whole sequence, no cache.
const recomputed = [];
let worst = 0;
let scale = 1;
for (let i = 0; i < NEW_TOKENS; i++) {
  const full = logitsOfLast(model, [...PROMPT, ...recomputed], null);
  recomputed.push(argmax(full));
  for (let v = 0; v < full.length; v++) {
    worst = Math.max(worst, Math.abs(full[v] - cachedLogits[i][v]));
    scale = Math.max(scale, Math.abs(full[v]));
  }
}
const tolerance = 1e-3 * scale;
const sameTokens = recomputed.every((t, i) => t === cached[i]);
const ok = sameTokens && worst <= tolerance;

console.log(`tokens: ${cached.join(' ')}`);
console.log(`full recompute: ${recomputed.join(' ')}`);
console.log(`max logit difference ${worst.toExponential(2)} (tolerance ${tolerance.toExponential(2)}); ${NEW_TOKENS} tokens with the cache in ${ms.toFixed(1)} ms`);
console.log(`matches full recompute: ${ok ? 'yes' : 'NO'}`);
if (!ok) process.exitCode = 1;
