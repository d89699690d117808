// The model stage of the pipeline: one pre-tokenized piece in, its ids out. BPE (byte-level and
// SentencePiece-style), WordPiece, Unigram and WordLevel implement it; the tokenizer calls it
// once per piece, so the hot loops inside a model are free of virtual calls.
#pragma once

#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "ferry/text.h"
#include "text/alignment.h"
#include "text/fingerprint.h"

namespace ferry::text {

class Model {
 public:
  virtual ~Model() = default;
  // Appends the ids of `piece`. False (nothing appended) when the piece cannot be encoded: only
  // rank-file BPE, for a byte that has no rank and merges into no token. Thread-safe.
  virtual bool Encode(std::string_view piece, std::vector<TokenId>& ids) const = 0;
  // Encode, also calling unknown(index in ids, text) for each unk id whose token string (as
  // tokenizers reports it) is the text it stands for rather than the unk token: Unigram's. The
  // other models' unk tokens are spelled as the unk token, so they name nothing.
  virtual bool EncodeNamingUnknowns(
      std::string_view piece, std::vector<TokenId>& ids,
      const std::function<void(size_t, std::string_view)>& unknown) const {
    (void)unknown;
    return Encode(piece, ids);
  }
  // The offsets path: appends the byte span within `piece` of each of `ids` (what Encode appended
  // for the piece), as tokenizers' model gives its tokens' offsets. False when the model cannot
  // tell: it does not track spans, or the ids do not cover the piece as it would cut it.
  virtual bool Spans(std::string_view piece, std::span<const TokenId> ids,
                     std::vector<ByteSpan>& spans) const {
    (void)piece, (void)ids, (void)spans;
    return false;
  }
  // Adds everything that decides Encode's output, starting with the model's kind.
  virtual void AddToFingerprint(Fingerprinter& f) const = 0;
};

}  // namespace ferry::text
