// Hugging Face tokenizer.json: the byte-level BPE files (GPT-2, GPT-NeoX, Falcon, Whisper,
// Llama-3 style) and the components they use.
#include <simdjson.h>

#include <optional>
#include <unordered_map>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "base/json.h"
#include "ferry/io.h"
#include "text/bpe_tokenizer.h"
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
  Result<std::string_view> Type(dom::object object, std::string_view path) const;

  Status LoadModel(dom::element model);
  Status LoadAddedTokens(dom::element added);
  Status LoadNormalizer(dom::element element, std::string path, std::vector<Normalizer::Form>& forms);
  Status LoadPreTokenizer(dom::element element, std::string path, std::vector<PreTokenizerStep>& steps);
  Status LoadPostProcessor(dom::element element, std::string path);
  Status LoadDecoder(dom::element element);
  Result<SplitBehavior> Behavior(dom::object object, std::string_view path, SplitBehavior fallback) const;
  Result<TokenId> SpecialId(dom::element pair, std::string_view path) const;

  std::string origin_;
  TokenizerParts parts_;
  std::unordered_map<std::string, TokenId> vocab_;  // spelling -> id, model vocabulary
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

Result<std::string_view> Loader::Type(dom::object object, std::string_view path) const {
  return String(object, "type", path);
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

Status Loader::LoadModel(dom::element element) {
  dom::object model;
  if (element.get_object().get(model) != simdjson::SUCCESS) return Bad("model", "expected an object");
  std::string_view type = "BPE";  // old files have no "type"; tokenizers reads them as BPE
  if (model["type"].get_string().get(type) != simdjson::SUCCESS) {
    dom::element merges;
    if (model["merges"].get(merges) != simdjson::SUCCESS) {
      return Unsupported(origin_ + ": model: no \"type\" and no \"merges\"; only byte-level BPE is supported");
    }
  }
  if (type != "BPE") return NotSupported("model.type", type, "BPE (byte-level)");
  FERRY_ASSIGN_OR_RETURN(bool byte_fallback, Bool(model, "byte_fallback", "model", false));
  if (byte_fallback) {
    return Unsupported(origin_ + ": model.byte_fallback is true (a SentencePiece-style BPE); only "
                       "byte-level BPE is supported");
  }
  dom::element dropout;
  double dropout_value = 0;
  if (model["dropout"].get(dropout) == simdjson::SUCCESS && !dropout.is_null() &&
      (dropout.get_double().get(dropout_value) != simdjson::SUCCESS || dropout_value != 0)) {
    return Unsupported(origin_ + ": model.dropout is set; BPE dropout is a training-time option");
  }
  for (std::string_view key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    std::string_view affix;
    if (model[key].get_string().get(affix) == simdjson::SUCCESS && !affix.empty()) {
      return Unsupported(origin_ + ": model." + std::string(key) + " is \"" + std::string(affix) +
                         "\"; byte-level BPE files do not use it");
    }
  }

  dom::object vocab;
  if (model["vocab"].get_object().get(vocab) != simdjson::SUCCESS) {
    return Bad("model.vocab", "expected an object of token -> id");
  }
  BpeModel::Config config;
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
      config.tokens.resize(id + 1);
      config.present.resize(id + 1, false);
    }
    if (parts_.has_spelling[id]) {
      return Bad("model.vocab[\"" + std::string(entry.key) + "\"]",
                 "id " + std::to_string(id) + " is also the id of \"" + parts_.spelling[id] + "\"");
    }
    parts_.spelling[id] = entry.key;
    parts_.has_spelling[id] = true;
    std::string bytes;
    if (AppendFromByteLevel(entry.key, bytes)) {
      config.tokens[id] = bytes;
      config.present[id] = true;
      parts_.decoded[id] = std::move(bytes);
    } else {
      // Spelled outside the byte-level alphabet: BPE over bytes never produces it, and the
      // ByteLevel decoder passes its text through.
      parts_.decoded[id] = std::string(entry.key);
    }
    vocab_.emplace(std::string(entry.key), static_cast<TokenId>(id));
  }
  FERRY_ASSIGN_OR_RETURN(config.whole_piece_first, Bool(model, "ignore_merges", "model", false));
  FERRY_ASSIGN_OR_RETURN(config.fuse_unk, Bool(model, "fuse_unk", "model", false));
  std::string_view unk;
  if (model["unk_token"].get_string().get(unk) == simdjson::SUCCESS) {
    auto it = vocab_.find(std::string(unk));
    if (it == vocab_.end()) return Bad("model.unk_token", "\"" + std::string(unk) + "\" is not in the vocab");
    config.unk = it->second;
  }

  dom::array merges;
  if (model["merges"].get_array().get(merges) != simdjson::SUCCESS) {
    return Bad("model.merges", "expected an array");
  }
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
      if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos) {
        return Bad(path, "expected \"left right\" (two tokens and one space)");
      }
      left = line.substr(0, space);
      right = line.substr(space + 1);
    } else if (merge.get_array().get(pair) == simdjson::SUCCESS && pair.size() == 2 &&
               pair.at(0).get_string().get(left) == simdjson::SUCCESS &&
               pair.at(1).get_string().get(right) == simdjson::SUCCESS) {
    } else {
      return Bad(path, "expected \"left right\" or [\"left\", \"right\"]");
    }
    auto l = vocab_.find(std::string(left)), r = vocab_.find(std::string(right));
    if (l == vocab_.end() || r == vocab_.end()) {
      return Bad(path, "\"" + std::string(l == vocab_.end() ? left : right) + "\" is not in the vocab");
    }
    pairs.emplace_back(l->second, r->second);
  }
  auto built = BpeModel::FromMerges(std::move(config), pairs);
  if (!built.ok()) return built.status().WithContext(origin_);
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

Status Loader::LoadNormalizer(dom::element element, std::string path,
                              std::vector<Normalizer::Form>& forms) {
  if (element.is_null()) return Status::Ok();
  dom::object object;
  if (element.get_object().get(object) != simdjson::SUCCESS) return Bad(path, "expected an object");
  FERRY_ASSIGN_OR_RETURN(std::string_view type, Type(object, path));
  if (type == "NFC") forms.push_back(Normalizer::Form::kNFC);
  else if (type == "NFD") forms.push_back(Normalizer::Form::kNFD);
  else if (type == "NFKC") forms.push_back(Normalizer::Form::kNFKC);
  else if (type == "NFKD") forms.push_back(Normalizer::Form::kNFKD);
  else if (type == "Sequence") {
    dom::array list;
    if (object["normalizers"].get_array().get(list) != simdjson::SUCCESS) {
      return Bad(path + ".normalizers", "expected an array");
    }
    size_t i = 0;
    for (dom::element item : list) {
      FERRY_RETURN_IF_ERROR(LoadNormalizer(item, path + ".normalizers[" + std::to_string(i++) + "]", forms));
    }
  } else {
    return NotSupported(path + ".type", type, "NFC, NFD, NFKC, NFKD, Sequence");
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
      for (char c : text) {  // a literal: escape what is special to the regex engine
        if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) regex += '\\';
        regex += c;
      }
    } else {
      return Bad(path + ".pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
    }
    auto compiled = SplitPattern::Compile(regex);
    if (!compiled.ok()) return compiled.status().WithContext(origin_ + ": " + path + ".pattern");
    step.pattern = std::move(compiled).value();
    FERRY_ASSIGN_OR_RETURN(step.behavior, Behavior(object, path, SplitBehavior::kIsolated));
    FERRY_ASSIGN_OR_RETURN(step.invert, Bool(object, "invert", path, false));
  } else if (type == "Digits") {
    step.kind = PreTokenizerStep::Kind::kDigits;
    FERRY_ASSIGN_OR_RETURN(step.individual_digits, Bool(object, "individual_digits", path, false));
  } else if (type == "Punctuation") {
    step.kind = PreTokenizerStep::Kind::kPunctuation;
    FERRY_ASSIGN_OR_RETURN(step.behavior, Behavior(object, path, SplitBehavior::kIsolated));
  } else {
    return NotSupported(path + ".type", type, "ByteLevel, Split, Digits, Punctuation, Sequence");
  }
  steps.push_back(std::move(step));
  return Status::Ok();
}

Result<TokenId> Loader::SpecialId(dom::element pair, std::string_view path) const {
  // Roberta/Bert processors write a token as ["<s>", 0].
  dom::array array;
  uint64_t id;
  if (pair.get_array().get(array) != simdjson::SUCCESS || array.size() != 2 ||
      array.at(1).get_uint64().get(id) != simdjson::SUCCESS || id > kMaxId) {
    return Bad(path, "expected [\"token\", id]");
  }
  return static_cast<TokenId>(id);
}

Status Loader::LoadPostProcessor(dom::element element, std::string path) {
  if (element.is_null()) return Status::Ok();
  dom::object object;
  if (element.get_object().get(object) != simdjson::SUCCESS) return Bad(path, "expected an object");
  FERRY_ASSIGN_OR_RETURN(std::string_view type, Type(object, path));
  std::vector<TokenId> prefix, suffix;
  if (type == "ByteLevel") {
    return Status::Ok();  // it only adjusts offsets
  } else if (type == "Sequence") {
    dom::array list;
    if (object["processors"].get_array().get(list) != simdjson::SUCCESS) {
      return Bad(path + ".processors", "expected an array");
    }
    size_t i = 0;
    for (dom::element item : list) {
      FERRY_RETURN_IF_ERROR(LoadPostProcessor(item, path + ".processors[" + std::to_string(i++) + "]"));
    }
    return Status::Ok();
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    dom::element cls, sep;
    if (object["cls"].get(cls) != simdjson::SUCCESS) return Bad(path + ".cls", "missing");
    if (object["sep"].get(sep) != simdjson::SUCCESS) return Bad(path + ".sep", "missing");
    FERRY_ASSIGN_OR_RETURN(TokenId cls_id, SpecialId(cls, path + ".cls"));
    FERRY_ASSIGN_OR_RETURN(TokenId sep_id, SpecialId(sep, path + ".sep"));
    prefix = {cls_id};
    suffix = {sep_id};
  } else if (type == "TemplateProcessing") {
    dom::array single;
    if (object["single"].get_array().get(single) != simdjson::SUCCESS) {
      return Bad(path + ".single", "expected an array");
    }
    dom::object specials;
    if (object["special_tokens"].get_object().get(specials) != simdjson::SUCCESS) {
      return Bad(path + ".special_tokens", "expected an object");
    }
    bool seen_sequence = false;
    size_t i = 0;
    for (dom::element item : single) {
      std::string item_path = path + ".single[" + std::to_string(i++) + "]";
      dom::object piece;
      std::string_view name;
      if (item["Sequence"].get_object().get(piece) == simdjson::SUCCESS) {
        if (seen_sequence) return Bad(item_path, "a single-sequence template has one Sequence");
        seen_sequence = true;
      } else if (item["SpecialToken"].get_object().get(piece) == simdjson::SUCCESS &&
                 piece["id"].get_string().get(name) == simdjson::SUCCESS) {
        dom::array ids;
        if (specials[name]["ids"].get_array().get(ids) != simdjson::SUCCESS) {
          return Bad(item_path, "special token \"" + std::string(name) +
                                    "\" has no ids in special_tokens");
        }
        for (dom::element id : ids) {
          uint64_t value;
          if (id.get_uint64().get(value) != simdjson::SUCCESS || value > kMaxId) {
            return Bad(path + ".special_tokens[\"" + std::string(name) + "\"].ids", "expected ids");
          }
          (seen_sequence ? suffix : prefix).push_back(static_cast<TokenId>(value));
          if (parts_.prefix.size() + parts_.suffix.size() + prefix.size() + suffix.size() >
              kMaxTemplateIds) {
            return Bad(path + ".single", "adds more than " + std::to_string(kMaxTemplateIds) +
                                             " ids to every encoding");
          }
        }
      } else {
        return Bad(item_path, "expected {\"Sequence\": ...} or {\"SpecialToken\": {\"id\": ...}}");
      }
    }
    if (!seen_sequence) return Bad(path + ".single", "no Sequence in the template");
  } else {
    return NotSupported(path + ".type", type,
                        "ByteLevel, TemplateProcessing, RobertaProcessing, BertProcessing, Sequence");
  }
  // An outer processor wraps what the inner ones produced.
  parts_.prefix.insert(parts_.prefix.begin(), prefix.begin(), prefix.end());
  parts_.suffix.insert(parts_.suffix.end(), suffix.begin(), suffix.end());
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
  if (type != "ByteLevel") return NotSupported("decoder.type", type, "ByteLevel");
  parts_.decoder = DecoderKind::kByteLevel;
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
  FERRY_RETURN_IF_ERROR(LoadModel(model));
  // An absent component reads as null, as in tokenizers.
  simdjson::dom::parser null_parser;
  dom::element null_value = null_parser.parse(simdjson::padded_string(std::string_view("null")));
  auto field = [&](std::string_view key) {
    dom::element value;
    return root[key].get(value) == simdjson::SUCCESS ? value : null_value;
  };
  FERRY_RETURN_IF_ERROR(LoadAddedTokens(field("added_tokens")));
  std::vector<Normalizer::Form> forms;
  FERRY_RETURN_IF_ERROR(LoadNormalizer(field("normalizer"), "normalizer", forms));
  parts_.normalizer = Normalizer(std::move(forms));
  std::vector<PreTokenizerStep> steps;
  FERRY_RETURN_IF_ERROR(LoadPreTokenizer(field("pre_tokenizer"), "pre_tokenizer", steps));
  int byte_level = 0;
  for (const PreTokenizerStep& step : steps) byte_level += step.kind == PreTokenizerStep::Kind::kByteLevel;
  if (byte_level > 1) {
    return Unsupported(origin_ + ": pre_tokenizer has " + std::to_string(byte_level) +
                       " ByteLevel steps; ferry supports one (a second would map the byte-level "
                       "alphabet onto itself again)");
  }
  if (byte_level == 0) {
    return Unsupported(origin_ + ": pre_tokenizer has no ByteLevel step; only byte-level BPE "
                       "tokenizers are supported");
  }
  FERRY_ASSIGN_OR_RETURN(parts_.pre_tokenizer, PreTokenizer::FromSteps(std::move(steps)));
  FERRY_RETURN_IF_ERROR(LoadPostProcessor(field("post_processor"), "post_processor"));
  if (parts_.prefix.size() + parts_.suffix.size() > kMaxTemplateIds) {
    return Bad("post_processor", "adds more than " + std::to_string(kMaxTemplateIds) +
                                     " ids to every encoding");
  }
  parts_.post_processor = "prefix[";
  for (TokenId id : parts_.prefix) parts_.post_processor += std::to_string(id) + ",";
  parts_.post_processor += "]suffix[";
  for (TokenId id : parts_.suffix) parts_.post_processor += std::to_string(id) + ",";
  parts_.post_processor += "]";
  for (TokenId id : parts_.prefix) {
    if (id >= parts_.has_spelling.size() || !parts_.has_spelling[id]) {
      return Bad("post_processor", "id " + std::to_string(id) + " is not in the vocabulary");
    }
  }
  for (TokenId id : parts_.suffix) {
    if (id >= parts_.has_spelling.size() || !parts_.has_spelling[id]) {
      return Bad("post_processor", "id " + std::to_string(id) + " is not in the vocabulary");
    }
  }
  FERRY_RETURN_IF_ERROR(LoadDecoder(field("decoder")));
  return BuildTokenizer(std::move(parts_));
}

}  // namespace

Result<std::shared_ptr<const Tokenizer>> Tokenizer::FromJson(std::string_view json,
                                                            std::string_view origin) {
  return Loader(std::string(origin)).Load(json);
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::FromFile(std::string_view uri) {
  FERRY_ASSIGN_OR_RETURN(std::string json, io::ReadSmallObject(uri, kMaxTokenizerJsonBytes));
  return FromJson(json, uri);
}

}  // namespace ferry::text
