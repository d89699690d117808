#include "pipeline/parallel_for.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace ferry::pipeline {

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
