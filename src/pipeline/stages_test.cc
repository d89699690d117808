#include "pipeline/stages.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "pipeline/bounded_queue.h"

namespace ferry::pipeline {
namespace {

TEST(BoundedQueueTest, CloseDrainsThenEnds) {
  BoundedQueue<int> queue(3);
  EXPECT_TRUE(queue.Push(1));
  EXPECT_TRUE(queue.Push(2));
  queue.Close();
  EXPECT_EQ(queue.Pop(), 1);
  EXPECT_EQ(queue.Pop(), 2);
  EXPECT_EQ(queue.Pop(), std::nullopt);
}

// A producer far ahead of its consumer waits: the queue never holds more than its capacity.
TEST(BoundedQueueTest, ProducerWaitsForTheConsumer) {
  BoundedQueue<int> queue(4);
  std::atomic<int> pushed{0};
  std::thread producer([&] {
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(queue.Push(i));
      ++pushed;
    }
    queue.Close();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_LE(pushed.load(), 4);  // the fifth Push waits for a Pop
  for (int i = 0; i < 100; ++i) {
    EXPECT_LE(pushed.load(), i + 5);
    EXPECT_EQ(queue.Pop(), i);
  }
  EXPECT_EQ(queue.Pop(), std::nullopt);
  producer.join();
}

TEST(BoundedQueueTest, CancelWakesBothSides) {
  BoundedQueue<int> full(1);
  ASSERT_TRUE(full.Push(0));
  BoundedQueue<int> empty(1);
  std::thread pusher([&] { EXPECT_FALSE(full.Push(1)); });
  std::thread popper([&] { EXPECT_EQ(empty.Pop(), std::nullopt); });
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  full.Cancel();
  empty.Cancel();
  pusher.join();
  popper.join();
  EXPECT_EQ(full.Pop(), std::nullopt);  // items held are dropped
}

// Results come out in submission order though the workers finish out of order, and the
// producer never gets more than `capacity` items ahead of the consumer.
TEST(OrderedMapTest, KeepsOrderAndBoundsItemsInFlight) {
  constexpr int kCapacity = 6;
  auto map = OrderedMap<int, int>::Start(4, kCapacity, [](int x) -> Result<int> {
    std::this_thread::sleep_for(std::chrono::microseconds((x * 7919) % 500));
    return x * x;
  });
  ASSERT_TRUE(map.ok());
  std::atomic<int> submitted{0};
  std::thread producer([&] {
    for (int i = 0; i < 300; ++i) {
      ASSERT_TRUE((*map)->Submit(i));
      ++submitted;
    }
    (*map)->Close();
  });
  for (int i = 0; i < 300; ++i) {
    std::optional<Result<int>> out = (*map)->Next();
    ASSERT_TRUE(out && out->ok());
    EXPECT_EQ(**out, i * i);
    EXPECT_LE(submitted.load(), i + 1 + kCapacity);
  }
  EXPECT_EQ((*map)->Next(), std::nullopt);
  producer.join();
}

TEST(OrderedMapTest, AnErrorArrivesInItsPlaceAndAThrowIsAnError) {
  auto map = OrderedMap<int, int>::Start(2, 4, [](int x) -> Result<int> {
    if (x == 2) return Corruption("item 2 is bad");
    if (x == 3) throw std::runtime_error("boom");
    return x;
  });
  ASSERT_TRUE(map.ok());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE((*map)->Submit(i));
  (*map)->Close();
  EXPECT_EQ(**(*map)->Next(), 0);
  EXPECT_EQ(**(*map)->Next(), 1);
  std::optional<Result<int>> bad = (*map)->Next();
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->status().code(), StatusCode::kCorruption);
  std::optional<Result<int>> thrown = (*map)->Next();
  ASSERT_TRUE(thrown.has_value());
  EXPECT_EQ(thrown->status().code(), StatusCode::kInternal);
  EXPECT_NE(thrown->status().message().find("boom"), std::string::npos);
}

// A producer blocked on a full map and a consumer gone away: destruction still returns.
TEST(OrderedMapTest, DestroyingWithAProducerWaitingDoesNotHang) {
  auto map = OrderedMap<int, int>::Start(1, 2, [](int x) -> Result<int> { return x; });
  ASSERT_TRUE(map.ok());
  std::thread producer([m = map->get()] {
    for (int i = 0; i < 10; ++i) {
      if (!m->Submit(i)) return;
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  (*map)->Cancel();
  producer.join();
  map->reset();
}

}  // namespace
}  // namespace ferry::pipeline
