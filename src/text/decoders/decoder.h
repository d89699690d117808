// The decoder stage: token strings (as the vocabulary spells them) back to text. Each
// tokenizer.json decoder is one DecoderStep rewriting the list of tokens (tokenizers'
// decode_chain); a Decoder runs them in order and joins what is left.
//
// Byte-level tokenizers (ByteLevel decoder, tiktoken) do not come here: their ids map straight
// to bytes (TokenizerParts::decoded), which is faster and keeps invalid UTF-8 as it is.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "text/normalizers/normalizer.h"

namespace ferry::text {

class DecoderStep {
 public:
  virtual ~DecoderStep() = default;
  // Rewrites `tokens` in place; may change how many there are.
  virtual void Decode(std::vector<std::string>& tokens) const = 0;
  // What decides the output, for the fingerprint.
  virtual std::string Canonical() const = 0;
};

class Decoder {
 public:
  Decoder() = default;
  explicit Decoder(std::vector<std::shared_ptr<const DecoderStep>> steps) : steps_(std::move(steps)) {}
  // Appends the decoded text of `tokens` (consumed) to `out`.
  void Decode(std::vector<std::string>& tokens, std::string& out) const;
  std::string Canonical() const;

 private:
  std::vector<std::shared_ptr<const DecoderStep>> steps_;
};

// A run of `<0xXX>` tokens becomes its bytes if they are valid UTF-8, else one U+FFFD per byte.
std::shared_ptr<const DecoderStep> MakeByteFallbackDecoder();
// All tokens into one.
std::shared_ptr<const DecoderStep> MakeFuseDecoder();
// Removes up to `start` leading and `stop` trailing `content` characters from each token.
std::shared_ptr<const DecoderStep> MakeStripDecoder(std::string content, size_t start, size_t stop);
// Applies a Replace normalizer (MakeReplace / MakeReplaceLiteral) to each token.
std::shared_ptr<const DecoderStep> MakeReplaceDecoder(std::shared_ptr<const NormalizerStep> replace);
// `replacement` becomes a space, except in the first token when the pre-tokenizer prepends one
// (prepend_scheme other than "never"), where it is removed.
std::shared_ptr<const DecoderStep> MakeMetaspaceDecoder(std::string replacement, bool prepends);
// Tokens after the first lose `prefix` or else get a space before them; `cleanup` then undoes
// BERT's spaces before punctuation and in English contractions, token by token.
std::shared_ptr<const DecoderStep> MakeWordPieceDecoder(std::string prefix, bool cleanup);
// Original BPE: `suffix` (</w>) becomes a space, or nothing in the last token.
std::shared_ptr<const DecoderStep> MakeBpeDecoder(std::string suffix);
// CTC output: consecutive repeats collapse to one, `pad` is removed, and with `cleanup` the
// WordPiece cleanup runs and `delimiter` becomes a space; empty tokens are dropped.
std::shared_ptr<const DecoderStep> MakeCtcDecoder(std::string pad, std::string delimiter, bool cleanup);

}  // namespace ferry::text
