#include "datasets/loader.h"

#include <algorithm>
#include <thread>
#include <unordered_map>

namespace ferry::datasets {

namespace {

uint64_t FieldBytes(const Sample& sample) {
  uint64_t bytes = 0;
  for (const auto& [field, data] : sample.fields) bytes += data.size();
  return bytes;
}

Status FewerSamplesThanIndexed(const std::string& url) {
  return Corruption(url + ": the shard has fewer samples than its index says");
}

}  // namespace

// ---------------------------------------------------------------------------------- SampleLoader

// What moves between the stages: samples in order, then, where a span or the stream ends, the
// end marker or the error that ended it.
struct SampleLoader::Chunk {
  std::vector<Sample> samples;
  bool end = false;  // a reader's chunk: the span ends after these samples
  Status error;      // ... or failed after them
};

SampleLoader::SampleLoader(std::vector<std::string> urls, WorkerPlan plan, LoaderOptions options,
                           Resume resume)
    : urls_(std::move(urls)),
      plan_(std::move(plan)),
      options_(std::move(options)),
      resume_(std::move(resume)),
      chunk_size_(std::clamp<size_t>(options_.queue_capacity, 1, 16)),
      out_((options_.queue_capacity + chunk_size_ - 1) / chunk_size_) {
  int wanted = options_.readers;
  if (wanted <= 0) {
    bool local = std::all_of(urls_.begin(), urls_.end(), [](const std::string& url) {
      Result<io::Uri> uri = io::ParseUri(url);
      return uri.ok() && uri->scheme == io::Scheme::kFile;
    });
    wanted = local ? 1 : 4;
  }
  size_t readers = std::clamp<size_t>(static_cast<size_t>(wanted), 1,
                                      std::max<size_t>(plan_.spans.size(), 1));
  for (size_t i = 0; i < readers; ++i) {
    reader_queues_.push_back(std::make_unique<pipeline::BoundedQueue<Chunk>>(out_.capacity()));
  }
}

Result<ReaderPlan> PlanReader(const std::vector<ShardInfo>& shards, bool counted,
                              const ReaderRequest& request, LoaderOptions options) {
  ReaderPlan out;
  for (const ShardInfo& shard : shards) out.urls.push_back(shard.url);
  if (!counted) {
    if (request.split.world_size != 1 || request.split.num_workers > 1 ||
        !request.history.empty() || request.skip_yielded != 0 || request.split.resampled_samples) {
      return InvalidArgument(
          "splitting across ranks or loader workers, resampling and resuming need the samples "
          "per shard: give an index (ferry index), or let them be counted");
    }
    for (size_t i = 0; i < shards.size(); ++i) out.plan.spans.push_back({i, 0, kToShardEnd});
    out.options = std::move(options);
    out.options.shuffle_buffer = request.shuffle_buffer;
    out.options.shuffle_seed =
        ShuffleSeed(request.split.seed, request.split.epoch, static_cast<uint64_t>(request.rank), 0);
    out.options.skip_yielded = 0;
    out.options.counted.clear();
    return out;
  }
  std::vector<uint64_t> counts;
  for (const ShardInfo& shard : shards) counts.push_back(shard.samples);
  FERRY_ASSIGN_OR_RETURN(EpochPlan epoch, PlanEpochAfter(counts, request.history, request.split));
  if (request.rank < 0 || static_cast<size_t>(request.rank) >= epoch.plans.size()) {
    return InvalidArgument("rank " + std::to_string(request.rank) + " is not in [0, " +
                           std::to_string(epoch.plans.size()) + ")");
  }
  std::vector<WorkerPlan>& workers = epoch.plans[static_cast<size_t>(request.rank)];
  if (request.plays >= workers.size()) {
    return InvalidArgument("loader worker " + std::to_string(request.plays) + " is not in [0, " +
                           std::to_string(workers.size()) + ")");
  }
  out.plan = std::move(workers[request.plays]);
  out.options = std::move(options);
  out.options.shuffle_buffer = request.shuffle_buffer;
  out.options.shuffle_seed = ShuffleSeed(request.split.seed, request.split.epoch,
                                         static_cast<uint64_t>(request.rank), request.plays);
  out.options.skip_yielded = std::min(request.skip_yielded, out.plan.samples);
  out.options.counted = shards;
  return out;
}

Result<std::unique_ptr<SampleLoader>> SampleLoader::Start(std::vector<std::string> urls,
                                                          WorkerPlan plan, LoaderOptions options) {
  for (const SampleSpan& span : plan.spans) {
    if (span.shard >= urls.size()) return InvalidArgument("a plan names a shard out of range");
  }
  FERRY_ASSIGN_OR_RETURN(Resume resume, PlanResume(plan, options));
  std::unique_ptr<SampleLoader> loader(
      new SampleLoader(std::move(urls), std::move(plan), std::move(options), std::move(resume)));
  SampleLoader* self = loader.get();
  for (size_t r = 0; r < loader->reader_queues_.size(); ++r) {
    FERRY_RETURN_IF_ERROR(loader->threads_.Start([self, r] { self->ReadSpans(r); }));
  }
  FERRY_RETURN_IF_ERROR(loader->threads_.Start([self] { self->Merge(); }));
  return loader;
}

// Replays the interrupted run's shuffle over plan positions (the same loop as Merge) to find
// what its buffer held, then drops the plan's positions before the oldest one still needed.
Result<SampleLoader::Resume> SampleLoader::PlanResume(WorkerPlan& plan,
                                                      const LoaderOptions& options) {
  Resume resume;
  resume.state = options.shuffle_seed;  // nothing to skip: the buffer starts empty and fresh
  if (options.skip_yielded == 0) return resume;
  uint64_t total = 0;
  for (const SampleSpan& span : plan.spans) {
    if (span.count == kToShardEnd) {
      return InvalidArgument("resuming needs a plan of known sample counts (an index)");
    }
    total += span.count;
  }
  if (options.skip_yielded > total) {
    return InvalidArgument("cannot skip " + std::to_string(options.skip_yielded) +
                           " yielded samples of a plan of " + std::to_string(total));
  }
  ShuffleBuffer<uint64_t> replay(options.shuffle_buffer, options.shuffle_seed);
  resume.next = ReplayShuffle(replay, total, options.skip_yielded, [](uint64_t) {});
  resume.slots = replay.items();
  resume.state = replay.state();
  resume.first = resume.next;
  for (uint64_t position : resume.slots) resume.first = std::min(resume.first, position);
  // Drop the positions before `first` from the front of the plan: no shard is opened for them.
  uint64_t drop = resume.first;
  std::vector<SampleSpan> spans;
  for (const SampleSpan& span : plan.spans) {
    uint64_t dropped = std::min(drop, span.count);
    drop -= dropped;
    if (dropped < span.count) spans.push_back({span.shard, span.first + dropped, span.count - dropped});
  }
  plan.spans = std::move(spans);
  plan.samples = total - resume.first;
  return resume;
}

SampleLoader::~SampleLoader() {
  Cancel();
  threads_.Join();
}

void SampleLoader::Cancel() {
  cancelled_ = true;
  for (auto& queue : reader_queues_) queue->Cancel();
  out_.Cancel();
}

// Reader r reads spans r, r + readers, ... into its own queue; the merge takes span k from queue
// k % readers, so spans come back in plan order while `readers` shards are read at once.
void SampleLoader::ReadSpans(size_t reader) {
  auto& queue = *reader_queues_[reader];
  for (size_t k = reader; k < plan_.spans.size(); k += reader_queues_.size()) {
    Chunk chunk;
    Status status = ReadSpan(plan_.spans[k], queue, chunk);
    if (cancelled_) return;
    // The span's last samples with its end, or the error that ended it; the merge decides
    // whether that stops everything.
    chunk.end = status.ok();
    chunk.error = std::move(status);
    if (!queue.Push(std::move(chunk))) return;
  }
}

// Pushes the span's samples a chunk at a time, leaving the last partial chunk in `chunk`.
Status SampleLoader::ReadSpan(const SampleSpan& span, pipeline::BoundedQueue<Chunk>& queue,
                              Chunk& chunk) {
  const std::string& url = urls_[span.shard];
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<SampleReader> reader,
                         SampleReader::Open(url, options_.tar, options_.source));
  if (span.shard < options_.counted.size()) {
    FERRY_RETURN_IF_ERROR(CheckShardUnchanged(options_.counted[span.shard], *reader));
  }
  for (uint64_t skip = 0; skip < span.first; ++skip) {  // tar shards read front to back
    FERRY_ASSIGN_OR_RETURN(std::optional<Sample> sample, reader->Next());
    if (!sample) return FewerSamplesThanIndexed(url);
  }
  for (uint64_t i = 0; span.count == kToShardEnd || i < span.count; ++i) {
    FERRY_ASSIGN_OR_RETURN(std::optional<Sample> sample, reader->Next());
    if (!sample) return span.count == kToShardEnd ? Status::Ok() : FewerSamplesThanIndexed(url);
    Hold(*sample, true);
    chunk.samples.push_back(std::move(*sample));
    if (chunk.samples.size() == chunk_size_ && !queue.Push(std::exchange(chunk, Chunk{}))) {
      return Cancelled("the loader was stopped");
    }
  }
  return Status::Ok();
}

void SampleLoader::Merge() {
  ShuffleBuffer<Sample> buffer(options_.shuffle_buffer, options_.shuffle_seed);
  // A resumed loader first rebuilds the interrupted run's buffer from the positions it had read:
  // those still in its buffer go to their slots, the ones it had yielded are dropped.
  uint64_t position = resume_.first;
  std::vector<std::optional<Sample>> slots(resume_.slots.size());
  std::unordered_map<uint64_t, size_t> slot_of;
  for (size_t i = 0; i < resume_.slots.size(); ++i) slot_of[resume_.slots[i]] = i;
  bool restored = false;
  auto restore_when_due = [&] {
    if (restored || position < resume_.next) return;
    std::vector<Sample> items;
    for (std::optional<Sample>& slot : slots) {
      if (slot) items.push_back(std::move(*slot));  // absent only where on_error skipped it
    }
    buffer.Restore(std::move(items), resume_.state);
    restored = true;
  };
  restore_when_due();

  Chunk out;
  auto emit = [&](Sample sample) {
    out.samples.push_back(std::move(sample));
    return out.samples.size() < chunk_size_ || out_.Push(std::exchange(out, Chunk{}));
  };
  for (size_t k = 0; k < plan_.spans.size(); ++k) {
    const SampleSpan& span = plan_.spans[k];
    auto& queue = *reader_queues_[k % reader_queues_.size()];
    uint64_t received = 0;
    while (true) {
      std::optional<Chunk> chunk = queue.Pop();
      if (!chunk) return;  // cancelled
      for (Sample& sample : chunk->samples) {
        ++received;
        if (!restored) {
          auto slot = slot_of.find(position++);
          if (slot != slot_of.end()) {
            slots[slot->second] = std::move(sample);
          } else {
            Hold(sample, false);  // the interrupted run had yielded it
          }
          restore_when_due();
          continue;
        }
        ++position;
        buffer.Push(std::move(sample));
        if (!buffer.wants_more() && !emit(buffer.Pop())) return;
      }
      if (chunk->end) break;
      if (chunk->error.ok()) continue;
      if (options_.on_error == OnError::kFail) {
        out.error = std::move(chunk->error);  // after the samples already mixed out
        out_.Push(std::move(out));
        out_.Close();
        for (auto& q : reader_queues_) q->Cancel();  // nothing more is wanted from the readers
        return;
      }
      uint64_t lost = span.count == kToShardEnd ? kToShardEnd : span.count - received;
      Skip({urls_[span.shard], chunk->error.message(), lost});
      if (lost != kToShardEnd) position += lost;
      restore_when_due();
      break;
    }
  }
  position = std::max(position, resume_.next);  // every span skipped: restore what there is
  restore_when_due();
  while (!buffer.empty()) {
    if (!emit(buffer.Pop())) return;
  }
  if (!out.samples.empty() && !out_.Push(std::move(out))) return;
  out_.Close();
}

Result<std::optional<Sample>> SampleLoader::Next() {
  while (ready_next_ == ready_.size()) {
    if (!error_.ok()) return error_;
    std::optional<Chunk> chunk = out_.Pop();
    if (!chunk) {
      if (cancelled_) return Cancelled("the loader was stopped");
      return std::optional<Sample>();
    }
    ready_ = std::move(chunk->samples);
    ready_next_ = 0;
    error_ = std::move(chunk->error);  // returned once the samples before it are out
  }
  Sample& sample = ready_[ready_next_++];
  Hold(sample, false);
  return std::optional<Sample>(std::move(sample));
}

void SampleLoader::Hold(const Sample& sample, bool take) {
  uint64_t bytes = FieldBytes(sample);
  if (!take) {
    held_ -= bytes;
    return;
  }
  uint64_t now = held_ += bytes;
  uint64_t seen = high_water_.load();
  while (now > seen && !high_water_.compare_exchange_weak(seen, now)) {
  }
}

void SampleLoader::Skip(Skipped skipped) {
  std::lock_guard<std::mutex> lock(skipped_mu_);
  skipped_.push_back(std::move(skipped));
}

std::vector<Skipped> SampleLoader::skipped() const {
  std::lock_guard<std::mutex> lock(skipped_mu_);
  return skipped_;
}

// --------------------------------------------------------------------------------- PackedLoader

// Only the text field travels to the tokenizer threads (with the names its errors need); the
// sample's other fields, images say, are freed as soon as the sample is read.
struct PackedLoader::Document {
  std::string url;
  std::string key;
  Bytes text;
};

struct PackedLoader::Chunk {
  std::vector<Document> documents;
  Status error;  // the error that ended the stream after these documents
};

PackedLoader::PackedLoader(std::unique_ptr<SampleLoader> samples, LoaderOptions options,
                           PackOptions pack)
    : samples_(std::move(samples)),
      options_(std::move(options)),
      pack_(std::move(pack)),
      out_(std::max<size_t>(pack_.batch_queue, 1)) {}

Result<std::unique_ptr<PackedLoader>> PackedLoader::Start(std::vector<std::string> urls,
                                                          WorkerPlan plan, LoaderOptions options,
                                                          PackOptions pack) {
  if (!pack.tokenizer) return InvalidArgument("token packing needs a tokenizer");
  if (pack.seq_len < 1 || pack.seq_len >= (uint64_t{1} << 30)) {
    return InvalidArgument("seq_len must be in [1, 2^30) (got " + std::to_string(pack.seq_len) +
                           ")");
  }
  if (pack.batch_size < 1) return InvalidArgument("batch_size must be >= 1");
  if (pack.tokenizer->vocab_size() > (uint64_t{1} << 31) || pack.eod_id >= (uint32_t{1} << 31)) {
    return InvalidArgument("token ids must fit int32 for packing");
  }
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<SampleLoader> samples,
                         SampleLoader::Start(std::move(urls), std::move(plan), options));
  std::unique_ptr<PackedLoader> loader(
      new PackedLoader(std::move(samples), std::move(options), std::move(pack)));
  PackedLoader* self = loader.get();
  int threads = loader->pack_.threads > 0
                    ? loader->pack_.threads
                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Two chunks per thread: one being encoded, one waiting, so no thread idles between chunks.
  FERRY_ASSIGN_OR_RETURN(loader->tokenize_,
                         (pipeline::OrderedMap<Chunk, Encoded>::Start(
                             threads, 2 * static_cast<size_t>(threads) + 1,
                             [self](Chunk chunk) { return self->Encode(std::move(chunk)); })));
  FERRY_RETURN_IF_ERROR(loader->threads_.Start([self] { self->Feed(); }));
  FERRY_RETURN_IF_ERROR(loader->threads_.Start([self] { self->Pack(); }));
  return loader;
}

PackedLoader::~PackedLoader() {
  samples_->Cancel();
  if (tokenize_) tokenize_->Cancel();
  out_.Cancel();
  threads_.Join();
}

// Samples -> chunks of documents for the tokenizer threads, in order.
void PackedLoader::Feed() {
  Chunk chunk;
  auto submit = [&] {
    if (chunk.documents.empty() && chunk.error.ok()) return true;
    return tokenize_->Submit(std::exchange(chunk, Chunk{}));
  };
  while (true) {
    Result<std::optional<Sample>> next = samples_->Next();
    if (!next.ok()) {
      chunk.error = std::move(next).status();
      break;
    }
    if (!*next) break;
    Sample& sample = **next;
    ++samples_read_;
    sample_bytes_ += FieldBytes(sample);
    auto text = std::find_if(sample.fields.begin(), sample.fields.end(),
                             [&](const auto& field) { return field.first == pack_.field; });
    if (text == sample.fields.end()) {
      Status missing = MissingField(sample, pack_.field);
      if (options_.on_error == OnError::kSkip) {
        std::lock_guard<std::mutex> lock(skipped_mu_);
        skipped_.push_back({sample.url, missing.message(), 1});
        continue;
      }
      chunk.error = std::move(missing);
      break;
    }
    chunk.documents.push_back({std::move(sample.url), std::move(sample.key), std::move(text->second)});
    if (chunk.documents.size() >= pack_.documents_per_chunk && !submit()) return;
  }
  submit();
  tokenize_->Close();
}

Result<PackedLoader::Encoded> PackedLoader::Encode(Chunk chunk) const {
  if (!chunk.error.ok()) return chunk.error;  // the stream stops here: its documents are moot
  text::EncodeOptions options;
  options.match_added_tokens = false;  // sample text is data, not markup
  options.add_special_tokens = false;
  Encoded encoded(chunk.documents.size());
  for (size_t i = 0; i < chunk.documents.size(); ++i) {
    const Document& doc = chunk.documents[i];
    Status status = pack_.tokenizer->Encode(
        std::string_view(reinterpret_cast<const char*>(doc.text.data()), doc.text.size()), options,
        encoded[i]);
    if (!status.ok()) {
      return Status(status.code(), doc.url + ": sample '" + doc.key + "': " + status.message());
    }
  }
  return encoded;
}

// Encoded documents, in order -> rows -> batches of batch_size rows.
void PackedLoader::Pack() {
  TokenPacker packer(pack_.seq_len, pack_.eod_id);
  TokenBatch batch;
  while (true) {
    std::optional<Result<Encoded>> next = tokenize_->Next();
    if (!next) break;  // done, or cancelled
    if (!next->ok()) {
      out_.Push(std::move(*next).status());
      break;
    }
    for (const std::vector<text::TokenId>& document : **next) {
      tokens_ += document.size();
      packer.Add(document);
      while (packer.NextRow(batch)) {
        if (batch.rows == pack_.batch_size && !out_.Push(std::exchange(batch, TokenBatch{}))) return;
      }
    }
  }
  out_.Close();
}

Result<std::optional<TokenBatch>> PackedLoader::Next() {
  if (!error_.ok()) return error_;
  std::optional<Result<TokenBatch>> item = out_.Pop();
  if (!item) return std::optional<TokenBatch>();
  if (!item->ok()) {
    error_ = std::move(*item).status();
    return error_;
  }
  return std::optional<TokenBatch>(std::move(*item).value());
}

std::vector<Skipped> PackedLoader::skipped() const {
  std::vector<Skipped> all = samples_->skipped();
  std::lock_guard<std::mutex> lock(skipped_mu_);
  all.insert(all.end(), skipped_.begin(), skipped_.end());
  return all;
}

}  // namespace ferry::datasets
