#include "text/normalizers/sentencepiece.h"

#include <array>

#include "text/unicode.h"

namespace ferry::text {
namespace {

constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";

// Every ASCII byte at its own index, for pieces that are one byte of themselves.
constexpr auto kAscii = [] {
  std::array<char, 0x80> bytes{};
  for (int b = 0; b < 0x80; ++b) bytes[b] = static_cast<char>(b);
  return bytes;
}();

class SentencePieceNormalizer final : public NormalizerStep {
 public:
  explicit SentencePieceNormalizer(SentencePieceNormalizerOptions options)
      : options_(std::move(options)) {
    // An ASCII byte followed by another (or by the end) that starts no user-defined symbol, and
    // no charsmap key of two or more bytes whose second byte is ASCII, normalizes to the one-byte
    // key's replacement or to itself: most of English text, which then skips both searches.
    // (NFKC charsmaps have keys such as "A" + U+0301, whose second byte is not ASCII.)
    for (int b = 1; b < 0x80; ++b) {
      const char first = static_cast<char>(b);
      ascii_fast_[b] = true;
      ascii_piece_[b] = std::string_view(&kAscii[b], 1);
      if (!options_.charsmap) continue;
      for (int next = 1; next < 0x80 && ascii_fast_[b]; ++next) {
        const char key[] = {first, static_cast<char>(next)};
        ascii_fast_[b] = !options_.charsmap->HasKeyWithPrefix(std::string_view(key, 2));
      }
      std::string_view replacement;
      if (options_.charsmap->LongestMatch(std::string_view(&first, 1), replacement) == 1) {
        ascii_piece_[b] = replacement;
      }
    }
    for (const std::string& symbol : options_.user_defined.Sorted()) {
      if (!symbol.empty()) ascii_fast_[static_cast<uint8_t>(symbol[0])] = false;
    }
  }

  void Apply(std::string_view text, std::string& out) const override {
    out.clear();
    const bool remove_extra = options_.remove_extra_whitespaces;
    size_t pos = 0;
    std::string_view piece;
    if (remove_extra) {
      while (pos < text.size()) {
        size_t consumed = NormalizePrefix(text.substr(pos), piece);
        if (piece != " ") break;
        pos += consumed;
      }
    }
    if (pos == text.size()) return;  // empty, or only spaces
    out.reserve(text.size() + text.size() / 2 + 3);
    const std::string_view space = options_.escape_whitespaces ? kSentencePieceSpace : " ";
    if (options_.add_dummy_prefix) out += space;
    bool previous_space = remove_extra;
    while (pos < text.size()) {
      size_t consumed = NormalizePrefix(text.substr(pos), piece);
      pos += consumed;
      while (previous_space && !piece.empty() && piece[0] == ' ') piece.remove_prefix(1);
      if (!piece.empty()) {
        for (char c : piece) {
          if (c == ' ') {
            out += space;
          } else {
            out += c;
          }
        }
        previous_space = piece.back() == ' ';
      }
      if (!remove_extra) previous_space = false;
    }
    if (remove_extra) {
      while (out.size() >= space.size() && std::string_view(out).ends_with(space)) {
        out.resize(out.size() - space.size());
      }
    }
  }

  std::string Canonical() const override {
    std::string out = "sentencepiece(charsmap=";
    out += options_.charsmap ? "sha256:" + options_.charsmap->digest() : "none";
    out += std::string(",dummy_prefix=") + (options_.add_dummy_prefix ? "1" : "0") +
           ",remove_extra_whitespaces=" + (options_.remove_extra_whitespaces ? "1" : "0") +
           ",escape_whitespaces=" + (options_.escape_whitespaces ? "1" : "0") + ",user_defined=[";
    for (const std::string& symbol : options_.user_defined.Sorted()) {
      out += std::to_string(symbol.size()) + ":" + symbol + ",";
    }
    return out + "]);";
  }

 private:
  // What the text at the start of `input` normalizes to (`piece`) and how many bytes that takes.
  size_t NormalizePrefix(std::string_view input, std::string_view& piece) const {
    const uint8_t first = static_cast<uint8_t>(input[0]);
    if (first < 0x80 && ascii_fast_[first] &&
        (input.size() == 1 || static_cast<uint8_t>(input[1]) < 0x80)) {
      piece = ascii_piece_[first];
      return 1;
    }
    TokenId id = kNoToken;
    if (size_t length = options_.user_defined.Match(input, id); length > 0) {
      piece = input.substr(0, length);
      return length;
    }
    if (options_.charsmap) {
      if (size_t length = options_.charsmap->LongestMatch(input, piece); length > 0) return length;
    }
    char32_t cp;
    size_t length = DecodeUtf8(input, 0, cp);
    if (length == 0) {
      piece = kReplacementCharacter;
      return 1;
    }
    piece = input.substr(0, length);
    return length;
  }

  SentencePieceNormalizerOptions options_;
  // By ASCII byte (see the constructor): whether the fast path applies, and the piece it gives.
  bool ascii_fast_[0x80] = {};
  std::string_view ascii_piece_[0x80];
};

}  // namespace

std::shared_ptr<const NormalizerStep> MakeSentencePieceNormalizer(
    SentencePieceNormalizerOptions options) {
  return std::make_shared<SentencePieceNormalizer>(std::move(options));
}

}  // namespace ferry::text
