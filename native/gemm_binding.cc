// SPDX-License-Identifier: MIT
//
// N-API side of the packed SGEMM (native/gemm.h). Positional arguments, every length checked here
// before any memory is touched; outputs must not overlap inputs (RangeError, nothing written).
//   gemmPackedLength(N, K) -> number                   floats a packed [N, K] weight needs
//   gemmPack(w, outIn, N, K, packed) -> packed         w: Float32Array(N*K), [N, K] if outIn else [K, N]
//   gemm(x, M, K, packed, N, bias, y) -> y             y[M, N] = x[M, K] . B + bias (bias null/undefined = none)
//                                                      (also a 'gemm' op of runAsync, native/async_binding.cc)
// `packed` must be a gemmPack result for exactly this N and K (its header is read once and checked:
// RangeError).
#include <napi.h>

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

// Floats in a packed [N, K] weight, with the same overflow guard as every other length; its
// formula is the binding's own function, which is how lib/ sizes the buffer.
Extent PackedLength(const Napi::Env& env, int64_t N, int64_t K) {
  const int64_t body = CheckedProduct(env, {CeilDiv(N, kGemmNR), int64_t{kGemmNR}, K}, "packed");
  const int64_t len = PackedWeightFloats(N, K);
  if (len != body + kGemmHeaderFloats + kGemmAlignSlack) ThrowRange(env, "packed", "a consistent length", "other");
  Extent e{};
  e.length = len;
  e.dims[0] = {"N", N};
  e.dims[1] = {"K", K};
  e.n_dims = 2;
  e.function = "gemmPackedLength";
  return e;
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
  return Napi::Number::New(info.Env(), static_cast<double>(PackedLength(info.Env(), N, K).length));
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
  const Extent w_len = ExtentOf(env, "w", {{"N", N}, {"K", K}});
  const float* w = ExpectF32(info[0], "w", w_len);
  const Extent p_len = PackedLength(env, N, K);
  float* packed = ExpectF32(info[4], "packed", p_len);
  ExpectDisjoint(env, "packed", packed, p_len.length, "w", w, w_len.length);
  PackWeight(w, out_in, N, K, packed);
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
  const Extent p_len = PackedLength(env, g.N, g.K);
  g.x = ExpectF32(args[0], "x", x_len);
  g.packed = ExpectF32(args[3], "packed", p_len);
  // The header is read once, here: the GEMM then only uses the panels pointer taken from that
  // copy, never the header again (another thread may rewrite it, while this runs or while an
  // async call waits on the pool).
  g.panels = PackedWeightPanels(g.packed, g.N, g.K);
  if (g.panels == nullptr) {
    ThrowRange(env, "packed",
               "a weight packed by gemmPack for N = " + std::to_string(g.N) + ", K = " + std::to_string(g.K),
               "a buffer with another header");
  }
  g.bias = static_cast<const float*>(OptionalTyped(args[5], "bias", napi_float32_array, ExtentOf(env, "bias", {{"N", g.N}})));
  g.y = ExpectF32(args[6], "y", y_len);
  ExpectDisjoint(env, "y", g.y, y_len.length, "x", g.x, x_len.length);
  ExpectDisjoint(env, "y", g.y, y_len.length, "packed", g.packed, p_len.length);
  ExpectDisjoint(env, "y", g.y, y_len.length, "bias", g.bias, g.N);
  return g;
}

void RunGemm(const GemmArgs& g) { GemmPanelsWith(Kernels().gemm, g.x, g.M, g.K, g.panels, g.N, g.bias, g.y); }

void InitGemm(Napi::Env env, Napi::Object exports) {
  exports.Set("gemmPackedLength", Napi::Function::New(env, GemmPackedLength, "gemmPackedLength"));
  exports.Set("gemmPack", Napi::Function::New(env, GemmPack, "gemmPack"));
  exports.Set("gemm", Napi::Function::New(env, Gemm, "gemm"));
}

}  // namespace qkv
