#include "text/models/unigram.h"

#include <gtest/gtest.h>

#include <cmath>

namespace ferry::text {
namespace {

std::unique_ptr<UnigramModel> Model(bool byte_fallback = false) {
  UnigramModel::Config config;
  config.pieces = {"<unk>", "a", "b", "ab", "abc", "c", "<0x78>"};
  config.scores = {0, -1, -1, -1.5, -5, -1, -1};
  config.unk = 0;
  config.byte_fallback = byte_fallback;
  auto model = UnigramModel::Create(std::move(config));
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return std::move(model).value();
}

std::vector<TokenId> Encode(const UnigramModel& model, std::string_view piece) {
  std::vector<TokenId> ids;
  EXPECT_TRUE(model.Encode(piece, ids));
  return ids;
}

TEST(UnigramModel, TheBestScoringCutWins) {
  auto model = Model();
  EXPECT_EQ(Encode(*model, "ab"), (std::vector<TokenId>{3}));      // -1.5 beats -2
  EXPECT_EQ(Encode(*model, "abc"), (std::vector<TokenId>{3, 5}));  // -2.5 beats "abc"'s -5
}

TEST(UnigramModel, UncoveredCharactersFuseIntoOneUnkOrFallBackToBytes) {
  auto model = Model();
  EXPECT_EQ(Encode(*model, "xya"), (std::vector<TokenId>{0, 1}));
  auto fallback = Model(true);
  // "x" has its byte piece, "xy" as a whole does not: the fused unk stays unk.
  EXPECT_EQ(Encode(*fallback, "xa"), (std::vector<TokenId>{6, 1}));
  EXPECT_EQ(Encode(*fallback, "xya"), (std::vector<TokenId>{0, 1}));
}

TEST(UnigramModel, WithoutUnkAnUncoveredCharacterCannotBeEncoded) {
  UnigramModel::Config config;
  config.pieces = {"a"};
  config.scores = {-1};
  auto model = UnigramModel::Create(std::move(config));
  ASSERT_TRUE(model.ok());
  std::vector<TokenId> ids;
  EXPECT_FALSE((*model)->Encode("ax", ids));
}

// The rules of SentencePiece's Viterbi (sentencepiece = true), each in a case the rule decides;
// the `sentencepiece` 0.2.3 wheel gives these ids for a .model of these pieces (identity
// normalizer, no dummy prefix).
std::unique_ptr<UnigramModel> SentencePieceModel(std::vector<std::string> pieces,
                                                 std::vector<double> scores,
                                                 std::vector<bool> user_defined = {}) {
  UnigramModel::Config config;
  config.pieces = std::move(pieces);
  config.scores = std::move(scores);
  config.unk = 0;
  config.sentencepiece = true;
  config.user_defined = std::move(user_defined);
  config.unmatched.assign(config.pieces.size(), false);
  config.unmatched[0] = true;
  auto model = UnigramModel::Create(std::move(config));
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return std::move(model).value();
}

TEST(UnigramModel, SentencePieceScoresAUserDefinedPieceByItsBytes) {
  // "▁▁" (6 bytes) scores 0.5: with "ever", -2.5 beats "▁" + "▁ever" (-3). The rule of earlier
  // sources (bytes times the highest normal score, which starts from FLT_MIN, minus 0.1: -0.1
  // here) lost with -3.1.
  auto model = SentencePieceModel({"<unk>", "▁", "▁ever", "ever", "▁▁"},
                                  {0, -1, -2, -3, 0}, {false, false, false, false, true});
  EXPECT_EQ(Encode(*model, "▁▁ever"), (std::vector<TokenId>{4, 3}));
}

TEST(UnigramModel, SentencePieceRebasesPathScoresBeyondOneHundredThousand) {
  // "k" + "ud" (-3.58) beats "ku" + "d" (-3.59). After "zz" the path is at -199998, where a
  // float's step is 1/64: summed from there the two cuts round the other way, so SentencePiece
  // makes scores relative to the path reaching "k" before going on.
  auto model = SentencePieceModel({"<unk>", "z", "k", "u", "d", "ku", "ud"},
                                  {0, -99999, -1.68, -9, -1.24, -2.35, -1.9});
  EXPECT_EQ(Encode(*model, "kud"), (std::vector<TokenId>{2, 6}));
  EXPECT_EQ(Encode(*model, "zzkud"), (std::vector<TokenId>{1, 1, 2, 6}));
}

TEST(UnigramModel, RefusesBadVocabularies) {
  for (double score : {std::nan(""), double{INFINITY}}) {
    UnigramModel::Config config;
    config.pieces = {"a", "b"};
    config.scores = {-1, score};
    auto model = UnigramModel::Create(std::move(config));
    ASSERT_FALSE(model.ok());
    EXPECT_NE(model.status().message().find("piece 1 (\"b\") has a score that is not finite"),
              std::string::npos);
  }
  UnigramModel::Config twice;
  twice.pieces = {"a", "a"};
  twice.scores = {-1, -2};
  EXPECT_FALSE(UnigramModel::Create(std::move(twice)).ok());
}

}  // namespace
}  // namespace ferry::text
