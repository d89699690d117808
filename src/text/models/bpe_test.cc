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

namespace ferry::text {
namespace {

// "▁" = U+2581. Merging the words between cuts before "▁" must give the ids of merging the whole
// piece; where a token has "▁" after another character, the model must not cut there.
TEST(BpeModel, CutsBeforeSentencePieceSpacesOnlyWhereNoTokenSpansThem) {
  const std::string s = "\xE2\x96\x81";
  BpeModel::Config config;
  config.tokens = {"<unk>", s, "a", s + "a", s + s, "a" + s};
  config.present.assign(config.tokens.size(), true);
  config.symbols = BpeModel::Symbols::kCharacters;
  config.unk = 0;
  // Without the token "a▁" (id 5 absent): cuts apply, and "▁▁" stays whole.
  BpeModel::Config safe = config;
  safe.present[5] = false;
  auto cut = BpeModel::FromMerges(safe, {{1, 2}, {1, 1}});
  ASSERT_TRUE(cut.ok());
  std::vector<TokenId> ids;
  ASSERT_TRUE((*cut)->Encode(s + "a" + s + s + "a" + s + "a", ids));
  EXPECT_EQ(ids, (std::vector<TokenId>{3, 1, 3, 3}));  // the first merge wins: ▁a before ▁▁
  // With "a▁" mergeable first, a merge crosses what would be a cut.
  auto whole = BpeModel::FromMerges(config, {{2, 1}, {1, 2}});
  ASSERT_TRUE(whole.ok());
  ids.clear();
  ASSERT_TRUE((*whole)->Encode(s + "a" + s + "a", ids));
  EXPECT_EQ(ids, (std::vector<TokenId>{1, 5, 2}));
}

TEST(BpeModel, AffixesMarkWordInnerAndFinalSymbols) {
  BpeModel::Config config;
  config.tokens = {"<unk>", "a", "##b", "a</w>", "##b</w>", "ab</w>", "ab"};
  config.present.assign(config.tokens.size(), true);
  config.symbols = BpeModel::Symbols::kCharacters;
  config.unk = 0;
  config.continuing_prefix = "##";
  config.end_suffix = "</w>";
  // (a, ##b</w>) merges into a + b</w>: the right token's prefix goes.
  auto model = BpeModel::FromMerges(config, {{1, 4}});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(Encode(**model, "ab"), (std::vector<TokenId>{5}));
  EXPECT_EQ(Encode(**model, "a"), (std::vector<TokenId>{3}));
  EXPECT_EQ(Encode(**model, "abb"), (std::vector<TokenId>{1, 2, 4}));
  // Looked up with their affixes, "b" first and "a" last are both unknown: two unks (no fuse_unk).
  EXPECT_EQ(Encode(**model, "ba"), (std::vector<TokenId>{0, 0}));
  // A right token shorter than the prefix cannot be merged by tokenizers' rule: refused.
  EXPECT_FALSE(BpeModel::FromMerges(config, {{1, 1}}).ok());
}

}  // namespace
}  // namespace ferry::text

namespace ferry::text {
namespace {

// Byte-level ranks (ids 0-255 the bytes, then "ab", "bc", "abc"): a piece's first ratings come
// from the byte-pair table, later ones and long pieces (MergeLarge) from the pair hash; both must
// give the same ids, and a merge list without every byte (no table) the same as well.
TEST(BpeModel, BytePairRatingsAgreeWithThePairTable) {
  BpeModel::Config config;
  for (int b = 0; b < 256; ++b) config.tokens.push_back(std::string(1, static_cast<char>(b)));
  for (const char* token : {"ab", "bc", "abc"}) config.tokens.push_back(token);
  config.present.assign(config.tokens.size(), true);
  config.symbols = BpeModel::Symbols::kBytes;
  auto ranks = BpeModel::FromRanks(config);
  ASSERT_TRUE(ranks.ok()) << ranks.status().ToString();
  EXPECT_EQ(Encode(**ranks, "abcd"), (std::vector<TokenId>{258, 'd'}));
  std::string short_piece, long_piece;
  for (int i = 0; i < 20; ++i) short_piece += "bcab";  // 80 bytes: MergeSmall
  for (int i = 0; i < 40; ++i) long_piece += "bcab";   // 160 bytes: MergeLarge
  std::vector<TokenId> want;
  for (int i = 0; i < 20; ++i) want.insert(want.end(), {257, 256});
  EXPECT_EQ(Encode(**ranks, short_piece), want);
  want.insert(want.end(), want.begin(), want.end());
  EXPECT_EQ(Encode(**ranks, long_piece), want);
  // The same merges as a list, with byte 'z' absent: no byte-pair table, the same ids.
  config.present['z'] = false;
  auto merges = BpeModel::FromMerges(config, {{'a', 'b'}, {'b', 'c'}, {256, 'c'}});
  ASSERT_TRUE(merges.ok()) << merges.status().ToString();
  EXPECT_EQ(Encode(**merges, "abcd"), (std::vector<TokenId>{258, 'd'}));
  EXPECT_EQ(Encode(**merges, short_piece), (std::vector<TokenId>(want.begin(), want.begin() + 40)));
}

}  // namespace
}  // namespace ferry::text
