// Small parsers shared by the code that reads untrusted text (URIs, HTTP headers, formats).
#pragma once

#include <cstdint>
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

}  // namespace ferry
