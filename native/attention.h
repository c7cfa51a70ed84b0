// Scaled dot-product attention: the plain C++ interface between the binding and the kernels.
// No N-API types here; everything is raw pointers whose lengths the binding already checked.
//
// Shapes (DESIGN.md): B batch, H query heads, Hkv key/value heads (H % Hkv == 0), Sq query length,
// Sk key length, D query/key head size, Dv value head size.
//   layout BHSD: q [B,H,Sq,D]  k [B,Hkv,Sk,D]  v [B,Hkv,Sk,Dv]  out [B,H,Sq,Dv]
//   layout BSHD: q [B,Sq,H,D]  k [B,Sk,Hkv,D]  v [B,Sk,Hkv,Dv]  out [B,Sq,H,Dv]
//   weights / scores (optional): [B,H,Sq,Sk] in both layouts.
//
// Per score (DESIGN.md "Positions and score modifiers"): s = scale * (q . k); if softcap > 0,
// s = softcap * tanh(s / softcap); with ALiBi, s -= slope_h * |p(i) - j|; then the mask (float:
// added, -inf blocks; bool: 0 blocks), causal, the window and kv_lengths block; softmax over the
// visible keys and the head's sink; out = sum_j p_j v_j. A row whose every key is blocked yields
// zeros in out and weights. Query row i of batch b sits at position p(i) = offsets[b] + i; key j
// at position j.
// Layout, KvDtype and MaskKind are the binding ABI's codes (native/abi.h).
#pragma once

#include <cstdint>

#include "abi.h"

namespace qkv {

struct AttnShape {
  int64_t B, H, Hkv, Sq, Sk, D, Dv;
};

// Element strides of one tensor over (batch, head, sequence); the last dim is contiguous.
struct TensorStrides {
  int64_t b, h, s;
};

// A [B, heads, seq, width] tensor (BHSD) or [B, seq, heads, width] tensor (BSHD).
inline TensorStrides StridesFor(Layout layout, int64_t heads, int64_t seq, int64_t width) {
  if (layout == Layout::kBHSD) return {heads * seq * width, seq * width, width};
  return {seq * heads * width, width, heads * width};
}

struct AttnArgs {
  AttnShape shape;
  Layout layout;
  const float* q;
  KvDtype kv_dtype;  // element type of k and v
  const void* k;     // const float* or const uint16_t* (binary16) per kv_dtype
  const void* v;
  float* out;
  float scale;
  float softcap;  // 0 = off

  // Positions: query row i of batch b sits at p(i) = offsets[b] + i (lib/sdpa.ts resolves
  // causal's alignment, queryOffset and the non-causal default into offsets). Causal: key j is
  // visible iff j <= p(i). Window: iff p(i) - window_left <= j <= p(i) + window_right, a side of
  // kWindowUnbounded (-1) having no bound.
  bool causal;
  int64_t window_left = kWindowUnbounded, window_right = kWindowUnbounded;
  const int32_t* offsets;     // [B]; read only when causal, windowed or with ALiBi (then non-null)
  const int32_t* kv_lengths;  // [B] with values in [0, Sk], or null: keys j >= kv_lengths[b] blocked
  const float* sinks = nullptr;  // [H] logits that join each row's softmax and carry no value, or null
  const float* alibi = nullptr;  // [H] slopes: s -= alibi[h] * |p(i) - j|, or null

  // Mask broadcast over (b, h, i, j): element (b,h,i,j) at mask[b*ms[0] + h*ms[1] + i*ms[2] + j*ms[3]],
  // a stride of 0 meaning that dim is broadcast. Float: added to the score (-inf blocks).
  // Bool (uint8): 0 blocks, anything else lets the key through.
  MaskKind mask_kind;
  const void* mask;
  int64_t mask_strides[4];

  float* weights;  // [B,H,Sq,Sk] probabilities, or null
  float* scores;   // [B,H,Sq,Sk] what enters the softmax (-inf where blocked), or null
  float* lse = nullptr;  // [B,H,Sq] log(e^sink + sum of e^s over the visible keys) per row, or null
};

// Runs the whole call, its tiles split over the calling thread and the pool (native/thread_pool.h);
// returns when it is done. Writes out (and weights/scores when given). Results do not depend on the
// thread count. Throws std::bad_alloc if its O(tile) workspace cannot be allocated, before writing
// anything.
void AttentionForward(const AttnArgs& args);

}  // namespace qkv
