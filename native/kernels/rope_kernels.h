// SPDX-License-Identifier: MIT
//
// The rotary-embedding and RMSNorm kernels of one ISA behind one table (native/rope.cc drives
// them token by token; native/dispatch.h hands the table out in the KernelSet of its ISA). Each of
// kernels/scalar.cc, avx2.cc, avx512.cc, neon.cc fills one table from the bodies in
// kernels/rope_rows.h, instantiated on that ISA's vector type. Plain structs and extern tables
// only, as kernels/kernels.h (this header is included by translation units of every ISA).
#pragma once

#include <cstdint>

namespace qkv {

struct RopeKernelTable {
  // Σ x[i]², i < n.
  float (*sum_squares)(const float* x, int64_t n);
  // y[i] = x[i] · inv · (offset + w[i]), i < n (y may be x).
  void (*norm)(const float* x, float* y, int64_t n, float inv, const float* w, float offset);
  // Rotates pairs (y[t], y[t + half]) in place: y1 = x1·c − x2·s, y2 = x2·c + x1·s, t < half.
  void (*rotate_half)(float* y, int64_t half, const float* cos, const float* sin);
  // The same on pairs (y[2t], y[2t + 1]).
  void (*rotate_interleaved)(float* y, int64_t half, const float* cos, const float* sin);
};

extern const RopeKernelTable kRopeScalar;
#if defined(__x86_64__) || defined(_M_X64)
extern const RopeKernelTable kRopeAvx2;
extern const RopeKernelTable kRopeAvx512;
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
extern const RopeKernelTable kRopeNeon;
#endif

}  // namespace qkv
