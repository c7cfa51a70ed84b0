// The addon's entry point: registers every binding. Context-aware (N-API), so it loads in any
// number of worker_threads; it holds no per-environment state of its own.
#include <napi.h>

#include "bindings.h"
#include "dispatch.h"

namespace {

Napi::Value Simd(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), qkv::SimdName()); }

Napi::Value BestSimd(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), qkv::BestSimdName()); }

// Test hook: forces the kernel set process-wide ("scalar", the best one's name, or "auto").
Napi::Value SetSimd(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(info.Env(), "Expected string for name");
  return Napi::Boolean::New(info.Env(), qkv::SetSimd(info[0].As<Napi::String>().Utf8Value().c_str()));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("simd", Napi::Function::New(env, Simd, "simd"));
  exports.Set("bestSimd", Napi::Function::New(env, BestSimd, "bestSimd"));
  exports.Set("_setSimd", Napi::Function::New(env, SetSimd, "_setSimd"));
  qkv::InitSdpa(env, exports);
  qkv::InitGemm(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(qkv, Init)
