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
constexpr float kVersion = 1.0f;

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

// One work item: y[i0:i0+mc, j0:j0+nc] over the whole of K. The item packs its A block into abuf
// one KC slice at a time, unless `prepacked` holds every slice already (slice pc at
// prepacked + pc * RoundUp(mc, mr), as PackA lays them out one after another).
void GemmBlock(const GemmKernelTable& kt, const float* x, int64_t K, const float* panels, int64_t N,
               const float* bias, float* y, int64_t i0, int64_t mc, int64_t j0, int64_t nc, float* abuf,
               const float* prepacked) {
  const int mr = kt.mr;
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
      const float* b = panels + (jr / kGemmNR) * K * kGemmNR + pc * kGemmNR;
      const float* bias_j = bias ? bias + jr : nullptr;
      for (int64_t ir = 0; ir < mc; ir += mr) {
        const int64_t rows = std::min<int64_t>(mr, mc - ir);
        kt.micro(kc, a + ir * kc, b, K * kGemmNR, y + (i0 + ir) * N + jr, N, rows, nr, bias_j, accumulate);
      }
    }
  }
}

void WriteHalves(float* h, int64_t v) {
  h[0] = static_cast<float>(v >> 16);
  h[1] = static_cast<float>(v & 0xFFFF);
}

}  // namespace

int64_t PackedWeightFloats(int64_t N, int64_t K) {
  return kGemmHeaderFloats + kGemmAlignSlack + Panels(N) * kGemmNR * K;
}

// Panel jp, row p, column c: B[p, jp*NR + c] = w[(jp*NR + c) * K + p] ('out-in') or w[p * N + jp*NR + c].
// The panels start at the first 64-byte boundary past the header (offset stored in the header), so
// vector loads of B never split cache lines; a copy at another alignment still works, unaligned.
void PackWeight(const float* w, bool out_in, int64_t N, int64_t K, float* packed) {
  const uintptr_t first = reinterpret_cast<uintptr_t>(packed + kGemmHeaderFloats);
  const int64_t offset = kGemmHeaderFloats + static_cast<int64_t>(((64 - first % 64) % 64) / sizeof(float));
  std::fill(packed, packed + kGemmHeaderFloats + kGemmAlignSlack, 0.0f);
  packed[0] = kMagic;
  packed[1] = kVersion;
  packed[2] = static_cast<float>(kGemmNR);
  WriteHalves(packed + 3, N);
  WriteHalves(packed + 5, K);
  packed[7] = static_cast<float>(offset);
  float* panels = packed + offset;
  for (int64_t jp = 0; jp < Panels(N); ++jp) {
    const int64_t j0 = jp * kGemmNR;
    const int64_t cols = std::min<int64_t>(kGemmNR, N - j0);
    float* dst = panels + jp * K * kGemmNR;
    if (out_in) {
      // Each W row (one output column) becomes a strided column of the panel.
      for (int64_t c = 0; c < cols; ++c) {
        const float* src = w + (j0 + c) * K;
        for (int64_t p = 0; p < K; ++p) dst[p * kGemmNR + c] = src[p];
      }
    } else {
      for (int64_t p = 0; p < K; ++p) std::memcpy(dst + p * kGemmNR, w + p * N + j0, sizeof(float) * cols);
    }
    if (cols < kGemmNR) {
      for (int64_t p = 0; p < K; ++p) std::fill(dst + p * kGemmNR + cols, dst + (p + 1) * kGemmNR, 0.0f);
    }
  }
  // Slack after the panels (when the offset is below its maximum) stays zero.
  float* end = packed + PackedWeightFloats(N, K);
  std::fill(panels + Panels(N) * kGemmNR * K, end, 0.0f);
}

const float* PackedWeightPanels(const float* packed, int64_t N, int64_t K) {
  float header[kGemmHeaderFloats];
  std::memcpy(header, packed, sizeof header);  // one read: the checks and the offset see the same values
  float h[7];
  h[0] = kMagic;
  h[1] = kVersion;
  h[2] = static_cast<float>(kGemmNR);
  WriteHalves(h + 3, N);
  WriteHalves(h + 5, K);
  for (int i = 0; i < 7; ++i) {
    if (!(header[i] == h[i])) return nullptr;
  }
  const float offset = header[7];
  if (!(offset >= kGemmHeaderFloats && offset <= kGemmHeaderFloats + kGemmAlignSlack &&
        offset == static_cast<float>(static_cast<int64_t>(offset)))) {
    return nullptr;
  }
  return packed + static_cast<int64_t>(offset);
}

bool PackedWeightMatches(const float* packed, int64_t N, int64_t K) { return PackedWeightPanels(packed, N, K) != nullptr; }

void GemmPackedWith(const GemmKernelTable& kt, const float* x, int64_t M, int64_t K, const float* packed, int64_t N,
                    const float* bias, float* y) {
  // Clamped, for a caller that did not check the header: an offset outside [8, 24) would move
  // every read past the panels.
  const float raw_offset = packed[7];
  const int64_t offset = raw_offset >= kGemmHeaderFloats && raw_offset <= kGemmHeaderFloats + kGemmAlignSlack - 1
                             ? static_cast<int64_t>(raw_offset)
                             : kGemmHeaderFloats;
  GemmPanelsWith(kt, x, M, K, packed + offset, N, bias, y);
}

void GemmPanelsWith(const GemmKernelTable& kt, const float* x, int64_t M, int64_t K, const float* panels, int64_t N,
                    const float* bias, float* y) {
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
  const int64_t stride = share_a ? RoundUp(RoundUp(rows, kt.mr) * K, 16)
                                 : RoundUp(mc * std::min(kKC, K), 16);  // slots stay 64-byte aligned
  const CallScratch scratch(t_workspace, static_cast<size_t>(share_a ? stride : stride * slots),
                            kKeptScratchFloatsPerThread * static_cast<size_t>(Threads()));
  float* abuf = scratch.data();
  if (share_a) {
    for (int64_t pc = 0; pc < K; pc += kKC) {
      PackA(x, K, 0, rows, pc, std::min(kKC, K - pc), kt.mr, abuf + pc * RoundUp(rows, kt.mr));
    }
  }
  // M-blocks inner so that items claimed one after another share their B columns.
  ParallelFor(items, slots, [&](int64_t item, int slot) {
    const int64_t ic = (item % m_count) * mc, jc = (item / m_count) * nc;
    GemmBlock(kt, x, K, panels, N, bias, y, ic, std::min(mc, M - ic), jc, std::min(nc, N - jc),
              share_a ? nullptr : abuf + stride * slot, share_a ? abuf : nullptr);
  });
}

void GemmPacked(const float* x, int64_t M, int64_t K, const float* packed, int64_t N, const float* bias, float* y) {
  GemmPackedWith(Kernels().gemm, x, M, K, packed, N, bias, y);
}

}  // namespace qkv
