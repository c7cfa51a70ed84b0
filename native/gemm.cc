// SPDX-License-Identifier: MIT
//
// Packed SGEMM driver (GotoBLAS / BLIS loop nest); baseline x86-64 code, no intrinsics. The ISA
// lives in the micro-kernel table (native/kernels/gemm_*.cc).
//
//   y[M, N] = x[M, K] . B[K, N] + bias[N]        B = W^T ('out-in') or W ('in-out'), packed once
//
// Loop nest (one work item = one mc x nc block of y; items are independent and run through the
// process-wide pool, thread_pool.h; the K loop stays inside an item because it accumulates into y):
//   for jc in N step nc:                       work items: (ic, jc), ic inner
//     for ic in M step mc:
//       for pc in K step KC:                   first pc writes y = acc + bias, later ones add
//         pack x[ic:ic+MC, pc:pc+KC] -> MR-row micro-panels (thread-local buffer, ~L2)
//         for jr in jc..jc+NC step NR*panels:  B micro-panels (KC x NR each, from the packed weight) ~L1
//           for ir in 0..MC step MR:           A micro-panel streams from L2
//             micro(KC, A_ir, B_jr, y tile)
// Sizes for 48 KiB L1d / 2 MiB L2 (tuned on Sapphire Rapids with test/native/gemm_run.sh --bench):
// a KC x NR B slice is 32 KiB at KC = 512 (L1), an MC x KC A block 384 KiB at MC = 192 (L2), and
// the KC x NC B block of one item 2 MiB at NC = 1024.
//
// Threads: M is cut into equal mc <= MC row blocks (a multiple of MR); when that gives fewer than
// two items per thread (small M: decode-time projections), N is cut finer than NC, in whole NR
// panels, until it does. No item splits K, and every element of y goes through the same
// micro-kernel calls over the same KC slices whatever the blocking, so y is bitwise identical
// for any thread count. Each slot packs its A blocks into its own workspace, reserved by the
// calling thread before any item runs.
#include "gemm.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <new>

#include "dispatch.h"
#include "kernels/gemm_kernels.h"
#include "thread_pool.h"
#include "util.h"

namespace qkv {

namespace {

constexpr int64_t kKC = 512;   // depth of one packed A block / B slice
constexpr int64_t kMC = 192;   // rows of one packed A block (a multiple of every MR: 2, 6; 4 and 8 too)
constexpr int64_t kNC = 1024;  // columns of one work item (a multiple of NR)
static_assert(kNC % kGemmNR == 0, "NC must be a multiple of NR");
static_assert(kMC % 24 == 0, "MC must be a multiple of every MR");

constexpr float kMagic = 29537.0f;  // "this is a qkv packed weight"; exact in float

// Header slot 1: the panel format, 1 + the WeightDtype code (1 = float panels, as before halves).
constexpr float FormatOf(WeightDtype dtype) { return 1.0f + static_cast<float>(static_cast<int32_t>(dtype)); }

// Below this many flops (2 M N K) a call stays on the calling thread: waking a pool thread costs
// more than it saves.
constexpr double kMinParallelFlops = 2e6;

int64_t Panels(int64_t N) { return CeilDiv(N, kGemmNR); }

// Packs rows [i0, i0 + mc) and columns [k0, k0 + kc) of x into micro-panels of mr rows:
// a[(ir / mr) * kc * mr + p * mr + r] = x[i0 + ir + r, k0 + p], rows past mc are zero.
void PackA(const float* x, int64_t K, int64_t i0, int64_t mc, int64_t k0, int64_t kc, int mr, float* a) {
  for (int64_t ir = 0; ir < mc; ir += mr) {
    const int64_t rows = std::min<int64_t>(mr, mc - ir);
    for (int64_t r = 0; r < rows; ++r) {
      const float* src = x + (i0 + ir + r) * K + k0;
      float* dst = a + r;
      for (int64_t p = 0; p < kc; ++p) dst[p * mr] = src[p];
    }
    for (int64_t r = rows; r < mr; ++r) {
      for (int64_t p = 0; p < kc; ++p) a[p * mr + r] = 0.0f;
    }
    a += kc * mr;
  }
}

// The calling thread's A-block workspaces (one per slot, kMC x kKC floats each at most, or one
// shared block of up to kMC x K floats), 64-byte aligned, reserved before anything is written.
// Kept between calls up to kKeptScratchFloatsPerThread per compute thread (util.h); a call that
// needs more (a shared block with a huge K) uses a buffer of its own, freed when it returns.
thread_local AlignedBuffer t_workspace;

// The micro-kernel an item runs over panels of element type E, and (half panels only) the
// widening of a whole B slice, for blocks whose row tiles all read that slice.
template <class E>
struct PanelKernel {
  void (*micro)(int64_t kc, const float* a, const E* b, int64_t b_stride, float* c, int64_t ldc, int64_t mr,
                int64_t nr, const float* bias, int accumulate);
  GemmWidenFn widen;  // null for float panels
};

// One work item: y[i0:i0+mc, j0:j0+nc] over the whole of K. The item packs its A block into abuf
// one KC slice at a time, unless `prepacked` holds every slice already (slice pc at
// prepacked + pc * RoundUp(mc, mr), as PackA lays them out one after another).
// Half panels: a block of one row tile (decode) runs the half micro-kernel, which widens B in
// register and so streams half the bytes; a block of several row tiles widens each KC x NR slice
// of B once into `widened` (kKC * NR * kt.panels floats) and runs the float micro-kernel on it,
// sparing every row tile after the first the widening (the same values, the same FMAs: the same y).
// `abuf` holds mr x K floats when mc <= mr (the whole A block), else one mc x KC slice.
template <class E>
void GemmBlock(const GemmKernelTable& kt, const PanelKernel<E>& pk, const float* x, int64_t K, const E* panels,
               int64_t N, const float* bias, float* y, int64_t i0, int64_t mc, int64_t j0, int64_t nc, float* abuf,
               const float* prepacked, float* widened) {
  const int mr = kt.mr;
  if (mc <= mr) {
    // One row tile (decode-time M): B is read once and never reused, so the item runs each tile's
    // KC slices back to back, reading its panels from end to end as two long sequential streams
    // (tiles outer, slices inner) rather than hopping between all its tiles' panels every slice,
    // which left the prefetchers short of the read bandwidth. The micro-kernel calls, and so y,
    // are the same as in the loop below; only their order differs. The whole A block is packed
    // first (mr x K floats).
    const float* a = prepacked;
    if (a == nullptr) {
      for (int64_t pc = 0; pc < K; pc += kKC) PackA(x, K, i0, mc, pc, std::min(kKC, K - pc), mr, abuf + pc * mr);
      a = abuf;
    }
    const int64_t tile_cols = kGemmNR * kt.panels;
    for (int64_t jr = j0; jr < j0 + nc; jr += tile_cols) {
      const int64_t nr = std::min(tile_cols, std::min(j0 + nc, N) - jr);
      const E* b = panels + (jr / kGemmNR) * K * kGemmNR;
      const float* bias_j = bias ? bias + jr : nullptr;
      for (int64_t pc = 0; pc < K; pc += kKC) {
        pk.micro(std::min(kKC, K - pc), a + pc * mr, b + pc * kGemmNR, K * kGemmNR, y + i0 * N + jr, N, mc, nr,
                 bias_j, pc > 0);
      }
    }
    return;
  }
  const bool widen_slices = pk.widen != nullptr;
  for (int64_t pc = 0; pc < K; pc += kKC) {
    const int64_t kc = std::min(kKC, K - pc);
    const int accumulate = pc > 0;
    const float* a = abuf;
    if (prepacked != nullptr) {
      a = prepacked + pc * RoundUp(mc, mr);
    } else {
      PackA(x, K, i0, mc, pc, kc, mr, abuf);
    }
    const int64_t tile_cols = kGemmNR * kt.panels;
    for (int64_t jr = j0; jr < j0 + nc; jr += tile_cols) {
      const int64_t nr = std::min(tile_cols, std::min(j0 + nc, N) - jr);
      const E* b = panels + (jr / kGemmNR) * K * kGemmNR + pc * kGemmNR;
      const float* bias_j = bias ? bias + jr : nullptr;
      if (widen_slices) {
        // Only the panels the tile reads (nr columns): the last panel of an odd count may not exist.
        for (int64_t q = 0; q < CeilDiv(nr, kGemmNR); ++q) {
          pk.widen(reinterpret_cast<const uint16_t*>(b) + q * K * kGemmNR, kc * kGemmNR, widened + q * kc * kGemmNR);
        }
        for (int64_t ir = 0; ir < mc; ir += mr) {
          const int64_t rows = std::min<int64_t>(mr, mc - ir);
          kt.micro(kc, a + ir * kc, widened, kc * kGemmNR, y + (i0 + ir) * N + jr, N, rows, nr, bias_j, accumulate);
        }
        continue;
      }
      for (int64_t ir = 0; ir < mc; ir += mr) {
        const int64_t rows = std::min<int64_t>(mr, mc - ir);
        pk.micro(kc, a + ir * kc, b, K * kGemmNR, y + (i0 + ir) * N + jr, N, rows, nr, bias_j, accumulate);
      }
    }
  }
}

// The driver for panels of element type E (float, or uint16_t halves with pk.widen set).
template <class E>
void GemmDriver(const GemmKernelTable& kt, const PanelKernel<E>& pk, const float* x, int64_t M, int64_t K,
                const E* panels, int64_t N, const float* bias, float* y) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {  // empty sum: y = bias (or 0)
    for (int64_t i = 0; i < M; ++i) {
      for (int64_t j = 0; j < N; ++j) y[i * N + j] = bias ? bias[j] : 0.0f;
    }
    return;
  }
  const int64_t mc_max = kMC / kt.mr * kt.mr;
  const int64_t m_blocks = CeilDiv(M, mc_max);
  const int64_t mc = RoundUp(CeilDiv(M, m_blocks), kt.mr);  // equal blocks: even shares per thread
  const int threads = 2.0 * M * N * K < kMinParallelFlops ? 1 : Threads();
  int64_t n_blocks = CeilDiv(N, kNC);
  if (threads > 1 && m_blocks * n_blocks < 2 * threads) {
    n_blocks = std::min(Panels(N), CeilDiv(2 * threads, m_blocks));
  }
  const int64_t m_count = CeilDiv(M, mc);  // == m_blocks but for rounding of large M
  const int64_t nc = RoundUp(CeilDiv(N, n_blocks), kGemmNR * kt.panels);  // whole register tiles
  n_blocks = CeilDiv(N, nc);
  const int64_t items = m_count * n_blocks;
  const int slots = threads == 1 ? 1 : ParallelSlots(items);
  // One A block shared by several items (small M, N cut up for the threads): pack all of it once,
  // here, rather than once per item (each item would repack the same rows; measured on the
  // BERT-base layer's 128 x 768 x 768 projections, two threads). Otherwise each slot packs its
  // own KC slices.
  const bool share_a = m_count == 1 && items > 1;
  const int64_t rows = std::min(mc, M);  // the shared block's rows, as GemmBlock gets them
  // A single row tile packs its whole A block (GemmBlock), larger blocks one KC slice at a time.
  const int64_t stride = share_a || mc <= kt.mr ? RoundUp(RoundUp(rows, kt.mr) * K, 16)
                                                : RoundUp(mc * std::min(kKC, K), 16);  // slots stay 64-byte aligned
  const int64_t a_floats = share_a ? stride : stride * slots;
  // Half panels, blocks of several row tiles: each slot's widened B slice, after the A blocks.
  const int64_t widen_stride = pk.widen != nullptr && mc > kt.mr ? RoundUp(kKC * kGemmNR * kt.panels, 16) : 0;
  const CallScratch scratch(t_workspace, static_cast<size_t>(a_floats + widen_stride * slots),
                            kKeptScratchFloatsPerThread * static_cast<size_t>(Threads()));
  float* abuf = scratch.data();
  float* widened = abuf + a_floats;
  if (share_a) {
    for (int64_t pc = 0; pc < K; pc += kKC) {
      PackA(x, K, 0, rows, pc, std::min(kKC, K - pc), kt.mr, abuf + pc * RoundUp(rows, kt.mr));
    }
  }
  // M-blocks inner so that items claimed one after another share their B columns.
  ParallelFor(items, slots, [&](int64_t item, int slot) {
    const int64_t ic = (item % m_count) * mc, jc = (item / m_count) * nc;
    GemmBlock(kt, pk, x, K, panels, N, bias, y, ic, std::min(mc, M - ic), jc, std::min(nc, N - jc),
              share_a ? nullptr : abuf + stride * slot, share_a ? abuf : nullptr, widened + widen_stride * slot);
  });
}

void WriteHalves(float* h, int64_t v) {
  h[0] = static_cast<float>(v >> 16);
  h[1] = static_cast<float>(v & 0xFFFF);
}

}  // namespace

int64_t PackedWeightFloats(int64_t N, int64_t K, WeightDtype dtype) {
  const int64_t elements = Panels(N) * kGemmNR * K;  // even: NR is
  return kGemmHeaderFloats + kGemmAlignSlack + (dtype == WeightDtype::kF32 ? elements : elements / 2);
}

namespace {

// The header, and the offset of the panels (in floats from `packed`): the first 64-byte boundary
// past the header, so vector loads of B never split cache lines; a copy at another alignment still
// works, unaligned.
int64_t WriteHeader(float* packed, WeightDtype dtype, int64_t N, int64_t K) {
  const uintptr_t first = reinterpret_cast<uintptr_t>(packed + kGemmHeaderFloats);
  const int64_t offset = kGemmHeaderFloats + static_cast<int64_t>(((64 - first % 64) % 64) / sizeof(float));
  std::fill(packed, packed + kGemmHeaderFloats + kGemmAlignSlack, 0.0f);
  packed[0] = kMagic;
  packed[1] = FormatOf(dtype);
  packed[2] = static_cast<float>(kGemmNR);
  WriteHalves(packed + 3, N);
  WriteHalves(packed + 5, K);
  packed[7] = static_cast<float>(offset);
  return offset;
}

// Panel jp, row p, column c: B[p, jp*NR + c] = w[(jp*NR + c) * K + p] ('out-in') or w[p * N + jp*NR + c];
// columns past N are zero (for halves too: +0 is the zero bit pattern of both).
template <class E>
void PackPanels(const E* w, bool out_in, int64_t N, int64_t K, E* panels) {
  for (int64_t jp = 0; jp < Panels(N); ++jp) {
    const int64_t j0 = jp * kGemmNR;
    const int64_t cols = std::min<int64_t>(kGemmNR, N - j0);
    E* dst = panels + jp * K * kGemmNR;
    if (out_in) {
      // Each W row (one output column) becomes a strided column of the panel.
      for (int64_t c = 0; c < cols; ++c) {
        const E* src = w + (j0 + c) * K;
        for (int64_t p = 0; p < K; ++p) dst[p * kGemmNR + c] = src[p];
      }
    } else {
      for (int64_t p = 0; p < K; ++p) std::memcpy(dst + p * kGemmNR, w + p * N + j0, sizeof(E) * cols);
    }
    if (cols < kGemmNR) {
      for (int64_t p = 0; p < K; ++p) std::fill(dst + p * kGemmNR + cols, dst + (p + 1) * kGemmNR, E{0});
    }
  }
}

}  // namespace

void PackWeight(const float* w, bool out_in, int64_t N, int64_t K, float* packed) {
  const int64_t offset = WriteHeader(packed, WeightDtype::kF32, N, K);
  float* panels = packed + offset;
  PackPanels(w, out_in, N, K, panels);
  // Slack after the panels (when the offset is below its maximum) stays zero.
  std::fill(panels + Panels(N) * kGemmNR * K, packed + PackedWeightFloats(N, K), 0.0f);
}

void PackHalfWeight(const uint16_t* w, WeightDtype dtype, bool out_in, int64_t N, int64_t K, float* packed) {
  const int64_t offset = WriteHeader(packed, dtype, N, K);
  const int64_t floats = Panels(N) * kGemmNR * K / 2;
  // The panels are uint16_t elements inside the float buffer: only uint16_t pointers ever touch
  // that region (the header, read as floats, is disjoint from it).
  uint16_t* panels = reinterpret_cast<uint16_t*>(packed + offset);
  PackPanels(w, out_in, N, K, panels);
  std::fill(packed + offset + floats, packed + PackedWeightFloats(N, K, dtype), 0.0f);
}

PackedPanels ReadPackedHeader(const float* packed, int64_t N, int64_t K) {
  float header[kGemmHeaderFloats];
  std::memcpy(header, packed, sizeof header);  // one read: the checks and the offset see the same values
  const PackedPanels invalid{nullptr, WeightDtype::kF32};
  WeightDtype dtype;
  if (header[1] == FormatOf(WeightDtype::kF32)) {
    dtype = WeightDtype::kF32;
  } else if (header[1] == FormatOf(WeightDtype::kBF16)) {
    dtype = WeightDtype::kBF16;
  } else if (header[1] == FormatOf(WeightDtype::kF16)) {
    dtype = WeightDtype::kF16;
  } else {
    return invalid;
  }
  float h[7];
  h[0] = kMagic;
  h[1] = FormatOf(dtype);
  h[2] = static_cast<float>(kGemmNR);
  WriteHalves(h + 3, N);
  WriteHalves(h + 5, K);
  for (int i = 0; i < 7; ++i) {
    if (!(header[i] == h[i])) return invalid;
  }
  const float offset = header[7];
  if (!(offset >= kGemmHeaderFloats && offset <= kGemmHeaderFloats + kGemmAlignSlack &&
        offset == static_cast<float>(static_cast<int64_t>(offset)))) {
    return invalid;
  }
  return {packed + static_cast<int64_t>(offset), dtype};
}

bool PackedWeightMatches(const float* packed, int64_t N, int64_t K) { return ReadPackedHeader(packed, N, K).data != nullptr; }

void GemmPackedWith(const GemmKernelTable& kt, const float* x, int64_t M, int64_t K, const float* packed, int64_t N,
                    const float* bias, float* y) {
  // Clamped, for a caller that did not check the header: an offset outside [8, 24) would move
  // every read past the panels, and an unknown format is read as float panels.
  const float raw_offset = packed[7];
  const int64_t offset = raw_offset >= kGemmHeaderFloats && raw_offset <= kGemmHeaderFloats + kGemmAlignSlack - 1
                             ? static_cast<int64_t>(raw_offset)
                             : kGemmHeaderFloats;
  const WeightDtype dtype = packed[1] == FormatOf(WeightDtype::kBF16)  ? WeightDtype::kBF16
                            : packed[1] == FormatOf(WeightDtype::kF16) ? WeightDtype::kF16
                                                                       : WeightDtype::kF32;
  GemmPackedPanelsWith(kt, x, M, K, PackedPanels{packed + offset, dtype}, N, bias, y);
}

void GemmPanelsWith(const GemmKernelTable& kt, const float* x, int64_t M, int64_t K, const float* panels, int64_t N,
                    const float* bias, float* y) {
  GemmDriver(kt, PanelKernel<float>{kt.micro, nullptr}, x, M, K, panels, N, bias, y);
}

void GemmHalfPanelsWith(const GemmKernelTable& kt, WeightDtype dtype, const float* x, int64_t M, int64_t K,
                        const uint16_t* panels, int64_t N, const float* bias, float* y) {
  const PanelKernel<uint16_t> pk = dtype == WeightDtype::kBF16 ? PanelKernel<uint16_t>{kt.micro_bf16, kt.widen_bf16}
                                                               : PanelKernel<uint16_t>{kt.micro_f16, kt.widen_f16};
  GemmDriver(kt, pk, x, M, K, panels, N, bias, y);
}

void GemmPackedPanelsWith(const GemmKernelTable& kt, const float* x, int64_t M, int64_t K, const PackedPanels& panels,
                          int64_t N, const float* bias, float* y) {
  if (panels.dtype == WeightDtype::kF32) {
    GemmPanelsWith(kt, x, M, K, static_cast<const float*>(panels.data), N, bias, y);
  } else {
    GemmHalfPanelsWith(kt, panels.dtype, x, M, K, static_cast<const uint16_t*>(panels.data), N, bias, y);
  }
}

void GemmPacked(const float* x, int64_t M, int64_t K, const float* packed, int64_t N, const float* bias, float* y) {
  GemmPackedWith(Kernels().gemm, x, M, K, packed, N, bias, y);
}

}  // namespace qkv
