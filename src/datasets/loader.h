// The dataset pipeline: one loader worker's samples of an epoch plan, read, mixed and (for
// language-model training) tokenized, packed and batched by stages on their own threads, joined
// by bounded queues.
//
//   readers (N threads, one shard each) ─► ordered merge + shuffle buffer ─► samples
//                                                        │
//                          (PackedLoader) feed ─► tokenize (OrderedMap, T threads) ─► pack + batch
//
// Samples move between threads in chunks of up to 16 (one lock and wake-up per chunk, not per
// sample: per-sample hand-offs cost more than parsing the tar on a small machine). Memory is
// bounded by the queues, never by how far the readers get ahead of a slow consumer: at most
// about (2 x readers + 4) x queue_capacity + shuffle_buffer samples; for packing, a few chunks of
// documents per tokenizer thread and `batch_queue` batches more.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "datasets/packing.h"
#include "datasets/shuffle.h"
#include "datasets/split.h"
#include "ferry/datasets.h"
#include "ferry/text.h"
#include "pipeline/bounded_queue.h"
#include "pipeline/stages.h"

namespace ferry::datasets {

enum class OnError {
  kFail,  // the first error stops the pipeline and is returned by Next, naming shard and member
  kSkip,  // a failing shard's remaining samples (or a sample without the text field) are
          // skipped, counted and reported by skipped(); the rank then yields fewer samples
};

struct Skipped {
  std::string url;
  std::string error;
  uint64_t samples = 0;  // samples of the plan lost; kToShardEnd: the rest of a shard not indexed
};

struct LoaderOptions {
  // Samples held for mixing; 0 or 1 yields plan order. The shuffle is a function of the seed and
  // positions only, whatever the threads do.
  size_t shuffle_buffer = 0;
  uint64_t shuffle_seed = 0;  // derive it from (seed, epoch, rank, worker): ShuffleSeed
  // Shards read at once, each by its own thread, and merged back in plan order: overlaps the
  // latency of remote requests with reading other shards. 0: one when every shard is a local
  // file (the page cache delivers faster than a thread parses; a second reader only competes
  // with the merge: 257k vs 212k samples/s in process on 2 cores), four otherwise (a server
  // answering each request after 50 ms: 7.6k samples/s with one reader, 26.8k with four; on
  // loopback nginx, with no latency to hide, four cost 17%: 108k vs 130k).
  int readers = 0;
  // Samples a reader may have ready ahead of the merge, and samples ready for the consumer
  // (rounded up to whole chunks).
  size_t queue_capacity = 64;
  OnError on_error = OnError::kFail;
  TarOptions tar;
  io::SourceOptions source;  // how shards are opened (HTTP retries, S3)
  // Resume exactly: the first `skip_yielded` samples this plan, buffer and seed yield were
  // consumed by an interrupted run; yield exactly what it would have yielded next. Shards whose
  // samples were all yielded are not read; of the rest, the samples already yielded are read
  // and dropped while the shuffle buffer is rebuilt as it was. REQUIRES: a plan of definite
  // counts (no kToShardEnd).
  uint64_t skip_yielded = 0;
  // What was counted of each shard (indexed like `urls`: an index, or a counting pass); every
  // shard is checked against it when opened (CheckShardUnchanged). Empty: nothing to check.
  std::vector<ShardInfo> counted;
};

// Which part of an epoch one reader (one loader worker of one rank) reads. `ferry stream` and
// ferry.data both start their loaders from PlanReader's answer to one of these, so a (rank,
// worker) reads the same samples in the same order from either, and the chain from shard counts
// to plan, shuffle seed, resume skip and stale-shard checks exists once.
struct ReaderRequest {
  SplitOptions split;                  // this run's split of the epoch
  std::vector<ResumeSegment> history;  // the epoch's segments before this run (resume), oldest first
  int rank = 0;
  // The plan's worker this reader reads: its own index, or when resuming on the same split the
  // interrupted worker it continues (ResumeWorker's `plays`), of whose samples the first
  // `skip_yielded` were yielded already (ResumeWorker's `skip`).
  size_t plays = 0;
  uint64_t skip_yielded = 0;
  size_t shuffle_buffer = 0;  // samples mixed at once (0 or 1: plan order)
};

// One reader's part of an epoch over `shards`, ready for SampleLoader::Start or
// PackedLoader::Start: the shard URLs; the reader's plan (PlanEpochAfter of the request's split
// after its history); and `options` with its plan fields set: shuffle_buffer, shuffle_seed
// (ShuffleSeed of seed, epoch, rank and the worker it plays), skip_yielded, and `counted` (every
// shard is checked against what was counted of it as it opens). With `counted` false the shards'
// samples are unknown (not indexed): then the request must be one rank, one worker and no
// resume, and every shard is read front to back, with no counting pass.
struct ReaderPlan {
  std::vector<std::string> urls;
  WorkerPlan plan;
  LoaderOptions options;
};
Result<ReaderPlan> PlanReader(const std::vector<ShardInfo>& shards, bool counted,
                              const ReaderRequest& request, LoaderOptions options);

// The samples of one worker's plan, in plan order mixed by the shuffle buffer: exactly the order
// ShuffledOrder gives, however many readers run.
class SampleLoader {
 public:
  // `urls[span.shard]` is each span's shard. Threads start here and read ahead at once.
  static Result<std::unique_ptr<SampleLoader>> Start(std::vector<std::string> urls, WorkerPlan plan,
                                                     LoaderOptions options);
  // Cancels the stages and joins their threads; safe at any point of the stream.
  ~SampleLoader();

  // The next sample, nullopt when the plan is done. With OnError::kFail the first error is
  // returned here (and again on every later call); it names the shard URL and, from the tar
  // reader, the byte offset and member. Call from one thread at a time.
  Result<std::optional<Sample>> Next();

  // Stops the stages now: a Next in progress or later returns kCancelled. Thread-safe.
  void Cancel();

  // What OnError::kSkip skipped so far. Thread-safe.
  std::vector<Skipped> skipped() const;
  // The most field bytes the pipeline held at once (readers' queues, shuffle buffer, output
  // queue): what bounds its memory, exposed so tests can prove it stays bounded.
  uint64_t held_bytes_high_water() const { return high_water_.load(); }

 private:
  struct Chunk;
  // Where a resumed loader picks up (LoaderOptions::skip_yielded): its plan starts at position
  // `first`; positions below `next` had been read by the interrupted run, and those in `slots`
  // (in buffer order) were still in its shuffle buffer, whose random state was `state`.
  struct Resume {
    uint64_t first = 0;
    uint64_t next = 0;
    std::vector<uint64_t> slots;
    uint64_t state = 0;
  };
  static Result<Resume> PlanResume(WorkerPlan& plan, const LoaderOptions& options);
  SampleLoader(std::vector<std::string> urls, WorkerPlan plan, LoaderOptions options,
               Resume resume);
  void ReadSpans(size_t reader);
  Status ReadSpan(const SampleSpan& span, pipeline::BoundedQueue<Chunk>& queue, Chunk& chunk);
  void Merge();
  void Skip(Skipped skipped);
  void Hold(const Sample& sample, bool take);

  const std::vector<std::string> urls_;
  const WorkerPlan plan_;
  const LoaderOptions options_;
  const Resume resume_;
  const size_t chunk_size_;  // samples per hand-off
  std::vector<std::unique_ptr<pipeline::BoundedQueue<Chunk>>> reader_queues_;
  pipeline::BoundedQueue<Chunk> out_;
  std::vector<Sample> ready_;  // the consumer's current chunk, handed out from ready_next_ on
  size_t ready_next_ = 0;
  Status error_;  // sticky, once Next returned it
  std::atomic<bool> cancelled_{false};

  mutable std::mutex skipped_mu_;
  std::vector<Skipped> skipped_;
  std::atomic<uint64_t> held_{0};
  std::atomic<uint64_t> high_water_{0};
  pipeline::StageThreads threads_;  // last: joined first, while the members above live
};

struct PackOptions {
  std::shared_ptr<const text::Tokenizer> tokenizer;
  std::string field = "txt";  // the sample field holding the document's text
  uint64_t seq_len = 2048;    // rows are seq_len + 1 tokens
  uint64_t batch_size = 1;    // rows per batch
  text::TokenId eod_id = 0;   // appended after every document
  int threads = 0;            // tokenizer threads; 0: one per core
  size_t documents_per_chunk = 64;  // the unit of work of a tokenizer thread
  size_t batch_queue = 4;           // batches ready ahead of the consumer
};

// SampleLoader's samples -> the text `field` of each, encoded (no added-token matching, no
// post-processor: sample text is data) on a pool of tokenizer threads in order -> TokenPacker
// -> batches of `batch_size` rows. A partial last batch is dropped.
class PackedLoader {
 public:
  static Result<std::unique_ptr<PackedLoader>> Start(std::vector<std::string> urls, WorkerPlan plan,
                                                     LoaderOptions options, PackOptions pack);
  ~PackedLoader();
  // The next batch, nullopt at the end; errors as SampleLoader::Next (a sample without the field
  // is kNotFound naming the shard and key, or skipped with OnError::kSkip).
  Result<std::optional<TokenBatch>> Next();
  std::vector<Skipped> skipped() const;
  uint64_t tokens() const { return tokens_.load(); }  // tokens encoded so far (EOD ids excluded)
  uint64_t samples() const { return samples_read_.load(); }  // samples taken from the reader
  uint64_t sample_bytes() const { return sample_bytes_.load(); }  // their fields' bytes

 private:
  struct Document;
  struct Chunk;
  using Encoded = std::vector<std::vector<text::TokenId>>;
  PackedLoader(std::unique_ptr<SampleLoader> samples, LoaderOptions options, PackOptions pack);
  void Feed();
  void Pack();
  Result<Encoded> Encode(Chunk chunk) const;

  std::unique_ptr<SampleLoader> samples_;
  const LoaderOptions options_;
  const PackOptions pack_;
  std::unique_ptr<pipeline::OrderedMap<Chunk, Encoded>> tokenize_;
  pipeline::BoundedQueue<Result<TokenBatch>> out_;
  Status error_;
  mutable std::mutex skipped_mu_;
  std::vector<Skipped> skipped_;
  std::atomic<uint64_t> tokens_{0};
  std::atomic<uint64_t> samples_read_{0};
  std::atomic<uint64_t> sample_bytes_{0};
  pipeline::StageThreads threads_;  // last: joined first
};

}  // namespace ferry::datasets
