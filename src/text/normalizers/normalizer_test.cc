#include "text/normalizers/normalizer.h"

#include <gtest/gtest.h>

namespace ferry::text {
namespace {

std::string Apply(const Normalizer& normalizer, std::string_view text) {
  std::string out;
  normalizer.Apply(text, out);
  return out;
}

TEST(Normalizer, SentencePieceSpacesAsLlamaWritesThem) {
  Normalizer llama({MakePrepend("\xE2\x96\x81"), MakeReplaceLiteral(" ", "\xE2\x96\x81")});
  EXPECT_EQ(Apply(llama, "Hi  there"), "\xE2\x96\x81Hi\xE2\x96\x81\xE2\x96\x81there");
  EXPECT_EQ(Apply(llama, ""), "");  // Prepend leaves empty text empty
}

TEST(Normalizer, ReplaceWithARegex) {
  auto pattern = SplitPattern::Compile(" {2,}");
  ASSERT_TRUE(pattern.ok());
  Normalizer spaces({MakeReplace(std::move(pattern).value(), "_")});
  EXPECT_EQ(Apply(spaces, "a b  c     d"), "a b_c_d");
}

TEST(Normalizer, LowercaseIsRustsCharacterByCharacterMapping) {
  Normalizer lower({MakeLowercase()});
  EXPECT_EQ(Apply(lower, "\xC4\xB0" "A\xCE\xA3"), "i\xCC\x87" "a\xCF\x83");  // İ -> i + U+0307; Σ -> σ
  EXPECT_EQ(Apply(lower, "A\xFF" "B"), "a\xFF" "b");  // bytes that are not UTF-8 pass
}

TEST(Normalizer, NmtDropsControlsAndSpacesSentencePieceWhitespace) {
  Normalizer nmt({MakeNmt()});
  EXPECT_EQ(Apply(nmt, "a\x01\x7F" "b\tc\r\n" "d\xE2\x80\x8B" "e\xE2\x96\x81" "f\xEF\xBF\xBD"), "ab c  d e f ");
  EXPECT_EQ(Apply(nmt, "\xC2\x8F\xC2\x85x\xFF"), "\xC2\x85x\xFF");  // U+008F goes, U+0085 stays, bytes pass
}

TEST(Normalizer, StripAndStripAccents) {
  EXPECT_EQ(Apply(Normalizer({MakeStrip(false, true)}), " \t a \xE3\x80\x80"), " \t a");
  Normalizer accents({MakeUnicodeNormalizer(UnicodeForm::kNFD), MakeStripAccents()});
  EXPECT_EQ(Apply(accents, "caf\xC3\xA9"), "cafe");
}

TEST(Normalizer, BertCleansSplitsChineseStripsAndLowers) {
  BertNormalizerOptions options;
  Normalizer bert({MakeBertNormalizer(options)});
  // NUL, U+FFFD and U+200B (Cf) go; tab becomes a space; 中 gets spaces; É loses its accent.
  using std::literals::operator""sv;
  EXPECT_EQ(Apply(bert, "A\x00" "b\xEF\xBF\xBD\xE2\x80\x8B\tC\xE4\xB8\xAD\xC3\x89"sv),
            std::string("ab c \xE4\xB8\xAD e"));
  options.strip_accents = false;
  options.lowercase = false;
  EXPECT_EQ(Apply(Normalizer({MakeBertNormalizer(options)}), "\xC3\x89"), "\xC3\x89");
}

TEST(Normalizer, CanonicalFormsDifferWithTheirParameters) {
  EXPECT_NE(Normalizer({MakePrepend("a")}).Canonical(), Normalizer({MakePrepend("b")}).Canonical());
  EXPECT_NE(Normalizer({MakeStrip(true, false)}).Canonical(),
            Normalizer({MakeStrip(false, true)}).Canonical());
}

}  // namespace
}  // namespace ferry::text
