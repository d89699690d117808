// libFuzzer target: arbitrary bytes as a SentencePiece .model file (a ModelProto). The wire
// reader and the model checks must never crash or read outside the input, every error must say
// what is wrong, and a model that loads must encode and decode any text, its own bytes included.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view proto(reinterpret_cast<const char*>(data), size);
  auto tokenizer = ferry::text::Tokenizer::FromSentencePieceProto(proto, "fuzz.model");
  if (!tokenizer.ok()) {
    if (tokenizer.status().message().find("fuzz.model") == std::string::npos) std::abort();
    return 0;
  }
  const ferry::text::Tokenizer& t = **tokenizer;
  std::vector<ferry::text::TokenId> ids;
  std::string text;
  for (std::string_view input : {proto.substr(0, 4096), std::string_view("  a\xEF\xAC\x81 \xFF\xE2\x82 x  \xE2\x96\x81")}) {
    ids.clear();
    if (!t.Encode(input, {}, ids).ok()) std::abort();  // every SentencePiece model has unk
    text.clear();
    if (!t.Decode(ids, false, text).ok()) std::abort();
  }
  // Every id decodes, alone and all together.
  ids.clear();
  for (ferry::text::TokenId id = 0; id < t.vocab_size() && id < 4096; ++id) ids.push_back(id);
  text.clear();
  if (!t.Decode(ids, false, text).ok()) std::abort();
  return 0;
}
