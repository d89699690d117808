// libFuzzer target: arbitrary bytes as a whole safetensors file. The header checks must never
// crash, hang or allocate without bound, and a header they accept must describe a data buffer
// that fits the file exactly, tensor after tensor.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

#include "ferry/tensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto bytes = std::as_bytes(std::span(data, size));
  auto n = ferry::tensors::ParseHeaderLength("fuzz", bytes.first(std::min<size_t>(8, size)), size);
  if (!n.ok()) {
    if (n.status().message().empty()) std::abort();
    return 0;
  }
  std::string_view json(reinterpret_cast<const char*>(data) + 8, *n);
  auto header = ferry::tensors::ParseHeader("fuzz", json, size);
  if (!header.ok()) {
    if (header.status().message().find("fuzz: safetensors header: ") != 0) std::abort();
    return 0;
  }
  uint64_t expected_begin = 0;
  for (const auto& info : header->tensors) {
    if (info.begin != expected_begin || info.end < info.begin) std::abort();
    if (header->Find(info.name) != &info) std::abort();
    expected_begin = info.end;
  }
  if (header->data_offset() + expected_begin != size) std::abort();
  return 0;
}
