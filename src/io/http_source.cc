// Retry model. A read of [offset, offset + n) is a loop of ranged GETs. Each attempt receives
// straight into the caller's buffer at the position where the previous attempt stopped, so a
// connection that breaks after k bytes costs k bytes of progress, never a byte lost or written
// twice. Transient failures (connection reset or refused, stalls, 408/429/5xx) are retried with
// exponential back-off; an attempt that made progress resets the failure count. Everything a
// server says is checked against what was asked: a 206 must start at the requested byte, carry
// a Content-Length equal to its Content-Range, and report the pinned total size and validators.
//
// A read gives up after max_retries attempts in a row without progress, or once no byte has
// arrived for options.timeout across attempts and back-offs (RetryBudget), or at Ctrl-C.
//
// Servers without Range support (python -m http.server, simple CDNs and proxies) answer the
// probe with 200 and the whole object. Such a source is read as one sequential transfer (the
// cursor): a read at or after the cursor's position skips forward to it, a read before it, or
// a retry after a broken transfer, starts the whole-object GET again and skips the bytes
// already delivered, after checking the size and validators are the pinned ones.

#include "io/http_source.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "base/interrupt.h"
#include "ferry/version.h"
#include "io/http_connection.h"

namespace ferry::io {
namespace {

using http::Connection;
using http::ContentRange;
using http::ParseContentRange;
using http::ResponseHead;
using http::Target;

constexpr int kMaxRedirects = 8;

// What the pinned object looks like; every response is checked against it.
struct Validators {
  uint64_t size = 0;
  std::string etag;
  std::string last_modified;
};

std::string Describe(const Validators& v) {
  return "size " + std::to_string(v.size) + (v.etag.empty() ? "" : ", ETag " + v.etag) +
         (v.last_modified.empty() ? "" : ", Last-Modified " + v.last_modified);
}

bool IsRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// Whether a response's object differs from the pinned one. A validator the response leaves out
// cannot be compared; the size always can.
bool Changed(const Validators& pinned, const Validators& now) {
  return now.size != pinned.size ||
         (!pinned.etag.empty() && !now.etag.empty() && now.etag != pinned.etag) ||
         (!pinned.last_modified.empty() && !now.last_modified.empty() &&
          now.last_modified != pinned.last_modified);
}

// How long one read keeps retrying: max_retries attempts in a row without progress, and no
// longer than options.timeout without a byte, back-offs included.
class RetryBudget {
 public:
  explicit RetryBudget(const HttpOptions& options)
      : options_(options), last_progress_(std::chrono::steady_clock::now()) {}

  void Progressed() {
    failures_ = 0;
    last_progress_ = std::chrono::steady_clock::now();
  }

  // After a transient `failure`: waits out the back-off and returns OK to retry, or returns
  // the error to give up with.
  Status BeforeRetry(const Status& failure, const std::string& retry_after, int max_retries) {
    ++failures_;
    if (failures_ > max_retries) {
      return Status(failure.code(), "giving up after " + std::to_string(failures_) +
                                        " attempts without progress; last: " + failure.message());
    }
    std::chrono::milliseconds delay = http::RetryDelay(options_, failures_, retry_after);
    auto silent = std::chrono::steady_clock::now() - last_progress_ + delay;
    if (silent > options_.timeout) {
      char seconds[32];
      std::snprintf(seconds, sizeof seconds, "%g", static_cast<double>(options_.timeout.count()) / 1000);
      return Timeout(std::string("no byte received for ") + seconds + " s across " +
                     std::to_string(failures_) +
                     " attempts (FERRY_HTTP_TIMEOUT); last: " + failure.message());
    }
    return InterruptibleSleep(delay);
  }

 private:
  const HttpOptions& options_;
  int failures_ = 0;
  std::chrono::steady_clock::time_point last_progress_;
};

class HttpSource final : public Source {
 public:
  HttpSource(std::string url, Target target, const HttpOptions& options, HttpHooks hooks)
      : url_(hooks.display_uri.empty() ? std::move(url) : hooks.display_uri),
        target_(std::move(target)),
        options_(options),
        hooks_(std::move(hooks)) {}

  const std::string& uri() const override { return url_; }
  uint64_t size() const override { return pinned_.size; }
  int default_parallelism() const override { return ranges_ ? 4 : 1; }
  bool random_access() const override { return ranges_; }
  std::string version() const override {
    return !pinned_.etag.empty()            ? "ETag " + pinned_.etag
           : !pinned_.last_modified.empty() ? "Last-Modified " + pinned_.last_modified
                                            : "";
  }

  // Learns the size and validators with a one-byte ranged GET, following redirects.
  Status Probe() {
    std::byte scratch[1];
    ResponseHead head;
    FERRY_RETURN_IF_ERROR(Fetch(0, scratch, /*probe=*/true, &head));
    ContentRange cr;
    bool parsed = ParseContentRange(head.content_range, cr) && cr.has_total;
    // Byte 0 not satisfiable means an empty object. Servers should say `bytes */0`; some (S3's
    // radosgw) send no Content-Range at all. Only a size that contradicts the 416 is an error.
    if (head.status == 416 && parsed && cr.total != 0) {
      return IoError(url_ + ": HTTP 416 to 'Range: bytes=0-0' but Content-Range reports " +
                     std::to_string(cr.total) + " bytes");
    }
    if (head.status == 206 && !parsed) {
      return IoError(url_ + ": the server did not report the object size (Content-Range '" +
                     head.content_range + "'; expected bytes 0-0/SIZE)");
    }
    uint64_t size = head.status == 206 ? cr.total : head.status == 200 ? head.content_length : 0;
    pinned_ = Validators{size, head.etag, head.last_modified};
    return Status::Ok();
  }

  Status ReadAt(uint64_t offset, std::span<std::byte> dst) override {
    if (offset > pinned_.size || dst.size() > pinned_.size - offset) {
      return OutOfRange(url_ + ": read of " + std::to_string(dst.size()) + " bytes at offset " +
                        std::to_string(offset) + " is past the end (size " +
                        std::to_string(pinned_.size) + ")");
    }
    if (dst.empty()) return Status::Ok();
    if (!ranges_ || InStreamedRange(offset, dst.size())) return ReadSequentially(offset, dst);
    return Fetch(offset, dst, /*probe=*/false, nullptr);
  }

  // Reads of [offset, offset + length) in order come from one ranged GET (the cursor) instead
  // of one request each: no round trip per read, and reads small enough to stay in cache.
  void ExpectSequential(uint64_t offset, uint64_t length) override {
    if (!ranges_ || length == 0) return;  // without Range support every read is sequential
    std::lock_guard<std::mutex> lock(cursor_mu_);
    cursor_.reset();
    streamed_begin_ = offset;
    streamed_end_ = offset + length;
  }

 private:
  std::string Where(uint64_t offset) const {
    return url_ + ": at offset " + std::to_string(offset);
  }

  // Runs ranged GETs until `dst` is full, resuming after each transient failure at the first
  // byte not yet received. `last`, if given, receives the final response head.
  Status Fetch(uint64_t offset, std::span<std::byte> dst, bool probe, ResponseHead* last) {
    std::unique_ptr<Connection> conn = Acquire();
    size_t done = 0;
    int redirects = 0;
    bool retried_stale = false;
    RetryBudget budget(options_);
    Status result;
    while (true) {
      ResponseHead head;
      size_t received = 0;
      bool reused = conn->open() && conn->reused();
      Status s = conn->Connect(target_);
      // A server that refuses connections while it is being opened is most likely not there:
      // a few quick retries, not the whole budget (which is for servers that answered once).
      const bool refused = !s.ok();
      if (s.ok()) {
        s = Exchange(*conn, offset + done, dst.subspan(done), probe, head, received);
      } else {
        s = s.WithContext(Where(offset + done));
      }
      done += received;
      if (s.ok() && probe && IsRedirect(head.status)) {
        if (++redirects > kMaxRedirects) {
          result = IoError(url_ + ": more than " + std::to_string(kMaxRedirects) + " redirects");
          break;
        }
        Result<Target> next = http::ResolveRedirect(target_, head.location);
        if (!next.ok()) {
          result = next.status();
          break;
        }
        target_ = std::move(*next);  // only Probe runs here: no reader shares target_ yet
        continue;
      }
      if (s.ok() && probe && head.status == 200 && head.content_length > 0) {
        // No Range support: this response is the whole object, and becomes the cursor.
        ranges_ = false;
        cursor_ = std::move(conn);
        cursor_position_ = 0;
        if (last != nullptr) *last = std::move(head);
        return Status::Ok();
      }
      if (s.ok()) {
        if (done == dst.size() || probe) {
          if (last != nullptr) *last = std::move(head);
          break;
        }
        budget.Progressed();  // a shorter 206 than asked for is legal: ask for the rest at once
        continue;
      }
      if (!http::IsTransient(s)) {
        result = std::move(s);
        break;
      }
      // A keep-alive connection the server closed while it sat idle fails before any answer;
      // that says nothing about the server, so retry at once on a new connection (once). A
      // stall (kTimeout) is not that.
      if (reused && s.code() == StatusCode::kUnavailable && head.status == 0 && received == 0 &&
          !retried_stale) {
        retried_stale = true;
        continue;
      }
      if (received > 0) budget.Progressed();
      constexpr int kRetriesWhenRefusedAtOpen = 2;
      Status retry = budget.BeforeRetry(
          s, head.retry_after, probe && refused ? kRetriesWhenRefusedAtOpen : options_.max_retries);
      if (!retry.ok()) {
        result = std::move(retry);
        break;
      }
    }
    Release(std::move(conn));
    return result;
  }

  bool InStreamedRange(uint64_t offset, size_t size) {
    std::lock_guard<std::mutex> lock(cursor_mu_);
    return offset >= streamed_begin_ && offset + size <= streamed_end_;
  }

  // Where the cursor's transfer ends: the object's end, or (Range support) the streamed range's.
  uint64_t CursorEnd() const { return ranges_ ? streamed_end_ : pinned_.size; }

  // A read from the cursor: continue its transfer up to `offset`, or start it again when it is
  // past `offset` (with Range support: elsewhere than `offset`) or broke.
  Status ReadSequentially(uint64_t offset, std::span<std::byte> dst) {
    std::lock_guard<std::mutex> lock(cursor_mu_);
    RetryBudget budget(options_);
    uint64_t furthest = cursor_ != nullptr ? cursor_position_ : 0;  // progress: bytes past it
    size_t done = 0;
    while (true) {
      Status s;
      const uint64_t want = offset + done;
      if (cursor_ == nullptr || cursor_position_ > want || (ranges_ && cursor_position_ != want)) {
        s = RestartTransfer(want);
      }
      if (s.ok()) s = SkipTo(want);
      if (s.ok()) {
        size_t received = 0;
        s = cursor_->ReadBody(dst.subspan(done), &received);
        cursor_position_ += received;
        done += received;
        if (!s.ok()) s = s.WithContext(Where(cursor_position_));
      }
      if (s.ok()) {
        if (cursor_position_ == CursorEnd()) {  // the response is complete
          if (ranges_ && cursor_keep_alive_) Release(std::move(cursor_));
          cursor_.reset();
        }
        return Status::Ok();
      }
      const uint64_t position = cursor_ != nullptr ? cursor_position_ : want;
      cursor_.reset();
      if (!http::IsTransient(s)) return s;
      if (position > furthest) {
        furthest = position;
        budget.Progressed();
      }
      FERRY_RETURN_IF_ERROR(budget.BeforeRetry(s, "", options_.max_retries));
    }
  }

  // A new transfer for the cursor, checked against the pinned size and validators: a ranged GET
  // from `from` to the streamed range's end, or, without Range support, the whole object (the
  // cursor then at 0, skipped forward by the caller).
  Status RestartTransfer(uint64_t from) {
    std::unique_ptr<Connection> conn = ranges_ ? Acquire() : std::make_unique<Connection>(options_);
    ResponseHead head;
    Status s = conn->Connect(target_);
    const uint64_t last = CursorEnd() - 1;
    if (s.ok()) s = conn->SendAll(Request(ranges_ ? std::optional(std::pair(from, last)) : std::nullopt));
    if (s.ok()) {
      Result<ResponseHead> r = conn->ReadHead();
      if (r.ok()) head = std::move(*r);
      s = r.status();
    }
    if (!s.ok()) return s.WithContext(Where(ranges_ ? from : 0));
    if (ranges_) {
      uint64_t length = 0;
      FERRY_RETURN_IF_ERROR(CheckHead(*conn, head, from, last, /*probe=*/false, length));
      cursor_keep_alive_ = head.keep_alive;
      cursor_ = std::move(conn);
      cursor_position_ = from;
      return Status::Ok();
    }
    if (head.status != 200) {
      Status error = http::StatusForHttpError(
          head.status, url_ + ": HTTP " + std::to_string(head.status) +
                           " when starting the whole-object transfer again");
      return http::IsTransient(error) ? Unavailable(error.message()) : error;
    }
    Validators now{head.has_content_length ? head.content_length : 0, head.etag,
                   head.last_modified};
    if (head.chunked || !head.has_content_length || Changed(pinned_, now)) {
      return SourceChanged(url_ + ": the object changed between transfers (opened with " +
                           Describe(pinned_) + "; now " +
                           (head.has_content_length ? Describe(now) : "no Content-Length") +
                           "; the server ignores Range, so a retry reads it again from byte 0)");
    }
    cursor_ = std::move(conn);
    cursor_position_ = 0;
    return Status::Ok();
  }

  // Reads and drops the cursor's bytes up to `position` (>= cursor_position_).
  Status SkipTo(uint64_t position) {
    std::byte scratch[64 * 1024];
    while (cursor_position_ < position) {
      size_t want =
          static_cast<size_t>(std::min<uint64_t>(sizeof scratch, position - cursor_position_));
      size_t received = 0;
      Status s = cursor_->ReadBody({scratch, want}, &received);
      cursor_position_ += received;
      if (!s.ok()) return s.WithContext(Where(cursor_position_));
    }
    return Status::Ok();
  }

  // A GET of the target, for the inclusive byte `range` or the whole object.
  std::string Request(std::optional<std::pair<uint64_t, uint64_t>> range) const {
    return "GET " + target_.request_target + " HTTP/1.1\r\nHost: " + target_.host_header +
           (range ? "\r\nRange: bytes=" + std::to_string(range->first) + "-" +
                        std::to_string(range->second)
                  : std::string()) +
           "\r\nUser-Agent: ferry/" + kVersion + "\r\nAccept-Encoding: identity\r\n" +
           (hooks_.request_headers ? hooks_.request_headers(target_) : std::string()) + "\r\n";
  }

  // One ranged GET for [offset, offset + dst.size()). OK means the exchange completed: `dst`
  // (or the prefix a shorter 206 covered) is filled, or, when probing, the head is in `head`.
  // Otherwise a transient status (retry) or a final one. The connection is closed after
  // anything but a complete 206 on a keep-alive connection.
  Status Exchange(Connection& conn, uint64_t offset, std::span<std::byte> dst, bool probe,
                  ResponseHead& head, size_t& received) {
    Status s = ExchangeOnOpenConnection(conn, offset, dst, probe, head, received);
    const bool body_follows = s.ok() && probe && head.status == 200 && head.content_length > 0;
    if (!body_follows && (!s.ok() || head.status != 206 || !head.keep_alive)) conn.Close();
    return s;
  }

  Status ExchangeOnOpenConnection(Connection& conn, uint64_t offset, std::span<std::byte> dst,
                                  bool probe, ResponseHead& head, size_t& received) {
    const uint64_t last_byte = offset + dst.size() - 1;
    Status s = conn.Connect(target_);
    if (s.ok()) s = conn.SendAll(Request(std::pair(offset, last_byte)));
    if (s.ok()) {
      Result<ResponseHead> r = conn.ReadHead();
      if (r.ok()) head = std::move(*r);
      s = r.status();
    }
    if (!s.ok()) return s.WithContext(Where(offset));
    uint64_t length = 0;
    s = CheckHead(conn, head, offset, last_byte, probe, length);
    if (!s.ok() || length == 0) return s;
    s = conn.ReadBody(dst.first(length), &received);
    return s.WithContext(Where(offset + received));
  }

  // What a response head to a ranged GET of [offset, last_byte] must say: OK with `length` the
  // body's bytes for a 206 that starts at `offset` with the pinned size and validators; OK with
  // `length` 0 for what a probe accepts (a 200 with a size, 416, a redirect); else why not.
  Status CheckHead(Connection& conn, const ResponseHead& head, uint64_t offset,
                   uint64_t last_byte, bool probe, uint64_t& length) {
    length = 0;
    const std::string detail = ErrorDetail(conn, head);
    const std::string http_status = "HTTP " + std::to_string(head.status) + detail;
    switch (head.status) {
      case 206:
        break;
      case 200:
        if (probe && head.has_content_length && !head.chunked) return Status::Ok();
        if (probe) {
          return Unsupported(url_ +
                             ": the server ignored the Range header and did not say the object's "
                             "size (no Content-Length); ferry needs one or the other");
        }
        return SourceChanged(Where(offset) +
                             ": the server ignored the Range header (answered 200 with the whole "
                             "object) after honouring it when the source was opened");
      case 416:
        if (probe) return Status::Ok();  // an empty object; Probe checks "bytes */0"
        return SourceChanged(Where(offset) + ": " + http_status +
                             " (range not satisfiable: the object shrank?)");
      default: {
        if (IsRedirect(head.status) && probe && !head.location.empty()) return Status::Ok();
        if (IsRedirect(head.status)) {
          return IoError(Where(offset) + ": unexpected redirect (" + http_status + " to '" +
                         head.location + "') after the source was opened");
        }
        const char* meaning = head.status == 401 || head.status == 403   ? " (access denied)"
                              : head.status == 404 || head.status == 410 ? " (no such object)"
                                                                         : "";
        Status error = http::StatusForHttpError(
            head.status, url_ + ": " + http_status + (detail.empty() ? meaning : ""));
        // A retryable failure says where the read stood, as the retry resumes there.
        if (http::IsTransient(error)) return Unavailable(Where(offset) + ": " + http_status);
        if (error.code() == StatusCode::kIoError) {
          return IoError(Where(offset) + ": unexpected " + http_status);
        }
        return error;
      }
    }

    ContentRange cr;
    if (!ParseContentRange(head.content_range, cr) || !cr.has_range) {
      return IoError(Where(offset) + ": 206 response has no valid Content-Range (got '" +
                     head.content_range + "')");
    }
    if (cr.first != offset || cr.last > last_byte) {
      return IoError(Where(offset) + ": asked for bytes " + std::to_string(offset) + "-" +
                     std::to_string(last_byte) + " but the server sent " +
                     std::to_string(cr.first) + "-" + std::to_string(cr.last));
    }
    if (!probe) {
      Validators now{cr.has_total ? cr.total : pinned_.size, head.etag, head.last_modified};
      if (Changed(pinned_, now)) {
        return SourceChanged(Where(offset) + ": the object changed while being read (opened with " +
                             Describe(pinned_) + "; now " + Describe(now) + ")");
      }
    }
    const uint64_t body = cr.last - cr.first + 1;
    if (head.chunked || !head.has_content_length || head.content_length != body) {
      return IoError(Where(offset) + ": 206 response body is not " + std::to_string(body) +
                     " bytes with a Content-Length (got " +
                     (head.chunked ? std::string("chunked encoding")
                      : head.has_content_length
                          ? "Content-Length " + std::to_string(head.content_length)
                          : std::string("no Content-Length")) +
                     ")");
    }
    length = body;
    return Status::Ok();
  }

  // " (<what the body says>)" for an error response whose protocol explains itself (S3's XML),
  // read only when short and framed by Content-Length; "" otherwise.
  std::string ErrorDetail(Connection& conn, const ResponseHead& head) {
    constexpr uint64_t kMaxErrorBody = 16 * 1024;
    if (head.status < 300 || !hooks_.describe_error || head.chunked || !head.has_content_length ||
        head.content_length == 0 || head.content_length > kMaxErrorBody) {
      return "";
    }
    std::string body(head.content_length, '\0');
    size_t received = 0;
    if (!conn.ReadBody(std::as_writable_bytes(std::span(body)), &received).ok()) return "";
    std::string detail = hooks_.describe_error(body);
    return detail.empty() ? "" : " (" + detail + ")";
  }

  std::unique_ptr<Connection> Acquire() {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.empty()) return std::make_unique<Connection>(options_);
    std::unique_ptr<Connection> conn = std::move(idle_.back());
    idle_.pop_back();
    return conn;
  }

  void Release(std::unique_ptr<Connection> conn) {
    if (conn == nullptr) return;
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(std::move(conn));
  }

  const std::string url_;  // as the user gave it; used in every message
  Target target_;          // after redirects; set by Probe(), read-only afterwards
  const HttpOptions options_;
  const HttpHooks hooks_;
  Validators pinned_;   // set by Probe(), read-only afterwards
  bool ranges_ = true;  // whether the server honours Range; set by Probe()

  // The sequential transfer in progress and where it stands: without Range support the
  // whole-object GET; with it, a ranged GET over [streamed_begin_, streamed_end_)
  // (ExpectSequential).
  std::mutex cursor_mu_;
  std::unique_ptr<Connection> cursor_;
  uint64_t cursor_position_ = 0;
  uint64_t streamed_begin_ = 0, streamed_end_ = 0;
  bool cursor_keep_alive_ = false;  // the server keeps the cursor's connection open after it

  std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_;  // open keep-alive connections not in use
};

}  // namespace

Result<std::unique_ptr<Source>> OpenHttpSource(std::string url, const HttpOptions& options,
                                               HttpHooks hooks) {
  FERRY_ASSIGN_OR_RETURN(Target target, http::ParseTarget(url));
  auto source =
      std::make_unique<HttpSource>(std::move(url), std::move(target), options, std::move(hooks));
  FERRY_RETURN_IF_ERROR(source->Probe());
  return std::unique_ptr<Source>(std::move(source));
}

}  // namespace ferry::io
