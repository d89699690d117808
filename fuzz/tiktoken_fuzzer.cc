// libFuzzer target: arbitrary bytes as a tiktoken rank file. Loading must never crash, hang or
// allocate without bound; with a file that loads, whatever encodes decodes back to the same bytes
// (rank-file tokens are raw bytes).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view ranks(reinterpret_cast<const char*>(data), size);
  ferry::text::TiktokenOptions options;
  options.pattern = R"(\S+|\s+)";
  options.special_tokens = {{"<|end|>", 1000}};
  auto tokenizer = ferry::text::Tokenizer::FromTiktokenRanks(ranks, "fuzz.tiktoken", options);
  if (!tokenizer.ok()) {
    if (tokenizer.status().message().find("fuzz.tiktoken") != 0) std::abort();
    return 0;
  }
  const auto& tok = **tokenizer;
  for (std::string_view text : {std::string_view("aaaa abab ba\n\n\t b"),
                                std::string_view("<|end|>x\xff\x00y<|end|>")}) {
    std::vector<uint32_t> ids;
    if (!tok.Encode(text, {}, ids).ok()) continue;  // a byte with no rank: a clean error
    std::string decoded;
    if (!tok.Decode(ids, false, decoded).ok() || decoded != text) std::abort();
  }
  return 0;
}
