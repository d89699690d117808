#include "pipeline/parallel_for.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

namespace ferry::pipeline {

Status ParallelFor(size_t count, int threads, const std::function<Status(size_t)>& task) {
  size_t workers = std::min<size_t>(count, static_cast<size_t>(std::max(threads, 1)));
  if (workers <= 1) {
    for (size_t i = 0; i < count; ++i) FERRY_RETURN_IF_ERROR(task(i));
    return Status::Ok();
  }

  // The counter every thread hits gets a cache line of its own.
  struct alignas(64) Counter {
    std::atomic<size_t> next{0};
  } counter;
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first_error;

  auto run = [&] {
    while (!failed.load(std::memory_order_relaxed)) {
      size_t i = counter.next.fetch_add(1, std::memory_order_relaxed);
      if (i >= count) return;
      Status status = task(i);
      if (!status.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (!failed.exchange(true)) first_error = std::move(status);
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  for (size_t t = 1; t < workers; ++t) pool.emplace_back(run);
  run();
  for (std::thread& thread : pool) thread.join();
  return first_error;
}

}  // namespace ferry::pipeline
