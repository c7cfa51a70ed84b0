// SPDX-License-Identifier: MIT
//
// The addon's entry point: registers every binding. Context-aware (N-API), so it loads in any
// number of worker_threads; its only per-environment state is the table of async calls in flight
// (native/async_call.cc), so that a terminated worker's calls can be settled safely. The process
// settings (kernel set, async priority, threads) are process-wide and come from lib/, which reads
// and validates the environment: nothing in native/ reads it.
//   supportedSimd() -> string[]       the kernel sets this CPU and OS can run, scalar first, best last
//   configure(simd, asyncPriority, threads) -> boolean   simd: one of those or 'auto' (the best);
//                                     asyncPriority 'idle' | 'normal'; the default thread count. Only
//                                     the first configure in the process applies them (see below)
//   simd(), bestSimd(), _setSimd(name), asyncPriority(), threads(), setThreads(n)
//   _abi() -> { sdpaDimSlots, maxThreads, layouts, kvDtypes, weightDtypes, maskKinds, windowUnbounded,
//               sdpaArgCount }   native/abi.h, for tests
#include <napi.h>

#include <mutex>
#include <string>

#include "abi.h"
#include "args.h"
#include "async_call.h"
#include "bindings.h"
#include "dispatch.h"
#include "thread_pool.h"

namespace {

Napi::Value Simd(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), qkv::SimdName()); }

Napi::Value BestSimd(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), qkv::BestSimdName()); }

Napi::Array Strings(Napi::Env env, const char* const* names, int n) {
  Napi::Array a = Napi::Array::New(env, static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) a.Set(static_cast<uint32_t>(i), Napi::String::New(env, names[i]));
  return a;
}

Napi::Value SupportedSimd(const Napi::CallbackInfo& info) {
  const char* names[qkv::kMaxKernelSets];
  const int n = qkv::SupportedSimd(names);
  return Strings(info.Env(), names, n);
}

std::string ExpectString(const Napi::Value& v, const char* name, const char* what) {
  if (!v.IsString()) throw Napi::TypeError::New(v.Env(), std::string("Expected ") + what + " for " + name + " but received " + qkv::Describe(v));
  return v.As<Napi::String>().Utf8Value();
}

// configure(simd, asyncPriority, threads): lib/ calls it as the addon loads, with values it
// validated (simd is 'auto' or one of supportedSimd()). The pool and the kernel choice are
// process-wide, so only the first configure in the process applies them: a worker_thread that
// loads the package later (with its own copy of the environment) does not reset what the process
// chose or what setThreads() changed since. Returns whether this call applied them.
// Held while the first configure applies its settings and by setThreads: a worker_thread's
// configure that finds the flag set, or a setThreads racing the first configure, then sees the
// settings applied, not half of them, and the first configure cannot overwrite a later setThreads.
std::mutex g_settings_mu;
bool g_configured = false;  // guarded by g_settings_mu

Napi::Value Configure(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3) {
    throw Napi::TypeError::New(env, "Expected 3 arguments for configure but received " + std::to_string(info.Length()));
  }
  const std::string simd = ExpectString(info[0], "simd", "a string");
  const std::string priority = ExpectString(info[1], "asyncPriority", "'idle' | 'normal'");
  if (priority != "idle" && priority != "normal") {
    qkv::ThrowRange(env, "asyncPriority", "'idle' | 'normal'", "'" + priority + "'");
  }
  const int threads = static_cast<int>(qkv::ExpectInt(info[2], "threads", 1, qkv::kMaxThreads));
  if (simd != "auto") {
    const char* names[qkv::kMaxKernelSets];
    const int n = qkv::SupportedSimd(names);
    bool known = false;
    for (int i = 0; i < n; ++i) known = known || simd == names[i];
    if (!known) qkv::ThrowRange(env, "simd", "'auto' or a kernel set of supportedSimd()", "'" + simd + "'");
  }
  std::lock_guard<std::mutex> lock(g_settings_mu);
  if (g_configured) return Napi::Boolean::New(env, false);
  qkv::ConfigureAsyncPriority(priority == "idle");
  qkv::ConfigureSimd(simd.c_str());
  qkv::SetThreads(threads);
  g_configured = true;
  return Napi::Boolean::New(env, true);
}

// Test hook: forces the kernel set process-wide (any of supportedSimd(), or "auto").
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
  const int n = static_cast<int>(qkv::ExpectInt(info[0], "threads", 1, qkv::kMaxThreads));
  std::lock_guard<std::mutex> lock(g_settings_mu);
  qkv::SetThreads(n);
  return info.Env().Undefined();
}

// Test hook: the ABI tables of native/abi.h, which test/native-abi.test.ts compares with
// lib/backend/abi.ts.
Napi::Value Abi(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("sdpaDimSlots", Strings(env, qkv::kSdpaDimNames, qkv::kSdpaDimCount));
  o.Set("maxThreads", Napi::Number::New(env, qkv::kMaxThreads));
  o.Set("layouts", Strings(env, qkv::kLayoutNames, qkv::kLayoutCount));
  o.Set("kvDtypes", Strings(env, qkv::kKvDtypeNames, qkv::kKvDtypeCount));
  o.Set("weightDtypes", Strings(env, qkv::kWeightDtypeNames, qkv::kWeightDtypeCount));
  o.Set("maskKinds", Strings(env, qkv::kMaskKindNames, qkv::kMaskKindCount));
  o.Set("windowUnbounded", Napi::Number::New(env, qkv::kWindowUnbounded));
  o.Set("sdpaArgCount", Napi::Number::New(env, static_cast<double>(qkv::kSdpaArgCount)));
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("threads", Napi::Function::New(env, Threads, "threads"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("asyncPriority", Napi::Function::New(env, AsyncPriority, "asyncPriority"));
  exports.Set("supportedSimd", Napi::Function::New(env, SupportedSimd, "supportedSimd"));
  exports.Set("configure", Napi::Function::New(env, Configure, "configure"));
  exports.Set("simd", Napi::Function::New(env, Simd, "simd"));
  exports.Set("bestSimd", Napi::Function::New(env, BestSimd, "bestSimd"));
  exports.Set("_setSimd", Napi::Function::New(env, SetSimd, "_setSimd"));
  exports.Set("_abi", Napi::Function::New(env, Abi, "_abi"));
  qkv::InitAsync(env, exports);
  qkv::InitSdpa(env, exports);
  qkv::InitGemm(env, exports);
  qkv::InitAsyncOps(env, exports);
  qkv::InitRope(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(qkv, Init)
