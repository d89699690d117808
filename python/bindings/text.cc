// ferry._core.Tokenizer: the C++ tokenizer for python/ferry/text.py.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdio>
#include <functional>
#include <limits>
#include <mutex>
#include <memory>
#include <unordered_map>
#include <string>
#include <vector>

#include "bindings/bindings.h"
#include "bindings/errors.h"
#include "ferry/io.h"
#include "ferry/text.h"

namespace nb = nanobind;

namespace ferry::python {
namespace {

using text::TokenId;
using text::Tokenizer;
using IdArray = nb::ndarray<nb::numpy, uint32_t, nb::ndim<1>, nb::c_contig>;
using text::Encoding;


// UTF-8 of a str or the bytes of a bytes object. A str with surrogates is first repaired as
// tiktoken does (through UTF-16 with surrogatepass: a high/low pair becomes its character, a lone
// one U+FFFD). `keep` holds a reference to whatever the view points into, so it stays valid
// while `keep` lives even if the caller drops the text (e.g. another thread clears its list
// while the GIL is released).
// With `refuse_surrogates` (the tokenizers API, whose offsets index the caller's str: a repaired
// one has other indices) such a str is refused as tokenizers refuses it, naming where.
std::string_view TextOf(nb::handle text, nb::object& keep, bool refuse_surrogates = false) {
  if (PyUnicode_Check(text.ptr())) {
    keep = nb::borrow(text);
    Py_ssize_t size = 0;
    const char* data = PyUnicode_AsUTF8AndSize(text.ptr(), &size);
    if (!data) {
      PyErr_Clear();
      if (refuse_surrogates) {
        const Py_ssize_t length = PyUnicode_GET_LENGTH(text.ptr());
        for (Py_ssize_t i = 0; i < length; ++i) {
          Py_UCS4 c = PyUnicode_READ_CHAR(text.ptr(), i);
          if (c >= 0xD800 && c <= 0xDFFF) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "%04X", static_cast<unsigned>(c));
            throw StatusError(InvalidArgument(
                "the text has a surrogate (U+" + std::string(hex) + ") at index " + std::to_string(i) +
                ", which is not Unicode text (tokenizers refuses it too); repair it first, e.g. "
                "text.encode('utf-16', 'surrogatepass').decode('utf-16', 'replace')"));
          }
        }
      }
      nb::object utf16 = nb::steal(PyUnicode_AsEncodedString(text.ptr(), "utf-16-le", "surrogatepass"));
      if (!utf16.is_valid()) throw nb::python_error();
      keep = nb::steal(PyUnicode_DecodeUTF16(PyBytes_AS_STRING(utf16.ptr()),
                                             PyBytes_GET_SIZE(utf16.ptr()), "replace", nullptr));
      if (!keep.is_valid()) throw nb::python_error();
      data = PyUnicode_AsUTF8AndSize(keep.ptr(), &size);
      if (!data) throw nb::python_error();
    }
    return {data, static_cast<size_t>(size)};
  }
  if (PyBytes_Check(text.ptr())) {
    keep = nb::borrow(text);
    return {PyBytes_AS_STRING(text.ptr()), static_cast<size_t>(PyBytes_GET_SIZE(text.ptr()))};
  }
  throw nb::type_error("expected str or bytes");
}

// A Python int for every id of a vocabulary, made once: a list of ids is then built with a
// reference-count increment per id instead of an int allocation, which costs as much as the
// encoding itself. REQUIRES the GIL for every call, construction and destruction included.
class IdObjects {
 public:
  explicit IdObjects(size_t count) {
    objects_.reserve(count);
    for (size_t id = 0; id < count; ++id) {
      PyObject* object = PyLong_FromSize_t(id);
      if (!object) throw nb::python_error();
      objects_.push_back(object);
    }
  }
  ~IdObjects() {
    for (PyObject* object : objects_) Py_DECREF(object);
  }
  IdObjects(const IdObjects&) = delete;
  IdObjects& operator=(const IdObjects&) = delete;

  // A new reference to the int `value`: the table's object when it has one.
  PyObject* Int(uint64_t value) const {
    return value < objects_.size() ? Py_NewRef(objects_[value]) : PyLong_FromUnsignedLongLong(value);
  }

  nb::list List(const std::vector<TokenId>& ids) const {
    PyObject* list = PyList_New(static_cast<Py_ssize_t>(ids.size()));
    if (!list) throw nb::python_error();
    for (size_t i = 0; i < ids.size(); ++i) {
      PyObject* object = Int(ids[i]);
      if (!object) {
        Py_DECREF(list);
        throw nb::python_error();
      }
      PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), object);
    }
    return nb::steal<nb::list>(list);
  }

 private:
  std::vector<PyObject*> objects_;
};

// A numpy uint32 array that owns the vector's memory (no copy).
IdArray ToArray(std::vector<TokenId>&& ids) {
  size_t n = ids.size();
  return OwnedArray<IdArray>(std::move(ids), {n});
}

std::vector<TokenId> IdsOf(nb::handle ids) {
  std::vector<TokenId> out;
  // A uint32 array as it is; any other array goes through the checked per-item path below
  // (no silent casts of int64, negative or float ids).
  if (nb::ndarray<uint32_t, nb::ndim<1>, nb::device::cpu> array;
      nb::try_cast(ids, array, /*convert=*/false) && array.stride(0) == 1) {
    const uint32_t* data = array.data();
    out.assign(data, data + array.shape(0));
    return out;
  }
  for (nb::handle item : ids) {
    nb::object index = nb::steal(PyNumber_Index(item.ptr()));  // ints and numpy integers; a float is a TypeError
    if (!index.is_valid()) throw nb::python_error();
    long long value = PyLong_AsLongLong(index.ptr());
    if (value == -1 && PyErr_Occurred()) throw nb::python_error();
    if (value < 0 || value > 0xFFFFFFFFll) {
      throw StatusError(OutOfRange("id " + std::to_string(value) + " is not a token id"));
    }
    out.push_back(static_cast<TokenId>(value));
  }
  return out;
}

nb::str Utf8Lossy(const std::string& bytes) {
  PyObject* s = PyUnicode_DecodeUTF8(bytes.data(), static_cast<Py_ssize_t>(bytes.size()), "replace");
  if (!s) throw nb::python_error();
  return nb::steal<nb::str>(s);
}

template <typename T>
nb::list IntList(const std::vector<T>& values) {
  nb::list out;
  for (T value : values) out.append(value);
  return out;
}

text::EncodeInput InputOf(nb::handle item, bool pretokenized, std::vector<nb::object>& keep,
                          size_t index);

// How to compute an Encoding's alignment (offsets, word ids) when it is first asked for: the
// encode that made it, run again on the offsets path, then the edits made since (pad, truncate,
// a window taken from overflowing, a merge). The ids path pays only for holding the input.
// Holds Python objects: made, computed and destroyed with the GIL held.
struct EncodeSettings {  // one per encode call, shared by its Encodings
  std::shared_ptr<const Tokenizer> tokenizer;
  bool pretokenized = false;
  text::EncodeOptions options;
  std::optional<text::TruncationOptions> truncation;
  std::optional<text::PaddingOptions> padding;
};

// The offsets pass of one encode_batch call, run for the whole batch on the call's threads the
// first time any of its Encodings is asked for offsets: each alone would run one after another on
// one core, in the thread that reads them. Holds Python objects: made and destroyed with the GIL
// held; Get may be called from any Python thread.
struct BatchAlignment {
  std::shared_ptr<const EncodeSettings> settings;  // padding as the batch was padded
  std::vector<nb::object> inputs;                  // each item, frozen
  int threads = 0;

  Encoding Get(size_t index) {
    {
      GilReleased release;  // (a thread computing holds the mutex without the GIL)
      std::lock_guard lock(mutex_);
      if (computed_) return aligned_[index];
    }
    std::vector<nb::object> keep;  // the inputs' text, viewed while the GIL is released below
    std::vector<text::EncodeInput> encode_inputs;
    for (size_t i = 0; i < inputs.size(); ++i) {
      encode_inputs.push_back(InputOf(inputs[i], settings->pretokenized, keep, i));
    }
    text::EncodeOptions options = settings->options;
    options.offsets = text::EncodeOptions::Offsets::kCharacters;
    GilReleased release;
    std::lock_guard lock(mutex_);
    if (!computed_) {
      ThrowIfError(settings->tokenizer->EncodeEncodingBatch(
          encode_inputs, options, settings->truncation ? &*settings->truncation : nullptr,
          settings->padding ? &*settings->padding : nullptr, threads, aligned_));
      computed_ = true;
    }
    return aligned_[index];
  }

 private:
  std::mutex mutex_;
  bool computed_ = false;
  std::vector<Encoding> aligned_;
};

struct AlignmentSource {
  enum class Kind { kEncode, kEdit, kMerge, kValue };
  Kind kind = Kind::kEncode;
  // kEncode: item `index` of `batch`, or `input` encoded alone as `settings` say
  std::shared_ptr<BatchAlignment> batch;
  size_t index = 0;
  std::shared_ptr<const EncodeSettings> settings;
  nb::object input;
  // kEdit: `edit` applied to what `base` computes
  std::shared_ptr<const AlignmentSource> base;
  std::function<Status(Encoding&)> edit;
  // kMerge
  std::vector<std::shared_ptr<const AlignmentSource>> parts;
  bool growing_offsets = false;
  // kValue: an Encoding that has its alignment already
  std::shared_ptr<const Encoding> value;

  Encoding Compute() const {
    switch (kind) {
      case Kind::kValue:
        return *value;
      case Kind::kEdit: {
        Encoding out = base->Compute();
        ThrowIfError(edit(out));
        return out;
      }
      case Kind::kMerge: {
        Encoding out;
        out.has_alignment = true;
        for (const auto& part : parts) text::MergeWith(out, part->Compute(), growing_offsets);
        return out;
      }
      case Kind::kEncode:
        break;
    }
    if (batch) return batch->Get(index);
    const EncodeSettings& s = *settings;
    std::vector<nb::object> keep;
    text::EncodeInput encode_input = InputOf(input, s.pretokenized, keep, SIZE_MAX);
    text::EncodeOptions aligned = s.options;
    aligned.offsets = text::EncodeOptions::Offsets::kCharacters;
    Encoding out;
    GilReleased release;
    ThrowIfError(s.tokenizer->EncodeEncoding(encode_input, aligned, s.truncation ? &*s.truncation : nullptr,
                                             s.padding ? &*s.padding : nullptr, out));
    return out;
  }
};

// The input as an immutable value (lists become tuples), so that changing a list after the
// encode cannot change what the alignment is computed from.
nb::object Frozen(nb::handle input) {
  if (!PyList_Check(input.ptr()) && !PyTuple_Check(input.ptr())) return nb::borrow(input);
  nb::list items;
  for (nb::handle item : input) items.append(Frozen(item));
  return nb::tuple(items);
}

// An integer argument of an Encoding map, pad or truncate (a Python int or anything with
// __index__): a negative one raises OverflowError, as tokenizers' unsigned arguments do, and
// anything else TypeError, each naming the argument instead of nanobind listing the overloads.
// Past 2**64 - 1 it clamps: every such index or length is out of range anyway.
uint64_t NonNegativeArg(nb::handle value, const char* name) {
  nb::object index = nb::steal(PyNumber_Index(value.ptr()));
  if (!index.is_valid()) {
    PyErr_Clear();
    throw nb::type_error((std::string(name) + ": expected an int, got " +
                          nb::type_name(value.type()).c_str()).c_str());
  }
  int overflow = 0;
  long long small = PyLong_AsLongLongAndOverflow(index.ptr(), &overflow);
  if (overflow < 0 || (overflow == 0 && small < 0)) {
    PyErr_Format(PyExc_OverflowError, "%s %S: expected an int >= 0", name, index.ptr());
    throw nb::python_error();
  }
  if (overflow == 0) return static_cast<uint64_t>(small);
  unsigned long long large = PyLong_AsUnsignedLongLong(index.ptr());
  if (large == static_cast<unsigned long long>(-1) && PyErr_Occurred()) PyErr_Clear();
  return large;
}
// The same for an index held in 32 bits (a word or a sequence).
uint32_t IndexArg(nb::handle value, const char* name) {
  return static_cast<uint32_t>(std::min<uint64_t>(NonNegativeArg(value, name), std::numeric_limits<uint32_t>::max()));
}

std::shared_ptr<const AlignmentSource> Edited(std::shared_ptr<const AlignmentSource> base,
                                              std::function<Status(Encoding&)> edit) {
  if (!base) return nullptr;
  auto out = std::make_shared<AlignmentSource>();
  out->kind = AlignmentSource::Kind::kEdit;
  out->base = std::move(base);
  out->edit = std::move(edit);
  return out;
}

// ferry.Encoding: tokenizers' Encoding over the C++ value. Attributes become Python objects only
// when read, so code that reads .ids pays for nothing else; the alignment is computed on the
// first read of offsets, word ids or a map between them (AlignmentSource). pad and truncate change this object
// as in tokenizers, by replacing its value with a changed copy: an Encoding that shares the value
// (an overflowing window and its parent) is untouched, as tokenizers' are clones.
struct PyEncoding {
  std::shared_ptr<const Encoding> encoding;  // overflowing windows alias their parent's
  std::shared_ptr<const Tokenizer> tokenizer;  // null only for Encoding.merge([]), which is empty
  std::shared_ptr<IdObjects> id_objects;  // the tokenizer's table, when it has one
  std::shared_ptr<const AlignmentSource> alignment;  // null: has it, or cannot have it

  // The encoding with its alignment, computed now if need be; its ids must be these (a free
  // self-check of the offsets path).
  const Encoding& Aligned(std::string_view what) {
    if (encoding->has_alignment) return *encoding;
    if (!alignment) {
      throw StatusError(Unsupported("Encoding." + std::string(what) +
                                    ": this Encoding has no offsets and word ids, and ferry cannot "
                                    "compute them (its tokenizer cannot, or it was unpickled or "
                                    "merged from Encodings that had none)"));
    }
    Encoding aligned = alignment->Compute();
    if (aligned.ids != encoding->ids) {
      throw StatusError(Internal("Encoding." + std::string(what) +
                                 ": the offsets pass gave other ids than the encode (a ferry bug)"));
    }
    encoding = std::make_shared<const Encoding>(std::move(aligned));
    alignment = nullptr;
    return *encoding;
  }
  // Built with the C API and the tokenizer's table of small ints: read for every token of a
  // batch, nanobind's per-item casts cost more than the offsets pass itself.
  nb::list Offsets() {
    const auto& offsets = Aligned("offsets").offsets;
    nb::list out = nb::steal<nb::list>(PyList_New(static_cast<Py_ssize_t>(offsets.size())));
    if (!out.is_valid()) throw nb::python_error();
    for (size_t i = 0; i < offsets.size(); ++i) {
      PyObject* pair = PyTuple_New(2);
      if (!pair) throw nb::python_error();
      PyList_SET_ITEM(out.ptr(), static_cast<Py_ssize_t>(i), pair);  // `out` owns it from here
      for (int side : {0, 1}) {
        PyObject* position = IntObject(side == 0 ? offsets[i].first : offsets[i].second);
        if (!position) throw nb::python_error();
        PyTuple_SET_ITEM(pair, side, position);
      }
    }
    return out;
  }
  nb::list WordIds(std::string_view what) {
    const auto& words = Aligned(what).words;
    nb::list out = nb::steal<nb::list>(PyList_New(static_cast<Py_ssize_t>(words.size())));
    if (!out.is_valid()) throw nb::python_error();
    for (size_t i = 0; i < words.size(); ++i) {
      PyObject* word = words[i] < 0 ? Py_NewRef(Py_None) : IntObject(static_cast<uint64_t>(words[i]));
      if (!word) throw nb::python_error();
      PyList_SET_ITEM(out.ptr(), static_cast<Py_ssize_t>(i), word);
    }
    return out;
  }
  PyObject* IntObject(uint64_t value) const {
    return id_objects ? id_objects->Int(value) : PyLong_FromUnsignedLongLong(value);
  }
  // Replaces the value by an edited copy, and remembers the edit for the alignment to come.
  void Edit(const std::function<Status(Encoding&)>& edit) {
    Encoding edited = *encoding;
    ThrowIfError(edit(edited));
    encoding = std::make_shared<const Encoding>(std::move(edited));
    if (!encoding->has_alignment) alignment = Edited(alignment, edit);
  }

  nb::list Ids() const {
    if (id_objects) return id_objects->List(encoding->ids);
    return IntList(encoding->ids);
  }
  nb::list Tokens() const {
    nb::list out;
    for (const std::string& token : TokensOf(*encoding, tokenizer.get())) out.append(Utf8Lossy(token));
    return out;
  }
  // Each id's token: the tokenizer's spelling, or (none: unpickled, or Encoding.merge([])) the
  // one the Encoding holds.
  static std::vector<std::string> TokensOf(const Encoding& e, const Tokenizer* tokenizer) {
    if (tokenizer) return tokenizer->Tokens(e);
    std::vector<std::string> out(e.size());
    for (size_t i = 0; i < e.token_text.size() && i < out.size(); ++i) {
      if (e.token_text[i] >= 0) out[i] = e.token_texts[e.token_text[i]];
    }
    return out;
  }

  // Pickling: the value, its alignment (computed now where the tokenizer can) and each id's token
  // spelled out, so that an unpickled Encoding needs no tokenizer, as tokenizers' own pickles.
  nb::tuple State() {
    if (!encoding->has_alignment && alignment) {
      try {
        Aligned("__getstate__");
      } catch (const StatusError& e) {
        if (e.status().code() != StatusCode::kUnsupported) throw;  // pickled without offsets
      }
    }
    return StateOf(*encoding, tokenizer.get());
  }
  static nb::tuple StateOf(const Encoding& e, const Tokenizer* tokenizer) {
    nb::list ranges, tokens, overflowing;
    for (const Encoding::Range& r : e.sequence_ranges) ranges.append(nb::make_tuple(r.sequence, r.begin, r.end));
    for (const std::string& token : TokensOf(e, tokenizer)) tokens.append(nb::bytes(token.data(), token.size()));
    for (const Encoding& window : e.overflowing) overflowing.append(StateOf(window, tokenizer));
    return nb::make_tuple(kStateVersion, e.ids, e.type_ids, e.special_tokens_mask, e.attention_mask, ranges, tokens,
                          e.has_alignment, e.offsets, e.words, overflowing);
  }
  static Encoding FromState(nb::handle state) {
    auto bad = [](const std::string& what) {
      return StatusError(InvalidArgument("Encoding.__setstate__: not a ferry Encoding's pickle (" + what + ")"));
    };
    if (!PyTuple_Check(state.ptr()) || nb::len(state) != 11 || !nb::isinstance<nb::int_>(state[0]) ||
        nb::cast<int>(state[0]) != kStateVersion) {
      throw bad("expected a tuple of 11 starting with version " + std::to_string(kStateVersion));
    }
    Encoding e;
    try {
      e.ids = nb::cast<std::vector<TokenId>>(state[1]);
      e.type_ids = nb::cast<std::vector<uint32_t>>(state[2]);
      e.special_tokens_mask = nb::cast<std::vector<uint8_t>>(state[3]);
      e.attention_mask = nb::cast<std::vector<uint8_t>>(state[4]);
      for (nb::handle r : state[5]) {
        auto [sequence, begin, end] = nb::cast<std::tuple<uint32_t, size_t, size_t>>(r);
        if (begin > end || end > e.ids.size()) throw bad("a sequence range outside the ids");
        e.sequence_ranges.push_back({sequence, begin, end});
      }
      for (nb::handle token : state[6]) {  // bytes: a token may hold part of a character
        if (!PyBytes_Check(token.ptr())) throw bad("a token that is not bytes");
        e.token_text.push_back(static_cast<int32_t>(e.token_texts.size()));
        e.token_texts.emplace_back(PyBytes_AS_STRING(token.ptr()), PyBytes_GET_SIZE(token.ptr()));
      }
      e.has_alignment = nb::cast<bool>(state[7]);
      e.offsets = nb::cast<std::vector<std::pair<uint32_t, uint32_t>>>(state[8]);
      e.words = nb::cast<std::vector<int32_t>>(state[9]);
      for (nb::handle window : state[10]) e.overflowing.push_back(FromState(window));
    } catch (const nb::cast_error&) {
      throw bad("a field of the wrong type");
    }
    const size_t n = e.ids.size();
    const size_t aligned = e.has_alignment ? n : 0;
    if (e.type_ids.size() != n || e.special_tokens_mask.size() != n || e.attention_mask.size() != n ||
        e.token_text.size() != n || e.offsets.size() != aligned || e.words.size() != aligned) {
      throw bad("fields of different lengths");
    }
    return e;
  }
  static constexpr int kStateVersion = 1;
  nb::list SequenceIds() const {
    nb::list out;
    for (int32_t sequence : encoding->sequence_ids()) {
      out.append(sequence < 0 ? nb::none() : nb::cast(sequence));
    }
    return out;
  }
  void Pad(size_t length, const std::string& direction, TokenId pad_id, uint32_t pad_type_id,
           const std::string& pad_token) {
    if (length > std::numeric_limits<uint32_t>::max()) {
      throw StatusError(OutOfRange("Encoding.pad: length " + std::to_string(length) +
                                   " is more ids than an Encoding can hold (at most 2**32 - 1)"));
    }
    text::PaddingOptions padding;
    padding.length = length;
    padding.left = LeftOf(direction, "padding");
    padding.pad_id = pad_id;
    padding.pad_type_id = pad_type_id;
    padding.pad_token = pad_token;
    if (length == 0) return;
    Edit([padding](Encoding& e) {
      text::PadEncodings(std::span<Encoding>(&e, 1), padding);
      return Status::Ok();
    });
  }
  void Truncate(size_t max_length, size_t stride, const std::string& direction) {
    const bool left = LeftOf(direction, "truncation");
    Edit([=](Encoding& e) { return text::Truncate(e, max_length, stride, left); });
  }
  // tokenizers' "right"/"left", with its error for anything else.
  static bool LeftOf(const std::string& direction, const char* what) {
    if (direction == "left") return true;
    if (direction == "right") return false;
    throw StatusError(InvalidArgument(std::string(what) + " direction: expected \"right\" or \"left\", got \"" +
                                      direction + "\""));
  }
  nb::list Overflowing() const {
    nb::list out;
    for (size_t i = 0; i < encoding->overflowing.size(); ++i) {
      auto window = Edited(alignment, [i](Encoding& e) {
        Encoding taken = std::move(e.overflowing.at(i));
        e = std::move(taken);
        return Status::Ok();
      });
      out.append(PyEncoding{std::shared_ptr<const Encoding>(encoding, &encoding->overflowing[i]),
                            tokenizer, id_objects, std::move(window)});
    }
    return out;
  }
};

// The tokenizer plus what it was built from, so it pickles by content.
struct PyTokenizer {
  std::shared_ptr<const Tokenizer> tokenizer;
  std::string format;  // "tokenizer.json", "tiktoken" or "sentencepiece"
  std::string source;  // the file's bytes
  text::TiktokenOptions tiktoken;
  std::shared_ptr<IdObjects> id_objects;  // made on the first encode that returns a list

  nb::list ToList(const std::vector<TokenId>& ids) {
    // A local reference: building the table runs Python code (allocation may run the GC, which
    // may switch threads), so another thread may install its own table meanwhile.
    return IdTable()->List(ids);
  }

  static PyTokenizer FromJsonText(std::string source, std::string origin) {
    PyTokenizer out;
    {
      GilReleased release;
      out.tokenizer = Unwrap(Tokenizer::FromJson(source, origin));
    }
    out.format = "tokenizer.json";
    out.source = std::move(source);
    return out;
  }

  static PyTokenizer FromRanksText(std::string source, std::string origin,
                                   text::TiktokenOptions options) {
    PyTokenizer out;
    {
      GilReleased release;
      out.tokenizer = Unwrap(Tokenizer::FromTiktokenRanks(source, origin, options));
    }
    out.format = "tiktoken";
    out.source = std::move(source);
    out.tiktoken = std::move(options);
    return out;
  }

  static PyTokenizer FromSentencePieceBytes(std::string source, std::string origin) {
    PyTokenizer out;
    {
      GilReleased release;
      out.tokenizer = Unwrap(Tokenizer::FromSentencePieceProto(source, origin));
    }
    out.format = "sentencepiece";
    out.source = std::move(source);
    return out;
  }

  static std::string Read(const std::string& uri, uint64_t max_bytes) {
    BlockingCall blocking;
    return Unwrap(io::ReadSmallObject(uri, max_bytes));
  }

  std::vector<TokenId> EncodeIds(nb::handle text, const text::EncodeOptions& options) const {
    nb::object keep;
    std::string_view view = TextOf(text, keep);
    std::vector<TokenId> ids;
    {
      GilReleased release;
      ThrowIfError(tokenizer->Encode(view, options, ids));
    }
    return ids;
  }

  std::vector<std::vector<TokenId>> EncodeMany(nb::handle texts, const text::EncodeOptions& options,
                                               int threads) const {
    std::vector<nb::object> keep;
    std::vector<std::string_view> views;
    for (nb::handle item : texts) {
      if (!PyUnicode_Check(item.ptr()) && !PyBytes_Check(item.ptr())) {
        throw nb::type_error(("batch item " + std::to_string(views.size()) +
                              ": expected str or bytes, got " +
                              std::string(nb::type_name(item.type()).c_str())).c_str());
      }
      keep.emplace_back();
      views.push_back(TextOf(item, keep.back()));
    }
    std::vector<std::vector<TokenId>> out;
    {
      GilReleased release;
      ThrowIfError(tokenizer->EncodeBatch(views, options, threads, out));
    }
    return out;
  }

  std::shared_ptr<IdObjects> IdTable() {
    std::shared_ptr<IdObjects> objects = id_objects;
    if (!objects) id_objects = objects = std::make_shared<IdObjects>(tokenizer->vocab_size());
    return objects;
  }

  // `alignment`: how to compute the encoding's alignment later (null: it has it).
  PyEncoding Wrap(Encoding&& encoding, std::shared_ptr<const AlignmentSource> alignment) {
    return PyEncoding{std::make_shared<const Encoding>(std::move(encoding)), tokenizer, IdTable(),
                      std::move(alignment)};
  }

  std::shared_ptr<const EncodeSettings> SettingsOf(bool pretokenized, const text::EncodeOptions& options,
                                                   const std::optional<text::TruncationOptions>& truncation,
                                                   const std::optional<text::PaddingOptions>& padding) const {
    return std::make_shared<const EncodeSettings>(EncodeSettings{tokenizer, pretokenized, options, truncation, padding});
  }
  // Per Encoding: one small allocation and a reference to its input, which is all the ids path
  // pays for offsets it may never read.
  static std::shared_ptr<const AlignmentSource> AlignmentOf(std::shared_ptr<const EncodeSettings> settings,
                                                            nb::handle input) {
    auto out = std::make_shared<AlignmentSource>();
    out->settings = std::move(settings);
    out->input = Frozen(input);
    return out;
  }

  std::string DecodeBytes(nb::handle ids, bool skip_special_tokens) const {
    std::vector<TokenId> list = IdsOf(ids);
    std::string out;
    {
      GilReleased release;
      ThrowIfError(tokenizer->Decode(list, skip_special_tokens, out));
    }
    return out;
  }
};

// Feeds every text of an iterable to a trainer (GIL held: it walks Python objects) and trains
// (GIL released).
std::string TrainBpe(nb::iterable texts, size_t vocab_size, uint64_t min_frequency,
                     std::vector<std::string> special_tokens) {
  text::BpeTrainer trainer({vocab_size, min_frequency, std::move(special_tokens)});
  for (nb::handle item : texts) {
    nb::object keep;
    ThrowIfError(trainer.Feed(TextOf(item, keep)));
  }
  GilReleased release;
  return Unwrap(trainer.Train());
}

// One input of encode/encode_batch as EncodeInput, with views into the Python texts (kept alive
// by `keep`). Not pretokenized: a text, or a pair of texts as a tuple or list of two.
// Pretokenized: a list or tuple of words, or a pair of those.
text::EncodeInput InputOf(nb::handle item, bool pretokenized, std::vector<nb::object>& keep,
                          size_t index) {
  auto is_text = [](nb::handle h) { return PyUnicode_Check(h.ptr()) || PyBytes_Check(h.ptr()); };
  auto is_sequence = [](nb::handle h) { return PyList_Check(h.ptr()) || PyTuple_Check(h.ptr()); };
  auto where = [&] { return index == SIZE_MAX ? std::string() : "batch item " + std::to_string(index) + ": "; };
  auto text_of = [&](nb::handle h) {  // a new entry of `keep`; errors name the batch item
    keep.emplace_back();
    try {
      return TextOf(h, keep.back(), /*refuse_surrogates=*/true);
    } catch (const StatusError& e) {
      throw StatusError(Status(e.status().code(), where() + e.status().message()));
    }
  };
  auto words = [&](nb::handle h, std::vector<std::string_view>& out) {
    for (nb::handle word : h) {
      if (!is_text(word)) {
        throw nb::type_error((where() + "a pretokenized sequence is a list of str, and it holds a " +
                              std::string(nb::type_name(word.type()).c_str())).c_str());
      }
      out.push_back(text_of(word));
    }
  };
  text::EncodeInput input;
  input.pretokenized = pretokenized;
  if (!pretokenized) {
    if (is_text(item)) {
      input.first.push_back(text_of(item));
      return input;
    }
    if (is_sequence(item) && nb::len(item) == 2 && is_text(item[0]) && is_text(item[1])) {
      input.first.push_back(text_of(item[0]));
      input.second.push_back(text_of(item[1]));
      input.has_second = true;
      return input;
    }
    throw nb::type_error((where() + "expected a str, or a pair of str as a tuple (text, pair), got " +
                          std::string(nb::type_name(item.type()).c_str()) +
                          " (pass is_pretokenized=True for lists of words)").c_str());
  }
  if (!is_sequence(item)) {
    throw nb::type_error((where() + "with is_pretokenized=True, expected a list of words or a pair "
                                    "of lists, got " +
                          std::string(nb::type_name(item.type()).c_str())).c_str());
  }
  if (nb::len(item) == 2 && is_sequence(item[0]) && is_sequence(item[1])) {
    words(item[0], input.first);
    words(item[1], input.second);
    input.has_second = true;
  } else {
    words(item, input.first);
  }
  return input;
}

const text::TruncationOptions* OptionalPointer(const std::optional<text::TruncationOptions>& o) {
  return o ? &*o : nullptr;
}
const text::PaddingOptions* OptionalPointer(const std::optional<text::PaddingOptions>& o) {
  return o ? &*o : nullptr;
}

// input_ids and attention_mask of a batch as two [batch, length] arrays, padded (by `padding`,
// else to the longest with id 0 on the right), with no Python object per item.
template <typename Id>
nb::tuple Columns(const std::vector<Encoding>& encodings, const text::PaddingOptions* padding) {
  // Rows a Fixed length left longer, or all of them without padding: filled to the longest, as
  // a matrix needs, with the padding's pad_id on its side (mask 0). The cells are filled here,
  // not by padding the encodings first, which would copy every row's vectors to throw them away.
  const text::PaddingOptions fill = padding ? *padding : text::PaddingOptions{};
  const size_t rows = encodings.size();
  size_t columns = 0;
  for (const Encoding& e : encodings) columns = std::max(columns, e.size());
  std::vector<Id> ids(rows * columns, static_cast<Id>(fill.pad_id));
  std::vector<uint8_t> mask(rows * columns, 0);
  for (size_t r = 0; r < rows; ++r) {
    const Encoding& e = encodings[r];
    const size_t at = r * columns + (fill.left ? columns - e.size() : 0);
    std::copy(e.ids.begin(), e.ids.end(), ids.begin() + static_cast<std::ptrdiff_t>(at));
    std::copy(e.attention_mask.begin(), e.attention_mask.end(), mask.begin() + static_cast<std::ptrdiff_t>(at));
  }
  using IdMatrix = nb::ndarray<nb::numpy, Id, nb::ndim<2>, nb::c_contig>;
  using MaskMatrix = nb::ndarray<nb::numpy, uint8_t, nb::ndim<2>, nb::c_contig>;
  return nb::make_tuple(OwnedArray<IdMatrix>(std::move(ids), {rows, columns}),
                        OwnedArray<MaskMatrix>(std::move(mask), {rows, columns}));
}

}  // namespace

std::shared_ptr<const text::Tokenizer> TokenizerOf(nb::handle tokenizer) {
  return nb::cast<PyTokenizer&>(tokenizer).tokenizer;
}

void RegisterText(nb::module_& m) {
  using Strategy = text::TruncationOptions::Strategy;
  nb::class_<text::TruncationOptions>(m, "TruncationOptions")
      .def(nb::init<>())
      .def_rw("max_length", &text::TruncationOptions::max_length)
      .def_rw("stride", &text::TruncationOptions::stride)
      .def_prop_rw(
          "strategy",
          [](const text::TruncationOptions& o) {
            return o.strategy == Strategy::kLongestFirst ? "longest_first"
                   : o.strategy == Strategy::kOnlyFirst  ? "only_first"
                                                         : "only_second";
          },
          [](text::TruncationOptions& o, const std::string& name) {
            if (name == "longest_first") {
              o.strategy = Strategy::kLongestFirst;
            } else if (name == "only_first") {
              o.strategy = Strategy::kOnlyFirst;
            } else if (name == "only_second") {
              o.strategy = Strategy::kOnlySecond;
            } else {
              throw nb::value_error(("truncation strategy \"" + name +
                                     "\": expected longest_first, only_first or only_second").c_str());
            }
          })
      .def_rw("left", &text::TruncationOptions::left);
  nb::class_<text::PaddingOptions>(m, "PaddingOptions")
      .def(nb::init<>())
      .def_rw("length", &text::PaddingOptions::length)
      .def_rw("pad_to_multiple_of", &text::PaddingOptions::pad_to_multiple_of)
      .def_rw("left", &text::PaddingOptions::left)
      .def_rw("pad_id", &text::PaddingOptions::pad_id)
      .def_rw("pad_type_id", &text::PaddingOptions::pad_type_id)
      .def_rw("pad_token", &text::PaddingOptions::pad_token);

  nb::class_<PyEncoding>(m, "Encoding")
      .def_prop_ro("ids", &PyEncoding::Ids)
      .def_prop_ro("tokens", &PyEncoding::Tokens)
      .def_prop_ro("type_ids", [](const PyEncoding& e) { return IntList(e.encoding->type_ids); })
      .def_prop_ro("attention_mask", [](const PyEncoding& e) { return IntList(e.encoding->attention_mask); })
      .def_prop_ro("special_tokens_mask",
                   [](const PyEncoding& e) { return IntList(e.encoding->special_tokens_mask); })
      .def_prop_ro("sequence_ids", &PyEncoding::SequenceIds)
      .def_prop_ro("n_sequences", [](const PyEncoding& e) { return e.encoding->n_sequences(); })
      .def_prop_ro("overflowing", &PyEncoding::Overflowing)
      .def_prop_ro("offsets", &PyEncoding::Offsets)
      .def_prop_ro("word_ids", [](PyEncoding& e) { return e.WordIds("word_ids"); })
      .def_prop_ro("words",
                   [](PyEncoding& e) {
                     if (PyErr_WarnEx(PyExc_DeprecationWarning,
                                      "Encoding.words is deprecated, please use Encoding.word_ids instead.",
                                      1) < 0) {
                       throw nb::python_error();
                     }
                     return e.WordIds("words");
                   })
      .def("token_to_sequence",
           [](PyEncoding& e, nb::handle token_index) {
             return e.Aligned("token_to_sequence").TokenToSequence(NonNegativeArg(token_index, "token_index"));
           },
           nb::arg("token_index"))
      .def("token_to_chars",
           [](PyEncoding& e, nb::handle token_index) -> std::optional<std::pair<uint32_t, uint32_t>> {
             auto found = e.Aligned("token_to_chars").TokenToChars(NonNegativeArg(token_index, "token_index"));
             if (!found) return std::nullopt;
             return found->second;
           },
           nb::arg("token_index"))
      .def("token_to_word",
           [](PyEncoding& e, nb::handle token_index) -> std::optional<uint32_t> {
             auto found = e.Aligned("token_to_word").TokenToWord(NonNegativeArg(token_index, "token_index"));
             if (!found) return std::nullopt;
             return found->second;
           },
           nb::arg("token_index"))
      .def("word_to_tokens",
           [](PyEncoding& e, nb::handle word_index, nb::handle sequence_index) {
             return e.Aligned("word_to_tokens")
                 .WordToTokens(IndexArg(word_index, "word_index"), IndexArg(sequence_index, "sequence_index"));
           },
           nb::arg("word_index"), nb::arg("sequence_index") = 0)
      .def("word_to_chars",
           [](PyEncoding& e, nb::handle word_index, nb::handle sequence_index) {
             return e.Aligned("word_to_chars")
                 .WordToChars(IndexArg(word_index, "word_index"), IndexArg(sequence_index, "sequence_index"));
           },
           nb::arg("word_index"), nb::arg("sequence_index") = 0)
      .def("char_to_token",
           [](PyEncoding& e, nb::handle char_pos, nb::handle sequence_index) {
             return e.Aligned("char_to_token")
                 .CharToToken(NonNegativeArg(char_pos, "char_pos"), IndexArg(sequence_index, "sequence_index"));
           },
           nb::arg("char_pos"), nb::arg("sequence_index") = 0)
      .def("char_to_word",
           [](PyEncoding& e, nb::handle char_pos, nb::handle sequence_index) {
             return e.Aligned("char_to_word")
                 .CharToWord(NonNegativeArg(char_pos, "char_pos"), IndexArg(sequence_index, "sequence_index"));
           },
           nb::arg("char_pos"), nb::arg("sequence_index") = 0)
      .def("pad",
           [](PyEncoding& e, nb::handle length, const std::string& direction, nb::handle pad_id, nb::handle pad_type_id,
              const std::string& pad_token) {
             uint64_t ids[2];
             for (int i : {0, 1}) {
               const char* name = i == 0 ? "pad_id" : "pad_type_id";
               ids[i] = NonNegativeArg(i == 0 ? pad_id : pad_type_id, name);
               if (ids[i] > std::numeric_limits<uint32_t>::max()) {
                 PyErr_Format(PyExc_OverflowError, "%s %llu: expected an id in [0, 2**32 - 1]", name,
                              static_cast<unsigned long long>(ids[i]));
                 throw nb::python_error();
               }
             }
             e.Pad(NonNegativeArg(length, "length"), direction, static_cast<TokenId>(ids[0]),
                   static_cast<uint32_t>(ids[1]), pad_token);
           },
           nb::arg("length"), nb::arg("direction") = "right",
           nb::arg("pad_id") = 0, nb::arg("pad_type_id") = 0, nb::arg("pad_token") = "[PAD]")
      .def("truncate",
           [](PyEncoding& e, nb::handle max_length, nb::handle stride, const std::string& direction) {
             e.Truncate(NonNegativeArg(max_length, "max_length"), NonNegativeArg(stride, "stride"), direction);
           },
           nb::arg("max_length"), nb::arg("stride") = 0,
           nb::arg("direction") = "right")
      .def_static(
          "merge",
          [](const std::vector<const PyEncoding*>& encodings, bool growing_offsets) {
            Encoding merged;
            merged.has_alignment = true;  // so far: merging nothing is aligned
            auto alignment = std::make_shared<AlignmentSource>();
            alignment->kind = AlignmentSource::Kind::kMerge;
            alignment->growing_offsets = growing_offsets;
            bool computable = true;
            for (size_t i = 0; i < encodings.size(); ++i) {
              if (!encodings[i]) {  // nanobind passes None as a null pointer
                throw nb::type_error(
                    ("Encoding.merge: item " + std::to_string(i) + " is None, not an Encoding").c_str());
              }
              const PyEncoding& part = *encodings[i];
              text::MergeWith(merged, *part.encoding, growing_offsets);
              if (part.encoding->has_alignment) {
                auto value = std::make_shared<AlignmentSource>();
                value->kind = AlignmentSource::Kind::kValue;
                value->value = part.encoding;
                alignment->parts.push_back(std::move(value));
              } else if (part.alignment) {
                alignment->parts.push_back(part.alignment);
              } else {
                computable = false;
              }
            }
            // Tokens are spelled by the first tokenizer among them (an unpickled Encoding has
            // none, and holds its tokens), or by none: the merge is empty or all unpickled.
            const PyEncoding* spelling = nullptr;
            for (const PyEncoding* part : encodings) {
              if (part->tokenizer) {
                spelling = part;
                break;
              }
            }
            return PyEncoding{std::make_shared<const Encoding>(std::move(merged)),
                              spelling ? spelling->tokenizer : nullptr, spelling ? spelling->id_objects : nullptr,
                              computable ? std::move(alignment) : nullptr};
          },
          nb::arg("encodings"), nb::arg("growing_offsets") = true)
      .def("__getstate__", &PyEncoding::State)
      .def("__setstate__",
           [](PyEncoding& self, nb::handle state) {
             new (&self) PyEncoding{std::make_shared<const Encoding>(PyEncoding::FromState(state)), nullptr,
                                    nullptr, nullptr};
           })
      .def("__len__", [](const PyEncoding& e) { return e.encoding->size(); })
      .def("__repr__", [](const PyEncoding& e) {
        return "Encoding(num_tokens=" + std::to_string(e.encoding->size()) +
               ", attributes=[ids, type_ids, tokens, offsets, attention_mask, "
               "special_tokens_mask, overflowing])";
      });

  m.def("train_bpe", &TrainBpe, nb::arg("texts"), nb::arg("vocab_size"), nb::arg("min_frequency"),
        nb::arg("special_tokens"));
  nb::class_<PyTokenizer>(m, "Tokenizer")
      .def_static(
          "from_file",
          [](const std::string& uri) {
            std::string source = PyTokenizer::Read(uri, text::kMaxTokenizerJsonBytes);
            if (text::IsSentencePieceModel(source, uri)) {
              return PyTokenizer::FromSentencePieceBytes(std::move(source), uri);
            }
            return PyTokenizer::FromJsonText(std::move(source), uri);
          },
          nb::arg("uri"))
      .def_static(
          "from_data_gym",
          [](const std::string& encoder_json, const std::string& vocab_bpe) {
            std::string encoder = PyTokenizer::Read(encoder_json, text::kMaxRankFileBytes);
            std::string vocab = PyTokenizer::Read(vocab_bpe, text::kMaxRankFileBytes);
            std::string origin = encoder_json + " + " + vocab_bpe;
            std::string ranks;
            {
              GilReleased release;
              ranks = Unwrap(Tokenizer::DataGymToRanks(encoder, vocab, origin));
            }
            // Pickles as the rank file it is equivalent to.
            return PyTokenizer::FromRanksText(std::move(ranks), origin, {"r50k_base", "", {}});
          },
          nb::arg("encoder_json"), nb::arg("vocab_bpe"))
      .def_static(
          "from_sentencepiece",
          [](const std::string& uri) {
            return PyTokenizer::FromSentencePieceBytes(
                PyTokenizer::Read(uri, text::kMaxSentencePieceModelBytes), uri);
          },
          nb::arg("uri"))
      .def_static(
          "from_sentencepiece_proto",
          [](nb::bytes proto, const std::string& origin) {
            return PyTokenizer::FromSentencePieceBytes(std::string(proto.c_str(), proto.size()), origin);
          },
          nb::arg("proto"), nb::arg("origin"))
      .def_static(
          "from_json",
          [](nb::bytes json, const std::string& origin) {
            return PyTokenizer::FromJsonText(std::string(json.c_str(), json.size()), origin);
          },
          nb::arg("json"), nb::arg("origin"))
      .def_static(
          "from_tiktoken",
          [](const std::string& uri, const std::string& name, const std::string& pattern,
             std::vector<std::pair<std::string, TokenId>> special_tokens) {
            text::TiktokenOptions options{name, pattern, std::move(special_tokens)};
            return PyTokenizer::FromRanksText(PyTokenizer::Read(uri, text::kMaxRankFileBytes), uri,
                                              std::move(options));
          },
          nb::arg("uri"), nb::arg("name"), nb::arg("pattern"), nb::arg("special_tokens"))
      .def_static(
          "from_ranks",
          [](nb::bytes ranks, const std::string& origin, const std::string& name,
             const std::string& pattern, std::vector<std::pair<std::string, TokenId>> special_tokens) {
            text::TiktokenOptions options{name, pattern, std::move(special_tokens)};
            return PyTokenizer::FromRanksText(std::string(ranks.c_str(), ranks.size()), origin,
                                              std::move(options));
          },
          nb::arg("ranks"), nb::arg("origin"), nb::arg("name"), nb::arg("pattern"),
          nb::arg("special_tokens"))
      .def(
          "encode",
          [](PyTokenizer& self, nb::handle text, bool add_special_tokens, bool match_added,
             bool split_special) {
            return self.ToList(self.EncodeIds(text, {match_added, add_special_tokens, split_special}));
          },
          nb::arg("text"), nb::arg("add_special_tokens"), nb::arg("match_added_tokens"),
          nb::arg("split_special_tokens") = false)
      .def(
          "encode_array",
          [](const PyTokenizer& self, nb::handle text, bool add_special_tokens, bool match_added,
             bool split_special) {
            return ToArray(self.EncodeIds(text, {match_added, add_special_tokens, split_special}));
          },
          nb::arg("text"), nb::arg("add_special_tokens"), nb::arg("match_added_tokens"),
          nb::arg("split_special_tokens") = false)
      .def(
          "encode_batch",
          [](const PyTokenizer& self, nb::handle texts, bool add_special_tokens, bool match_added,
             int threads, bool split_special) {
            auto encoded = self.EncodeMany(texts, {match_added, add_special_tokens, split_special}, threads);
            nb::list out;
            for (std::vector<TokenId>& ids : encoded) out.append(ToArray(std::move(ids)));
            return out;
          },
          nb::arg("texts"), nb::arg("add_special_tokens"), nb::arg("match_added_tokens"),
          nb::arg("threads"), nb::arg("split_special_tokens") = false)
      .def(
          "encode_encoding",
          [](PyTokenizer& self, nb::handle item, bool pretokenized, bool add_special_tokens,
             bool split_special_tokens, std::optional<text::TruncationOptions> truncation,
             std::optional<text::PaddingOptions> padding) {
            std::vector<nb::object> keep;
            text::EncodeInput input = InputOf(item, pretokenized, keep, SIZE_MAX);
            Encoding encoding;
            {
              GilReleased release;
              ThrowIfError(self.tokenizer->EncodeEncoding(
                  input, {true, add_special_tokens, split_special_tokens},
                  OptionalPointer(truncation), OptionalPointer(padding), encoding));
            }
            return self.Wrap(std::move(encoding),
                             PyTokenizer::AlignmentOf(
                                 self.SettingsOf(pretokenized, {true, add_special_tokens, split_special_tokens},
                                                 truncation, padding),
                                 item));
          },
          nb::arg("input"), nb::arg("is_pretokenized"), nb::arg("add_special_tokens"),
          nb::arg("split_special_tokens"), nb::arg("truncation").none(), nb::arg("padding").none())
      .def(
          "encode_encoding_batch",
          [](PyTokenizer& self, nb::handle items, bool pretokenized, bool add_special_tokens,
             bool split_special_tokens, std::optional<text::TruncationOptions> truncation,
             std::optional<text::PaddingOptions> padding, int threads, nb::handle columns_dtype) {
            std::vector<nb::object> keep;
            std::vector<text::EncodeInput> inputs;
            size_t index = 0;
            std::vector<nb::object> originals;  // the items once (`items` may be a generator)
            for (nb::handle item : items) {
              inputs.push_back(InputOf(item, pretokenized, keep, index++));
              originals.push_back(nb::borrow(item));
            }
            std::vector<Encoding> encodings;
            {
              GilReleased release;
              ThrowIfError(self.tokenizer->EncodeEncodingBatch(
                  inputs, {true, add_special_tokens, split_special_tokens},
                  OptionalPointer(truncation), OptionalPointer(padding), threads, encodings));
            }
            if (!columns_dtype.is_none()) {
              std::string dtype = nb::cast<std::string>(nb::str(columns_dtype));
              if (dtype == "int64") return nb::object(Columns<int64_t>(encodings, OptionalPointer(padding)));
              if (dtype == "int32") return nb::object(Columns<int32_t>(encodings, OptionalPointer(padding)));
              if (dtype == "uint32") return nb::object(Columns<uint32_t>(encodings, OptionalPointer(padding)));
              throw nb::value_error(("dtype " + dtype + ": expected int64, int32 or uint32").c_str());
            }
            nb::list out;
            auto batch = std::make_shared<BatchAlignment>();
            batch->settings =
                self.SettingsOf(pretokenized, {true, add_special_tokens, split_special_tokens}, truncation, padding);
            batch->threads = threads;
            for (nb::object& original : originals) batch->inputs.push_back(Frozen(original));
            for (size_t i = 0; i < encodings.size(); ++i) {
              auto alignment = std::make_shared<AlignmentSource>();
              alignment->batch = batch;
              alignment->index = i;
              out.append(self.Wrap(std::move(encodings[i]), std::move(alignment)));
            }
            return nb::object(out);
          },
          nb::arg("inputs"), nb::arg("is_pretokenized"), nb::arg("add_special_tokens"),
          nb::arg("split_special_tokens"), nb::arg("truncation").none(), nb::arg("padding").none(),
          nb::arg("threads"), nb::arg("columns_dtype").none())
      .def(
          "find_added_token",
          [](const PyTokenizer& self, nb::handle text) -> std::optional<TokenId> {
            nb::object keep;
            std::string_view view = TextOf(text, keep);
            size_t begin, end;
            TokenId id;
            bool found;
            {
              GilReleased release;
              found = self.tokenizer->FindAddedToken(view, begin, end, id);
            }
            if (!found) return std::nullopt;
            return id;
          },
          nb::arg("text"))
      .def(
          "vocab",
          [](const PyTokenizer& self, bool with_added_tokens) {
            nb::dict out;
            std::string token;
            const bool raw = self.format == "tiktoken";
            // Added tokens by their content as written (IdToToken spells a `normalized` one as
            // normalized); an added token in the model's vocabulary is spelled there the same.
            std::unordered_map<TokenId, const std::string*> content;
            for (const text::AddedToken& t : self.tokenizer->added_tokens()) content[t.id] = &t.content;
            for (TokenId id = 0; id < self.tokenizer->vocab_size(); ++id) {
              if (!with_added_tokens && !self.tokenizer->InModelVocab(id)) continue;
              if (auto it = content.find(id); it != content.end()) {
                token = *it->second;
              } else if (!self.tokenizer->IdToToken(id, token)) {
                continue;
              }
              nb::object key = raw ? nb::object(nb::bytes(token.data(), token.size())) : nb::object(Utf8Lossy(token));
              out[key] = id;
            }
            return out;
          },
          nb::arg("with_added_tokens"))
      .def_prop_ro("added_tokens", [](const PyTokenizer& self) {
        nb::list out;
        for (const text::AddedToken& t : self.tokenizer->added_tokens()) {
          out.append(nb::make_tuple(t.id, t.content, t.special, t.single_word, t.lstrip, t.rstrip,
                                    t.normalized));
        }
        return out;
      })
      .def("special_tokens_to_add",
           [](const PyTokenizer& self, bool pair) { return self.tokenizer->SpecialTokensToAdd(pair); })
      .def_prop_ro("can_encode_pairs", [](const PyTokenizer& self) { return self.tokenizer->CanEncodePairs(); })
      .def_prop_ro("model_vocab_size", [](const PyTokenizer& self) { return self.tokenizer->model_vocab_size(); })
      .def_prop_ro("default_truncation",
                   [](const PyTokenizer& self) { return self.tokenizer->default_truncation(); })
      .def_prop_ro("default_padding",
                   [](const PyTokenizer& self) { return self.tokenizer->default_padding(); })
      .def(
          "decode_bytes",
          [](const PyTokenizer& self, nb::handle ids, bool skip_special_tokens) {
            std::string bytes = self.DecodeBytes(ids, skip_special_tokens);
            return nb::bytes(bytes.data(), bytes.size());
          },
          nb::arg("ids"), nb::arg("skip_special_tokens"))
      .def(
          "decode",
          [](const PyTokenizer& self, nb::handle ids, bool skip_special_tokens) {
            return Utf8Lossy(self.DecodeBytes(ids, skip_special_tokens));
          },
          nb::arg("ids"), nb::arg("skip_special_tokens"))
      .def(
          "token_to_id",
          [](const PyTokenizer& self, nb::handle token) -> std::optional<TokenId> {
            nb::object keep;
            TokenId id;
            if (!self.tokenizer->TokenToId(TextOf(token, keep), id)) return std::nullopt;
            return id;
          },
          nb::arg("token"))
      .def(
          "id_to_token",
          [](const PyTokenizer& self, TokenId id) -> nb::object {
            std::string token;
            if (!self.tokenizer->IdToToken(id, token)) return nb::none();
            if (self.format == "tiktoken") return nb::bytes(token.data(), token.size());
            return Utf8Lossy(token);
          },
          nb::arg("id"))
      .def("is_special", [](const PyTokenizer& self, TokenId id) { return self.tokenizer->IsSpecial(id); })
      .def_prop_ro("vocab_size", [](const PyTokenizer& self) { return self.tokenizer->vocab_size(); })
      .def_prop_ro("fingerprint", [](const PyTokenizer& self) { return self.tokenizer->fingerprint(); })
      .def_prop_ro("origin", [](const PyTokenizer& self) { return self.tokenizer->origin(); })
      .def_prop_ro("format", [](const PyTokenizer& self) { return self.format; })
      .def_prop_ro("source", [](const PyTokenizer& self) { return nb::bytes(self.source.data(), self.source.size()); })
      .def_prop_ro("tiktoken_options", [](const PyTokenizer& self) {
        return nb::make_tuple(self.tiktoken.name, self.tiktoken.pattern, self.tiktoken.special_tokens);
      });
}

}  // namespace ferry::python
