#include "text/normalizers/normalizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <optional>

#include "text/unicode.h"

namespace ferry::text {

void AppendReplaced(std::string_view text, std::string_view from, std::string_view to, std::string& out) {
  size_t pos = 0;
  for (size_t hit; (hit = text.find(from, pos)) != std::string_view::npos; pos = hit + from.size()) {
    out.append(text.substr(pos, hit - pos));
    out += to;
  }
  out.append(text.substr(pos));
}

namespace {

utf8proc_category_t Category(char32_t cp) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(cp));
}

bool IsMark(char32_t cp) {
  auto c = Category(cp);
  return c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_MC || c == UTF8PROC_CATEGORY_ME;
}

// Calls each(true, cp, bytes) for every character of `text`, and each(false, ?, byte) for a byte
// that is not UTF-8 (which the steps copy).
template <typename Each>
void ForEachCharacter(std::string_view text, Each&& each) {
  for (size_t pos = 0; pos < text.size();) {
    char32_t cp = 0;
    size_t length = DecodeUtf8(text, pos, cp);
    bool valid = length != 0;
    if (!valid) length = 1;
    each(valid, cp, text.substr(pos, length));
    pos += length;
  }
}

// utf8proc over each valid UTF-8 run; bytes that are not UTF-8 are copied.
void Utf8procMap(std::string_view text, int options, std::string& out) {
  out.clear();
  size_t run = 0;
  bool ascii = true;  // ASCII is the same in every form
  auto flush = [&](size_t end) {
    std::string_view valid = text.substr(run, end - run);
    if (ascii || valid.empty()) {
      out += valid;
      return;
    }
    utf8proc_uint8_t* mapped = nullptr;
    utf8proc_ssize_t size = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(valid.data()),
                                         static_cast<utf8proc_ssize_t>(valid.size()), &mapped,
                                         static_cast<utf8proc_option_t>(options));
    if (size >= 0) {
      out.append(reinterpret_cast<const char*>(mapped), static_cast<size_t>(size));
    } else {
      out += valid;  // cannot happen for valid UTF-8; keep the text rather than lose it
    }
    std::free(mapped);
  };
  for (size_t pos = 0; pos < text.size();) {
    char32_t cp;
    size_t length = DecodeUtf8(text, pos, cp);
    if (length == 0) {
      flush(pos);
      out += text[pos];
      run = ++pos;
      ascii = true;
      continue;
    }
    ascii = ascii && cp < 0x80;
    pos += length;
  }
  flush(text.size());
}

bool IsAscii(std::string_view text) {
  for (char c : text) {
    if (static_cast<uint8_t>(c) >= 0x80) return false;
  }
  return true;
}

void AppendLowercase(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
  } else if (cp == 0x130) {
    out += "i\xCC\x87";  // the one unconditional multi-character lowercase mapping (SpecialCasing)
  } else {
    AppendUtf8(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))), out);
  }
}

// The tracked forms of the primitive operations tokenizers' normalizers are made of
// (NormalizedString's filter, map, lowercase, nfd...): each spells its changes as that method
// does, since the changes decide the offsets (text/alignment.h).

// Keeps the characters `keep(valid, cp)` accepts: each kept character replaces itself and
// removes the rejected ones after it; rejected ones before the first kept are removed first.
template <typename Keep>
void TrackFilter(AlignedText& text, Keep&& keep) {
  std::vector<Change> changes;
  size_t removed_first = 0;
  bool any_kept = false;
  for (const Change& c : text.Characters()) {
    const bool valid = c.character < kRawByte;
    if (keep(valid, c.character)) {
      changes.push_back(c);
      any_kept = true;
    } else if (any_kept) {
      --changes.back().change;
    } else {
      ++removed_first;
    }
  }
  text.Transform(changes, removed_first);
}

// Replaces each character (not raw bytes) by map(cp), one for one.
template <typename Map>
void TrackMap(AlignedText& text, Map&& map) {
  std::vector<Change> changes = text.Characters();
  for (Change& c : changes) {
    if (c.character < kRawByte) c.character = map(c.character);
  }
  text.Transform(changes, 0);
}

void TrackLowercase(AlignedText& text) {
  std::vector<Change> changes;
  for (const Change& c : text.Characters()) {
    if (c.character >= kRawByte) {
      changes.push_back(c);
      continue;
    }
    std::string lower;
    AppendLowercase(c.character, lower);
    bool first = true;
    for (size_t pos = 0; pos < lower.size();) {
      char32_t cp = 0;
      pos += DecodeUtf8(lower, pos, cp);
      changes.push_back({cp, first ? 0 : 1});
      first = false;
    }
  }
  text.Transform(changes, 0);
}

uint8_t CombiningClass(char32_t c) {
  if (c >= kRawByte) return 0;
  return static_cast<uint8_t>(utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->combining_class);
}

// The primary composite of `starter` + `next`, or 0 when they do not compose (utf8proc composes
// a decomposed buffer in place; two code points that compose leave one).
char32_t Compose(char32_t starter, char32_t next) {
  if (starter >= kRawByte || next >= kRawByte) return 0;
  utf8proc_int32_t pair[2] = {static_cast<utf8proc_int32_t>(starter),
                              static_cast<utf8proc_int32_t>(next)};
  const utf8proc_ssize_t length = utf8proc_normalize_utf32(
      pair, 2, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  return length == 1 ? static_cast<char32_t>(pair[0]) : 0;
}

// The changes of a canonical or compatible decomposition as unicode-normalization-alignments
// (the crate tokenizers uses) gives them: each character's first code point replaces it (0),
// the others are inserted (+1), and then every run of combining marks is sorted stably by
// combining class, the changes moving with their code points.
std::vector<Change> Decomposed(const AlignedText& text, bool compatible) {
  std::vector<Change> out;
  const int options = UTF8PROC_DECOMPOSE | (compatible ? UTF8PROC_COMPAT : 0);
  for (const Change& c : text.Characters()) {
    utf8proc_int32_t buffer[32];
    utf8proc_ssize_t n = c.character >= kRawByte ? -1
                         : utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c.character),
                                                   buffer, 32, static_cast<utf8proc_option_t>(options),
                                                   nullptr);
    if (n <= 0 || n > 32) {
      out.push_back(c);
      continue;
    }
    for (utf8proc_ssize_t i = 0; i < n; ++i) out.push_back({static_cast<char32_t>(buffer[i]), i == 0 ? 0 : 1});
  }
  for (size_t begin = 0; begin < out.size();) {
    if (CombiningClass(out[begin].character) == 0) {
      ++begin;
      continue;
    }
    size_t end = begin;
    while (end < out.size() && CombiningClass(out[end].character) != 0) ++end;
    std::stable_sort(out.begin() + static_cast<std::ptrdiff_t>(begin),
                     out.begin() + static_cast<std::ptrdiff_t>(end),
                     [](const Change& a, const Change& b) {
                       return CombiningClass(a.character) < CombiningClass(b.character);
                     });
    begin = end;
  }
  return out;
}

// The crate's recomposition over decomposed changes: a mark that composes with the starter
// before it (unblocked) folds into it, the composite's change adding the mark's less one.
std::vector<Change> Recomposed(const std::vector<Change>& decomposed) {
  std::vector<Change> out, blocked;
  std::optional<Change> starter;
  std::optional<uint8_t> last_class;
  for (const Change& c : decomposed) {
    const uint8_t cls = CombiningClass(c.character);
    if (!starter) {
      if (cls != 0) {
        out.push_back(c);
      } else {
        starter = c;
      }
      continue;
    }
    if (last_class && *last_class >= cls) {  // blocked from the starter
      if (cls == 0) {
        out.push_back(*starter);
        out.insert(out.end(), blocked.begin(), blocked.end());
        blocked.clear();
        starter = c;
        last_class.reset();
      } else {
        blocked.push_back(c);
        last_class = cls;
      }
      continue;
    }
    if (char32_t composite = Compose(starter->character, c.character)) {
      starter = Change{composite, starter->change + c.change - 1};
      continue;
    }
    if (!last_class && cls == 0) {
      out.push_back(*starter);
      starter = c;
      continue;
    }
    blocked.push_back(c);
    last_class = cls;
  }
  if (starter) out.push_back(*starter);
  out.insert(out.end(), blocked.begin(), blocked.end());
  return out;
}

void TrackUnicode(AlignedText& text, UnicodeForm form) {
  const bool compatible = form == UnicodeForm::kNFKC || form == UnicodeForm::kNFKD;
  std::vector<Change> changes = Decomposed(text, compatible);
  if (form == UnicodeForm::kNFC || form == UnicodeForm::kNFKC) changes = Recomposed(changes);
  text.Transform(changes, 0);
}

class UnicodeNormalizer final : public NormalizerStep {
 public:
  explicit UnicodeNormalizer(UnicodeForm form) : form_(form) {}
  void Apply(std::string_view text, std::string& out) const override {
    int options = UTF8PROC_STABLE;
    switch (form_) {
      case UnicodeForm::kNFC: options |= UTF8PROC_COMPOSE; break;
      case UnicodeForm::kNFD: options |= UTF8PROC_DECOMPOSE; break;
      case UnicodeForm::kNFKC: options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
      case UnicodeForm::kNFKD: options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    }
    Utf8procMap(text, options, out);
  }
  bool Track(AlignedText& text) const override {
    TrackUnicode(text, form_);
    return true;
  }
  std::string Canonical() const override {
    switch (form_) {
      case UnicodeForm::kNFC: return "nfc;";
      case UnicodeForm::kNFD: return "nfd;";
      case UnicodeForm::kNFKC: return "nfkc;";
      case UnicodeForm::kNFKD: return "nfkd;";
    }
    return "?";
  }

 private:
  UnicodeForm form_;
};

class Lowercase final : public NormalizerStep {
 public:
  void Apply(std::string_view text, std::string& out) const override {
    out.clear();
    ForEachCharacter(text, [&](bool valid, char32_t cp, std::string_view bytes) {
      if (valid) {
        AppendLowercase(cp, out);
      } else {
        out += bytes;
      }
    });
  }
  bool Track(AlignedText& text) const override {
    TrackLowercase(text);
    return true;
  }
  std::string Canonical() const override { return "lowercase;"; }
};

class StripAccents final : public NormalizerStep {
 public:
  void Apply(std::string_view text, std::string& out) const override {
    out.clear();
    ForEachCharacter(text, [&](bool valid, char32_t cp, std::string_view bytes) {
      if (!valid || !IsMark(cp)) out += bytes;
    });
  }
  bool Track(AlignedText& text) const override {
    TrackFilter(text, [](bool valid, char32_t cp) { return !valid || !IsMark(cp); });
    return true;
  }
  std::string Canonical() const override { return "strip_accents;"; }
};

bool IsNmtRemoved(char32_t cp) {
  return (cp >= 0x01 && cp <= 0x08) || cp == 0x0B || (cp >= 0x0E && cp <= 0x1F) || cp == 0x7F ||
         cp == 0x8F || cp == 0x9F;
}
bool IsNmtSpace(char32_t cp) {
  return cp == 0x09 || cp == 0x0A || cp == 0x0C || cp == 0x0D || cp == 0x1680 ||
         (cp >= 0x200B && cp <= 0x200F) || cp == 0x2028 || cp == 0x2029 || cp == 0x2581 ||
         cp == 0xFEFF || cp == 0xFFFD;
}

// SentencePiece's nmt_nfkc rules without the NFKC: ASCII control characters go, and the other
// characters sentencepiece treats as whitespace (U+2581 among them) become a space.
class Nmt final : public NormalizerStep {
 public:
  void Apply(std::string_view text, std::string& out) const override {
    out.clear();
    ForEachCharacter(text, [&](bool valid, char32_t cp, std::string_view bytes) {
      if (!valid) {
        out += bytes;
      } else if (IsNmtRemoved(cp)) {
        // removed
      } else if (IsNmtSpace(cp)) {
        out += ' ';
      } else {
        out += bytes;
      }
    });
  }
  // tokenizers' do_nmt: the filter, then the map.
  bool Track(AlignedText& text) const override {
    TrackFilter(text, [](bool valid, char32_t cp) { return !valid || !IsNmtRemoved(cp); });
    TrackMap(text, [](char32_t cp) { return IsNmtSpace(cp) ? U' ' : cp; });
    return true;
  }
  std::string Canonical() const override { return "nmt;"; }
};

class Strip final : public NormalizerStep {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  void Apply(std::string_view text, std::string& out) const override {
    auto [begin, end] = Kept(text);
    out.assign(text.substr(begin, end - begin));
  }
  // tokenizers' lrstrip: the leading whitespace removed before the first change, the trailing
  // never reached.
  bool Track(AlignedText& text) const override {
    auto [begin, end] = Kept(text.text());
    if (begin == 0 && end == text.text().size()) return true;
    const size_t leading = AlignedText::Original(text.text().substr(0, begin), 0).Characters().size();
    text.Transform(text.Slice(begin, end).Characters(), leading);
    return true;
  }
  std::string Canonical() const override {
    return std::string("strip(") + (left_ ? "1" : "0") + (right_ ? "1" : "0") + ");";
  }

 private:
  // The bytes [begin, end) left once the whitespace is stripped.
  std::pair<size_t, size_t> Kept(std::string_view text) const {
    size_t begin = 0, end = text.size();
    char32_t cp;
    while (left_ && begin < end) {
      size_t length = DecodeUtf8(text, begin, cp);
      if (length == 0 || !IsWhitespace(cp)) break;
      begin += length;
    }
    while (right_ && end > begin) {
      size_t start = end - 1;
      while (start > begin && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
      if (DecodeUtf8(text, start, cp) != end - start || !IsWhitespace(cp)) break;
      end = start;
    }
    return {begin, end};
  }

  bool left_, right_;
};

class Prepend final : public NormalizerStep {
 public:
  explicit Prepend(std::string prefix) : prefix_(std::move(prefix)) {}
  void Apply(std::string_view text, std::string& out) const override {
    out.clear();
    if (text.empty()) return;
    out += prefix_;
    out += text;
  }
  bool Track(AlignedText& text) const override {
    text.Prepend(prefix_);
    return true;
  }
  std::string Canonical() const override {
    return "prepend(" + std::to_string(prefix_.size()) + ":" + prefix_ + ");";
  }

 private:
  std::string prefix_;
};

class ReplaceLiteral final : public NormalizerStep {
 public:
  ReplaceLiteral(std::string literal, std::string content)
      : literal_(std::move(literal)), content_(std::move(content)) {}
  void Apply(std::string_view text, std::string& out) const override {
    out.clear();
    if (literal_.empty()) {
      out.assign(text);
      return;
    }
    AppendReplaced(text, literal_, content_, out);
  }
  bool Track(AlignedText& text) const override {
    if (literal_.empty()) return true;
    std::vector<std::pair<size_t, size_t>> matches;
    const std::string_view all = text.text();
    for (size_t hit = all.find(literal_); hit != std::string_view::npos;
         hit = all.find(literal_, hit + literal_.size())) {
      matches.emplace_back(hit, hit + literal_.size());
    }
    text.Replace(matches, content_);
    return true;
  }
  std::string Canonical() const override {
    return "replace(string," + std::to_string(literal_.size()) + ":" + literal_ + "," +
           std::to_string(content_.size()) + ":" + content_ + ");";
  }

 private:
  std::string literal_, content_;
};

class ReplaceRegex final : public NormalizerStep {
 public:
  ReplaceRegex(std::shared_ptr<const SplitPattern> pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void Apply(std::string_view text, std::string& out) const override {
    out.clear();
    size_t pos = 0;
    Match match;
    // Find fails only on engine resource limits; the rest of the text is then kept as it is.
    while (pos < text.size() && pattern_->Find(text, pos, &match).ok() &&
           match.begin != std::string_view::npos) {
      out.append(text.substr(pos, match.begin - pos));
      out += content_;
      pos = match.end;
    }
    if (pos < text.size()) out.append(text.substr(pos));
  }
  bool Track(AlignedText& text) const override {
    std::vector<std::pair<size_t, size_t>> matches;
    const std::string_view all = text.text();
    size_t pos = 0;
    Match match;
    while (pos < all.size() && pattern_->Find(all, pos, &match).ok() &&
           match.begin != std::string_view::npos) {
      matches.emplace_back(match.begin, match.end);
      pos = match.end;
    }
    text.Replace(matches, content_);
    return true;
  }
  std::string Canonical() const override {
    const std::string& p = pattern_->pattern();
    return "replace(regex," + std::to_string(p.size()) + ":" + p + "@unicode" +
           std::string(pattern_->unicode_version()) + "," + std::to_string(content_.size()) + ":" +
           content_ + ");";
  }

 private:
  std::shared_ptr<const SplitPattern> pattern_;
  std::string content_;
};

bool IsChineseCharacter(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B81F) ||
         (cp >= 0x2B920 && cp <= 0x2CEAF) || (cp >= 0xF900 && cp <= 0xFAFF) ||
         (cp >= 0x2F800 && cp <= 0x2FA1F);
}

class BertNormalizer final : public NormalizerStep {
 public:
  explicit BertNormalizer(BertNormalizerOptions options) : options_(options) {}
  void Apply(std::string_view text, std::string& out) const override {
    if (IsAscii(text)) return ApplyAscii(text, out);
    std::string cleaned;
    ForEachCharacter(text, [&](bool valid, char32_t cp, std::string_view bytes) {
      if (!valid) {
        cleaned += bytes;
        return;
      }
      if (options_.clean_text) {
        if (cp == 0 || cp == 0xFFFD || IsBertControl(cp)) return;
        if (IsWhitespace(cp)) {
          cleaned += ' ';
          return;
        }
      }
      if (options_.handle_chinese_chars && IsChineseCharacter(cp)) {
        cleaned += ' ';
        cleaned += bytes;
        cleaned += ' ';
        return;
      }
      cleaned += bytes;
    });
    if (options_.strip_accents) {
      std::string decomposed;
      Utf8procMap(cleaned, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE, decomposed);
      cleaned.clear();
      ForEachCharacter(decomposed, [&](bool valid, char32_t cp, std::string_view bytes) {
        if (!valid || !IsBertNonspacingMark(cp)) cleaned += bytes;
      });
    }
    if (!options_.lowercase) {
      out.swap(cleaned);
      return;
    }
    out.clear();
    ForEachCharacter(cleaned, [&](bool valid, char32_t cp, std::string_view bytes) {
      if (valid) {
        AppendLowercase(cp, out);
      } else {
        out += bytes;
      }
    });
  }
  // ASCII has no accents and no CJK, and NFD leaves it as it is: one pass, the same result.
  void ApplyAscii(std::string_view text, std::string& out) const {
    out.clear();
    out.reserve(text.size());
    for (char c : text) {
      if (options_.clean_text && (static_cast<uint8_t>(c) < 0x20 || c == 0x7F)) {
        if (c == '\t' || c == '\n' || c == '\r') out += ' ';  // whitespace; other controls go
        continue;
      }
      out += options_.lowercase && c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
    }
  }

  // tokenizers' order: clean (a filter, then a map), Chinese characters (each replaced by a
  // space, then itself and a space inserted: all three take its span), NFD and a filter of the
  // nonspacing marks, lowercase.
  bool Track(AlignedText& text) const override {
    if (options_.clean_text) {
      TrackFilter(text, [](bool valid, char32_t cp) {
        return !valid || !(cp == 0 || cp == 0xFFFD || IsBertControl(cp));
      });
      TrackMap(text, [](char32_t cp) { return IsWhitespace(cp) ? U' ' : cp; });
    }
    if (options_.handle_chinese_chars) {
      std::vector<Change> changes;
      for (const Change& c : text.Characters()) {
        if (c.character < kRawByte && IsChineseCharacter(c.character)) {
          changes.insert(changes.end(), {{U' ', 0}, {c.character, 1}, {U' ', 1}});
        } else {
          changes.push_back(c);
        }
      }
      text.Transform(changes, 0);
    }
    if (options_.strip_accents) {
      TrackUnicode(text, UnicodeForm::kNFD);
      TrackFilter(text, [](bool valid, char32_t cp) { return !valid || !IsBertNonspacingMark(cp); });
    }
    if (options_.lowercase) TrackLowercase(text);
    return true;
  }

  std::string Canonical() const override {
    return std::string("bert(clean=") + (options_.clean_text ? "1" : "0") +
           ",chinese=" + (options_.handle_chinese_chars ? "1" : "0") +
           ",strip_accents=" + (options_.strip_accents ? "1" : "0") +
           ",lowercase=" + (options_.lowercase ? "1" : "0") + ");";
  }

 private:
  BertNormalizerOptions options_;
};

}  // namespace

void Normalizer::Apply(std::string_view text, std::string& out) const {
  if (steps_.empty()) {
    out.assign(text);
    return;
  }
  std::string next;
  steps_[0]->Apply(text, out);
  for (size_t i = 1; i < steps_.size(); ++i) {
    steps_[i]->Apply(out, next);
    out.swap(next);
  }
}

Status Normalizer::Track(AlignedText& text) const {
  for (const auto& step : steps_) {
    if (!step->Track(text)) {
      return Unsupported("offsets: the normalizer " + step->Canonical() +
                         " does not track where its output comes from yet, so ferry cannot give "
                         "offsets or word ids through it (ids are unaffected)");
    }
  }
  return Status::Ok();
}

std::string Normalizer::Canonical() const {
  std::string out = "normalizer[";
  for (const auto& step : steps_) out += step->Canonical();
  return out + "]";
}

std::shared_ptr<const NormalizerStep> MakeUnicodeNormalizer(UnicodeForm form) {
  return std::make_shared<UnicodeNormalizer>(form);
}
std::shared_ptr<const NormalizerStep> MakeLowercase() { return std::make_shared<Lowercase>(); }
std::shared_ptr<const NormalizerStep> MakeStripAccents() { return std::make_shared<StripAccents>(); }
std::shared_ptr<const NormalizerStep> MakeNmt() { return std::make_shared<Nmt>(); }
std::shared_ptr<const NormalizerStep> MakeStrip(bool left, bool right) {
  return std::make_shared<Strip>(left, right);
}
std::shared_ptr<const NormalizerStep> MakePrepend(std::string prefix) {
  return std::make_shared<Prepend>(std::move(prefix));
}
std::shared_ptr<const NormalizerStep> MakeReplace(std::shared_ptr<const SplitPattern> pattern,
                                                  std::string content) {
  return std::make_shared<ReplaceRegex>(std::move(pattern), std::move(content));
}
std::shared_ptr<const NormalizerStep> MakeReplaceLiteral(std::string literal, std::string content) {
  return std::make_shared<ReplaceLiteral>(std::move(literal), std::move(content));
}
std::shared_ptr<const NormalizerStep> MakeBertNormalizer(BertNormalizerOptions options) {
  return std::make_shared<BertNormalizer>(options);
}

}  // namespace ferry::text
