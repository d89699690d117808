#include "text/normalizers/precompiled.h"

#include <gtest/gtest.h>

#include <vector>

namespace ferry::text {
namespace {

// A double array by hand: the root's children start at 1; 'a' (0x61) at 1 ^ 0x61 = 96 with its
// leaf at 97, whose value is the offset of "b" in the blob. So "a" -> "b".
std::string Charsmap(uint32_t leaf_value, std::string blob) {
  std::vector<uint32_t> units(98, 0);
  units[0] = 1u << 10;                          // offset 1
  units[96] = 0x61 | (1u << 8) | (1u << 10);    // label 'a', has a leaf, offset 1 -> 97
  units[97] = leaf_value;
  std::string out;
  auto put = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) out += static_cast<char>(v >> (8 * i));
  };
  put(static_cast<uint32_t>(units.size() * 4));
  for (uint32_t unit : units) put(unit);
  return out + blob;
}

TEST(Precompiled, ReplacesWhatTheTrieMaps) {
  auto step = MakePrecompiled(Charsmap(0, std::string("b\0", 2)));
  ASSERT_TRUE(step.ok()) << step.status().ToString();
  std::string out;
  (*step)->Apply("banana", out);
  EXPECT_EQ(out, "bbnbnb");
  // A cluster shorter than 6 bytes that starts with a key becomes that key's replacement whole:
  // the combining accent after "a" is dropped, as tokenizers does.
  (*step)->Apply("a\xCC\x81" "c", out);
  EXPECT_EQ(out, "bc");
}

TEST(Precompiled, RefusesCharsmapsThatPointOutside) {
  EXPECT_FALSE(MakePrecompiled("ab").ok());
  std::string truncated = Charsmap(0, "b");
  EXPECT_FALSE(MakePrecompiled(truncated.substr(0, 100)).ok());  // trie longer than the bytes
  auto beyond = MakePrecompiled(Charsmap(50, std::string("b\0", 2)));
  ASSERT_FALSE(beyond.ok());
  EXPECT_NE(beyond.status().message().find("outside the 2-byte replacement blob"), std::string::npos);
  EXPECT_FALSE(MakePrecompiled(Charsmap(0, "\xFF")).ok());  // blob not UTF-8
}

}  // namespace
}  // namespace ferry::text
