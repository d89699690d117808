#include "text/decoders/decoder.h"

#include "text/unicode.h"

namespace ferry::text {
namespace {

// The byte a SentencePiece byte piece `<0xXX>` stands for (either case of hex digits), or -1.
int ByteOfPiece(std::string_view token) {
  if (token.size() != 6 || token.substr(0, 3) != "<0x" || token[5] != '>') return -1;
  int value = 0;
  for (char c : token.substr(3, 2)) {
    int digit = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

class ByteFallbackDecoder final : public DecoderStep {
 public:
  void Decode(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string bytes;
    size_t run = 0;  // byte tokens in `bytes`
    auto flush = [&] {
      if (run == 0) return;
      if (IsValidUtf8(bytes)) {
        out.push_back(bytes);
      } else {
        std::string replaced;
        for (size_t i = 0; i < run; ++i) replaced += "\xEF\xBF\xBD";
        out.push_back(std::move(replaced));
      }
      bytes.clear();
      run = 0;
    };
    for (std::string& token : tokens) {
      int byte = ByteOfPiece(token);
      if (byte >= 0) {
        bytes += static_cast<char>(byte);
        ++run;
      } else {
        flush();
        out.push_back(std::move(token));
      }
    }
    flush();
    tokens.swap(out);
  }
  std::string Canonical() const override { return "byte_fallback;"; }
};

class FuseDecoder final : public DecoderStep {
 public:
  void Decode(std::vector<std::string>& tokens) const override {
    std::string joined;
    for (const std::string& token : tokens) joined += token;
    tokens.assign(1, std::move(joined));
  }
  std::string Canonical() const override { return "fuse;"; }
};

class StripDecoder final : public DecoderStep {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void Decode(std::vector<std::string>& tokens) const override {
    if (content_.empty()) return;
    for (std::string& token : tokens) {
      std::string_view view = token;
      size_t begin = 0, end = view.size();
      for (size_t i = 0; i < start_ && view.substr(begin).starts_with(content_); ++i) {
        begin += content_.size();
      }
      // tokenizers panics where the two cuts overlap; here the token is then empty.
      for (size_t i = 0; i < stop_ && end >= begin + content_.size() &&
                         view.substr(0, end).ends_with(content_);
           ++i) {
        end -= content_.size();
      }
      token = std::string(view.substr(begin, end - begin));
    }
  }
  std::string Canonical() const override {
    return "strip(" + std::to_string(content_.size()) + ":" + content_ + "," +
           std::to_string(start_) + "," + std::to_string(stop_) + ");";
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class ReplaceDecoder final : public DecoderStep {
 public:
  explicit ReplaceDecoder(std::shared_ptr<const NormalizerStep> replace) : replace_(std::move(replace)) {}
  void Decode(std::vector<std::string>& tokens) const override {
    std::string replaced;
    for (std::string& token : tokens) {
      replace_->Apply(token, replaced);
      token.swap(replaced);
    }
  }
  std::string Canonical() const override { return replace_->Canonical(); }

 private:
  std::shared_ptr<const NormalizerStep> replace_;
};

class MetaspaceDecoder final : public DecoderStep {
 public:
  MetaspaceDecoder(std::string replacement, bool prepends)
      : replacement_(std::move(replacement)), prepends_(prepends) {}
  void Decode(std::vector<std::string>& tokens) const override {
    if (replacement_.empty()) return;
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string_view token = tokens[i];
      out.clear();
      for (size_t pos = 0, hit; pos <= token.size(); pos = hit + replacement_.size()) {
        hit = token.find(replacement_, pos);
        if (hit == std::string_view::npos) {
          out += token.substr(pos);
          break;
        }
        out += token.substr(pos, hit - pos);
        if (i > 0 || !prepends_) out += ' ';
      }
      tokens[i].swap(out);
    }
  }
  std::string Canonical() const override {
    return "metaspace(" + std::to_string(replacement_.size()) + ":" + replacement_ +
           ",prepends=" + (prepends_ ? "1" : "0") + ");";
  }

 private:
  std::string replacement_;
  bool prepends_;
};

// Every `from` in `text` becomes `to`, as Rust's str::replace: an empty `from` matches at every
// character boundary, so `to` goes before each character and at the end.
void ReplaceAll(std::string& text, std::string_view from, std::string_view to) {
  std::string out;
  if (from.empty()) {
    for (char c : text) {
      if ((static_cast<uint8_t>(c) & 0xC0) != 0x80) out += to;  // a character starts here
      out += c;
    }
    out += to;
    text.swap(out);
    return;
  }
  const size_t first = text.find(from);
  if (first == std::string::npos) return;  // the common case: nothing to copy
  out.append(text, 0, first);
  out += to;
  AppendReplaced(std::string_view(text).substr(first + from.size()), from, to, out);
  text.swap(out);
}

// tokenizers' wordpiece::cleanup, shared by the WordPiece and CTC decoders: BERT's spaces before
// punctuation and in English contractions undone. The order matters: " ' " goes before the
// contractions that start with "'".
void CleanupSpacing(std::string& token) {
  static constexpr std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."},       {" ?", "?"},     {" !", "!"},          {" ,", ","},
      {" ' ", "'"},      {" n't", "n't"}, {" 'm", "'m"},        {" do not", " don't"},
      {" 's", "'s"},     {" 've", "'ve"}, {" 're", "'re"},
  };
  for (auto [from, to] : kRules) ReplaceAll(token, from, to);
}

class WordPieceDecoder final : public DecoderStep {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup) : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void Decode(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& token = tokens[i];
      if (i > 0) {
        if (!prefix_.empty() && token.starts_with(prefix_)) {
          token.erase(0, prefix_.size());
        } else {
          token.insert(0, 1, ' ');
        }
      }
      if (cleanup_) CleanupSpacing(token);
    }
  }
  std::string Canonical() const override {
    return "wordpiece(" + std::to_string(prefix_.size()) + ":" + prefix_ +
           ",cleanup=" + (cleanup_ ? "1" : "0") + ");";
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

// Original BPE: the end-of-word suffix is a space, except in the last token where it goes.
class BpeDecoder final : public DecoderStep {
 public:
  explicit BpeDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void Decode(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      ReplaceAll(tokens[i], suffix_, i + 1 == tokens.size() ? "" : " ");
    }
  }
  std::string Canonical() const override {
    return "bpe(" + std::to_string(suffix_.size()) + ":" + suffix_ + ");";
  }

 private:
  std::string suffix_;
};

// CTC model output: repeats collapse, pad tokens go, and (with cleanup) the word delimiter is
// a space; tokens left empty are dropped.
class CtcDecoder final : public DecoderStep {
 public:
  CtcDecoder(std::string pad, std::string delimiter, bool cleanup)
      : pad_(std::move(pad)), delimiter_(std::move(delimiter)), cleanup_(cleanup) {}
  void Decode(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0 && tokens[i] == tokens[i - 1]) continue;
      std::string token = tokens[i];
      ReplaceAll(token, pad_, "");
      if (cleanup_) {
        CleanupSpacing(token);
        ReplaceAll(token, delimiter_, " ");
      }
      if (!token.empty()) out.push_back(std::move(token));
    }
    tokens = std::move(out);
  }
  std::string Canonical() const override {
    return "ctc(" + std::to_string(pad_.size()) + ":" + pad_ + "," + std::to_string(delimiter_.size()) +
           ":" + delimiter_ + ",cleanup=" + (cleanup_ ? "1" : "0") + ");";
  }

 private:
  std::string pad_, delimiter_;
  bool cleanup_;
};

}  // namespace

void Decoder::Decode(std::vector<std::string>& tokens, std::string& out) const {
  for (const auto& step : steps_) step->Decode(tokens);
  for (const std::string& token : tokens) out += token;
}

std::string Decoder::Canonical() const {
  std::string out = "decoder[";
  for (const auto& step : steps_) out += step->Canonical();
  return out + "]";
}

std::shared_ptr<const DecoderStep> MakeByteFallbackDecoder() {
  return std::make_shared<ByteFallbackDecoder>();
}
std::shared_ptr<const DecoderStep> MakeFuseDecoder() { return std::make_shared<FuseDecoder>(); }
std::shared_ptr<const DecoderStep> MakeStripDecoder(std::string content, size_t start, size_t stop) {
  return std::make_shared<StripDecoder>(std::move(content), start, stop);
}
std::shared_ptr<const DecoderStep> MakeReplaceDecoder(std::shared_ptr<const NormalizerStep> replace) {
  return std::make_shared<ReplaceDecoder>(std::move(replace));
}
std::shared_ptr<const DecoderStep> MakeMetaspaceDecoder(std::string replacement, bool prepends) {
  return std::make_shared<MetaspaceDecoder>(std::move(replacement), prepends);
}
std::shared_ptr<const DecoderStep> MakeWordPieceDecoder(std::string prefix, bool cleanup) {
  return std::make_shared<WordPieceDecoder>(std::move(prefix), cleanup);
}

std::shared_ptr<const DecoderStep> MakeBpeDecoder(std::string suffix) {
  return std::make_shared<BpeDecoder>(std::move(suffix));
}

std::shared_ptr<const DecoderStep> MakeCtcDecoder(std::string pad, std::string delimiter, bool cleanup) {
  return std::make_shared<CtcDecoder>(std::move(pad), std::move(delimiter), cleanup);
}

}  // namespace ferry::text
