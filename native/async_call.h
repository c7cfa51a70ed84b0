// Async calls: compute on the library's own pool (native/thread_pool.h), never on the libuv pool,
// and complete back on the JS thread through a per-call thread-safe function.
//
// Lifetime, per call:
//   JS thread   StartAsync(): pins every buffer (Napi::Reference), creates the TSFN, registers an
//               env cleanup hook, queues the job, returns its id (for CancelAsync).
//   pool thread Run(): computes, then queues the completion on the TSFN and releases it.
//   JS thread   the completion calls callback(null) or callback(error); the TSFN finalizer then
//               unpins the buffers and deletes the job.
// A worker_thread terminated with calls in flight: the per-call cleanup hook (registered after
// the TSFN, so it runs before the TSFN's own teardown) takes queued jobs off the pool and waits
// for a running one to finish computing, so no pool thread ever writes into freed memory or
// touches a TSFN being torn down.
#pragma once

#include <napi.h>

#include <functional>
#include <string>
#include <vector>

namespace qkv {

// The work of one call; runs on a pool thread. Returns an error message, or "" on success.
// It must not touch N-API.
using AsyncCompute = std::function<std::string()>;

// Queues compute on the pool. `pins` are the JS values (buffers) to keep alive until the call
// settles; `callback(error | null)` runs on this JS thread afterwards. Returns the call's id.
uint32_t StartAsync(Napi::Env env, Napi::Function callback, const std::vector<Napi::Value>& pins,
                    AsyncCompute compute);

// Removes a call that has not started. Returns true when it was removed (its callback is then
// never called); false when it already started or finished.
bool CancelAsync(Napi::Env env, uint32_t id);

// Registers `cancelAsync(id)` on the exports.
void InitAsync(Napi::Env env, Napi::Object exports);

}  // namespace qkv
