// SPDX-License-Identifier: MIT
//
// AVX2 + FMA SGEMM micro-kernel. Built only in the qkv_kernels_avx2 library (-mavx2 -mfma);
// everything but the exported table sits in an anonymous namespace, so no function compiled with
// AVX can be merged into baseline code (STYLE.md, example 6).
#include <immintrin.h>

#include "kernels/gemm_kernels.h"
#include "kernels/gemm_rows.h"

namespace qkv {
namespace {

constexpr int MR = kGemmTileRows;
constexpr int NR = kGemmNR;  // 16 = two ymm

// R x 16 register tile (R <= 6 rows; R = 6 uses 12 ymm accumulators + 2 for B + 1 broadcast).
//   a: (kc, MR) packed A micro-panel (first R of each MR used)   b: (kc, 16) packed B micro-panel
//   for p in [0, kc): acc[r, 0:16] += a[p, r] * b[p, 0:16]        (vfmadd231ps, fp32, k ascending)
//   c[r, j] (row stride ldc), r < R, j < nr:
//     accumulate == 0:  c = acc + (bias ? bias[j] : 0)
//     accumulate != 0:  c = c + acc
// Columns j >= nr are neither read nor written (masked loads/stores), nor are bias[j >= nr].
template <int R>
void Tile(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t nr, const float* bias,
          int accumulate) {
  // Named accumulators (an array of __m256 would be kept on the stack by GCC, one store per FMA).
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define QKV_ROW(r)                                      \
  if (R > r) {                                          \
    const __m256 a_r = _mm256_broadcast_ss(a + r);      \
    c##r##0 = _mm256_fmadd_ps(a_r, b0, c##r##0);        \
    c##r##1 = _mm256_fmadd_ps(a_r, b1, c##r##1);        \
  }
  for (int r = 0; r < R; ++r) {  // the C tile is read or written last: start fetching it now
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + NR - 1), _MM_HINT_T0);
  }
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
    QKV_ROW(0) QKV_ROW(1) QKV_ROW(2) QKV_ROW(3) QKV_ROW(4) QKV_ROW(5)
    a += MR;
    b += NR;
  }
#undef QKV_ROW
  const __m256 acc0[MR] = {c00, c10, c20, c30, c40, c50};
  const __m256 acc1[MR] = {c01, c11, c21, c31, c41, c51};
  if (nr == NR) {
    __m256 bias0 = _mm256_setzero_ps(), bias1 = _mm256_setzero_ps();
    if (!accumulate && bias) {
      bias0 = _mm256_loadu_ps(bias);
      bias1 = _mm256_loadu_ps(bias + 8);
    }
    for (int r = 0; r < R; ++r) {
      float* c_r = c + r * ldc;
      if (accumulate) {
        _mm256_storeu_ps(c_r, _mm256_add_ps(_mm256_loadu_ps(c_r), acc0[r]));
        _mm256_storeu_ps(c_r + 8, _mm256_add_ps(_mm256_loadu_ps(c_r + 8), acc1[r]));
      } else {
        _mm256_storeu_ps(c_r, _mm256_add_ps(acc0[r], bias0));
        _mm256_storeu_ps(c_r + 8, _mm256_add_ps(acc1[r], bias1));
      }
    }
    return;
  }
  // leftovers: nr < 16 valid columns
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(nr)), lane);
  const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(nr) - 8), lane);
  __m256 bias0 = _mm256_setzero_ps(), bias1 = _mm256_setzero_ps();
  if (!accumulate && bias) {
    bias0 = _mm256_maskload_ps(bias, m0);
    bias1 = _mm256_maskload_ps(bias + 8, m1);
  }
  for (int r = 0; r < R; ++r) {
    float* c_r = c + r * ldc;
    if (accumulate) {
      _mm256_maskstore_ps(c_r, m0, _mm256_add_ps(_mm256_maskload_ps(c_r, m0), acc0[r]));
      _mm256_maskstore_ps(c_r + 8, m1, _mm256_add_ps(_mm256_maskload_ps(c_r + 8, m1), acc1[r]));
    } else {
      _mm256_maskstore_ps(c_r, m0, _mm256_add_ps(acc0[r], bias0));
      _mm256_maskstore_ps(c_r + 8, m1, _mm256_add_ps(acc1[r], bias1));
    }
  }
}

// Tile<R> by row count, for ForTileRows (kernels/gemm_rows.h).
struct Tiles {
  template <int R>
  static void Run(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t nr, const float* bias,
                  int accumulate) {
    Tile<R>(kc, a, b, c, ldc, nr, bias, accumulate);
  }
};

void MicroAvx2(int64_t kc, const float* a, const float* b, int64_t /*b_stride: one panel*/, float* c,
               int64_t ldc, int64_t mr, int64_t nr, const float* bias, int accumulate) {
  ForTileRows<Tiles>(mr, kc, a, b, c, ldc, nr, bias, accumulate);
}

}  // namespace

extern const GemmKernelTable kGemmAvx2 = {"avx2", MR, NR, 1, &MicroAvx2};

}  // namespace qkv
