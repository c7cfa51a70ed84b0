// Vector math for the attention kernels, written once against a small vector vocabulary `V` that
// each ISA translation unit (kernels/scalar.cc, avx2.cc, avx512.cc, neon.cc) defines before
// instantiating the kernels (kernels/attend_tile.h):
//
//   struct V {
//     using T = <vector of W floats>; using M = <lane mask>; static constexpr int W;
//     static constexpr int kR, kC;    // micro-kernel: kR keys (or rows) x kC vectors
//     static constexpr int kBr, kBc;  // tile: query rows per tile, keys per block
//     static constexpr int kFew;      // tiles of at most kFew rows take the dot-product path
//     static constexpr int kFewC;     // vectors of Dv per pass of that path's P.V (1 row)
//     zero set1 load store add sub mul div fmadd(acc, x, y) = acc + x*y  max min
//     load_half(p)       W IEEE binary16 values (uint16_t bits) at p, widened to floats (exactly)
//     eq lt select(m, a, b) = m ? a : b  abs copysign(mag, sgn)  exp tanh
//     sum(x) = horizontal sum of the W lanes (a fixed order per ISA)
//     sums8(a, out)      out[i] = horizontal sum of a[i] for 8 vectors a[0..8), reduced together
//     prefetch(p)        hint: bring the cache line of p toward L1 (may do nothing)
//     round pow2i        (only needed by ExpCephes / TanhCephes below)
//   };
//
// This header: binary16 -> float (HalfToFloat, LoadKv, KvToFloat, WidenRows), e^x and tanh x
// (ExpCephes, TanhCephes, for the ISAs without a vector exp), and row helpers (ScaleRow,
// ScaleInto, ExpRow, Fill). The kernels built on it: attend_micro.h (the transposed score and
// P.V micro-kernels), attend_decode.h (the dot-product path of few-row tiles), attend_tile.h
// (AttendTile itself).
//
// Included ONLY by kernels/*.cc (each ISA's translation unit, built with its own flags), and
// everything in these headers lives in an anonymous namespace: a template or inline function
// instantiated in avx2.cc (compiled with -mavx2 -mfma) would otherwise be a weak symbol that the
// linker may hand to a baseline caller, which then dies with SIGILL on a CPU without AVX2. For
// the same reason no std:: function is called from here (std::exp and friends are inline
// functions with external linkage); scalar math goes through V, integer helpers come from
// util.h (internal linkage too).
#pragma once

#include <cmath>  // INFINITY
#include <cstdint>
#include <cstring>

#include "util.h"

#if defined(__clang__)
#define QKV_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define QKV_UNROLL _Pragma("GCC unroll 16")
#else
#define QKV_UNROLL
#endif
#if defined(__GNUC__)
#define QKV_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define QKV_ALWAYS_INLINE inline
#endif

namespace qkv {
namespace {

constexpr float kInf = INFINITY;

// IEEE binary16 (bits) -> binary32. Exact for every finite half (each is a float), subnormals
// included; +-inf stays +-inf; a NaN stays NaN with its payload, quieted (as F16C's vcvtph2ps and
// NEON's fcvtl do). The scalar kernels' conversion and every ISA's leftover elements.
inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1fu) {  // inf, NaN
    bits = sign | 0x7f800000u | (man << 13) | (man != 0 ? 0x00400000u : 0u);
  } else if (exp != 0) {  // normal: rebias 15 -> 127
    bits = sign | ((exp + 112u) << 23) | (man << 13);
  } else if (man == 0) {  // +-0
    bits = sign;
  } else {  // subnormal man * 2^-24: shift the leading 1 up to bit 10, one exponent step each
    uint32_t e = 113;  // biased exponent of 2^-14
    while ((man & 0x400u) == 0) {
      man <<= 1;
      --e;
    }
    bits = sign | (e << 23) | ((man & 0x3ffu) << 13);
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

// K / V elements are float or IEEE binary16 (uint16_t bits, AttnTile::kv_dtype = KvDtype::kF16): every read
// of K or V goes through these, so the kernels below are written once for both. Halves are
// widened on load and everything after (dots, softmax, accumulators) is fp32.
template <class V>
QKV_ALWAYS_INLINE typename V::T LoadKv(const float* p) { return V::load(p); }
template <class V>
QKV_ALWAYS_INLINE typename V::T LoadKv(const uint16_t* p) { return V::load_half(p); }
QKV_ALWAYS_INLINE float KvToFloat(float x) { return x; }
QKV_ALWAYS_INLINE float KvToFloat(uint16_t h) { return HalfToFloat(h); }

// dst (n, D) dense = src rows (n, D), `stride` elements apart, widened to float.
template <class V>
void WidenRows(const uint16_t* src, int64_t stride, int64_t n, int64_t D, float* dst) {
  for (int64_t r = 0; r < n; ++r) {
    const uint16_t* s = src + r * stride;
    float* d = dst + r * D;
    int64_t x = 0;
    for (; x + V::W <= D; x += V::W) V::store(d + x, V::load_half(s + x));
    for (; x < D; ++x) d[x] = HalfToFloat(s[x]);
  }
}

// e^x, Cephes expf: x = n ln2 + r with |r| <= ln2/2 (Cody-Waite, ln2 split in two so n*C1 is
// exact), e^r by a degree-7 minimax polynomial, 2^n built in the exponent bits. About 1 ulp.
// x < ln(FLT_MIN) gives exactly 0 (so exp(-inf) == 0 and deep underflow is 0, not subnormal);
// x > 88 saturates at e^88 (never reached here: every argument is <= 0). NaN stays NaN.
template <class V>
QKV_ALWAYS_INLINE typename V::T ExpCephes(typename V::T x) {
  using T = typename V::T;
  const T lo = V::set1(-87.33654f);
  const T hi = V::set1(88.0f);
  const T xc = V::min(hi, V::max(lo, x));  // operand order: x86 max/min return the 2nd on NaN
  const T n = V::round(V::mul(xc, V::set1(1.44269504088896341f)));
  T r = V::fmadd(xc, n, V::set1(-0.693359375f));
  r = V::fmadd(r, n, V::set1(2.12194440e-4f));
  T y = V::set1(1.9875691500e-4f);
  y = V::fmadd(V::set1(1.3981999507e-3f), y, r);
  y = V::fmadd(V::set1(8.3334519073e-3f), y, r);
  y = V::fmadd(V::set1(4.1665795894e-2f), y, r);
  y = V::fmadd(V::set1(1.6666665459e-1f), y, r);
  y = V::fmadd(V::set1(5.0000001201e-1f), y, r);
  y = V::fmadd(V::add(r, V::set1(1.0f)), y, V::mul(r, r));  // 1 + r + r^2 P(r)
  y = V::mul(y, V::pow2i(n));
  return V::select(V::lt(x, lo), V::zero(), y);
}

// tanh x, Cephes tanhf: an odd polynomial for |x| < 0.625, where (1 - e)/(1 + e) would cancel;
// above it (1 - e)/(1 + e) with e = e^(-2|x|) in (0, 0.29], which neither cancels nor overflows.
template <class V>
typename V::T TanhCephes(typename V::T x) {
  using T = typename V::T;
  const T one = V::set1(1.0f);
  const T ax = V::abs(x);
  const T e = ExpCephes<V>(V::mul(ax, V::set1(-2.0f)));
  const T big = V::div(V::sub(one, e), V::add(one, e));
  const T z = V::mul(x, x);
  T p = V::set1(-5.70498872745e-3f);
  p = V::fmadd(V::set1(2.06390887954e-2f), p, z);
  p = V::fmadd(V::set1(-5.37397155531e-2f), p, z);
  p = V::fmadd(V::set1(1.33314422036e-1f), p, z);
  p = V::fmadd(V::set1(-3.33332819422e-1f), p, z);
  const T small = V::fmadd(ax, V::mul(ax, z), p);  // |x| + |x| z P(z)
  return V::copysign(V::select(V::lt(ax, V::set1(0.625f)), small, big), x);
}

// x[0, n) *= a
template <class V>
void ScaleRow(float* x, float a, int64_t n) {
  const typename V::T va = V::set1(a);
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) V::store(x + i, V::mul(V::load(x + i), va));
  for (; i < n; ++i) x[i] *= a;
}

// dst[0, n) = src[0, n) * a
template <class V>
void ScaleInto(float* dst, const float* src, float a, int64_t n) {
  const typename V::T va = V::set1(a);
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) V::store(dst + i, V::mul(V::load(src + i), va));
  for (; i < n; ++i) dst[i] = src[i] * a;
}

// w[0, n) = exp(s[0, n) - m) * inv_l; s may equal w. The tail goes through a padded vector so
// every element uses the same exp.
template <class V>
void ExpRow(const float* s, float* w, float m, float inv_l, int64_t n) {
  using T = typename V::T;
  const T vm = V::set1(m), vi = V::set1(inv_l);
  int64_t j = 0;
  for (; j + V::W <= n; j += V::W) V::store(w + j, V::mul(V::exp(V::sub(V::load(s + j), vm)), vi));
  if (j < n) {
    float tmp[V::W];
    for (int c = 0; c < V::W; ++c) tmp[c] = j + c < n ? s[j + c] : -kInf;
    V::store(tmp, V::mul(V::exp(V::sub(V::load(tmp), vm)), vi));
    for (int64_t c = 0; j + c < n; ++c) w[j + c] = tmp[c];
  }
}

inline void Fill(float* x, float value, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = value;
}

}  // namespace
}  // namespace qkv
