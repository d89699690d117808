// SentencePiece's own decoder (SentencePieceProcessor::Decode), for .model files: pieces back
// to text by their spellings.
//   - a run of byte pieces (`<0xXX>`, with byte_fallback) becomes its bytes, character by
//     character, where each byte that does not start a valid character becomes U+FFFD;
//   - control pieces (`<s>`, `</s>`) become nothing, the unk piece its surface (" ⁇ ");
//   - U+2581 becomes a space, except that while nothing has been written yet a piece's leading
//     U+2581 is dropped (once, for add_dummy_prefix; for every piece until text appears, with
//     remove_extra_whitespaces).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "text/decoders/decoder.h"

namespace ferry::text {

struct SentencePieceDecoderOptions {
  std::vector<std::string> control;  // pieces that decode to nothing
  std::string unk_piece;
  std::string unk_surface = " \xE2\x81\x87 ";
  bool byte_fallback = false;  // `<0xXX>` pieces are bytes
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
};

std::shared_ptr<const DecoderStep> MakeSentencePieceDecoder(SentencePieceDecoderOptions options);

}  // namespace ferry::text
