// ferry text: tokenizers with the ids of the reference libraries.
//
//   FERRY_ASSIGN_OR_RETURN(auto tokenizer, ferry::text::Tokenizer::FromFile("tokenizer.json"));
//   std::vector<uint32_t> ids;
//   FERRY_RETURN_IF_ERROR(tokenizer->Encode("Hello world", {}, ids));
//
// Parity is the contract: a tokenizer loaded from a Hugging Face `tokenizer.json` gives the ids
// (and the decoded text) `tokenizers` gives; one loaded from a `.tiktoken` rank file gives the
// ids `tiktoken` gives. A Tokenizer is immutable once built, so one instance serves every thread.
//
// What loads from tokenizer.json: the pipeline normalizer -> pre-tokenizer -> model ->
// post-processor, and a decoder, with these components:
//   models          BPE: byte-level (with a ByteLevel pre-tokenizer) or over characters with
//                   `byte_fallback`, `unk_token`, `fuse_unk`, `ignore_merges` (SentencePiece
//                   style), `continuing_subword_prefix`, `end_of_word_suffix`; WordPiece
//                   (`unk_token`, `continuing_subword_prefix`, `max_input_chars_per_word`; files
//                   without `model.type` too); Unigram
//                   (`unk_id`, `byte_fallback`); WordLevel.
//   normalizers     NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Nmt, Strip, Prepend,
//                   Replace, BertNormalizer, Precompiled (SentencePiece's charsmap), Sequence.
//   pre-tokenizers  ByteLevel, Split, CharDelimiterSplit, Digits, Punctuation, Metaspace,
//                   BertPreTokenizer, Whitespace, WhitespaceSplit, Sequence.
//   post-processors TemplateProcessing (single and pair templates), BertProcessing,
//                   RobertaProcessing, ByteLevel, Sequence: the ids, type ids and sequence ranges
//                   they put around one sequence or a pair (EncodeEncoding).
//   decoders        ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace, WordPiece,
//                   BPEDecoder, CTC, Sequence.
// Anything else, BPE `dropout` above 0 included, is kUnsupported naming the file and JSON path;
// a malformed file (missing field, id out of range, duplicate piece, a charsmap whose trie
// points outside its buffer) is kCorruption, likewise named.
//
// A SentencePiece `.model` file loads natively (FromSentencePiece) and gives the ids and the
// decoded text of the `sentencepiece` library's encode/decode: Unigram and BPE models,
// byte_fallback, the normalizer's precompiled charsmap, add_dummy_prefix,
// remove_extra_whitespaces, escape_whitespaces, user-defined and control symbols, unk. WORD and
// CHAR models, treat_whitespace_as_suffix, a denormalizer and UNUSED pieces in a BPE model are
// kUnsupported; a malformed protobuf (truncated, a wrong wire type, a length past its message)
// or model (NaN score, repeated piece, no unk) is kCorruption naming the file, the field and,
// for the wire format, the byte offset.
//
// GPT-2's original pair of files (`encoder.json` + `vocab.bpe`, "data gym") loads as tiktoken
// reads it (FromDataGym): the ids of tiktoken's gpt2 / r50k_base encoding.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ferry/status.h"

namespace ferry::text {

using TokenId = uint32_t;

// The largest files the loaders read: real tokenizer.json files are up to ~20 MB and rank files
// a few MB; hostile ones are refused before they are read.
inline constexpr uint64_t kMaxTokenizerJsonBytes = uint64_t{512} << 20;
inline constexpr uint64_t kMaxRankFileBytes = uint64_t{64} << 20;
inline constexpr uint64_t kMaxSentencePieceModelBytes = uint64_t{256} << 20;

struct EncodeOptions {
  // Match added and special tokens (`<|endoftext|>`, ...) in the text and emit their ids. Off,
  // their text is encoded like any other (tiktoken's `encode_ordinary`).
  bool match_added_tokens = true;
  // Apply the post-processor (tokenizer.json's TemplateProcessing: BOS/EOS ids and the like).
  bool add_special_tokens = true;
  // With match_added_tokens: match only the added tokens that are not special, so untrusted text
  // that spells `<|endoftext|>` or `[SEP]` encodes as text (transformers' split_special_tokens).
  bool split_special_tokens = false;
  // EncodeEncoding only: also fill Encoding::offsets and Encoding::words, in bytes or in
  // characters (code points; tokenizers' Python offsets) of the input. Off (kNone), Encode and
  // EncodeEncoding run the fast path, which computes no alignment at all. On, EncodeEncoding runs
  // a second, alignment-tracking pass over the same pipeline (each byte carries its original
  // span through every normalizer and pre-tokenizer step, as tokenizers' NormalizedString) and
  // checks that its ids are the fast path's (kInternal if not: a bug, never wrong offsets).
  // kUnsupported naming the component for a pipeline part that cannot track alignment yet
  // (SentencePiece's own normalizer, which .model files use).
  enum class Offsets { kNone, kBytes, kCharacters };
  Offsets offsets = Offsets::kNone;
};

// A token the tokenizer finds in text before the model runs (tokenizer.json's added_tokens,
// tiktoken's special tokens).
struct AddedToken {
  std::string content;
  TokenId id = 0;
  bool special = false;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;  // matched after normalization (else on the raw text)
};

// One encoded sequence or pair, as Hugging Face tokenizers' Encoding holds it. The vectors have
// one entry per id. A plain value: copy it, move it, read it from any thread.
struct Encoding {
  std::vector<TokenId> ids;
  std::vector<uint32_t> type_ids;
  std::vector<uint8_t> special_tokens_mask;  // 1: put there by the post-processor or padding
  std::vector<uint8_t> attention_mask;       // 0: padding
  // Input sequence -> the ids [begin, end) it gave, as tokenizers keeps them. Empty: every id
  // counts as sequence 0 (tokenizers' rule, which sequence_ids() follows).
  struct Range {
    uint32_t sequence;
    size_t begin, end;
  };
  std::vector<Range> sequence_ranges;
  // The windows truncation cut off, each an Encoding of its own (post-processed and padded as
  // this one is).
  std::vector<Encoding> overflowing;
  // Token strings that are not the vocabulary's spelling of their id: an added token matched
  // with the whitespace lstrip/rstrip took, as tokenizers reports it, and each padded position's
  // pad_token (a later pad with another token keeps the earlier positions'). Empty, or one entry
  // per id: an index into token_texts, or -1.
  std::vector<int32_t> token_text;
  std::vector<std::string> token_texts;

  // Only with EncodeOptions::offsets (else has_alignment is false and both are empty); then one
  // entry per id, kept in step through truncation, padding and merging.
  //   offsets[i]: the [begin, end) of the input text id i came from, in the unit asked for, in its
  //     own input: the first or the second sequence, or (pretokenized) its word. Through the
  //     normalizer: an id covers the original characters its normalized text came from (a
  //     lowercase `ß`'s, a decomposed `é`'s); a byte-level token that holds part of a character
  //     covers the whole character. Special tokens and padding: {0, 0}.
  //   words[i]: the word of id i within its sequence, -1 for none (special tokens, padding):
  //     tokenizers' numbering, one word per pre-tokenizer piece and per added token matched in
  //     the text, from 0; pretokenized input: the index of the input word.
  bool has_alignment = false;
  std::vector<std::pair<uint32_t, uint32_t>> offsets;
  std::vector<int32_t> words;

  size_t size() const { return ids.size(); }
  size_t n_sequences() const { return sequence_ranges.empty() ? 1 : sequence_ranges.size(); }
  // The sequence of each id, -1 for ids of no sequence (special tokens, padding).
  std::vector<int32_t> sequence_ids() const;

  // tokenizers' Encoding maps between ids, words and characters (positions in the unit of
  // `offsets`), with its rules, None included. REQUIRES: has_alignment (else every map is empty).
  // A sequence without a range (one sequence, no post-processor) covers all ids.
  std::optional<uint32_t> TokenToSequence(size_t token) const;
  // The [first, last + 1) ids of word `word` of `sequence`.
  std::optional<std::pair<size_t, size_t>> WordToTokens(uint32_t word, uint32_t sequence) const;
  std::optional<std::pair<uint32_t, uint32_t>> WordToChars(uint32_t word, uint32_t sequence) const;
  // (sequence, offsets) and (sequence, word) of an id.
  std::optional<std::pair<uint32_t, std::pair<uint32_t, uint32_t>>> TokenToChars(size_t token) const;
  std::optional<std::pair<uint32_t, uint32_t>> TokenToWord(size_t token) const;
  // The first id of `sequence` whose offsets hold position `pos`, and that id's word.
  std::optional<size_t> CharToToken(size_t pos, uint32_t sequence) const;
  std::optional<uint32_t> CharToWord(size_t pos, uint32_t sequence) const;
};

// tokenizers' TruncationParams: what EncodeEncoding cuts, before the post-processor adds its
// special tokens (which max_length counts).
struct TruncationOptions {
  enum class Strategy { kLongestFirst, kOnlyFirst, kOnlySecond };
  size_t max_length = 512;
  size_t stride = 0;  // ids each overflowing window repeats from the one before
  Strategy strategy = Strategy::kLongestFirst;
  bool left = false;  // cut from the start (tokenizers' direction "left")
};

// tokenizers' PaddingParams.
struct PaddingOptions {
  size_t length = 0;  // 0: the longest in the batch (BatchLongest), else Fixed(length)
  size_t pad_to_multiple_of = 0;  // 0: none
  bool left = false;
  TokenId pad_id = 0;
  uint32_t pad_type_id = 0;
  std::string pad_token = "[PAD]";
};

// What to encode: one sequence or a pair, each a text or (pretokenized) a list of words, each
// word encoded on its own.
struct EncodeInput {
  std::vector<std::string_view> first;
  std::vector<std::string_view> second;
  bool has_second = false;
  // The sequences are lists of words (tokenizers' is_pretokenized): word ids are the words'
  // indices and offsets are within each word. Otherwise each holds one text.
  bool pretokenized = false;
};

// Pads every encoding (and its overflowing windows) to the longest of them or the fixed length,
// rounded up to pad_to_multiple_of, as tokenizers' pad_encodings.
void PadEncodings(std::span<Encoding> encodings, const PaddingOptions& padding);

// tokenizers' Encoding.truncate: keeps `max_length` ids (from the end if `left`); what is cut
// becomes the overflowing windows of `max_length` ids, each repeating `stride` ids of the one
// before, replacing any windows `encoding` had; sequence ranges are dropped. max_length 0 moves
// everything into one overflowing window. kInvalidArgument when 0 < max_length <= stride (and
// nothing is changed).
Status Truncate(Encoding& encoding, size_t max_length, size_t stride, bool left);

// tokenizers' Encoding.merge_with: appends `pair` to `encoding`; the overflowing windows of both
// combine (every window of one with the other and its windows). With growing_offsets, the pair's
// offsets are shifted by the last end of `encoding`'s. The result has an alignment when both do
// (or `encoding` is empty and the pair does).
void MergeWith(Encoding& encoding, Encoding pair, bool growing_offsets = false);

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
  // A Hugging Face `tokenizer.json` (the components listed above) from a path or any URI ferry
  // reads; a SentencePiece `.model` (by its name, or its first byte, the tag of
  // ModelProto.pieces, which no JSON text starts with) is read as FromSentencePiece does.
  static Result<std::shared_ptr<const Tokenizer>> FromFile(std::string_view uri);
  // The same from the JSON text; `origin` names it in error messages.
  static Result<std::shared_ptr<const Tokenizer>> FromJson(std::string_view json,
                                                           std::string_view origin);
  // A tiktoken rank file (`base64(token) rank` per line).
  static Result<std::shared_ptr<const Tokenizer>> FromTiktoken(std::string_view uri,
                                                               const TiktokenOptions& options);
  static Result<std::shared_ptr<const Tokenizer>> FromTiktokenRanks(
      std::string_view ranks, std::string_view origin, const TiktokenOptions& options);
  // GPT-2's original `encoder.json` + `vocab.bpe` pair as tiktoken reads it: tiktoken's gpt2
  // encoding (r50k_base's pattern, <|endoftext|> = 50256). The files must agree (kCorruption
  // naming the first token that differs), as tiktoken asserts.
  static Result<std::shared_ptr<const Tokenizer>> FromDataGym(std::string_view encoder_json_uri,
                                                              std::string_view vocab_bpe_uri);
  // The pair's contents as the equivalent tiktoken rank file text, for FromTiktokenRanks.
  static Result<std::string> DataGymToRanks(std::string_view encoder_json, std::string_view vocab_bpe,
                                            std::string_view origin);
  // A SentencePiece `.model` file (a serialized ModelProto).
  static Result<std::shared_ptr<const Tokenizer>> FromSentencePiece(std::string_view uri);
  // The same from the file's bytes; `origin` names it in error messages.
  static Result<std::shared_ptr<const Tokenizer>> FromSentencePieceProto(std::string_view proto,
                                                                        std::string_view origin);
  // By the file name: a `.tiktoken` rank file (with `tiktoken`), a `.model` SentencePiece file,
  // else as FromFile (where `tiktoken` must be empty).
  static Result<std::shared_ptr<const Tokenizer>> Open(std::string_view uri,
                                                       const TiktokenOptions& tiktoken = {});

  virtual ~Tokenizer() = default;

  // Appends the ids of `text` to `ids`. Text that is not valid UTF-8 is encoded too: byte-level
  // BPE encodes each maximal run of invalid bytes byte by byte (its alphabet covers all 256
  // bytes), so decode(encode(bytes)) gives the bytes back; the other models read an invalid byte
  // as a character of its own (a `<0xXX>` piece with byte_fallback, else unk).
  virtual Status Encode(std::string_view text, const EncodeOptions& options,
                        std::vector<TokenId>& ids) const = 0;

  // Encodes every text on up to `threads` threads (0, or more than the cores: one per core) with
  // the window scheduler:
  // threads claim contiguous windows of the batch from one atomic counter. Output i belongs to
  // input i; the first error stops the batch and is returned, naming the item.
  Status EncodeBatch(std::span<const std::string_view> texts, const EncodeOptions& options,
                     int threads, std::vector<std::vector<TokenId>>& out) const;

  // The whole of tokenizers' encode: each sequence encoded (added tokens matched as `options`
  // says), truncated by `truncation` (null: not), then the post-processor's special tokens and
  // type ids when options.add_special_tokens, then padded by `padding` (null: not; alone,
  // BatchLongest pads only to pad_to_multiple_of). Errors: kInvalidArgument for a pair on
  // OnlySecond's absence, a sequence too short for OnlyFirst/OnlySecond, a stride not below the
  // length left after the special tokens; else as Encode.
  virtual Status EncodeEncoding(const EncodeInput& input, const EncodeOptions& options,
                                const TruncationOptions* truncation, const PaddingOptions* padding,
                                Encoding& out) const = 0;
  // EncodeEncoding over a batch on up to `threads` threads (as EncodeBatch), then the batch
  // padded together (BatchLongest: to its longest encoding).
  Status EncodeEncodingBatch(std::span<const EncodeInput> inputs, const EncodeOptions& options,
                             const TruncationOptions* truncation, const PaddingOptions* padding,
                             int threads, std::vector<Encoding>& out) const;
  // The token strings of an encoding: the vocabulary's spelling of each id, the post-processor's
  // token for the special tokens it added, and each pad's pad_token (Encoding::token_text).
  virtual std::vector<std::string> Tokens(const Encoding& encoding) const = 0;
  // How many ids the post-processor adds to one sequence or a pair (tokenizers'
  // num_special_tokens_to_add).
  virtual size_t SpecialTokensToAdd(bool pair) const = 0;
  // Whether the post-processor has a template for pairs (every one but a TemplateProcessing
  // without "pair"; none at all encodes the pair as the two sequences one after the other).
  virtual bool CanEncodePairs() const = 0;
  // The truncation and padding a tokenizer.json asks for ("truncation", "padding"), which
  // tokenizers applies from load. They are settings, not content: the fingerprint leaves them out.
  virtual const std::optional<TruncationOptions>& default_truncation() const = 0;
  virtual const std::optional<PaddingOptions>& default_padding() const = 0;
  // The added tokens, in id order.
  virtual const std::vector<AddedToken>& added_tokens() const = 0;
  // The first added token matched in the raw text (every tiktoken special token; in a
  // tokenizer.json those not marked `normalized`), as Encode would match it: its [begin, end)
  // and id. False when there is none.
  virtual bool FindAddedToken(std::string_view text, size_t& begin, size_t& end,
                              TokenId& id) const = 0;
  // Whether `id` is in the model's own vocabulary (tokenizers' get_vocab(with_added_tokens=False)).
  virtual bool InModelVocab(TokenId id) const = 0;
  // How many ids the model's own vocabulary has (tokenizers' get_vocab_size(False)).
  virtual size_t model_vocab_size() const = 0;

  // The text of the ids as the tokenizer's decoder makes it. Byte-level decoders give the bytes
  // the ids stand for (which need not be valid UTF-8: a multi-byte character may be split
  // between ids); the others give `tokenizers`' text (ByteFallback: a run of byte pieces that is
  // not UTF-8 becomes one U+FFFD per byte). Ids out of range are kOutOfRange naming the id and
  // the position.
  virtual Status Decode(std::span<const TokenId> ids, bool skip_special_tokens,
                        std::string& out) const = 0;

  // Token text as the vocabulary spells it (tokenizer.json: in the byte-level alphabet, `Ġthe`,
  // or as written, `▁the`, `##ing`; tiktoken: the raw bytes). An added token marked `normalized`
  // is spelled by IdToToken as normalized, and looked up by TokenToId as written (tokenizers'
  // rule). Returns false when the id or token is unknown.
  virtual bool IdToToken(TokenId id, std::string& token) const = 0;
  virtual bool TokenToId(std::string_view token, TokenId& id) const = 0;

  // One more than the largest id, added tokens included.
  virtual size_t vocab_size() const = 0;
  // Whether `id` is a special token (skipped by Decode(skip_special_tokens=true)).
  virtual bool IsSpecial(TokenId id) const = 0;

  // "ferry-tok1-sha256:<64 hex digits>": a SHA-256 over a canonical form of everything that
  // decides ids and text (the model and its parameters: vocabulary, merges, scores, WordPiece
  // prefix and limit, unk and fallback settings; added tokens and their flags; every normalizer
  // step with its parameters, a charsmap by its digest; pre-tokenizer steps and split patterns;
  // post-processor; decoder steps; Unicode table versions). Equal content => equal fingerprint
  // on every machine and run; JSON key order, padding and truncation settings do not enter.
  const std::string& fingerprint() const { return fingerprint_; }
  // Where it was loaded from, for messages.
  const std::string& origin() const { return origin_; }

 protected:
  std::string fingerprint_;
  std::string origin_;
};

// Whether a file's bytes, named `origin`, are a SentencePiece .model rather than tokenizer.json
// text, as FromFile decides: by a `.model` name, else (unless the name ends in `.json`) by the
// first byte, the tag of ModelProto.pieces (0x0a), which JSON text does not start with.
bool IsSentencePieceModel(std::string_view bytes, std::string_view origin);

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
