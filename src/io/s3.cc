#include "io/s3.h"

#include <fnmatch.h>

#include <cstdlib>
#include <fstream>
#include <mutex>

#include "base/interrupt.h"
#include "base/parse.h"
#include "ferry/version.h"
#include "io/http_source.h"
#include "pipeline/parallel_for.h"

namespace ferry::io::s3 {
namespace {

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

// `key = value` pairs of one section of an AWS INI file; nullopt when the file or the section
// does not exist.
std::optional<std::vector<std::pair<std::string, std::string>>> ReadIniSection(
    const std::string& path, const std::string& section) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::optional<std::vector<std::pair<std::string, std::string>>> found;
  bool inside = false;
  std::string line;
  while (std::getline(in, line)) {
    std::string t = Trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t.front() == '[' && t.back() == ']') {
      inside = Trim(std::string_view(t).substr(1, t.size() - 2)) == section;
      if (inside && !found) found.emplace();
      continue;
    }
    size_t eq = t.find('=');
    if (inside && eq != std::string::npos) {
      found->emplace_back(Trim(std::string_view(t).substr(0, eq)),
                          Trim(std::string_view(t).substr(eq + 1)));
    }
  }
  return found;
}

std::optional<std::string> Lookup(const std::vector<std::pair<std::string, std::string>>& kv,
                                  std::string_view key) {
  for (const auto& [k, v] : kv) {
    if (k == key) return v;
  }
  return std::nullopt;
}

bool IsTrue(const std::optional<std::string>& v) {
  return v && (*v == "true" || *v == "TRUE" || *v == "True" || *v == "1");
}

std::string XmlUnescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    size_t semi = s.find(';', i);
    std::string_view entity = s.substr(i + 1, semi == std::string_view::npos ? 0 : semi - i - 1);
    char c = entity == "amp"    ? '&'
             : entity == "lt"   ? '<'
             : entity == "gt"   ? '>'
             : entity == "quot" ? '"'
             : entity == "apos" ? '\''
                                : '\0';
    if (c == '\0') {
      out += s[i];
      continue;
    }
    out += c;
    i = semi;
  }
  return out;
}

std::string XmlElement(std::string_view body, std::string_view name) {
  std::string open = "<" + std::string(name) + ">", close = "</" + std::string(name) + ">";
  size_t b = body.find(open);
  if (b == std::string_view::npos) return "";
  b += open.size();
  size_t e = body.find(close, b);
  if (e == std::string_view::npos) return "";
  return XmlUnescape(body.substr(b, e - b));
}

}  // namespace

Environment ProcessEnvironment() {
  return [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
}

Result<Config> ResolveConfig(const Environment& env) {
  Config config;
  std::string home = env("HOME").value_or("");
  std::string credentials_file =
      env("AWS_SHARED_CREDENTIALS_FILE").value_or(home + "/.aws/credentials");
  std::string config_file = env("AWS_CONFIG_FILE").value_or(home + "/.aws/config");
  std::optional<std::string> profile_env = env("AWS_PROFILE");
  std::string profile = profile_env.value_or("default");

  auto from_credentials = ReadIniSection(credentials_file, profile);
  auto from_config =
      ReadIniSection(config_file, profile == "default" ? "default" : "profile " + profile);
  if (profile_env && !from_credentials && !from_config) {
    return NotFound("AWS_PROFILE '" + profile + "' is not in " + credentials_file + " or " +
                    config_file);
  }
  std::vector<std::pair<std::string, std::string>> settings;
  if (from_config) settings = *from_config;
  if (from_credentials) {  // the credentials file wins over the config file
    settings.insert(settings.begin(), from_credentials->begin(), from_credentials->end());
  }

  config.region =
      env("AWS_REGION")
          .value_or(
              env("AWS_DEFAULT_REGION").value_or(Lookup(settings, "region").value_or("us-east-1")));

  std::optional<std::string> endpoint = env("AWS_ENDPOINT_URL_S3");
  if (!endpoint) endpoint = env("AWS_ENDPOINT_URL");
  if (!endpoint) endpoint = Lookup(settings, "endpoint_url");
  if (endpoint) {
    config.endpoint = *endpoint;
    while (!config.endpoint.empty() && config.endpoint.back() == '/') config.endpoint.pop_back();
    if (!config.endpoint.starts_with("http://") && !config.endpoint.starts_with("https://")) {
      return InvalidArgument("S3 endpoint '" + config.endpoint +
                             "' must start with http:// or https://");
    }
    config.path_style = true;
  } else {
    config.endpoint = "https://s3." + config.region + ".amazonaws.com";
    config.path_style = false;
  }
  if (std::optional<std::string> style = env("FERRY_S3_ADDRESSING_STYLE")) {
    if (*style != "path" && *style != "virtual") {
      return InvalidArgument("FERRY_S3_ADDRESSING_STYLE='" + *style +
                             "' (expected 'path' or 'virtual')");
    }
    config.path_style = *style == "path";
  }

  if (IsTrue(env("AWS_NO_SIGN_REQUEST"))) {
    config.credentials_source = "anonymous (AWS_NO_SIGN_REQUEST)";
    return config;
  }
  std::optional<std::string> id = env("AWS_ACCESS_KEY_ID"), secret = env("AWS_SECRET_ACCESS_KEY");
  if (id || secret) {
    if (!id || !secret) {
      return InvalidArgument(std::string("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set "
                                         "together (only ") +
                             (id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY") + " is)");
    }
    config.credentials = sigv4::Credentials{*id, *secret, env("AWS_SESSION_TOKEN").value_or("")};
    config.credentials_source = "environment";
    return config;
  }
  std::optional<std::string> file_id = Lookup(settings, "aws_access_key_id");
  std::optional<std::string> file_secret = Lookup(settings, "aws_secret_access_key");
  if (file_id && file_secret) {
    config.credentials = sigv4::Credentials{*file_id, *file_secret,
                                            Lookup(settings, "aws_session_token").value_or("")};
    config.credentials_source = "profile '" + profile + "'";
    return config;
  }
  if (file_id || file_secret) {
    return InvalidArgument("profile '" + profile + "' in " + credentials_file +
                           " has only one of aws_access_key_id and aws_secret_access_key");
  }
  config.credentials_source = "anonymous (no credentials found)";
  return config;
}

Result<Location> ParseLocation(std::string_view uri, std::string_view location) {
  size_t slash = location.find('/');
  Location out{std::string(location.substr(0, slash)),
               slash == std::string_view::npos ? "" : std::string(location.substr(slash + 1))};
  if (out.bucket.size() < 3 || out.bucket.size() > 63) {
    return InvalidArgument(std::string(uri) + ": bucket name '" + out.bucket +
                           "' must be 3 to 63 characters (s3://bucket/key)");
  }
  for (char c : out.bucket) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.')) {
      return InvalidArgument(std::string(uri) + ": bucket name '" + out.bucket +
                             "' may hold only a-z, 0-9, '-' and '.'");
    }
  }
  return out;
}

std::string ObjectUrl(const Config& config, const Location& location) {
  std::string key = sigv4::UriEncode(location.key, /*keep_slash=*/true);
  bool path_style = config.path_style || location.bucket.find('.') != std::string::npos;
  if (path_style) return config.endpoint + "/" + location.bucket + "/" + key;
  size_t host = config.endpoint.find("://") + 3;
  return config.endpoint.substr(0, host) + location.bucket + "." + config.endpoint.substr(host) +
         "/" + key;
}

std::string DescribeError(std::string_view body) {
  std::string code = XmlElement(body, "Code");
  if (code.empty()) return "";
  std::string message = XmlElement(body, "Message");
  std::string out = message.empty() ? code : code + ": " + message;
  // A request signed for the wrong region (AuthorizationHeaderMalformed, PermanentRedirect) says
  // where the bucket lives; say how to get there.
  std::string region = XmlElement(body, "Region");
  if (!region.empty()) out += " (the bucket is in " + region + ": set AWS_REGION=" + region + ")";
  return out;
}

Result<std::unique_ptr<Source>> OpenS3Source(std::string uri, std::string_view location,
                                             const SourceOptions& options) {
  FERRY_ASSIGN_OR_RETURN(Location where, ParseLocation(uri, location));
  if (where.key.empty()) {
    return InvalidArgument(uri + ": names a bucket, not an object (s3://bucket/key)");
  }
  FERRY_ASSIGN_OR_RETURN(Config config, ResolveConfig(ProcessEnvironment()));
  HttpHooks hooks;
  hooks.display_uri = uri;
  hooks.describe_error = [anonymous = !config.credentials.has_value(),
                          source = config.credentials_source](std::string_view body) {
    std::string detail = DescribeError(body);
    // A request refused for want of credentials should say that none were sent.
    if (anonymous && detail.starts_with("AccessDenied")) detail += "; sent unsigned: " + source;
    return detail;
  };
  if (config.credentials) {
    hooks.request_headers = [credentials = *config.credentials,
                             region = config.region](const http::Target& target) {
      sigv4::Request request;
      request.host = target.host_header;
      request.path = target.request_target;  // the encoded path; GetObject has no query
      std::string lines;
      for (const auto& [name, value] : sigv4::SignHeaders(request, credentials, region, "s3",
                                                          std::chrono::system_clock::now())) {
        lines += name + ": " + value + "\r\n";
      }
      return lines;
    };
  }
  return OpenHttpSource(ObjectUrl(config, where), options.http, std::move(hooks));
}

namespace {

// Percent-decoding as botocore applies it to keys listed with encoding-type=url ('+' is a space).
std::string UrlDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() &&
               std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The contents of every <name>...</name> in `body`, in order.
std::vector<std::string_view> XmlElements(std::string_view body, std::string_view name) {
  std::string open = "<" + std::string(name) + ">", close = "</" + std::string(name) + ">";
  std::vector<std::string_view> out;
  for (size_t b = body.find(open); b != std::string_view::npos; b = body.find(open, b)) {
    b += open.size();
    size_t e = body.find(close, b);
    if (e == std::string_view::npos) break;
    out.push_back(body.substr(b, e - b));
    b = e + close.size();
  }
  return out;
}

std::string Unquoted(std::string etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"')
    etag = etag.substr(1, etag.size() - 2);
  return etag;
}

}  // namespace

Client::Client(Config config, HttpOptions options)
    : config_(std::move(config)), options_(std::move(options)) {}
Client::~Client() = default;

Result<Response> Client::CallOnce(std::string_view method, const Location& location,
                                  const std::vector<std::pair<std::string, std::string>>& query,
                                  std::string_view body) {
  std::string url = ObjectUrl(config_, location);
  if (!query.empty()) url += "?" + sigv4::EncodeQuery(query);
  FERRY_ASSIGN_OR_RETURN(http::Target target, http::ParseTarget(url));
  std::string request = std::string(method) + " " + target.request_target +
                        " HTTP/1.1\r\nHost: " + target.host_header + "\r\nUser-Agent: ferry/" +
                        kVersion + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  if (config_.credentials) {
    sigv4::Request signing;
    signing.method = std::string(method);
    signing.host = target.host_header;
    signing.path = target.request_target.substr(0, target.request_target.find('?'));
    signing.query = query;
    for (const auto& [name, value] :
         sigv4::SignHeaders(signing, *config_.credentials, config_.region, "s3",
                            std::chrono::system_clock::now())) {
      request += name + ": " + value + "\r\n";
    }
  }
  request += "\r\n";
  request += body;
  if (!connection_) connection_ = std::make_unique<http::Connection>(options_);
  Status s = connection_->Connect(target);
  if (s.ok()) s = connection_->SendAll(request);
  if (!s.ok()) {
    connection_->Close();
    return s;
  }
  Result<http::ResponseHead> head = connection_->ReadHead();
  if (!head.ok()) {
    connection_->Close();
    return head.status();
  }
  Response response{head->status, head->etag, head->retry_after, ""};
  if (method != "HEAD") {
    constexpr size_t kMaxApiBody = 64u << 20;  // a 1000-key listing is well under 1 MiB
    Result<std::string> text = connection_->ReadWholeBody(*head, kMaxApiBody);
    if (!text.ok()) {
      connection_->Close();
      return text.status();
    }
    response.body = std::move(*text);
  }
  if (!head->keep_alive && connection_->open()) connection_->Close();
  return response;
}

Result<Response> Client::Call(std::string_view uri, std::string_view method,
                              const Location& location,
                              const std::vector<std::pair<std::string, std::string>>& query,
                              std::string_view body) {
  for (int failures = 1;; ++failures) {
    Result<Response> r = CallOnce(method, location, query, body);
    std::string retry_after = r.ok() ? r->retry_after : "";
    Status failure;
    if (!r.ok()) {
      failure = r.status().WithContext(std::string(uri) + ": " + std::string(method));
    } else if (r->status >= 200 && r->status < 300) {
      // CompleteMultipartUpload can answer 200 and then report an error in the body.
      if (r->body.find("<Error>") == std::string::npos) return r;
      failure = IoError(std::string(uri) + ": " + std::string(method) + " failed (" +
                        DescribeError(r->body) + ")");
    } else {
      std::string what = std::string(uri) + ": " + std::string(method) + " answered HTTP " +
                         std::to_string(r->status);
      std::string detail = DescribeError(r->body);
      if (!detail.empty()) what += " (" + detail + ")";
      failure = http::StatusForHttpError(r->status, std::move(what));
    }
    if (!http::IsTransient(failure) || failures > options_.max_retries) return failure;
    FERRY_RETURN_IF_ERROR(InterruptibleSleep(http::RetryDelay(options_, failures, retry_after)));
  }
}

Result<std::vector<ObjectInfo>> ListObjects(Client& client, std::string_view uri,
                                            const std::string& bucket, const std::string& prefix) {
  std::vector<ObjectInfo> out;
  std::string token;
  while (true) {
    std::vector<std::pair<std::string, std::string>> query = {
        {"list-type", "2"}, {"prefix", prefix}, {"encoding-type", "url"}};
    if (!token.empty()) query.emplace_back("continuation-token", token);
    FERRY_ASSIGN_OR_RETURN(Response page, client.Call(uri, "GET", {bucket, ""}, query));
    bool url_encoded = XmlElement(page.body, "EncodingType") == "url";
    for (std::string_view contents : XmlElements(page.body, "Contents")) {
      std::string key = XmlElement(contents, "Key");
      uint64_t size = 0;
      if (!ParseDecimal(XmlElement(contents, "Size"), size)) {
        return IoError(std::string(uri) + ": listing has an object without a valid <Size>");
      }
      out.push_back({url_encoded ? UrlDecode(key) : key, size});
    }
    if (XmlElement(page.body, "IsTruncated") != "true") return out;
    token = XmlElement(page.body, "NextContinuationToken");
    if (token.empty()) {
      return IoError(std::string(uri) + ": truncated listing without a NextContinuationToken");
    }
  }
}

Result<std::vector<std::string>> ExpandS3Pattern(std::string_view uri, std::string_view location,
                                                 const SourceOptions& options) {
  FERRY_ASSIGN_OR_RETURN(Location where, ParseLocation(uri, location));
  size_t wildcard = where.key.find_first_of("*?[");
  bool is_prefix = where.key.empty() || where.key.back() == '/';
  if (wildcard == std::string::npos && !is_prefix)
    return std::vector<std::string>{std::string(uri)};
  FERRY_ASSIGN_OR_RETURN(Config config, ResolveConfig(ProcessEnvironment()));
  Client client(std::move(config), options.http);
  std::string prefix = where.key.substr(0, wildcard);
  FERRY_ASSIGN_OR_RETURN(std::vector<ObjectInfo> objects,
                         ListObjects(client, uri, where.bucket, prefix));
  std::vector<std::string> out;
  for (const ObjectInfo& object : objects) {
    if (wildcard != std::string::npos &&
        ::fnmatch(where.key.c_str(), object.key.c_str(), FNM_PATHNAME) != 0) {
      continue;
    }
    out.push_back("s3://" + where.bucket + "/" + object.key);
  }
  if (out.empty()) return NotFound(std::string(uri) + ": no object matches");
  return out;
}

namespace {

class S3Sink final : public Sink {
 public:
  S3Sink(std::string uri, Location location, Config config, const HttpOptions& options,
         size_t part_size)
      : uri_(std::move(uri)),
        location_(std::move(location)),
        config_(std::move(config)),
        options_(options),
        client_(config_, options_),
        part_size_(part_size) {}

  ~S3Sink() override {
    if (!upload_id_.empty() && !committed_) {
      (void)client_.Call(uri_, "DELETE", location_, {{"uploadId", upload_id_}});  // best effort
    }
  }

  Status Write(std::span<const std::byte> bytes) override {
    buffer_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (buffer_.size() >= kPartsInFlight * part_size_) return UploadWholeParts();
    return Status::Ok();
  }

  Status Commit() override {
    if (upload_id_.empty() && buffer_.size() < part_size_) {  // small: one PUT
      FERRY_RETURN_IF_ERROR(client_.Call(uri_, "PUT", location_, {}, buffer_).status());
      committed_ = true;
      return Status::Ok();
    }
    FERRY_RETURN_IF_ERROR(UploadWholeParts());
    if (!buffer_.empty()) {  // the last part may be short
      etags_.emplace_back();
      FERRY_RETURN_IF_ERROR(UploadPart(client_, etags_.size(), buffer_, etags_.back()));
    }
    std::string xml = "<CompleteMultipartUpload>";
    for (size_t i = 0; i < etags_.size(); ++i) {
      xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>\"" + etags_[i] +
             "\"</ETag></Part>";
    }
    xml += "</CompleteMultipartUpload>";
    FERRY_RETURN_IF_ERROR(
        client_.Call(uri_, "POST", location_, {{"uploadId", upload_id_}}, xml).status());
    committed_ = true;
    return Status::Ok();
  }

 private:
  // Parts uploaded at once, each on its own connection; memory is this many parts.
  static constexpr size_t kPartsInFlight = 4;

  // Uploads every whole part in the buffer, up to kPartsInFlight at a time.
  Status UploadWholeParts() {
    size_t parts = buffer_.size() / part_size_;
    if (parts == 0) return Status::Ok();
    if (upload_id_.empty()) {
      FERRY_ASSIGN_OR_RETURN(Response created,
                             client_.Call(uri_, "POST", location_, {{"uploads", ""}}));
      upload_id_ = XmlElement(created.body, "UploadId");
      if (upload_id_.empty()) {
        return IoError(uri_ + ": CreateMultipartUpload answered without an UploadId");
      }
    }
    size_t first = etags_.size();
    etags_.resize(first + parts);
    FERRY_RETURN_IF_ERROR(pipeline::ParallelFor(parts, kPartsInFlight, [&](size_t i) {
      std::unique_ptr<Client> client = AcquireClient();
      Status s = UploadPart(*client, first + i + 1,
                            std::string_view(buffer_).substr(i * part_size_, part_size_),
                            etags_[first + i]);
      ReleaseClient(std::move(client));
      return s;
    }));
    buffer_.erase(0, parts * part_size_);
    return Status::Ok();
  }

  Status UploadPart(Client& client, size_t number, std::string_view part, std::string& etag) {
    FERRY_ASSIGN_OR_RETURN(
        Response uploaded,
        client.Call(uri_, "PUT", location_,
                    {{"partNumber", std::to_string(number)}, {"uploadId", upload_id_}}, part));
    if (uploaded.etag.empty()) {
      return IoError(uri_ + ": UploadPart " + std::to_string(number) + " answered without an ETag");
    }
    etag = Unquoted(uploaded.etag);
    return Status::Ok();
  }

  std::unique_ptr<Client> AcquireClient() {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (pool_.empty()) return std::make_unique<Client>(config_, options_);
    std::unique_ptr<Client> client = std::move(pool_.back());
    pool_.pop_back();
    return client;
  }

  void ReleaseClient(std::unique_ptr<Client> client) {
    std::lock_guard<std::mutex> lock(pool_mu_);
    pool_.push_back(std::move(client));
  }

  const std::string uri_;
  const Location location_;
  const Config config_;
  const HttpOptions options_;
  Client client_;  // create, complete, abort
  const size_t part_size_;
  std::string buffer_;
  std::string upload_id_;
  std::vector<std::string> etags_;  // by part number - 1
  bool committed_ = false;
  std::mutex pool_mu_;
  std::vector<std::unique_ptr<Client>> pool_;  // keep-alive connections for parts
};

}  // namespace

Result<std::unique_ptr<Sink>> CreateS3Sink(std::string uri, std::string_view location,
                                           const SourceOptions& options, size_t part_size) {
  constexpr size_t kMinPart = 5u << 20;  // S3's minimum for every part but the last
  if (part_size < kMinPart) {
    return InvalidArgument(uri + ": multipart part size " + std::to_string(part_size) +
                           " is below S3's minimum of 5 MiB");
  }
  FERRY_ASSIGN_OR_RETURN(Location where, ParseLocation(uri, location));
  if (where.key.empty()) return InvalidArgument(uri + ": names a bucket, not an object");
  FERRY_ASSIGN_OR_RETURN(Config config, ResolveConfig(ProcessEnvironment()));
  return std::unique_ptr<Sink>(
      new S3Sink(std::move(uri), std::move(where), std::move(config), options.http, part_size));
}

}  // namespace ferry::io::s3
