// URI parsing and brace expansion: the two parsers every URI list goes through.

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "base/parse.h"
#include "base/strings.h"
#include "ferry/io.h"

namespace ferry::io {
namespace {

bool IsSchemeChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
}

// "scheme://..." with a scheme of RFC 3986 characters; anything else is a path.
bool HasScheme(std::string_view text) {
  size_t sep = text.find("://");
  return sep != std::string_view::npos && sep > 0 &&
         std::isalpha(static_cast<unsigned char>(text[0])) &&
         std::all_of(text.begin(), text.begin() + sep, IsSchemeChar);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> PercentDecode(std::string_view uri, size_t start) {
  std::string out;
  out.reserve(uri.size() - start);
  for (size_t i = start; i < uri.size(); ++i) {
    if (uri[i] != '%') {
      out += uri[i];
      continue;
    }
    int hi = i + 2 < uri.size() ? HexValue(uri[i + 1]) : -1;
    int lo = hi >= 0 ? HexValue(uri[i + 2]) : -1;
    if (lo < 0) {
      return InvalidArgument("URI " + Quoted(uri) + ": bad percent escape at offset " +
                             std::to_string(i) + " (expected %XX with two hex digits)");
    }
    char decoded = static_cast<char>(hi * 16 + lo);
    if (decoded == '\0') {
      return InvalidArgument("URI " + Quoted(uri) + ": %00 at offset " + std::to_string(i) +
                             " decodes to a NUL byte, which no path may contain");
    }
    out += decoded;
    i += 2;
  }
  return out;
}

}  // namespace

Result<Uri> ParseUri(std::string_view text) {
  if (text.empty()) return InvalidArgument("empty URI (expected a path or a URL)");
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      return InvalidArgument("URI " + Quoted(text) + ": control character 0x" +
                             LowerHex(text.substr(i, 1)) + " at offset " +
                             std::to_string(i));
    }
  }

  if (!HasScheme(text)) return Uri{Scheme::kFile, std::string(text)};
  size_t sep = text.find("://");

  std::string scheme(text.substr(0, sep));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  size_t authority = sep + 3;

  if (scheme == "file") {
    size_t slash = text.find('/', authority);
    std::string_view host = text.substr(
        authority, slash == std::string_view::npos ? std::string_view::npos : slash - authority);
    if (slash == std::string_view::npos) {
      return InvalidArgument("URI " + Quoted(text) +
                             ": file URI has no path (expected file:///absolute/path)");
    }
    if (!host.empty() && host != "localhost") {
      return InvalidArgument("URI " + Quoted(text) + ": file URI names host '" + std::string(host) +
                             "' (expected file:///path or file://localhost/path)");
    }
    FERRY_ASSIGN_OR_RETURN(std::string path, PercentDecode(text, slash));
    return Uri{Scheme::kFile, std::move(path)};
  }

  if (scheme == "http" || scheme == "https") {
    size_t host_end = text.find_first_of("/?#", authority);
    if (host_end == std::string_view::npos) host_end = text.size();
    if (host_end == authority) {
      return InvalidArgument("URI " + Quoted(text) + ": URL has no host (expected " + scheme +
                             "://host/path)");
    }
    size_t space = text.find(' ');
    if (space != std::string_view::npos) {
      return InvalidArgument("URI " + Quoted(text) + ": space at offset " + std::to_string(space) +
                             " (URLs must be percent-encoded: %20)");
    }
    return Uri{scheme == "http" ? Scheme::kHttp : Scheme::kHttps, std::string(text)};
  }

  if (scheme == "s3") {
    std::string_view location = text.substr(authority);
    if (location.empty() || location.front() == '/') {
      return InvalidArgument("URI " + Quoted(text) +
                             ": S3 URI has no bucket (expected s3://bucket/key)");
    }
    return Uri{Scheme::kS3, std::string(location)};
  }

  return Unsupported("URI " + Quoted(text) + ": unsupported scheme '" + scheme +
                     "' (expected a path, file://, http://, https:// or s3://)");
}

std::string_view WithoutQuery(std::string_view uri) {
  if (!HasScheme(uri) || uri.starts_with("file:")) return uri;
  return uri.substr(0, std::min(uri.find_first_of("?#", uri.find("://") + 3), uri.size()));
}

// ---------------------------------------------------------------------------------------------
// References inside indexes and lists

namespace {

// "scheme://authority" of a remote URI, lower-cased, without userinfo: what must match.
std::string OriginOf(std::string_view uri) {
  size_t authority = uri.find("://") + 3;
  size_t end = std::min(uri.find_first_of("/?#", authority), uri.size());
  std::string_view host = uri.substr(authority, end - authority);
  if (size_t at = host.rfind('@'); at != std::string_view::npos) host.remove_prefix(at + 1);
  std::string origin(uri.substr(0, authority));
  origin += host;
  for (char& c : origin) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return origin;
}

// `path` ("/a/./b/../c") with its dot segments removed ("/a/c"), as a browser resolves a
// relative reference; nullopt when ".." climbs above the root.
std::optional<std::string> WithoutDotSegments(std::string_view path) {
  std::vector<std::string_view> kept;
  bool trailing_slash = false;
  for (size_t begin = 1; begin <= path.size();) {  // path starts with '/'
    size_t end = std::min(path.find('/', begin), path.size());
    std::string_view segment = path.substr(begin, end - begin);
    trailing_slash = end == path.size() && (segment == "." || segment == "..");
    if (segment == "..") {
      if (kept.empty()) return std::nullopt;
      kept.pop_back();
    } else if (segment != ".") {
      kept.push_back(segment);
    }
    begin = end + 1;
  }
  std::string out;
  for (std::string_view segment : kept) out += "/" + std::string(segment);
  if (out.empty() || trailing_slash) out += "/";
  return out;
}

}  // namespace

Result<std::string> ResolveReference(std::string_view base, std::string_view reference,
                                     bool allow_cross_origin) {
  if (reference.empty()) return InvalidArgument(std::string(base) + ": an empty file name");
  FERRY_ASSIGN_OR_RETURN(Uri where, ParseUri(base));
  if (where.scheme == Scheme::kFile) {
    size_t slash = base.rfind('/');
    std::string resolved = HasScheme(reference) || reference.front() == '/' ||
                                   slash == std::string_view::npos
                               ? std::string(reference)
                               : std::string(base.substr(0, slash + 1)) + std::string(reference);
    FERRY_RETURN_IF_ERROR(ParseUri(resolved).status());  // a name ferry could not open
    return resolved;
  }
  const std::string origin = OriginOf(base);
  std::string resolved;
  if (HasScheme(reference)) {
    resolved = std::string(reference);
  } else if (reference.starts_with("//")) {  // a network-path reference: another host
    resolved = std::string(base.substr(0, base.find("://") + 1)) + std::string(reference);
  } else if (reference.front() == '/' && where.scheme != Scheme::kS3) {
    resolved = origin + std::string(reference);
  } else {
    // The folder of `base`: up to the last '/' before any query or fragment.
    std::string_view path = base.substr(0, std::min(base.find_first_of("?#", origin.size()), base.size()));
    size_t slash = path.rfind('/');
    std::string_view folder = slash == std::string_view::npos || slash < origin.size()
                                  ? path
                                  : path.substr(0, slash);
    resolved = std::string(folder) + "/" +
               std::string(where.scheme == Scheme::kS3 && reference.front() == '/'
                               ? reference.substr(1)
                               : reference);
  }
  if (!allow_cross_origin && (!HasScheme(resolved) || OriginOf(resolved) != origin)) {
    return InvalidArgument(
        RedactUri(base) + ": refers to " + Quoted(RedactUri(reference)) +
        ", which is not on " + RedactUri(origin) +
        "; entries of a remote index or list must be relative names on the same scheme and host "
        "(set FERRY_ALLOW_CROSS_ORIGIN=1 to allow other hosts, if you trust the index)");
  }
  if (where.scheme == Scheme::kHttp || where.scheme == Scheme::kHttps) {
    // "a/../../x" must not reach past what the index names: resolve the dot segments here, as
    // a server would, so the URL read (and printed) is the one meant.
    size_t path = std::min(resolved.find('/', resolved.find("://") + 3), resolved.size());
    size_t end = std::min(resolved.find_first_of("?#", path), resolved.size());
    if (path < end) {
      std::optional<std::string> clean = WithoutDotSegments(std::string_view(resolved).substr(path, end - path));
      if (!clean) {
        return InvalidArgument(RedactUri(base) + ": refers to " + Quoted(RedactUri(reference)) +
                               ", whose '..' climbs above the root of " + RedactUri(origin));
      }
      resolved = resolved.substr(0, path) + *clean + resolved.substr(end);
    }
  }
  FERRY_RETURN_IF_ERROR(ParseUri(resolved).status());
  return resolved;
}

bool CrossOriginAllowedByEnvironment() {
  const char* value = std::getenv("FERRY_ALLOW_CROSS_ORIGIN");
  return value != nullptr && std::string_view(value) == "1";
}

// ---------------------------------------------------------------------------------------------
// Redaction

namespace {

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// `text` with %XX escapes decoded (a malformed escape is kept as it is).
std::string PercentDecoded(std::string_view text) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex(text[i + 1]) >= 0 && hex(text[i + 2]) >= 0) {
      out += static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// Query (or fragment) parameters whose value is a credential. Exact names, then fragments that
// mark one in any name (api_key, client_secret, X-Amz-Security-Token, session_id, ...); the
// name is matched percent-decoded, so X%2DAmz%2DSignature is a signature too.
bool IsSecretParameter(std::string_view name) {
  static constexpr std::string_view kExact[] = {"sig", "signature", "key", "code", "auth",
                                                "authorization", "pwd", "passwd", "sas", "sid",
                                                "awsaccesskeyid", "googleaccessid"};
  static constexpr std::string_view kFragments[] = {"token",      "secret",     "signature",
                                                    "password",   "credential", "apikey",
                                                    "api_key",    "api-key",    "access_key",
                                                    "accesskey",  "x-amz-",     "x-goog-",
                                                    "session",    "jwt",        "hmac",
                                                    "bearer",     "assertion"};
  std::string lower = Lower(PercentDecoded(name));
  for (std::string_view exact : kExact) {
    if (lower == exact) return true;
  }
  for (std::string_view fragment : kFragments) {
    if (lower.find(fragment) != std::string::npos) return true;
  }
  return false;
}

constexpr std::string_view kHidden = "***";

// Appends `params` ("a=1&token=T;b=2", a query or a fragment) with the values of secret
// parameters hidden. Both '&' and ';' separate parameters, as servers accept either.
void AppendRedactedParameters(std::string& out, std::string_view params) {
  for (size_t begin = 0; begin <= params.size();) {
    size_t end = std::min(params.find_first_of("&;", begin), params.size());
    std::string_view param = params.substr(begin, end - begin);
    size_t equals = param.find('=');
    if (equals != std::string_view::npos && IsSecretParameter(param.substr(0, equals))) {
      out += param.substr(0, equals + 1);
      out += kHidden;
    } else {
      out += param;
    }
    if (end < params.size()) out += params[end];
    begin = end + 1;
  }
}

}  // namespace

std::string RedactUri(std::string_view uri) {
  if (!HasScheme(uri)) return std::string(uri);
  size_t sep = uri.find("://");
  std::string out(uri.substr(0, sep + 3));
  size_t authority = sep + 3;
  size_t authority_end = std::min(uri.find_first_of("/?#", authority), uri.size());
  std::string_view host = uri.substr(authority, authority_end - authority);
  size_t at = host.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = host.substr(0, at);
    size_t colon = userinfo.find(':');
    // "user:password" keeps the user, which helps tell accounts apart; a lone userinfo is
    // usually a token (https://TOKEN@host), so all of it goes.
    out += colon == std::string_view::npos ? std::string(kHidden)
                                           : std::string(userinfo.substr(0, colon + 1)) + std::string(kHidden);
    host.remove_prefix(at);
  }
  out += host;
  // The query and the fragment both may carry credentials (OAuth's #access_token=...).
  size_t fragment = std::min(uri.find('#', authority_end), uri.size());
  size_t query = std::min(uri.find('?', authority_end), fragment);
  out += uri.substr(authority_end, std::min(query + 1, fragment) - authority_end);
  if (query < fragment) AppendRedactedParameters(out, uri.substr(query + 1, fragment - query - 1));
  if (fragment < uri.size()) {
    out += '#';
    AppendRedactedParameters(out, uri.substr(fragment + 1));
  }
  return out;
}

std::string RedactUris(std::string_view text) {
  std::string out;
  size_t copied = 0;  // text[0, copied) is in `out`
  for (size_t sep; (sep = text.find("://", copied)) != std::string_view::npos;) {
    size_t start = sep;
    while (start > copied && IsSchemeChar(text[start - 1])) --start;
    constexpr std::string_view kEnds = " \t\r\n'\"<>`";
    size_t end = std::min(text.find_first_of(kEnds, sep), text.size());
    // A quote followed by more of a URL is inside it (a token with a quote in it, or one that
    // a message escaped): the rest of the value must be hidden too.
    auto continues = [&](size_t at) {
      if (at >= text.size() || (text[at] != '\'' && text[at] != '"' && text[at] != '`')) return false;
      if (at + 1 >= text.size()) return false;
      unsigned char next = static_cast<unsigned char>(text[at + 1]);
      return std::isalnum(next) || std::string_view("-._~%+/=&;").find(static_cast<char>(next)) !=
                                       std::string_view::npos;
    };
    while (continues(end)) end = std::min(text.find_first_of(kEnds, end + 1), text.size());
    // "URL: message", "(URL)", "URL," : punctuation that ends a sentence is not part of the URL.
    while (end > sep + 3 && std::string_view(":,;.)").find(text[end - 1]) != std::string_view::npos) {
      --end;
    }
    out += text.substr(copied, start - copied);
    out += RedactUri(text.substr(start, end - start));
    copied = end;
  }
  out += text.substr(copied);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Brace expansion: parse the pattern into a tree of sequences and groups, count the results
// with saturating arithmetic (so "{0..999999999}{0..999999999}" fails fast instead of eating
// memory), then generate.

namespace {

constexpr int kMaxBraceDepth = 32;

struct Sequence;
struct Part {
  std::string literal;                 // used when alternatives is empty
  std::vector<Sequence> alternatives;  // a brace group
};
struct Sequence {
  std::vector<Part> parts;
};

class BraceParser {
 public:
  BraceParser(std::string_view pattern, size_t max_results)
      : pattern_(pattern), max_results_(max_results) {}

  Result<Sequence> ParseAll() {
    size_t pos = 0;
    FERRY_ASSIGN_OR_RETURN(Sequence seq, ParseSequence(pos, 0, /*in_group=*/false));
    return seq;
  }

 private:
  Status Error(size_t offset, std::string_view what) const {
    return InvalidArgument("brace pattern " + Quoted(pattern_) + ": " + std::string(what) +
                           " at offset " + std::to_string(offset));
  }

  // Parses until the end of the pattern, or (in a group) until a top-level ',' or '}', which is
  // left at `pos` for the caller.
  Result<Sequence> ParseSequence(size_t& pos, int depth, bool in_group) {
    Sequence seq;
    std::string literal;
    while (pos < pattern_.size()) {
      char c = pattern_[pos];
      if (in_group && (c == ',' || c == '}')) break;
      if (c == '}') return Error(pos, "unmatched '}'");
      if (c != '{') {
        literal += c;
        ++pos;
        continue;
      }
      if (!literal.empty()) seq.parts.push_back(Part{std::move(literal), {}});
      literal.clear();
      FERRY_ASSIGN_OR_RETURN(Part group, ParseGroup(pos, depth + 1));
      seq.parts.push_back(std::move(group));
    }
    if (!literal.empty()) seq.parts.push_back(Part{std::move(literal), {}});
    return seq;
  }

  // REQUIRES: pattern_[pos] == '{'. Leaves `pos` after the matching '}'.
  Result<Part> ParseGroup(size_t& pos, int depth) {
    size_t open = pos;
    if (depth > kMaxBraceDepth) return Error(open, "braces nested too deeply");
    ++pos;
    // A numeric range has no nested braces and no commas, so try it first.
    size_t close = pattern_.find('}', pos);
    if (close != std::string_view::npos) {
      std::string_view body = pattern_.substr(pos, close - pos);
      if (body.find_first_of("{,") == std::string_view::npos) {
        if (body.find("..") == std::string_view::npos) {
          return Error(open, "brace group '{" + std::string(body) +
                                 "}' has one alternative (expected {a,b} or {first..last})");
        }
        FERRY_ASSIGN_OR_RETURN(Part range, ParseRange(body, open));
        pos = close + 1;
        return range;
      }
    }
    Part group;
    while (true) {
      FERRY_ASSIGN_OR_RETURN(Sequence alternative, ParseSequence(pos, depth, /*in_group=*/true));
      group.alternatives.push_back(std::move(alternative));
      if (pos >= pattern_.size()) return Error(open, "unmatched '{'");
      if (pattern_[pos++] == '}') break;  // else ',' : next alternative
    }
    return group;
  }

  Result<Part> ParseRange(std::string_view body, size_t open) {
    size_t dots = body.find("..");
    std::string_view first = body.substr(0, dots);
    std::string_view rest = body.substr(dots + 2);
    std::string_view last = rest, step_text;
    if (size_t dots2 = rest.find(".."); dots2 != std::string_view::npos) {
      last = rest.substr(0, dots2);
      step_text = rest.substr(dots2 + 2);
    }
    uint64_t a = 0, b = 0, step = 1;
    if (!ParseDecimal(first, a) || !ParseDecimal(last, b) ||
        (!step_text.empty() && !ParseDecimal(step_text, step))) {
      return Error(open, "range '{" + std::string(body) +
                             "}' is not numeric (expected {first..last} or {first..last..step} "
                             "with up to 19 decimal digits)");
    }
    if (step == 0) return Error(open, "range step is 0");
    uint64_t span = a <= b ? b - a : a - b;
    // Every range is materialised while parsing, so bound their sum, not just each one.
    range_items_ += span / step + 1;
    if (span / step + 1 > max_results_ || range_items_ > max_results_) {
      return Error(open, "range '{" + std::string(body) + "}' expands to more than " +
                             std::to_string(max_results_) + " strings");
    }
    bool padded = (first.size() > 1 && first[0] == '0') || (last.size() > 1 && last[0] == '0');
    size_t width = padded ? std::max(first.size(), last.size()) : 0;
    Part group;
    for (uint64_t i = 0; i <= span / step; ++i) {
      uint64_t v = a <= b ? a + i * step : a - i * step;
      std::string text = std::to_string(v);
      if (text.size() < width) text.insert(0, width - text.size(), '0');
      group.alternatives.push_back(Sequence{{Part{std::move(text), {}}}});
    }
    return group;
  }

  std::string_view pattern_;
  size_t max_results_;
  uint64_t range_items_ = 0;
};

// Number of strings a sequence expands to, saturating at `cap`.
size_t CountResults(const Sequence& seq, size_t cap);
size_t CountResults(const Part& part, size_t cap) {
  if (part.alternatives.empty()) return 1;
  size_t total = 0;
  for (const Sequence& alternative : part.alternatives) {
    total = std::min(cap, total + CountResults(alternative, cap));
  }
  return total;
}
size_t CountResults(const Sequence& seq, size_t cap) {
  size_t total = 1;
  for (const Part& part : seq.parts) {
    size_t n = CountResults(part, cap);
    if (n == 0) return 0;
    total = total > cap / n ? cap : std::min(cap, total * n);
  }
  return total;
}

void Generate(const Sequence& seq, size_t index, std::string& prefix,
              std::vector<std::string>& out) {
  if (index == seq.parts.size()) {
    out.push_back(prefix);
    return;
  }
  const Part& part = seq.parts[index];
  size_t keep = prefix.size();
  if (part.alternatives.empty()) {
    prefix += part.literal;
    Generate(seq, index + 1, prefix, out);
  } else {
    for (const Sequence& alternative : part.alternatives) {
      // Expand the alternative on its own, then continue the outer sequence after each result.
      std::vector<std::string> inner;
      std::string empty;
      Generate(alternative, 0, empty, inner);
      for (const std::string& piece : inner) {
        prefix.resize(keep);
        prefix += piece;
        Generate(seq, index + 1, prefix, out);
      }
    }
  }
  prefix.resize(keep);
}

}  // namespace

Result<std::vector<std::string>> ExpandBraces(std::string_view pattern, size_t max_results) {
  BraceParser parser(pattern, max_results);
  FERRY_ASSIGN_OR_RETURN(Sequence seq, parser.ParseAll());
  if (CountResults(seq, max_results + 1) > max_results) {
    return InvalidArgument("brace pattern " + Quoted(pattern) + " expands to more than " +
                           std::to_string(max_results) + " strings");
  }
  std::vector<std::string> out;
  std::string prefix;
  Generate(seq, 0, prefix, out);
  return out;
}

}  // namespace ferry::io
