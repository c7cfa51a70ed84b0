// npm run bench:report [-- <results.json>] [--no-readme] — bench/RESULTS.md and the README's headline
// table from the json that `npm run bench -- --json bench/results.json` writes (untracked: results
// belong to the machine that measured them). RESULTS.md keeps one generated section per CPU, between
// `<!-- bench/report.ts: <cpu slug>, begin/end -->` markers: a run replaces its own CPU's section and
// leaves the other machines' side by side; hand-written notes outside the markers are kept.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cpuSlug, describeCeilings, microarchitecture, type Ceilings } from './ceilings.js';

interface Row {
  workload: string; workloadName: string; impl: string; family: string; threads: number;
  medianMs: number; rme: number | null; samples: number; method: string;
  gflops: number; gbs: number | null; pctLimit: number | null; limit: string;
  maxAbsDiff: number; vsQkvJs: number | null; vsOnnxruntime: number | null; vsTfjs: number | null;
}
interface Results {
  date: string; command: string; quick: boolean;
  machine: { cpu: string; logicalCpus: number; availableParallelism: number; memoryGiB: number; os: string; node: string; loadAverageAtEnd: number[] };
  qkv: { version: string; backend: string; simd: string; threads: number; nativeError?: string };
  peers: Record<string, string | null>;
  ceilings: Ceilings | null; ceilingsSource: string;
  workloads: Array<{ id: string; name: string }>;
  results: Row[];
  skipped: Array<{ workload: string; impl: string; reason: string }>;
  notes: string[];
  loadAverageAtStart?: number[];
}

const root = fileURLToPath(new URL('..', import.meta.url));
const argv = process.argv.slice(2);
const file = argv.find((a) => !a.startsWith('--')) ?? `${root}bench/results.json`;
if (!existsSync(file)) {
  console.error(`no ${file}: run \`npm run bench -- --json bench/results.json\` first`);
  process.exit(2);
}
const r = JSON.parse(readFileSync(file, 'utf8')) as Results;
if (!r.ceilings || !r.results.every((x) => 'pctLimit' in x)) {
  console.error(`${file} was written by an older bench/run.ts (no per-CPU ceilings, no "% of limit"): run the bench again`);
  process.exit(2);
}

const ms = (x: number) => (x < 1 ? `${(x * 1000).toFixed(1)} µs` : x < 1000 ? `${x.toFixed(x < 10 ? 2 : 1)} ms` : `${(x / 1000).toFixed(2)} s`);
const times = (x: number | null) => (x === null ? '—' : `${x.toFixed(x < 10 ? 2 : 1)}×`);
const N = r.qkv.threads;

function machine(): string {
  const m = r.machine;
  const c = r.ceilings!;
  const t = c.threads;
  const med = (x: Record<string, { median: number }>) => `${x['1']?.median}${t > 1 ? ` / ${x[String(t)]?.median}` : ''}`;
  return [
    `Machine: ${m.cpu}, ${m.logicalCpus} logical CPUs (${m.availableParallelism} available to the process), ${m.memoryGiB} GiB, ` +
      `${m.os}, Node ${m.node}; qkv ${r.qkv.version} on the ${r.qkv.backend} backend (${r.qkv.simd}). ` +
      `Peers: ${Object.entries(r.peers).map(([k, v]) => `${k} ${v ?? 'not installed'}`).join(', ')}.`,
    '',
    `CPU and measured ceilings (bench/peak.cc via bench/ceilings.ts, best of ${c.samples}–${c.samples + 2} samples; load average ${c.loadAverage.join(' ')} when measured): ` +
      `${describeCeilings(c, r.ceilingsSource)}. Medians of the same samples: ` +
      `${Object.entries(c.fma).map(([isa, x]) => `${isa === 'sse2' ? 'sse2 mul+add' : `${isa} FMA`} ${med(x!)}`).join(', ')} GFLOP/s; DRAM read ${med(c.dram.gbs)}, L3 read ${med(c.l3.gbs)} GB/s.`,
    '',
    '"% of limit" divides each row by the ceiling of this CPU at the row\'s thread count: the FMA peak of the kernel set in use ' +
      `(qkv native: ${r.qkv.simd}; qkv js and tfjs: scalar; onnxruntime: the CPU's widest) for compute-bound rows, ` +
      'the read bandwidth of the L3 (when K, V, q and out fit in it) or of DRAM for the decode steps.',
    '',
    `Run: \`${r.command}\` on ${r.date.slice(0, 16).replace('T', ' ')} UTC; load average ${r.loadAverageAtStart ? `${r.loadAverageAtStart.map((x) => x.toFixed(2)).join(' ')} at the start, ` : ''}` +
      `${r.machine.loadAverageAtEnd.map((x) => x.toFixed(2)).join(' ')} at the end (1, 5, 15 min).`,
  ].join('\n');
}

const pct = (x: Row) => (x.pctLimit === null ? '—' : `${x.pctLimit.toFixed(0)}% ${x.limit.split(' ').slice(0, 2).join(' ')}`);

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
          const p = c.pctLimit === null ? '' : ` (${c.pctLimit.toFixed(0)}%)`;
          return c.medianMs === fastest ? `**${t}**${fused}${p}` : `${t}${fused}${p}`;
        })
        .join(' | ')} |`,
    );
  }
  lines.push('', 'Median time per call; the fastest in bold; in parentheses the % of limit (of the FMA peak of the kernels in use, or for decode of the L3 or DRAM read bandwidth, on this CPU at that thread count). onnxruntime: the faster of its plain-op graph and its fused com.microsoft operator (¹ = fused).');
  return lines.join('\n');
}

function detail(): string {
  const lines = [
    '| workload | implementation | median | ±RME | GFLOP/s | % of limit | vs qkv js | vs onnxruntime | vs tfjs |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const x of r.results) {
    lines.push(
      `| ${x.workloadName} | ${x.impl} | ${ms(x.medianMs)} | ${x.rme === null ? `(${x.samples} run${x.samples > 1 ? 's' : ''})` : `±${x.rme.toFixed(1)}%`} | ` +
        `${x.gflops.toFixed(x.gflops < 10 ? 2 : 1)} | ${pct(x)}${x.gbs !== null ? ` (${x.gbs.toFixed(1)} GB/s)` : ''} | ` +
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
    'Flops: 2·(D+Dv) per unmasked (query, key) pair (4·B·H·Sq·Sk·D non-causal, about half that causal); the layer adds 2·B·S·E·4E for the four projections. ' +
    'Decode bytes: K + V + q + out per call.',
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
const slug = cpuSlug(r.ceilings!.cpu);
const B = `<!-- bench/report.ts: ${slug}, begin -->`;
const E = `<!-- bench/report.ts: ${slug}, end -->`;
const old = existsSync(resultsMd) ? readFileSync(resultsMd, 'utf8') : '# Benchmark results\n';
const id = r.ceilings!.cpu;
const arch = microarchitecture(id);
const title = `## ${id.modelName}${arch ? ` ${arch}` : ''} (${id.family !== null ? `family ${id.family} model ${id.model}, ` : ''}${slug}): qkv against the alternatives (\`npm run bench\`)`;
writeFileSync(
  resultsMd,
  replaceBetween(old, B, E, `${title}\n\n${generated}`, (t, block) => {
    // A CPU not measured before: its section goes after the last generated one (the machines side by
    // side), or right under the title.
    const last = [...t.matchAll(/<!-- bench\/report\.ts: [^>]*, end -->\n/g)].pop();
    const at = last ? last.index! + last[0].length : t.indexOf('\n') + 1;
    return `${t.slice(0, at)}\n${block}\n${t.slice(at)}`;
  }),
);

const readme = `${root}README.md`;
const RB = '<!-- bench/report.ts: headline, begin -->';
const RE = '<!-- bench/report.ts: headline, end -->';
const text = readFileSync(readme, 'utf8');
if (argv.includes('--no-readme')) {
  console.log(`updated the ${slug} section of bench/RESULTS.md (README left as it is: --no-readme)`);
} else if (text.includes(RB)) {
  const m = r.machine;
  writeFileSync(
    readme,
    replaceBetween(text, RB, RE,
      `${m.cpu}, ${m.logicalCpus} logical CPUs, Node ${m.node}; \`${r.command}\`, load average ${m.loadAverageAtEnd[0].toFixed(2)} at the end.\n\n${headline()}`,
      (t) => t),
  );
  console.log(`updated the ${slug} section of bench/RESULTS.md and the README headline table`);
} else {
  console.log('updated bench/RESULTS.md (README has no headline markers)');
}
