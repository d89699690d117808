#include "io/s3.h"

#include <cstdlib>
#include <fstream>

#include "io/http_source.h"

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
  return message.empty() ? code : code + ": " + message;
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
  hooks.describe_error = DescribeError;
  hooks.bare_416_means_empty = true;
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

}  // namespace ferry::io::s3
