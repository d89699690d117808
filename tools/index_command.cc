// ferry index SHARDS... -o index.json: each shard's URL, size and sample count, for exact splits.

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "ferry/datasets.h"
#include "ferry/io.h"
#include "tools/commands.h"
#include "tools/output.h"

namespace ferry::cli {
namespace {

struct IndexArgs {
  std::vector<std::string> shards;
  std::string output;
  int threads = 0;
};

Status RunIndex(const IndexArgs& args) {
  FERRY_ASSIGN_OR_RETURN(std::vector<std::string> urls, datasets::ExpandShards(args.shards));
  uint64_t total_bytes = 0;
  // Shards are network-bound as often as CPU-bound: a few more streams than cores.
  int threads = args.threads > 0
                    ? args.threads
                    : static_cast<int>(2 * std::max(1u, std::thread::hardware_concurrency()));
  ProgressLine progress("indexing shards", urls.size(), ProgressLine::Unit::kItems);
  size_t done = 0;
  datasets::IndexOptions options;
  options.threads = threads;
  options.on_shard_done = [&](uint64_t bytes) {
    total_bytes += bytes;
    progress.Update(++done);
  };
  FERRY_ASSIGN_OR_RETURN(std::vector<datasets::ShardInfo> shards,
                         datasets::IndexShards(urls, options));
  progress.Clear();
  // A reader resolves relative entries against the index's folder, not the working folder this
  // ran in, so local shards are recorded by absolute path.
  for (datasets::ShardInfo& shard : shards) {
    Result<io::Uri> uri = io::ParseUri(shard.url);
    if (uri.ok() && uri->scheme == io::Scheme::kFile && !shard.url.starts_with('/') &&
        !shard.url.starts_with("file:")) {
      shard.url = std::filesystem::absolute(shard.url).lexically_normal().string();
    }
  }
  FERRY_RETURN_IF_ERROR(datasets::WriteIndex(args.output, shards));
  uint64_t samples = 0;
  for (const auto& s : shards) samples += s.samples;
  std::printf("%s: %zu shards, %llu samples, %s\n", io::RedactUri(args.output).c_str(), shards.size(),
              static_cast<unsigned long long>(samples), HumanBytes(total_bytes).c_str());
  return Status::Ok();
}

}  // namespace

void RegisterIndex(CLI::App& app, Status* result) {
  auto args = std::make_shared<IndexArgs>();
  CLI::App* cmd = app.add_subcommand(
      "index", "Count the samples of tar shards (streaming each once) and write an index");
  cmd->add_option("shards", args->shards,
                  "Shards: paths, URLs, s3:// URIs; {000..099} ranges, globs, s3://b/prefix/, @FILE")
      ->required();
  cmd->add_option("-o,--output", args->output, "Index to write (local path or s3://)")->required();
  cmd->add_option("--threads", args->threads, "Shards read at once (default: 2 per core)")
      ->check(CLI::Range(1, 1024));
  cmd->callback([args, result] { *result = RunIndex(*args); });
}

}  // namespace ferry::cli
