// Each binding file registers its functions on the addon's exports. The readers are shared with
// native/async_binding.cc, which runs the same operations on the pool: one set of checks for the
// sync and the async path.
#pragma once

#include <napi.h>

#include <cstdint>

#include "attention.h"

namespace qkv {

void InitSdpa(Napi::Env env, Napi::Object exports);
void InitGemm(Napi::Env env, Napi::Object exports);
void InitAsyncOps(Napi::Env env, Napi::Object exports);

// sdpa's 12 positional arguments, checked (native/sdpa_binding.cc).
constexpr size_t kSdpaArgCount = 12;
AttnArgs ReadSdpaArgs(Napi::Env env, const Napi::Value* args);

// gemm's 7 positional arguments, checked (native/gemm_binding.cc).
struct GemmArgs {
  const float* x;
  int64_t M, K, N;
  const float* packed;
  const float* bias;  // or null
  float* y;
};
constexpr size_t kGemmArgCount = 7;
GemmArgs ReadGemmArgs(Napi::Env env, const Napi::Value* args);
void RunGemm(const GemmArgs& g);  // may throw std::bad_alloc

}  // namespace qkv
