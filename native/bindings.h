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

namespace qkv {

void InitSdpa(Napi::Env env, Napi::Object exports);
void InitGemm(Napi::Env env, Napi::Object exports);
void InitAsyncOps(Napi::Env env, Napi::Object exports);

// sdpa's kSdpaArgCount positional arguments (abi.h), checked (native/sdpa_binding.cc). offsets and kvLengths are
// copied (into `ints`, which AttnArgs then points into): the kernels index with kvLengths, so they
// must not change after the check, even when `out` (or another call's output) overlaps them.
// Copies of an SdpaCall share `ints`, so the pointers stay valid in every copy.
struct SdpaCall {
  AttnArgs args;
  std::shared_ptr<std::vector<int32_t>> ints;
};
SdpaCall ReadSdpaArgs(Napi::Env env, const Napi::Value* args);

// gemm's kGemmArgCount positional arguments (abi.h), checked (native/gemm_binding.cc).
struct GemmArgs {
  const float* x;
  int64_t M, K, N;
  const float* packed;
  const float* bias;  // or null
  float* y;
};
GemmArgs ReadGemmArgs(Napi::Env env, const Napi::Value* args);
void RunGemm(const GemmArgs& g);  // may throw std::bad_alloc

}  // namespace qkv
