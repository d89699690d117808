#include "text/models/bpe.h"

#include <gtest/gtest.h>

namespace ferry::text {
namespace {

// A SentencePiece-style vocabulary: characters, one merge, byte pieces for 'é' (C3 A9) only.
BpeModel::Config CharacterConfig(bool byte_fallback, bool fuse_unk) {
  BpeModel::Config config;
  config.tokens = {"<unk>", "a", "b", "ab", "<0xC3>", "<0xA9>"};
  config.present.assign(config.tokens.size(), true);
  config.symbols = BpeModel::Symbols::kCharacters;
  config.byte_fallback = byte_fallback;
  config.unk = 0;
  config.fuse_unk = fuse_unk;
  return config;
}

std::vector<TokenId> Encode(const BpeModel& model, std::string_view piece) {
  std::vector<TokenId> ids;
  EXPECT_TRUE(model.Encode(piece, ids));
  return ids;
}

TEST(BpeModel, CharactersMergeAndFallBackToBytes) {
  auto model = BpeModel::FromMerges(CharacterConfig(true, true), {{1, 2}});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(Encode(**model, "abab"), (std::vector<TokenId>{3, 3}));
  EXPECT_EQ(Encode(**model, "a\xC3\xA9" "b"), (std::vector<TokenId>{1, 4, 5, 2}));
  // Without byte pieces for a character it is unk; unknown characters in a row fuse into one.
  EXPECT_EQ(Encode(**model, "xyab"), (std::vector<TokenId>{0, 3}));
}

TEST(BpeModel, UnkWaitsForTheNextKnownCharacterAsInTokenizers) {
  // 'x' is unknown, 'é' falls back to bytes: the bytes come out first, and the unk of 'y'
  // fuses with the unk of 'x' across them.
  auto model = BpeModel::FromMerges(CharacterConfig(true, true), {});
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(Encode(**model, "x\xC3\xA9y" "a"), (std::vector<TokenId>{4, 5, 0, 1}));
  auto unfused = BpeModel::FromMerges(CharacterConfig(false, false), {});
  ASSERT_TRUE(unfused.ok());
  EXPECT_EQ(Encode(**unfused, "xy" "a"), (std::vector<TokenId>{0, 0, 1}));
}

TEST(BpeModel, LongPiecesMergeAsShortOnes) {
  auto model = BpeModel::FromMerges(CharacterConfig(true, true), {{1, 2}});
  ASSERT_TRUE(model.ok());
  std::string piece;
  for (int i = 0; i < 200; ++i) piece += "ab";
  EXPECT_EQ(Encode(**model, piece), std::vector<TokenId>(200, 3));
}

}  // namespace
}  // namespace ferry::text
