#include "text/post_processors/post_processor.h"

#include <gtest/gtest.h>

namespace ferry::text {
namespace {

Encoding Sequence(std::vector<TokenId> ids, uint32_t type_id = 0) {
  Encoding e;
  e.ids = std::move(ids);
  e.type_ids.assign(e.size(), type_id);
  e.special_tokens_mask.assign(e.size(), 0);
  e.attention_mask.assign(e.size(), 1);
  return e;
}

std::vector<std::vector<TokenId>> Windows(const Encoding& e) {
  std::vector<std::vector<TokenId>> out = {e.ids};
  for (const Encoding& o : e.overflowing) out.push_back(o.ids);
  return out;
}

// Values checked against tokenizers 0.23: Encoding.truncate(max_length, stride, direction).
TEST(TruncateTest, RightWindowsRepeatStrideIds) {
  Encoding e = Sequence({1, 2, 3, 4, 5, 6, 7});
  ASSERT_TRUE(Truncate(e, 3, 1, false).ok());
  EXPECT_EQ(Windows(e), (std::vector<std::vector<TokenId>>{{1, 2, 3}, {3, 4, 5}, {5, 6, 7}}));
}

TEST(TruncateTest, LeftWindowsCountFromTheEnd) {
  Encoding e = Sequence({1, 2, 3, 4, 5, 6, 7});
  ASSERT_TRUE(Truncate(e, 3, 1, true).ok());
  EXPECT_EQ(Windows(e), (std::vector<std::vector<TokenId>>{{5, 6, 7}, {3, 4, 5}, {1, 2, 3}}));
  Encoding f = Sequence({1, 2, 3, 4, 5, 6});
  ASSERT_TRUE(Truncate(f, 4, 0, true).ok());
  EXPECT_EQ(Windows(f), (std::vector<std::vector<TokenId>>{{3, 4, 5, 6}, {1, 2}}));
}

TEST(TruncateTest, ZeroLengthMovesEverythingToOverflowing) {
  Encoding e = Sequence({1, 2});
  ASSERT_TRUE(Truncate(e, 0, 0, false).ok());
  EXPECT_TRUE(e.ids.empty());
  ASSERT_EQ(e.overflowing.size(), 1u);
  EXPECT_EQ(e.overflowing[0].ids, (std::vector<TokenId>{1, 2}));
}

TEST(TruncateTest, StrideNotBelowLengthIsAnError) {
  Encoding e = Sequence({1, 2, 3, 4});
  Status status = Truncate(e, 2, 2, false);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("stride 2"), std::string::npos) << status.message();
}

TEST(TruncateEncodingsTest, LongestFirstSharesTheLength) {
  Encoding a = Sequence({1, 2, 3, 4, 5, 6}), b = Sequence({7, 8}, 1);
  TruncationOptions options;
  options.max_length = 5;
  ASSERT_TRUE(TruncateEncodings(a, &b, options).ok());
  EXPECT_EQ(a.ids, (std::vector<TokenId>{1, 2, 3}));  // the shorter keeps its 2
  EXPECT_EQ(b.ids, (std::vector<TokenId>{7, 8}));
  Encoding c = Sequence({1, 2, 3, 4, 5, 6}), d = Sequence({7, 8, 9, 10, 11}, 1);
  ASSERT_TRUE(TruncateEncodings(c, &d, options).ok());
  EXPECT_EQ(c.size() + d.size(), 5u);
  EXPECT_EQ(c.ids, (std::vector<TokenId>{1, 2, 3}));  // 5/2 + 5%2 to the longer
  EXPECT_EQ(d.ids, (std::vector<TokenId>{7, 8}));
}

TEST(TruncateEncodingsTest, OnlySecondNeedsAPairAndEnoughIds) {
  Encoding a = Sequence({1, 2, 3});
  TruncationOptions options;
  options.max_length = 2;
  options.strategy = TruncationOptions::Strategy::kOnlySecond;
  EXPECT_EQ(TruncateEncodings(a, nullptr, options).code(), StatusCode::kInvalidArgument);
  Encoding b = Sequence({4}, 1);
  Status status = TruncateEncodings(a, &b, options);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("has only 1"), std::string::npos) << status.message();
}

TEST(MergeWithTest, OverflowingWindowsCombine) {
  Encoding a = Sequence({1, 2, 3}), b = Sequence({4, 5, 6}, 1);
  ASSERT_TRUE(Truncate(a, 2, 0, false).ok());  // [1,2] + [3]
  ASSERT_TRUE(Truncate(b, 2, 0, false).ok());  // [4,5] + [6]
  MergeWith(a, b);
  EXPECT_EQ(a.ids, (std::vector<TokenId>{1, 2, 4, 5}));
  EXPECT_EQ(Windows(a), (std::vector<std::vector<TokenId>>{
                            {1, 2, 4, 5}, {3, 4, 5}, {3, 6}, {1, 2, 6}}));
  EXPECT_EQ(a.type_ids, (std::vector<uint32_t>{0, 0, 1, 1}));
}

TEST(PadTest, LeftPaddingShiftsSequenceRanges) {
  Encoding e = Sequence({5, 6});
  SetSequenceId(e, 0);
  PaddingOptions padding;
  padding.left = true;
  padding.pad_id = 9;
  padding.pad_type_id = 2;
  padding.pad_token = "<pad>";
  Pad(e, 4, padding);
  EXPECT_EQ(e.ids, (std::vector<TokenId>{9, 9, 5, 6}));
  EXPECT_EQ(e.type_ids, (std::vector<uint32_t>{2, 2, 0, 0}));
  EXPECT_EQ(e.attention_mask, (std::vector<uint8_t>{0, 0, 1, 1}));
  EXPECT_EQ(e.special_tokens_mask, (std::vector<uint8_t>{1, 1, 0, 0}));
  EXPECT_EQ(e.sequence_ids(), (std::vector<int32_t>{-1, -1, 0, 0}));
  EXPECT_EQ(e.token_text, (std::vector<int32_t>{0, 0, -1, -1}));
  EXPECT_EQ(e.token_texts, (std::vector<std::string>{"<pad>"}));
  // A second pad with another token spells only its own positions with it.
  padding.pad_token = "<p2>";
  Pad(e, 5, padding);
  EXPECT_EQ(e.token_text, (std::vector<int32_t>{1, 0, 0, -1, -1}));
  EXPECT_EQ(e.token_texts, (std::vector<std::string>{"<pad>", "<p2>"}));
}

TEST(PadEncodingsTest, BatchLongestRoundsUpToTheMultiple) {
  std::vector<Encoding> batch = {Sequence({1, 2, 3}), Sequence({4})};
  PaddingOptions padding;
  padding.pad_to_multiple_of = 4;
  PadEncodings(batch, padding);
  EXPECT_EQ(batch[0].size(), 4u);
  EXPECT_EQ(batch[1].ids, (std::vector<TokenId>{4, 0, 0, 0}));
}

PostProcessorStep Bert() {
  PostProcessorStep step;
  step.kind = PostProcessorStep::Kind::kBert;
  step.cls = 101;
  step.sep = 102;
  step.cls_token = "[CLS]";
  step.sep_token = "[SEP]";
  return step;
}

TEST(PostProcessorTest, BertPairTypeIdsAndSequenceIds) {
  auto processor = PostProcessor::Make({Bert()}, "test");
  ASSERT_TRUE(processor.ok());
  Encoding out = processor->Process(Sequence({1, 2}), Sequence({3}, 1), true);
  EXPECT_EQ(out.ids, (std::vector<TokenId>{101, 1, 2, 102, 3, 102}));
  EXPECT_EQ(out.type_ids, (std::vector<uint32_t>{0, 0, 0, 0, 1, 1}));
  EXPECT_EQ(out.special_tokens_mask, (std::vector<uint8_t>{1, 0, 0, 1, 0, 1}));
  EXPECT_EQ(out.sequence_ids(), (std::vector<int32_t>{-1, 0, 0, -1, 1, -1}));
  EXPECT_EQ(out.n_sequences(), 2u);
  EXPECT_EQ(processor->AddedTokens(true), 3u);
  ASSERT_NE(processor->SpecialTokenText(101), nullptr);
  EXPECT_EQ(*processor->SpecialTokenText(101), "[CLS]");
}

TEST(PostProcessorTest, WrapGivesTheIdsAroundOneSequence) {
  PostProcessorStep step;
  step.kind = PostProcessorStep::Kind::kTemplate;
  TemplatePiece bos, a, eos;
  bos.ids = {1};
  bos.tokens = {"<s>"};
  a.is_sequence = true;
  eos.ids = {2, 3};
  eos.tokens = {"</s>", "<x>"};
  step.single = {bos, a, eos};
  auto processor = PostProcessor::Make({step}, "test");
  ASSERT_TRUE(processor.ok());
  std::vector<TokenId> prefix, suffix;
  processor->Wrap(prefix, suffix);
  EXPECT_EQ(prefix, (std::vector<TokenId>{1}));
  EXPECT_EQ(suffix, (std::vector<TokenId>{2, 3}));
  EXPECT_FALSE(processor->CanEncodePairs());
  EXPECT_EQ(processor->AddedTokens(false), 3u);
}

TEST(PostProcessorTest, TemplateWithTwoSequencesAIsRefused) {
  PostProcessorStep step;
  step.kind = PostProcessorStep::Kind::kTemplate;
  TemplatePiece a;
  a.is_sequence = true;
  step.single = {a, a};
  auto processor = PostProcessor::Make({step}, "f.json");
  ASSERT_FALSE(processor.ok());
  EXPECT_NE(processor.status().message().find("f.json: post_processor.single"), std::string::npos);
}

}  // namespace
}  // namespace ferry::text
