// Writing JSON text by hand where a document is small and its shape fixed (safetensors headers).
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace ferry {

// Appends `text` (valid UTF-8) as a JSON string literal: quotes, backslashes and control
// characters escaped, everything else passed through byte for byte.
inline void AppendJsonString(std::string& out, std::string_view text) {
  out += '"';
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':  // the short escapes JSON has, as serde_json (the reference's) writes them
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned char>(c));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

}  // namespace ferry
