// SPDX-License-Identifier: MIT
//
// runAsync(ops, callback) -> id
//   ops: an array of operations run one after another on the pool, each an array
//        ['sdpa', <sdpa's 15 arguments>], ['gemm', <gemm's 7 arguments>] or ['rope', <rope's 9>].
//   callback(error | null) runs on this JS thread when all are done (native/async_call.h).
// Every op is read and checked here, on the JS thread, before anything is queued: a bad op throws
// synchronously and nothing runs. A whole layer forward is one call, so it leaves the event loop
// once. cancelAsync(id) (native/async_call.cc) removes a call that has not started.
#include <napi.h>

#include <new>
#include <string>
#include <vector>

#include "args.h"
#include "async_call.h"
#include "bindings.h"
#include "gemm.h"

namespace qkv {
namespace {

struct Op {
  enum Kind { kSdpa, kGemm, kRope } kind;
  SdpaCall sdpa;
  GemmArgs gemm;
  RopeArgs rope;
};

struct Range {
  const char* name;
  const void* begin;
  const void* end;
};

Range FloatRange(const char* name, const float* p, int64_t n) { return {name, p, p == nullptr ? p : p + n}; }

bool Overlaps(const Range& a, const Range& b) {
  return a.begin != nullptr && b.begin != nullptr && a.begin < b.end && b.begin < a.end;
}

// Reads and checks an op list (ops: the JS array); `pins` receives every argument value, which an
// async call keeps alive until it settles. Throws (a JS exception) on any bad op, before anything runs.
std::vector<Op> ReadOps(Napi::Env env, Napi::Array ops, const char* fn, std::vector<Napi::Value>& pins) {
  // 1. Read every value first. Reading an element may run JS (a getter), and JS may detach or
  //    shrink a buffer: nothing is checked, and no pointer taken, until every value is in hand.
  struct RawOp {
    std::string name;
    Op::Kind kind;
    std::vector<Napi::Value> args;
  };
  std::vector<RawOp> raw;
  const uint32_t count_ops = ops.Length();
  for (uint32_t i = 0; i < count_ops; ++i) {
    RawOp r;
    r.name = "ops[" + std::to_string(i) + "]";
    Napi::Value opValue = ops.Get(i);
    if (!opValue.IsArray()) throw Napi::TypeError::New(env, "Expected an array for " + r.name);
    Napi::Array op = opValue.As<Napi::Array>();
    Napi::Value tag = op.Get(0u);
    const std::string kind = tag.IsString() ? tag.As<Napi::String>().Utf8Value() : "";
    const size_t count = kind == "sdpa" ? kSdpaArgCount : kind == "gemm" ? kGemmArgCount : kind == "rope" ? kRopeArgCount : 0;
    if (count == 0) throw Napi::TypeError::New(env, "Expected 'sdpa', 'gemm' or 'rope' for " + r.name + "[0]");
    if (op.Length() != count + 1) {
      ThrowLength(env, r.name, "1+args = 1+" + std::to_string(count) + " = " + std::to_string(count + 1), op.Length());
    }
    r.kind = kind == "sdpa" ? Op::kSdpa : kind == "gemm" ? Op::kGemm : Op::kRope;
    r.args.resize(count);
    for (size_t a = 0; a < count; ++a) {
      r.args[a] = op.Get(static_cast<uint32_t>(a + 1));
      pins.push_back(r.args[a]);
    }
    raw.push_back(std::move(r));
  }

  // 2. Check them (no JS runs from here on, so what is checked is what runs). Each op keeps its
  //    own copies of everything that steers indexing, taken now (ReadSdpaArgs: dims, offsets,
  //    kvLengths; ReadGemmArgs: the packed weight's header): the job reads none of them from the
  //    caller's arrays, which JS (or another thread, through a SharedArrayBuffer) can still write.
  std::vector<Op> plan;
  std::vector<Range> written;  // outputs of every op
  std::vector<Range> weights;  // packed weights of every op
  for (const RawOp& r : raw) {
    Op o{};
    o.kind = r.kind;
    if (o.kind == Op::kSdpa) {
      o.sdpa = ReadSdpaArgs(env, r.args.data());
      const AttnArgs& a = o.sdpa.args;
      const AttnShape& s = a.shape;
      written.push_back(FloatRange("out", a.out, s.B * s.H * s.Sq * s.Dv));
      written.push_back(FloatRange("weights", a.weights, s.B * s.H * s.Sq * s.Sk));
      written.push_back(FloatRange("scores", a.scores, s.B * s.H * s.Sq * s.Sk));
    } else if (o.kind == Op::kRope) {
      o.rope = ReadRopeArgs(env, r.args.data());
      const RopeArgs& p = o.rope;
      written.push_back(FloatRange("out", p.out, (p.B - 1) * p.sb + (p.S - 1) * p.ss + (p.H - 1) * p.sh + p.D));
    } else {
      o.gemm = ReadGemmArgs(env, r.args.data());
      const GemmArgs& g = o.gemm;
      written.push_back(FloatRange("y", g.y, g.M * g.N));
      weights.push_back(FloatRange("packed", g.packed, g.packed_length));
    }
    plan.push_back(std::move(o));
  }
  // An op's output must not overwrite a packed weight of any op in the same call (within one op,
  // ReadGemmArgs already checks it): a later op would multiply by something that is no longer
  // the weight it was given (its header copy is safe either way).
  for (const Range& w : written) {
    for (const Range& t : weights) {
      if (Overlaps(w, t)) {
        ThrowRange(env, std::string("an output (") + w.name + ") of " + fn + "'s ops",
                   std::string("memory that does not overlap any op's ") + t.name, "an overlapping view");
      }
    }
  }

  return plan;
}

void RunOps(const std::vector<Op>& plan) {
  for (const Op& o : plan) {
    if (o.kind == Op::kSdpa) AttentionForward(o.sdpa.args);
    else if (o.kind == Op::kRope) RunRope(o.rope);
    else RunGemm(o.gemm);
  }
}

// runOps(ops): the same op list run now, on this thread and the pool, before it returns: a sync
// layer forward is one call into the addon, not one per GEMM.
Napi::Value RunOpsSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "Expected (ops: Array) for runOps");
  std::vector<Napi::Value> pins;
  const std::vector<Op> plan = ReadOps(env, info[0].As<Napi::Array>(), "runOps", pins);
  try {
    RunOps(plan);
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(env, "Could not allocate a workspace for runOps (out of memory)");
  }
  return env.Undefined();
}

Napi::Value RunAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsArray() || !info[1].IsFunction()) {
    throw Napi::TypeError::New(env, "Expected (ops: Array, callback: Function) for runAsync");
  }
  std::vector<Napi::Value> pins;
  std::vector<Op> plan = ReadOps(env, info[0].As<Napi::Array>(), "runAsync", pins);
  const uint32_t id = StartAsync(env, info[1].As<Napi::Function>(), pins, [plan = std::move(plan)]() -> std::string {
    RunOps(plan);
    return {};
  });
  return Napi::Number::New(env, id);
}

}  // namespace

void InitAsyncOps(Napi::Env env, Napi::Object exports) {
  exports.Set("runAsync", Napi::Function::New(env, RunAsync, "runAsync"));
  exports.Set("runOps", Napi::Function::New(env, RunOpsSync, "runOps"));
}

}  // namespace qkv
