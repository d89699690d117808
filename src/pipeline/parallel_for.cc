#include "pipeline/parallel_for.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace ferry::pipeline {
namespace {

// Threads that outlive a call, so per-thread state (the tokenizer's piece cache) stays warm from
// one batch to the next and no thread is started per call. One job at a time: a call that finds
// the pool busy (another thread's batch, or a ParallelFor inside a task) starts its own threads
// instead, so nesting cannot deadlock.
//
// fork(): only the forking thread exists in the child, so the child must not touch a pool whose
// threads (and perhaps locked mutex) stayed behind. An atfork handler forgets the pool in the
// child (leaking it: its memory may be in any state) and the child's first call makes a new one.
class WorkerPool {
 public:
  static WorkerPool& Get() {
    WorkerPool* pool = current_.load(std::memory_order_acquire);
    if (pool) return *pool;
    static std::once_flag atfork;  // the handler survives in the child; register it once
    std::call_once(atfork, [] { pthread_atfork(nullptr, nullptr, [] { current_.store(nullptr); }); });
    auto* fresh = new WorkerPool();
    if (current_.compare_exchange_strong(pool, fresh)) return *fresh;
    delete fresh;  // another thread installed one first
    return *pool;
  }

  // Runs `job` on the calling thread and on up to `helpers` pool threads, returning when all have
  // finished it. False (nothing run) when the pool is busy.
  bool TryRun(size_t helpers, const std::function<void()>& job) {
    std::unique_lock<std::mutex> run_lock(run_mu_, std::try_to_lock);
    if (!run_lock.owns_lock()) return false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      while (threads_.size() < helpers) {
        try {
          threads_.emplace_back([this] { Loop(); });
        } catch (const std::system_error&) {
          break;  // no more threads to be had: the ones there do the work
        }
      }
      job_ = &job;
      wanted_ = std::min(helpers, threads_.size());
      claimed_ = finished_ = 0;
      ++generation_;
    }
    wake_.notify_all();
    job();
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [&] { return finished_ == wanted_; });
    job_ = nullptr;
    return true;
  }

 private:
  void Loop() {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      wake_.wait(lock, [&] { return generation_ != seen; });
      seen = generation_;
      if (claimed_ == wanted_) continue;  // this job wants fewer threads than the pool has
      ++claimed_;
      const std::function<void()>* job = job_;
      lock.unlock();
      (*job)();
      lock.lock();
      if (++finished_ == wanted_) done_.notify_one();
    }
  }

  static inline std::atomic<WorkerPool*> current_{nullptr};
  std::mutex run_mu_;  // held for a whole job
  std::mutex mu_;      // guards the fields below
  std::condition_variable wake_, done_;
  std::vector<std::thread> threads_;  // never joined: the pool lives as long as the process
  const std::function<void()>* job_ = nullptr;
  uint64_t generation_ = 0;
  size_t wanted_ = 0, claimed_ = 0, finished_ = 0;
};

}  // namespace

size_t WindowSize(size_t count, int threads, size_t max_window) {
  size_t slots = 4 * static_cast<size_t>(std::max(threads, 1));
  size_t window = (count + slots - 1) / slots;
  return std::clamp<size_t>(window, 1, std::max<size_t>(max_window, 1));
}

Status ParallelForWindows(size_t count, int threads, size_t max_window,
                          const std::function<Status(size_t)>& task) {
  size_t workers = std::min<size_t>(count, static_cast<size_t>(std::max(threads, 1)));
  // A task that throws (bad_alloc, a bug) fails like one that returns an error, on any thread.
  auto guarded = [&task](size_t i) -> Status {
    try {
      return task(i);
    } catch (const std::exception& e) {
      return Internal("task " + std::to_string(i) + " threw: " + e.what());
    }
  };
  if (workers <= 1) {
    for (size_t i = 0; i < count; ++i) FERRY_RETURN_IF_ERROR(guarded(i));
    return Status::Ok();
  }
  const size_t window = WindowSize(count, static_cast<int>(workers), max_window);

  // The counter every thread hits gets a cache line of its own.
  struct alignas(64) Counter {
    std::atomic<size_t> next{0};
  } counter;
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first_error;

  auto run = [&] {
    while (!failed.load(std::memory_order_relaxed)) {
      size_t begin = counter.next.fetch_add(window, std::memory_order_relaxed);
      if (begin >= count) return;
      size_t end = std::min(begin + window, count);
      for (size_t i = begin; i < end; ++i) {
        Status status = guarded(i);
        if (!status.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          if (!failed.exchange(true)) first_error = std::move(status);
          return;
        }
        if (failed.load(std::memory_order_relaxed)) return;
      }
    }
  };
  const std::function<void()> job = run;
  if (WorkerPool::Get().TryRun(workers - 1, job)) return first_error;
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  for (size_t t = 1; t < workers; ++t) {
    try {
      pool.emplace_back(run);
    } catch (const std::system_error&) {
      break;  // no more threads to be had: the ones started (and this one) do the work
    }
  }
  run();
  for (std::thread& thread : pool) thread.join();
  return first_error;
}

Status ParallelFor(size_t count, int threads, const std::function<Status(size_t)>& task) {
  return ParallelForWindows(count, threads, 1, task);
}

}  // namespace ferry::pipeline
