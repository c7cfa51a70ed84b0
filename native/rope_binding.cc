// SPDX-License-Identifier: MIT
//
// N-API side of the rotary embedding / qk-norm pass (native/rope.h). Positional arguments (abi.h
// kRopeArgCount), every length checked here before any memory is touched:
//   rope(x, out, dims, positions, invFreq, norm, attentionFactor, normEps, normOffset) -> out
//     dims       Int32Array [kRopeDimCount]: B, S, H, D, strides (b, s, h), interleaved (0 | 1),
//                normSpan (0 none, 1 head, 2 all)
//     x, out     Float32Arrays of one length, at least the last element any (b, s, h) vector
//                reaches; out is x (in place) or disjoint from it
//     positions  Int32Array [B·S], or null (no rotation; invFreq is then ignored)
//     invFreq    Float64Array [half], 2·half <= D
//     norm       Float32Array [D] (head) or [H·D] (all: the H vectors adjacent, stride D), or null
// Also the 'rope' op of runAsync (native/async_binding.cc).
#include <napi.h>

#include <cfloat>
#include <cmath>
#include <new>
#include <string>

#include "abi.h"
#include "args.h"
#include "bindings.h"
#include "rope.h"

namespace qkv {
namespace {

// The element count of a typed array of that type (a TypeError naming it otherwise).
int64_t TypedLength(const Napi::Value& v, const char* name, napi_typedarray_type type) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) {
    ExpectTyped(v, name, type, Extent{1, {}, 0, nullptr});  // throws the TypeError
  }
  return static_cast<int64_t>(v.As<Napi::TypedArray>().ElementLength());
}

// A finite number that a float holds (a double past FLT_MAX would not convert).
float ExpectFloat(const Napi::Env& env, const Napi::Value& v, const char* name) {
  const double x = ExpectFinite(v, name);
  if (std::fabs(x) > static_cast<double>(FLT_MAX)) ThrowRange(env, name, "a finite float32", std::to_string(x));
  return static_cast<float>(x);
}

Extent Exactly(const char* formula_name, int64_t length) {
  Extent e{};
  e.length = length;
  e.dims[0] = {formula_name, length};
  e.n_dims = 1;
  return e;
}

Napi::Value Rope(const Napi::CallbackInfo& info) {
  if (info.Length() < kRopeArgCount) {
    throw Napi::TypeError::New(info.Env(), "Expected " + std::to_string(kRopeArgCount) + " arguments for rope but received " +
                                               std::to_string(info.Length()));
  }
  Napi::Value args[kRopeArgCount];
  for (size_t i = 0; i < kRopeArgCount; ++i) args[i] = info[i];
  const RopeArgs a = ReadRopeArgs(info.Env(), args);
  try {
    RunRope(a);
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(info.Env(), "Could not allocate the rope workspace (out of memory)");
  }
  return info[1];
}

}  // namespace

RopeArgs ReadRopeArgs(Napi::Env env, const Napi::Value* args) {
  RopeArgs a{};
  // dims: copied once, then only the copy is used.
  const auto* dims_p = static_cast<const int32_t*>(ExpectTyped(args[2], "dims", napi_int32_array, Exactly("ropeDimCount", kRopeDimCount)));
  int32_t dims[kRopeDimCount];
  for (int i = 0; i < kRopeDimCount; ++i) dims[i] = dims_p[i];
  const char* names[kRopeDimCount] = {"B", "S", "H", "D", "strideB", "strideS", "strideH", "interleaved", "normSpan"};
  for (int i = 0; i < kRopeDimCount; ++i) {
    const int32_t lo = i <= kRopeD ? 1 : 0;
    const int32_t hi = i == kRopeInterleaved ? 1 : i == kRopeNormSpan ? 2 : INT32_MAX;
    if (dims[i] < lo || dims[i] > hi) {
      ThrowRange(env, std::string("dims[") + names[i] + "]", "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]",
                 std::to_string(dims[i]));
    }
  }
  a.B = dims[kRopeB], a.S = dims[kRopeS], a.H = dims[kRopeH], a.D = dims[kRopeD];
  a.sb = dims[kRopeStrideB], a.ss = dims[kRopeStrideS], a.sh = dims[kRopeStrideH];
  a.interleaved = dims[kRopeInterleaved] == 1;
  a.norm_span = static_cast<RopeNormSpan>(dims[kRopeNormSpan]);

  // The work itself is bounded like every other length (strides of 0 would otherwise let a
  // 1-element x stand for 2^62 vectors), and so is the last element any vector reaches (each term
  // bounded by 2^40, so the sum cannot overflow).
  CheckedProduct(env, {a.B, a.S, a.H, a.D}, "x");
  const int64_t reach = CheckedProduct(env, {a.B - 1, a.sb}, "x") + CheckedProduct(env, {a.S - 1, a.ss}, "x") +
                        CheckedProduct(env, {a.H - 1, a.sh}, "x") + a.D;
  const int64_t n = TypedLength(args[0], "x", napi_float32_array);
  if (n < reach) ThrowLength(env, "x", "at least (B-1)*strideB + (S-1)*strideS + (H-1)*strideH + D = " + std::to_string(reach), n);
  a.x = ExpectF32(args[0], "x", Exactly("x.length", n));
  a.out = ExpectF32(args[1], "out", Exactly("x.length", n));
  if (a.out != a.x && a.out < a.x + n && a.x < a.out + n) ThrowRange(env, "out", "x itself or memory that does not overlap x", "an overlapping view");

  if (args[3].IsNull() || args[3].IsUndefined()) {
    a.positions = nullptr;
    a.half = 0;
  } else {
    a.positions = static_cast<const int32_t*>(ExpectTyped(args[3], "positions", napi_int32_array, ExtentOf(env, "positions", {{"B", a.B}, {"S", a.S}})));
    a.half = TypedLength(args[4], "invFreq", napi_float64_array);
    if (a.half < 1 || 2 * a.half > a.D) ThrowLength(env, "invFreq", "rotaryDim/2 in [1, D/2 = " + std::to_string(a.D / 2) + "]", a.half);
    a.inv_freq = static_cast<const double*>(ExpectTyped(args[4], "invFreq", napi_float64_array, Exactly("half", a.half)));
  }
  a.attention_factor = ExpectFloat(env, args[6], "attentionFactor");
  a.eps = ExpectFloat(env, args[7], "normEps");
  a.offset = ExpectFloat(env, args[8], "normOffset");
  if (a.norm_span == RopeNormSpan::kNone) {
    a.norm = nullptr;
  } else {
    if (a.norm_span == RopeNormSpan::kAll && a.sh != a.D) ThrowRange(env, "dims[strideH]", "D with normSpan 2 (all)", std::to_string(a.sh));
    const Extent e = a.norm_span == RopeNormSpan::kHead ? ExtentOf(env, "norm", {{"D", a.D}}) : ExtentOf(env, "norm", {{"H", a.H}, {"D", a.D}});
    a.norm = ExpectF32(args[5], "norm", e);
    if (a.norm < a.out + n && a.out < a.norm + e.length) ThrowRange(env, "out", "memory that does not overlap norm", "an overlapping view");
  }
  return a;
}

void InitRope(Napi::Env env, Napi::Object exports) { exports.Set("rope", Napi::Function::New(env, Rope, "rope")); }

}  // namespace qkv
