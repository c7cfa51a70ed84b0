// The process-wide compute pool of thread_pool.h: helpers for sync calls' ParallelFor, background
// workers for async jobs (SCHED_IDLE on Linux unless configured otherwise), both created on demand
// and kept for the life of the process.
#include "thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

namespace qkv {
namespace {

// Pool threads come in two kinds (thread_pool.h). A ParallelFor is "background" when its caller
// is itself a background worker (an async job splitting its work); only workers of the same kind
// help it, so a sync call never waits on a thread that runs at idle priority.
enum Kind { kHelper = 0, kBackground = 1 };

thread_local bool t_background = false;

// Background workers drop to SCHED_IDLE: with every core busy computing async calls, a woken
// event-loop thread then takes a core at once, where under the normal policy it waits for the
// running thread's time slice (bench/RESULTS.md, "Measurements formerly in code comments").
// Unprivileged threads cannot leave SCHED_IDLE, which is why sync calls get their own helpers.
// ConfigureAsyncPriority(false) (QKV_ASYNC_PRIORITY=normal, validated and passed on by lib/) keeps
// the normal policy. Best effort: a refusal leaves the thread as it was.

// Called by the thread that creates the worker, before it is detached: when Submit returns, every
// background worker already runs at idle priority, whether or not it has been scheduled yet.
void LowerPriority(std::thread& t) {
#if defined(__linux__)
  sched_param param{};
  param.sched_priority = 0;
  pthread_setschedparam(t.native_handle(), SCHED_IDLE, &param);
#else
  (void)t;
#endif
}

// -1: not fixed yet (reads as idle); 0 normal, 1 idle once fixed.
std::atomic<int> g_priority{-1};

// Fixes the priority at `idle` unless it is fixed already; returns the value in effect.
bool FixPriority(bool idle) {
  int expected = -1;
  g_priority.compare_exchange_strong(expected, idle ? 1 : 0, std::memory_order_acq_rel);
  return g_priority.load(std::memory_order_acquire) == 1;
}

// One ParallelFor in progress. Lives on its caller's stack; the caller leaves only when every
// item is done and no helper still holds a pointer to it.
struct Task {
  const std::function<void(int64_t, int)>* fn;
  int64_t n;
  Kind kind;            // which workers may help
  std::atomic<int64_t> next{0};
  int64_t done = 0;     // guarded by Pool::mu_
  int helpers = 0;      // guarded by Pool::mu_: helpers working now
  int joined = 0;       // guarded by Pool::mu_: helpers so far, which numbers their slots
  int max_helpers = 0;

  // Runs items until none is left unclaimed; returns how many this thread ran. A helper leaves
  // only when no item is left to claim, so no later helper can join and reuse its slot.
  int64_t Work(int slot) {
    int64_t ran = 0;
    for (int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < n;
         i = next.fetch_add(1, std::memory_order_relaxed)) {
      (*fn)(i, slot);
      ++ran;
    }
    return ran;
  }
  bool Claimable() const { return helpers < max_helpers && next.load(std::memory_order_relaxed) < n; }
};

class Pool {
 public:
  // Never destroyed: pool threads may still be parked when the process exits, and joining them
  // from a static destructor would race with other exit-time teardown.
  static Pool& Get() {
    static Pool* pool = new Pool();
    return *pool;
  }

  int threads() const { return threads_.load(std::memory_order_relaxed); }

  void SetThreads(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    threads_.store(std::max(1, n), std::memory_order_relaxed);
    work_cv_[kHelper].notify_all();
    work_cv_[kBackground].notify_all();
  }

  void ParallelFor(int64_t n, int slots, const std::function<void(int64_t, int)>& fn) {
    const int helpers = static_cast<int>(std::min<int64_t>(slots - 1, n - 1));
    if (helpers <= 0) {
      for (int64_t i = 0; i < n; ++i) fn(i, 0);
      return;
    }
    Task task;
    task.fn = &fn;
    task.n = n;
    task.kind = t_background ? kBackground : kHelper;
    task.max_helpers = helpers;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // A background caller is one of the background workers: its helpers are the others.
      EnsureWorkers(task.kind, task.kind == kBackground ? helpers + 1 : helpers);
      tasks_.push_front(&task);  // nested work first: it belongs to a call already running
      work_cv_[task.kind].notify_all();
    }
    const int64_t ran = task.Work(0);
    std::unique_lock<std::mutex> lock(mu_);
    task.done += ran;
    tasks_.erase(std::find(tasks_.begin(), tasks_.end(), &task));
    done_cv_.wait(lock, [&] { return task.done == task.n && task.helpers == 0; });
  }

  bool Submit(PoolJob* job) {
    std::lock_guard<std::mutex> lock(mu_);
    if (EnsureWorkers(kBackground, threads()) == 0) return false;
    jobs_.push_back(job);
    work_cv_[kBackground].notify_all();  // notify_one could wake a surplus thread that cannot take it
    return true;
  }

  bool Cancel(PoolJob* job) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find(jobs_.begin(), jobs_.end(), job);
    if (it == jobs_.end()) return false;
    jobs_.erase(it);
    return true;
  }

 private:
  Pool() = default;

  // Called with mu_ held: at least n workers of this kind. Async jobs need at least one
  // background worker even when threads() == 1. If the OS refuses a thread, the pool keeps what
  // it has: ParallelFor callers then do more of the work themselves, and Submit reports failure
  // when no background worker exists at all.
  int EnsureWorkers(Kind kind, int n) {
    int& have = n_workers_[kind];
    for (; have < n; ++have) {
      try {
        std::thread t([this, kind, index = have] { WorkerLoop(kind, index); });
        if (kind == kBackground && FixPriority(true)) LowerPriority(t);
        t.detach();
      } catch (const std::system_error&) {
        break;
      }
    }
    return have;
  }

  Task* ClaimableTask(Kind kind) {
    for (Task* t : tasks_) {
      if (t->kind == kind && t->Claimable()) return t;
    }
    return nullptr;
  }

  // Helpers: at most threads() - 1 help a sync caller. Background workers: threads() in all run
  // async jobs and help each other's ParallelFor calls.
  void WorkerLoop(Kind kind, int index) {
    if (kind == kBackground) {
      t_background = true;
    }
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      Task* task = nullptr;
      work_cv_[kind].wait(lock, [&] {
        const int active = kind == kBackground ? threads() : threads() - 1;
        if (index >= active) return false;  // surplus thread: sleeps until threads grow
        task = ClaimableTask(kind);
        return task != nullptr || (kind == kBackground && !jobs_.empty());
      });
      if (task != nullptr) {
        ++task->helpers;
        const int slot = ++task->joined;
        lock.unlock();
        const int64_t ran = task->Work(slot);
        lock.lock();
        task->done += ran;
        --task->helpers;
        if (task->done == task->n && task->helpers == 0) done_cv_.notify_all();
        continue;
      }
      PoolJob* job = jobs_.front();
      jobs_.pop_front();
      lock.unlock();
      job->Run();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable work_cv_[2];  // per Kind: a wake-up reaches only threads that can act on it
  std::condition_variable done_cv_;
  std::deque<Task*> tasks_;
  std::deque<PoolJob*> jobs_;
  int n_workers_[2] = {0, 0};  // threads started so far, per Kind; they live as long as the process
  std::atomic<int> threads_{1};
};

}  // namespace

bool AsyncPriorityIdle() { return g_priority.load(std::memory_order_acquire) != 0; }

bool ConfigureAsyncPriority(bool idle) { return FixPriority(idle); }

int Threads() { return Pool::Get().threads(); }
int ParallelSlots(int64_t n) { return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(Threads(), n))); }
void SetThreads(int n) { Pool::Get().SetThreads(n); }
void ParallelFor(int64_t n, int slots, const std::function<void(int64_t, int)>& fn) {
  Pool::Get().ParallelFor(n, slots, fn);
}
bool Submit(PoolJob* job) { return Pool::Get().Submit(job); }
bool Cancel(PoolJob* job) { return Pool::Get().Cancel(job); }

}  // namespace qkv
