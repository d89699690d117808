// PlanReader: the samples of one worker's plan, in order, optionally mixed by a shuffle buffer.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "datasets/split.h"
#include "ferry/datasets.h"

namespace ferry::datasets {

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
  uint64_t Random();

  std::vector<std::string> urls_;
  WorkerPlan plan_;
  PlanReaderOptions options_;
  size_t span_ = 0;            // current span
  uint64_t left_in_span_ = 0;  // samples still to yield from it
  std::unique_ptr<SampleReader> reader_;
  std::vector<Sample> buffer_;  // the shuffle buffer
  bool drained_ = false;
  uint64_t rng_state_;
};

// A seed for one reader's shuffle buffer, distinct per (seed, epoch, rank, worker).
uint64_t ShuffleSeed(uint64_t seed, uint64_t epoch, uint64_t rank, uint64_t worker);

}  // namespace ferry::datasets
