#include "datasets/split.h"

#include <algorithm>
#include <numeric>
#include <string>
#include <unordered_map>

#include "datasets/shuffle.h"

namespace ferry::datasets {

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

// The key of sample `index` of shard `shard` in a multiset of samples.
uint64_t SampleKey(size_t shard, uint64_t index) { return uint64_t{shard} << 40 | index; }

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

// The plan for what is left of an epoch: like SplitSequence, but nothing left (or, with "drop",
// less than a batch for every rank) is an epoch that is over, not an error.
Result<EpochPlan> SplitRest(const std::vector<SampleSpan>& left, const SplitOptions& options) {
  uint64_t total = 0;
  for (const SampleSpan& span : left) total += span.count;
  const uint64_t unit = static_cast<uint64_t>(std::max(1, options.world_size)) * options.batch_size;
  if (total == 0 || (options.remainder == Remainder::kDrop && total < unit)) {
    EpochPlan done;
    done.plans.assign(static_cast<size_t>(std::max(1, options.world_size)),
                      std::vector<WorkerPlan>(static_cast<size_t>(std::max(1, options.num_workers))));
    return done;
  }
  return SplitSequence(left, options);
}

// `left` less what `segment`, which ran the plan `ran`, had yielded on every rank.
Result<std::vector<SampleSpan>> Unconsumed(const std::vector<SampleSpan>& left,
                                           const ResumeSegment& segment, const EpochPlan& ran) {
  const WorkerProgress& progress = segment.progress;
  const size_t workers = progress.consumed.size();  // checked against the split by PlanEpochAfter
  std::unordered_map<uint64_t, uint64_t> consumed;  // SampleKey -> times yielded
  for (size_t rank = 0; rank < ran.plans.size(); ++rank) {
    for (size_t w = 0; w < workers; ++w) {
      const WorkerPlan& plan = ran.plans[rank][w];
      if (progress.consumed[w] > plan.samples) {
        return InvalidArgument("the resume state says loader worker " + std::to_string(w) +
                               " yielded " + std::to_string(progress.consumed[w]) +
                               " samples, more than the " + std::to_string(plan.samples) +
                               " of its plan");
      }
      std::vector<uint64_t> positions;  // plan position -> SampleKey
      positions.reserve(plan.samples);
      for (const SampleSpan& span : plan.spans) {
        for (uint64_t i = 0; i < span.count; ++i) positions.push_back(SampleKey(span.shard, span.first + i));
      }
      ShuffleBuffer<uint64_t> replay(segment.shuffle_buffer,
                                     ShuffleSeed(segment.options.seed, segment.options.epoch, rank, w));
      ReplayShuffle(replay, positions.size(), progress.consumed[w],
                    [&](uint64_t position) { ++consumed[positions[position]]; });
    }
  }
  std::vector<SampleSpan> rest;
  for (const SampleSpan& span : left) {
    for (uint64_t i = span.first; i < span.first + span.count; ++i) {
      auto it = consumed.find(SampleKey(span.shard, i));
      if (it != consumed.end() && it->second > 0) {
        --it->second;
        continue;
      }
      if (!rest.empty() && rest.back().shard == span.shard && rest.back().first + rest.back().count == i) {
        ++rest.back().count;
      } else {
        rest.push_back({span.shard, i, 1});
      }
    }
  }
  return rest;
}

}  // namespace

namespace {

// Each (rank, worker) draws whole shards with replacement until its whole batches of
// options.resampled_samples per rank are filled.
Result<EpochPlan> PlanResampled(const std::vector<uint64_t>& samples_per_shard,
                                const SplitOptions& options) {
  if (options.world_size < 1 || options.num_workers < 0 || options.batch_size < 1) {
    return InvalidArgument("world_size and batch_size must be >= 1, num_workers >= 0");
  }
  if (options.resampled_samples % options.batch_size != 0) {
    return InvalidArgument("resampled samples per epoch (" + std::to_string(options.resampled_samples) +
                           ") must be a multiple of batch_size " + std::to_string(options.batch_size));
  }
  std::vector<size_t> drawable;
  for (size_t shard = 0; shard < samples_per_shard.size(); ++shard) {
    if (samples_per_shard[shard] > 0) drawable.push_back(shard);
  }
  if (drawable.empty()) return InvalidArgument("the shards hold no samples");
  uint64_t total = 0;
  for (uint64_t n : samples_per_shard) total += n;
  // As for padding: an epoch that draws the dataset many times over per rank is a mistake (or a
  // hand-edited state), not a plan; it would size the plan beyond memory.
  if (options.resampled_samples > std::max<uint64_t>(64 * total, 1u << 20)) {
    return InvalidArgument("a resampled epoch of " + std::to_string(options.resampled_samples) +
                           " samples per rank would draw the " + std::to_string(total) +
                           " samples more than 64 times");
  }
  const uint64_t batches = options.resampled_samples / options.batch_size;
  const size_t workers = static_cast<size_t>(std::max(1, options.num_workers));
  EpochPlan plan;
  plan.samples_per_rank = options.resampled_samples;
  plan.plans.assign(static_cast<size_t>(options.world_size), std::vector<WorkerPlan>(workers));
  for (size_t rank = 0; rank < plan.plans.size(); ++rank) {
    for (size_t w = 0; w < workers; ++w) {
      uint64_t want = (batches * (w + 1) / workers - batches * w / workers) * options.batch_size;
      uint64_t state = ShuffleSeed(options.seed ^ 0x7265'7361'6d70'6c65ull, options.epoch, rank, w);
      WorkerPlan& out = plan.plans[rank][w];
      while (out.samples < want) {
        state = SplitMix64(state);
        size_t shard = drawable[state % drawable.size()];
        uint64_t take = std::min(samples_per_shard[shard], want - out.samples);
        out.spans.push_back({shard, 0, take});
        out.samples += take;
      }
    }
  }
  return plan;
}

}  // namespace

Result<EpochPlan> PlanEpoch(const std::vector<uint64_t>& samples_per_shard,
                            const SplitOptions& options) {
  if (options.resampled_samples > 0) return PlanResampled(samples_per_shard, options);
  std::vector<size_t> order = ShardOrder(samples_per_shard.size(), options);
  FERRY_ASSIGN_OR_RETURN(EpochPlan plan, SplitSequence(ShardSequence(samples_per_shard, order), options));
  plan.shard_order = std::move(order);
  return plan;
}

Result<WorkerProgress> ProgressAfter(const std::vector<uint64_t>& worker_samples,
                                     const LoaderTurns& turns, uint64_t samples_seen) {
  const size_t n = worker_samples.size();
  if (n == 0) return InvalidArgument("a loader has at least one worker");
  if (turns.turn < 1) return InvalidArgument("a loader takes at least one sample at a time");
  WorkerProgress progress{std::vector<uint64_t>(n, 0), 0};
  const std::string items(turns.items);
  // Whether worker w yields another batch, and of how many samples.
  auto next_take = [&](size_t w) -> uint64_t {
    uint64_t remaining = worker_samples[w] - progress.consumed[w];
    if (remaining >= turns.turn) return turns.turn;
    return turns.drop_last ? 0 : remaining;
  };
  uint64_t taken = 0;
  while (taken < samples_seen) {
    // Whole rounds at once where every worker still in the cycle has full turns for them, so
    // the loop runs O(workers) times per worker that runs out, not once per batch.
    if (progress.next_worker == 0) {
      uint64_t active = 0, rounds = UINT64_MAX;
      for (size_t w = 0; w < n; ++w) {
        if (next_take(w) == 0) continue;
        ++active;
        rounds = std::min(rounds, (worker_samples[w] - progress.consumed[w]) / turns.turn);
      }
      if (active > 0) {
        rounds = std::min(rounds, (samples_seen - taken) / (active * turns.turn));
        if (rounds > 0) {
          for (size_t w = 0; w < n; ++w) {
            if (next_take(w) != 0) progress.consumed[w] += rounds * turns.turn;
          }
          taken += rounds * active * turns.turn;
          continue;
        }
      }
    }
    size_t w = progress.next_worker;
    uint64_t take = 0;
    for (size_t k = 0; k < n && take == 0; ++k) {
      w = (progress.next_worker + k) % n;
      take = next_take(w);
    }
    if (take == 0) {
      return InvalidArgument(items + "_seen " + std::to_string(samples_seen) +
                             " is more than the " + std::to_string(taken) + " " + items +
                             " this rank's loader yields in the epoch");
    }
    if (taken + take > samples_seen) {
      return InvalidArgument(items + "_seen " + std::to_string(samples_seen) +
                             " falls inside a batch of the loader: its batches end at " +
                             std::to_string(taken) + " and " + std::to_string(taken + take) + " " +
                             items + " (count the " + items + " of the loader's batches consumed)");
    }
    progress.consumed[w] += take;
    taken += take;
    progress.next_worker = (w + 1) % n;
  }
  return progress;
}

WorkerResume ResumeWorker(const WorkerProgress& progress, size_t worker) {
  const size_t n = progress.consumed.size();
  if (n == 0) return {worker, 0};
  size_t plays = (progress.next_worker + worker) % n;
  return {plays, progress.consumed[plays]};
}

Result<EpochPlan> PlanEpochAfter(const std::vector<uint64_t>& samples_per_shard,
                                 const std::vector<ResumeSegment>& history,
                                 const SplitOptions& options) {
  if (history.empty()) return PlanEpoch(samples_per_shard, options);
  if (options.resampled_samples > 0 || history.front().options.resampled_samples > 0) {
    // Draws with replacement leave no "rest" to re-split, unless nothing is left at all.
    const ResumeSegment& ran = history.back();
    if (history.size() == 1 && ran.options.resampled_samples > 0 &&
        ran.progress.consumed.size() == static_cast<size_t>(std::max(1, ran.options.num_workers))) {
      FERRY_ASSIGN_OR_RETURN(EpochPlan drawn, PlanResampled(samples_per_shard, ran.options));
      bool done = ran.progress.consumed.size() == drawn.plans[0].size();
      for (size_t w = 0; done && w < drawn.plans[0].size(); ++w) {
        done = ran.progress.consumed[w] == drawn.plans[0][w].samples;
      }
      if (done) return SplitRest({}, options);
    }
    return InvalidArgument(
        "a resampled epoch resumes only on the split it ran on (world_size " +
        std::to_string(ran.options.world_size) + ", " +
        std::to_string(std::max(1, ran.options.num_workers)) + " loader workers, batch_size " +
        std::to_string(ran.options.batch_size) +
        "): its shards were drawn with replacement, so there is no rest to re-split. Resume it "
        "on that split, or start the next epoch (set_epoch) on the new one");
  }
  std::vector<size_t> order = ShardOrder(samples_per_shard.size(), options);
  std::vector<SampleSpan> left = ShardSequence(samples_per_shard, order);
  for (size_t k = 0; k < history.size(); ++k) {
    const ResumeSegment& segment = history[k];
    const SplitOptions& ran_with = segment.options;
    if (ran_with.seed != options.seed || ran_with.epoch != options.epoch ||
        ran_with.shuffle_shards != options.shuffle_shards) {
      return InvalidArgument("a resume state belongs to the same seed, epoch and shard shuffling");
    }
    // Before planning it: a state's worker count sizes the plan, and a hand-edited one could ask
    // for a billion workers; the progress it records must hold one entry per worker.
    const size_t workers = static_cast<size_t>(std::max(1, ran_with.num_workers));
    if (segment.progress.consumed.size() != workers) {
      return InvalidArgument("a resume segment of " + std::to_string(workers) +
                             " loader workers records the progress of " +
                             std::to_string(segment.progress.consumed.size()));
    }
    FERRY_ASSIGN_OR_RETURN(EpochPlan ran, k == 0 ? SplitSequence(left, ran_with) : SplitRest(left, ran_with));
    FERRY_ASSIGN_OR_RETURN(left, Unconsumed(left, segment, ran));
  }
  FERRY_ASSIGN_OR_RETURN(EpochPlan plan, SplitRest(left, options));
  plan.shard_order = std::move(order);
  return plan;
}

}  // namespace ferry::datasets
