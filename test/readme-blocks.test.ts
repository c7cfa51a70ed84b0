// The README's runnable code blocks run as written, from a fresh project that has qkv in its
// node_modules (a symlink to this package, so it needs dist/): the ESM and CommonJS lines, the
// quick start, the lse merge, the float32 state_dict reader, readSafetensors and the GPT-2 block. Where a block
// leaves an input to the reader (x), a prelude supplies it; where it builds a layer from files, the
// files are written here and the layer's output is compared with one built in this process from
// the same arrays, so a reader that got the bytes wrong fails.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MultiHeadAttention } from '../lib/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** The first ```lang block after the first line of README.md that contains `anchor`. */
function blockAfter(anchor: string, lang = 'js'): string {
  const at = readme.indexOf(anchor);
  expect(at, `README.md contains ${JSON.stringify(anchor)}`).toBeGreaterThanOrEqual(0);
  const m = new RegExp(`^\`\`\`${lang}\\n([\\s\\S]*?)^\`\`\`$`, 'm').exec(readme.slice(at));
  expect(m, `a \`\`\`${lang} block follows ${JSON.stringify(anchor)}`).not.toBeNull();
  return m![1];
}

let app = '';
/** Runs code in the consumer project: an ES module by default, CommonJS with cjs. */
function run(code: string, { cjs = false } = {}) {
  const args = cjs ? ['-e', code] : ['--input-type=module', '-e', code];
  const r = spawnSync(process.execPath, args, { cwd: app, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  expect(r.stderr, 'stderr').toBe('');
  expect(r.status, 'exit status').toBe(0);
  return r.stdout;
}
/** The last stdout line, as JSON. */
const lastJson = (out: string) => JSON.parse(out.trim().split('\n').at(-1)!);

/** Deterministic values in [-0.5, 0.5), rounded to float32. */
function values(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}
const f32Bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** A .safetensors file: u64 LE header length, JSON header (space-padded to 8 bytes), data. */
function safetensors(tensors: Array<{ name: string; dtype: string; shape: number[]; bytes: Buffer }>): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json, 'utf8'), ...tensors.map((t) => t.bytes)]);
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe.skipIf(!existsSync(dist))('README code blocks run as written (needs dist/)', () => {
  beforeAll(() => {
    app = mkdtempSync(join(tmpdir(), 'qkv-readme-'));
    writeFileSync(join(app, 'package.json'), '{ "name": "readme-consumer", "version": "1.0.0", "private": true }\n');
    mkdirSync(join(app, 'node_modules'));
    symlinkSync(root, join(app, 'node_modules', 'qkv'), 'dir');
  });
  afterAll(() => {
    if (app) rmSync(app, { recursive: true, force: true });
  });

  test('"Using it from another project": the ESM and the CommonJS lines', () => {
    const at = readme.indexOf('### Using it from another project');
    expect(at).toBeGreaterThanOrEqual(0);
    const rest = readme.slice(at);
    const esm = /ESM[^\n]*:\n\n```js\n([\s\S]*?)^```$/m.exec(rest)?.[1];
    const cjs = /CommonJS[^\n]*:\n\n```js\n([\s\S]*?)^```$/m.exec(rest)?.[1];
    expect(esm).toMatch(/^import .* from 'qkv';/);
    expect(cjs).toMatch(/require\('qkv'\)/);
    expect(run(esm!).trim()).toMatch(/^(native|js)$/);
    expect(run(cjs!, { cjs: true }).trim()).toMatch(/^(native|js)$/);
  });

  test('Quick start', () => {
    expect(run(blockAfter('## Quick start'))).toMatch(/backend: '(native|js)'/);
  });

  test('"Rotary embeddings and QK-norm": a rotation, and a cached step equal to the full forward', () => {
    expect(run(blockAfter('## Rotary embeddings and QK-norm')).trim().split('\n')).toEqual(['32 768', 'true']);
  });

  test('"Windows, sinks, ALiBi and lse": two halves of the keys merged through their lse give the whole', () => {
    expect(run(blockAfter('## Windows, sinks, ALiBi and lse')).trim()).toBe('true');
  });

  test('"From a PyTorch state_dict": the float32 files become the same layer', () => {
    const E = 768, S = 3;
    const w = {
      inProjWeight: values(3 * E * E, 1), inProjBias: values(3 * E, 2),
      outProjWeight: values(E * E, 3), outProjBias: values(E, 4),
    };
    // The Python block's file names: `mha/{name}.f32` for each state_dict entry.
    mkdirSync(join(app, 'mha'), { recursive: true });
    writeFileSync(join(app, 'mha/in_proj_weight.f32'), f32Bytes(w.inProjWeight));
    writeFileSync(join(app, 'mha/in_proj_bias.f32'), f32Bytes(w.inProjBias));
    writeFileSync(join(app, 'mha/out_proj.weight.f32'), f32Bytes(w.outProjWeight));
    writeFileSync(join(app, 'mha/out_proj.bias.f32'), f32Bytes(w.outProjBias));
    const python = blockAfter('### From a PyTorch state_dict', 'python');
    expect(python).toMatch(/makedirs\("mha"/); // tofile() does not create the directory

    const x = Float32Array.from({ length: S * E }, (_, i) => Math.sin(i));
    const code = `${blockAfter('little-endian float32:\n\n```python')}
const x = Float32Array.from({ length: ${S * E} }, (_, i) => Math.sin(i));
console.log(JSON.stringify(Array.from(mha.forward(x))));`;
    const got = lastJson(run(code)) as number[];
    const want = new MultiHeadAttention({ embedDim: E, numHeads: 12, weights: w }).forward(x) as Float32Array;
    expect(maxDiff(got, want)).toBeLessThan(1e-5);
  });

  test('readSafetensors reads F32, BF16 and F16 tensors (aligned or not) and skips the rest', () => {
    const block = blockAfter('A `.safetensors` file is');
    expect(block).toMatch(/^function readSafetensors/m);
    const a = values(6, 5), b = values(5, 6);
    // A 3-element F16 tensor first, so the F32 data that follows starts at an offset that is not a
    // multiple of 4 (a copy); a 1-byte U8 tensor then leaves the BF16 one misaligned for 2 bytes.
    writeFileSync(join(app, 'tiny.safetensors'), safetensors([
      { name: 'half', dtype: 'F16', shape: [3], bytes: Buffer.from([0, 60, 0, 64, 0, 66]) },
      { name: 'a', dtype: 'F32', shape: [2, 3], bytes: f32Bytes(a) },
      { name: 'b', dtype: 'F32', shape: [5], bytes: f32Bytes(b) },
      { name: 'flag', dtype: 'U8', shape: [1], bytes: Buffer.from([1]) },
      { name: 'brain', dtype: 'BF16', shape: [2], bytes: Buffer.from([0x80, 0x3f, 0x49, 0x40]) },
    ]));
    const code = `${block}
const { tensors: t, dtypes } = readSafetensors('tiny.safetensors');
console.log(JSON.stringify([dtypes, Object.fromEntries(Object.entries(t).map(([k, v]) => [k, [v.constructor.name, ...v]]))]));`;
    expect(lastJson(run(code))).toEqual([
      { half: 'float16', a: 'float32', b: 'float32', brain: 'bfloat16' },
      { half: ['Uint16Array', 0x3c00, 0x4000, 0x4200], a: ['Float32Array', ...a], b: ['Float32Array', ...b], brain: ['Uint16Array', 0x3f80, 0x4049] },
    ]);
  });

  test('half-size weights: a BF16 checkpoint read by readSafetensors builds the layer it holds', () => {
    const E = 64, H = 4, Hkv = 2, Dh = 16, S = 3;
    const bf16 = (n: number, seed: number) => Uint16Array.from({ length: n }, (_, i) => 0x3c00 | ((i * 37 + seed * 101) & 0x80ff));
    const w = { wq: bf16(H * Dh * E, 1), wk: bf16(Hkv * Dh * E, 2), wv: bf16(Hkv * Dh * E, 3), wo: bf16(E * H * Dh, 4) };
    const p = 'model.layers.0.self_attn.';
    const bytes = (u: Uint16Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
    mkdirSync(join(app, 'checkpoint'), { recursive: true });
    writeFileSync(join(app, 'checkpoint/model.safetensors'), safetensors([
      { name: `${p}k_proj.weight`, dtype: 'BF16', shape: [Hkv * Dh, E], bytes: bytes(w.wk) },
      { name: `${p}o_proj.weight`, dtype: 'BF16', shape: [E, H * Dh], bytes: bytes(w.wo) },
      { name: `${p}q_proj.weight`, dtype: 'BF16', shape: [H * Dh, E], bytes: bytes(w.wq) },
      { name: `${p}v_proj.weight`, dtype: 'BF16', shape: [Hkv * Dh, E], bytes: bytes(w.wv) },
    ]));
    const x = Float32Array.from({ length: S * E }, (_, i) => Math.cos(i));
    const code = `const x = Float32Array.from({ length: ${S * E} }, (_, i) => Math.cos(i));
const [E, H, Hkv] = [${E}, ${H}, ${Hkv}];
${blockAfter('A `.safetensors` file is')}
${blockAfter('### Half-size weights')}
console.log(JSON.stringify(Array.from(y)));`;
    const got = lastJson(run(code)) as number[];
    const layer = new MultiHeadAttention({ embedDim: E, numHeads: H, numKvHeads: Hkv, bias: false, weightDtype: 'bfloat16', weights: w });
    expect(got).toEqual(Array.from(layer.forward(x, { causal: true }) as Float32Array));
  });

  test('GPT-2 (\'in-out\'): readSafetensors, then the c_attn / c_proj layer', () => {
    const E = 768, S = 4;
    const w = {
      inProjWeight: values(E * 3 * E, 7), inProjBias: values(3 * E, 8),
      outProjWeight: values(E * E, 9), outProjBias: values(E, 10),
    };
    mkdirSync(join(app, 'gpt2'), { recursive: true });
    writeFileSync(join(app, 'gpt2/model.safetensors'), safetensors([
      { name: 'h.0.attn.c_attn.bias', dtype: 'F32', shape: [3 * E], bytes: f32Bytes(w.inProjBias) },
      { name: 'h.0.attn.c_attn.weight', dtype: 'F32', shape: [E, 3 * E], bytes: f32Bytes(w.inProjWeight) },
      { name: 'h.0.attn.c_proj.bias', dtype: 'F32', shape: [E], bytes: f32Bytes(w.outProjBias) },
      { name: 'h.0.attn.c_proj.weight', dtype: 'F32', shape: [E, E], bytes: f32Bytes(w.outProjWeight) },
    ]));
    const x = Float32Array.from({ length: S * E }, (_, i) => Math.cos(i));
    // readSafetensors' block, then GPT-2's, as one module; x is the reader's input.
    const code = `const x = Float32Array.from({ length: ${S * E} }, (_, i) => Math.cos(i));
${blockAfter('A `.safetensors` file is')}
${blockAfter('### GPT-2 (')}
console.log(JSON.stringify(Array.from(y)));`;
    const got = lastJson(run(code)) as number[];
    const layer = new MultiHeadAttention({ embedDim: E, numHeads: 12, weightLayout: 'in-out', weights: w });
    const want = layer.forward(x, { batch: 1, causal: true }) as Float32Array;
    expect(maxDiff(got, want)).toBeLessThan(1e-5);
  });
});
