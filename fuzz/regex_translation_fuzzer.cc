// libFuzzer target: any split pattern through SplitPattern::CompileRegex, which rewrites the
// references' escapes (`\s`, `\w`, `\W` inside a class, `\b`, `[:word:]`, ...) before PCRE2 reads
// them, in both dialects.
//
// The input is a pattern, a NUL byte and a subject. A pattern is either refused with a status or
// compiles; a compiled one's matches over the subject are non-empty, in order and inside it, and
// a Find fails only with a status. Anything else (a crash, a sanitizer report, a match outside
// the subject) traps.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "text/split_pattern.h"

namespace {

using ferry::text::Match;
using ferry::text::RegexDialect;
using ferry::text::SplitPattern;

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;  // long subjects add time, not paths
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t nul = input.find('\0');
  std::string_view pattern = input.substr(0, nul);
  std::string_view subject = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
  for (RegexDialect dialect : {RegexDialect::kOniguruma, RegexDialect::kRustRegex}) {
    auto compiled = SplitPattern::CompileRegex(pattern, dialect);
    if (!compiled.ok()) continue;
    const SplitPattern& regex = **compiled;
    Match match;
    for (size_t pos = 0; pos <= subject.size(); pos = match.end) {
      if (!regex.Find(subject, pos, &match).ok()) break;  // a resource limit, said as a status
      if (match.begin == std::string_view::npos) break;
      Check(match.begin >= pos && match.end > match.begin && match.end <= subject.size());
    }
  }
  return 0;
}
