// bench/peak.cc — the ceilings of the CPU it runs on, for the "% of limit" columns of the benches.
// Built and run by bench/ceilings.ts (g++ -O2, no -m flags: each ISA's loop carries its own target
// attribute and runs only where the CPU has it, so one binary serves every x86-64 CPU).
//
//   fma:  per ISA (scalar = one-lane FMA, sse2 = 128-bit multiply + add (x86-64 baseline), avx2 =
//         256-bit FMA, avx512 = 512-bit FMA, neon = 128-bit FMA), independent
//         chains acc_c = acc_c * b + c held in named registers (an empty asm per iteration keeps them
//         there and stops the compiler from merging or vectorizing them). Chains: 12 for avx2 (16 ymm
//         registers: 12 accumulators + 2 constants; the same for x86 scalar), 16 for avx512, neon and
//         aarch64 scalar (32 registers). A core needs
//         latency × FMA pipes chains in flight: 4 × 2 = 8 on Intel (2 FMA ports) and on AMD Zen 3/4
//         (2 FMA pipes, 4-cycle latency; Zen 4 splits a 512-bit FMA into two 256-bit halves, so its
//         avx512 figure equals its avx2 one). GFLOP/s counts 2 flops per lane per FMA.
//   read: SIMD loads summed into 8 accumulators (the sum is printed, so no load can be dropped);
//         each thread reads its own contiguous slice of the buffer as 4 streams at once (one cache
//         line from each stream per iteration), which keeps more misses in flight than one stream.
//         dram: a buffer far larger than the L3, one pass per sample.
//         l3:   a buffer about half the L3, warmed, then re-read over and over (what a decode step
//               over a cache-resident K/V of that size sees).
// Every figure is measured on 1 thread and on <threads> threads started together (the wall time from
// the start signal to the last thread's end); each is the best and the median of several samples
// (the best is the ceiling: the machine's capability, not its load at the time).
// Prints one JSON object. Usage: peak <threads> <dramMiB> <l3MiB> [samples]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>
#if defined(__x86_64__)
#include <immintrin.h>
#define X86_TARGET(t) __attribute__((target(t)))
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

static double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
static volatile double g_sink = 0;  // every kernel's result lands here

// ---- FMA ------------------------------------------------------------------------------------------
// Each kernel returns the flops it did; iters × chains × lanes × 2.
#define REP12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define REP16(X) REP12(X) X(12) X(13) X(14) X(15)

#if defined(__x86_64__)
X86_TARGET("fma") static double fma_scalar(long iters) {
#define DECL(i) float a##i = 0.01f * (i + 1);
  REP12(DECL)
#undef DECL
  const float b = 0.999999f, c = 1e-7f;
  for (long it = 0; it < iters; it++) {
#define STEP(i) a##i = __builtin_fmaf(a##i, b, c);
    REP12(STEP)
#undef STEP
    __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5));
    __asm__ volatile("" : "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11));
  }
  double s = 0;
#define SUM(i) s += a##i;
  REP12(SUM)
#undef SUM
  g_sink = g_sink + s;
  return double(iters) * 12 * 1 * 2;
}

// x86-64 baseline (SSE2, 128-bit, no FMA): a multiply and a dependent add per chain, what qkv's
// scalar kernel set compiles to (-O3 vectorizes it for the baseline). 14 chains (16 xmm registers):
// a mul + add pair has 6-8 cycles of latency, and Zen issues 2 multiplies and 2 adds per cycle.
#define REP14(X) REP12(X) X(12) X(13)
static double muladd_sse2(long iters) {
#define DECL(i) __m128 a##i = _mm_set1_ps(0.01f * (i + 1));
  REP14(DECL)
#undef DECL
  const __m128 b = _mm_set1_ps(0.999999f), c = _mm_set1_ps(1e-7f);
  for (long it = 0; it < iters; it++) {
#define STEP(i) a##i = _mm_add_ps(_mm_mul_ps(a##i, b), c);
    REP14(STEP)
#undef STEP
    __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5), "+x"(a6));
    __asm__ volatile("" : "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11), "+x"(a12), "+x"(a13));
  }
  __m128 s = _mm_setzero_ps();
#define SUM(i) s = _mm_add_ps(s, a##i);
  REP14(SUM)
#undef SUM
  float out[4];
  _mm_storeu_ps(out, s);
  g_sink = g_sink + out[0] + out[3];
  return double(iters) * 14 * 4 * 2;
}

X86_TARGET("avx2,fma") static double fma_avx2(long iters) {
#define DECL(i) __m256 a##i = _mm256_set1_ps(0.01f * (i + 1));
  REP12(DECL)
#undef DECL
  const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < iters; it++) {
#define STEP(i) a##i = _mm256_fmadd_ps(a##i, b, c);
    REP12(STEP)
#undef STEP
    __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5));
    __asm__ volatile("" : "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11));
  }
  __m256 s = _mm256_setzero_ps();
#define SUM(i) s = _mm256_add_ps(s, a##i);
  REP12(SUM)
#undef SUM
  float out[8];
  _mm256_storeu_ps(out, s);
  g_sink = g_sink + out[0] + out[7];
  return double(iters) * 12 * 8 * 2;
}

X86_TARGET("avx512f") static double fma_avx512(long iters) {
#define DECL(i) __m512 a##i = _mm512_set1_ps(0.01f * (i + 1));
  REP16(DECL)
#undef DECL
  const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (long it = 0; it < iters; it++) {
#define STEP(i) a##i = _mm512_fmadd_ps(a##i, b, c);
    REP16(STEP)
#undef STEP
    __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7));
    __asm__ volatile("" : "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11), "+v"(a12), "+v"(a13), "+v"(a14), "+v"(a15));
  }
  __m512 s = _mm512_setzero_ps();
#define SUM(i) s = _mm512_add_ps(s, a##i);
  REP16(SUM)
#undef SUM
  float out[16];
  _mm512_storeu_ps(out, s);
  g_sink = g_sink + out[0] + out[15];
  return double(iters) * 16 * 16 * 2;
}
#elif defined(__aarch64__)
static double fma_scalar(long iters) {
#define DECL(i) float a##i = 0.01f * (i + 1);
  REP16(DECL)
#undef DECL
  const float b = 0.999999f, c = 1e-7f;
  for (long it = 0; it < iters; it++) {
#define STEP(i) a##i = __builtin_fmaf(a##i, b, c);
    REP16(STEP)
#undef STEP
    __asm__ volatile("" : "+w"(a0), "+w"(a1), "+w"(a2), "+w"(a3), "+w"(a4), "+w"(a5), "+w"(a6), "+w"(a7));
    __asm__ volatile("" : "+w"(a8), "+w"(a9), "+w"(a10), "+w"(a11), "+w"(a12), "+w"(a13), "+w"(a14), "+w"(a15));
  }
  double s = 0;
#define SUM(i) s += a##i;
  REP16(SUM)
#undef SUM
  g_sink = g_sink + s;
  return double(iters) * 16 * 1 * 2;
}

static double fma_neon(long iters) {
#define DECL(i) float32x4_t a##i = vdupq_n_f32(0.01f * (i + 1));
  REP16(DECL)
#undef DECL
  const float32x4_t b = vdupq_n_f32(0.999999f), c = vdupq_n_f32(1e-7f);
  for (long it = 0; it < iters; it++) {
#define STEP(i) a##i = vfmaq_f32(c, a##i, b);
    REP16(STEP)
#undef STEP
    __asm__ volatile("" : "+w"(a0), "+w"(a1), "+w"(a2), "+w"(a3), "+w"(a4), "+w"(a5), "+w"(a6), "+w"(a7));
    __asm__ volatile("" : "+w"(a8), "+w"(a9), "+w"(a10), "+w"(a11), "+w"(a12), "+w"(a13), "+w"(a14), "+w"(a15));
  }
  float32x4_t s = vdupq_n_f32(0);
#define SUM(i) s = vaddq_f32(s, a##i);
  REP16(SUM)
#undef SUM
  g_sink = g_sink + vaddvq_f32(s);
  return double(iters) * 16 * 4 * 2;
}
#else
static double fma_scalar(long iters) {  // no FMA instruction known here: a multiply and an add
#define DECL(i) volatile float v##i = 0.01f * (i + 1); float a##i = v##i;
  REP16(DECL)
#undef DECL
  const float b = 0.999999f, c = 1e-7f;
  for (long it = 0; it < iters; it++) {
#define STEP(i) a##i = a##i * b + c;
    REP16(STEP)
#undef STEP
  }
  double s = 0;
#define SUM(i) s += a##i;
  REP16(SUM)
#undef SUM
  g_sink = g_sink + s;
  return double(iters) * 16 * 1 * 2;
}
#endif

// ---- read bandwidth -------------------------------------------------------------------------------
// Sum of p[0, n) read as 4 streams (n is a multiple of 4 × 16 floats; the caller rounds).
typedef float v8 __attribute__((vector_size(32)));
#if defined(__x86_64__)
X86_TARGET("avx2") static double read_avx2(const float* p, size_t n) {
  const size_t q = n / 4;
  const float *s0 = p, *s1 = p + q, *s2 = p + 2 * q, *s3 = p + 3 * q;
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  for (size_t i = 0; i < q; i += 16) {  // one 64-byte line from each stream
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(s0 + i)); a1 = _mm256_add_ps(a1, _mm256_loadu_ps(s0 + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(s1 + i)); a3 = _mm256_add_ps(a3, _mm256_loadu_ps(s1 + i + 8));
    a4 = _mm256_add_ps(a4, _mm256_loadu_ps(s2 + i)); a5 = _mm256_add_ps(a5, _mm256_loadu_ps(s2 + i + 8));
    a6 = _mm256_add_ps(a6, _mm256_loadu_ps(s3 + i)); a7 = _mm256_add_ps(a7, _mm256_loadu_ps(s3 + i + 8));
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  float out[8];
  _mm256_storeu_ps(out, s);
  double r = 0;
  for (float x : out) r += x;
  return r;
}
#endif
static double read_generic(const float* p, size_t n) {
  const size_t q = n / 4;
  const float *s0 = p, *s1 = p + q, *s2 = p + 2 * q, *s3 = p + 3 * q;
  v8 a0 = {}, a1 = {}, a2 = {}, a3 = {}, a4 = {}, a5 = {}, a6 = {}, a7 = {};
  for (size_t i = 0; i < q; i += 16) {
    v8 x[8];
    std::memcpy(&x[0], s0 + i, 32); std::memcpy(&x[1], s0 + i + 8, 32);
    std::memcpy(&x[2], s1 + i, 32); std::memcpy(&x[3], s1 + i + 8, 32);
    std::memcpy(&x[4], s2 + i, 32); std::memcpy(&x[5], s2 + i + 8, 32);
    std::memcpy(&x[6], s3 + i, 32); std::memcpy(&x[7], s3 + i + 8, 32);
    a0 += x[0]; a1 += x[1]; a2 += x[2]; a3 += x[3]; a4 += x[4]; a5 += x[5]; a6 += x[6]; a7 += x[7];
  }
  v8 s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
  double r = 0;
  for (int l = 0; l < 8; l++) r += s[l];
  return r;
}

// ---- threads --------------------------------------------------------------------------------------
// Runs fn(t) on `threads` threads released together; returns seconds from the release to the last end.
template <class F> static double parallel(int threads, F fn) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<double> ends(threads, 0.0);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; t++) {
    pool.emplace_back([&, t] {
      ready++;
      while (!go.load(std::memory_order_acquire)) {
      }
      fn(t);
      ends[t] = now();
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  const double t0 = now();
  go.store(true, std::memory_order_release);
  for (auto& th : pool) th.join();
  return *std::max_element(ends.begin(), ends.end()) - t0;
}

struct Stat { double best, median; };
static Stat stat(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  return {xs.back(), xs.size() % 2 ? xs[xs.size() / 2] : (xs[xs.size() / 2 - 1] + xs[xs.size() / 2]) / 2};
}
static std::string json(const Stat& s) {
  char b[96];
  std::snprintf(b, sizeof b, "{\"best\":%.2f,\"median\":%.2f}", s.best, s.median);
  return b;
}

int main(int argc, char** argv) {
  const int N = argc > 1 ? std::max(1, atoi(argv[1])) : int(std::thread::hardware_concurrency());
  const size_t dramMiB = argc > 2 ? size_t(atol(argv[2])) : 512;
  const size_t l3MiB = argc > 3 ? size_t(atol(argv[3])) : 16;
  const int samples = argc > 4 ? std::max(1, atoi(argv[4])) : 5;
  std::vector<int> counts = {1};
  if (N > 1) counts.push_back(N);

  // FMA: each ISA's iteration count calibrated on one thread to ~50 ms per sample, and 3 × samples of
  // them: on a machine shared with other work, short samples are the likeliest to catch every thread
  // on a core of its own, which is what the best of them reports.
  struct Isa { const char* name; double (*fn)(long); };
  std::vector<Isa> isas;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("fma")) isas.push_back({"scalar", fma_scalar});
  isas.push_back({"sse2", muladd_sse2});
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) isas.push_back({"avx2", fma_avx2});
  if (__builtin_cpu_supports("avx512f")) isas.push_back({"avx512", fma_avx512});
#elif defined(__aarch64__)
  isas.push_back({"scalar", fma_scalar});
  isas.push_back({"neon", fma_neon});
#else
  isas.push_back({"scalar", fma_scalar});
#endif
  std::string fmaJson;
  for (const Isa& isa : isas) {
    long iters = 1 << 16;
    for (;;) {
      const double t0 = now();
      isa.fn(iters);
      if (now() - t0 > 0.05) break;
      iters *= 2;
    }
    std::string per;
    for (int threads : counts) {
      std::vector<double> g;
      for (int s = 0; s < 3 * samples; s++) {
        std::vector<double> flops(threads);
        const double secs = parallel(threads, [&](int t) { flops[t] = isa.fn(iters); });
        double total = 0;
        for (double f : flops) total += f;
        g.push_back(total / secs / 1e9);
      }
      per += (per.empty() ? "" : ",") + std::string("\"") + std::to_string(threads) + "\":" + json(stat(g));
    }
    fmaJson += (fmaJson.empty() ? "" : ",") + std::string("\"") + isa.name + "\":{" + per + "}";
  }

  // Read bandwidth. Slices are rounded to whole iterations (4 streams × 16 floats) per thread.
  double (*readFn)(const float*, size_t) = read_generic;
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2")) readFn = read_avx2;
#endif
  const size_t unit = 64 * size_t(N);
  const size_t nDram = std::max(unit, (dramMiB << 20) / sizeof(float) / unit * unit);
  const size_t nL3 = std::max(unit, std::min(nDram, (l3MiB << 20) / sizeof(float) / unit * unit));
  float* buf = static_cast<float*>(std::aligned_alloc(4096, nDram * sizeof(float)));
  if (!buf) { std::fprintf(stderr, "peak: cannot allocate %zu MiB\n", dramMiB); return 1; }
  parallel(N, [&](int t) {  // first touch by the thread that reads it (NUMA), every page written
    const size_t lo = nDram * t / N, hi = nDram * (t + 1) / N;
    for (size_t i = lo; i < hi; i++) buf[i] = float(i & 1023) * 1e-3f;
  });
  // One sample: `passes` reads of floats [0, n) split over `threads`; returns GB/s.
  auto readSample = [&](int threads, size_t n, int passes) {
    const size_t per = n / threads / 64 * 64;
    std::vector<double> sums(threads, 0.0);
    const double secs = parallel(threads, [&](int t) {
      for (int p = 0; p < passes; p++) sums[t] += readFn(buf + per * t, per);
    });
    for (double s : sums) g_sink = g_sink + s;
    return double(per) * threads * sizeof(float) * passes / secs / 1e9;
  };
  auto readStat = [&](int threads, size_t n, int passes, int reps) {
    readSample(threads, n, std::max(1, passes / 4));  // warm: caches (l3), TLB
    std::vector<double> g;
    for (int s = 0; s < reps; s++) g.push_back(readSample(threads, n, passes));
    return stat(g);
  };
  // The L3 buffer is re-read enough times for a sample to move ~1 GiB.
  const int l3Passes = int(std::max<size_t>(1, (size_t(1) << 30) / (nL3 * sizeof(float))));
  std::string dramJson, l3Json;
  for (int threads : counts) {
    dramJson += (dramJson.empty() ? "" : ",") + std::string("\"") + std::to_string(threads) + "\":" +
                json(readStat(threads, nDram, 1, samples + 2));
    l3Json += (l3Json.empty() ? "" : ",") + std::string("\"") + std::to_string(threads) + "\":" +
              json(readStat(threads, nL3, l3Passes, samples + 2));
  }
  std::free(buf);
  std::printf(
      "{\"threads\":%d,\"samples\":%d,\"fma\":{%s},\"dram\":{\"bufferBytes\":%zu,\"gbs\":{%s}},"
      "\"l3\":{\"bufferBytes\":%zu,\"gbs\":{%s}},\"sink\":%g}\n",
      N, samples, fmaJson.c_str(), nDram * sizeof(float), dramJson.c_str(), nL3 * sizeof(float), l3Json.c_str(),
      std::isfinite(double(g_sink)) ? 0.0 : 1.0);
  return 0;
}
