// SPDX-License-Identifier: MIT
//
// AVX2 + FMA SGEMM micro-kernel. Built only in the qkv_kernels_avx2 library (-mavx2 -mfma);
// everything but the exported table sits in an anonymous namespace, so no function compiled with
// AVX can be merged into baseline code (STYLE.md, example 6).
// Half panels (bfloat16 / float16 bits) are widened in register as each B row is loaded: bfloat16
// by zero-extending to 32 bits and shifting up 16, float16 by F16C's vcvtph2ps (both exact), then
// the same FMAs run, so the sums are the float kernel's, bit for bit.
#include <immintrin.h>

#include "kernels/gemm_kernels.h"
#include "kernels/gemm_rows.h"

namespace qkv {
namespace {

constexpr int MR = kGemmTileRows;
constexpr int NR = kGemmNR;  // 16 = two ymm

// Rows of a half B micro-panel prefetched ahead of the one loaded (32 B a row: 1 KiB ahead), as
// the AVX-512 kernel does (kernels/gemm_avx512.cc).
constexpr int64_t kPrefetchRows = 32;

// How 8 columns of a B micro-panel row become a ymm of floats.
struct LoadF32 {
  static constexpr bool kPrefetch = false;
  using E = float;
  static __m256 Eight(const float* p) { return _mm256_loadu_ps(p); }
};
struct LoadBf16 {
  static constexpr bool kPrefetch = true;  // half panels stream from DRAM in a decode step
  using E = uint16_t;
  static __m256 Eight(const uint16_t* p) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
};
struct LoadF16 {
  static constexpr bool kPrefetch = true;
  using E = uint16_t;
  static __m256 Eight(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
};

// R x 16 register tile (R <= 6 rows; R = 6 uses 12 ymm accumulators + 2 for B + 1 broadcast).
//   a: (kc, MR) packed A micro-panel (first R of each MR used)   b: (kc, 16) packed B micro-panel
//   for p in [0, kc): acc[r, 0:16] += a[p, r] * b[p, 0:16]        (vfmadd231ps, fp32, k ascending)
//   c[r, j] (row stride ldc), r < R, j < nr:
//     accumulate == 0:  c = acc + (bias ? bias[j] : 0)
//     accumulate != 0:  c = c + acc
// Columns j >= nr are neither read nor written (masked loads/stores), nor are bias[j >= nr].
template <int R, class L>
void Tile(int64_t kc, const float* a, const typename L::E* b, float* c, int64_t ldc, int64_t nr, const float* bias,
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
    if (L::kPrefetch) _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchRows * NR), _MM_HINT_T0);
    const __m256 b0 = L::Eight(b);
    const __m256 b1 = L::Eight(b + 8);
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

// Tile<R, L> by row count, for ForTileRows (kernels/gemm_rows.h).
template <class L>
struct Tiles {
  template <int R>
  static void Run(int64_t kc, const float* a, const typename L::E* b, float* c, int64_t ldc, int64_t nr,
                  const float* bias, int accumulate) {
    Tile<R, L>(kc, a, b, c, ldc, nr, bias, accumulate);
  }
};

template <class L>
void MicroAvx2(int64_t kc, const float* a, const typename L::E* b, int64_t /*b_stride: one panel*/, float* c,
               int64_t ldc, int64_t mr, int64_t nr, const float* bias, int accumulate) {
  ForTileRows<Tiles<L>>(mr, kc, a, b, c, ldc, nr, bias, accumulate);
}

template <class L>
void Widen(const uint16_t* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; i += 8) _mm256_storeu_ps(dst + i, L::Eight(src + i));  // n % NR == 0
}

}  // namespace

extern const GemmKernelTable kGemmAvx2 = {
    "avx2", MR, NR, 1, &MicroAvx2<LoadF32>, &MicroAvx2<LoadBf16>, &MicroAvx2<LoadF16>, &Widen<LoadBf16>, &Widen<LoadF16>};

}  // namespace qkv
