#include "text/decoders/sentencepiece.h"

#include <algorithm>
#include <unordered_set>

#include "text/models/bpe.h"
#include "text/unicode.h"

namespace ferry::text {
namespace {

// The byte of a byte piece as SentencePiece spells it, `<0x%02X>` (upper case only), or -1.
int ByteOfPiece(std::string_view piece) {
  if (piece.size() != 6 || !piece.starts_with("<0x") || piece[5] != '>') return -1;
  int value = 0;
  for (char c : piece.substr(3, 2)) {
    int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

class SentencePieceDecoder final : public DecoderStep {
 public:
  explicit SentencePieceDecoder(SentencePieceDecoderOptions options)
      : options_(std::move(options)), control_(options_.control.begin(), options_.control.end()) {
    std::sort(options_.control.begin(), options_.control.end());
  }

  void Decode(std::vector<std::string>& tokens) const override {
    std::string text, bytes;
    bool expect_leading_space = true;  // SentencePiece's is_bos_ws
    bool leading_space_seen = false;
    auto flush_bytes = [&] {
      for (size_t pos = 0; pos < bytes.size();) {
        char32_t cp;
        size_t length = DecodeUtf8(bytes, pos, cp);
        if (length == 0) {
          text += "\xEF\xBF\xBD";
          length = 1;
        } else {
          text.append(bytes, pos, length);
        }
        pos += length;
      }
      bytes.clear();
    };
    for (const std::string& token : tokens) {
      if (options_.byte_fallback) {
        if (int byte = ByteOfPiece(token); byte >= 0) {
          bytes += static_cast<char>(byte);
          continue;
        }
      }
      flush_bytes();
      if (leading_space_seen || !text.empty()) expect_leading_space = false;
      leading_space_seen = false;
      if (control_.contains(token)) continue;
      if (token == options_.unk_piece) {
        text += options_.unk_surface;
        continue;
      }
      std::string_view piece = token;
      if (expect_leading_space && (options_.add_dummy_prefix || options_.remove_extra_whitespaces) &&
          piece.starts_with(kSentencePieceSpace)) {
        piece.remove_prefix(kSentencePieceSpace.size());
        leading_space_seen = !options_.remove_extra_whitespaces;
      }
      for (size_t at; (at = piece.find(kSentencePieceSpace)) != std::string_view::npos;) {
        text.append(piece.substr(0, at));
        text += ' ';
        piece.remove_prefix(at + kSentencePieceSpace.size());
      }
      text.append(piece);
    }
    flush_bytes();
    tokens.assign(1, std::move(text));
  }

  std::string Canonical() const override {
    std::string out = "sentencepiece(control=[";
    for (const std::string& c : options_.control) out += std::to_string(c.size()) + ":" + c + ",";
    out += "],unk=" + std::to_string(options_.unk_piece.size()) + ":" + options_.unk_piece +
           ",surface=" + std::to_string(options_.unk_surface.size()) + ":" + options_.unk_surface +
           ",bytes=" + (options_.byte_fallback ? "1" : "0") +
           ",dummy_prefix=" + (options_.add_dummy_prefix ? "1" : "0") +
           ",remove_extra_whitespaces=" + (options_.remove_extra_whitespaces ? "1" : "0") + ");";
    return out;
  }

 private:
  SentencePieceDecoderOptions options_;
  std::unordered_set<std::string> control_;
};

}  // namespace

std::shared_ptr<const DecoderStep> MakeSentencePieceDecoder(SentencePieceDecoderOptions options) {
  return std::make_shared<SentencePieceDecoder>(std::move(options));
}

}  // namespace ferry::text
