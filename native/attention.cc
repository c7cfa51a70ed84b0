// AttentionForward: cuts one call into independent tiles and runs the selected ISA kernel on each,
// on the calling thread and the process-wide pool (thread_pool.h).
//
// A tile is: batch b, kv head hk, a chunk of that group's query heads g in [g0, g1) and a chunk of
// query positions i in [i0, i1). Its rows (i, g) go i-major, r = (i - i0) * Gt + (g - g0), and all
// read the same keys and values (k, v of head hk), so GQA/MQA query heads share every K/V block
// the kernel loads. i-major also keeps key_end nondecreasing along the rows, which the kernel
// needs (kernels.h).
//
// Decode (Sq = 1, groups of G <= kMaxDecodeGroup query heads) over a [B, S, Hkv, D] cache, whose
// heads' slices of one key row are adjacent: a tile spans Ht kv heads (as many as its rows allow; rows head-major, then g), all rows with one key_end. The kernel then walks short
// key blocks across the heads, so a [B, S, Hkv, D] cache (the KVCache's layout) streams whole
// contiguous key rows; one head at a time would read D elements out of every Hkv * D, one page
// per key, a pattern that streams far below DRAM bandwidth (bench/RESULTS.md, "Measurements
// formerly in code comments"). Over [B, Hkv, S, D], where each head's keys are one contiguous
// stream, a tile keeps one kv head.
//
// Work items. Tiles write disjoint rows of out / weights / scores, so they run as ParallelFor
// items, each on the workspace of the slot that runs it. The position chunk is the outermost
// index of a tile and goes DOWN as items are claimed: with causal masking a tile of larger i sees
// more keys, so the costly tiles are handed out first and the cheap ones fill in at the end.
//
// Split over keys (decode: few rows, long Sk). When a call has fewer than kSplitTiles tiles and
// at least 2 * kMinChunkKeys visible K/V rows per tile (keys times Ht; and asks for no scores /
// weights), every tile's key
// range is also cut into chunks: item = (tile, chunk). Each chunk computes its partial softmax
// (row max m_c, denominator l_c, unnormalized O_c; kernels.h) into a buffer, and a second pass
// merges the chunks of each row exactly, in chunk order:
//   m = max_c m_c,  l = sum_c e^(m_c - m) l_c,  out = (sum_c e^(m_c - m) O_c) / l   (m = -inf: zeros)
// The chunk boundaries depend only on the shape and the visible key count (never on the thread
// count), and each chunk and each merge runs on one thread in a fixed order, so out is bitwise
// identical for any number of threads. Against the unsplit kernel it differs by float rounding
// only: each O_c and l_c is rescaled once more (one extra multiply by e^(m_c - m), which is
// computed to ~1 ulp), so the merged result stays within a few ulp of relative error of l and of
// each O component, far inside the 1e-5 + 1e-4 |x| tolerance of DESIGN.md.
#include "attention.h"

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "dispatch.h"
#include "kernels/kernels.h"
#include "thread_pool.h"
#include "util.h"

namespace qkv {
namespace {

constexpr int64_t kMaxTileRows = 256;  // bound on KernelTable::tile_rows (rows live on the stack)

// The calling thread's scratch: one tile workspace per slot, plus the split-over-keys partials.
// Sized by the tile (O(Br (D + Bc + Dv)) per slot) and, when split, by fewer than 2 * kSplitTiles
// items of Rt (Dv + 2) floats; never by Sq or Sk. Kept between calls up to
// kKeptScratchFloatsPerThread per compute thread (util.h), so steady-state calls allocate nothing;
// a call that needs more (a huge D or Dv) uses a buffer of its own, freed when it returns.
thread_local AlignedBuffer t_workspace;

// How a call splits into items; everything RunItem needs besides the workspace.
struct Plan {
  const AttnArgs* a;
  const KernelTable* kernels;
  TensorStrides qs, ks, vs, os;
  int64_t G;          // query heads per kv head
  int64_t Gt;         // query heads per tile (all G unless G > Br)
  int64_t Pt;         // query positions per tile
  int64_t Ht;         // kv heads per tile: 1, or more for decode (see the top of the file)
  int64_t Rt;         // rows per tile at most: Ht * Gt * Pt
  int64_t n_hk;       // chunks of kv heads per b
  int64_t n_g, n_i;   // chunks of query heads / of positions per (b, kv head chunk)
  int64_t n_tiles;
  int64_t n_chunks;   // key chunks per tile: 1 = no split over keys
  int64_t chunk;      // keys per chunk (when n_chunks > 1)
  int64_t n_items;    // n_tiles * n_chunks
  size_t partial_floats;  // per item: Rt * (Dv + 2) when split, else 0
};

// Split over keys only when there are fewer tiles than this (too few to keep the threads of any
// usual machine busy), and never into chunks of fewer than kMinChunkKeys keys: a chunk then costs
// >= 512 K/V rows, against one (m, l, O) merge per row. Constants, so a call splits the same way
// whatever the thread count.
constexpr int64_t kSplitTiles = 64;
constexpr int64_t kMinChunkKeys = 512;

// A call whose estimated single-thread time is below kMinParallelMicros runs on the calling thread
// alone (the items are the same, so the results too): waking a pool thread and merging its share
// costs tens of microseconds (bench/RESULTS.md, "Measurements formerly in code comments"). The
// estimate counts multiply-adds at kFlopsPerMicro and K/V bytes at kBytesPerMicro (decode is
// bound by the second), over the keys kv_lengths leaves visible: a KV cache's Sk is its capacity.
constexpr double kMinParallelMicros = 250;
constexpr double kFlopsPerMicro = 100e3;  // 100 GFLOP/s
constexpr double kBytesPerMicro = 20e3;   // 20 GB/s

// p(i): the position of query row i of batch b (only when offsets are given).
int64_t Position(const AttnArgs& a, int64_t b, int64_t i) { return static_cast<int64_t>(a.offsets[b]) + i; }

// Keys [key_end, Sk) are blocked for query position i of batch b: kv_lengths, causal and the
// window's right side.
int64_t KeyEnd(const AttnArgs& a, int64_t b, int64_t i) {
  int64_t end = a.shape.Sk;
  if (a.kv_lengths != nullptr) end = Min(end, a.kv_lengths[b]);
  if (a.causal) end = Min(end, Position(a, b, i) + 1);
  if (a.window_right >= 0) end = Min(end, Position(a, b, i) + a.window_right + 1);
  return Max(end, 0);
}

// Keys [0, key_begin) are blocked for query position i of batch b: the window's left side.
int64_t KeyBegin(const AttnArgs& a, int64_t b, int64_t i) {
  if (a.window_left < 0) return 0;
  return Min(Max(Position(a, b, i) - a.window_left, 0), a.shape.Sk);
}

Plan MakePlan(const AttnArgs& a, const KernelTable& kt) {
  const AttnShape& s = a.shape;
  Plan p;
  p.a = &a;
  p.kernels = &kt;
  p.qs = StridesFor(a.layout, s.H, s.Sq, s.D);
  p.ks = StridesFor(a.layout, s.Hkv, s.Sk, s.D);
  p.vs = StridesFor(a.layout, s.Hkv, s.Sk, s.Dv);
  p.os = StridesFor(a.layout, s.H, s.Sq, s.Dv);
  const int64_t Br = Min(kt.tile_rows, kMaxTileRows);
  p.G = s.H / s.Hkv;
  p.Gt = Min(p.G, Br);
  p.Pt = Br / p.Gt;
  // Several kv heads per tile only where their slices of one key row are adjacent ([B, S, Hkv, D]):
  // a tile then streams whole key rows. Where each head's keys are contiguous ([B, Hkv, S, D]),
  // one head per tile already streams one contiguous region, and more would interleave streams.
  const bool heads_adjacent = p.ks.h < p.ks.s && p.vs.h < p.vs.s;
  p.Ht = s.Sq == 1 && p.G <= kMaxDecodeGroup && heads_adjacent ? Min(s.Hkv, Br / p.G) : 1;
  p.Rt = p.Ht * p.Gt * Min(p.Pt, s.Sq);
  p.n_hk = CeilDiv(s.Hkv, p.Ht);
  p.n_g = CeilDiv(p.G, p.Gt);
  p.n_i = CeilDiv(s.Sq, p.Pt);
  p.n_tiles = s.B * p.n_hk * p.n_g * p.n_i;
  p.n_chunks = 1;
  p.chunk = s.Sk;
  p.partial_floats = 0;
  if (p.n_tiles < kSplitTiles && a.weights == nullptr && a.scores == nullptr) {
    // The most keys any tile reads: from its first row's key_begin to its last row's key_end
    // (both grow with i), so a windowed decode over a long cache is planned from its window.
    int64_t span = 0;
    for (int64_t b = 0; b < s.B; ++b) {
      for (int64_t i0 = 0; i0 < s.Sq; i0 += p.Pt) {
        span = Max(span, KeyEnd(a, b, Min(s.Sq, i0 + p.Pt) - 1) - KeyBegin(a, b, i0));
      }
    }
    const int64_t want = Min(span * p.Ht / kMinChunkKeys, CeilDiv(kSplitTiles, p.n_tiles));
    if (want >= 2) {
      p.chunk = CeilDiv(CeilDiv(span, want), 64) * 64;  // whole key blocks of every ISA
      p.n_chunks = CeilDiv(span, p.chunk);
      p.partial_floats = static_cast<size_t>(p.Rt * (s.Dv + 2));
    }
  }
  p.n_items = p.n_tiles * p.n_chunks;
  return p;
}

// The rows of one tile (at most Rt); returns the row count. Whole rows for chunk < 0; else the
// rows cut to key chunk `chunk` of the tile's keys, [lo + chunk * p.chunk, lo + (chunk + 1) *
// p.chunk) with lo the first row's key_begin, and with no sink (MergeTile adds it). Fills
// everything of `tile` but the partial output.
int64_t MakeTile(const Plan& p, int64_t tile_index, int64_t chunk, TileRow* rows, AttnTile& tile) {
  const AttnArgs& a = *p.a;
  const AttnShape& s = a.shape;
  const int64_t per_i = s.B * p.n_hk * p.n_g;
  const int64_t ic = p.n_i - 1 - tile_index / per_i;  // costly (late) positions first
  int64_t rest = tile_index % per_i;
  const int64_t gc = rest % p.n_g;
  rest /= p.n_g;
  const int64_t hkc = rest % p.n_hk;
  const int64_t b = rest / p.n_hk;
  const int64_t i0 = ic * p.Pt, i1 = Min(s.Sq, i0 + p.Pt);
  const int64_t g0 = gc * p.Gt, g1 = Min(p.G, g0 + p.Gt);
  const int64_t hk0 = hkc * p.Ht, hk1 = Min(s.Hkv, hk0 + p.Ht);

  const size_t mask_elem = a.mask_kind == MaskKind::kFloat ? sizeof(float) : sizeof(uint8_t);
  const int64_t* ms = a.mask_strides;
  int64_t n = 0;
  for (int64_t hk = hk0; hk < hk1; ++hk) {  // one kv head unless decode (then i1 = i0 + 1)
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t key_begin = KeyBegin(a, b, i), key_end = KeyEnd(a, b, i);
      const int64_t pos = a.offsets != nullptr ? Position(a, b, i) : i;
      for (int64_t g = g0; g < g1; ++g, ++n) {
        const int64_t h = hk * p.G + g;
        const int64_t bhi = (b * s.H + h) * s.Sq + i;  // row of [B, H, Sq, Sk]
        TileRow& row = rows[n];
        row.q = a.q + b * p.qs.b + h * p.qs.h + i * p.qs.s;
        row.out = a.out + b * p.os.b + h * p.os.h + i * p.os.s;
        row.mask = a.mask_kind == MaskKind::kNone
                       ? nullptr
                       : static_cast<const char*>(a.mask) + (b * ms[0] + h * ms[1] + i * ms[2]) * mask_elem;
        row.weights = a.weights != nullptr ? a.weights + bhi * s.Sk : nullptr;
        row.lse = a.lse != nullptr ? a.lse + bhi : nullptr;
        row.scores = a.scores != nullptr ? a.scores + bhi * s.Sk : row.weights;  // weights as scratch
        row.key_begin = key_begin;
        row.key_end = key_end;
        row.pos = pos;
        row.slope = a.alibi != nullptr ? a.alibi[h] : 0.0f;
        row.sink = a.sinks != nullptr && chunk < 0 ? a.sinks[h] : -INFINITY;
      }
    }
  }
  tile.key_begin = 0;
  if (chunk >= 0) {
    const int64_t lo = KeyBegin(a, b, i0) + chunk * p.chunk;  // rows[0].key_begin: the tile's first keys
    for (int64_t r = 0; r < n; ++r) rows[r].key_end = Min(rows[r].key_end, lo + p.chunk);
    tile.key_begin = lo;
  }

  const size_t kv_elem = a.kv_dtype == KvDtype::kF16 ? 2 : sizeof(float);
  tile.kv_dtype = a.kv_dtype;
  tile.k = static_cast<const char*>(a.k) + (b * p.ks.b + hk0 * p.ks.h) * kv_elem;
  tile.k_stride = p.ks.s;
  tile.v = static_cast<const char*>(a.v) + (b * p.vs.b + hk0 * p.vs.h) * kv_elem;
  tile.v_stride = p.vs.s;
  tile.kv_heads = hk1 - hk0;
  tile.k_head_stride = p.ks.h;
  tile.v_head_stride = p.vs.h;
  tile.D = s.D;
  tile.Dv = s.Dv;
  tile.Sk = s.Sk;
  tile.scale = a.scale;
  tile.softcap = a.softcap;
  tile.alibi = a.alibi != nullptr;
  tile.mask_kind = a.mask_kind;
  tile.mask_stride = a.mask_kind == MaskKind::kNone ? 0 : ms[3];
  tile.n_rows = n;
  tile.rows = rows;
  tile.partial_ml = nullptr;
  tile.row_ml = nullptr;
  return n;
}

// Each row's log-sum-exp from its final (m, l): m + log l, in score units (-inf when m = -inf and
// l = 0: nothing visible and no sink).
void WriteLse(const TileRow* rows, int64_t n, const float* ml) {
  for (int64_t r = 0; r < n; ++r) {
    if (rows[r].lse != nullptr) *rows[r].lse = ml[2 * r] + std::log(ml[2 * r + 1]);
  }
}

// Item `item` = (tile, key chunk). Unsplit: the tile's rows, normalized, straight into out.
// Split: chunk c's partial of every row into the item's block of `partials`:
//   O of row r at block + r * Dv, then (m, l) of row r at block + Rt * Dv + 2r.
void RunItem(const Plan& p, int64_t item, float* workspace, float* partials) {
  TileRow rows[kMaxTileRows];
  AttnTile tile;
  if (p.n_chunks == 1) {
    float ml[2 * kMaxTileRows];
    const int64_t n = MakeTile(p, item, -1, rows, tile);
    if (p.a->lse != nullptr) tile.row_ml = ml;
    p.kernels->attend_tile(tile, workspace);
    if (p.a->lse != nullptr) WriteLse(rows, n, ml);
    return;
  }
  const int64_t c = item % p.n_chunks;
  const int64_t n = MakeTile(p, item / p.n_chunks, c, rows, tile);
  float* block = partials + item * p.partial_floats;
  for (int64_t r = 0; r < n; ++r) rows[r].out = block + r * p.a->shape.Dv;
  tile.partial_ml = block + p.Rt * p.a->shape.Dv;
  p.kernels->attend_tile(tile, workspace);
}

// e^(x - m) for a term of a merge whose maximum is m: exactly 1 when x is the maximum (also when
// both are infinite: a sink of +inf takes the whole row).
float WeightOf(float x, float m) { return x == m ? 1.0f : std::exp(x - m); }

// Merges the key chunks of one tile's rows into out (see the top of the file), chunk by chunk,
// with the head's sink as one more term of no value: m = max(sink, m_c), l = e^(sink - m) + ...
void MergeTile(const Plan& p, int64_t tile_index, const float* partials) {
  const int64_t Dv = p.a->shape.Dv;
  TileRow rows[kMaxTileRows];
  AttnTile tile;
  const int64_t n = MakeTile(p, tile_index, -1, rows, tile);
  const float* first = partials + tile_index * p.n_chunks * p.partial_floats;
  for (int64_t r = 0; r < n; ++r) {
    const float sink = rows[r].sink;  // -inf without sinks
    float m = sink;
    for (int64_t c = 0; c < p.n_chunks && m == m; ++c) {  // NaN (from NaN inputs) wins and flows into out
      const float mc = first[c * p.partial_floats + p.Rt * Dv + 2 * r];
      if (mc > m || mc != mc) m = mc;
    }
    float* out = rows[r].out;
    for (int64_t x = 0; x < Dv; ++x) out[x] = 0.0f;
    float l = sink == -INFINITY ? 0.0f : WeightOf(sink, m);
    if (m != -INFINITY) {  // else every key blocked and no sink: zeros
      for (int64_t c = 0; c < p.n_chunks; ++c) {
        const float* block = first + c * p.partial_floats;
        const float mc = block[p.Rt * Dv + 2 * r];
        if (mc == -INFINITY) continue;  // this chunk saw no key of the row
        const float w = WeightOf(mc, m);
        l += w * block[p.Rt * Dv + 2 * r + 1];
        const float* o = block + r * Dv;
        for (int64_t x = 0; x < Dv; ++x) out[x] += w * o[x];
      }
      const float inv = 1.0f / l;
      for (int64_t x = 0; x < Dv; ++x) out[x] *= inv;
    }
    if (rows[r].lse != nullptr) *rows[r].lse = m + std::log(l);
  }
}

}  // namespace

void AttentionForward(const AttnArgs& args) {
  const AttnShape& s = args.shape;
  if (s.B <= 0 || s.H <= 0 || s.Hkv <= 0 || s.Sq <= 0 || s.Sk < 0 || s.D <= 0 || s.Dv <= 0) return;
  const KernelTable& kt = Kernels().attention;
  const Plan plan = MakePlan(args, kt);
  // Keys the rows see, summed over the batch: per b, the range the last row reaches (K/V bytes
  // read) and Sq times the mean of the first and the last row's (score work; exact for a causal
  // or windowed staircase up to the clipping at the edges).
  double keys = 0, row_keys = 0;
  for (int64_t b = 0; b < s.B; ++b) {
    const double first = static_cast<double>(Max(KeyEnd(args, b, 0) - KeyBegin(args, b, 0), 0));
    const double last = static_cast<double>(Max(KeyEnd(args, b, s.Sq - 1) - KeyBegin(args, b, s.Sq - 1), 0));
    keys += static_cast<double>(Max(KeyEnd(args, b, s.Sq - 1) - KeyBegin(args, b, 0), 0));
    row_keys += 0.5 * (first + last) * static_cast<double>(s.Sq);
  }
  const double flops = 2.0 * static_cast<double>(s.H) * row_keys * (s.D + s.Dv);
  const double kv_bytes = static_cast<double>(s.Hkv) * keys * (s.D + s.Dv) * (args.kv_dtype == KvDtype::kF16 ? 2 : 4);
  const double micros = flops / kFlopsPerMicro + kv_bytes / kBytesPerMicro;
  const int slots = micros < kMinParallelMicros ? 1 : ParallelSlots(plan.n_items);
  // Allocate before anything is written, in this thread, for every slot at once: a failure leaves
  // every output untouched, and the pool threads never allocate.
  const size_t ws = (kt.workspace_floats(s.D, s.Dv) + 15) / 16 * 16;  // keeps each slot 64-byte aligned
  const CallScratch scratch(t_workspace,
                            ws * static_cast<size_t>(slots) + plan.partial_floats * static_cast<size_t>(plan.n_items),
                            kKeptScratchFloatsPerThread * static_cast<size_t>(Threads()));
  float* base = scratch.data();
  float* partials = base + ws * static_cast<size_t>(slots);
  ParallelFor(plan.n_items, slots, [&](int64_t item, int slot) {
    RunItem(plan, item, base + ws * static_cast<size_t>(slot), partials);
  });
  if (plan.n_chunks > 1) {
    ParallelFor(plan.n_tiles, slots == 1 ? 1 : ParallelSlots(plan.n_tiles),
                [&](int64_t tile, int) { MergeTile(plan, tile, partials); });
  }
}

}  // namespace qkv
