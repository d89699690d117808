// WordLevel: each piece is one token of the vocabulary, or unk.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ferry/status.h"
#include "text/models/bpe.h"
#include "text/models/model.h"

namespace ferry::text {

class WordLevelModel final : public Model {
 public:
  struct Config {
    std::vector<std::string> tokens;  // by id
    std::vector<bool> present;
    TokenId unk = kNoToken;  // REQUIRES: a present id
  };
  static Result<std::unique_ptr<WordLevelModel>> Create(Config config);

  bool Encode(std::string_view piece, std::vector<TokenId>& ids) const override;
  bool Spans(std::string_view piece, std::span<const TokenId> ids,
             std::vector<ByteSpan>& spans) const override;
  void AddToFingerprint(Fingerprinter& f) const override;

 private:
  explicit WordLevelModel(Config config) : config_(std::move(config)) {}
  Config config_;
  BytesToId ids_;  // keys are views into config_.tokens
};

}  // namespace ferry::text
