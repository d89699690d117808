#include "text/pre_tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>

#include "text/unicode.h"

namespace ferry::text {
namespace {

// A span of a piece and whether the step's pattern matched it.
struct Event {
  size_t begin, end;
  bool match;
};

// tokenizers' NormalizedString::split: turns match/non-match events into pieces.
void ApplyBehavior(std::string_view piece, const std::vector<Event>& events,
                   SplitBehavior behavior, std::vector<std::string>& out) {
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
    if (end > begin) out.emplace_back(piece.substr(begin, end - begin));
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

void Normalizer::Apply(std::string_view text, std::string& out) const {
  out.assign(text);
  std::string next;
  for (Form form : forms_) {
    int options = UTF8PROC_STABLE;
    switch (form) {
      case Form::kNFC: options |= UTF8PROC_COMPOSE; break;
      case Form::kNFD: options |= UTF8PROC_DECOMPOSE; break;
      case Form::kNFKC: options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
      case Form::kNFKD: options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    }
    next.clear();
    // Normalizes each valid UTF-8 run on its own; ASCII is the same in every form.
    size_t run = 0;
    bool ascii = true;
    auto flush = [&](size_t end) {
      std::string_view valid(out.data() + run, end - run);
      if (ascii || valid.empty()) {
        next += valid;
        return;
      }
      utf8proc_uint8_t* mapped = nullptr;
      utf8proc_ssize_t size =
          utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(valid.data()),
                       static_cast<utf8proc_ssize_t>(valid.size()), &mapped,
                       static_cast<utf8proc_option_t>(options));
      if (size >= 0) {
        next.append(reinterpret_cast<const char*>(mapped), static_cast<size_t>(size));
      } else {
        next += valid;  // cannot happen for valid UTF-8; keep the text rather than lose it
      }
      std::free(mapped);
    };
    for (size_t pos = 0; pos < out.size();) {
      char32_t cp;
      size_t length = DecodeUtf8(out, pos, cp);
      if (length == 0) {
        flush(pos);
        next += out[pos];
        run = ++pos;
        ascii = true;
        continue;
      }
      ascii = ascii && cp < 0x80;
      pos += length;
    }
    flush(out.size());
    out.swap(next);
  }
}

std::string Normalizer::Canonical() const {
  std::string out = "normalizer[";
  for (Form form : forms_) {
    switch (form) {
      case Form::kNFC: out += "nfc;"; break;
      case Form::kNFD: out += "nfd;"; break;
      case Form::kNFKC: out += "nfkc;"; break;
      case Form::kNFKD: out += "nfkd;"; break;
    }
  }
  return out + "]";
}

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

Status PreTokenizer::RunSteps(std::string_view text, std::vector<std::string>& pieces) const {
  pieces.clear();
  pieces.emplace_back(text);
  std::vector<std::string> next;
  std::vector<Event> events;
  bool mapped = false;  // pieces are in the byte-level spelling
  for (const PreTokenizerStep& step : steps_) {
    next.clear();
    for (std::string& piece : pieces) {
      switch (step.kind) {
        case PreTokenizerStep::Kind::kSplit:
          FERRY_RETURN_IF_ERROR(RegexEvents(*step.pattern, piece, step.invert, events));
          ApplyBehavior(piece, events, step.behavior, next);
          break;
        case PreTokenizerStep::Kind::kDigits:
          CharEvents(piece, IsNumeric, events);
          ApplyBehavior(piece, events,
                        step.individual_digits ? SplitBehavior::kIsolated
                                               : SplitBehavior::kContiguous,
                        next);
          break;
        case PreTokenizerStep::Kind::kPunctuation:
          CharEvents(piece, IsPunctuation, events);
          ApplyBehavior(piece, events, step.behavior, next);
          break;
        case PreTokenizerStep::Kind::kByteLevel: {
          if (step.add_prefix_space && piece[0] != ' ') piece.insert(0, 1, ' ');
          size_t first = next.size();
          if (step.pattern) {
            FERRY_RETURN_IF_ERROR(RegexEvents(*step.pattern, piece, false, events));
            ApplyBehavior(piece, events, SplitBehavior::kIsolated, next);
          } else {
            next.push_back(std::move(piece));
          }
          if (!mapped) {
            for (size_t i = first; i < next.size(); ++i) {
              std::string spelled;
              AppendByteLevel(next[i], spelled);
              next[i].swap(spelled);
            }
          }
          break;
        }
      }
    }
    if (step.kind == PreTokenizerStep::Kind::kByteLevel) mapped = true;
    pieces.swap(next);
  }
  if (mapped) {
    for (std::string& piece : pieces) {
      std::string bytes;
      if (!AppendFromByteLevel(piece, bytes)) {
        return Internal("pre-tokenizer produced a piece outside the byte-level alphabet");
      }
      piece.swap(bytes);
    }
  }
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
    }
  }
  return out + "unicode" + std::string(Utf8procUnicodeVersion()) + "]";
}

}  // namespace ferry::text
