// Small helpers for the subcommands' output to people: sizes, counts, text from untrusted files
// and a progress line.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>

namespace ferry::cli {

// "1.5 GiB": a size for people, printed beside the exact byte count where that matters.
inline std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 6) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  if (unit == 0) {
    std::snprintf(text, sizeof text, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(text, sizeof text, "%.1f %s", value, kUnits[unit]);
  }
  return text;
}

// "1 tensor", "3 tensors".
inline std::string Counted(uint64_t n, std::string_view noun) {
  return std::to_string(n) + " " + std::string(noun) + (n == 1 ? "" : "s");
}

// Text taken from a file (tensor names, metadata) made safe for a terminal: control characters
// become \xNN, so a hostile header can neither break the table's lines nor send escape sequences.
inline std::string Printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out;
}

// Terminal columns of valid UTF-8 text, counting one per code point (near enough for names).
inline size_t DisplayWidth(std::string_view text) {
  size_t width = 0;
  for (char c : text) width += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  return width;
}

// One line on stderr, redrawn in place with '\r': "<label>  1.2 GiB / 4.8 GiB  25%" (or
// "<label>  12 / 48  25%" when counting items rather than bytes; "<label>  12" when the total
// is not known, given as 0). Only when
// stderr is a terminal (a log file or a pipe gets nothing), at most every 100 ms so drawing never
// costs throughput, and never for work that finishes within the first 100 ms.
class ProgressLine {
 public:
  enum class Unit { kBytes, kItems };
  ProgressLine(std::string label, uint64_t total, Unit unit = Unit::kBytes)
      : label_(std::move(label)),
        total_(total),
        unit_(unit),
        enabled_(::isatty(STDERR_FILENO) == 1),
        last_draw_(std::chrono::steady_clock::now()) {}
  ~ProgressLine() { Clear(); }
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  void Update(uint64_t done) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    if (now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    // "\x1b[K" clears what a longer previous line left to the right.
    auto format = [&](uint64_t n) {
      return unit_ == Unit::kBytes ? HumanBytes(n) : std::to_string(n);
    };
    if (total_ == 0) {  // not known: the count alone
      std::fprintf(stderr, "\r%s  %s\x1b[K", label_.c_str(), format(done).c_str());
    } else {
      int percent = static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total_));
      std::fprintf(stderr, "\r%s  %s / %s  %d%%\x1b[K", label_.c_str(), format(done).c_str(),
                   format(total_).c_str(), percent);
    }
    std::fflush(stderr);
    drawn_ = true;
  }

  // Erases the line, so what follows (results, an error) starts on a clean line.
  void Clear() {
    if (!drawn_) return;
    std::fputs("\r\x1b[K", stderr);
    std::fflush(stderr);
    drawn_ = false;
  }

 private:
  std::string label_;
  uint64_t total_;
  Unit unit_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace ferry::cli
