// SPDX-License-Identifier: MIT
//
// The RoPE / qk-norm driver (native/rope.h): tokens split over the pool in blocks; per token the
// angles in double, then the ISA's kernels (kernels/rope_kernels.h) on each head.
#include "rope.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "dispatch.h"
#include "kernels/rope_kernels.h"
#include "thread_pool.h"

namespace qkv {
namespace {

// Below this many floats a call runs on the calling thread: waking the pool costs more than the
// pass (a decode step's q is H·D = 4096 floats).
constexpr int64_t kMinParallelFloats = int64_t{1} << 16;
constexpr int64_t kTokensPerItem = 16;

void RopeToken(const RopeArgs& a, const RopeKernelTable& k, int64_t b, int64_t s, float* cos, float* sin) {
  const int64_t token = b * a.sb + s * a.ss;
  if (a.half > 0) {
    const double pos = static_cast<double>(a.positions[b * a.S + s]);
    for (int64_t t = 0; t < a.half; ++t) {
      const double angle = pos * a.inv_freq[t];
      cos[t] = static_cast<float>(std::cos(angle) * a.attention_factor);
      sin[t] = static_cast<float>(std::sin(angle) * a.attention_factor);
    }
  }
  float token_inv = 0;
  if (a.norm_span == RopeNormSpan::kAll) {
    const int64_t n = a.H * a.D;  // adjacent heads (sh == D, checked by the binding)
    token_inv = 1.0f / std::sqrt(k.sum_squares(a.x + token, n) / static_cast<float>(n) + a.eps);
  }
  for (int64_t h = 0; h < a.H; ++h) {
    const float* src = a.x + token + h * a.sh;
    float* dst = a.out + token + h * a.sh;
    if (a.norm_span == RopeNormSpan::kHead) {
      const float inv = 1.0f / std::sqrt(k.sum_squares(src, a.D) / static_cast<float>(a.D) + a.eps);
      k.norm(src, dst, a.D, inv, a.norm, a.offset);
    } else if (a.norm_span == RopeNormSpan::kAll) {
      k.norm(src, dst, a.D, token_inv, a.norm + h * a.D, a.offset);
    } else if (dst != src) {
      std::memcpy(dst, src, static_cast<size_t>(a.D) * sizeof(float));
    }
    if (a.half > 0) (a.interleaved ? k.rotate_interleaved : k.rotate_half)(dst, a.half, cos, sin);
  }
}

}  // namespace

void RunRope(const RopeArgs& a) {
  const RopeKernelTable& k = Kernels().rope;
  const int64_t tokens = a.B * a.S;
  const int64_t items = (tokens + kTokensPerItem - 1) / kTokensPerItem;
  // Tokens run in parallel only when no two of them can share memory: the 'bshd' and 'bhsd'
  // layouts (or sparser). Any other strides (the binding accepts them as long as every vector
  // stays inside x) run on one thread, so overlapping vectors are at worst rewritten in order.
  const bool bshd = a.sh >= a.D && a.ss >= a.H * a.sh && a.sb >= a.S * a.ss;
  const bool bhsd = a.ss >= a.D && a.sh >= a.S * a.ss && a.sb >= a.H * a.sh;
  const bool disjoint = (a.H == 1 || a.sh >= a.D) && (bshd || bhsd);
  const int slots = !disjoint || tokens * a.H * a.D < kMinParallelFloats ? 1 : ParallelSlots(items);
  std::vector<float> angles(static_cast<size_t>(slots) * 2 * static_cast<size_t>(std::max<int64_t>(a.half, 1)));
  ParallelFor(items, slots, [&](int64_t item, int slot) {
    float* cos = angles.data() + static_cast<size_t>(slot) * 2 * static_cast<size_t>(std::max<int64_t>(a.half, 1));
    float* sin = cos + std::max<int64_t>(a.half, 1);
    const int64_t end = std::min(tokens, (item + 1) * kTokensPerItem);
    for (int64_t t = item * kTokensPerItem; t < end; ++t) RopeToken(a, k, t / a.S, t % a.S, cos, sin);
  });
}

}  // namespace qkv
