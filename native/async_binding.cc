// runAsync(ops, callback) -> id
//   ops: an array of operations run one after another on the pool, each an array
//        ['sdpa', <sdpa's 12 arguments>] or ['gemm', <gemm's 7 arguments>].
//   callback(error | null) runs on this JS thread when all are done (native/async_call.h).
// Every op is read and checked here, on the JS thread, before anything is queued: a bad op throws
// synchronously and nothing runs. A whole layer forward is one call, so it leaves the event loop
// once. cancelAsync(id) (native/async_call.cc) removes a call that has not started.
#include <napi.h>

#include <string>
#include <vector>

#include "args.h"
#include "async_call.h"
#include "bindings.h"

namespace qkv {
namespace {

struct Op {
  enum Kind { kSdpa, kGemm } kind;
  AttnArgs sdpa;
  GemmArgs gemm;
};

Napi::Value RunAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsArray() || !info[1].IsFunction()) {
    throw Napi::TypeError::New(env, "Expected (ops: Array, callback: Function) for runAsync");
  }
  Napi::Array ops = info[0].As<Napi::Array>();
  std::vector<Op> plan;
  std::vector<Napi::Value> pins;
  for (uint32_t i = 0; i < ops.Length(); ++i) {
    const std::string name = "ops[" + std::to_string(i) + "]";
    Napi::Value opValue = ops.Get(i);
    if (!opValue.IsArray()) throw Napi::TypeError::New(env, "Expected an array for " + name);
    Napi::Array op = opValue.As<Napi::Array>();
    Napi::Value tag = op.Get(0u);
    const std::string kind = tag.IsString() ? tag.As<Napi::String>().Utf8Value() : "";
    const size_t count = kind == "sdpa" ? kSdpaArgCount : kind == "gemm" ? kGemmArgCount : 0;
    if (count == 0) throw Napi::TypeError::New(env, "Expected 'sdpa' or 'gemm' for " + name + "[0]");
    if (op.Length() != count + 1) {
      ThrowRange(env, name + ".length", std::to_string(count + 1), std::to_string(op.Length()));
    }
    std::vector<Napi::Value> args(count);
    for (size_t a = 0; a < count; ++a) {
      args[a] = op.Get(static_cast<uint32_t>(a + 1));
      pins.push_back(args[a]);
    }
    Op o{};
    o.kind = kind == "sdpa" ? Op::kSdpa : Op::kGemm;
    if (o.kind == Op::kSdpa) o.sdpa = ReadSdpaArgs(env, args.data());
    else o.gemm = ReadGemmArgs(env, args.data());
    plan.push_back(o);
  }
  const uint32_t id = StartAsync(env, info[1].As<Napi::Function>(), pins, [plan]() -> std::string {
    for (const Op& o : plan) {
      if (o.kind == Op::kSdpa) AttentionForward(o.sdpa);
      else RunGemm(o.gemm);
    }
    return {};
  });
  return Napi::Number::New(env, id);
}

}  // namespace

void InitAsyncOps(Napi::Env env, Napi::Object exports) {
  exports.Set("runAsync", Napi::Function::New(env, RunAsync, "runAsync"));
}

}  // namespace qkv
