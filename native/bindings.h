// Each binding file registers its functions on the addon's exports. The readers are shared with
// native/async_binding.cc, which runs the same operations on the pool: one set of checks for the
// sync and the async path.
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "abi.h"
#include "attention.h"
#include "gemm.h"
#include "rope.h"

namespace qkv {

void InitSdpa(Napi::Env env, Napi::Object exports);
void InitGemm(Napi::Env env, Napi::Object exports);
void InitAsyncOps(Napi::Env env, Napi::Object exports);
void InitRope(Napi::Env env, Napi::Object exports);

// sdpa's kSdpaArgCount positional arguments (abi.h), checked (native/sdpa_binding.cc). dims are read
// once into AttnArgs (shape, codes, mask strides, by value); offsets and kvLengths are copied (into
// `ints`, which AttnArgs then points into): the kernels index with them, so they must not change
// after the check, even when `out` (or another call's output) overlaps them or another thread
// writes them (a SharedArrayBuffer; an async call's arrays while it waits on the pool).
// Copies of an SdpaCall share `ints`, so the pointers stay valid in every copy.
struct SdpaCall {
  AttnArgs args;
  std::shared_ptr<std::vector<int32_t>> ints;
};
SdpaCall ReadSdpaArgs(Napi::Env env, const Napi::Value* args);

// gemm's kGemmArgCount positional arguments (abi.h), checked (native/gemm_binding.cc). M, K, N
// and the panel offset of the packed weight's header are held here by value: RunGemm reads no
// header and no dim from caller memory.
struct GemmArgs {
  const float* x;
  int64_t M, K, N;
  const float* packed;    // the whole packed weight (its header checked once)
  int64_t packed_length;  // its floats: PackedWeightFloats(N, K, panels.dtype)
  PackedPanels panels;    // its panels, at the offset and of the dtype that header gave
  const float* bias;  // or null
  float* y;
};
GemmArgs ReadGemmArgs(Napi::Env env, const Napi::Value* args);

// rope's kRopeArgCount positional arguments (abi.h), checked (native/rope_binding.cc); the dims are
// held by value. positions, invFreq and norm are read where they are (they steer no index).
RopeArgs ReadRopeArgs(Napi::Env env, const Napi::Value* args);
void RunGemm(const GemmArgs& g);  // may throw std::bad_alloc

}  // namespace qkv
