#include "text/alignment.h"

#include <gtest/gtest.h>

#include "text/normalizers/normalizer.h"

namespace ferry::text {
namespace {

std::vector<ByteSpan> SpansOf(const AlignedText& text) { return text.spans(); }

// The original span of each character of the text, in order.
std::vector<ByteSpan> CharacterSpans(const AlignedText& text) {
  std::vector<ByteSpan> out;
  const std::string& s = text.text();
  for (size_t pos = 0; pos < s.size();) {
    size_t length = 1;
    while (pos + length < s.size() && (static_cast<uint8_t>(s[pos + length]) & 0xC0) == 0x80) ++length;
    out.push_back(text.spans()[pos]);
    pos += length;
  }
  return out;
}

TEST(AlignedText, OriginalGivesEachByteItsCharactersSpanFromTheBase) {
  AlignedText text = AlignedText::Original("a\xC3\xA9", 10);  // a é
  EXPECT_EQ(SpansOf(text), (std::vector<ByteSpan>{{10, 11}, {11, 13}, {11, 13}}));
  EXPECT_EQ(text.OriginalSpan(1, 2), (ByteSpan{11, 13}));  // half a character: all of it
  EXPECT_EQ(text.OriginalSpan(2, 2), (ByteSpan{12, 12}));  // empty: unconverted, as tokenizers
}

TEST(AlignedText, TransformReplacesInsertsAndRemovesByTokenizersRule) {
  AlignedText text = AlignedText::Original("abcd", 0);
  // x replaces a; y is inserted (a's span); z replaces b and removes c; d stays.
  text.Transform({{U'x', 0}, {U'y', 1}, {U'z', -1}, {U'd', 0}}, 0);
  EXPECT_EQ(text.text(), "xyzd");
  EXPECT_EQ(SpansOf(text), (std::vector<ByteSpan>{{0, 1}, {0, 1}, {1, 2}, {3, 4}}));
  // Removed before the first change: the first change replaces the character after them.
  AlignedText stripped = AlignedText::Original("  hi", 0);
  stripped.Transform({{U'h', 0}, {U'i', 0}}, 2);
  EXPECT_EQ(SpansOf(stripped), (std::vector<ByteSpan>{{2, 3}, {3, 4}}));
  // An insertion at the very start takes the empty span where the text's original starts.
  AlignedText start = AlignedText::Original("b", 5);
  start.Transform({{U'a', 1}, {U'b', 0}}, 0);
  EXPECT_EQ(SpansOf(start), (std::vector<ByteSpan>{{5, 5}, {5, 6}}));
}

TEST(AlignedText, PrependAndReplaceAsLlamaNormalizesSpaces) {
  Normalizer llama({MakePrepend("\xE2\x96\x81"), MakeReplaceLiteral(" ", "\xE2\x96\x81")});
  AlignedText text = AlignedText::Original("Hi you", 0);
  ASSERT_TRUE(llama.Track(text).ok());
  EXPECT_EQ(text.text(), "\xE2\x96\x81Hi\xE2\x96\x81you");
  // The prefix takes the first character's span; each replacement the space's.
  EXPECT_EQ(CharacterSpans(text),
            (std::vector<ByteSpan>{{0, 1}, {0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}}));
  AlignedText empty = AlignedText::Original("", 0);
  ASSERT_TRUE(llama.Track(empty).ok());
  EXPECT_TRUE(empty.empty());
}

TEST(AlignedText, DecompositionAndCompositionKeepTheCharactersSpan) {
  Normalizer nfd({MakeUnicodeNormalizer(UnicodeForm::kNFD)});
  AlignedText text = AlignedText::Original("\xC3\xA9x", 0);  // é x
  ASSERT_TRUE(nfd.Track(text).ok());
  EXPECT_EQ(text.text(), "e\xCC\x81x");
  EXPECT_EQ(CharacterSpans(text), (std::vector<ByteSpan>{{0, 2}, {0, 2}, {2, 3}}));
  // NFC folds e + U+0301 into é: one character, the span of the e (the mark is removed).
  Normalizer nfc({MakeUnicodeNormalizer(UnicodeForm::kNFC)});
  AlignedText composed = AlignedText::Original("e\xCC\x81x", 0);
  ASSERT_TRUE(nfc.Track(composed).ok());
  EXPECT_EQ(composed.text(), "\xC3\xA9x");
  EXPECT_EQ(CharacterSpans(composed), (std::vector<ByteSpan>{{0, 1}, {3, 4}}));
}

TEST(AlignedText, TrackedNormalizersGiveApplysText) {
  const std::vector<std::string> texts = {"", "  Héllo  Wörld\t", "İstanbul Straße", "中文 e\xCC\xA3\xCC\x82",
                                          "a\x01" "b\xEF\xBB\xBF" "c", "\xFF\xFE raw", "ﬁ ㎏ Ａ"};
  std::vector<std::pair<std::string, Normalizer>> normalizers;
  normalizers.emplace_back("bert", Normalizer({MakeBertNormalizer({})}));
  for (UnicodeForm form : {UnicodeForm::kNFC, UnicodeForm::kNFD, UnicodeForm::kNFKC, UnicodeForm::kNFKD}) {
    normalizers.emplace_back("unicode", Normalizer({MakeUnicodeNormalizer(form)}));
  }
  normalizers.emplace_back("lower+strip", Normalizer({MakeLowercase(), MakeStripAccents(), MakeStrip(true, true), MakeNmt()}));
  for (const auto& [name, normalizer] : normalizers) {
    for (const std::string& text : texts) {
      std::string applied;
      normalizer.Apply(text, applied);
      AlignedText tracked = AlignedText::Original(text, 0);
      ASSERT_TRUE(normalizer.Track(tracked).ok());
      EXPECT_EQ(tracked.text(), applied) << name << ": " << text;
      ASSERT_EQ(tracked.spans().size(), tracked.text().size());
      for (ByteSpan span : tracked.spans()) {
        EXPECT_LE(span.begin, span.end);
        EXPECT_LE(span.end, text.size()) << name << ": " << text;
      }
    }
  }
}

TEST(AlignedText, LowercaseThatGrowsSharesTheSpan) {
  Normalizer lower({MakeLowercase()});
  AlignedText text = AlignedText::Original("\xC4\xB0" "A", 0);  // İ A -> i U+0307 a
  ASSERT_TRUE(lower.Track(text).ok());
  EXPECT_EQ(CharacterSpans(text), (std::vector<ByteSpan>{{0, 2}, {0, 2}, {2, 3}}));
}

TEST(ByteToCharOffsets, ConvertsAsTokenizersPythonBindingDoes) {
  const ByteToCharOffsets offsets("a\xC3\xA9" "b");  // a é b: bytes 0, 1-2, 3
  auto convert = [&](uint32_t begin, uint32_t end) {
    offsets.Convert(begin, end);
    return std::pair{begin, end};
  };
  EXPECT_EQ(convert(1, 3), (std::pair<uint32_t, uint32_t>{1, 2}));
  EXPECT_EQ(convert(2, 3), (std::pair<uint32_t, uint32_t>{1, 2}));  // inside é: é
  EXPECT_EQ(convert(3, 4), (std::pair<uint32_t, uint32_t>{2, 3}));  // to the end
  EXPECT_EQ(convert(0, 0), (std::pair<uint32_t, uint32_t>{0, 0}));
  EXPECT_EQ(convert(4, 4), (std::pair<uint32_t, uint32_t>{4, 4}));  // past the text: as it was
}

}  // namespace
}  // namespace ferry::text
