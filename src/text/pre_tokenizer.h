// The pre-tokenizers of tokenizer.json: the split of (normalized) text into the pieces the
// model encodes.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"
#include "text/alignment.h"
#include "text/split_pattern.h"
#include "text/unicode.h"

namespace ferry::text {

// How a split treats what its pattern matched (tokenizers' SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// One pre-tokenizer of a tokenizer.json pipeline.
struct PreTokenizerStep {
  enum class Kind {
    kSplit, kByteLevel, kDigits, kPunctuation,
    kMetaspace,        // SentencePiece's spaces: " " -> replacement, maybe prepended, maybe split
    kBert,             // whitespace removed, then every punctuation character a piece of its own
    kWhitespace,       // pieces are runs of \w and runs of other non-space characters
    kWhitespaceSplit,  // pieces are the runs between whitespace
  };
  // Metaspace: when the replacement is put before a piece that does not start with it.
  enum class Prepend { kAlways, kFirst, kNever };
  Kind kind = Kind::kSplit;
  std::shared_ptr<const SplitPattern> pattern;  // kSplit, and kByteLevel with use_regex
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;                // kSplit
  bool add_prefix_space = false;      // kByteLevel
  bool individual_digits = false;     // kDigits
  std::string replacement;            // kMetaspace
  Prepend prepend = Prepend::kAlways;  // kMetaspace; kFirst only as the first step
  bool split = true;                   // kMetaspace
};

// Splits a segment of text (between added tokens, already normalized) into the raw-byte pieces
// the model encodes.
//
// Fast path: when the pipeline is one split pattern applied to the raw text followed, at most,
// by the byte-level mapping (GPT-2's ByteLevel, Llama-3's Split + ByteLevel(use_regex=false),
// every tiktoken encoding), pieces are views into the text and nothing is allocated. Other
// pipelines (e.g. Falcon's Punctuation, ByteLevel, Digits, Split) run step by step on strings,
// with the steps after a ByteLevel seeing the byte-level spelling, exactly as tokenizers does.
class PreTokenizer {
 public:
  PreTokenizer() = default;
  static Result<PreTokenizer> FromSteps(std::vector<PreTokenizerStep> steps);
  // tiktoken: the pattern alone. tiktoken encodes only what the pattern matches, so text between
  // matches is dropped, except bytes that are not UTF-8 (which tiktoken never sees: its input is
  // a str), encoded so that bytes still round-trip.
  static PreTokenizer FromPattern(std::shared_ptr<const SplitPattern> pattern);

  // Calls emit(piece) for each piece in order; `scratch` holds pieces the general path builds.
  // `at_text_start`: the text begins where the whole input does (Metaspace's "first" scheme).
  template <typename Emit>
  Status ForEachPiece(std::string_view text, bool at_text_start, std::vector<std::string>& scratch,
                      Emit&& emit) const {
    if (text.empty()) return Status::Ok();
    if (single_ == Single::kBert) {
      ForEachBertPiece(text, emit);
      return Status::Ok();
    }
    if (single_ == Single::kMetaspace) {
      ForEachMetaspacePiece(text, at_text_start, scratch, emit);
      return Status::Ok();
    }
    if (general_) {
      FERRY_RETURN_IF_ERROR(RunSteps(text, at_text_start, scratch));
      for (const std::string& piece : scratch) emit(std::string_view(piece));
      return Status::Ok();
    }
    if (!fast_pattern_) {
      emit(text);
      return Status::Ok();
    }
    size_t pos = 0;
    Match match;
    while (pos < text.size()) {
      FERRY_RETURN_IF_ERROR(fast_pattern_->Find(text, pos, &match));
      if (match.begin == std::string_view::npos) break;
      if (match.begin > pos) EmitGap(text.substr(pos, match.begin - pos), emit);
      emit(text.substr(match.begin, match.end - match.begin));
      pos = match.end;
    }
    if (pos < text.size()) EmitGap(text.substr(pos), emit);
    return Status::Ok();
  }

  // The offsets path: the pieces ForEachPiece gives for text.text(), each with the original
  // span of every byte. Byte-level pieces come back in raw bytes, each byte with the span of the
  // character it belongs to (tokenizers spells each byte as one character of its alphabet, all
  // with that character's span).
  Status AlignedPieces(const AlignedText& text, bool at_text_start,
                       std::vector<AlignedText>& pieces) const;

  std::string Canonical() const;

 private:
  Status RunSteps(std::string_view text, bool at_text_start, std::vector<std::string>& pieces) const;
  // Text the pattern did not match: a piece of its own (tokenizers' Split), or dropped unless it
  // is invalid UTF-8 (tiktoken).
  template <typename Emit>
  void EmitGap(std::string_view gap, Emit& emit) const {
    if (!drop_matchless_text_ || !IsValidUtf8(gap)) emit(gap);
  }

  // BertPreTokenizer alone: whitespace separates, each punctuation character is a piece; the
  // pieces are views into the text (RunSteps gives the same pieces, as strings).
  template <typename Emit>
  void ForEachBertPiece(std::string_view text, Emit& emit) const {
    size_t word = 0;  // where the current run of other characters starts
    for (size_t pos = 0; pos < text.size();) {
      char32_t cp = 0;
      size_t length = DecodeUtf8(text, pos, cp);
      const bool valid = length != 0;
      if (!valid) length = 1;  // a byte that is not UTF-8 is part of a word
      const bool space = valid && IsWhitespace(cp);
      if (space || (valid && IsPunctuation(cp))) {
        if (pos > word) emit(text.substr(word, pos - word));
        if (!space) emit(text.substr(pos, length));
        word = pos + length;
      }
      pos += length;
    }
    if (text.size() > word) emit(text.substr(word));
  }

  // Metaspace alone: the spaced text is built once in scratch[0]; with `split`, every
  // replacement starts a piece (MergedWithNext), so the pieces are views cut before each.
  template <typename Emit>
  void ForEachMetaspacePiece(std::string_view text, bool at_text_start,
                             std::vector<std::string>& scratch, Emit& emit) const {
    const PreTokenizerStep& step = steps_[0];
    scratch.resize(1);
    std::string& spaced = scratch[0];
    spaced.clear();
    const bool prepend = step.prepend == PreTokenizerStep::Prepend::kAlways ||
                         (step.prepend == PreTokenizerStep::Prepend::kFirst && at_text_start);
    const bool starts_with_space = text.starts_with(' ') || text.starts_with(step.replacement);
    if (prepend && !starts_with_space) spaced = step.replacement;
    for (char c : text) {
      if (c == ' ') {
        spaced += step.replacement;
      } else {
        spaced += c;
      }
    }
    std::string_view all = spaced;
    if (!step.split) {
      emit(all);
      return;
    }
    size_t start = 0;
    for (size_t at = all.find(step.replacement, 1); at != std::string_view::npos;
         at = all.find(step.replacement, at + step.replacement.size())) {
      emit(all.substr(start, at - start));
      start = at;
    }
    emit(all.substr(start));
  }

  std::vector<PreTokenizerStep> steps_;
  enum class Single { kNone, kBert, kMetaspace };
  Single single_ = Single::kNone;
  bool general_ = false;  // run steps_ one by one; else split with fast_pattern_ (if any)
  std::shared_ptr<const SplitPattern> fast_pattern_;
  bool drop_matchless_text_ = false;
};

}  // namespace ferry::text
