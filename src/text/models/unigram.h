// Unigram (SentencePiece's default model; T5, ALBERT, XLM-R): a piece is cut where the sum of the
// pieces' scores (log probabilities) is highest (Viterbi). A character no piece covers is unk,
// scored 10 below the lowest score; adjacent unks fuse into one. With byte_fallback, an unk
// becomes the `<0xXX>` pieces of its bytes when the vocabulary has them all.
//
// Ties go as in tokenizers: at each end position the first best path found wins, paths found in
// order of their last piece's start, then its length.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ferry/status.h"
#include "text/models/bpe.h"
#include "text/models/double_array.h"
#include "text/models/model.h"

namespace ferry::text {

class UnigramModel final : public Model {
 public:
  struct Config {
    std::vector<std::string> pieces;  // by id
    std::vector<double> scores;       // by id
    TokenId unk = kNoToken;           // kNoToken: a text with an uncovered character fails
    bool byte_fallback = false;
    // SentencePiece's own Viterbi, for .model files (tokenizer.json keeps tokenizers' rules
    // above): a user-defined piece scores 0.1 per byte after its first, so it is nearly always
    // taken; `unmatched` pieces (control, unk, byte, unused) never match text; unk scores 10
    // below the lowest normal piece, in float; a run of unks is one unk, never looked up as a
    // piece (with byte_fallback: each unk character's `<0xXX>` pieces). The arithmetic, float
    // path scores rebased as they pass 1e5, is in unigram.cc.
    bool sentencepiece = false;
    std::vector<bool> user_defined, unmatched;  // by id, sentencepiece only; empty: none
  };
  // Errors (kCorruption) name the piece: a non-finite score, an empty or repeated piece.
  static Result<std::unique_ptr<UnigramModel>> Create(Config config);

  bool Encode(std::string_view piece, std::vector<TokenId>& ids) const override;
  bool EncodeNamingUnknowns(std::string_view piece, std::vector<TokenId>& ids,
                            const std::function<void(size_t, std::string_view)>& unknown) const override;
  bool Spans(std::string_view piece, std::span<const TokenId> ids,
             std::vector<ByteSpan>& spans) const override;
  void AddToFingerprint(Fingerprinter& f) const override;

 private:
  explicit UnigramModel(Config config) : config_(std::move(config)) {}
  // Encode; unknown (if set) gets each unk id's index and text.
  bool EncodeImpl(std::string_view piece, std::vector<TokenId>& ids,
                  const std::function<void(size_t, std::string_view)>* unknown) const;
  bool EncodeSentencePiece(std::string_view piece, std::vector<TokenId>& ids) const;
  bool IsUserDefined(TokenId id) const {
    return id < config_.user_defined.size() && config_.user_defined[id];
  }
  bool IsUnmatched(TokenId id) const { return id < config_.unmatched.size() && config_.unmatched[id]; }
  // Calls found(length, id) for each piece that is a prefix of `text`, shortest first.
  template <typename Found>
  void ForEachPrefix(std::string_view text, Found&& found) const;

  Config config_;
  double unk_score_ = 0;
  // sentencepiece: what each piece adds to a path's score (a user-defined piece's from its
  // length), and the unk's, in the float arithmetic of EncodeSentencePiece.
  std::vector<float> sp_scores_;
  float float_unk_score_ = 0;
  BytesToId ids_;  // keys are views into config_.pieces
  TokenId byte_pieces_[256];
  DoubleArrayTrie pieces_;  // every piece text can match, to its id
};

}  // namespace ferry::text
