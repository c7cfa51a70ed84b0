// The addon's entry point: registers every binding. Context-aware (N-API), so it loads in any
// number of worker_threads; its only per-environment state is the table of async calls in flight
// (native/async_call.cc), so that a terminated worker's calls can be settled safely.
#include <napi.h>

#include "bindings.h"
#include "args.h"
#include "async_call.h"
#include "dispatch.h"
#include "thread_pool.h"

namespace {

Napi::Value Simd(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), qkv::SimdName()); }

Napi::Value BestSimd(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), qkv::BestSimdName()); }

// Test hook: forces the kernel set process-wide ("scalar", the best one's name, or "auto").
Napi::Value SetSimd(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(info.Env(), "Expected string for name");
  return Napi::Boolean::New(info.Env(), qkv::SetSimd(info[0].As<Napi::String>().Utf8Value().c_str()));
}

Napi::Value Threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), qkv::Threads()); }

Napi::Value AsyncPriority(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), qkv::AsyncPriorityIdle() ? "idle" : "normal");
}

// The pool is process-wide: every worker_thread and every call shares it.
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  qkv::SetThreads(static_cast<int>(qkv::ExpectInt(info[0], "threads", 1, 1024)));
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("threads", Napi::Function::New(env, Threads, "threads"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("asyncPriority", Napi::Function::New(env, AsyncPriority, "asyncPriority"));
  qkv::AsyncPriorityIdle();  // pins QKV_ASYNC_PRIORITY as it is at load
  exports.Set("simd", Napi::Function::New(env, Simd, "simd"));
  exports.Set("bestSimd", Napi::Function::New(env, BestSimd, "bestSimd"));
  exports.Set("_setSimd", Napi::Function::New(env, SetSimd, "_setSimd"));
  qkv::InitAsync(env, exports);
  qkv::InitSdpa(env, exports);
  qkv::InitGemm(env, exports);
  qkv::InitAsyncOps(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(qkv, Init)
