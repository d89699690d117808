#include "text/models/unigram.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "text/unicode.h"

namespace ferry::text {
namespace {

constexpr double kUnkPenalty = 10.0;

}  // namespace

Result<std::unique_ptr<UnigramModel>> UnigramModel::Create(Config config) {
  if (config.pieces.empty()) return Corruption("the vocabulary is empty");
  if (config.unk != kNoToken && config.unk >= config.pieces.size()) {
    return Corruption("unk_id " + std::to_string(config.unk) + " is beyond the " +
                      std::to_string(config.pieces.size()) + " pieces");
  }
  std::unique_ptr<UnigramModel> model(new UnigramModel(std::move(config)));
  const Config& c = model->config_;
  double lowest = std::numeric_limits<double>::infinity();
  model->ids_.Reserve(c.pieces.size());
  for (TokenId id = 0; id < c.pieces.size(); ++id) {
    const std::string& piece = c.pieces[id];
    std::string where = "piece " + std::to_string(id) + " (\"" + piece.substr(0, 64) + "\")";
    if (!std::isfinite(c.scores[id])) return Corruption(where + " has a score that is not finite");
    if (piece.empty()) return Corruption(where + " is empty");
    if (!model->ids_.Insert(piece, id)) {
      return Corruption(where + " is also piece " + std::to_string(model->ids_.Find(piece)));
    }
    lowest = std::min(lowest, c.scores[id]);
  }
  model->unk_score_ = lowest - kUnkPenalty;
  if (c.sentencepiece) {
    // SentencePiece: the lowest over NORMAL pieces only, starting from FLT_MAX.
    float low = std::numeric_limits<float>::max();
    for (TokenId id = 0; id < c.pieces.size(); ++id) {
      if (model->IsUserDefined(id) || model->IsUnmatched(id)) continue;
      low = std::min(low, static_cast<float>(c.scores[id]));
    }
    model->float_unk_score_ = low - static_cast<float>(kUnkPenalty);
    // A user-defined piece (as the 0.2.3 wheel's machine code has it): (bytes - 1) * 0.1 in
    // double, then float. Positive, where normal scores are log probabilities, so "▁▁" (6 bytes,
    // 0.5) beats "▁" + "▁ever" for "▁▁ever"; the source read (up to the 0.2.1 development tree)
    // gives bytes times the highest normal score minus 0.1, which lost.
    model->sp_scores_.resize(c.scores.size());
    for (TokenId id = 0; id < c.pieces.size(); ++id) {
      const double bonus = static_cast<double>(c.pieces[id].size() - 1) * 0.1;
      model->sp_scores_[id] = static_cast<float>(model->IsUserDefined(id) ? bonus : c.scores[id]);
    }
  }
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    const char name[] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
    model->byte_pieces_[b] = c.byte_fallback ? model->ids_.Find(std::string_view(name, 6)) : kNoToken;
  }
  std::vector<std::pair<std::string_view, uint32_t>> matchable;
  for (TokenId id = 0; id < c.pieces.size(); ++id) {
    if (!model->IsUnmatched(id)) matchable.emplace_back(c.pieces[id], id);
  }
  model->pieces_ = DoubleArrayTrie::Build(std::move(matchable));
  return model;
}

template <typename Found>
void UnigramModel::ForEachPrefix(std::string_view text, Found&& found) const {
  uint32_t node = DoubleArrayTrie::kRoot;
  for (size_t i = 0; i < text.size(); ++i) {
    node = pieces_.Child(node, static_cast<uint8_t>(text[i]));
    if (node == DoubleArrayTrie::kNone) return;
    if (const uint32_t id = pieces_.Value(node); id != DoubleArrayTrie::kNone) found(i + 1, id);
  }
}

bool UnigramModel::Encode(std::string_view piece, std::vector<TokenId>& ids) const {
  return EncodeImpl(piece, ids, nullptr);
}

bool UnigramModel::EncodeNamingUnknowns(
    std::string_view piece, std::vector<TokenId>& ids,
    const std::function<void(size_t, std::string_view)>& unknown) const {
  return EncodeImpl(piece, ids, &unknown);
}

// tokenizers' Unigram offsets: each token covers its string (an unk the text it stands for);
// the byte-fallback pieces of one unknown stretch all cover that whole stretch.
bool UnigramModel::Spans(std::string_view piece, std::span<const TokenId> ids,
                         std::vector<ByteSpan>& spans) const {
  std::vector<size_t> unk_length(ids.size(), 0);
  if (std::find(ids.begin(), ids.end(), config_.unk) != ids.end()) {
    std::vector<TokenId> again;
    const std::function<void(size_t, std::string_view)> name = [&](size_t index, std::string_view text) {
      if (index < unk_length.size()) unk_length[index] = text.size();
    };
    if (!EncodeImpl(piece, again, &name) || !std::equal(again.begin(), again.end(), ids.begin(), ids.end())) {
      return false;
    }
  }
  size_t pos = 0;
  for (size_t i = 0; i < ids.size();) {
    const TokenId id = ids[i];
    size_t length = 0, count = 1;
    if (unk_length[i] > 0) {  // an unk standing for text (not the unk piece's own spelling)
      length = unk_length[i];
    } else if (id < config_.pieces.size() && !config_.pieces[id].empty() &&
               piece.substr(pos).starts_with(config_.pieces[id])) {
      length = config_.pieces[id].size();
    } else {
      count = 0;
      while (i + count < ids.size() && pos + count < piece.size() &&
             byte_pieces_[static_cast<uint8_t>(piece[pos + count])] == ids[i + count]) {
        ++count;
      }
      length = count;
    }
    if (length == 0 || count == 0) return false;
    spans.insert(spans.end(), count, ByteSpan{static_cast<uint32_t>(pos), static_cast<uint32_t>(pos + length)});
    pos += length;
    i += count;
  }
  return pos == piece.size();
}

bool UnigramModel::EncodeImpl(std::string_view piece, std::vector<TokenId>& ids,
                              const std::function<void(size_t, std::string_view)>* unknown) const {
  if (piece.empty()) return true;
  if (config_.sentencepiece) return EncodeSentencePiece(piece, ids);
  // best[i]: the best path over piece[0, i): its score, where its last token starts, which.
  struct Node {
    double score = 0;
    size_t start = std::string_view::npos;  // npos: no path ends here yet
    TokenId id = kNoToken;
  };
  // Reused per thread, so encoding a piece allocates nothing once the vector has grown. Used
  // through a reference: in a shared library each use of the thread_local itself can cost a
  // __tls_get_addr call (6% of a SentencePiece encode before).
  thread_local std::vector<Node> per_thread;
  std::vector<Node>& best = per_thread;
  best.assign(piece.size() + 1, Node{});
  best[0].start = 0;
  for (size_t start = 0; start < piece.size();) {
    char32_t cp;
    size_t length = DecodeUtf8(piece, start, cp);
    if (length == 0) length = 1;  // a byte that is not UTF-8 is a character of its own
    if (best[start].start == std::string_view::npos) {  // unreachable (only after such bytes)
      start += length;
      continue;
    }
    const double here = best[start].score;
    bool covers_character = false;
    auto offer = [&](size_t end, TokenId id, double score) {
      Node& node = best[end];
      if (node.start == std::string_view::npos || here + score > node.score) {
        node = {here + score, start, id};
      }
    };
    ForEachPrefix(piece.substr(start), [&](size_t bytes, TokenId id) {
      offer(start + bytes, id, config_.scores[id]);
      covers_character = covers_character || bytes == length;
    });
    if (!covers_character) {
      if (config_.unk == kNoToken) return false;
      offer(start + length, config_.unk, unk_score_);
    }
    start += length;
  }
  if (best[piece.size()].start == std::string_view::npos) return false;
  // Back from the end; unks next to each other become one, whose text may be a piece after all.
  const size_t first = ids.size();
  size_t end = piece.size();
  std::vector<std::pair<size_t, std::string_view>> unk_texts;  // (index before the reverse, text)
  auto emit_unk = [&](size_t begin, size_t stop) {
    std::string_view text = piece.substr(begin, stop - begin);
    TokenId id = ids_.Find(text);
    if (id != kNoToken) {
      ids.push_back(id);
      return;
    }
    bool all_bytes = config_.byte_fallback;
    for (char c : text) all_bytes = all_bytes && byte_pieces_[static_cast<uint8_t>(c)] != kNoToken;
    if (!all_bytes) {
      if (unknown) unk_texts.emplace_back(ids.size(), text);
      ids.push_back(config_.unk);
      return;
    }
    for (size_t i = text.size(); i-- > 0;) ids.push_back(byte_pieces_[static_cast<uint8_t>(text[i])]);
  };
  size_t unk_end = std::string_view::npos;  // end of the run of unks being gathered
  while (end > 0) {
    const Node& node = best[end];
    if (node.id == config_.unk) {
      if (unk_end == std::string_view::npos) unk_end = end;
    } else {
      if (unk_end != std::string_view::npos) emit_unk(end, unk_end);
      unk_end = std::string_view::npos;
      ids.push_back(node.id);
    }
    end = node.start;
  }
  if (unk_end != std::string_view::npos) emit_unk(0, unk_end);
  std::reverse(ids.begin() + static_cast<std::ptrdiff_t>(first), ids.end());
  for (const auto& [index, text] : unk_texts) (*unknown)(first + ids.size() - 1 - index, text);
  return true;
}

// SentencePiece's unigram_model.cc EncodeOptimized as the `sentencepiece` 0.2.3 wheel runs it,
// read from its machine code (the source up to the 0.2.1 development tree has neither the
// rebasing below nor the user-defined score in Create). Each position keeps the first best path
// found (strictly greater wins), pieces offered shortest first, unk last. Path scores are
// floats: a candidate is the float sum of the piece's score and the path's so far, compared as
// a float. When the path reaching a start position is below -1e5 (or above 1e5), the paths
// reaching beyond it are made relative to it (less its score, in float) before pieces are
// offered from there. Without that, a long document's sums lose the bits that separate close
// cuts: ferry chose "u" + "le" over "ul" + "e" 46 000 tokens into a document.
bool UnigramModel::EncodeSentencePiece(std::string_view piece, std::vector<TokenId>& ids) const {
  constexpr float kRebaseBeyond = 1e5f;
  struct Node {
    float score = 0;
    size_t start = std::string_view::npos;
    TokenId id = kNoToken;
  };
  thread_local std::vector<Node> per_thread;  // as in EncodeImpl
  std::vector<Node>& best = per_thread;
  best.assign(piece.size() + 1, Node{});
  best[0].start = 0;
  size_t furthest = 0;  // the furthest end any path has reached
  for (size_t start = 0; start < piece.size();) {
    char32_t cp;
    size_t length = DecodeUtf8(piece, start, cp);
    if (length == 0) length = 1;  // not after the normalizer, which makes U+FFFD of such bytes
    if (best[start].start == std::string_view::npos) {
      start += length;
      continue;
    }
    float here = best[start].score;
    if (here < -kRebaseBeyond || here > kRebaseBeyond) {
      // Ends not reached yet take their first candidate whatever their score, so theirs can
      // shift too.
      for (size_t end = start + 1; end <= furthest; ++end) best[end].score -= here;
      here = 0;
    }
    bool covers_character = false;
    ForEachPrefix(piece.substr(start), [&](size_t bytes, TokenId id) {
      const float candidate = sp_scores_[id] + here;
      Node& node = best[start + bytes];
      if (node.start == std::string_view::npos || candidate > node.score) {
        node = {candidate, start, id};
      }
      furthest = std::max(furthest, start + bytes);
      covers_character = covers_character || bytes == length;
    });
    if (!covers_character) {
      if (config_.unk == kNoToken) return false;
      const float candidate = float_unk_score_ + here;
      Node& node = best[start + length];
      if (node.start == std::string_view::npos || candidate > node.score) {
        node = {candidate, start, config_.unk};
      }
      furthest = std::max(furthest, start + length);
    }
    start += length;
  }
  if (best[piece.size()].start == std::string_view::npos) return false;
  // The path's tokens from the back, then in order as SentencePieceProcessor emits them.
  const size_t first = ids.size();
  for (size_t end = piece.size(); end > 0; end = best[end].start) ids.push_back(best[end].id);
  std::reverse(ids.begin() + static_cast<std::ptrdiff_t>(first), ids.end());
  if (std::find(ids.begin() + static_cast<std::ptrdiff_t>(first), ids.end(), config_.unk) ==
      ids.end()) {
    return true;
  }
  // Unks: fused into one, or (byte_fallback) each unk character spelled in byte pieces. The
  // ends are walked again to find each unk's text.
  std::vector<std::pair<size_t, size_t>> spans;  // [start, end) of each token, in order
  for (size_t end = piece.size(); end > 0; end = best[end].start) spans.emplace_back(best[end].start, end);
  std::reverse(spans.begin(), spans.end());
  ids.resize(first);
  bool previous_unk = false;
  for (auto [begin, end] : spans) {
    const TokenId id = best[end].id;
    const bool unk = id == config_.unk;
    if (unk && config_.byte_fallback) {
      for (size_t i = begin; i < end; ++i) {
        TokenId byte = byte_pieces_[static_cast<uint8_t>(piece[i])];
        ids.push_back(byte != kNoToken ? byte : config_.unk);
      }
    } else if (!(unk && previous_unk)) {
      ids.push_back(id);
    }
    previous_unk = unk;
  }
  return true;
}

void UnigramModel::AddToFingerprint(Fingerprinter& f) const {
  f.Add("unigram");
  if (config_.sentencepiece) {  // tokenizer.json models keep their earlier fields
    f.Add("sentencepiece");
    for (TokenId id = 0; id < config_.pieces.size(); ++id) {
      f.AddNumber(IsUserDefined(id) | IsUnmatched(id) << 1);
    }
  }
  f.AddNumber(config_.unk);
  f.AddNumber(config_.byte_fallback);
  f.AddNumber(config_.pieces.size());
  for (TokenId id = 0; id < config_.pieces.size(); ++id) {
    f.Add(config_.pieces[id]);
    uint64_t bits;
    static_assert(sizeof bits == sizeof(double));
    std::memcpy(&bits, &config_.scores[id], sizeof bits);
    f.AddNumber(bits);
  }
}

}  // namespace ferry::text
