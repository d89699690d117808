// AWS Signature Version 4, implemented in ferry (SHA-256 and HMAC from OpenSSL).
//
// Debian 12's libcurl signs sorted or percent-encoded queries wrongly, so ferry signs requests
// itself; sigv4_test.cc checks this code against AWS's published examples.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::io::sigv4 {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // temporary credentials only
};

struct Request {
  std::string method = "GET";
  std::string host;  // the Host header value: "host[:port]"
  std::string path;  // the request path, already URI-encoded as it goes on the wire
  std::vector<std::pair<std::string, std::string>> query;    // decoded names and values
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers to sign
  std::string payload_sha256 = "UNSIGNED-PAYLOAD";           // hex, or UNSIGNED-PAYLOAD
};

// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters (A-Z a-z 0-9 - _ . ~)
// kept, every other byte %XX in upper-case hex; '/' kept when `keep_slash` (object paths).
std::string UriEncode(std::string_view text, bool keep_slash);

std::string Sha256Hex(std::string_view data);

// "a=1&b=x%20y": names and values UriEncode'd, sorted; the canonical query, also fit for a URL.
std::string EncodeQuery(const std::vector<std::pair<std::string, std::string>>& query);

// The headers to add to `request` (x-amz-date, x-amz-content-sha256, x-amz-security-token when
// there is a session token, Authorization), signed for `region` and `service` at `now`.
std::vector<std::pair<std::string, std::string>> SignHeaders(
    const Request& request, const Credentials& credentials, std::string_view region,
    std::string_view service, std::chrono::system_clock::time_point now);

// A presigned URL query string ("X-Amz-Algorithm=...&X-Amz-Signature=...") for `request`,
// valid for `expires` from `now`; the payload is UNSIGNED-PAYLOAD.
std::string PresignQuery(const Request& request, const Credentials& credentials,
                         std::string_view region, std::string_view service,
                         std::chrono::system_clock::time_point now, std::chrono::seconds expires);

// The canonical request and the string to sign, exposed for tests and debugging.
std::string CanonicalRequest(const Request& request,
                             const std::vector<std::pair<std::string, std::string>>& headers);
std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request);

}  // namespace ferry::io::sigv4
