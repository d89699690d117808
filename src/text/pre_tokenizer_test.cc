#include "text/pre_tokenizer.h"

#include <gtest/gtest.h>

namespace ferry::text {
namespace {

std::vector<std::string> Pieces(std::vector<PreTokenizerStep> steps, std::string_view text,
                                bool at_start = true) {
  auto pre = PreTokenizer::FromSteps(std::move(steps));
  EXPECT_TRUE(pre.ok());
  std::vector<std::string> scratch, out;
  EXPECT_TRUE(pre->ForEachPiece(text, at_start, scratch, [&](std::string_view p) {
                     out.emplace_back(p);
                   }).ok());
  return out;
}

PreTokenizerStep Step(PreTokenizerStep::Kind kind) {
  PreTokenizerStep step;
  step.kind = kind;
  return step;
}

TEST(PreTokenizer, MetaspaceReplacesPrependsAndSplits) {
  PreTokenizerStep meta = Step(PreTokenizerStep::Kind::kMetaspace);
  meta.replacement = "_";
  EXPECT_EQ(Pieces({meta}, "Hi  you"), (std::vector<std::string>{"_Hi", "_", "_you"}));
  EXPECT_EQ(Pieces({meta}, " x"), (std::vector<std::string>{"_x"}));  // no second replacement
  meta.prepend = PreTokenizerStep::Prepend::kFirst;
  EXPECT_EQ(Pieces({meta}, "x", false), (std::vector<std::string>{"x"}));
  meta.split = false;
  EXPECT_EQ(Pieces({meta}, "a b"), (std::vector<std::string>{"_a_b"}));
}

TEST(PreTokenizer, BertSplitsOnWhitespaceAndEveryPunctuationCharacter) {
  EXPECT_EQ(Pieces({Step(PreTokenizerStep::Kind::kBert)}, " Hello,world!! \xE3\x80\x82x"),
            (std::vector<std::string>{"Hello", ",", "world", "!", "!", "\xE3\x80\x82", "x"}));
}

TEST(PreTokenizer, WhitespaceAndWhitespaceSplit) {
  EXPECT_EQ(Pieces({Step(PreTokenizerStep::Kind::kWhitespace)}, "it's  ok?!"),
            (std::vector<std::string>{"it", "'", "s", "ok", "?!"}));
  EXPECT_EQ(Pieces({Step(PreTokenizerStep::Kind::kWhitespaceSplit)}, " it's\tok?! "),
            (std::vector<std::string>{"it's", "ok?!"}));
}

// Bert and Metaspace alone take one-pass paths; followed by a step that changes nothing they run
// step by step. Both must give the same pieces.
TEST(PreTokenizer, OnePassPathsAgreeWithTheStepByStepOne) {
  PreTokenizerStep meta = Step(PreTokenizerStep::Kind::kMetaspace);
  meta.replacement = "\xE2\x96\x81";
  const PreTokenizerStep noop = Step(PreTokenizerStep::Kind::kWhitespaceSplit);
  for (std::string_view text : {"a", " a  b ", "\xE2\x96\x81x", "x\xE2\x96\x81\xE2\x96\x81", "it's, (ok)!",
                                "caf\xC3\xA9 \xE3\x80\x82\xFF\xFE end", "\xE2\x96\x81 \xE2\x96\x81"}) {
    EXPECT_EQ(Pieces({Step(PreTokenizerStep::Kind::kBert)}, text),
              Pieces({Step(PreTokenizerStep::Kind::kBert), noop}, text)) << text;
    for (bool split : {true, false}) {
      meta.split = split;
      EXPECT_EQ(Pieces({meta}, text), Pieces({meta, noop}, text)) << text;
    }
  }
}

}  // namespace
}  // namespace ferry::text
