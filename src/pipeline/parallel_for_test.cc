#include "pipeline/parallel_for.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>
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

TEST(WindowSchedulerTest, WindowIsAQuarterOfEachThreadsShareClampedToTheLimit) {
  EXPECT_EQ(WindowSize(0, 2, 64), 1u);
  EXPECT_EQ(WindowSize(1, 2, 64), 1u);
  EXPECT_EQ(WindowSize(8, 2, 64), 1u);      // ceil(8 / 8)
  EXPECT_EQ(WindowSize(9, 2, 64), 2u);      // ceil(9 / 8)
  EXPECT_EQ(WindowSize(1000, 2, 64), 64u);  // ceil(1000 / 8) = 125, clamped
  EXPECT_EQ(WindowSize(1000, 8, 64), 32u);  // ceil(1000 / 32)
  EXPECT_EQ(WindowSize(1000, 0, 64), 64u);  // threads < 1 count as one
  EXPECT_EQ(WindowSize(1000, 2, 0), 1u);    // a zero limit still makes progress
}

TEST(WindowSchedulerTest, ThreadsRunContiguousWindowsInOrder) {
  // Every index runs exactly once, and each window of WindowSize() indices runs on one thread,
  // in increasing order (the step a thread took before index i is the one that ran i - 1).
  const size_t count = 10'000;
  const size_t window = WindowSize(count, 3, 16);
  std::vector<std::thread::id> thread_of(count);
  std::vector<uint64_t> step_of(count);
  std::atomic<uint64_t> steps{0};
  std::vector<std::atomic<int>> runs(count);
  ASSERT_TRUE(ParallelForWindows(count, 3, 16, [&](size_t i) {
                thread_of[i] = std::this_thread::get_id();
                step_of[i] = steps.fetch_add(1);
                runs[i].fetch_add(1);
                return Status::Ok();
              }).ok());
  for (auto& r : runs) ASSERT_EQ(r.load(), 1);
  for (size_t i = 1; i < count; ++i) {
    if (i % window == 0) continue;  // a new window may go to any thread
    EXPECT_EQ(thread_of[i], thread_of[i - 1]) << i;
    EXPECT_GT(step_of[i], step_of[i - 1]) << i;
  }
}

TEST(WindowSchedulerTest, FirstErrorStopsTheOtherThreadsMidWindow) {
  std::atomic<int> started{0};
  Status s = ParallelForWindows(100'000, 2, 50'000, [&](size_t i) {
    started.fetch_add(1);
    if (i == 3) return Corruption("item 3 is bad");
    return Status::Ok();
  });
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_EQ(s.message(), "item 3 is bad");
  EXPECT_LT(started.load(), 100'000);  // the other window (50,000 items) was cut short
}

TEST(WindowSchedulerTest, AThrowingTaskIsAnErrorNotATermination) {
  for (int threads : {1, 2}) {
    Status s = ParallelForWindows(100, threads, 4, [](size_t i) -> Status {
      if (i == 42) throw std::runtime_error("out of something");
      return Status::Ok();
    });
    EXPECT_EQ(s.code(), StatusCode::kInternal);
    EXPECT_EQ(s.message(), "task 42 threw: out of something");
  }
}

TEST(WindowSchedulerTest, WorksInAForkedChild) {
  // The process-wide pool's threads (and maybe a held lock) stay behind in the parent: a child
  // forked after the parent used the scheduler must make its own pool, not deadlock on that one.
  std::atomic<size_t> sum{0};
  auto work = [&](size_t i) {
    sum.fetch_add(i);
    return Status::Ok();
  };
  ASSERT_TRUE(ParallelForWindows(1000, 2, 8, work).ok());
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    sum = 0;
    bool ok = ParallelForWindows(1000, 2, 8, work).ok() && sum.load() == 999 * 1000 / 2;
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace ferry::pipeline
