// AVX2 + FMA kernels (F16C for float16 K/V): the attention kernels (kernels/attend_tile.h)
// instantiated on 8-float vectors. This file alone (with gemm_avx2.cc) is compiled with -mavx2
// -mfma -mf16c (CMakeLists.txt target qkv_kernels_avx2) and exports nothing but the table;
// native/dispatch.cc hands it out, in the avx2 kernel set, only after cpuid + xgetbv say the CPU
// and OS support all three.
#include <immintrin.h>

#include "kernels/attend_tile.h"
#include "kernels/rope_rows.h"

namespace qkv {
namespace {

struct V {
  using T = __m256;
  using M = __m256;
  static constexpr int W = 8;
  // 6 x 2 = 12 accumulators + 2 loads + 1 broadcast fit the 16 ymm registers.
  static constexpr int kR = 6, kC = 2;
  // Br and Bc from 48 to 96 ran alike, 32 or 128 and more slower (bench/RESULTS.md, "Measurements
  // formerly in code comments"); 64 x 64 keeps whole GQA groups of up to 64 heads in one tile.
  static constexpr int kBr = 64, kBc = 64;
  // Decode tiles (<= 4 rows: G <= 4 with Sq = 1) take the dot-product path; its single-row P.V
  // keeps 8 vectors (64 floats of Dv) in flight per pass.
  static constexpr int kFew = 4, kFewC = 8;
  static T zero() { return _mm256_setzero_ps(); }
  static T set1(float x) { return _mm256_set1_ps(x); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  // F16C: 8 halves (16 bytes, any 2-byte alignment) widened exactly.
  static T load_half(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static void store(float* p, T x) { _mm256_storeu_ps(p, x); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T sub(T a, T b) { return _mm256_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T div(T a, T b) { return _mm256_div_ps(a, b); }
  static T fmadd(T acc, T x, T y) { return _mm256_fmadd_ps(x, y, acc); }
  static T max(T a, T b) { return _mm256_max_ps(a, b); }  // NaN in either -> b
  static T min(T a, T b) { return _mm256_min_ps(a, b); }
  static M eq(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
  static M lt(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static T select(M m, T a, T b) { return _mm256_blendv_ps(b, a, m); }
  static T abs(T x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }
  static T copysign(T mag, T sgn) {
    const T s = _mm256_set1_ps(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(s, mag), _mm256_and_ps(s, sgn));
  }
  static T round(T x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // 2^n for integral n in [-126, 127], straight into the exponent bits.
  static T pow2i(T n) {
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
  }
  static float sum(T x) {  // (lo + hi) halves, then pairs, then the last two
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // Eight sums in one vector: two rounds of hadd leave a[i]'s halves in lane i of each 128-bit
  // half (i < 4 in the first result, the rest in the second); one cross-half add finishes them.
  static void sums8(const T* a, float* out) {
    const __m256 s0123 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    const __m256 s4567 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_permute2f128_ps(s0123, s4567, 0x20), _mm256_permute2f128_ps(s0123, s4567, 0x31)));
  }
  static void prefetch(const float* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
  static T exp(T x) { return ExpCephes<V>(x); }
  static T tanh(T x) { return TanhCephes<V>(x); }
};

}  // namespace

extern const KernelTable kKernelsAvx2 = {"avx2", V::kBr, &WorkspaceFloats<V>, &AttendTileAny<V>};
extern const RopeKernelTable kRopeAvx2 = RopeTableOf<V>();

}  // namespace qkv
