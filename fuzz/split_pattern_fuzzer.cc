// libFuzzer target: each hand-written split-pattern scanner against PCRE2 running its pattern.
//
// On every input, for every scanner: its pieces are non-empty and in order, and tile the valid
// UTF-8 of the input (only invalid bytes lie outside them). Where every code point of the input is
// one that PCRE2's tables (Unicode 14) and the scanners' (Unicode 16) classify alike, the pieces
// must also be PCRE2's, and so must a Find from the middle of the input. A failure traps.
//
// An input whose first byte is odd is a string of palette indices rather than raw text: byte n
// stands for kPalette[n % size], so mutations recombine the characters the patterns tell apart
// (each class, every whitespace kind, contraction letters and their case variants, invalid
// sequences) far more often than random bytes would.

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "text/pcre2_agreement.h"
#include "text/scanners.h"
#include "text/split_pattern.h"
#include "text/unicode_tables.h"

namespace {

using ferry::text::Match;
using ferry::text::Scanner;
using ferry::text::SplitPattern;

// clang-format off
constexpr std::string_view kPalette[] = {
    "a", "Z", "s", "S", "t", "T", "r", "e", "E", "v", "l", "L", "m", "d", "'", "'",
    "\u017f", "\u212a",  // (?i) folds them to s and k
    " ", " ", " ", "\t", "\n", "\r", "\r\n", "\v", "\f", "\u0085", "\u00a0", "\u2028", "\u3000",
    "\u180e", "\x1c", "\u200b",  // not White_Space, though PCRE2's or Python's \s has some
    "0", "7", "\u0663", "\u00b2", "\u2167",  // Nd, Nd (Arabic-Indic), No, Nl
    "\u0301", "\u0903", "\u20dd", "\u094d",  // Mn, Mc, Me, a virama (Mn)
    "\u00e9", "\u00c9", "\u01c5", "\u02b0", "\u4e00", "\u05d0", "\u0928",  // Ll Lu Lt Lm Lo Lo Lo
    ".", ",", "!", "/", "$", "_", "-",
    "\U0001F600", "\u200d", "\ufe0f", "\U0001F3FD",  // emoji, ZWJ, VS16, skin tone
    "\xff", "\x80", "\xc3", "\xe2\x82", "\xed\xa0\x80", "\xe0\x9f\xbf", "\xf4\x90\x80\x80"};
// clang-format on

using Pieces = std::vector<std::pair<size_t, size_t>>;

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

std::shared_ptr<const SplitPattern> MustCompileRegex(std::string_view pattern) {
  auto compiled = SplitPattern::CompileRegex(pattern);
  Check(compiled.ok());
  return *compiled;
}

Pieces RegexPieces(const SplitPattern& pattern, std::string_view text) {
  Pieces pieces;
  Match match;
  for (size_t pos = 0;; pos = match.end) {
    Check(pattern.Find(text, pos, &match).ok());
    if (match.begin == std::string_view::npos) return pieces;
    pieces.emplace_back(match.begin, match.end);
  }
}

// What the checks need, made once: the engines, a validity oracle, and which code points the two
// Unicode versions classify alike (text/pcre2_agreement.h, shared with scanners_test.cc).
struct Engines {
  std::vector<std::pair<const Scanner*, std::shared_ptr<const SplitPattern>>> pairs;
  std::shared_ptr<const SplitPattern> any_character = MustCompileRegex("(?s).");
  std::vector<bool> agrees = ferry::text::CodePointsWherePcre2Agrees();

  Engines() {
    for (const Scanner& scanner : ferry::text::Scanners()) {
      pairs.emplace_back(&scanner, MustCompileRegex(scanner.pattern));
    }
  }

  bool AgreesOn(std::string_view text) const { return ferry::text::Pcre2AgreesOn(agrees, text); }

  // No valid character starts in [begin, end).
  bool AllInvalid(std::string_view text, size_t begin, size_t end) const {
    if (begin == end) return true;
    Match match;
    Check(any_character->Find(text, begin, &match).ok());
    return match.begin == std::string_view::npos || match.begin >= end;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Engines engines;
  if (size == 0) return 0;
  std::string text;
  if (data[0] & 1) {
    for (size_t i = 1; i < size; ++i) text += kPalette[data[i] % std::size(kPalette)];
  } else {
    text.assign(reinterpret_cast<const char*>(data) + 1, size - 1);
  }
  bool agrees = engines.AgreesOn(text);

  for (const auto& [scanner, regex] : engines.pairs) {
    Pieces pieces;
    size_t covered = 0;
    for (size_t pos = 0;;) {
      Match match = scanner->find(text, pos);
      if (match.begin == std::string_view::npos) break;
      Check(match.begin >= pos && match.end > match.begin && match.end <= text.size());
      Check(engines.AllInvalid(text, covered, match.begin));
      pieces.emplace_back(match.begin, match.end);
      covered = pos = match.end;
    }
    Check(engines.AllInvalid(text, covered, text.size()));
    if (!agrees) continue;

    Check(pieces == RegexPieces(*regex, text));
    size_t middle = text.size() / 2;
    Match expected;
    Check(regex->Find(text, middle, &expected).ok());
    Match actual = scanner->find(text, middle);
    Check(actual.begin == expected.begin && actual.end == expected.end);
  }
  return 0;
}
