// SPDX-License-Identifier: MIT
//
// sdpa(q, k, v, out, dims, scale, softcap, mask, offsets, kvLengths, weights, scores, sinks, alibi,
//      lse) -> out
// The same 15 values form an 'sdpa' op of runAsync (native/async_binding.cc). The argument ABI
// (dims slots, layout and kv dtype codes, mask kinds) is native/abi.h:
//   dims: Int32Array [B, H, Hkv, Sq, Sk, D, Dv, layout, causal, maskB, maskH, maskQ, maskK, kvDtype,
//                     windowLeft, windowRight]
//   sinks, alibi: Float32Array [H] | null; lse: Float32Array [B, H, Sq] | null
//   k, v: Float32Arrays (kvDtype float32) or Uint16Arrays of IEEE binary16 bits (float16)
//   mask: Float32Array (added) | Uint8Array (0 blocks) | null; its kind follows its type.
// Positional arguments keep the per-call cost low (no property lookups). Every length is checked
// here before the kernel runs; dims and values that could move a pointer are range-checked, on
// copies read once (dims, offsets, kvLengths): the kernels never read them from the caller's memory.
#include <napi.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "abi.h"
#include "args.h"
#include "attention.h"
#include "bindings.h"

namespace qkv {
namespace {

std::string DimName(int slot) { return std::string("dims.") + kSdpaDimNames[slot]; }

// A dims slot holding a code in [0, count): its name in messages, and the choices.
int32_t ExpectCode(const Napi::Env& env, const int32_t* dims, int slot, int count, const char* const* names) {
  const int32_t code = dims[slot];
  if (code < 0 || code >= count) {
    std::string choices;
    for (int i = 0; i < count; ++i) {
      choices += (i == 0 ? "" : i == count - 1 ? " or " : ", ") + std::to_string(i) + " (" + names[i] + ")";
    }
    ThrowRange(env, DimName(slot), choices, std::to_string(code));
  }
  return code;
}

// The mask, in the one place that derives it: its kind from its type, and its strides over
// (b, h, i, j) from the mask dims, each 1 (broadcast: stride 0) or the full size (row-major).
void ReadMask(const Napi::Env& env, const Napi::Value& mask, const int32_t* dims, const AttnShape& s, AttnArgs& a) {
  const int64_t full[4] = {s.B, s.H, s.Sq, s.Sk};
  const char* const full_names[4] = {"B", "H", "Sq", "Sk"};
  int64_t mask_dims[4];
  for (int i = 0; i < 4; ++i) {
    mask_dims[i] = dims[kDimMaskB + i];
    if (mask_dims[i] != 1 && mask_dims[i] != full[i]) {
      ThrowRange(env, DimName(kDimMaskB + i), "1 or " + std::string(full_names[i]) + " = " + std::to_string(full[i]),
                 std::to_string(mask_dims[i]));
    }
  }
  a.mask_kind = MaskKind::kNone;
  if (mask.IsUndefined() || mask.IsNull()) return;
  const Extent len = ExtentOf(env, "mask", {{kSdpaDimNames[kDimMaskB], mask_dims[0]}, {kSdpaDimNames[kDimMaskH], mask_dims[1]},
                                            {kSdpaDimNames[kDimMaskQ], mask_dims[2]}, {kSdpaDimNames[kDimMaskK], mask_dims[3]}});
  const bool is_bool = mask.IsTypedArray() && mask.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
  a.mask_kind = is_bool ? MaskKind::kBool : MaskKind::kFloat;
  a.mask = ExpectTyped(mask, "mask", is_bool ? napi_uint8_array : napi_float32_array, len);
  int64_t stride = 1;
  for (int i = 3; i >= 0; --i) {
    a.mask_strides[i] = mask_dims[i] == 1 ? 0 : stride;
    stride *= mask_dims[i];
  }
}

}  // namespace

SdpaCall ReadSdpaArgs(Napi::Env env, const Napi::Value* args) {
  // Every value that steers indexing is read once, into memory of this call, and only the copy is
  // checked and used: the caller's arrays may be views of a SharedArrayBuffer that another thread
  // rewrites while this runs (and an async call's arrays stay writable from JS while it is queued).
  int32_t dims[kSdpaDimCount];
  const void* dims_data =
      ExpectTyped(args[4], "dims", napi_int32_array, ExtentOf(env, "dims", {{"SDPA_DIM_SLOTS.length", kSdpaDimCount}}));
  std::memcpy(dims, dims_data, sizeof dims);
  for (int i = kDimB; i <= kDimDv; ++i) {
    if (dims[i] < 1) ThrowRange(env, DimName(i), "a positive integer", std::to_string(dims[i]));
  }
  const AttnShape s{dims[kDimB], dims[kDimH], dims[kDimHkv], dims[kDimSq], dims[kDimSk], dims[kDimD], dims[kDimDv]};
  if (s.H % s.Hkv != 0) ThrowRange(env, DimName(kDimHkv), "a divisor of H = " + std::to_string(s.H), std::to_string(s.Hkv));
  if (dims[kDimCausal] != 0 && dims[kDimCausal] != 1) ThrowRange(env, DimName(kDimCausal), "0 or 1", std::to_string(dims[kDimCausal]));

  AttnArgs a{};
  a.shape = s;
  a.layout = static_cast<Layout>(ExpectCode(env, dims, kDimLayout, kLayoutCount, kLayoutNames));
  a.kv_dtype = static_cast<KvDtype>(ExpectCode(env, dims, kDimKvDtype, kKvDtypeCount, kKvDtypeNames));
  // Lengths are named as lib/sdpa.ts names them: the dims in the layout's order.
  const bool bhsd = a.layout == Layout::kBHSD;
  const NamedDim B{"B", s.B}, H{"H", s.H}, Hkv{"Hkv", s.Hkv}, Sq{"Sq", s.Sq}, Sk{"Sk", s.Sk}, D{"D", s.D}, Dv{"Dv", s.Dv};
  a.q = ExpectF32(args[0], "q", bhsd ? ExtentOf(env, "q", {B, H, Sq, D}) : ExtentOf(env, "q", {B, Sq, H, D}));
  const napi_typedarray_type kv_type = a.kv_dtype == KvDtype::kF16 ? napi_uint16_array : napi_float32_array;
  a.k = ExpectTyped(args[1], "k", kv_type, bhsd ? ExtentOf(env, "k", {B, Hkv, Sk, D}) : ExtentOf(env, "k", {B, Sk, Hkv, D}));
  a.v = ExpectTyped(args[2], "v", kv_type, bhsd ? ExtentOf(env, "v", {B, Hkv, Sk, Dv}) : ExtentOf(env, "v", {B, Sk, Hkv, Dv}));
  a.out = ExpectF32(args[3], "out", bhsd ? ExtentOf(env, "out", {B, H, Sq, Dv}) : ExtentOf(env, "out", {B, Sq, H, Dv}));
  a.scale = static_cast<float>(ExpectFinite(args[5], "scale"));
  a.softcap = static_cast<float>(ExpectFinite(args[6], "softcap"));
  if (a.softcap < 0) ThrowRange(env, "softcap", "a number >= 0", Describe(args[6]));

  ReadMask(env, args[7], dims, s, a);

  a.causal = dims[kDimCausal] == 1;
  for (int slot : {kDimWindowLeft, kDimWindowRight}) {
    if (dims[slot] < kWindowUnbounded) ThrowRange(env, DimName(slot), "an integer >= -1 (-1: unbounded)", std::to_string(dims[slot]));
  }
  a.window_left = dims[kDimWindowLeft];
  a.window_right = dims[kDimWindowRight];
  const Extent per_head = ExtentOf(env, "sinks", {H});
  a.sinks = static_cast<const float*>(OptionalTyped(args[12], "sinks", napi_float32_array, per_head));
  a.alibi = static_cast<const float*>(OptionalTyped(args[13], "alibi", napi_float32_array, per_head));
  a.lse = static_cast<float*>(OptionalTyped(args[14], "lse", napi_float32_array, ExtentOf(env, "lse", {B, H, Sq})));

  const Extent per_batch = ExtentOf(env, "offsets", {B});
  const auto* offsets = static_cast<const int32_t*>(OptionalTyped(args[8], "offsets", napi_int32_array, per_batch));
  const bool positioned = a.causal || a.window_left >= 0 || a.window_right >= 0 || a.alibi != nullptr;
  if (positioned && offsets == nullptr) {
    ThrowRange(env, "offsets", "Int32Array(" + std::to_string(s.B) + ") when causal, windowed or with alibi", Describe(args[8]));
  }
  const auto* kv_lengths = static_cast<const int32_t*>(OptionalTyped(args[9], "kvLengths", napi_int32_array, per_batch));
  // Copied before the check, as dims, so that what was checked is what the kernels read (out,
  // weights or scores may overlap these arrays too).
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
  const Extent probs = ExtentOf(env, "weights", {B, H, Sq, Sk});
  a.weights = static_cast<float*>(OptionalTyped(args[10], "weights", napi_float32_array, probs));
  a.scores = static_cast<float*>(OptionalTyped(args[11], "scores", napi_float32_array, probs));

  call.args = a;
  return call;
}

namespace {

Napi::Value Sdpa(const Napi::CallbackInfo& info) {
  if (info.Length() != kSdpaArgCount) {
    throw Napi::TypeError::New(info.Env(), "Expected " + std::to_string(kSdpaArgCount) + " arguments for sdpa but received " +
                                               std::to_string(info.Length()));
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
