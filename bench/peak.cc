// bench/peak.cc — this machine's ceilings, for the "% of peak" column of bench/run.ts.
// Built and run by bench/peak.ts (g++ -O2 -mavx2 -mfma on x86-64; plain -O2 elsewhere).
//   fma: 12 independent chains of 8-wide fused multiply-adds per thread (enough to cover FMA
//        latency × throughput on current x86 cores); GFLOP/s counts 2 flops per lane per FMA.
//   read: vectorized sum over a buffer far larger than the caches (each thread its own slice); GB/s.
// Prints one JSON object. Usage: peak <threads> [bufferMiB] [smallBufferMiB]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if defined(__AVX2__) && defined(__FMA__)
#define SIMD_NAME "avx2+fma"
#else
#define SIMD_NAME "generic-vector"
#endif

typedef float v8 __attribute__((vector_size(32)));
static double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Returns flops done; `sink` keeps the compiler from deleting the chains.
static double fmaKernel(long iters, float* sink) {
#if defined(__AVX2__) && defined(__FMA__)
  // Twelve named accumulators (not an array): at -O2 an array may live in memory.
  __m256 a0 = _mm256_set1_ps(0.0f), a1 = _mm256_set1_ps(0.1f), a2 = _mm256_set1_ps(0.2f), a3 = _mm256_set1_ps(0.3f);
  __m256 a4 = _mm256_set1_ps(0.4f), a5 = _mm256_set1_ps(0.5f), a6 = _mm256_set1_ps(0.6f), a7 = _mm256_set1_ps(0.7f);
  __m256 a8 = _mm256_set1_ps(0.8f), a9 = _mm256_set1_ps(0.9f), a10 = _mm256_set1_ps(1.0f), a11 = _mm256_set1_ps(1.1f);
  const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < iters; it++) {
    a0 = _mm256_fmadd_ps(a0, b, c); a1 = _mm256_fmadd_ps(a1, b, c); a2 = _mm256_fmadd_ps(a2, b, c);
    a3 = _mm256_fmadd_ps(a3, b, c); a4 = _mm256_fmadd_ps(a4, b, c); a5 = _mm256_fmadd_ps(a5, b, c);
    a6 = _mm256_fmadd_ps(a6, b, c); a7 = _mm256_fmadd_ps(a7, b, c); a8 = _mm256_fmadd_ps(a8, b, c);
    a9 = _mm256_fmadd_ps(a9, b, c); a10 = _mm256_fmadd_ps(a10, b, c); a11 = _mm256_fmadd_ps(a11, b, c);
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
  float out[8];
  _mm256_storeu_ps(out, s);
  *sink = out[0];
#else
  v8 a[12];
  for (int i = 0; i < 12; i++) for (int l = 0; l < 8; l++) a[i][l] = 0.1f * i;
  v8 b, c;
  for (int l = 0; l < 8; l++) { b[l] = 0.999999f; c[l] = 1e-7f; }
  for (long it = 0; it < iters; it++) {
    for (int i = 0; i < 12; i++) a[i] = a[i] * b + c;
    __asm__ volatile("" : "+m"(a));
  }
  v8 s = a[0];
  for (int i = 1; i < 12; i++) s += a[i];
  *sink = s[0];
#endif
  return double(iters) * 12 * 8 * 2;
}

#if defined(__x86_64__)
// The same with 512-bit FMAs, for CPUs that have AVX-512 (qkv itself uses AVX2; peers such as ONNX
// Runtime's MLAS use AVX-512 where present, so the machine's true peak is this one).
__attribute__((target("avx512f"))) static double fma512Kernel(long iters, float* sink) {
  __m512 a0 = _mm512_set1_ps(0.0f), a1 = _mm512_set1_ps(0.1f), a2 = _mm512_set1_ps(0.2f), a3 = _mm512_set1_ps(0.3f);
  __m512 a4 = _mm512_set1_ps(0.4f), a5 = _mm512_set1_ps(0.5f), a6 = _mm512_set1_ps(0.6f), a7 = _mm512_set1_ps(0.7f);
  __m512 a8 = _mm512_set1_ps(0.8f), a9 = _mm512_set1_ps(0.9f), a10 = _mm512_set1_ps(1.0f), a11 = _mm512_set1_ps(1.1f);
  const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (long it = 0; it < iters; it++) {
    a0 = _mm512_fmadd_ps(a0, b, c); a1 = _mm512_fmadd_ps(a1, b, c); a2 = _mm512_fmadd_ps(a2, b, c);
    a3 = _mm512_fmadd_ps(a3, b, c); a4 = _mm512_fmadd_ps(a4, b, c); a5 = _mm512_fmadd_ps(a5, b, c);
    a6 = _mm512_fmadd_ps(a6, b, c); a7 = _mm512_fmadd_ps(a7, b, c); a8 = _mm512_fmadd_ps(a8, b, c);
    a9 = _mm512_fmadd_ps(a9, b, c); a10 = _mm512_fmadd_ps(a10, b, c); a11 = _mm512_fmadd_ps(a11, b, c);
  }
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                           _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
  s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
  *sink = _mm512_reduce_add_ps(s);
  return double(iters) * 12 * 16 * 2;
}
#endif

static float sumKernel(const float* p, size_t n) {
  v8 s0 = {}, s1 = {}, s2 = {}, s3 = {};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    v8 x0, x1, x2, x3;
    std::memcpy(&x0, p + i, 32); std::memcpy(&x1, p + i + 8, 32);
    std::memcpy(&x2, p + i + 16, 32); std::memcpy(&x3, p + i + 24, 32);
    s0 += x0; s1 += x1; s2 += x2; s3 += x3;
  }
  v8 s = s0 + s1 + s2 + s3;
  float r = 0;
  for (int l = 0; l < 8; l++) r += s[l];
  for (; i < n; i++) r += p[i];
  return r;
}

// Runs fn(threadIndex) on `threads` threads started together; returns the wall time of the slowest.
template <class F> static double parallel(int threads, F fn) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; t++) {
    pool.emplace_back([&, t] {
      ready++;
      while (!go.load()) std::this_thread::yield();
      fn(t);
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  double t0 = now();
  go = true;
  for (auto& th : pool) th.join();
  return now() - t0;
}

int main(int argc, char** argv) {
  int allThreads = argc > 1 ? std::max(1, atoi(argv[1])) : int(std::thread::hardware_concurrency());
  size_t mib = argc > 2 ? size_t(atol(argv[2])) : 1024;
  std::vector<float> sinks(256);

  // Calibrate ~0.25 s of FMA work on one thread.
  long iters = 1 << 20;
  for (;;) {
    double t0 = now();
    fmaKernel(iters, &sinks[0]);
    if (now() - t0 > 0.25) break;
    iters *= 2;
  }
  auto fmaPeak = [&](int threads, bool wide) {
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
      double flops = 0;
      double secs = parallel(threads, [&](int t) {
#if defined(__x86_64__)
        if (wide) { fma512Kernel(iters, &sinks[t % 256]); return; }
#endif
        fmaKernel(iters, &sinks[t % 256]);
      });
      flops = double(threads) * double(iters) * 12 * (wide ? 16 : 8) * 2;
      best = std::max(best, flops / secs / 1e9);
    }
    return best;
  };
  bool has512 = false;
#if defined(__x86_64__)
  has512 = __builtin_cpu_supports("avx512f");
#endif

  size_t n = mib * 1024 * 1024 / sizeof(float);
  std::vector<float> buf(n);
  for (size_t i = 0; i < n; i++) buf[i] = float(i & 1023) * 1e-3f;  // touches every page
  // Reads of the first `n` floats, repeated: from DRAM for the full buffer, from the last-level
  // cache for a buffer that fits in it (decode steps re-read the same K/V, often cache-resident).
  auto readBw = [&](int threads, size_t n, int reps) {
    double best = 0;
    for (int rep = 0; rep < reps; rep++) {
      double secs = parallel(threads, [&](int t) {
        size_t lo = n * t / threads, hi = n * (t + 1) / threads;  // this call's n
        sinks[t % 256] += sumKernel(buf.data() + lo, hi - lo);
      });
      best = std::max(best, double(n) * sizeof(float) / secs / 1e9);
    }
    return best;
  };

  size_t smallMiB = argc > 3 ? size_t(atol(argv[3])) : 16;
  double f1 = fmaPeak(1, false), fN = fmaPeak(allThreads, false);
  double w1 = has512 ? fmaPeak(1, true) : 0, wN = has512 ? fmaPeak(allThreads, true) : 0;
  double r1 = readBw(1, n, 5), rN = readBw(allThreads, n, 5);
  // A small buffer (16 MiB: the size of a decode step's K and V), read 50 times: what a call that
  // re-reads the same data sees when it stays in the last-level cache.
  size_t nc = std::min(n, smallMiB * 1024 * 1024 / sizeof(float));
  double c1 = nc ? readBw(1, nc, 50) : 0, cN = nc ? readBw(allThreads, nc, 50) : 0;
  float keep = 0;
  for (float s : sinks) keep += s;
  std::printf(
      "{\"simd\":\"%s\",\"threads\":%d,\"fmaGflops1\":%.1f,\"fmaGflopsAll\":%.1f,"
      "\"fma512Gflops1\":%.1f,\"fma512GflopsAll\":%.1f,\"readGBs1\":%.2f,"
      "\"readGBsAll\":%.2f,\"bufferMiB\":%zu,\"cacheReadGBs1\":%.2f,\"cacheReadGBsAll\":%.2f,"
      "\"cacheBufferMiB\":%.1f,\"sink\":%g}\n",
      SIMD_NAME, allThreads, f1, fN, w1, wN, r1, rN, mib, c1, cN, double(nc) * 4 / 1048576, double(keep) * 0);
  return 0;
}
