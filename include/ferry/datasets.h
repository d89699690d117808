// ferry datasets: WebDataset-layout tar shards read as streams from any io source.
//
//   FERRY_ASSIGN_OR_RETURN(auto samples,
//   ferry::datasets::SampleReader::Open("s3://b/shard-0001.tar")); while (true) {
//     FERRY_ASSIGN_OR_RETURN(std::optional<Sample> sample, samples->Next());
//     if (!sample) break;
//     ...  // sample->key, sample->fields["jpg"], ...
//   }
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ferry/io.h"
#include "ferry/status.h"

namespace ferry::datasets {

namespace internal {
// Where member bytes live: buffers of 64 KiB to 4 MiB come from a small process-wide pool of
// recently freed ones (at most 32 MiB kept), smaller and larger ones from operator new. A
// dataset streams millions of same-sized members through buffers allocated on a reader thread
// and freed on the consumer's; through malloc alone, memory freed that way is returned to the
// kernel and faulted in again by the next member (measured on 100 KiB members: the pool took a
// plain shard reader from 37.8k to 63-72k samples/s).
std::byte* AllocateMemberBytes(size_t size);
void FreeMemberBytes(std::byte* bytes, size_t size) noexcept;
}  // namespace internal

// The allocator of member bytes: the pool above, and resize() leaves new bytes uninitialised
// (they are read into at once; zero-filling first would be a wasted pass over the dataset).
struct MemberAllocator {
  using value_type = std::byte;
  template <typename U>
  struct rebind {
    static_assert(std::is_same_v<U, std::byte>, "MemberAllocator allocates bytes only");
    using other = MemberAllocator;
  };
  std::byte* allocate(size_t size) { return internal::AllocateMemberBytes(size); }
  void deallocate(std::byte* bytes, size_t size) noexcept {
    internal::FreeMemberBytes(bytes, size);
  }
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  bool operator==(const MemberAllocator&) const = default;
};

// A member's bytes.
using Bytes = std::vector<std::byte, MemberAllocator>;

struct TarMember {
  std::string name;  // the full path: ustar prefix, GNU long name or pax path applied
  Bytes data;        // the member's bytes
  uint64_t header_offset = 0;   // where its header starts in the (decompressed) archive
};

struct TarOptions {
  // A member larger than this is refused before anything is allocated (a hostile header can
  // claim exabytes).
  uint64_t max_member_size = uint64_t{4} << 30;
  io::StreamOptions stream;  // how the shard is read (chunk size, read-ahead)
};

// Reads a tar archive front to back from a source, one regular file at a time: ustar, pax `x`
// (per member) and `g` (global) records, GNU `L`/`K` long names; directories, links and other
// entries are skipped. A gzip-compressed archive (`.tgz`, detected by its magic bytes) is
// inflated on the fly. Errors name the URI, the byte offset and what was wrong.
class TarReader {
 public:
  static Result<std::unique_ptr<TarReader>> Open(std::string_view uri,
                                                 const TarOptions& options = {},
                                                 const io::SourceOptions& source_options = {});
  virtual ~TarReader() = default;
  // The next regular file, or nullopt after the last.
  virtual Result<std::optional<TarMember>> Next() = 0;
  // After Next() failed while reading a member's data: that member's name (its header was
  // intact). Empty when the failure came before a member was named (a damaged header).
  virtual const std::string& damaged_member() const = 0;
  // The archive's size as stored (compressed, for a gzip shard), and its io::Source::version().
  virtual uint64_t stored_size() const = 0;
  virtual const std::string& stored_version() const = 0;
};

// One WebDataset sample: consecutive members sharing a key.
struct Sample {
  std::string key;  // "__key__": the member path up to the first dot of its last component
  std::string url;  // "__url__": the shard it came from
  // field ("jpg", "seg.png", lower-cased) -> bytes, in archive order
  std::vector<std::pair<std::string, Bytes>> fields;
  const Bytes* Find(std::string_view field) const;
};

// kNotFound for a sample that lacks `field`: "URL: sample 'KEY' has no field 'F' (fields: ...)".
Status MissingField(const Sample& sample, std::string_view field);

// Splits a member path into WebDataset key and field: "train/abc.seg.PNG" -> ("train/abc",
// "seg.png"). nullopt for members that are not sample fields: a last path component without a
// dot, or metadata whose whole name starts and ends with "__" (webdataset's rule).
std::optional<std::pair<std::string, std::string>> SplitKeyField(std::string_view path);

// Groups a shard's members into samples, exactly as DESIGN.md and webdataset do: consecutive
// members with one key form a sample; a key that comes back later starts a new one; a field
// repeated within a sample is kCorruption naming the shard and the key. When the shard is damaged
// inside a member whose key differs from the sample being gathered, that sample is complete: it is
// returned first and the error on the next call (webdataset keeps it too).
class SampleReader {
 public:
  static Result<std::unique_ptr<SampleReader>> Open(std::string_view uri,
                                                    const TarOptions& options = {},
                                                    const io::SourceOptions& source_options = {});
  Result<std::optional<Sample>> Next();
  uint64_t shard_bytes() const { return tar_->stored_size(); }
  const std::string& shard_version() const { return tar_->stored_version(); }

 private:
  SampleReader(std::string uri, std::unique_ptr<TarReader> tar)
      : uri_(std::move(uri)), tar_(std::move(tar)) {}
  std::string uri_;
  std::unique_ptr<TarReader> tar_;
  std::optional<Sample> pending_;  // the sample being gathered
  Status deferred_error_;          // the damage found after a complete pending_ was returned
  bool done_ = false;
};

// ---------------------------------------------------------------------------------------------
// Shard lists

// The shard URLs a list of specs names, in order: each spec is brace-expanded
// (`train-{0000..0099}.tar`, `{a,b}.tar`), then a local glob or `s3://` prefix/wildcard is listed
// (io::ExpandUriPattern); `@FILE` (a path or URI) names a text file with one spec per line, blank
// lines and `#` comments skipped (no nested `@`). Lines of a local list are read like command-line
// specs; lines of a remote one (http, s3) must name objects on its own scheme and host, relative
// names resolving against it (io::ResolveReference; FERRY_ALLOW_CROSS_ORIGIN=1 lifts that).
// Errors name the spec, or the file and line.
Result<std::vector<std::string>> ExpandShards(const std::vector<std::string>& specs);

// ---------------------------------------------------------------------------------------------
// Shard index

struct ShardInfo {
  std::string url;
  uint64_t bytes = 0;    // the shard's size as stored (compressed, for .tgz)
  std::string version;   // io::Source::version() when counted ("" in indexes before it existed)
  uint64_t samples = 0;  // WebDataset samples in it (documents, for a token shard)
  // Lowercase hex SHA-256 of the shard's bytes, where its writer recorded one ("" otherwise):
  // what ferry.ray checks a shard it finds in place against before skipping it on a re-run.
  std::string sha256;
  Status error;          // with IndexOptions::keep_going: why the shard could not be read to its end
};

// kSourceChanged naming the shard and both values when what `reader` opened is not what was
// counted: another size, or another version where both are known and of one kind (mtime, ETag). Counts from a rewritten shard
// would split and resume it wrongly without a word.
Status CheckShardUnchanged(const ShardInfo& counted, const SampleReader& reader);
// The same check for any object a plan was made from (as `counted_bytes` / `counted_version`)
// and opened now as `source`; `remedy` ends the message ("make the dataset again, ...").
Status CheckSourceUnchanged(std::string_view url, uint64_t counted_bytes,
                            std::string_view counted_version, const io::Source& source,
                            std::string_view remedy);

struct IndexOptions {
  int threads = 8;  // shards streamed at once
  // A shard that cannot be read to its end is recorded instead of failing the call: its error,
  // and as `samples` those read before it (0 for one that does not open). For datasets that
  // skip the rest of a bad shard and keep what precedes the damage, as webdataset's handlers do.
  bool keep_going = false;
  // When set, called (from any thread, one call at a time) after each shard with its bytes.
  std::function<void(uint64_t bytes)> on_shard_done;
};

// Streams every shard once and counts its samples. Results are in the order of `urls`. A
// failure (without keep_going) is returned naming its shard; of several, the first in `urls`.
Result<std::vector<ShardInfo>> IndexShards(const std::vector<std::string>& urls,
                                           const IndexOptions& options = {});

// Reads an index written by IndexJson (`ferry index`) from a path or URI; kCorruption naming the
// file and what was wrong for anything else. Shard URLs resolve against the index's location
// (io::ResolveReference): relative ones join its folder, and those of a remote index must stay
// on its scheme and host.
Result<std::vector<ShardInfo>> ReadIndex(std::string_view uri);
// The same from the JSON text; `origin` names it in errors. Besides the format, it checks that
// no shard claims kMaxSamplesPerShard samples or more and that stated totals match the shards.
Result<std::vector<ShardInfo>> ParseIndex(std::string_view json, std::string_view origin);
inline constexpr uint64_t kMaxSamplesPerShard = uint64_t{1} << 40;

// The index as JSON: {"format": "ferry-shard-index-v1", "total_samples": N, "total_bytes": B,
// "shards": [{"url": ..., "bytes": ..., "samples": ...}, ...]} (each shard's "version" and
// "sha256" too, where known).
std::string IndexJson(const std::vector<ShardInfo>& shards);
// IndexJson written to `uri` (a local path or s3://) atomically: nothing appears on error.
Status WriteIndex(std::string_view uri, const std::vector<ShardInfo>& shards);

}  // namespace ferry::datasets
