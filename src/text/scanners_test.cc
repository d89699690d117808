// The scanners against PCRE2 running the same pattern, piece for piece: on the examples the
// references were asked about, on the real corpora, on seeded random text built to reach every
// branch, and on long runs.

#include "text/scanners.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/support/test_support.h"
#include "text/pcre2_agreement.h"
#include "text/split_pattern.h"
#include "text/unicode_tables.h"

namespace ferry::text {
namespace {

using unicode::Category;
using Pieces = std::vector<std::pair<size_t, size_t>>;

// Printable, for failure messages: non-ASCII and control bytes as \xNN.
std::string Escaped(std::string_view text) {
  constexpr size_t kMax = 300;
  std::string out;
  for (char c : text.substr(0, kMax)) {
    auto byte = static_cast<uint8_t>(c);
    if (byte >= 0x20 && byte < 0x7F && c != '\\') {
      out += c;
    } else {
      out += "\\x";
      out += "0123456789abcdef"[byte >> 4];
      out += "0123456789abcdef"[byte & 15];
    }
  }
  if (text.size() > kMax) out += "...";
  return out;
}

std::shared_ptr<const SplitPattern> Regex(std::string_view pattern) {
  auto compiled = SplitPattern::CompileRegex(pattern);
  EXPECT_TRUE(compiled.ok()) << compiled.status().ToString();
  return compiled.ok() ? *compiled : nullptr;
}

Pieces Split(const SplitPattern& pattern, std::string_view text) {
  Pieces pieces;
  Match match;
  for (size_t pos = 0;; pos = match.end) {
    Status status = pattern.Find(text, pos, &match);
    EXPECT_TRUE(status.ok()) << status.ToString();
    if (!status.ok() || match.begin == std::string_view::npos) return pieces;
    pieces.emplace_back(match.begin, match.end);
  }
}

Pieces Split(const Scanner& scanner, std::string_view text) {
  Pieces pieces;
  for (size_t pos = 0;;) {
    Match match = scanner.find(text, pos);
    if (match.begin == std::string_view::npos) return pieces;
    if (match.begin < pos || match.end <= match.begin) {
      ADD_FAILURE() << scanner.name << ": bad match [" << match.begin << ", " << match.end
                    << ") from " << pos << " in '" << Escaped(text) << "'";
      return pieces;
    }
    pieces.emplace_back(match.begin, match.end);
    pos = match.end;
  }
}

// Pieces are non-empty and in order, and what lies between them (and around them) holds no valid
// UTF-8 character: the pieces tile the valid text. Validity is PCRE2's (`(?s).` matches exactly
// one valid character).
void ExpectTiles(std::string_view text, const Pieces& pieces, const std::string& what) {
  static const auto any_character = Regex("(?s).");
  size_t covered = 0;
  auto expect_invalid = [&](size_t begin, size_t end) {
    if (begin == end) return;
    Match match;
    ASSERT_TRUE(any_character->Find(text, begin, &match).ok());
    EXPECT_TRUE(match.begin >= end)
        << what << ": a valid character at " << match.begin << " is in no piece";
  };
  for (const auto& [begin, end] : pieces) {
    ASSERT_LT(begin, end) << what;
    ASSERT_GE(begin, covered) << what;
    expect_invalid(covered, begin);
    covered = end;
  }
  ASSERT_LE(covered, text.size()) << what;
  expect_invalid(covered, text.size());
}

void ExpectSamePieces(const Scanner& scanner, const SplitPattern& regex, std::string_view text,
                      const std::string& what) {
  Pieces expected = Split(regex, text);
  Pieces actual = Split(scanner, text);
  if (expected == actual) return;
  size_t i = 0;
  while (i < expected.size() && i < actual.size() && expected[i] == actual[i]) ++i;
  auto show = [&](const Pieces& pieces) {
    if (i >= pieces.size()) return std::string("(no piece)");
    auto [begin, end] = pieces[i];
    return "[" + std::to_string(begin) + ", " + std::to_string(end) + ") '" +
           Escaped(text.substr(begin, end - begin)) + "'";
  };
  size_t at = i < expected.size() ? expected[i].first : i < actual.size() ? actual[i].first : 0;
  size_t context = at < 40 ? 0 : at - 40;
  ADD_FAILURE() << scanner.name << " on " << what << ": piece " << i
                << " differs\n  pcre2:   " << show(expected) << "\n  scanner: " << show(actual)
                << "\n  around: '" << Escaped(text.substr(context, 100)) << "'";
}

const Scanner& ScannerNamed(std::string_view name) {
  for (const Scanner& scanner : Scanners()) {
    if (scanner.name == name) return scanner;
  }
  ADD_FAILURE() << "no scanner " << name;
  return Scanners().front();
}

// PCRE2 10.42 classifies with Unicode 14 tables, the scanners with Unicode 16: the two disagree
// on code points that changed in between (new letters, digits and marks of Unicode 15 and 16).
// Comparing them is meaningful only on text whose code points they classify alike, so this finds
// those: the category PCRE2 gives each code point, by running each class as a pattern over one
// string holding every code point.
class Agreement {
 public:
  static const Agreement& Get() {
    static const Agreement agreement;
    return agreement;
  }
  bool Agrees(char32_t cp) const { return agrees_[cp]; }
  size_t disagreements() const { return std::count(agrees_.begin(), agrees_.end(), false); }
  // Whether every valid character of `text` is classified alike (invalid bytes are no character).
  bool AgreesOn(std::string_view text) const { return Pcre2AgreesOn(agrees_, text); }

 private:
  Agreement() : agrees_(CodePointsWherePcre2Agrees()) {}
  std::vector<bool> agrees_;
};

TEST(ScannerTest, EveryPatternHasOneScannerAndCompiles) {
  for (const Scanner& scanner : Scanners()) {
    EXPECT_EQ(FindScanner(scanner.pattern), &scanner) << scanner.name;
    EXPECT_NE(Regex(scanner.pattern), nullptr) << scanner.name;
  }
  EXPECT_EQ(FindScanner(std::string(Scanners().front().pattern) + " "), nullptr);
  EXPECT_EQ(FindScanner(""), nullptr);
}

// The tables are Unicode 16 and PCRE2's are Unicode 14, so they must differ somewhere (and on
// little else): a check that the agreement filter below filters something and not everything.
TEST(ScannerTest, TablesDifferFromPcre2OnlyOnNewerCodePoints) {
  const Agreement& agreement = Agreement::Get();
  EXPECT_GT(agreement.disagreements(), 0u);
  EXPECT_LT(agreement.disagreements(), 20'000u);
  EXPECT_FALSE(agreement.Agrees(0x10D4A));  // a Garay letter (Lo), new in Unicode 16
  EXPECT_TRUE(agreement.Agrees(0x180E));    // not \s in either (PCRE2's own \s has it)
  EXPECT_TRUE(agreement.Agrees(0x1FAE8));   // an emoji new in 15: a symbol or unassigned, Other
  EXPECT_EQ(unicode::CategoryOf(0x10D4A), Category::kLo);
  EXPECT_EQ(unicode::CategoryOf(0x017F), Category::kLl);
  EXPECT_EQ(unicode::CategoryOf(0x0085), Category::kWhiteSpace);
  EXPECT_EQ(unicode::CategoryOf(0x001C), Category::kOther);  // Python's \s, not White_Space
}

// What the references return (tokenizers 0.23.3; for tiktoken's patterns, which tiktoken runs
// without exposing the pieces, Python's regex module), checked against each scanner and PCRE2.
TEST(ScannerTest, ExamplesMatchTheReferences) {
  using Names = std::vector<std::string_view>;
  const Names gpt2 = {"gpt2", "gpt2-bracketed", "r50k"};
  const Names llama3 = {"llama3", "cl100k"};
  const Names o200k = {"o200k"};
  const Names qwen2 = {"qwen2"};
  auto together = [](std::initializer_list<Names> parts) {
    Names out;
    for (const Names& part : parts) out.insert(out.end(), part.begin(), part.end());
    return out;
  };
  struct Example {
    Names scanners;
    std::string text;
    std::vector<std::string> pieces;
  };
  const Example examples[] = {
      // The quick checks of the parity notes.
      {together({llama3, o200k}), "12345", {"123", "45"}},
      {gpt2, "12345", {"12345"}},
      {qwen2, "12345", {"1", "2", "3", "4", "5"}},
      {together({gpt2, llama3, qwen2, o200k}), "a  b", {"a", " ", " b"}},
      {together({gpt2, llama3, qwen2, o200k}), "a \n\n b", {"a", " \n\n", " b"}},
      {together({llama3, qwen2}), "HE'S", {"HE", "'S"}},
      {gpt2, "HE'S", {"HE", "'", "S"}},
      {o200k, "HE'S", {"HE'S"}},
      // (?i) folds U+017F to s; GPT-2's contractions are case-sensitive.
      {together({llama3, qwen2}), "he'\u017f d'LL", {"he", "'\u017f", " d", "'LL"}},
      {gpt2, "he'\u017f d'LL", {"he", "'", "\u017f", " d", "'", "LL"}},
      {o200k, "he'\u017f d'LL", {"he'\u017f", " d'LL"}},
      // cl100k's `\s++$` keeps a final run whole; Llama-3 cuts it after the last newline.
      {together({gpt2, {"cl100k"}}), "a\n  ", {"a", "\n  "}},
      {together({{"llama3"}, qwen2, o200k}), "a\n  ", {"a", "\n", "  "}},
      {gpt2, "Hello world's 123  !!  ", {"Hello", " world", "'s", " 123", " ", " !!", "  "}},
      {llama3, "Hello world's 123  !!  ", {"Hello", " world", "'s", " ", "123", " ", " !!", "  "}},
      {o200k, "Hello world's 123  !!  ", {"Hello", " world's", " ", "123", " ", " !!", "  "}},
      {gpt2, "a \r\n\tb\u3000c\u00a0 d", {"a", " \r\n", "\t", "b", "\u3000", "c", "\u00a0", " d"}},
      {together({llama3, qwen2, o200k}),
       "a \r\n\tb\u3000c\u00a0 d",
       {"a", " \r\n", "\tb", "\u3000c", "\u00a0", " d"}},
      {together({gpt2, llama3, qwen2}),
       "HelloWorld don't HELLO's",
       {"HelloWorld", " don", "'t", " HELLO", "'s"}},
      {o200k, "HelloWorld don't HELLO's", {"Hello", "World", " don't", " HELLO's"}},
      {gpt2, "x.\n/\n/y", {"x", ".", "\n", "/", "\n", "/", "y"}},
      {together({llama3, qwen2}), "x.\n/\n/y", {"x", ".\n", "/\n", "/y"}},
      {o200k, "x.\n/\n/y", {"x", ".\n/\n/", "y"}},
      // Combining marks are not letters, except in o200k's word classes.
      {together({gpt2, llama3, qwen2}),
       "caf\u00e9 cafe\u0301 \u0301x",
       {"caf\u00e9", " cafe", "\u0301", " \u0301", "x"}},
      {o200k, "caf\u00e9 cafe\u0301 \u0301x", {"caf\u00e9", " cafe\u0301", " \u0301x"}},
      {gpt2,
       "\u0928\u092e\u0938\u094d\u0924\u0947 \u0967\u0968\u0969\u096a",
       {"\u0928\u092e\u0938", "\u094d", "\u0924", "\u0947", " \u0967\u0968\u0969\u096a"}},
      {llama3,
       "\u0928\u092e\u0938\u094d\u0924\u0947 \u0967\u0968\u0969\u096a",
       {"\u0928\u092e\u0938", "\u094d\u0924", "\u0947", " ", "\u0967\u0968\u0969", "\u096a"}},
      {o200k,
       "\u0928\u092e\u0938\u094d\u0924\u0947 \u0967\u0968\u0969\u096a",
       {"\u0928\u092e\u0938\u094d\u0924\u0947", " ", "\u0967\u0968\u0969", "\u096a"}},
      // A ZWJ family, a keycap (digit + VS16 + enclosing mark), a vulgar fraction (No).
      {gpt2,
       "\U0001F468\u200d\U0001F469\u200d\U0001F467 1\ufe0f\u20e3 \u2153",
       {"\U0001F468\u200d\U0001F469\u200d\U0001F467", " 1", "\ufe0f\u20e3", " \u2153"}},
      {together({llama3, qwen2, o200k}),
       "\U0001F468\u200d\U0001F469\u200d\U0001F467 1\ufe0f\u20e3 \u2153",
       {"\U0001F468\u200d\U0001F469\u200d\U0001F467", " ", "1", "\ufe0f\u20e3", " ", "\u2153"}},
      // Lu, Lt and Lm starts (o200k's classes).
      {together({gpt2, llama3, qwen2, o200k}),
       "\u01c4emo \u01c5emo \u02b0a",
       {"\u01c4emo", " \u01c5emo", " \u02b0a"}},
      {gpt2, "$foo  'bar'", {"$", "foo", " ", " '", "bar", "'"}},
      {together({llama3, qwen2, o200k}), "$foo  'bar'", {"$foo", " ", " '", "bar", "'"}},
  };
  for (const Example& example : examples) {
    for (std::string_view name : example.scanners) {
      const Scanner& scanner = ScannerNamed(name);
      std::vector<std::string> pieces;
      for (const auto& [begin, end] : Split(scanner, example.text)) {
        pieces.push_back(example.text.substr(begin, end - begin));
      }
      EXPECT_EQ(pieces, example.pieces) << name << " on '" << Escaped(example.text) << "'";
      ExpectSamePieces(scanner, *Regex(scanner.pattern), example.text, Escaped(example.text));
    }
  }
}

TEST(ScannerTest, FindStartsWhereAsked) {
  for (const Scanner& scanner : Scanners()) {
    Match match = scanner.find("hello world", 5);
    EXPECT_EQ(match.begin, 5u) << scanner.name;
    EXPECT_EQ(match.end, 11u) << scanner.name;
    match = scanner.find("hello world", 7);  // mid-word: the rest of the word
    EXPECT_EQ(match.begin, 7u) << scanner.name;
    EXPECT_EQ(match.end, 11u) << scanner.name;
    match = scanner.find("\xC3\xA9t\xC3\xA9", 1);  // a continuation byte is skipped as invalid
    EXPECT_EQ(match.begin, 2u) << scanner.name;
    EXPECT_EQ(match.end, 5u) << scanner.name;
    EXPECT_EQ(scanner.find("hello", 5).begin, std::string_view::npos) << scanner.name;
    EXPECT_EQ(scanner.find("hello", 6).begin, std::string_view::npos) << scanner.name;
  }
}

TEST(ScannerTest, InvalidUtf8IsNeverMatched) {
  // Each kind of ill-formed UTF-8: bytes that never occur, a stray continuation byte, truncated
  // sequences, a surrogate, overlong forms of each length, a code point past U+10FFFF.
  const std::string invalid =
      "\xFF\xFE\x80\xC3\xE2\x82\xED\xA0\x80\xC0\xAF\xE0\x9F\xBF\xF0\x8F\xBF\xBF\xF4\x90\x80\x80";
  const std::string mixed =
      "ab\xFF"
      "cd \xFF"
      " \xE2\x82"
      "xy\xC3";
  for (const Scanner& scanner : Scanners()) {
    EXPECT_EQ(scanner.find("", 0).begin, std::string_view::npos) << scanner.name;
    EXPECT_TRUE(Split(scanner, invalid).empty()) << scanner.name;
    // Runs stop at an invalid byte, and `(?!\S)` holds before one.
    Pieces pieces = Split(scanner, mixed);
    EXPECT_EQ(pieces, (Pieces{{0, 2}, {3, 5}, {5, 6}, {7, 8}, {10, 12}})) << scanner.name;
    ExpectSamePieces(scanner, *Regex(scanner.pattern), mixed, "mixed");
    ExpectTiles(mixed, pieces, std::string(scanner.name));
  }
}

// Every file of the shared corpora: English prose (LF and CRLF), 21 languages of web sentences,
// a Chinese novel, the UDHR in many scripts, emoji lists, JSONL, and Markus Kuhn's UTF-8 stress
// test (invalid on purpose).
TEST(ScannerTest, SamePiecesAsPcre2OnTheCorpora) {
  std::string data = testing::SharedDataDir();
  if (data.empty()) GTEST_SKIP() << "shared test data (../shared/data) is absent";
  const Agreement& agreement = Agreement::Get();
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(data + "/corpora")) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 50u);
  std::vector<std::pair<const Scanner*, std::shared_ptr<const SplitPattern>>> engines;
  for (const Scanner& scanner : Scanners()) engines.emplace_back(&scanner, Regex(scanner.pattern));

  size_t lines_skipped = 0;
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::string_view> subjects;
    if (agreement.AgreesOn(text)) {
      subjects.push_back(text);
    } else {
      // Compare line by line (each line keeps its "\n"), leaving out the few lines with a code
      // point the two Unicode versions classify differently.
      for (size_t begin = 0; begin < text.size();) {
        size_t end = std::min(text.find('\n', begin), text.size() - 1) + 1;
        std::string_view line(text.data() + begin, end - begin);
        if (agreement.AgreesOn(line)) {
          subjects.push_back(line);
        } else {
          ++lines_skipped;
        }
        begin = end;
      }
    }
    for (const auto& [scanner, regex] : engines) {
      for (std::string_view subject : subjects) {
        ExpectSamePieces(*scanner, *regex, subject, path.filename().string());
      }
    }
  }
  EXPECT_LT(lines_skipped, 100u);  // none today
}

// Seeded random text that reaches every branch of every scanner: all classes (drawn from the
// code points PCRE2 and the tables classify alike, see Agreement), every kind of whitespace,
// apostrophes before every case variant of the contraction letters, combining marks, emoji
// sequences, non-ASCII digits, and invalid UTF-8 next to valid text.
class RandomText {
 public:
  explicit RandomText(uint64_t seed) : random_(seed) {
    const Agreement& agreement = Agreement::Get();
    for (char32_t cp = 0x80; cp < 0x110000; ++cp) {
      if (agreement.Agrees(cp)) {
        pools_[static_cast<size_t>(unicode::CategoryOf(cp))].push_back(cp);
      }
    }
  }

  // `atoms` pieces of text; `letters_only` keeps to letters, marks, apostrophes and spaces,
  // which is where o200k's word alternatives backtrack.
  std::string Next(size_t atoms, bool letters_only) {
    std::string text;
    for (size_t i = 0; i < atoms; ++i) {
      size_t before = text.size();
      AppendAtom(letters_only, text);
      // Literal atoms are drawn without looking at the tables; drop one that PCRE2 and the
      // tables classify differently (none today, but the lists may grow).
      if (!Agreement::Get().AgreesOn(std::string_view(text).substr(before))) text.resize(before);
    }
    return text;
  }

 private:
  size_t Uniform(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(random_); }
  template <typename T>
  const T& Pick(const std::vector<T>& values) {
    return values[Uniform(values.size())];
  }
  char32_t FromPool(Category category) { return Pick(pools_[static_cast<size_t>(category)]); }

  void AppendAtom(bool letters_only, std::string& text) {
    static const std::vector<std::string> kSpaces = {
        " ",      "  ",     "\t",     "\n",     "\r\n",   "\r",      "\n\n",   "\v",
        "\f",     "\u0085", "\u00a0", "\u1680", "\u2000", "\u2009",  "\u200a", "\u2028",
        "\u2029", "\u202f", "\u205f", "\u3000", " \n ",   "\r\n\r\n"};
    // Not \s, though some engines or languages count them: U+180E (PCRE2's \s), U+001C..U+001F
    // (Python's), U+200B (a zero-width space, Cf).
    static const std::vector<std::string> kAlmostSpaces = {"\u180e", "\x1c", "\x1f", "\u200b"};
    static const std::vector<std::string> kAfterApostrophe = {
        "s",  "S",  "\u017f", "t", "T", "re", "RE", "rE", "Re", "ve",     "VE", "m", "M",
        "ll", "LL", "lL",     "l", "d", "D",  "x",  "'",  "",   "\u212a", "r",  "v", "e"};
    static const std::vector<std::string> kEmoji = {"\U0001F468\u200d\U0001F469\u200d\U0001F467",
                                                    "\U0001F44D\U0001F3FD",
                                                    "\U0001F1EF\U0001F1F5",
                                                    "1\ufe0f\u20e3",
                                                    "\u2764\ufe0f",
                                                    "\U0001FAE8",
                                                    "\U0001F600"};
    static const std::vector<std::string> kInvalid = {"\xFF",
                                                      "\x80",
                                                      "\xC3",
                                                      "\xE2\x82",
                                                      "\xED\xA0\x80",
                                                      "\xF4\x90\x80\x80",
                                                      "\xC0\x80",
                                                      "\xF0\x9F\x98",
                                                      "\xFE",
                                                      "\xBF\xBF",
                                                      "\xE0\x80\x80",
                                                      "\xE0\x9F\xBF",
                                                      "\xF0\x8F\xBF\xBF"};
    static const std::string kPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

    size_t kind = Uniform(letters_only ? 6 : 14);
    size_t count = 1 + Uniform(Uniform(4) == 0 ? 12 : 3);
    for (size_t n = 0; n < count; ++n) {
      switch (kind) {
        case 0:  // ASCII letters, either case
          text += static_cast<char>((Uniform(2) ? 'a' : 'A') + Uniform(26));
          break;
        case 1:  // letters of one category, and marks
        case 2: {
          static const Category kLetters[] = {Category::kLu, Category::kLl, Category::kLt,
                                              Category::kLm, Category::kLo, Category::kMark};
          AppendUtf8(FromPool(kLetters[Uniform(6)]), text);
          break;
        }
        case 3:  // an apostrophe and what may make it a contraction
          text += '\'';
          text += Pick(kAfterApostrophe);
          break;
        case 4:  // a space, or another whitespace character
          text += Uniform(2) ? std::string(" ") : Pick(kSpaces);
          break;
        case 5:  // a letter with combining marks
          AppendUtf8(FromPool(Uniform(2) ? Category::kLl : Category::kLo), text);
          for (size_t marks = 1 + Uniform(3); marks > 0; --marks) {
            AppendUtf8(FromPool(Category::kMark), text);
          }
          break;
        case 6:
          text += static_cast<char>('0' + Uniform(10));
          break;
        case 7:  // Nd, Nl, No beyond ASCII
          AppendUtf8(FromPool(Category::kNumber), text);
          break;
        case 8:  // punctuation; slashes and newlines end o200k's punctuation pieces
          text += Uniform(3) ? kPunctuation[Uniform(kPunctuation.size())] : "/\n"[Uniform(2)];
          break;
        case 9:  // symbols, controls, format characters, unassigned, private use
          AppendUtf8(FromPool(Category::kOther), text);
          break;
        case 10:
          text += Pick(kSpaces);
          break;
        case 11:
          text += Uniform(3) ? Pick(kEmoji) : Pick(kAlmostSpaces);
          break;
        case 12:
          text += Pick(kInvalid);
          break;
        default:  // other White_Space, from the tables
          AppendUtf8(FromPool(Category::kWhiteSpace), text);
      }
    }
  }

  std::mt19937_64 random_;
  std::vector<char32_t> pools_[16];
};

TEST(ScannerTest, SamePiecesAsPcre2OnRandomText) {
  RandomText random(20240601);
  std::vector<std::pair<const Scanner*, std::shared_ptr<const SplitPattern>>> engines;
  for (const Scanner& scanner : Scanners()) engines.emplace_back(&scanner, Regex(scanner.pattern));
  for (int round = 0; round < 4000; ++round) {
    std::string text = random.Next(1 + round % 60, round % 3 == 0);
    for (const auto& [scanner, regex] : engines) {
      ExpectSamePieces(*scanner, *regex, text, "random text " + std::to_string(round));
      ExpectTiles(text, Split(*scanner, text), std::string(scanner->name));
      // Starting anywhere, also inside a character, gives PCRE2's match.
      size_t pos = text.empty() ? 0 : round % text.size();
      Match expected;
      ASSERT_TRUE(regex->Find(text, pos, &expected).ok());
      Match actual = scanner->find(text, pos);
      EXPECT_TRUE(actual.begin == expected.begin && actual.end == expected.end)
          << scanner->name << " from " << pos << " in '" << Escaped(text) << "'";
    }
    if (::testing::Test::HasFailure()) break;  // one text's report is enough
  }
}

// Linear time on the inputs that make naive matchers quadratic: pieces tile 1 MiB runs of one
// letter, digit or space, and of random bytes (correctness and coverage only; no timing).
TEST(ScannerTest, LongRunsAreCovered) {
  constexpr size_t kSize = 1 << 20;
  std::mt19937_64 random(7);
  std::string random_bytes(kSize, '\0');
  for (char& c : random_bytes) c = static_cast<char>(random());
  std::string cjk;
  while (cjk.size() < kSize) cjk += "\u4e00";
  const std::pair<std::string, std::string> inputs[] = {
      {"a", std::string(kSize, 'a')},
      {"A", std::string(kSize, 'A')},
      {"1", std::string(kSize, '1')},
      {"space", std::string(kSize, ' ')},
      {"CJK", cjk},
      {"random bytes", random_bytes},
  };
  for (const Scanner& scanner : Scanners()) {
    for (const auto& [name, text] : inputs) {
      Pieces pieces = Split(scanner, text);
      ExpectTiles(text, pieces, std::string(scanner.name) + " on 1 MiB of " + name);
      if (name != "random bytes") {
        ExpectSamePieces(scanner, *Regex(scanner.pattern), text, "1 MiB of " + name);
      }
    }
  }
}

}  // namespace
}  // namespace ferry::text
