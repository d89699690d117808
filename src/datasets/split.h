// Exact splits: which samples each (rank, loader worker) reads in an epoch.
//
// The epoch's global order is the shards in a (seed, epoch)-permuted order, each read front to
// back. That sequence is made a multiple of world_size x batch_size (remainder "pad": repeated
// from its start; "drop": cut), cut into world_size equal contiguous slices, one per rank, and
// each rank's slice into num_workers runs of whole batches. So every rank gets exactly the same
// number of samples and batches, each reader streams at most two partial shards, and with "drop"
// no sample appears twice, with "pad" none is lost.
#pragma once

#include <cstdint>
#include <vector>

#include "ferry/status.h"

namespace ferry::datasets {

enum class Remainder { kPad, kDrop };

struct SplitOptions {
  uint64_t seed = 0;
  uint64_t epoch = 0;
  bool shuffle_shards = true;
  int world_size = 1;
  int num_workers = 1;  // loader worker processes per rank (0 counts as 1)
  uint64_t batch_size = 1;
  Remainder remainder = Remainder::kPad;
};

// Samples [first, first + count) of shard `shard` (an index into the shard list); count
// kToShardEnd means every sample from `first` on, however many there are.
inline constexpr uint64_t kToShardEnd = UINT64_MAX;
struct SampleSpan {
  size_t shard = 0;
  uint64_t first = 0;
  uint64_t count = 0;
};

struct WorkerPlan {
  std::vector<SampleSpan> spans;  // in reading order
  uint64_t samples = 0;
};

struct EpochPlan {
  uint64_t samples_per_rank = 0;  // the same for every rank, a multiple of batch_size
  std::vector<size_t> shard_order;
  // plans[rank][worker]
  std::vector<std::vector<WorkerPlan>> plans;
};

// The plan for one epoch over shards with `samples_per_shard` samples each (from an index).
// kInvalidArgument for bad options, or when "drop" leaves nothing / there is nothing to pad.
Result<EpochPlan> PlanEpoch(const std::vector<uint64_t>& samples_per_shard,
                            const SplitOptions& options);

// Where an interrupted run stood: its options, its readers' shuffle buffer, and the samples each
// of its ranks had consumed (the same on every rank; a multiple of its batch_size).
struct ResumePoint {
  SplitOptions options;
  size_t shuffle_buffer = 0;
  uint64_t samples_per_rank = 0;
};

// The rest of that epoch for a run that may have another world_size, num_workers or batch_size
// (same seed, epoch and shard shuffling): the samples the interrupted run had not yet yielded,
// each exactly once, in the epoch's base order, split across the new ranks and workers as
// PlanEpoch splits a whole epoch (so "pad" may repeat a few to even out the ranks). Which
// samples were yielded is replayed from the interrupted run's plans and shuffle buffers, without
// reading a shard. A resume point at the end of the epoch gives empty plans.
Result<EpochPlan> PlanResumedEpoch(const std::vector<uint64_t>& samples_per_shard,
                                   const ResumePoint& resume, const SplitOptions& options);

// splitmix64: a fixed, portable mixer, so plans and shuffles are identical on every platform and
// library version (std::shuffle's use of the engine is implementation-defined).
uint64_t SplitMix64(uint64_t x);

}  // namespace ferry::datasets
