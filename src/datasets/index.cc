// Shard index: sample counts for exact splits, from one parallel pass over the shards.

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <mutex>

#include "base/json.h"
#include "ferry/datasets.h"
#include "pipeline/parallel_for.h"

namespace ferry::datasets {

Result<std::vector<ShardInfo>> IndexShards(const std::vector<std::string>& urls,
                                           const IndexOptions& options) {
  std::vector<ShardInfo> shards(urls.size());
  std::mutex progress_mu;
  auto count = [&](size_t i) -> Status {
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<SampleReader> reader, SampleReader::Open(urls[i]));
    shards[i].bytes = reader->shard_bytes();  // one open per shard (a request for URLs)
    shards[i].version = reader->shard_version();
    while (true) {
      FERRY_ASSIGN_OR_RETURN(std::optional<Sample> sample, reader->Next());
      if (!sample) break;
      ++shards[i].samples;
    }
    if (options.on_shard_done) {
      std::lock_guard<std::mutex> lock(progress_mu);
      options.on_shard_done(shards[i].bytes);
    }
    return Status::Ok();
  };
  // Every shard's outcome is kept, so which failure is reported does not depend on the threads.
  FERRY_RETURN_IF_ERROR(pipeline::ParallelFor(urls.size(), options.threads, [&](size_t i) {
    shards[i].url = urls[i];
    // A shard that fails part way keeps the count of the samples read before the failure: a
    // loader that skips bad shards reads those and only those (a span stops at its count).
    shards[i].error = count(i);
    return Status::Ok();
  }));
  if (!options.keep_going) {
    for (ShardInfo& shard : shards) {
      if (!shard.error.ok()) return std::move(shard.error);
    }
  }
  return shards;
}

namespace {

bool IsSha256Hex(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Status ExpandOne(std::string_view spec, std::vector<std::string>& urls) {
  FERRY_ASSIGN_OR_RETURN(std::vector<std::string> braced, io::ExpandBraces(spec));
  for (const std::string& one : braced) {
    FERRY_ASSIGN_OR_RETURN(std::vector<std::string> matched, io::ExpandUriPattern(one));
    urls.insert(urls.end(), matched.begin(), matched.end());
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<std::string>> ExpandShards(const std::vector<std::string>& specs) {
  std::vector<std::string> urls;
  for (const std::string& spec : specs) {
    if (!spec.starts_with("@")) {
      FERRY_RETURN_IF_ERROR(ExpandOne(spec, urls));
      continue;
    }
    std::string_view file = std::string_view(spec).substr(1);
    FERRY_ASSIGN_OR_RETURN(std::string text, io::ReadSmallObject(file, uint64_t{256} << 20));
    FERRY_ASSIGN_OR_RETURN(io::Uri list_uri, io::ParseUri(file));
    const bool remote = list_uri.scheme != io::Scheme::kFile;
    const bool cross_origin = io::CrossOriginAllowedByEnvironment();
    size_t line_number = 0;
    for (size_t begin = 0; begin < text.size();) {
      size_t end = std::min(text.find('\n', begin), text.size());
      std::string_view line = std::string_view(text).substr(begin, end - begin);
      begin = end + 1;
      ++line_number;
      while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.remove_suffix(1);
      while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) line.remove_prefix(1);
      if (line.empty() || line.starts_with("#")) continue;
      if (line.starts_with("@")) {
        return InvalidArgument(std::string(file) + ":" + std::to_string(line_number) +
                               ": a shard list cannot name another list ('" + std::string(line) +
                               "')");
      }
      // A local list's lines are specs as on the command line (relative to the working folder);
      // a remote list's name objects beside it, and nothing elsewhere (io::ResolveReference).
      Result<std::string> resolved = remote ? io::ResolveReference(file, line, cross_origin)
                                            : Result<std::string>(std::string(line));
      Status expanded = resolved.ok() ? ExpandOne(*resolved, urls) : resolved.status();
      if (!expanded.ok()) {
        return Status(expanded.code(), std::string(file) + ":" + std::to_string(line_number) + ": " +
                                           expanded.message());
      }
    }
  }
  return urls;
}

Result<std::vector<ShardInfo>> ReadIndex(std::string_view uri) {
  FERRY_ASSIGN_OR_RETURN(std::string text, io::ReadSmallObject(uri, uint64_t{1} << 30));
  FERRY_ASSIGN_OR_RETURN(std::vector<ShardInfo> shards, ParseIndex(text, uri));
  const bool cross_origin = io::CrossOriginAllowedByEnvironment();
  for (ShardInfo& shard : shards) {
    FERRY_ASSIGN_OR_RETURN(shard.url, io::ResolveReference(uri, shard.url, cross_origin));
  }
  return shards;
}

Result<std::vector<ShardInfo>> ParseIndex(std::string_view json, std::string_view origin) {
  auto bad = [&](std::string_view what) {
    return Corruption(std::string(origin) + ": not a ferry shard index (" + std::string(what) + ")");
  };
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(simdjson::padded_string(json)).get(root) != simdjson::SUCCESS) {
    return bad("invalid JSON");
  }
  std::string_view format;
  if (root["format"].get_string().get(format) != simdjson::SUCCESS ||
      format != "ferry-shard-index-v1") {
    return bad("\"format\" is not \"ferry-shard-index-v1\"");
  }
  simdjson::dom::array shards;
  if (root["shards"].get_array().get(shards) != simdjson::SUCCESS)
    return bad("no \"shards\" array");
  std::vector<ShardInfo> out;
  uint64_t total_samples = 0, total_bytes = 0;
  for (simdjson::dom::element shard : shards) {
    std::string_view url;
    ShardInfo info;
    if (shard["url"].get_string().get(url) != simdjson::SUCCESS ||
        shard["bytes"].get_uint64().get(info.bytes) != simdjson::SUCCESS ||
        shard["samples"].get_uint64().get(info.samples) != simdjson::SUCCESS) {
      return bad("shard " + std::to_string(out.size()) + " lacks url, bytes or samples");
    }
    // Plans address a sample as (shard, index < 2^40); a tar shard of a trillion samples is not
    // a real one.
    if (info.samples >= kMaxSamplesPerShard) {
      return bad("shard " + std::to_string(out.size()) + " claims " + std::to_string(info.samples) +
                 " samples, more than the 2^40 a shard may hold");
    }
    if (__builtin_add_overflow(total_samples, info.samples, &total_samples) ||
        __builtin_add_overflow(total_bytes, info.bytes, &total_bytes)) {
      return bad("the totals overflow 64 bits");
    }
    std::string_view version;
    if (simdjson::dom::element v; shard["version"].get(v) == simdjson::SUCCESS) {
      if (v.get_string().get(version) != simdjson::SUCCESS) {
        return bad("shard " + std::to_string(out.size()) + ": \"version\" is not a string");
      }
    }
    std::string_view sha256;
    if (simdjson::dom::element h; shard["sha256"].get(h) == simdjson::SUCCESS) {
      if (h.get_string().get(sha256) != simdjson::SUCCESS || !IsSha256Hex(sha256)) {
        return bad("shard " + std::to_string(out.size()) +
                   ": \"sha256\" is not 64 lowercase hex digits");
      }
    }
    info.url = std::string(url);
    info.version = std::string(version);
    info.sha256 = std::string(sha256);
    out.push_back(std::move(info));
  }
  // The totals are redundant; an index whose totals disagree with its shards was edited or cut.
  for (auto [field, sum] : {std::pair<const char*, uint64_t>{"total_samples", total_samples},
                            {"total_bytes", total_bytes}}) {
    uint64_t stated = 0;
    if (root[field].get_uint64().get(stated) == simdjson::SUCCESS && stated != sum) {
      return bad(std::string("\"") + field + "\" is " + std::to_string(stated) +
                 " but the shards add up to " + std::to_string(sum));
    }
  }
  return out;
}

std::string IndexJson(const std::vector<ShardInfo>& shards) {
  uint64_t total_samples = 0, total_bytes = 0;
  for (const ShardInfo& s : shards) {
    total_samples += s.samples;
    total_bytes += s.bytes;
  }
  std::string out =
      "{\"format\": \"ferry-shard-index-v1\", \"total_samples\": " + std::to_string(total_samples) +
      ", \"total_bytes\": " + std::to_string(total_bytes) + ", \"shards\": [";
  for (size_t i = 0; i < shards.size(); ++i) {
    out += i == 0 ? "\n  {\"url\": " : ",\n  {\"url\": ";
    AppendJsonString(out, shards[i].url);
    out += ", \"bytes\": " + std::to_string(shards[i].bytes);
    if (!shards[i].version.empty()) {
      out += ", \"version\": ";
      AppendJsonString(out, shards[i].version);
    }
    if (!shards[i].sha256.empty()) {
      out += ", \"sha256\": ";
      AppendJsonString(out, shards[i].sha256);
    }
    out += ", \"samples\": " + std::to_string(shards[i].samples) + "}";
  }
  out += shards.empty() ? "]}\n" : "\n]}\n";
  return out;
}

Status WriteIndex(std::string_view uri, const std::vector<ShardInfo>& shards) {
  const std::string json = IndexJson(shards);
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<io::Sink> sink, io::CreateSink(uri));
  FERRY_RETURN_IF_ERROR(sink->Write(std::as_bytes(std::span(json))));
  return sink->Commit();
}

namespace {

Status CheckUnchanged(std::string_view url, std::string_view counted_as, uint64_t counted_bytes,
                      std::string_view counted_version, uint64_t bytes, std::string_view version,
                      std::string_view remedy) {
  // Versions of different kinds ("mtime ..." against "ETag ...": an index of local files whose
  // entries were pointed at a server since) cannot be compared; sizes always can.
  auto kind = [](std::string_view v) { return v.substr(0, v.find(' ')); };
  const bool versions_differ = !counted_version.empty() && !version.empty() &&
                               kind(counted_version) == kind(version) && counted_version != version;
  if (counted_bytes == bytes && !versions_differ) return Status::Ok();
  auto describe = [](uint64_t n, std::string_view v) {
    return std::to_string(n) + " bytes" + (v.empty() ? "" : ", " + std::string(v));
  };
  return SourceChanged(std::string(url) + ": the shard changed since it was " +
                       std::string(counted_as) + " (then " +
                       describe(counted_bytes, counted_version) + "; now " +
                       describe(bytes, version) + "); " + std::string(remedy));
}

}  // namespace

Status CheckShardUnchanged(const ShardInfo& counted, const SampleReader& reader) {
  return CheckUnchanged(counted.url, "counted", counted.bytes, counted.version, reader.shard_bytes(),
                        reader.shard_version(), "index it again (ferry index) or restore it");
}

Status CheckSourceUnchanged(std::string_view url, uint64_t counted_bytes,
                            std::string_view counted_version, const io::Source& source,
                            std::string_view remedy) {
  return CheckUnchanged(url, "planned", counted_bytes, counted_version, source.size(), source.version(),
                        remedy);
}

}  // namespace ferry::datasets
