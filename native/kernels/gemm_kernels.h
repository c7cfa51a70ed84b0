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
// A half-size weight (abi.h WeightDtype: bfloat16 or float16 bits) has the same B micro-panels
// with uint16_t elements; its micro-kernels widen each element exactly to float as they load it,
// then run the float micro-kernel's FMA chain, so a tile over half panels is bitwise the tile over
// the widened float panels.
#pragma once

#include <cstdint>

namespace qkv {

constexpr int kGemmNR = 16;  // B panel width, shared by every ISA (the packed-weight format)
constexpr int kGemmMaxMR = 8;

// c[0:mr, 0:nr] (row stride ldc) {=, +=} a_p . b_p over kc steps, where b_p is `panels` adjacent
// B micro-panels side by side (panel q's kc slice at b + q * b_stride):
//   a: (kc, MR) packed A micro-panel     b: (kc, NR) packed B micro-panel, panels of them
//   accumulate == 0: c = acc + bias[0:nr] (bias may be null: c = acc)
//   accumulate != 0: c = c + acc            (bias is ignored)
// mr <= MR and nr <= panels * NR select the valid corner of the tile (edges); the rest is not
// written, and no panel past column nr is read (it may not exist: the last panel of an odd count).
// Each element is the same FMA chain (k ascending) whichever tile holds it, so y does not depend
// on how the driver cuts N.
using GemmMicroFn = void (*)(int64_t kc, const float* a, const float* b, int64_t b_stride, float* c, int64_t ldc,
                             int64_t mr, int64_t nr, const float* bias, int accumulate);

// dst[i] = the float value of the half src[i] (bits), i < n, n a multiple of kGemmNR (whole B
// micro-panel rows); exact. NaNs stay NaN.
using GemmWidenFn = void (*)(const uint16_t* src, int64_t n, float* dst);

// c {=, +=} a . b as GemmMicroFn, b a half micro-panel (uint16_t elements; b_stride in elements).
using GemmMicroHalfTileFn = void (*)(int64_t kc, const float* a, const uint16_t* b, int64_t b_stride, float* c,
                                     int64_t ldc, int64_t mr, int64_t nr, const float* bias, int accumulate);

struct GemmKernelTable {
  const char* name;  // "scalar" | "avx2" | "avx512" | "neon": its kernel set's name (dispatch.h)
  int mr;            // rows of the register tile
  int nr;            // columns of one B micro-panel (== kGemmNR)
  int panels;        // B micro-panels one tile spans: the tile is mr x (panels * nr)
  GemmMicroFn micro;
  GemmMicroHalfTileFn micro_bf16;  // b: bfloat16 bits (widened: bits << 16)
  GemmMicroHalfTileFn micro_f16;   // b: IEEE binary16 bits (widened as F16C / NEON fcvtl do)
  GemmWidenFn widen_bf16;          // whole slices, for blocks whose row tiles share one B slice
  GemmWidenFn widen_f16;
};

extern const GemmKernelTable kGemmScalar;
#if defined(__x86_64__) || defined(_M_X64)
extern const GemmKernelTable kGemmAvx2;
extern const GemmKernelTable kGemmAvx512;
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
extern const GemmKernelTable kGemmNeon;
#endif

}  // namespace qkv
