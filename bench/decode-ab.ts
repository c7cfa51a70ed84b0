// npm run bench:decode-ab [-- --threads N] [--runs R] [--only <substring>] [--bins a.node,b.node,…]
//
// The two decode cells of issue 19 (B=1, Sq=1: H=32 D=128 L=4096, 134 MB of fp32 K+V, and H=12
// D=64 L=2048, 12.6 MB), in both layouts ('bhsd', 'bshd') and both cache dtypes (float32, float16),
// on one or more native binaries loaded side by side in one process (default: build/Release). Every
// call of every binary is interleaved with the others', so a before/after comparison of two builds
// (copy the old build/Release/qkv.node aside, rebuild, pass both) sees the same clock speed and the
// same neighbours on a shared host. Prints each binary's median ms and GB/s (K + V bytes per call)
// and the % of this CPU's L3 or DRAM read ceiling (bench/ceilings.ts) for the case's K + V bytes.
import { createRequire } from 'node:module';
import path from 'node:path';
import { nativeBackend, type NativeBinding } from '../lib/backend/native.js';
import { floatsToHalves } from '../lib/kernels/half.js';
import type { SdpaPlan } from '../lib/plan.js';
import { planSdpa } from '../lib/sdpa.js';
import { formatPercent, loadCeilings, percentOf, readLimit } from './ceilings.js';

const args = process.argv.slice(2);
const opt = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const threads = Number(opt('--threads') ?? 1);
const runs = Number(opt('--runs') ?? 40);
const only = opt('--only');
const bins = (opt('--bins') ?? 'build/Release/qkv.node').split(',');
if (!(Number.isInteger(threads) && threads >= 1 && Number.isInteger(runs) && runs >= 3)) throw new Error('--threads ≥ 1 and --runs ≥ 3, integers');

const require = createRequire(import.meta.url);
const backends = bins.map((file) => {
  const binding = require(path.resolve(file)) as NativeBinding;
  binding.setThreads(threads);
  return nativeBackend(binding);
});
const { ceilings } = loadCeilings();

interface Case { name: string; plan: SdpaPlan; bytes: number; ms: number[][] }
const cases: Case[] = [];
for (const [H, D, L] of [[32, 128, 4096], [12, 64, 2048]] as const) {
  for (const layout of ['bhsd', 'bshd'] as const) {
    const elems = H * L * D;
    const q = Float32Array.from({ length: H * D }, (_, j) => Math.sin(j));
    const k = Float32Array.from({ length: elems }, (_, j) => Math.sin(j * 0.001));
    const v = Float32Array.from({ length: elems }, (_, j) => Math.cos(j * 0.002));
    const options = { batch: 1, heads: H, seqQ: 1, seqK: L, headDim: D, layout, out: new Float32Array(H * D) };
    const plan = planSdpa(q, k, v, options, false).plan;
    const k16 = new Uint16Array(elems);
    const v16 = new Uint16Array(elems);
    floatsToHalves(k, k16, 0);
    floatsToHalves(v, v16, 0);
    const name = `H=${H} D=${D} L=${L} ${layout}`;
    cases.push({ name: `${name} fp32`, plan, bytes: 2 * elems * 4, ms: bins.map(() => []) });
    // The plan a float16 KVCache hands the backend (the public call takes Float32Array only).
    cases.push({ name: `${name} fp16`, plan: { ...plan, k: k16, v: v16, kvDtype: 'float16' }, bytes: 2 * elems * 2, ms: bins.map(() => []) });
  }
}

const selected = only ? cases.filter((c) => c.name.includes(only)) : cases;
for (let r = 0; r < runs; r++) {
  for (const c of selected) {
    backends.forEach((backend, x) => {
      const t0 = process.hrtime.bigint();
      backend.sdpa(c.plan);
      c.ms[x]!.push(Number(process.hrtime.bigint() - t0) / 1e6);
    });
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
console.log(`| case | ${bins.map((b) => `${b} ms | GB/s | % of limit`).join(' | ')} |`);
console.log(`|---|${bins.map(() => '---:|---:|---:').join('|')}|`);
for (const c of selected) {
  const limit = ceilings ? readLimit(ceilings, threads, c.bytes) : null;
  const cells = c.ms.map((ms) => {
    const m = median(ms.slice(2)); // the first two calls warm the caches and the pool
    const gbs = c.bytes / m / 1e6;
    return `${m.toFixed(3)} | ${gbs.toFixed(1)} | ${formatPercent(percentOf(gbs, limit), limit)}`;
  });
  console.log(`| ${c.name} | ${cells.join(' | ')} |`);
}
