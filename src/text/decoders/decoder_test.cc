#include "text/decoders/decoder.h"

#include <gtest/gtest.h>

namespace ferry::text {
namespace {

std::string Decode(const Decoder& decoder, std::vector<std::string> tokens) {
  std::string out;
  decoder.Decode(tokens, out);
  return out;
}

TEST(Decoder, LlamaSequence) {
  Decoder llama({MakeReplaceDecoder(MakeReplaceLiteral("\xE2\x96\x81", " ")), MakeByteFallbackDecoder(),
                 MakeFuseDecoder(), MakeStripDecoder(" ", 1, 0)});
  EXPECT_EQ(Decode(llama, {"\xE2\x96\x81Hello", "\xE2\x96\x81", "<0xE2>", "<0x82>", "<0xAC>"}), "Hello \xE2\x82\xAC");
  // A byte run that is not UTF-8 is one U+FFFD per byte.
  EXPECT_EQ(Decode(llama, {"a", "<0xE2>", "<0x82>", "b"}), "a\xEF\xBF\xBD\xEF\xBF\xBD" "b");
}

TEST(Decoder, WordPieceJoinsAndCleansUp) {
  Decoder bert({MakeWordPieceDecoder("##", true)});
  EXPECT_EQ(Decode(bert, {"un", "##aff", "##able", ",", "it", "'", "s", "do", "n't"}),
            "unaffable, it ' s don't");
  EXPECT_EQ(Decode(Decoder({MakeWordPieceDecoder("##", false)}), {"##a", "##b", "."}), "##ab .");
}

TEST(Decoder, MetaspaceDropsTheFirstTokensReplacements) {
  EXPECT_EQ(Decode(Decoder({MakeMetaspaceDecoder("\xE2\x96\x81", true)}),
                   {"\xE2\x96\x81\xE2\x96\x81x", "\xE2\x96\x81y"}),
            "x y");
  EXPECT_EQ(Decode(Decoder({MakeMetaspaceDecoder("\xE2\x96\x81", false)}), {"\xE2\x96\x81x"}), " x");
}

TEST(Decoder, StripNeverCutsPastTheMiddle) {
  EXPECT_EQ(Decode(Decoder({MakeStripDecoder(" ", 2, 1)}), {"   a  ", "  "}), " a ");
}

TEST(Decoder, BpeSuffixIsASpaceExceptAtTheEnd) {
  EXPECT_EQ(Decode(Decoder({MakeBpeDecoder("</w>")}), {"My</w>", "na", "me</w>", "is</w>", "Jo", "hn</w>"}),
            "My name is John");
}

TEST(Decoder, CtcCollapsesRepeatsAndDropsPads) {
  Decoder ctc({MakeCtcDecoder("<pad>", "|", true)});
  // Repeats collapse before pads go, so a pad between two letters keeps both.
  EXPECT_EQ(Decode(ctc, {"<pad>", "<pad>", "h", "e", "e", "l", "l", "<pad>", "l", "o", "o", "o", "<pad>"}), "hello");
  EXPECT_EQ(Decode(ctc, {"a", "|", "|", "b", "'", "s"}), "a b's");
  EXPECT_EQ(Decode(Decoder({MakeCtcDecoder("<pad>", "|", false)}), {"a", "|", "b", "<pad>"}), "a|b");
}

TEST(Decoder, EmptyAffixesReplaceAsRustDoes) {
  // Rust's str::replace("", x) puts x at every character boundary; tokenizers decodes so.
  EXPECT_EQ(Decode(Decoder({MakeBpeDecoder("")}), {"a", "\xC3\xA9", "a"}), " a  \xC3\xA9 a");
  EXPECT_EQ(Decode(Decoder({MakeCtcDecoder("", "", true)}), {"<p>"}), " < p > ");
}

}  // namespace
}  // namespace ferry::text
