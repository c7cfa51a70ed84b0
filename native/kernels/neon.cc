// NEON kernels (AArch64, where NEON is baseline): the attention kernels (kernels/attend_tile.h)
// instantiated on 4-float vectors (gemm_neon.cc holds the SGEMM micro-kernel).
// Compiled only in the arm64 static library qkv_kernels_neon; exports nothing but the table.
#include <arm_neon.h>

#include "kernels/attend_tile.h"
#include "kernels/rope_rows.h"

namespace qkv {
namespace {

struct V {
  using T = float32x4_t;
  using M = uint32x4_t;
  static constexpr int W = 4;
  // 6 x 4 = 24 accumulators + 4 loads + 1 broadcast fit the 32 v registers.
  static constexpr int kR = 6, kC = 4;
  static constexpr int kBr = 64, kBc = 64;
  // Decode tiles (<= 2 rows) take the dot-product path, 8 vectors of Dv per P.V pass.
  static constexpr int kFew = 2, kFewC = 8;
  static T zero() { return vdupq_n_f32(0.0f); }
  static T set1(float x) { return vdupq_n_f32(x); }
  static T load(const float* p) { return vld1q_f32(p); }
  // 4 halves widened exactly (fcvtl; fp16 storage is baseline AArch64).
  static T load_half(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
  static void store(float* p, T x) { vst1q_f32(p, x); }
  static T add(T a, T b) { return vaddq_f32(a, b); }
  static T sub(T a, T b) { return vsubq_f32(a, b); }
  static T mul(T a, T b) { return vmulq_f32(a, b); }
  static T div(T a, T b) { return vdivq_f32(a, b); }
  static T fmadd(T acc, T x, T y) { return vfmaq_f32(acc, x, y); }
  static T max(T a, T b) { return vmaxq_f32(a, b); }  // NaN in either -> NaN
  static T min(T a, T b) { return vminq_f32(a, b); }
  static M eq(T a, T b) { return vceqq_f32(a, b); }
  static M lt(T a, T b) { return vcltq_f32(a, b); }
  static T select(M m, T a, T b) { return vbslq_f32(m, a, b); }
  static T abs(T x) { return vabsq_f32(x); }
  static T copysign(T mag, T sgn) { return vbslq_f32(vdupq_n_u32(0x80000000u), sgn, mag); }
  static T round(T x) { return vrndnq_f32(x); }
  // 2^n for integral n in [-126, 127], straight into the exponent bits.
  static T pow2i(T n) {
    const int32x4_t e = vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127));
    return vreinterpretq_f32_s32(vshlq_n_s32(e, 23));
  }
  static float sum(T x) { return vaddvq_f32(x); }
  static void sums8(const T* a, float* out) {  // pairwise adds: vpaddq(x, y) = [x0+x1, x2+x3, y0+y1, y2+y3]
    vst1q_f32(out, vpaddq_f32(vpaddq_f32(a[0], a[1]), vpaddq_f32(a[2], a[3])));
    vst1q_f32(out + 4, vpaddq_f32(vpaddq_f32(a[4], a[5]), vpaddq_f32(a[6], a[7])));
  }
#if defined(__GNUC__)
  static void prefetch(const float* p) { __builtin_prefetch(p); }
#else
  static void prefetch(const float*) {}
#endif
  static T exp(T x) { return ExpCephes<V>(x); }
  static T tanh(T x) { return TanhCephes<V>(x); }
};

}  // namespace

extern const KernelTable kKernelsNeon = {"neon", V::kBr, &WorkspaceFloats<V>, &AttendTileAny<V>};
extern const RopeKernelTable kRopeNeon = RopeTableOf<V>();

}  // namespace qkv
