#include "datasets/plan_reader.h"

namespace ferry::datasets {
namespace {

uint64_t Mix(uint64_t x) {  // splitmix64, as in split.cc: portable and fixed
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

uint64_t ShuffleSeed(uint64_t seed, uint64_t epoch, uint64_t rank, uint64_t worker) {
  return Mix(Mix(Mix(Mix(seed) ^ epoch) ^ rank) ^ worker);
}

PlanReader::PlanReader(std::vector<std::string> urls, WorkerPlan plan, PlanReaderOptions options)
    : urls_(std::move(urls)),
      plan_(std::move(plan)),
      options_(std::move(options)),
      rng_state_(options_.shuffle_seed) {}

uint64_t PlanReader::Random() { return rng_state_ = Mix(rng_state_); }

Result<std::optional<Sample>> PlanReader::NextInPlanOrder() {
  while (true) {
    if (left_in_span_ > 0) {
      FERRY_ASSIGN_OR_RETURN(std::optional<Sample> sample, reader_->Next());
      if (!sample && left_in_span_ == kToShardEnd) {
        left_in_span_ = 0;
        continue;
      }
      if (!sample) {
        return Corruption(urls_[plan_.spans[span_ - 1].shard] +
                          ": the shard has fewer samples than its index says");
      }
      if (left_in_span_ != kToShardEnd) --left_in_span_;
      return sample;
    }
    if (span_ == plan_.spans.size()) return std::optional<Sample>();
    const SampleSpan& span = plan_.spans[span_];
    if (span.shard >= urls_.size()) return InvalidArgument("a plan names a shard out of range");
    // Move on only once the shard is open and positioned: after a failure, the next call
    // retries this span rather than skipping its samples.
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<SampleReader> reader,
                           SampleReader::Open(urls_[span.shard], options_.tar));
    for (uint64_t skip = 0; skip < span.first; ++skip) {  // tar shards read front to back
      FERRY_ASSIGN_OR_RETURN(std::optional<Sample> sample, reader->Next());
      if (!sample) {
        return Corruption(urls_[span.shard] + ": the shard has fewer samples than its index says");
      }
    }
    reader_ = std::move(reader);
    left_in_span_ = span.count;
    ++span_;
  }
}

Result<std::optional<Sample>> PlanReader::Next() {
  if (options_.shuffle_buffer <= 1) return NextInPlanOrder();
  while (!drained_ && buffer_.size() < options_.shuffle_buffer) {
    FERRY_ASSIGN_OR_RETURN(std::optional<Sample> sample, NextInPlanOrder());
    if (!sample) {
      drained_ = true;
      break;
    }
    buffer_.push_back(std::move(*sample));
  }
  if (buffer_.empty()) return std::optional<Sample>();
  size_t pick = static_cast<size_t>(Random() % buffer_.size());
  std::swap(buffer_[pick], buffer_.back());
  Sample out = std::move(buffer_.back());
  buffer_.pop_back();
  return std::optional<Sample>(std::move(out));
}

}  // namespace ferry::datasets
