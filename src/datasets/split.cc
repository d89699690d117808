#include "datasets/split.h"

#include <algorithm>
#include <numeric>
#include <string>
#include <unordered_map>

#include "datasets/loader.h"

namespace ferry::datasets {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

namespace {

// Fisher-Yates with a splitmix64 stream seeded by (seed, epoch).
std::vector<size_t> ShardOrder(size_t shards, const SplitOptions& options) {
  std::vector<size_t> order(shards);
  std::iota(order.begin(), order.end(), 0);
  if (!options.shuffle_shards) return order;
  uint64_t state = SplitMix64(options.seed) ^ SplitMix64(options.epoch + 0x5851f42d4c957f2dull);
  for (size_t i = shards; i > 1; --i) {
    state = SplitMix64(state);
    size_t j = static_cast<size_t>(state % i);  // modulo bias < i / 2^64: immaterial
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

// Appends the samples at positions [begin, end) of the epoch's sequence: `base` (spans in
// reading order, `total` samples) repeated cyclically past its end (padding).
void AppendRange(const std::vector<SampleSpan>& base, uint64_t total, uint64_t begin,
                 uint64_t end, WorkerPlan& plan) {
  while (begin < end) {
    uint64_t pos = begin % total;
    uint64_t want = std::min(end - begin, total - pos);
    // Find the span holding position `pos` (linear: plans are built once per epoch).
    uint64_t start = 0;
    for (size_t k = 0; k < base.size() && want > 0; ++k) {
      uint64_t c = base[k].count;
      if (pos >= start + c) {
        start += c;
        continue;
      }
      uint64_t offset = pos - start;
      uint64_t take = std::min(want, c - offset);
      plan.spans.push_back({base[k].shard, base[k].first + offset, take});
      plan.samples += take;
      pos += take;
      start += c;
      want -= take;
      begin += take;
    }
  }
}

// Cuts a base sequence into equal rank slices of whole batches, padded or dropped to fit, and
// each rank's slice into whole batches per loader worker.
Result<EpochPlan> SplitSequence(const std::vector<SampleSpan>& base, const SplitOptions& options) {
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
  for (const SampleSpan& span : base) total += span.count;
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
  plan.plans.assign(world, std::vector<WorkerPlan>(workers));
  for (uint64_t rank = 0; rank < world; ++rank) {
    uint64_t rank_begin = rank * plan.samples_per_rank;
    for (uint64_t w = 0; w < workers; ++w) {
      // Whole batches per worker, the first (batches % workers) workers one more.
      uint64_t b_begin = batches_per_rank * w / workers,
               b_end = batches_per_rank * (w + 1) / workers;
      AppendRange(base, total, rank_begin + b_begin * options.batch_size,
                  rank_begin + b_end * options.batch_size, plan.plans[rank][w]);
    }
  }
  return plan;
}

// The epoch's base sequence: every shard in `order`, front to back.
std::vector<SampleSpan> ShardSequence(const std::vector<uint64_t>& counts,
                                      const std::vector<size_t>& order) {
  std::vector<SampleSpan> base;
  for (size_t shard : order) {
    if (counts[shard] > 0) base.push_back({shard, 0, counts[shard]});
  }
  return base;
}

}  // namespace

Result<EpochPlan> PlanEpoch(const std::vector<uint64_t>& samples_per_shard,
                            const SplitOptions& options) {
  std::vector<size_t> order = ShardOrder(samples_per_shard.size(), options);
  FERRY_ASSIGN_OR_RETURN(EpochPlan plan, SplitSequence(ShardSequence(samples_per_shard, order), options));
  plan.shard_order = std::move(order);
  return plan;
}

Result<EpochPlan> PlanResumedEpoch(const std::vector<uint64_t>& samples_per_shard,
                                   const ResumePoint& resume, const SplitOptions& options) {
  const SplitOptions& before = resume.options;
  if (before.seed != options.seed || before.epoch != options.epoch ||
      before.shuffle_shards != options.shuffle_shards) {
    return InvalidArgument("a resume point belongs to the same seed, epoch and shard shuffling");
  }
  FERRY_ASSIGN_OR_RETURN(EpochPlan old_plan, PlanEpoch(samples_per_shard, before));
  if (resume.samples_per_rank > old_plan.samples_per_rank) {
    return InvalidArgument("the resume point says each rank consumed " +
                           std::to_string(resume.samples_per_rank) + " samples, more than the " +
                           std::to_string(old_plan.samples_per_rank) + " of its epoch");
  }
  if (resume.samples_per_rank % before.batch_size != 0) {
    return InvalidArgument("the resume point must be at a batch boundary (" +
                           std::to_string(resume.samples_per_rank) + " samples, batch_size " +
                           std::to_string(before.batch_size) + ")");
  }
  // What every (rank, worker) of the interrupted run yielded: a loader takes whole batches from
  // its workers in turn, and each worker yields its plan through its shuffle buffer.
  std::unordered_map<uint64_t, uint64_t> consumed;  // (shard << 40 | index) -> times
  auto key = [](size_t shard, uint64_t index) { return uint64_t{shard} << 40 | index; };
  const uint64_t batches = resume.samples_per_rank / before.batch_size;
  for (size_t rank = 0; rank < old_plan.plans.size(); ++rank) {
    const auto& workers = old_plan.plans[rank];
    for (size_t w = 0; w < workers.size(); ++w) {
      uint64_t worker_batches = batches / workers.size() + (w < batches % workers.size() ? 1 : 0);
      uint64_t take = std::min(worker_batches * before.batch_size, workers[w].samples);
      std::vector<uint64_t> positions;  // plan position -> (shard, index)
      for (const SampleSpan& span : workers[w].spans) {
        for (uint64_t i = 0; i < span.count; ++i) positions.push_back(key(span.shard, span.first + i));
      }
      std::vector<uint64_t> order =
          ShuffledOrder(positions.size(), resume.shuffle_buffer,
                        ShuffleSeed(before.seed, before.epoch, rank, w));
      for (uint64_t i = 0; i < take; ++i) ++consumed[positions[order[i]]];
    }
  }
  // The epoch's samples in their base order, less those: what is left to read.
  std::vector<SampleSpan> left;
  for (const SampleSpan& span : ShardSequence(samples_per_shard, old_plan.shard_order)) {
    for (uint64_t i = 0; i < span.count; ++i) {
      auto it = consumed.find(key(span.shard, i));
      if (it != consumed.end() && it->second > 0) {
        --it->second;
        continue;
      }
      if (!left.empty() && left.back().shard == span.shard && left.back().first + left.back().count == i) {
        ++left.back().count;
      } else {
        left.push_back({span.shard, i, 1});
      }
    }
  }
  uint64_t left_total = 0;
  for (const SampleSpan& span : left) left_total += span.count;
  // "drop" leaves what cannot make a batch on every rank, as at the end of any epoch.
  const uint64_t unit = static_cast<uint64_t>(std::max(1, options.world_size)) * options.batch_size;
  if (left_total == 0 || (options.remainder == Remainder::kDrop && left_total < unit)) {
    EpochPlan done;
    done.shard_order = old_plan.shard_order;
    done.plans.assign(static_cast<size_t>(std::max(1, options.world_size)),
                      std::vector<WorkerPlan>(static_cast<size_t>(std::max(1, options.num_workers))));
    return done;
  }
  FERRY_ASSIGN_OR_RETURN(EpochPlan plan, SplitSequence(left, options));
  plan.shard_order = old_plan.shard_order;
  return plan;
}

}  // namespace ferry::datasets
