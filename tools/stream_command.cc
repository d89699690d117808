// ferry stream SHARDS... [--rank R --world-size W] [--tokenizer T --field F --seq-len N]: read a
// dataset as one rank would, report samples/s and MB/s (and the keys with --keys); with a
// tokenizer, run the packing pipeline itself (encode each sample's text field on every core, pack
// documents joined with <|endoftext|> into rows of seq_len + 1) and report tokens/s and rows.

#include <chrono>
#include <cstdio>

#include "datasets/loader.h"
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

Status RunStream(const StreamArgs& args) {
  if (args.rank >= args.world_size) {
    return InvalidArgument("--rank " + std::to_string(args.rank) + " must be below --world-size " +
                           std::to_string(args.world_size));
  }
  std::vector<datasets::ShardInfo> shards;
  bool counted = true;
  if (!args.index.empty()) {
    FERRY_ASSIGN_OR_RETURN(shards, datasets::ReadIndex(args.index));
  } else {
    FERRY_ASSIGN_OR_RETURN(std::vector<std::string> urls, datasets::ExpandShards(args.shards));
    if (urls.empty()) return InvalidArgument("no shards given (SHARDS... or --index)");
    counted = args.world_size > 1;  // an exact split needs the sample counts
    if (counted) {
      std::fprintf(stderr,
                   "counting the samples of %zu shards (ferry index + --index skips this)\n",
                   urls.size());
      FERRY_ASSIGN_OR_RETURN(shards, datasets::IndexShards(urls));
    } else {  // one rank, no index: every shard front to back, no counting pass
      for (std::string& url : urls) shards.emplace_back().url = std::move(url);
    }
  }
  datasets::ReaderRequest request;
  request.split.seed = args.seed;
  request.split.epoch = args.epoch;
  request.split.world_size = args.world_size;
  request.rank = args.rank;
  request.shuffle_buffer = args.shuffle_buffer;
  datasets::LoaderOptions options;
  options.readers = args.readers;
  options.on_error = args.on_error == "skip" ? datasets::OnError::kSkip : datasets::OnError::kFail;
  FERRY_ASSIGN_OR_RETURN(datasets::ReaderPlan plan,
                         datasets::PlanReader(shards, counted, request, options));
  // The plan's samples when the counts are known (an index, or counted for a split); else the
  // total is unknown and the line shows the count alone.
  ProgressLine progress("streaming", counted ? plan.plan.samples : 0, ProgressLine::Unit::kItems);
  auto start = std::chrono::steady_clock::now();
  uint64_t samples = 0, bytes = 0, tokens = 0, rows = 0;
  std::vector<datasets::Skipped> skipped;
  if (args.tokenizer.empty()) {
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<datasets::SampleLoader> loader,
                           datasets::SampleLoader::Start(std::move(plan.urls), std::move(plan.plan),
                                                         std::move(plan.options)));
    while (true) {
      FERRY_ASSIGN_OR_RETURN(std::optional<datasets::Sample> next, loader->Next());
      if (!next) break;
      ++samples;
      for (const auto& [field, data] : next->fields) bytes += data.size();
      if (args.keys) std::printf("%s\t%s\n", io::RedactUri(next->url).c_str(), next->key.c_str());
      progress.Update(samples);
    }
    skipped = loader->skipped();
  } else {  // the packing pipeline itself, one row per batch
    if (args.keys) return InvalidArgument("--keys does not combine with --tokenizer");
    datasets::PackOptions pack;
    FERRY_ASSIGN_OR_RETURN(pack.tokenizer, text::Tokenizer::Open(args.tokenizer));
    pack.field = args.field;
    pack.seq_len = args.seq_len;
    std::string eod = "<|endoftext|>";
    if (!pack.tokenizer->TokenToId(eod, pack.eod_id)) {
      return InvalidArgument(args.tokenizer + ": no <|endoftext|> token to end documents with");
    }
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<datasets::PackedLoader> loader,
                           datasets::PackedLoader::Start(std::move(plan.urls), std::move(plan.plan),
                                                         std::move(plan.options), std::move(pack)));
    while (true) {
      FERRY_ASSIGN_OR_RETURN(std::optional<datasets::TokenBatch> batch, loader->Next());
      if (!batch) break;
      rows += batch->rows;
      progress.Update(loader->samples());
    }
    samples = loader->samples();
    bytes = loader->sample_bytes();
    tokens = loader->tokens();
    skipped = loader->skipped();
  }
  progress.Clear();
  uint64_t skipped_samples = 0;
  for (const datasets::Skipped& skip : skipped) {
    std::fprintf(stderr, "skipped %s: %s\n",
                 skip.samples == datasets::kToShardEnd
                     ? "the rest of the shard"
                     : (std::to_string(skip.samples) + " samples").c_str(),
                 io::RedactUris(skip.error).c_str());
    if (skip.samples != datasets::kToShardEnd) skipped_samples += skip.samples;
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (args.json) {
    std::string token_fields;
    if (!args.tokenizer.empty()) {
      token_fields = ", \"tokens\": " + std::to_string(tokens) + ", \"rows\": " + std::to_string(rows);
    }
    std::printf(
        "{\"samples\": %llu, \"bytes\": %llu, \"seconds\": %.6f, \"skipped_shards\": %zu, "
        "\"skipped_samples\": %llu%s}\n",
        static_cast<unsigned long long>(samples), static_cast<unsigned long long>(bytes), seconds,
        skipped.size(), static_cast<unsigned long long>(skipped_samples), token_fields.c_str());
  } else {
    std::fprintf(args.keys ? stderr : stdout,
                 "rank %d/%d: %llu samples, %s in %.3f s: %.0f samples/s, %.1f MB/s\n", args.rank,
                 args.world_size, static_cast<unsigned long long>(samples),
                 HumanBytes(bytes).c_str(), seconds, samples / std::max(seconds, 1e-9),
                 static_cast<double>(bytes) / 1e6 / std::max(seconds, 1e-9));
    if (!args.tokenizer.empty()) {
      std::printf("%llu tokens: %.0f tokens/s; %llu packed rows of %llu + 1 tokens\n",
                  static_cast<unsigned long long>(tokens),
                  static_cast<double>(tokens) / std::max(seconds, 1e-9),
                  static_cast<unsigned long long>(rows),
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
