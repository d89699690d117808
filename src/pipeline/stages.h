// The threads of a staged pipeline: StageThreads (one long-lived thread per stage) and
// OrderedMap (a worker pool that keeps order). Stages are joined by BoundedQueues
// (bounded_queue.h), so memory is bounded by capacities, never by how far a producer gets ahead.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "ferry/status.h"

namespace ferry::pipeline {

// Threads that run one stage body each and are joined when the group is destroyed (or Join()).
// A body must return once the queues it waits on are cancelled; the owner cancels them first.
class StageThreads {
 public:
  StageThreads() = default;
  StageThreads(const StageThreads&) = delete;
  StageThreads& operator=(const StageThreads&) = delete;
  ~StageThreads() { Join(); }

  // kUnavailable when the system refuses a thread.
  Status Start(std::function<void()> body) {
    try {
      threads_.emplace_back(std::move(body));
    } catch (const std::system_error& e) {
      return Unavailable(std::string("cannot start a pipeline thread: ") + e.what());
    }
    return Status::Ok();
  }

  void Join() {
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

 private:
  std::vector<std::thread> threads_;
};

// A parallel map that keeps order: items Submitted in some order come out of Next() in that
// order, each transformed by `fn` on one of `threads` workers. At most `capacity` items are in
// the map at once (submitted and not yet taken by Next): Submit waits beyond that, so a slow
// consumer holds back the producer. One producer and one consumer thread; fn runs concurrently
// with itself on different items.
template <typename In, typename Out>
class OrderedMap {
 public:
  using Fn = std::function<Result<Out>(In)>;

  // REQUIRES: threads >= 1, capacity >= 1.
  static Result<std::unique_ptr<OrderedMap>> Start(int threads, size_t capacity, Fn fn) {
    std::unique_ptr<OrderedMap> map(new OrderedMap(capacity, std::move(fn)));
    for (int i = 0; i < std::max(threads, 1); ++i) {
      Status started = map->workers_.Start([m = map.get()] { m->Work(); });
      if (!started.ok()) return started;  // the destructor cancels and joins those started
    }
    return map;
  }

  ~OrderedMap() {
    Cancel();
    workers_.Join();
  }

  // Adds an item, waiting while `capacity` are in the map. false when cancelled.
  bool Submit(In in) {
    std::unique_lock<std::mutex> lock(mu_);
    space_.wait(lock, [&] { return cancelled_ || submitted_ - taken_ < slots_.size(); });
    if (cancelled_) return false;
    slots_[submitted_ % slots_.size()].in.emplace(std::move(in));
    ++submitted_;
    work_.notify_one();
    return true;
  }

  // No more Submits: Next returns nullopt after the last result.
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    work_.notify_all();
    done_.notify_all();
  }

  // The result for the oldest item not yet taken, waiting for it; nullopt after the last one
  // (once closed) or when cancelled.
  std::optional<Result<Out>> Next() {
    std::unique_lock<std::mutex> lock(mu_);
    auto oldest = [&]() -> Slot& { return slots_[taken_ % slots_.size()]; };
    done_.wait(lock, [&] {
      return cancelled_ || (taken_ < submitted_ && oldest().out) || (closed_ && taken_ == submitted_);
    });
    if (cancelled_ || taken_ == submitted_) return std::nullopt;
    std::optional<Result<Out>> out = std::move(oldest().out);
    oldest().out.reset();
    ++taken_;
    space_.notify_one();
    return out;
  }

  // Stops everything: waiting calls return, queued items are dropped, workers finish the item
  // they hold and exit.
  void Cancel() {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    work_.notify_all();
    done_.notify_all();
    space_.notify_all();
  }

 private:
  struct Slot {
    std::optional<In> in;
    std::optional<Result<Out>> out;
  };

  OrderedMap(size_t capacity, Fn fn) : slots_(std::max<size_t>(capacity, 1)), fn_(std::move(fn)) {}

  void Work() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      work_.wait(lock, [&] { return cancelled_ || closed_ || claimed_ < submitted_; });
      if (cancelled_ || claimed_ == submitted_) return;  // closed and nothing left to claim
      uint64_t index = claimed_++;
      Slot& slot = slots_[index % slots_.size()];
      In in = std::move(*slot.in);
      slot.in.reset();
      lock.unlock();
      Result<Out> out = Call(std::move(in));
      lock.lock();
      // The slot stays this item's until Next takes its result, so it is still ours here.
      slot.out.emplace(std::move(out));
      done_.notify_all();
    }
  }

  // A function that throws (bad_alloc, a bug) fails its item instead of ending the process.
  Result<Out> Call(In in) {
    try {
      return fn_(std::move(in));
    } catch (const std::exception& e) {
      return Internal(std::string("a pipeline stage threw: ") + e.what());
    }
  }

  std::vector<Slot> slots_;  // item i lives in slots_[i % size] from Submit until Next
  Fn fn_;
  std::mutex mu_;
  std::condition_variable work_;   // items to claim, or closing
  std::condition_variable done_;   // a result is ready
  std::condition_variable space_;  // a slot was freed
  uint64_t submitted_ = 0, claimed_ = 0, taken_ = 0;
  bool closed_ = false;
  bool cancelled_ = false;
  StageThreads workers_;  // last: destroyed (joined) first, while the members above live
};

}  // namespace ferry::pipeline
