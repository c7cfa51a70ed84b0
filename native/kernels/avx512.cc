// AVX-512F kernels: the attention kernels (kernels/attend_tile.h) instantiated on 16-float
// vectors. This file alone (with gemm_avx512.cc) is compiled with -mavx512f -mavx2 -mfma -mf16c
// (CMakeLists.txt target qkv_kernels_avx512) and exports nothing but the table; native/dispatch.cc
// hands it out, in the avx512 kernel set, only after cpuid + xgetbv say the CPU and OS support
// AVX-512F (with the ZMM state) and AVX2 + FMA + F16C.
#include "kernels/avx512_intrin.h"

#include "kernels/attend_tile.h"
#include "kernels/rope_rows.h"

namespace qkv {
namespace {

struct V {
  using T = __m512;
  using M = __mmask16;
  static constexpr int W = 16;
  // 6 x 4 = 24 accumulators of the 32 zmm: 64 query rows (one whole tile) per key; faster than
  // 6 x 2, 8 x 2 and 4 x 4 (bench/RESULTS.md, "Measurements formerly in code comments").
  static constexpr int kR = 6, kC = 4;
  static constexpr int kBr = 64, kBc = 64;  // whole 2 x 16-float vectors; same tiles as AVX2
  // Decode's single-row P.V: 4 vectors = 64 floats of Dv per pass, the AVX2 width, so Dv = 64
  // still runs 4 independent FMA chains in one pass.
  static constexpr int kFew = 4, kFewC = 4;
  static T zero() { return _mm512_setzero_ps(); }
  static T set1(float x) { return _mm512_set1_ps(x); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  // 16 halves (32 bytes, any 2-byte alignment) widened exactly (vcvtph2ps zmm is AVX-512F).
  static T load_half(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static void store(float* p, T x) { _mm512_storeu_ps(p, x); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T sub(T a, T b) { return _mm512_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T div(T a, T b) { return _mm512_div_ps(a, b); }
  static T fmadd(T acc, T x, T y) { return _mm512_fmadd_ps(x, y, acc); }
  static T max(T a, T b) { return _mm512_max_ps(a, b); }  // NaN in either -> b (as vmaxps ymm)
  static T min(T a, T b) { return _mm512_min_ps(a, b); }
  static M eq(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
  static M lt(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static T select(M m, T a, T b) { return _mm512_mask_blend_ps(m, b, a); }  // lanes of m take a
  // Bitwise forms through the integer unit: float and/andnot need AVX-512DQ, which F does not bring.
  static T abs(T x) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7FFFFFFF)));
  }
  static T copysign(T mag, T sgn) {
    const __m512i s = _mm512_set1_epi32(static_cast<int>(0x80000000u));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_andnot_si512(s, _mm512_castps_si512(mag)),
                                               _mm512_and_si512(s, _mm512_castps_si512(sgn))));
  }
  static T round(T x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // 2^n for integral n in [-126, 127], straight into the exponent bits.
  static T pow2i(T n) {
    const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
  }
  static float sum(T x) {  // 256-bit halves, then as AVX2 does: 128-bit halves, pairs, the last two
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(x),
                                   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // Each vector folded to 256 bits, then AVX2's reduction of eight (kernels/avx2.cc).
  static void sums8(const T* a, float* out) {
    __m256 h[8];
    for (int i = 0; i < 8; ++i) {
      h[i] = _mm256_add_ps(_mm512_castps512_ps256(a[i]), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a[i]), 1)));
    }
    const __m256 s0123 = _mm256_hadd_ps(_mm256_hadd_ps(h[0], h[1]), _mm256_hadd_ps(h[2], h[3]));
    const __m256 s4567 = _mm256_hadd_ps(_mm256_hadd_ps(h[4], h[5]), _mm256_hadd_ps(h[6], h[7]));
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_permute2f128_ps(s0123, s4567, 0x20), _mm256_permute2f128_ps(s0123, s4567, 0x31)));
  }
  static void prefetch(const float* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
  static T exp(T x) { return ExpCephes<V>(x); }
  static T tanh(T x) { return TanhCephes<V>(x); }
};

}  // namespace

extern const KernelTable kKernelsAvx512 = {"avx512", V::kBr, &WorkspaceFloats<V>, &AttendTileAny<V>};
extern const RopeKernelTable kRopeAvx512 = RopeTableOf<V>();

}  // namespace qkv
