// A byte-level BPE trainer that writes tokenizer.json.
#include <algorithm>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "base/json.h"
#include "ferry/text.h"
#include "text/split_pattern.h"
#include "text/unicode.h"

namespace ferry::text {
namespace {

// tokenizers' ByteLevel regex, the pre-tokenizer the trained file declares.
constexpr std::string_view kByteLevelPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

uint64_t PairKey(uint32_t left, uint32_t right) { return uint64_t{left} << 32 | right; }

}  // namespace

struct BpeTrainer::State {
  TrainOptions options;
  std::shared_ptr<const SplitPattern> pattern;
  std::unordered_map<std::string, uint64_t> piece_counts;
};

BpeTrainer::BpeTrainer(TrainOptions options) : state_(std::make_unique<State>()) {
  state_->options = std::move(options);
}

BpeTrainer::~BpeTrainer() = default;

Status BpeTrainer::Feed(std::string_view text) {
  if (!state_->pattern) {
    FERRY_ASSIGN_OR_RETURN(state_->pattern, SplitPattern::Compile(kByteLevelPattern));
  }
  size_t pos = 0;
  Match match;
  while (pos < text.size()) {
    FERRY_RETURN_IF_ERROR(state_->pattern->Find(text, pos, &match));
    size_t end = match.begin == std::string_view::npos ? text.size() : match.begin;
    if (end > pos) ++state_->piece_counts[std::string(text.substr(pos, end - pos))];
    if (match.begin == std::string_view::npos) break;
    ++state_->piece_counts[std::string(text.substr(match.begin, match.end - match.begin))];
    pos = match.end;
  }
  return Status::Ok();
}

Result<std::string> BpeTrainer::Train() const {
  const TrainOptions& options = state_->options;
  const size_t specials = options.special_tokens.size();
  if (options.vocab_size < specials + 256) {
    return InvalidArgument("vocab_size " + std::to_string(options.vocab_size) +
                           " leaves no room for the 256 bytes and " + std::to_string(specials) +
                           " special tokens");
  }
  for (size_t i = 0; i < specials; ++i) {
    const std::string& token = options.special_tokens[i];
    if (token.empty()) return InvalidArgument("special token " + std::to_string(i) + " is empty");
    for (size_t j = 0; j < i; ++j) {
      if (options.special_tokens[j] == token) {
        return InvalidArgument("special token \"" + token + "\" is listed twice");
      }
    }
  }
  // Symbols: the 256 bytes, then one per merge; token id = specials + symbol.
  std::vector<std::string> symbols;
  for (int b = 0; b < 256; ++b) symbols.emplace_back(1, static_cast<char>(b));

  struct Word {
    std::vector<uint32_t> symbols;
    uint64_t count;
  };
  std::vector<Word> words;
  words.reserve(state_->piece_counts.size());
  for (const auto& [piece, count] : state_->piece_counts) {
    Word word{{}, count};
    for (char c : piece) word.symbols.push_back(static_cast<uint8_t>(c));
    words.push_back(std::move(word));
  }
  // Visiting words in a fixed order keeps every count, and so the result, deterministic.
  std::sort(words.begin(), words.end(), [&](const Word& a, const Word& b) { return a.symbols < b.symbols; });

  std::unordered_map<uint64_t, int64_t> pair_counts;
  std::unordered_map<uint64_t, std::unordered_set<uint32_t>> pair_words;
  for (uint32_t w = 0; w < words.size(); ++w) {
    const auto& s = words[w].symbols;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      pair_counts[PairKey(s[i], s[i + 1])] += static_cast<int64_t>(words[w].count);
      pair_words[PairKey(s[i], s[i + 1])].insert(w);
    }
  }
  // Max-heap on (count, then the pair whose bytes sort first); stale entries are skipped on pop.
  struct Candidate {
    int64_t count;
    uint64_t pair;
  };
  auto worse = [&](const Candidate& a, const Candidate& b) {
    if (a.count != b.count) return a.count < b.count;
    const std::string& al = symbols[a.pair >> 32];
    const std::string& bl = symbols[b.pair >> 32];
    if (al != bl) return al > bl;
    return symbols[a.pair & 0xFFFFFFFFu] > symbols[b.pair & 0xFFFFFFFFu];
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(worse)> heap(worse);
  for (const auto& [pair, count] : pair_counts) heap.push({count, pair});

  std::vector<std::pair<uint32_t, uint32_t>> merges;
  std::unordered_map<uint64_t, int64_t> delta;
  while (specials + symbols.size() < options.vocab_size && !heap.empty()) {
    Candidate best = heap.top();
    heap.pop();
    auto it = pair_counts.find(best.pair);
    if (it == pair_counts.end() || it->second != best.count) continue;  // stale
    if (best.count < static_cast<int64_t>(options.min_frequency) || best.count <= 0) break;
    uint32_t left = best.pair >> 32, right = best.pair & 0xFFFFFFFFu;
    uint32_t merged = static_cast<uint32_t>(symbols.size());
    symbols.push_back(symbols[left] + symbols[right]);
    merges.emplace_back(left, right);
    delta.clear();
    std::vector<uint32_t> affected(pair_words[best.pair].begin(), pair_words[best.pair].end());
    std::sort(affected.begin(), affected.end());
    for (uint32_t w : affected) {
      auto& s = words[w].symbols;
      const int64_t count = static_cast<int64_t>(words[w].count);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        if (s[i] != left || s[i + 1] != right) continue;
        if (i > 0) {
          delta[PairKey(s[i - 1], left)] -= count;
          delta[PairKey(s[i - 1], merged)] += count;
          pair_words[PairKey(s[i - 1], merged)].insert(w);
        }
        if (i + 2 < s.size()) {
          delta[PairKey(right, s[i + 2])] -= count;
          delta[PairKey(merged, s[i + 2])] += count;
          pair_words[PairKey(merged, s[i + 2])].insert(w);
        }
        s[i] = merged;
        s.erase(s.begin() + static_cast<ptrdiff_t>(i) + 1);
      }
    }
    pair_counts.erase(best.pair);
    pair_words.erase(best.pair);
    for (const auto& [pair, change] : delta) {
      if (pair == best.pair) continue;
      int64_t& count = pair_counts[pair];
      count += change;
      if (count > 0) heap.push({count, pair});
    }
  }

  // tokenizer.json, in the layout tokenizers itself writes for a GPT-2 style tokenizer.
  auto spelled = [](const std::string& bytes) {
    std::string out;
    AppendByteLevel(bytes, out);
    return out;
  };
  std::string json = "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[";
  for (size_t i = 0; i < specials; ++i) {
    if (i) json += ',';
    json += "{\"id\":" + std::to_string(i) + ",\"content\":";
    AppendJsonString(json, options.special_tokens[i]);
    json += ",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,"
            "\"special\":true}";
  }
  json += "],\"normalizer\":null,"
          "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
          "\"trim_offsets\":true,\"use_regex\":true},"
          "\"post_processor\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
          "\"trim_offsets\":false,\"use_regex\":true},"
          "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,"
          "\"use_regex\":true},"
          "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,"
          "\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,\"fuse_unk\":false,"
          "\"byte_fallback\":false,\"ignore_merges\":false,\"vocab\":{";
  for (size_t i = 0; i < specials; ++i) {
    if (i) json += ',';
    AppendJsonString(json, options.special_tokens[i]);
    json += ':' + std::to_string(i);
  }
  std::unordered_set<std::string> special_set(options.special_tokens.begin(), options.special_tokens.end());
  for (size_t s = 0; s < symbols.size(); ++s) {
    if (special_set.count(spelled(symbols[s]))) {
      return InvalidArgument("special token \"" + spelled(symbols[s]) +
                             "\" was also learned from the text as an ordinary token");
    }
    if (specials || s) json += ',';
    AppendJsonString(json, spelled(symbols[s]));
    json += ':' + std::to_string(specials + s);
  }
  json += "},\"merges\":[";
  for (size_t m = 0; m < merges.size(); ++m) {
    if (m) json += ',';
    json += '[';
    AppendJsonString(json, spelled(symbols[merges[m].first]));
    json += ',';
    AppendJsonString(json, spelled(symbols[merges[m].second]));
    json += ']';
  }
  json += "]}}";
  return json;
}

}  // namespace ferry::text
