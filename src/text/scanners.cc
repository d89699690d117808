// The scanners. Each Find* below is its pattern's alternatives in order, tried at the first valid
// character at or after `pos` (every valid character starts a match of every pattern here, so
// that is the leftmost start). Comments quote the alternative each branch stands for; the
// derivations of what backtracking does are written where the result is not obvious.
//
// Notation: L = \p{L}, N = \p{N}, \s = White_Space, O = [^\s\p{L}\p{N}] (punctuation, symbols,
// marks, ...). A "run" is a maximal sequence of characters of one class. Invalid UTF-8 bytes
// belong to no class, so runs stop at them and nothing ever matches them, as under
// PCRE2_MATCH_INVALID_UTF; `(?!\S)` holds before one, as it does at the end of the text.

#include "text/scanners.h"

#include <algorithm>
#include <cstdint>

#include "text/unicode_tables.h"

namespace ferry::text {
namespace {

using unicode::Category;

constexpr uint32_t Bit(Category category) { return 1u << static_cast<unsigned>(category); }

constexpr uint32_t kLetter = Bit(Category::kLu) | Bit(Category::kLl) | Bit(Category::kLt) |
                             Bit(Category::kLm) | Bit(Category::kLo);
constexpr uint32_t kNumber = Bit(Category::kNumber);
constexpr uint32_t kSpace = Bit(Category::kWhiteSpace);
constexpr uint32_t kOther = Bit(Category::kOther) | Bit(Category::kMark);  // O
// o200k's two letter classes: [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] and [\p{Ll}\p{Lm}\p{Lo}\p{M}].
constexpr uint32_t kCased = Bit(Category::kLu) | Bit(Category::kLt);
constexpr uint32_t kUncased = Bit(Category::kLm) | Bit(Category::kLo) | Bit(Category::kMark);
constexpr uint32_t kUpperish = kCased | kUncased;
constexpr uint32_t kLowerish = Bit(Category::kLl) | kUncased;

constexpr size_t kNone = std::string_view::npos;

// A character of the subject: its class bit (0 for an invalid byte) and its length in bytes.
struct Char {
  uint32_t bit;
  size_t size;
};

// The subject as UTF-8 bytes, decoded on demand. Decoding is strict (shortest form, no
// surrogates, at most U+10FFFF), as PCRE2's validity check; a byte that does not start a valid
// sequence is one invalid character, so a valid character always starts where PCRE2 sees one.
class Subject {
 public:
  explicit Subject(std::string_view text)
      : bytes_(reinterpret_cast<const uint8_t*>(text.data())), size_(text.size()) {}

  size_t size() const { return size_; }
  uint8_t byte(size_t i) const { return bytes_[i]; }

  // REQUIRES: i < size().
  Char At(size_t i) const {
    uint8_t lead = bytes_[i];
    if (lead < 0x80) return {Bit(unicode::AsciiCategory(lead)), 1};
    return AtMultiByte(i);
  }

  // The class bit of the character at i; 0 at the end and on invalid bytes.
  uint32_t BitAt(size_t i) const { return i < size_ ? At(i).bit : 0; }

  // The end of the run of `mask` characters that starts at i.
  size_t RunEnd(size_t i, uint32_t mask) const {
    while (i < size_) {
      Char c = At(i);
      if (!(c.bit & mask)) break;
      i += c.size;
    }
    return i;
  }

  // The first valid character at or after i, or size().
  size_t SkipInvalid(size_t i) const {
    while (i < size_ && At(i).bit == 0) ++i;
    return i;
  }

  // The end of [\r\n]* (plus '/' where `slash`) from i.
  size_t NewlinesEnd(size_t i, bool slash) const {
    while (i < size_ && (bytes_[i] == '\r' || bytes_[i] == '\n' || (slash && bytes_[i] == '/'))) {
      ++i;
    }
    return i;
  }

 private:
  Char AtMultiByte(size_t i) const {
    constexpr Char kInvalid = {0, 1};
    const uint8_t* p = bytes_ + i;
    size_t left = size_ - i;
    auto continuation = [&](size_t k) { return k < left && (p[k] & 0xC0) == 0x80; };
    uint8_t lead = p[0];
    char32_t cp;
    size_t size;
    if (lead < 0xC2) return kInvalid;  // a continuation byte, or an overlong 2-byte lead
    if (lead < 0xE0) {
      if (!continuation(1)) return kInvalid;
      cp = (char32_t{lead} & 0x1F) << 6 | (p[1] & 0x3F);
      size = 2;
    } else if (lead < 0xF0) {
      if (!continuation(1) || !continuation(2)) return kInvalid;
      cp = (char32_t{lead} & 0x0F) << 12 | (p[1] & 0x3F) << 6 | (p[2] & 0x3F);
      if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) return kInvalid;
      size = 3;
    } else if (lead < 0xF5) {
      if (!continuation(1) || !continuation(2) || !continuation(3)) return kInvalid;
      cp = (char32_t{lead} & 0x07) << 18 | (p[1] & 0x3F) << 12 | (p[2] & 0x3F) << 6 | (p[3] & 0x3F);
      if (cp < 0x10000 || cp > 0x10FFFF) return kInvalid;
      size = 4;
    } else {
      return kInvalid;
    }
    return {Bit(unicode::CategoryOf(cp)), size};
  }

  const uint8_t* bytes_;
  size_t size_;
};

// `'s|'t|'re|'ve|'m|'ll|'d` at i, where the subject has an apostrophe: its length, or 0.
// With `ignore_case`, as under (?i): Unicode simple case folding, as Oniguruma, Rust regex and
// PCRE2 apply it. Besides the ASCII upper case letters, one code point folds to a letter used
// here: U+017F LATIN SMALL LETTER LONG S (UTF-8 C5 BF) folds to 's'. (Checked over all code
// points against tokenizers and tiktoken: no other character makes any of these match.)
size_t Contraction(const Subject& s, size_t i, bool ignore_case) {
  auto at = [&](size_t k) -> int {
    if (k >= s.size()) return -1;
    uint8_t b = s.byte(k);
    return ignore_case && b >= 'A' && b <= 'Z' ? b + ('a' - 'A') : b;
  };
  switch (at(i + 1)) {
    case 's':
    case 't':
    case 'm':
    case 'd':
      return 2;
    case 'r':
    case 'v':
      return at(i + 2) == 'e' ? 3 : 0;
    case 'l':
      return at(i + 2) == 'l' ? 3 : 0;
    case 0xC5:
      return ignore_case && at(i + 2) == 0xBF ? 3 : 0;
    default:
      return 0;
  }
}

// The whitespace run that starts at i (a \s character), and what the patterns ask of it.
struct WhitespaceRun {
  size_t end;          // the end of the run
  size_t last;         // where its last character starts
  size_t newline_end;  // just after its last \r or \n; kNone if it has none
};

WhitespaceRun ScanWhitespace(const Subject& s, size_t i) {
  WhitespaceRun run = {i, i, kNone};
  while (run.end < s.size()) {
    Char c = s.At(run.end);
    if (c.bit != kSpace) break;
    run.last = run.end;
    run.end += c.size;
    if (s.byte(run.last) == '\r' || s.byte(run.last) == '\n') run.newline_end = run.end;
  }
  return run;
}

// `\s+(?!\S)|\s+` at the start i of `run`. \s+ first takes the whole run; the look-ahead holds if
// the run ends the text or an invalid byte follows (\S matches neither). Otherwise the next
// character is \S, and backtracking one character leaves the run's last character (a \s) to
// look at, so the match is the run minus its last character, if that is not empty. A run of one
// character before \S falls to the second alternative, which takes it.
size_t LookaheadWhitespaceEnd(const Subject& s, size_t i, const WhitespaceRun& run) {
  bool followed_by_non_space = run.end < s.size() && s.At(run.end).bit != 0;
  return followed_by_non_space && run.last > i ? run.last : run.end;
}

// GPT-2 (Hugging Face's ByteLevel, OpenAI's encoder.py):
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// tiktoken's r50k/p50k spelling gives the same pieces: its `\s++$` takes a run that ends the
// text, as `\s+(?!\S)` does, and its final `\s` is reached only for a one-character run.
Match FindGpt2(std::string_view text, size_t pos) {
  Subject s(text);
  size_t i = s.SkipInvalid(pos);
  if (i >= s.size()) return {};
  if (s.byte(i) == '\'') {
    if (size_t length = Contraction(s, i, /*ignore_case=*/false)) return {i, i + length};
  }
  Char c = s.At(i);
  // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: the space joins a run of the next character's
  // class. Without a space, each is a run of the character's own class.
  size_t run_start = i;
  uint32_t run_class = c.bit;
  if (s.byte(i) == ' ') {
    uint32_t next = s.BitAt(i + 1);
    if (next & (kLetter | kNumber | kOther)) {
      run_start = i + 1;
      run_class = next;
    }
  }
  if (run_class & kLetter) return {i, s.RunEnd(run_start, kLetter)};
  if (run_class & kNumber) return {i, s.RunEnd(run_start, kNumber)};
  if (run_class & kOther) return {i, s.RunEnd(run_start, kOther)};
  return {i, LookaheadWhitespaceEnd(s, i, ScanWhitespace(s, i))};
}

// The cl100k family: Llama-3 (cl100k's original spelling, and the Split of Llama-3-style
// tokenizer.json files), tiktoken's cl100k (possessive), Qwen2 (one digit per piece):
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//   \s*[\r\n]+|\s+(?!\S)|\s+
// tiktoken's `'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|
// ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s` differs in one place only: `\s++$`
// takes a whitespace run that ends the text whole, where Llama-3 cuts it after its last newline.
// Its possessive quantifiers change nothing: each is followed by something its class excludes
// (a letter after [^\r\n\p{L}\p{N}], a non-letter after \p{L}++, ...), so backtracking into it
// could never have succeeded. `\s*[\r\n]` and `\s*[\r\n]+` match the same: \s* gives back
// characters from the end of the run until [\r\n] can match, i.e. up to the run's last newline,
// and [\r\n]+ can take no more after it.
template <size_t kMaxDigits, bool kWholeRunAtEnd>
Match FindCl100kFamily(std::string_view text, size_t pos) {
  Subject s(text);
  size_t i = s.SkipInvalid(pos);
  if (i >= s.size()) return {};
  uint8_t b = s.byte(i);
  if (b == '\'') {
    if (size_t length = Contraction(s, i, /*ignore_case=*/true)) return {i, i + length};
  }
  Char c = s.At(i);
  // `[^\r\n\p{L}\p{N}]?\p{L}+`
  if (c.bit & kLetter) return {i, s.RunEnd(i, kLetter)};
  bool prefix = !(c.bit & kNumber) && b != '\r' && b != '\n';
  if (prefix && (s.BitAt(i + c.size) & kLetter)) return {i, s.RunEnd(i + c.size, kLetter)};
  // `\p{N}{1,3}` (or `\p{N}`)
  if (c.bit & kNumber) {
    size_t end = i;
    for (size_t digits = 0; digits < kMaxDigits && (s.BitAt(end) & kNumber); ++digits) {
      end += s.At(end).size;
    }
    return {i, end};
  }
  // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
  if (b == ' ' && (s.BitAt(i + 1) & kOther)) {
    return {i, s.NewlinesEnd(s.RunEnd(i + 1, kOther), false)};
  }
  if (c.bit & kOther) return {i, s.NewlinesEnd(s.RunEnd(i, kOther), false)};
  // Whitespace.
  WhitespaceRun run = ScanWhitespace(s, i);
  if (kWholeRunAtEnd && run.end == s.size()) return {i, run.end};  // `\s++$`
  if (run.newline_end != kNone) return {i, run.newline_end};       // `\s*[\r\n]+`
  return {i, LookaheadWhitespaceEnd(s, i, run)};                   // `\s+(?!\S)|\s+`
}

// o200k's words, below: U = [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}], D = [\p{Ll}\p{Lm}\p{Lo}\p{M}].
// Lm, Lo and M are in both; Lu and Lt only in U; Ll only in D.

// `U*D+` from i: the end of its match, or kNone. U* first takes the whole U run [i, u); then D+
// needs a D at the point U* gave back to. At u the character is not in U, so it is a D only if it
// is Ll, and then D+ takes the D run from u. Otherwise U* gives back characters from the end of
// its run until the one given back is a D (an Lm, Lo or M); D+ takes that one and no more, since
// the character after it is either not in U and not Ll (at u), or an Lu/Lt (inside the run,
// after the last D).
size_t LowerWordEnd(const Subject& s, size_t i) {
  size_t u = i;
  size_t last_uncased_end = kNone;
  while (u < s.size()) {
    Char c = s.At(u);
    if (!(c.bit & kUpperish)) break;
    u += c.size;
    if (c.bit & kUncased) last_uncased_end = u;
  }
  if (s.BitAt(u) == Bit(Category::kLl)) return s.RunEnd(u, kLowerish);
  return last_uncased_end;
}

// `U+D*` from i: the end of its match, or kNone. U+ takes the U run; D* then takes the D run
// after it, and nothing after can fail, so no backtracking.
size_t UpperWordEnd(const Subject& s, size_t i) {
  size_t u = s.RunEnd(i, kUpperish);
  return u == i ? kNone : s.RunEnd(u, kLowerish);
}

// o200k:
//   [^\r\n\p{L}\p{N}]?U*D+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
//   [^\r\n\p{L}\p{N}]?U+D*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
//   \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
// The optional prefix is greedy but not possessive, and a mark is both a possible prefix and a U
// and D: each word alternative is tried with the prefix taken, then without it.
Match FindO200k(std::string_view text, size_t pos) {
  Subject s(text);
  size_t i = s.SkipInvalid(pos);
  if (i >= s.size()) return {};
  uint8_t b = s.byte(i);
  Char c = s.At(i);
  bool prefix = !(c.bit & (kLetter | kNumber)) && b != '\r' && b != '\n';
  auto with_contraction = [&](size_t end) {
    return end < s.size() && s.byte(end) == '\'' ? end + Contraction(s, end, /*ignore_case=*/true) : end;
  };
  for (auto word_end : {LowerWordEnd, UpperWordEnd}) {
    size_t end = prefix ? word_end(s, i + c.size) : kNone;
    if (end == kNone) end = word_end(s, i);
    if (end != kNone) return {i, with_contraction(end)};
  }
  // `\p{N}{1,3}`
  if (c.bit & kNumber) {
    size_t end = i;
    for (int digits = 0; digits < 3 && (s.BitAt(end) & kNumber); ++digits) end += s.At(end).size;
    return {i, end};
  }
  // ` ?[^\s\p{L}\p{N}]+[\r\n/]*`
  if (b == ' ' && (s.BitAt(i + 1) & kOther)) {
    return {i, s.NewlinesEnd(s.RunEnd(i + 1, kOther), true)};
  }
  if (c.bit & kOther) return {i, s.NewlinesEnd(s.RunEnd(i, kOther), true)};
  WhitespaceRun run = ScanWhitespace(s, i);
  if (run.newline_end != kNone) return {i, run.newline_end};  // `\s*[\r\n]+`
  return {i, LookaheadWhitespaceEnd(s, i, run)};              // `\s+(?!\S)|\s+`
}

constexpr Scanner kScanners[] = {
    {"gpt2", R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)",
     FindGpt2},
    // The spelling of tiktoken's gpt2 encoding before it switched to the r50k form below.
    {"gpt2-bracketed",
     R"('s|'t|'re|'ve|'m|'ll|'d| ?[\p{L}]+| ?[\p{N}]+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", FindGpt2},
    {"r50k", R"('(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s)",
     FindGpt2},
    {"cl100k",
     R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s)",
     FindCl100kFamily<3, true>},
    {"llama3",
     R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     FindCl100kFamily<3, false>},
    {"qwen2",
     R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     FindCl100kFamily<1, false>},
    {"o200k",
     R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     FindO200k},
};

}  // namespace

std::span<const Scanner> Scanners() { return kScanners; }

const Scanner* FindScanner(std::string_view pattern) {
  auto it = std::find_if(std::begin(kScanners), std::end(kScanners),
                         [&](const Scanner& scanner) { return scanner.pattern == pattern; });
  return it == std::end(kScanners) ? nullptr : &*it;
}

}  // namespace ferry::text
