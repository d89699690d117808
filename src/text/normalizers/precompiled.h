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
#include <string_view>

#include "ferry/status.h"
#include "text/normalizers/normalizer.h"

namespace ferry::text {

// Parses and checks `charsmap` (the raw bytes): every unit reachable from the root lies inside
// the trie and every leaf's value inside the blob, which is UTF-8; an error names what is wrong
// (kCorruption). The step keeps its own copy.
Result<std::shared_ptr<const NormalizerStep>> MakePrecompiled(std::string_view charsmap);

}  // namespace ferry::text
