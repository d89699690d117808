#include "text/models/double_array.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

namespace ferry::text {
namespace {

// The value of `key` in `trie` walking byte by byte, or kNone.
uint32_t Lookup(const DoubleArrayTrie& trie, std::string_view key) {
  uint32_t node = DoubleArrayTrie::kRoot;
  for (char c : key) {
    node = trie.Child(node, static_cast<uint8_t>(c));
    if (node == DoubleArrayTrie::kNone) return DoubleArrayTrie::kNone;
  }
  return trie.Value(node);
}

TEST(DoubleArrayTrieTest, FindsEveryKeyAndNothingElse) {
  const std::vector<std::string> words = {"a", "ab", "abc", "b", "\xe2\x96\x81the", "\xe2\x96\x81", std::string("\0x", 2), "\xff\xfe"};
  std::vector<std::pair<std::string_view, uint32_t>> keys;
  for (uint32_t i = 0; i < words.size(); ++i) keys.emplace_back(words[i], i * 10);
  const DoubleArrayTrie trie = DoubleArrayTrie::Build(keys);
  for (uint32_t i = 0; i < words.size(); ++i) EXPECT_EQ(Lookup(trie, words[i]), i * 10) << i;
  for (std::string_view absent : {"abcd", "c", "\xe2\x96", "\xe2", "ba", "\xff"}) {
    EXPECT_EQ(Lookup(trie, absent), DoubleArrayTrie::kNone) << absent;
  }
  EXPECT_EQ(trie.Value(DoubleArrayTrie::kRoot), DoubleArrayTrie::kNone);
}

TEST(DoubleArrayTrieTest, EmptyKeysAreIgnoredAndARepeatedKeyKeepsItsLowestValue) {
  const DoubleArrayTrie trie = DoubleArrayTrie::Build({{"", 1}, {"x", 7}, {"x", 3}, {"xy", 9}});
  EXPECT_EQ(trie.Value(DoubleArrayTrie::kRoot), DoubleArrayTrie::kNone);
  EXPECT_EQ(Lookup(trie, "x"), 3u);
  EXPECT_EQ(Lookup(trie, "xy"), 9u);
  const DoubleArrayTrie empty = DoubleArrayTrie::Build({});
  EXPECT_EQ(Lookup(empty, "a"), DoubleArrayTrie::kNone);
}

// Random vocabularies over a small alphabet (dense, shared prefixes) and over all bytes (sparse),
// against a std::map: every key, and every one-byte extension, answers as the map does.
TEST(DoubleArrayTrieTest, AgreesWithAMapOnRandomVocabularies) {
  std::mt19937 rng(7);
  for (int alphabet : {3, 256}) {
    std::map<std::string, uint32_t> expected;
    std::uniform_int_distribution<int> length(1, 12), byte(0, alphabet - 1);
    while (expected.size() < 20000) {
      std::string key(static_cast<size_t>(length(rng)), '\0');
      for (char& c : key) c = static_cast<char>(alphabet == 3 ? 'a' + byte(rng) : byte(rng));
      expected.emplace(key, static_cast<uint32_t>(expected.size()));
    }
    std::vector<std::pair<std::string_view, uint32_t>> keys(expected.begin(), expected.end());
    const DoubleArrayTrie trie = DoubleArrayTrie::Build(keys);
    for (const auto& [key, value] : expected) {
      ASSERT_EQ(Lookup(trie, key), value) << alphabet;
      for (int extra : {0, int{'a'}, int{'c'}, 255}) {
        const std::string longer = key + static_cast<char>(extra);
        auto it = expected.find(longer);
        ASSERT_EQ(Lookup(trie, longer), it == expected.end() ? DoubleArrayTrie::kNone : it->second);
      }
    }
  }
}

}  // namespace
}  // namespace ferry::text
