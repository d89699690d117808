// TensorStream: the plan of staging reads and the read-ahead loop that fills them.

#include <algorithm>

#include "base/host_buffer.h"
#include "ferry/tensors.h"
#include "pipeline/prefetcher.h"

namespace ferry::tensors {
namespace {

struct PlannedChunk {
  size_t tensor;
  uint64_t offset_in_tensor;
  uint64_t offset_in_buffer;
  uint64_t length;
};

// One read into one staging buffer: [file_offset, file_offset + length) of the data buffer.
struct StagingRead {
  uint64_t data_offset = 0;
  uint64_t length = 0;
  size_t first_chunk = 0;
  size_t chunk_count = 0;
};

struct Plan {
  std::vector<StagingRead> reads;
  std::vector<PlannedChunk> chunks;
  uint64_t largest_read = 0;
};

// Packs tensors in file order into reads of at most `buffer_size` bytes (tensors are contiguous
// in the file, so consecutive ones make one contiguous read).
Plan MakePlan(const Header& header, size_t first_tensor, uint64_t buffer_size) {
  Plan plan;
  StagingRead open;
  auto flush = [&] {
    if (open.length == 0) return;
    plan.largest_read = std::max(plan.largest_read, open.length);
    plan.reads.push_back(open);
    open = StagingRead{};
  };
  auto add_chunk = [&](size_t tensor, uint64_t offset_in_tensor, uint64_t data_offset,
                       uint64_t length) {
    if (open.length == 0) {
      open.data_offset = data_offset;
      open.first_chunk = plan.chunks.size();
    }
    plan.chunks.push_back({tensor, offset_in_tensor, open.length, length});
    open.length += length;
    open.chunk_count++;
  };
  for (size_t i = first_tensor; i < header.tensors.size(); ++i) {
    const TensorInfo& info = header.tensors[i];
    uint64_t size = info.nbytes();
    if (size == 0) continue;
    if (size <= buffer_size) {
      if (open.length + size > buffer_size) flush();
      add_chunk(i, 0, info.begin, size);
      continue;
    }
    flush();
    for (uint64_t offset = 0; offset < size; offset += buffer_size) {
      add_chunk(i, offset, info.begin + offset, std::min(buffer_size, size - offset));
      flush();
    }
  }
  flush();
  return plan;
}

struct StagingSlot {
  std::byte* data = nullptr;
};

class PrefetchingTensorStream final : public TensorStream {
 public:
  PrefetchingTensorStream(io::Source* source, const Header* header, const ReaderOptions& options,
                          Plan plan, std::shared_ptr<HostBuffer> staging, size_t slot_size,
                          int slot_count)
      : source_(source), header_(header), plan_(std::move(plan)), staging_(std::move(staging)) {
    std::vector<StagingSlot> slots(static_cast<size_t>(slot_count));
    for (size_t i = 0; i < slots.size(); ++i) slots[i].data = staging_->data() + i * slot_size;
    io::ParallelReadOptions parallel{options.parallelism, options.part_size};
    prefetcher_.emplace(
        std::move(slots), plan_.reads.size(), [this, parallel](size_t index, StagingSlot& slot) {
          const StagingRead& read = plan_.reads[index];
          return io::ReadParallel(*source_, header_->data_offset() + read.data_offset,
                                  {slot.data, read.length}, parallel);
        });
  }

  Result<std::optional<TensorChunk>> Next() override {
    if (slot_ == nullptr || next_chunk_ == read_end_) {
      FERRY_ASSIGN_OR_RETURN(slot_, prefetcher_->Next());
      if (slot_ == nullptr) return std::optional<TensorChunk>();
      const StagingRead& read = plan_.reads[read_index_++];
      next_chunk_ = read.first_chunk;
      read_end_ = read.first_chunk + read.chunk_count;
    }
    const PlannedChunk& chunk = plan_.chunks[next_chunk_++];
    return std::optional<TensorChunk>(
        TensorChunk{chunk.tensor,
                    chunk.offset_in_tensor,
                    {slot_->data + chunk.offset_in_buffer, chunk.length},
                    next_chunk_ == read_end_});
  }

  std::shared_ptr<void> staging() const override { return staging_; }
  std::span<std::byte> staging_bytes() const override { return staging_->bytes(); }

 private:
  io::Source* source_;
  const Header* header_;
  const Plan plan_;
  std::shared_ptr<HostBuffer> staging_;
  std::optional<pipeline::Prefetcher<StagingSlot>> prefetcher_;  // last: its thread uses the above
  StagingSlot* slot_ = nullptr;
  size_t read_index_ = 0;
  size_t next_chunk_ = 0;
  size_t read_end_ = 0;
};

}  // namespace

Status TensorStream::CheckOptions(const std::string& uri, const ReaderOptions& options) {
  if (options.staging_buffers < 2) {
    return InvalidArgument(uri + ": plaid streaming needs at least 2 staging buffers (" +
                           std::to_string(options.staging_buffers) + " requested)");
  }
  if (options.staging_buffer_size < 4096) {
    return InvalidArgument(uri + ": staging buffers must hold at least 4096 bytes (" +
                           std::to_string(options.staging_buffer_size) + " requested)");
  }
  return Status::Ok();
}

Result<std::unique_ptr<TensorStream>> TensorStream::Open(io::Source* source, const Header* header,
                                                         const ReaderOptions& options,
                                                         size_t first_tensor) {
  FERRY_RETURN_IF_ERROR(CheckOptions(source->uri(), options));
  Plan plan = MakePlan(*header, first_tensor, options.staging_buffer_size);
  // A file smaller than one buffer needs no more than its own size per buffer.
  size_t slot_size = static_cast<size_t>(plan.largest_read + 4095) / 4096 * 4096;
  FERRY_ASSIGN_OR_RETURN(
      auto staging, HostBuffer::Allocate(slot_size * static_cast<size_t>(options.staging_buffers),
                                         source->uri() + ": plaid staging buffers"));
  return std::unique_ptr<TensorStream>(
      new PrefetchingTensorStream(source, header, options, std::move(plan), std::move(staging),
                                  slot_size, options.staging_buffers));
}

}  // namespace ferry::tensors
