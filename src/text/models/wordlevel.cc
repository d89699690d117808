#include "text/models/wordlevel.h"

namespace ferry::text {

Result<std::unique_ptr<WordLevelModel>> WordLevelModel::Create(Config config) {
  if (config.unk >= config.tokens.size() || !config.present[config.unk]) {
    return InvalidArgument("WordLevel needs its unk token in the vocabulary");
  }
  std::unique_ptr<WordLevelModel> model(new WordLevelModel(std::move(config)));
  model->ids_.Reserve(model->config_.tokens.size());
  for (TokenId id = 0; id < model->config_.tokens.size(); ++id) {
    if (model->config_.present[id]) model->ids_.Insert(model->config_.tokens[id], id);
  }
  return model;
}

bool WordLevelModel::Encode(std::string_view piece, std::vector<TokenId>& ids) const {
  if (piece.empty()) return true;
  TokenId id = ids_.Find(piece);
  ids.push_back(id == kNoToken ? config_.unk : id);
  return true;
}

bool WordLevelModel::Spans(std::string_view piece, std::span<const TokenId> ids,
                           std::vector<ByteSpan>& spans) const {
  if (ids.size() != 1) return false;
  spans.push_back({0, static_cast<uint32_t>(piece.size())});  // a word is one token
  return true;
}

void WordLevelModel::AddToFingerprint(Fingerprinter& f) const {
  f.Add("wordlevel");
  f.AddNumber(config_.unk);
  f.AddNumber(config_.tokens.size());
  for (TokenId id = 0; id < config_.tokens.size(); ++id) {
    f.AddNumber(config_.present[id]);
    if (config_.present[id]) f.Add(config_.tokens[id]);
  }
}

}  // namespace ferry::text
