#include "text/sentencepiece_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "ferry/text.h"
#include "tests/support/test_support.h"

namespace ferry::text {
namespace {

// A tiny protobuf writer for the test models.
std::string Varint(uint64_t v) {
  std::string out;
  do {
    uint8_t byte = v & 0x7F;
    v >>= 7;
    out += static_cast<char>(byte | (v ? 0x80 : 0));
  } while (v);
  return out;
}
std::string Tag(uint32_t field, int wire) { return Varint(uint64_t{field} << 3 | static_cast<uint64_t>(wire)); }
std::string Bytes(uint32_t field, std::string_view value) {
  return Tag(field, 2) + Varint(value.size()) + std::string(value);
}
std::string Float(uint32_t field, float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  std::string out = Tag(field, 5);
  for (int i = 0; i < 4; ++i) out += static_cast<char>(bits >> (8 * i));
  return out;
}
std::string Int(uint32_t field, uint64_t value) { return Tag(field, 0) + Varint(value); }

struct Piece {
  std::string piece;
  float score;
  int type = 1;
};

std::string Model(const std::vector<Piece>& pieces, int model_type, std::string normalizer = "",
                  std::string trainer_extra = "") {
  std::string out;
  for (const Piece& p : pieces) out += Bytes(1, Bytes(1, p.piece) + Float(2, p.score) + Int(3, p.type));
  out += Bytes(2, Int(3, model_type) + trainer_extra);
  out += Bytes(3, Bytes(1, "identity") + normalizer);
  return out;
}

const std::vector<Piece> kUnigram = {
    {"<unk>", 0, 2}, {"<s>", 0, 3}, {"</s>", 0, 3}, {"\xE2\x96\x81", -2}, {"a", -3}, {"b", -3},
    {"\xE2\x96\x81" "ab", -4}, {"ab", -5}, {"<sep>", 0, 4},
};

std::shared_ptr<const Tokenizer> Load(const std::string& proto) {
  auto tokenizer = Tokenizer::FromSentencePieceProto(proto, "test.model");
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  return tokenizer.ok() ? *tokenizer : nullptr;
}

std::vector<TokenId> Encode(const Tokenizer& tokenizer, std::string_view text) {
  std::vector<TokenId> ids;
  EXPECT_TRUE(tokenizer.Encode(text, {}, ids).ok());
  return ids;
}

std::string Decode(const Tokenizer& tokenizer, const std::vector<TokenId>& ids) {
  std::string out;
  EXPECT_TRUE(tokenizer.Decode(ids, false, out).ok());
  return out;
}

TEST(SentencePieceModel, UnigramEncodesTheBestPathAndDecodesBack) {
  auto tokenizer = Load(Model(kUnigram, 1));
  ASSERT_TRUE(tokenizer);
  // "▁ab" (-4) beats "▁" + "ab" (-7) and "▁" + "a" + "b" (-8); extra spaces collapse.
  EXPECT_EQ(Encode(*tokenizer, "  ab   ab "), (std::vector<TokenId>{6, 6}));
  EXPECT_EQ(Decode(*tokenizer, {6, 6}), "ab ab");
  // The user-defined symbol is taken whole inside a word; control pieces never match text.
  EXPECT_EQ(Encode(*tokenizer, "a<sep>b"), (std::vector<TokenId>{3, 4, 8, 5}));
  EXPECT_EQ(Encode(*tokenizer, "<s>").front(), 3u);
  // Uncovered characters: one unk for the run; control pieces decode to nothing, unk to " ⁇ ".
  EXPECT_EQ(Encode(*tokenizer, "xy"), (std::vector<TokenId>{3, 0}));
  EXPECT_EQ(Decode(*tokenizer, {1, 3, 4, 0, 2}), "a \xE2\x81\x87 ");
  EXPECT_TRUE(Encode(*tokenizer, "   ").empty());
}

TEST(SentencePieceModel, BpeMergesTheHighestScoredPieceFirst) {
  std::vector<Piece> pieces = {{"<unk>", 0, 2}, {"\xE2\x96\x81", -1}, {"a", -1}, {"b", -1},
                               {"c", -1},       {"ab", -2},           {"bc", -3}, {"\xE2\x96\x81" "ab", -4}};
  auto tokenizer = Load(Model(pieces, 2));
  ASSERT_TRUE(tokenizer);
  // "ab" first, then "▁ab"; "bc" never gets its turn.
  EXPECT_EQ(Encode(*tokenizer, "abc"), (std::vector<TokenId>{7, 4}));
  // Without "ab" first, "bc" would win: raising its score changes the result (and fingerprint).
  pieces[6].score = -1.5;
  auto other = Load(Model(pieces, 2));
  ASSERT_TRUE(other);
  EXPECT_EQ(Encode(*other, "abc"), (std::vector<TokenId>{1, 2, 6}));
  EXPECT_NE(tokenizer->fingerprint(), other->fingerprint());
  EXPECT_EQ(Decode(*other, {1, 2, 6}), "abc");
}

TEST(SentencePieceModel, ByteFallbackSpellsUnknownCharactersInBytes) {
  std::vector<Piece> pieces = {{"<unk>", 0, 2}, {"\xE2\x96\x81", -1}, {"a", -1}};
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) pieces.push_back({std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">", 0, 6});
  auto tokenizer = Load(Model(pieces, 2, "", Int(35, 1)));
  ASSERT_TRUE(tokenizer);
  // "é" is C3 A9: byte pieces 3 + 0xC3 and 3 + 0xA9.
  EXPECT_EQ(Encode(*tokenizer, "a\xC3\xA9"), (std::vector<TokenId>{1, 2, 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(Decode(*tokenizer, {1, 2, 3 + 0xC3, 3 + 0xA9}), "a\xC3\xA9");
  // A byte run that is not UTF-8: U+FFFD per bad byte, the valid character kept.
  EXPECT_EQ(Decode(*tokenizer, {3 + 0xC3, 2, 3 + 0xFF, 3 + 0xC3, 3 + 0xA9}),
            "\xEF\xBF\xBD" "a\xEF\xBF\xBD\xC3\xA9");
  // Bytes pieces are not matched as text.
  EXPECT_EQ(Encode(*tokenizer, "<0x41>").size(), 7u) << "the space, then each character apart";
}

TEST(SentencePieceModel, WireFormatErrorsNameTheFileFieldAndOffset) {
  const std::string good = Model(kUnigram, 1);
  auto error = [](const std::string& proto) {
    auto tokenizer = Tokenizer::FromSentencePieceProto(proto, "bad.model");
    EXPECT_FALSE(tokenizer.ok());
    return tokenizer.ok() ? Status::Ok() : tokenizer.status();
  };
  // Truncated anywhere inside: a clean error, never a crash.
  for (size_t cut = 1; cut < good.size(); ++cut) {
    auto tokenizer = Tokenizer::FromSentencePieceProto(good.substr(0, cut), "bad.model");
    if (!tokenizer.ok()) {
      EXPECT_NE(tokenizer.status().message().find("bad.model"), std::string::npos);
    }
  }
  Status s = error(good.substr(0, good.size() - 3));
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("runs past the end"), std::string::npos) << s.ToString();
  // The score written as a varint.
  s = error(Bytes(1, Bytes(1, "a") + Int(2, 5)) + good);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("bad.model: ModelProto.pieces[0].score at byte 5: expected wire type 32-bit (5)"),
            std::string::npos)
      << s.ToString();
  // A length far past the end.
  s = error(Tag(1, 2) + Varint(uint64_t{1} << 40) + "xx");
  EXPECT_NE(s.message().find("ModelProto.pieces at byte 1: length 1099511627776 runs past"), std::string::npos)
      << s.ToString();
  // An eleven-byte varint, a group, a wire type that does not exist.
  s = error(Tag(9, 0) + std::string(10, '\xFF') + "\x01");
  EXPECT_NE(s.message().find("longer than"), std::string::npos) << s.ToString();
  s = error(Tag(9, 3) + good);
  EXPECT_NE(s.message().find("start-group"), std::string::npos) << s.ToString();
  s = error(std::string("\x0F", 1) + good);
  EXPECT_NE(s.message().find("wire type 7 does not exist"), std::string::npos) << s.ToString();
}

TEST(SentencePieceModel, ModelErrorsNameTheField) {
  auto status = [](const std::string& proto) {
    auto tokenizer = Tokenizer::FromSentencePieceProto(proto, "bad.model");
    return tokenizer.ok() ? Status::Ok() : tokenizer.status();
  };
  for (float score : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    for (int type : {1, 2}) {
      std::vector<Piece> pieces = kUnigram;
      pieces[4].score = score;
      Status s = status(Model(pieces, type));
      EXPECT_EQ(s.code(), StatusCode::kCorruption);
      EXPECT_NE(s.message().find("bad.model: ModelProto.pieces[4].score"), std::string::npos) << s.ToString();
    }
  }
  std::vector<Piece> duplicate = kUnigram;
  duplicate.push_back({"ab", -1});
  Status s = status(Model(duplicate, 1));
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("pieces[9].piece: \"ab\" is also piece 7"), std::string::npos) << s.ToString();
  std::vector<Piece> no_unk(kUnigram.begin() + 1, kUnigram.end());
  EXPECT_EQ(status(Model(no_unk, 1)).code(), StatusCode::kCorruption);
  s = status(Model(kUnigram, 7));
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("TrainerSpec.model_type: unknown model type 7"), std::string::npos) << s.ToString();
  EXPECT_EQ(status(Model(kUnigram, 3)).code(), StatusCode::kUnsupported);
  std::vector<Piece> unknown_type = kUnigram;
  unknown_type[4].type = 9;
  EXPECT_NE(status(Model(unknown_type, 1)).message().find("pieces[4].type at byte"), std::string::npos);
  // A byte piece without byte_fallback; byte_fallback without all 256 byte pieces.
  std::vector<Piece> bytes = kUnigram;
  bytes.push_back({"<0x41>", 0, 6});
  EXPECT_NE(status(Model(bytes, 2)).message().find("byte_fallback is false"), std::string::npos);
  EXPECT_NE(status(Model(bytes, 2, "", Int(35, 1))).message().find("no byte piece for 0x00"), std::string::npos);
  // A charsmap whose header claims more than there is.
  s = status(Model(kUnigram, 1, Bytes(2, std::string("\xFF\x00\x00\x00", 4))));
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("NormalizerSpec.precompiled_charsmap"), std::string::npos) << s.ToString();
}

TEST(SentencePieceModel, FingerprintCoversScoresAndNormalizerFlags) {
  auto base = Load(Model(kUnigram, 1));
  auto again = Load(Model(kUnigram, 1));
  std::vector<Piece> rescored = kUnigram;
  rescored[7].score = -5.5f;
  auto other_score = Load(Model(rescored, 1));
  auto no_prefix = Load(Model(kUnigram, 1, Int(3, 0)));
  ASSERT_TRUE(base && again && other_score && no_prefix);
  EXPECT_EQ(base->fingerprint(), again->fingerprint());
  EXPECT_NE(base->fingerprint(), other_score->fingerprint());
  EXPECT_NE(base->fingerprint(), no_prefix->fingerprint());
  EXPECT_EQ(Encode(*no_prefix, "ab"), (std::vector<TokenId>{7}));
}

std::filesystem::path SharedFile(const char* name) {
  std::string data = testing::SharedDataDir();
  if (data.empty()) return {};
  auto path = std::filesystem::path(data) / "tokenizers" / "sentencepiece" / name;
  return std::filesystem::exists(path) ? path : std::filesystem::path();
}

// Ids from the `sentencepiece` library (0.2) for these files.
TEST(SentencePieceModel, RealFilesGiveSentencePiecesIds) {
  auto unigram_path = SharedFile("sp_test_model_unigram_en.model");
  auto mistral_path = SharedFile("mistral_7b_v1_tokenizer.model");
  if (unigram_path.empty() || mistral_path.empty()) GTEST_SKIP() << "shared SentencePiece models are absent";
  auto unigram = Tokenizer::Open(unigram_path.string());
  ASSERT_TRUE(unigram.ok()) << unigram.status().ToString();
  EXPECT_EQ(Encode(**unigram, "  Hello   world  "), (std::vector<TokenId>{151, 88, 21, 887}));
  EXPECT_EQ(Encode(**unigram, "\xEF\xAC\x81ne \xEF\xBC\xA6\xEF\xBD\x95\xEF\xBD\x8C\xEF\xBD\x8C \xE2\x91\xA0"),
            (std::vector<TokenId>{706, 280, 53, 88, 4, 357}));
  EXPECT_EQ(Decode(**unigram, {4, 0, 4, 0}), " \xE2\x81\x87   \xE2\x81\x87 ");
  auto mistral = Tokenizer::FromFile(mistral_path.string());
  ASSERT_TRUE(mistral.ok()) << mistral.status().ToString();
  EXPECT_EQ(Encode(**mistral, "  Hello   world  "), (std::vector<TokenId>{259, 22557, 259, 1526, 259}));
  EXPECT_EQ(Decode(**mistral, {259, 22557, 259, 1526, 259}), "  Hello   world  ");
  EXPECT_EQ(Encode(**mistral, "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x98\x80"),
            (std::vector<TokenId>{28705, 29142, 29119, 30321, 28705, 30575}));
}

}  // namespace
}  // namespace ferry::text
