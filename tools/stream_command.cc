// ferry stream SHARDS... [--rank R --world-size W] [--tokenizer T --field F --seq-len N]: read a
// dataset as one rank would, report samples/s and MB/s (and the keys with --keys); with a
// tokenizer, also encode each sample's text field on every core and report tokens/s and the
// packed rows of seq_len + 1 tokens it makes (documents joined with an end-of-document token).

#include <chrono>
#include <cstdio>

#include "datasets/loader.h"
#include "datasets/split.h"
#include "ferry/datasets.h"
#include "ferry/io.h"
#include "ferry/text.h"
#include "tools/commands.h"
#include "tools/output.h"

namespace ferry::cli {
namespace {

struct StreamArgs {
  std::vector<std::string> shards;
  std::string index;
  int rank = 0;
  int world_size = 1;
  uint64_t seed = 0;
  uint64_t epoch = 0;
  size_t shuffle_buffer = 0;
  int readers = 0;
  std::string on_error = "fail";
  bool keys = false;
  bool json = false;
  std::string tokenizer;
  std::string field = "txt";
  uint64_t seq_len = 2048;
};

// Encodes the text field of samples a batch at a time and counts tokens.
class TokenCounter {
 public:
  TokenCounter(std::shared_ptr<const text::Tokenizer> tokenizer, std::string field)
      : tokenizer_(std::move(tokenizer)), field_(std::move(field)) {}

  Status Add(const datasets::Sample& sample) {
    const datasets::Bytes* text = sample.Find(field_);
    if (!text) {
      return NotFound(sample.url + ": sample " + sample.key + " has no field \"" + field_ + "\"");
    }
    pending_.emplace_back(reinterpret_cast<const char*>(text->data()), text->size());
    return pending_.size() >= 1024 ? Flush() : Status::Ok();
  }

  Status Flush() {
    std::vector<std::string_view> views(pending_.begin(), pending_.end());
    text::EncodeOptions options;
    options.match_added_tokens = false;  // sample text is data, not markup
    options.add_special_tokens = false;
    FERRY_RETURN_IF_ERROR(tokenizer_->EncodeBatch(views, options, 0, encoded_));
    for (const auto& ids : encoded_) tokens_ += ids.size();
    documents_ += pending_.size();
    pending_.clear();
    return Status::Ok();
  }

  uint64_t tokens() const { return tokens_; }
  // Rows of seq_len + 1 tokens that stride seq_len over the documents, each followed by an
  // end-of-document token (what ferry.data.pack_tokens yields).
  uint64_t rows(uint64_t seq_len) const {
    uint64_t stream = tokens_ + documents_;
    return stream > seq_len ? (stream - 1) / seq_len : 0;
  }

 private:
  std::shared_ptr<const text::Tokenizer> tokenizer_;
  std::string field_;
  std::vector<std::string> pending_;
  std::vector<std::vector<uint32_t>> encoded_;
  uint64_t tokens_ = 0;
  uint64_t documents_ = 0;
};

Status RunStream(const StreamArgs& args) {
  std::vector<std::string> urls;
  std::vector<uint64_t> counts;
  if (!args.index.empty()) {
    FERRY_ASSIGN_OR_RETURN(std::vector<datasets::ShardInfo> shards,
                           datasets::ReadIndex(args.index));
    for (auto& s : shards) {
      urls.push_back(s.url);
      counts.push_back(s.samples);
    }
  } else {
    FERRY_ASSIGN_OR_RETURN(urls, datasets::ExpandShards(args.shards));
    if (urls.empty()) return InvalidArgument("no shards given (SHARDS... or --index)");
    if (args.world_size > 1) {  // an exact split needs the sample counts
      std::fprintf(stderr,
                   "counting the samples of %zu shards (ferry index + --index skips this)\n",
                   urls.size());
      FERRY_ASSIGN_OR_RETURN(std::vector<datasets::ShardInfo> shards,
                             datasets::IndexShards(urls, 8));
      for (auto& s : shards) counts.push_back(s.samples);
    }
  }
  datasets::WorkerPlan plan;
  if (counts.empty()) {  // one rank, no index: every shard front to back, no counting pass
    for (size_t i = 0; i < urls.size(); ++i) plan.spans.push_back({i, 0, datasets::kToShardEnd});
  } else {
    datasets::SplitOptions split;
    split.seed = args.seed;
    split.epoch = args.epoch;
    split.world_size = args.world_size;
    FERRY_ASSIGN_OR_RETURN(datasets::EpochPlan epoch, datasets::PlanEpoch(counts, split));
    if (args.rank >= args.world_size) {
      return InvalidArgument("--rank " + std::to_string(args.rank) +
                             " must be below --world-size " + std::to_string(args.world_size));
    }
    plan = epoch.plans[static_cast<size_t>(args.rank)][0];
  }
  datasets::LoaderOptions options;
  options.shuffle_buffer = args.shuffle_buffer;
  options.shuffle_seed = datasets::ShuffleSeed(args.seed, args.epoch, args.rank, 0);
  options.readers = args.readers;
  options.on_error = args.on_error == "skip" ? datasets::OnError::kSkip : datasets::OnError::kFail;
  std::unique_ptr<TokenCounter> counter;
  if (!args.tokenizer.empty()) {
    if (args.seq_len == 0) return InvalidArgument("--seq-len must be at least 1");
    FERRY_ASSIGN_OR_RETURN(std::shared_ptr<const text::Tokenizer> tokenizer, text::Tokenizer::Open(args.tokenizer));
    counter = std::make_unique<TokenCounter>(std::move(tokenizer), args.field);
  }
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<datasets::SampleLoader> loader,
                         datasets::SampleLoader::Start(urls, plan, options));
  ProgressLine progress("streaming", 0, ProgressLine::Unit::kItems);
  auto start = std::chrono::steady_clock::now();
  uint64_t samples = 0, bytes = 0;
  while (true) {
    FERRY_ASSIGN_OR_RETURN(std::optional<datasets::Sample> next, loader->Next());
    if (!next) break;
    ++samples;
    for (const auto& [field, data] : next->fields) bytes += data.size();
    if (args.keys) std::printf("%s\t%s\n", next->url.c_str(), next->key.c_str());
    if (counter) FERRY_RETURN_IF_ERROR(counter->Add(*next));
    progress.Update(samples);
  }
  if (counter) FERRY_RETURN_IF_ERROR(counter->Flush());
  progress.Clear();
  std::vector<datasets::Skipped> skipped = loader->skipped();
  uint64_t skipped_samples = 0;
  for (const datasets::Skipped& skip : skipped) {
    std::fprintf(stderr, "skipped %s: %s\n",
                 skip.samples == datasets::kToShardEnd
                     ? "the rest of the shard"
                     : (std::to_string(skip.samples) + " samples").c_str(),
                 skip.error.c_str());
    if (skip.samples != datasets::kToShardEnd) skipped_samples += skip.samples;
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (args.json) {
    std::string tokens;
    if (counter) {
      tokens = ", \"tokens\": " + std::to_string(counter->tokens()) +
               ", \"rows\": " + std::to_string(counter->rows(args.seq_len));
    }
    std::printf(
        "{\"samples\": %llu, \"bytes\": %llu, \"seconds\": %.6f, \"skipped_shards\": %zu, "
        "\"skipped_samples\": %llu%s}\n",
        static_cast<unsigned long long>(samples), static_cast<unsigned long long>(bytes), seconds,
        skipped.size(), static_cast<unsigned long long>(skipped_samples), tokens.c_str());
  } else {
    std::fprintf(args.keys ? stderr : stdout,
                 "rank %d/%d: %llu samples, %s in %.3f s: %.0f samples/s, %.1f MB/s\n", args.rank,
                 args.world_size, static_cast<unsigned long long>(samples),
                 HumanBytes(bytes).c_str(), seconds, samples / std::max(seconds, 1e-9),
                 static_cast<double>(bytes) / 1e6 / std::max(seconds, 1e-9));
    if (counter) {
      std::fprintf(args.keys ? stderr : stdout,
                   "%llu tokens: %.0f tokens/s; %llu packed rows of %llu + 1 tokens\n",
                   static_cast<unsigned long long>(counter->tokens()),
                   static_cast<double>(counter->tokens()) / std::max(seconds, 1e-9),
                   static_cast<unsigned long long>(counter->rows(args.seq_len)),
                   static_cast<unsigned long long>(args.seq_len));
    }
  }
  return Status::Ok();
}

}  // namespace

void RegisterStream(CLI::App& app, Status* result) {
  auto args = std::make_shared<StreamArgs>();
  CLI::App* cmd =
      app.add_subcommand("stream", "Read a sharded dataset as one rank would, report samples/s");
  cmd->add_option("shards", args->shards, "Shards: paths, URLs, s3:// URIs; ranges, globs, @FILE of them");
  cmd->add_option("--index", args->index, "A `ferry index` file (skips counting samples)");
  cmd->add_option("--rank", args->rank, "This rank")->check(CLI::NonNegativeNumber);
  cmd->add_option("--world-size", args->world_size, "Ranks in all")->check(CLI::PositiveNumber);
  cmd->add_option("--seed", args->seed, "Seed of the shard order and shuffle");
  cmd->add_option("--epoch", args->epoch, "Epoch (changes the order)");
  cmd->add_option("--shuffle-buffer", args->shuffle_buffer, "Samples mixed at once (0: none)");
  cmd->add_option("--readers", args->readers,
                  "Shards read at once (default: 1 for local files, 4 for URLs)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--on-error", args->on_error,
                  "fail: stop at the first bad shard; skip: skip it, report what was lost")
      ->check(CLI::IsMember({"fail", "skip"}));
  cmd->add_flag("--keys", args->keys, "Print each sample's shard and key");
  cmd->add_flag("--json", args->json, "Print the totals as JSON");
  cmd->add_option("--tokenizer", args->tokenizer, "Also encode --field (tokenizer.json or .tiktoken)");
  cmd->add_option("--field", args->field, "The text field to encode (default: txt)");
  cmd->add_option("--seq-len", args->seq_len, "Packed row length to count (default: 2048)");
  cmd->callback([args, result] { *result = RunStream(*args); });
}

}  // namespace ferry::cli
