// SentencePiece's own normalizer, as a .model file's normalizer_spec asks for it: the charsmap
// matched longest-first at each position (not per grapheme cluster, as tokenizers' Precompiled
// does), whitespace handling, and user-defined symbols passed through untouched. Together with the
// model (which takes those symbols whole) this is SentencePiece's Normalize + Encode.
//
//   1. At each position: a user-defined symbol (longest) as it is; else the longest charsmap key
//      and its replacement; else one character, where a byte that is not UTF-8 becomes U+FFFD.
//   2. remove_extra_whitespaces: leading spaces dropped, a run of spaces kept as one, trailing
//      ones dropped (spaces as the charsmap writes them, so the charsmap decides what is one).
//   3. add_dummy_prefix: a space before the text (unless it is empty after step 2).
//   4. escape_whitespaces: every space becomes U+2581.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "text/models/bpe.h"
#include "text/normalizers/normalizer.h"
#include "text/normalizers/precompiled.h"

namespace ferry::text {

struct SentencePieceNormalizerOptions {
  std::shared_ptr<const Charsmap> charsmap;  // null: no rules (an "identity" normalizer_spec)
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
  LongestPrefixSet user_defined;
};

std::shared_ptr<const NormalizerStep> MakeSentencePieceNormalizer(
    SentencePieceNormalizerOptions options);

}  // namespace ferry::text
