// PlanReader: the samples of one worker's plan, in order, optionally mixed by a shuffle buffer.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "datasets/split.h"
#include "ferry/datasets.h"

namespace ferry::datasets {

// The shuffle buffer: filled to `capacity` items, then each Pop yields a random one and the
// next Push refills. Which item goes next depends only on the seed and the positions, never on
// the items, so a resumed run can replay which samples an interrupted one yielded
// (ShuffledOrder) without reading them.
template <typename T>
class ShuffleBuffer {
 public:
  ShuffleBuffer(size_t capacity, uint64_t seed) : capacity_(capacity), state_(seed) {}
  bool wants_more() const { return items_.size() < capacity_; }
  bool empty() const { return items_.empty(); }
  void Push(T item) { items_.push_back(std::move(item)); }
  // REQUIRES: !empty().
  T Pop() {
    state_ = SplitMix64(state_);
    size_t pick = static_cast<size_t>(state_ % items_.size());
    std::swap(items_[pick], items_.back());
    T out = std::move(items_.back());
    items_.pop_back();
    return out;
  }

 private:
  size_t capacity_;
  uint64_t state_;
  std::vector<T> items_;
};

// The order a PlanReader with this buffer and seed yields the `count` samples of its plan in:
// out[i] is the plan position of the i-th sample yielded.
std::vector<uint64_t> ShuffledOrder(uint64_t count, size_t shuffle_buffer, uint64_t seed);

struct PlanReaderOptions {
  // Samples held for mixing; 0 or 1 reads in plan order. Memory is this many samples.
  size_t shuffle_buffer = 0;
  uint64_t shuffle_seed = 0;  // derive it from (seed, epoch, rank, worker) for distinct streams
  TarOptions tar;
};

class PlanReader {
 public:
  // `urls[span.shard]` is each span's shard.
  PlanReader(std::vector<std::string> urls, WorkerPlan plan, PlanReaderOptions options);
  // The next sample, or nullopt when the plan is done. Errors name the shard.
  Result<std::optional<Sample>> Next();

 private:
  Result<std::optional<Sample>> NextInPlanOrder();

  std::vector<std::string> urls_;
  WorkerPlan plan_;
  PlanReaderOptions options_;
  size_t span_ = 0;            // current span
  uint64_t left_in_span_ = 0;  // samples still to yield from it
  std::unique_ptr<SampleReader> reader_;
  ShuffleBuffer<Sample> buffer_;
  bool drained_ = false;
};

// A seed for one reader's shuffle buffer, distinct per (seed, epoch, rank, worker).
uint64_t ShuffleSeed(uint64_t seed, uint64_t epoch, uint64_t rank, uint64_t worker);

}  // namespace ferry::datasets
