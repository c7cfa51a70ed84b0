// SPDX-License-Identifier: MIT
//
// The argument ABI between lib/ and the binding, defined once on the native side; its TypeScript
// twin is lib/backend/abi.ts, and binding._abi() (native/addon.cc) hands these tables to the test
// that keeps the two equal (test/native-abi.test.ts).
//   sdpa(q, k, v, out, dims, scale, softcap, mask, offsets, kvLengths, weights, scores, sinks, alibi, lse)
//     dims: Int32Array(kSdpaDimCount), slots in SdpaDim order: the shape, the layout code, causal
//     (0 | 1), the mask dims right-aligned to [B, H, Sq, Sk] (each 1 or the full size), the kv dtype
//     code, the window sides (kWindowUnbounded or >= 0). The mask kind is not a slot: it follows the
//     mask's type (Float32Array | Uint8Array | null). offsets are the positions of query row 0 per
//     batch, given when causal, windowed or with ALiBi.
//   gemmPackedLength(N, K, dtype), gemmPack(w, outIn, N, K, packed, dtype): dtype a WeightDtype code.
//   setThreads(n): n in [1, kMaxThreads].
// Only enums and constants (no functions): kernels/kernels.h includes it too, from the -mavx2
// translation units (see native/util.h on why those must not share inline functions).
#pragma once

#include <cstddef>
#include <cstdint>

namespace qkv {

// Layout of q, k, v and out (weights / scores are [B, H, Sq, Sk] in both).
//   kBHSD: q [B,H,Sq,D]  k [B,Hkv,Sk,D]  v [B,Hkv,Sk,Dv]  out [B,H,Sq,Dv]
//   kBSHD: q [B,Sq,H,D]  k [B,Sk,Hkv,D]  v [B,Sk,Hkv,Dv]  out [B,Sq,H,Dv]
enum class Layout : int32_t { kBHSD = 0, kBSHD = 1 };
constexpr int kLayoutCount = 2;
constexpr const char* kLayoutNames[kLayoutCount] = {"bhsd", "bshd"};

// Element type of k and v: float, or IEEE binary16 (uint16_t bits, e.g. a float16 KV cache). The
// kernels widen halves as they load them and compute in fp32; q, out, weights, scores stay float.
enum class KvDtype : int32_t { kF32 = 0, kF16 = 1 };
constexpr int kKvDtypeCount = 2;
constexpr const char* kKvDtypeNames[kKvDtypeCount] = {"float32", "float16"};

// Element type of a projection weight (gemmPackedLength / gemmPack's dtype argument, and the
// packed weight's header): float, or the raw 16 bits of a bfloat16 or IEEE binary16 value, as a
// safetensors BF16 / F16 tensor stores them. The panels keep that type; the GEMM micro-kernels
// widen each value exactly to float and accumulate in float.
enum class WeightDtype : int32_t { kF32 = 0, kBF16 = 1, kF16 = 2 };
constexpr int kWeightDtypeCount = 3;
constexpr const char* kWeightDtypeNames[kWeightDtypeCount] = {"float32", "bfloat16", "float16"};

// The mask: none, float (added to the score, -inf blocks) or bool (uint8: 0 blocks).
enum class MaskKind : int32_t { kNone = 0, kFloat = 1, kBool = 2 };
constexpr int kMaskKindCount = 3;
constexpr const char* kMaskKindNames[kMaskKindCount] = {"none", "float", "bool"};

// Slots of sdpa's dims array, in order; the names are the ones messages use ("dims.Hkv").
enum SdpaDim : int {
  kDimB, kDimH, kDimHkv, kDimSq, kDimSk, kDimD, kDimDv,  // the shape (DESIGN.md letters)
  kDimLayout,                                          // a Layout code
  kDimCausal,                                          // 0 | 1
  kDimMaskB, kDimMaskH, kDimMaskQ, kDimMaskK,          // mask dims, rank 4; 1 = broadcast
  kDimKvDtype,                                         // a KvDtype code
  kDimWindowLeft, kDimWindowRight,                     // kWindowUnbounded, or keys a row sees on that side
  kSdpaDimCount
};
// A window side with no bound (the option omitted).
constexpr int32_t kWindowUnbounded = -1;
constexpr const char* kSdpaDimNames[kSdpaDimCount] = {"B",      "H",     "Hkv",   "Sq",    "Sk",
                                                      "D",      "Dv",    "layout", "causal", "maskB",
                                                      "maskH",  "maskQ", "maskK", "kvDtype", "windowLeft",
                                                      "windowRight"};

// Positional arguments of sdpa (above) and gemm(x, M, K, packed, N, bias, y); the same lists form
// the 'sdpa' and 'gemm' ops of runAsync.
constexpr size_t kSdpaArgCount = 15;
constexpr size_t kGemmArgCount = 7;
// rope(x, out, dims, positions, invFreq, norm, attentionFactor, normEps, normOffset): native/rope_binding.cc.
constexpr size_t kRopeArgCount = 9;
// The slots of rope's dims (an Int32Array): shape, strides and the two style codes.
enum RopeDim { kRopeB, kRopeS, kRopeH, kRopeD, kRopeStrideB, kRopeStrideS, kRopeStrideH, kRopeInterleaved, kRopeNormSpan, kRopeDimCount };

// Most threads one call may use (setThreads, QKV_THREADS).
constexpr int kMaxThreads = 1024;

}  // namespace qkv
