// npm run bench:decode — one decode step (Sq = 1) over a KV cache of length L, the way
// MultiHeadAttention reads its KVCache: 'bshd' storage [B, maxLength, Hkv, D] with kvLengths = L.
// Decode is bandwidth-bound: each step reads every cached key and value once, so the figure that
// matters is GB/s of K+V read (2·B·L·Hkv·D·4 bytes per step). Several caches are rotated so that a
// step cannot be served from the last level cache when the working set is larger than it.
import { info, scaledDotProductAttention, setThreads } from '../lib/index.js';

const args = process.argv.slice(2);
const threadsArg = args.includes('--threads') ? Number(args[args.indexOf('--threads') + 1]) : undefined;
if (threadsArg) setThreads(threadsArg);
const i = info();
console.log(`qkv ${i.version} | ${i.backend} (${i.simd}) | ${i.threads} thread(s) | node ${process.version}\n`);

const B = 1, H = 32, D = 128;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log('| L | Hkv | K+V MiB | ms per step | GB/s |');
console.log('|---:|---:|---:|---:|---:|');
for (const Hkv of [32, 8]) {
  for (const L of [128, 1024, 4096, 16384]) {
    const bytes = 2 * B * L * Hkv * D * 4;
    const copies = Math.max(1, Math.min(8, Math.ceil((1.5 * 2 ** 30) / bytes))); // ≥ 1.5 GiB rotated
    const caches = Array.from({ length: copies }, (_, c) => {
      const k = new Float32Array(B * L * Hkv * D);
      const v = new Float32Array(B * L * Hkv * D);
      for (let j = 0; j < k.length; j++) {
        k[j] = Math.sin(j * 0.001 + c);
        v[j] = Math.cos(j * 0.002 + c);
      }
      return { k, v };
    });
    const q = Float32Array.from({ length: B * H * D }, (_, j) => Math.sin(j));
    const out = new Float32Array(B * H * D);
    const options = { batch: B, heads: H, kvHeads: Hkv, seqQ: 1, seqK: L, headDim: D, layout: 'bshd' as const, kvLengths: Int32Array.of(L), out };
    const step = (c: number) => scaledDotProductAttention(q, caches[c].k, caches[c].v, options);
    for (let c = 0; c < copies; c++) step(c);
    const runs = Math.max(20, Math.min(400, Math.round(2e9 / bytes)));
    const ms: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = process.hrtime.bigint();
      step(r % copies);
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const m = median(ms);
    console.log(`| ${L} | ${Hkv} | ${(bytes / 2 ** 20).toFixed(1)} | ${m.toFixed(3)} | ${(bytes / (m / 1e3) / 1e9).toFixed(1)} |`);
  }
}
