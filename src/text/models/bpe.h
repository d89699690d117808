// Byte-pair encoding: the model of byte-level BPE tokenizers (tiktoken rank files, GPT-2 style
// tokenizer.json) and of SentencePiece-style ones (characters first, bytes as a fallback).
#pragma once

#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"
#include "ferry/text.h"
#include "text/models/model.h"

namespace ferry::text {

inline constexpr TokenId kNoToken = 0xFFFFFFFFu;
// tiktoken merges byte spans, so a byte without a rank of its own can still end up inside a
// longer token. Such bytes take part in merging under these stand-in ids; one left over at the
// end means the text cannot be encoded (tiktoken panics there).
inline constexpr TokenId kStandInByte = 0xFFFFFE00u;
// U+2581, SentencePiece's spelling of a space.
inline constexpr std::string_view kSentencePieceSpace = "\xE2\x96\x81";

// Open-addressing hash table from byte strings to ids. Keys are views into storage the owner
// keeps alive (the model's token list), so a lookup hashes and compares without allocating.
class BytesToId {
 public:
  void Reserve(size_t count);
  // False if `key` is already present (the id is left as it was).
  bool Insert(std::string_view key, TokenId id);
  static uint64_t Hash(std::string_view key);
  TokenId Find(std::string_view key) const { return Find(key, Hash(key)); }
  TokenId Find(std::string_view key, uint64_t hash) const;

 private:
  struct Slot {
    const char* data = nullptr;
    uint32_t size = 0;
    uint32_t tag = 0;  // high hash bits: most mismatches are rejected without touching `data`
    TokenId id = kNoToken;
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t count_ = 0;
};

// The longest of a set of strings that a text starts with: SentencePiece's user-defined
// symbols, which its normalizer passes through unchanged and its models take whole (Darts-clone's
// longest commonPrefixSearch result there). The sets are small, so a filter on the first byte
// and then one hash lookup per candidate length beats a trie: text that starts with none of
// them costs one table read per position.
class LongestPrefixSet {
 public:
  LongestPrefixSet() = default;
  // The table's keys are views into entries_, whose elements a move keeps where they are.
  LongestPrefixSet(LongestPrefixSet&&) = default;
  LongestPrefixSet& operator=(LongestPrefixSet&&) = default;
  LongestPrefixSet(const LongestPrefixSet&) = delete;
  LongestPrefixSet& operator=(const LongestPrefixSet&) = delete;
  // Empty strings are ignored.
  void Build(std::vector<std::pair<std::string, TokenId>> entries);
  bool empty() const { return longest_ == 0; }
  // The length of the longest string of the set that `text` starts with (0: none) and its id.
  size_t Match(std::string_view text, TokenId& id) const {
    if (longest_ == 0 || text.empty() || !first_[static_cast<uint8_t>(text[0])]) return 0;
    for (size_t length = std::min(longest_, text.size()); length > 0; --length) {
      if (!lengths_[length]) continue;
      TokenId found = ids_.Find(text.substr(0, length));
      if (found != kNoToken) {
        id = found;
        return length;
      }
    }
    return 0;
  }
  // The strings, sorted, for fingerprints.
  std::vector<std::string> Sorted() const;

 private:
  std::vector<std::pair<std::string, TokenId>> entries_;  // ids_ keys are views into these
  BytesToId ids_;
  size_t longest_ = 0;
  std::vector<bool> lengths_;  // lengths_[n]: some string has n bytes
  bool first_[256] = {};
};

// Open-addressing hash table from an adjacent pair of ids to what merging them gives.
class PairTable {
 public:
  struct Merge {
    uint32_t priority;  // lower merges first
    TokenId merged;
  };
  void Reserve(size_t count);
  // A pair already present takes the new merge (a later duplicate in a merge list wins, as in
  // tokenizers).
  void Insert(TokenId left, TokenId right, Merge merge);
  const Merge* Find(TokenId left, TokenId right) const {
    uint64_t key = Key(left, right);
    for (size_t i = Hash(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.key == key) return &slot.merge;
      if (slot.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return count_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t Key(TokenId left, TokenId right) { return uint64_t{left} << 32 | right; }
  static size_t Hash(uint64_t key) { return (key * 0x9E3779B97F4A7C15ull) >> 20; }
  struct Slot {
    uint64_t key = kEmpty;
    Merge merge{};
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t count_ = 0;
};

// The vocabulary (id -> bytes), the merge rules and the encoder of one piece.
class BpeModel final : public Model {
 public:
  // What a piece is split into before merging.
  enum class Symbols {
    // Its bytes (byte-level BPE: the vocabulary is spelled in GPT-2's byte alphabet, which the
    // loaders map back to bytes, so merging bytes is merging that alphabet's characters).
    kBytes,
    // Its UTF-8 characters, each a token of the vocabulary as written (SentencePiece-style BPE:
    // Llama-2, Phi-3, Mistral). A character outside the vocabulary becomes its bytes' `<0xXX>`
    // tokens with `byte_fallback`, else `unk`. A byte that is not UTF-8 counts as a character.
    kCharacters,
  };
  struct Config {
    // The token list by id; ids absent from the model are empty strings with present[id] false.
    std::vector<std::string> tokens;
    std::vector<bool> present;
    // Emit a piece found whole in the vocabulary without merging: always for tiktoken, and for
    // tokenizer.json models with `ignore_merges`.
    bool whole_piece_first = false;
    // Bytes without a token of their own: encoded as `unk` (merged into one when `fuse_unk`),
    // or dropped when there is no unk token, as `tokenizers` does.
    TokenId unk = kNoToken;
    bool fuse_unk = false;
    Symbols symbols = Symbols::kBytes;
    bool byte_fallback = false;  // kCharacters only
    // kCharacters: tokens taken whole (the longest that starts there) where the piece is split
    // into symbols, and never merged with a neighbour: SentencePiece's user-defined symbols.
    std::vector<TokenId> frozen;
    // tokenizer.json's continuing_subword_prefix / end_of_word_suffix (as bytes): a symbol after
    // a piece's first is looked up with the prefix before it, the last with the suffix after
    // it, and a merge (a, b) makes a + b without b's prefix. Where set, a piece found whole in
    // the vocabulary still goes through the merges, as tokenizers does.
    std::string continuing_prefix;
    std::string end_suffix;
  };

  // Merges are (left, right) id pairs; the merged token is the concatenation of their bytes and
  // must be in the vocabulary. Priority is the merge's position in `merges` (tokenizer.json).
  static Result<std::unique_ptr<BpeModel>> FromMerges(
      Config config, const std::vector<std::pair<TokenId, TokenId>>& merges);
  // tiktoken: a pair merges when the concatenation of its bytes is a token, and the token's rank
  // is the priority. Derived here from the token list: every way of cutting a token in two.
  static Result<std::unique_ptr<BpeModel>> FromRanks(Config config);
  // SentencePiece BPE (.model files): a pair of symbols merges when their concatenation is a
  // token with mergeable[id], the highest `scores[id]` first; among equal scores the leftmost
  // pair, as SentencePiece's agenda orders them. Derived from the tokens: every way of cutting a
  // mergeable token in two at a character boundary into two tokens that are not frozen.
  static Result<std::unique_ptr<BpeModel>> FromScores(Config config, const std::vector<float>& scores,
                                                      const std::vector<bool>& mergeable);

  // Appends the ids of one pre-tokenized piece of raw bytes. Pieces that need merging are
  // remembered in a small per-thread cache, since the same rare words come back. False (nothing appended) when a
  // byte without a rank of its own is left unmerged (rank files only).
  bool Encode(std::string_view piece, std::vector<TokenId>& ids) const override;
  bool Spans(std::string_view piece, std::span<const TokenId> ids,
             std::vector<ByteSpan>& spans) const override;
  void AddToFingerprint(Fingerprinter& f) const override;

  TokenId Find(std::string_view bytes) const { return bytes_to_id_.Find(bytes); }
  const std::string& token(TokenId id) const { return config_.tokens[id]; }
  bool has_token(TokenId id) const { return id < config_.present.size() && config_.present[id]; }
  size_t id_limit() const { return config_.tokens.size(); }
  // The merge rules in priority order, for the fingerprint: (left, right) pairs.
  const std::vector<std::pair<TokenId, TokenId>>& merges() const { return merges_; }
  const Config& config() const { return config_; }

 private:
  explicit BpeModel(Config config);
  Status IndexTokens(std::string_view what);
  void MergeSmall(std::string_view piece, std::vector<TokenId>& ids) const;
  void MergeLarge(std::string_view piece, std::vector<TokenId>& ids) const;

  void Merge(std::string_view piece, std::vector<TokenId>& ids) const;
  // Spans: the bytes token `id` covers at piece[pos] (its spelling less the affixes merge_word
  // adds there), 0 when it does not spell the text there.
  size_t SpelledLength(std::string_view piece, size_t pos, TokenId id) const;
  // Spans: the bytes one unk covers at piece[pos]: a symbol, or with fuse_unk the run of
  // symbols that have neither a token nor byte-fallback tokens (IsUnknownSymbol).
  size_t UnknownRun(std::string_view piece, size_t pos) const;
  bool IsUnknownSymbol(std::string_view piece, size_t pos) const;
  size_t SymbolLength(std::string_view piece, size_t pos) const;  // a character or a byte
  void ComputeDirect();
  void IndexBytePairs();
  // Encode without the cut before spaces (see CanCutBeforeSpaces in bpe.cc).
  bool EncodeWord(std::string_view piece, std::vector<TokenId>& ids) const;
  bool CanCutBeforeSpaces() const;
  // Calls emit(id) for each symbol of `piece` before merging (see Symbols).
  template <typename Emit>
  void ForEachSymbol(std::string_view piece, Emit&& emit) const;

  const uint64_t instance_;  // tells this model's entries in the per-thread cache from others'
  Config config_;
  BytesToId bytes_to_id_;
  PairTable pairs_;
  // The merge of each pair of bytes (index first << 8 | second), where a piece's symbols are
  // exactly its bytes (see IndexBytePairs); else empty. 512 KiB that stay in cache, where each
  // lookup in pairs_ (megabytes) is a likely cache miss: a piece's first ratings, one per byte,
  // were a third of the time of o200k on non-Latin text.
  std::vector<PairTable::Merge> byte_pairs_;
  std::vector<std::pair<TokenId, TokenId>> merges_;
  TokenId byte_ids_[256];
  // kCharacters with byte_fallback: the id of `<0xXX>` for each byte (kNoToken where absent).
  TokenId fallback_ids_[256];
  bool has_stand_ins_ = false;
  LongestPrefixSet frozen_;
  std::vector<float> scores_;  // FromScores, for the fingerprint
  std::vector<bool> mergeable_;
  // direct_[id]: merging the bytes of token `id` gives exactly `id`, so a piece found whole in
  // the vocabulary is that token without running the merges. Always so for rank files; for
  // merge lists nearly always (computed at load), and the exceptions take the merge path.
  std::vector<bool> direct_;
  bool cut_before_spaces_ = false;
  bool has_affixes_ = false;
};

}  // namespace ferry::text
