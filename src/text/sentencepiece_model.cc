#include "text/sentencepiece_model.h"

#include <cmath>
#include <cstring>

#include "base/strings.h"
#include "ferry/io.h"
#include "text/decoders/sentencepiece.h"
#include "text/models/unigram.h"
#include "text/normalizers/sentencepiece.h"
#include "text/tokenizer_parts.h"
#include "text/unicode.h"

namespace ferry::text {
namespace {

enum class WireType : uint8_t { kVarint = 0, kFixed64 = 1, kLength = 2, kStartGroup = 3, kEndGroup = 4, kFixed32 = 5 };

const char* WireTypeName(WireType type) {
  switch (type) {
    case WireType::kVarint: return "varint (0)";
    case WireType::kFixed64: return "64-bit (1)";
    case WireType::kLength: return "length-delimited (2)";
    case WireType::kStartGroup: return "start-group (3)";
    case WireType::kEndGroup: return "end-group (4)";
    case WireType::kFixed32: return "32-bit (5)";
  }
  return "?";
}

// One message's bytes. `base` is where they start in the file, so errors give file offsets.
class WireReader {
 public:
  WireReader(std::string_view data, size_t base, const std::string& origin, std::string message)
      : data_(data), base_(base), origin_(origin), message_(std::move(message)) {}

  bool done() const { return pos_ == data_.size(); }
  size_t offset() const { return base_ + pos_; }

  // The next field's number and wire type.
  Status Next(uint32_t& field, WireType& type) {
    const size_t at = offset();
    uint64_t tag = 0;
    FERRY_RETURN_IF_ERROR(Varint(tag, "a field tag"));
    const uint64_t wire = tag & 7, number = tag >> 3;
    if (wire > 5) return Bad(at, "a field tag", "wire type " + std::to_string(wire) + " does not exist");
    if (number == 0 || number > (uint64_t{1} << 29) - 1) {
      return Bad(at, "a field tag", "field number " + std::to_string(number) + " is out of range");
    }
    field = static_cast<uint32_t>(number);
    type = static_cast<WireType>(wire);
    field_at_ = at;
    return Status::Ok();
  }

  // The value of the field just read by Next, checked to have the wire type `expected`.
  Status ReadVarint(WireType type, std::string_view name, uint64_t& value) {
    FERRY_RETURN_IF_ERROR(Expect(type, WireType::kVarint, name));
    return Varint(value, name);
  }
  Status ReadBool(WireType type, std::string_view name, bool& value) {
    uint64_t v = 0;
    FERRY_RETURN_IF_ERROR(ReadVarint(type, name, v));
    value = v != 0;
    return Status::Ok();
  }
  Status ReadFloat(WireType type, std::string_view name, float& value) {
    FERRY_RETURN_IF_ERROR(Expect(type, WireType::kFixed32, name));
    if (data_.size() - pos_ < 4) return Bad(offset(), name, "the 4-byte value runs past the end of the message");
    uint32_t bits = 0;
    for (int i = 3; i >= 0; --i) bits = bits << 8 | static_cast<uint8_t>(data_[pos_ + i]);
    pos_ += 4;
    std::memcpy(&value, &bits, sizeof value);
    return Status::Ok();
  }
  // A length-delimited value; `at` is set to its first byte's file offset.
  Status ReadBytes(WireType type, std::string_view name, std::string_view& value, size_t& at) {
    FERRY_RETURN_IF_ERROR(Expect(type, WireType::kLength, name));
    uint64_t length = 0;
    const size_t length_at = offset();
    FERRY_RETURN_IF_ERROR(Varint(length, name));
    if (length > data_.size() - pos_) {
      return Bad(length_at, name, "length " + std::to_string(length) + " runs past the end of the " +
                                      "message (" + std::to_string(data_.size() - pos_) + " bytes left)");
    }
    at = offset();
    value = data_.substr(pos_, static_cast<size_t>(length));
    pos_ += static_cast<size_t>(length);
    return Status::Ok();
  }

  // Skips a field this reader does not read, as libprotobuf keeps unknown fields aside. Groups
  // (deprecated; no SentencePiece field is one) are refused rather than walked.
  Status Skip(uint32_t field, WireType type) {
    const std::string name = "field " + std::to_string(field);
    switch (type) {
      case WireType::kVarint: {
        uint64_t ignored = 0;
        return Varint(ignored, name);
      }
      case WireType::kFixed64:
      case WireType::kFixed32: {
        const size_t size = type == WireType::kFixed64 ? 8 : 4;
        if (data_.size() - pos_ < size) return Bad(offset(), name, "the value runs past the end of the message");
        pos_ += size;
        return Status::Ok();
      }
      case WireType::kLength: {
        std::string_view ignored;
        size_t at = 0;
        return ReadBytes(type, name, ignored, at);
      }
      case WireType::kStartGroup:
      case WireType::kEndGroup: break;
    }
    return Bad(field_at_, name, std::string("wire type ") + WireTypeName(type) +
                                    " is not used by sentencepiece_model.proto");
  }

  Status Bad(size_t at, std::string_view name, std::string_view what) const {
    return Corruption(origin_ + ": " + message_ + "." + std::string(name) + " at byte " +
                      std::to_string(at) + ": " + std::string(what));
  }

 private:
  Status Expect(WireType type, WireType expected, std::string_view name) const {
    if (type == expected) return Status::Ok();
    return Bad(field_at_, name, std::string("expected wire type ") + WireTypeName(expected) +
                                    ", found " + WireTypeName(type));
  }

  // At most 10 bytes, the tenth holding bit 63 alone.
  Status Varint(uint64_t& value, std::string_view name) {
    const size_t at = offset();
    value = 0;
    for (int i = 0; i < 10; ++i) {
      if (pos_ == data_.size()) return Bad(at, name, "the varint runs past the end of the message");
      const uint8_t byte = static_cast<uint8_t>(data_[pos_++]);
      if (i == 9 && byte > 1) return Bad(at, name, "the varint is longer than 64 bits");
      value |= uint64_t{byte & 0x7Fu} << (7 * i);
      if ((byte & 0x80) == 0) return Status::Ok();
    }
    return Bad(at, name, "the varint is longer than 10 bytes");
  }

  std::string_view data_;
  size_t base_;
  size_t pos_ = 0;
  size_t field_at_ = 0;  // where the last tag read by Next starts
  const std::string& origin_;
  std::string message_;
};

// An enum or int32 field: proto2 writes negative values as 10-byte varints.
int64_t AsInt32(uint64_t value) { return static_cast<int64_t>(static_cast<int32_t>(value)); }

Status ParsePiece(std::string_view bytes, size_t base, const std::string& origin, size_t index,
                  SentencePieceProto::Piece& piece) {
  WireReader r(bytes, base, origin, "ModelProto.pieces[" + std::to_string(index) + "]");
  while (!r.done()) {
    uint32_t field = 0;
    WireType type = WireType::kVarint;
    FERRY_RETURN_IF_ERROR(r.Next(field, type));
    if (field == 1) {
      std::string_view value;
      size_t at = 0;
      FERRY_RETURN_IF_ERROR(r.ReadBytes(type, "piece", value, at));
      piece.piece.assign(value);
    } else if (field == 2) {
      FERRY_RETURN_IF_ERROR(r.ReadFloat(type, "score", piece.score));
    } else if (field == 3) {
      const size_t at = r.offset();
      uint64_t value = 0;
      FERRY_RETURN_IF_ERROR(r.ReadVarint(type, "type", value));
      const int64_t t = AsInt32(value);
      if (t < 1 || t > 6) return r.Bad(at, "type", "unknown piece type " + std::to_string(t));
      piece.type = static_cast<SentencePieceProto::PieceType>(t);
    } else {
      FERRY_RETURN_IF_ERROR(r.Skip(field, type));
    }
  }
  return Status::Ok();
}

Status ParseTrainerSpec(std::string_view bytes, size_t base, const std::string& origin,
                        SentencePieceProto& proto) {
  WireReader r(bytes, base, origin, "TrainerSpec");
  while (!r.done()) {
    uint32_t field = 0;
    WireType type = WireType::kVarint;
    FERRY_RETURN_IF_ERROR(r.Next(field, type));
    if (field == 3) {
      uint64_t value = 0;
      FERRY_RETURN_IF_ERROR(r.ReadVarint(type, "model_type", value));
      const int64_t t = AsInt32(value);
      proto.model_type = t < -1000 || t > 1000 ? 0 : static_cast<int>(t);  // checked when built
    } else if (field == 24) {
      FERRY_RETURN_IF_ERROR(r.ReadBool(type, "treat_whitespace_as_suffix", proto.treat_whitespace_as_suffix));
    } else if (field == 35) {
      FERRY_RETURN_IF_ERROR(r.ReadBool(type, "byte_fallback", proto.byte_fallback));
    } else if (field == 44) {
      std::string_view value;
      size_t at = 0;
      FERRY_RETURN_IF_ERROR(r.ReadBytes(type, "unk_surface", value, at));
      proto.unk_surface.emplace(value);
    } else {
      FERRY_RETURN_IF_ERROR(r.Skip(field, type));
    }
  }
  return Status::Ok();
}

Status ParseNormalizerSpec(std::string_view bytes, size_t base, const std::string& origin,
                           const char* message, SentencePieceProto::NormalizerSpec& spec) {
  WireReader r(bytes, base, origin, message);
  while (!r.done()) {
    uint32_t field = 0;
    WireType type = WireType::kVarint;
    FERRY_RETURN_IF_ERROR(r.Next(field, type));
    std::string_view value;
    size_t at = 0;
    if (field == 1) {
      FERRY_RETURN_IF_ERROR(r.ReadBytes(type, "name", value, at));
      spec.name.assign(value);
    } else if (field == 2) {
      FERRY_RETURN_IF_ERROR(r.ReadBytes(type, "precompiled_charsmap", value, at));
      spec.precompiled_charsmap.assign(value);
    } else if (field == 3) {
      FERRY_RETURN_IF_ERROR(r.ReadBool(type, "add_dummy_prefix", spec.add_dummy_prefix));
    } else if (field == 4) {
      FERRY_RETURN_IF_ERROR(r.ReadBool(type, "remove_extra_whitespaces", spec.remove_extra_whitespaces));
    } else if (field == 5) {
      FERRY_RETURN_IF_ERROR(r.ReadBool(type, "escape_whitespaces", spec.escape_whitespaces));
    } else {
      FERRY_RETURN_IF_ERROR(r.Skip(field, type));
    }
  }
  return Status::Ok();
}

bool IsBytePiece(std::string_view piece, int& byte) {
  if (piece.size() != 6 || !piece.starts_with("<0x") || piece[5] != '>') return false;
  byte = 0;
  for (char c : piece.substr(3, 2)) {
    int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (digit < 0) return false;
    byte = byte * 16 + digit;
  }
  return true;
}

Result<std::shared_ptr<const Tokenizer>> Build(SentencePieceProto proto, const std::string& origin) {
  using P = SentencePieceProto;
  auto bad = [&](std::string_view field, std::string what) {
    return Corruption(origin + ": " + std::string(field) + ": " + what);
  };
  auto unsupported = [&](std::string_view field, std::string what) {
    return Unsupported(origin + ": " + std::string(field) + ": " + what);
  };
  if (proto.model_type == 3 || proto.model_type == 4) {
    return unsupported("TrainerSpec.model_type", std::string(proto.model_type == 3 ? "WORD" : "CHAR") +
                                                     " models are not read (UNIGRAM and BPE are)");
  }
  if (proto.model_type != 1 && proto.model_type != 2) {
    return unsupported("TrainerSpec.model_type", "unknown model type " + std::to_string(proto.model_type) +
                                                     " (UNIGRAM = 1 and BPE = 2 are read)");
  }
  const bool bpe = proto.model_type == 2;
  if (proto.treat_whitespace_as_suffix) {
    return unsupported("TrainerSpec.treat_whitespace_as_suffix", "whitespace as a suffix is not read");
  }
  if (proto.denormalizer && !proto.denormalizer->precompiled_charsmap.empty()) {
    return unsupported("ModelProto.denormalizer_spec.precompiled_charsmap",
                       "a denormalizer (rules applied to decoded text) is not read");
  }
  if (proto.pieces.empty()) return bad("ModelProto.pieces", "there are none");
  const size_t n = proto.pieces.size();
  if (n > (size_t{1} << 24)) return bad("ModelProto.pieces", std::to_string(n) + " pieces, more than 2^24");

  TokenizerParts parts;
  parts.origin = origin;
  parts.spelling.resize(n);
  parts.has_spelling.assign(n, true);
  std::vector<double> scores(n);
  std::vector<float> float_scores(n);
  std::vector<bool> user_defined(n, false), unmatched(n, false), mergeable(n, false);
  std::vector<TokenId> frozen;
  std::vector<std::pair<std::string, TokenId>> user_symbols;
  SentencePieceDecoderOptions decoder;
  decoder.byte_fallback = proto.byte_fallback;
  if (proto.unk_surface) decoder.unk_surface = *proto.unk_surface;
  TokenId unk = kNoToken;
  bool byte_found[256] = {};
  BytesToId seen;
  seen.Reserve(n);
  for (TokenId id = 0; id < n; ++id) {
    const P::Piece& p = proto.pieces[id];
    const std::string field = "ModelProto.pieces[" + std::to_string(id) + "]";
    if (p.piece.empty()) return bad(field + ".piece", "is empty");
    if (!IsValidUtf8(p.piece)) return bad(field + ".piece", "is not UTF-8");
    if (!std::isfinite(p.score)) {
      return bad(field + ".score", "\"" + p.piece.substr(0, 64) + "\" has a score that is not finite");
    }
    // Pieces only ever refer to each other by spelling (SentencePiece's decoder reads them so),
    // so one spelling must be one piece. (SentencePiece itself only refuses a repeat among
    // the pieces it matches, or among the others.)
    if (!seen.Insert(proto.pieces[id].piece, id)) {
      return bad(field + ".piece", "\"" + p.piece.substr(0, 64) + "\" is also piece " +
                                       std::to_string(seen.Find(p.piece)));
    }
    parts.spelling[id] = p.piece;
    scores[id] = p.score;
    float_scores[id] = p.score;
    switch (p.type) {
      case P::kNormal: mergeable[id] = true; break;
      case P::kUserDefined:
        user_defined[id] = mergeable[id] = true;
        frozen.push_back(id);
        user_symbols.emplace_back(p.piece, id);
        break;
      case P::kUnknown:
        if (unk != kNoToken) return bad(field + ".type", "a second unk piece (the first is " + std::to_string(unk) + ")");
        unk = id;
        unmatched[id] = true;
        decoder.unk_piece = p.piece;
        break;
      case P::kControl:
        unmatched[id] = true;
        decoder.control.push_back(p.piece);
        break;
      case P::kUnused:
        if (bpe) {
          // SentencePiece's BPE merges into an unused piece and then splits it back by the pair
          // last offered for it anywhere in the text, which only a replay of its whole agenda
          // reproduces; no released model has such pieces.
          return unsupported(field + ".type", "UNUSED pieces in a BPE model are not read");
        }
        unmatched[id] = true;
        break;
      case P::kByte: {
        int byte = 0;
        if (!proto.byte_fallback) return bad(field + ".type", "a byte piece, but TrainerSpec.byte_fallback is false");
        if (!IsBytePiece(p.piece, byte)) return bad(field + ".piece", "\"" + p.piece.substr(0, 64) + "\" is not a byte piece <0xXX>");
        byte_found[byte] = true;
        unmatched[id] = true;
        break;
      }
    }
  }
  if (unk == kNoToken) return bad("ModelProto.pieces", "no piece has type UNKNOWN (SentencePiece needs one)");
  if (proto.byte_fallback) {
    for (int b = 0; b < 256; ++b) {
      if (!byte_found[b]) {
        return bad("ModelProto.pieces", "TrainerSpec.byte_fallback is set but there is no byte piece for 0x" +
                                            LowerHex(std::string(1, static_cast<char>(b))));
      }
    }
  }
  parts.decoded = parts.spelling;

  SentencePieceNormalizerOptions normalizer;
  const P::NormalizerSpec& spec = proto.normalizer;
  if (!spec.precompiled_charsmap.empty()) {
    auto charsmap = Charsmap::Parse(spec.precompiled_charsmap);
    if (!charsmap.ok()) return charsmap.status().WithContext(origin + ": NormalizerSpec.precompiled_charsmap");
    normalizer.charsmap = std::move(charsmap).value();
  }
  normalizer.add_dummy_prefix = spec.add_dummy_prefix;
  normalizer.remove_extra_whitespaces = spec.remove_extra_whitespaces;
  normalizer.escape_whitespaces = spec.escape_whitespaces;
  normalizer.user_defined.Build(std::move(user_symbols));
  parts.normalizer = Normalizer({MakeSentencePieceNormalizer(std::move(normalizer))});
  decoder.add_dummy_prefix = spec.add_dummy_prefix;
  decoder.remove_extra_whitespaces = spec.remove_extra_whitespaces;
  parts.decoder = DecoderKind::kSteps;
  parts.decoder_steps = Decoder({MakeSentencePieceDecoder(std::move(decoder))});
  parts.in_model = parts.has_spelling;  // every piece is the model's (SentencePiece has no added tokens)

  if (bpe) {
    BpeModel::Config config;
    config.tokens = parts.spelling;
    config.present.assign(n, true);
    config.symbols = BpeModel::Symbols::kCharacters;
    config.byte_fallback = proto.byte_fallback;
    config.unk = unk;
    config.fuse_unk = !proto.byte_fallback;  // SentencePiece fuses a run of unks into one
    config.frozen = std::move(frozen);
    auto model = BpeModel::FromScores(std::move(config), float_scores, mergeable);
    if (!model.ok()) return model.status().WithContext(origin);
    parts.model = std::move(model).value();
  } else {
    UnigramModel::Config config;
    config.pieces = parts.spelling;
    config.scores = std::move(scores);
    config.unk = unk;
    config.byte_fallback = proto.byte_fallback;
    config.sentencepiece = true;
    config.user_defined = std::move(user_defined);
    config.unmatched = std::move(unmatched);
    auto model = UnigramModel::Create(std::move(config));
    if (!model.ok()) return model.status().WithContext(origin);
    parts.model = std::move(model).value();
  }
  return BuildTokenizer(std::move(parts));
}

}  // namespace

Result<SentencePieceProto> ParseSentencePieceProto(std::string_view bytes, std::string_view origin_view) {
  const std::string origin(origin_view);
  SentencePieceProto proto;
  WireReader r(bytes, 0, origin, "ModelProto");
  while (!r.done()) {
    uint32_t field = 0;
    WireType type = WireType::kVarint;
    FERRY_RETURN_IF_ERROR(r.Next(field, type));
    std::string_view value;
    size_t at = 0;
    if (field == 1) {
      FERRY_RETURN_IF_ERROR(r.ReadBytes(type, "pieces", value, at));
      proto.pieces.emplace_back();
      FERRY_RETURN_IF_ERROR(ParsePiece(value, at, origin, proto.pieces.size() - 1, proto.pieces.back()));
    } else if (field == 2) {
      FERRY_RETURN_IF_ERROR(r.ReadBytes(type, "trainer_spec", value, at));
      FERRY_RETURN_IF_ERROR(ParseTrainerSpec(value, at, origin, proto));
    } else if (field == 3) {
      FERRY_RETURN_IF_ERROR(r.ReadBytes(type, "normalizer_spec", value, at));
      FERRY_RETURN_IF_ERROR(ParseNormalizerSpec(value, at, origin, "NormalizerSpec", proto.normalizer));
    } else if (field == 5) {
      FERRY_RETURN_IF_ERROR(r.ReadBytes(type, "denormalizer_spec", value, at));
      if (!proto.denormalizer) proto.denormalizer.emplace();
      FERRY_RETURN_IF_ERROR(ParseNormalizerSpec(value, at, origin, "denormalizer_spec", *proto.denormalizer));
    } else {
      FERRY_RETURN_IF_ERROR(r.Skip(field, type));
    }
  }
  return proto;
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::FromSentencePieceProto(std::string_view proto,
                                                                         std::string_view origin) {
  FERRY_ASSIGN_OR_RETURN(SentencePieceProto parsed, ParseSentencePieceProto(proto, origin));
  return Build(std::move(parsed), std::string(origin));
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::FromSentencePiece(std::string_view uri) {
  FERRY_ASSIGN_OR_RETURN(std::string bytes, io::ReadSmallObject(uri, kMaxSentencePieceModelBytes));
  return FromSentencePieceProto(bytes, uri);
}

}  // namespace ferry::text
