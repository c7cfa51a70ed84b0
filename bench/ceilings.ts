// The ceilings of the CPU the bench runs on, for every "% of limit" column: FMA peak per ISA and read
// bandwidth from DRAM and from the L3, each on 1 thread and on all of them (bench/peak.cc measures
// them). They are kept per CPU in bench/.cache/ceilings-<cpu slug>.json (untracked) and measured
// again whenever the cached file is missing, from an older peak.cc, or for another CPU: a ceiling
// measured on one machine is never used on another.
//
// The pure parts (identifying the CPU, deciding whether a cache file fits it, picking a row's limit,
// the percentage) take their inputs as arguments and are tested in test/bench-ceilings.test.ts; only
// currentCpu() and loadCeilings() touch the machine.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

/** Bump when peak.cc changes what it measures: older cache files are then measured again. */
export const CEILINGS_VERSION = 5;

/** The CPU as far as its ceilings depend on it. */
export interface CpuId {
  arch: string; // process.arch
  vendor: string; // vendor_id / CPU implementer
  modelName: string;
  family: number | null;
  model: number | null;
  /** The flags that decide which kernel sets run (avx2, fma, avx512f, …), sorted. */
  flags: string[];
  /** Threads available to the process (os.availableParallelism()): the "all threads" ceilings use this many. */
  threads: number;
  /** Size of one L3 (the one cpu0 shares), bytes; null when the system does not say. */
  l3Bytes: number | null;
}

export const RELEVANT_FLAGS = [
  'sse4_2', 'avx', 'f16c', 'fma', 'avx2', 'avx512f', 'avx512bw', 'avx512dq', 'avx512vl', 'avx512_vnni', 'avx512_bf16', 'avx512_fp16',
  'asimd', 'asimdhp', 'fphp', 'bf16', 'i8mm', 'sve', 'sve2',
];

/**
 * ISAs peak.cc measures: scalar (one-lane FMA), sse2 (128-bit multiply + add, the x86-64 baseline),
 * avx2 (256-bit FMA), avx512 (512-bit FMA), neon (128-bit FMA).
 */
export type Isa = 'scalar' | 'sse2' | 'avx2' | 'avx512' | 'neon';

export interface Stat { best: number; median: number }
/** Keyed by thread count: "1" and String(threads). */
export type ByThreads = Record<string, Stat>;

export interface Ceilings {
  version: number;
  cpu: CpuId;
  measuredAt: string;
  compiler: string;
  loadAverage: number[];
  threads: number;
  samples: number;
  fma: Partial<Record<Isa, ByThreads>>;
  /** Read bandwidth, GB/s: a buffer far larger than the L3, and one of half the L3 (at most 16 MiB). */
  dram: { bufferBytes: number; gbs: ByThreads };
  l3: { bufferBytes: number; gbs: ByThreads };
}

// ---- identifying the CPU ------------------------------------------------------------------------------

/** The first processor block of /proc/cpuinfo, plus os.cpus()' model name where the block has none (arm64). */
export function parseCpuinfo(text: string, fallbackModel = 'unknown CPU'): Omit<CpuId, 'arch' | 'threads' | 'l3Bytes'> {
  const block = text.split(/\n\s*\n/).find((b) => /^processor\s*:/m.test(b)) ?? text;
  const field = (name: string) => {
    const m = new RegExp(`^${name}\\s*:\\s*(.*)$`, 'mi').exec(block);
    return m ? m[1].trim() : undefined;
  };
  const num = (s: string | undefined) => (s !== undefined && /^(0x)?[0-9a-f]+$/i.test(s) ? Number(s) : null);
  const present = new Set((field('flags') ?? field('Features') ?? '').split(/\s+/).filter(Boolean));
  return {
    vendor: field('vendor_id') ?? (field('CPU implementer') ? `implementer ${field('CPU implementer')}` : 'unknown'),
    modelName: field('model name') ?? field('Hardware') ?? fallbackModel,
    family: num(field('cpu family') ?? field('CPU architecture')),
    model: num(field('model') ?? field('CPU part')),
    flags: RELEVANT_FLAGS.filter((f) => present.has(f)),
  };
}

/** "32768K", "1 MiB", "32 MiB (1 instance)", "512 KiB" → bytes; null if it is not a size. */
export function parseCacheSize(text: string | undefined): number | null {
  const m = /([\d.]+)\s*([KMG])?(i?B)?/i.exec(text?.trim() ?? '');
  if (!m) return null;
  const unit = { K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 }[(m[2] ?? '').toUpperCase() as 'K' | 'M' | 'G'] ?? 1;
  const bytes = Math.round(Number(m[1]) * unit);
  return bytes > 0 ? bytes : null;
}

/** The L3 from `lscpu` output ("L3 cache: 32 MiB (1 instance)"): the size of one instance. */
export function parseLscpuL3(text: string): number | null {
  const m = /^L3 cache:\s*(.+)$/m.exec(text);
  if (!m) return null;
  const total = parseCacheSize(m[1]);
  const inst = /\((\d+) instances?\)/.exec(m[1]);
  return total && inst ? Math.round(total / Number(inst[1])) : total;
}

/** The ISA a cpu's best FMA kernel uses. */
export function bestIsa(cpu: Pick<CpuId, 'arch' | 'flags'>): Isa {
  if (cpu.flags.includes('avx512f')) return 'avx512';
  if (cpu.flags.includes('avx2') && cpu.flags.includes('fma')) return 'avx2';
  if (cpu.arch === 'arm64') return 'neon';
  return 'scalar';
}

/** The core's micro-architecture where the family and model say it (x86 only; a few known ones), else null. */
export function microarchitecture(cpu: Pick<CpuId, 'vendor' | 'family' | 'model'>): string | null {
  const { vendor, family: f, model: m } = cpu;
  if (f === null || m === null) return null;
  if (vendor === 'AuthenticAMD') {
    if (f === 23) return m < 0x30 ? 'Zen / Zen+' : 'Zen 2';
    if (f === 25) return m < 0x10 || (m >= 0x20 && m < 0x60) ? 'Zen 3' : 'Zen 4';
    if (f === 26) return 'Zen 5';
  }
  if (vendor === 'GenuineIntel' && f === 6) {
    const intel: Record<number, string> = { 85: 'Skylake-SP / Cascade Lake', 106: 'Ice Lake-SP', 143: 'Sapphire Rapids', 207: 'Emerald Rapids', 173: 'Granite Rapids' };
    return intel[m] ?? null;
  }
  return null;
}

/** A file-name-safe name for the CPU: vendor/model, family/model, best ISA, threads (amd-epyc-f25m1-avx2-2t). */
export function cpuSlug(cpu: CpuId): string {
  const name = cpu.modelName
    .toLowerCase()
    .replace(/\((r|tm)\)/g, ' ')
    .replace(/\b(cpu|processor)\b/g, ' ')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/, '');
  const fm = cpu.family !== null || cpu.model !== null ? `-f${cpu.family ?? 'x'}m${cpu.model ?? 'x'}` : '';
  return `${name || 'cpu'}${fm}-${bestIsa(cpu)}-${cpu.threads}t`;
}

/** Whether two identities are the same CPU as far as ceilings go. */
export function sameCpu(a: CpuId, b: CpuId): boolean {
  return (
    a.arch === b.arch && a.vendor === b.vendor && a.modelName === b.modelName && a.family === b.family && a.model === b.model &&
    a.threads === b.threads && a.l3Bytes === b.l3Bytes && a.flags.join(' ') === b.flags.join(' ')
  );
}

/** Why a cache file cannot serve this CPU, or null when it can. */
export function staleReason(cached: unknown, cpu: CpuId): string | null {
  const c = cached as Partial<Ceilings> | null;
  if (!c || typeof c !== 'object' || !c.cpu) return 'no measured ceilings';
  if (c.version !== CEILINGS_VERSION) return `measured by an older bench/peak.cc (version ${c.version ?? '?'}, now ${CEILINGS_VERSION})`;
  if (!sameCpu(c.cpu, cpu)) return `measured on another CPU (${c.cpu.modelName}, ${c.cpu.flags.join(' ')}, ${c.cpu.threads} threads)`;
  return null;
}

/** This machine's identity (reads /proc/cpuinfo, sysfs or lscpu). */
export function currentCpu(): CpuId {
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch {
      return '';
    }
  };
  const info = parseCpuinfo(read('/proc/cpuinfo'), os.cpus()[0]?.model ?? 'unknown CPU');
  let l3Bytes: number | null = null;
  const dir = '/sys/devices/system/cpu/cpu0/cache';
  if (existsSync(dir)) {
    for (const idx of readdirSync(dir).filter((d) => d.startsWith('index'))) {
      if (read(`${dir}/${idx}/level`).trim() === '3') l3Bytes = parseCacheSize(read(`${dir}/${idx}/size`));
    }
  }
  if (l3Bytes === null) {
    const ls = spawnSync('lscpu', [], { encoding: 'utf8' });
    if (ls.status === 0) l3Bytes = parseLscpuL3(ls.stdout);
  }
  if (info.flags.length === 0 && process.arch === 'arm64') info.flags = ['asimd']; // NEON is baseline on AArch64
  return { arch: process.arch, ...info, threads: os.availableParallelism(), l3Bytes };
}

// ---- limits of a row ----------------------------------------------------------------------------------

/** A row's ceiling: the value (GFLOP/s or GB/s) and what it is, for the table ("avx2 FMA", "L3 read"). */
export interface Limit { value: number; unit: 'GFLOP/s' | 'GB/s'; label: string }

/** The best measured figure at `threads`; between the two measured counts, interpolated linearly. */
export function atThreads(m: ByThreads, threads: number, all: number): number | null {
  const exact = m[String(threads)];
  if (exact) return exact.best;
  const one = m['1']?.best, many = m[String(all)]?.best;
  if (one === undefined || many === undefined) return one ?? null;
  if (threads >= all) return many;
  return one + ((many - one) * (threads - 1)) / (all - 1);
}

/**
 * Kernel set (info().simd; 'js' for JavaScript kernels: qkv js, tfjs) → the ISA whose peak bounds it.
 * qkv's native 'scalar' set is plain C++ built at -O3 for the baseline, which the compiler vectorizes:
 * 128-bit multiply + add on x86-64 (SSE2), NEON on arm64. JavaScript runs one lane at a time.
 */
export function isaOfKernels(simd: string, arch: string): Isa {
  if (simd === 'avx512' || simd === 'avx2' || simd === 'neon') return simd;
  if (simd === 'scalar') return arch === 'x64' ? 'sse2' : arch === 'arm64' ? 'neon' : 'scalar';
  return 'scalar';
}

/** FMA peak of a kernel set at a thread count. */
export function fmaLimit(c: Ceilings, simd: string, threads: number): Limit | null {
  const isa = isaOfKernels(simd, c.cpu.arch);
  const m = c.fma[isa];
  const v = m ? atThreads(m, threads, c.threads) : null;
  return v ? { value: v, unit: 'GFLOP/s', label: isa === 'sse2' ? 'sse2 mul+add' : `${isa} FMA` } : null;
}

/**
 * Whether a working set of `bytes` re-read call after call is served at the measured L3 rate: when it
 * is no larger than the buffer that rate was measured on. Not the L3 size lscpu reports: a VM's vCPUs
 * may share a large L3 with other guests (an Intel VM with "105 MiB" read a 52 MiB buffer at DRAM speed).
 */
export function fitsL3(c: Ceilings, bytes: number): boolean {
  return bytes <= c.l3.bufferBytes;
}

/** Read bandwidth for a working set of `bytes` at a thread count: the L3's when it fits, else DRAM's. */
export function readLimit(c: Ceilings, threads: number, bytes: number): Limit | null {
  const where = fitsL3(c, bytes) ? 'l3' : 'dram';
  const v = atThreads(c[where].gbs, threads, c.threads);
  return v ? { value: v, unit: 'GB/s', label: where === 'l3' ? 'L3 read' : 'DRAM read' } : null;
}

/** 100 · achieved / limit; null without a limit. */
export function percentOf(achieved: number, limit: Limit | null): number | null {
  return limit && limit.value > 0 && Number.isFinite(achieved) ? (100 * achieved) / limit.value : null;
}

/** "78% avx2 FMA" / "—". */
export function formatPercent(pct: number | null, limit: Limit | null): string {
  return pct === null || !limit ? '—' : `${pct.toFixed(0)}% ${limit.label}`;
}

/** One line naming the CPU and every ceiling (for the headers of the bench tables). */
export function describeCeilings(c: Ceilings, source = ''): string {
  const t = c.threads;
  const pair = (m: ByThreads) => `${m['1']?.best ?? '?'}${t > 1 ? ` / ${m[String(t)]?.best ?? '?'}` : ''}`;
  const fma = (Object.entries(c.fma) as Array<[Isa, ByThreads]>).map(([isa, m]) => `${isa} ${pair(m)}`).join(', ');
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  const arch = microarchitecture(c.cpu);
  return (
    `${c.cpu.modelName} (${c.cpu.vendor}${c.cpu.family !== null ? ` family ${c.cpu.family} model ${c.cpu.model}` : ''}${arch ? `, ${arch}` : ''}; ${c.cpu.flags.join(' ')}; ` +
    `L3 ${c.cpu.l3Bytes ? mib(c.cpu.l3Bytes) : '?'}; ${t} threads) — ceilings on 1${t > 1 ? ` / ${t}` : ''} thread(s): ` +
    `FMA GFLOP/s ${fma}; read GB/s DRAM (${mib(c.dram.bufferBytes)}) ${pair(c.dram.gbs)}, L3 (${mib(c.l3.bufferBytes)}) ${pair(c.l3.gbs)}` +
    `${source ? ` [${source}]` : ''}`
  );
}

// ---- measuring and caching ----------------------------------------------------------------------------

const root = fileURLToPath(new URL('..', import.meta.url));
export const cacheDir = `${root}bench/.cache`;
export const cacheFile = (cpu: CpuId) => `${cacheDir}/ceilings-${cpuSlug(cpu)}.json`;

/** Compiles bench/peak.cc (when the binary is older than it) and runs it; throws with the reason on failure. */
export function measureCeilings(cpu: CpuId, opts: { quick?: boolean; log?: (s: string) => void } = {}): Ceilings {
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const src = `${root}bench/peak.cc`;
  const exe = `${cacheDir}/peak-${process.arch}`;
  mkdirSync(cacheDir, { recursive: true });
  const cxx = process.env.CXX ?? 'g++';
  const cxxArgs = ['-O2', '-std=c++17', '-pthread', src, '-o', exe];
  if (!existsSync(exe) || statSync(exe).mtimeMs < statSync(src).mtimeMs) {
    const cc = spawnSync(cxx, cxxArgs, { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`could not compile bench/peak.cc with ${cxx}: ${cc.error?.message ?? cc.stderr}`);
  }
  // Half the L3, at most 16 MiB: enough for the 12.6 MB decode case, small enough to stay resident
  // where a VM shares its L3 with other guests.
  const l3MiB = cpu.l3Bytes ? Math.max(1, Math.min(16, Math.floor(cpu.l3Bytes / 2 / 2 ** 20))) : 16;
  const samples = opts.quick ? 3 : 5;
  log(`measuring this CPU's ceilings (bench/peak.cc: FMA per ISA, read from a 512 MiB and a ${l3MiB} MiB buffer, on 1 and ${cpu.threads} threads; ~15 s)…`);
  const loadAverage = os.loadavg().map((x) => Number(x.toFixed(2)));
  const run = spawnSync(exe, [String(cpu.threads), '512', String(l3MiB), String(samples)], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`bench/peak.cc failed: ${run.error?.message ?? run.stderr}`);
  const m = JSON.parse(run.stdout) as Omit<Ceilings, 'version' | 'cpu' | 'measuredAt' | 'compiler' | 'loadAverage'> & { sink?: number };
  delete m.sink;
  // Independent cores scale FMA throughput linearly: much less than that means another process was
  // running, and the all-threads figures (kept until the next measurement) are too low.
  const f = m.fma[bestIsa(cpu)];
  const scaling = f && cpu.threads > 1 ? f[String(cpu.threads)]!.best / f['1']!.best : cpu.threads;
  if (scaling < 0.75 * cpu.threads) {
    log(`ceilings: warning: ${cpu.threads}-thread FMA is only ${scaling.toFixed(2)}× 1-thread (load average ${loadAverage.join(' ')}): the machine is busy; run \`npm run bench:peak\` again when it is idle`);
  }
  return { version: CEILINGS_VERSION, cpu, measuredAt: new Date().toISOString(), compiler: `${cxx} ${cxxArgs.slice(0, 3).join(' ')}`, loadAverage, ...m };
}

/**
 * This CPU's ceilings: from its cache file when that fits the CPU, else measured now and cached.
 * `force` measures again regardless. Returns null (with the reason on stderr) when they cannot be
 * measured; the benches then print "—" rather than a percentage of some other machine's limit.
 */
export function loadCeilings(opts: { force?: boolean; quick?: boolean; log?: (s: string) => void } = {}): { ceilings: Ceilings | null; source: string } {
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const cpu = currentCpu();
  const file = cacheFile(cpu);
  const rel = file.slice(root.length);
  let cached: unknown = null;
  if (existsSync(file)) {
    try {
      cached = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      cached = null;
    }
  }
  const why = opts.force ? 'asked to measure again' : staleReason(cached, cpu);
  if (!why) return { ceilings: cached as Ceilings, source: `${rel}, measured ${(cached as Ceilings).measuredAt.slice(0, 16).replace('T', ' ')} UTC` };
  log(`ceilings: ${why} for ${cpu.modelName} (${cpuSlug(cpu)})`);
  try {
    const c = measureCeilings(cpu, opts);
    writeFileSync(file, `${JSON.stringify(c, null, 2)}\n`);
    return { ceilings: c, source: `${rel}, measured now` };
  } catch (err) {
    log(`ceilings: not measured (${(err as Error).message.split('\n')[0]}); "% of limit" is left blank`);
    return { ceilings: null, source: 'none' };
  }
}
