// The dot-product path of tiles with few rows (decode: Sq = 1, a small GQA group, or one tile over
// several kv heads): DotMicro / DotScoresN / DotScores compute each score as a vectorized dot over D
// (K streamed as contiguous vectors, V prefetched meanwhile), PvOneRow does P.V for a single row.
// Used by AttendTile (kernels/attend_tile.h) for tiles of at most V::kFew rows.
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

#include "kernels/attend_micro.h"
#include "kernels/kernels.h"
#include "kernels/vec_math.h"
#include "util.h"

namespace qkv {
namespace {

// Keys per block of a tile that spans several kv heads (AttnTile::kv_heads > 1): short blocks, so
// that one block of every head is what the hardware streams at a time (bench/RESULTS.md,
// "Measurements formerly in code comments").
constexpr int64_t kDecodeBlock = 16;

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
    const int64_t nr = Min(4, r1 - r);
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

}  // namespace
}  // namespace qkv
