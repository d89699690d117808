// S3: `s3://bucket/key` sources over ferry's HTTP source, signed with SigV4 (io/sigv4.h).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ferry/io.h"
#include "io/http_connection.h"
#include "io/sigv4.h"

namespace ferry::io::s3 {

// Where and as whom S3 requests go, resolved the way the AWS CLI and SDKs do:
//   credentials  AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), else the
//                profile AWS_PROFILE (default "default") in AWS_SHARED_CREDENTIALS_FILE
//                (~/.aws/credentials) or AWS_CONFIG_FILE (~/.aws/config), else anonymous.
//                AWS_NO_SIGN_REQUEST=true forces anonymous access (public buckets).
//   region       AWS_REGION, AWS_DEFAULT_REGION, the profile's `region`, else us-east-1.
//   endpoint     AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's `endpoint_url`, else
//                https://s3.REGION.amazonaws.com.
//   addressing   virtual-hosted (https://BUCKET.s3.REGION.amazonaws.com/KEY) on AWS; path style
//                (ENDPOINT/BUCKET/KEY) for custom endpoints and bucket names with dots;
//                FERRY_S3_ADDRESSING_STYLE=path|virtual overrides.
struct Config {
  std::string endpoint;  // scheme://host[:port], no trailing slash
  std::string region;
  bool path_style = true;
  std::optional<sigv4::Credentials> credentials;  // nullopt: anonymous
  std::string credentials_source;                 // e.g. "environment", "profile 'x' in ..."
};

// Reads one environment variable; nullopt when unset. Injected so tests need no global state.
using Environment = std::function<std::optional<std::string>(const char* name)>;
Environment ProcessEnvironment();

Result<Config> ResolveConfig(const Environment& env);

struct Location {
  std::string bucket;
  std::string key;  // may be empty (a bucket or a prefix)
};

// "bucket/key" (the part after s3://). Keys are taken as written: spaces, '+', '=' and
// non-ASCII characters are key characters, not encodings.
Result<Location> ParseLocation(std::string_view uri, std::string_view location);

// The URL of an object under `config`, key percent-encoded.
std::string ObjectUrl(const Config& config, const Location& location);

// Opens s3://bucket/key for ranged reads (size and ETag pinned at open, like HTTP).
Result<std::unique_ptr<Source>> OpenS3Source(std::string uri, std::string_view location,
                                             const SourceOptions& options);

// "Code: Message" from an S3 XML error body, "" when there is none.
std::string DescribeError(std::string_view body);

struct Response {
  int status = 0;
  std::string etag;
  std::string retry_after;  // seconds, as sent with 503 SlowDown
  std::string body;
};

// S3 API requests other than object reads (listing, uploads): signed, on one keep-alive
// connection, retried with back-off on connection failures, 408, 429 and 5xx (SlowDown). A
// non-2xx answer is an error naming `uri` and S3's error code and message.
class Client {
 public:
  Client(Config config, HttpOptions options);
  ~Client();
  const Config& config() const { return config_; }

  Result<Response> Call(std::string_view uri, std::string_view method, const Location& location,
                        const std::vector<std::pair<std::string, std::string>>& query,
                        std::string_view body = {});

 private:
  Result<Response> CallOnce(std::string_view method, const Location& location,
                            const std::vector<std::pair<std::string, std::string>>& query,
                            std::string_view body);
  Config config_;
  HttpOptions options_;
  std::unique_ptr<http::Connection> connection_;
};

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
};

// Every object whose key starts with `prefix`, in key order (ListObjectsV2, all pages).
Result<std::vector<ObjectInfo>> ListObjects(Client& client, std::string_view uri,
                                            const std::string& bucket, const std::string& prefix);

// s3://bucket/prefix/ (everything under the prefix) or s3://bucket/dir/*.tar (shell-style
// wildcards * ? [..], not crossing '/') -> the matching s3:// URIs, sorted. kNotFound when
// nothing matches.
Result<std::vector<std::string>> ExpandS3Pattern(std::string_view uri, std::string_view location,
                                                 const SourceOptions& options);

// Uploads an object: a single PUT when it is small, else a multipart upload in `part_size`
// parts (at least 5 MiB), four in flight at once on their own connections (memory: four parts).
// Destroying it uncommitted aborts the upload, so no partial object appears.
Result<std::unique_ptr<Sink>> CreateS3Sink(std::string uri, std::string_view location,
                                           const SourceOptions& options,
                                           size_t part_size = 8u << 20);

}  // namespace ferry::io::s3
