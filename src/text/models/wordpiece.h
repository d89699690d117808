// WordPiece (BERT): each piece is cut greedily into the longest tokens of the vocabulary, from
// the left, tokens after the first spelled with a prefix ("##"). A piece that cannot be cut
// so, or is longer than max_input_chars_per_word characters, is one unk.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ferry/status.h"
#include "text/models/bpe.h"
#include "text/models/model.h"

namespace ferry::text {

class WordPieceModel final : public Model {
 public:
  struct Config {
    std::vector<std::string> tokens;  // by id, as the vocabulary spells them (prefix included)
    std::vector<bool> present;
    TokenId unk = kNoToken;  // REQUIRES: a present id
    std::string prefix = "##";
    size_t max_input_chars_per_word = 100;
  };
  static Result<std::unique_ptr<WordPieceModel>> Create(Config config);

  bool Encode(std::string_view piece, std::vector<TokenId>& ids) const override;
  bool Spans(std::string_view piece, std::span<const TokenId> ids,
             std::vector<ByteSpan>& spans) const override;
  void AddToFingerprint(Fingerprinter& f) const override;

 private:
  explicit WordPieceModel(Config config) : config_(std::move(config)) {}
  Config config_;
  // Tokens that may start a piece, and those that continue one keyed without their prefix, so a
  // lookup is a view into the piece (no string built per try).
  BytesToId first_, continuing_;
  size_t longest_first_ = 0, longest_continuing_ = 0;  // bytes
};

}  // namespace ferry::text
