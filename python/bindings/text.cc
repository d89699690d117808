// ferry._core.Tokenizer: the C++ tokenizer for python/ferry/text.py.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <memory>
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


// UTF-8 of a str or the bytes of a bytes object. A str with surrogates is first repaired as
// tiktoken does (through UTF-16 with surrogatepass: a high/low pair becomes its character, a lone
// one U+FFFD). `keep` holds a reference to whatever the view points into, so it stays valid
// while `keep` lives even if the caller drops the text (e.g. another thread clears its list
// while the GIL is released).
std::string_view TextOf(nb::handle text, nb::object& keep) {
  if (PyUnicode_Check(text.ptr())) {
    keep = nb::borrow(text);
    Py_ssize_t size = 0;
    const char* data = PyUnicode_AsUTF8AndSize(text.ptr(), &size);
    if (!data) {
      PyErr_Clear();
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

  nb::list List(const std::vector<TokenId>& ids) const {
    PyObject* list = PyList_New(static_cast<Py_ssize_t>(ids.size()));
    if (!list) throw nb::python_error();
    for (size_t i = 0; i < ids.size(); ++i) {
      PyObject* object = ids[i] < objects_.size() ? Py_NewRef(objects_[ids[i]])
                                                  : PyLong_FromUnsignedLong(ids[i]);
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
    std::shared_ptr<IdObjects> objects = id_objects;
    if (!objects) id_objects = objects = std::make_shared<IdObjects>(tokenizer->vocab_size());
    return objects->List(ids);
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

}  // namespace

std::shared_ptr<const text::Tokenizer> TokenizerOf(nb::handle tokenizer) {
  return nb::cast<PyTokenizer&>(tokenizer).tokenizer;
}

void RegisterText(nb::module_& m) {
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
          [](PyTokenizer& self, nb::handle text, bool add_special_tokens, bool match_added) {
            return self.ToList(self.EncodeIds(text, {match_added, add_special_tokens}));
          },
          nb::arg("text"), nb::arg("add_special_tokens"), nb::arg("match_added_tokens"))
      .def(
          "encode_array",
          [](const PyTokenizer& self, nb::handle text, bool add_special_tokens, bool match_added) {
            return ToArray(self.EncodeIds(text, {match_added, add_special_tokens}));
          },
          nb::arg("text"), nb::arg("add_special_tokens"), nb::arg("match_added_tokens"))
      .def(
          "encode_batch",
          [](const PyTokenizer& self, nb::handle texts, bool add_special_tokens, bool match_added,
             int threads) {
            auto encoded = self.EncodeMany(texts, {match_added, add_special_tokens}, threads);
            nb::list out;
            for (std::vector<TokenId>& ids : encoded) out.append(ToArray(std::move(ids)));
            return out;
          },
          nb::arg("texts"), nb::arg("add_special_tokens"), nb::arg("match_added_tokens"),
          nb::arg("threads"))
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
