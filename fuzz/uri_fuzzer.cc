// libFuzzer target: URI parsing and brace expansion of arbitrary bytes must never crash, hang or
// allocate without bound, and must keep their documented invariants.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ferry/io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  auto uri = ferry::io::ParseUri(text);
  if (uri.ok() && uri->location.empty()) std::abort();  // a parsed URI always names something

  constexpr size_t kMaxResults = 10'000;
  auto expanded = ferry::io::ExpandBraces(text, kMaxResults);
  if (expanded.ok()) {
    if (expanded->empty() || expanded->size() > kMaxResults) std::abort();
    if (text.find_first_of("{}") == std::string_view::npos &&
        (expanded->size() != 1 || expanded->front() != text)) {
      std::abort();  // no braces: the pattern is its own only result
    }
  } else if (expanded.status().message().empty()) {
    std::abort();  // every error explains itself
  }
  return 0;
}
