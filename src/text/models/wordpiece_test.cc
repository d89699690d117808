#include "text/models/wordpiece.h"

#include <gtest/gtest.h>

namespace ferry::text {
namespace {

std::unique_ptr<WordPieceModel> Model(size_t max_chars = 100, std::string prefix = "##") {
  WordPieceModel::Config config;
  config.tokens = {"[UNK]", "un", prefix + "aff", prefix + "able", "a", prefix + "b", "\xC3\xA9"};
  config.present.assign(config.tokens.size(), true);
  config.unk = 0;
  config.prefix = prefix;
  config.max_input_chars_per_word = max_chars;
  auto model = WordPieceModel::Create(std::move(config));
  EXPECT_TRUE(model.ok());
  return std::move(model).value();
}

std::vector<TokenId> Encode(const WordPieceModel& model, std::string_view piece) {
  std::vector<TokenId> ids;
  EXPECT_TRUE(model.Encode(piece, ids));
  return ids;
}

TEST(WordPieceModel, LongestTokensFirstWithThePrefixAfterTheFirst) {
  auto model = Model();
  EXPECT_EQ(Encode(*model, "unaffable"), (std::vector<TokenId>{1, 2, 3}));
  EXPECT_EQ(Encode(*model, "ab"), (std::vector<TokenId>{4, 5}));
  EXPECT_EQ(Encode(*model, "\xC3\xA9"), (std::vector<TokenId>{6}));
}

TEST(WordPieceModel, AWordThatCannotBeCutIsOneUnk) {
  auto model = Model();
  EXPECT_EQ(Encode(*model, "unx"), (std::vector<TokenId>{0}));
  EXPECT_EQ(Encode(*model, "ba"), (std::vector<TokenId>{0}));  // "b" only continues a word
}

TEST(WordPieceModel, WordsOverTheCharacterLimitAreUnk) {
  auto model = Model(3);
  EXPECT_EQ(Encode(*model, "abbb"), (std::vector<TokenId>{0}));  // "a ##b ##b ##b" but 4 > 3
  EXPECT_EQ(Encode(*model, "abb"), (std::vector<TokenId>{4, 5, 5}));
  EXPECT_EQ(Encode(*model, "ab"), (std::vector<TokenId>{4, 5}));
  EXPECT_EQ(Encode(*model, "unaff"), (std::vector<TokenId>{0}));
  // The limit counts characters, not bytes.
  auto two = Model(1);
  EXPECT_EQ(Encode(*two, "\xC3\xA9"), (std::vector<TokenId>{6}));
}

TEST(WordPieceModel, RefusesAVocabularyWithoutItsUnk) {
  WordPieceModel::Config config;
  config.tokens = {"a"};
  config.present = {true};
  config.unk = 3;
  EXPECT_FALSE(WordPieceModel::Create(std::move(config)).ok());
}

}  // namespace
}  // namespace ferry::text
