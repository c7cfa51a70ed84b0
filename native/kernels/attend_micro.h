// Register-tile micro-kernels of the attention tile (kernels/attend_tile.h), on the transposed
// score block: ScoresMicro / ScoresKeys (St = scale * K Q^T, kR keys x kC vectors of query rows)
// and PvMicro / PvRows / PvBlock (O += P^T V, kR rows x kC vectors of Dv). Written against the
// vector vocabulary V of kernels/vec_math.h; K / V elements are float or binary16 (KV).
//
// Included ONLY by kernels/*.cc (each ISA's translation unit, built with its own flags), and
// everything in these headers lives in an anonymous namespace: a template or inline function
// instantiated in avx2.cc (compiled with -mavx2 -mfma) would otherwise be a weak symbol that the
// linker may hand to a baseline caller, which then dies with SIGILL on a CPU without AVX2. For
// the same reason no std:: function is called from here (std::exp and friends are inline
// functions with external linkage); scalar math goes through V, integer helpers come from
// util.h (internal linkage too).
#pragma once

#include <cstdint>

#include "kernels/vec_math.h"

namespace qkv {
namespace {

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

}  // namespace
}  // namespace qkv
