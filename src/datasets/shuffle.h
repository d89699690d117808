// The shuffle buffer of a loader's samples, and its replay: which plan positions a loader with
// a given buffer and seed yields, computed from the positions alone, which is what lets a
// resumed run (or a re-split of an interrupted epoch) know what was yielded without reading a
// shard.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace ferry::datasets {

// splitmix64: a fixed, portable mixer, so plans and shuffles are identical on every platform and
// library version (std::shuffle's use of the engine is implementation-defined).
uint64_t SplitMix64(uint64_t x);

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
  // The items in their slots and the random state: with Restore, how a resumed loader rebuilds
  // the exact buffer an interrupted one had (ShuffleBuffer<uint64_t> of positions -> samples).
  const std::vector<T>& items() const { return items_; }
  uint64_t state() const { return state_; }
  void Restore(std::vector<T> items, uint64_t state) {
    items_ = std::move(items);
    state_ = state;
  }
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

// Runs the shuffle of plan positions [0, count) through `buffer` as SampleLoader::Merge runs it
// over samples (push each; pop one whenever the buffer is full; at the end, drain), calling
// on_pop with each of the first `pops` positions to come out. Returns how many were pushed; what
// `buffer` holds then is what the loader's buffer held after yielding that many samples.
template <typename OnPop>
uint64_t ReplayShuffle(ShuffleBuffer<uint64_t>& buffer, uint64_t count, uint64_t pops,
                       OnPop&& on_pop) {
  uint64_t pushed = 0, popped = 0;
  while (popped < pops) {
    if (pushed < count) {
      buffer.Push(pushed++);
      if (buffer.wants_more()) continue;  // not full yet: nothing comes out
    } else if (buffer.empty()) {
      break;
    }
    on_pop(buffer.Pop());
    ++popped;
  }
  return pushed;
}

// The order a SampleLoader with this buffer and seed yields the `count` samples of its plan in:
// out[i] is the plan position of the i-th sample yielded.
std::vector<uint64_t> ShuffledOrder(uint64_t count, size_t shuffle_buffer, uint64_t seed);

// A seed for one reader's shuffle buffer, distinct per (seed, epoch, rank, worker).
uint64_t ShuffleSeed(uint64_t seed, uint64_t epoch, uint64_t rank, uint64_t worker);

}  // namespace ferry::datasets
