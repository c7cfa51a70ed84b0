// SPDX-License-Identifier: MIT
//
// NEON SGEMM micro-kernel (AArch64, where NEON is baseline). Everything but the exported table
// sits in an anonymous namespace (STYLE.md, example 6).
// Half panels (bfloat16 / float16 bits) are widened in register as each B row is loaded: bfloat16
// by a widening shift left by 16 (vshll), float16 by fcvtl (both exact), then the same FMAs run,
// so the sums are the float kernel's, bit for bit.
#include <arm_neon.h>

#include "kernels/gemm_kernels.h"
#include "kernels/gemm_rows.h"

namespace qkv {
namespace {

constexpr int MR = kGemmTileRows;
constexpr int NR = kGemmNR;  // 16 = four q registers

// How 4 columns of a B micro-panel row become a q register of floats.
struct LoadF32 {
  using E = float;
  static float32x4_t Four(const float* p) { return vld1q_f32(p); }
};
struct LoadBf16 {
  using E = uint16_t;
  static float32x4_t Four(const uint16_t* p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
};
struct LoadF16 {
  using E = uint16_t;
  static float32x4_t Four(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
};

// R x 16 register tile (R <= 6 rows; R = 6 uses 24 q accumulators + 4 for B + 2 for A of 32).
//   a: (kc, MR) packed A micro-panel (first R of each MR used)   b: (kc, 16) packed B micro-panel
//   for p in [0, kc): acc[r, 0:16] += a[p, r] * b[p, 0:16]        (fmla by lane, fp32, k ascending)
//   c[r, j] (row stride ldc), r < R, j < nr:
//     accumulate == 0:  c = acc + (bias ? bias[j] : 0)
//     accumulate != 0:  c = c + acc
// Columns j >= nr are neither read nor written, nor are bias[j >= nr].
template <int R, class L>
void Tile(int64_t kc, const float* a, const typename L::E* b, float* c, int64_t ldc, int64_t nr, const float* bias,
          int accumulate) {
  float32x4_t acc[R][4];
  for (int r = 0; r < R; ++r) {
    for (int q = 0; q < 4; ++q) acc[r][q] = vdupq_n_f32(0.0f);
  }
  for (int64_t p = 0; p < kc; ++p) {
    const float32x4_t b0 = L::Four(b), b1 = L::Four(b + 4), b2 = L::Four(b + 8), b3 = L::Four(b + 12);
    const float32x4_t a03 = vld1q_f32(a);          // rows 0..3
    const float32x2_t a45 = vld1_f32(a + 4);       // rows 4..5
    for (int r = 0; r < R; ++r) {
      float32x4_t a_r;
      switch (r) {
        case 0: a_r = vdupq_laneq_f32(a03, 0); break;
        case 1: a_r = vdupq_laneq_f32(a03, 1); break;
        case 2: a_r = vdupq_laneq_f32(a03, 2); break;
        case 3: a_r = vdupq_laneq_f32(a03, 3); break;
        case 4: a_r = vdupq_lane_f32(a45, 0); break;
        default: a_r = vdupq_lane_f32(a45, 1); break;
      }
      acc[r][0] = vfmaq_f32(acc[r][0], a_r, b0);
      acc[r][1] = vfmaq_f32(acc[r][1], a_r, b1);
      acc[r][2] = vfmaq_f32(acc[r][2], a_r, b2);
      acc[r][3] = vfmaq_f32(acc[r][3], a_r, b3);
    }
    a += MR;
    b += NR;
  }
  if (nr == NR) {
    float32x4_t bv[4];
    for (int q = 0; q < 4; ++q) bv[q] = (!accumulate && bias) ? vld1q_f32(bias + 4 * q) : vdupq_n_f32(0.0f);
    for (int r = 0; r < R; ++r) {
      float* c_r = c + r * ldc;
      for (int q = 0; q < 4; ++q) {
        const float32x4_t base = accumulate ? vld1q_f32(c_r + 4 * q) : bv[q];
        vst1q_f32(c_r + 4 * q, vaddq_f32(base, acc[r][q]));
      }
    }
    return;
  }
  // leftovers: nr < 16 valid columns, through a stack tile
  float tile[NR];
  for (int r = 0; r < R; ++r) {
    float* c_r = c + r * ldc;
    for (int q = 0; q < 4; ++q) vst1q_f32(tile + 4 * q, acc[r][q]);
    for (int64_t j = 0; j < nr; ++j) {
      c_r[j] = accumulate ? c_r[j] + tile[j] : (bias ? tile[j] + bias[j] : tile[j]);
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
void MicroNeon(int64_t kc, const float* a, const typename L::E* b, int64_t /*b_stride: one panel*/, float* c,
               int64_t ldc, int64_t mr, int64_t nr, const float* bias, int accumulate) {
  ForTileRows<Tiles<L>>(mr, kc, a, b, c, ldc, nr, bias, accumulate);
}

template <class L>
void Widen(const uint16_t* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; i += 4) vst1q_f32(dst + i, L::Four(src + i));  // n % NR == 0
}

}  // namespace

extern const GemmKernelTable kGemmNeon = {
    "neon", MR, NR, 1, &MicroNeon<LoadF32>, &MicroNeon<LoadBf16>, &MicroNeon<LoadF16>, &Widen<LoadBf16>, &Widen<LoadF16>};

}  // namespace qkv
