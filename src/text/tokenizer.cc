#include <algorithm>
#include <functional>
#include <thread>
#include <unordered_set>

#include "base/strings.h"
#include "pipeline/parallel_for.h"
#include "text/alignment.h"
#include "text/fingerprint.h"
#include "text/tokenizer_parts.h"
#include "text/unicode.h"

namespace ferry::text {
namespace {

// Whitespace run ending at `end` (tokenizers' `\s*$` on the text before an lstrip token).
size_t WhitespaceStart(std::string_view text, size_t end) {
  size_t pos = end;
  while (pos > 0) {
    size_t start = pos - 1;
    while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
    char32_t cp;
    if (DecodeUtf8(text, start, cp) != pos - start || !IsWhitespace(cp)) break;
    pos = start;
  }
  return pos;
}

// End of the whitespace run starting at `begin` (`^\s*` after an rstrip token).
size_t WhitespaceEnd(std::string_view text, size_t begin) {
  size_t pos = begin;
  char32_t cp;
  while (pos < text.size()) {
    size_t length = DecodeUtf8(text, pos, cp);
    if (length == 0 || !IsWhitespace(cp)) break;
    pos += length;
  }
  return pos;
}

// The threads a batch encode uses: 0 means one per core, and more than the cores only adds
// stacks and switches.
int BatchThreads(int threads) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return threads <= 0 ? cores : std::min(threads, cores);
}

bool WordCharBefore(std::string_view text, size_t end) {
  if (end == 0) return false;
  size_t start = end - 1;
  while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
  char32_t cp;
  return DecodeUtf8(text, start, cp) == end - start && IsWordChar(cp);
}

bool WordCharAt(std::string_view text, size_t pos) {
  char32_t cp;
  return pos < text.size() && DecodeUtf8(text, pos, cp) != 0 && IsWordChar(cp);
}

class PipelineTokenizer final : public Tokenizer {
 public:
  explicit PipelineTokenizer(TokenizerParts parts) : parts_(std::move(parts)) {
    origin_ = parts_.origin;
    // TokenToId reads the contents as written; IdToToken and Decode see normalized added tokens
    // by their normalized contents, as tokenizers does (it keeps those under that spelling).
    for (TokenId id = 0; id < parts_.spelling.size(); ++id) {
      if (parts_.has_spelling[id]) by_spelling_.emplace(parts_.spelling[id], id);
    }
    parts_.post_processor.Wrap(prefix_, suffix_);
    std::vector<AddedToken> raw, normalized;
    std::vector<std::string> raw_contents, normalized_contents;
    std::unordered_set<std::string> special_contents;
    for (const AddedToken& token : parts_.added) {
      if (token.special) special_contents.insert(token.content);
      if (token.normalized && !parts_.normalizer.empty()) {
        std::string content;
        parts_.normalizer.Apply(token.content, content);
        if (content != token.content) {
          parts_.spelling[token.id] = content;
          parts_.decoded[token.id].clear();
          if (!AppendFromByteLevel(content, parts_.decoded[token.id])) parts_.decoded[token.id] = content;
        }
        normalized.push_back(token);
        normalized_contents.push_back(std::move(content));
      } else if (token.normalized) {
        normalized.push_back(token);
        normalized_contents.push_back(token.content);
      } else {
        raw.push_back(token);
        raw_contents.push_back(token.content);
      }
    }
    raw_matcher_.Build(raw, raw_contents);
    normalized_matcher_.Build(normalized, normalized_contents);
    auto without_special = [](std::vector<AddedToken> tokens, std::vector<std::string> contents,
                              AddedTokenMatcher& matcher) {
      size_t kept = 0;
      for (size_t i = 0; i < tokens.size(); ++i) {
        if (tokens[i].special) continue;
        tokens[kept] = std::move(tokens[i]);
        contents[kept++] = std::move(contents[i]);
      }
      tokens.resize(kept);
      contents.resize(kept);
      matcher.Build(tokens, contents);
    };
    without_special(raw, raw_contents, raw_plain_matcher_);
    without_special(normalized, normalized_contents, normalized_plain_matcher_);
    // Decode(skip_special_tokens) skips every id whose spelling is a special token's content, so
    // a special token whose normalized spelling differs is not skipped (tokenizers' rule).
    is_special_.assign(parts_.decoded.size(), false);
    if (!special_contents.empty()) {
      for (TokenId id = 0; id < parts_.spelling.size(); ++id) {
        is_special_[id] = parts_.has_spelling[id] && special_contents.contains(parts_.spelling[id]);
      }
    }
    fingerprint_ = ComputeFingerprint();
  }

  Status Encode(std::string_view text, const EncodeOptions& options,
                std::vector<TokenId>& ids) const override {
    return EncodeNaming(text, options, ids, nullptr);
  }

  // Encode, calling (*name)(index, text) for each id whose token string is not the vocabulary's
  // spelling of it: an added token matched with the whitespace lstrip/rstrip took, or an unk
  // that stands for some text (Unigram). Null: the fast path, which names nothing.
  using TokenNamer = std::function<void(size_t, std::string_view)>;
  Status EncodeNaming(std::string_view text, const EncodeOptions& options,
                      std::vector<TokenId>& ids, const TokenNamer* name) const {
    if (options.add_special_tokens) ids.insert(ids.end(), prefix_.begin(), prefix_.end());
    Scratch scratch;
    const Matchers matchers = MatchersFor(options);
    auto on_match = [&](std::string_view matched) {
      if (name) (*name)(ids.size() - 1, matched);
    };
    if (matchers.raw && !matchers.raw->empty()) {
      FERRY_RETURN_IF_ERROR(matchers.raw->Split(
          text, ids,
          [&](std::string_view gap) {
            return EncodeSegment(gap, gap.data() == text.data(), matchers.normalized, scratch,
                                 ids, name);
          },
          on_match));
    } else {
      FERRY_RETURN_IF_ERROR(EncodeSegment(text, true, matchers.normalized, scratch, ids, name));
    }
    if (options.add_special_tokens) ids.insert(ids.end(), suffix_.begin(), suffix_.end());
    return Status::Ok();
  }

  Status EncodeEncoding(const EncodeInput& input, const EncodeOptions& options,
                        const TruncationOptions* truncation, const PaddingOptions* padding,
                        Encoding& out) const override {
    const bool pair = input.has_second;
    if (pair && !parts_.post_processor.CanEncodePairs()) {
      return InvalidArgument(origin_ + ": cannot encode a pair: the post_processor's "
                             "TemplateProcessing has no \"pair\" template");
    }
    EncodeOptions plain = options;
    plain.add_special_tokens = false;
    // Pretokenized input: each word is numbered by its place in the input, and its offsets are
    // within the word (tokenizers encodes each word as a sequence of its own).
    const bool input_is_words = input.pretokenized;
    // tokenizers encodes each sequence (each word, pretokenized) on its own; the second one's
    // ids start with type id 1.
    auto encode_sequence = [&](const std::vector<std::string_view>& words, uint32_t type_id,
                               Encoding& encoding) -> Status {
      const TokenNamer name = [&](size_t index, std::string_view text) {
        const TokenId id = encoding.ids[index];
        if (id < parts_.spelling.size() && parts_.spelling[id] == text) return;
        encoding.token_text.resize(encoding.ids.size(), -1);
        encoding.token_text[index] = static_cast<int32_t>(encoding.token_texts.size());
        encoding.token_texts.emplace_back(text);
      };
      if (options.offsets == EncodeOptions::Offsets::kNone) {
        for (std::string_view word : words) {
          FERRY_RETURN_IF_ERROR(EncodeNaming(word, plain, encoding.ids, &name));
        }
      } else {
        encoding.has_alignment = true;
        for (size_t w = 0; w < words.size(); ++w) {
          const size_t first_id = encoding.size();
          const std::optional<int32_t> word =
              input_is_words ? std::optional<int32_t>(static_cast<int32_t>(w)) : std::nullopt;
          FERRY_RETURN_IF_ERROR(EncodeAligned(words[w], plain, word, encoding, &name));
          FERRY_RETURN_IF_ERROR(CheckAgainstFastPath(words[w], plain, encoding, first_id));
          if (options.offsets == EncodeOptions::Offsets::kCharacters) {
            const ByteToCharOffsets characters(words[w]);
            for (size_t i = first_id; i < encoding.size(); ++i) {
              characters.Convert(encoding.offsets[i].first, encoding.offsets[i].second);
            }
          }
        }
      }
      if (!encoding.token_text.empty()) encoding.token_text.resize(encoding.ids.size(), -1);
      encoding.type_ids.assign(encoding.size(), type_id);
      encoding.special_tokens_mask.assign(encoding.size(), 0);
      encoding.attention_mask.assign(encoding.size(), 1);
      return Status::Ok();
    };
    Encoding first;
    std::optional<Encoding> second;
    FERRY_RETURN_IF_ERROR(encode_sequence(input.first, 0, first));
    if (pair) FERRY_RETURN_IF_ERROR(encode_sequence(input.second, 1, second.emplace()));
    if (truncation) {
      TruncationOptions kept = *truncation;
      const size_t added = options.add_special_tokens ? SpecialTokensToAdd(pair) : 0;
      // A max_length below the special tokens truncates nothing: tokenizers' subtraction wraps
      // to a huge length there, and parity includes that.
      if (added <= kept.max_length) {
        kept.max_length -= added;
        Status truncated = TruncateEncodings(first, second ? &*second : nullptr, kept);
        if (!truncated.ok()) {
          return truncated.WithContext("max_length " + std::to_string(truncation->max_length) +
                                       " less the " + std::to_string(added) +
                                       " special tokens the post-processor adds");
        }
      }
    }
    const TokenStrings tokens = [this](const Encoding& encoding) { return Tokens(encoding); };
    out = parts_.post_processor.Process(std::move(first), std::move(second),
                                        options.add_special_tokens, &tokens);
    if (padding) PadEncodings(std::span<Encoding>(&out, 1), *padding);
    return Status::Ok();
  }

  std::vector<std::string> Tokens(const Encoding& encoding) const override {
    std::vector<std::string> tokens(encoding.size());
    for (size_t i = 0; i < encoding.size(); ++i) {
      const TokenId id = encoding.ids[i];
      if (!encoding.token_text.empty() && encoding.token_text[i] >= 0) {
        tokens[i] = encoding.token_texts[encoding.token_text[i]];
      } else if (const std::string* special = encoding.special_tokens_mask[i]
                                                  ? parts_.post_processor.SpecialTokenText(id)
                                                  : nullptr) {
        tokens[i] = *special;
      } else if (id < parts_.spelling.size() && parts_.has_spelling[id]) {
        tokens[i] = parts_.spelling[id];
      }
    }
    return tokens;
  }

  size_t SpecialTokensToAdd(bool pair) const override {
    return parts_.post_processor.AddedTokens(pair);
  }
  bool CanEncodePairs() const override { return parts_.post_processor.CanEncodePairs(); }
  const std::optional<TruncationOptions>& default_truncation() const override {
    return parts_.truncation;
  }
  const std::optional<PaddingOptions>& default_padding() const override { return parts_.padding; }
  const std::vector<AddedToken>& added_tokens() const override { return parts_.added; }
  bool FindAddedToken(std::string_view text, size_t& begin, size_t& end,
                      TokenId& id) const override {
    return raw_matcher_.FindFirst(text, begin, end, id);
  }
  bool InModelVocab(TokenId id) const override {
    return id < parts_.in_model.size() && parts_.in_model[id];
  }
  size_t model_vocab_size() const override {
    return static_cast<size_t>(std::count(parts_.in_model.begin(), parts_.in_model.end(), true));
  }

  Status Decode(std::span<const TokenId> ids, bool skip_special_tokens,
                std::string& out) const override {
    size_t joined = 0;  // tokens joined so far (kJoinWithSpace)
    std::vector<std::string> tokens;  // kSteps
    for (size_t i = 0; i < ids.size(); ++i) {
      TokenId id = ids[i];
      if (id >= parts_.decoded.size() || !parts_.has_spelling[id]) {
        return OutOfRange(origin_ + ": id " + std::to_string(id) + " at position " +
                          std::to_string(i) + " is not in the vocabulary (vocab size " +
                          std::to_string(vocab_size()) + ")");
      }
      if (skip_special_tokens && is_special_[id]) continue;
      if (parts_.decoder == DecoderKind::kSteps) {
        tokens.push_back(parts_.spelling[id]);
      } else if (parts_.decoder == DecoderKind::kJoinWithSpace) {
        if (joined++ > 0) out += ' ';
        out += parts_.spelling[id];
      } else {
        out += parts_.decoded[id];
      }
    }
    if (parts_.decoder == DecoderKind::kSteps) parts_.decoder_steps.Decode(tokens, out);
    return Status::Ok();
  }

  bool IdToToken(TokenId id, std::string& token) const override {
    if (id >= parts_.spelling.size() || !parts_.has_spelling[id]) return false;
    token = parts_.spelling[id];
    return true;
  }

  bool TokenToId(std::string_view token, TokenId& id) const override {
    auto it = by_spelling_.find(std::string(token));
    if (it == by_spelling_.end()) return false;
    id = it->second;
    return true;
  }

  size_t vocab_size() const override { return parts_.decoded.size(); }
  bool IsSpecial(TokenId id) const override { return id < is_special_.size() && is_special_[id]; }

 private:
  // The added-token matchers an encode uses: both (null: none matched), or only those of tokens
  // that are not special.
  struct Matchers {
    const AddedTokenMatcher* raw = nullptr;
    const AddedTokenMatcher* normalized = nullptr;
  };
  Matchers MatchersFor(const EncodeOptions& options) const {
    if (!options.match_added_tokens) return {};
    if (options.split_special_tokens) return {&raw_plain_matcher_, &normalized_plain_matcher_};
    return {&raw_matcher_, &normalized_matcher_};
  }

  struct Scratch {
    std::string normalized;
    std::vector<std::string> pieces;
  };

  // A stretch of text between raw added tokens: normalized, split on normalized added tokens,
  // pre-tokenized, encoded. `at_start`: it begins where the input does.
  Status EncodeSegment(std::string_view text, bool at_start, const AddedTokenMatcher* matcher,
                       Scratch& scratch, std::vector<TokenId>& ids, const TokenNamer* name) const {
    if (text.empty()) return Status::Ok();
    if (!parts_.normalizer.empty()) {
      parts_.normalizer.Apply(text, scratch.normalized);
      text = scratch.normalized;
    }
    if (!matcher || matcher->empty()) return EncodePlain(text, at_start, scratch, ids, name);
    return matcher->Split(
        text, ids,
        [&](std::string_view gap) {
          return EncodePlain(gap, at_start && gap.data() == text.data(), scratch, ids, name);
        },
        [&](std::string_view matched) {
          if (name) (*name)(ids.size() - 1, matched);
        });
  }

  Status EncodePlain(std::string_view text, bool at_start, Scratch& scratch,
                     std::vector<TokenId>& ids, const TokenNamer* name) const {
    std::string_view unencodable;
    FERRY_RETURN_IF_ERROR(parts_.pre_tokenizer.ForEachPiece(
        text, at_start, scratch.pieces, [&](std::string_view piece) {
          const bool encoded = name ? parts_.model->EncodeNamingUnknowns(piece, ids, *name)
                                    : parts_.model->Encode(piece, ids);
          if (!encoded && unencodable.empty()) unencodable = piece;
        }));
    if (!unencodable.empty()) return Unencodable(unencodable);
    return Status::Ok();
  }

  // The offsets path, EncodeNaming's twin over AlignedText (without the post-processor's ids):
  // appends the ids of `text` to `encoding` with their byte offsets into `text` and their words
  // (`word`, or one per pre-tokenizer piece and added token when null). Errors: kUnsupported for a
  // component that cannot track alignment, else as Encode.
  Status EncodeAligned(std::string_view text, const EncodeOptions& options,
                       std::optional<int32_t> word, Encoding& encoding, const TokenNamer* name) const {
    AlignedState state{encoding, word, word.value_or(0), name};
    const Matchers matchers = MatchersFor(options);
    auto on_match = [&](std::string_view matched) {
      const auto begin = static_cast<uint32_t>(matched.data() - text.data());
      AddAligned(state, ByteSpan{begin, begin + static_cast<uint32_t>(matched.size())});
      if (name) (*name)(encoding.ids.size() - 1, matched);
    };
    auto encode_gap = [&](std::string_view gap) -> Status {
      if (gap.empty()) return Status::Ok();
      AlignedText aligned = AlignedText::Original(gap, static_cast<size_t>(gap.data() - text.data()));
      FERRY_RETURN_IF_ERROR(parts_.normalizer.Track(aligned));
      return EncodeSegmentAligned(aligned, gap.data() == text.data(), matchers.normalized, state);
    };
    if (matchers.raw && !matchers.raw->empty()) {
      return matchers.raw->Split(text, encoding.ids, encode_gap, on_match);
    }
    return encode_gap(text);
  }

  struct AlignedState {
    Encoding& encoding;
    std::optional<int32_t> fixed_word;
    int32_t next_word;  // the word the next piece or added token is
    const TokenNamer* name;
  };

  // Records the offsets and word of the id just appended (an added token).
  static void AddAligned(AlignedState& state, ByteSpan span) {
    state.encoding.offsets.emplace_back(span.begin, span.end);
    state.encoding.words.push_back(state.fixed_word.value_or(state.next_word++));
  }

  // EncodeSegment's twin: the normalized text split on normalized added tokens, each gap
  // pre-tokenized and encoded.
  Status EncodeSegmentAligned(const AlignedText& text, bool at_start,
                              const AddedTokenMatcher* matcher, AlignedState& state) const {
    if (text.empty()) return Status::Ok();
    if (!matcher || matcher->empty()) return EncodePlainAligned(text, at_start, state);
    const std::string_view all = text.text();
    return matcher->Split(
        all, state.encoding.ids,
        [&](std::string_view gap) {
          const size_t begin = static_cast<size_t>(gap.data() - all.data());
          return EncodePlainAligned(text.Slice(begin, begin + gap.size()),
                                    at_start && begin == 0, state);
        },
        [&](std::string_view matched) {
          const size_t begin = static_cast<size_t>(matched.data() - all.data());
          AddAligned(state, text.OriginalSpan(begin, begin + matched.size()));
          if (state.name) (*state.name)(state.encoding.ids.size() - 1, matched);
        });
  }

  Status EncodePlainAligned(const AlignedText& text, bool at_start, AlignedState& state) const {
    if (text.empty()) return Status::Ok();
    std::vector<AlignedText> pieces;
    FERRY_RETURN_IF_ERROR(parts_.pre_tokenizer.AlignedPieces(text, at_start, pieces));
    std::vector<TokenId>& ids = state.encoding.ids;
    std::vector<ByteSpan> spans;
    for (const AlignedText& piece : pieces) {
      const size_t first = ids.size();
      const bool encoded = state.name
                               ? parts_.model->EncodeNamingUnknowns(piece.text(), ids, *state.name)
                               : parts_.model->Encode(piece.text(), ids);
      if (!encoded) return Unencodable(piece.text());
      spans.clear();
      if (!parts_.model->Spans(piece.text(), std::span<const TokenId>(ids).subspan(first), spans)) {
        return Unsupported(origin_ + ": offsets: the model cannot give the spans of its tokens "
                           "for the piece 0x" + LowerHex(piece.text().substr(0, 16)) +
                           "; ids are unaffected");
      }
      const int32_t word = state.fixed_word.value_or(state.next_word++);
      for (ByteSpan span : spans) {
        const ByteSpan original = piece.OriginalSpan(span.begin, span.end);
        state.encoding.offsets.emplace_back(original.begin, original.end);
        state.encoding.words.push_back(word);
      }
    }
    return Status::Ok();
  }

  // The free self-check of the offsets path: its ids from `first_id` on must be the fast path's.
  Status CheckAgainstFastPath(std::string_view text, const EncodeOptions& options,
                              const Encoding& encoding, size_t first_id) const {
    std::vector<TokenId> fast;
    FERRY_RETURN_IF_ERROR(EncodeNaming(text, options, fast, nullptr));
    if (!std::equal(fast.begin(), fast.end(), encoding.ids.begin() + static_cast<std::ptrdiff_t>(first_id),
                    encoding.ids.end())) {
      return Internal(origin_ + ": offsets: the alignment-tracking pass gave other ids than the "
                      "fast path for a text of " + std::to_string(text.size()) + " bytes (a ferry bug)");
    }
    return Status::Ok();
  }

  Status Unencodable(std::string_view piece) const {
    return InvalidArgument(origin_ + ": cannot encode the piece 0x" + LowerHex(piece.substr(0, 16)) +
                           (piece.size() > 16 ? "..." : "") +
                           ": the model has no token for part of it (a byte without a rank of "
                           "its own that merges into no token, or a character without unk)");
  }

  std::string ComputeFingerprint() const {
    Fingerprinter f;
    f.Add("ferry-tokenizer-fingerprint-v1");
    parts_.model->AddToFingerprint(f);
    f.AddNumber(parts_.added.size());
    for (const AddedToken& t : parts_.added) {
      f.AddNumber(t.id);
      f.Add(t.content);
      f.AddNumber(t.special | t.single_word << 1 | t.lstrip << 2 | t.rstrip << 3 |
                  t.normalized << 4);
    }
    // Tokens outside the model (added ones, vocabulary entries spelled outside the byte-level
    // alphabet) decode to these bytes.
    f.AddNumber(parts_.decoded.size());
    for (TokenId id = 0; id < parts_.decoded.size(); ++id) {
      f.AddNumber(parts_.has_spelling[id]);
      if (parts_.has_spelling[id]) {
        f.Add(parts_.spelling[id]);
        f.Add(parts_.decoded[id]);
      }
    }
    f.Add(parts_.normalizer.Canonical());
    f.Add(parts_.pre_tokenizer.Canonical());
    f.Add(parts_.post_processor.Canonical());
    f.AddNumber(static_cast<uint64_t>(parts_.decoder));
    if (parts_.decoder == DecoderKind::kSteps) f.Add(parts_.decoder_steps.Canonical());
    return "ferry-tok1-sha256:" + f.Hex();
  }

  TokenizerParts parts_;
  std::vector<TokenId> prefix_, suffix_;  // the post-processor's ids around one sequence
  AddedTokenMatcher raw_matcher_, normalized_matcher_;
  AddedTokenMatcher raw_plain_matcher_, normalized_plain_matcher_;  // without the special tokens
  std::vector<bool> is_special_;
  std::unordered_map<std::string, TokenId> by_spelling_;
};

}  // namespace

void AddedTokenMatcher::Build(const std::vector<AddedToken>& tokens,
                              const std::vector<std::string>& contents) {
  tokens_ = tokens;
  nodes_.assign(1, Node{});
  longest_ = 0;
  for (size_t t = 0; t < tokens.size(); ++t) {
    const std::string& content = contents[t];
    if (content.empty()) continue;  // tokenizers ignores empty added tokens
    longest_ = std::max(longest_, content.size());
    int32_t node = 0;
    for (char c : content) {
      uint8_t byte = static_cast<uint8_t>(c);
      int32_t next = Child(node, byte);
      if (next < 0) {
        next = static_cast<int32_t>(nodes_.size());
        auto& children = nodes_[node].children;
        children.insert(std::lower_bound(children.begin(), children.end(), byte,
                                         [](const auto& edge, uint8_t b) { return edge.first < b; }),
                        {byte, next});
        Node child;
        child.depth = nodes_[node].depth + 1;
        nodes_.push_back(std::move(child));
      }
      node = next;
    }
    if (nodes_[node].token < 0) nodes_[node].token = static_cast<int32_t>(t);
  }
  // Fail and output links, breadth first (a node's links need those of shallower nodes).
  std::vector<int32_t> queue = {0};
  for (size_t q = 0; q < queue.size(); ++q) {
    int32_t node = queue[q];
    for (auto [byte, child] : nodes_[node].children) {
      int32_t fail = node == 0 ? 0 : Step(nodes_[node].fail, byte);
      nodes_[child].fail = fail;
      nodes_[child].output = nodes_[fail].token >= 0 ? fail : nodes_[fail].output;
      queue.push_back(child);
    }
  }
}

int32_t AddedTokenMatcher::Child(int32_t node, uint8_t byte) const {
  const auto& children = nodes_[node].children;
  auto it = std::lower_bound(children.begin(), children.end(), byte,
                             [](const auto& edge, uint8_t b) { return edge.first < b; });
  return it != children.end() && it->first == byte ? it->second : -1;
}

int32_t AddedTokenMatcher::Step(int32_t node, uint8_t byte) const {
  while (true) {
    int32_t next = Child(node, byte);
    if (next >= 0) return next;
    if (node == 0) return 0;
    node = nodes_[node].fail;
  }
}

AddedTokenMatcher::Found AddedTokenMatcher::Next(std::string_view text, size_t pos,
                                                 size_t floor) const {
  while (pos < text.size()) {
    // The leftmost match, and the longest of those starting there: every match ending at a byte
    // is on the output chain of the state after it; once the scan is `longest_` bytes past the
    // best start, no match starting at or before it can still end.
    size_t best_start = std::string_view::npos, best_end = 0;
    int32_t best_token = -1;
    int32_t state = 0;
    for (size_t i = pos; i < text.size(); ++i) {
      if (best_token >= 0 && i >= best_start + longest_) break;
      state = Step(state, static_cast<uint8_t>(text[i]));
      for (int32_t node = nodes_[state].token >= 0 ? state : nodes_[state].output; node > 0;
           node = nodes_[node].output) {
        size_t start = i + 1 - nodes_[node].depth;
        if (start < best_start || (start == best_start && i + 1 > best_end)) {
          best_start = start;
          best_end = i + 1;
          best_token = nodes_[node].token;
        }
      }
    }
    if (best_token < 0) break;
    const AddedToken& added = tokens_[best_token];
    if (added.single_word && (WordCharBefore(text, best_start) || WordCharAt(text, best_end))) {
      pos = best_end;  // not a word of its own: tokenizers drops this match and searches on after it
      continue;
    }
    Found found{best_start, best_end, best_end, added.id};
    if (added.lstrip) found.begin = std::max(WhitespaceStart(text, best_start), floor);
    if (added.rstrip) found.end = WhitespaceEnd(text, best_end);
    return found;
  }
  return Found{};
}

Status Tokenizer::EncodeBatch(std::span<const std::string_view> texts, const EncodeOptions& options,
                              int threads, std::vector<std::vector<TokenId>>& out) const {
  out.clear();
  out.resize(texts.size());
  return pipeline::ParallelForWindows(texts.size(), BatchThreads(threads), 64, [&](size_t i) {
    Status status = Encode(texts[i], options, out[i]);
    if (!status.ok()) return status.WithContext("batch item " + std::to_string(i));
    return status;
  });
}

Status Tokenizer::EncodeEncodingBatch(std::span<const EncodeInput> inputs,
                                     const EncodeOptions& options,
                                     const TruncationOptions* truncation,
                                     const PaddingOptions* padding, int threads,
                                     std::vector<Encoding>& out) const {
  out.clear();
  out.resize(inputs.size());
  FERRY_RETURN_IF_ERROR(pipeline::ParallelForWindows(inputs.size(), BatchThreads(threads), 64, [&](size_t i) {
    Status status = EncodeEncoding(inputs[i], options, truncation, padding, out[i]);
    if (!status.ok()) return status.WithContext("batch item " + std::to_string(i));
    return status;
  }));
  if (padding) PadEncodings(out, *padding);
  return Status::Ok();
}

Result<std::shared_ptr<const Tokenizer>> BuildTokenizer(TokenizerParts parts) {
  if (!parts.model) return Internal(parts.origin + ": tokenizer has no model");
  return std::shared_ptr<const Tokenizer>(std::make_shared<PipelineTokenizer>(std::move(parts)));
}

}  // namespace ferry::text
