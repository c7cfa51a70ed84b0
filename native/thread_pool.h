// One persistent, process-wide pool of compute threads, shared by every call, layer and
// worker_thread. Threads are created when first needed and then kept; idle threads sleep on a
// condition variable (no spinning). Two kinds of work:
//   - ParallelFor: splits one call's independent items (attention tiles, GEMM blocks) over the
//     calling thread and up to Threads() - 1 pool threads, and returns when all are done.
//   - Submit: queues a whole job (an async call) to run on a pool thread, first in, first out;
//     the job usually calls ParallelFor itself. In-flight ParallelFor items are helped before a
//     new job starts, so one request finishes early rather than all finishing late.
// And two kinds of pool threads: helpers, which help the ParallelFor calls of threads outside the
// pool (a sync call on the event loop or a worker_thread), and background workers, which run the
// async jobs and help the ParallelFor calls those make. On Linux background workers run under
// SCHED_IDLE (unless ConfigureAsyncPriority(false)), so the event loop never waits for a core they
// hold.
#pragma once

#include <cstdint>
#include <functional>

namespace qkv {

// A queued async job. Run() executes on a pool thread; nothing else is called on it by the pool.
class PoolJob {
 public:
  virtual ~PoolJob() = default;
  virtual void Run() = 0;
};

// Threads that compute one call, including the caller. Set by SetThreads; at least 1.
int Threads();

// Whether background workers run under SCHED_IDLE (Linux). Process-wide and fixed once: by the
// first ConfigureAsyncPriority call, or (idle) when the first background worker starts before
// any; later calls change nothing, so info() and every worker agree.
bool AsyncPriorityIdle();

// Sets AsyncPriorityIdle() if it is not fixed yet (lib/ calls it once at load, from
// QKV_ASYNC_PRIORITY). Returns the value in effect.
bool ConfigureAsyncPriority(bool idle);

// n >= 1. Extra threads are created on demand; surplus ones sleep and take no work.
void SetThreads(int n);

// How many threads should share n items now: min(Threads(), n), at least 1.
int ParallelSlots(int64_t n);

// Calls fn(item, slot) for every item in [0, n), on the calling thread (slot 0) and up to
// slots - 1 pool threads (slots 1, 2, ...). A slot is never used by two threads at once, so
// per-slot scratch the caller prepared needs no lock. Items must be independent. Returns after
// every call has returned.
void ParallelFor(int64_t n, int slots, const std::function<void(int64_t item, int slot)>& fn);

// Queues a job (FIFO). The pool does not own it: Run() must arrange its own cleanup. Returns
// false, queuing nothing, when not a single pool thread could be started.
bool Submit(PoolJob* job);

// Removes a job that has not started. Returns false if it already started (or is unknown).
bool Cancel(PoolJob* job);

}  // namespace qkv
