#include "datasets/split.h"

#include <algorithm>
#include <numeric>
#include <string>

namespace ferry::datasets {
namespace {

// splitmix64: a fixed, portable mixer, so plans are identical on every platform and library
// version (std::shuffle's use of the engine is implementation-defined).
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Fisher-Yates with a splitmix64 stream seeded by (seed, epoch).
std::vector<size_t> ShardOrder(size_t shards, const SplitOptions& options) {
  std::vector<size_t> order(shards);
  std::iota(order.begin(), order.end(), 0);
  if (!options.shuffle_shards) return order;
  uint64_t state = Mix(options.seed) ^ Mix(options.epoch + 0x5851f42d4c957f2dull);
  for (size_t i = shards; i > 1; --i) {
    state = Mix(state);
    size_t j = static_cast<size_t>(state % i);  // modulo bias < i / 2^64: immaterial
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

// Appends the samples at positions [begin, end) of the epoch's sequence, which repeats the
// shard sequence cyclically past its end (padding).
void AppendRange(const std::vector<uint64_t>& counts, const std::vector<size_t>& order,
                 uint64_t total, uint64_t begin, uint64_t end, WorkerPlan& plan) {
  while (begin < end) {
    uint64_t pos = begin % total;
    uint64_t cycle_left = total - pos;
    uint64_t want = std::min(end - begin, cycle_left);
    // Find the shard holding position `pos` (linear: plans are built once per epoch).
    uint64_t start = 0;
    for (size_t k = 0; k < order.size() && want > 0; ++k) {
      uint64_t c = counts[order[k]];
      if (pos >= start + c) {
        start += c;
        continue;
      }
      uint64_t first = pos - start;
      uint64_t take = std::min(want, c - first);
      plan.spans.push_back({order[k], first, take});
      plan.samples += take;
      pos += take;
      start += c;
      want -= take;
      begin += take;
    }
  }
}

}  // namespace

Result<EpochPlan> PlanEpoch(const std::vector<uint64_t>& samples_per_shard,
                            const SplitOptions& options) {
  if (options.world_size < 1) {
    return InvalidArgument("world_size must be >= 1 (got " + std::to_string(options.world_size) +
                           ")");
  }
  if (options.num_workers < 0) {
    return InvalidArgument("num_workers must be >= 0 (got " + std::to_string(options.num_workers) +
                           ")");
  }
  if (options.batch_size < 1) return InvalidArgument("batch_size must be >= 1");
  const uint64_t world = static_cast<uint64_t>(options.world_size);
  const uint64_t workers = static_cast<uint64_t>(std::max(1, options.num_workers));
  uint64_t total = 0;
  for (uint64_t c : samples_per_shard) total += c;
  if (total == 0) return InvalidArgument("the shards hold no samples");

  uint64_t unit = 0;  // one batch for every rank
  if (__builtin_mul_overflow(world, options.batch_size, &unit)) {
    return InvalidArgument("batch_size x world_size overflows 64 bits");
  }
  uint64_t batches_per_rank = total / unit;
  if (options.remainder == Remainder::kPad && total % unit != 0) ++batches_per_rank;
  if (batches_per_rank == 0) {
    return InvalidArgument(std::to_string(total) + " samples cannot give each of " +
                           std::to_string(world) + " ranks a batch of " +
                           std::to_string(options.batch_size) +
                           " without repeating samples; use "
                           "remainder='pad' or a smaller batch");
  }
  // Padding repeats samples to fill the last batches; a batch so large that the epoch would
  // repeat the whole dataset many times over is a mistake, not a plan.
  if (batches_per_rank * unit > std::max<uint64_t>(64 * total, 1u << 20)) {
    return InvalidArgument("batch_size " + std::to_string(options.batch_size) + " x world_size " +
                           std::to_string(world) + " would repeat the " + std::to_string(total) +
                           " samples more than 64 times per epoch");
  }
  EpochPlan plan;
  plan.samples_per_rank = batches_per_rank * options.batch_size;
  plan.shard_order = ShardOrder(samples_per_shard.size(), options);
  plan.plans.assign(world, std::vector<WorkerPlan>(workers));
  for (uint64_t rank = 0; rank < world; ++rank) {
    uint64_t rank_begin = rank * plan.samples_per_rank;
    for (uint64_t w = 0; w < workers; ++w) {
      // Whole batches per worker, the first (batches % workers) workers one more.
      uint64_t b_begin = batches_per_rank * w / workers,
               b_end = batches_per_rank * (w + 1) / workers;
      AppendRange(samples_per_shard, plan.shard_order, total,
                  rank_begin + b_begin * options.batch_size,
                  rank_begin + b_end * options.batch_size, plan.plans[rank][w]);
    }
  }
  return plan;
}

}  // namespace ferry::datasets
