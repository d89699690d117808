// Hugging Face tokenizer.json: byte-level BPE (GPT-2, GPT-NeoX, Falcon, Whisper, Llama-3 style),
// SentencePiece-style BPE (Llama-2, Phi-3), WordPiece (BERT), WordLevel, and the components
// those files use.
#include <simdjson.h>

#include <optional>
#include <unordered_map>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "base/json.h"
#include "ferry/io.h"
#include "base/parse.h"
#include "text/models/unigram.h"
#include "text/models/wordlevel.h"
#include "text/models/wordpiece.h"
#include "text/normalizers/precompiled.h"
#include "text/tokenizer_parts.h"
#include "text/split_pattern.h"
#include "text/unicode.h"

namespace ferry::text {
namespace {

namespace dom = simdjson::dom;

constexpr uint64_t kMaxId = (1u << 24) - 1;
// Ids number a vocabulary from 0 with few gaps: an id far beyond the number of entries would
// size tables by a hostile number instead of by the file.
constexpr uint64_t kIdSlack = 1 << 16;
// A post-processor adds a few ids (BOS, EOS, a task prompt); a template that adds more is not
// one a model was trained with, and a hostile one would multiply every encoding.
constexpr size_t kMaxTemplateIds = 1024;

// tokenizers' ByteLevel pre-tokenizer regex.
constexpr std::string_view kByteLevelPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// `key` as a step of a JSON path: `.name` for a plain identifier, else `["..."]`.
std::string PathStep(std::string_view key) {
  bool plain = !key.empty() && !(key[0] >= '0' && key[0] <= '9');
  for (char c : key) {
    plain = plain && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '_');
  }
  if (plain) return "." + std::string(key);
  std::string step = "[";
  AppendJsonString(step, key);
  return step + "]";
}

// A key that appears twice in `object`, if any.
std::optional<std::string_view> DuplicateKey(dom::object object) {
  const size_t n = object.size();
  if (n < 2) return std::nullopt;
  if (n <= 16) {  // every object but the vocabularies: pairwise is cheaper than hashing
    std::string_view keys[16];
    size_t i = 0;
    for (dom::key_value_pair field : object) {
      for (size_t j = 0; j < i; ++j) {
        if (keys[j] == field.key) return field.key;
      }
      keys[i++] = field.key;
    }
    return std::nullopt;
  }
  // Open addressing over views of the parsed keys (a null data() marks a free slot; simdjson's
  // keys, even "", point into its buffer). On a 200k-entry vocabulary (o200k_base as
  // tokenizer.json) this takes ~10 ms where std::unordered_set, a node per key, took 56 ms.
  size_t capacity = 64;
  while (capacity < 2 * n) capacity <<= 1;
  std::vector<std::string_view> slots(capacity);
  for (dom::key_value_pair field : object) {
    size_t slot = XXH3_64bits(field.key.data(), field.key.size()) & (capacity - 1);
    while (slots[slot].data() != nullptr) {
      if (slots[slot] == field.key) return field.key;
      slot = (slot + 1) & (capacity - 1);
    }
    slots[slot] = field.key;
  }
  return std::nullopt;
}

// A regex matching `literal` exactly: what is special to the regex engine escaped.
std::string LiteralRegex(std::string_view literal) {
  std::string regex;
  for (char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) regex += '\\';
    regex += c;
  }
  return regex;
}

// Finds the first object under `element` (in document order) with a key given twice: sets `path`
// to that object's JSON path relative to `element` and `key` to the key. The path is built only
// on the way back up from a find, so a clean file costs one walk and one key set per object.
bool FindDuplicateKey(dom::element element, std::string& path, std::string_view& key) {
  dom::object object;
  dom::array array;
  if (element.get_object().get(object) == simdjson::SUCCESS) {
    if (std::optional<std::string_view> twice = DuplicateKey(object)) {
      path.clear();
      key = *twice;
      return true;
    }
    for (dom::key_value_pair field : object) {
      if (FindDuplicateKey(field.value, path, key)) {
        path = PathStep(field.key) + path;
        return true;
      }
    }
  } else if (element.get_array().get(array) == simdjson::SUCCESS) {
    size_t index = 0;
    for (dom::element item : array) {
      if (FindDuplicateKey(item, path, key)) {
        path = "[" + std::to_string(index) + "]" + path;
        return true;
      }
      ++index;
    }
  }
  return false;
}

// Reads one tokenizer.json; every error names the file and the JSON path of the field.
class Loader {
 public:
  explicit Loader(std::string origin) : origin_(std::move(origin)) {}

  Result<std::shared_ptr<const Tokenizer>> Load(std::string_view json);

 private:
  Status Bad(std::string_view path, std::string_view what) const {
    return Corruption(origin_ + ": " + std::string(path) + ": " + std::string(what));
  }
  Status NotSupported(std::string_view path, std::string_view type, std::string_view supported) const {
    return Unsupported(origin_ + ": " + std::string(path) + ": unsupported type \"" +
                       std::string(type) + "\", supported are " + std::string(supported));
  }
  // Optional fields: absent and null read as the default.
  Result<bool> Bool(dom::object object, std::string_view key, std::string_view path, bool fallback) const;
  Result<std::string_view> String(dom::object object, std::string_view key, std::string_view path) const;
  Result<std::string_view> StringOr(dom::object object, std::string_view key, std::string_view path,
                                    std::string_view fallback) const;
  Result<std::string_view> Type(dom::object object, std::string_view path) const;

  // `byte_level`: the pre-tokenizer maps bytes to GPT-2's alphabet (BPE then merges bytes).
  Status LoadModel(dom::element model, bool byte_level);
  Status LoadBpe(dom::object model, bool byte_level);
  Status LoadWordPiece(dom::object model);
  Status LoadWordLevel(dom::object model);
  Status LoadUnigram(dom::object model);
  // model.vocab as {"token": id}: fills the spellings and `tokens`/`present` (by id; the bytes
  // of byte-level spellings when `byte_level`, else the spellings).
  Status LoadVocabObject(dom::object model, bool byte_level, std::vector<std::string>& tokens,
                         std::vector<bool>& present);
  // The id of the token named by model[key] (a string), which must be in the vocabulary.
  Result<TokenId> VocabToken(dom::object model, std::string_view key) const;
  Status LoadAddedTokens(dom::element added);
  Status LoadNormalizer(dom::element element, std::string path,
                        std::vector<std::shared_ptr<const NormalizerStep>>& steps);
  Status LoadPreTokenizer(dom::element element, std::string path, std::vector<PreTokenizerStep>& steps);
  Status LoadPostProcessor(dom::element element, std::string path,
                           std::vector<PostProcessorStep>& steps);
  Status LoadDecoder(dom::element element);
  Status LoadDecoderSteps(dom::element element, std::string path,
                          std::vector<std::shared_ptr<const DecoderStep>>& steps);
  // A Replace's {"String": ...} or {"Regex": ...} pattern and its content, as a normalizer step.
  Result<std::shared_ptr<const NormalizerStep>> ReplaceStep(dom::object object, const std::string& path) const;
  // Metaspace's prepend_scheme (or the older add_prefix_space) and replacement.
  Status MetaspaceOptions(dom::object object, const std::string& path, PreTokenizerStep& step) const;
  Result<uint64_t> Count(dom::object object, std::string_view key, std::string_view path,
                         uint64_t fallback) const;
  Result<SplitBehavior> Behavior(dom::object object, std::string_view path, SplitBehavior fallback) const;
  Result<std::pair<std::string, TokenId>> SpecialToken(dom::element pair, std::string_view path) const;
  // TemplateProcessing's object[key] ("single" or "pair").
  Status LoadTemplate(dom::object object, std::string_view key, const std::string& path,
                      std::vector<TemplatePiece>& pieces);
  Status LoadTruncation(dom::element element);
  Status LoadPadding(dom::element element);

  std::string origin_;
  TokenizerParts parts_;
  std::unordered_map<std::string, TokenId> vocab_;  // spelling -> id, model vocabulary
  size_t template_ids_ = 0;  // special-token ids in the post-processor's templates so far
};

Result<bool> Loader::Bool(dom::object object, std::string_view key, std::string_view path,
                          bool fallback) const {
  dom::element value;
  if (object[key].get(value) != simdjson::SUCCESS || value.is_null()) return fallback;
  bool out;
  if (value.get_bool().get(out) != simdjson::SUCCESS) {
    return Bad(std::string(path) + "." + std::string(key), "expected true or false");
  }
  return out;
}

Result<std::string_view> Loader::String(dom::object object, std::string_view key,
                                        std::string_view path) const {
  std::string_view out;
  if (object[key].get_string().get(out) != simdjson::SUCCESS) {
    return Bad(std::string(path) + "." + std::string(key), "expected a string");
  }
  return out;
}

Result<std::string_view> Loader::StringOr(dom::object object, std::string_view key,
                                          std::string_view path, std::string_view fallback) const {
  dom::element value;
  if (object[key].get(value) != simdjson::SUCCESS || value.is_null()) return fallback;
  return String(object, key, path);
}

Result<std::string_view> Loader::Type(dom::object object, std::string_view path) const {
  return String(object, "type", path);
}

Result<uint64_t> Loader::Count(dom::object object, std::string_view key, std::string_view path,
                               uint64_t fallback) const {
  dom::element value;
  if (object[key].get(value) != simdjson::SUCCESS || value.is_null()) return fallback;
  uint64_t out;
  if (value.get_uint64().get(out) != simdjson::SUCCESS) {
    return Bad(std::string(path) + "." + std::string(key), "expected a non-negative integer");
  }
  return out;
}

Result<SplitBehavior> Loader::Behavior(dom::object object, std::string_view path,
                                       SplitBehavior fallback) const {
  std::string_view name;
  if (object["behavior"].get_string().get(name) != simdjson::SUCCESS) return fallback;
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  return NotSupported(std::string(path) + ".behavior", name,
                      "Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous");
}

Status Loader::LoadModel(dom::element element, bool byte_level) {
  dom::object model;
  if (element.get_object().get(model) != simdjson::SUCCESS) return Bad("model", "expected an object");
  std::string_view type;
  if (model["type"].get_string().get(type) != simdjson::SUCCESS) {
    // Old files have no "type"; tokenizers then takes the first model whose fields fit.
    dom::element field;
    dom::array list;
    dom::object map;
    if (model["merges"].get(field) == simdjson::SUCCESS) {
      type = "BPE";
    } else if (model["continuing_subword_prefix"].get(field) == simdjson::SUCCESS ||
               model["max_input_chars_per_word"].get(field) == simdjson::SUCCESS) {
      type = "WordPiece";
    } else if (model["vocab"].get_array().get(list) == simdjson::SUCCESS) {
      type = "Unigram";
    } else if (model["vocab"].get_object().get(map) == simdjson::SUCCESS) {
      type = "WordLevel";
    } else {
      return Bad("model", "no \"type\", and no fields that tell which model it is");
    }
  }
  if (type == "BPE") return LoadBpe(model, byte_level);
  if (type == "WordPiece") return LoadWordPiece(model);
  if (type == "WordLevel") return LoadWordLevel(model);
  if (type == "Unigram") return LoadUnigram(model);
  return NotSupported("model.type", type, "BPE, WordPiece, WordLevel, Unigram");
}

Status Loader::LoadVocabObject(dom::object model, bool byte_level, std::vector<std::string>& tokens,
                               std::vector<bool>& present) {
  dom::object vocab;
  if (model["vocab"].get_object().get(vocab) != simdjson::SUCCESS) {
    return Bad("model.vocab", "expected an object of token -> id");
  }
  const uint64_t entries = vocab.size();
  for (dom::key_value_pair entry : vocab) {
    uint64_t id;
    if (entry.value.get_uint64().get(id) != simdjson::SUCCESS || id > kMaxId ||
        id > 2 * entries + kIdSlack) {
      return Bad("model.vocab[\"" + std::string(entry.key) + "\"]",
                 "expected an id from 0 to about twice the vocabulary's " +
                     std::to_string(entries) + " entries");
    }
    if (id >= parts_.spelling.size()) {
      parts_.spelling.resize(id + 1);
      parts_.has_spelling.resize(id + 1, false);
      parts_.decoded.resize(id + 1);
      tokens.resize(id + 1);
      present.resize(id + 1, false);
    }
    if (parts_.has_spelling[id]) {
      return Bad("model.vocab[\"" + std::string(entry.key) + "\"]",
                 "id " + std::to_string(id) + " is also the id of \"" + parts_.spelling[id] + "\"");
    }
    parts_.spelling[id] = entry.key;
    parts_.has_spelling[id] = true;
    std::string bytes;
    // What the ByteLevel decoder makes of the token: its bytes, or (spelled outside the
    // byte-level alphabet) its text as it is.
    bool in_alphabet = AppendFromByteLevel(entry.key, bytes);
    parts_.decoded[id] = in_alphabet ? bytes : std::string(entry.key);
    if (!byte_level) {
      tokens[id] = entry.key;
      present[id] = true;
    } else if (in_alphabet) {
      // Spelled outside the byte-level alphabet, BPE over bytes never produces it.
      tokens[id] = std::move(bytes);
      present[id] = true;
    }
    vocab_.emplace(std::string(entry.key), static_cast<TokenId>(id));
  }
  return Status::Ok();
}

Result<TokenId> Loader::VocabToken(dom::object model, std::string_view key) const {
  std::string path = "model." + std::string(key);
  FERRY_ASSIGN_OR_RETURN(std::string_view token, String(model, key, "model"));
  auto it = vocab_.find(std::string(token));
  if (it == vocab_.end()) return Bad(path, "\"" + std::string(token) + "\" is not in the vocab");
  return it->second;
}

Status Loader::LoadBpe(dom::object model, bool byte_level) {
  FERRY_ASSIGN_OR_RETURN(bool byte_fallback, Bool(model, "byte_fallback", "model", false));
  if (byte_fallback && byte_level) {
    return Unsupported(origin_ + ": model.byte_fallback is true under a ByteLevel pre-tokenizer, "
                       "which already gives every byte a token");
  }
  dom::element dropout;
  double dropout_value = 0;
  if (model["dropout"].get(dropout) == simdjson::SUCCESS && !dropout.is_null() &&
      (dropout.get_double().get(dropout_value) != simdjson::SUCCESS || dropout_value != 0)) {
    return Unsupported(origin_ + ": model.dropout is set; BPE dropout is a training-time option "
                       "that makes ids random, so ferry refuses it (set it to null or 0)");
  }
  BpeModel::Config config;
  // The affixes are spelled as the vocabulary is: in GPT-2's byte alphabet under ByteLevel.
  for (auto [key, affix] : {std::pair{"continuing_subword_prefix", &config.continuing_prefix},
                            std::pair{"end_of_word_suffix", &config.end_suffix}}) {
    FERRY_ASSIGN_OR_RETURN(std::string_view text, StringOr(model, key, "model", ""));
    if (!byte_level) {
      affix->assign(text);
    } else if (!AppendFromByteLevel(text, *affix)) {
      return Bad(std::string("model.") + key, "\"" + std::string(text) +
                 "\" is not spelled in the byte-level alphabet of the ByteLevel pre-tokenizer");
    }
  }
  config.symbols = byte_level ? BpeModel::Symbols::kBytes : BpeModel::Symbols::kCharacters;
  config.byte_fallback = byte_fallback;
  FERRY_RETURN_IF_ERROR(LoadVocabObject(model, byte_level, config.tokens, config.present));
  FERRY_ASSIGN_OR_RETURN(config.whole_piece_first, Bool(model, "ignore_merges", "model", false));
  FERRY_ASSIGN_OR_RETURN(config.fuse_unk, Bool(model, "fuse_unk", "model", false));
  dom::element unk;
  if (model["unk_token"].get(unk) == simdjson::SUCCESS && !unk.is_null()) {
    FERRY_ASSIGN_OR_RETURN(config.unk, VocabToken(model, "unk_token"));
  }

  dom::array merges;
  if (model["merges"].get_array().get(merges) != simdjson::SUCCESS) {
    return Bad("model.merges", "expected an array");
  }
  auto id_of = [&](std::string_view token) {
    auto it = vocab_.find(std::string(token));
    return it == vocab_.end() ? kNoToken : it->second;
  };
  std::vector<std::pair<TokenId, TokenId>> pairs;
  pairs.reserve(merges.size());
  size_t index = 0;
  for (dom::element merge : merges) {
    std::string path = "model.merges[" + std::to_string(index++) + "]";
    std::string_view left, right;
    std::string_view line;
    dom::array pair;
    if (merge.get_string().get(line) == simdjson::SUCCESS) {
      size_t space = line.find(' ');
      if (space == std::string_view::npos) return Bad(path, "expected \"left right\" (two tokens and one space)");
      if (line.find(' ', space + 1) != std::string_view::npos) {
        // Tokens that contain spaces (Llama-2's converted file has three such merges, which
        // tokenizers refuses): taken when exactly one cut gives two tokens that merge into one.
        size_t found = std::string_view::npos;
        for (size_t cut = line.find(' '); cut != std::string_view::npos; cut = line.find(' ', cut + 1)) {
          std::string joined = std::string(line.substr(0, cut)) + std::string(line.substr(cut + 1));
          if (id_of(line.substr(0, cut)) != kNoToken && id_of(line.substr(cut + 1)) != kNoToken &&
              id_of(joined) != kNoToken) {
            if (found != std::string_view::npos) {
              return Bad(path, "\"" + std::string(line) + "\" can be cut into two merging tokens "
                               "at more than one space");
            }
            found = cut;
          }
        }
        if (found == std::string_view::npos) {
          return Bad(path, "expected \"left right\" (two tokens and one space)");
        }
        space = found;
      }
      left = line.substr(0, space);
      right = line.substr(space + 1);
    } else if (merge.get_array().get(pair) == simdjson::SUCCESS && pair.size() == 2 &&
               pair.at(0).get_string().get(left) == simdjson::SUCCESS &&
               pair.at(1).get_string().get(right) == simdjson::SUCCESS) {
    } else {
      return Bad(path, "expected \"left right\" or [\"left\", \"right\"]");
    }
    TokenId l = id_of(left), r = id_of(right);
    if (l == kNoToken || r == kNoToken) {
      return Bad(path, "\"" + std::string(l == kNoToken ? left : right) + "\" is not in the vocab");
    }
    pairs.emplace_back(l, r);
  }
  auto built = BpeModel::FromMerges(std::move(config), pairs);
  if (!built.ok()) return built.status().WithContext(origin_);
  parts_.model = std::move(built).value();
  return Status::Ok();
}

Status Loader::LoadWordPiece(dom::object model) {
  WordPieceModel::Config config;
  FERRY_RETURN_IF_ERROR(LoadVocabObject(model, false, config.tokens, config.present));
  FERRY_ASSIGN_OR_RETURN(config.unk, VocabToken(model, "unk_token"));
  FERRY_ASSIGN_OR_RETURN(std::string_view prefix, StringOr(model, "continuing_subword_prefix", "model", "##"));
  config.prefix = prefix;
  FERRY_ASSIGN_OR_RETURN(uint64_t max_chars, Count(model, "max_input_chars_per_word", "model", 100));
  config.max_input_chars_per_word = static_cast<size_t>(std::min<uint64_t>(max_chars, SIZE_MAX));
  auto built = WordPieceModel::Create(std::move(config));
  if (!built.ok()) return built.status().WithContext(origin_ + ": model");
  parts_.model = std::move(built).value();
  return Status::Ok();
}

Status Loader::LoadWordLevel(dom::object model) {
  WordLevelModel::Config config;
  FERRY_RETURN_IF_ERROR(LoadVocabObject(model, false, config.tokens, config.present));
  FERRY_ASSIGN_OR_RETURN(config.unk, VocabToken(model, "unk_token"));
  auto built = WordLevelModel::Create(std::move(config));
  if (!built.ok()) return built.status().WithContext(origin_ + ": model");
  parts_.model = std::move(built).value();
  return Status::Ok();
}

Status Loader::LoadUnigram(dom::object model) {
  dom::array vocab;
  if (model["vocab"].get_array().get(vocab) != simdjson::SUCCESS) {
    return Bad("model.vocab", "expected an array of [piece, score]");
  }
  if (vocab.size() > kMaxId) return Bad("model.vocab", "more pieces than ids");
  UnigramModel::Config config;
  config.pieces.reserve(vocab.size());
  config.scores.reserve(vocab.size());
  for (dom::element entry : vocab) {
    std::string path = "model.vocab[" + std::to_string(config.pieces.size()) + "]";
    dom::array pair;
    std::string_view piece;
    double score;
    if (entry.get_array().get(pair) != simdjson::SUCCESS || pair.size() != 2 ||
        pair.at(0).get_string().get(piece) != simdjson::SUCCESS ||
        pair.at(1).get_double().get(score) != simdjson::SUCCESS) {
      return Bad(path, "expected [piece, score]");
    }
    TokenId id = static_cast<TokenId>(config.pieces.size());
    if (!vocab_.emplace(std::string(piece), id).second) {
      return Bad(path, "\"" + std::string(piece) + "\" is also piece " +
                           std::to_string(vocab_[std::string(piece)]));
    }
    config.pieces.emplace_back(piece);
    config.scores.push_back(score);
    parts_.spelling.emplace_back(piece);
    parts_.has_spelling.push_back(true);
    std::string bytes;
    parts_.decoded.push_back(AppendFromByteLevel(piece, bytes) ? bytes : std::string(piece));
  }
  dom::element unk;
  if (model["unk_id"].get(unk) == simdjson::SUCCESS && !unk.is_null()) {
    FERRY_ASSIGN_OR_RETURN(uint64_t unk_id, Count(model, "unk_id", "model", 0));
    if (unk_id >= config.pieces.size()) {
      return Bad("model.unk_id", std::to_string(unk_id) + " is beyond the " +
                                     std::to_string(config.pieces.size()) + " pieces");
    }
    config.unk = static_cast<TokenId>(unk_id);
  }
  FERRY_ASSIGN_OR_RETURN(config.byte_fallback, Bool(model, "byte_fallback", "model", false));
  auto built = UnigramModel::Create(std::move(config));
  if (!built.ok()) return built.status().WithContext(origin_ + ": model.vocab");
  parts_.model = std::move(built).value();
  return Status::Ok();
}

Status Loader::LoadAddedTokens(dom::element element) {
  if (element.is_null()) return Status::Ok();
  dom::array added;
  if (element.get_array().get(added) != simdjson::SUCCESS) return Bad("added_tokens", "expected an array");
  // Ids as tokenizers assigns them, in file order (the file's "id" is only checked by it, with a
  // warning): a token whose content is already an added token or in the model's vocabulary gets
  // that id; any other the next id after the model's entries and the added ids so far.
  const uint64_t model_entries = vocab_.size();
  std::unordered_map<std::string, size_t> added_index;  // content -> position in parts_.added
  uint64_t next_new = model_entries;
  size_t index = 0;
  for (dom::element item : added) {
    std::string path = "added_tokens[" + std::to_string(index++) + "]";
    dom::object object;
    if (item.get_object().get(object) != simdjson::SUCCESS) return Bad(path, "expected an object");
    AddedToken token;
    FERRY_ASSIGN_OR_RETURN(std::string_view content, String(object, "content", path));
    token.content = content;
    FERRY_ASSIGN_OR_RETURN(token.special, Bool(object, "special", path, false));
    FERRY_ASSIGN_OR_RETURN(token.single_word, Bool(object, "single_word", path, false));
    FERRY_ASSIGN_OR_RETURN(token.lstrip, Bool(object, "lstrip", path, false));
    FERRY_ASSIGN_OR_RETURN(token.rstrip, Bool(object, "rstrip", path, false));
    FERRY_ASSIGN_OR_RETURN(token.normalized, Bool(object, "normalized", path, !token.special));
    // The file's id is not used (below), but tokenizers refuses one that is not a u32.
    if (dom::element file_id; object["id"].get(file_id) == simdjson::SUCCESS) {
      uint64_t value;
      if (file_id.get_uint64().get(value) != simdjson::SUCCESS || value > UINT32_MAX) {
        return Bad(path + ".id", "expected an integer id below 2^32");
      }
    }
    if (token.content.empty()) continue;  // tokenizers ignores empty added tokens
    uint64_t id;
    auto again = added_index.find(token.content);
    if (again != added_index.end()) {
      id = parts_.added[again->second].id;
    } else if (auto v = vocab_.find(token.content); v != vocab_.end()) {
      id = v->second;
    } else {
      id = next_new;
    }
    if (id > kMaxId) return Bad(path, "more added tokens than ids");
    next_new = std::max(next_new, id + 1);
    token.id = static_cast<TokenId>(id);
    if (id >= parts_.spelling.size()) {
      parts_.spelling.resize(id + 1);
      parts_.has_spelling.resize(id + 1, false);
      parts_.decoded.resize(id + 1);
    }
    parts_.spelling[id] = token.content;
    parts_.has_spelling[id] = true;
    parts_.decoded[id].clear();
    if (!AppendFromByteLevel(token.content, parts_.decoded[id])) parts_.decoded[id] = token.content;
    if (again != added_index.end()) {
      parts_.added[again->second] = std::move(token);  // the same content again: its latest flags hold
    } else {
      added_index.emplace(token.content, parts_.added.size());
      parts_.added.push_back(std::move(token));
    }
  }
  return Status::Ok();
}

Result<std::shared_ptr<const NormalizerStep>> Loader::ReplaceStep(dom::object object,
                                                                  const std::string& path) const {
  dom::object pattern;
  if (object["pattern"].get_object().get(pattern) != simdjson::SUCCESS) {
    return Bad(path + ".pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
  }
  FERRY_ASSIGN_OR_RETURN(std::string_view content, String(object, "content", path));
  std::string_view text;
  if (pattern["String"].get_string().get(text) == simdjson::SUCCESS) {
    return MakeReplaceLiteral(std::string(text), std::string(content));
  }
  if (pattern["Regex"].get_string().get(text) != simdjson::SUCCESS) {
    return Bad(path + ".pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
  }
  auto compiled = SplitPattern::Compile(text);
  if (!compiled.ok()) return compiled.status().WithContext(origin_ + ": " + path + ".pattern");
  return MakeReplace(std::move(compiled).value(), std::string(content));
}

Status Loader::LoadNormalizer(dom::element element, std::string path,
                              std::vector<std::shared_ptr<const NormalizerStep>>& steps) {
  if (element.is_null()) return Status::Ok();
  dom::object object;
  if (element.get_object().get(object) != simdjson::SUCCESS) return Bad(path, "expected an object");
  FERRY_ASSIGN_OR_RETURN(std::string_view type, Type(object, path));
  if (type == "NFC") {
    steps.push_back(MakeUnicodeNormalizer(UnicodeForm::kNFC));
  } else if (type == "NFD") {
    steps.push_back(MakeUnicodeNormalizer(UnicodeForm::kNFD));
  } else if (type == "NFKC") {
    steps.push_back(MakeUnicodeNormalizer(UnicodeForm::kNFKC));
  } else if (type == "NFKD") {
    steps.push_back(MakeUnicodeNormalizer(UnicodeForm::kNFKD));
  } else if (type == "Lowercase") {
    steps.push_back(MakeLowercase());
  } else if (type == "StripAccents") {
    steps.push_back(MakeStripAccents());
  } else if (type == "Nmt") {
    steps.push_back(MakeNmt());
  } else if (type == "Strip") {
    FERRY_ASSIGN_OR_RETURN(bool left, Bool(object, "strip_left", path, true));
    FERRY_ASSIGN_OR_RETURN(bool right, Bool(object, "strip_right", path, true));
    steps.push_back(MakeStrip(left, right));
  } else if (type == "Prepend") {
    FERRY_ASSIGN_OR_RETURN(std::string_view prepend, String(object, "prepend", path));
    steps.push_back(MakePrepend(std::string(prepend)));
  } else if (type == "Replace") {
    FERRY_ASSIGN_OR_RETURN(auto step, ReplaceStep(object, path));
    steps.push_back(std::move(step));
  } else if (type == "BertNormalizer") {
    BertNormalizerOptions options;
    FERRY_ASSIGN_OR_RETURN(options.clean_text, Bool(object, "clean_text", path, true));
    FERRY_ASSIGN_OR_RETURN(options.handle_chinese_chars, Bool(object, "handle_chinese_chars", path, true));
    FERRY_ASSIGN_OR_RETURN(options.lowercase, Bool(object, "lowercase", path, true));
    // null (the default) strips accents exactly when lowercasing, as BERT's uncased models do.
    FERRY_ASSIGN_OR_RETURN(options.strip_accents, Bool(object, "strip_accents", path, options.lowercase));
    steps.push_back(MakeBertNormalizer(options));
  } else if (type == "Precompiled") {
    FERRY_ASSIGN_OR_RETURN(std::string_view encoded, String(object, "precompiled_charsmap", path));
    std::string charsmap;
    if (!DecodeBase64(encoded, charsmap)) return Bad(path + ".precompiled_charsmap", "not base64");
    auto step = MakePrecompiled(charsmap);
    if (!step.ok()) {
      return Bad(path + ".precompiled_charsmap", std::string(step.status().message()));
    }
    steps.push_back(std::move(step).value());
  } else if (type == "Sequence") {
    dom::array list;
    if (object["normalizers"].get_array().get(list) != simdjson::SUCCESS) {
      return Bad(path + ".normalizers", "expected an array");
    }
    size_t i = 0;
    for (dom::element item : list) {
      FERRY_RETURN_IF_ERROR(LoadNormalizer(item, path + ".normalizers[" + std::to_string(i++) + "]", steps));
    }
  } else {
    return NotSupported(path + ".type", type,
                        "NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Nmt, Strip, Prepend, "
                        "Replace, BertNormalizer, Precompiled, Sequence");
  }
  return Status::Ok();
}

Status Loader::LoadPreTokenizer(dom::element element, std::string path,
                                std::vector<PreTokenizerStep>& steps) {
  if (element.is_null()) return Status::Ok();
  dom::object object;
  if (element.get_object().get(object) != simdjson::SUCCESS) return Bad(path, "expected an object");
  FERRY_ASSIGN_OR_RETURN(std::string_view type, Type(object, path));
  PreTokenizerStep step;
  if (type == "Sequence") {
    dom::array list;
    if (object["pretokenizers"].get_array().get(list) != simdjson::SUCCESS) {
      return Bad(path + ".pretokenizers", "expected an array");
    }
    size_t i = 0;
    for (dom::element item : list) {
      FERRY_RETURN_IF_ERROR(LoadPreTokenizer(item, path + ".pretokenizers[" + std::to_string(i++) + "]", steps));
    }
    return Status::Ok();
  }
  if (type == "ByteLevel") {
    step.kind = PreTokenizerStep::Kind::kByteLevel;
    FERRY_ASSIGN_OR_RETURN(step.add_prefix_space, Bool(object, "add_prefix_space", path, true));
    FERRY_ASSIGN_OR_RETURN(bool use_regex, Bool(object, "use_regex", path, true));
    if (use_regex) {
      auto pattern = SplitPattern::Compile(kByteLevelPattern);
      if (!pattern.ok()) return pattern.status().WithContext(origin_ + ": " + path);
      step.pattern = std::move(pattern).value();
    }
  } else if (type == "Split") {
    step.kind = PreTokenizerStep::Kind::kSplit;
    dom::object pattern;
    if (object["pattern"].get_object().get(pattern) != simdjson::SUCCESS) {
      return Bad(path + ".pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
    }
    std::string_view text;
    std::string regex;
    if (pattern["Regex"].get_string().get(text) == simdjson::SUCCESS) {
      regex = text;
    } else if (pattern["String"].get_string().get(text) == simdjson::SUCCESS) {
      regex = LiteralRegex(text);
    } else {
      return Bad(path + ".pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
    }
    auto compiled = SplitPattern::Compile(regex);
    if (!compiled.ok()) return compiled.status().WithContext(origin_ + ": " + path + ".pattern");
    step.pattern = std::move(compiled).value();
    FERRY_ASSIGN_OR_RETURN(step.behavior, Behavior(object, path, SplitBehavior::kIsolated));
    FERRY_ASSIGN_OR_RETURN(step.invert, Bool(object, "invert", path, false));
  } else if (type == "CharDelimiterSplit") {
    // tokenizers splits on the one character and drops it: a Split on that literal, removed.
    FERRY_ASSIGN_OR_RETURN(std::string_view delimiter, String(object, "delimiter", path));
    char32_t cp;
    if (delimiter.empty() || DecodeUtf8(delimiter, 0, cp) != delimiter.size()) {
      return Bad(path + ".delimiter", "expected one character, got \"" + std::string(delimiter) + "\"");
    }
    auto compiled = SplitPattern::Compile(LiteralRegex(delimiter));
    if (!compiled.ok()) return compiled.status().WithContext(origin_ + ": " + path + ".delimiter");
    step.kind = PreTokenizerStep::Kind::kSplit;
    step.pattern = std::move(compiled).value();
    step.behavior = SplitBehavior::kRemoved;
  } else if (type == "Digits") {
    step.kind = PreTokenizerStep::Kind::kDigits;
    FERRY_ASSIGN_OR_RETURN(step.individual_digits, Bool(object, "individual_digits", path, false));
  } else if (type == "Punctuation") {
    step.kind = PreTokenizerStep::Kind::kPunctuation;
    FERRY_ASSIGN_OR_RETURN(step.behavior, Behavior(object, path, SplitBehavior::kIsolated));
  } else if (type == "Metaspace") {
    step.kind = PreTokenizerStep::Kind::kMetaspace;
    FERRY_RETURN_IF_ERROR(MetaspaceOptions(object, path, step));
    if (step.prepend == PreTokenizerStep::Prepend::kFirst && !steps.empty()) {
      return Unsupported(origin_ + ": " + path + ": prepend_scheme \"first\" after another "
                         "pre-tokenizer is not supported");
    }
  } else if (type == "BertPreTokenizer") {
    step.kind = PreTokenizerStep::Kind::kBert;
  } else if (type == "Whitespace") {
    step.kind = PreTokenizerStep::Kind::kWhitespace;
  } else if (type == "WhitespaceSplit") {
    step.kind = PreTokenizerStep::Kind::kWhitespaceSplit;
  } else {
    return NotSupported(path + ".type", type,
                        "ByteLevel, Split, CharDelimiterSplit, Digits, Punctuation, Metaspace, "
                        "BertPreTokenizer, Whitespace, WhitespaceSplit, Sequence");
  }
  steps.push_back(std::move(step));
  return Status::Ok();
}

Result<std::pair<std::string, TokenId>> Loader::SpecialToken(dom::element pair,
                                                             std::string_view path) const {
  // Roberta/Bert processors write a token as ["<s>", 0].
  dom::array array;
  std::string_view token;
  uint64_t id;
  if (pair.get_array().get(array) != simdjson::SUCCESS || array.size() != 2 ||
      array.at(0).get_string().get(token) != simdjson::SUCCESS ||
      array.at(1).get_uint64().get(id) != simdjson::SUCCESS || id > kMaxId) {
    return Bad(path, "expected [\"token\", id]");
  }
  return std::pair<std::string, TokenId>(std::string(token), static_cast<TokenId>(id));
}

Status Loader::LoadTemplate(dom::object object, std::string_view key, const std::string& path,
                            std::vector<TemplatePiece>& pieces) {
  dom::array list;
  if (object[key].get_array().get(list) != simdjson::SUCCESS) {
    return Bad(path + "." + std::string(key), "expected an array");
  }
  dom::object specials;
  if (object["special_tokens"].get_object().get(specials) != simdjson::SUCCESS) {
    return Bad(path + ".special_tokens", "expected an object");
  }
  size_t i = 0;
  for (dom::element item : list) {
    const std::string item_path = path + "." + std::string(key) + "[" + std::to_string(i++) + "]";
    TemplatePiece piece;
    dom::object body;
    std::string_view name;
    if (item["Sequence"].get_object().get(body) == simdjson::SUCCESS) {
      piece.is_sequence = true;
      FERRY_ASSIGN_OR_RETURN(std::string_view which, String(body, "id", item_path + ".Sequence"));
      if (which != "A" && which != "B") return Bad(item_path + ".Sequence.id", "expected \"A\" or \"B\"");
      piece.sequence = which == "B";
    } else if (item["SpecialToken"].get_object().get(body) == simdjson::SUCCESS &&
               body["id"].get_string().get(name) == simdjson::SUCCESS) {
      const std::string special_path = path + ".special_tokens" + PathStep(name);
      dom::object special;
      dom::array ids, tokens;
      if (specials[name].get_object().get(special) != simdjson::SUCCESS ||
          special["ids"].get_array().get(ids) != simdjson::SUCCESS) {
        return Bad(item_path, "special token \"" + std::string(name) + "\" has no ids in special_tokens");
      }
      for (dom::element id : ids) {
        uint64_t value;
        if (id.get_uint64().get(value) != simdjson::SUCCESS || value > kMaxId) {
          return Bad(special_path + ".ids", "expected ids");
        }
        piece.ids.push_back(static_cast<TokenId>(value));
      }
      if (special["tokens"].get_array().get(tokens) == simdjson::SUCCESS) {
        for (dom::element token : tokens) {
          std::string_view text;
          if (token.get_string().get(text) != simdjson::SUCCESS) return Bad(special_path + ".tokens", "expected strings");
          piece.tokens.emplace_back(text);
        }
      }
      if (piece.tokens.size() != piece.ids.size()) {
        return Bad(special_path, "expected as many tokens as ids");
      }
    } else {
      return Bad(item_path, "expected {\"Sequence\": ...} or {\"SpecialToken\": {\"id\": ...}}");
    }
    // Checked as the pieces are read: a hostile template repeats one long special token.
    template_ids_ += piece.ids.size();
    if (template_ids_ > kMaxTemplateIds) {
      return Bad(path + "." + std::string(key), "adds more than " + std::to_string(kMaxTemplateIds) +
                                                    " ids to every encoding");
    }
    FERRY_ASSIGN_OR_RETURN(uint64_t type_id, Count(body, "type_id", item_path, 0));
    if (type_id > UINT32_MAX) return Bad(item_path + ".type_id", "expected a u32");
    piece.type_id = static_cast<uint32_t>(type_id);
    pieces.push_back(std::move(piece));
  }
  return Status::Ok();
}

Status Loader::LoadPostProcessor(dom::element element, std::string path,
                                 std::vector<PostProcessorStep>& steps) {
  dom::object object;
  if (element.get_object().get(object) != simdjson::SUCCESS) return Bad(path, "expected an object");
  FERRY_ASSIGN_OR_RETURN(std::string_view type, Type(object, path));
  PostProcessorStep step;
  // ByteLevel and RobertaProcessing trim spaces off offsets (tokenizers' defaults: true, true).
  auto trim_settings = [&] {
    bool flag;
    if (object["trim_offsets"].get_bool().get(flag) == simdjson::SUCCESS) step.trim_offsets = flag;
    if (object["add_prefix_space"].get_bool().get(flag) == simdjson::SUCCESS) step.add_prefix_space = flag;
  };
  if (type == "ByteLevel") {
    step.kind = PostProcessorStep::Kind::kByteLevel;  // it only adjusts offsets
    trim_settings();
  } else if (type == "Sequence") {
    dom::array list;
    if (object["processors"].get_array().get(list) != simdjson::SUCCESS) {
      return Bad(path + ".processors", "expected an array");
    }
    size_t i = 0;
    for (dom::element item : list) {
      FERRY_RETURN_IF_ERROR(
          LoadPostProcessor(item, path + ".processors[" + std::to_string(i++) + "]", steps));
    }
    return Status::Ok();
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    step.kind = type == "BertProcessing" ? PostProcessorStep::Kind::kBert
                                         : PostProcessorStep::Kind::kRoberta;
    dom::element cls, sep;
    if (object["cls"].get(cls) != simdjson::SUCCESS) return Bad(path + ".cls", "missing");
    if (object["sep"].get(sep) != simdjson::SUCCESS) return Bad(path + ".sep", "missing");
    FERRY_ASSIGN_OR_RETURN(auto cls_token, SpecialToken(cls, path + ".cls"));
    FERRY_ASSIGN_OR_RETURN(auto sep_token, SpecialToken(sep, path + ".sep"));
    std::tie(step.cls_token, step.cls) = std::move(cls_token);
    std::tie(step.sep_token, step.sep) = std::move(sep_token);
    if (step.kind == PostProcessorStep::Kind::kRoberta) trim_settings();
  } else if (type == "TemplateProcessing") {
    step.kind = PostProcessorStep::Kind::kTemplate;
    FERRY_RETURN_IF_ERROR(LoadTemplate(object, "single", path, step.single));
    dom::element pair;
    step.has_pair = object["pair"].get(pair) == simdjson::SUCCESS && !pair.is_null();
    if (step.has_pair) FERRY_RETURN_IF_ERROR(LoadTemplate(object, "pair", path, step.pair));
  } else {
    return NotSupported(path + ".type", type,
                        "ByteLevel, TemplateProcessing, RobertaProcessing, BertProcessing, Sequence");
  }
  steps.push_back(std::move(step));
  return Status::Ok();
}

Status Loader::LoadTruncation(dom::element element) {
  if (element.is_null()) return Status::Ok();
  dom::object object;
  if (element.get_object().get(object) != simdjson::SUCCESS) return Bad("truncation", "expected an object");
  TruncationOptions options;
  FERRY_ASSIGN_OR_RETURN(options.max_length, Count(object, "max_length", "truncation", 512));
  FERRY_ASSIGN_OR_RETURN(options.stride, Count(object, "stride", "truncation", 0));
  std::string_view text;
  if (object["strategy"].get_string().get(text) == simdjson::SUCCESS) {
    if (text == "LongestFirst") {
      options.strategy = TruncationOptions::Strategy::kLongestFirst;
    } else if (text == "OnlyFirst") {
      options.strategy = TruncationOptions::Strategy::kOnlyFirst;
    } else if (text == "OnlySecond") {
      options.strategy = TruncationOptions::Strategy::kOnlySecond;
    } else {
      return Bad("truncation.strategy", "expected LongestFirst, OnlyFirst or OnlySecond");
    }
  }
  if (object["direction"].get_string().get(text) == simdjson::SUCCESS) {
    if (text != "Left" && text != "Right") return Bad("truncation.direction", "expected Left or Right");
    options.left = text == "Left";
  }
  parts_.truncation = options;
  return Status::Ok();
}

Status Loader::LoadPadding(dom::element element) {
  if (element.is_null()) return Status::Ok();
  dom::object object;
  if (element.get_object().get(object) != simdjson::SUCCESS) return Bad("padding", "expected an object");
  PaddingOptions options;
  // "BatchLongest" or {"Fixed": n}; required, as tokenizers requires it.
  dom::element strategy;
  std::string_view text;
  uint64_t length = 0;
  if (object["strategy"].get(strategy) != simdjson::SUCCESS) {
    return Bad("padding.strategy", "missing: expected \"BatchLongest\" or {\"Fixed\": length}");
  }
  if (strategy.get_string().get(text) == simdjson::SUCCESS ? text != "BatchLongest"
      : strategy["Fixed"].get_uint64().get(length) != simdjson::SUCCESS || length == 0) {
    return Bad("padding.strategy", "expected \"BatchLongest\" or {\"Fixed\": length}");
  }
  options.length = length;
  if (object["direction"].get_string().get(text) == simdjson::SUCCESS) {
    if (text != "Left" && text != "Right") return Bad("padding.direction", "expected Left or Right");
    options.left = text == "Left";
  }
  FERRY_ASSIGN_OR_RETURN(options.pad_to_multiple_of, Count(object, "pad_to_multiple_of", "padding", 0));
  FERRY_ASSIGN_OR_RETURN(uint64_t pad_id, Count(object, "pad_id", "padding", 0));
  FERRY_ASSIGN_OR_RETURN(uint64_t pad_type_id, Count(object, "pad_type_id", "padding", 0));
  if (pad_id > UINT32_MAX || pad_type_id > UINT32_MAX) return Bad("padding", "pad_id and pad_type_id are u32");
  options.pad_id = static_cast<TokenId>(pad_id);
  options.pad_type_id = static_cast<uint32_t>(pad_type_id);
  if (object["pad_token"].get_string().get(text) == simdjson::SUCCESS) options.pad_token = text;
  parts_.padding = options;
  return Status::Ok();
}

Status Loader::LoadDecoder(dom::element element) {
  if (element.is_null()) {
    parts_.decoder = DecoderKind::kJoinWithSpace;  // what tokenizers does without a decoder
    return Status::Ok();
  }
  dom::object object;
  if (element.get_object().get(object) != simdjson::SUCCESS) return Bad("decoder", "expected an object");
  FERRY_ASSIGN_OR_RETURN(std::string_view type, Type(object, "decoder"));
  if (type == "ByteLevel") {
    parts_.decoder = DecoderKind::kByteLevel;
    return Status::Ok();
  }
  std::vector<std::shared_ptr<const DecoderStep>> steps;
  FERRY_RETURN_IF_ERROR(LoadDecoderSteps(element, "decoder", steps));
  parts_.decoder = DecoderKind::kSteps;
  parts_.decoder_steps = Decoder(std::move(steps));
  return Status::Ok();
}

Status Loader::LoadDecoderSteps(dom::element element, std::string path,
                                std::vector<std::shared_ptr<const DecoderStep>>& steps) {
  dom::object object;
  if (element.get_object().get(object) != simdjson::SUCCESS) return Bad(path, "expected an object");
  FERRY_ASSIGN_OR_RETURN(std::string_view type, Type(object, path));
  if (type == "Sequence") {
    dom::array list;
    if (object["decoders"].get_array().get(list) != simdjson::SUCCESS) {
      return Bad(path + ".decoders", "expected an array");
    }
    size_t i = 0;
    for (dom::element item : list) {
      FERRY_RETURN_IF_ERROR(LoadDecoderSteps(item, path + ".decoders[" + std::to_string(i++) + "]", steps));
    }
  } else if (type == "ByteFallback") {
    steps.push_back(MakeByteFallbackDecoder());
  } else if (type == "Fuse") {
    steps.push_back(MakeFuseDecoder());
  } else if (type == "Strip") {
    FERRY_ASSIGN_OR_RETURN(std::string_view content, String(object, "content", path));
    FERRY_ASSIGN_OR_RETURN(uint64_t start, Count(object, "start", path, 0));
    FERRY_ASSIGN_OR_RETURN(uint64_t stop, Count(object, "stop", path, 0));
    steps.push_back(MakeStripDecoder(std::string(content), start, stop));
  } else if (type == "Replace") {
    FERRY_ASSIGN_OR_RETURN(auto replace, ReplaceStep(object, path));
    steps.push_back(MakeReplaceDecoder(std::move(replace)));
  } else if (type == "Metaspace") {
    PreTokenizerStep options;
    FERRY_RETURN_IF_ERROR(MetaspaceOptions(object, path, options));
    steps.push_back(MakeMetaspaceDecoder(options.replacement,
                                         options.prepend != PreTokenizerStep::Prepend::kNever));
  } else if (type == "WordPiece") {
    FERRY_ASSIGN_OR_RETURN(std::string_view prefix, StringOr(object, "prefix", path, "##"));
    FERRY_ASSIGN_OR_RETURN(bool cleanup, Bool(object, "cleanup", path, true));
    steps.push_back(MakeWordPieceDecoder(std::string(prefix), cleanup));
  } else if (type == "BPEDecoder") {
    FERRY_ASSIGN_OR_RETURN(std::string_view suffix, StringOr(object, "suffix", path, "</w>"));
    steps.push_back(MakeBpeDecoder(std::string(suffix)));
  } else if (type == "CTC") {
    FERRY_ASSIGN_OR_RETURN(std::string_view pad, StringOr(object, "pad_token", path, "<pad>"));
    FERRY_ASSIGN_OR_RETURN(std::string_view delimiter, StringOr(object, "word_delimiter_token", path, "|"));
    FERRY_ASSIGN_OR_RETURN(bool cleanup, Bool(object, "cleanup", path, true));
    steps.push_back(MakeCtcDecoder(std::string(pad), std::string(delimiter), cleanup));
  } else {
    return NotSupported(path + ".type", type,
                        "ByteLevel (alone), ByteFallback, Fuse, Strip, Replace, Metaspace, "
                        "WordPiece, BPEDecoder, CTC, Sequence");
  }
  return Status::Ok();
}

Status Loader::MetaspaceOptions(dom::object object, const std::string& path,
                                PreTokenizerStep& step) const {
  step.replacement = kSentencePieceSpace;
  dom::element value;
  if (object["replacement"].get(value) == simdjson::SUCCESS && !value.is_null()) {
    FERRY_ASSIGN_OR_RETURN(std::string_view replacement, String(object, "replacement", path));
    char32_t cp;
    if (replacement.empty() || DecodeUtf8(replacement, 0, cp) != replacement.size()) {
      return Bad(path + ".replacement", "expected one character");
    }
    step.replacement = replacement;
  }
  FERRY_ASSIGN_OR_RETURN(step.split, Bool(object, "split", path, true));
  std::string_view scheme;
  if (object["prepend_scheme"].get_string().get(scheme) == simdjson::SUCCESS) {
    if (scheme == "always") step.prepend = PreTokenizerStep::Prepend::kAlways;
    else if (scheme == "first") step.prepend = PreTokenizerStep::Prepend::kFirst;
    else if (scheme == "never") step.prepend = PreTokenizerStep::Prepend::kNever;
    else return NotSupported(path + ".prepend_scheme", scheme, "always, first, never");
  } else {  // files before prepend_scheme
    FERRY_ASSIGN_OR_RETURN(bool add_prefix_space, Bool(object, "add_prefix_space", path, true));
    step.prepend = add_prefix_space ? PreTokenizerStep::Prepend::kAlways : PreTokenizerStep::Prepend::kNever;
  }
  return Status::Ok();
}

Result<std::shared_ptr<const Tokenizer>> Loader::Load(std::string_view json) {
  parts_.origin = origin_;
  simdjson::dom::parser parser;
  dom::element root_element;
  if (auto error = parser.parse(simdjson::padded_string(json)).get(root_element)) {
    return Corruption(origin_ + ": not valid JSON (" + std::string(simdjson::error_message(error)) + ")");
  }
  dom::object root;
  if (root_element.get_object().get(root) != simdjson::SUCCESS) return Bad("(root)", "expected an object");
  // simdjson's lookups return the first of duplicate keys, Hugging Face tokenizers (serde) keeps
  // the last: a file with one would load with other ids, or other components, than the
  // reference's. None of the real files we test has one, so it is refused wherever it appears.
  // The walk costs about 2% of a load: 2 ms of ~100 ms for Falcon's 65k vocabulary, ~10 ms of
  // ~700 ms for a 200k one.
  std::string duplicate_path;
  std::string_view duplicate_key;
  if (FindDuplicateKey(root_element, duplicate_path, duplicate_key)) {
    if (duplicate_path.empty()) duplicate_path = "(root)";
    if (duplicate_path[0] == '.') duplicate_path.erase(0, 1);  // "model.vocab", not ".model.vocab"
    std::string quoted;
    AppendJsonString(quoted, duplicate_key);
    return Bad(duplicate_path,
               "key " + quoted + " appears twice (Hugging Face tokenizers would use the last one)");
  }
  dom::element model;
  if (root["model"].get(model) != simdjson::SUCCESS) return Bad("model", "missing");
  // An absent component reads as null, as in tokenizers.
  simdjson::dom::parser null_parser;
  dom::element null_value = null_parser.parse(simdjson::padded_string(std::string_view("null")));
  auto field = [&](std::string_view key) {
    dom::element value;
    return root[key].get(value) == simdjson::SUCCESS ? value : null_value;
  };
  // The pre-tokenizer first: whether it maps bytes to the byte-level alphabet decides how the
  // BPE model reads its vocabulary.
  std::vector<PreTokenizerStep> steps;
  FERRY_RETURN_IF_ERROR(LoadPreTokenizer(field("pre_tokenizer"), "pre_tokenizer", steps));
  int byte_level = 0;
  for (const PreTokenizerStep& step : steps) byte_level += step.kind == PreTokenizerStep::Kind::kByteLevel;
  if (byte_level > 1) {
    return Unsupported(origin_ + ": pre_tokenizer has " + std::to_string(byte_level) +
                       " ByteLevel steps; ferry supports one (a second would map the byte-level "
                       "alphabet onto itself again)");
  }
  FERRY_RETURN_IF_ERROR(LoadModel(model, byte_level == 1));
  parts_.in_model = parts_.has_spelling;  // before added_tokens extend it
  FERRY_RETURN_IF_ERROR(LoadAddedTokens(field("added_tokens")));
  std::vector<std::shared_ptr<const NormalizerStep>> normalizers;
  FERRY_RETURN_IF_ERROR(LoadNormalizer(field("normalizer"), "normalizer", normalizers));
  parts_.normalizer = Normalizer(std::move(normalizers));
  FERRY_ASSIGN_OR_RETURN(parts_.pre_tokenizer, PreTokenizer::FromSteps(std::move(steps)));
  if (dom::element processor = field("post_processor"); !processor.is_null()) {
    std::vector<PostProcessorStep> processors;
    FERRY_RETURN_IF_ERROR(LoadPostProcessor(processor, "post_processor", processors));
    for (const PostProcessorStep& step : processors) {
      for (const auto* pieces : {&step.single, &step.pair}) {
        for (const TemplatePiece& piece : *pieces) {
          for (TokenId id : piece.ids) {
            if (id >= parts_.has_spelling.size() || !parts_.has_spelling[id]) {
              return Bad("post_processor", "id " + std::to_string(id) + " is not in the vocabulary");
            }
          }
        }
      }
      if (step.kind == PostProcessorStep::Kind::kBert || step.kind == PostProcessorStep::Kind::kRoberta) {
        for (TokenId id : {step.cls, step.sep}) {
          if (id >= parts_.has_spelling.size() || !parts_.has_spelling[id]) {
            return Bad("post_processor", "id " + std::to_string(id) + " is not in the vocabulary");
          }
        }
      }
    }
    FERRY_ASSIGN_OR_RETURN(parts_.post_processor, PostProcessor::Make(std::move(processors), origin_));
  }
  FERRY_RETURN_IF_ERROR(LoadTruncation(field("truncation")));
  FERRY_RETURN_IF_ERROR(LoadPadding(field("padding")));
  FERRY_RETURN_IF_ERROR(LoadDecoder(field("decoder")));
  return BuildTokenizer(std::move(parts_));
}

}  // namespace

bool IsSentencePieceModel(std::string_view bytes, std::string_view origin) {
  std::string_view name = io::WithoutQuery(origin);
  if (name.ends_with(".model")) return true;
  if (name.ends_with(".json")) return false;
  return !bytes.empty() && bytes[0] == '\x0a';
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::FromJson(std::string_view json,
                                                            std::string_view origin) {
  if (IsSentencePieceModel(json, origin)) {
    return Unsupported(std::string(origin) +
                       ": a SentencePiece .model file (protobuf), not tokenizer.json text; load "
                       "it with Tokenizer::FromSentencePiece (Python: Tokenizer.from_sentencepiece "
                       "or from_file)");
  }
  return Loader(std::string(origin)).Load(json);
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::FromFile(std::string_view uri) {
  static_assert(kMaxSentencePieceModelBytes <= kMaxTokenizerJsonBytes);
  FERRY_ASSIGN_OR_RETURN(std::string json, io::ReadSmallObject(uri, kMaxTokenizerJsonBytes));
  if (IsSentencePieceModel(json, uri)) {
    if (json.size() > kMaxSentencePieceModelBytes) {
      return InvalidArgument(std::string(uri) + ": " + std::to_string(json.size()) +
                             " bytes, more than the " + std::to_string(kMaxSentencePieceModelBytes) +
                             " a SentencePiece .model may have");
    }
    return FromSentencePieceProto(json, uri);
  }
  return FromJson(json, uri);
}

}  // namespace ferry::text
