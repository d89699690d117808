// Small string helpers shared by error messages and digests.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ferry {

// `text` in single quotes for a message, cut to `max` bytes ("...") so that a huge input (a URI,
// a regex) keeps the message one readable line.
inline std::string Quoted(std::string_view text, size_t max = 200) {
  std::string out = "'";
  out.append(text.substr(0, max));
  if (text.size() > max) out += "...";
  out += "'";
  return out;
}

// Lower-case hex of bytes: digests, and bytes that cannot be shown as text.
inline std::string LowerHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * bytes.size(), '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    auto b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = kDigits[b >> 4];
    out[2 * i + 1] = kDigits[b & 0xf];
  }
  return out;
}

}  // namespace ferry
