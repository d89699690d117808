// SplitPattern's two engines: the hand-written scanners (scanners.h) and PCRE2 with JIT.

#include "text/split_pattern.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <string>
#include <vector>

#include "base/strings.h"
#include "text/scanners.h"
#include "text/unicode_tables.h"

namespace ferry::text {
namespace {

std::string Pcre2Message(int code) {
  PCRE2_UCHAR buffer[256];
  int length = pcre2_get_error_message(code, buffer, sizeof(buffer));
  if (length < 0) return "PCRE2 error " + std::to_string(code);
  return std::string(reinterpret_cast<const char*>(buffer), static_cast<size_t>(length));
}

// A pattern rewritten for PCRE2, and where each of its bytes came from in the original (for
// error offsets).
struct Translated {
  std::string text;
  std::vector<size_t> source_offset;
  // Why the pattern is refused (syntax PCRE2 would read differently): empty, or a reason.
  std::string refused;

  void Append(std::string_view piece, size_t source) {
    text.append(piece);
    source_offset.insert(source_offset.end(), piece.size(), source);
  }
  void Append(const Translated& other) {
    text.append(other.text);
    source_offset.insert(source_offset.end(), other.source_offset.begin(), other.source_offset.end());
  }
};

// `\w` as each reference defines it, as class items PCRE2 10.42 knows (PCRE2's own `\w` is
// letters, numbers and `_`: it leaves out the marks, so Devanagari words fall apart). Both are
// Alphabetic, marks, Nd and Pc. Rust regex (UTS #18) adds Join_Control. Oniguruma adds, for a
// `\w`, `\W` or `\b` outside a class only, the six Latin-1 digits and fractions (superscripts
// 1-3, 1/4, 1/2, 3/4) its Latin-1 ctype table counts as word characters; inside a class, and in
// [:word:], it reads its Unicode table, which has none of them. Checked code point by code point
// against tokenizers 0.23.3 (Split on Oniguruma, Whitespace on Rust regex): equal on every code
// point Unicode 14 assigns.
std::string_view WordItems(RegexDialect dialect, bool in_class) {
  if (dialect == RegexDialect::kRustRegex) return R"(\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control})";
  return in_class ? R"(\p{Alphabetic}\p{M}\p{Nd}\p{Pc})"
                  : R"(\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{B2}\x{B3}\x{B9}\x{BC}-\x{BE})";
}

// Rewrites the escapes whose meaning in PCRE2 differs from the dialect's; see split_pattern.h.
// Inside a character class `\h` has to become a POSIX class item rather than a bracketed class,
// so classes are tracked: `[` opens one unless escaped or inside one, `]` closes it unless it
// comes first (`[]...]`, `[^]...]`), and `[:name:]` inside is a POSIX item. Escapes are copied
// whole, so `\\s` stays a backslash and an `s`.
//
// A class that holds `\W` (or `[:^word:]`) cannot stay a class, as PCRE2 10.42 has no union with
// a negated set inside one: `[X\W]` becomes `(?:[^w]|[X])` and `[^X\W]` `(?:(?![X])[w])`, where
// w is the word items. Both match one character, as the class did.
Translated TranslateEscapes(std::string_view pattern, RegexDialect dialect) {
  const std::string word(WordItems(dialect, /*in_class=*/true));
  const std::string word_class = "[" + word + "]";
  const std::string not_word_class = "[^" + word + "]";
  const std::string bare_word = "[" + std::string(WordItems(dialect, /*in_class=*/false)) + "]";
  const std::string bare_not_word = "[^" + bare_word.substr(1);
  Translated out;
  // The class being read: whether it is negated and holds a \W, and its items, translated.
  bool in_class = false, negated = false, not_word = false;
  size_t class_open = 0, class_start = 0;  // class_start: just after `[` or `[^`
  Translated items;
  auto append = [&](std::string_view piece, size_t source) {
    (in_class ? items : out).Append(piece, source);
  };
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      switch (pattern[i + 1]) {
        case 's':
          append("\\p{White_Space}", i);
          break;
        case 'S':
          append("\\P{White_Space}", i);
          break;
        case 'v':
          append("\\x{0B}", i);
          break;
        case 'h':
          append(in_class ? "[:xdigit:]" : "[[:xdigit:]]", i);
          break;
        case 'H':
          append(in_class ? "[:^xdigit:]" : "[[:^xdigit:]]", i);
          break;
        case 'w':
          append(in_class ? word : bare_word, i);
          break;
        case 'W':
          if (in_class) {
            not_word = true;
          } else {
            append(bare_not_word, i);
          }
          break;
        case 'b':  // inside a class, a backspace
          append(in_class ? "\\b"
                          : "(?:(?<=" + bare_word + ")(?!" + bare_word + ")|(?<!" + bare_word +
                                ")(?=" + bare_word + "))",
                 i);
          break;
        case 'B':
          append(in_class ? "\\B"
                          : "(?:(?<=" + bare_word + ")(?=" + bare_word + ")|(?<!" + bare_word +
                                ")(?!" + bare_word + "))",
                 i);
          break;
        default:
          append(pattern.substr(i, 2), i);
      }
      ++i;
      continue;
    }
    if (!in_class) {
      if (c == '[') {
        in_class = true;
        negated = i + 1 < pattern.size() && pattern[i + 1] == '^';
        not_word = false;
        items = Translated();
        class_open = i;
        class_start = i + (negated ? 2 : 1);
        i = class_start - 1;
      } else if (dialect == RegexDialect::kOniguruma && c == '(' && pattern.substr(i, 2) == "(?") {
        // Ruby's (?m) is "dot matches newline": PCRE2's (?s). (Its ^ and $ are always per line.)
        size_t k = i + 2;
        while (k < pattern.size() && std::string_view("imx-").find(pattern[k]) != std::string_view::npos) ++k;
        const bool flags = k < pattern.size() && (pattern[k] == ')' || pattern[k] == ':') && k > i + 2;
        for (size_t f = i; f < (flags ? k : i + 1); ++f) {
          out.Append(pattern[f] == 'm' && f >= i + 2 ? "s" : pattern.substr(f, 1), f);
        }
        i = (flags ? k : i + 1) - 1;
      } else if (dialect == RegexDialect::kOniguruma && c == '{' && pattern.substr(i, 2) == "{,") {
        out.Append("{0,", i);  // Ruby's {,n} is {0,n}; PCRE2 10.42 reads it as text
        ++i;
      } else {
        out.Append(pattern.substr(i, 1), i);
      }
      continue;
    }
    if (c == '[' && i + 1 < pattern.size() && pattern[i + 1] == ':') {
      size_t close = pattern.find(":]", i + 2);
      if (close != std::string_view::npos) {
        std::string_view name = pattern.substr(i + 2, close - i - 2);
        if (name == "word") {
          items.Append(word, i);
        } else if (name == "^word") {
          not_word = true;
        } else {
          items.Append(pattern.substr(i, close + 2 - i), i);
        }
        i = close + 1;
        continue;
      }
    }
    const std::string_view two = pattern.substr(i, 2);
    if (out.refused.empty() &&
        (two == "&&" || (dialect == RegexDialect::kRustRegex && (two == "--" || two == "~~")))) {
      out.refused = "class set operation \"" + std::string(two) + "\" at offset " + std::to_string(i) +
                    " (intersection, difference or symmetric difference) is not supported";
    }
    if (c != ']' || i == class_start) {
      items.Append(pattern.substr(i, 1), i);
      continue;
    }
    in_class = false;
    if (!not_word) {
      out.Append(negated ? "[^" : "[", class_open);
      out.Append(items);
      out.Append("]", i);
    } else if (items.text.empty()) {
      out.Append(negated ? word_class : not_word_class, class_open);
    } else {
      // A leading `^` would negate the rebuilt class, and a leading `]` is still a literal.
      if (items.text[0] == '^') {
        items.text.insert(0, "\\");
        items.source_offset.insert(items.source_offset.begin(), items.source_offset[0]);
      }
      out.Append(negated ? "(?:(?![" : "(?:" + not_word_class + "|[", class_open);
      out.Append(items);
      out.Append(negated ? "])" + word_class + ")" : "])", i);
    }
  }
  if (in_class) {  // unterminated: left for PCRE2 to report, at the same offset
    out.Append(negated ? "[^" : "[", class_open);
    out.Append(items);
  }
  out.source_offset.push_back(pattern.size());  // errors at the very end
  return out;
}

// Per-thread PCRE2 state, shared by every pattern the thread matches: a match block with one
// offset pair (only the whole match is read; PCRE2 fills what fits whatever the pattern's
// groups), and a match context that hands JIT code a stack of its own. Made on the thread's first
// Find, so the hot path allocates nothing.
class ThreadMatchState {
 public:
  // JIT code needs stack for backtracking points it cannot collapse (e.g. each iteration of a
  // repeated group); simple repeats like \s+ or \p{L}+ use none (a 1 MiB run of either matches
  // on PCRE2's default 32 KiB). 8 MiB covers deep patterns on long pieces; the memory is
  // reserved, and committed only as used. Past it, the interpreter, whose frames are on the heap,
  // takes over.
  static constexpr size_t kJitStackStart = 32 << 10;
  static constexpr size_t kJitStackMax = 8 << 20;

  ThreadMatchState()
      : match_data_(pcre2_match_data_create(1, nullptr)),
        context_(pcre2_match_context_create(nullptr)),
        jit_stack_(pcre2_jit_stack_create(kJitStackStart, kJitStackMax, nullptr)) {
    if (context_ && jit_stack_) pcre2_jit_stack_assign(context_, nullptr, jit_stack_);
  }
  ~ThreadMatchState() {
    pcre2_jit_stack_free(jit_stack_);
    pcre2_match_context_free(context_);
    pcre2_match_data_free(match_data_);
  }
  ThreadMatchState(const ThreadMatchState&) = delete;
  ThreadMatchState& operator=(const ThreadMatchState&) = delete;

  bool ok() const { return match_data_ && context_ && jit_stack_; }
  pcre2_match_data* match_data() const { return match_data_; }
  pcre2_match_context* context() const { return context_; }

 private:
  pcre2_match_data* match_data_;
  pcre2_match_context* context_;
  pcre2_jit_stack* jit_stack_;
};

class RegexPattern final : public SplitPattern {
 public:
  RegexPattern(std::string pattern, pcre2_code* code, bool jit)
      : SplitPattern(std::move(pattern)), code_(code), jit_(jit) {}
  ~RegexPattern() override { pcre2_code_free(code_); }
  RegexPattern(const RegexPattern&) = delete;
  RegexPattern& operator=(const RegexPattern&) = delete;

  Status Find(std::string_view text, size_t pos, Match* match) const override {
    *match = Match();
    thread_local ThreadMatchState state;
    if (!state.ok()) {
      return Unsupported("split pattern " + Quoted(pattern()) +
                         ": out of memory for PCRE2's per-thread match data and JIT stack");
    }
    auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    if (pos < text.size()) {
      int rc =
          pcre2_match(code_, subject, text.size(), pos, 0, state.match_data(), state.context());
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
        rc = pcre2_match(code_, subject, text.size(), pos, PCRE2_NO_JIT, state.match_data(),
                         state.context());
      }
      if (rc == PCRE2_ERROR_NOMATCH) return Status::Ok();
      if (rc < 0) {
        // Only resource limits are left: the subject is no error under MATCH_INVALID_UTF and
        // pos is inside it.
        return Unsupported("split pattern " + Quoted(pattern()) + " on a " +
                           std::to_string(text.size()) + "-byte text from offset " +
                           std::to_string(pos) + ": PCRE2 gave up (" + Pcre2Message(rc) +
                           "): the match needs more backtracking or memory than its limits allow");
      }
      const PCRE2_SIZE* offsets = pcre2_get_ovector_pointer(state.match_data());
      if (offsets[1] == offsets[0]) {
        // CompileRegex refuses patterns that can match empty by their length alone; one that
        // still does (through a look-around) is an error rather than a different split.
        return Unsupported("split pattern " + Quoted(pattern()) +
                           " matched the empty string at offset " + std::to_string(offsets[0]) +
                           ", where tokenizers would cut the text; ferry supports patterns whose "
                           "every match has at least one character");
      }
      *match = {offsets[0], offsets[1]};
    }
    return Status::Ok();
  }

  std::string_view engine() const override { return jit_ ? "pcre2-jit" : "pcre2"; }

  std::string_view unicode_version() const override {
    static const std::string version = [] {
      char buffer[32] = {};
      pcre2_config(PCRE2_CONFIG_UNICODE_VERSION, buffer);
      return std::string(buffer);
    }();
    return version;
  }

 private:
  pcre2_code* code_;
  bool jit_;
};

class ScannerPattern final : public SplitPattern {
 public:
  explicit ScannerPattern(const Scanner& scanner)
      : SplitPattern(std::string(scanner.pattern)),
        scanner_(scanner),
        engine_("scanner:" + std::string(scanner.name)) {}

  Status Find(std::string_view text, size_t pos, Match* match) const override {
    *match = scanner_.find(text, pos);
    return Status::Ok();
  }
  std::string_view engine() const override { return engine_; }
  std::string_view unicode_version() const override { return unicode::kVersion; }

 private:
  const Scanner& scanner_;
  std::string engine_;
};

}  // namespace

Result<std::shared_ptr<const SplitPattern>> SplitPattern::Compile(std::string_view pattern,
                                                                  RegexDialect dialect) {
  if (const Scanner* scanner = FindScanner(pattern)) {
    return std::shared_ptr<const SplitPattern>(std::make_shared<ScannerPattern>(*scanner));
  }
  return CompileRegex(pattern, dialect);
}

Result<std::shared_ptr<const SplitPattern>> SplitPattern::CompileRegex(std::string_view pattern,
                                                                       RegexDialect dialect) {
  Translated translated = TranslateEscapes(pattern, dialect);
  if (!translated.refused.empty()) {
    return Unsupported("split pattern " + Quoted(pattern) + ": " + translated.refused);
  }
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  // UCP: \d and POSIX classes by Unicode properties, as in the references (\w and \b are
  // rewritten above).
  // MATCH_INVALID_UTF: invalid UTF-8 in the subject matches nothing, and is no error.
  // Rust regex: DOLLAR_ENDONLY, `$` only at the very end, not also before a final newline.
  // Oniguruma (Ruby syntax): MULTILINE, `^` and `$` at every line's start and end.
  const uint32_t lines =
      dialect == RegexDialect::kRustRegex ? PCRE2_DOLLAR_ENDONLY : PCRE2_MULTILINE;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.text.data()), translated.text.size(),
                    PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | lines, &error,
                    &error_offset, nullptr);
  if (code == nullptr) {
    size_t offset =
        translated.source_offset[std::min<size_t>(error_offset, translated.text.size())];
    return InvalidArgument("split pattern " + Quoted(pattern) + ": " + Pcre2Message(error) +
                           " at offset " + std::to_string(offset));
  }
  // tokenizers cuts the text at every empty match (`a*` splits "  " into " ", " "); ferry's
  // splitting skips empty matches, so such a pattern is refused rather than split differently.
  uint32_t min_length = 1;
  if (pcre2_pattern_info(code, PCRE2_INFO_MINLENGTH, &min_length) == 0 && min_length == 0) {
    pcre2_code_free(code);
    return Unsupported("split pattern " + Quoted(pattern) +
                       " can match the empty string, where tokenizers would cut the text; "
                       "ferry supports patterns whose every match has at least one character");
  }
  // Without JIT (a platform PCRE2 has none for, or a policy that forbids executable memory) the
  // interpreter gives the same matches, slower.
  bool jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return std::shared_ptr<const SplitPattern>(
      std::make_shared<RegexPattern>(std::string(pattern), code, jit));
}

}  // namespace ferry::text
