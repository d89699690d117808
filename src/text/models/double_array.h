// A double-array trie over byte strings (Aoe's layout, as SentencePiece's darts uses): a node's
// child on byte c sits at base[node] + c, and is that node's child only if its check says so.
// A step is an add and loads from one 12-byte unit, where a hashed edge table is a hash, a
// probe into a table that outgrows the cache, and a compare.
//
// Immutable once built; thread-safe to read.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::text {

class DoubleArrayTrie {
 public:
  static constexpr uint32_t kNone = ~uint32_t{0};
  static constexpr uint32_t kRoot = 0;

  // `keys` (byte strings) with the value the node that ends each returns. Empty keys are
  // ignored; a key given twice keeps its lowest value.
  static DoubleArrayTrie Build(std::vector<std::pair<std::string_view, uint32_t>> keys);

  // The child of `node` on `byte`, or kNone. `node` must be kRoot or a node Child returned.
  uint32_t Child(uint32_t node, uint8_t byte) const {
    const uint32_t slot = units_[node].base + byte;  // always inside: Build pads the array
    return units_[slot].check == node ? slot : kNone;
  }
  // The value of the key that ends at `node`, or kNone.
  uint32_t Value(uint32_t node) const { return units_[node].value; }
  // Slots, a bound on node numbers (for arrays indexed by node).
  size_t size() const { return units_.size(); }

 private:
  // A walk reads a node's base, its child's check and then that child's value: one unit each,
  // so a step touches one cache line.
  struct Unit {
    uint32_t base = 0;
    uint32_t check = kNone;  // the parent of the node in this slot; kNone: free (or the root)
    uint32_t value = kNone;
  };
  std::vector<Unit> units_;
};

}  // namespace ferry::text
