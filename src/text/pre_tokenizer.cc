#include "text/pre_tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>

#include "text/normalizers/normalizer.h"
#include "text/unicode.h"

namespace ferry::text {
namespace {

// A span of a piece and whether the step's pattern matched it.
struct Event {
  size_t begin, end;
  bool match;
};

// The two kinds of piece RunSteps works on: plain strings (Encode) and AlignedText (the offsets
// path), with the few operations the steps need on each.
std::string_view TextOf(const std::string& piece) { return piece; }
std::string_view TextOf(const AlignedText& piece) { return piece.text(); }
std::string SliceOf(const std::string& piece, size_t begin, size_t end) {
  return piece.substr(begin, end - begin);
}
AlignedText SliceOf(const AlignedText& piece, size_t begin, size_t end) {
  return piece.Slice(begin, end);
}
// Every `from` becomes `to` (Metaspace's spaces).
void ReplaceAll(std::string& piece, std::string_view from, std::string_view to) {
  std::string replaced;
  AppendReplaced(piece, from, to, replaced);
  piece.swap(replaced);
}
void ReplaceAll(AlignedText& piece, std::string_view from, std::string_view to) {
  std::vector<std::pair<size_t, size_t>> matches;
  const std::string_view text = piece.text();
  for (size_t hit = text.find(from); hit != std::string_view::npos; hit = text.find(from, hit + from.size())) {
    matches.emplace_back(hit, hit + from.size());
  }
  piece.Replace(matches, to);
}
void PrependTo(std::string& piece, std::string_view prefix) { piece.insert(0, prefix); }
void PrependTo(AlignedText& piece, std::string_view prefix) { piece.Prepend(prefix); }
// To the byte-level spelling: tokenizers maps each byte to a character, a character's first
// byte replacing it and the others inserted after, so all take its span.
void ToByteLevel(std::string& piece) {
  std::string spelled;
  AppendByteLevel(piece, spelled);
  piece.swap(spelled);
}
void ToByteLevel(AlignedText& piece) {
  std::vector<Change> changes;
  const std::string& text = piece.text();
  for (size_t pos = 0; pos < text.size();) {
    char32_t cp;
    size_t length = DecodeUtf8(text, pos, cp);
    if (length == 0) length = 1;
    for (size_t i = 0; i < length; ++i) {
      changes.push_back({ByteToCodepoint(static_cast<uint8_t>(text[pos + i])), i == 0 ? 0 : 1});
    }
    pos += length;
  }
  piece.Transform(changes, 0);
}
// Back to raw bytes, each with the span of the character that spelled it.
bool FromByteLevel(std::string& piece) {
  std::string bytes;
  if (!AppendFromByteLevel(piece, bytes)) return false;
  piece.swap(bytes);
  return true;
}
bool FromByteLevel(AlignedText& piece) {
  std::string bytes;
  if (!AppendFromByteLevel(piece.text(), bytes)) return false;
  std::vector<Change> changes;
  changes.reserve(bytes.size());
  for (char b : bytes) changes.push_back({kRawByte + static_cast<uint8_t>(b), 0});
  piece.Transform(changes, 0);
  return true;
}

// tokenizers' NormalizedString::split: turns match/non-match events into pieces.
template <typename Piece>
void ApplyBehavior(const Piece& piece, const std::vector<Event>& events,
                   SplitBehavior behavior, std::vector<Piece>& out) {
  std::vector<std::pair<size_t, size_t>> spans;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const Event& e : events) spans.emplace_back(e.begin, e.end);
      break;
    case SplitBehavior::kRemoved:
      for (const Event& e : events) {
        if (!e.match) spans.emplace_back(e.begin, e.end);
      }
      break;
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const Event& e : events) {
        if (e.match == previous_match && !spans.empty()) {
          spans.back().second = e.end;
        } else {
          spans.emplace_back(e.begin, e.end);
        }
        previous_match = e.match;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Event& e : events) {
        if (e.match && !previous_match && !spans.empty()) {
          spans.back().second = e.end;
        } else {
          spans.emplace_back(e.begin, e.end);
        }
        previous_match = e.match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto e = events.rbegin(); e != events.rend(); ++e) {
        if (e->match && !previous_match && !spans.empty()) {
          spans.back().first = e->begin;
        } else {
          spans.emplace_back(e->begin, e->end);
        }
        previous_match = e->match;
      }
      std::reverse(spans.begin(), spans.end());
      break;
    }
  }
  for (auto [begin, end] : spans) {
    if (end > begin) out.push_back(SliceOf(piece, begin, end));
  }
}

Status RegexEvents(const SplitPattern& pattern, std::string_view piece, bool invert,
                   std::vector<Event>& events) {
  events.clear();
  size_t pos = 0;
  Match match;
  while (pos < piece.size()) {
    FERRY_RETURN_IF_ERROR(pattern.Find(piece, pos, &match));
    if (match.begin == std::string_view::npos) break;
    if (match.begin > pos) events.push_back({pos, match.begin, invert});
    events.push_back({match.begin, match.end, !invert});
    pos = match.end;
  }
  if (pos < piece.size()) events.push_back({pos, piece.size(), invert});
  return Status::Ok();
}

// Every character the predicate accepts is a match of its own; the runs between are not.
template <typename Predicate>
void CharEvents(std::string_view piece, Predicate is_match, std::vector<Event>& events) {
  events.clear();
  size_t run_start = 0;
  for (size_t pos = 0; pos < piece.size();) {
    char32_t cp = 0;
    size_t length = DecodeUtf8(piece, pos, cp);
    bool valid = length != 0;
    if (!valid) length = 1;  // a byte that is not UTF-8 never matches
    if (valid && is_match(cp)) {
      if (run_start < pos) events.push_back({run_start, pos, false});
      events.push_back({pos, pos + length, true});
      run_start = pos + length;
    }
    pos += length;
  }
  if (run_start < piece.size()) events.push_back({run_start, piece.size(), false});
}

// Every occurrence of `literal` is a match.
void LiteralEvents(std::string_view piece, std::string_view literal, std::vector<Event>& events) {
  events.clear();
  size_t pos = 0;
  for (size_t hit; (hit = piece.find(literal, pos)) != std::string_view::npos; pos = hit + literal.size()) {
    if (hit > pos) events.push_back({pos, hit, false});
    events.push_back({hit, hit + literal.size(), true});
  }
  if (pos < piece.size()) events.push_back({pos, piece.size(), false});
}

// Runs of \w characters and runs of characters that are neither \w nor whitespace (tokenizers'
// Whitespace: `\w+|[^\w\s]+`); whitespace separates and is dropped. Known difference: there \w
// is Rust regex's (Unicode 16), here IsWordChar's, from utf8proc's older tables: the same on
// every code point Unicode 14 assigns, different on some assigned since.
template <typename Piece>
void WordRuns(const Piece& whole, std::vector<Piece>& out) {
  const std::string_view piece = TextOf(whole);
  size_t start = 0;
  int kind = 0;  // of the run being built: 0 none, 1 word, 2 other
  for (size_t pos = 0; pos < piece.size();) {
    char32_t cp = 0;
    size_t length = DecodeUtf8(piece, pos, cp);
    int here = length == 0 ? 2 : IsWhitespace(cp) ? 0 : IsWordChar(cp) ? 1 : 2;
    if (length == 0) length = 1;
    if (here != kind) {
      if (kind != 0) out.push_back(SliceOf(whole, start, pos));
      start = pos;
      kind = here;
    }
    pos += length;
  }
  if (kind != 0) out.push_back(SliceOf(whole, start, piece.size()));
}

std::string_view BehaviorName(SplitBehavior behavior) {
  switch (behavior) {
    case SplitBehavior::kRemoved: return "removed";
    case SplitBehavior::kIsolated: return "isolated";
    case SplitBehavior::kMergedWithPrevious: return "merged_with_previous";
    case SplitBehavior::kMergedWithNext: return "merged_with_next";
    case SplitBehavior::kContiguous: return "contiguous";
  }
  return "?";
}

}  // namespace

Result<PreTokenizer> PreTokenizer::FromSteps(std::vector<PreTokenizerStep> steps) {
  PreTokenizer pre;
  pre.steps_ = std::move(steps);
  using Kind = PreTokenizerStep::Kind;
  const auto& s = pre.steps_;
  auto plain_byte_level = [](const PreTokenizerStep& step) {
    return step.kind == Kind::kByteLevel && !step.add_prefix_space;
  };
  if (s.size() == 1 && plain_byte_level(s[0])) {
    pre.fast_pattern_ = s[0].pattern;  // GPT-2: ByteLevel with its regex (or none)
  } else if (s.size() == 2 && s[0].kind == Kind::kSplit && !s[0].invert &&
             s[0].behavior == SplitBehavior::kIsolated && plain_byte_level(s[1]) &&
             !s[1].pattern) {
    pre.fast_pattern_ = s[0].pattern;  // Llama-3 / Qwen2: Split(regex) then ByteLevel
  } else if (s.size() == 1 && s[0].kind == Kind::kBert) {
    pre.single_ = Single::kBert;  // BERT, MiniLM
  } else if (s.size() == 1 && s[0].kind == Kind::kMetaspace && !s[0].replacement.empty()) {
    pre.single_ = Single::kMetaspace;  // SentencePiece conversions (T5, XLM-R, ...)
  } else {
    pre.general_ = true;
  }
  return pre;
}

PreTokenizer PreTokenizer::FromPattern(std::shared_ptr<const SplitPattern> pattern) {
  PreTokenizer pre;
  pre.fast_pattern_ = std::move(pattern);
  pre.drop_matchless_text_ = true;
  return pre;
}

namespace {

// The steps one after another over pieces of either kind (see TextOf): the same code decides
// the pieces of Encode and of the offsets path, so they cannot disagree.
template <typename Piece>
Status RunStepsOn(const std::vector<PreTokenizerStep>& steps, Piece text, bool at_text_start,
                  std::vector<Piece>& pieces) {
  pieces.clear();
  pieces.push_back(std::move(text));
  std::vector<Piece> next;
  std::vector<Event> events;
  bool mapped = false;  // pieces are in the byte-level spelling
  for (size_t s = 0; s < steps.size(); ++s) {
    const PreTokenizerStep& step = steps[s];
    next.clear();
    for (Piece& piece : pieces) {
      switch (step.kind) {
        case PreTokenizerStep::Kind::kMetaspace: {
          Piece spaced = std::move(piece);
          ReplaceAll(spaced, " ", step.replacement);
          // Checked after the spaces are replaced, so " x" gets no second replacement.
          bool prepend = step.prepend == PreTokenizerStep::Prepend::kAlways ||
                         (step.prepend == PreTokenizerStep::Prepend::kFirst && s == 0 && at_text_start);
          if (prepend && !TextOf(spaced).starts_with(step.replacement)) {
            PrependTo(spaced, step.replacement);
          }
          if (!step.split) {
            next.push_back(std::move(spaced));
            break;
          }
          LiteralEvents(TextOf(spaced), step.replacement, events);
          ApplyBehavior(spaced, events, SplitBehavior::kMergedWithNext, next);
          break;
        }
        case PreTokenizerStep::Kind::kBert: {
          std::vector<Piece> words;
          CharEvents(TextOf(piece), IsWhitespace, events);
          ApplyBehavior(piece, events, SplitBehavior::kRemoved, words);
          for (const Piece& word : words) {
            CharEvents(TextOf(word), IsPunctuation, events);
            ApplyBehavior(word, events, SplitBehavior::kIsolated, next);
          }
          break;
        }
        case PreTokenizerStep::Kind::kWhitespace:
          WordRuns(piece, next);
          break;
        case PreTokenizerStep::Kind::kWhitespaceSplit:
          CharEvents(TextOf(piece), IsWhitespace, events);
          ApplyBehavior(piece, events, SplitBehavior::kRemoved, next);
          break;
        case PreTokenizerStep::Kind::kSplit:
          FERRY_RETURN_IF_ERROR(RegexEvents(*step.pattern, TextOf(piece), step.invert, events));
          ApplyBehavior(piece, events, step.behavior, next);
          break;
        case PreTokenizerStep::Kind::kDigits:
          CharEvents(TextOf(piece), IsNumeric, events);
          ApplyBehavior(piece, events,
                        step.individual_digits ? SplitBehavior::kIsolated
                                               : SplitBehavior::kContiguous,
                        next);
          break;
        case PreTokenizerStep::Kind::kPunctuation:
          CharEvents(TextOf(piece), IsPunctuation, events);
          ApplyBehavior(piece, events, step.behavior, next);
          break;
        case PreTokenizerStep::Kind::kByteLevel: {
          if (step.add_prefix_space && TextOf(piece)[0] != ' ') PrependTo(piece, " ");
          size_t first = next.size();
          if (step.pattern) {
            FERRY_RETURN_IF_ERROR(RegexEvents(*step.pattern, TextOf(piece), false, events));
            ApplyBehavior(piece, events, SplitBehavior::kIsolated, next);
          } else {
            next.push_back(std::move(piece));
          }
          if (!mapped) {
            for (size_t i = first; i < next.size(); ++i) ToByteLevel(next[i]);
          }
          break;
        }
      }
    }
    if (step.kind == PreTokenizerStep::Kind::kByteLevel) mapped = true;
    pieces.swap(next);
  }
  if (mapped) {
    for (Piece& piece : pieces) {
      if (!FromByteLevel(piece)) {
        return Internal("pre-tokenizer produced a piece outside the byte-level alphabet");
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Status PreTokenizer::RunSteps(std::string_view text, bool at_text_start,
                             std::vector<std::string>& pieces) const {
  return RunStepsOn(steps_, std::string(text), at_text_start, pieces);
}

Status PreTokenizer::AlignedPieces(const AlignedText& text, bool at_text_start,
                                   std::vector<AlignedText>& pieces) const {
  pieces.clear();
  if (text.empty()) return Status::Ok();
  if (single_ != Single::kNone || general_) return RunStepsOn(steps_, text, at_text_start, pieces);
  if (!fast_pattern_) {
    pieces.push_back(text);
    return Status::Ok();
  }
  const std::string_view all = text.text();
  auto gap = [&](size_t begin, size_t end) {
    if (!drop_matchless_text_ || !IsValidUtf8(all.substr(begin, end - begin))) {
      pieces.push_back(text.Slice(begin, end));
    }
  };
  size_t pos = 0;
  Match match;
  while (pos < all.size()) {
    FERRY_RETURN_IF_ERROR(fast_pattern_->Find(all, pos, &match));
    if (match.begin == std::string_view::npos) break;
    if (match.begin > pos) gap(pos, match.begin);
    pieces.push_back(text.Slice(match.begin, match.end));
    pos = match.end;
  }
  if (pos < all.size()) gap(pos, all.size());
  return Status::Ok();
}

std::string PreTokenizer::Canonical() const {
  std::string out = "pre_tokenizer[";
  auto pattern = [](const std::shared_ptr<const SplitPattern>& p) {
    if (!p) return std::string("none");
    return std::to_string(p->pattern().size()) + ":" + p->pattern() + "@unicode" +
           std::string(p->unicode_version());
  };
  if (steps_.empty() && fast_pattern_) return out + "split(" + pattern(fast_pattern_) + ")]";
  for (const PreTokenizerStep& step : steps_) {
    switch (step.kind) {
      case PreTokenizerStep::Kind::kSplit:
        out += "split(" + pattern(step.pattern) + "," + std::string(BehaviorName(step.behavior)) +
               ",invert=" + (step.invert ? "1" : "0") + ");";
        break;
      case PreTokenizerStep::Kind::kByteLevel:
        out += "byte_level(" + pattern(step.pattern) +
               ",prefix_space=" + (step.add_prefix_space ? "1" : "0") + ");";
        break;
      case PreTokenizerStep::Kind::kDigits:
        out += std::string("digits(individual=") + (step.individual_digits ? "1" : "0") + ");";
        break;
      case PreTokenizerStep::Kind::kPunctuation:
        out += "punctuation(" + std::string(BehaviorName(step.behavior)) + ");";
        break;
      case PreTokenizerStep::Kind::kMetaspace:
        out += "metaspace(" + std::to_string(step.replacement.size()) + ":" + step.replacement +
               ",prepend=" + std::to_string(static_cast<int>(step.prepend)) +
               ",split=" + (step.split ? "1" : "0") + ");";
        break;
      case PreTokenizerStep::Kind::kBert:
        out += "bert;";
        break;
      case PreTokenizerStep::Kind::kWhitespace:
        out += "whitespace;";
        break;
      case PreTokenizerStep::Kind::kWhitespaceSplit:
        out += "whitespace_split;";
        break;
    }
  }
  return out + "unicode" + std::string(Utf8procUnicodeVersion()) + "]";
}

}  // namespace ferry::text
