// SentencePiece's precompiled normalizer (tokenizer.json's Precompiled, a .model's
// normalizer_spec.precompiled_charsmap): a Darts-clone double-array trie from UTF-8 strings to
// offsets into a blob of NUL-terminated replacements.
//
// Layout: u32 little-endian trie size in bytes, the trie (u32 little-endian units), the blob.
// A unit holds a label byte, a leaf flag and the offset to its children (XOR-addressed); a leaf's
// value is the replacement's offset in the blob.
//
// Applied as tokenizers 0.23 applies it: text is cut into extended grapheme clusters; a cluster
// shorter than 6 bytes whose first trie match (the shortest key that is a prefix of it) exists
// becomes that key's replacement, the rest of the cluster dropped; otherwise each character
// becomes its own first match's replacement, or stays as it is.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"
#include "text/normalizers/normalizer.h"

namespace ferry::text {

// The parsed, checked charsmap. Two normalizers read it: tokenizers' Precompiled (below, the
// shortest key per grapheme cluster) and SentencePiece's own (normalizers/sentencepiece.h, the
// longest key at each position). Immutable; safe to share between threads.
class Charsmap {
 public:
  // Errors as MakePrecompiled's.
  static Result<std::shared_ptr<const Charsmap>> Parse(std::string_view charsmap);

  // The replacement of the shortest key that is a prefix of `key`, or null.
  const char* FirstMatch(std::string_view key) const;
  // The length of the longest key that is a prefix of `text` (0: none), with its replacement
  // (NUL-terminated, in the blob) in `replacement`. Keys are C strings: a NUL in `text` ends
  // the search, as in Darts-clone's commonPrefixSearch.
  size_t LongestMatch(std::string_view text, std::string_view& replacement) const;
  // Whether some key starts with `prefix` (not empty, no NUL).
  bool HasKeyWithPrefix(std::string_view prefix) const;
  // SHA-256 of the raw bytes, for fingerprints.
  const std::string& digest() const { return digest_; }

 private:
  Charsmap() = default;
  std::vector<uint32_t> units_;
  std::string blob_;  // NUL-terminated replacements (std::string adds one after the last)
  std::string digest_;
};

// Parses and checks `charsmap` (the raw bytes): every unit reachable from the root lies inside
// the trie and every leaf's value inside the blob, which is UTF-8; an error names what is wrong
// (kCorruption). The step keeps its own copy.
Result<std::shared_ptr<const NormalizerStep>> MakePrecompiled(std::string_view charsmap);
std::shared_ptr<const NormalizerStep> MakePrecompiled(std::shared_ptr<const Charsmap> charsmap);

}  // namespace ferry::text
