// Writing safetensors files: page-aligned data, element-aligned tensors, atomic replacement.

#include <simdjson.h>

#include <algorithm>
#include <map>
#include <string>
#include <unordered_set>

#include "base/json.h"
#include "ferry/tensors.h"

namespace ferry::tensors {
namespace {

Status CheckTensor(std::string_view path, const TensorToWrite& tensor) {
  auto error = [&](std::string_view what) {
    return InvalidArgument(std::string(path) + ": tensor '" + tensor.name +
                           "': " + std::string(what));
  };
  if (tensor.name == "__metadata__") return error("the name is reserved by the format");
  if (!simdjson::validate_utf8(tensor.name.data(), tensor.name.size())) {
    return error("the name is not valid UTF-8");
  }
  uint64_t elements = 1;
  for (uint64_t dim : tensor.shape) {
    if (__builtin_mul_overflow(elements, dim, &elements)) return error("shape overflows");
  }
  uint64_t bits = 0;
  if (__builtin_mul_overflow(elements, static_cast<uint64_t>(DTypeBits(tensor.dtype)), &bits) ||
      bits % 8 != 0) {
    return error("shape does not fill whole bytes of " + std::string(DTypeName(tensor.dtype)));
  }
  if (bits / 8 != tensor.data.size()) {
    return error("has " + std::to_string(tensor.data.size()) + " bytes but its shape and " +
                 std::string(DTypeName(tensor.dtype)) + " need " + std::to_string(bits / 8));
  }
  return Status::Ok();
}

}  // namespace

uint64_t SafetensorsLayout::size() const {
  uint64_t total = prefix.size();
  for (const TensorToWrite* tensor : order) total += tensor->data.size();
  return total;
}

Result<SafetensorsLayout> LayOutSafetensors(
    std::string_view where, std::span<const TensorToWrite> tensors,
    std::span<const std::pair<std::string, std::string>> metadata, const WriteOptions& options) {
  SafetensorsLayout layout;
  std::vector<const TensorToWrite*>& order = layout.order;
  order.reserve(tensors.size());
  for (const TensorToWrite& tensor : tensors) {
    FERRY_RETURN_IF_ERROR(CheckTensor(where, tensor));
    order.push_back(&tensor);
  }
  std::sort(order.begin(), order.end(), [](const TensorToWrite* a, const TensorToWrite* b) {
    int rank_a = DTypeWriteOrder(a->dtype), rank_b = DTypeWriteOrder(b->dtype);
    return rank_a != rank_b ? rank_a > rank_b : a->name < b->name;
  });
  std::unordered_set<std::string_view> names;
  for (const TensorToWrite* tensor : order) {
    if (!names.insert(tensor->name).second) {
      return InvalidArgument(std::string(where) + ": tensor '" + tensor->name + "' is given twice");
    }
  }

  std::map<std::string, std::string> all_metadata;
  for (const auto& [key, value] : metadata) {
    // Checksums are ferry's to write: old ones (say, from a file being rewritten) are dropped.
    if (key.starts_with(kChecksumKeyPrefix)) continue;
    if (!simdjson::validate_utf8(key.data(), key.size()) ||
        !simdjson::validate_utf8(value.data(), value.size())) {
      return InvalidArgument(std::string(where) + ": metadata '" + key + "' is not valid UTF-8");
    }
    if (!all_metadata.emplace(key, value).second) {
      return InvalidArgument(std::string(where) + ": metadata key '" + key + "' is given twice");
    }
  }
  if (options.checksums) {
    for (const TensorToWrite* tensor : order) {
      all_metadata[std::string(kChecksumKeyPrefix) + tensor->name] = ChecksumHex(tensor->data);
    }
  }

  std::string json = "{";
  if (!all_metadata.empty()) {
    json += "\"__metadata__\":{";
    for (const auto& [key, value] : all_metadata) {
      if (json.back() != '{') json += ',';
      AppendJsonString(json, key);
      json += ':';
      AppendJsonString(json, value);
    }
    json += '}';
  }
  uint64_t offset = 0;
  for (const TensorToWrite* tensor : order) {
    if (json.size() > 1) json += ',';
    AppendJsonString(json, tensor->name);
    json += ":{\"dtype\":\"";
    json += DTypeName(tensor->dtype);
    json += "\",\"shape\":[";
    for (size_t i = 0; i < tensor->shape.size(); ++i) {
      if (i > 0) json += ',';
      json += std::to_string(tensor->shape[i]);
    }
    json += "],\"data_offsets\":[" + std::to_string(offset) + ",";
    offset += tensor->data.size();
    json += std::to_string(offset) + "]}";
  }
  json += '}';
  // Trailing spaces (valid JSON whitespace, accepted by every reader version) put the data
  // buffer on the requested boundary; at least 8, as the reference pads.
  uint64_t alignment = std::max<uint64_t>(options.data_alignment, 8);
  uint64_t unaligned_end = 8 + json.size();
  json.append((alignment - unaligned_end % alignment) % alignment, ' ');
  if (json.size() > kMaxHeaderSize) {
    return InvalidArgument(std::string(where) + ": the header would be " +
                           std::to_string(json.size()) + " bytes, over the format's limit of " +
                           std::to_string(kMaxHeaderSize));
  }

  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i, n >>= 8) layout.prefix += static_cast<char>(n & 0xff);
  layout.prefix += json;
  return layout;
}

Status WriteSafetensors(std::string_view path, std::span<const TensorToWrite> tensors,
                        std::span<const std::pair<std::string, std::string>> metadata,
                        const WriteOptions& options) {
  FERRY_ASSIGN_OR_RETURN(SafetensorsLayout layout,
                         LayOutSafetensors(path, tensors, metadata, options));
  FERRY_ASSIGN_OR_RETURN(auto file, io::CreateSink(path));
  FERRY_RETURN_IF_ERROR(file->Write(std::as_bytes(std::span(layout.prefix))));
  for (const TensorToWrite* tensor : layout.order) FERRY_RETURN_IF_ERROR(file->Write(tensor->data));
  return file->Commit();
}

}  // namespace ferry::tensors
