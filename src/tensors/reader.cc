// TensorReader: the four ways of getting a safetensors file's tensors into host memory.

#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>
#include <thread>

#include "base/host_buffer.h"
#include "ferry/tensors.h"
#include "pipeline/parallel_for.h"

namespace ferry::tensors {
namespace {

constexpr std::array<std::pair<Mode, std::string_view>, 4> kModeNames = {{
    {Mode::kEager, "eager"},
    {Mode::kLazy, "lazy"},
    {Mode::kPlaid, "plaid"},
    {Mode::kMmap, "mmap"},
}};

io::ParallelReadOptions ParallelOptions(const ReaderOptions& options) {
  return {options.parallelism, options.part_size};
}

Status CheckSliceDestination(const std::string& uri, const TensorInfo& info,
                             const SlicePlan& plan, std::span<std::byte> dst) {
  if (dst.size() == plan.nbytes()) return Status::Ok();
  return InvalidArgument(uri + ": the slice of tensor '" + info.name + "' has " +
                         std::to_string(plan.nbytes()) + " bytes; the destination has " +
                         std::to_string(dst.size()));
}

uint64_t SliceMaxGap(const io::Source& source, const ReaderOptions& options) {
  if (options.slice_max_gap != 0) return options.slice_max_gap;
  Result<io::Uri> uri = io::ParseUri(source.uri());
  bool local = uri.ok() && uri->scheme == io::Scheme::kFile;
  return local ? uint64_t{4} << 10 : uint64_t{256} << 10;
}

// Reads the slice `plan` of tensor `info` from `source` into `dst`: only the slice's bytes, in
// coalesced reads of at most part_size run `parallelism` at a time; or, when checksums are to be
// verified, the whole tensor (a checksum covers all of it), checked, then cut.
Status ReadPlannedSlice(io::Source& source, const Header& header, const TensorInfo& info,
                        const SlicePlan& plan, const ReaderOptions& options,
                        std::span<std::byte> dst) {
  const std::string& uri = source.uri();
  FERRY_RETURN_IF_ERROR(CheckSliceDestination(uri, info, plan, dst));
  if (!source.random_access()) {
    return Unsupported(io::RedactUri(uri) +
                       ": the server ignores Range requests, so a slice of tensor '" +
                       info.name + "' would download the file up to it; load the whole file "
                       "(mode='eager') or copy it to a local path first");
  }
  const uint64_t tensor_offset = header.data_offset() + info.begin;
  if (options.verify_checksums) {
    FERRY_ASSIGN_OR_RETURN(auto whole,
                           HostBuffer::Allocate(info.nbytes(), uri + ": tensor " + info.name));
    FERRY_RETURN_IF_ERROR(
        io::ReadParallel(source, tensor_offset, whole->bytes(), ParallelOptions(options)));
    FERRY_RETURN_IF_ERROR(VerifyChecksum(uri, header, info, whole->bytes()));
    plan.Gather(whole->bytes(), dst);
    return Status::Ok();
  }
  int threads = options.parallelism > 0 ? options.parallelism : source.default_parallelism();
  // Reads are planned a batch at a time, so planning memory stays small even for a slice of
  // millions of tiny runs with large gaps between them.
  constexpr size_t kBatch = 1024;
  std::vector<SliceRead> batch;
  auto run_batch = [&]() -> Status {
    Status status = pipeline::ParallelFor(batch.size(), threads, [&](size_t i) -> Status {
      const SliceRead& read = batch[i];
      uint64_t span = read.end - read.begin;
      if (read.gapless(plan.run_bytes())) {
        return source.ReadAt(tensor_offset + read.begin, dst.subspan(read.dst_offset, span));
      }
      auto scratch = std::make_unique_for_overwrite<std::byte[]>(span);
      FERRY_RETURN_IF_ERROR(source.ReadAt(tensor_offset + read.begin, {scratch.get(), span}));
      for (uint64_t k = 0; k < read.runs; ++k) {
        uint64_t from = plan.RunOffset(read.first_run + k) - read.begin;
        std::memcpy(dst.data() + read.dst_offset + k * plan.run_bytes(), scratch.get() + from,
                    plan.run_bytes());
      }
      return Status::Ok();
    });
    batch.clear();
    return status;
  };
  FERRY_RETURN_IF_ERROR(
      plan.ForEachRead(SliceMaxGap(source, options), options.part_size, [&](const SliceRead& r) {
        batch.push_back(r);
        return batch.size() == kBatch ? run_batch() : Status::Ok();
      }));
  return run_batch();
}

// All tensors in one allocation, read front to back by `parallelism` readers in `part_size`
// parts: the data buffer has no gaps, so the whole file is one coalesced request.
class EagerReader final : public TensorReader {
 public:
  static Result<std::unique_ptr<TensorReader>> Load(io::Source& source, Header header,
                                                    const ReaderOptions& options) {
    FERRY_ASSIGN_OR_RETURN(auto buffer,
                           HostBuffer::Allocate(header.data_size, source.uri() + ": eager load"));
    FERRY_RETURN_IF_ERROR(
        io::ReadParallel(source, header.data_offset(), buffer->bytes(), ParallelOptions(options)));
    if (options.verify_checksums) {
      FERRY_RETURN_IF_ERROR(pipeline::ParallelFor(
          header.tensors.size(), static_cast<int>(std::thread::hardware_concurrency()),
          [&](size_t i) {
            const TensorInfo& info = header.tensors[i];
            return VerifyChecksum(source.uri(), header, info,
                                  buffer->bytes().subspan(info.begin, info.nbytes()));
          }));
    }
    return std::unique_ptr<TensorReader>(
        new EagerReader(source.uri(), std::move(header), std::move(buffer)));
  }

  Result<Tensor> Get(std::string_view name) override {
    const TensorInfo* info = header().Find(name);
    if (info == nullptr) return NotFoundError(name);
    return Tensor{*info, buffer_->bytes().subspan(info->begin, info->nbytes()), buffer_};
  }

 private:
  EagerReader(std::string uri, Header header, std::shared_ptr<HostBuffer> buffer)
      : TensorReader(std::move(uri), std::move(header), Mode::kEager), buffer_(std::move(buffer)) {}
  std::shared_ptr<HostBuffer> buffer_;
};

// Each tensor read on first access into its own allocation, then cached.
class LazyReader final : public TensorReader {
 public:
  LazyReader(std::unique_ptr<io::Source> source, Header header, const ReaderOptions& options)
      : TensorReader(source->uri(), std::move(header), Mode::kLazy),
        source_(std::move(source)),
        options_(options),
        cache_(this->header().tensors.size()) {}

  Result<Tensor> Get(std::string_view name) override {
    const TensorInfo* info = header().Find(name);
    if (info == nullptr) return NotFoundError(name);
    size_t index = static_cast<size_t>(info - header().tensors.data());
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cache_[index]) return Tensor{*info, cache_[index]->bytes(), cache_[index]};
    }
    // Read outside the lock so different tensors load concurrently; if two threads race on one
    // tensor, the first to finish wins and the other's copy is dropped.
    FERRY_ASSIGN_OR_RETURN(auto buffer,
                           HostBuffer::Allocate(info->nbytes(), uri() + ": tensor " + info->name));
    FERRY_RETURN_IF_ERROR(io::ReadParallel(*source_, header().data_offset() + info->begin,
                                           buffer->bytes(), ParallelOptions(options_)));
    if (options_.verify_checksums) {
      FERRY_RETURN_IF_ERROR(VerifyChecksum(uri(), header(), *info, buffer->bytes()));
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (!cache_[index]) cache_[index] = std::move(buffer);
    return Tensor{*info, cache_[index]->bytes(), cache_[index]};
  }

  Status ReadInto(std::string_view name, std::span<std::byte> dst) override {
    const TensorInfo* info = header().Find(name);
    if (info == nullptr) return NotFoundError(name);
    FERRY_RETURN_IF_ERROR(CheckDestination(*info, dst));
    {
      std::lock_guard<std::mutex> lock(mu_);
      size_t index = static_cast<size_t>(info - header().tensors.data());
      if (cache_[index]) {
        std::copy(cache_[index]->data(), cache_[index]->data() + dst.size(), dst.data());
        return Status::Ok();
      }
    }
    FERRY_RETURN_IF_ERROR(io::ReadParallel(*source_, header().data_offset() + info->begin, dst,
                                           ParallelOptions(options_)));
    return options_.verify_checksums ? VerifyChecksum(uri(), header(), *info, dst) : Status::Ok();
  }

  Status ReadSlice(std::string_view name, std::span<const DimSlice> dims,
                   std::span<std::byte> dst) override {
    const TensorInfo* info = header().Find(name);
    if (info == nullptr) return NotFoundError(name);
    FERRY_ASSIGN_OR_RETURN(SlicePlan plan, SlicePlan::Make(uri(), *info, dims));
    std::shared_ptr<HostBuffer> cached;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cached = cache_[static_cast<size_t>(info - header().tensors.data())];
    }
    if (!cached) return ReadPlannedSlice(*source_, header(), *info, plan, options_, dst);
    FERRY_RETURN_IF_ERROR(CheckSliceDestination(uri(), *info, plan, dst));
    plan.Gather(cached->bytes(), dst);
    return Status::Ok();
  }

  // From the source even where tensors are cached: a range is read once by its caller, and
  // caching the tensors it cuts would hold them twice.
  Status ReadRange(uint64_t begin, std::span<std::byte> dst) override {
    return ReadRangeFromSource(*source_, options_, begin, dst);
  }

 private:
  std::unique_ptr<io::Source> source_;
  const ReaderOptions options_;
  std::mutex mu_;
  std::vector<std::shared_ptr<HostBuffer>> cache_;  // by tensor index
};

// Views into a private mapping of the file.
class MmapReader final : public TensorReader {
 public:
  static Result<std::unique_ptr<TensorReader>> Open(std::unique_ptr<io::Source> source,
                                                    Header header, const ReaderOptions& options) {
    FERRY_ASSIGN_OR_RETURN(std::shared_ptr<io::MappedFile> mapping,
                           io::MappedFile::Open(source->uri()));
    if (mapping->bytes().size() != source->size()) {
      return SourceChanged(source->uri() + ": the file changed size while being opened (" +
                           std::to_string(source->size()) + " then " +
                           std::to_string(mapping->bytes().size()) + " bytes)");
    }
    return std::unique_ptr<TensorReader>(new MmapReader(
        std::move(source), std::move(header), std::move(mapping), options));
  }

  Result<Tensor> Get(std::string_view name) override {
    const TensorInfo* info = header().Find(name);
    if (info == nullptr) return NotFoundError(name);
    // A file truncated under the mapping turns a touch of a page past its end into SIGBUS: one
    // fstat per tensor (~1 us) refuses to hand out views of a file that changed size. It cannot
    // help a view handed out earlier, nor a truncation between this check and the touch.
    FERRY_ASSIGN_OR_RETURN(uint64_t size_now, mapping_->CurrentSize());
    if (size_now != mapping_->bytes().size()) {
      return SourceChanged(uri() + ": the file is now " + std::to_string(size_now) +
                           " bytes but was " + std::to_string(mapping_->bytes().size()) +
                           " when mapped (truncated or rewritten in place under an mmap reader); "
                           "tensor '" + info->name + "' is refused, since touching pages past "
                           "the end would kill the process with SIGBUS");
    }
    std::span<std::byte> bytes =
        mapping_->private_bytes().subspan(header().data_offset() + info->begin, info->nbytes());
    if (options_.verify_checksums) {
      FERRY_RETURN_IF_ERROR(VerifyChecksum(uri(), header(), *info, bytes));
    }
    return Tensor{*info, bytes, mapping_};
  }

  // A slice is a copy, so it is read from the file (pread) rather than copied out of the
  // mapping: the mapped pages a copy would touch stay out of the process's memory (a 1/8 row
  // slice of a tensor would otherwise cost the slice twice), and a truncated file is an error,
  // never SIGBUS.
  Status ReadSlice(std::string_view name, std::span<const DimSlice> dims,
                   std::span<std::byte> dst) override {
    return ReadSliceFromSource(*source_, options_, name, dims, dst);
  }

  Status ReadRange(uint64_t begin, std::span<std::byte> dst) override {
    return ReadRangeFromSource(*source_, options_, begin, dst);
  }

 private:
  MmapReader(std::unique_ptr<io::Source> source, Header header,
             std::shared_ptr<io::MappedFile> mapping, const ReaderOptions& options)
      : TensorReader(source->uri(), std::move(header), Mode::kMmap),
        source_(std::move(source)),
        mapping_(std::move(mapping)),
        options_(options) {}
  std::unique_ptr<io::Source> source_;
  std::shared_ptr<io::MappedFile> mapping_;
  const ReaderOptions options_;
};

// A cursor over a TensorStream. Asking for tensors in file order streams the file once; asking
// for one further back or far ahead restarts the stream there.
class PlaidReader final : public TensorReader {
 public:
  // The stream starts with the first Get(): a caller that only uses ReadInto never needs it.
  static Result<std::unique_ptr<TensorReader>> Open(std::unique_ptr<io::Source> source,
                                                    Header header, const ReaderOptions& options) {
    FERRY_RETURN_IF_ERROR(TensorStream::CheckOptions(source->uri(), options));
    return std::unique_ptr<TensorReader>(
        new PlaidReader(std::move(source), std::move(header), options));
  }

  Result<Tensor> Get(std::string_view name) override {
    std::lock_guard<std::mutex> lock(mu_);
    FERRY_ASSIGN_OR_RETURN(size_t index, Find(name));
    if (index == current_) return current_tensor_;
    // The previous tensor is evicted whatever happens next; a failure leaves no current one.
    current_ = SIZE_MAX;
    current_tensor_ = Tensor{};
    const TensorInfo& info = header().tensors[index];
    Tensor tensor{info, {}, nullptr};
    if (info.nbytes() != 0) {
      Result<Tensor> pulled = Pull(index);
      if (!pulled.ok()) {
        stream_.reset();  // its error is permanent; the next request starts a fresh stream
        return pulled.status();
      }
      tensor = std::move(*pulled);
    }
    if (options_.verify_checksums) {
      FERRY_RETURN_IF_ERROR(VerifyChecksum(uri(), header(), info, tensor.data));
    }
    handed_out_[index] = true;
    current_ = index;
    current_tensor_ = std::move(tensor);
    return current_tensor_;
  }

  Status ReadInto(std::string_view name, std::span<std::byte> dst) override {
    std::lock_guard<std::mutex> lock(mu_);
    FERRY_ASSIGN_OR_RETURN(size_t index, Find(name));
    const TensorInfo& info = header().tensors[index];
    FERRY_RETURN_IF_ERROR(CheckDestination(info, dst));
    if (index == current_) {
      std::copy(current_tensor_.data.begin(), current_tensor_.data.end(), dst.begin());
      return Status::Ok();
    }
    current_ = SIZE_MAX;  // the previous tensor's view is now evicted too
    current_tensor_ = Tensor{};
    // Host memory the caller owns needs no staging: one parallel read straight into it is one
    // copy fewer and no memory beyond it. (Staging exists for views and for device copies.)
    FERRY_RETURN_IF_ERROR(io::ReadParallel(*source_, header().data_offset() + info.begin, dst,
                                           ParallelOptions(options_)));
    if (options_.verify_checksums) {
      FERRY_RETURN_IF_ERROR(VerifyChecksum(uri(), header(), info, dst));
    }
    handed_out_[index] = true;
    return Status::Ok();
  }

  // Straight from the source, whatever the stream holds: the slice is the caller's own copy,
  // so the tensor may have been handed out (or evicted) before, and no lock is needed.
  Status ReadSlice(std::string_view name, std::span<const DimSlice> dims,
                   std::span<std::byte> dst) override {
    return ReadSliceFromSource(*source_, options_, name, dims, dst);
  }

  Status ReadRange(uint64_t begin, std::span<std::byte> dst) override {
    return ReadRangeFromSource(*source_, options_, begin, dst);
  }

 private:
  // The index of `name`; kEvicted if it was handed out before and is no longer the current
  // tensor. (A tensor counts as handed out only once it was delivered successfully.)
  Result<size_t> Find(std::string_view name) {
    const TensorInfo* info = header().Find(name);
    if (info == nullptr) return NotFoundError(name);
    size_t index = static_cast<size_t>(info - header().tensors.data());
    if (index != current_ && handed_out_[index]) {
      return Evicted(uri() + ": tensor '" + info->name +
                     "' was evicted: in plaid mode a tensor is valid until the next one is read "
                     "(copy it, or open the file in eager or lazy mode to keep tensors)");
    }
    return index;
  }

  // Positions the stream at tensor `index` and gathers its chunks: a view of the staging buffer
  // when the tensor arrives in one chunk, else a copy into its own buffer.
  Result<Tensor> Pull(size_t index) {
    const TensorInfo& info = header().tensors[index];
    // Restart rather than read through more than one staging round of unwanted bytes.
    uint64_t skip =
        next_tensor_ <= index ? info.begin - header().tensors[next_tensor_].begin : UINT64_MAX;
    uint64_t staging_bytes =
        static_cast<uint64_t>(options_.staging_buffers) * options_.staging_buffer_size;
    if (!stream_ || skip > staging_bytes) {
      stream_.reset();  // stop the old read-ahead before starting another
      FERRY_ASSIGN_OR_RETURN(stream_,
                             TensorStream::Open(source_.get(), &header(), options_, index));
    }
    std::shared_ptr<HostBuffer> assembled;
    uint64_t filled = 0;
    while (true) {
      FERRY_ASSIGN_OR_RETURN(std::optional<TensorChunk> chunk, stream_->Next());
      if (!chunk) {
        return Internal(uri() + ": plaid stream ended before tensor '" + info.name + "'");
      }
      if (chunk->tensor < index) continue;  // skipped over
      if (chunk->tensor > index || chunk->offset_in_tensor != filled) {
        return Internal(uri() + ": plaid stream out of order at tensor '" + info.name + "'");
      }
      next_tensor_ = index + 1;
      if (filled == 0 && chunk->bytes.size() == info.nbytes()) {
        return Tensor{info, chunk->bytes, stream_->staging()};
      }
      if (!assembled) {
        FERRY_ASSIGN_OR_RETURN(
            assembled, HostBuffer::Allocate(info.nbytes(), uri() + ": tensor " + info.name));
      }
      std::copy(chunk->bytes.begin(), chunk->bytes.end(), assembled->data() + filled);
      filled += chunk->bytes.size();
      if (filled == info.nbytes()) return Tensor{info, assembled->bytes(), assembled};
    }
  }

  PlaidReader(std::unique_ptr<io::Source> source, Header header, const ReaderOptions& options)
      : TensorReader(source->uri(), std::move(header), Mode::kPlaid),
        source_(std::move(source)),
        options_(options),
        handed_out_(this->header().tensors.size(), false) {}

  std::unique_ptr<io::Source> source_;
  const ReaderOptions options_;
  std::mutex mu_;
  std::vector<bool> handed_out_;
  size_t current_ = SIZE_MAX;
  Tensor current_tensor_;
  std::unique_ptr<TensorStream> stream_;
  size_t next_tensor_ = 0;  // first tensor whose chunks the stream has not delivered yet
};

}  // namespace

std::string_view ModeName(Mode mode) {
  for (const auto& [m, name] : kModeNames) {
    if (m == mode) return name;
  }
  return "unknown";
}

std::optional<Mode> ModeFromName(std::string_view name) {
  for (const auto& [mode, n] : kModeNames) {
    if (n == name) return mode;
  }
  return std::nullopt;
}

Status TensorReader::NotFoundError(std::string_view name) const {
  return NotFound(uri_ + ": no tensor named '" + std::string(name) + "'");
}

Status TensorReader::CheckDestination(const TensorInfo& info, std::span<std::byte> dst) const {
  if (dst.size() == info.nbytes()) return Status::Ok();
  return InvalidArgument(uri_ + ": tensor '" + info.name + "' has " +
                         std::to_string(info.nbytes()) + " bytes; the destination has " +
                         std::to_string(dst.size()));
}

// Eager and mmap tensors are already in memory: a copy.
Status TensorReader::ReadInto(std::string_view name, std::span<std::byte> dst) {
  FERRY_ASSIGN_OR_RETURN(Tensor tensor, Get(name));
  FERRY_RETURN_IF_ERROR(CheckDestination(tensor.info, dst));
  std::copy(tensor.data.begin(), tensor.data.end(), dst.begin());
  return Status::Ok();
}

Status TensorReader::ReadSliceFromSource(io::Source& source, const ReaderOptions& options,
                                         std::string_view name, std::span<const DimSlice> dims,
                                         std::span<std::byte> dst) const {
  const TensorInfo* info = header_.Find(name);
  if (info == nullptr) return NotFoundError(name);
  FERRY_ASSIGN_OR_RETURN(SlicePlan plan, SlicePlan::Make(uri_, *info, dims));
  return ReadPlannedSlice(source, header_, *info, plan, options, dst);
}

Status TensorReader::CheckRange(uint64_t begin, uint64_t size) const {
  if (begin <= header_.data_size && size <= header_.data_size - begin) return Status::Ok();
  return OutOfRange(uri_ + ": " + std::to_string(size) + " bytes at offset " +
                    std::to_string(begin) + " of the data buffer reach past its end (" +
                    std::to_string(header_.data_size) + " bytes)");
}

Status TensorReader::ReadRangeFromSource(io::Source& source, const ReaderOptions& options,
                                         uint64_t begin, std::span<std::byte> dst) const {
  FERRY_RETURN_IF_ERROR(CheckRange(begin, dst.size()));
  if (dst.empty()) return Status::Ok();
  if (!source.random_access()) {
    return Unsupported(io::RedactUri(uri_) +
                       ": the server ignores Range requests, so reading bytes [" +
                       std::to_string(begin) + ", ...) of the data would download the file up "
                       "to them; load the whole file (mode='eager') or copy it to a local path "
                       "first");
  }
  const uint64_t end = begin + dst.size();
  // Tensors overlapping [begin, end): header.tensors is sorted by begin and has no gaps.
  auto first = std::upper_bound(header_.tensors.begin(), header_.tensors.end(), begin,
                                [](uint64_t b, const TensorInfo& t) { return b < t.end; });
  if (options.verify_checksums) {
    for (auto t = first; t != header_.tensors.end() && t->begin < end; ++t) {
      bool cut = t->begin < begin || t->end > end;
      if (cut && t->nbytes() != 0 && FindChecksum(header_, t->name) != nullptr) {
        return InvalidArgument(uri_ + ": bytes [" + std::to_string(begin) + ", " +
                               std::to_string(end) + ") cut tensor '" + t->name + "' [" +
                               std::to_string(t->begin) + ", " + std::to_string(t->end) +
                               "), whose checksum covers all of it; with verify_checksums a "
                               "range must hold whole tensors");
      }
    }
  }
  FERRY_RETURN_IF_ERROR(io::ReadParallel(source, header_.data_offset() + begin, dst,
                                         ParallelOptions(options)));
  if (options.verify_checksums) {
    for (auto t = first; t != header_.tensors.end() && t->begin < end; ++t) {
      if (t->begin < begin || t->end > end) continue;  // uncheckable; refused above if recorded
      FERRY_RETURN_IF_ERROR(
          VerifyChecksum(uri_, header_, *t, dst.subspan(t->begin - begin, t->nbytes())));
    }
  }
  return Status::Ok();
}

// Eager tensors are in memory already (one allocation, checked at load if asked): a copy of
// the range, tensor by tensor.
Status TensorReader::ReadRange(uint64_t begin, std::span<std::byte> dst) {
  FERRY_RETURN_IF_ERROR(CheckRange(begin, dst.size()));
  const uint64_t end = begin + dst.size();
  auto first = std::upper_bound(header_.tensors.begin(), header_.tensors.end(), begin,
                                [](uint64_t b, const TensorInfo& t) { return b < t.end; });
  for (auto t = first; t != header_.tensors.end() && t->begin < end; ++t) {
    if (t->nbytes() == 0) continue;
    FERRY_ASSIGN_OR_RETURN(Tensor tensor, Get(t->name));
    uint64_t from = std::max(begin, t->begin);
    uint64_t to = std::min(end, t->end);
    std::copy(tensor.data.begin() + (from - t->begin), tensor.data.begin() + (to - t->begin),
              dst.begin() + (from - begin));
  }
  return Status::Ok();
}

// Eager tensors are in memory already: a copy of the slice's runs.
Status TensorReader::ReadSlice(std::string_view name, std::span<const DimSlice> dims,
                               std::span<std::byte> dst) {
  const TensorInfo* info = header_.Find(name);
  if (info == nullptr) return NotFoundError(name);
  FERRY_ASSIGN_OR_RETURN(SlicePlan plan, SlicePlan::Make(uri_, *info, dims));
  FERRY_RETURN_IF_ERROR(CheckSliceDestination(uri_, *info, plan, dst));
  FERRY_ASSIGN_OR_RETURN(Tensor tensor, Get(name));
  plan.Gather(tensor.data, dst);
  return Status::Ok();
}

Result<std::unique_ptr<TensorReader>> TensorReader::Open(std::string_view uri,
                                                         const ReaderOptions& options) {
  if (options.mode == Mode::kMmap) {
    FERRY_ASSIGN_OR_RETURN(io::Uri parsed, io::ParseUri(uri));
    if (parsed.scheme != io::Scheme::kFile) {
      return Unsupported(std::string(uri) +
                         ": mmap mode needs a local file; use eager, lazy or plaid for URLs");
    }
  }
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<io::Source> source, io::OpenSource(uri, options.source));
  if (options.mode == Mode::kLazy && !source->random_access()) {
    return Unsupported(io::RedactUri(uri) +
                       ": the server ignores Range requests (it answered 200 with the whole file), "
                       "so lazy mode would download the file again for each tensor read out of "
                       "order; use mode='eager' or 'plaid', which stream it once, or copy it to a "
                       "local path first");
  }
  FERRY_ASSIGN_OR_RETURN(Header header, ReadHeader(*source));
  switch (options.mode) {
    case Mode::kEager:
      return EagerReader::Load(*source, std::move(header), options);
    case Mode::kLazy:
      return std::unique_ptr<TensorReader>(
          new LazyReader(std::move(source), std::move(header), options));
    case Mode::kPlaid:
      return PlaidReader::Open(std::move(source), std::move(header), options);
    case Mode::kMmap:
      return MmapReader::Open(std::move(source), std::move(header), options);
  }
  return InvalidArgument(std::string(uri) + ": unknown mode");
}

}  // namespace ferry::tensors
