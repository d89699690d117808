// Split patterns: the regexes a pre-tokenizer cuts text into pieces with, before BPE.
//
// The well-known patterns (GPT-2, tiktoken's r50k/p50k, cl100k, o200k, Llama-3, Qwen2; the list
// is in scanners.cc) run as hand-written scanners that return exactly the regex's pieces, faster
// (tinyshakespeare, one core: 200-260 MB/s against PCRE2-JIT's 90-115 MB/s). Any other pattern
// runs on PCRE2 with JIT, which is also the reference the scanners are tested against
// (scanners_test.cc, fuzz/split_pattern_fuzzer.cc).
//
// Syntax: patterns come from tokenizer.json (Hugging Face tokenizers matches them with Oniguruma)
// and tiktoken (fancy-regex over Rust regex). PCRE2 is made to read them as those engines do:
//   - `\s` and `\S` mean the Unicode White_Space property, as in both references (PCRE2's own
//     `\s` also matches U+180E); `\v` is U+000B and `\h`/`\H` are (not) ASCII hex digits, as in
//     both references (PCRE2 reads them as vertical/horizontal space).
//   - `(?i)` uses Unicode simple case folding: `(?i:'s)` matches `'S` and `'ſ` (U+017F).
//   - Oniguruma (tokenizer.json) reads Ruby syntax: `^` and `$` match at every line's start and
//     end, `(?m)` is "dot matches newline" (PCRE2's (?s)), `{,n}` is `{0,n}`. Rust regex
//     (tiktoken): `^`/`$` only at the text's ends unless (?m).
//   - `x{n,m}+` is possessive, as in fancy-regex. Oniguruma (Ruby syntax) reads it as
//     `(?:x{n,m})+`, so tiktoken's cl100k pattern (`\p{N}{1,3}+`) in a tokenizer.json would
//     split "12345" whole in tokenizers and as "123", "45" here.
//   - `\w`, `\W`, `\b`, `\B` and `[:word:]` use the dialect's word characters (RegexDialect),
//     not PCRE2's letters, numbers and `_`, which leave out marks.
// Known differences that remain for arbitrary patterns: Oniguruma's multi-character case folding
// ((?i)ss matching ß) is not done; class set operations (`&&`; in Rust regex also `--`, `~~`)
// are refused (kUnsupported); POSIX classes other than [:word:] keep PCRE2's Unicode meaning
// (Oniguruma's [:alpha:] is Alphabetic, Rust regex's POSIX classes are ASCII). PCRE2 10.42's
// tables are Unicode 14 (the scanners': 16, as in the references), so code points assigned since
// (9,465 word characters among them) are classified differently.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "ferry/status.h"

namespace ferry::text {

// One match of a split pattern: bytes [begin, end) of the subject. begin == npos: no match.
struct Match {
  size_t begin = std::string_view::npos;
  size_t end = std::string_view::npos;
};

// Whose regex syntax a pattern is read in, where the two references differ: tokenizer.json's
// patterns run on Oniguruma, tiktoken's on fancy-regex over Rust regex. Today only the word
// characters differ: Oniguruma counts U+00B2, U+00B3, U+00B9 and U+00BC..U+00BE for a `\w`, `\W`
// or `\b` outside a class (not inside one), Rust regex U+200C and U+200D everywhere.
enum class RegexDialect { kOniguruma, kRustRegex };

// A compiled pre-tokenizer split regex (the regexes tokenizer.json and tiktoken ship, in
// Oniguruma / fancy-regex syntax). Immutable and thread-safe: Find may run on many threads at once.
class SplitPattern {
 public:
  virtual ~SplitPattern() = default;

  // A pattern equal (byte for byte) to a well-known one gets its hand-written scanner; any other
  // is compiled by PCRE2 with JIT. Errors: InvalidArgument naming the pattern and PCRE2's
  // message + offset.
  static Result<std::shared_ptr<const SplitPattern>> Compile(
      std::string_view pattern, RegexDialect dialect = RegexDialect::kOniguruma);

  // Always PCRE2: the reference the scanners are tested against, and the engine for other
  // patterns.
  static Result<std::shared_ptr<const SplitPattern>> CompileRegex(
      std::string_view pattern, RegexDialect dialect = RegexDialect::kOniguruma);

  // Finds the leftmost match starting at or after `pos` in `text`; the whole of `text` is the
  // subject, so look-arounds and `$` see its bounds. Invalid UTF-8 bytes are never part of a match
  // (PCRE2_MATCH_INVALID_UTF semantics). Matches are never empty: tokenizers cuts text at empty
  // matches, which this interface cannot express, so a pattern that can match the empty string is
  // refused when compiled, or (through a look-around) is kUnsupported when it does.
  // Errors only on engine resource limits (e.g. JIT stack), with a clear message.
  //
  // Each thread that calls Find on a PCRE2 pattern keeps a match block and a JIT stack (up to
  // 8 MiB of address space, committed as used) until it exits; scanners keep nothing.
  virtual Status Find(std::string_view text, size_t pos, Match* match) const = 0;

  const std::string& pattern() const { return pattern_; }

  // "pcre2-jit" or "scanner:<name>", e.g. for error messages, benchmarks and the fingerprint.
  // ("pcre2" where the platform has no JIT: same matches, slower.)
  virtual std::string_view engine() const = 0;

  // Unicode version of the character tables this engine classifies with, e.g. "16.0.0" / "14.0.0".
  virtual std::string_view unicode_version() const = 0;

 protected:
  explicit SplitPattern(std::string pattern) : pattern_(std::move(pattern)) {}

 private:
  std::string pattern_;
};

}  // namespace ferry::text
