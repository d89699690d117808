// Status and Result<T>: errors are values inside ferry.
//
// A corrupt file, a dropped connection or a missing key is expected input for a data loader, not
// an exceptional event, and errors must cross threads through queues. So every fallible function
// returns a `Status` (a code and a message) or a `Result<T>` (a value or a non-OK Status). They
// become exceptions only at the Python edge (python/bindings/errors.cc) and exit codes only in the
// CLI (tools/ferry_main.cc); both translations are driven by `StatusCode` alone.
//
// Messages name the thing (file, URL, tensor, byte offset) and what was expected, e.g.
//   "http://127.0.0.1:8080/a.bin: read of 4096 bytes at offset 1048576 is past the end (size 1000)"
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace ferry {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument,   // the caller asked for something malformed (bad URI, bad option)
  kNotFound,          // file, URL (404/410) or key does not exist
  kPermissionDenied,  // EACCES, HTTP 401/403
  kOutOfRange,        // a read or index past the end of what exists
  kCorruption,        // bytes that violate their format
  kIoError,           // the OS or the peer failed in a way retrying will not fix
  kUnavailable,       // transient failures persisted past the retry budget
  kTimeout,           // a deadline passed
  kSourceChanged,     // the object changed between two reads (size, ETag, Last-Modified)
  kUnsupported,       // a valid request ferry does not (yet) implement, e.g. a URI scheme
  kCancelled,         // stopped because another task failed first or the user asked
  kEvicted,           // a streamed item was already replaced by a later one (plaid mode)
  kInternal,          // a bug in ferry
};

// Stable lower-case name of a code, e.g. "not found"; used in messages and tests.
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "<code name>: <message>", or "ok".
  std::string ToString() const;

  // Returns this status with `context + ": "` put in front of its message (no-op when OK).
  Status WithContext(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string msg) {
  return {StatusCode::kInvalidArgument, std::move(msg)};
}
inline Status NotFound(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
inline Status PermissionDenied(std::string msg) {
  return {StatusCode::kPermissionDenied, std::move(msg)};
}
inline Status OutOfRange(std::string msg) { return {StatusCode::kOutOfRange, std::move(msg)}; }
inline Status Corruption(std::string msg) { return {StatusCode::kCorruption, std::move(msg)}; }
inline Status IoError(std::string msg) { return {StatusCode::kIoError, std::move(msg)}; }
inline Status Unavailable(std::string msg) { return {StatusCode::kUnavailable, std::move(msg)}; }
inline Status Timeout(std::string msg) { return {StatusCode::kTimeout, std::move(msg)}; }
inline Status SourceChanged(std::string msg) {
  return {StatusCode::kSourceChanged, std::move(msg)};
}
inline Status Unsupported(std::string msg) { return {StatusCode::kUnsupported, std::move(msg)}; }
inline Status Cancelled(std::string msg) { return {StatusCode::kCancelled, std::move(msg)}; }
inline Status Evicted(std::string msg) { return {StatusCode::kEvicted, std::move(msg)}; }
inline Status Internal(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }

// Maps an errno value to a Status: ENOENT -> NotFound, EACCES/EPERM -> PermissionDenied,
// EISDIR/ENOTDIR/EINVAL -> InvalidArgument, anything else -> IoError. The message is
// "<what>: <strerror(err)>".
Status ErrnoStatus(int err, std::string_view what);

// A value of type T or a non-OK Status. REQUIRES: never constructed from an OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design, like StatusOr
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.ok() && "Result constructed from an OK Status");
    if (status_.ok()) status_ = Internal("Result constructed from an OK Status");
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const& { return status_; }
  Status status() && { return std::move(status_); }

  // REQUIRES: ok().
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace ferry

#define FERRY_CONCAT_INNER_(a, b) a##b
#define FERRY_CONCAT_(a, b) FERRY_CONCAT_INNER_(a, b)

// Returns the Status of `expr` from the enclosing function if it is not OK.
#define FERRY_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::ferry::Status ferry_status_ = (expr);        \
    if (!ferry_status_.ok()) return ferry_status_; \
  } while (0)

// `lhs = value of expr` or return its Status. `lhs` may declare a variable: `auto x`.
#define FERRY_ASSIGN_OR_RETURN(lhs, expr) \
  FERRY_ASSIGN_OR_RETURN_IMPL_(FERRY_CONCAT_(ferry_result_, __LINE__), lhs, expr)
#define FERRY_ASSIGN_OR_RETURN_IMPL_(result, lhs, expr) \
  auto result = (expr);                                 \
  if (!result.ok()) return std::move(result).status();  \
  lhs = std::move(result).value()
