// SPDX-License-Identifier: MIT
//
// Scalar SGEMM micro-kernel: the reference (clean, no intrinsics; baseline x86-64 / any CPU).
// MR = 2: 2 x 16 accumulators fit the 16 SSE registers once the compiler vectorizes the column loops
// (4 rows would spill, and run several times slower). Results do not depend on the vectorization
// (each y element is one sequential sum over k, in float).
#include "kernels/gemm_kernels.h"

namespace qkv {
namespace {

constexpr int MR = 2;
constexpr int NR = kGemmNR;

// MR x NR register tile, float accumulators, k ascending.
//   a: (kc, MR) packed A micro-panel    b: (kc, NR) packed B micro-panel
//   c[r, j] (row stride ldc), r < mr, j < nr:
//     accumulate == 0:  c = sum_p a[p, r] * b[p, j] + (bias ? bias[j] : 0)
//     accumulate != 0:  c = c + sum_p a[p, r] * b[p, j]
void MicroScalar(int64_t kc, const float* a, const float* b, int64_t /*b_stride: one panel*/, float* c,
                 int64_t ldc, int64_t mr, int64_t nr, const float* bias, int accumulate) {
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    const float* a_p = a + p * MR;
    const float* b_p = b + p * NR;
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

}  // namespace

extern const GemmKernelTable kGemmScalar = {"scalar", MR, NR, 1, &MicroScalar};

}  // namespace qkv
