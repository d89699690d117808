#include "text/alignment.h"

#include "text/unicode.h"

namespace ferry::text {
namespace {

// Bytes of the character at text[pos] (1 for a byte that is not UTF-8).
size_t CharacterLength(std::string_view text, size_t pos) {
  char32_t cp;
  const size_t length = DecodeUtf8(text, pos, cp);
  return length == 0 ? 1 : length;
}

}  // namespace

void AppendCharacter(char32_t c, std::string& out) {
  if (c >= kRawByte) {
    out += static_cast<char>(c - kRawByte);
  } else {
    AppendUtf8(c, out);
  }
}

AlignedText AlignedText::Original(std::string_view text, size_t base) {
  AlignedText out;
  out.text_.assign(text);
  out.base_ = static_cast<uint32_t>(base);
  out.spans_.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const size_t length = CharacterLength(text, pos);
    const ByteSpan span{static_cast<uint32_t>(base + pos), static_cast<uint32_t>(base + pos + length)};
    out.spans_.insert(out.spans_.end(), length, span);
    pos += length;
  }
  return out;
}

std::vector<Change> AlignedText::Characters() const {
  std::vector<Change> out;
  out.reserve(text_.size());
  for (size_t pos = 0; pos < text_.size();) {
    char32_t cp = 0;
    const size_t length = DecodeUtf8(text_, pos, cp);
    if (length == 0) {
      out.push_back({kRawByte + static_cast<uint8_t>(text_[pos]), 0});
      ++pos;
    } else {
      out.push_back({cp, 0});
      pos += length;
    }
  }
  return out;
}

void AlignedText::Transform(const std::vector<Change>& changes, size_t removed_first) {
  size_t offset = 0;  // the next input byte a change consumes
  auto consume = [&](size_t characters) {
    for (; characters > 0 && offset < text_.size(); --characters) {
      offset += CharacterLength(text_, offset);
    }
  };
  consume(removed_first);
  std::string text;
  std::vector<ByteSpan> spans;
  text.reserve(text_.size());
  spans.reserve(text_.size());
  for (const Change& c : changes) {
    ByteSpan span;
    if (c.change > 0) {
      span = offset == 0 ? ByteSpan{base_, base_} : spans_[offset - 1];
    } else {
      span = offset < spans_.size() ? spans_[offset] : ByteSpan{base_, base_};
      consume(1 + static_cast<size_t>(-c.change));
    }
    const size_t before = text.size();
    AppendCharacter(c.character, text);
    spans.insert(spans.end(), text.size() - before, span);
  }
  text_.swap(text);
  spans_.swap(spans);
}

void AlignedText::Prepend(std::string_view prefix) {
  if (text_.empty() || prefix.empty()) return;
  std::vector<Change> changes = Original(prefix, 0).Characters();
  for (size_t i = 1; i < changes.size(); ++i) changes[i].change = 1;
  std::vector<Change> characters = Characters();
  characters[0].change = 1;
  changes.insert(changes.end(), characters.begin(), characters.end());
  Transform(changes, 0);
}

void AlignedText::Replace(const std::vector<std::pair<size_t, size_t>>& matches,
                          std::string_view content) {
  if (matches.empty()) return;
  std::string text;
  std::vector<ByteSpan> spans;
  size_t copied = 0;
  for (auto [begin, end] : matches) {
    text.append(text_, copied, begin - copied);
    spans.insert(spans.end(), spans_.begin() + copied, spans_.begin() + begin);
    const ByteSpan span = end == 0 ? ByteSpan{base_, base_} : spans_[end - 1];
    text.append(content);
    spans.insert(spans.end(), content.size(), span);
    copied = end;
  }
  text.append(text_, copied);
  spans.insert(spans.end(), spans_.begin() + copied, spans_.end());
  text_.swap(text);
  spans_.swap(spans);
}

AlignedText AlignedText::Slice(size_t begin, size_t end) const {
  AlignedText out;
  out.text_.assign(text_, begin, end - begin);
  out.spans_.assign(spans_.begin() + begin, spans_.begin() + end);
  out.base_ = OriginalSpan(begin, end).begin;
  return out;
}

ByteSpan AlignedText::OriginalSpan(size_t begin, size_t end) const {
  if (begin == end) {
    return {static_cast<uint32_t>(base_ + begin), static_cast<uint32_t>(base_ + end)};
  }
  return {spans_[begin].begin, spans_[end - 1].end};
}

ByteToCharOffsets::ByteToCharOffsets(std::string_view text) {
  character_.reserve(text.size());
  uint32_t index = 0;
  for (size_t pos = 0; pos < text.size(); ++index) {
    const size_t length = CharacterLength(text, pos);
    character_.insert(character_.end(), length, index);
    pos += length;
  }
}

void ByteToCharOffsets::Convert(uint32_t& begin, uint32_t& end) const {
  if (begin >= character_.size()) return;
  const uint32_t start = character_[begin];
  if (end < character_.size()) {
    begin = start;
    end = character_[end];
    return;
  }
  // The end is past the text: one after the character of the byte before it.
  const uint32_t last = end - 1 < character_.size() ? character_[end - 1] : start + 1;
  begin = start;
  end = last + 1;
}

}  // namespace ferry::text
