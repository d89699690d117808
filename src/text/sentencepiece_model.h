// SentencePiece `.model` files: the ModelProto of sentencepiece_model.proto, read by a small
// protobuf wire-format reader, and turned into the one tokenizer pipeline (tokenizer_parts.h):
// SentencePiece's normalizer (normalizers/sentencepiece.h), no pre-tokenizer (the whole
// normalized text is the model's input, as in SentencePiece), its Unigram or BPE model
// (models/unigram.h, models/bpe.h in their SentencePiece modes) and its decoder
// (decoders/sentencepiece.h).
//
// Why not libprotobuf: ferry needs about a dozen scalar fields of four messages. libprotobuf
// would add a generated-code step to the build, a large shared library whose ABI must match the
// generated code and the one other Python packages load into the same process (torch, the
// `sentencepiece` wheel ship their own), and a parser that is not bounded the way untrusted files
// need (it accepts a 2 GB message and builds it). The wire format is small and fixed; this reader
// checks every varint (at most 10 bytes), every length (inside its message) and every wire type
// of a field it reads, skips fields it does not know as libprotobuf does, and names the file,
// the field and the byte offset in every error. fuzz/sentencepiece_model_fuzzer.cc runs it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"

namespace ferry::text {

// NormalizerSpec: how text is normalized (and, as denormalizer_spec, how decoded text would be).
struct SentencePieceNormalizerSpec {
  std::string name;
  std::string precompiled_charsmap;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
};

struct SentencePieceProto {
  // ModelProto.SentencePiece.Type.
  enum PieceType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };
  struct Piece {
    std::string piece;
    float score = 0;
    PieceType type = kNormal;
  };
  using NormalizerSpec = SentencePieceNormalizerSpec;
  std::vector<Piece> pieces;  // ModelProto.pieces (1)
  // TrainerSpec (2): what decides encoding and decoding.
  int model_type = 1;  // UNIGRAM = 1, BPE = 2, WORD = 3, CHAR = 4
  bool byte_fallback = false;
  bool treat_whitespace_as_suffix = false;
  std::optional<std::string> unk_surface;
  NormalizerSpec normalizer;                   // ModelProto.normalizer_spec (3)
  std::optional<NormalizerSpec> denormalizer;  // ModelProto.denormalizer_spec (5)
};

// Reads the wire format; an error (kCorruption) names `origin`, the field and the byte offset.
// Only the structure is checked here; what the pieces mean is checked when the tokenizer is built.
Result<SentencePieceProto> ParseSentencePieceProto(std::string_view bytes, std::string_view origin);

}  // namespace ferry::text
