// libFuzzer target: the HTTP/1.1 response head and Content-Range parsers read bytes straight
// from a server ferry does not control; they must never crash and must keep their invariants.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "io/http_connection.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  auto head = ferry::io::http::ParseResponseHead(text);
  if (head.ok() && (head->status < 0 || head->status > 999)) std::abort();
  if (!head.ok() && head.status().message().empty()) std::abort();

  ferry::io::http::ContentRange range;
  if (ferry::io::http::ParseContentRange(text, range)) {
    if (range.has_range && range.first > range.last) std::abort();
    if (!range.has_range && !range.has_total) std::abort();
  }
  return 0;
}
