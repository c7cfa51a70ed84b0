// npm run bench:report [-- <results.json>] — bench/RESULTS.md and the README's headline table from
// the json that `npm run bench -- --json bench/results.json` writes. Only the text between the
// `<!-- bench/report.ts … -->` markers is replaced; hand-written notes outside them are kept.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface Row {
  workload: string; workloadName: string; impl: string; family: string; threads: number;
  medianMs: number; rme: number | null; samples: number; method: string;
  gflops: number; gbs: number | null; pctPeak: number; peakKind: string;
  maxAbsDiff: number; vsQkvJs: number | null; vsOnnxruntime: number | null; vsTfjs: number | null;
}
interface Results {
  date: string; command: string; quick: boolean;
  machine: { cpu: string; logicalCpus: number; availableParallelism: number; memoryGiB: number; os: string; node: string; loadAverageAtEnd: number[] };
  qkv: { version: string; backend: string; simd: string; threads: number; nativeError?: string };
  peers: Record<string, string | null>;
  peak: Record<string, number | string | undefined> & { source: string };
  workloads: Array<{ id: string; name: string }>;
  results: Row[];
  skipped: Array<{ workload: string; impl: string; reason: string }>;
  notes: string[];
  loadAverageAtStart?: number[];
}

const root = fileURLToPath(new URL('..', import.meta.url));
const file = process.argv[2] ?? `${root}bench/results.json`;
const r = JSON.parse(readFileSync(file, 'utf8')) as Results;

const ms = (x: number) => (x < 1 ? `${(x * 1000).toFixed(1)} µs` : x < 1000 ? `${x.toFixed(x < 10 ? 2 : 1)} ms` : `${(x / 1000).toFixed(2)} s`);
const times = (x: number | null) => (x === null ? '—' : `${x.toFixed(x < 10 ? 2 : 1)}×`);
const N = r.qkv.threads;

function machine(): string {
  const p = r.peak;
  const m = r.machine;
  return [
    `Machine: ${m.cpu}, ${m.logicalCpus} logical CPUs (${m.availableParallelism} available to the process), ${m.memoryGiB} GiB, ` +
      `${m.os}, Node ${m.node}; qkv ${r.qkv.version} on the ${r.qkv.backend} backend (${r.qkv.simd}). ` +
      `Peers: ${Object.entries(r.peers).map(([k, v]) => `${k} ${v ?? 'not installed'}`).join(', ')}.`,
    '',
    `Measured ceilings (\`npm run bench:peak\`, ${p.source}): FMA ${p.fmaGflops1} GFLOP/s on 1 thread and ${p.fmaGflopsAll} on ${p.threads} with 256-bit AVX2` +
      (p.fma512Gflops1 ? `, ${p.fma512Gflops1} and ${p.fma512GflopsAll} with AVX-512 (which qkv's avx512 kernel set and ONNX Runtime use where the CPU has it)` : '') +
      `; memory read ${p.readGBs1} / ${p.readGBsAll} GB/s from DRAM` +
      (p.cacheReadGBs1 ? `, ${p.cacheReadGBs1} / ${p.cacheReadGBsAll} GB/s re-reading a ${p.cacheBufferMiB} MiB buffer` : '') +
      '. "% of peak" divides by the wider FMA peak at the same thread count, or for the decode steps (bandwidth-bound) by the read bandwidth of a working set of that size.',
    '',
    `Run: \`${r.command}\` on ${r.date.slice(0, 16).replace('T', ' ')} UTC; load average ${r.loadAverageAtStart ? `${r.loadAverageAtStart.map((x) => x.toFixed(2)).join(' ')} at the start, ` : ''}` +
      `${r.machine.loadAverageAtEnd.map((x) => x.toFixed(2)).join(' ')} at the end (1, 5, 15 min).`,
  ].join('\n');
}

/** One row per workload: the best time of each implementation family at 1 and all threads. */
function headline(): string {
  const cols: Array<[string, (w: string) => Row | undefined]> = [];
  const best = (w: string, pred: (x: Row) => boolean) =>
    r.results.filter((x) => x.workload === w && pred(x)).sort((a, b) => a.medianMs - b.medianMs)[0];
  cols.push([`qkv native, 1 thread`, (w) => best(w, (x) => x.family === 'qkv-native' && x.threads === 1)]);
  if (N > 1) cols.push([`qkv native, ${N} threads`, (w) => best(w, (x) => x.family === 'qkv-native' && x.threads === N)]);
  cols.push(['qkv js', (w) => best(w, (x) => x.family === 'qkv-js')]);
  cols.push(['onnxruntime, 1 thread', (w) => best(w, (x) => x.family === 'onnxruntime' && x.threads === 1)]);
  if (N > 1) cols.push([`onnxruntime, ${N} threads`, (w) => best(w, (x) => x.family === 'onnxruntime' && x.threads === N)]);
  cols.push(['tfjs (cpu)', (w) => best(w, (x) => x.family === 'tfjs')]);
  const lines = [
    `| workload | ${cols.map(([c]) => c).join(' | ')} |`,
    `|---|${cols.map(() => '---:').join('|')}|`,
  ];
  for (const w of r.workloads) {
    const cells = cols.map(([, f]) => f(w.id));
    const fastest = Math.min(...cells.filter(Boolean).map((c) => c!.medianMs));
    lines.push(
      `| ${w.name} | ${cells
        .map((c) => {
          if (!c) return '—';
          const t = ms(c.medianMs);
          const fused = c.impl.includes('fused') ? '¹' : '';
          return c.medianMs === fastest ? `**${t}**${fused}` : `${t}${fused}`;
        })
        .join(' | ')} |`,
    );
  }
  lines.push('', 'Median time per call; the fastest in bold. onnxruntime: the faster of its plain-op graph and its fused com.microsoft operator (¹ = fused).');
  return lines.join('\n');
}

function detail(): string {
  const lines = [
    '| workload | implementation | median | ±RME | GFLOP/s | % of peak | vs qkv js | vs onnxruntime | vs tfjs |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const x of r.results) {
    lines.push(
      `| ${x.workloadName} | ${x.impl} | ${ms(x.medianMs)} | ${x.rme === null ? `(${x.samples} run${x.samples > 1 ? 's' : ''})` : `±${x.rme.toFixed(1)}%`} | ` +
        `${x.gflops.toFixed(x.gflops < 10 ? 2 : 1)} | ${x.pctPeak.toFixed(0)}%${x.gbs !== null ? ` (${x.gbs.toFixed(1)} GB/s)` : ''} | ` +
        `${times(x.vsQkvJs)} | ${times(x.vsOnnxruntime)} | ${times(x.vsTfjs)} |`,
    );
  }
  return lines.join('\n');
}

const generated = [
  machine(),
  '',
  '### Headline',
  '',
  headline(),
  '',
  '### Every implementation',
  '',
  'Each implementation\'s output was compared with qkv\'s (max abs difference ≤ 1e-3 × max(1, |out|)) before it was timed. ' +
    'Timing: benchmark.js, median of its samples with the relative margin of error; calls over 1 s are timed by hand (the median of 3 runs; over 10 s, the one checked run). ' +
    '"vs X" is X\'s time divided by this one\'s, X at the same thread count (its fastest variant; qkv js and tfjs are single-threaded): above 1 means this row is faster. ' +
    'Flops: 2·(D+Dv) per unmasked (query, key) pair; the layer adds 2·B·S·E·4E for the four projections.',
  '',
  detail(),
  ...(r.skipped.length || r.notes.length ? ['', 'Notes and what was not timed:', '', ...r.notes.map((n) => `- ${n}`), ...r.skipped.map((s) => `- ${s.workload}: ${s.reason}`)] : []),
].join('\n');

function replaceBetween(text: string, begin: string, end: string, body: string, fallback: (t: string, block: string) => string): string {
  const block = `${begin}\n${body}\n${end}`;
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  return a >= 0 && b > a ? text.slice(0, a) + block + text.slice(b + end.length) : fallback(text, block);
}

const resultsMd = `${root}bench/RESULTS.md`;
const B = '<!-- bench/report.ts: generated from bench/results.json, begin -->';
const E = '<!-- bench/report.ts: end -->';
const old = existsSync(resultsMd) ? readFileSync(resultsMd, 'utf8') : '# Benchmark results\n';
writeFileSync(
  resultsMd,
  replaceBetween(old, B, E, `## qkv against the alternatives (\`npm run bench\`)\n\n${generated}`, (t, block) => {
    // First run: the generated section goes right under the title; what was there stays below it.
    const nl = t.indexOf('\n');
    return `${t.slice(0, nl + 1)}\n${block}\n\n## Earlier measurements\n${t.slice(nl + 1)}`;
  }),
);

const readme = `${root}README.md`;
const RB = '<!-- bench/report.ts: headline, begin -->';
const RE = '<!-- bench/report.ts: headline, end -->';
const text = readFileSync(readme, 'utf8');
if (text.includes(RB)) {
  const m = r.machine;
  writeFileSync(
    readme,
    replaceBetween(text, RB, RE,
      `${m.cpu}, ${m.logicalCpus} logical CPUs, Node ${m.node}; \`${r.command}\`, load average ${m.loadAverageAtEnd[0].toFixed(2)} at the end.\n\n${headline()}`,
      (t) => t),
  );
  console.log('updated bench/RESULTS.md and the README headline table');
} else {
  console.log('updated bench/RESULTS.md (README has no headline markers)');
}
