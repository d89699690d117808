#include "text/models/wordpiece.h"

#include <algorithm>

namespace ferry::text {
namespace {

bool IsContinuationByte(char c) { return (static_cast<uint8_t>(c) & 0xC0) == 0x80; }

}  // namespace

Result<std::unique_ptr<WordPieceModel>> WordPieceModel::Create(Config config) {
  if (config.unk >= config.tokens.size() || !config.present[config.unk]) {
    return InvalidArgument("WordPiece needs its unk token in the vocabulary");
  }
  std::unique_ptr<WordPieceModel> model(new WordPieceModel(std::move(config)));
  const Config& c = model->config_;
  model->first_.Reserve(c.tokens.size());
  model->continuing_.Reserve(c.tokens.size());
  for (TokenId id = 0; id < c.tokens.size(); ++id) {
    if (!c.present[id] || c.tokens[id].empty()) continue;
    std::string_view token = c.tokens[id];
    // Keys are views into config_.tokens, which the model owns and never changes.
    model->first_.Insert(token, id);
    model->longest_first_ = std::max(model->longest_first_, token.size());
    if (!c.prefix.empty() && token.starts_with(c.prefix) && token.size() > c.prefix.size()) {
      std::string_view rest = token.substr(c.prefix.size());
      model->continuing_.Insert(rest, id);
      model->longest_continuing_ = std::max(model->longest_continuing_, rest.size());
    }
  }
  return model;
}

bool WordPieceModel::Encode(std::string_view piece, std::vector<TokenId>& ids) const {
  if (piece.empty()) return true;
  size_t characters = 0;
  for (char c : piece) characters += !IsContinuationByte(c);
  if (characters > config_.max_input_chars_per_word) {
    ids.push_back(config_.unk);
    return true;
  }
  const size_t first = ids.size();
  for (size_t start = 0; start < piece.size();) {
    // With an empty prefix, tokens continue a piece as they are (tokenizers looks up "" + rest).
    const bool continuing = start > 0 && !config_.prefix.empty();
    const BytesToId& table = continuing ? continuing_ : first_;
    size_t end = std::min(piece.size(), start + (continuing ? longest_continuing_ : longest_first_));
    TokenId found = kNoToken;
    while (end > start) {
      if (end == piece.size() || !IsContinuationByte(piece[end])) {
        found = table.Find(piece.substr(start, end - start));
        if (found != kNoToken) break;
      }
      --end;  // back to the previous character boundary (or into this character's start)
    }
    if (found == kNoToken) {
      ids.resize(first);
      ids.push_back(config_.unk);
      return true;
    }
    ids.push_back(found);
    start = end;
  }
  return true;
}

// tokenizers' WordPiece offsets: an unk stands for the whole word; the other tokens cover what
// they spell, the prefix of a continuing token not counted.
bool WordPieceModel::Spans(std::string_view piece, std::span<const TokenId> ids,
                           std::vector<ByteSpan>& spans) const {
  if (ids.size() == 1 && ids[0] == config_.unk) {
    spans.push_back({0, static_cast<uint32_t>(piece.size())});
    return true;
  }
  size_t pos = 0;
  for (TokenId id : ids) {
    if (id >= config_.tokens.size() || !config_.present[id]) return false;
    std::string_view token = config_.tokens[id];
    if (pos > 0 && !config_.prefix.empty()) {
      if (!token.starts_with(config_.prefix)) return false;
      token.remove_prefix(config_.prefix.size());
    }
    if (token.empty() || !piece.substr(pos).starts_with(token)) return false;
    spans.push_back({static_cast<uint32_t>(pos), static_cast<uint32_t>(pos + token.size())});
    pos += token.size();
  }
  return pos == piece.size();
}

void WordPieceModel::AddToFingerprint(Fingerprinter& f) const {
  f.Add("wordpiece");
  f.AddNumber(config_.unk);
  f.Add(config_.prefix);
  f.AddNumber(config_.max_input_chars_per_word);
  f.AddNumber(config_.tokens.size());
  for (TokenId id = 0; id < config_.tokens.size(); ++id) {
    f.AddNumber(config_.present[id]);
    if (config_.present[id]) f.Add(config_.tokens[id]);
  }
}

}  // namespace ferry::text
