// ferry._core.SampleReader: WebDataset samples of one tar shard, for ferry.data.

#include "ferry/datasets.h"

#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>

#include "bindings/bindings.h"
#include "bindings/errors.h"

namespace nb = nanobind;

namespace ferry::python {
namespace {

class PySampleReader {
 public:
  explicit PySampleReader(const std::string& uri) {
    nb::gil_scoped_release release;
    reader_ = Unwrap(datasets::SampleReader::Open(uri));
  }

  // {"__key__": str, "__url__": str, field: bytes, ...}; StopIteration at the end.
  nb::dict Next() {
    std::optional<datasets::Sample> sample;
    {
      nb::gil_scoped_release release;
      sample = Unwrap(reader_->Next());
    }
    if (!sample) throw nb::stop_iteration();
    nb::dict out;
    out["__key__"] = sample->key;
    out["__url__"] = sample->url;
    for (const auto& [field, bytes] : sample->fields) {
      out[nb::str(field.c_str(), field.size())] =
          nb::bytes(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    }
    return out;
  }

 private:
  std::unique_ptr<datasets::SampleReader> reader_;
};

}  // namespace

void RegisterDatasets(nb::module_& m) {
  nb::class_<PySampleReader>(m, "SampleReader")
      .def(nb::init<const std::string&>(), nb::arg("uri"))
      .def("__iter__", [](nb::handle self) { return self; })
      .def("__next__", &PySampleReader::Next);
}

}  // namespace ferry::python
