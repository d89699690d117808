#include "text/models/double_array.h"

#include <algorithm>

namespace ferry::text {

DoubleArrayTrie DoubleArrayTrie::Build(std::vector<std::pair<std::string_view, uint32_t>> keys) {
  std::erase_if(keys, [](const auto& key) { return key.first.empty(); });
  // Sorted as unsigned bytes (string_view's order), so each node's keys are one range whose
  // children are consecutive sub-ranges in label order.
  std::sort(keys.begin(), keys.end());
  DoubleArrayTrie trie;
  std::vector<bool> used(1, true);  // slot 0 is the root's
  // next_free[s]: a slot at or after s that may be free (a union-find forest, compressed as it
  // is walked), so a search steps over runs of used slots at once.
  std::vector<uint32_t> next_free(1, 1);
  size_t high_water = 1;  // every slot from here on is free
  trie.units_.resize(1);
  auto grow = [&](size_t size) {
    if (size <= trie.units_.size()) return;
    const size_t old = trie.units_.size();
    trie.units_.resize(size);
    used.resize(size, false);
    next_free.resize(size);
    for (size_t s = old; s < size; ++s) next_free[s] = static_cast<uint32_t>(s);
  };
  auto free_at_or_after = [&](size_t slot) {
    grow(slot + 1);
    size_t root = slot;
    while (used[root]) {
      grow(next_free[root] + 1);
      root = next_free[root];
    }
    for (size_t s = slot; s != root;) {  // path compression
      const size_t next = next_free[s];
      next_free[s] = static_cast<uint32_t>(root);
      s = next;
    }
    return root;
  };
  auto take = [&](size_t slot) {
    used[slot] = true;
    next_free[slot] = static_cast<uint32_t>(slot + 1);
    high_water = std::max(high_water, slot + 1);
  };
  // The lowest base found whose slots for every label are free, trying free slots from the
  // first one. A node with many children rarely fits into the holes others left, so after
  // kTries misses it goes past every used slot; the holes are for the nodes with one child,
  // most of a vocabulary's.
  constexpr int kTries = 32;
  std::vector<uint8_t> labels;
  auto find_base = [&]() -> uint32_t {
    size_t slot = free_at_or_after(std::max<size_t>(1, labels[0]));
    for (int tries = 0;; ++tries) {
      if (tries == kTries) slot = free_at_or_after(std::max<size_t>(high_water, labels[0]));
      const size_t base = slot - labels[0];
      grow(base + 257);
      if (std::all_of(labels.begin() + 1, labels.end(), [&](uint8_t c) { return !used[base + c]; })) {
        return static_cast<uint32_t>(base);
      }
      slot = free_at_or_after(slot + 1);
    }
  };
  // Nodes still to place, as (node, its keys [lo, hi), depth): a stack, so a hostile key of a
  // million bytes costs memory, not recursion.
  struct Pending {
    uint32_t node;
    size_t lo, hi, depth;
  };
  std::vector<Pending> stack = {{kRoot, 0, keys.size(), 0}};
  std::vector<size_t> starts;
  while (!stack.empty()) {
    auto [node, lo, hi, depth] = stack.back();
    stack.pop_back();
    if (lo < hi && keys[lo].first.size() == depth) trie.units_[node].value = keys[lo].second;
    while (lo < hi && keys[lo].first.size() == depth) ++lo;  // a repeated key keeps its lowest value
    labels.clear();
    starts.clear();
    for (size_t i = lo; i < hi; ++i) {
      const uint8_t c = static_cast<uint8_t>(keys[i].first[depth]);
      if (labels.empty() || labels.back() != c) {
        labels.push_back(c);
        starts.push_back(i);
      }
    }
    if (labels.empty()) continue;
    starts.push_back(hi);
    const uint32_t base = find_base();
    trie.units_[node].base = base;
    for (size_t k = 0; k < labels.size(); ++k) {
      const uint32_t slot = base + labels[k];
      take(slot);
      trie.units_[slot].check = node;
      stack.push_back({slot, starts[k], starts[k + 1], depth + 1});
    }
  }
  // Every Child(node, byte) reads base + byte < size: leaves (base 0) read slots 0..255, so the
  // array holds at least 256 slots past the highest base.
  uint32_t highest = 0;
  for (const Unit& unit : trie.units_) highest = std::max(highest, unit.base);
  grow(static_cast<size_t>(highest) + 256);
  trie.units_.shrink_to_fit();
  return trie;
}

}  // namespace ferry::text
