// examples/llama.mjs really runs: with its seeded random weights, and with tiny Hugging Face
// checkpoint directories written here (config.json + model.safetensors, F32 with its own lm_head
// and BF16 with tied embeddings). The example checks cached decoding against full recompute
// itself; here its tokens are also compared with a float64 Llama written from the formulas, so a
// loader that read a tensor wrong (or a wrong mapping of the config) fails. (Imports 'qkv', i.e. dist/.)
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, test } from 'vitest';
import { root } from './helpers.js';
import { referenceRope } from './rope-reference.js';
import type { RopeSettings } from '../lib/index.js';

const run = (args: string[], env: Record<string, string> = {}) =>
  promisify(execFile)(process.execPath, ['examples/llama.mjs', ...args], { cwd: root, env: { ...process.env, ...env } });

test('examples/llama.mjs with seeded random weights decodes with caches and matches full recompute', async () => {
  const { stdout } = await run([]);
  const lines = stdout.trim().split('\n');
  expect(lines[0]).toMatch(/^model: seeded random weights; E=64, 4 heads \(2 kv\) of 16, 2 layers, vocab 97, rope theta 10000 \+ llama3 scaling, float32 weights$/);
  expect(lines).toContainEqual(expect.stringMatching(/^tokens: (\d+ ){11}\d+$/));
  expect(lines.at(-1)).toBe('matches full recompute: yes');
});

// ---- a tiny checkpoint -------------------------------------------------------------------------

const config = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama',
  hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, intermediate_size: 48,
  num_hidden_layers: 2, vocab_size: 61, rms_norm_eps: 1e-5, rope_theta: 10000, bos_token_id: 1,
  rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 32 },
};
const { hidden_size: E, num_attention_heads: H, num_key_value_heads: Hkv, head_dim: Dh, intermediate_size: I, vocab_size: V } = config;
const rope: RopeSettings = {
  theta: 10000, scaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 32 },
};
const PROMPT = [1, 5, 33, 8, 20];
const NEW_TOKENS = 8;

let seed = 77;
const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 2;
const tensor = (shape: number[], scale: number, offset = 0) =>
  ({ shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => offset + rand() * scale) });

function weights(tied: boolean): Map<string, { shape: number[]; data: Float32Array }> {
  const t = new Map<string, { shape: number[]; data: Float32Array }>();
  t.set('model.embed_tokens.weight', tensor([V, E], tied ? 0.05 : 1));   // tied: small, or the residual just repeats the last token
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    t.set(`${p}input_layernorm.weight`, tensor([E], 0.3, 1));
    t.set(`${p}self_attn.q_proj.weight`, tensor([H * Dh, E], 3 / Math.sqrt(E)));
    t.set(`${p}self_attn.k_proj.weight`, tensor([Hkv * Dh, E], 3 / Math.sqrt(E)));
    t.set(`${p}self_attn.v_proj.weight`, tensor([Hkv * Dh, E], 1.7 / Math.sqrt(E)));
    t.set(`${p}self_attn.o_proj.weight`, tensor([E, H * Dh], 1.7 / Math.sqrt(H * Dh)));
    t.set(`${p}post_attention_layernorm.weight`, tensor([E], 0.3, 1));
    t.set(`${p}mlp.gate_proj.weight`, tensor([I, E], 1.7 / Math.sqrt(E)));
    t.set(`${p}mlp.up_proj.weight`, tensor([I, E], 1.7 / Math.sqrt(E)));
    t.set(`${p}mlp.down_proj.weight`, tensor([E, I], 1.7 / Math.sqrt(I)));
  }
  t.set('model.norm.weight', tensor([E], 0.3, 1));
  if (!tied) t.set('lm_head.weight', tensor([V, E], 1));
  return t;
}

/** float32 → bfloat16 bits, round to nearest even. */
function toBf16(a: Float32Array): Uint16Array {
  const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
  return Uint16Array.from(u, (x) => (x + 0x7fff + ((x >>> 16) & 1)) >>> 16);
}
const fromBf16 = (b: Uint16Array) => new Float32Array(Uint32Array.from(b, (x) => x << 16).buffer);

/** A .safetensors file: u64 LE header length, JSON header (space-padded to 8 bytes), data. */
function safetensors(tensors: Map<string, { shape: number[]; data: Float32Array }>, bf16: boolean): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, { shape, data }] of [...tensors].reverse()) {   // file order need not be name order
    const arr = bf16 ? toBf16(data) : data;
    const bytes = Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength);
    header[name] = { dtype: bf16 ? 'BF16' : 'F32', shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json, 'utf8'), ...chunks]);
}

// ---- a float64 Llama from the formulas ----------------------------------------------------------

/** y = W x for W [out, in] (row-major), x [in]. */
const matvec = (w: ArrayLike<number>, x: ArrayLike<number>, out: number) =>
  Float64Array.from({ length: out }, (_, o) => { let s = 0; for (let i = 0; i < x.length; i++) s += w[o * x.length + i]! * x[i]!; return s; });
function rms(x: ArrayLike<number>, w: ArrayLike<number>, eps: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i]! ** 2;
  const s = 1 / Math.sqrt(ss / x.length + eps);
  return Float64Array.from({ length: x.length }, (_, i) => x[i]! * s * w[i]!);
}

/** Greedy tokens of the reference model from the prompt, recomputing the whole sequence each step. */
function referenceTokens(t: Map<string, Float32Array>, tied: boolean): number[] {
  const tokens = [...PROMPT];
  for (let step = 0; step < NEW_TOKENS; step++) {
    const S = tokens.length;
    let xs = tokens.map((tok) => Float64Array.from(t.get('model.embed_tokens.weight')!.subarray(tok * E, (tok + 1) * E)));
    for (let l = 0; l < config.num_hidden_layers; l++) {
      const p = `model.layers.${l}.`;
      const h = xs.map((x) => rms(x, t.get(`${p}input_layernorm.weight`)!, config.rms_norm_eps));
      // q [S, H, Dh], k and v [S, Hkv, Dh], rotated at positions 0..S-1
      const proj = (n: string, heads: number) => Float32Array.from(h.flatMap((r) => [...matvec(t.get(`${p}self_attn.${n}_proj.weight`)!, r, heads * Dh)]));
      const positions = Int32Array.from({ length: S }, (_, i) => i);
      const q = referenceRope(proj('q', H), 1, H, S, Dh, 'bshd', positions, rope);
      const k = referenceRope(proj('k', Hkv), 1, Hkv, S, Dh, 'bshd', positions, rope);
      const v = proj('v', Hkv);
      const attn = xs.map((_, i) => {
        const o = new Float64Array(H * Dh);
        for (let hh = 0; hh < H; hh++) {
          const g = Math.floor(hh / (H / Hkv));
          const s = Array.from({ length: i + 1 }, (_, j) => {
            let d = 0;
            for (let x = 0; x < Dh; x++) d += q[(i * H + hh) * Dh + x]! * k[(j * Hkv + g) * Dh + x]!;
            return d / Math.sqrt(Dh);
          });
          const m = Math.max(...s);
          const e = s.map((z) => Math.exp(z - m));
          const z = e.reduce((a, b) => a + b);
          for (let j = 0; j <= i; j++) for (let x = 0; x < Dh; x++) o[hh * Dh + x]! += (e[j]! / z) * v[(j * Hkv + g) * Dh + x]!;
        }
        return matvec(t.get(`${p}self_attn.o_proj.weight`)!, o, E);
      });
      xs = xs.map((x, i) => x.map((val, e) => val + attn[i]![e]!));
      xs = xs.map((x) => {
        const n = rms(x, t.get(`${p}post_attention_layernorm.weight`)!, config.rms_norm_eps);
        const g = matvec(t.get(`${p}mlp.gate_proj.weight`)!, n, I), u = matvec(t.get(`${p}mlp.up_proj.weight`)!, n, I);
        const d = matvec(t.get(`${p}mlp.down_proj.weight`)!, g.map((a, i) => (a / (1 + Math.exp(-a))) * u[i]!), E);
        return x.map((val, e) => val + d[e]!);
      });
    }
    const logits = matvec(t.get(tied ? 'model.embed_tokens.weight' : 'lm_head.weight')!, rms(xs.at(-1)!, t.get('model.norm.weight')!, config.rms_norm_eps), V);
    tokens.push(logits.reduce((best, val, i) => (val > logits[best]! ? i : best), 0));
  }
  return tokens.slice(PROMPT.length);
}

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

test.each([
  { dtype: 'F32', bf16: false, tied: false },
  { dtype: 'BF16', bf16: true, tied: true },
])('examples/llama.mjs loads a $dtype checkpoint (tied: $tied) and decodes as a float64 reference does', async ({ bf16, tied }) => {
  const dir = mkdtempSync(join(tmpdir(), 'qkv-llama-'));
  dirs.push(dir);
  const t = weights(tied);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, tie_word_embeddings: tied, torch_dtype: bf16 ? 'bfloat16' : 'float32' }));
  writeFileSync(join(dir, 'model.safetensors'), safetensors(t, bf16));
  const { stdout } = await run([dir], { PROMPT: PROMPT.join(','), NEW_TOKENS: String(NEW_TOKENS) });
  const lines = stdout.trim().split('\n');
  expect(lines[0]).toBe(`model: checkpoint ${dir}; E=32, 4 heads (2 kv) of 16, 2 layers, vocab 61, rope theta 10000 + llama3 scaling, ${bf16 ? 'bfloat16' : 'float32'} weights${tied ? ', tied lm_head' : ''}`);
  expect(lines[1]).toBe(`prompt: ${PROMPT.join(' ')}`);
  expect(lines.at(-1)).toBe('matches full recompute: yes');
  const tokens = lines.find((l) => l.startsWith('tokens: '))!.slice(8).split(' ').map(Number);
  const values = new Map([...t].map(([name, { data }]) => [name, bf16 ? fromBf16(toBf16(data)) : data]));
  expect(tokens).toEqual(referenceTokens(values, tied));
});
