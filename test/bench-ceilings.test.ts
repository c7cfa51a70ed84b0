// The pure parts of bench/ceilings.ts: identifying the CPU, deciding when cached ceilings belong to
// another CPU, picking a row's limit and the percentage. Nothing here measures or times anything.
import { describe, expect, test } from 'vitest';
import {
  CEILINGS_VERSION, atThreads, bestIsa, cpuSlug, fitsL3, fmaLimit, formatPercent, isaOfKernels, microarchitecture, parseCacheSize,
  parseCpuinfo, parseLscpuL3, percentOf, readLimit, sameCpu, staleReason, type Ceilings, type CpuId,
} from '../bench/ceilings.js';

const zen3 = `processor	: 0
vendor_id	: AuthenticAMD
cpu family	: 25
model		: 1
model name	: AMD EPYC
stepping	: 1
flags		: fpu vme sse sse2 pni ssse3 fma cx16 sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni vaes

processor	: 1
vendor_id	: AuthenticAMD
cpu family	: 25
model		: 1
model name	: AMD EPYC
flags		: fpu vme sse sse2 fma avx avx2
`;
const sapphire = `processor	: 0
vendor_id	: GenuineIntel
cpu family	: 6
model		: 143
model name	: Intel(R) Xeon(R) Processor
flags		: fpu sse sse2 fma avx f16c avx2 avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16 avx512_fp16
`;
const graviton = `processor	: 0
BogoMIPS	: 243.75
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm
CPU implementer	: 0x41
CPU architecture: 8
CPU part	: 0xd0c
`;

const cpu = (text: string, over: Partial<CpuId> = {}): CpuId => ({ arch: 'x64', ...parseCpuinfo(text, 'Neoverse-N1'), threads: 2, l3Bytes: 32 * 2 ** 20, ...over });

function ceilingsFor(c: CpuId): Ceilings {
  const s = (best: number) => ({ best, median: best * 0.95 });
  return {
    version: CEILINGS_VERSION, cpu: c, measuredAt: '2026-12-02T12:00:00.000Z', compiler: 'g++ -O2 -std=c++17', loadAverage: [0, 0, 0],
    threads: 2, samples: 5,
    fma: { scalar: { 1: s(11), 2: s(22) }, sse2: { 1: s(44), 2: s(88) }, avx2: { 1: s(92), 2: s(184) } },
    dram: { bufferBytes: 512 * 2 ** 20, gbs: { 1: s(20), 2: s(30) } },
    l3: { bufferBytes: 16 * 2 ** 20, gbs: { 1: s(40), 2: s(80) } },
  };
}

describe('CPU identification', () => {
  test('reads vendor, family, model, name and the relevant flags from the first processor of /proc/cpuinfo', () => {
    const id = parseCpuinfo(zen3);
    expect(id).toEqual({ vendor: 'AuthenticAMD', modelName: 'AMD EPYC', family: 25, model: 1, flags: ['sse4_2', 'avx', 'f16c', 'fma', 'avx2'] });
    expect(parseCpuinfo(sapphire).flags).toContain('avx512f');
    expect(parseCpuinfo(sapphire).family).toBe(6);
  });

  test('arm64: Features, implementer and part; the model name comes from os.cpus() when cpuinfo has none', () => {
    const id = parseCpuinfo(graviton, 'Neoverse-N1');
    expect(id.modelName).toBe('Neoverse-N1');
    expect(id.vendor).toBe('implementer 0x41');
    expect(id.model).toBe(0xd0c);
    expect(id.flags).toEqual(['asimd', 'asimdhp', 'fphp']);
  });

  test('cache sizes from sysfs and lscpu (one instance of the L3)', () => {
    expect(parseCacheSize('32768K')).toBe(32 * 2 ** 20);
    expect(parseCacheSize('1 MiB')).toBe(2 ** 20);
    expect(parseCacheSize('')).toBeNull();
    expect(parseLscpuL3('L2 cache: 1 MiB (2 instances)\nL3 cache:                               32 MiB (1 instance)\n')).toBe(32 * 2 ** 20);
    expect(parseLscpuL3('L3 cache: 64 MiB (2 instances)')).toBe(32 * 2 ** 20);
    expect(parseLscpuL3('L2 cache: 1 MiB')).toBeNull();
  });

  test('best ISA and slug', () => {
    expect(bestIsa(cpu(zen3))).toBe('avx2');
    expect(bestIsa(cpu(sapphire))).toBe('avx512');
    expect(bestIsa(cpu(graviton, { arch: 'arm64' }))).toBe('neon');
    expect(cpuSlug(cpu(zen3))).toBe('amd-epyc-f25m1-avx2-2t');
    expect(cpuSlug(cpu(sapphire, { threads: 8 }))).toBe('intel-xeon-f6m143-avx512-8t');
  });

  test('micro-architecture from family and model', () => {
    expect(microarchitecture(cpu(zen3))).toBe('Zen 3');
    expect(microarchitecture({ vendor: 'AuthenticAMD', family: 25, model: 17 })).toBe('Zen 4');
    expect(microarchitecture(cpu(sapphire))).toBe('Sapphire Rapids');
    expect(microarchitecture({ vendor: 'implementer 0x41', family: 8, model: 0xd0c })).toBeNull();
  });
});

describe('cache invalidation', () => {
  const here = cpu(zen3);
  test('ceilings measured on this CPU are used', () => {
    expect(sameCpu(here, cpu(zen3))).toBe(true);
    expect(staleReason(ceilingsFor(here), here)).toBeNull();
  });

  test('another CPU, other flags, threads or L3, an older peak.cc or no file: measured again', () => {
    expect(staleReason(ceilingsFor(cpu(sapphire)), here)).toMatch(/another CPU \(Intel\(R\) Xeon\(R\) Processor/);
    expect(staleReason(ceilingsFor(here), { ...here, flags: [...here.flags, 'avx512f'] })).toMatch(/another CPU/);
    expect(staleReason(ceilingsFor(here), { ...here, threads: 4 })).toMatch(/another CPU/);
    expect(staleReason(ceilingsFor(here), { ...here, l3Bytes: 16 * 2 ** 20 })).toMatch(/another CPU/);
    expect(staleReason(ceilingsFor(here), { ...here, model: 17 })).toMatch(/another CPU/);
    expect(staleReason({ ...ceilingsFor(here), version: CEILINGS_VERSION - 1 }, here)).toMatch(/older bench\/peak\.cc/);
    expect(staleReason(null, here)).toBe('no measured ceilings');
    // The old tracked bench/peak.json had no cpu identity at all.
    expect(staleReason({ fmaGflops1: 127.3, readGBs1: 12.74 }, here)).toBe('no measured ceilings');
  });
});

describe('limits and % of limit', () => {
  const c = ceilingsFor(cpu(zen3));
  test('each kernel set is held to its own ISA: native scalar to sse2 on x86-64 (and neon on arm64), JavaScript to one lane', () => {
    expect(isaOfKernels('avx2', 'x64')).toBe('avx2');
    expect(isaOfKernels('scalar', 'x64')).toBe('sse2');
    expect(isaOfKernels('scalar', 'arm64')).toBe('neon');
    expect(isaOfKernels('js', 'x64')).toBe('scalar');
    expect(fmaLimit(c, 'avx2', 1)).toEqual({ value: 92, unit: 'GFLOP/s', label: 'avx2 FMA' });
    expect(fmaLimit(c, 'avx2', 2)?.value).toBe(184);
    expect(fmaLimit(c, 'scalar', 2)).toEqual({ value: 88, unit: 'GFLOP/s', label: 'sse2 mul+add' });
    expect(fmaLimit(c, 'js', 1)?.value).toBe(11);
    expect(fmaLimit(c, 'avx512', 1)).toBeNull(); // not measured: no limit rather than another one
  });

  test('thread counts between the measured ones are interpolated, beyond them capped', () => {
    const m = { 1: { best: 10, median: 9 }, 4: { best: 40, median: 38 } };
    expect(atThreads(m, 1, 4)).toBe(10);
    expect(atThreads(m, 2, 4)).toBe(20);
    expect(atThreads(m, 8, 4)).toBe(40);
  });

  test('decode rows: L3 read bandwidth when the working set fits the measured L3 buffer, else DRAM', () => {
    const small = 2 * 12 * 2048 * 64 * 4; // 12.6 MB of K + V
    const big = 2 * 32 * 4096 * 128 * 4; // 134 MB
    expect(fitsL3(c, small)).toBe(true);
    expect(readLimit(c, 1, small)).toEqual({ value: 40, unit: 'GB/s', label: 'L3 read' });
    expect(readLimit(c, 2, big)).toEqual({ value: 30, unit: 'GB/s', label: 'DRAM read' });
    // The L3 rate holds up to the buffer it was measured on, whatever size lscpu gives the L3.
    expect(fitsL3(c, 16 * 2 ** 20)).toBe(true);
    expect(fitsL3(c, 16 * 2 ** 20 + 1)).toBe(false);
    expect(readLimit(c, 1, 20 * 2 ** 20)).toEqual({ value: 20, unit: 'GB/s', label: 'DRAM read' });
  });

  test('percentage and its cell', () => {
    const limit = fmaLimit(c, 'avx2', 1);
    expect(percentOf(69, limit)).toBeCloseTo(75, 10);
    expect(formatPercent(percentOf(69, limit), limit)).toBe('75% avx2 FMA');
    expect(percentOf(69, null)).toBeNull();
    expect(percentOf(Number.NaN, limit)).toBeNull();
    expect(formatPercent(null, null)).toBe('—');
  });
});
