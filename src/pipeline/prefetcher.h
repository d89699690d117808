// Prefetcher: a background producer filling a fixed ring of reusable slots ahead of a consumer.
//
// This is the shape of every "read ahead while the caller works" loop in ferry (sequential
// streams now; plaid staging buffers later): memory is exactly the ring, a slot is refilled only
// after the consumer has moved past it, and items arrive in order.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "ferry/status.h"

namespace ferry::pipeline {

template <typename Slot>
class Prefetcher {
 public:
  // Fills `slot` with item `index`. Runs on the background thread, one item at a time, in order.
  using Produce = std::function<Status(size_t index, Slot& slot)>;

  // Starts producing items 0..count-1 into `slots` (at least 2: one held by the consumer, one
  // being filled).
  Prefetcher(std::vector<Slot> slots, size_t count, Produce produce)
      : slots_(std::move(slots)), count_(count), produce_(std::move(produce)) {
    thread_ = std::thread([this] { Run(); });
  }

  // Stops the producer after the item it is working on and waits for it.
  ~Prefetcher() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // The slot holding the next item, valid until the following call; nullptr after the last item.
  // Items produced before a failure are still delivered; then the failure is returned, for good.
  Result<Slot*> Next() {
    std::unique_lock<std::mutex> lock(mu_);
    released_ = consumed_;  // the consumer is done with the slot it held
    cv_.notify_all();
    if (consumed_ == count_) return static_cast<Slot*>(nullptr);
    cv_.wait(lock, [&] { return produced_ > consumed_ || !error_.ok(); });
    if (produced_ > consumed_) return &slots_[consumed_++ % slots_.size()];
    return error_;
  }

 private:
  void Run() {
    for (size_t i = 0; i < count_; ++i) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || i < released_ + slots_.size(); });
        if (stopping_) return;
      }
      Status status = produce_(i, slots_[i % slots_.size()]);
      std::lock_guard<std::mutex> lock(mu_);
      if (!status.ok()) {
        error_ = std::move(status);
        cv_.notify_all();
        return;
      }
      produced_ = i + 1;
      cv_.notify_all();
    }
  }

  std::vector<Slot> slots_;
  const size_t count_;
  Produce produce_;

  std::mutex mu_;
  std::condition_variable cv_;
  size_t produced_ = 0;  // items 0..produced_-1 are ready
  size_t consumed_ = 0;  // items handed to the consumer
  size_t released_ = 0;  // items whose slots the consumer gave back
  Status error_;
  bool stopping_ = false;
  std::thread thread_;  // last: started after every other member is initialised
};

}  // namespace ferry::pipeline
