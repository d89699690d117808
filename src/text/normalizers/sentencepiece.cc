#include "text/normalizers/sentencepiece.h"

#include "text/unicode.h"

namespace ferry::text {
namespace {

constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";

class SentencePieceNormalizer final : public NormalizerStep {
 public:
  explicit SentencePieceNormalizer(SentencePieceNormalizerOptions options)
      : options_(std::move(options)) {}

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
};

}  // namespace

std::shared_ptr<const NormalizerStep> MakeSentencePieceNormalizer(
    SentencePieceNormalizerOptions options) {
  return std::make_shared<SentencePieceNormalizer>(std::move(options));
}

}  // namespace ferry::text
