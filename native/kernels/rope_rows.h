// SPDX-License-Identifier: MIT
//
// Bodies of the RopeKernelTable (kernels/rope_kernels.h), written once on the vector type V of
// each ISA (the struct kernels/avx2.cc etc. define for the attention kernels: W lanes, load,
// store, mul, sub, fmadd, set1, zero, sum). Instantiated only with a V from an anonymous
// namespace, so every instantiation stays inside its own ISA's translation unit.
#pragma once

#include <cstdint>

#include "kernels/rope_kernels.h"

namespace qkv {

template <class V>
float RopeSumSquares(const float* x, int64_t n) {
  typename V::T a0 = V::zero(), a1 = V::zero();
  int64_t i = 0;
  for (; i + 2 * V::W <= n; i += 2 * V::W) {
    const typename V::T x0 = V::load(x + i), x1 = V::load(x + i + V::W);
    a0 = V::fmadd(a0, x0, x0);
    a1 = V::fmadd(a1, x1, x1);
  }
  for (; i + V::W <= n; i += V::W) {
    const typename V::T x0 = V::load(x + i);
    a0 = V::fmadd(a0, x0, x0);
  }
  float s = V::sum(V::add(a0, a1));
  for (; i < n; ++i) s += x[i] * x[i];
  return s;
}

template <class V>
void RopeNorm(const float* x, float* y, int64_t n, float inv, const float* w, float offset) {
  const typename V::T vinv = V::set1(inv), voff = V::set1(offset);
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) V::store(y + i, V::mul(V::mul(V::load(x + i), vinv), V::add(voff, V::load(w + i))));
  for (; i < n; ++i) y[i] = x[i] * inv * (offset + w[i]);
}

template <class V>
void RopeRotateHalf(float* y, int64_t half, const float* cos, const float* sin) {
  float* y2 = y + half;
  int64_t t = 0;
  for (; t + V::W <= half; t += V::W) {
    const typename V::T c = V::load(cos + t), s = V::load(sin + t);
    const typename V::T x1 = V::load(y + t), x2 = V::load(y2 + t);
    V::store(y + t, V::sub(V::mul(x1, c), V::mul(x2, s)));
    V::store(y2 + t, V::fmadd(V::mul(x2, c), x1, s));
  }
  for (; t < half; ++t) {
    const float x1 = y[t], x2 = y2[t];
    y[t] = x1 * cos[t] - x2 * sin[t];
    y2[t] = x2 * cos[t] + x1 * sin[t];
  }
}

// Adjacent pairs: a plain loop the compiler vectorizes with the ISA's shuffles where it can
// (GPT-J and RoFormer use this style; the 'half' style above is the common one).
template <class V>
void RopeRotateInterleaved(float* y, int64_t half, const float* cos, const float* sin) {
  for (int64_t t = 0; t < half; ++t) {
    const float x1 = y[2 * t], x2 = y[2 * t + 1];
    y[2 * t] = x1 * cos[t] - x2 * sin[t];
    y[2 * t + 1] = x2 * cos[t] + x1 * sin[t];
  }
}

template <class V>
constexpr RopeKernelTable RopeTableOf() {
  return {&RopeSumSquares<V>, &RopeNorm<V>, &RopeRotateHalf<V>, &RopeRotateInterleaved<V>};
}

}  // namespace qkv
