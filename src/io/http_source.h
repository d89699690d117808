// HTTP(S) sources over libcurl: ranged GETs, pooled connections, retries that resume.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "ferry/io.h"
#include "io/http_connection.h"

namespace ferry::io {

// What a protocol on top of HTTP (S3) adds to plain ranged GETs.
struct HttpHooks {
  // The name used in every message instead of the URL (e.g. "s3://bucket/key").
  std::string display_uri;
  // Extra header lines ("Name: value\r\n" each) for one GET of `target`, made per request
  // (SigV4 signs the time). Must not throw.
  std::function<std::string(const http::Target& target)> request_headers;
  // Turns an error response body (at most 16 KiB) into a phrase for the message, e.g. S3's
  // "<Code>NoSuchKey</Code>" into "NoSuchKey: The specified key does not exist."; "" if none.
  std::function<std::string(std::string_view body)> describe_error;
};

// Opens `url`: one `Range: bytes=0-0` request learns the size (from Content-Range, or the
// Content-Length of a server that ignores Range) and pins the ETag / Last-Modified validators
// that every later response must repeat.
Result<std::unique_ptr<Source>> OpenHttpSource(std::string url, const HttpOptions& options,
                                               HttpHooks hooks = {});

}  // namespace ferry::io
