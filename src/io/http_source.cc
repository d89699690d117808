// Retry model. A read of [offset, offset + n) is a loop of ranged GETs. Each attempt receives
// straight into the caller's buffer at the position where the previous attempt stopped, so a
// connection that breaks after k bytes costs k bytes of progress, never a byte lost or written
// twice. Transient failures (connection reset or refused, stalls, 408/429/5xx) are retried with
// exponential back-off; an attempt that made progress resets the failure count. Everything a
// server says is checked against what was asked: a 206 must start at the requested byte, carry
// a Content-Length equal to its Content-Range, and report the pinned total size and validators;
// a 200 to a Range request is refused (the server would be sending the whole object from byte 0).

#include "io/http_source.h"

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

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

class HttpSource final : public Source {
 public:
  HttpSource(std::string url, Target target, const HttpOptions& options, HttpHooks hooks)
      : url_(hooks.display_uri.empty() ? std::move(url) : hooks.display_uri),
        target_(std::move(target)),
        options_(options),
        hooks_(std::move(hooks)) {}

  const std::string& uri() const override { return url_; }
  uint64_t size() const override { return pinned_.size; }
  int default_parallelism() const override { return 4; }

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
    pinned_ = Validators{head.status == 206 ? cr.total : 0, head.etag, head.last_modified};
    return Status::Ok();
  }

  Status ReadAt(uint64_t offset, std::span<std::byte> dst) override {
    if (offset > pinned_.size || dst.size() > pinned_.size - offset) {
      return OutOfRange(url_ + ": read of " + std::to_string(dst.size()) + " bytes at offset " +
                        std::to_string(offset) + " is past the end (size " +
                        std::to_string(pinned_.size) + ")");
    }
    if (dst.empty()) return Status::Ok();
    return Fetch(offset, dst, /*probe=*/false, nullptr);
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
    int failures = 0, redirects = 0;
    bool retried_stale = false;
    Status result;
    while (true) {
      ResponseHead head;
      size_t received = 0;
      bool reused = conn->open() && conn->reused();
      Status s = Exchange(*conn, offset + done, dst.subspan(done), probe, head, received);
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
      if (s.ok()) {
        if (done == dst.size() || probe) {
          if (last != nullptr) *last = std::move(head);
          break;
        }
        failures = 0;  // a shorter 206 than asked for is legal: ask for the rest at once
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
      if (received > 0) failures = 0;
      if (++failures > options_.max_retries) {
        result = Status(s.code(), "giving up after " + std::to_string(failures) +
                                      " attempts without progress; last: " + s.message());
        break;
      }
      std::this_thread::sleep_for(http::RetryDelay(options_, failures, head.retry_after));
    }
    Release(std::move(conn));
    return result;
  }

  // One ranged GET for [offset, offset + dst.size()). OK means the exchange completed: `dst`
  // (or the prefix a shorter 206 covered) is filled, or, when probing, the head is in `head`.
  // Otherwise a transient status (retry) or a final one. The connection is closed after
  // anything but a complete 206 on a keep-alive connection.
  Status Exchange(Connection& conn, uint64_t offset, std::span<std::byte> dst, bool probe,
                  ResponseHead& head, size_t& received) {
    Status s = ExchangeOnOpenConnection(conn, offset, dst, probe, head, received);
    if (!s.ok() || head.status != 206 || !head.keep_alive) conn.Close();
    return s;
  }

  Status ExchangeOnOpenConnection(Connection& conn, uint64_t offset, std::span<std::byte> dst,
                                  bool probe, ResponseHead& head, size_t& received) {
    const uint64_t last_byte = offset + dst.size() - 1;
    std::string request =
        "GET " + target_.request_target + " HTTP/1.1\r\nHost: " + target_.host_header +
        "\r\nRange: bytes=" + std::to_string(offset) + "-" + std::to_string(last_byte) +
        "\r\nUser-Agent: ferry/" + kVersion + "\r\nAccept-Encoding: identity\r\n" +
        (hooks_.request_headers ? hooks_.request_headers(target_) : std::string()) + "\r\n";
    Status s = conn.Connect(target_);
    if (s.ok()) s = conn.SendAll(request);
    if (s.ok()) {
      Result<ResponseHead> r = conn.ReadHead();
      if (r.ok()) head = std::move(*r);
      s = r.status();
    }
    if (!s.ok()) return s.WithContext(Where(offset));

    const std::string detail = ErrorDetail(conn, head);
    const std::string http_status = "HTTP " + std::to_string(head.status) + detail;
    switch (head.status) {
      case 206:
        break;
      case 200:
        if (probe && head.has_content_length && head.content_length == 0) return Status::Ok();
        return Unsupported(url_ +
                           ": the server ignored the Range header (answered 200 with the "
                           "whole object); ferry needs servers that support range requests");
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
      bool changed = now.size != pinned_.size ||
                     (!pinned_.etag.empty() && !now.etag.empty() && now.etag != pinned_.etag) ||
                     (!pinned_.last_modified.empty() && !now.last_modified.empty() &&
                      now.last_modified != pinned_.last_modified);
      if (changed) {
        return SourceChanged(Where(offset) + ": the object changed while being read (opened with " +
                             Describe(pinned_) + "; now " + Describe(now) + ")");
      }
    }
    const uint64_t length = cr.last - cr.first + 1;
    if (head.chunked || !head.has_content_length || head.content_length != length) {
      return IoError(Where(offset) + ": 206 response body is not " + std::to_string(length) +
                     " bytes with a Content-Length (got " +
                     (head.chunked ? std::string("chunked encoding")
                      : head.has_content_length
                          ? "Content-Length " + std::to_string(head.content_length)
                          : std::string("no Content-Length")) +
                     ")");
    }
    s = conn.ReadBody(dst.first(length), &received);
    return s.WithContext(Where(offset + received));
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
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(std::move(conn));
  }

  const std::string url_;  // as the user gave it; used in every message
  Target target_;          // after redirects; set by Probe(), read-only afterwards
  const HttpOptions options_;
  const HttpHooks hooks_;
  Validators pinned_;  // set by Probe(), read-only afterwards

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
