// npm run bench:decode [-- --threads N] [--quick] — one decode step (Sq = 1) over a KV cache of
// length L, the way MultiHeadAttention reads its KVCache: 'bshd' storage [B, maxLength, Hkv, D]
// with kvLengths = L, float32 and float16 (the cache's two dtypes).
//
// Decode is bandwidth-bound: each step reads every cached key and value once, so the figure that
// matters is GB/s read (K+V: 2·B·L·Hkv·D·bytesPerElement per step, plus q and out), set against this
// CPU's read bandwidth (bench/ceilings.ts, measured when bench/.cache has none for this CPU): the L3's
// when the row's working set (every rotated cache, fp32 and fp16) fits in the L3, else DRAM's.
// Several caches are rotated so that a step cannot be served from the last level cache when the
// working set is larger than it, and the float32 and float16 steps alternate run by run, so the
// fp16 speedup is a ratio from one run.
//
// The float16 step goes through the same internal plan a float16 KVCache hands the backend (the
// public scaledDotProductAttention takes Float32Array only).
import { describeCeilings, formatPercent, loadCeilings, percentOf, readLimit, type Limit } from './ceilings.js';
import { info, setThreads } from '../lib/index.js';
import { floatsToHalves } from '../lib/kernels/half.js';
import { planSdpa } from '../lib/sdpa.js';
import { activeBackend } from '../lib/backend/select.js';
import type { SdpaPlan } from '../lib/plan.js';

const args = process.argv.slice(2);
const threadsArg = args.includes('--threads') ? Number(args[args.indexOf('--threads') + 1]) : undefined;
if (threadsArg) setThreads(threadsArg);
const quick = args.includes('--quick');
const i = info();
console.log(`qkv ${i.version} | ${i.backend} (${i.simd}) | ${i.threads} thread(s) | node ${process.version}`);

const { ceilings, source } = loadCeilings({ quick });
console.log(ceilings ? `limits: ${describeCeilings(ceilings, source)}\n` : 'limits: not measured on this CPU ("% of limit" left blank)\n');

const B = 1, H = 32, D = 128;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

interface Variant {
  plans: SdpaPlan[]; // one per rotated copy
  bytes: number;
  ms: number[];
}

/** `copies` caches of L keys, rotated; float16 ones hold the same values rounded to halves. */
function makeVariants(Hkv: number, L: number): [Variant, Variant] {
  const elems = B * L * Hkv * D;
  const copies = Math.max(1, Math.min(8, Math.ceil((1.5 * 2 ** 30) / (elems * 8)))); // ≥ 1.5 GiB of fp32
  const q = Float32Array.from({ length: B * H * D }, (_, j) => Math.sin(j));
  const out = new Float32Array(B * H * D);
  const options = { batch: B, heads: H, kvHeads: Hkv, seqQ: 1, seqK: L, headDim: D, layout: 'bshd' as const, kvLengths: Int32Array.of(L), out };
  const qo = 2 * B * H * D * 4; // q read, out written
  const f32: Variant = { plans: [], bytes: 2 * elems * 4 + qo, ms: [] };
  const f16: Variant = { plans: [], bytes: 2 * elems * 2 + qo, ms: [] };
  for (let c = 0; c < copies; c++) {
    const k = new Float32Array(elems);
    const v = new Float32Array(elems);
    for (let j = 0; j < elems; j++) {
      k[j] = Math.sin(j * 0.001 + c);
      v[j] = Math.cos(j * 0.002 + c);
    }
    f32.plans.push(planSdpa(q, k, v, options, false).plan);
    const k16 = new Uint16Array(elems);
    const v16 = new Uint16Array(elems);
    floatsToHalves(k, k16, 0);
    floatsToHalves(v, v16, 0);
    f16.plans.push({ ...planSdpa(q, k, v, options, false).plan, k: k16, v: v16, kvDtype: 'float16' });
  }
  return [f32, f16];
}

function step(variant: Variant, r: number): void {
  const plan = variant.plans[r % variant.plans.length]!;
  const t0 = process.hrtime.bigint();
  activeBackend.sdpa(plan);
  variant.ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
}

const fmt = (v: Variant, limit: Limit | null) => {
  const m = median(v.ms);
  const gbs = v.bytes / (m / 1e3) / 1e9;
  return { m, gbs, cells: `${m.toFixed(3)} | ${gbs.toFixed(1)} | ${formatPercent(percentOf(gbs, limit), limit)}` };
};

console.log('| L | Hkv | fp32 K+V MiB | working set MiB | fp32 ms | fp32 GB/s | fp32 % of limit | fp16 ms | fp16 GB/s | fp16 % of limit | fp16 speedup |');
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const Hkv of [32, 8]) {
  for (const L of quick ? [128, 4096] : [128, 1024, 4096, 16384]) {
    const [f32, f16] = makeVariants(Hkv, L);
    for (let c = 0; c < f32.plans.length; c++) {
      step(f32, c);
      step(f16, c);
    }
    f32.ms.length = f16.ms.length = 0;
    const runs = Math.max(quick ? 10 : 20, Math.min(quick ? 100 : 400, Math.round((quick ? 5e8 : 2e9) / f32.bytes)));
    for (let r = 0; r < runs; r++) {
      step(f32, r);
      step(f16, r);
    }
    // Every rotated copy of both dtypes is touched between two reads of one copy.
    const workingSet = f32.plans.length * (f32.bytes + f16.bytes);
    const limit = ceilings ? readLimit(ceilings, i.threads, workingSet) : null;
    const a = fmt(f32, limit), b = fmt(f16, limit);
    console.log(`| ${L} | ${Hkv} | ${(2 * B * L * Hkv * D * 4 / 2 ** 20).toFixed(1)} | ${(workingSet / 2 ** 20).toFixed(1)} | ${a.cells} | ${b.cells} | ${(a.m / b.m).toFixed(2)}× |`);
  }
}
