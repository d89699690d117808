// Retry model. A read of [offset, offset + n) is a loop of ranged GETs. Each attempt writes
// straight into the caller's buffer at the position where the previous attempt stopped, so a
// connection that breaks after k bytes costs k bytes of progress, never a byte lost or written
// twice. Transient failures (connection reset or refused, stalls, 408/429/5xx) are retried with
// exponential back-off; an attempt that made progress resets the failure count. Everything a
// server says is checked against what was asked: a 206 must start at the requested byte and
// report the pinned total size and validators, a 200 to a Range request is refused (the server
// would be sending the whole object from byte 0), and a body longer than requested is refused.

#include "io/http_source.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "ferry/version.h"

namespace ferry::io {
namespace {

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

bool ParseUint(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + static_cast<uint64_t>(c - '0');
  }
  return true;
}

// "bytes FIRST-LAST/TOTAL" or "bytes */TOTAL" (on 416). Unknown parts come back as false.
struct ContentRange {
  bool has_range = false;
  uint64_t first = 0, last = 0;
  bool has_total = false;
  uint64_t total = 0;
};
bool ParseContentRange(std::string_view value, ContentRange& out) {
  if (!StartsWithNoCase(value, "bytes ")) return false;
  value.remove_prefix(6);
  size_t slash = value.find('/');
  if (slash == std::string_view::npos) return false;
  std::string_view range = value.substr(0, slash), total = value.substr(slash + 1);
  out.has_total = total != "*";
  if (out.has_total && !ParseUint(total, out.total)) return false;
  if (range == "*") return true;
  size_t dash = range.find('-');
  if (dash == std::string_view::npos) return false;
  out.has_range =
      ParseUint(range.substr(0, dash), out.first) && ParseUint(range.substr(dash + 1), out.last);
  return out.has_range && out.first <= out.last;
}

// What the pinned object looks like; every response is checked against it.
struct Validators {
  uint64_t size = 0;
  std::string etag;
  std::string last_modified;
};

// One ranged GET: the request, what came back, and what the callbacks concluded.
struct Attempt {
  Attempt() = default;
  Attempt(const std::string* url, uint64_t offset, std::span<std::byte> dst,
          const Validators* pinned)
      : url(url), offset(offset), dst(dst), pinned(pinned) {}

  // Request.
  const std::string* url = nullptr;
  uint64_t offset = 0;
  std::span<std::byte> dst;
  const Validators* pinned = nullptr;  // nullptr while probing (nothing is pinned yet)

  // Response headers of the last response (redirects and 1xx reset them).
  long status = 0;
  std::string content_range, etag, last_modified, retry_after;
  bool body_checked = false;

  size_t received = 0;  // bytes written to dst
  Status violation;     // a protocol violation found by a callback; permanent
};

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* a = static_cast<Attempt*>(user);
  std::string_view line(data, size * count);
  if (StartsWithNoCase(line,
                       "http/")) {  // a new response starts: forget the previous one's headers
    size_t sp = line.find(' ');
    a->status =
        sp == std::string_view::npos ? 0 : std::atol(std::string(line.substr(sp + 1, 3)).c_str());
    a->content_range.clear();
    a->etag.clear();
    a->last_modified.clear();
    a->retry_after.clear();
    return size * count;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * count;
  std::string_view name = line.substr(0, colon), value = Trim(line.substr(colon + 1));
  auto is = [&](std::string_view n) {
    return name.size() == n.size() && StartsWithNoCase(name, n);
  };
  if (is("content-range"))
    a->content_range = value;
  else if (is("etag"))
    a->etag = value;
  else if (is("last-modified"))
    a->last_modified = value;
  else if (is("retry-after"))
    a->retry_after = value;
  return size * count;
}

std::string Where(const Attempt& a) {
  return *a.url + ": at offset " + std::to_string(a.offset + a.received);
}

std::string Describe(const Validators& v) {
  return "size " + std::to_string(v.size) + (v.etag.empty() ? "" : ", ETag " + v.etag) +
         (v.last_modified.empty() ? "" : ", Last-Modified " + v.last_modified);
}

// Checks a 206's headers before its first body byte is accepted.
Status CheckPartialResponse(const Attempt& a) {
  ContentRange cr;
  if (!ParseContentRange(a.content_range, cr) || !cr.has_range) {
    return IoError(Where(a) + ": 206 response has no valid Content-Range (got '" + a.content_range +
                   "')");
  }
  uint64_t want_first = a.offset + a.received;
  uint64_t want_last = a.offset + a.dst.size() - 1;
  if (cr.first != want_first || cr.last > want_last) {
    return IoError(Where(a) + ": asked for bytes " + std::to_string(want_first) + "-" +
                   std::to_string(want_last) + " but the server sent " + std::to_string(cr.first) +
                   "-" + std::to_string(cr.last));
  }
  if (a.pinned == nullptr) return Status::Ok();
  Validators now{cr.has_total ? cr.total : a.pinned->size, a.etag, a.last_modified};
  bool changed = now.size != a.pinned->size ||
                 (!a.pinned->etag.empty() && !now.etag.empty() && now.etag != a.pinned->etag) ||
                 (!a.pinned->last_modified.empty() && !now.last_modified.empty() &&
                  now.last_modified != a.pinned->last_modified);
  if (changed) {
    return SourceChanged(Where(a) + ": the object changed while being read (opened with " +
                         Describe(*a.pinned) + "; now " + Describe(now) + ")");
  }
  return Status::Ok();
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* a = static_cast<Attempt*>(user);
  size_t n = size * count;
  if (a->status == 200) {
    a->violation =
        Unsupported(*a->url +
                    ": the server ignored the Range header (answered 200 with "
                    "the whole object); ferry needs servers that support range requests");
    return 0;  // abort: do not download an object we did not ask for
  }
  if (a->status != 206) return n;  // the body of a redirect or an error page: drop it
  if (!a->body_checked) {
    a->violation = CheckPartialResponse(*a);
    if (!a->violation.ok()) return 0;
    a->body_checked = true;
  }
  size_t room = a->dst.size() - a->received;
  if (n > room) {
    a->violation = IoError(Where(*a) + ": the server sent more bytes than the requested range");
    return 0;
  }
  std::memcpy(a->dst.data() + a->received, data, n);
  a->received += n;
  return n;
}

bool IsTransient(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

bool IsTransientStatus(long status) {
  return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
         status == 504;
}

// How an attempt ended.
struct Outcome {
  enum Kind { kDone, kRetry, kFail } kind;
  Status status;  // kFail: the error; kRetry: the cause, for the final message if retries run out
};

Outcome Classify(CURLcode code, const Attempt& a, const char* curl_error) {
  if (!a.violation.ok()) return {Outcome::kFail, a.violation};
  if (code != CURLE_OK) {
    std::string cause =
        *curl_error ? std::string(curl_error) : std::string(curl_easy_strerror(code));
    Status status = code == CURLE_OPERATION_TIMEDOUT ? Timeout(Where(a) + ": " + cause)
                                                     : IoError(Where(a) + ": " + cause);
    return {IsTransient(code) ? Outcome::kRetry : Outcome::kFail, status};
  }
  std::string http = "HTTP " + std::to_string(a.status);
  switch (a.status) {
    case 206:
      if (a.received == a.dst.size()) return {Outcome::kDone, {}};
      // A server may answer with less than the requested range; the loop asks for the rest.
      if (a.received > 0 && a.body_checked) return {Outcome::kRetry, {}};
      return {Outcome::kRetry, IoError(Where(a) + ": 206 response with an empty body")};
    case 200:
      if (a.pinned == nullptr) return {Outcome::kDone, {}};  // probe of an empty object
      return {Outcome::kFail, Unsupported(*a.url + ": the server ignored the Range header")};
    case 416:
      if (a.pinned == nullptr) return {Outcome::kDone, {}};  // probe of an empty object: bytes */0
      return {Outcome::kFail, SourceChanged(Where(a) + ": " + http +
                                            " (range not satisfiable: the object shrank?)")};
    case 401:
    case 403:
      return {Outcome::kFail, PermissionDenied(*a.url + ": " + http + " (access denied)")};
    case 404:
    case 410:
      return {Outcome::kFail, NotFound(*a.url + ": " + http + " (no such object)")};
    default:
      if (IsTransientStatus(a.status))
        return {Outcome::kRetry, Unavailable(Where(a) + ": " + http)};
      return {Outcome::kFail, IoError(Where(a) + ": unexpected " + http)};
  }
}

std::chrono::milliseconds BackOff(const HttpOptions& o, int failures,
                                  const std::string& retry_after) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  uint64_t retry_after_s = 0;
  if (ParseUint(retry_after, retry_after_s)) {
    return std::min(o.retry_max_delay,
                    std::chrono::milliseconds(std::min<uint64_t>(retry_after_s, 1'000'000) * 1000));
  }
  auto delay = o.retry_base_delay * (int64_t{1} << std::min(failures - 1, 20));
  delay = std::min(delay, o.retry_max_delay);
  double jitter = 0.5 + 0.5 * std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  return std::chrono::milliseconds(
      static_cast<int64_t>(static_cast<double>(delay.count()) * jitter));
}

class HttpSource final : public Source {
 public:
  HttpSource(std::string url, const HttpOptions& options)
      : url_(std::move(url)), options_(options) {}

  ~HttpSource() override {
    for (CURL* handle : idle_) curl_easy_cleanup(handle);
  }

  const std::string& uri() const override { return url_; }
  uint64_t size() const override { return pinned_.size; }
  int default_parallelism() const override { return 4; }

  // Learns the size and validators with a one-byte ranged GET.
  Status Probe() {
    std::byte scratch[1];
    Attempt last;
    FERRY_RETURN_IF_ERROR(Fetch(0, scratch, /*probe=*/true, &last));
    if (last.status == 200 || last.status == 416) {  // empty object
      ContentRange cr;
      if (last.status == 416 &&
          (!ParseContentRange(last.content_range, cr) || !cr.has_total || cr.total != 0)) {
        return IoError(url_ +
                       ": HTTP 416 to 'Range: bytes=0-0' without 'Content-Range: bytes */0'");
      }
      pinned_ = Validators{0, last.etag, last.last_modified};
      return Status::Ok();
    }
    ContentRange cr;
    if (!ParseContentRange(last.content_range, cr) || !cr.has_total) {
      return IoError(url_ + ": the server did not report the object size (Content-Range '" +
                     last.content_range + "'; expected bytes 0-0/SIZE)");
    }
    pinned_ = Validators{cr.total, last.etag, last.last_modified};
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
  // Runs ranged GETs until `dst` is full, resuming after each transient failure at the first
  // byte not yet received. `last`, if given, receives the final attempt's response headers.
  Status Fetch(uint64_t offset, std::span<std::byte> dst, bool probe, Attempt* last) {
    CURL* handle = Acquire();
    if (handle == nullptr) return Internal(url_ + ": curl_easy_init failed");
    size_t done = 0;
    int failures = 0;
    Status status;
    while (true) {
      Attempt a{&url_, offset + done, dst.subspan(done), probe ? nullptr : &pinned_};
      Outcome outcome = Perform(handle, a);
      done += a.received;
      if (outcome.kind == Outcome::kFail) {
        status = outcome.status;
        break;
      }
      if (outcome.kind == Outcome::kDone || done == dst.size()) {
        if (last != nullptr) *last = std::move(a);
        break;
      }
      if (a.received > 0) failures = 0;
      if (++failures > options_.max_retries) {
        Status cause = outcome.status.ok() ? IoError(Where(a) + ": no progress") : outcome.status;
        status = Status(
            cause.code() == StatusCode::kTimeout ? StatusCode::kTimeout : StatusCode::kUnavailable,
            "giving up after " + std::to_string(failures) +
                " attempts without progress; last: " + cause.message());
        break;
      }
      // A short but well-formed answer is not a failure: ask for the rest at once.
      if (!outcome.status.ok())
        std::this_thread::sleep_for(BackOff(options_, failures, a.retry_after));
    }
    Release(handle);
    return status;
  }

  Outcome Perform(CURL* handle, Attempt& a) {
    std::string range =
        std::to_string(a.offset) + "-" + std::to_string(a.offset + a.dst.size() - 1);
    char error[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(handle, CURLOPT_RANGE, range.c_str());
    curl_easy_setopt(handle, CURLOPT_HEADERDATA, &a);
    curl_easy_setopt(handle, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error);
    CURLcode code = curl_easy_perform(handle);
    curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, nullptr);
    return Classify(code, a, error);
  }

  CURL* Acquire() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        CURL* handle = idle_.back();
        idle_.pop_back();
        return handle;
      }
    }
    CURL* handle = curl_easy_init();
    if (handle == nullptr) return nullptr;
    curl_easy_setopt(handle, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);  // required with threads
    curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(handle, CURLOPT_MAXREDIRS, 8L);
    curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options_.connect_timeout.count()));
    curl_easy_setopt(handle, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(
        handle, CURLOPT_LOW_SPEED_TIME,
        std::max(1L, static_cast<long>((options_.stall_timeout.count() + 999) / 1000)));
    curl_easy_setopt(handle, CURLOPT_SSL_VERIFYPEER, options_.verify_tls ? 1L : 0L);
    curl_easy_setopt(handle, CURLOPT_SSL_VERIFYHOST, options_.verify_tls ? 2L : 0L);
    // Fewer, larger write callbacks. On loopback nginx, 16 KiB to 2 MiB measured within noise
    // of each other (1.8-2.2 GB/s for `ferry cat` of 1 GiB); the copy out of this buffer, not its
    // size, is what costs (see bench/RESULTS.md).
    curl_easy_setopt(handle, CURLOPT_BUFFERSIZE, 512L * 1024);
    curl_easy_setopt(handle, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(handle, CURLOPT_USERAGENT, (std::string("ferry/") + kVersion).c_str());
    curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, OnBody);
    return handle;
  }

  void Release(CURL* handle) {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(handle);
  }

  const std::string url_;
  const HttpOptions options_;
  Validators pinned_;  // set once by Probe(), read-only afterwards

  std::mutex mu_;
  std::vector<CURL*> idle_;  // easy handles not in use; each keeps its connection open
};

}  // namespace

Result<std::unique_ptr<Source>> OpenHttpSource(std::string url, const HttpOptions& options) {
  GlobalInitOnce();
  auto source = std::make_unique<HttpSource>(std::move(url), options);
  FERRY_RETURN_IF_ERROR(source->Probe());
  return std::unique_ptr<Source>(std::move(source));
}

}  // namespace ferry::io
