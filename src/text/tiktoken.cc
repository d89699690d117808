// tiktoken rank files: one `base64(token bytes) rank` pair per line.
#include <simdjson.h>

#include <array>
#include <map>
#include <unordered_map>

#include "base/parse.h"
#include "ferry/io.h"
#include "text/tokenizer_parts.h"
#include "text/split_pattern.h"
#include "text/unicode.h"

namespace ferry::text {
namespace {

// Ranks above this are refused before anything is sized by them: real vocabularies have under
// a million tokens, and a hostile file could otherwise ask for gigabytes.
constexpr uint64_t kMaxRank = (1u << 24) - 1;
// Real rank files have tokens of at most 256 bytes. Loading cuts every token in two at every
// byte, so a token's length costs its square: with kMaxRankFileBytes this keeps a hostile file's
// load to seconds.
constexpr size_t kMaxTokenBytes = 1024;
constexpr uint64_t kRankSlack = 1 << 16;

struct NamedEncoding {
  std::string_view name;
  std::string_view pattern;
  std::vector<std::pair<std::string, TokenId>> special_tokens;
};

constexpr std::string_view kR50kPattern =
    R"('(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s)";
constexpr std::string_view kCl100kPattern =
    R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s)";
constexpr std::string_view kO200kPattern =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

const std::vector<NamedEncoding>& NamedEncodings() {
  static const std::vector<NamedEncoding> encodings = {
      {"r50k_base", kR50kPattern, {{"<|endoftext|>", 50256}}},
      {"p50k_base", kR50kPattern, {{"<|endoftext|>", 50256}}},
      {"cl100k_base",
       kCl100kPattern,
       {{"<|endoftext|>", 100257},
        {"<|fim_prefix|>", 100258},
        {"<|fim_middle|>", 100259},
        {"<|fim_suffix|>", 100260},
        {"<|endofprompt|>", 100276}}},
      {"o200k_base", kO200kPattern, {{"<|endoftext|>", 199999}, {"<|endofprompt|>", 200018}}},
  };
  return encodings;
}

std::string NamesList() {
  std::string out;
  for (const NamedEncoding& e : NamedEncodings()) out += (out.empty() ? "" : ", ") + std::string(e.name);
  return out;
}

std::string_view FileStem(std::string_view uri) {
  std::string_view origin = io::WithoutQuery(uri);
  size_t slash = origin.find_last_of('/');
  std::string_view name = slash == std::string_view::npos ? origin : origin.substr(slash + 1);
  return name.substr(0, name.find('.'));
}

void AppendBase64(std::string_view bytes, std::string& out) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t group = 0;
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    for (size_t j = 0; j < 3; ++j) {
      group = group << 8 | (j < n ? static_cast<uint8_t>(bytes[i + j]) : 0u);
    }
    for (size_t j = 0; j < 4; ++j) out += j <= n ? kAlphabet[(group >> (18 - 6 * j)) & 63] : '=';
  }
}

// tiktoken's data_gym_to_mergeable_bpe_ranks: the 256 bytes take ranks 0-255 in GPT-2's alphabet
// order (the printable bytes but space first, then the rest), each line of vocab.bpe after the
// first (a "#version" comment), up to the last line break, is a merge whose concatenated bytes
// get the next rank; encoder.json, less <|endoftext|> and <|startoftext|>, must give the same
// ranks (tiktoken asserts it).
Status DataGymRanks(std::string_view encoder_json, std::string_view vocab_bpe, const std::string& where,
                    std::vector<std::string>& by_rank) {
  std::vector<uint8_t> rank_to_byte;
  for (int b = 0; b < 256; ++b) {
    if (ByteToCodepoint(static_cast<uint8_t>(b)) == static_cast<char32_t>(b) && b != ' ') rank_to_byte.push_back(b);
  }
  for (int b = 0; b < 256; ++b) {
    if (ByteToCodepoint(static_cast<uint8_t>(b)) != static_cast<char32_t>(b) || b == ' ') rank_to_byte.push_back(b);
  }
  std::map<std::string, uint64_t> ranks;  // ordered, so a mismatch is reported the same way each run
  for (size_t r = 0; r < 256; ++r) ranks[std::string(1, static_cast<char>(rank_to_byte[r]))] = r;
  if (!IsValidUtf8(vocab_bpe)) return Corruption(where + ": vocab.bpe is not UTF-8");
  std::vector<std::string_view> lines;
  for (size_t pos = 0;;) {
    size_t end = vocab_bpe.find('\n', pos);
    if (end == std::string_view::npos) {
      lines.push_back(vocab_bpe.substr(pos));
      break;
    }
    lines.push_back(vocab_bpe.substr(pos, end - pos));
    pos = end + 1;
  }
  uint64_t next = 256;
  std::string merged, bytes;
  for (size_t i = 1; i + 1 < lines.size(); ++i) {
    std::vector<std::string_view> words;
    std::string_view line = lines[i];
    for (size_t pos = 0; pos < line.size();) {
      auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; };
      while (pos < line.size() && space(line[pos])) ++pos;
      size_t start = pos;
      while (pos < line.size() && !space(line[pos])) ++pos;
      if (pos > start) words.push_back(line.substr(start, pos - start));
    }
    const std::string at = where + ": vocab.bpe line " + std::to_string(i + 1) + ": ";
    if (words.size() != 2) {
      return Corruption(at + "expected two tokens, found " + std::to_string(words.size()));
    }
    merged.clear();
    for (std::string_view word : words) {
      if (!AppendFromByteLevel(word, merged)) {
        return Corruption(at + "\"" + std::string(word.substr(0, 64)) + "\" is not in GPT-2's byte alphabet");
      }
    }
    if (merged.size() > kMaxTokenBytes) return Corruption(at + "the merged token is longer than " + std::to_string(kMaxTokenBytes) + " bytes");
    ranks[merged] = next++;
  }
  simdjson::dom::parser parser;
  simdjson::padded_string padded(encoder_json);
  simdjson::dom::object object;
  if (parser.parse(padded).get_object().get(object) != simdjson::SUCCESS) {
    return Corruption(where + ": encoder.json is not a JSON object");
  }
  std::map<std::string, uint64_t> encoder;
  for (auto field : object) {
    bytes.clear();
    if (!AppendFromByteLevel(field.key, bytes)) {
      return Corruption(where + ": encoder.json key \"" + std::string(field.key.substr(0, 64)) +
                        "\" is not in GPT-2's byte alphabet");
    }
    uint64_t rank = 0;
    if (field.value.get_uint64().get(rank) != simdjson::SUCCESS) {
      return Corruption(where + ": encoder.json[\"" + std::string(field.key.substr(0, 64)) +
                        "\"] is not a non-negative integer");
    }
    encoder[bytes] = rank;
  }
  encoder.erase("<|endoftext|>");
  encoder.erase("<|startoftext|>");
  if (encoder != ranks) {
    for (const auto& [token, rank] : ranks) {
      auto it = encoder.find(token);
      if (it == encoder.end() || it->second != rank) {
        return Corruption(where + ": encoder.json does not match vocab.bpe: token 0x" + LowerHex(token.substr(0, 32)) +
                          " has rank " + std::to_string(rank) + " by the merges but " +
                          (it == encoder.end() ? std::string("is absent from encoder.json") : "id " + std::to_string(it->second)));
      }
    }
    return Corruption(where + ": encoder.json has " + std::to_string(encoder.size()) +
                      " tokens besides <|endoftext|>, vocab.bpe gives " + std::to_string(ranks.size()));
  }
  for (const auto& [token, rank] : ranks) {
    if (rank > kMaxRank) return Corruption(where + ": rank " + std::to_string(rank) + " is too large");
    if (rank >= by_rank.size()) by_rank.resize(rank + 1);
    by_rank[rank] = token;
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> Tokenizer::DataGymToRanks(std::string_view encoder_json, std::string_view vocab_bpe,
                                             std::string_view origin) {
  std::vector<std::string> by_rank;
  FERRY_RETURN_IF_ERROR(DataGymRanks(encoder_json, vocab_bpe, std::string(origin), by_rank));
  std::string out;
  for (size_t rank = 0; rank < by_rank.size(); ++rank) {
    if (by_rank[rank].empty()) continue;
    AppendBase64(by_rank[rank], out);
    out += ' ';
    out += std::to_string(rank);
    out += '\n';
  }
  return out;
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::FromDataGym(std::string_view encoder_json_uri,
                                                               std::string_view vocab_bpe_uri) {
  FERRY_ASSIGN_OR_RETURN(std::string encoder, io::ReadSmallObject(encoder_json_uri, kMaxRankFileBytes));
  FERRY_ASSIGN_OR_RETURN(std::string vocab, io::ReadSmallObject(vocab_bpe_uri, kMaxRankFileBytes));
  const std::string origin = std::string(encoder_json_uri) + " + " + std::string(vocab_bpe_uri);
  FERRY_ASSIGN_OR_RETURN(std::string ranks, DataGymToRanks(encoder, vocab, origin));
  TiktokenOptions options;
  options.name = "r50k_base";  // tiktoken's gpt2 encoding: r50k's pattern and <|endoftext|>
  return FromTiktokenRanks(ranks, origin, options);
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::FromTiktoken(std::string_view uri,
                                                                const TiktokenOptions& options) {
  FERRY_ASSIGN_OR_RETURN(std::string text, io::ReadSmallObject(uri, kMaxRankFileBytes));
  return FromTiktokenRanks(text, uri, options);
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::Open(std::string_view uri,
                                                        const TiktokenOptions& tiktoken) {
  if (io::WithoutQuery(uri).ends_with(".tiktoken")) return FromTiktoken(uri, tiktoken);
  if (io::WithoutQuery(uri).ends_with(".model") && tiktoken.name.empty() &&
      tiktoken.pattern.empty() && tiktoken.special_tokens.empty()) {
    return FromSentencePiece(uri);
  }
  if (!tiktoken.name.empty() || !tiktoken.pattern.empty() || !tiktoken.special_tokens.empty()) {
    return InvalidArgument(std::string(uri) +
                           ": tiktoken options (name, pattern, special tokens) are for .tiktoken "
                           "rank files; this is read as a tokenizer.json");
  }
  return FromFile(uri);
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::FromTiktokenRanks(
    std::string_view text, std::string_view origin, const TiktokenOptions& options) {
  std::string where(origin);
  const NamedEncoding* named = nullptr;
  std::string_view name = options.name.empty() ? FileStem(origin) : std::string_view(options.name);
  for (const NamedEncoding& e : NamedEncodings()) {
    if (e.name == name) named = &e;
  }
  if (!options.name.empty() && !named) {
    return InvalidArgument(where + ": unknown tiktoken encoding \"" + options.name +
                           "\", known are " + NamesList() + " (or give a pattern)");
  }
  std::string pattern = !options.pattern.empty() ? options.pattern
                        : named                  ? std::string(named->pattern)
                                                 : std::string();
  if (pattern.empty()) {
    return InvalidArgument(where + ": not one of the named encodings (" + NamesList() +
                           "), so a split pattern is needed");
  }
  const auto& specials = !options.special_tokens.empty() || !named ? options.special_tokens
                                                                   : named->special_tokens;

  TokenizerParts parts;
  parts.origin = where;
  BpeModel::Config config;
  config.whole_piece_first = true;
  size_t line_number = 0;
  std::string bytes;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    std::string at = where + ":" + std::to_string(line_number) + ": ";
    size_t space = line.find(' ');
    if (space == std::string_view::npos) {
      return Corruption(at + "expected \"<base64 token> <rank>\", found no space");
    }
    uint64_t rank = 0;
    if (!ParseDecimal(line.substr(space + 1), rank)) {
      return Corruption(at + "rank \"" + std::string(line.substr(space + 1).substr(0, 32)) +
                        "\" is not a decimal number");
    }
    // Ranks number the tokens from 0 with at most a few gaps; a rank far beyond the lines read
    // so far would size the vocabulary by a hostile number instead of by the file.
    if (rank > kMaxRank || rank > 2 * line_number + kRankSlack) {
      return Corruption(at + "rank " + std::to_string(rank) + " is far beyond the " +
                        std::to_string(line_number) +
                        " lines read so far (rank files number their tokens from 0)");
    }
    if (!DecodeBase64(line.substr(0, space), bytes) || bytes.empty()) {
      return Corruption(at + "token \"" + std::string(line.substr(0, std::min<size_t>(space, 32))) +
                        "\" is not base64 of at least one byte");
    }
    if (bytes.size() > kMaxTokenBytes) {
      return Corruption(at + "token of " + std::to_string(bytes.size()) + " bytes, more than the " +
                        std::to_string(kMaxTokenBytes) + " a rank file's tokens may have");
    }
    if (rank >= config.tokens.size()) {
      config.tokens.resize(rank + 1);
      config.present.resize(rank + 1, false);
    }
    if (config.present[rank]) return Corruption(at + "rank " + std::to_string(rank) + " appears twice");
    config.tokens[rank] = bytes;
    config.present[rank] = true;
  }
  if (config.tokens.empty()) return Corruption(where + ": no ranks in the file");
  size_t id_limit = config.tokens.size();
  for (const auto& [content, id] : specials) {
    if (content.empty()) return InvalidArgument(where + ": empty special token");
    if (id < config.present.size() && config.present[id]) {
      return InvalidArgument(where + ": special token " + content + " has id " +
                             std::to_string(id) + ", which is already a rank in the file");
    }
    if (id > kMaxRank) {
      return InvalidArgument(where + ": special token " + content + " has id " + std::to_string(id) +
                             ", larger than " + std::to_string(kMaxRank));
    }
    id_limit = std::max<size_t>(id_limit, size_t{id} + 1);
  }
  parts.spelling.assign(id_limit, std::string());
  parts.has_spelling.assign(id_limit, false);
  for (TokenId id = 0; id < config.tokens.size(); ++id) {
    if (!config.present[id]) continue;
    parts.spelling[id] = config.tokens[id];
    parts.has_spelling[id] = true;
  }
  parts.in_model = parts.has_spelling;
  for (const auto& [content, id] : specials) {
    if (parts.has_spelling[id]) {
      return InvalidArgument(where + ": special tokens share id " + std::to_string(id));
    }
    parts.spelling[id] = content;
    parts.has_spelling[id] = true;
    AddedToken token;
    token.content = content;
    token.id = id;
    token.special = true;
    parts.added.push_back(std::move(token));
  }
  parts.decoded = parts.spelling;
  auto model = BpeModel::FromRanks(std::move(config));
  if (!model.ok()) return model.status().WithContext(where);
  parts.model = std::move(model).value();
  auto compiled = SplitPattern::Compile(pattern, RegexDialect::kRustRegex);
  if (!compiled.ok()) return compiled.status().WithContext(where);
  parts.pre_tokenizer = PreTokenizer::FromPattern(std::move(compiled).value());
  parts.decoder = DecoderKind::kRawBytes;
  return BuildTokenizer(std::move(parts));
}

}  // namespace ferry::text
