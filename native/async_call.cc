// Async calls on the library's own pool, completed through a per-call thread-safe function: the
// lifetime rules and the worker_thread teardown of async_call.h.
#include "async_call.h"

#include <condition_variable>
#include <mutex>
#include <new>
#include <unordered_map>

#include "args.h"
#include "thread_pool.h"

namespace qkv {
namespace {

class AsyncCall;

// Calls of one environment (the main thread or one worker_thread), by id. JS thread only.
struct Registry {
  uint32_t next_id = 1;
  std::unordered_map<uint32_t, AsyncCall*> calls;
};

Registry& RegistryOf(Napi::Env env) {
  Registry* r = env.GetInstanceData<Registry>();
  if (r == nullptr) {
    r = new Registry();
    env.SetInstanceData(r);  // deleted with the environment
  }
  return *r;
}

class AsyncCall final : public PoolJob {
 public:
  AsyncCall(Napi::Env env, uint32_t id, AsyncCompute compute) : env_(env), id_(id), compute_(std::move(compute)) {}

  // JS thread, once, right after construction. Throws a Napi::Error when the TSFN cannot be made.
  void Start(Napi::Function callback, const std::vector<Napi::Value>& pins) {
    for (const Napi::Value& v : pins) {
      if (v.IsObject()) pins_.push_back(Napi::Persistent(v));  // numbers need no pin (and cannot have one)
    }
    napi_status s = napi_create_threadsafe_function(env_, callback, nullptr, Napi::String::New(env_, "qkv"), 0, 1,
                                                    this, Finalize, this, CallJs, &tsfn_);
    NAPI_THROW_IF_FAILED_VOID(env_, s);
    napi_add_env_cleanup_hook(env_, OnEnvTeardown, this);
    hook_registered_ = true;
  }

  // Pool thread.
  void Run() override {
    std::string error;
    try {
      error = compute_();
    } catch (const std::bad_alloc&) {
      error = "Could not allocate the workspace for this call (out of memory)";
    } catch (const std::exception& e) {
      error = e.what();
    }
    std::lock_guard<std::mutex> lock(mu_);
    error_ = std::move(error);
    computed_ = true;
    if (!closing_) {
      // Unbounded queue: never blocks. After the release, the finalizer may run at any time.
      napi_call_threadsafe_function(tsfn_, nullptr, napi_tsfn_nonblocking);
      napi_release_threadsafe_function(tsfn_, napi_tsfn_release);
    }
    done_cv_.notify_all();
  }

  // JS thread: takes the call off the pool's queue if it has not started.
  bool Cancel() {
    if (!qkv::Cancel(this)) return false;
    Abandon();
    return true;
  }

  // JS thread, for a call that will never run: the finalizer then deletes it.
  void Abandon() {
    Forget();
    napi_release_threadsafe_function(tsfn_, napi_tsfn_abort);
  }

 private:
  // JS thread: the call no longer needs its id or its teardown hook.
  void Forget() {
    RegistryOf(env_).calls.erase(id_);
    if (hook_registered_) napi_remove_env_cleanup_hook(env_, OnEnvTeardown, this);
    hook_registered_ = false;
  }

  // Raw N-API on purpose: this runs outside any callback scope of node-addon-api, so a C++
  // exception here would terminate the process. While a worker_thread is being terminated, N-API
  // refuses to call into JS; the status is then ignored and the call simply goes unreported.
  static void CallJs(napi_env env, napi_value callback, void* context, void* /*data*/) {
    auto* self = static_cast<AsyncCall*>(context);
    if (env == nullptr) return;  // tearing down: nobody to tell
    self->Forget();
    napi_value arg = nullptr;
    if (self->error_.empty()) {
      napi_get_null(env, &arg);
    } else {
      napi_value message = nullptr;
      napi_create_string_utf8(env, self->error_.c_str(), self->error_.size(), &message);
      napi_create_range_error(env, nullptr, message, &arg);
    }
    napi_value undefined = nullptr;
    napi_get_undefined(env, &undefined);
    napi_value result = nullptr;
    if (arg != nullptr) napi_call_function(env, undefined, callback, 1, &arg, &result);
  }

  // JS thread (or teardown): the TSFN is gone, so nothing can call back any more.
  static void Finalize(napi_env /*env*/, void* data, void* /*hint*/) {
    auto* self = static_cast<AsyncCall*>(data);
    { std::lock_guard<std::mutex> lock(self->mu_); }  // the pool thread has left Run()
    delete self;  // unpins the buffers
  }

  // Environment teardown (worker terminated): runs before the TSFN's own teardown hook.
  static void OnEnvTeardown(void* arg) {
    auto* self = static_cast<AsyncCall*>(arg);
    self->hook_registered_ = false;
    if (qkv::Cancel(self)) {
      napi_release_threadsafe_function(self->tsfn_, napi_tsfn_abort);
      return;
    }
    std::unique_lock<std::mutex> lock(self->mu_);
    self->closing_ = true;
    self->done_cv_.wait(lock, [self] { return self->computed_; });
  }

  Napi::Env env_;
  uint32_t id_;
  AsyncCompute compute_;
  std::vector<Napi::Reference<Napi::Value>> pins_;
  napi_threadsafe_function tsfn_ = nullptr;
  bool hook_registered_ = false;

  std::mutex mu_;
  std::condition_variable done_cv_;
  bool computed_ = false;  // guarded by mu_
  bool closing_ = false;   // guarded by mu_
  std::string error_;      // written under mu_ before computed_, read on the JS thread after
};

Napi::Value CancelAsyncJs(const Napi::CallbackInfo& info) {
  const uint32_t id = static_cast<uint32_t>(ExpectInt(info[0], "id", 0, UINT32_MAX));
  return Napi::Boolean::New(info.Env(), CancelAsync(info.Env(), id));
}

}  // namespace

uint32_t StartAsync(Napi::Env env, Napi::Function callback, const std::vector<Napi::Value>& pins,
                    AsyncCompute compute) {
  Registry& registry = RegistryOf(env);
  const uint32_t id = registry.next_id++;
  auto* call = new AsyncCall(env, id, std::move(compute));
  try {
    call->Start(callback, pins);
  } catch (...) {
    delete call;
    throw;
  }
  registry.calls[id] = call;
  if (!Submit(call)) {
    call->Abandon();
    throw Napi::Error::New(env, "Could not start a compute thread");
  }
  return id;
}

bool CancelAsync(Napi::Env env, uint32_t id) {
  Registry& registry = RegistryOf(env);
  auto it = registry.calls.find(id);
  return it != registry.calls.end() && it->second->Cancel();
}

void InitAsync(Napi::Env env, Napi::Object exports) {
  exports.Set("cancelAsync", Napi::Function::New(env, CancelAsyncJs, "cancelAsync"));
}

}  // namespace qkv
