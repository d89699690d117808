// Test and fuzz support: where PCRE2 and the scanners may be compared.
//
// PCRE2 10.42 classifies with Unicode 14 tables, the scanners with Unicode 16: the two disagree
// on code points that changed in between (new letters, digits and marks of Unicode 15 and 16).
// Comparing their pieces is meaningful only on text whose code points they classify alike.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "text/split_pattern.h"
#include "text/unicode.h"
#include "text/unicode_tables.h"

namespace ferry::text {

// agrees[cp] for every code point: PCRE2 and the scanner tables give it the same category. Found
// by running each class as a PCRE2 pattern over one string holding every code point (about a
// second: compute it once). Surrogates never agree (they are not characters).
inline std::vector<bool> CodePointsWherePcre2Agrees() {
  using unicode::Category;
  std::string all;
  for (char32_t cp = 0; cp < 0x110000; ++cp) {
    if (cp < 0xD800 || cp > 0xDFFF) AppendUtf8(cp, all);
  }
  std::vector<Category> pcre2(0x110000, Category::kOther);
  const std::pair<std::string_view, Category> classes[] = {
      {R"(\s)", Category::kWhiteSpace}, {R"(\p{N})", Category::kNumber},
      {R"(\p{M})", Category::kMark},    {R"(\p{Lu})", Category::kLu},
      {R"(\p{Ll})", Category::kLl},     {R"(\p{Lt})", Category::kLt},
      {R"(\p{Lm})", Category::kLm},     {R"(\p{Lo})", Category::kLo},
  };
  for (const auto& [pattern, category] : classes) {
    auto compiled = SplitPattern::CompileRegex(pattern);
    if (!compiled.ok()) return std::vector<bool>(0x110000, false);  // nothing can be compared
    Match match;
    for (size_t pos = 0; (*compiled)->Find(all, pos, &match).ok() &&
                         match.begin != std::string_view::npos;
         pos = match.end) {
      char32_t cp = 0;
      DecodeUtf8(all, match.begin, cp);
      pcre2[cp] = category;
    }
  }
  std::vector<bool> agrees(0x110000, false);
  for (char32_t cp = 0; cp < 0x110000; ++cp) {
    agrees[cp] = (cp < 0xD800 || cp > 0xDFFF) && pcre2[cp] == unicode::CategoryOf(cp);
  }
  return agrees;
}

// Whether every valid character of `text` is one both classify alike (invalid bytes are no
// character).
inline bool Pcre2AgreesOn(const std::vector<bool>& agrees, std::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    char32_t cp = 0;
    size_t length = DecodeUtf8(text, pos, cp);
    if (length == 0) {
      ++pos;
      continue;
    }
    if (!agrees[cp]) return false;
    pos += length;
  }
  return true;
}

}  // namespace ferry::text
