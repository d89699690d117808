// Text that remembers where each of its bytes came from: the alignment half of Hugging Face
// tokenizers' NormalizedString, which is what its Encoding offsets are made of.
//
// Every byte of the (normalized) text carries the span of the original text it stands for. The
// normalizers and pre-tokenizers describe what they do as a list of Changes, one per output
// character, and Transform assigns spans to the output from them by tokenizers' rule:
//   change  0: the character replaces the next input character, and takes its span;
//   change -n: the same, and the n input characters after that one are removed;
//   change +1: the character is inserted, and takes the span of the input byte before it (the
//              start of the text: the empty span where the text's original starts).
// So a decomposition (é -> e + U+0301) gives both characters é's span, a lowercase that grows
// (İ -> i + U+0307) likewise, and an inserted character (Prepend, a replacement) the span of its
// neighbour: offsets depend on how a step spells its changes, not only on its output, which is
// why each step spells them as tokenizers' does.
//
// A byte that is not UTF-8 counts as a character of its own (C++ callers may pass any bytes).
// Used only on the offsets path (EncodeOptions::offsets): the fast path never builds one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::text {

// [begin, end) in bytes of the original text.
struct ByteSpan {
  uint32_t begin = 0, end = 0;
  bool operator==(const ByteSpan&) const = default;
};

// Output character of a Change that is a raw byte rather than a code point: kRawByte + byte.
inline constexpr char32_t kRawByte = 0x110000;

struct Change {
  char32_t character;  // a code point, or kRawByte + byte
  int change;          // see the file comment
};

class AlignedText {
 public:
  AlignedText() = default;
  // `text` as an original whose first byte is at `base`: each byte gets its character's span.
  static AlignedText Original(std::string_view text, size_t base);

  const std::string& text() const { return text_; }
  const std::vector<ByteSpan>& spans() const { return spans_; }  // one per byte of text()
  bool empty() const { return text_.empty(); }
  // Where this text's original starts (the span an insertion at the very start gets).
  uint32_t base() const { return base_; }

  // Replaces the text by `changes` as the file comment says, the first `removed_first`
  // characters of the text removed before the first change applies (tokenizers'
  // `transform(changes, initial_offset)`).
  void Transform(const std::vector<Change>& changes, size_t removed_first);

  // Each of the byte ranges `matches` (ascending, not overlapping) becomes `content`, whose
  // characters count as inserted after the match: they take the span of its last byte (the byte
  // before it when the match is empty). tokenizers' replace.
  void Replace(const std::vector<std::pair<size_t, size_t>>& matches, std::string_view content);

  // tokenizers' prepend of a non-empty text: the prefix's first character replaces the text's
  // first, the rest of the prefix and that character count as inserted after it, so all take the
  // first character's span. Empty text stays empty.
  void Prepend(std::string_view prefix);

  // The text's characters, each as a Change of 0 (the start of most transformations).
  std::vector<Change> Characters() const;

  // Bytes [begin, end) of the text with their spans; its base is where the slice's original
  // starts (tokenizers' NormalizedString::slice). REQUIRES: begin <= end <= size.
  AlignedText Slice(size_t begin, size_t end) const;

  // The original span of text bytes [begin, end): from the first byte's span start to the last
  // byte's span end (tokenizers' convert_offsets). An empty range is {base + begin, base + end},
  // as tokenizers returns it unconverted. REQUIRES: begin <= end <= size.
  ByteSpan OriginalSpan(size_t begin, size_t end) const;

 private:
  std::string text_;
  std::vector<ByteSpan> spans_;
  uint32_t base_ = 0;
};

// Appends `c` (a code point or kRawByte + byte) to `out`.
void AppendCharacter(char32_t c, std::string& out);

// Converts byte offsets into `text` to character offsets, as tokenizers' Python binding does
// (BytesToCharOffsetConverter): a start or end inside a character counts as that character; an
// end at the end of the text is the character count; a span whose start is not a byte of the
// text stays as it was. A byte that is not UTF-8 is one character.
class ByteToCharOffsets {
 public:
  explicit ByteToCharOffsets(std::string_view text);
  void Convert(uint32_t& begin, uint32_t& end) const;

 private:
  std::vector<uint32_t> character_;  // by byte: the index of the character holding it
};

}  // namespace ferry::text
