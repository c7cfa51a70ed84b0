// npm run bench:peak — this machine's ceilings: peak FMA GFLOP/s and memory read bandwidth, on one
// thread and on all of them (bench/peak.cc, compiled here into build/peak with the system g++).
// Writes bench/peak.json, which bench/run.ts reads for its "% of peak" column.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = `${root}bench/peak.cc`;
const exe = `${root}build/peak`;
const threads = Number(process.env.QKV_THREADS) || os.availableParallelism();
const flags = process.arch === 'x64' ? ['-mavx2', '-mfma'] : [];

mkdirSync(`${root}build`, { recursive: true });
const cxx = process.env.CXX ?? 'g++';
const cc = spawnSync(cxx, ['-O2', '-std=c++17', ...flags, '-pthread', src, '-o', exe], { encoding: 'utf8' });
if (cc.status !== 0) {
  console.error(`bench:peak: could not compile bench/peak.cc with ${cxx}: ${cc.error?.message ?? cc.stderr}`);
  process.exit(1);
}
console.error(`measuring peak FMA and memory read bandwidth on 1 and ${threads} thread(s) (about 15 s)…`);
const run = spawnSync(exe, [String(threads), process.argv.includes('--quick') ? '256' : '1024', '16'], { encoding: 'utf8' });
if (run.status !== 0) {
  console.error(`bench:peak: build/peak failed: ${run.stderr}`);
  process.exit(1);
}
const m = JSON.parse(run.stdout) as Record<string, number | string>;
delete m.sink;
const result = {
  ...m,
  cpu: os.cpus()[0]?.model ?? 'unknown',
  logicalCpus: os.cpus().length,
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))),
  compiler: `${cxx} -O2 ${flags.join(' ')}`.trim(),
  date: new Date().toISOString(),
};
writeFileSync(`${root}bench/peak.json`, `${JSON.stringify(result, null, 2)}\n`);
console.log(
  `peak FMA (256-bit): ${m.fmaGflops1} GFLOP/s on 1 thread, ${m.fmaGflopsAll} on ${m.threads}; ` +
    (Number(m.fma512Gflops1) > 0 ? `AVX-512: ${m.fma512Gflops1} and ${m.fma512GflopsAll}; ` : '') +
    (Number(m.cacheReadGBs1) > 0 ? `read of a ${m.cacheBufferMiB} MiB buffer: ${m.cacheReadGBs1} and ${m.cacheReadGBsAll} GB/s; ` : '') +
    `memory read: ${m.readGBs1} GB/s on 1 thread, ${m.readGBsAll} on ${m.threads} (load average ${os.loadavg()[0].toFixed(2)})\n` +
    'wrote bench/peak.json',
);
