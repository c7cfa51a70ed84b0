// sdpa(q, k, v, out, dims, scale, softcap, mask, offsets, kvLengths, weights, scores) -> out
// The same 12 values form an 'sdpa' op of runAsync (native/async_binding.cc).
//   dims: Int32Array [B, H, Hkv, Sq, Sk, D, Dv, layout, causal, maskB, maskH, maskQ, maskK, kvDtype]
//   (layout 0 = bhsd, 1 = bshd; mask dims right-aligned to rank 4, each 1 or the full size;
//   kvDtype 0: k and v are Float32Arrays, 1: Uint16Arrays of IEEE binary16 bits)
//   mask: Float32Array (added) | Uint8Array (0 blocks) | null; its kind follows its type.
// Positional arguments keep the per-call cost low (no property lookups). Every length is checked
// here before the kernel runs; dims and values that could move a pointer are range-checked.
#include <napi.h>

#include <algorithm>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "args.h"
#include "attention.h"
#include "bindings.h"

namespace qkv {
namespace {

enum Dim { kB, kH, kHkv, kSq, kSk, kD, kDv, kLayout, kCausal, kMaskB, kMaskH, kMaskQ, kMaskK, kKvDtype, kDimCount };

}  // namespace

SdpaCall ReadSdpaArgs(Napi::Env env, const Napi::Value* args) {
  const int32_t* dims = static_cast<const int32_t*>(ExpectTyped(args[4], "dims", napi_int32_array, kDimCount));
  const char* kDimNames[kDimCount] = {"B", "H", "Hkv", "Sq", "Sk", "D", "Dv"};
  for (int i = kB; i <= kDv; ++i) {
    if (dims[i] < 1) ThrowRange(env, std::string("dims.") + kDimNames[i], "a positive integer", std::to_string(dims[i]));
  }
  AttnShape s{dims[kB], dims[kH], dims[kHkv], dims[kSq], dims[kSk], dims[kD], dims[kDv]};
  if (s.H % s.Hkv != 0) ThrowRange(env, "dims.Hkv", "a divisor of H = " + std::to_string(s.H), std::to_string(s.Hkv));
  if (dims[kLayout] != 0 && dims[kLayout] != 1) ThrowRange(env, "dims.layout", "0 or 1", std::to_string(dims[kLayout]));
  if (dims[kCausal] != 0 && dims[kCausal] != 1) ThrowRange(env, "dims.causal", "0 or 1", std::to_string(dims[kCausal]));
  if (dims[kKvDtype] != 0 && dims[kKvDtype] != 1) {
    ThrowRange(env, "dims.kvDtype", "0 (float32) or 1 (float16)", std::to_string(dims[kKvDtype]));
  }

  AttnArgs a{};
  a.shape = s;
  a.layout = static_cast<Layout>(dims[kLayout]);
  a.q = ExpectF32(args[0], "q", CheckedProduct(env, {s.B, s.H, s.Sq, s.D}, "q"));
  a.kv_dtype = static_cast<KvDtype>(dims[kKvDtype]);
  const napi_typedarray_type kv_type = a.kv_dtype == KvDtype::kF16 ? napi_uint16_array : napi_float32_array;
  a.k = ExpectTyped(args[1], "k", kv_type, CheckedProduct(env, {s.B, s.Hkv, s.Sk, s.D}, "k"));
  a.v = ExpectTyped(args[2], "v", kv_type, CheckedProduct(env, {s.B, s.Hkv, s.Sk, s.Dv}, "v"));
  a.out = ExpectF32(args[3], "out", CheckedProduct(env, {s.B, s.H, s.Sq, s.Dv}, "out"));
  a.scale = static_cast<float>(ExpectFinite(args[5], "scale"));
  a.softcap = static_cast<float>(ExpectFinite(args[6], "softcap"));
  if (a.softcap < 0) ThrowRange(env, "softcap", "a number >= 0", Describe(args[6]));

  // Mask: each dim 1 (broadcast, stride 0) or the full size.
  const int64_t full[4] = {s.B, s.H, s.Sq, s.Sk};
  int64_t mask_dims[4];
  for (int i = 0; i < 4; ++i) {
    mask_dims[i] = dims[kMaskB + i];
    if (mask_dims[i] != 1 && mask_dims[i] != full[i]) {
      ThrowRange(env, "dims.mask[" + std::to_string(i) + "]", "1 or " + std::to_string(full[i]),
                 std::to_string(mask_dims[i]));
    }
  }
  const Napi::Value& mask = args[7];
  if (!mask.IsUndefined() && !mask.IsNull()) {
    int64_t mask_len = CheckedProduct(env, {mask_dims[0], mask_dims[1], mask_dims[2], mask_dims[3]}, "mask");
    bool is_bool = mask.IsTypedArray() && mask.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
    a.mask_kind = is_bool ? MaskKind::kBool : MaskKind::kFloat;
    a.mask = ExpectTyped(mask, "mask", is_bool ? napi_uint8_array : napi_float32_array, mask_len);
    int64_t stride = 1;
    for (int i = 3; i >= 0; --i) {
      a.mask_strides[i] = mask_dims[i] == 1 ? 0 : stride;
      stride *= mask_dims[i];
    }
  }

  a.causal = dims[kCausal] == 1;
  const auto* offsets = static_cast<const int32_t*>(OptionalTyped(args[8], "offsets", napi_int32_array, s.B));
  if (a.causal && offsets == nullptr) ThrowRange(env, "offsets", "Int32Array(" + std::to_string(s.B) + ") when causal", Describe(args[8]));
  const auto* kv_lengths = static_cast<const int32_t*>(OptionalTyped(args[9], "kvLengths", napi_int32_array, s.B));
  // Copied before the check, so that what was checked is what the kernels read (out, weights or
  // scores may overlap these arrays, and an async call's buffers stay reachable from JS).
  SdpaCall call;
  if (offsets != nullptr || kv_lengths != nullptr) {
    call.ints = std::make_shared<std::vector<int32_t>>(2 * s.B);
    int32_t* copy = call.ints->data();
    if (offsets != nullptr) {
      std::copy(offsets, offsets + s.B, copy);
      a.offsets = copy;
    }
    if (kv_lengths != nullptr) {
      std::copy(kv_lengths, kv_lengths + s.B, copy + s.B);
      a.kv_lengths = copy + s.B;
    }
  }
  if (a.kv_lengths) {
    for (int64_t b = 0; b < s.B; ++b) {
      if (a.kv_lengths[b] < 0 || a.kv_lengths[b] > s.Sk) {
        ThrowRange(env, "kvLengths[" + std::to_string(b) + "]", "an integer in [0, " + std::to_string(s.Sk) + "]",
                   std::to_string(a.kv_lengths[b]));
      }
    }
  }
  const int64_t probs_len = CheckedProduct(env, {s.B, s.H, s.Sq, s.Sk}, "weights");
  a.weights = static_cast<float*>(OptionalTyped(args[10], "weights", napi_float32_array, probs_len));
  a.scores = static_cast<float*>(OptionalTyped(args[11], "scores", napi_float32_array, probs_len));

  call.args = a;
  return call;
}

namespace {

Napi::Value Sdpa(const Napi::CallbackInfo& info) {
  if (info.Length() != kSdpaArgCount) {
    throw Napi::TypeError::New(info.Env(), "Expected 12 arguments for sdpa but received " + std::to_string(info.Length()));
  }
  Napi::Value args[kSdpaArgCount];
  for (size_t i = 0; i < kSdpaArgCount; ++i) args[i] = info[i];
  const SdpaCall call = ReadSdpaArgs(info.Env(), args);
  try {
    AttentionForward(call.args);
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(info.Env(), "Could not allocate the attention workspace (out of memory)");
  }
  return info[3];
}

}  // namespace

void InitSdpa(Napi::Env env, Napi::Object exports) {
  exports.Set("sdpa", Napi::Function::New(env, Sdpa, "sdpa"));
}

}  // namespace qkv
