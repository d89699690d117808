// The normalizer stage: text in, text out, before added tokens marked `normalized` are matched
// and before pre-tokenization. Each tokenizer.json normalizer is one NormalizerStep; a Normalizer
// runs them in order (tokenizer.json's Sequence, nested ones flattened).
//
// Text that is not valid UTF-8 (C++ callers may pass any bytes) passes through every step byte
// for byte where the step cannot read it as characters.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"
#include "text/alignment.h"
#include "text/split_pattern.h"

namespace ferry::text {

class NormalizerStep {
 public:
  virtual ~NormalizerStep() = default;
  // Sets `out` to the normalized form of `text` (`out` never aliases `text`).
  virtual void Apply(std::string_view text, std::string& out) const = 0;
  // What decides the output, for the fingerprint: the step's name and every parameter.
  virtual std::string Canonical() const = 0;
  // Apply, keeping each byte's original span as tokenizers' NormalizedString does for this step
  // (text/alignment.h): the offsets path. The text must come out as Apply's. False: the step
  // cannot tell where its output came from (the text is then unspecified).
  virtual bool Track(AlignedText& text) const {
    (void)text;
    return false;
  }
};

class Normalizer {
 public:
  Normalizer() = default;
  explicit Normalizer(std::vector<std::shared_ptr<const NormalizerStep>> steps)
      : steps_(std::move(steps)) {}
  bool empty() const { return steps_.empty(); }
  void Apply(std::string_view text, std::string& out) const;
  // Every step's Track in order. kUnsupported naming the first step that cannot track.
  Status Track(AlignedText& text) const;
  std::string Canonical() const;

 private:
  std::vector<std::shared_ptr<const NormalizerStep>> steps_;
};

// Appends `text` with every `from` (not empty) replaced by `to`, left to right, to `out`.
void AppendReplaced(std::string_view text, std::string_view from, std::string_view to, std::string& out);

// The normalizers of tokenizer.json, as Hugging Face tokenizers applies them.
enum class UnicodeForm { kNFC, kNFD, kNFKC, kNFKD };
std::shared_ptr<const NormalizerStep> MakeUnicodeNormalizer(UnicodeForm form);
// Rust's char::to_lowercase, character by character (so `İ` becomes `i̇` and a final sigma `σ`).
std::shared_ptr<const NormalizerStep> MakeLowercase();
// Removes combining marks (General_Category M); tokenizers' StripAccents, usually after NFD.
std::shared_ptr<const NormalizerStep> MakeStripAccents();
// tokenizers' NMT: ASCII controls removed, the characters sentencepiece reads as whitespace to ' '.
std::shared_ptr<const NormalizerStep> MakeNmt();
// Removes White_Space characters at the start and/or the end.
std::shared_ptr<const NormalizerStep> MakeStrip(bool left, bool right);
// Puts `prefix` before any non-empty text.
std::shared_ptr<const NormalizerStep> MakePrepend(std::string prefix);
// Every non-overlapping match of `pattern` (leftmost first) becomes `content`.
std::shared_ptr<const NormalizerStep> MakeReplace(std::shared_ptr<const SplitPattern> pattern,
                                                  std::string content);
// Replace with a literal pattern (tokenizer.json's {"String": ...}).
std::shared_ptr<const NormalizerStep> MakeReplaceLiteral(std::string literal, std::string content);

// BERT's normalizer. clean_text drops NUL, U+FFFD and controls (IsBertControl) and turns
// whitespace into spaces; handle_chinese_chars puts spaces around CJK ideographs; strip_accents
// removes nonspacing marks (IsBertNonspacingMark) after NFD; lowercase as MakeLowercase.
struct BertNormalizerOptions {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  bool strip_accents = true;  // tokenizer.json's null means: the same as lowercase
  bool lowercase = true;
};
std::shared_ptr<const NormalizerStep> MakeBertNormalizer(BertNormalizerOptions options);

}  // namespace ferry::text
