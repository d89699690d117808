// ferry text: byte-level BPE tokenizers with the ids of the reference libraries.
//
//   FERRY_ASSIGN_OR_RETURN(auto tokenizer, ferry::text::Tokenizer::FromFile("tokenizer.json"));
//   std::vector<uint32_t> ids;
//   FERRY_RETURN_IF_ERROR(tokenizer->Encode("Hello world", {}, ids));
//
// Parity is the contract: a tokenizer loaded from a Hugging Face `tokenizer.json` gives the ids
// `tokenizers` gives; one loaded from a `.tiktoken` rank file gives the ids `tiktoken` gives.
// A Tokenizer is immutable once built, so one instance serves every thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"

namespace ferry::text {

using TokenId = uint32_t;

// The largest files the loaders read: real tokenizer.json files are up to ~20 MB and rank files
// a few MB; hostile ones are refused before they are read.
inline constexpr uint64_t kMaxTokenizerJsonBytes = uint64_t{512} << 20;
inline constexpr uint64_t kMaxRankFileBytes = uint64_t{64} << 20;

struct EncodeOptions {
  // Match added and special tokens (`<|endoftext|>`, ...) in the text and emit their ids. Off,
  // their text is encoded like any other (tiktoken's `encode_ordinary`).
  bool match_added_tokens = true;
  // Apply the post-processor (tokenizer.json's TemplateProcessing: BOS/EOS ids and the like).
  bool add_special_tokens = true;
};

// Which tiktoken encoding a rank file is, or an explicit pattern and special tokens for files
// that are not one of OpenAI's named encodings (llama3, deepseekv2, ...).
struct TiktokenOptions {
  // "r50k_base", "p50k_base", "cl100k_base" or "o200k_base": that encoding's split pattern and
  // special tokens. Empty: guessed from the file name when it is one of those, else required to
  // come with `pattern`.
  std::string name;
  std::string pattern;  // overrides the named encoding's pattern
  // Overrides the named encoding's special tokens (token text -> id) when non-empty.
  std::vector<std::pair<std::string, TokenId>> special_tokens;
};

class Tokenizer {
 public:
  // A Hugging Face `tokenizer.json` (byte-level BPE) from a path or any URI ferry reads.
  static Result<std::shared_ptr<const Tokenizer>> FromFile(std::string_view uri);
  // The same from the JSON text; `origin` names it in error messages.
  static Result<std::shared_ptr<const Tokenizer>> FromJson(std::string_view json,
                                                           std::string_view origin);
  // A tiktoken rank file (`base64(token) rank` per line).
  static Result<std::shared_ptr<const Tokenizer>> FromTiktoken(std::string_view uri,
                                                               const TiktokenOptions& options);
  static Result<std::shared_ptr<const Tokenizer>> FromTiktokenRanks(
      std::string_view ranks, std::string_view origin, const TiktokenOptions& options);
  // Either, by the file name: a `.tiktoken` rank file (with `tiktoken`), else a tokenizer.json
  // (where `tiktoken` must be empty).
  static Result<std::shared_ptr<const Tokenizer>> Open(std::string_view uri,
                                                       const TiktokenOptions& tiktoken = {});

  virtual ~Tokenizer() = default;

  // Appends the ids of `text` to `ids`. Text that is not valid UTF-8 is encoded too: each maximal
  // run of invalid bytes becomes a piece of its own and is encoded byte by byte (the byte-level
  // alphabet covers all 256 bytes), so decode(encode(bytes)) gives the bytes back.
  virtual Status Encode(std::string_view text, const EncodeOptions& options,
                        std::vector<TokenId>& ids) const = 0;

  // Encodes every text on up to `threads` threads (0, or more than the cores: one per core) with
  // the window scheduler:
  // threads claim contiguous windows of the batch from one atomic counter. Output i belongs to
  // input i; the first error stops the batch and is returned, naming the item.
  Status EncodeBatch(std::span<const std::string_view> texts, const EncodeOptions& options,
                     int threads, std::vector<std::vector<TokenId>>& out) const;

  // The bytes the ids stand for (which need not be valid UTF-8: a multi-byte character may be
  // split between ids). Ids out of range are kOutOfRange naming the id and the position.
  virtual Status Decode(std::span<const TokenId> ids, bool skip_special_tokens,
                        std::string& out) const = 0;

  // Token text as the vocabulary spells it (tokenizer.json: in the byte-level alphabet, `Ġthe`;
  // tiktoken: the raw bytes). Empty optional-like: returns false when the id or token is unknown.
  virtual bool IdToToken(TokenId id, std::string& token) const = 0;
  virtual bool TokenToId(std::string_view token, TokenId& id) const = 0;

  // One more than the largest id, added tokens included.
  virtual size_t vocab_size() const = 0;
  // Whether `id` is a special token (skipped by Decode(skip_special_tokens=true)).
  virtual bool IsSpecial(TokenId id) const = 0;

  // "ferry-tok1-sha256:<64 hex digits>": a SHA-256 over a canonical form of everything that
  // decides ids (vocabulary, merges, added tokens and their flags, normalizer, split patterns,
  // post-processor, decoder, Unicode table versions). Equal content => equal fingerprint on
  // every machine and run; JSON key order, padding and truncation settings do not enter.
  const std::string& fingerprint() const { return fingerprint_; }
  // Where it was loaded from, for messages.
  const std::string& origin() const { return origin_; }

 protected:
  std::string fingerprint_;
  std::string origin_;
};

// Training a byte-level BPE tokenizer (GPT-2 style: ByteLevel pre-tokenizer with its regex, all
// 256 bytes in the alphabet, merges learned by pair frequency).
struct TrainOptions {
  size_t vocab_size = 8192;          // special tokens + 256 bytes + merges, at most
  uint64_t min_frequency = 2;        // a pair seen fewer times is not merged
  std::vector<std::string> special_tokens;  // ids 0, 1, ... in this order
};

// Counts the pre-tokenized pieces of texts fed to it, then learns merges from them.
class BpeTrainer {
 public:
  explicit BpeTrainer(TrainOptions options);
  ~BpeTrainer();
  Status Feed(std::string_view text);
  // The tokenizer.json text of the trained tokenizer: it loads in Hugging Face tokenizers and in
  // ferry (Tokenizer::FromJson), and both give the same ids. Ties between equally frequent pairs
  // go to the pair whose bytes sort first, so training is deterministic.
  Result<std::string> Train() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace ferry::text
