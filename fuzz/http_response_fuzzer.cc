// libFuzzer target: the HTTP/1.1 response head, Content-Range and chunked-body parsers read
// bytes straight from a server ferry does not control; they must never crash and must keep
// their invariants.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
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
  // Chunked decoding must not depend on how the bytes are split into reads.
  constexpr size_t kMaxBody = 1 << 16;
  std::string whole, split;
  ferry::io::http::ChunkedDecoder a(kMaxBody), b(kMaxBody);
  size_t consumed = 0;
  bool a_ok = a.Feed(text, &consumed, &whole).ok();
  if (consumed > text.size() || whole.size() > kMaxBody) std::abort();
  std::string pending;
  bool b_ok = true;
  for (size_t i = 0; i < text.size() && b_ok && !b.done(); ++i) {
    pending += text[i];
    size_t used = 0;
    b_ok = b.Feed(pending, &used, &split).ok();
    pending.erase(0, used);
  }
  if (a_ok && b_ok && a.done() && (!b.done() || whole != split)) std::abort();
  return 0;
}
