// libFuzzer target: arbitrary bytes as text to encode, through two small tokenizers built here:
// a rank file with the cl100k split pattern (a hand-written scanner) and a tokenizer.json with
// Falcon's general pre-tokenizer pipeline (Punctuation, ByteLevel, Digits, Split) and added
// tokens with every flag. Both cover all 256 bytes, so every input must encode, and decode back
// to exactly the input. The alignment pass (Encoding offsets and word ids) runs on each too: its
// ids must be the fast path's, and every offset a span of the input, in order.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/text.h"

namespace {

std::string Base64(std::string_view bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t group = 0;
    size_t n = std::min<size_t>(3, bytes.size() - i);
    for (size_t j = 0; j < 3; ++j) {
      group = group << 8 | (j < n ? static_cast<uint8_t>(bytes[i + j]) : 0);
    }
    for (size_t j = 0; j < 4; ++j) out += j <= n ? kAlphabet[(group >> (18 - 6 * j)) & 63] : '=';
  }
  return out;
}

std::shared_ptr<const ferry::text::Tokenizer> RankTokenizer() {
  std::string ranks;
  int rank = 0;
  for (int b = 0; b < 256; ++b) {
    ranks += Base64(std::string(1, static_cast<char>(b))) + " " + std::to_string(rank++) + "\n";
  }
  for (std::string_view token : {"aa", "aaaa", "ab", "ba", " a", " the", "th", "he", "  ", "\n\n"}) {
    ranks += Base64(token) + " " + std::to_string(rank++) + "\n";
  }
  ferry::text::TiktokenOptions options;
  options.name = "cl100k_base";
  options.special_tokens = {{"<|endoftext|>", 1000}};
  auto tokenizer = ferry::text::Tokenizer::FromTiktokenRanks(ranks, "fuzz.tiktoken", options);
  if (!tokenizer.ok()) std::abort();
  return *tokenizer;
}

std::shared_ptr<const ferry::text::Tokenizer> JsonTokenizer() {
  // The byte-level alphabet: byte b is code point b when printable Latin-1, else U+0100 + n.
  std::string vocab;
  int next_extra = 0;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    char32_t cp = printable ? static_cast<char32_t>(b) : 0x100 + next_extra++;
    char escaped[16];
    std::snprintf(escaped, sizeof escaped, "\\u%04X", static_cast<unsigned>(cp));
    vocab += std::string(vocab.empty() ? "" : ",") + "\"" + escaped + "\":" + std::to_string(b);
  }
  vocab += ",\"aa\":256,\"ab\":257,\"aab\":258,\"\\u0120a\":259";
  std::string json = R"({"model":{"type":"BPE","vocab":{)" + vocab +
                     R"(},"merges":["a a","a b","aa b","\u0120 a"]},
    "added_tokens":[
      {"id":300,"content":"<s>","special":true,"lstrip":true,"rstrip":false,"single_word":false,"normalized":false},
      {"id":301,"content":"[e]","special":true,"lstrip":false,"rstrip":true,"single_word":false,"normalized":false},
      {"id":302,"content":"ab","special":false,"lstrip":false,"rstrip":false,"single_word":true,"normalized":true}],
    "pre_tokenizer":{"type":"Sequence","pretokenizers":[
      {"type":"Punctuation","behavior":"Contiguous"},
      {"type":"ByteLevel","add_prefix_space":false,"use_regex":true},
      {"type":"Digits","individual_digits":false},
      {"type":"Split","pattern":{"Regex":"[0-9][0-9][0-9]"},"behavior":"Isolated","invert":false}]},
    "decoder":{"type":"ByteLevel"}})";
  auto tokenizer = ferry::text::Tokenizer::FromJson(json, "fuzz.json");
  if (!tokenizer.ok()) std::abort();
  return *tokenizer;
}

// EncodeEncoding with byte offsets: the fast path's ids, and per id a [begin, end) inside the
// text whose begins never go back (one sequence, no special tokens added).
void CheckAlignment(const ferry::text::Tokenizer& tok, std::string_view text, bool match_added,
                    const std::vector<uint32_t>& ids) {
  ferry::text::EncodeInput input;
  input.first.push_back(text);
  ferry::text::EncodeOptions options{match_added, false};
  options.offsets = ferry::text::EncodeOptions::Offsets::kBytes;
  ferry::text::Encoding encoding;
  if (!tok.EncodeEncoding(input, options, nullptr, nullptr, encoding).ok()) std::abort();
  if (encoding.ids != ids || encoding.offsets.size() != ids.size() || encoding.words.size() != ids.size()) {
    std::abort();
  }
  uint32_t last_begin = 0;
  for (auto [begin, end] : encoding.offsets) {
    if (begin > end || end > text.size() || begin < last_begin) std::abort();
    last_begin = begin;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto rank_tokenizer = RankTokenizer();
  static const auto json_tokenizer = JsonTokenizer();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const auto* tok : {rank_tokenizer.get(), json_tokenizer.get()}) {
    for (bool match_added : {false, true}) {
      std::vector<uint32_t> ids;
      if (!tok->Encode(text, {match_added, true}, ids).ok()) std::abort();
      std::string decoded;
      if (!tok->Decode(ids, false, decoded).ok()) std::abort();
      // lstrip/rstrip tokens swallow whitespace, which then does not come back.
      if (!match_added && decoded != text) std::abort();
      CheckAlignment(*tok, text, match_added, ids);
    }
  }
  return 0;
}
