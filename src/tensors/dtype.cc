#include <array>

#include "ferry/tensors.h"

namespace ferry::tensors {
namespace {

struct DTypeEntry {
  DType dtype;
  std::string_view name;
  int bits;
  int order;  // place in the reference's own list of dtypes, which its writer sorts by
};

// Indexed by DType; names, sizes and order as the safetensors reference defines them. (The
// order of the 8-bit and 16-bit and up types was read off files the reference wrote; F4 and
// F6, which torch cannot hand it, follow BOOL as in its source.)
constexpr std::array<DTypeEntry, 22> kDTypes = {{
    {DType::kBool, "BOOL", 8, 0},
    {DType::kU8, "U8", 8, 4},
    {DType::kI8, "I8", 8, 5},
    {DType::kF8_E5M2, "F8_E5M2", 8, 6},
    {DType::kF8_E4M3, "F8_E4M3", 8, 7},
    {DType::kF8_E8M0, "F8_E8M0", 8, 8},
    {DType::kF8_E4M3FNUZ, "F8_E4M3FNUZ", 8, 9},
    {DType::kF8_E5M2FNUZ, "F8_E5M2FNUZ", 8, 10},
    {DType::kF4, "F4", 4, 1},
    {DType::kF6_E2M3, "F6_E2M3", 6, 2},
    {DType::kF6_E3M2, "F6_E3M2", 6, 3},
    {DType::kI16, "I16", 16, 11},
    {DType::kU16, "U16", 16, 12},
    {DType::kF16, "F16", 16, 13},
    {DType::kBF16, "BF16", 16, 14},
    {DType::kI32, "I32", 32, 15},
    {DType::kU32, "U32", 32, 16},
    {DType::kF32, "F32", 32, 17},
    {DType::kC64, "C64", 64, 18},
    {DType::kF64, "F64", 64, 19},
    {DType::kI64, "I64", 64, 20},
    {DType::kU64, "U64", 64, 21},
}};

constexpr bool TableMatchesEnum() {
  for (size_t i = 0; i < kDTypes.size(); ++i) {
    if (static_cast<size_t>(kDTypes[i].dtype) != i) return false;
  }
  return true;
}
static_assert(TableMatchesEnum(), "kDTypes must be indexed by DType");

}  // namespace

std::string_view DTypeName(DType dtype) { return kDTypes[static_cast<size_t>(dtype)].name; }

int DTypeBits(DType dtype) { return kDTypes[static_cast<size_t>(dtype)].bits; }

int DTypeWriteOrder(DType dtype) { return kDTypes[static_cast<size_t>(dtype)].order; }

std::optional<DType> DTypeFromName(std::string_view name) {
  for (const DTypeEntry& entry : kDTypes) {
    if (entry.name == name) return entry.dtype;
  }
  return std::nullopt;
}

}  // namespace ferry::tensors
