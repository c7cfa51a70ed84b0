// SPDX-License-Identifier: MIT
//
// Standalone harness for the packed SGEMM (native/gemm.*, native/kernels/gemm_*.cc); no Node.
//   gemm_test            correctness: random M, N, K in [1, 300] plus larger shapes, both weight
//                        layouts, with and without bias, every kernel set this machine runs,
//                        against a float64 reference. Ends with "N passed, N failed".
//   gemm_test --bench    GFLOP/s at M = N = K = 512, 1024, 2048 per ISA (median of several runs)
//                        and the FMA peak of one core (x86-64: 12 independent chains of 8-float FMAs).
//
// Tolerance, per element: |y - ref| <= (2 + 2 sqrt(K)) * u * S + 1e-30, with u = 2^-24 and
// S = sum_k |x_ik| |B_kj| + |bias_j|. Every fp32 product and addition errs by at most u times a
// value bounded by S; the K addition errors are independent-ish, so their sum grows like
// sqrt(K) u S (the deterministic worst case is K u S). 2 sqrt(K) is several standard deviations
// of that random walk, and S bounds every partial sum, so a correct kernel passes with a wide
// margin while an indexing bug (a missing or wrong term, typically ~ S / sqrt(K)) fails.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "dispatch.h"
#include "gemm.h"
#include "kernels/gemm_kernels.h"
#include "thread_pool.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

using qkv::GemmKernelTable;

// The GEMM table of every kernel set this machine runs (native/dispatch.cc), scalar first.
std::vector<const GemmKernelTable*> AvailableTables() {
  const char* names[qkv::kMaxKernelSets];
  const int n = qkv::SupportedSimd(names);
  std::vector<const GemmKernelTable*> t;
  for (int i = 0; i < n; ++i) t.push_back(&qkv::RunnableSet(names[i])->gemm);
  return t;
}

struct Case {
  int64_t M, N, K;
  bool out_in, bias;
};

// B[k, j] of the weight, whatever the layout.
inline float WeightAt(const std::vector<float>& w, bool out_in, int64_t N, int64_t K, int64_t k, int64_t j) {
  return out_in ? w[j * K + k] : w[k * N + j];
}

int failures = 0, passes = 0;

void RunCase(const Case& c, uint32_t seed, const std::vector<const GemmKernelTable*>& tables) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(c.M * c.K), w(c.N * c.K), bias(c.N);
  for (auto& v : x) v = nd(rng);
  for (auto& v : w) v = nd(rng);
  for (auto& v : bias) v = nd(rng);
  const float* bias_p = c.bias ? bias.data() : nullptr;

  // float64 reference and the per-element scale S.
  std::vector<double> ref(c.M * c.N), scale(c.M * c.N);
  std::vector<double> bt(c.K * c.N);  // B[k, j] as double, k-major for a contiguous inner loop
  for (int64_t k = 0; k < c.K; ++k) {
    for (int64_t j = 0; j < c.N; ++j) bt[k * c.N + j] = WeightAt(w, c.out_in, c.N, c.K, k, j);
  }
  for (int64_t i = 0; i < c.M; ++i) {
    double* r = &ref[i * c.N];
    double* s = &scale[i * c.N];
    for (int64_t j = 0; j < c.N; ++j) {
      r[j] = c.bias ? bias[j] : 0.0;
      s[j] = c.bias ? std::fabs(bias[j]) : 0.0;
    }
    for (int64_t k = 0; k < c.K; ++k) {
      const double a = x[i * c.K + k];
      const double* b = &bt[k * c.N];
      for (int64_t j = 0; j < c.N; ++j) {
        r[j] += a * b[j];
        s[j] += std::fabs(a * b[j]);
      }
    }
  }

  std::vector<float> packed(qkv::PackedWeightFloats(c.N, c.K), -7.0f);
  qkv::PackWeight(w.data(), c.out_in, c.N, c.K, packed.data());
  const bool header_ok = qkv::PackedWeightMatches(packed.data(), c.N, c.K) &&
                         !qkv::PackedWeightMatches(packed.data(), c.N + 1, c.K) &&
                         !qkv::PackedWeightMatches(packed.data(), c.N, c.K + 1);

  const double u = std::ldexp(1.0, -24);
  const double factor = (2.0 + 2.0 * std::sqrt(static_cast<double>(c.K))) * u;
  const float kSentinel = 1234.5f;
  // The packed weight copied one float further on: its panels lose their 64-byte alignment (as after
  // a copy in JS), which must change nothing but speed.
  std::vector<float> shifted(packed.size() + 1);
  std::copy(packed.begin(), packed.end(), shifted.begin() + 1);
  const char* kVariant[3] = {"", "(dispatch)", "(copied)"};
  for (const GemmKernelTable* t : tables) {
    for (int variant = 0; variant < 3; ++variant) {
      std::vector<float> y(c.M * c.N, kSentinel);
      if (variant == 1) {  // through the kernel set of that name
        qkv::SetSimd(t->name);
        qkv::GemmPacked(x.data(), c.M, c.K, packed.data(), c.N, bias_p, y.data());
        qkv::SetSimd("auto");
      } else {
        const float* p = variant == 0 ? packed.data() : shifted.data() + 1;
        qkv::GemmPackedWith(*t, x.data(), c.M, c.K, p, c.N, bias_p, y.data());
      }
      double worst = 0.0;  // max err / tol
      int64_t bad = -1;
      for (int64_t i = 0; i < c.M; ++i) {
        for (int64_t j = 0; j < c.N; ++j) {
          const float got = y[i * c.N + j];
          const double err = std::fabs(got - ref[i * c.N + j]);
          const double tol = factor * scale[i * c.N + j] + 1e-30;
          const double ratio = std::isfinite(got) ? err / tol : INFINITY;
          if (ratio > worst) worst = ratio;
          if (!(ratio <= 1.0) && bad < 0) bad = i * c.N + j;
        }
      }
      // Thread-count parity: 2 and 3 threads give bitwise the same y as 1 thread.
      bool parity = true;
      if (variant == 0) {
        for (int threads : {2, 3}) {
          std::vector<float> y2(c.M * c.N, kSentinel);
          qkv::SetThreads(threads);
          qkv::GemmPackedWith(*t, x.data(), c.M, c.K, packed.data(), c.N, bias_p, y2.data());
          qkv::SetThreads(1);
          parity = parity && std::memcmp(y.data(), y2.data(), y.size() * sizeof(float)) == 0;
        }
      }
      const bool ok = bad < 0 && header_ok && parity;
      (ok ? passes : failures)++;
      if (!ok) {
        std::printf("FAIL %-6s%s M=%lld N=%lld K=%lld %s bias=%d: worst err/tol=%.3g first bad=%lld "
                    "header_ok=%d thread_parity=%d\n",
                    t->name, kVariant[variant], (long long)c.M, (long long)c.N, (long long)c.K,
                    c.out_in ? "out-in" : "in-out", c.bias, worst, (long long)bad, header_ok, parity);
      }
    }
  }
}

// The float a half weight's bits stand for, decoded with plain arithmetic (not the kernels' code).
float HalfValue(uint16_t h, qkv::WeightDtype dtype) {
  const float sign = (h & 0x8000) ? -1.0f : 1.0f;
  if (dtype == qkv::WeightDtype::kBF16) {
    const int e = (h >> 7) & 0xff, m = h & 0x7f;
    return e == 0 ? sign * std::ldexp(static_cast<float>(m), -133) : sign * std::ldexp(1.0f + m / 128.0f, e - 127);
  }
  const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  return e == 0 ? sign * std::ldexp(static_cast<float>(m), -24) : sign * std::ldexp(1.0f + m / 1024.0f, e - 15);
}

// Half weights (bfloat16, float16): packed 16-bit, y must be bitwise the y of the float packing of
// the widened values, on every table, at 1 and 2 threads. Finite bits only (exponent below all
// ones), subnormals and -0 included, so memcmp is the comparison.
void RunHalfCase(const Case& c, uint32_t seed, const std::vector<const GemmKernelTable*>& tables) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(c.M * c.K), bias(c.N);
  for (auto& v : x) v = nd(rng);
  for (auto& v : bias) v = nd(rng);
  const float* bias_p = c.bias ? bias.data() : nullptr;
  for (qkv::WeightDtype dtype : {qkv::WeightDtype::kBF16, qkv::WeightDtype::kF16}) {
    const uint16_t exp_mask = dtype == qkv::WeightDtype::kBF16 ? 0x7f80 : 0x7c00;
    std::vector<uint16_t> bits(c.N * c.K);
    std::vector<float> widened(c.N * c.K);
    for (size_t i = 0; i < bits.size(); ++i) {
      uint16_t h;
      do h = static_cast<uint16_t>(rng()); while ((h & exp_mask) == exp_mask);
      // Mostly moderate magnitudes (a sum of huge and tiny values says little), some of every kind.
      if (rng() % 8 != 0) h = static_cast<uint16_t>((h & 0x80ff) | (dtype == qkv::WeightDtype::kBF16 ? 0x3c00 : 0x3400));
      bits[i] = h;
      widened[i] = HalfValue(h, dtype);
    }
    std::vector<float> packed_f32(qkv::PackedWeightFloats(c.N, c.K));
    qkv::PackWeight(widened.data(), c.out_in, c.N, c.K, packed_f32.data());
    std::vector<float> packed_half(qkv::PackedWeightFloats(c.N, c.K, dtype));
    qkv::PackHalfWeight(bits.data(), dtype, c.out_in, c.N, c.K, packed_half.data());
    const qkv::PackedPanels header = qkv::ReadPackedHeader(packed_half.data(), c.N, c.K);
    constexpr size_t kOverhead = qkv::kGemmHeaderFloats + qkv::kGemmAlignSlack;  // the same in both forms
    const bool header_ok = header.data != nullptr && header.dtype == dtype && 2 * (packed_half.size() - kOverhead) == packed_f32.size() - kOverhead;
    for (const GemmKernelTable* t : tables) {
      std::vector<float> want(c.M * c.N), got(c.M * c.N), got2(c.M * c.N);
      qkv::GemmPackedWith(*t, x.data(), c.M, c.K, packed_f32.data(), c.N, bias_p, want.data());
      qkv::GemmPackedWith(*t, x.data(), c.M, c.K, packed_half.data(), c.N, bias_p, got.data());
      qkv::SetThreads(2);
      qkv::GemmPackedWith(*t, x.data(), c.M, c.K, packed_half.data(), c.N, bias_p, got2.data());
      qkv::SetThreads(1);
      const bool same = std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0;
      const bool parity = std::memcmp(got.data(), got2.data(), got.size() * sizeof(float)) == 0;
      const bool ok = same && parity && header_ok;
      (ok ? passes : failures)++;
      if (!ok) {
        std::printf("FAIL %-6s %s M=%lld N=%lld K=%lld %s bias=%d: equal to float panels=%d thread_parity=%d header_ok=%d\n",
                    t->name, dtype == qkv::WeightDtype::kBF16 ? "bf16" : "f16", (long long)c.M, (long long)c.N,
                    (long long)c.K, c.out_in ? "out-in" : "in-out", c.bias, same, parity, header_ok);
      }
    }
  }
}

int RunTests(bool quick) {
  const auto tables = AvailableTables();
  std::printf("ISAs:");
  for (auto* t : tables) std::printf(" %s(%dx%d)", t->name, t->mr, t->nr * t->panels);
  std::printf("\n");
  std::mt19937 rng(20250);
  auto dim = [&](int64_t hi) {
    // Half the draws small (edges of MR / NR), half anywhere in [1, hi].
    std::uniform_int_distribution<int64_t> small(1, 40), any(1, hi);
    return rng() % 2 ? small(rng) : any(rng);
  };
  std::vector<Case> cases;
  const int n_random = quick ? 60 : 400;
  for (int n = 0; n < n_random; ++n) {
    Case c{};
    c.M = dim(300);
    c.N = dim(300);
    c.K = dim(300);
    c.out_in = rng() % 2;
    c.bias = rng() % 2;
    cases.push_back(c);
  }
  // Every MR / NR remainder on tiny shapes, and shapes crossing the KC / MC / NC block edges.
  for (int64_t m = 1; m <= 9; ++m) {
    for (int64_t n = 1; n <= 33; n += 4) cases.push_back({m, n, m + n, (m + n) % 2 == 0, m % 2 == 1});
  }
  const std::vector<Case> big = {
      {1, 1, 1, true, true},          {1, 4096, 512, true, true},   {7, 1000, 4097, false, true},
      {300, 2100, 257, true, false},  {145, 2065, 513, false, true}, {433, 77, 1031, true, true},
  };
  for (const Case& c : big) {
    if (!quick || c.M * c.N * c.K < 20'000'000) cases.push_back(c);
  }
  if (!quick) cases.push_back({1024, 1024, 1024, true, true});
  // Small M (decode projections: N split finer than NC for the threads) and M past 32 row blocks.
  cases.push_back({1, 2304, 768, true, true});
  cases.push_back({3, 700, 300, false, true});
  if (!quick) cases.push_back({6205, 40, 50, true, true});
  for (size_t i = 0; i < cases.size(); ++i) RunCase(cases[i], static_cast<uint32_t>(1000 + i), tables);
  // Half weights on every other case: the decode-shaped, widened-slice and block-edge paths all occur.
  for (size_t i = 0; i < cases.size(); i += 2) RunHalfCase(cases[i], static_cast<uint32_t>(5000 + i), tables);
  std::printf("%d passed, %d failed\n", passes, failures);
  return failures == 0 ? 0 : 1;
}

// ---- benchmark ----

double NowSec() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

#if defined(__x86_64__)
// FMA throughput: 12 independent chains of 8-float FMAs (more chains than FMA latency x ports,
// 4 x 2 = 8, so the loop is throughput-bound). 12 * 16 flops per iteration.
__attribute__((target("avx2,fma"), noinline)) double FmaPeakGflops() {
  double best = 0.0;
  for (int rep = 0; rep < 5; ++rep) {
    __m256 acc[12];
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(0.001f * static_cast<float>(i));
    const __m256 m = _mm256_set1_ps(0.9999999f), a = _mm256_set1_ps(1e-7f);
    const int64_t iters = 50'000'000;
    const double t0 = NowSec();
    for (int64_t it = 0; it < iters; ++it) {
      for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
      __asm__ volatile("" : "+x"(acc[0]), "+x"(acc[1]), "+x"(acc[2]), "+x"(acc[3]), "+x"(acc[4]), "+x"(acc[5]),
                       "+x"(acc[6]), "+x"(acc[7]), "+x"(acc[8]), "+x"(acc[9]), "+x"(acc[10]), "+x"(acc[11]));
    }
    const double dt = NowSec() - t0;
    float sink[8];
    __m256 s = acc[0];
    for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
    _mm256_storeu_ps(sink, s);
    if (sink[0] == 12345.0f) std::printf(" ");
    best = std::max(best, 12.0 * 16.0 * static_cast<double>(iters) / dt * 1e-9);
  }
  return best;
}
#endif

// 1 vs 2 threads on the best table: square SGEMM and the projections of a B=8, S=512, E=768 layer.
void BenchScaling(const GemmKernelTable& t) {
  struct Shape {
    int64_t M, N, K;
    const char* what;
  };
  const Shape shapes[] = {{1024, 1024, 1024, "square"},
                          {4096, 2304, 768, "layer QKV projection (8*512 x 768 -> 3*768)"},
                          {4096, 768, 768, "layer output projection"},
                          {1, 2304, 768, "decode QKV projection (one token)"}};
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::printf("thread scaling [%s]:\n", t.name);
  for (const Shape& sh : shapes) {
    std::vector<float> x(sh.M * sh.K), w(sh.N * sh.K), bias(sh.N), y(sh.M * sh.N);
    std::vector<float> packed(qkv::PackedWeightFloats(sh.N, sh.K));
    for (auto& v : x) v = nd(rng);
    for (auto& v : w) v = nd(rng);
    for (auto& v : bias) v = nd(rng);
    qkv::PackWeight(w.data(), true, sh.N, sh.K, packed.data());
    const double flops = 2.0 * sh.M * sh.N * sh.K;
    const int reps = std::max<int>(1, static_cast<int>(2e9 / flops / 20));
    double med[2];
    for (int threads : {1, 2}) {
      qkv::SetThreads(threads);
      qkv::GemmPackedWith(t, x.data(), sh.M, sh.K, packed.data(), sh.N, bias.data(), y.data());
      std::vector<double> times;
      for (int r = 0; r < 9; ++r) {
        const double t0 = NowSec();
        for (int k = 0; k < reps; ++k) {
          qkv::GemmPackedWith(t, x.data(), sh.M, sh.K, packed.data(), sh.N, bias.data(), y.data());
        }
        times.push_back((NowSec() - t0) / reps);
      }
      med[threads - 1] = Median(times);
    }
    qkv::SetThreads(1);
    std::printf("  M=%-5lld N=%-5lld K=%-5lld %-44s 1 thread %8.3f ms %6.1f GFLOP/s | 2 threads %8.3f ms %6.1f GFLOP/s"
                " | %.2fx\n", (long long)sh.M, (long long)sh.N, (long long)sh.K, sh.what, med[0] * 1e3,
                flops / med[0] * 1e-9, med[1] * 1e3, flops / med[1] * 1e-9, med[0] / med[1]);
  }
}

int RunBench(const char* only) {
  auto tables = AvailableTables();
  if (only) {
    tables.erase(std::remove_if(tables.begin(), tables.end(),
                                [&](const GemmKernelTable* t) { return std::strcmp(t->name, only) != 0; }),
                 tables.end());
  }
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    std::printf("FMA peak (1 core, 12 chains x 8-float FMA): %.1f GFLOP/s\n", FmaPeakGflops());
  }
#endif
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  // Buffers at a chosen offset from a 64-byte boundary (GEMM_BENCH_OFFSET floats, default 4 = 16 bytes:
  // what malloc / V8's ArrayBuffer allocator usually give), so the timing matches what Node sees.
  const char* off_env = std::getenv("GEMM_BENCH_OFFSET");
  const int64_t off = off_env ? std::atoi(off_env) : 4;
  std::printf("buffers at 64-byte boundary + %lld floats\n", (long long)off);
  for (int64_t n : {512, 1024, 2048}) {
    std::vector<float> xs(n * n + 32), ws(n * n), bias(n), ys(n * n + 32);
    std::vector<float> ps(qkv::PackedWeightFloats(n, n) + 32);
    auto at = [&](std::vector<float>& v) {
      const uintptr_t p = reinterpret_cast<uintptr_t>(v.data());
      return reinterpret_cast<float*>((p + 63) & ~uintptr_t{63}) + off;
    };
    float *x = at(xs), *y = at(ys), *packed = at(ps);
    const float* w = ws.data();
    for (int64_t i = 0; i < n * n; ++i) x[i] = nd(rng);
    for (auto& v : ws) v = nd(rng);
    for (auto& v : bias) v = nd(rng);
    qkv::PackWeight(w, true, n, n, packed);
    const double flops = 2.0 * n * n * n;
    for (const GemmKernelTable* t : tables) {
      const int runs = n <= 512 ? 15 : (n <= 1024 ? 7 : 3);
      const int reps = std::strcmp(t->name, "scalar") == 0 && n >= 1024 ? 1 : (n <= 512 ? 4 : 1);
      std::vector<double> times;
      qkv::GemmPackedWith(*t, x, n, n, packed, n, bias.data(), y);  // warm up
      for (int r = 0; r < runs; ++r) {
        const double t0 = NowSec();
        for (int k = 0; k < reps; ++k) {
          qkv::GemmPackedWith(*t, x, n, n, packed, n, bias.data(), y);
        }
        times.push_back((NowSec() - t0) / reps);
      }
      const double med = Median(times);
      std::printf("M=N=K=%-5lld %-6s median %8.3f ms  %6.1f GFLOP/s  (best %.1f)\n", (long long)n, t->name,
                  med * 1e3, flops / med * 1e-9, flops / *std::min_element(times.begin(), times.end()) * 1e-9);
    }
  }
  if (!tables.empty()) BenchScaling(*tables.back());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool bench = false, quick = false;
  const char* only = nullptr;  // --only avx2: benchmark one ISA
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) only = argv[++i];
    if (std::strcmp(argv[i], "--bench") == 0) bench = true;
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
  }
  return bench ? RunBench(only) : RunTests(quick);
}
