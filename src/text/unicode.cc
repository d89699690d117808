#include "text/unicode.h"

#include <utf8proc.h>

#include <array>

#include "text/unicode8_tables.h"

namespace ferry::text {
namespace {

struct ByteLevelTables {
  std::array<char32_t, 256> to_codepoint{};
  // Code points of the alphabet are all below U+0144; index -> byte + 1 (0: not in alphabet).
  std::array<uint16_t, 0x144> to_byte{};

  ByteLevelTables() {
    uint32_t next_extra = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      char32_t cp = printable ? static_cast<char32_t>(b) : 0x100 + next_extra++;
      to_codepoint[b] = cp;
      to_byte[cp] = static_cast<uint16_t>(b + 1);
    }
  }
};

const ByteLevelTables& Tables() {
  static const ByteLevelTables tables;
  return tables;
}

template <size_t N>
bool InRanges(const std::pair<char32_t, char32_t> (&ranges)[N], char32_t cp) {
  for (auto [first, last] : ranges) {
    if (cp >= first && cp <= last) return true;
  }
  return false;
}

utf8proc_category_t Category(char32_t cp) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(cp));
}

}  // namespace

size_t DecodeUtf8(std::string_view text, size_t pos, char32_t& cp) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data()) + pos;
  size_t left = text.size() - pos;
  unsigned char b0 = s[0];
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  auto cont = [&](size_t i) { return i < left && (s[i] & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (!cont(1)) return 0;
    cp = (char32_t{b0} & 0x1F) << 6 | (s[1] & 0x3F);
    return 2;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    cp = (char32_t{b0} & 0x0F) << 12 | char32_t{s[1] & 0x3Fu} << 6 | (s[2] & 0x3F);
    if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    cp = (char32_t{b0} & 0x07) << 18 | char32_t{s[1] & 0x3Fu} << 12 | char32_t{s[2] & 0x3Fu} << 6 |
         (s[3] & 0x3F);
    if (cp < 0x10000 || cp > 0x10FFFF) return 0;
    return 4;
  }
  return 0;
}

void AppendUtf8(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool IsValidUtf8(std::string_view text) {
  char32_t cp;
  for (size_t pos = 0; pos < text.size();) {
    size_t length = DecodeUtf8(text, pos, cp);
    if (length == 0) return false;
    pos += length;
  }
  return true;
}

char32_t ByteToCodepoint(uint8_t byte) { return Tables().to_codepoint[byte]; }

void AppendByteLevel(std::string_view bytes, std::string& out) {
  const ByteLevelTables& tables = Tables();
  for (char c : bytes) AppendUtf8(tables.to_codepoint[static_cast<uint8_t>(c)], out);
}

bool AppendFromByteLevel(std::string_view mapped, std::string& out) {
  const ByteLevelTables& tables = Tables();
  size_t start = out.size();
  for (size_t pos = 0; pos < mapped.size();) {
    char32_t cp;
    size_t length = DecodeUtf8(mapped, pos, cp);
    if (length == 0 || cp >= tables.to_byte.size() || tables.to_byte[cp] == 0) {
      out.resize(start);
      return false;
    }
    out += static_cast<char>(tables.to_byte[cp] - 1);
    pos += length;
  }
  return true;
}

bool IsNumeric(char32_t cp) {
  auto c = Category(cp);
  return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

bool IsPunctuation(char32_t cp) {
  if (cp < 0x80) return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) ||
                        (cp >= 0x5B && cp <= 0x60) || (cp >= 0x7B && cp <= 0x7E);
  // tokenizers classifies with Unicode 8.0 tables (see make_unicode8_tables.py).
  if (InRanges(unicode8::kAlsoPunctuation, cp)) return true;
  if (InRanges(unicode8::kNotPunctuation, cp)) return false;
  auto c = Category(cp);
  return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

bool IsBertControl(char32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  if (InRanges(unicode8::kNotControl, cp)) return false;
  auto c = Category(cp);
  return c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_CO ||
         c == UTF8PROC_CATEGORY_CS;
}

bool IsBertNonspacingMark(char32_t cp) {
  if (InRanges(unicode8::kAlsoNonspacingMark, cp)) return true;
  if (InRanges(unicode8::kNotNonspacingMark, cp)) return false;
  return Category(cp) == UTF8PROC_CATEGORY_MN;
}

bool IsWordChar(char32_t cp) {
  if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') ||
                        (cp >= 'A' && cp <= 'Z') || cp == '_';
  if (cp == 0x200C || cp == 0x200D) return true;  // Join_Control
  // Alphabetic outside the letters and marks: the circled and squared Latin letters (So, in
  // Other_Alphabetic). With them this is Rust regex's \w on every code point Unicode 14 assigns
  // (checked one by one against tokenizers 0.23.3's Whitespace pre-tokenizer).
  if ((cp >= 0x24B6 && cp <= 0x24E9) || (cp >= 0x1F130 && cp <= 0x1F149) ||
      (cp >= 0x1F150 && cp <= 0x1F169) || (cp >= 0x1F170 && cp <= 0x1F189)) {
    return true;
  }
  auto c = Category(cp);
  return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
         (c >= UTF8PROC_CATEGORY_MN && c <= UTF8PROC_CATEGORY_ME) || c == UTF8PROC_CATEGORY_ND ||
         c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_PC;
}

bool IsWhitespace(char32_t cp) {
  switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

std::string_view Utf8procUnicodeVersion() { return utf8proc_unicode_version(); }

}  // namespace ferry::text
