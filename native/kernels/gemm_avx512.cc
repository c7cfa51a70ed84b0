// SPDX-License-Identifier: MIT
//
// AVX-512F SGEMM micro-kernel. Built only in the qkv_kernels_avx512 library (-mavx512f -mfma);
// everything but the exported table sits in an anonymous namespace, so no function compiled with
// AVX-512 can be merged into baseline code (STYLE.md, example 6).
//
// One zmm holds a whole 16-column B micro-panel row, so a 6-row tile spans two adjacent panels
// (6 x 32, 12 accumulators), as AVX2's 6 x 16 spans two ymm: each A broadcast, folded into the FMA
// ({1to16}), feeds two FMAs.
// Half panels (bfloat16 / float16 bits, 16 per 32-byte row) are widened in register as each B row
// is loaded: bfloat16 by zero-extending to 32 bits and shifting up 16, float16 by vcvtph2ps (both
// exact), then the same FMAs run, so the sums are the float kernel's, bit for bit.
#include "kernels/avx512_intrin.h"

#include "kernels/gemm_kernels.h"
#include "kernels/gemm_rows.h"

namespace qkv {
namespace {

constexpr int MR = kGemmTileRows;
constexpr int NR = kGemmNR;  // 16 = one zmm
constexpr int kPanels = 2;   // a tile spans two B micro-panels: 6 x 32
static_assert(MR <= kGemmMaxMR, "kGemmMaxMR bounds every table's MR");

// Rows of a half B micro-panel prefetched ahead of the one loaded (32 B a row: 1 KiB ahead).
constexpr int64_t kPrefetchRows = 32;

// How one 16-column row of a B micro-panel becomes a zmm of floats.
struct LoadF32 {
  static constexpr bool kPrefetch = false;
  using E = float;
  static __m512 Row(const float* p) { return _mm512_loadu_ps(p); }
};
struct LoadBf16 {
  static constexpr bool kPrefetch = true;
  using E = uint16_t;
  static __m512 Row(const uint16_t* p) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
  }
};
struct LoadF16 {
  static constexpr bool kPrefetch = true;
  using E = uint16_t;
  static __m512 Row(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
};

// R x (16 P) register tile, R <= 6 rows, P = 1 or 2 B micro-panels (12 zmm accumulators at P = 2).
//   a: (kc, MR) packed A micro-panel (first R of each MR used)
//   b: (kc, 16) packed B micro-panel; with P = 2 the next panel's slice starts at b + b_stride
//   for p in [0, kc): acc[r, 0:16P] += a[p, r] * b[p, 0:16P]     (vfmadd231ps, fp32, k ascending)
//   c[r, j] (row stride ldc), r < R, j < nr:
//     accumulate == 0:  c = acc + (bias ? bias[j] : 0)
//     accumulate != 0:  c = c + acc
// Columns j >= nr are neither read nor written (masked loads/stores), nor are bias[j >= nr].
// Per step: P loads of B, R broadcasts of A folded into the FMAs, R P FMAs. At P = 2 that is 8
// loads per 12 FMAs, against 13 for a 12 x 16 tile (bench/RESULTS.md, "Measurements formerly in
// code comments").
template <int R, int P, class L>
void Tile(int64_t kc, const float* a, const typename L::E* b, int64_t b_stride, float* c, int64_t ldc, int64_t nr,
          const float* bias, int accumulate) {
  // Named accumulators: an array of __m512 may be kept on the stack (one store per FMA).
  __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  const typename L::E* b1 = b + b_stride;
#define QKV_ROW(r)                                                 \
  if (R > r) {                                                     \
    const __m512 a_r = _mm512_set1_ps(a[r]);                       \
    c##r##0 = _mm512_fmadd_ps(a_r, b0, c##r##0);                   \
    if (P > 1) c##r##1 = _mm512_fmadd_ps(a_r, b1v, c##r##1);       \
  }
  for (int r = 0; r < R; ++r) {  // the C tile is read or written last: start fetching it now
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    if (P > 1) _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + NR), _MM_HINT_T0);
  }
  for (int64_t p = 0; p < kc; ++p) {
    if (L::kPrefetch) {
      // Half panels stream from DRAM in a decode step (one 64-byte line holds two rows): a software
      // prefetch kPrefetchRows ahead, in both panels the tile reads, kept the stream closer to the
      // read bandwidth than the hardware prefetchers alone (bench/RESULTS.md, "Half-size weights").
      _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchRows * NR), _MM_HINT_T0);
      if (P > 1) _mm_prefetch(reinterpret_cast<const char*>(b1 + kPrefetchRows * NR), _MM_HINT_T0);
    }
    const __m512 b0 = L::Row(b);
    const __m512 b1v = P > 1 ? L::Row(b1) : b0;
    QKV_ROW(0) QKV_ROW(1) QKV_ROW(2) QKV_ROW(3) QKV_ROW(4) QKV_ROW(5)
    a += MR;
    b += NR;
    b1 += NR;
  }
#undef QKV_ROW
  const __m512 acc[2][MR] = {{c00, c10, c20, c30, c40, c50}, {c01, c11, c21, c31, c41, c51}};
  for (int q = 0; q < P; ++q) {
    const int64_t cols = nr - q * NR;  // valid columns of panel q: 1..16 (P = 2 means nr > 16)
    const __mmask16 m = cols >= NR ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << cols) - 1);
    const __m512 bias_q = !accumulate && bias ? _mm512_maskz_loadu_ps(m, bias + q * NR) : _mm512_setzero_ps();
    for (int r = 0; r < R; ++r) {
      float* c_r = c + r * ldc + q * NR;
      const __m512 base = accumulate ? _mm512_maskz_loadu_ps(m, c_r) : bias_q;
      _mm512_mask_storeu_ps(c_r, m, _mm512_add_ps(base, acc[q][r]));
    }
  }
}

// Tile<R, P, L> by row count, for ForTileRows (kernels/gemm_rows.h).
template <int P, class L>
struct Tiles {
  template <int R>
  static void Run(int64_t kc, const float* a, const typename L::E* b, int64_t b_stride, float* c, int64_t ldc,
                  int64_t nr, const float* bias, int accumulate) {
    Tile<R, P, L>(kc, a, b, b_stride, c, ldc, nr, bias, accumulate);
  }
};

// nr <= 16: the tile's second panel may not exist, so only the first is read.
template <class L>
void MicroAvx512(int64_t kc, const float* a, const typename L::E* b, int64_t b_stride, float* c, int64_t ldc,
                 int64_t mr, int64_t nr, const float* bias, int accumulate) {
  if (nr > NR) {
    ForTileRows<Tiles<2, L>>(mr, kc, a, b, b_stride, c, ldc, nr, bias, accumulate);
  } else {
    ForTileRows<Tiles<1, L>>(mr, kc, a, b, b_stride, c, ldc, nr, bias, accumulate);
  }
}

template <class L>
void Widen(const uint16_t* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; i += NR) _mm512_storeu_ps(dst + i, L::Row(src + i));  // n % NR == 0
}

}  // namespace

extern const GemmKernelTable kGemmAvx512 = {"avx512",
                                            MR,
                                            NR,
                                            kPanels,
                                            &MicroAvx512<LoadF32>,
                                            &MicroAvx512<LoadBf16>,
                                            &MicroAvx512<LoadF16>,
                                            &Widen<LoadBf16>,
                                            &Widen<LoadF16>};

}  // namespace qkv
