// The post-processor stage: after the model, the special tokens around one sequence or a pair,
// their type ids and the sequence ranges, for tokenizer.json's TemplateProcessing,
// BertProcessing, RobertaProcessing, ByteLevel and Sequence.
//
// Encode's fast path only needs the ids a single sequence gets before and after it (Wrap);
// EncodeEncoding runs Process, which follows tokenizers' Encoding arithmetic step for step
// (including the overflowing windows, each wrapped on its own), because every attribute of the
// result is compared to tokenizers'.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"
#include "ferry/text.h"

namespace ferry::text {

// One piece of a TemplateProcessing template: a sequence ($A or $B) or a special token, which
// may stand for several ids.
struct TemplatePiece {
  bool is_sequence = false;
  uint32_t sequence = 0;  // 0: $A, 1: $B
  uint32_t type_id = 0;
  std::vector<TokenId> ids;          // special token
  std::vector<std::string> tokens;   // its token strings, one per id
};

struct PostProcessorStep {
  enum class Kind { kByteLevel, kTemplate, kBert, kRoberta };
  Kind kind = Kind::kByteLevel;
  std::vector<TemplatePiece> single, pair;  // kTemplate
  bool has_pair = false;                    // kTemplate: the file has a "pair" template
  TokenId cls = 0, sep = 0;                 // kBert, kRoberta
  std::string cls_token, sep_token;
  // kByteLevel, kRoberta: offsets lose the spaces their tokens start and end with (tokenizers'
  // process_offsets); add_prefix_space spares the first token's single one.
  bool trim_offsets = true;
  bool add_prefix_space = true;
};

// The token strings of an encoding (Tokenizer::Tokens), which trimming offsets reads.
using TokenStrings = std::function<std::vector<std::string>(const Encoding&)>;

class PostProcessor {
 public:
  PostProcessor() = default;  // tokenizer.json's null: sequences are concatenated
  // Checks the steps (a template's single has one $A and no $B, its pair one of each) and builds
  // the post-processor tokenizer.json's Sequence (or one processor) describes.
  static Result<PostProcessor> Make(std::vector<PostProcessorStep> steps, std::string_view origin);

  // tokenizers' added_tokens(is_pair): the ids add_special_tokens puts around the sequence(s).
  size_t AddedTokens(bool pair) const;
  bool CanEncodePairs() const;
  // The ids a single sequence gets before and after it.
  void Wrap(std::vector<TokenId>& prefix, std::vector<TokenId>& suffix) const;
  // The post-processed encoding of `first` (and `second`), as tokenizers' PostProcessor::process.
  // REQUIRES: !second || CanEncodePairs().
  // Encodings with an alignment have their offsets trimmed where a step says so, which needs
  // `tokens` (else no trimming is done).
  Encoding Process(Encoding first, std::optional<Encoding> second, bool add_special_tokens,
                   const TokenStrings* tokens = nullptr) const;
  // The token string of a special token this post-processor adds, or null.
  const std::string* SpecialTokenText(TokenId id) const;
  // What decides Process's output, for the fingerprint.
  std::string Canonical() const;

 private:
  std::vector<Encoding> ProcessStep(const PostProcessorStep& step, std::vector<Encoding> encodings,
                                    bool add_special_tokens, const TokenStrings* tokens) const;
  std::vector<PostProcessorStep> steps_;
  bool present_ = false;  // tokenizers runs PostProcessor::process, else default_process
};

// tokenizers' Encoding arithmetic, used by Process and EncodeEncoding.
void SetSequenceId(Encoding& encoding, uint32_t sequence);
// (Truncate and MergeWith, the public part of it, are in ferry/text.h.)
// tokenizers' truncate_encodings: how much of each sequence `options` keeps.
Status TruncateEncodings(Encoding& first, Encoding* second, const TruncationOptions& options);
void Pad(Encoding& encoding, size_t length, const PaddingOptions& padding);

}  // namespace ferry::text
