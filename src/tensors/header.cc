// The safetensors header: parsing and validation, rule for rule as the reference reader.

#include <simdjson.h>

#include <algorithm>
#include <string>
#include <unordered_set>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "ferry/tensors.h"

namespace ferry::tensors {
namespace {

namespace dom = simdjson::dom;

std::string Quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// Builds "<uri>: safetensors header: <what>" errors.
class HeaderErrors {
 public:
  explicit HeaderErrors(std::string_view uri) : uri_(uri) {}
  Status operator()(std::string_view what) const {
    return Corruption(std::string(uri_) + ": safetensors header: " + std::string(what));
  }
  Status Tensor(std::string_view name, std::string_view what) const {
    return (*this)("tensor " + Quoted(name) + ": " + std::string(what));
  }

 private:
  std::string_view uri_;
};

// A JSON array of unsigned integers (usize in the reference).
Result<std::vector<uint64_t>> ReadUintArray(const HeaderErrors& error, std::string_view name,
                                            std::string_view field, dom::element value) {
  dom::array array;
  if (value.get_array().get(array) != simdjson::SUCCESS) {
    return error.Tensor(name, "\"" + std::string(field) + "\" must be an array of integers");
  }
  std::vector<uint64_t> out;
  out.reserve(array.size());
  for (dom::element item : array) {
    uint64_t v = 0;
    if (item.get_uint64().get(v) != simdjson::SUCCESS) {
      return error.Tensor(name, "\"" + std::string(field) +
                                    "\" must hold non-negative integers, found " +
                                    simdjson::to_string(item));
    }
    out.push_back(v);
  }
  return out;
}

Result<TensorInfo> ReadTensorEntry(const HeaderErrors& error, std::string_view name,
                                   dom::element value) {
  dom::object entry;
  if (value.get_object().get(entry) != simdjson::SUCCESS) {
    return error.Tensor(name, "expected an object with dtype, shape and data_offsets, found " +
                                  std::string(simdjson::to_string(value)).substr(0, 64));
  }
  TensorInfo info;
  info.name = std::string(name);
  bool have_dtype = false, have_shape = false, have_offsets = false;
  for (dom::key_value_pair field : entry) {
    bool* seen = nullptr;
    if (field.key == "dtype") {
      seen = &have_dtype;
      std::string_view dtype_name;
      if (field.value.get_string().get(dtype_name) != simdjson::SUCCESS) {
        return error.Tensor(name, "\"dtype\" must be a string");
      }
      std::optional<DType> dtype = DTypeFromName(dtype_name);
      if (!dtype) return error.Tensor(name, "unknown dtype " + Quoted(dtype_name));
      info.dtype = *dtype;
    } else if (field.key == "shape") {
      seen = &have_shape;
      FERRY_ASSIGN_OR_RETURN(info.shape, ReadUintArray(error, name, "shape", field.value));
    } else if (field.key == "data_offsets") {
      seen = &have_offsets;
      FERRY_ASSIGN_OR_RETURN(std::vector<uint64_t> offsets,
                             ReadUintArray(error, name, "data_offsets", field.value));
      if (offsets.size() != 2) {
        return error.Tensor(name, "\"data_offsets\" must be [begin, end], found " +
                                      std::to_string(offsets.size()) + " numbers");
      }
      info.begin = offsets[0];
      info.end = offsets[1];
    } else {
      continue;  // unknown keys are ignored, as the reference does
    }
    if (*seen) return error.Tensor(name, "field \"" + std::string(field.key) + "\" appears twice");
    *seen = true;
  }
  if (!have_dtype) return error.Tensor(name, "missing \"dtype\"");
  if (!have_shape) return error.Tensor(name, "missing \"shape\"");
  if (!have_offsets) return error.Tensor(name, "missing \"data_offsets\"");
  return info;
}

Status ReadMetadata(const HeaderErrors& error, dom::element value, Header& header) {
  if (value.is_null()) return Status::Ok();
  dom::object object;
  if (value.get_object().get(object) != simdjson::SUCCESS) {
    return error("\"__metadata__\" must be an object of strings or null");
  }
  for (dom::key_value_pair field : object) {
    std::string_view text;
    if (field.value.get_string().get(text) != simdjson::SUCCESS) {
      return error("\"__metadata__\" value of " + Quoted(field.key) + " must be a string, found " +
                   simdjson::to_string(field.value));
    }
    header.metadata.emplace_back(std::string(field.key), std::string(text));
  }
  std::sort(header.metadata.begin(), header.metadata.end());
  auto dup = std::adjacent_find(header.metadata.begin(), header.metadata.end(),
                                [](const auto& a, const auto& b) { return a.first == b.first; });
  if (dup != header.metadata.end()) {
    return error("\"__metadata__\" key " + Quoted(dup->first) + " appears twice");
  }
  return Status::Ok();
}

// Bytes a tensor of this dtype and shape occupies, with the reference's overflow and whole-byte
// rules.
Result<uint64_t> TensorBytes(const HeaderErrors& error, const TensorInfo& info) {
  uint64_t elements = 1;
  for (uint64_t dim : info.shape) {
    if (__builtin_mul_overflow(elements, dim, &elements)) {
      return error.Tensor(info.name, "shape overflows 64 bits");
    }
  }
  uint64_t bits = 0;
  if (__builtin_mul_overflow(elements, static_cast<uint64_t>(DTypeBits(info.dtype)), &bits)) {
    return error.Tensor(info.name, "shape x dtype size overflows 64 bits");
  }
  if (bits % 8 != 0) {
    return error.Tensor(info.name, std::to_string(elements) + " elements of " +
                                       std::string(DTypeName(info.dtype)) +
                                       " do not fill whole bytes");
  }
  return bits / 8;
}

}  // namespace

const TensorInfo* Header::Find(std::string_view name) const {
  auto it = index.find(std::string(name));
  return it == index.end() ? nullptr : &tensors[it->second];
}

const std::string* Header::FindMetadata(std::string_view key) const {
  auto it = std::lower_bound(metadata.begin(), metadata.end(), key,
                             [](const auto& entry, std::string_view k) { return entry.first < k; });
  return it != metadata.end() && it->first == key ? &it->second : nullptr;
}

Result<Header> ParseHeader(std::string_view uri, std::string_view json, uint64_t file_size) {
  HeaderErrors error(uri);
  Header header;
  header.header_size = json.size();

  dom::parser parser;
  simdjson::padded_string padded(json);
  dom::element root;
  if (auto code = parser.parse(padded).get(root); code != simdjson::SUCCESS) {
    if (code == simdjson::UTF8_ERROR) return error("not valid UTF-8");
    return error(std::string("not valid JSON (") + simdjson::error_message(code) + ")");
  }
  dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) {
    return error("the top level must be a JSON object");
  }

  bool have_metadata = false;
  for (dom::key_value_pair field : object) {
    if (field.key == "__metadata__") {
      if (have_metadata) return error("\"__metadata__\" appears twice");
      have_metadata = true;
      FERRY_RETURN_IF_ERROR(ReadMetadata(error, field.value, header));
      continue;
    }
    FERRY_ASSIGN_OR_RETURN(TensorInfo info, ReadTensorEntry(error, field.key, field.value));
    if (!header.index.emplace(info.name, header.tensors.size()).second) {
      return error.Tensor(info.name, "the name appears twice");
    }
    header.tensors.push_back(std::move(info));
  }

  // Validate in file order: the data buffer is the tensors end to end, nothing else.
  std::stable_sort(header.tensors.begin(), header.tensors.end(),
                   [](const TensorInfo& a, const TensorInfo& b) {
                     return std::pair(a.begin, a.end) < std::pair(b.begin, b.end);
                   });
  uint64_t expected_begin = 0;
  for (size_t i = 0; i < header.tensors.size(); ++i) {
    const TensorInfo& info = header.tensors[i];
    header.index[info.name] = i;
    std::string offsets =
        "data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) + "]";
    if (info.end < info.begin) return error.Tensor(info.name, offsets + " end before begin");
    if (info.begin != expected_begin) {
      return error.Tensor(
          info.name, offsets + (info.begin < expected_begin ? " overlap" : " leave a gap after") +
                         " the previous tensor (expected begin " + std::to_string(expected_begin) +
                         ")");
    }
    FERRY_ASSIGN_OR_RETURN(uint64_t nbytes, TensorBytes(error, info));
    if (info.nbytes() != nbytes) {
      return error.Tensor(info.name, offsets + " span " + std::to_string(info.nbytes()) +
                                         " bytes but dtype and shape need " +
                                         std::to_string(nbytes));
    }
    expected_begin = info.end;
  }
  header.data_size = expected_begin;
  uint64_t expected_size = header.data_offset() + header.data_size;
  if (expected_size < header.data_size || expected_size != file_size) {
    return error("the tensors end at file offset " + std::to_string(expected_size) +
                 " but the file has " + std::to_string(file_size) + " bytes (" +
                 (file_size > expected_size ? "trailing bytes" : "truncated") + ")");
  }
  return header;
}

Result<uint64_t> ParseHeaderLength(std::string_view uri, std::span<const std::byte> prefix,
                                   uint64_t file_size) {
  HeaderErrors error(uri);
  if (file_size < 8 || prefix.size() < 8) {
    return error("the file has " + std::to_string(file_size) +
                 " bytes, fewer than the 8-byte header length");
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(prefix[i]);
  if (n > kMaxHeaderSize) {
    return error("header length " + std::to_string(n) + " exceeds the limit of " +
                 std::to_string(kMaxHeaderSize) + " bytes");
  }
  if (8 + n > file_size) {
    return error("header length " + std::to_string(n) + " runs past the end of the " +
                 std::to_string(file_size) + "-byte file");
  }
  return n;
}

Result<Header> ReadHeader(io::Source& source) {
  uint64_t file_size = source.size();
  std::byte prefix[8];
  size_t prefix_size = static_cast<size_t>(std::min<uint64_t>(8, file_size));
  FERRY_RETURN_IF_ERROR(source.ReadAt(0, std::span(prefix, prefix_size)));
  FERRY_ASSIGN_OR_RETURN(
      uint64_t n, ParseHeaderLength(source.uri(), std::span(prefix, prefix_size), file_size));
  std::string json(n, '\0');
  FERRY_RETURN_IF_ERROR(source.ReadAt(8, std::as_writable_bytes(std::span(json))));
  return ParseHeader(source.uri(), json, file_size);
}

std::string FormatChecksum(uint64_t xxh3_64) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex(16, '0');
  for (int i = 15; i >= 0; --i, xxh3_64 >>= 4) hex[i] = kDigits[xxh3_64 & 0xf];
  return hex;
}

std::string ChecksumHex(std::span<const std::byte> bytes) {
  return FormatChecksum(XXH3_64bits(bytes.data(), bytes.size()));
}

const std::string* FindChecksum(const Header& header, std::string_view name) {
  return header.FindMetadata(std::string(kChecksumKeyPrefix) + std::string(name));
}

Status VerifyChecksum(std::string_view uri, const Header& header, const TensorInfo& info,
                      std::span<const std::byte> bytes) {
  const std::string* expected = FindChecksum(header, info.name);
  if (expected == nullptr) return Status::Ok();
  std::string actual = ChecksumHex(bytes);
  if (actual == *expected) return Status::Ok();
  return Corruption(std::string(uri) + ": tensor " + Quoted(info.name) +
                    ": checksum mismatch (XXH3-64 recorded " + *expected + ", data has " + actual +
                    ")");
}

}  // namespace ferry::tensors
