// Fuzzing allocation failure: a child process runs under an address-space limit (`ulimit -v`),
// fills most of what is left with ballast, then makes random requests too large for the rest:
// createCache (both dtypes), scaledDotProductAttention with weights: true / scores: true (sync and
// async), and export() of a cache that fits where its export does not. Each must throw a
// RangeError naming the buffer (`Could not allocate …`); the child must not crash, abort or print
// V8's own out-of-memory report. On qkv (native when built) and on qkv/js.
// The child cannot load lib/ through tsx (its WebAssembly lexer reserves more address space than
// the limit leaves), so lib/ is bundled with esbuild first, and the child loads the bundle (and the
// addon through QKV_ADDON_PATH). Skipped where bash's ulimit is unavailable or under ASan.
// QKV_FUZZ_SEED picks the requests; QKV_FUZZ_SCALE multiplies their number.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { FUZZ_SEED, budget, root } from './helpers.js';

const LIMIT_KB = 4_000_000;

function skipReason(): string | null {
  if (process.platform === 'win32') return 'no bash ulimit on Windows';
  if ((process.env.LD_PRELOAD ?? '').includes('asan') || process.env.QKV_ADDON_PATH) return 'AddressSanitizer reserves more address space than any limit leaves';
  const probe = spawnSync('bash', ['-c', `ulimit -v ${LIMIT_KB} && ulimit -v`], { encoding: 'utf8' });
  if (probe.status !== 0 || probe.stdout.trim() !== String(LIMIT_KB)) return `bash cannot set ulimit -v here (${(probe.stderr || probe.error?.message || '').trim()})`;
  return null;
}
const reason = skipReason();
if (reason) console.log(`fuzz allocation: skipped, ${reason}`);

const CHILD = String.raw`
import * as N from './lib/index.js';
import * as J from './lib/js.js';
const api = process.env.QKV_FACE === 'js' ? J : N;
let a = Number(process.env.QKV_SEED) >>> 0;
const r = () => { a = (a + 0x6d2b79f5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
const int = (lo, hi) => lo + Math.floor(r() * (hi - lo + 1));
const pick = (xs) => xs[Math.floor(r() * xs.length)];
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');

// A layer of wide heads, and a cache of it that fits now (512 MiB float32, 256 MiB float16) filled
// through 'from', whose export (another 2 x 512 MiB) will not fit once the ballast is in.
const E = 4, Dh = 1 << 16, L = 2048;
const wq = new Float32Array(Dh * E).fill(0.01);
const layer = new api.MultiHeadAttention({ embedDim: E, numHeads: 1, headDim: Dh, weights: { wq, wk: wq, wv: wq, wo: new Float32Array(E * Dh) } });
const dtype = pick(['float32', 'float16']);
let from = { k: new Float32Array(L * Dh).fill(0.5), v: new Float32Array(L * Dh).fill(0.25), lengths: Int32Array.of(L) };
const full = layer.createCache({ maxLength: L, dtype, from });
from = null;
// Backing stores are swept after a GC, not during it: collect, give the sweeper time, twice.
const settle = async () => { for (let n = 0; n < 2; n++) { gc(); await new Promise((r) => setTimeout(r, 50)); } };
await settle();
// Ballast: the address space left (the limit minus VmSize), in 16 MiB buffers, but for 384 MiB of
// headroom: filling it to the last byte would make V8 itself fail to grow its heap.
const { readFileSync } = await import('node:fs');
const leftKiB = () => Number(process.env.QKV_LIMIT_KB) - Number(/VmSize:\s*(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
const ballast = [];
// Freed memory goes back to the system a little later: measure again until only the headroom is left.
for (let round = 0; round < 10 && leftKiB() > (384 + 32) * 1024; round++) {
  const chunks = Math.floor((leftKiB() - 384 * 1024) / (16 * 1024));
  for (let n = 0; n < chunks; n++) ballast.push(new ArrayBuffer(16 << 20));
  await settle();
}
say({ ready: true, dtype, ballastMiB: ballast.length * 16, leftMiB: Math.round(leftKiB() / 1024) });

const q = new Float32Array(1 << 16).fill(0.1);
const requests = Number(process.env.QKV_REQUESTS);
for (let i = 0; i < requests; i++) {
  const kind = pick(['createCache', 'createCache', 'weights', 'scores', 'weightsAsync', 'export']);
  let what;
  try {
    if (kind === 'createCache') {
      const o = { batch: int(1, 8), maxLength: 1 << int(12, 20), dtype: pick(['float32', 'float16']) };
      what = o;
      layer.createCache(o);
    } else if (kind === 'export') {
      what = { dtype };
      full.export();
    } else {
      // B*H*Sq*Sk >= 2^27 floats (512 MiB), q/k/v small (headDim 1).
      const eq = int(13, 16), ek = Math.max(27 - eq, int(11, 16));
      const o = { heads: 1, seqQ: 1 << eq, seqK: 1 << ek, headDim: 1, [kind === 'scores' ? 'scores' : 'weights']: true };
      what = { seqQ: o.seqQ, seqK: o.seqK };
      const qq = q.subarray(0, o.seqQ), kk = new Float32Array(o.seqK);
      if (kind === 'weightsAsync') await api.scaledDotProductAttentionAsync(qq, kk, kk, o);
      else api.scaledDotProductAttention(qq, kk, kk, o);
    }
    say({ i, kind, what, ok: true });
  } catch (e) {
    say({ i, kind, what, ok: false, cls: e?.constructor?.name, message: String(e?.message) });
  }
}
say({ done: true });
`;

/** lib/ bundled into <root>/node_modules/.cache/qkv-fuzz-allocation/lib/, with the child script beside it. */
let prepared: string | undefined;
function prepare(): string {
  if (prepared) return prepared;
  const dir = join(root, 'node_modules', '.cache', 'qkv-fuzz-allocation');
  mkdirSync(join(dir, 'lib'), { recursive: true });
  const esbuild = spawnSync(process.execPath, ['-e', `
    require('esbuild').buildSync({
      entryPoints: ${JSON.stringify([join(root, 'lib', 'index.ts'), join(root, 'lib', 'js.ts')])},
      bundle: true, splitting: true, format: 'esm', platform: 'node', outdir: ${JSON.stringify(join(dir, 'lib'))}, logLevel: 'error',
    });`], { cwd: root, encoding: 'utf8' });
  if (esbuild.status !== 0) throw new Error(`esbuild failed: ${esbuild.stderr}`);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'qkv-fuzz-allocation', version: pkg.version, type: 'module' }));
  writeFileSync(join(dir, 'child.mjs'), CHILD);
  return (prepared = dir);
}

const NAMED = /^Could not allocate (the cache keys|the cache values|options\.weights|options\.scores|the exported keys|the exported values|the output)\b/;

describe.skipIf(reason !== null)('fuzz: allocation failure under an address-space limit', () => {
  const addon = join(root, 'build', 'Release', 'qkv.node');
  test.each(['qkv', 'qkv/js'])('%s: every request too large for memory is a RangeError naming its buffer', (face) => {
    const dir = prepare();
    const requests = Math.max(4, Math.round(budget(12)));
    const env: NodeJS.ProcessEnv = { ...process.env, QKV_FACE: face === 'qkv/js' ? 'js' : 'native', QKV_SEED: String(FUZZ_SEED ^ (face.length * 0x9e37)), QKV_REQUESTS: String(requests), QKV_LIMIT_KB: String(LIMIT_KB) };
    if (existsSync(addon)) env.QKV_ADDON_PATH = addon;
    const child = spawnSync('bash', ['-c', `ulimit -v ${LIMIT_KB}; exec "${process.execPath}" --expose-gc child.mjs`], { cwd: dir, env, encoding: 'utf8', timeout: 120_000 });
    const lines = child.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const context = `seed ${env.QKV_SEED}, exit ${child.status} ${child.signal ?? ''}\nstdout:\n${child.stdout.slice(-2000)}\nstderr:\n${child.stderr.slice(-2000)}`;
    expect(child.status, context).toBe(0);
    expect(child.stderr, context).not.toMatch(/FATAL|out of memory|Last few GCs|Allocation failed -/i);
    expect(lines[0]?.ready, context).toBe(true);
    expect(lines.at(-1)?.done, context).toBe(true);
    const bad = lines.filter((l) => 'kind' in l && !(l.ok === false && l.cls === 'RangeError' && NAMED.test(String(l.message))));
    console.log(`fuzz allocation ${face}: ${lines.length - 2} requests, seed ${env.QKV_SEED}, ${bad.length} failures`);
    expect(bad.map((l) => JSON.stringify(l)), context).toEqual([]);
  });
});
