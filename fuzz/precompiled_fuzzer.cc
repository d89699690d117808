// libFuzzer target: arbitrary bytes as a SentencePiece precompiled charsmap (tokenizer.json's
// Precompiled normalizer, a .model's normalizer_spec). Parsing must never crash or read outside
// the input; a charsmap that loads must normalize any text, its own bytes included, without
// crashing, and every error must say what is wrong.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "text/normalizers/precompiled.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view charsmap(reinterpret_cast<const char*>(data), size);
  auto step = ferry::text::MakePrecompiled(charsmap);
  if (!step.ok()) {
    if (step.status().message().empty()) std::abort();
    return 0;
  }
  std::string out;
  for (std::string_view text : {charsmap, std::string_view("a\xCC\x81 \xEF\xAC\x81 \xFF\xE2\x82 x")}) {
    (*step)->Apply(text, out);
  }
  return 0;
}
