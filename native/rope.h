// SPDX-License-Identifier: MIT
//
// Rotary position embeddings and the RMSNorm of queries and keys (lib/plan.ts RopePlan): for each
// token (b, s) of x, whose H vectors of D floats sit at b·sb + s·ss + h·sh, first the norm (each
// head's D values, or the token's H·D values together), then the rotation of the first 2·half
// values of each head by the angles positions[b·S + s]·inv_freq[t], computed in double; cos and
// sin (times attention_factor) are rounded to float once per token and shared by its heads.
#pragma once

#include <cstdint>

namespace qkv {

enum class RopeNormSpan : int32_t { kNone = 0, kHead = 1, kAll = 2 };

struct RopeArgs {
  const float* x;
  float* out;                // x itself (in place) or disjoint from it
  int64_t B, S, H, D;
  int64_t sb, ss, sh;        // element strides of (b, s, h)
  const int32_t* positions;  // [B·S], or null: no rotation
  const double* inv_freq;    // [half]
  int64_t half;              // rotaryDim / 2 (0 without rotation)
  bool interleaved;
  float attention_factor;
  const float* norm;         // [D] (kHead) or [H·D] (kAll), or null
  RopeNormSpan norm_span;
  float eps, offset;
};

// Runs on the calling thread and the pool (work split by tokens). May throw std::bad_alloc.
void RunRope(const RopeArgs& a);

}  // namespace qkv
