// Small parsers shared by the code that reads untrusted text (URIs, HTTP headers, formats).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace ferry {

// A non-negative decimal of 1 to 19 digits (so it always fits uint64_t); no sign, no spaces.
inline bool ParseDecimal(std::string_view digits, uint64_t& out) {
  if (digits.empty() || digits.size() > 19) return false;
  out = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + static_cast<uint64_t>(c - '0');
  }
  return true;
}

// Strict base64 (standard alphabet, `=` padding to a multiple of four).
inline bool DecodeBase64(std::string_view text, std::string& out) {
  static const std::array<int8_t, 256> kValue = [] {
    std::array<int8_t, 256> value;
    value.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) value[static_cast<uint8_t>(alphabet[i])] = static_cast<int8_t>(i);
    return value;
  }();
  out.clear();
  if (text.empty() || text.size() % 4 != 0) return false;
  size_t padding = 0;
  if (text.back() == '=') padding = text[text.size() - 2] == '=' ? 2 : 1;
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t group = 0;
    for (size_t j = 0; j < 4; ++j) {
      char c = text[i + j];
      int8_t v = kValue[static_cast<uint8_t>(c)];
      bool pad = c == '=' && i + 4 == text.size() && j >= 4 - padding;
      if (v < 0 && !pad) return false;
      group = group << 6 | static_cast<uint32_t>(pad ? 0 : v);
    }
    size_t bytes = i + 4 == text.size() ? 3 - padding : 3;
    for (size_t j = 0; j < bytes; ++j) out += static_cast<char>(group >> (16 - 8 * j));
  }
  return true;
}

}  // namespace ferry
