#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ferry/text.h"

namespace ferry::text {
namespace {

std::vector<TokenId> Encode(const Tokenizer& tokenizer, std::string_view text) {
  std::vector<TokenId> ids;
  EXPECT_TRUE(tokenizer.Encode(text, {}, ids).ok());
  return ids;
}

std::string ErrorOf(std::string_view json) {
  auto tokenizer = Tokenizer::FromJson(json, "t.json");
  return tokenizer.ok() ? "" : std::string(tokenizer.status().message());
}

TEST(TokenizerJson, WordPieceWithoutModelTypeAndItsTemplate) {
  auto tokenizer = Tokenizer::FromJson(R"({
    "model": {"unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
              "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "hello": 3, "wor": 4, "##ld": 5, "!": 6}},
    "added_tokens": [{"id": 1, "content": "[CLS]", "special": true}, {"id": 2, "content": "[SEP]", "special": true}],
    "normalizer": {"type": "BertNormalizer", "lowercase": true},
    "pre_tokenizer": {"type": "BertPreTokenizer"},
    "post_processor": {"type": "BertProcessing", "cls": ["[CLS]", 1], "sep": ["[SEP]", 2]},
    "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true}})", "t.json");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  const Tokenizer& t = **tokenizer;
  EXPECT_EQ(Encode(t, "Hello WORLD!"), (std::vector<TokenId>{1, 3, 4, 5, 6, 2}));
  std::string text;
  ASSERT_TRUE(t.Decode(std::vector<TokenId>{1, 3, 4, 5, 6, 2}, true, text).ok());
  EXPECT_EQ(text, "hello world!");
}

TEST(TokenizerJson, OffsetsAndWordsOnTheOffsetsPathOnly) {
  auto tokenizer = Tokenizer::FromJson(R"({
    "model": {"unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
              "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "hello": 3, "wor": 4, "##ld": 5, "!": 6}},
    "added_tokens": [{"id": 1, "content": "[CLS]", "special": true}, {"id": 2, "content": "[SEP]", "special": true}],
    "normalizer": {"type": "BertNormalizer", "lowercase": true},
    "pre_tokenizer": {"type": "BertPreTokenizer"},
    "post_processor": {"type": "BertProcessing", "cls": ["[CLS]", 1], "sep": ["[SEP]", 2]}})", "t.json");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  const std::string text = "H\xC3\xA9llo W\xC3\x96RLD!";  // Héllo WÖRLD!: é and Ö are two bytes
  EncodeInput input;
  input.first = {text};
  Encoding fast;
  ASSERT_TRUE((*tokenizer)->EncodeEncoding(input, {}, nullptr, nullptr, fast).ok());
  EXPECT_FALSE(fast.has_alignment);
  EXPECT_TRUE(fast.offsets.empty());
  for (auto unit : {EncodeOptions::Offsets::kBytes, EncodeOptions::Offsets::kCharacters}) {
    EncodeOptions options;
    options.offsets = unit;
    Encoding aligned;
    ASSERT_TRUE((*tokenizer)->EncodeEncoding(input, options, nullptr, nullptr, aligned).ok());
    EXPECT_EQ(aligned.ids, fast.ids);  // [CLS] hello wor ##ld ! [SEP]
    using Offsets = std::vector<std::pair<uint32_t, uint32_t>>;
    const Offsets bytes = {{0, 0}, {0, 6}, {7, 11}, {11, 13}, {13, 14}, {0, 0}};
    const Offsets characters = {{0, 0}, {0, 5}, {6, 9}, {9, 11}, {11, 12}, {0, 0}};
    EXPECT_EQ(aligned.offsets, unit == EncodeOptions::Offsets::kBytes ? bytes : characters);
    EXPECT_EQ(aligned.words, (std::vector<int32_t>{-1, 0, 1, 1, 2, -1}));
    EXPECT_EQ(aligned.WordToTokens(1, 0), (std::pair<size_t, size_t>{2, 4}));
    EXPECT_EQ(aligned.CharToWord(aligned.offsets[3].first, 0), 1u);
    EXPECT_EQ(aligned.TokenToWord(0), std::nullopt);  // [CLS]
  }
}

TEST(TokenizerJson, UnigramWithMetaspace) {
  auto tokenizer = Tokenizer::FromJson(R"({
    "model": {"type": "Unigram", "unk_id": 0,
              "vocab": [["<unk>", 0.0], ["\u2581", -2.0], ["\u2581ab", -1.0], ["a", -3.0], ["b", -3.0]]},
    "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": true},
    "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": true}})",
                                       "t.json");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  EXPECT_EQ(Encode(**tokenizer, "ab abx"), (std::vector<TokenId>{2, 2, 0}));
  std::string text;
  ASSERT_TRUE((*tokenizer)->Decode(std::vector<TokenId>{2, 2, 3}, false, text).ok());
  EXPECT_EQ(text, "ab aba");
}

TEST(TokenizerJson, ErrorsNameTheFileAndTheJsonPath) {
  EXPECT_EQ(ErrorOf(R"({"model": {"type": "Unigram", "unk_id": 0, "vocab": [["a", 0.0], ["a", 1.0]]}})"),
            "t.json: model.vocab[1]: \"a\" is also piece 0");
  EXPECT_EQ(ErrorOf(R"({"model": {"type": "WordPiece", "unk_token": "?", "vocab": {"a": 0}}})"),
            "t.json: model.unk_token: \"?\" is not in the vocab");
  EXPECT_NE(ErrorOf(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "dropout": 0.5}})")
                .find("t.json: model.dropout is set"),
            std::string::npos);
  EXPECT_EQ(ErrorOf(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                        "decoder": {"type": "Sequence", "decoders": [{"type": "Strip", "content": " ", "start": -1}]}})"),
            "t.json: decoder.decoders[0].start: expected a non-negative integer");
  EXPECT_EQ(ErrorOf(R"({"model": {"type": "Unigram", "vocab": [["a", 0.0]]},
                        "normalizer": {"type": "Precompiled", "precompiled_charsmap": "AAAAAA=="}})"),
            "t.json: normalizer.precompiled_charsmap: the trie is empty");
}

// The fuzzer's find: a padding object without "strategy" read an element that was never set.
TEST(TokenizerJson, PaddingStrategyIsRequiredAsInTokenizers) {
  const std::string model = R"("model": {"type": "WordLevel", "unk_token": "a", "vocab": {"a": 0}})";
  auto with_padding = [&](std::string padding) { return ErrorOf("{" + model + R"(, "padding": )" + padding + "}"); };
  EXPECT_EQ(with_padding(R"({"direction": "Right", "pad_id": 0})"),
            "t.json: padding.strategy: missing: expected \"BatchLongest\" or {\"Fixed\": length}");
  for (const char* bad : {R"({"strategy": null})", R"({"strategy": 5})", R"({"strategy": "Longest"})",
                          R"({"strategy": {"Fixed": 0}})", R"({"strategy": {"Fixed": "8"}})"}) {
    EXPECT_EQ(with_padding(bad), "t.json: padding.strategy: expected \"BatchLongest\" or {\"Fixed\": length}") << bad;
  }
  EXPECT_EQ(with_padding(R"({"strategy": "BatchLongest"})"), "");
  auto fixed = Tokenizer::FromJson("{" + model + R"(, "padding": {"strategy": {"Fixed": 8}}})", "t.json");
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  ASSERT_TRUE((*fixed)->default_padding().has_value());
  EXPECT_EQ((*fixed)->default_padding()->length, 8u);
}

}  // namespace
}  // namespace ferry::text
