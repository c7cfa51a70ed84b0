// The dot-product path of tiles with few rows (decode: Sq = 1, a small GQA group, or one tile over
// several kv heads): DotMicro / DotScoresN / DotScores compute each score as a vectorized dot over D
// (K streamed as contiguous vectors, V prefetched meanwhile), PvOneRow does P.V for a single row.
// Used by AttendTile (kernels/attend_tile.h) for tiles of at most V::kFew rows. AttendSingleRows
// (below) replaces the whole tile kernel for tiles of one row per kv head (MHA decode).
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

// Single-row decode: a tile whose every kv head has one query row (Sq = 1 and G = 1: MHA decode,
// or a lone row), all rows over one key range, with no softcap, ALiBi, mask, scores or weights.
// The general path holds scores transposed (keys down, rows across), so one row fills one lane of
// each vector: per key a horizontal sum, a padded vector through exp and a strided store. Here one
// row's scores lie along the keys instead: eight keys' dot products reduce together (V::sums8),
// and the block's max, exp and sum run W keys per vector, with one rescale of O per block.
inline bool SingleRowDecode(const AttnTile& t) {
  if (t.n_rows != t.kv_heads || t.softcap > 0.0f || t.alibi || t.mask_kind != MaskKind::kNone) return false;
  for (int64_t r = 0; r < t.n_rows; ++r) {
    const TileRow& row = t.rows[r];
    if (row.scores != nullptr || row.key_begin != t.rows[0].key_begin || row.key_end != t.rows[0].key_end) return false;
  }
  return true;
}

// s[0, bc) = scale * (q . k_c): eight keys at a time (eight FMA chains over D, one reduction for
// all eight), then one at a time; the D % W leftovers added after the vector sum, as DotMicro does.
template <class V, class KV>
inline void RowScores(const float* q, const KV* k, int64_t ks, int64_t bc, int64_t D, float scale, float* s,
                      const KV* v, int64_t vs, int64_t Dv) {
  using T = typename V::T;
  constexpr int64_t W = V::W;
  const int64_t Dw = D / W * W;
  int64_t c = 0;
  for (; c + 8 <= bc; c += 8) {
    const KV* kc = k + c * ks;
    if (v != nullptr) PrefetchRows<V>(v, vs, c, c + 8, Dv);
    T acc[8];
    QKV_UNROLL for (int kk = 0; kk < 8; ++kk) acc[kk] = V::zero();
    for (int64_t d = 0; d < Dw; d += W) {
      const T qv = V::load(q + d);
      QKV_UNROLL for (int kk = 0; kk < 8; ++kk) acc[kk] = V::fmadd(acc[kk], qv, LoadKv<V>(kc + kk * ks + d));
    }
    V::sums8(acc, s + c);
    if (Dw < D) {
      for (int kk = 0; kk < 8; ++kk) {
        for (int64_t d = Dw; d < D; ++d) s[c + kk] = s[c + kk] + q[d] * KvToFloat(kc[kk * ks + d]);
      }
    }
  }
  if (v != nullptr) PrefetchRows<V>(v, vs, c, bc, Dv);
  for (; c < bc; ++c) DotMicro<V, 1, 1>(&q, k + c * ks, ks, D, 1.0f, s + c, 1);
  ScaleRow<V>(s, scale, bc);
}

// The scalar e^x through the vector exp (no std:: math in these headers), for one value per block.
template <class V>
inline float ExpOne(float x) {
  float lanes[V::W];
  V::store(lanes, V::exp(V::set1(x)));
  return lanes[0];
}

// Attention for a tile that SingleRowDecode accepts; same contract as AttendTile (partial_ml,
// row_ml, sinks, every key blocked -> zeros). Workspace: s (Bc) in St's place, O (n, Dv), m, l.
template <class V, class KV>
void AttendSingleRows(const AttnTile& t, float* ws) {
  using T = typename V::T;
  constexpr int64_t W = V::W, Br = V::kBr, Bc = V::kBc;
  const int64_t D = t.D, Dv = t.Dv, n = t.n_rows;
  const TileRow* rows = t.rows;
  // Several heads: short blocks, so that one block of every head (kDecodeBlock rows of Hkv * D
  // elements in a [B, S, Hkv, D] cache) is what the hardware streams at a time.
  const int64_t block = n > 1 ? kDecodeBlock : Bc;
  float* s = ws + RoundUp(D * Br, 16);
  float* o = s + RoundUp(Bc * Br, 16);
  float* m = o + RoundUp(Br * Dv, 16);
  float* l = m + RoundUp(Br, 16);
  const KV* tk = static_cast<const KV*>(t.k);
  const KV* tv = static_cast<const KV*>(t.v);
  Fill(o, 0.0f, n * Dv);
  for (int64_t r = 0; r < n; ++r) {  // a sink of -inf is no sink: (m, l) stays (-inf, 0)
    m[r] = rows[r].sink;
    l[r] = rows[r].sink != -kInf ? 1.0f : 0.0f;
  }
  const int64_t key_lo = Max(t.key_begin, rows[0].key_begin), key_hi = rows[0].key_end;
  for (int64_t j0 = key_lo; j0 < key_hi; j0 += block) {
    const int64_t bc = Min(block, key_hi - j0);
    const int64_t bw = RoundUp(bc, W);
    for (int64_t r = 0; r < n; ++r) {
      const KV* kb = tk + j0 * t.k_stride + r * t.k_head_stride;
      const KV* vb = tv + j0 * t.v_stride + r * t.v_head_stride;
      RowScores<V>(rows[r].q, kb, t.k_stride, bc, D, t.scale, s, vb, t.v_stride, Dv);
      Fill(s + bc, -kInf, bw - bc);  // the last vector's lanes past the block: e^-inf = 0
      T mx = V::set1(-kInf);
      for (int64_t c = 0; c < bw; c += W) mx = V::max(mx, V::load(s + c));
      float lanes[W];
      V::store(lanes, mx);
      float bmax = lanes[0];
      for (int64_t x = 1; x < W; ++x) bmax = lanes[x] > bmax || lanes[x] != lanes[x] ? lanes[x] : bmax;
      const float m_old = m[r];
      const float m_new = m_old > bmax || m_old != m_old ? m_old : bmax;
      const float ref = m_new == -kInf ? 0.0f : m_new;
      // An unchanged max rescales by exactly 1, also when it is infinite (a sink of +inf).
      const float a = m_old == m_new ? 1.0f : ExpOne<V>(m_old - ref);
      const T vref = V::set1(ref);
      T sum = V::zero();
      for (int64_t c = 0; c < bw; c += W) {
        const T e = V::exp(V::sub(V::load(s + c), vref));
        V::store(s + c, e);
        sum = V::add(sum, e);
      }
      m[r] = m_new;
      l[r] = a * l[r] + V::sum(sum);
      if (a != 1.0f) ScaleRow<V>(o + r * Dv, a, Dv);
      if (n == 1 && j0 + block < key_hi) {  // the next block's keys, while P.V streams this block's values
        PrefetchRows<V>(kb, t.k_stride, block, Min(2 * block, key_hi - j0), D);
      }
      PvOneRow<V>(s, 1, vb, t.v_stride, bc, Dv, o + r * Dv);
    }
  }

  for (int64_t r = 0; r < n; ++r) {
    if (t.partial_ml != nullptr) {  // split over keys: (m, l, unnormalized O); the driver merges
      t.partial_ml[2 * r] = m[r];
      t.partial_ml[2 * r + 1] = l[r];
      for (int64_t x = 0; x < Dv; ++x) rows[r].out[x] = o[r * Dv + x];
      continue;
    }
    if (t.row_ml != nullptr) {
      t.row_ml[2 * r] = m[r];
      t.row_ml[2 * r + 1] = l[r];
    }
    if (l[r] == 0.0f) {
      Fill(rows[r].out, 0.0f, Dv);  // every key blocked: zeros, even where V holds inf or NaN
    } else {
      ScaleInto<V>(rows[r].out, o + r * Dv, 1.0f / l[r], Dv);
    }
  }
}

}  // namespace
}  // namespace qkv
