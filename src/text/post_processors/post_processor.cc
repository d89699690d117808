#include "text/post_processors/post_processor.h"

#include <algorithm>
#include <string_view>

#include "text/unicode.h"

namespace ferry::text {
namespace {

constexpr TokenId kMarker = 0xFFFFFFFFu;  // stands for the sequence in Wrap

// Special tokens stand for no text: offsets {0, 0}, no word.
void AppendUnaligned(Encoding& encoding, size_t n) {
  if (!encoding.has_alignment) return;
  encoding.offsets.insert(encoding.offsets.end(), n, {0, 0});
  encoding.words.insert(encoding.words.end(), n, -1);
}

Encoding SpecialTokens(const std::vector<TokenId>& ids, uint32_t type_id, bool aligned) {
  Encoding out;
  out.ids = ids;
  out.type_ids.assign(ids.size(), type_id);
  out.special_tokens_mask.assign(ids.size(), 1);
  out.attention_mask.assign(ids.size(), 1);
  out.has_alignment = aligned;
  AppendUnaligned(out, ids.size());
  return out;
}

// BertProcessing and RobertaProcessing put one id before (optionally) and one after a sequence;
// the sequence's range excludes them. Overflowing windows are surrounded the same way, and lose
// their own windows (tokenizers builds them with none).
struct Surround {
  std::optional<TokenId> before;
  TokenId after = 0;
  uint32_t sequence = 0;
  bool zero_type_ids = false;  // Roberta: every type id 0
  uint32_t after_type_id = 0;  // Bert: the type id of the id after

  Encoding Apply(const Encoding& in) const {
    Encoding out;
    const size_t n = in.size() + (before ? 2 : 1);
    if (before) out.ids.push_back(*before);
    out.ids.insert(out.ids.end(), in.ids.begin(), in.ids.end());
    out.ids.push_back(after);
    if (zero_type_ids) {
      out.type_ids.assign(n, 0);
    } else {
      if (before) out.type_ids.push_back(0);
      out.type_ids.insert(out.type_ids.end(), in.type_ids.begin(), in.type_ids.end());
      out.type_ids.push_back(after_type_id);
    }
    if (before) out.special_tokens_mask.push_back(1);
    out.special_tokens_mask.resize(out.special_tokens_mask.size() + in.size(), 0);
    out.special_tokens_mask.push_back(1);
    out.attention_mask.assign(n, 1);
    out.sequence_ranges.push_back({sequence, before ? 1u : 0u, n - 1});
    out.has_alignment = in.has_alignment;
    if (before) AppendUnaligned(out, 1);
    out.offsets.insert(out.offsets.end(), in.offsets.begin(), in.offsets.end());
    out.words.insert(out.words.end(), in.words.begin(), in.words.end());
    AppendUnaligned(out, 1);
    if (!in.token_text.empty()) {
      if (before) out.token_text.push_back(-1);
      out.token_text.insert(out.token_text.end(), in.token_text.begin(), in.token_text.end());
      out.token_text.push_back(-1);
      out.token_texts = in.token_texts;
    }
    return out;
  }

  Encoding ApplyWithOverflowing(const Encoding& in) const {
    Encoding out = Apply(in);
    for (const Encoding& window : in.overflowing) out.overflowing.push_back(Apply(window));
    return out;
  }
};

// tokenizers' process_offsets: a token's offsets lose its leading and trailing spaces (`Ġ` or
// whitespace characters of its string), the first token's single leading one kept with
// add_prefix_space (a first token is the first id or one whose offsets start at 0).
void TrimOffsets(Encoding& encoding, const TokenStrings& tokens, bool add_prefix_space) {
  if (!encoding.has_alignment) return;
  const std::vector<std::string> strings = tokens(encoding);
  auto is_space = [](char32_t cp) { return cp == 0x120 || IsWhitespace(cp); };
  for (size_t i = 0; i < strings.size(); ++i) {
    std::vector<char32_t> characters;
    const std::string& token = strings[i];
    for (size_t pos = 0; pos < token.size();) {
      char32_t cp = 0;
      const size_t length = DecodeUtf8(token, pos, cp);
      characters.push_back(length == 0 ? 0xFFFD : cp);
      pos += length == 0 ? 1 : length;
    }
    uint32_t leading = 0, trailing = 0;
    while (leading < characters.size() && is_space(characters[leading])) ++leading;
    while (trailing < characters.size() && is_space(characters[characters.size() - 1 - trailing])) ++trailing;
    auto& [begin, end] = encoding.offsets[i];
    if (leading > 0) {
      const bool first = i == 0 || begin == 0;
      if (first && add_prefix_space && leading == 1) leading = 0;
      begin = std::min(begin + leading, end);
    }
    if (trailing > 0 && end >= trailing) end = std::max(end - trailing, begin);
  }
}

void AppendIds(std::string& out, const std::vector<TokenId>& ids) {
  out += '[';
  for (TokenId id : ids) out += std::to_string(id) + ',';
  out += ']';
}

void AppendTemplate(std::string& out, const std::vector<TemplatePiece>& pieces) {
  for (const TemplatePiece& piece : pieces) {
    if (piece.is_sequence) {
      out += piece.sequence == 0 ? "$A:" : "$B:";
    } else {
      out += "special";
      AppendIds(out, piece.ids);
      for (const std::string& token : piece.tokens) out += std::to_string(token.size()) + ':' + token;
      out += ':';
    }
    out += std::to_string(piece.type_id) + ' ';
  }
}

}  // namespace

std::vector<int32_t> Encoding::sequence_ids() const {
  std::vector<int32_t> out(ids.size(), -1);
  for (uint32_t sequence = 0; sequence < n_sequences(); ++sequence) {
    size_t begin = 0, end = ids.size();  // tokenizers: a sequence without a range covers all ids
    for (const Range& range : sequence_ranges) {
      if (range.sequence == sequence) begin = range.begin, end = std::min(range.end, ids.size());
    }
    for (size_t i = begin; i < end; ++i) out[i] = static_cast<int32_t>(sequence);
  }
  return out;
}

namespace {

// tokenizers' sequence_range: a sequence without a range covers all ids.
std::pair<size_t, size_t> SequenceRange(const Encoding& encoding, uint32_t sequence) {
  for (const Encoding::Range& range : encoding.sequence_ranges) {
    if (range.sequence == sequence) return {range.begin, range.end};
  }
  return {0, encoding.size()};
}

}  // namespace

std::optional<uint32_t> Encoding::TokenToSequence(size_t token) const {
  if (token > size()) return std::nullopt;
  if (sequence_ranges.empty()) return 0;
  for (const Range& range : sequence_ranges) {
    if (token >= range.begin && token < range.end) return range.sequence;
  }
  return std::nullopt;
}

std::optional<std::pair<size_t, size_t>> Encoding::WordToTokens(uint32_t word, uint32_t sequence) const {
  auto [begin, end] = SequenceRange(*this, sequence);
  if (begin > end || end > words.size()) return std::nullopt;
  std::optional<size_t> first, last;
  // Words ascend within a sequence (none, -1, sorting first): the scan stops past `word`.
  for (size_t i = begin; i < end && words[i] <= static_cast<int64_t>(word); ++i) {
    if (words[i] != static_cast<int64_t>(word)) continue;
    if (!first) first = i;
    last = i + 1;
  }
  if (!first) return std::nullopt;
  return std::pair{*first, *last};
}

std::optional<std::pair<uint32_t, uint32_t>> Encoding::WordToChars(uint32_t word, uint32_t sequence) const {
  auto tokens = WordToTokens(word, sequence);
  if (!tokens || tokens->second == 0) return std::nullopt;
  return std::pair{offsets[tokens->first].first, offsets[tokens->second - 1].second};
}

std::optional<std::pair<uint32_t, std::pair<uint32_t, uint32_t>>> Encoding::TokenToChars(size_t token) const {
  auto sequence = TokenToSequence(token);
  if (!sequence || token >= offsets.size()) return std::nullopt;
  return std::pair{*sequence, offsets[token]};
}

std::optional<std::pair<uint32_t, uint32_t>> Encoding::TokenToWord(size_t token) const {
  auto sequence = TokenToSequence(token);
  if (!sequence || token >= words.size() || words[token] < 0) return std::nullopt;
  return std::pair{*sequence, static_cast<uint32_t>(words[token])};
}

std::optional<size_t> Encoding::CharToToken(size_t pos, uint32_t sequence) const {
  auto [begin, end] = SequenceRange(*this, sequence);
  if (begin > end || end > offsets.size()) return std::nullopt;
  for (size_t i = begin; i < end; ++i) {
    if (pos >= offsets[i].first && pos < offsets[i].second) return i;
  }
  return std::nullopt;
}

std::optional<uint32_t> Encoding::CharToWord(size_t pos, uint32_t sequence) const {
  auto token = CharToToken(pos, sequence);
  if (!token) return std::nullopt;
  auto word = TokenToWord(*token);
  if (!word) return std::nullopt;
  return word->second;
}

void SetSequenceId(Encoding& encoding, uint32_t sequence) {
  for (Encoding::Range& range : encoding.sequence_ranges) {
    if (range.sequence == sequence) {
      range = {sequence, 0, encoding.size()};
      return;
    }
  }
  encoding.sequence_ranges.push_back({sequence, 0, encoding.size()});
}

void MergeWith(Encoding& encoding, Encoding pair, bool growing_offsets) {
  std::vector<Encoding> overflowing;
  for (const Encoding& own : encoding.overflowing) {
    overflowing.push_back(own);
    MergeWith(overflowing.back(), pair, growing_offsets);
    for (const Encoding& other : pair.overflowing) {
      overflowing.push_back(own);
      MergeWith(overflowing.back(), other, growing_offsets);
    }
  }
  for (const Encoding& other : pair.overflowing) {
    overflowing.push_back(encoding);  // with its own windows, as tokenizers clones it
    MergeWith(overflowing.back(), other, growing_offsets);
  }
  const size_t shift = encoding.size();
  // An empty Encoding (what merging starts from) takes the alignment of what joins it; else
  // both must have one for the result to.
  const bool aligned = (shift == 0 && !encoding.has_alignment) ? pair.has_alignment
                                                                : encoding.has_alignment && pair.has_alignment;
  if (aligned) {
    const uint32_t start = growing_offsets && !encoding.offsets.empty() ? encoding.offsets.back().second : 0;
    for (auto [begin, end] : pair.offsets) encoding.offsets.emplace_back(begin + start, end + start);
    encoding.words.insert(encoding.words.end(), pair.words.begin(), pair.words.end());
  } else {
    encoding.offsets.clear();
    encoding.words.clear();
  }
  encoding.has_alignment = aligned;
  for (const Encoding::Range& range : pair.sequence_ranges) {
    Encoding::Range shifted{range.sequence, range.begin + shift, range.end + shift};
    auto same = std::find_if(encoding.sequence_ranges.begin(), encoding.sequence_ranges.end(),
                             [&](const Encoding::Range& r) { return r.sequence == range.sequence; });
    if (same != encoding.sequence_ranges.end()) {
      *same = shifted;
    } else {
      encoding.sequence_ranges.push_back(shifted);
    }
  }
  encoding.ids.insert(encoding.ids.end(), pair.ids.begin(), pair.ids.end());
  encoding.type_ids.insert(encoding.type_ids.end(), pair.type_ids.begin(), pair.type_ids.end());
  encoding.special_tokens_mask.insert(encoding.special_tokens_mask.end(),
                                      pair.special_tokens_mask.begin(), pair.special_tokens_mask.end());
  if (!encoding.token_text.empty() || !pair.token_text.empty()) {
    encoding.token_text.resize(shift, -1);
    const int32_t texts = static_cast<int32_t>(encoding.token_texts.size());
    if (pair.token_text.empty()) {
      encoding.token_text.resize(shift + pair.size(), -1);
    } else {
      for (int32_t index : pair.token_text) encoding.token_text.push_back(index < 0 ? -1 : index + texts);
    }
    encoding.token_texts.insert(encoding.token_texts.end(), pair.token_texts.begin(), pair.token_texts.end());
  }
  encoding.attention_mask.insert(encoding.attention_mask.end(), pair.attention_mask.begin(),
                                 pair.attention_mask.end());
  encoding.overflowing = std::move(overflowing);
}

namespace {

Encoding Slice(const Encoding& in, size_t begin, size_t end) {
  Encoding out;
  out.ids.assign(in.ids.begin() + begin, in.ids.begin() + end);
  out.type_ids.assign(in.type_ids.begin() + begin, in.type_ids.begin() + end);
  out.special_tokens_mask.assign(in.special_tokens_mask.begin() + begin,
                                 in.special_tokens_mask.begin() + end);
  out.attention_mask.assign(in.attention_mask.begin() + begin, in.attention_mask.begin() + end);
  out.has_alignment = in.has_alignment;
  if (in.has_alignment) {
    out.offsets.assign(in.offsets.begin() + begin, in.offsets.begin() + end);
    out.words.assign(in.words.begin() + begin, in.words.begin() + end);
  }
  if (!in.token_text.empty()) {
    out.token_text.assign(in.token_text.begin() + begin, in.token_text.begin() + end);
    out.token_texts = in.token_texts;
  }
  return out;
}

}  // namespace

Status Truncate(Encoding& encoding, size_t max_length, size_t stride, bool left) {
  const size_t n = encoding.size();
  if (max_length >= n) return Status::Ok();
  if (max_length == 0) {
    Encoding all = std::move(encoding);
    encoding = Encoding{};
    encoding.has_alignment = all.has_alignment;
    encoding.overflowing.push_back(std::move(all));
    return Status::Ok();
  }
  if (stride >= max_length) {
    return InvalidArgument("truncation stride " + std::to_string(stride) +
                           " must be below the length kept, " + std::to_string(max_length));
  }
  // Windows of max_length ids, each starting max_length - stride after the one before, from the
  // end kept to the far end.
  const size_t step = max_length - stride;
  std::vector<std::pair<size_t, size_t>> windows;
  if (!left) {
    for (size_t begin = 0; begin < n; begin += step) {
      const size_t end = std::min(begin + max_length, n);
      windows.emplace_back(begin, end);
      if (end == n) break;
    }
  } else {
    for (size_t last = n; last-- > 0;) {
      const size_t end = last + 1;
      const size_t begin = end > max_length ? end - max_length : 0;
      windows.emplace_back(begin, end);
      if (begin == 0 || last < step) break;
      last -= step - 1;
    }
  }
  Encoding kept = Slice(encoding, windows[0].first, windows[0].second);
  for (size_t w = 1; w < windows.size(); ++w) {
    kept.overflowing.push_back(Slice(encoding, windows[w].first, windows[w].second));
  }
  encoding = std::move(kept);
  return Status::Ok();
}

Status TruncateEncodings(Encoding& first, Encoding* second, const TruncationOptions& options) {
  using Strategy = TruncationOptions::Strategy;
  const size_t max_length = options.max_length;
  if (max_length == 0) {
    FERRY_RETURN_IF_ERROR(Truncate(first, 0, options.stride, options.left));
    if (second) FERRY_RETURN_IF_ERROR(Truncate(*second, 0, options.stride, options.left));
    return Status::Ok();
  }
  const size_t total = first.size() + (second ? second->size() : 0);
  if (total <= max_length) return Status::Ok();
  const size_t to_remove = total - max_length;
  if (options.strategy == Strategy::kLongestFirst) {
    if (!second) return Truncate(first, total - to_remove, options.stride, options.left);
    // The shorter keeps what it has when the longer can take the rest; else each gets half.
    size_t n1 = first.size(), n2 = second->size();
    const bool swap = n1 > n2;
    if (swap) std::swap(n1, n2);
    n2 = n1 > max_length ? n1 : std::max(n1, max_length - n1);
    if (n1 + n2 > max_length) {
      n1 = max_length / 2;
      n2 = n1 + max_length % 2;
    }
    if (swap) std::swap(n1, n2);
    FERRY_RETURN_IF_ERROR(Truncate(first, n1, options.stride, options.left));
    return Truncate(*second, n2, options.stride, options.left);
  }
  Encoding* target = options.strategy == Strategy::kOnlyFirst ? &first : second;
  if (!target) {
    return InvalidArgument("truncation strategy only_second needs a pair, and there is one sequence");
  }
  if (target->size() <= to_remove) {
    return InvalidArgument("truncation: max_length " + std::to_string(max_length) +
                           " needs " + std::to_string(to_remove) +
                           " ids removed, and the sequence the strategy truncates has only " +
                           std::to_string(target->size()));
  }
  return Truncate(*target, target->size() - to_remove, options.stride, options.left);
}

void Pad(Encoding& encoding, size_t length, const PaddingOptions& padding) {
  for (Encoding& window : encoding.overflowing) Pad(window, length, padding);
  if (encoding.size() >= length) return;
  const size_t n = length - encoding.size();
  auto at = [&](auto& v) { return padding.left ? v.begin() : v.end(); };
  // Each padded position is spelled with this pad's token: a later pad or a merge with another
  // pad_token keeps it, as tokenizers keeps a token per position.
  if (encoding.token_text.empty()) encoding.token_text.assign(encoding.size(), -1);
  if (encoding.token_texts.empty() || encoding.token_texts.back() != padding.pad_token) {
    encoding.token_texts.push_back(padding.pad_token);
  }
  const int32_t pad_text = static_cast<int32_t>(encoding.token_texts.size() - 1);
  encoding.token_text.insert(at(encoding.token_text), n, pad_text);
  encoding.ids.insert(at(encoding.ids), n, padding.pad_id);
  encoding.type_ids.insert(at(encoding.type_ids), n, padding.pad_type_id);
  encoding.special_tokens_mask.insert(at(encoding.special_tokens_mask), n, 1);
  encoding.attention_mask.insert(at(encoding.attention_mask), n, 0);
  if (encoding.has_alignment) {
    encoding.offsets.insert(at(encoding.offsets), n, {0, 0});
    encoding.words.insert(at(encoding.words), n, -1);
  }
  if (padding.left) {
    for (Encoding::Range& range : encoding.sequence_ranges) range.begin += n, range.end += n;
  }
}

void PadEncodings(std::span<Encoding> encodings, const PaddingOptions& padding) {
  if (encodings.empty()) return;
  size_t length = padding.length;
  if (length == 0) {
    for (const Encoding& encoding : encodings) length = std::max(length, encoding.size());
  }
  if (padding.pad_to_multiple_of > 0 && length % padding.pad_to_multiple_of > 0) {
    length += padding.pad_to_multiple_of - length % padding.pad_to_multiple_of;
  }
  for (Encoding& encoding : encodings) Pad(encoding, length, padding);
}

Result<PostProcessor> PostProcessor::Make(std::vector<PostProcessorStep> steps,
                                          std::string_view origin) {
  bool after_template = false;
  for (const PostProcessorStep& step : steps) {
    if (step.kind == PostProcessorStep::Kind::kByteLevel) continue;
    // tokenizers hands a template's pieces, not one encoding per sequence, to what follows it.
    if (after_template) {
      return Unsupported(std::string(origin) +
                         ": post_processor: a processor that adds tokens after a "
                         "TemplateProcessing in a Sequence");
    }
    if (step.kind != PostProcessorStep::Kind::kTemplate) continue;
    after_template = true;
    auto count = [](const std::vector<TemplatePiece>& pieces, uint32_t sequence) {
      return std::count_if(pieces.begin(), pieces.end(), [&](const TemplatePiece& p) {
        return p.is_sequence && p.sequence == sequence;
      });
    };
    if (count(step.single, 0) != 1 || count(step.single, 1) != 0) {
      return Corruption(std::string(origin) +
                        ": post_processor.single: expected one Sequence A and no Sequence B");
    }
    if (step.has_pair && (count(step.pair, 0) != 1 || count(step.pair, 1) != 1)) {
      return Corruption(std::string(origin) +
                        ": post_processor.pair: expected one Sequence A and one Sequence B");
    }
  }
  PostProcessor out;
  out.steps_ = std::move(steps);
  out.present_ = true;
  return out;
}

size_t PostProcessor::AddedTokens(bool pair) const {
  size_t added = 0;
  for (const PostProcessorStep& step : steps_) {
    switch (step.kind) {
      case PostProcessorStep::Kind::kByteLevel:
        break;
      case PostProcessorStep::Kind::kTemplate:
        for (const TemplatePiece& piece : pair ? step.pair : step.single) added += piece.ids.size();
        break;
      case PostProcessorStep::Kind::kBert:
        added += pair ? 3 : 2;
        break;
      case PostProcessorStep::Kind::kRoberta:
        added += pair ? 4 : 2;
        break;
    }
  }
  return added;
}

bool PostProcessor::CanEncodePairs() const {
  return std::all_of(steps_.begin(), steps_.end(), [](const PostProcessorStep& step) {
    return step.kind != PostProcessorStep::Kind::kTemplate || step.has_pair;
  });
}

void PostProcessor::Wrap(std::vector<TokenId>& prefix, std::vector<TokenId>& suffix) const {
  Encoding marker;
  marker.ids = {kMarker};
  marker.type_ids = {0};
  marker.special_tokens_mask = {0};
  marker.attention_mask = {1};
  Encoding wrapped = Process(std::move(marker), std::nullopt, true);
  auto at = std::find(wrapped.ids.begin(), wrapped.ids.end(), kMarker);
  prefix.assign(wrapped.ids.begin(), at);
  suffix.assign(at + 1, wrapped.ids.end());
}

Encoding PostProcessor::Process(Encoding first, std::optional<Encoding> second,
                                bool add_special_tokens, const TokenStrings* tokens) const {
  std::vector<Encoding> encodings;
  encodings.push_back(std::move(first));
  if (second) encodings.push_back(std::move(*second));
  if (!present_) {  // tokenizers' default_process
    if (encodings.size() == 1) return std::move(encodings[0]);
  } else {
    for (uint32_t i = 0; i < encodings.size(); ++i) {
      SetSequenceId(encodings[i], i);
      for (Encoding& window : encodings[i].overflowing) SetSequenceId(window, i);
      encodings[i].type_ids.assign(encodings[i].size(), i);
    }
    for (const PostProcessorStep& step : steps_) {
      encodings = ProcessStep(step, std::move(encodings), add_special_tokens, tokens);
    }
  }
  Encoding out;
  for (uint32_t i = 0; i < encodings.size(); ++i) {
    if (!present_) SetSequenceId(encodings[i], i);
    MergeWith(out, std::move(encodings[i]));
  }
  return out;
}

std::vector<Encoding> PostProcessor::ProcessStep(const PostProcessorStep& step,
                                                 std::vector<Encoding> encodings,
                                                 bool add_special_tokens,
                                                 const TokenStrings* tokens) const {
  using Kind = PostProcessorStep::Kind;
  if ((step.kind == Kind::kByteLevel || step.kind == Kind::kRoberta) && step.trim_offsets && tokens) {
    for (Encoding& encoding : encodings) {
      TrimOffsets(encoding, *tokens, step.add_prefix_space);
      for (Encoding& window : encoding.overflowing) TrimOffsets(window, *tokens, step.add_prefix_space);
    }
  }
  switch (step.kind) {
    case Kind::kByteLevel:  // it trims offsets (above) and numbers sequences
      for (uint32_t i = 0; i < encodings.size(); ++i) SetSequenceId(encodings[i], i);
      return encodings;
    case Kind::kTemplate: {
      std::vector<Encoding> out;
      for (const TemplatePiece& piece : encodings.size() == 2 ? step.pair : step.single) {
        if (piece.is_sequence) {
          Encoding& encoding = encodings[piece.sequence];
          encoding.type_ids.assign(encoding.size(), piece.type_id);
          SetSequenceId(encoding, piece.sequence);
          out.push_back(encoding);
        } else if (add_special_tokens) {
          out.push_back(SpecialTokens(piece.ids, piece.type_id, encodings[0].has_alignment));
        }
      }
      return out;
    }
    case Kind::kBert:
    case Kind::kRoberta: {
      const bool roberta = step.kind == Kind::kRoberta;
      if (roberta) {
        for (Encoding& encoding : encodings) encoding.type_ids.assign(encoding.size(), 0);
      }
      if (!add_special_tokens) return encodings;
      std::vector<Encoding> out;
      for (size_t i = 0; i < encodings.size(); ++i) {
        Surround surround;
        if (i == 0) {
          surround = {step.cls, step.sep, 0, roberta, 0};
        } else if (roberta) {
          surround = {step.sep, step.sep, 1, true, 0};
        } else {
          surround = {std::nullopt, step.sep, 1, false, 1};
        }
        out.push_back(surround.ApplyWithOverflowing(encodings[i]));
      }
      return out;
    }
  }
  return encodings;
}

const std::string* PostProcessor::SpecialTokenText(TokenId id) const {
  for (const PostProcessorStep& step : steps_) {
    if (step.kind == PostProcessorStep::Kind::kTemplate) {
      for (const auto* pieces : {&step.single, &step.pair}) {
        for (const TemplatePiece& piece : *pieces) {
          for (size_t i = 0; i < piece.ids.size() && i < piece.tokens.size(); ++i) {
            if (piece.ids[i] == id) return &piece.tokens[i];
          }
        }
      }
    } else if (step.kind != PostProcessorStep::Kind::kByteLevel) {
      if (step.cls == id) return &step.cls_token;
      if (step.sep == id) return &step.sep_token;
    }
  }
  return nullptr;
}

std::string PostProcessor::Canonical() const {
  if (!present_) return "none";
  std::string out = "steps:";
  for (const PostProcessorStep& step : steps_) {
    switch (step.kind) {
      case PostProcessorStep::Kind::kByteLevel:
        out += "ByteLevel;";
        break;
      case PostProcessorStep::Kind::kTemplate:
        out += "Template(single ";
        AppendTemplate(out, step.single);
        if (step.has_pair) {
          out += "pair ";
          AppendTemplate(out, step.pair);
        }
        out += ");";
        break;
      case PostProcessorStep::Kind::kBert:
      case PostProcessorStep::Kind::kRoberta:
        out += step.kind == PostProcessorStep::Kind::kBert ? "Bert(" : "Roberta(";
        out += std::to_string(step.cls) + ',' + std::to_string(step.cls_token.size()) + ':' +
               step.cls_token + ',' + std::to_string(step.sep) + ',' +
               std::to_string(step.sep_token.size()) + ':' + step.sep_token + ");";
        break;
    }
  }
  return out;
}

}  // namespace ferry::text
