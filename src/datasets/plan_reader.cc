#include "datasets/plan_reader.h"

namespace ferry::datasets {
uint64_t ShuffleSeed(uint64_t seed, uint64_t epoch, uint64_t rank, uint64_t worker) {
  return SplitMix64(SplitMix64(SplitMix64(SplitMix64(seed) ^ epoch) ^ rank) ^ worker);
}

std::vector<uint64_t> ShuffledOrder(uint64_t count, size_t shuffle_buffer, uint64_t seed) {
  std::vector<uint64_t> order;
  order.reserve(count);
  if (shuffle_buffer <= 1) {
    for (uint64_t i = 0; i < count; ++i) order.push_back(i);
    return order;
  }
  ShuffleBuffer<uint64_t> buffer(shuffle_buffer, seed);
  uint64_t next = 0;
  while (true) {  // the same fill-then-pop loop as PlanReader::Next
    while (next < count && buffer.wants_more()) buffer.Push(next++);
    if (buffer.empty()) return order;
    order.push_back(buffer.Pop());
  }
}

PlanReader::PlanReader(std::vector<std::string> urls, WorkerPlan plan, PlanReaderOptions options)
    : urls_(std::move(urls)),
      plan_(std::move(plan)),
      options_(std::move(options)),
      buffer_(options_.shuffle_buffer, options_.shuffle_seed) {}

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
  while (!drained_ && buffer_.wants_more()) {
    FERRY_ASSIGN_OR_RETURN(std::optional<Sample> sample, NextInPlanOrder());
    if (!sample) {
      drained_ = true;
      break;
    }
    buffer_.Push(std::move(*sample));
  }
  if (buffer_.empty()) return std::optional<Sample>();
  return std::optional<Sample>(buffer_.Pop());
}

}  // namespace ferry::datasets
