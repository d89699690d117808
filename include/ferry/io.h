// ferry io: turn a URI into bytes. Start here.
//
//   auto source = ferry::io::OpenSource("http://127.0.0.1:8080/shard-0001.tar");
//   if (!source.ok()) return source.status();
//   std::vector<std::byte> head(4096);
//   FERRY_RETURN_IF_ERROR((*source)->ReadAt(0, head));
//
// A URI is a plain path, `file:///abs/path`, `http://...`, `https://...` or `s3://bucket/key`.
// Every Source has a fixed `size()` and thread-safe positional reads; `ReadParallel` splits one
// large read over several concurrent requests (connections for HTTP, threads for files); `Stream`
// reads a range sequentially with read-ahead. `ExpandBraces` turns `shard-{0000..0099}.tar` into a
// URI list.
//
// Every error names the URI, the byte offset where relevant, and the cause.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"

namespace ferry::io {

// ---------------------------------------------------------------------------------------------
// URIs

enum class Scheme { kFile, kHttp, kHttps, kS3 };

struct Uri {
  Scheme scheme = Scheme::kFile;
  // kFile: the local path (percent-decoded for file:// URIs). kHttp/kHttps: the URL as given.
  // kS3: "bucket/key" as written after s3:// (keys are not percent-decoded).
  std::string location;
};

// Parses a plain path, `file://` (empty or "localhost" host, absolute path, %XX decoded),
// `http://` or `https://` (a host is required), or `s3://bucket/key` (see io/s3.h for how the
// endpoint, region and credentials are found). Other schemes are kUnsupported; empty strings,
// NUL bytes and control characters are kInvalidArgument.
Result<Uri> ParseUri(std::string_view text);

// Where a name found inside an object (an index entry, a line of a shard list) points, given the
// URI the object was read from. What a remote object names must stay where the object is: a
// relative reference ("model-00001.safetensors", "../shards/a.tar", "/root/x") resolves against
// `base` on `base`'s scheme and host (for S3: bucket), and an absolute URI or path on another
// scheme or host is kInvalidArgument naming both, unless `allow_cross_origin`. Otherwise a
// remote index could make ferry read local files (file:///etc/...) or another server. A local
// `base` is as trusted as the command line: a relative reference joins the folder of `base`,
// anything else is returned as it is.
Result<std::string> ResolveReference(std::string_view base, std::string_view reference,
                                     bool allow_cross_origin = false);
// Whether FERRY_ALLOW_CROSS_ORIGIN=1 is set: the explicit opt-in for indexes and shard lists
// whose entries live on another host or scheme than the index itself.
bool CrossOriginAllowedByEnvironment();

// What to tell an object's kind by (its extension): a URL without its query and fragment
// ("http://h/a.tar?sig=x" -> "http://h/a.tar"), so a presigned URL is still a .tar; a local path
// as it is ('?' and '#' are legal in file names).
std::string_view WithoutQuery(std::string_view uri);

// Expands brace groups the way shell and WebDataset shard lists do:
//   "a-{0000..0002}.tar" -> a-0000.tar a-0001.tar a-0002.tar   (zero padding kept)
//   "{a,b}/x{1..3..2}"   -> a/x1 a/x3 b/x1 b/x3               (optional step; ranges may descend)
// Groups nest. A group with neither ',' nor '..' is an error, as are unbalanced braces,
// non-numeric ranges and results with more than `max_results` strings.
Result<std::vector<std::string>> ExpandBraces(std::string_view pattern,
                                              size_t max_results = 1'000'000);

// Secrets in URIs. Every printer of a URI, or of a message that may hold one (errors, logs,
// progress lines, reprs), passes it through these two; nothing else decides what a secret is.
//
// RedactUri hides the password of a userinfo ("user:***@", or "***@" for a bare token) and the
// value of every query parameter that carries a credential: presigned-URL signatures and
// credentials (X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token, X-Goog-*, Signature,
// sig), tokens, keys, secrets and passwords, matched without regard to case:
//   "https://u:pw@h/x?X-Amz-Signature=ab&part=1" -> "https://u:***@h/x?X-Amz-Signature=***&part=1"
// Anything that is not a "scheme://" URI is returned unchanged.
std::string RedactUri(std::string_view uri);
// `text` with every "scheme://..." URI in it (up to whitespace, a quote or angle bracket)
// passed through RedactUri.
std::string RedactUris(std::string_view text);

// ---------------------------------------------------------------------------------------------
// Sources

// The value of environment variable `name` (seconds) as milliseconds, or `fallback_ms` where it
// is unset or malformed (CheckHttpEnvironment reports the latter).
std::chrono::milliseconds DefaultHttpTimeout(const char* name, int64_t fallback_ms);
// kInvalidArgument naming the variable when a FERRY_HTTP_* timeout is set but is not a positive
// number of seconds.
Status CheckHttpEnvironment();

// Timeouts default to the environment's FERRY_HTTP_CONNECT_TIMEOUT, FERRY_HTTP_STALL_TIMEOUT and
// FERRY_HTTP_TIMEOUT (seconds, fractions allowed) where set, else to the values below. OpenSource
// refuses a malformed value naming the variable.
//
// Every wait honours Ctrl-C within kInterruptPollInterval where the caller opened an
// InterruptScope (the Python binding does for every blocking call): kCancelled.
struct HttpOptions {
  // Establishing TCP (and TLS) to the server.
  std::chrono::milliseconds connect_timeout = DefaultHttpTimeout("FERRY_HTTP_CONNECT_TIMEOUT", 10'000);
  // A transfer that moves no byte for this long is treated as broken and retried.
  std::chrono::milliseconds stall_timeout = DefaultHttpTimeout("FERRY_HTTP_STALL_TIMEOUT", 20'000);
  // How long one read may go without receiving a byte, across all its attempts and back-offs,
  // before it fails with kTimeout. A read that keeps making progress is never cut short.
  std::chrono::milliseconds timeout = DefaultHttpTimeout("FERRY_HTTP_TIMEOUT", 60'000);
  // Attempts in a row that make no progress before giving up. An attempt that received bytes
  // resets the count, so a flaky link still finishes a long read. A server that refuses
  // connections while a source is being opened gets 2 retries at most: it is likely not there.
  int max_retries = 8;
  // Back-off before retry k (k = 1, 2, ...): min(max, base * 2^(k-1)), scaled by a random factor
  // in [0.5, 1]. A Retry-After header (seconds) is honoured up to `retry_max_delay`.
  std::chrono::milliseconds retry_base_delay{200};
  std::chrono::milliseconds retry_max_delay{10'000};
  bool verify_tls = true;
};

struct SourceOptions {
  HttpOptions http;
};

// A read-only byte range store with a fixed size.
//
// Thread safety: `ReadAt` may be called from many threads at once.
class Source {
 public:
  virtual ~Source() = default;

  // The URI this source was opened from, as given; used in every message.
  virtual const std::string& uri() const = 0;

  // Size in bytes, fixed when the source was opened. A source that changes size or identity
  // later makes reads fail with kSourceChanged rather than return mixed bytes.
  virtual uint64_t size() const = 0;

  // Fills `dst` with the bytes at [offset, offset + dst.size()). The whole range must lie
  // inside [0, size()] (kOutOfRange otherwise); a short read is never returned as success.
  virtual Status ReadAt(uint64_t offset, std::span<std::byte> dst) = 0;

  // Default number of concurrent requests `ReadParallel` uses for this source when the caller
  // does not say: one per core (up to 8) for files, whose page-cache copy is bound per core;
  // 4 connections for HTTP, where latency, not bandwidth, bounds one connection.
  virtual int default_parallelism() const { return 1; }

  // Whether reads at any offset, in any order, are cheap. False for an HTTP server that ignores
  // Range requests: reads then continue one whole-object transfer, and a read before where it
  // stands (or a retry) starts the transfer again from byte 0. Correct either way; modes that
  // read out of order (lazy tensors, slices) refuse such a source rather than be quadratic.
  virtual bool random_access() const { return true; }

  // Which version of the object this is, as its store tells it, fixed at open: a file's
  // modification time ("mtime 1733100000.123456789"), an HTTP or S3 "ETag \"...\"", else
  // "Last-Modified ...", else "". With size(), what an index records to notice a rewrite.
  virtual std::string version() const { return ""; }

  // A hint: the caller will read [offset, offset + length) front to back, in consecutive ReadAt
  // calls from one thread (a Stream read on one connection does). An HTTP or S3 source then
  // serves those reads from one ranged GET instead of a request each, which saves a round trip
  // per read and lets the reads be small enough to stay in cache. Reads elsewhere, or out of
  // order, are still correct (they are requested on their own). Default: nothing.
  virtual void ExpectSequential(uint64_t offset, uint64_t length) {
    (void)offset;
    (void)length;
  }
};

// Opens the source a URI names. Files are opened (and checked to be regular files) now; HTTP
// sources issue one small ranged request to learn the size and pin the ETag/Last-Modified
// validators for later reads. A server that ignores Range but sends a Content-Length (python -m
// http.server, simple CDNs) gives a source that is read sequentially (random_access() false).
Result<std::unique_ptr<Source>> OpenSource(std::string_view uri, const SourceOptions& options = {});

// Reads a whole object that is small by nature (an index, a tokenizer file) into memory;
// kCorruption naming the URI when it is larger than `max_bytes`.
Result<std::string> ReadSmallObject(std::string_view uri, uint64_t max_bytes,
                                    const SourceOptions& options = {});

struct ParallelReadOptions {
  int parallelism = 0;          // concurrent requests; 0 = source->default_parallelism()
  size_t part_size = 8u << 20;  // bytes per request
};

// Like source.ReadAt(offset, dst), but splits the range into `part_size` parts read by up to
// `parallelism` threads. The first failure cancels the parts not yet started and is returned.
// A source without random access is read as one sequential request.
Status ReadParallel(Source& source, uint64_t offset, std::span<std::byte> dst,
                    const ParallelReadOptions& options = {});

// Expands a shard pattern to URIs: local globs (`/data/shard-*.tar`), `s3://bucket/prefix/`
// (every object under the prefix) and `s3://bucket/dir/*.tar` (listed through ListObjectsV2);
// anything without a wildcard is returned as it is. Sorted; kNotFound when nothing matches.
Result<std::vector<std::string>> ExpandUriPattern(std::string_view pattern,
                                                  const SourceOptions& options = {});

// ---------------------------------------------------------------------------------------------
// Writing

// Where written bytes go. Nothing is visible under the destination until Commit() succeeds; a
// sink destroyed without it leaves no trace (a local temporary file is removed, an S3
// multipart upload aborted).
class Sink {
 public:
  virtual ~Sink() = default;
  virtual Status Write(std::span<const std::byte> bytes) = 0;
  virtual Status Commit() = 0;
};

// A local path (written to a temporary file, fsynced, renamed into place) or s3://bucket/key
// (uploaded, in parts when large).
Result<std::unique_ptr<Sink>> CreateSink(std::string_view uri, const SourceOptions& options = {});

// ---------------------------------------------------------------------------------------------
// Zero-copy access to local files

// A private mapping of a whole local file. The spans stay valid while the object lives. Writes
// through private_bytes() go to copy-on-write pages of this process and never reach the file.
// The pages are the file's own: a file truncated while mapped makes a touch past its new end
// raise SIGBUS (see "IMPORTANT: lifetime" in ferry/tensors.h); CurrentSize() lets a caller check
// before handing out a view.
class MappedFile {
 public:
  static Result<std::unique_ptr<MappedFile>> Open(std::string_view path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  std::span<std::byte> private_bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }
  // The mapped file's size now (fstat of the descriptor kept open for this, so a file renamed
  // over the path does not count); bytes().size() is its size when mapped.
  Result<uint64_t> CurrentSize() const;

 private:
  MappedFile(std::string path, int fd, std::byte* data, size_t size)
      : path_(std::move(path)), fd_(fd), data_(data), size_(size) {}
  std::string path_;
  int fd_;
  std::byte* data_;
  size_t size_;
};

// ---------------------------------------------------------------------------------------------
// Sequential reading

struct StreamOptions {
  size_t chunk_size = 16u << 20;  // bytes handed out per Next()
  int read_ahead = 2;  // chunks read ahead of the consumer (memory: (read_ahead + 1) x chunk)
  ParallelReadOptions parallel;  // how each chunk is read
};

// Reads [offset, offset + length) of a source front to back, in chunks, with the next chunks
// read by a background thread while the caller consumes the current one.
//
// IMPORTANT: Buffer Lifetime. The span returned by Next() is valid until the next call to
// Next() or the destruction of the stream; copy it out if you need it longer.
class Stream {
 public:
  // REQUIRES: offset + length <= source->size(); `source` outlives the stream.
  static Result<std::unique_ptr<Stream>> Open(Source* source, uint64_t offset, uint64_t length,
                                              const StreamOptions& options = {});
  virtual ~Stream() = default;

  // The next chunk; an empty span at the end. After an error every call returns it again.
  virtual Result<std::span<const std::byte>> Next() = 0;
};

}  // namespace ferry::io
