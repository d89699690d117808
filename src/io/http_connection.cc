#include "io/http_connection.h"

#include <curl/curl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <random>

#include "base/interrupt.h"
#include "base/parse.h"
#include "base/strings.h"
#include "ferry/version.h"

namespace ferry::io::http {
namespace {

constexpr size_t kMaxHeadBytes = 64 * 1024;

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool ContainsNoCase(std::string_view text, std::string_view word) {
  for (size_t i = 0; i + word.size() <= text.size(); ++i) {
    if (EqualsNoCase(text.substr(i, word.size()), word)) return true;
  }
  return false;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Owns a CURLU and the strings curl_url_get returns.
struct UrlHandle {
  UrlHandle() : u(curl_url()) {}
  ~UrlHandle() { curl_url_cleanup(u); }
  UrlHandle(const UrlHandle&) = delete;
  UrlHandle& operator=(const UrlHandle&) = delete;

  // The part, or "" when the URL has none.
  std::string Get(CURLUPart part) const {
    char* value = nullptr;
    if (curl_url_get(u, part, &value, 0) != CURLUE_OK || value == nullptr) return "";
    std::string out(value);
    curl_free(value);
    return out;
  }
  CURLU* u;
};

Result<Target> TargetOf(const UrlHandle& url, std::string_view original) {
  std::string scheme = url.Get(CURLUPART_SCHEME);
  if (scheme != "http" && scheme != "https") {
    return Unsupported(std::string(original) + ": scheme '" + scheme +
                       "' (expected http or https)");
  }
  if (!url.Get(CURLUPART_USER).empty()) {
    return Unsupported(std::string(original) +
                       ": user:password in URLs is not supported (it would travel in clear text "
                       "in logs and errors)");
  }
  Target t;
  t.url = url.Get(CURLUPART_URL);
  std::string host = url.Get(CURLUPART_HOST);
  std::string port = url.Get(CURLUPART_PORT);  // only when the URL names one
  t.host_header = port.empty() ? host : host + ":" + port;
  t.origin = scheme + "://" + t.host_header;
  t.request_target = url.Get(CURLUPART_PATH);
  if (t.request_target.empty()) t.request_target = "/";
  std::string query = url.Get(CURLUPART_QUERY);
  if (!query.empty()) t.request_target += "?" + query;
  return t;
}

}  // namespace

bool ParseContentRange(std::string_view value, ContentRange& out) {
  out = ContentRange();
  if (value.size() < 6 || !EqualsNoCase(value.substr(0, 6), "bytes ")) return false;
  value.remove_prefix(6);
  size_t slash = value.find('/');
  if (slash == std::string_view::npos) return false;
  std::string_view range = value.substr(0, slash), total = value.substr(slash + 1);
  out.has_total = total != "*";
  if (out.has_total && !ParseDecimal(total, out.total)) return false;
  if (range == "*") return out.has_total;
  size_t dash = range.find('-');
  if (dash == std::string_view::npos) return false;
  out.has_range = ParseDecimal(range.substr(0, dash), out.first) &&
                  ParseDecimal(range.substr(dash + 1), out.last) && out.first <= out.last;
  return out.has_range;
}

Result<Target> ParseTarget(std::string_view url) {
  UrlHandle handle;
  if (handle.u == nullptr) return Internal("curl_url failed");
  // PATH_AS_IS: "." and ".." segments are part of an object's name (an S3 key "a/../b" is not
  // "b"), never to be resolved away, which would also change what a signature covers.
  CURLUcode rc = curl_url_set(handle.u, CURLUPART_URL, std::string(url).c_str(), CURLU_PATH_AS_IS);
  if (rc != CURLUE_OK) {
    return InvalidArgument(std::string(url) + ": not a valid URL (" + curl_url_strerror(rc) + ")");
  }
  return TargetOf(handle, url);
}

Result<Target> ResolveRedirect(const Target& base, std::string_view location) {
  UrlHandle handle;
  if (handle.u == nullptr) return Internal("curl_url failed");
  CURLUcode rc = curl_url_set(handle.u, CURLUPART_URL, base.url.c_str(), 0);
  if (rc == CURLUE_OK) rc = curl_url_set(handle.u, CURLUPART_URL, std::string(location).c_str(), 0);
  if (rc != CURLUE_OK) {
    return IoError(base.url + ": redirect to an invalid Location '" + std::string(location) +
                   "' (" + curl_url_strerror(rc) + ")");
  }
  return TargetOf(handle, location);
}

Result<ResponseHead> ParseResponseHead(std::string_view head) {
  size_t eol = head.find("\r\n");
  if (eol == std::string_view::npos) return IoError("response has no status line");
  std::string_view status_line = head.substr(0, eol);
  // "HTTP/1.1 206 Partial Content"
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ' ||
      !std::isdigit(static_cast<unsigned char>(status_line[9])) ||
      !std::isdigit(static_cast<unsigned char>(status_line[10])) ||
      !std::isdigit(static_cast<unsigned char>(status_line[11])) ||
      (status_line.size() > 12 && status_line[12] != ' ')) {
    std::string shown(status_line.substr(0, 80));
    for (char& c : shown) {
      if (!std::isprint(static_cast<unsigned char>(c))) c = '?';
    }
    return IoError("malformed status line '" + shown + "' (expected 'HTTP/1.x NNN reason')");
  }
  ResponseHead r;
  r.status = (status_line[9] - '0') * 100 + (status_line[10] - '0') * 10 + (status_line[11] - '0');
  r.keep_alive = status_line[7] == '1';  // HTTP/1.0 closes unless it says otherwise

  size_t pos = eol + 2;
  while (pos < head.size()) {
    eol = head.find("\r\n", pos);
    if (eol == std::string_view::npos) return IoError("header line without CRLF");
    std::string_view line = head.substr(pos, eol - pos);
    pos = eol + 2;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return IoError("malformed header line (no field name and ':') at byte " +
                     std::to_string(pos - line.size() - 2) + " of the response");
    }
    std::string_view name = line.substr(0, colon), value = Trim(line.substr(colon + 1));
    if (EqualsNoCase(name, "content-length")) {
      uint64_t length = 0;
      if (!ParseDecimal(value, length) || (r.has_content_length && length != r.content_length)) {
        return IoError("invalid Content-Length '" + std::string(value.substr(0, 40)) + "'");
      }
      r.has_content_length = true;
      r.content_length = length;
    } else if (EqualsNoCase(name, "transfer-encoding")) {
      r.chunked = r.chunked || ContainsNoCase(value, "chunked");
    } else if (EqualsNoCase(name, "connection")) {
      if (ContainsNoCase(value, "close")) r.keep_alive = false;
      if (ContainsNoCase(value, "keep-alive")) r.keep_alive = true;
    } else if (EqualsNoCase(name, "content-range")) {
      r.content_range = value;
    } else if (EqualsNoCase(name, "etag")) {
      r.etag = value;
    } else if (EqualsNoCase(name, "last-modified")) {
      r.last_modified = value;
    } else if (EqualsNoCase(name, "retry-after")) {
      r.retry_after = value;
    } else if (EqualsNoCase(name, "location")) {
      r.location = value;
    }
  }
  return r;
}

Status Connection::Connect(const Target& target) {
  if (handle_ != nullptr && origin_ == target.origin) return Status::Ok();
  Close();
  GlobalInitOnce();
  handle_ = curl_easy_init();
  if (handle_ == nullptr) return Internal("curl_easy_init failed");
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(handle_, CURLOPT_URL, target.url.c_str());
  curl_easy_setopt(handle_, CURLOPT_CONNECT_ONLY, 1L);
  curl_easy_setopt(handle_, CURLOPT_NOSIGNAL, 1L);  // required with threads
  curl_easy_setopt(handle_, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(handle_, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);  // ALPN: http/1.1
  curl_easy_setopt(handle_, CURLOPT_HTTPPROXYTUNNEL, 1L);  // through a proxy, tunnel raw bytes
  curl_easy_setopt(handle_, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(handle_, CURLOPT_SSL_VERIFYPEER, options_.verify_tls ? 1L : 0L);
  curl_easy_setopt(handle_, CURLOPT_SSL_VERIFYHOST, options_.verify_tls ? 2L : 0L);
  curl_easy_setopt(handle_, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(handle_, CURLOPT_ERRORBUFFER, error);
  // curl calls this while it resolves and connects; non-zero aborts, so Ctrl-C is not held up
  // for the whole connect timeout.
  curl_easy_setopt(handle_, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(handle_, CURLOPT_XFERINFOFUNCTION,
                   +[](void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t) -> int {
                     return Interrupted() ? 1 : 0;
                   });
  CURLcode code = curl_easy_perform(handle_);
  curl_easy_setopt(handle_, CURLOPT_ERRORBUFFER, nullptr);
  curl_easy_setopt(handle_, CURLOPT_NOPROGRESS, 1L);  // only the connect needed it
  curl_socket_t socket = CURL_SOCKET_BAD;
  if (code == CURLE_OK) code = curl_easy_getinfo(handle_, CURLINFO_ACTIVESOCKET, &socket);
  if (code != CURLE_OK || socket == CURL_SOCKET_BAD) {
    std::string cause = *error ? error : curl_easy_strerror(code);
    Close();
    if (code == CURLE_ABORTED_BY_CALLBACK) return InterruptedStatus();
    bool transient = code == CURLE_COULDNT_CONNECT || code == CURLE_OPERATION_TIMEDOUT ||
                     code == CURLE_SSL_CONNECT_ERROR || code == CURLE_RECV_ERROR ||
                     code == CURLE_SEND_ERROR || code == CURLE_GOT_NOTHING;
    return transient ? Unavailable("cannot connect: " + cause)
                     : IoError("cannot connect: " + cause);
  }
  socket_ = static_cast<int>(socket);
  origin_ = target.origin;
  return Status::Ok();
}

void Connection::Close() {
  if (handle_ != nullptr) curl_easy_cleanup(handle_);
  handle_ = nullptr;
  socket_ = -1;
  low_watermark_ = 1;
  origin_.clear();
  responses_ = 0;
  pending_.clear();
}

Status Connection::Wait(short events) {
  pollfd p{socket_, events, 0};
  const auto stall = std::max(options_.stall_timeout, std::chrono::milliseconds(1));
  auto until = std::chrono::steady_clock::now() + stall;
  // poll() wakes for POLLIN only once SO_RCVLOWAT bytes wait, so a server sending slower than
  // the watermark per stall period would look stalled while it sends: bytes queued below the
  // mark count as progress.
  // Looked at only after a slice without a wake-up, so the usual wait costs no extra syscall.
  auto queued_now = [&] {
    int waiting = 0;
    return (events & POLLIN) && ::ioctl(socket_, FIONREAD, &waiting) == 0 ? waiting : 0;
  };
  int queued = 0;
  while (true) {
    if (Interrupted()) return InterruptedStatus();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      if (queued > 0 && low_watermark_ > 1) {  // hand over what came before the silence
        SetLowWatermark(1);
        return Status::Ok();
      }
      return Timeout("stalled: no byte for " + std::to_string(stall.count()) +
                     " ms (FERRY_HTTP_STALL_TIMEOUT)");
    }
    int r = ::poll(&p, 1, static_cast<int>(std::min(left, kInterruptPollInterval).count()));
    if (r > 0) return Status::Ok();
    if (r < 0 && errno != EINTR) {
      return Unavailable(std::string("poll failed: ") + std::strerror(errno));
    }
    if (int waiting = queued_now(); waiting > queued) {
      queued = waiting;
      until = std::chrono::steady_clock::now() + stall;
    }
  }
}

Status Connection::SendAll(std::string_view bytes) {
  while (!bytes.empty()) {
    size_t sent = 0;
    CURLcode code = curl_easy_send(handle_, bytes.data(), bytes.size(), &sent);
    if (code == CURLE_AGAIN) {
      FERRY_RETURN_IF_ERROR(Wait(POLLOUT));
      continue;
    }
    if (code != CURLE_OK)
      return Unavailable(std::string("send failed: ") + curl_easy_strerror(code));
    bytes.remove_prefix(sent);
  }
  return Status::Ok();
}

Result<size_t> Connection::Recv(void* dst, size_t size) {
  while (true) {
    size_t got = 0;
    CURLcode code = curl_easy_recv(handle_, dst, size, &got);
    if (code == CURLE_OK) return got;
    if (code == CURLE_AGAIN) {
      FERRY_RETURN_IF_ERROR(Wait(POLLIN));
      continue;
    }
    return Unavailable(std::string("receive failed: ") + curl_easy_strerror(code));
  }
}

void Connection::SetLowWatermark(size_t bytes) {
  int lowat = static_cast<int>(bytes);
  if (lowat == low_watermark_) return;
  ::setsockopt(socket_, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat));
  low_watermark_ = lowat;
}

Result<ResponseHead> Connection::ReadHead() {
  // A head's length is unknown: wake up for any byte (the last body may have raised the mark).
  SetLowWatermark(1);
  std::string head = std::move(pending_);
  pending_.clear();
  while (true) {
    size_t end = head.find("\r\n\r\n");
    if (end != std::string::npos) {
      FERRY_ASSIGN_OR_RETURN(ResponseHead r,
                             ParseResponseHead(std::string_view(head).substr(0, end + 2)));
      head.erase(0, end + 4);
      if (r.status >= 100 && r.status < 200) continue;  // interim response: the real one follows
      pending_ = std::move(head);
      ++responses_;
      return r;
    }
    if (head.size() > kMaxHeadBytes) {
      return IoError("response headers exceed " + std::to_string(kMaxHeadBytes) + " bytes");
    }
    char buffer[16 * 1024];
    FERRY_ASSIGN_OR_RETURN(size_t n, Recv(buffer, sizeof(buffer)));
    if (n == 0) {
      return Unavailable(head.empty() ? "connection closed before the response"
                                      : "connection closed inside the response headers");
    }
    head.append(buffer, n);
  }
}

Status Connection::ReadBody(std::span<std::byte> dst, size_t* received) {
  *received = std::min(dst.size(), pending_.size());
  std::memcpy(dst.data(), pending_.data(), *received);
  pending_.erase(0, *received);
  while (*received < dst.size()) {
    size_t remaining = dst.size() - *received;
    // Wake up for 64 KiB at a time, not for every segment: with several connections on few
    // cores, per-segment wake-ups cost more than the copy. Measured (one-off A/B, interleaved
    // runs as in bench/run.py --only http) with `ferry cat` of 1 GiB
    // from loopback nginx on 2 cores: 2 connections 1.41 -> 2.10 GB/s, 4 connections
    // 1.15 -> 2.17 GB/s; 256 KiB starved the single-connection case (2.10 -> 1.77 GB/s).
    // Never more than what is still due, or poll() would wait for bytes that will not come.
    SetLowWatermark(std::min<size_t>(remaining, 64 * 1024));
    FERRY_ASSIGN_OR_RETURN(size_t n, Recv(dst.data() + *received, remaining));
    if (n == 0) {
      return Unavailable("connection closed after " + std::to_string(*received) + " of " +
                         std::to_string(dst.size()) + " body bytes");
    }
    *received += n;
  }
  return Status::Ok();
}

bool IsTransient(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kTimeout;
}

Status StatusForHttpError(int status, std::string message) {
  switch (status) {
    case 401:
    case 403:
      return PermissionDenied(std::move(message));
    case 404:
    case 410:
      return NotFound(std::move(message));
    case 408:
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
      return Unavailable(std::move(message));
    default:
      return IoError(std::move(message));
  }
}

std::chrono::milliseconds RetryDelay(const HttpOptions& o, int failures,
                                     const std::string& retry_after) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  uint64_t retry_after_s = 0;
  if (ParseDecimal(retry_after, retry_after_s)) {
    return std::min(o.retry_max_delay,
                    std::chrono::milliseconds(std::min<uint64_t>(retry_after_s, 1'000'000) * 1000));
  }
  auto delay = o.retry_base_delay * (int64_t{1} << std::min(failures - 1, 20));
  delay = std::min(delay, o.retry_max_delay);
  double jitter = 0.5 + 0.5 * std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  return std::chrono::milliseconds(
      static_cast<int64_t>(static_cast<double>(delay.count()) * jitter));
}

Status ChunkedDecoder::Feed(std::string_view raw, size_t* consumed, std::string* out) {
  size_t pos = 0;
  while (pos < raw.size() && state_ != State::kDone) {
    if (state_ == State::kData) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, raw.size() - pos));
      out->append(raw.substr(pos, n));
      pos += n;
      remaining_ -= n;
      if (remaining_ == 0) state_ = State::kDataEnd;
      continue;
    }
    size_t eol = raw.find("\r\n", pos);
    if (eol == std::string_view::npos) {
      if (raw.size() - pos > 4096) return IoError("chunked body: a line longer than 4096 bytes");
      break;  // wait for the rest of the line
    }
    std::string_view line = raw.substr(pos, eol - pos);
    pos = eol + 2;
    switch (state_) {
      case State::kSize: {
        uint64_t size = 0;
        size_t digits = 0;
        for (char c : line) {
          int v = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                  : (c >= 'a' && c <= 'f')                    ? c - 'a' + 10
                  : (c >= 'A' && c <= 'F')                    ? c - 'A' + 10
                                                              : -1;
          if (v < 0) break;  // ';' starts extensions; anything else is checked below
          if (++digits > 15) return IoError("chunked body: chunk size too large");
          size = size * 16 + static_cast<uint64_t>(v);
        }
        if (digits == 0 || (digits < line.size() && line[digits] != ';' && line[digits] != ' ')) {
          return IoError("chunked body: bad chunk size line '" + std::string(line.substr(0, 32)) +
                         "'");
        }
        if (size > max_body_ - std::min(max_body_, out->size())) {
          return IoError("chunked body exceeds " + std::to_string(max_body_) + " bytes");
        }
        remaining_ = size;
        state_ = size == 0 ? State::kTrailer : State::kData;
        break;
      }
      case State::kDataEnd:
        if (!line.empty()) return IoError("chunked body: chunk data not followed by CRLF");
        state_ = State::kSize;
        break;
      case State::kTrailer:
        if (line.empty()) state_ = State::kDone;  // trailer fields are ignored
        break;
      default:
        break;
    }
  }
  *consumed = pos;
  return Status::Ok();
}

Result<std::string> Connection::ReadWholeBody(const ResponseHead& head, size_t max_bytes) {
  std::string body;
  // These never have a body (RFC 9110 6.4.1), whatever their headers say.
  if (head.status < 200 || head.status == 204 || head.status == 304) return body;
  if (head.has_content_length && !head.chunked) {
    if (head.content_length > max_bytes) {
      return IoError("response body of " + std::to_string(head.content_length) + " bytes exceeds " +
                     std::to_string(max_bytes));
    }
    body.resize(head.content_length);
    size_t received = 0;
    FERRY_RETURN_IF_ERROR(ReadBody(std::as_writable_bytes(std::span(body)), &received));
    return body;
  }
  SetLowWatermark(1);
  ChunkedDecoder decoder(max_bytes);
  std::string raw = std::move(pending_);
  pending_.clear();
  while (true) {
    if (head.chunked) {
      size_t consumed = 0;
      FERRY_RETURN_IF_ERROR(decoder.Feed(raw, &consumed, &body));
      raw.erase(0, consumed);
      if (decoder.done()) {
        pending_ = std::move(raw);
        return body;
      }
    }
    char buffer[16 * 1024];
    FERRY_ASSIGN_OR_RETURN(size_t n, Recv(buffer, sizeof(buffer)));
    if (n == 0) {
      if (head.chunked) return Unavailable("connection closed inside a chunked body");
      body += raw;  // no framing: the body ends with the connection, which is now done
      Close();
      return body;
    }
    raw.append(buffer, n);
    if (!head.chunked && raw.size() > max_bytes) {
      return IoError("response body exceeds " + std::to_string(max_bytes) + " bytes");
    }
  }
}

}  // namespace ferry::io::http

namespace ferry::io {
namespace {

constexpr const char* kTimeoutVariables[] = {"FERRY_HTTP_CONNECT_TIMEOUT",
                                             "FERRY_HTTP_STALL_TIMEOUT", "FERRY_HTTP_TIMEOUT"};

// Positive, finite seconds below a million (fractions allowed), as milliseconds (at least 1).
std::optional<int64_t> ParseSeconds(const char* text) {
  char* end = nullptr;
  errno = 0;
  double seconds = std::strtod(text, &end);
  if (end == text || *end != '\0' || errno != 0 || !std::isfinite(seconds) || seconds <= 0 ||
      seconds >= 1e6) {
    return std::nullopt;
  }
  return std::max<int64_t>(1, static_cast<int64_t>(seconds * 1000));
}

}  // namespace

std::chrono::milliseconds DefaultHttpTimeout(const char* name, int64_t fallback_ms) {
  const char* value = std::getenv(name);
  std::optional<int64_t> ms = value != nullptr ? ParseSeconds(value) : std::nullopt;
  return std::chrono::milliseconds(ms.value_or(fallback_ms));
}

Status CheckHttpEnvironment() {
  for (const char* name : kTimeoutVariables) {
    const char* value = std::getenv(name);
    if (value != nullptr && !ParseSeconds(value)) {
      return InvalidArgument(std::string(name) + "=" + Quoted(value) +
                             ": expected a positive number of seconds (e.g. 30 or 0.5)");
    }
  }
  return Status::Ok();
}

}  // namespace ferry::io
