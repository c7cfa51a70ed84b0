// The attention kernels of one ISA behind one table: native/attention.cc cuts a call into tiles,
// native/dispatch.cc hands the table out (in a KernelSet, with the GEMM table of the same ISA), and
// each of kernels/scalar.cc, avx2.cc, avx512.cc, neon.cc fills one table from the bodies in
// kernels/attend_tile.h.
//
// This header is included by baseline, -mavx2 and -mavx512f translation units alike, so it must
// stay free of inline functions with external linkage (see native/util.h on weak symbols): plain
// structs and extern tables only (abi.h is enums and constants). It deliberately does not include
// attention.h for the same reason.
#pragma once

#include <cstddef>
#include <cstdint>

#include "abi.h"

namespace qkv {

// One query row of a tile: query (b, h, i) with its own pointers into the call's tensors.
struct TileRow {
  const float* q;     // (D)
  float* out;         // (Dv)
  const void* mask;   // mask element (b, h, i, 0): float or uint8 per AttnTile::mask_kind; or null
  float* scores;      // (Sk) row that receives the pre-softmax scores, or null. When only weights
                      // are asked for, this is the weights row itself, used as scratch.
  float* weights;     // (Sk) probabilities, or null
  float* lse;         // (1) the row's log-sum-exp, written by the driver (native/attention.cc), or null
  int64_t key_begin;  // keys [0, key_begin) are blocked (the window's left side); key_begin >= 0
  int64_t key_end;    // keys [key_end, Sk) are blocked (causal / kv_lengths / the window's right
                      // side); 0 <= key_end <= Sk. key_begin >= key_end: nothing visible.
  int64_t pos;        // p(i), the row's position (ALiBi's distance |pos - j|)
  float slope;        // ALiBi slope of the row's head (0 without ALiBi)
  float sink;         // the head's sink logit; -inf without sinks (the same as none)
};

// A tile: up to KernelTable::tile_rows query rows of one batch b that all read the same keys and
// values (one kv head hk; with GQA the rows mix the query heads of that group).
// Rows must be ordered by key_end and by key_begin, both nondecreasing: the kernel relies on it to
// skip key blocks (it visits keys [rows[0].key_begin, rows[n - 1].key_end) only) and to block
// keys with one prefix (key_end) and one suffix (key_begin) of the rows per key.
//
// Decode tiles may span several kv heads (kv_heads > 1): rows are then head-major, n_rows /
// kv_heads (at most kMaxDecodeGroup) rows per head, every row with the same key_end, and head x's
// keys and values start k_head_stride / v_head_stride elements after head x - 1's. The kernel
// walks short key blocks across all the heads, so a [B, S, Hkv, D] cache streams whole
// contiguous rows of Hkv * D elements instead of one D-slice per page from each head in turn.
constexpr int64_t kMaxDecodeGroup = 4;

struct AttnTile {
  // K and V elements: float, or IEEE binary16 (uint16_t bits). Strides count elements of that
  // type. Either way the kernels compute in fp32.
  KvDtype kv_dtype;
  const void* k;         // key j at k + j * k_stride, (D) contiguous
  int64_t k_stride;
  const void* v;         // value j at v + j * v_stride, (Dv) contiguous
  int64_t v_stride;
  int64_t D, Dv, Sk;
  float scale;
  float softcap;         // 0 = off
  bool alibi;            // rows carry ALiBi slopes (TileRow::slope, TileRow::pos)
  MaskKind mask_kind;    // none, float (added, -inf blocks), bool (uint8, 0 blocks)
  int64_t mask_stride;   // element stride of the mask over keys (0 = broadcast)
  int64_t n_rows;        // 1 <= n_rows <= KernelTable::tile_rows
  const TileRow* rows;
  int64_t kv_heads;      // >= 1; > 1 only as described above
  int64_t k_head_stride, v_head_stride;
  // Split over keys (decode): only keys [key_begin, key_end_r) are visited (key_begin = 0 for
  // whole rows). With partial_ml non-null the tile computes a partial softmax instead of the
  // normalized output: for row r, m_r = max of its scores over the range (-inf if none is
  // visible), l_r = sum_j e^(s_rj - m_r), rows[r].out = sum_j e^(s_rj - m_r) v_j (not divided
  // by l_r; zeros when m_r = -inf), and partial_ml[2r] = m_r, partial_ml[2r + 1] = l_r. The
  // rows must then ask for no scores or weights, and carry no sink (sink = -inf: the driver adds
  // the sinks when it merges). Partials of disjoint ranges merge exactly:
  // m = max_c m_c, l = sum_c e^(m_c - m) l_c, out = (sum_c e^(m_c - m) O_c) / l.
  int64_t key_begin;
  float* partial_ml;     // (2 * n_rows) or null
  // Whole rows (partial_ml null): when non-null, receives each row's final (m_r, l_r) as above,
  // the sink included, so that the driver can report log-sum-exp m_r + log l_r.
  float* row_ml;         // (2 * n_rows) or null
};

struct KernelTable {
  const char* name;      // "scalar" | "avx2" | "avx512" | "neon"
  int32_t tile_rows;     // Br: the most query rows one tile may hold
  // Workspace one tile needs, in floats (the caller provides it 64-byte aligned, per worker).
  size_t (*workspace_floats)(int64_t D, int64_t Dv);
  // Computes out (and scores / weights when the rows ask for them) for every row of the tile.
  void (*attend_tile)(const AttnTile& tile, float* workspace);
};

extern const KernelTable kKernelsScalar;
#if defined(__x86_64__) || defined(_M_X64)
extern const KernelTable kKernelsAvx2;
extern const KernelTable kKernelsAvx512;
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
extern const KernelTable kKernelsNeon;
#endif

}  // namespace qkv
