// The attention tile kernel (KernelTable::attend_tile): AttendTile, FlashAttention-2 over one
// tile of query rows, with masking (ApplyMask) and its workspace size (WorkspaceFloats). Each ISA
// translation unit defines its vector vocabulary V (kernels/vec_math.h) and then fills its
// KernelTable with WorkspaceFloats<V> and AttendTileAny<V>.
//
// Included ONLY by kernels/*.cc (each ISA's translation unit, built with its own flags), and
// everything in these headers lives in an anonymous namespace: a template or inline function
// instantiated in avx2.cc (compiled with -mavx2 -mfma) would otherwise be a weak symbol that the
// linker may hand to a baseline caller, which then dies with SIGILL on a CPU without AVX2. For
// the same reason no std:: function is called from here (std::exp and friends are inline
// functions with external linkage); scalar math goes through V, integer helpers come from
// util.h (internal linkage too).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/attend_decode.h"
#include "kernels/attend_micro.h"
#include "kernels/kernels.h"
#include "kernels/vec_math.h"
#include "util.h"

namespace qkv {
namespace {

// Float mask: added, but -inf blocks whatever the score (even +inf or NaN). Bool mask: 0 blocks.
// Only keys below each row's key_end are looked at; the others are blocked anyway.
inline void ApplyMask(const AttnTile& t, int64_t j0, int64_t bc, int64_t r_begin, float* st,
                      int64_t lds) {
  const int64_t ms = t.mask_stride;
  for (int64_t r = r_begin; r < t.n_rows; ++r) {
    const int64_t ce = Min(bc, t.rows[r].key_end - j0);
    float* s = st + r;
    if (t.mask_kind == MaskKind::kFloat) {
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
                             5 * RoundUp(Br, 16) + RoundUp(Bc * D, 16));
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
// Workspace: Qt (D, Br), St (Bc, Br), O (Br, Dv), then m, l, alpha, -slope, distance (Br), then
// Kf (Bc, D); sections 16-float aligned.
// Score modifiers: the keys visited are [rows[0].key_begin, key_hi) (a window's left side skips
// whole blocks, its right side and causal shorten key_hi); within a block the keys before a row's
// key_begin are blocked like those past its key_end. ALiBi adds -slope_r * |pos_r - j| after the
// softcap, W rows per vector (the distance to the block's first key held per row in floats, which
// are exact below 2^24; beyond, a scalar loop on integer distances). A sink starts the row's
// softmax at (m, l) = (sink, 1) instead of (-inf, 0); it carries no value, so it only lowers every
// weight.
// KV = uint16_t (binary16 K and V): the dot-product path and P.V widen each vector as they load it
// (LoadKv), so K and V stream at half the bytes; the transposed path, which broadcasts K one element
// at a time, first widens the block's keys into Kf (O(Bc D) work per block against O(Br Bc D) of
// multiply). Everything downstream of the loads is the same fp32 arithmetic as for float K / V.
// Scores / weights rows, when given, get every key: scores -inf and weights 0 where blocked.
// Tiles of at most kFew rows (decode) compute St by dot products instead (DotScores: no Qt, no
// padded rows in the multiply) and a single active row does P.V by PvOneRow; the softmax is
// shared. A tile over several kv heads (decode, kernels.h) with several rows per head takes that
// path too, head by head within each block of kDecodeBlock keys; the softmax runs over all its
// rows at once. With t.key_begin > 0 the key blocks start there; with t.partial_ml the tile stops before the division
// by l and hands out (m, l, O) instead (kernels.h). A tile with one row per kv head and no
// modifier (MHA decode) goes to AttendSingleRows instead (kernels/attend_decode.h).
template <class V, class KV>
void AttendTile(const AttnTile& t, float* ws) {
  using T = typename V::T;
  constexpr bool kHalf = sizeof(KV) == 2;
  constexpr int64_t W = V::W, Br = V::kBr, Bc = V::kBc;
  static_assert(Br % (V::kC * V::W) == 0 && Bc % V::W == 0, "tile sizes must be whole vectors");
  static_assert(kDecodeBlock <= Bc, "St holds Bc keys");
  if (SingleRowDecode(t)) return AttendSingleRows<V, KV>(t, ws);
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
  for (int64_t r = 0; r < n; ++r) {  // a sink of -inf is no sink: (m, l) stays (-inf, 0)
    m[r] = rows[r].sink;
    if (rows[r].sink != -kInf) l[r] = 1.0f;
  }
  float* neg_slope = alpha + RoundUp(Br, 16);
  float* dist = neg_slope + RoundUp(Br, 16);
  float* kf = dist + RoundUp(Br, 16);
  if (t.alibi) {
    for (int64_t r = 0; r < n; ++r) neg_slope[r] = -rows[r].slope;
    Fill(neg_slope + n, 0.0f, np - n);
    Fill(dist + n, 0.0f, np - n);
  }

  const int64_t key_lo = Max(t.key_begin, rows[0].key_begin);  // the fewest keys any row skips
  const int64_t key_hi = rows[n - 1].key_end;                   // the most keys any row sees
  const int64_t begin_hi = rows[n - 1].key_begin;               // keys below it are blocked for some row
  int64_t r_begin = 0;                                          // rows before it see no key of this block or later
  for (int64_t j0 = key_lo; j0 < key_hi; j0 += block) {
    const int64_t bc = Min(block, key_hi - j0);
    while (rows[r_begin].key_end <= j0) ++r_begin;
    const int64_t rv = r_begin / W * W;  // first row vector with an active row
    const KV* kb = tk + j0 * t.k_stride;
    const KV* vb = tv + j0 * t.v_stride;

    if (few) {
      for (int64_t x = 0; x < n_heads; ++x) {  // head x: rows [x * gr, (x + 1) * gr)
        const int64_t r0 = Max(r_begin, x * gr), r1 = (x + 1) * gr;
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
    if (t.alibi) {  // s -= slope * |pos - j|
      // Positions grow along the rows, so the farthest distance in the block is at an end row.
      const int64_t far = Max(Max(rows[rv].pos - j0, j0 - rows[rv].pos), Max(rows[n - 1].pos - j0, j0 - rows[n - 1].pos));
      if (far + bc < (int64_t{1} << 24)) {  // distances exact in floats: |dist - cc|, W rows per vector
        for (int64_t r = rv; r < n; ++r) dist[r] = static_cast<float>(rows[r].pos - j0);
        for (int64_t cc = 0; cc < bc; ++cc) {
          const T c = V::set1(static_cast<float>(cc));
          for (int64_t r = rv; r < np; r += W) {
            float* p = st + cc * Br + r;
            V::store(p, V::fmadd(V::load(p), V::load(neg_slope + r), V::abs(V::sub(V::load(dist + r), c))));
          }
        }
      } else {  // positions past 2^24 (a large queryOffset): the distance as an integer, one rounding
        for (int64_t r = rv; r < n; ++r) {
          for (int64_t cc = 0; cc < bc; ++cc) {
            const int64_t d = rows[r].pos - (j0 + cc);
            float* p = st + cc * Br + r;
            *p = static_cast<float>(static_cast<double>(*p) + static_cast<double>(neg_slope[r]) * static_cast<double>(d < 0 ? -d : d));
          }
        }
      }
    }
    if (t.mask_kind != MaskKind::kNone) ApplyMask(t, j0, bc, r_begin, st, Br);

    // Key j0 + cc is past the key_end of a prefix of rows (rows are sorted by key_end).
    int64_t nb = rv;
    for (int64_t cc = 0; cc < bc; ++cc) {
      while (nb < n && rows[nb].key_end <= j0 + cc) ++nb;
      Fill(st + cc * Br + rv, -kInf, nb - rv);  // strided rows of one key: contiguous in st
    }
    // Key j0 + cc is before the key_begin of a suffix of rows (sorted by key_begin too).
    if (begin_hi > j0) {
      int64_t ne = r_begin;
      for (int64_t cc = 0; cc < bc; ++cc) {
        while (ne < n && rows[ne].key_begin <= j0 + cc) ++ne;
        Fill(st + cc * Br + ne, -kInf, n - ne);
      }
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
      // An unchanged max rescales by exactly 1, also when it is infinite (a sink of +inf).
      const T a = V::select(V::eq(m_old, m_new), V::set1(1.0f), V::exp(V::sub(m_old, ref)));
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
      const int64_t r0 = Max(r_begin, x * gr), r1 = (x + 1) * gr;
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
    if (t.row_ml != nullptr) {
      t.row_ml[2 * r] = m[r];
      t.row_ml[2 * r + 1] = lr;
    }
    if (lr == 0.0f) {
      Fill(row.out, 0.0f, Dv);  // every key blocked: zeros, even where V holds inf or NaN
    } else {
      ScaleInto<V>(row.out, o + r * Dv, 1.0f / lr, Dv);
    }
    const int64_t ke = Max(row.key_end, key_lo);
    if (row.scores) Fill(row.scores, -kInf, Min(key_lo, t.Sk));  // keys no block visited
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
  if (t.kv_dtype == KvDtype::kF16) {
    AttendTile<V, uint16_t>(t, ws);
  } else {
    AttendTile<V, float>(t, ws);
  }
}

}  // namespace
}  // namespace qkv
