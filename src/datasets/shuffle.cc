#include "datasets/shuffle.h"

namespace ferry::datasets {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t ShuffleSeed(uint64_t seed, uint64_t epoch, uint64_t rank, uint64_t worker) {
  return SplitMix64(SplitMix64(SplitMix64(SplitMix64(seed) ^ epoch) ^ rank) ^ worker);
}

std::vector<uint64_t> ShuffledOrder(uint64_t count, size_t shuffle_buffer, uint64_t seed) {
  std::vector<uint64_t> order;
  order.reserve(count);
  ShuffleBuffer<uint64_t> buffer(shuffle_buffer, seed);
  ReplayShuffle(buffer, count, count, [&](uint64_t position) { order.push_back(position); });
  return order;
}

}  // namespace ferry::datasets
