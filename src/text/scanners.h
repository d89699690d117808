// Hand-written scanners for the well-known split patterns.
//
// Each returns, for every subject and start position, exactly the match PCRE2 returns for its
// pattern (leftmost start, then the first alternative that matches there, with the regex's
// backtracking into greedy quantifiers and its look-ahead), with the Unicode 16.0.0 classes of
// unicode_tables.h. They read UTF-8 bytes directly (an ASCII byte costs one table load), allocate
// nothing, and run in time linear in the text on any input. scanners_test.cc and
// fuzz/split_pattern_fuzzer.cc check them piece for piece against PCRE2.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include "text/split_pattern.h"

namespace ferry::text {

struct Scanner {
  std::string_view name;     // e.g. "cl100k": SplitPattern::engine() says "scanner:cl100k"
  std::string_view pattern;  // the exact pattern text it stands for
  // SplitPattern::Find's contract, minus the Status: a scanner has no resource limit to hit.
  Match (*find)(std::string_view text, size_t pos);
};

// One scanner per textual variant of a well-known pattern: a family (e.g. GPT-2 as Hugging Face
// and as tiktoken spell it) may have several.
std::span<const Scanner> Scanners();

// The scanner whose pattern is byte for byte `pattern`, or nullptr.
const Scanner* FindScanner(std::string_view pattern);

}  // namespace ferry::text
