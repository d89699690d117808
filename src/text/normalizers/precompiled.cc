#include "text/normalizers/precompiled.h"

#include <utf8proc.h>

#include <cstring>
#include <vector>

#include "text/fingerprint.h"
#include "text/unicode.h"

namespace ferry::text {
namespace {

uint32_t Offset(uint32_t unit) { return (unit >> 10) << ((unit & (1u << 9)) >> 6); }
bool HasLeaf(uint32_t unit) { return (unit >> 8) & 1; }
uint32_t Value(uint32_t unit) { return unit & ((1u << 31) - 1); }
uint32_t Label(uint32_t unit) { return unit & ((1u << 31) | 0xFF); }

// A cluster this long or longer is never looked up whole (tokenizers' rule).
constexpr size_t kMaxClusterLookup = 6;

class Precompiled final : public NormalizerStep {
 public:
  explicit Precompiled(std::shared_ptr<const Charsmap> charsmap) : charsmap_(std::move(charsmap)) {}

  void Apply(std::string_view text, std::string& out) const override {
    out.clear();
    out.reserve(text.size());
    size_t pos = 0;
    while (pos < text.size()) {
      size_t end = ClusterEnd(text, pos);
      std::string_view cluster = text.substr(pos, end - pos);
      pos = end;
      if (cluster.size() < kMaxClusterLookup) {
        if (const char* replacement = charsmap_->FirstMatch(cluster)) {
          out += replacement;
          continue;
        }
      }
      for (size_t i = 0; i < cluster.size();) {
        char32_t cp;
        size_t length = DecodeUtf8(cluster, i, cp);
        if (length == 0) length = 1;
        std::string_view character = cluster.substr(i, length);
        const char* replacement = charsmap_->FirstMatch(character);
        if (replacement) {
          out += replacement;
        } else {
          out += character;
        }
        i += length;
      }
    }
  }

  // The changes as tokenizers' Precompiled spells them: a replacement's characters each replace
  // one (0); when it has more characters than what it replaces, its last ones are inserted (+1);
  // when fewer, the last change so far (possibly an earlier part's) removes the difference. So
  // a cluster removed at the very start shifts the spans after it, as there.
  bool Track(AlignedText& text) const override {
    std::vector<Change> changes;
    bool modified = false;
    auto replace = [&](std::string_view old_part, const char* replacement) {
      modified = true;
      const std::vector<Change> old_characters = AlignedText::Original(old_part, 0).Characters();
      const std::vector<Change> new_characters = AlignedText::Original(replacement, 0).Characters();
      changes.insert(changes.end(), new_characters.begin(), new_characters.end());
      const long diff = static_cast<long>(new_characters.size()) - static_cast<long>(old_characters.size());
      if (diff > 0) {
        for (long i = 0; i < diff; ++i) changes[changes.size() - 1 - i].change = 1;
      } else if (diff < 0 && !changes.empty()) {
        changes.back().change += static_cast<int>(diff);
      }
    };
    const std::string_view all = text.text();
    for (size_t pos = 0; pos < all.size();) {
      const size_t end = ClusterEnd(all, pos);
      const std::string_view cluster = all.substr(pos, end - pos);
      pos = end;
      if (cluster.size() < kMaxClusterLookup) {
        if (const char* replacement = charsmap_->FirstMatch(cluster)) {
          replace(cluster, replacement);
          continue;
        }
      }
      for (const Change& c : AlignedText::Original(cluster, 0).Characters()) {
        std::string character;
        AppendCharacter(c.character, character);
        if (const char* replacement = charsmap_->FirstMatch(character)) {
          replace(character, replacement);
        } else {
          changes.push_back(c);
        }
      }
    }
    if (modified) text.Transform(changes, 0);
    return true;
  }

  std::string Canonical() const override { return "precompiled(sha256:" + charsmap_->digest() + ");"; }

 private:
  // Where the extended grapheme cluster starting at `pos` ends; a byte that is not UTF-8 is a
  // cluster of its own.
  static size_t ClusterEnd(std::string_view text, size_t pos) {
    char32_t previous;
    size_t length = DecodeUtf8(text, pos, previous);
    if (length == 0) return pos + 1;
    utf8proc_int32_t state = 0;
    size_t end = pos + length;
    while (end < text.size()) {
      char32_t next;
      length = DecodeUtf8(text, end, next);
      // Between two ASCII characters there is always a break but inside CR LF (UAX #29 GB3-5,
      // GB999), so most text never reaches utf8proc's rules.
      if (previous < 0x80 && next < 0x80) {
        if (previous == '\r' && next == '\n') {
          previous = next;
          end += length;
          continue;
        }
        break;
      }
      if (length == 0 ||
          utf8proc_grapheme_break_stateful(static_cast<utf8proc_int32_t>(previous),
                                           static_cast<utf8proc_int32_t>(next), &state)) {
        break;
      }
      previous = next;
      end += length;
    }
    return end;
  }

  std::shared_ptr<const Charsmap> charsmap_;
};

// Every unit reachable from the root: children in the trie, leaves' values in the blob. Each
// unit is visited once, so a hostile trie whose offsets loop costs at most units × 256 steps.
Status CheckTrie(const std::vector<uint32_t>& units, size_t blob_size) {
  if (units.empty()) return Corruption("the trie is empty");
  std::vector<bool> seen(units.size(), false);
  std::vector<uint32_t> stack = {Offset(units[0])};
  while (!stack.empty()) {
    uint32_t base = stack.back();
    stack.pop_back();
    for (uint32_t c = 1; c < 256; ++c) {
      uint32_t child = base ^ c;
      if (child >= units.size() || Label(units[child]) != c || seen[child]) continue;
      seen[child] = true;
      uint32_t next = base ^ c ^ Offset(units[child]);
      if (HasLeaf(units[child])) {
        if (next >= units.size()) {
          return Corruption("trie unit " + std::to_string(child) + " has its leaf outside the trie");
        }
        if (Value(units[next]) > blob_size) {
          return Corruption("trie unit " + std::to_string(next) + " points at byte " +
                            std::to_string(Value(units[next])) + ", outside the " +
                            std::to_string(blob_size) + "-byte replacement blob");
        }
      }
      stack.push_back(next);
    }
  }
  return Status::Ok();
}

}  // namespace

// The trie was checked at load, so every index the lookups below reach is in bounds.
const char* Charsmap::FirstMatch(std::string_view key) const {
  uint32_t node = Offset(units_[0]);
  for (char ch : key) {
    uint8_t c = static_cast<uint8_t>(ch);
    if (c == 0) return nullptr;  // keys are C strings
    node ^= c;
    if (node >= units_.size()) return nullptr;
    uint32_t unit = units_[node];
    if (Label(unit) != c) return nullptr;
    node ^= Offset(unit);
    if (HasLeaf(unit)) return blob_.c_str() + Value(units_[node]);
  }
  return nullptr;
}

bool Charsmap::HasKeyWithPrefix(std::string_view prefix) const {
  uint32_t node = Offset(units_[0]);
  for (char ch : prefix) {
    const uint8_t c = static_cast<uint8_t>(ch);
    node ^= c;
    if (c == 0 || node >= units_.size() || Label(units_[node]) != c) return false;
    node ^= Offset(units_[node]);
  }
  return true;
}

size_t Charsmap::LongestMatch(std::string_view text, std::string_view& replacement) const {
  size_t longest = 0;
  uint32_t node = Offset(units_[0]);
  for (size_t i = 0; i < text.size(); ++i) {
    uint8_t c = static_cast<uint8_t>(text[i]);
    if (c == 0) break;
    node ^= c;
    if (node >= units_.size()) break;
    uint32_t unit = units_[node];
    if (Label(unit) != c) break;
    node ^= Offset(unit);
    if (HasLeaf(unit)) {
      longest = i + 1;
      replacement = blob_.c_str() + Value(units_[node]);
    }
  }
  return longest;
}

Result<std::shared_ptr<const Charsmap>> Charsmap::Parse(std::string_view charsmap) {
  if (charsmap.size() < 4) return Corruption("shorter than its 4-byte header");
  uint32_t trie_bytes = 0;
  for (int i = 3; i >= 0; --i) trie_bytes = trie_bytes << 8 | static_cast<uint8_t>(charsmap[i]);
  if (trie_bytes % 4 != 0 || trie_bytes > charsmap.size() - 4) {
    return Corruption("the trie size " + std::to_string(trie_bytes) + " is not a multiple of 4 "
                      "inside the " + std::to_string(charsmap.size()) + " bytes");
  }
  std::shared_ptr<Charsmap> parsed(new Charsmap());
  parsed->units_.resize(trie_bytes / 4);
  for (size_t i = 0; i < parsed->units_.size(); ++i) {
    const auto* p = reinterpret_cast<const uint8_t*>(charsmap.data()) + 4 + 4 * i;
    parsed->units_[i] = uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
  }
  parsed->blob_.assign(charsmap.substr(4 + trie_bytes));
  if (!IsValidUtf8(parsed->blob_)) return Corruption("the replacement blob is not UTF-8");
  FERRY_RETURN_IF_ERROR(CheckTrie(parsed->units_, parsed->blob_.size()));
  Fingerprinter digest;
  digest.Add(charsmap);
  parsed->digest_ = digest.Hex();
  return std::shared_ptr<const Charsmap>(std::move(parsed));
}

Result<std::shared_ptr<const NormalizerStep>> MakePrecompiled(std::string_view charsmap) {
  FERRY_ASSIGN_OR_RETURN(std::shared_ptr<const Charsmap> parsed, Charsmap::Parse(charsmap));
  return MakePrecompiled(std::move(parsed));
}

std::shared_ptr<const NormalizerStep> MakePrecompiled(std::shared_ptr<const Charsmap> charsmap) {
  return std::make_shared<Precompiled>(std::move(charsmap));
}

}  // namespace ferry::text
