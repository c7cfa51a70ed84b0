// SPDX-License-Identifier: MIT
//
// AVX-512F SGEMM micro-kernel. Built only in the qkv_kernels_avx512 library (-mavx512f -mfma);
// everything but the exported table sits in an anonymous namespace, so no function compiled with
// AVX-512 can be merged into baseline code (STYLE.md, example 6).
//
// One zmm holds a whole NR = 16 row of the tile, so the tile is taller than AVX2's: 12 rows, 12
// accumulators. Each step loads one B row and issues 12 FMAs whose A operand is a broadcast
// from memory folded into the FMA ({1to16}), so loads (13 per step) stay under the FMAs' 2 per
// cycle, and 12 independent accumulators cover the FMA latency.
#include "kernels/avx512_intrin.h"

#include "kernels/gemm_kernels.h"

namespace qkv {
namespace {

constexpr int MR = 12;
constexpr int NR = kGemmNR;  // 16 = one zmm
static_assert(MR <= kGemmMaxMR, "kGemmMaxMR bounds every table's MR");

// R x 16 register tile (R <= 12).
//   a: (kc, MR) packed A micro-panel (first R of each MR used)   b: (kc, 16) packed B micro-panel
//   for p in [0, kc): acc[r, 0:16] += a[p, r] * b[p, 0:16]        (vfmadd231ps, fp32, k ascending)
//   c[r, j] (row stride ldc), r < R, j < nr:
//     accumulate == 0:  c = acc + (bias ? bias[j] : 0)
//     accumulate != 0:  c = c + acc
// Columns j >= nr are neither read nor written (masked loads/stores), nor are bias[j >= nr].
template <int R>
void Tile(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t nr, const float* bias,
          int accumulate) {
  // Named accumulators: an array of __m512 may be kept on the stack (one store per FMA).
  __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
  __m512 c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
#define QKV_ROW(r) \
  if (R > r) c##r = _mm512_fmadd_ps(_mm512_set1_ps(a[r]), b0, c##r);
  for (int r = 0; r < R; ++r) {  // the C tile is read or written last: start fetching it now
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
  }
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_loadu_ps(b);
    QKV_ROW(0) QKV_ROW(1) QKV_ROW(2) QKV_ROW(3) QKV_ROW(4) QKV_ROW(5)
    QKV_ROW(6) QKV_ROW(7) QKV_ROW(8) QKV_ROW(9) QKV_ROW(10) QKV_ROW(11)
    a += MR;
    b += NR;
  }
#undef QKV_ROW
  const __m512 acc[MR] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11};
  const __mmask16 m = nr >= NR ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << nr) - 1);
  const __m512 bias_row = !accumulate && bias ? _mm512_maskz_loadu_ps(m, bias) : _mm512_setzero_ps();
  for (int r = 0; r < R; ++r) {
    float* c_r = c + r * ldc;
    const __m512 base = accumulate ? _mm512_maskz_loadu_ps(m, c_r) : bias_row;
    _mm512_mask_storeu_ps(c_r, m, _mm512_add_ps(base, acc[r]));
  }
}

void MicroAvx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t mr, int64_t nr,
                 const float* bias, int accumulate) {
  switch (mr) {
    case 12: Tile<12>(kc, a, b, c, ldc, nr, bias, accumulate); break;
    case 11: Tile<11>(kc, a, b, c, ldc, nr, bias, accumulate); break;
    case 10: Tile<10>(kc, a, b, c, ldc, nr, bias, accumulate); break;
    case 9: Tile<9>(kc, a, b, c, ldc, nr, bias, accumulate); break;
    case 8: Tile<8>(kc, a, b, c, ldc, nr, bias, accumulate); break;
    case 7: Tile<7>(kc, a, b, c, ldc, nr, bias, accumulate); break;
    case 6: Tile<6>(kc, a, b, c, ldc, nr, bias, accumulate); break;
    case 5: Tile<5>(kc, a, b, c, ldc, nr, bias, accumulate); break;
    case 4: Tile<4>(kc, a, b, c, ldc, nr, bias, accumulate); break;
    case 3: Tile<3>(kc, a, b, c, ldc, nr, bias, accumulate); break;
    case 2: Tile<2>(kc, a, b, c, ldc, nr, bias, accumulate); break;
    default: Tile<1>(kc, a, b, c, ldc, nr, bias, accumulate); break;
  }
}

}  // namespace

extern const GemmKernelTable kGemmAvx512 = {"avx512", MR, NR, &MicroAvx512};

}  // namespace qkv
