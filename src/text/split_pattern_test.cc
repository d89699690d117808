#include "text/split_pattern.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "text/scanners.h"

namespace ferry::text {
namespace {

using Strings = std::vector<std::string>;

std::shared_ptr<const SplitPattern> Regex(std::string_view pattern) {
  auto compiled = SplitPattern::CompileRegex(pattern);
  EXPECT_TRUE(compiled.ok()) << compiled.status().ToString();
  return compiled.ok() ? *compiled : nullptr;
}

Strings Pieces(const SplitPattern& pattern, std::string_view text) {
  Strings pieces;
  Match match;
  for (size_t pos = 0;; pos = match.end) {
    Status status = pattern.Find(text, pos, &match);
    EXPECT_TRUE(status.ok()) << status.ToString();
    if (!status.ok() || match.begin == std::string_view::npos) return pieces;
    pieces.emplace_back(text.substr(match.begin, match.end - match.begin));
  }
}

Strings Pieces(std::string_view pattern, std::string_view text) {
  auto regex = Regex(pattern);
  return regex ? Pieces(*regex, text) : Strings{"(pattern failed)"};
}

TEST(SplitPatternTest, WellKnownPatternsGetTheirScanner) {
  for (const Scanner& scanner : Scanners()) {
    auto pattern = SplitPattern::Compile(scanner.pattern);
    ASSERT_TRUE(pattern.ok()) << pattern.status().ToString();
    EXPECT_EQ((*pattern)->engine(), "scanner:" + std::string(scanner.name));
    EXPECT_EQ((*pattern)->unicode_version(), "16.0.0");
    EXPECT_EQ((*pattern)->pattern(), scanner.pattern);
    EXPECT_EQ(Pieces(**pattern, "Hello world"), (Strings{"Hello", " world"})) << scanner.name;
  }
}

TEST(SplitPatternTest, OtherPatternsRunOnPcre2) {
  // One byte away from GPT-2's pattern (a trailing space alternative) is no longer GPT-2's.
  std::string almost_gpt2 = std::string(Scanners().front().pattern) + "| ";
  auto pattern = SplitPattern::Compile(almost_gpt2);
  ASSERT_TRUE(pattern.ok()) << pattern.status().ToString();
  EXPECT_EQ((*pattern)->engine(), "pcre2-jit");
  EXPECT_EQ((*pattern)->pattern(), almost_gpt2);
  std::string_view version = (*pattern)->unicode_version();
  EXPECT_TRUE(!version.empty() && version != "16.0.0") << version;  // PCRE2 10.42: 14.0.0
  EXPECT_EQ(Pieces(**pattern, "Hello world"), (Strings{"Hello", " world"}));

  auto digits = SplitPattern::Compile("[0-9][0-9][0-9]");  // Falcon's Split
  ASSERT_TRUE(digits.ok());
  EXPECT_EQ(Pieces(**digits, "a12345678b"), (Strings{"123", "456"}));
}

TEST(SplitPatternTest, BadPatternsAreInvalidArgumentNamingThePattern) {
  for (std::string_view bad : {"(?i:'s|'t", "[a-", "a{2,1}", "\\p{NoSuchProperty}", "(?<!a+)b"}) {
    auto pattern = SplitPattern::Compile(bad);
    ASSERT_FALSE(pattern.ok()) << bad;
    EXPECT_EQ(pattern.status().code(), StatusCode::kInvalidArgument);
    const std::string& message = pattern.status().message();
    EXPECT_NE(message.find("'" + std::string(bad) + "'"), std::string::npos) << message;
    EXPECT_NE(message.find(" at offset "), std::string::npos) << message;
  }
  // The offset is in the pattern as written, also after an escape rewritten for PCRE2.
  auto offset = [](std::string_view pattern) {
    std::string message = SplitPattern::Compile(pattern).status().message();
    return message.substr(message.find(" at offset "));
  };
  EXPECT_EQ(offset(R"(\s\p{Nope})"), offset(R"(xx\p{Nope})"));
  EXPECT_EQ(offset(R"([\h\s]\p{Nope})"), offset(R"([xxxx]\p{Nope})"));
}

// `\s` is White_Space, as in Oniguruma and Rust regex: PCRE2's own also matches U+180E.
TEST(SplitPatternTest, EscapesMeanWhatTheReferencesMean) {
  const std::string mongolian_vowel_separator = "\u180e";
  EXPECT_EQ(Pieces(R"(\s)", "a\u180eb\u0085c\u3000"), (Strings{"\u0085", "\u3000"}));
  EXPECT_EQ(Pieces(R"(\S+)", "a\u180eb c"), (Strings{"a\u180eb", "c"}));
  EXPECT_EQ(Pieces(R"([^\s\p{L}]+)", "a\u180e. b"), (Strings{"\u180e."}));
  EXPECT_EQ(Pieces(R"([\S]+)", "ab\u2028c"), (Strings{"ab", "c"}));
  // `\v` is only U+000B; `\h` is an ASCII hex digit, also inside a class.
  EXPECT_EQ(Pieces(R"(\v)", "\n\v\r\u2028"), (Strings{"\v"}));
  EXPECT_EQ(Pieces(R"(\h+)", "0xBEEF \t"), (Strings{"0", "BEEF"}));
  EXPECT_EQ(Pieces(R"([\h_]+)", "g_f1 z"), (Strings{"_f1"}));
  EXPECT_EQ(Pieces(R"(\H+)", "12 zz"), (Strings{" zz"}));
  EXPECT_EQ(Pieces(R"([^\H]+)", "12 zz"), (Strings{"12"}));
  EXPECT_EQ(Pieces(R"([[:alpha:]\h]+)", "zA9 !"), (Strings{"zA9"}));
  EXPECT_EQ(Pieces(R"([]\s]+)", "a] ]b"), (Strings{"] ]"}));
  // An escaped backslash is not an escape.
  EXPECT_EQ(Pieces(R"(\\s)", "a\\s s"), (Strings{"\\s"}));
  EXPECT_EQ(Pieces(R"([\\h]+)", "h\\x"), (Strings{"h\\"}));
}

// `\w` is the references' word character (Alphabetic, marks, Nd, Pc), not PCRE2's (letters,
// numbers, `_`), which cut Devanagari words at every vowel sign and virama.
TEST(SplitPatternTest, WordCharactersAreTheReferencesIncludingMarks) {
  const std::string hindi = "नमस्ते दुनिया";
  EXPECT_EQ(Pieces(R"(\w+)", hindi), (Strings{"नमस्ते", "दुनिया"}));
  EXPECT_EQ(Pieces(R"(\w+|[^\w\s]+)", "a\u0301b, Ⓐ!"), (Strings{"a\u0301b", ",", "Ⓐ", "!"}));
  EXPECT_EQ(Pieces(R"([\w]+)", hindi), (Strings{"नमस्ते", "दुनिया"}));
  EXPECT_EQ(Pieces(R"(\W+)", "नमस्ते, दुनिया"), (Strings{", "}));
  EXPECT_EQ(Pieces(R"([[:word:]]+)", hindi), (Strings{"नमस्ते", "दुनिया"}));
  // Oniguruma (tokenizer.json) counts superscripts 1-3 and the Latin-1 fractions outside a
  // class only; Rust regex (tiktoken) the joiners.
  EXPECT_EQ(Pieces(R"(\w+)", "m² ½ a\u200db"), (Strings{"m²", "½", "a", "b"}));
  EXPECT_EQ(Pieces(R"([\w]+)", "m² ½ a\u200db"), (Strings{"m", "a", "b"}));
  EXPECT_EQ(Pieces(R"(\b\w)", "m²x ²a"), (Strings{"m", "²"}));
  auto rust = SplitPattern::CompileRegex(R"(\w+)", RegexDialect::kRustRegex);
  ASSERT_TRUE(rust.ok()) << rust.status().ToString();
  EXPECT_EQ(Pieces(**rust, "m² ½ a\u200db"), (Strings{"m", "a\u200db"}));
}

// PCRE2 cannot union a negated set inside a class, so a class holding \W is rebuilt as a group
// that still matches one character.
TEST(SplitPatternTest, ClassesHoldingNotWordMatchOneCharacterAsTheClassDid) {
  EXPECT_EQ(Pieces(R"([\W]+)", "नमस्ते, दुनिया"), (Strings{", "}));
  EXPECT_EQ(Pieces(R"([^\W]+)", "नमस्ते, दुनिया"), (Strings{"नमस्ते", "दुनिया"}));
  EXPECT_EQ(Pieces(R"([\W\d]+)", "ab 12 c_d"), (Strings{" 12 "}));
  EXPECT_EQ(Pieces(R"([^\W\d_]+)", "ab 12 c_d"), (Strings{"ab", "c", "d"}));
  EXPECT_EQ(Pieces(R"([[:^word:]x]+)", "ax, b"), (Strings{"x, "}));
  EXPECT_EQ(Pieces(R"([\W^]+)", "a^b !c"), (Strings{"^", " !"}));
  EXPECT_EQ(Pieces(R"([]\W]+)", "a]] b"), (Strings{"]] "}));
  EXPECT_EQ(Pieces(R"((?:[^\W\s])++)", "ab cd"), (Strings{"ab", "cd"}));
}

// \b is a boundary between the dialect's word and non-word characters; inside a class it is a
// backspace, as in the references.
TEST(SplitPatternTest, WordBoundariesUseTheSameWordCharacters) {
  EXPECT_EQ(Pieces(R"(\b\w)", "नमस्ते दुनिया"), (Strings{"न", "द"}));
  EXPECT_EQ(Pieces(R"(\B\w+)", "नमस्ते"), (Strings{"मस्ते"}));
  EXPECT_EQ(Pieces(R"([\b]+)", "a\b\bb"), (Strings{"\b\b"}));
}

// An unterminated class is still PCRE2's error, at the pattern's offset.
TEST(SplitPatternTest, AnUnterminatedClassIsAnErrorAtItsOffset) {
  auto compiled = SplitPattern::CompileRegex(R"(ab[\w)");
  ASSERT_FALSE(compiled.ok());
  EXPECT_NE(compiled.status().message().find("ab[\\w"), std::string::npos) << compiled.status().ToString();
  EXPECT_NE(compiled.status().message().find("missing terminating ]"), std::string::npos)
      << compiled.status().ToString();
}

TEST(SplitPatternTest, CaseFoldingIsUnicodeSimpleFolding) {
  EXPECT_EQ(Pieces("(?i:'s|'ll)", "'s 'S '\u017f 'Ll 'x"), (Strings{"'s", "'S", "'\u017f", "'Ll"}));
  EXPECT_EQ(Pieces("(?i:k)", "k K \u212a"), (Strings{"k", "K", "\u212a"}));  // Kelvin sign
}

// Rust regex: `$` only at the end of the text. Oniguruma (Ruby syntax): `^` and `$` at every
// line, `(?m)` lets `.` match a newline, `{,n}` is `{0,n}` (values from tokenizers 0.23.3).
TEST(SplitPatternTest, LineAnchorsFollowTheDialect) {
  auto rust = [](std::string_view pattern, std::string_view text) {
    auto compiled = SplitPattern::CompileRegex(pattern, RegexDialect::kRustRegex);
    EXPECT_TRUE(compiled.ok()) << compiled.status().ToString();
    return compiled.ok() ? Pieces(**compiled, text) : Strings{"(pattern failed)"};
  };
  EXPECT_EQ(rust(R"(\s++$)", "a \n b  \n"), (Strings{"  \n"}));
  EXPECT_EQ(rust("a$", "a\n"), Strings{});
  EXPECT_EQ(rust("a$", "ba"), (Strings{"a"}));
  EXPECT_EQ(rust(R"((?m)^\w+)", "foo bar\nbaz"), (Strings{"foo", "baz"}));
  EXPECT_EQ(Pieces(R"(\s++$)", "a \n b  \n"), (Strings{"  \n"}));
  EXPECT_EQ(Pieces("a$", "a\n"), (Strings{"a"}));
  EXPECT_EQ(Pieces(R"(^\w+)", "foo bar\nbaz qux"), (Strings{"foo", "baz"}));
  EXPECT_EQ(Pieces(R"((?m).+)", "ab\ncd"), (Strings{"ab\ncd"}));
  EXPECT_EQ(Pieces(R"((?i:x)(?m:.))", "X\n"), (Strings{"X\n"}));
  EXPECT_EQ(Pieces("a{,2}b", "baab"), (Strings{"b", "aab"}));
}

// PCRE2 10.42 would read `&&` (and Rust's `--`, `~~`) inside a class as characters.
TEST(SplitPatternTest, ClassSetOperationsAreRefused) {
  for (std::string_view pattern : {R"([\w&&[^\d]]+)", "[a-z&&[^aeiou]]+"}) {
    auto compiled = SplitPattern::CompileRegex(pattern);
    ASSERT_FALSE(compiled.ok()) << pattern;
    EXPECT_EQ(compiled.status().code(), StatusCode::kUnsupported);
    EXPECT_NE(compiled.status().message().find("class set operation \"&&\""), std::string::npos)
        << compiled.status().ToString();
  }
  EXPECT_FALSE(SplitPattern::CompileRegex(R"([\w--\d]+)", RegexDialect::kRustRegex).ok());
  EXPECT_FALSE(SplitPattern::CompileRegex(R"([\w~~a]+)", RegexDialect::kRustRegex).ok());
  EXPECT_TRUE(SplitPattern::CompileRegex(R"([+--]+)").ok());  // Oniguruma: the range + to -
  EXPECT_TRUE(SplitPattern::CompileRegex(R"(a&&b)").ok());    // outside a class: text
}

TEST(SplitPatternTest, PatternsThatCanMatchTheEmptyStringAreRefused) {
  // tokenizers cuts the text at every empty match; ferry's splitting cannot, so it refuses.
  for (const char* pattern : {"x*", "a*|b", "", "\\b"}) {
    auto compiled = SplitPattern::CompileRegex(pattern);
    ASSERT_FALSE(compiled.ok()) << pattern;
    EXPECT_EQ(compiled.status().code(), StatusCode::kUnsupported) << pattern;
    EXPECT_NE(compiled.status().message().find("can match the empty string"), std::string::npos);
  }
  EXPECT_TRUE(SplitPattern::CompileRegex("x+|y").ok());
  // An empty match that only a look-around allows is caught when it happens.
  auto lookahead = SplitPattern::CompileRegex("(?=\u00e9)|\u00e9");
  ASSERT_TRUE(lookahead.ok());
  Match match;
  Status found = (*lookahead)->Find("\u00e9\u00e9", 0, &match);
  EXPECT_EQ(found.code(), StatusCode::kUnsupported);
  EXPECT_NE(found.message().find("matched the empty string at offset 0"), std::string::npos);
}

TEST(SplitPatternTest, FindStartsWhereAskedAndSeesTheWholeSubject) {
  auto pattern = Regex(R"(\p{L}+(?!\S)|(?<=a)\p{N}+)");
  Match match;
  ASSERT_TRUE(pattern->Find("hello world", 7, &match).ok());
  EXPECT_EQ(match.begin, 7u);
  EXPECT_EQ(match.end, 11u);
  // The look-behind sees the byte before `pos`.
  ASSERT_TRUE(pattern->Find("a12", 1, &match).ok());
  EXPECT_EQ(match.begin, 1u);
  EXPECT_EQ(match.end, 3u);
  for (size_t pos : {3, 4}) {
    ASSERT_TRUE(pattern->Find("a12", pos, &match).ok());
    EXPECT_EQ(match.begin, std::string_view::npos) << pos;
  }
  // Inside a character: its continuation bytes are invalid, and skipped.
  ASSERT_TRUE(pattern->Find("\xC3\xA9t\xC3\xA9", 1, &match).ok());
  EXPECT_EQ(match.begin, 2u);
  EXPECT_EQ(match.end, 5u);
}

TEST(SplitPatternTest, InvalidUtf8IsNeverMatched) {
  for (const Scanner& scanner : Scanners()) {
    for (auto pattern : {*SplitPattern::Compile(scanner.pattern), Regex(scanner.pattern)}) {
      EXPECT_EQ(Pieces(*pattern, ""), Strings{}) << pattern->engine();
      EXPECT_EQ(Pieces(*pattern, "\xFF\xC0\x80\x80\xED\xA0\x80\xF8"), Strings{})
          << pattern->engine();
      EXPECT_EQ(Pieces(*pattern,
                       "ab\xFF"
                       "cd \xC0"),
                (Strings{"ab", "cd", " "}))
          << pattern->engine();
    }
  }
  // Negated classes and `.` do not match an invalid byte either.
  EXPECT_EQ(Pieces("[^x]+|(?s).", "ab\xFFx\x80"), (Strings{"ab", "x"}));
}

// A 1 MiB run of one letter, digit or space, in every well-known pattern: PCRE2's JIT needs no
// stack per character of a simple repeat.
TEST(SplitPatternTest, RegexHandlesLongRuns) {
  constexpr size_t kSize = 1 << 20;
  for (const Scanner& scanner : Scanners()) {
    auto pattern = Regex(scanner.pattern);
    for (char c : {'a', ' '}) {
      std::string text(kSize, c);
      Match match;
      ASSERT_TRUE(pattern->Find(text, 0, &match).ok()) << scanner.name;
      EXPECT_EQ(match.begin, 0u);
      EXPECT_GE(match.end, kSize - 1) << scanner.name;
    }
  }
}

// A repeated group needs JIT stack per iteration: 1 MiB of it runs past the 8 MiB JIT stack,
// and the interpreter, with its frames on the heap, finishes the match.
TEST(SplitPatternTest, JitStackOverflowFallsBackToTheInterpreter) {
  std::string text;
  while (text.size() < (1 << 20)) text += "ab";
  auto pattern = Regex("(?:ab|cd)+");
  Match match;
  Status status = pattern->Find(text, 0, &match);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(match.begin, 0u);
  EXPECT_EQ(match.end, text.size());
}

TEST(SplitPatternTest, ResourceLimitsAreErrorsThatSaySo) {
  auto pattern = Regex("(a+)+$");  // catastrophic backtracking
  std::string text = std::string(64, 'a') + "b";
  Match match;
  Status status = pattern->Find(text, 0, &match);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kUnsupported);
  EXPECT_NE(status.message().find("'(a+)+$'"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("limit"), std::string::npos) << status.message();
  EXPECT_EQ(match.begin, std::string_view::npos);
}

// One compiled pattern, several threads: each has its own match block and JIT stack.
TEST(SplitPatternTest, FindIsThreadSafe) {
  auto pattern = Regex(R"((?i:'s|'t)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|\s+(?!\S)|\s+|.)");
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "It's 12345 words\n  and\tmore, " + std::to_string(i);
  Strings expected = Pieces(*pattern, text);
  std::vector<Strings> results(4);
  std::vector<std::thread> threads;
  for (Strings& result : results) {
    threads.emplace_back([&] {
      for (int round = 0; round < 5; ++round) result = Pieces(*pattern, text);
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const Strings& result : results) EXPECT_TRUE(result == expected);
}

}  // namespace
}  // namespace ferry::text
