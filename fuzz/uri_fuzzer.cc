// libFuzzer target: URI parsing, brace expansion, redaction and the resolution of an index's
// references, of arbitrary bytes, must never crash, hang or allocate without bound, and must keep
// their documented invariants.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
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
  // Text without a URI in it is left as it is.
  const std::string redacted = ferry::io::RedactUris(text);
  if (text.find("://") == std::string_view::npos && redacted != text) std::abort();

  // "base\nreference": what an index at `base` may name. A resolved reference is a URI ferry
  // can open, and one that fails says why.
  if (size_t nl = text.find('\n'); nl != std::string_view::npos) {
    auto resolved = ferry::io::ResolveReference(text.substr(0, nl), text.substr(nl + 1), false);
    if (resolved.ok() && !ferry::io::ParseUri(*resolved).ok()) std::abort();
    if (!resolved.ok() && resolved.status().message().empty()) std::abort();
  }
  return 0;
}
