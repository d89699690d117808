#include "pipeline/parallel_for.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace ferry::pipeline {
namespace {

TEST(ParallelForTest, RunsEveryTaskExactlyOnce) {
  for (int threads : {1, 2, 8}) {
    std::vector<std::atomic<int>> runs(1000);
    ASSERT_TRUE(ParallelFor(runs.size(), threads, [&](size_t i) {
                  runs[i].fetch_add(1);
                  return Status::Ok();
                }).ok());
    for (auto& r : runs) EXPECT_EQ(r.load(), 1);
  }
}

TEST(ParallelForTest, UsesSeveralThreads) {
  std::mutex mu;
  std::set<std::thread::id> ids;
  std::atomic<int> waiting{0};
  ASSERT_TRUE(ParallelFor(4, 4, [&](size_t) {
                {
                  std::lock_guard<std::mutex> lock(mu);
                  ids.insert(std::this_thread::get_id());
                }
                // Hold every task until all four run at once: only possible with four threads.
                waiting.fetch_add(1);
                while (waiting.load() < 4) std::this_thread::yield();
                return Status::Ok();
              }).ok());
  EXPECT_EQ(ids.size(), 4u);
}

TEST(ParallelForTest, FirstErrorStopsNewTasksAndIsReturned) {
  for (int threads : {1, 3}) {
    std::atomic<int> started{0};
    Status s = ParallelFor(10'000, threads, [&](size_t i) {
      started.fetch_add(1);
      return i == 5 ? IoError("task 5 failed") : Status::Ok();
    });
    EXPECT_EQ(s.code(), StatusCode::kIoError);
    EXPECT_EQ(s.message(), "task 5 failed");
    EXPECT_LT(started.load(), 10'000);
  }
}

TEST(ParallelForTest, ZeroTasksIsOk) {
  EXPECT_TRUE(ParallelFor(0, 4, [](size_t) { return Internal("never"); }).ok());
}

}  // namespace
}  // namespace ferry::pipeline
