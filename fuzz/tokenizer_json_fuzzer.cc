// libFuzzer target: arbitrary bytes as a tokenizer.json. Loading must never crash, hang or
// allocate without bound; a tokenizer that loads must encode text into ids it can decode.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  auto tokenizer = ferry::text::Tokenizer::FromJson(json, "fuzz.json");
  if (!tokenizer.ok()) {
    if (tokenizer.status().message().find("fuzz.json: ") != 0) std::abort();
    return 0;
  }
  const auto& tok = **tokenizer;
  for (std::string_view text : {std::string_view("Hello world, it's 2024!\n\n  x"),
                                std::string_view("<|endoftext|> caf\xc3\xa9 \xff\xfe 12345")}) {
    std::vector<uint32_t> ids;
    if (!tok.Encode(text, {}, ids).ok()) continue;
    for (uint32_t id : ids) {
      if (id >= tok.vocab_size()) std::abort();
    }
    std::string decoded;
    if (!tok.Decode(ids, false, decoded).ok()) std::abort();
  }
  return 0;
}
