// HTTP/1.1 over a connection libcurl opens: curl does what it is best at (name resolution, TCP,
// TLS, proxies, timeouts on connect) and ferry speaks the protocol itself, so a response body is
// received straight into the caller's buffer.
//
// Why not curl_easy_perform: its write callback hands out curl's own receive buffer, so every
// byte is copied once more in user space. On loopback that copy was 0.14 s of CPU per GiB, 40%
// of ferry's client-side cost, and made `ferry cat` 0.77x of `curl -o /dev/null`
// (bench/RESULTS.md). ferry only ever sends ranged GETs and accepts only Content-Length bodies
// for them, so the protocol part is small; it is checked strictly and fuzzed
// (fuzz/http_response_fuzzer.cc).
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "ferry/io.h"

typedef void CURL;

namespace ferry::io::http {

// Where requests for a URL go.
struct Target {
  std::string url;             // absolute URL, as requested
  std::string origin;          // "scheme://host[:port]": what a Connection is bound to
  std::string host_header;     // "host[:port]"
  std::string request_target;  // "/path?query"
};

// Splits an http(s) URL. URLs with user:password are refused (ferry would not send them).
Result<Target> ParseTarget(std::string_view url);

// The target a redirect's Location (absolute or relative) points to, resolved against `base`.
Result<Target> ResolveRedirect(const Target& base, std::string_view location);

struct ResponseHead {
  int status = 0;
  bool keep_alive = true;  // HTTP/1.1 default; "Connection: close" or HTTP/1.0 turn it off
  bool chunked = false;
  bool has_content_length = false;
  uint64_t content_length = 0;
  std::string content_range, etag, last_modified, retry_after, location;
};

// Parses an HTTP/1.x status line and header fields. `head` is everything before the empty line
// that ends the header block (so it ends with "\r\n" after the last field). Malformed input is
// kIoError naming what was wrong.
Result<ResponseHead> ParseResponseHead(std::string_view head);

// A Content-Range value: "bytes FIRST-LAST/TOTAL", "bytes FIRST-LAST/*" or "bytes */TOTAL".
struct ContentRange {
  bool has_range = false;
  uint64_t first = 0, last = 0;  // inclusive
  bool has_total = false;
  uint64_t total = 0;
};
// False for anything else, or first > last.
bool ParseContentRange(std::string_view value, ContentRange& out);

// Whether a failed exchange may be retried (kUnavailable, kTimeout).
bool IsTransient(const Status& s);

// The Status for an HTTP error answer, with `message` as its text: kPermissionDenied (401,
// 403), kNotFound (404, 410), kUnavailable, which is retried (408, 429, 500, 502, 503, 504),
// kIoError for anything else.
Status StatusForHttpError(int status, std::string message);

// Back-off before retry `failures` (1, 2, ...): min(max, base * 2^(failures-1)) scaled by a
// random factor in [0.5, 1]; a Retry-After header (seconds) wins, up to the maximum.
std::chrono::milliseconds RetryDelay(const HttpOptions& options, int failures,
                                     const std::string& retry_after);

// Incremental decoding of a chunked body (RFC 9112 section 7.1). Feed it the raw bytes as they
// arrive; it appends the payload to `out` and says when the last chunk (and any trailer) has
// been read. Chunk extensions are ignored; sizes beyond `max_body` bytes in total are an error.
class ChunkedDecoder {
 public:
  explicit ChunkedDecoder(size_t max_body) : max_body_(max_body) {}
  // Consumes what it can of `raw` (`*consumed` bytes). kIoError on malformed framing.
  Status Feed(std::string_view raw, size_t* consumed, std::string* out);
  bool done() const { return state_ == State::kDone; }

 private:
  enum class State { kSize, kData, kDataEnd, kTrailer, kDone };
  State state_ = State::kSize;
  uint64_t remaining_ = 0;  // payload bytes left in the current chunk
  size_t max_body_;
};

// One keep-alive connection to one origin. Not thread-safe: a Source hands each connection to
// one reader at a time.
//
// Errors are transient (kUnavailable, kTimeout: the caller may reconnect and retry) or not
// (anything else); messages do not name the URL, the caller adds it.
class Connection {
 public:
  explicit Connection(const HttpOptions& options) : options_(options) {}
  ~Connection() { Close(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connects to target.origin unless this connection is already open to it.
  Status Connect(const Target& target);
  Status SendAll(std::string_view bytes);
  // Reads the next final (non-1xx) response head. Body bytes that arrived with it are kept for
  // ReadBody.
  Result<ResponseHead> ReadHead();
  // Fills `dst` with the next dst.size() body bytes. `*received` counts the bytes written even
  // when an error stops it early, so a caller can resume after them.
  Status ReadBody(std::span<std::byte> dst, size_t* received);
  // The whole body of a response whose head was just read, framed by Content-Length, chunked
  // encoding or the end of the connection; kIoError if it exceeds `max_bytes`. For the small
  // XML answers of S3 requests, not for data.
  Result<std::string> ReadWholeBody(const ResponseHead& head, size_t max_bytes);
  void Close();

  bool open() const { return handle_ != nullptr; }
  // Whether a previous response was read on this connection: a keep-alive connection that the
  // server closed while idle fails its next request before any byte, which is not a failure
  // of the server.
  bool reused() const { return responses_ > 0; }

 private:
  Result<size_t> Recv(void* dst, size_t size);  // 0 = the peer closed the connection
  Status Wait(short events);
  // SO_RCVLOWAT: poll() reports the socket readable once this many bytes are waiting.
  void SetLowWatermark(size_t bytes);

  const HttpOptions options_;
  CURL* handle_ = nullptr;
  int socket_ = -1;
  int low_watermark_ = 1;  // the socket's SO_RCVLOWAT (the kernel default is 1)
  std::string origin_;
  int responses_ = 0;
  std::string pending_;  // bytes received past the last head, not yet consumed
};

}  // namespace ferry::io::http
