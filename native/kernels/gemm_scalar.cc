// SPDX-License-Identifier: MIT
//
// Scalar SGEMM micro-kernel: the reference (clean, no intrinsics; baseline x86-64 / any CPU).
// MR = 2: 2 x 16 accumulators fit the 16 SSE registers once the compiler vectorizes the column loops
// (4 rows would spill, and run several times slower). Results do not depend on the vectorization
// (each y element is one sequential sum over k, in float).
// Half panels (bfloat16 / float16 bits): each 16-element row of the B micro-panel is widened exactly
// into floats first, then goes through the same loops, so the sums are the float kernel's.
#include <cstring>

#include "kernels/gemm_kernels.h"
#include "kernels/vec_math.h"  // HalfToFloat

namespace qkv {
namespace {

constexpr int MR = 2;
constexpr int NR = kGemmNR;

// The float a bfloat16 stands for: its bits are the float's upper 16 (exact, NaN payloads kept).
inline float Bf16ToFloat(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

struct LoadF32 {
  using E = float;
  static const float* Row(const float* b_p, float* /*widened*/) { return b_p; }
};
struct LoadBf16 {
  using E = uint16_t;
  static const float* Row(const uint16_t* b_p, float* widened) {
    for (int j = 0; j < NR; ++j) widened[j] = Bf16ToFloat(b_p[j]);
    return widened;
  }
};
struct LoadF16 {
  using E = uint16_t;
  static const float* Row(const uint16_t* b_p, float* widened) {
    for (int j = 0; j < NR; ++j) widened[j] = HalfToFloat(b_p[j]);
    return widened;
  }
};

// MR x NR register tile, float accumulators, k ascending.
//   a: (kc, MR) packed A micro-panel    b: (kc, NR) packed B micro-panel (elements of L::E)
//   c[r, j] (row stride ldc), r < mr, j < nr:
//     accumulate == 0:  c = sum_p a[p, r] * b[p, j] + (bias ? bias[j] : 0)
//     accumulate != 0:  c = c + sum_p a[p, r] * b[p, j]
template <class L>
void MicroScalar(int64_t kc, const float* a, const typename L::E* b, int64_t /*b_stride: one panel*/, float* c,
                 int64_t ldc, int64_t mr, int64_t nr, const float* bias, int accumulate) {
  float acc[MR][NR] = {};
  float widened[NR];
  for (int64_t p = 0; p < kc; ++p) {
    const float* a_p = a + p * MR;
    const float* b_p = L::Row(b + p * NR, widened);
    for (int r = 0; r < MR; ++r) {
      const float a_r = a_p[r];
      for (int j = 0; j < NR; ++j) acc[r][j] += a_r * b_p[j];
    }
  }
  for (int64_t r = 0; r < mr; ++r) {
    float* c_r = c + r * ldc;
    if (accumulate) {
      for (int64_t j = 0; j < nr; ++j) c_r[j] += acc[r][j];
    } else if (bias) {
      for (int64_t j = 0; j < nr; ++j) c_r[j] = acc[r][j] + bias[j];
    } else {
      for (int64_t j = 0; j < nr; ++j) c_r[j] = acc[r][j];
    }
  }
}

void WidenBf16(const uint16_t* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = Bf16ToFloat(src[i]);
}

void WidenF16(const uint16_t* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = HalfToFloat(src[i]);
}

}  // namespace

extern const GemmKernelTable kGemmScalar = {
    "scalar", MR, NR, 1, &MicroScalar<LoadF32>, &MicroScalar<LoadBf16>, &MicroScalar<LoadF16>, &WidenBf16, &WidenF16};

}  // namespace qkv
