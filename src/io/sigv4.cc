#include "io/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <ctime>

#include "base/strings.h"

namespace ferry::io::sigv4 {
namespace {

std::string Hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &n);
  return std::string(reinterpret_cast<char*>(out), n);
}

// "20130524T000000Z" and "20130524".
std::pair<std::string, std::string> AmzDate(std::chrono::system_clock::time_point now) {
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char full[17], day[9];
  std::strftime(full, sizeof full, "%Y%m%dT%H%M%SZ", &utc);
  std::strftime(day, sizeof day, "%Y%m%d", &utc);
  return {full, day};
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Header values are trimmed and inner runs of spaces folded to one.
std::string Trimmed(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

}  // namespace

std::string EncodeQuery(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  for (const auto& [k, v] : query) encoded.emplace_back(UriEncode(k, false), UriEncode(v, false));
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [k, v] : encoded) {
    if (!out.empty()) out += '&';
    out += k + "=" + v;
  }
  return out;
}

namespace {

// Sorted lower-case names joined by ';'.
std::string SignedHeaderNames(const std::vector<std::pair<std::string, std::string>>& headers) {
  std::vector<std::string> names;
  for (const auto& h : headers) names.push_back(Lower(h.first));
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ";") + n;
  return out;
}

std::string Signature(const Credentials& credentials, std::string_view day, std::string_view region,
                      std::string_view service, std::string_view string_to_sign) {
  std::string key = Hmac("AWS4" + credentials.secret_access_key, day);
  key = Hmac(key, region);
  key = Hmac(key, service);
  key = Hmac(key, "aws4_request");
  std::string mac = Hmac(key, string_to_sign);
  return LowerHex(mac);
}

}  // namespace

std::string UriEncode(std::string_view text, bool keep_slash) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += "0123456789ABCDEF"[c >> 4];
      out += "0123456789ABCDEF"[c & 0xf];
    }
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), out, &n, EVP_sha256(), nullptr);
  return LowerHex(std::string_view(reinterpret_cast<const char*>(out), n));
}

std::string CanonicalRequest(const Request& request,
                             const std::vector<std::pair<std::string, std::string>>& headers) {
  std::vector<std::pair<std::string, std::string>> canonical;
  for (const auto& [name, value] : headers) canonical.emplace_back(Lower(name), Trimmed(value));
  std::sort(canonical.begin(), canonical.end());
  std::string out = request.method + "\n" + (request.path.empty() ? "/" : request.path) + "\n" +
                    EncodeQuery(request.query) + "\n";
  for (const auto& [name, value] : canonical) out += name + ":" + value + "\n";
  out += "\n" + SignedHeaderNames(headers) + "\n" + request.payload_sha256;
  return out;
}

std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request) {
  return "AWS4-HMAC-SHA256\n" + std::string(amz_date) + "\n" + std::string(scope) + "\n" +
         Sha256Hex(canonical_request);
}

std::vector<std::pair<std::string, std::string>> SignHeaders(
    const Request& request, const Credentials& credentials, std::string_view region,
    std::string_view service, std::chrono::system_clock::time_point now) {
  auto [amz_date, day] = AmzDate(now);
  std::vector<std::pair<std::string, std::string>> added = {
      {"x-amz-content-sha256", request.payload_sha256}, {"x-amz-date", amz_date}};
  if (!credentials.session_token.empty()) {
    added.emplace_back("x-amz-security-token", credentials.session_token);
  }
  std::vector<std::pair<std::string, std::string>> signed_headers = request.headers;
  signed_headers.emplace_back("host", request.host);
  signed_headers.insert(signed_headers.end(), added.begin(), added.end());

  std::string scope =
      day + "/" + std::string(region) + "/" + std::string(service) + "/aws4_request";
  std::string to_sign = StringToSign(amz_date, scope, CanonicalRequest(request, signed_headers));
  added.emplace_back("Authorization",
                     "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id + "/" + scope +
                         ",SignedHeaders=" + SignedHeaderNames(signed_headers) +
                         ",Signature=" + Signature(credentials, day, region, service, to_sign));
  return added;
}

std::string PresignQuery(const Request& request, const Credentials& credentials,
                         std::string_view region, std::string_view service,
                         std::chrono::system_clock::time_point now, std::chrono::seconds expires) {
  auto [amz_date, day] = AmzDate(now);
  std::string scope =
      day + "/" + std::string(region) + "/" + std::string(service) + "/aws4_request";
  Request presigned = request;
  presigned.payload_sha256 = "UNSIGNED-PAYLOAD";
  std::vector<std::pair<std::string, std::string>> headers = request.headers;
  headers.emplace_back("host", request.host);
  presigned.query.emplace_back("X-Amz-Algorithm", "AWS4-HMAC-SHA256");
  presigned.query.emplace_back("X-Amz-Credential", credentials.access_key_id + "/" + scope);
  presigned.query.emplace_back("X-Amz-Date", amz_date);
  presigned.query.emplace_back("X-Amz-Expires", std::to_string(expires.count()));
  if (!credentials.session_token.empty()) {
    presigned.query.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }
  presigned.query.emplace_back("X-Amz-SignedHeaders", SignedHeaderNames(headers));
  std::string to_sign = StringToSign(amz_date, scope, CanonicalRequest(presigned, headers));
  return EncodeQuery(presigned.query) +
         "&X-Amz-Signature=" + Signature(credentials, day, region, service, to_sign);
}

}  // namespace ferry::io::sigv4
