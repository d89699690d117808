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
#include <string_view>
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
  // > 0: resampled. Each (rank, worker) draws whole shards with replacement, independently of
  // the others (seeded by seed, epoch, rank, worker), until its share of this many samples per
  // rank is filled (the last shard cut short); a multiple of batch_size. The shard order and
  // remainder do not apply. What webdataset's resampled=True with with_epoch gives, but per rank
  // rather than per loader worker, so the epoch does not grow with num_workers. At most 64 times
  // the dataset (or 2^20 samples) per rank, as padding is bounded.
  uint64_t resampled_samples = 0;
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

// The plan for one epoch over shards with `samples_per_shard` samples each (from an index), or
// resampled from them (SplitOptions::resampled_samples).
// kInvalidArgument for bad options, or when "drop" leaves nothing / there is nothing to pad.
Result<EpochPlan> PlanEpoch(const std::vector<uint64_t>& samples_per_shard,
                            const SplitOptions& options);

// How a data loader takes one rank's samples from its loader workers: `turn` samples from one
// worker at a time, the workers in turn from worker 0, a worker whose plan is done left out.
// That is PyTorch's DataLoader over an IterableDataset, `turn` being its batch_size times the
// samples in one dataset item (1, or batch_size for a dataset that yields batches). With
// drop_last a worker's last partial turn is never taken.
struct LoaderTurns {
  uint64_t turn = 1;
  bool drop_last = false;
  std::string_view items = "samples";  // what the counts count, for messages ("batches")
};

// Where a rank's loader stood: the samples each worker had yielded to the consumer, and whose
// turn the cycle came to next.
struct WorkerProgress {
  std::vector<uint64_t> consumed;  // one entry per loader worker
  size_t next_worker = 0;
};

// The progress after the consumer took `samples_seen` samples from workers whose plans hold
// `worker_samples` samples each, taken as `turns` says. kInvalidArgument when samples_seen
// falls inside a turn (the message names the turn boundaries around it) or exceeds the plans.
Result<WorkerProgress> ProgressAfter(const std::vector<uint64_t>& worker_samples,
                                     const LoaderTurns& turns, uint64_t samples_seen);

// For a loader resumed on the same split: which interrupted worker a new `worker` plays, and how
// many of that worker's samples it skips. The new loader's cycle starts at its worker 0, so new
// worker w plays the one whose turn came w places after the interrupted cycle stopped; the
// sequence then continues exactly (workers that were done are left out by both cycles alike).
struct WorkerResume {
  size_t plays = 0;
  uint64_t skip = 0;
};
WorkerResume ResumeWorker(const WorkerProgress& progress, size_t worker);

// One stretch of an epoch run under one split, up to a checkpoint: its split options, its
// readers' shuffle buffer, and what each of its loader workers had yielded. Every rank runs
// plans of the same sizes in lockstep, so the progress is taken to be the same on every rank.
struct ResumeSegment {
  SplitOptions options;
  size_t shuffle_buffer = 0;
  WorkerProgress progress;
};

// The plan for the rest of an epoch that ran as `history` (oldest first), for a run with
// `options` (same seed, epoch and shard shuffling; any world_size, num_workers, batch_size or
// remainder). Segment 0 ran PlanEpoch; each later one ran what the segments before it had
// left, split by its own options. What every (rank, worker) of each segment yielded is replayed
// from its plans and shuffle buffers, without reading a shard, and the rest is split as
// PlanEpoch splits a whole epoch: each sample not yet yielded once, in the epoch's base order
// ("pad" may repeat a few to even out the ranks, "drop" leaves what cannot make a batch on every
// rank). An empty history is the whole epoch; a history that consumed everything gives empty
// plans. kInvalidArgument when a segment does not fit (another seed or epoch, a worker count
// that is not its split's, a worker that yielded more than its plan), and for a resampled
// epoch: its draws with replacement leave no "rest" to split (it resumes on its own split).
Result<EpochPlan> PlanEpochAfter(const std::vector<uint64_t>& samples_per_shard,
                                 const std::vector<ResumeSegment>& history,
                                 const SplitOptions& options);

}  // namespace ferry::datasets
