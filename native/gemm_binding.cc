// SPDX-License-Identifier: MIT
//
// N-API side of the packed SGEMM (native/gemm.h). Positional arguments, every length checked here
// before any memory is touched; outputs must not overlap inputs (RangeError, nothing written).
//   gemmPackedLength(N, K, dtype?) -> number           floats a packed [N, K] weight of that dtype needs
//   gemmPack(w, outIn, N, K, packed, dtype?) -> packed w: [N, K] if outIn else [K, N]; a Float32Array(N*K)
//                                                      for dtype 0 (float32, the default), a Uint16Array(N*K)
//                                                      of bfloat16 (1) or float16 (2) bits (abi.h WeightDtype)
//   gemm(x, M, K, packed, N, bias, y) -> y             y[M, N] = x[M, K] . B + bias (bias null/undefined = none)
//                                                      (also a 'gemm' op of runAsync, native/async_binding.cc)
// `packed` must be a gemmPack result for exactly this N and K (its header is read once and checked:
// RangeError), and its length the one its header's dtype needs.
#include <napi.h>

#include <cstdint>
#include <new>
#include <string>

#include "args.h"
#include "bindings.h"
#include "dispatch.h"
#include "gemm.h"
#include "kernels/gemm_kernels.h"
#include "util.h"

namespace qkv {
namespace {

void ExpectArgs(const Napi::CallbackInfo& info, size_t n, const char* fn) {
  if (info.Length() < n) {
    throw Napi::TypeError::New(info.Env(), "Expected " + std::to_string(n) + " arguments for " + fn +
                                               " but received " + std::to_string(info.Length()));
  }
}

// Floats in a packed [N, K] weight of this dtype, with the same overflow guard as every other
// length; its formula is the binding's own function, which is how lib/ sizes the buffer.
Extent PackedLength(const Napi::Env& env, int64_t N, int64_t K, WeightDtype dtype = WeightDtype::kF32) {
  const int64_t body = CheckedProduct(env, {CeilDiv(N, kGemmNR), int64_t{kGemmNR}, K}, "packed");
  const int64_t len = PackedWeightFloats(N, K, dtype);
  const int64_t body_floats = dtype == WeightDtype::kF32 ? body : body / 2;
  if (len != body_floats + kGemmHeaderFloats + kGemmAlignSlack) ThrowRange(env, "packed", "a consistent length", "other");
  Extent e{};
  e.length = len;
  e.dims[0] = {"N", N};
  e.dims[1] = {"K", K};
  e.n_dims = 2;
  if (dtype != WeightDtype::kF32) e.dims[e.n_dims++] = {"dtype", static_cast<int64_t>(dtype)};
  e.function = "gemmPackedLength";
  return e;
}

// The optional dtype argument: undefined = float32, else a WeightDtype code.
WeightDtype ReadWeightDtype(const Napi::Value& v) {
  if (v.IsUndefined()) return WeightDtype::kF32;
  return static_cast<WeightDtype>(ExpectInt(v, "dtype", 0, kWeightDtypeCount - 1));
}

// The element count of v when it is a Float32Array, else -1 (ExpectF32 then says what is wrong).
int64_t Float32Length(const Napi::Value& v) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) return -1;
  return static_cast<int64_t>(v.As<Napi::TypedArray>().ElementLength());
}

bool Overlap(const float* a, int64_t na, const float* b, int64_t nb) {
  return a != nullptr && b != nullptr && a < b + nb && b < a + na;
}

void ExpectDisjoint(const Napi::Env& env, const char* out_name, const float* out, int64_t n_out, const char* in_name,
                    const float* in, int64_t n_in) {
  if (Overlap(out, n_out, in, n_in)) {
    ThrowRange(env, out_name, std::string("memory that does not overlap ") + in_name, "an overlapping view");
  }
}

Napi::Value GemmPackedLength(const Napi::CallbackInfo& info) {
  ExpectArgs(info, 2, "gemmPackedLength");
  const int64_t N = ExpectDim(info[0], "N");
  const int64_t K = ExpectDim(info[1], "K");
  const WeightDtype dtype = ReadWeightDtype(info[2]);
  return Napi::Number::New(info.Env(), static_cast<double>(PackedLength(info.Env(), N, K, dtype).length));
}

Napi::Value GemmPack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ExpectArgs(info, 5, "gemmPack");
  if (!info[1].IsBoolean()) {
    throw Napi::TypeError::New(env, "Expected a boolean for outIn but received " + Describe(info[1]));
  }
  const bool out_in = info[1].As<Napi::Boolean>().Value();
  const int64_t N = ExpectDim(info[2], "N");
  const int64_t K = ExpectDim(info[3], "K");
  const WeightDtype dtype = ReadWeightDtype(info[5]);
  const Extent w_len = ExtentOf(env, "w", {{"N", N}, {"K", K}});
  const Extent p_len = PackedLength(env, N, K, dtype);
  if (dtype == WeightDtype::kF32) {
    const float* w = ExpectF32(info[0], "w", w_len);
    float* packed = ExpectF32(info[4], "packed", p_len);
    ExpectDisjoint(env, "packed", packed, p_len.length, "w", w, w_len.length);
    PackWeight(w, out_in, N, K, packed);
  } else {
    const auto* w = static_cast<const uint16_t*>(ExpectTyped(info[0], "w", napi_uint16_array, w_len));
    float* packed = ExpectF32(info[4], "packed", p_len);
    const auto bytes = [](const void* p) { return reinterpret_cast<uintptr_t>(p); };
    const uintptr_t w_end = bytes(w) + sizeof(uint16_t) * static_cast<uintptr_t>(w_len.length);
    const uintptr_t packed_end = bytes(packed) + sizeof(float) * static_cast<uintptr_t>(p_len.length);
    if (bytes(w) < packed_end && bytes(packed) < w_end) {
      ThrowRange(env, "packed", "memory that does not overlap w", "an overlapping view");
    }
    PackHalfWeight(w, dtype, out_in, N, K, packed);
  }
  return info[4];
}

Napi::Value Gemm(const Napi::CallbackInfo& info) {
  ExpectArgs(info, kGemmArgCount, "gemm");
  Napi::Value args[kGemmArgCount];
  for (size_t i = 0; i < kGemmArgCount; ++i) args[i] = info[i];
  const GemmArgs g = ReadGemmArgs(info.Env(), args);
  try {
    RunGemm(g);
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(info.Env(), "Could not allocate the GEMM workspace (out of memory)");
  }
  return info[6];
}

}  // namespace

GemmArgs ReadGemmArgs(Napi::Env env, const Napi::Value* args) {
  GemmArgs g;
  g.M = ExpectDim(args[1], "M");
  g.K = ExpectDim(args[2], "K");
  g.N = ExpectDim(args[4], "N");
  const Extent x_len = ExtentOf(env, "x", {{"M", g.M}, {"K", g.K}});
  const Extent y_len = ExtentOf(env, "y", {{"M", g.M}, {"N", g.N}});
  g.x = ExpectF32(args[0], "x", x_len);
  // A half weight's buffer is shorter than a float one's: its length says which the header must
  // be (checked below), and either way it is checked exactly before its header is read.
  const Extent half_len = PackedLength(env, g.N, g.K, WeightDtype::kBF16);
  const bool half_sized = Float32Length(args[3]) == half_len.length;
  const Extent p_len = half_sized ? half_len : PackedLength(env, g.N, g.K);
  g.packed = ExpectF32(args[3], "packed", p_len);
  g.packed_length = p_len.length;
  // The header is read once, here: the GEMM then only uses the panels pointer and dtype taken
  // from that copy, never the header again (another thread may rewrite it, while this runs or
  // while an async call waits on the pool).
  g.panels = ReadPackedHeader(g.packed, g.N, g.K);
  if (g.panels.data == nullptr || (g.panels.dtype != WeightDtype::kF32) != half_sized) {
    ThrowRange(env, "packed",
               "a weight packed by gemmPack for N = " + std::to_string(g.N) + ", K = " + std::to_string(g.K),
               g.panels.data == nullptr ? "a buffer with another header" : "a header for another dtype than its length");
  }
  g.bias = static_cast<const float*>(OptionalTyped(args[5], "bias", napi_float32_array, ExtentOf(env, "bias", {{"N", g.N}})));
  g.y = ExpectF32(args[6], "y", y_len);
  ExpectDisjoint(env, "y", g.y, y_len.length, "x", g.x, x_len.length);
  ExpectDisjoint(env, "y", g.y, y_len.length, "packed", g.packed, p_len.length);
  ExpectDisjoint(env, "y", g.y, y_len.length, "bias", g.bias, g.N);
  return g;
}

void RunGemm(const GemmArgs& g) { GemmPackedPanelsWith(Kernels().gemm, g.x, g.M, g.K, g.panels, g.N, g.bias, g.y); }

void InitGemm(Napi::Env env, Napi::Object exports) {
  exports.Set("gemmPackedLength", Napi::Function::New(env, GemmPackedLength, "gemmPackedLength"));
  exports.Set("gemmPack", Napi::Function::New(env, GemmPack, "gemmPack"));
  exports.Set("gemm", Napi::Function::New(env, Gemm, "gemm"));
}

}  // namespace qkv
