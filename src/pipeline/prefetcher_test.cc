#include "pipeline/prefetcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace ferry::pipeline {
namespace {

TEST(PrefetcherTest, DeliversItemsInOrderThenNull) {
  Prefetcher<int> p(std::vector<int>(3), 100, [](size_t i, int& slot) {
    slot = static_cast<int>(i) * 2;
    return Status::Ok();
  });
  for (int i = 0; i < 100; ++i) {
    auto item = p.Next();
    ASSERT_TRUE(item.ok());
    ASSERT_NE(*item, nullptr);
    EXPECT_EQ(**item, i * 2);
  }
  EXPECT_EQ(*p.Next(), nullptr);
  EXPECT_EQ(*p.Next(), nullptr);
}

TEST(PrefetcherTest, NeverRunsMoreThanTheRingAhead) {
  std::atomic<size_t> produced{0};
  Prefetcher<int> p(std::vector<int>(3), 50, [&](size_t i, int& slot) {
    slot = static_cast<int>(i);
    produced.store(i + 1);
    return Status::Ok();
  });
  ASSERT_EQ(**p.Next(), 0);  // consumer holds item 0
  // The producer may fill items 1 and 2 (the other two slots) but never item 3, which would
  // overwrite the slot the consumer holds. Give it every chance to misbehave.
  for (int i = 0; i < 100; ++i) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_LE(produced.load(), 3u);
  EXPECT_EQ(**p.Next(), 1);
}

TEST(PrefetcherTest, ItemsBeforeAnErrorArriveThenTheErrorSticks) {
  Prefetcher<int> p(std::vector<int>(2), 10, [](size_t i, int& slot) {
    if (i == 3) return Corruption("item 3 is bad");
    slot = static_cast<int>(i);
    return Status::Ok();
  });
  for (int i = 0; i < 3; ++i) EXPECT_EQ(**p.Next(), i);
  EXPECT_EQ(p.Next().status().message(), "item 3 is bad");
  EXPECT_EQ(p.Next().status().code(), StatusCode::kCorruption);
}

TEST(PrefetcherTest, DestroyingEarlyStopsTheProducer) {
  std::atomic<size_t> produced{0};
  {
    Prefetcher<int> p(std::vector<int>(2), 1'000'000, [&](size_t, int&) {
      produced.fetch_add(1);
      return Status::Ok();
    });
    ASSERT_TRUE(p.Next().ok());
  }
  EXPECT_LE(produced.load(), 3u);
}

TEST(PrefetcherTest, ZeroItems) {
  Prefetcher<int> p(std::vector<int>(2), 0, [](size_t, int&) { return Internal("never"); });
  EXPECT_EQ(*p.Next(), nullptr);
}

}  // namespace
}  // namespace ferry::pipeline
