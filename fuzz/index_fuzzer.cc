// libFuzzer target: arbitrary bytes as a `ferry index` file. Parsing must never crash or
// allocate what the text claims; what parses must survive IndexJson and parse back the same.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ferry/datasets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto shards = ferry::datasets::ParseIndex(text, "fuzz.json");
  if (!shards.ok()) {
    if (shards.status().message().rfind("fuzz.json: ", 0) != 0) std::abort();
    return 0;
  }
  auto again = ferry::datasets::ParseIndex(ferry::datasets::IndexJson(*shards), "again.json");
  if (!again.ok() || again->size() != shards->size()) std::abort();
  for (size_t i = 0; i < shards->size(); ++i) {
    const auto& a = (*shards)[i];
    const auto& b = (*again)[i];
    if (a.url != b.url || a.bytes != b.bytes || a.samples != b.samples) std::abort();
  }
  return 0;
}
