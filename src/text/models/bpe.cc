#include "text/models/bpe.h"

// Header-only: XXH3 inlines into the lookup loop.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <span>
#include <type_traits>
#include <cstring>
#include <queue>

#include "text/unicode.h"

namespace ferry::text {
namespace {

constexpr uint32_t kNoMerge = 0xFFFFFFFFu;

// Pieces up to this many bytes merge in a quadratic scan over small arrays on the stack, which
// beats a heap for the short pieces that are nearly all of real text; longer ones use a heap so
// a megabyte without a split stays O(n log n).
constexpr size_t kSmallPiece = 96;

size_t TableSize(size_t count) {
  size_t size = 16;
  while (size < count * 2) size *= 2;
  return size;
}

uint64_t NextInstance() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

// Per-thread, direct-mapped memo of merged pieces. Hits cost a compare and a copy of a few ids;
// a collision just replaces the entry. Pieces longer than kMaxPiece, or merging into more than
// kMaxIds tokens, are not kept (rare, and costly to store).
//
// Size: English prose has tens of thousands of distinct pieces that are not tokens; 64 Ki
// entries ran 20% faster than 8 Ki on GPT-2 English. Entries are plain bytes in zeroed memory
// from calloc, so the 9 MiB per thread are address space that the OS backs page by page as
// entries fill: a batch thread that encodes a little pays for a little.
class PieceCache {
 public:
  static constexpr size_t kEntries = 65536;
  static constexpr size_t kMaxPiece = 64;
  static constexpr size_t kMaxIds = 16;
  struct Entry {
    uint64_t instance;  // 0: empty (model instances count from 1)
    uint8_t piece_size;
    uint8_t id_count;
    char piece[kMaxPiece];
    TokenId ids[kMaxIds];
  };
  static_assert(std::is_trivially_copyable_v<Entry>);

  PieceCache() : entries_(static_cast<Entry*>(std::calloc(kEntries, sizeof(Entry)))) {}
  ~PieceCache() { std::free(entries_); }
  PieceCache(const PieceCache&) = delete;
  PieceCache& operator=(const PieceCache&) = delete;

  // The entry for (instance, piece) if cached, else nullptr.
  const Entry* Find(uint64_t instance, std::string_view piece, uint64_t hash) const {
    if (!entries_) return nullptr;
    const Entry& entry = entries_[Slot(hash)];
    if (entry.instance != instance || entry.piece_size != piece.size() ||
        std::memcmp(entry.piece, piece.data(), piece.size()) != 0) {
      return nullptr;
    }
    return &entry;
  }

  void Store(uint64_t instance, std::string_view piece, uint64_t hash,
             std::span<const TokenId> ids) {
    if (!entries_ || piece.size() > kMaxPiece || ids.size() > kMaxIds) return;
    Entry& entry = entries_[Slot(hash)];
    entry.instance = instance;
    entry.piece_size = static_cast<uint8_t>(piece.size());
    entry.id_count = static_cast<uint8_t>(ids.size());
    std::memcpy(entry.piece, piece.data(), piece.size());
    std::memcpy(entry.ids, ids.data(), ids.size() * sizeof(TokenId));
  }

 private:
  static size_t Slot(uint64_t hash) { return (hash >> 20) & (kEntries - 1); }
  Entry* entries_;  // null if calloc failed: then nothing is cached
};

}  // namespace

void BytesToId::Reserve(size_t count) {
  slots_.assign(TableSize(count), Slot{});
  mask_ = slots_.size() - 1;
  count_ = 0;
}

bool BytesToId::Insert(std::string_view key, TokenId id) {
  if ((count_ + 1) * 2 > slots_.size()) {
    std::vector<Slot> old = std::move(slots_);
    Reserve(std::max<size_t>(count_ + 1, old.size()));
    for (const Slot& slot : old) {
      if (slot.id != kNoToken) Insert(std::string_view(slot.data, slot.size), slot.id);
    }
  }
  uint64_t hash = Hash(key);
  for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
    Slot& slot = slots_[i];
    if (slot.id == kNoToken) {
      slot = Slot{key.data(), static_cast<uint32_t>(key.size()), static_cast<uint32_t>(hash >> 32), id};
      ++count_;
      return true;
    }
    if (std::string_view(slot.data, slot.size) == key) return false;
  }
}

uint64_t BytesToId::Hash(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

TokenId BytesToId::Find(std::string_view key, uint64_t hash) const {
  if (slots_.empty()) return kNoToken;
  const uint32_t tag = static_cast<uint32_t>(hash >> 32);
  for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
    const Slot& slot = slots_[i];
    if (slot.id == kNoToken) return kNoToken;
    if (slot.tag == tag && slot.size == key.size() &&
        std::memcmp(slot.data, key.data(), key.size()) == 0) {
      return slot.id;
    }
  }
}

void LongestPrefixSet::Build(std::vector<std::pair<std::string, TokenId>> entries) {
  entries_ = std::move(entries);
  longest_ = 0;
  std::fill(std::begin(first_), std::end(first_), false);
  ids_.Reserve(entries_.size());
  for (const auto& [text, id] : entries_) longest_ = std::max(longest_, text.size());
  lengths_.assign(longest_ + 1, false);
  for (const auto& [text, id] : entries_) {
    if (text.empty()) continue;
    ids_.Insert(text, id);
    lengths_[text.size()] = true;
    first_[static_cast<uint8_t>(text[0])] = true;
  }
}

std::vector<std::string> LongestPrefixSet::Sorted() const {
  std::vector<std::string> out;
  for (const auto& entry : entries_) out.push_back(entry.first);
  std::sort(out.begin(), out.end());
  return out;
}

void PairTable::Reserve(size_t count) {
  slots_.assign(TableSize(count), Slot{});
  mask_ = slots_.size() - 1;
  count_ = 0;
}

void PairTable::Insert(TokenId left, TokenId right, Merge merge) {
  if ((count_ + 1) * 2 > slots_.size()) {
    std::vector<Slot> old = std::move(slots_);
    Reserve(std::max<size_t>(count_ + 1, old.size()));
    for (const Slot& slot : old) {
      if (slot.key != kEmpty) Insert(slot.key >> 32, slot.key & 0xFFFFFFFFu, slot.merge);
    }
  }
  uint64_t key = Key(left, right);
  for (size_t i = Hash(key) & mask_;; i = (i + 1) & mask_) {
    Slot& slot = slots_[i];
    if (slot.key == kEmpty) {
      slot = Slot{key, merge};
      ++count_;
      return;
    }
    if (slot.key == key) {
      slot.merge = merge;  // a later duplicate wins, as in tokenizers' merge map
      return;
    }
  }
}

BpeModel::BpeModel(Config config)
    : instance_(NextInstance()),
      config_(std::move(config)),
      has_affixes_(!config_.continuing_prefix.empty() || !config_.end_suffix.empty()) {}

Status BpeModel::IndexTokens(std::string_view what) {
  bytes_to_id_.Reserve(config_.tokens.size());
  for (TokenId id = 0; id < config_.tokens.size(); ++id) {
    if (!config_.present[id]) continue;
    const std::string& bytes = config_.tokens[id];
    if (bytes.empty()) {  // Whisper's vocab has "": it can never be produced, only decoded
      config_.present[id] = false;
      continue;
    }
    if (!bytes_to_id_.Insert(bytes, id)) {
      return Corruption(std::string(what) + ": tokens " + std::to_string(bytes_to_id_.Find(bytes)) +
                        " and " + std::to_string(id) + " have the same bytes");
    }
  }
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    char c = static_cast<char>(b);
    byte_ids_[b] = bytes_to_id_.Find(std::string_view(&c, 1));
    // SentencePiece's spelling of a byte piece, which tokenizers' byte_fallback looks up.
    const char name[] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
    fallback_ids_[b] = config_.byte_fallback ? bytes_to_id_.Find(std::string_view(name, 6)) : kNoToken;
  }
  return Status::Ok();
}

Result<std::unique_ptr<BpeModel>> BpeModel::FromMerges(
    Config config, const std::vector<std::pair<TokenId, TokenId>>& merges) {
  std::unique_ptr<BpeModel> model(new BpeModel(std::move(config)));
  FERRY_RETURN_IF_ERROR(model->IndexTokens("vocab"));
  model->pairs_.Reserve(merges.size());
  std::string joined;
  for (size_t i = 0; i < merges.size(); ++i) {
    auto [left, right] = merges[i];
    const std::string& right_token = model->token(right);
    const size_t prefix = model->config_.continuing_prefix.size();
    if (right_token.size() < prefix) {
      return Corruption("model.merges[" + std::to_string(i) + "]: the right token is shorter than "
                        "model.continuing_subword_prefix");
    }
    joined = model->token(left);
    joined.append(right_token, prefix);  // tokenizers drops the prefix's length from the right
    TokenId merged = model->bytes_to_id_.Find(joined);
    if (merged == kNoToken) {
      return Corruption("model.merges[" + std::to_string(i) + "]: the merged token is not in the vocab");
    }
    model->pairs_.Insert(left, right, {static_cast<uint32_t>(i), merged});
  }
  model->merges_ = merges;
  model->IndexBytePairs();
  model->ComputeDirect();
  model->cut_before_spaces_ = model->CanCutBeforeSpaces();
  return model;
}

// A piece's symbols are its bytes, one each, when symbols are bytes without affixes and every
// byte has an id (rank files always: missing bytes have stand-ins): then ForEachSymbol emits
// byte_ids_[byte] for each byte and the pair of two neighbouring bytes can be read by value.
void BpeModel::IndexBytePairs() {
  byte_pairs_.clear();
  if (config_.symbols != Symbols::kBytes || has_affixes_) return;
  for (TokenId id : byte_ids_) {
    if (id == kNoToken) return;
  }
  byte_pairs_.assign(256 * 256, PairTable::Merge{kNoMerge, kNoToken});
  for (int first = 0; first < 256; ++first) {
    for (int second = 0; second < 256; ++second) {
      if (const PairTable::Merge* merge = pairs_.Find(byte_ids_[first], byte_ids_[second])) {
        byte_pairs_[first << 8 | second] = *merge;
      }
    }
  }
}

// Which tokens a whole piece may be emitted as directly (see direct_).
void BpeModel::ComputeDirect() {
  direct_.assign(config_.tokens.size(), false);
  if (has_affixes_) return;  // a whole token is not what merging its spelling with affixes gives
  std::vector<TokenId> ids;
  for (TokenId id = 0; id < config_.tokens.size(); ++id) {
    if (!config_.present[id]) continue;
    ids.clear();
    Merge(config_.tokens[id], ids);
    direct_[id] = ids.size() == 1 && ids[0] == id;
  }
}

Result<std::unique_ptr<BpeModel>> BpeModel::FromScores(Config config, const std::vector<float>& scores,
                                                       const std::vector<bool>& mergeable) {
  if (scores.size() != config.tokens.size() || mergeable.size() != config.tokens.size()) {
    return Internal("BpeModel::FromScores: scores and mergeable must have one entry per token");
  }
  for (size_t id = 0; id < scores.size(); ++id) {
    if (!std::isfinite(scores[id])) {
      return Corruption("piece " + std::to_string(id) + " has a score that is not finite");
    }
  }
  std::unique_ptr<BpeModel> model(new BpeModel(std::move(config)));
  FERRY_RETURN_IF_ERROR(model->IndexTokens("pieces"));
  BpeModel& m = *model;
  std::vector<bool> frozen(m.config_.tokens.size(), false);
  std::vector<std::pair<std::string, TokenId>> frozen_entries;
  for (TokenId id : m.config_.frozen) {
    if (id >= m.config_.tokens.size() || !m.config_.present[id]) {
      return Internal("BpeModel::FromScores: frozen id " + std::to_string(id) + " is not a token");
    }
    frozen[id] = true;
    frozen_entries.emplace_back(m.config_.tokens[id], id);
  }
  m.frozen_.Build(std::move(frozen_entries));
  // Priority: the rank of the merged token's score among the distinct scores, highest first, so
  // equal scores share a priority and the merge loops' leftmost rule breaks their ties.
  std::vector<float> distinct;
  for (TokenId id = 0; id < scores.size(); ++id) {
    if (mergeable[id] && m.config_.present[id]) distinct.push_back(scores[id]);
  }
  std::sort(distinct.begin(), distinct.end(), std::greater<>());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  m.pairs_.Reserve(m.config_.tokens.size() * 2);
  for (TokenId id = 0; id < m.config_.tokens.size(); ++id) {
    if (!mergeable[id] || !m.config_.present[id]) continue;
    const uint32_t priority = static_cast<uint32_t>(
        std::lower_bound(distinct.begin(), distinct.end(), scores[id], std::greater<>()) - distinct.begin());
    std::string_view token = m.config_.tokens[id];
    for (size_t cut = 0; cut < token.size();) {
      char32_t cp;
      size_t length = DecodeUtf8(token, cut, cp);
      cut += length == 0 ? 1 : length;
      if (cut >= token.size()) break;
      TokenId left = m.bytes_to_id_.Find(token.substr(0, cut));
      if (left == kNoToken || frozen[left]) continue;
      TokenId right = m.bytes_to_id_.Find(token.substr(cut));
      if (right == kNoToken || frozen[right]) continue;
      m.pairs_.Insert(left, right, {priority, id});
    }
  }
  m.scores_ = scores;
  m.mergeable_ = mergeable;
  m.ComputeDirect();
  m.cut_before_spaces_ = m.CanCutBeforeSpaces();
  return model;
}

// SentencePiece-style files often have no pre-tokenizer (Llama-2, Phi-3), so a whole document is
// one piece: merging it is O(n log n) with a heap and misses the piece cache. When no token has
// "▁" right after another character (and "▁" is a token, so it always is a symbol of its own),
// no merge can join a symbol ending before such a "▁" with the one starting at it: merging the
// words between those cuts one by one gives exactly the ids of merging the whole, and each word
// takes the fast paths. (With ignore_merges the whole piece's own lookup would differ.)
bool BpeModel::CanCutBeforeSpaces() const {
  if (config_.symbols != Symbols::kCharacters || config_.whole_piece_first || has_affixes_) return false;
  if (bytes_to_id_.Find(kSentencePieceSpace) == kNoToken) return false;
  for (TokenId id = 0; id < config_.tokens.size(); ++id) {
    if (!config_.present[id]) continue;
    std::string_view token = config_.tokens[id];
    for (size_t at = token.find(kSentencePieceSpace, 1); at != std::string_view::npos;
         at = token.find(kSentencePieceSpace, at + 1)) {
      if (at < kSentencePieceSpace.size() ||
          token.substr(at - kSentencePieceSpace.size(), kSentencePieceSpace.size()) != kSentencePieceSpace) {
        return false;
      }
    }
  }
  return true;
}

Result<std::unique_ptr<BpeModel>> BpeModel::FromRanks(Config config) {
  std::unique_ptr<BpeModel> model(new BpeModel(std::move(config)));
  FERRY_RETURN_IF_ERROR(model->IndexTokens("ranks"));
  model->pairs_.Reserve(model->config_.tokens.size() * 2);
  for (int b = 0; b < 256; ++b) {
    if (model->byte_ids_[b] == kNoToken) {
      model->byte_ids_[b] = kStandInByte + static_cast<TokenId>(b);
      model->has_stand_ins_ = true;
    }
  }
  // A part is a token, or a single byte standing in for itself.
  auto part = [&](std::string_view bytes) {
    return bytes.size() == 1 ? model->byte_ids_[static_cast<uint8_t>(bytes[0])]
                             : model->bytes_to_id_.Find(bytes);
  };
  for (TokenId id = 0; id < model->config_.tokens.size(); ++id) {
    std::string_view bytes = model->config_.tokens[id];
    for (size_t cut = 1; cut < bytes.size(); ++cut) {
      TokenId left = part(bytes.substr(0, cut));
      if (left == kNoToken) continue;
      TokenId right = part(bytes.substr(cut));
      if (right != kNoToken) model->pairs_.Insert(left, right, {id, id});
    }
  }
  model->IndexBytePairs();
  return model;
}

bool BpeModel::Encode(std::string_view piece, std::vector<TokenId>& ids) const {
  if (!cut_before_spaces_) return EncodeWord(piece, ids);
  const size_t width = kSentencePieceSpace.size();
  size_t start = 0;
  for (size_t at = piece.find(kSentencePieceSpace, 1); at != std::string_view::npos;
       at = piece.find(kSentencePieceSpace, at + width)) {
    if (at >= start + width && piece.substr(at - width, width) == kSentencePieceSpace) continue;
    EncodeWord(piece.substr(start, at - start), ids);
    start = at;
  }
  return EncodeWord(piece.substr(start), ids);
}

bool BpeModel::EncodeWord(std::string_view piece, std::vector<TokenId>& ids) const {
  if (piece.empty()) return true;
  const uint64_t hash = BytesToId::Hash(piece);
  TokenId whole = bytes_to_id_.Find(piece, hash);
  if (whole != kNoToken && (config_.whole_piece_first || direct_.empty() || direct_[whole])) {
    ids.push_back(whole);
    return true;
  }
  size_t first = ids.size();
  if (piece.size() <= PieceCache::kMaxPiece) {
    thread_local PieceCache cache;
    if (const PieceCache::Entry* hit = cache.Find(instance_, piece, hash)) {
      ids.insert(ids.end(), hit->ids, hit->ids + hit->id_count);
    } else {
      Merge(piece, ids);
      cache.Store(instance_, piece, hash, std::span<const TokenId>(ids).subspan(first));
    }
  } else {
    Merge(piece, ids);
  }
  if (has_stand_ins_) {
    for (size_t i = first; i < ids.size(); ++i) {
      if (ids[i] >= kStandInByte && ids[i] != kNoToken) {
        ids.resize(first);
        return false;
      }
    }
  }
  return true;
}

template <typename Emit>
void BpeModel::ForEachSymbol(std::string_view piece, Emit&& emit) const {
  TokenId last = kNoToken;
  if (config_.symbols == Symbols::kBytes && !has_affixes_) {
    for (char c : piece) {
      TokenId id = byte_ids_[static_cast<uint8_t>(c)];
      if (id == kNoToken) {
        id = config_.unk;
        if (id == kNoToken) continue;  // dropped, as tokenizers does without an unk token
        if (config_.fuse_unk && last == id) continue;
      }
      emit(last = id);
    }
    return;
  }
  // tokenizers holds an unknown character's unk back until the next character found in the
  // vocabulary (or the end), so byte-fallback tokens in between come out before it and do not
  // stop a run of unknown characters from fusing into one unk.
  bool unk_pending = false;
  std::string affixed;
  for (size_t pos = 0; pos < piece.size();) {
    if (!frozen_.empty()) {
      TokenId id = kNoToken;
      if (size_t length = frozen_.Match(piece.substr(pos), id); length > 0) {
        if (unk_pending) emit(config_.unk);
        unk_pending = false;
        emit(id);
        pos += length;
        continue;
      }
    }
    // A symbol is a character, or a byte for byte-level models (which come here with affixes).
    size_t length = 1;
    char32_t cp;
    if (config_.symbols == Symbols::kCharacters) length = std::max<size_t>(DecodeUtf8(piece, pos, cp), 1);
    std::string_view character = piece.substr(pos, length);
    if (has_affixes_) {  // tokenizers' merge_word: the prefix unless first, the suffix if last
      affixed.clear();
      if (pos > 0) affixed += config_.continuing_prefix;
      affixed += character;
      if (pos + length == piece.size()) affixed += config_.end_suffix;
      character = affixed;  // byte fallback below covers the affixes' bytes too, as there
    }
    pos += length;
    if (TokenId id = bytes_to_id_.Find(character); id != kNoToken) {
      if (unk_pending) emit(config_.unk);
      unk_pending = false;
      emit(id);
      continue;
    }
    if (config_.byte_fallback &&
        std::all_of(character.begin(), character.end(),
                    [&](char c) { return fallback_ids_[static_cast<uint8_t>(c)] != kNoToken; })) {
      for (char c : character) emit(fallback_ids_[static_cast<uint8_t>(c)]);
      continue;
    }
    if (config_.unk == kNoToken) continue;
    if (unk_pending && !config_.fuse_unk) emit(config_.unk);
    unk_pending = true;
  }
  if (unk_pending) emit(config_.unk);
}

size_t BpeModel::SpelledLength(std::string_view piece, size_t pos, TokenId id) const {
  if (!has_token(id)) return 0;
  std::string_view token = config_.tokens[id];
  if (pos > 0 && !config_.continuing_prefix.empty() && token.starts_with(config_.continuing_prefix)) {
    token.remove_prefix(config_.continuing_prefix.size());
  }
  const std::string_view rest = piece.substr(pos);
  if (!config_.end_suffix.empty() && token.ends_with(config_.end_suffix) &&
      rest.size() == token.size() - config_.end_suffix.size()) {
    token.remove_suffix(config_.end_suffix.size());
  }
  return !token.empty() && rest.starts_with(token) ? token.size() : 0;
}

size_t BpeModel::SymbolLength(std::string_view piece, size_t pos) const {
  char32_t cp;
  return config_.symbols == Symbols::kCharacters ? std::max<size_t>(DecodeUtf8(piece, pos, cp), 1) : 1;
}

bool BpeModel::IsUnknownSymbol(std::string_view piece, size_t pos) const {
  const size_t length = SymbolLength(piece, pos);
  std::string affixed;
  if (pos > 0) affixed += config_.continuing_prefix;
  affixed += piece.substr(pos, length);
  if (pos + length == piece.size()) affixed += config_.end_suffix;
  if (bytes_to_id_.Find(affixed) != kNoToken) return false;
  return !config_.byte_fallback ||
         !std::all_of(affixed.begin(), affixed.end(),
                      [&](char c) { return fallback_ids_[static_cast<uint8_t>(c)] != kNoToken; });
}

size_t BpeModel::UnknownRun(std::string_view piece, size_t pos) const {
  size_t end = pos + SymbolLength(piece, pos);
  while (config_.fuse_unk && end < piece.size() && IsUnknownSymbol(piece, end)) {
    end += SymbolLength(piece, end);
  }
  return end - pos;
}

// tokenizers' Word offsets: each token covers what it spells; a byte-fallback token one byte; an
// unk the symbols it stands for. They are the sums of the lengths before each token, so a symbol
// dropped for want of an unk token shifts the offsets after it (as there): `pos` walks the
// piece, `at` is what tokenizers reports. Anything else (a cut this walk cannot follow) is false,
// never a guess.
bool BpeModel::Spans(std::string_view piece, std::span<const TokenId> ids,
                     std::vector<ByteSpan>& spans) const {
  size_t pos = 0, at = 0;
  auto skip_dropped = [&] {
    while (config_.unk == kNoToken && pos < piece.size() && IsUnknownSymbol(piece, pos)) {
      pos += SymbolLength(piece, pos);
    }
  };
  for (TokenId id : ids) {
    skip_dropped();
    if (pos >= piece.size()) return false;
    size_t length = SpelledLength(piece, pos, id);
    if (length == 0 && config_.byte_fallback && fallback_ids_[static_cast<uint8_t>(piece[pos])] == id) {
      length = 1;
    } else if (length == 0 && id == config_.unk && id != kNoToken) {
      length = UnknownRun(piece, pos);
    }
    if (length == 0) return false;
    spans.push_back({static_cast<uint32_t>(at), static_cast<uint32_t>(at + length)});
    pos += length;
    at += length;
  }
  skip_dropped();
  return pos == piece.size();
}

void BpeModel::AddToFingerprint(Fingerprinter& f) const {
  f.Add(merges_.empty() ? "bpe-ranks" : "bpe-merges");
  f.AddNumber(config_.whole_piece_first);
  f.AddNumber(config_.unk);
  f.AddNumber(config_.fuse_unk);
  if (config_.symbols == Symbols::kCharacters) {  // byte-level models keep their v1 fields
    f.Add("symbols=characters");
    f.AddNumber(config_.byte_fallback);
  }
  f.AddNumber(id_limit());
  for (TokenId id = 0; id < id_limit(); ++id) {
    f.AddNumber(has_token(id));
    if (has_token(id)) f.Add(token(id));
  }
  f.AddNumber(merges_.size());
  for (auto [left, right] : merges_) {
    f.AddNumber(left);
    f.AddNumber(right);
  }
  if (has_affixes_) {  // models without affixes keep their earlier fields
    f.Add("affixes");
    f.Add(config_.continuing_prefix);
    f.Add(config_.end_suffix);
  }
  if (!scores_.empty()) {  // FromScores; the other models keep their earlier fields
    f.Add("scores");
    for (TokenId id = 0; id < scores_.size(); ++id) {
      uint32_t bits;
      static_assert(sizeof bits == sizeof(float));
      std::memcpy(&bits, &scores_[id], sizeof bits);
      f.AddNumber(bits);
      f.AddNumber(mergeable_[id]);
    }
    f.Add("frozen");
    for (const std::string& token : frozen_.Sorted()) f.Add(token);
  }
}

void BpeModel::Merge(std::string_view piece, std::vector<TokenId>& ids) const {
  // MergeSmall holds one symbol per byte; byte fallback of affixed spellings can make more.
  const size_t most_symbols = has_affixes_ && config_.byte_fallback
                                  ? piece.size() * (1 + config_.continuing_prefix.size() + config_.end_suffix.size())
                                  : piece.size();
  if (most_symbols <= kSmallPiece) {
    MergeSmall(piece, ids);
  } else {
    MergeLarge(piece, ids);
  }
}

void BpeModel::MergeSmall(std::string_view piece, std::vector<TokenId>& ids) const {
  // symbols[i] is a token; priority[i] / merged[i] describe merging symbols i and i+1.
  TokenId symbols[kSmallPiece];
  uint32_t priority[kSmallPiece];
  TokenId merged[kSmallPiece];
  size_t n = 0;  // a piece has at most as many symbols as bytes
  ForEachSymbol(piece, [&](TokenId id) { symbols[n++] = id; });
  auto rate = [&](size_t i) {
    const PairTable::Merge* merge = pairs_.Find(symbols[i], symbols[i + 1]);
    priority[i] = merge ? merge->priority : kNoMerge;
    merged[i] = merge ? merge->merged : kNoToken;
  };
  if (!byte_pairs_.empty()) {  // symbols[i] is byte_ids_[piece[i]]: see IndexBytePairs
    for (size_t i = 0; i + 1 < n; ++i) {
      const PairTable::Merge& merge =
          byte_pairs_[static_cast<uint8_t>(piece[i]) << 8 | static_cast<uint8_t>(piece[i + 1])];
      priority[i] = merge.priority;
      merged[i] = merge.merged;
    }
  } else {
    for (size_t i = 0; i + 1 < n; ++i) rate(i);
  }
  while (n > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < n; ++i) {
      if (priority[i] < priority[best]) best = i;
    }
    if (priority[best] == kNoMerge) break;
    symbols[best] = merged[best];
    std::memmove(symbols + best + 1, symbols + best + 2, (n - best - 2) * sizeof(TokenId));
    std::memmove(priority + best + 1, priority + best + 2, (n - best - 2) * sizeof(uint32_t));
    std::memmove(merged + best + 1, merged + best + 2, (n - best - 2) * sizeof(TokenId));
    --n;
    if (best + 1 < n) rate(best);
    if (best > 0) rate(best - 1);
  }
  ids.insert(ids.end(), symbols, symbols + n);
}

void BpeModel::MergeLarge(std::string_view piece, std::vector<TokenId>& ids) const {
  // A doubly linked list of symbols and a min-heap of candidate merges ordered by (priority,
  // position): the same "lowest priority, leftmost first" order as MergeSmall. Candidates go
  // stale when a neighbour merges; they are recognised on pop by the symbols having changed.
  struct Node {
    TokenId id;
    int64_t prev, next;
  };
  struct Candidate {
    uint64_t priority;
    int64_t pos;
    TokenId left, right, merged;
    bool operator>(const Candidate& other) const {
      return priority != other.priority ? priority > other.priority : pos > other.pos;
    }
  };
  std::vector<Node> nodes;
  nodes.reserve(piece.size());
  ForEachSymbol(piece, [&](TokenId id) {
    int64_t index = static_cast<int64_t>(nodes.size());
    nodes.push_back({id, index - 1, index + 1});
  });
  if (nodes.empty()) return;
  nodes.back().next = -1;
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto offer = [&](int64_t pos) {
    int64_t next = nodes[pos].next;
    if (next < 0) return;
    const PairTable::Merge* merge = pairs_.Find(nodes[pos].id, nodes[next].id);
    if (merge) heap.push({merge->priority, pos, nodes[pos].id, nodes[next].id, merge->merged});
  };
  for (int64_t i = 0; i < static_cast<int64_t>(nodes.size()); ++i) offer(i);
  while (!heap.empty()) {
    Candidate c = heap.top();
    heap.pop();
    Node& left = nodes[c.pos];
    if (left.id != c.left || left.next < 0 || nodes[left.next].id != c.right) continue;
    Node& right = nodes[left.next];
    left.id = c.merged;
    left.next = right.next;
    if (right.next >= 0) nodes[right.next].prev = c.pos;
    right.id = kNoToken;  // unlinked; no candidate can match it again
    if (left.prev >= 0) offer(left.prev);
    offer(c.pos);
  }
  for (int64_t i = 0; i >= 0; i = nodes[i].next) ids.push_back(nodes[i].id);
}

}  // namespace ferry::text
