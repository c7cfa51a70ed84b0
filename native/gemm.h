// SPDX-License-Identifier: MIT
//
// Packed SGEMM for the projections: weights are packed once into NR-wide column panels, then
// multiplied many times.
//   y[M, N] = x[M, K] . W^T + bias    weightLayout 'out-in' (W is [N, K], PyTorch nn.Linear)
//   y[M, N] = x[M, K] . W   + bias    weightLayout 'in-out' (W is [K, N], GPT-2 Conv1D)
// x and y are dense row-major. bias [N] is optional and fused into the write-back. fp32 accumulation.
// Plain C++ (no Napi): native/gemm_binding.cc is the N-API side.
//
// Packed buffer (PackedWeightFloats(N, K, dtype) floats):
//   [0, 8)    header: magic, format (1 float panels, 2 bfloat16, 3 float16: 1 + the WeightDtype
//             code), NR, N and K (each as two exact 16-bit halves), panel offset
//   [8, off)  zero padding, off in [8, 24): the panels start on a 64-byte boundary of the memory
//             PackWeight wrote (a copy elsewhere still computes correctly, just with unaligned loads)
//   then ceil(N / NR) panels of K x NR floats: panel jp holds columns [jp*NR, jp*NR + NR) of B
//   (B = W^T for 'out-in', W for 'in-out'), row p of the panel at offset p * NR; columns past N are 0.
//   A half weight (bfloat16 / float16 bits) has the same panels with uint16_t elements, two to a
//   float of the buffer: half the memory, and half the bytes a decode step streams. They are
//   widened to float only inside the micro-kernels (or, for a block with several row tiles, one
//   KC x NR slice at a time into the worker's scratch), so the result is bitwise that of the float
//   weight holding the widened values.
// NR is the same (16) for every ISA, so a buffer packed under avx2 also runs under scalar / neon.
#pragma once

#include <cstdint>

#include "abi.h"

namespace qkv {

struct GemmKernelTable;

constexpr int64_t kGemmHeaderFloats = 8;  // header floats before the alignment padding
constexpr int64_t kGemmAlignSlack = 16;   // up to 15 floats of padding (+1 spare) to align the panels

// Floats needed for a packed [N, K] weight of this dtype, header included.
int64_t PackedWeightFloats(int64_t N, int64_t K, WeightDtype dtype = WeightDtype::kF32);

// Packs w ('out-in': [N, K]; otherwise [K, N]) into `packed` (PackedWeightFloats(N, K) floats).
void PackWeight(const float* w, bool out_in, int64_t N, int64_t K, float* packed);

// Packs a half weight (bfloat16 or float16 bits; dtype kBF16 or kF16), laid out as PackWeight's w,
// into `packed` (PackedWeightFloats(N, K, dtype) floats). The bits are copied, never converted.
void PackHalfWeight(const uint16_t* w, WeightDtype dtype, bool out_in, int64_t N, int64_t K, float* packed);

// What a packed weight's header says: where its panels start and their element type.
struct PackedPanels {
  const void* data;   // packed + the header's panel offset; null when the header is not valid
  WeightDtype dtype;  // float panels (const float*) or half ones (const uint16_t*)
};

// The panels of `packed` (at least PackedWeightFloats(N, K, kBF16) floats, the smallest form),
// or data = null when the header is not a valid one for exactly N, K. The header is read once
// (into a copy, which is what is checked), so a buffer that another thread rewrites meanwhile
// yields a pointer inside it or null, never one checked against other values. The caller checks
// that the buffer's length is PackedWeightFloats(N, K, dtype) for the dtype returned.
PackedPanels ReadPackedHeader(const float* packed, int64_t N, int64_t K);

// True when `packed` carries a valid header for exactly N, K (of any dtype).
bool PackedWeightMatches(const float* packed, int64_t N, int64_t K);

// y[i*N + j] = sum_k x[i*K + k] * B[k, j] + (bias ? bias[j] : 0), for i < M, j < N.
// M, N, K >= 1. `packed` must come from PackWeight(.., N, K, ..): its header (panel
// offset) is trusted here, so check an untrusted buffer with ReadPackedHeader first and run
// GemmPackedPanelsWith on its result (the binding does). y must not overlap x, packed or bias. May throw
// std::bad_alloc (A-block workspace). Runs on the GEMM table of the kernel set in use (dispatch.h).
void GemmPacked(const float* x, int64_t M, int64_t K, const float* packed, int64_t N, const float* bias, float* y);

// Same with an explicit kernel table (tests and benchmarks compare ISAs with it).
void GemmPackedWith(const GemmKernelTable& kt, const float* x, int64_t M, int64_t K, const float* packed, int64_t N,
                    const float* bias, float* y);

// Same, given the panels themselves (ReadPackedHeader(packed, N, K)): reads nothing of the header.
void GemmPanelsWith(const GemmKernelTable& kt, const float* x, int64_t M, int64_t K, const float* panels, int64_t N,
                    const float* bias, float* y);

// Same over half panels (dtype kBF16 or kF16): y is bitwise GemmPanelsWith's on the widened panels.
void GemmHalfPanelsWith(const GemmKernelTable& kt, WeightDtype dtype, const float* x, int64_t M, int64_t K,
                        const uint16_t* panels, int64_t N, const float* bias, float* y);

// Either of the two, as `panels` says.
void GemmPackedPanelsWith(const GemmKernelTable& kt, const float* x, int64_t M, int64_t K, const PackedPanels& panels,
                          int64_t N, const float* bias, float* y);

}  // namespace qkv
