// The attention tile kernel, written once against a small vector vocabulary `V` that each ISA
// translation unit (kernels/scalar.cc, avx2.cc, neon.cc) defines before instantiating it:
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
//     prefetch(p)        hint: bring the cache line of p toward L1 (may do nothing)
//     round pow2i        (only needed by ExpCephes / TanhCephes below)
//   };
//
// Included ONLY by kernels/*.cc, and everything here lives in an anonymous namespace: a template
// or inline function instantiated in avx2.cc (compiled with -mavx2 -mfma) would otherwise be a
// weak symbol that the linker may hand to a baseline caller, which then dies with SIGILL on a CPU
// without AVX2. For the same reason no std:: function is called from here (std::exp and friends
// are inline functions with external linkage); scalar math goes through V.
#pragma once

#include <cmath>  // INFINITY
#include <cstdint>
#include <cstring>

#include "kernels/kernels.h"

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
// Keys per block of a tile that spans several kv heads (AttnTile::kv_heads > 1). Measured on this
// project's x86-64 VM reading a [4096, 32, 128] float cache: blocks of 16 keys across all heads
// stream at 15 GB/s, blocks of 64 at 13.7, one head at a time at 8.2 (the page-per-row pattern).
constexpr int64_t kDecodeBlock = 16;

inline int64_t MinI(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t MaxI(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t RoundUp(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

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

// K / V elements are float or IEEE binary16 (uint16_t bits, AttnTile::kv_dtype = 1): every read
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

// Score micro-kernel: R keys x C vectors of query rows of the transposed score block.
//   qt: (D, ldq)    Q tile transposed, pointing at column r0 (the first query row)
//   k : (R, ks)     the R keys, rows of the input (D contiguous), read by broadcast
//   s : (R, lds)    st[c][r0 .. r0 + C*W) = scale * sum_d qt[d][r] * k[c][d]
// Keys run along rows of st so that the softmax below is vertical (no horizontal reductions).
template <class V, int R, int C>
inline void ScoresMicro(const float* qt, int64_t ldq, const float* k, int64_t ks, int64_t D,
                        float scale, float* s, int64_t lds) {
  using T = typename V::T;
  constexpr int W = V::W;
  T acc[R][C];
  const float* kr[R];
  QKV_UNROLL for (int rr = 0; rr < R; ++rr) {
    kr[rr] = k + rr * ks;
    QKV_UNROLL for (int cc = 0; cc < C; ++cc) acc[rr][cc] = V::zero();
  }
  for (int64_t d = 0; d < D; ++d) {
    T q[C];
    QKV_UNROLL for (int cc = 0; cc < C; ++cc) q[cc] = V::load(qt + d * ldq + cc * W);
    QKV_UNROLL for (int rr = 0; rr < R; ++rr) {
      const T kb = V::set1(kr[rr][d]);
      QKV_UNROLL for (int cc = 0; cc < C; ++cc) acc[rr][cc] = V::fmadd(acc[rr][cc], kb, q[cc]);
    }
  }
  const T vs = V::set1(scale);
  QKV_UNROLL for (int rr = 0; rr < R; ++rr) {
    QKV_UNROLL for (int cc = 0; cc < C; ++cc) V::store(s + rr * lds + cc * W, V::mul(acc[rr][cc], vs));
  }
}

// R keys against query rows [r_lo, r_hi) (multiples of W): kC vectors at a time, then single ones.
template <class V, int R>
inline void ScoresKeys(const float* qt, int64_t ldq, int64_t r_lo, int64_t r_hi, const float* k,
                       int64_t ks, int64_t D, float scale, float* s, int64_t lds) {
  constexpr int64_t W = V::W, CW = V::kC * V::W;
  int64_t r = r_lo;
  for (; r + CW <= r_hi; r += CW) ScoresMicro<V, R, V::kC>(qt + r, ldq, k, ks, D, scale, s + r, lds);
  for (; r < r_hi; r += W) ScoresMicro<V, R, 1>(qt + r, ldq, k, ks, D, scale, s + r, lds);
}

// The last bc % kR keys: R picked at run time among 1 .. kR-1.
template <class V, int R>
inline void ScoresKeysLeft(int64_t rem, const float* qt, int64_t ldq, int64_t r_lo, int64_t r_hi,
                           const float* k, int64_t ks, int64_t D, float scale, float* s, int64_t lds) {
  if constexpr (R > 0) {
    if (rem == R) {
      ScoresKeys<V, R>(qt, ldq, r_lo, r_hi, k, ks, D, scale, s, lds);
    } else {
      ScoresKeysLeft<V, R - 1>(rem, qt, ldq, r_lo, r_hi, k, ks, D, scale, s, lds);
    }
  }
}

// P.V micro-kernel: R query rows x C vectors of Dv.
//   p: (bc, ldp)   probabilities transposed, pointing at column r0
//   v: (bc, vs)    value rows straight from the input, pointing at column dv0
//   o: (R, ldo)    o[r][dv0 .. dv0 + C*W) += sum_c p[c][r] * v[c][..]
template <class V, int R, int C, class KV>
inline void PvMicro(const float* p, int64_t ldp, const KV* v, int64_t vs, int64_t bc, float* o,
                    int64_t ldo) {
  using T = typename V::T;
  constexpr int W = V::W;
  T acc[R][C];
  QKV_UNROLL for (int rr = 0; rr < R; ++rr) {
    QKV_UNROLL for (int cc = 0; cc < C; ++cc) acc[rr][cc] = V::load(o + rr * ldo + cc * W);
  }
  for (int64_t c = 0; c < bc; ++c) {
    T x[C];
    QKV_UNROLL for (int cc = 0; cc < C; ++cc) x[cc] = LoadKv<V>(v + c * vs + cc * W);
    QKV_UNROLL for (int rr = 0; rr < R; ++rr) {
      const T pb = V::set1(p[c * ldp + rr]);
      QKV_UNROLL for (int cc = 0; cc < C; ++cc) acc[rr][cc] = V::fmadd(acc[rr][cc], pb, x[cc]);
    }
  }
  QKV_UNROLL for (int rr = 0; rr < R; ++rr) {
    QKV_UNROLL for (int cc = 0; cc < C; ++cc) V::store(o + rr * ldo + cc * W, acc[rr][cc]);
  }
}

template <class V, int C, int R, class KV>
inline void PvRowsLeft(int64_t rem, const float* p, int64_t ldp, const KV* v, int64_t vs,
                       int64_t bc, float* o, int64_t ldo) {
  if constexpr (R > 0) {
    if (rem == R) {
      PvMicro<V, R, C>(p, ldp, v, vs, bc, o, ldo);
    } else {
      PvRowsLeft<V, C, R - 1>(rem, p, ldp, v, vs, bc, o, ldo);
    }
  }
}

// C vectors of Dv for rows [0, n): kR rows at a time, then the leftover rows.
template <class V, int C, class KV>
inline void PvRows(const float* p, int64_t ldp, const KV* v, int64_t vs, int64_t bc, float* o,
                   int64_t ldo, int64_t n) {
  int64_t r = 0;
  for (; r + V::kR <= n; r += V::kR) PvMicro<V, V::kR, C>(p + r, ldp, v, vs, bc, o + r * ldo, ldo);
  if (r < n) PvRowsLeft<V, C, V::kR - 1>(n - r, p + r, ldp, v, vs, bc, o + r * ldo, ldo);
}

// o[0, n)[0, Dv) += p[0, bc)[0, n)^T . v[0, bc)[0, Dv)
template <class V, class KV>
void PvBlock(const float* p, int64_t ldp, const KV* v, int64_t vs, int64_t bc, int64_t Dv,
             float* o, int64_t n) {
  constexpr int64_t W = V::W, CW = V::kC * V::W;
  int64_t dv = 0;
  for (; dv + CW <= Dv; dv += CW) PvRows<V, V::kC>(p, ldp, v + dv, vs, bc, o + dv, Dv, n);
  for (; dv + W <= Dv; dv += W) PvRows<V, 1>(p, ldp, v + dv, vs, bc, o + dv, Dv, n);
  if (dv < Dv) {  // leftovers: Dv % W columns
    for (int64_t r = 0; r < n; ++r) {
      float* orow = o + r * Dv;
      for (int64_t c = 0; c < bc; ++c) {
        const float pc = p[c * ldp + r];
        const KV* vrow = v + c * vs;
        for (int64_t x = dv; x < Dv; ++x) orow[x] += pc * KvToFloat(vrow[x]);
      }
    }
  }
}

// Dot-product score micro-kernel for tiles of few rows (decode): NR query rows x KR keys, each
// score a vectorized dot over D followed by one horizontal sum. Every key row is read once, as
// contiguous vectors, for all NR rows, which streams K at memory speed where the transposed
// micro-kernel above would pad each row to a whole vector and broadcast K one float at a time.
//   q : NR row pointers (D)      k: (KR, ks) keys
//   s : s[kk * lds + r] = scale * (q_r . k_kk)
// The arithmetic of one (row, key) pair does not depend on NR or KR (lane-wise FMA chains over
// d, then sum, then the D % W leftovers in order), so results never depend on the grouping.
template <class V, int NR, int KR, class KV>
inline void DotMicro(const float* const* q, const KV* k, int64_t ks, int64_t D, float scale, float* s,
                     int64_t lds) {
  using T = typename V::T;
  constexpr int64_t W = V::W;
  T acc[NR][KR];
  QKV_UNROLL for (int r = 0; r < NR; ++r) {
    QKV_UNROLL for (int kk = 0; kk < KR; ++kk) acc[r][kk] = V::zero();
  }
  int64_t d = 0;
  for (; d + W <= D; d += W) {
    T kv[KR];
    QKV_UNROLL for (int kk = 0; kk < KR; ++kk) kv[kk] = LoadKv<V>(k + kk * ks + d);
    QKV_UNROLL for (int r = 0; r < NR; ++r) {
      const T qv = V::load(q[r] + d);
      QKV_UNROLL for (int kk = 0; kk < KR; ++kk) acc[r][kk] = V::fmadd(acc[r][kk], qv, kv[kk]);
    }
  }
  QKV_UNROLL for (int r = 0; r < NR; ++r) {
    QKV_UNROLL for (int kk = 0; kk < KR; ++kk) {
      float x = V::sum(acc[r][kk]);
      const KV* kr = k + kk * ks;
      for (int64_t dd = d; dd < D; ++dd) x = x + q[r][dd] * KvToFloat(kr[dd]);  // leftovers
      s[kk * lds + r] = x * scale;
    }
  }
}

// Prefetches value rows [c0, c1) (Dv elements each, vs apart): P.V reads them right after the
// scores, and its first pass takes a few vectors of every row, a stride the hardware prefetcher
// follows poorly when the rows come from DRAM. One hint per 64-byte line.
template <class V, class KV>
inline void PrefetchRows(const KV* v, int64_t vs, int64_t c0, int64_t c1, int64_t Dv) {
  constexpr int64_t kLine = 64 / sizeof(KV);
  for (int64_t c = c0; c < c1; ++c) {
    for (int64_t x = 0; x < Dv; x += kLine) V::prefetch(reinterpret_cast<const float*>(v + c * vs + x));
  }
}

// NR rows against keys [0, bc): KR keys at a time (as many accumulators as the registers hold),
// then one at a time. Meanwhile the value rows of the same keys are prefetched (v: null = none).
template <class V, int NR, class KV>
inline void DotScoresN(const float* const* q, const KV* k, int64_t ks, int64_t bc, int64_t D, float scale,
                       float* s, int64_t lds, const KV* v, int64_t vs, int64_t Dv) {
  constexpr int KR = NR == 1 ? 8 : NR == 2 ? 4 : NR == 3 ? 3 : 2;
  int64_t c = 0;
  for (; c + KR <= bc; c += KR) {
    if (v != nullptr) PrefetchRows<V>(v, vs, c, c + KR, Dv);
    DotMicro<V, NR, KR>(q, k + c * ks, ks, D, scale, s + c * lds, lds);
  }
  if (v != nullptr) PrefetchRows<V>(v, vs, c, bc, Dv);
  for (; c < bc; ++c) DotMicro<V, NR, 1>(q, k + c * ks, ks, D, scale, s + c * lds, lds);
}

// Rows [r0, r1) (at most 4 at a time) against keys [0, bc) by dot products; v: the block's value
// rows, prefetched during the first group of rows.
template <class V, class KV>
void DotScores(const AttnTile& t, int64_t r0, int64_t r1, const KV* k, int64_t bc, float* s, int64_t lds,
               const KV* v) {
  const float* q[4];
  for (int64_t r = r0; r < r1; r += 4) {
    const int64_t nr = MinI(4, r1 - r);
    for (int64_t x = 0; x < nr; ++x) q[x] = t.rows[r + x].q;
    const KV* pv = r == r0 ? v : nullptr;
    switch (nr) {
      case 1: DotScoresN<V, 1>(q, k, t.k_stride, bc, t.D, t.scale, s + r, lds, pv, t.v_stride, t.Dv); break;
      case 2: DotScoresN<V, 2>(q, k, t.k_stride, bc, t.D, t.scale, s + r, lds, pv, t.v_stride, t.Dv); break;
      case 3: DotScoresN<V, 3>(q, k, t.k_stride, bc, t.D, t.scale, s + r, lds, pv, t.v_stride, t.Dv); break;
      default: DotScoresN<V, 4>(q, k, t.k_stride, bc, t.D, t.scale, s + r, lds, pv, t.v_stride, t.Dv); break;
    }
  }
}

// One row of P.V: o[0, Dv) += sum_c p[c * ldp] v[c][0, Dv), kFewC vectors of Dv per pass over the
// block's value rows (independent FMA chains; the block stays in L1 between passes).
template <class V, class KV>
void PvOneRow(const float* p, int64_t ldp, const KV* v, int64_t vs, int64_t bc, int64_t Dv, float* o) {
  constexpr int64_t W = V::W, CW = V::kFewC * V::W;
  int64_t dv = 0;
  for (; dv + CW <= Dv; dv += CW) PvMicro<V, 1, V::kFewC>(p, ldp, v + dv, vs, bc, o + dv, Dv);
  for (; dv + W <= Dv; dv += W) PvMicro<V, 1, 1>(p, ldp, v + dv, vs, bc, o + dv, Dv);
  for (int64_t c = 0; c < bc && dv < Dv; ++c) {  // leftovers: Dv % W columns
    const float pc = p[c * ldp];
    const KV* vrow = v + c * vs;
    for (int64_t x = dv; x < Dv; ++x) o[x] += pc * KvToFloat(vrow[x]);
  }
}

// Float mask: added, but -inf blocks whatever the score (even +inf or NaN). Bool mask: 0 blocks.
// Only keys below each row's key_end are looked at; the others are blocked anyway.
inline void ApplyMask(const AttnTile& t, int64_t j0, int64_t bc, int64_t r_begin, float* st,
                      int64_t lds) {
  const int64_t ms = t.mask_stride;
  for (int64_t r = r_begin; r < t.n_rows; ++r) {
    const int64_t ce = MinI(bc, t.rows[r].key_end - j0);
    float* s = st + r;
    if (t.mask_kind == 1) {
      const float* mk = static_cast<const float*>(t.rows[r].mask) + j0 * ms;
      for (int64_t c = 0; c < ce; ++c) {
        const float mv = mk[c * ms];
        s[c * lds] = mv == -kInf ? -kInf : s[c * lds] + mv;
      }
    } else {
      const uint8_t* mk = static_cast<const uint8_t*>(t.rows[r].mask) + j0 * ms;
      for (int64_t c = 0; c < ce; ++c) {
        if (mk[c * ms] == 0) s[c * lds] = -kInf;
      }
    }
  }
}

template <class V>
size_t WorkspaceFloats(int64_t D, int64_t Dv) {
  const int64_t Br = V::kBr, Bc = V::kBc;
  return static_cast<size_t>(RoundUp(D * Br, 16) + RoundUp(Bc * Br, 16) + RoundUp(Br * Dv, 16) +
                             3 * RoundUp(Br, 16) + RoundUp(Bc * D, 16));
}

// Attention for one tile of query rows sharing one kv head (FlashAttention-2 on the CPU).
//   rows : n <= Br query rows (b, h, i), key_end nondecreasing; q_r (D), out_r (Dv)
//   k, v : (Sk, D), (Sk, Dv) of the tile's kv head, rows k_stride / v_stride apart
//   out_r = sum_j softmax_j(s_rj) v_j,  s_rj = mask(softcap(scale * q_r . k_j)), blocked -> -inf
// Keys go by blocks of Bc; per block:
//   St (Bc, Br) = scale * K_blk Q_tile^T      scores transposed: keys down, query rows across
//   softcap, mask, key_end blocking           (-inf)
//   m' = max(m, max_c St),  alpha = e^(m - m'),  P = e^(St - m'),  l = alpha l + sum_c P
//   O (Br, Dv) = alpha O + P^T V_blk
// then out = O / l. Holding St transposed makes the whole softmax vertical, W rows per vector.
// A row whose every key is blocked keeps m = -inf; the reference point is then 0 instead of m',
// so alpha = P = 0, l = 0 and out is written as zeros (never NaN from -inf - -inf).
// Workspace: Qt (D, Br), St (Bc, Br), O (Br, Dv), then m, l, alpha (Br), then Kf (Bc, D); sections
// 16-float aligned.
// KV = uint16_t (binary16 K and V): the dot-product path and P.V widen each vector as they load it
// (LoadKv), so K and V stream at half the bytes; the transposed path, which broadcasts K one element
// at a time, first widens the block's keys into Kf (O(Bc D) work per block against O(Br Bc D) of
// multiply). Everything downstream of the loads is the same fp32 arithmetic as for float K / V.
// Scores / weights rows, when given, get every key: scores -inf and weights 0 where blocked.
// Tiles of at most kFew rows (decode) compute St by dot products instead (DotScores: no Qt, no
// padded rows in the multiply) and a single active row does P.V by PvOneRow; the softmax is
// shared. A tile over several kv heads (decode, kernels.h) takes that path too, head by head
// within each block of kDecodeBlock keys; the softmax runs over all its rows at once. With
// t.key_begin > 0 the key blocks start there; with t.partial_ml the tile stops before the division
// by l and hands out (m, l, O) instead (kernels.h).
template <class V, class KV>
void AttendTile(const AttnTile& t, float* ws) {
  using T = typename V::T;
  constexpr bool kHalf = sizeof(KV) == 2;
  constexpr int64_t W = V::W, Br = V::kBr, Bc = V::kBc;
  static_assert(Br % (V::kC * V::W) == 0 && Bc % V::W == 0, "tile sizes must be whole vectors");
  static_assert(kDecodeBlock <= Bc, "St holds Bc keys");
  const int64_t D = t.D, Dv = t.Dv, n = t.n_rows;
  const int64_t np = RoundUp(n, W);
  const TileRow* rows = t.rows;
  const int64_t n_heads = t.kv_heads, gr = n / n_heads;  // kv heads, rows per kv head
  const bool few = n_heads > 1 || n <= V::kFew;
  // Several heads: short blocks, so that one block of every head (kDecodeBlock rows of Hkv * D
  // elements in a [B, S, Hkv, D] cache) is what the hardware streams at a time.
  const int64_t block = n_heads > 1 ? kDecodeBlock : Bc;
  float* qt = ws;
  float* st = qt + RoundUp(D * Br, 16);
  float* o = st + RoundUp(Bc * Br, 16);
  float* m = o + RoundUp(Br * Dv, 16);
  float* l = m + RoundUp(Br, 16);
  float* alpha = l + RoundUp(Br, 16);
  float* kf = alpha + RoundUp(Br, 16);
  const KV* tk = static_cast<const KV*>(t.k);
  const KV* tv = static_cast<const KV*>(t.v);

  // Q transposed once per tile; the padding rows [n, np) are zero and never reach the output.
  if (!few) {
    for (int64_t r = 0; r < n; ++r) {
      const float* q = rows[r].q;
      for (int64_t d = 0; d < D; ++d) qt[d * Br + r] = q[d];
    }
    for (int64_t d = 0; d < D; ++d) Fill(qt + d * Br + n, 0.0f, np - n);
  }
  Fill(m, -kInf, np);
  Fill(l, 0.0f, np);
  Fill(o, 0.0f, n * Dv);

  const int64_t key_hi = rows[n - 1].key_end;  // the most keys any row sees
  int64_t r_begin = 0;                         // rows before it see no key of this block or later
  for (int64_t j0 = t.key_begin; j0 < key_hi; j0 += block) {
    const int64_t bc = MinI(block, key_hi - j0);
    while (rows[r_begin].key_end <= j0) ++r_begin;
    const int64_t rv = r_begin / W * W;  // first row vector with an active row
    const KV* kb = tk + j0 * t.k_stride;
    const KV* vb = tv + j0 * t.v_stride;

    if (few) {
      for (int64_t x = 0; x < n_heads; ++x) {  // head x: rows [x * gr, (x + 1) * gr)
        const int64_t r0 = MaxI(r_begin, x * gr), r1 = (x + 1) * gr;
        if (r0 < r1) DotScores<V>(t, r0, r1, kb + x * t.k_head_stride, bc, st, Br, vb + x * t.v_head_stride);
      }
      // Lanes of the row vectors that no active row fills: rows [rv, r_begin) are blocked below,
      // padding rows [n, np) get 0 as in the transposed path; neither reaches the output.
      for (int64_t cc = 0; cc < bc; ++cc) Fill(st + cc * Br + n, 0.0f, np - n);
    } else {
      const float* kfb;  // the block's keys as floats, ks apart
      int64_t ks;
      if constexpr (kHalf) {
        WidenRows<V>(kb, t.k_stride, bc, D, kf);
        kfb = kf;
        ks = D;
      } else {
        kfb = kb;
        ks = t.k_stride;
      }
      int64_t c = 0;
      for (; c + V::kR <= bc; c += V::kR) {
        ScoresKeys<V, V::kR>(qt, Br, rv, np, kfb + c * ks, ks, D, t.scale, st + c * Br, Br);
      }
      if (c < bc) {
        ScoresKeysLeft<V, V::kR - 1>(bc - c, qt, Br, rv, np, kfb + c * ks, ks, D, t.scale, st + c * Br, Br);
      }
    }

    if (t.softcap > 0.0f) {  // s = cap * tanh(s / cap)
      const T cap = V::set1(t.softcap), inv = V::set1(1.0f / t.softcap);
      for (int64_t cc = 0; cc < bc; ++cc) {
        for (int64_t r = rv; r < np; r += W) {
          float* p = st + cc * Br + r;
          V::store(p, V::mul(cap, V::tanh(V::mul(V::load(p), inv))));
        }
      }
    }
    if (t.mask_kind != 0) ApplyMask(t, j0, bc, r_begin, st, Br);

    // Key j0 + cc is past the key_end of a prefix of rows (rows are sorted by key_end).
    int64_t nb = rv;
    for (int64_t cc = 0; cc < bc; ++cc) {
      while (nb < n && rows[nb].key_end <= j0 + cc) ++nb;
      Fill(st + cc * Br + rv, -kInf, nb - rv);  // strided rows of one key: contiguous in st
    }

    for (int64_t r = r_begin; r < n; ++r) {
      if (float* so = rows[r].scores) {
        for (int64_t cc = 0; cc < bc; ++cc) so[j0 + cc] = st[cc * Br + r];
      }
    }

    // Online softmax, W rows per vector.
    for (int64_t r = rv; r < np; r += W) {
      T mx = V::set1(-kInf);
      for (int64_t cc = 0; cc < bc; ++cc) mx = V::max(mx, V::load(st + cc * Br + r));
      const T m_old = V::load(m + r);
      const T m_new = V::max(m_old, mx);
      const T ref = V::select(V::eq(m_new, V::set1(-kInf)), V::zero(), m_new);
      const T a = V::exp(V::sub(m_old, ref));
      T sum = V::zero();
      for (int64_t cc = 0; cc < bc; ++cc) {
        float* p = st + cc * Br + r;
        const T e = V::exp(V::sub(V::load(p), ref));
        V::store(p, e);
        sum = V::add(sum, e);
      }
      V::store(m + r, m_new);
      V::store(alpha + r, a);
      V::store(l + r, V::fmadd(sum, V::load(l + r), a));
    }
    for (int64_t r = rv; r < n; ++r) {
      if (alpha[r] != 1.0f) ScaleRow<V>(o + r * Dv, alpha[r], Dv);
    }

    for (int64_t x = 0; x < n_heads; ++x) {
      const int64_t r0 = MaxI(r_begin, x * gr), r1 = (x + 1) * gr;
      const KV* vx = vb + x * t.v_head_stride;
      if (few && r1 - r0 == 1) {
        PvOneRow<V>(st + r0, Br, vx, t.v_stride, bc, Dv, o + r0 * Dv);
      } else if (r0 < r1) {
        PvBlock<V>(st + r0, Br, vx, t.v_stride, bc, Dv, o + r0 * Dv, r1 - r0);
      }
    }
  }

  if (t.partial_ml != nullptr) {  // split over keys: (m, l, unnormalized O); the driver merges
    for (int64_t r = 0; r < n; ++r) {
      t.partial_ml[2 * r] = m[r];
      t.partial_ml[2 * r + 1] = l[r];
      float* out = rows[r].out;
      const float* orow = o + r * Dv;
      for (int64_t x = 0; x < Dv; ++x) out[x] = orow[x];
    }
    return;
  }

  for (int64_t r = 0; r < n; ++r) {
    const TileRow& row = rows[r];
    const float lr = l[r];
    if (lr == 0.0f) {
      Fill(row.out, 0.0f, Dv);  // every key blocked: zeros, even where V holds inf or NaN
    } else {
      ScaleInto<V>(row.out, o + r * Dv, 1.0f / lr, Dv);
    }
    const int64_t ke = row.key_end;
    if (row.scores && row.scores != row.weights) Fill(row.scores + ke, -kInf, t.Sk - ke);
    if (row.weights) {
      if (lr == 0.0f) {
        Fill(row.weights, 0.0f, t.Sk);
      } else {
        ExpRow<V>(row.scores, row.weights, m[r], 1.0f / lr, ke);
        Fill(row.weights + ke, 0.0f, t.Sk - ke);
      }
    }
  }
}

// KernelTable::attend_tile: the tile's K / V element type picks the instantiation.
template <class V>
void AttendTileAny(const AttnTile& t, float* ws) {
  if (t.kv_dtype == 1) {
    AttendTile<V, uint16_t>(t, ws);
  } else {
    AttendTile<V, float>(t, ws);
  }
}

}  // namespace
}  // namespace qkv
