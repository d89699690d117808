// The one Tokenizer implementation: added tokens, normalizer, pre-tokenizer, model,
// post-processor and decoder. The loaders (tokenizer_json.cc, tiktoken.cc) fill its parts.
#pragma once

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ferry/text.h"
#include "text/decoders/decoder.h"
#include "text/models/bpe.h"
#include "text/normalizers/normalizer.h"
#include "text/post_processors/post_processor.h"
#include "text/pre_tokenizer.h"

namespace ferry::text {

// Finds added tokens in text as tokenizers does: leftmost-longest over all contents, a
// single_word token only between non-word characters, lstrip/rstrip widening the match over
// adjacent whitespace. An Aho-Corasick automaton, so the search is linear in the text whatever
// the contents (a long token whose prefix the text repeats cannot make it quadratic).
class AddedTokenMatcher {
 public:
  // `contents[i]` is what to look for (normalized already where that applies).
  void Build(const std::vector<AddedToken>& tokens, const std::vector<std::string>& contents);
  bool empty() const { return nodes_.size() <= 1; }
  // The first match in `text`, [begin, end) widened by lstrip/rstrip as Split widens it.
  bool FindFirst(std::string_view text, size_t& begin, size_t& end, TokenId& id) const {
    Found found = Next(text, 0, 0);
    if (found.begin == std::string_view::npos) return false;
    begin = found.begin;
    end = found.end;
    id = found.id;
    return true;
  }

  // Splits `text` on the added tokens: encode_gap(gap) encodes the text before each match and
  // after the last (a gap may be empty), and each match appends its token's id to `ids`, then
  // calls on_match(the text it took, lstrip/rstrip whitespace included).
  template <typename EncodeGap, typename OnMatch = void (*)(std::string_view)>
  Status Split(std::string_view text, std::vector<TokenId>& ids, EncodeGap&& encode_gap,
               OnMatch&& on_match = [](std::string_view) {}) const {
    size_t pos = 0, floor = 0;
    while (true) {
      Found found = Next(text, pos, floor);
      size_t gap_end = std::max(floor, std::min(found.begin, text.size()));
      FERRY_RETURN_IF_ERROR(encode_gap(text.substr(floor, gap_end - floor)));
      if (found.begin == std::string_view::npos) return Status::Ok();
      ids.push_back(found.id);
      const size_t begin = std::max(floor, found.begin);
      on_match(text.substr(begin, std::max(found.end, begin) - begin));
      pos = found.resume;
      floor = std::max(floor, found.end);
    }
  }

 private:
  struct Found {
    size_t begin = std::string_view::npos, end = 0;  // widened by lstrip/rstrip
    size_t resume = 0;  // where the search goes on: the end of the content itself, so (as in
                        // tokenizers) the next match may start inside rstrip's whitespace
    TokenId id = kNoToken;
  };
  // The next match whose (unwidened) start is at or after `pos`; `floor` is where the previous
  // match ended, the limit for lstrip.
  Found Next(std::string_view text, size_t pos, size_t floor) const;

  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
    int32_t token = -1;   // index into tokens_ when a content ends here
    int32_t fail = 0;     // the longest proper suffix of this node's string that is a node
    int32_t output = -1;  // the nearest node on the fail chain where a content ends
    uint32_t depth = 0;   // length of this node's string
  };
  int32_t Child(int32_t node, uint8_t byte) const;
  int32_t Step(int32_t node, uint8_t byte) const;  // the automaton's transition

  std::vector<Node> nodes_;
  std::vector<AddedToken> tokens_;
  size_t longest_ = 0;  // bytes in the longest content
};

// How ids become text: by the bytes each id stands for (`decoded`: the ByteLevel decoder, rank
// files), the spellings joined with spaces (tokenizer.json without a decoder, as tokenizers
// does), or the spellings through `decoder_steps`.
enum class DecoderKind { kByteLevel, kRawBytes, kJoinWithSpace, kSteps };

struct TokenizerParts {
  std::string origin;
  std::unique_ptr<const Model> model;
  std::vector<AddedToken> added;  // by id
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  PostProcessor post_processor;
  // tokenizer.json's "truncation" and "padding": settings the tokenizer starts with, not content.
  std::optional<TruncationOptions> truncation;
  std::optional<PaddingOptions> padding;
  DecoderKind decoder = DecoderKind::kByteLevel;
  Decoder decoder_steps;  // kSteps
  // Token spellings by id as the vocabulary writes them (tokenizer.json: byte-level; tiktoken:
  // the raw bytes), for IdToToken/TokenToId. Ids not in the vocabulary are absent.
  std::vector<std::string> spelling;
  std::vector<bool> has_spelling;
  std::vector<bool> in_model;  // by id: the model's own vocabulary has it (not only added_tokens)
  // The bytes each id decodes to.
  std::vector<std::string> decoded;
};

Result<std::shared_ptr<const Tokenizer>> BuildTokenizer(TokenizerParts parts);

}  // namespace ferry::text
