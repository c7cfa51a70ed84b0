// SPDX-License-Identifier: MIT
//
// SGEMM micro-kernels, one table per ISA (BLIS / GotoBLAS structure). The driver (native/gemm.cc)
// packs A into MR-row micro-panels and owns the cache blocking; a table only multiplies one
// MR x NR tile and packs A the way its micro-kernel reads it.
//
// Packed formats (both zero-padded, so a micro-kernel always computes a full MR x NR tile):
//   A micro-panel: kc steps of MR floats      a_p[p * MR + r] = A[i0 + r, k0 + p]
//   B micro-panel: kc steps of NR floats      b_p[p * NR + c] = B[k0 + p, j0 + c]   (B = W^T or W)
// NR is kGemmNR (16) for every ISA, so a weight packed under one ISA runs under any other.
#pragma once

#include <cstdint>

namespace qkv {

constexpr int kGemmNR = 16;  // B panel width, shared by every ISA (the packed-weight format)
constexpr int kGemmMaxMR = 12;

// c[0:mr, 0:nr] (row stride ldc) {=, +=} a_p . b_p over kc steps.
//   a: (kc, MR) packed A micro-panel     b: (kc, NR) packed B micro-panel
//   accumulate == 0: c = acc + bias[0:nr] (bias may be null: c = acc)
//   accumulate != 0: c = c + acc            (bias is ignored)
// mr <= MR and nr <= NR select the valid corner of the tile (edges); the rest is not written.
using GemmMicroFn = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t mr,
                             int64_t nr, const float* bias, int accumulate);

struct GemmKernelTable {
  const char* name;  // "scalar" | "avx2" | "avx512" | "neon", as qkv::SimdName()
  int mr;            // rows of the register tile
  int nr;            // columns of the register tile (== kGemmNR)
  GemmMicroFn micro;
};

extern const GemmKernelTable kGemmScalar;
#if defined(__x86_64__) || defined(_M_X64)
extern const GemmKernelTable kGemmAvx2;
extern const GemmKernelTable kGemmAvx512;
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
extern const GemmKernelTable kGemmNeon;
#endif

// The table matching qkv::SimdName() (so SetSimd("scalar") switches GEMM too).
const GemmKernelTable& GemmKernels();

}  // namespace qkv
