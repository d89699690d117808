// ferry._core.TensorReader and write_safetensors: the compiled half of ferry.safe_open,
// ferry.numpy and ferry.torch. Tensors come out as flat uint8 numpy arrays that alias the
// reader's memory (the owner is kept alive by the array); python/ferry/_tensors.py gives them
// their dtype and shape without copying.

#include "ferry/tensors.h"

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include "base/host_buffer.h"

#include "bindings/bindings.h"
#include "bindings/errors.h"

namespace nb = nanobind;

namespace ferry::python {
namespace {

using tensors::Mode;
using tensors::TensorInfo;
using tensors::TensorReader;

using ByteArray = nb::ndarray<nb::numpy, uint8_t, nb::ndim<1>, nb::c_contig>;

// A numpy uint8 view of `data` that keeps `owner` alive for as long as any array uses it.
ByteArray ViewOf(std::span<std::byte> data, std::shared_ptr<void> owner) {
  static uint8_t empty_sentinel = 0;  // numpy wants a non-null pointer even for 0 bytes
  auto* holder = new std::shared_ptr<void>(std::move(owner));
  nb::capsule capsule(holder,
                      [](void* p) noexcept { delete static_cast<std::shared_ptr<void>*>(p); });
  uint8_t* ptr = data.empty() ? &empty_sentinel : reinterpret_cast<uint8_t*>(data.data());
  size_t shape[1] = {data.size()};
  return ByteArray(ptr, 1, shape, capsule);
}

Mode ParseMode(const std::string& name) {
  std::optional<Mode> mode = tensors::ModeFromName(name);
  if (!mode) {
    ThrowIfError(InvalidArgument("unknown mode '" + name +
                                 "' (expected 'eager', 'lazy', 'plaid' or 'mmap')"));
  }
  return *mode;
}

// Holds a Python buffer (exported C-contiguous) for as long as ferry needs its bytes.
class BufferView {
 public:
  explicit BufferView(nb::handle object, bool writable = false) {
    int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(object.ptr(), &view_, flags) != 0) throw nb::python_error();
  }
  ~BufferView() { PyBuffer_Release(&view_); }
  BufferView(const BufferView&) = delete;
  BufferView& operator=(const BufferView&) = delete;
  std::span<const std::byte> bytes() const {
    return {static_cast<const std::byte*>(view_.buf), static_cast<size_t>(view_.len)};
  }
  std::span<std::byte> mutable_bytes() const {
    return {static_cast<std::byte*>(view_.buf), static_cast<size_t>(view_.len)};
  }

 private:
  Py_buffer view_{};
};

class PyTensorReader {
 public:
  PyTensorReader(const std::string& uri, const std::string& mode, int parallelism, size_t part_size,
                 int staging_buffers, size_t staging_buffer_size, bool verify_checksums) {
    tensors::ReaderOptions options;
    options.mode = ParseMode(mode);
    options.parallelism = parallelism;
    options.part_size = part_size;
    options.staging_buffers = staging_buffers;
    options.staging_buffer_size = staging_buffer_size;
    options.verify_checksums = verify_checksums;
    BlockingCall blocking;
    reader_ = Unwrap(TensorReader::Open(uri, options));
  }

  TensorReader& reader() { return *Shared(); }

  // A reference that keeps the reader alive while the GIL is released, even if another thread
  // closes it meanwhile.
  std::shared_ptr<TensorReader> Shared() {
    if (!reader_) ThrowIfError(InvalidArgument("the file was closed"));
    return reader_;
  }

  std::string Uri() { return reader().uri(); }
  std::string ModeName() { return std::string(tensors::ModeName(reader().mode())); }

  // Names in file (offset) order.
  std::vector<std::string> OffsetKeys() {
    std::vector<std::string> keys;
    for (const TensorInfo& info : reader().header().tensors) keys.push_back(info.name);
    return keys;
  }

  // `__metadata__` without ferry's checksum entries (see checksums()).
  nb::dict Metadata() {
    nb::dict out;
    for (const auto& [key, value] : reader().header().metadata) {
      if (!key.starts_with(tensors::kChecksumKeyPrefix)) out[nb::str(key.c_str())] = value;
    }
    return out;
  }

  nb::dict Checksums() {
    nb::dict out;
    for (const auto& [key, value] : reader().header().metadata) {
      if (key.starts_with(tensors::kChecksumKeyPrefix)) {
        out[nb::str(key.substr(tensors::kChecksumKeyPrefix.size()).c_str())] = value;
      }
    }
    return out;
  }

  // (dtype name, shape, begin, end) of one tensor.
  nb::tuple Info(const std::string& name) {
    const TensorInfo* info = reader().header().Find(name);
    if (info == nullptr)
      ThrowIfError(NotFound(reader().uri() + ": no tensor named '" + name + "'"));
    nb::list shape;
    for (uint64_t d : info->shape) shape.append(d);
    return nb::make_tuple(std::string(tensors::DTypeName(info->dtype)), nb::tuple(shape),
                          info->begin, info->end);
  }

  ByteArray Get(const std::string& name) {
    std::shared_ptr<TensorReader> r = Shared();
    Result<tensors::Tensor> tensor = [&] {
      BlockingCall blocking;
      return r->Get(name);
    }();
    ThrowIfError(tensor.status());
    return ViewOf(tensor->data, std::move(tensor->owner));
  }

  // The slice of a tensor given by one (start, count, step) per dimension, read into memory of
  // its own (so it outlives the reader and any plaid staging).
  ByteArray ReadSlice(const std::string& name,
                      const std::vector<std::tuple<uint64_t, uint64_t, uint64_t>>& dims) {
    std::shared_ptr<TensorReader> r = Shared();
    const TensorInfo* info = r->header().Find(name);
    if (info == nullptr) ThrowIfError(NotFound(r->uri() + ": no tensor named '" + name + "'"));
    std::vector<tensors::DimSlice> slices;
    for (const auto& [start, count, step] : dims) slices.push_back({start, count, step});
    tensors::SlicePlan plan = Unwrap(tensors::SlicePlan::Make(r->uri(), *info, slices));
    std::shared_ptr<HostBuffer> buffer;
    {
      BlockingCall blocking;
      buffer = Unwrap(HostBuffer::Allocate(plan.nbytes(), r->uri() + ": slice of " + name));
      ThrowIfError(r->ReadSlice(name, slices, buffer->bytes()));
    }
    std::span<std::byte> bytes = buffer->bytes();
    return ViewOf(bytes, std::move(buffer));
  }

  // Copies a tensor into `out` (a writable C-contiguous buffer of exactly its size).
  void ReadInto(const std::string& name, nb::handle out) {
    std::shared_ptr<TensorReader> r = Shared();
    BufferView view(out, /*writable=*/true);
    BlockingCall blocking;
    ThrowIfError(r->ReadInto(name, view.mutable_bytes()));
  }

  // Copies bytes [begin, begin + len(out)) of the data buffer into `out` (a writable
  // C-contiguous buffer), whatever tensors they cut.
  void ReadRangeInto(uint64_t begin, nb::handle out) {
    std::shared_ptr<TensorReader> r = Shared();
    BufferView view(out, /*writable=*/true);
    BlockingCall blocking;
    ThrowIfError(r->ReadRange(begin, view.mutable_bytes()));
  }

  // Drops the reader's own references; arrays already handed out keep their memory.
  void Close() {
    std::shared_ptr<TensorReader> last = std::move(reader_);
    BlockingCall blocking;  // stopping a plaid read-ahead waits for its current read
    last.reset();
  }

 private:
  std::shared_ptr<TensorReader> reader_;
};

// Streams a whole file into CUDA memory at `device_ptr` (`device_bytes` allocated by the caller,
// e.g. torch, from the header it read; checked against the header read here) through pinned
// staging buffers.
void LoadToDevice(const std::string& uri, uintptr_t device_ptr, uint64_t device_bytes, int device,
                  int parallelism, size_t part_size, int staging_buffers,
                  size_t staging_buffer_size) {
  tensors::ReaderOptions options;
  options.mode = Mode::kPlaid;
  options.parallelism = parallelism;
  options.part_size = part_size;
  options.staging_buffers = staging_buffers;
  options.staging_buffer_size = staging_buffer_size;
  BlockingCall blocking;
  auto source = Unwrap(io::OpenSource(uri, options.source));
  auto header = Unwrap(tensors::ReadHeader(*source));
  ThrowIfError(tensors::LoadToDevice(*source, header, options, device,
                                     reinterpret_cast<void*>(device_ptr), device_bytes));
}

// How an object looks in a message: repr(), or ascii() where repr() does not encode (a custom
// __repr__ may return anything).
std::string Describe(nb::handle object) {
  PyObject* text = PyObject_Repr(object.ptr());
  const char* utf8 = text != nullptr ? PyUnicode_AsUTF8(text) : nullptr;
  if (utf8 == nullptr) {
    PyErr_Clear();
    Py_XDECREF(text);
    text = PyObject_ASCII(object.ptr());
    utf8 = text != nullptr ? PyUnicode_AsUTF8(text) : nullptr;
  }
  std::string out = utf8 != nullptr ? utf8 : "<unprintable object>";
  if (utf8 == nullptr) PyErr_Clear();
  Py_XDECREF(text);
  return out;
}

// `object` as UTF-8 for a tensor name or a metadata key or value of the file at `path`:
// kInvalidArgument naming it (what(), e.g. "tensor name 'w'") unless it is a str that encodes.
// A lone surrogate such as "\ud800" does not (nb::cast would throw a bare std::bad_cast).
template <typename What>
std::string Utf8(const std::string& path, nb::handle object, What what) {
  if (!PyUnicode_Check(object.ptr())) {
    ThrowIfError(InvalidArgument(path + ": " + what() + " must be a str, not " +
                                 Py_TYPE(object.ptr())->tp_name));
  }
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(object.ptr(), &size);
  if (data == nullptr) {
    PyErr_Clear();
    ThrowIfError(InvalidArgument(path + ": " + what() +
                                 " is not valid Unicode: it holds a lone surrogate, which UTF-8 "
                                 "(the safetensors header's encoding) cannot encode"));
  }
  return std::string(data, static_cast<size_t>(size));
}

// Tensors and metadata from Python, held for as long as ferry reads their bytes.
struct TensorsToWrite {
  std::vector<std::unique_ptr<BufferView>> buffers;
  std::vector<tensors::TensorToWrite> tensors;
  std::vector<std::pair<std::string, std::string>> metadata;
};

// tensors: [(name, dtype name, shape, buffer)], in any order. `where` names the destination in
// messages.
TensorsToWrite ToWrite(const std::string& where, nb::list tensors_in,
                       std::optional<nb::dict> metadata_in) {
  TensorsToWrite out;
  for (nb::handle item : tensors_in) {
    auto entry = nb::cast<nb::tuple>(item);
    tensors::TensorToWrite t;
    t.name = Utf8(where, entry[0], [&] { return "tensor name " + Describe(entry[0]); });
    std::string dtype = nb::cast<std::string>(entry[1]);
    std::optional<tensors::DType> parsed = tensors::DTypeFromName(dtype);
    if (!parsed) {
      ThrowIfError(
          InvalidArgument(where + ": tensor '" + t.name + "': unknown dtype '" + dtype + "'"));
    }
    t.dtype = *parsed;
    t.shape = nb::cast<std::vector<uint64_t>>(entry[2]);
    out.buffers.push_back(std::make_unique<BufferView>(entry[3]));
    t.data = out.buffers.back()->bytes();
    out.tensors.push_back(std::move(t));
  }
  if (metadata_in) {
    for (auto [key, value] : *metadata_in) {
      std::string key_text = Utf8(where, key, [&] { return "metadata key " + Describe(key); });
      std::string value_text = Utf8(where, value, [&] {
        return "metadata value " + Describe(value) + " of key " + Describe(key);
      });
      out.metadata.emplace_back(std::move(key_text), std::move(value_text));
    }
  }
  return out;
}

void WriteSafetensors(const std::string& path, nb::list tensors_in,
                      std::optional<nb::dict> metadata_in, bool checksums) {
  TensorsToWrite in = ToWrite(path, tensors_in, metadata_in);
  tensors::WriteOptions options;
  options.checksums = checksums;
  BlockingCall blocking;
  ThrowIfError(tensors::WriteSafetensors(path, in.tensors, in.metadata, options));
}

// What message names stand for where the bytes live in memory rather than at a URI.
constexpr const char* kInMemory = "safetensors bytes";

// The whole file as bytes, exactly as the reference's save() makes it: no checksums, the header
// padded to a multiple of 8 only.
nb::bytes SerializeSafetensors(nb::list tensors_in, std::optional<nb::dict> metadata_in) {
  TensorsToWrite in = ToWrite(kInMemory, tensors_in, metadata_in);
  tensors::WriteOptions options;
  options.checksums = false;
  options.data_alignment = 8;
  tensors::SafetensorsLayout layout =
      Unwrap(tensors::LayOutSafetensors(kInMemory, in.tensors, in.metadata, options));
  PyObject* bytes = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(layout.size()));
  if (bytes == nullptr) throw nb::python_error();
  char* out = PyBytes_AsString(bytes);
  {
    BlockingCall blocking;
    out = std::copy(layout.prefix.begin(), layout.prefix.end(), out);
    for (const tensors::TensorToWrite* t : layout.order) {
      const char* from = reinterpret_cast<const char*>(t->data.data());
      out = std::copy(from, from + t->data.size(), out);
    }
  }
  return nb::steal<nb::bytes>(bytes);
}

// A whole safetensors file given as bytes, validated as a file is: [(name, dtype, shape, flat
// uint8 array)] in file order, the arrays views of one writable copy of the data buffer.
nb::list LoadSafetensorsBytes(nb::handle data) {
  BufferView view(data);
  std::span<const std::byte> bytes = view.bytes();
  tensors::Header header;
  std::shared_ptr<HostBuffer> buffer;
  {
    BlockingCall blocking;
    uint64_t n = Unwrap(tensors::ParseHeaderLength(
        kInMemory, bytes.first(std::min<size_t>(8, bytes.size())), bytes.size()));
    std::string_view json(reinterpret_cast<const char*>(bytes.data()) + 8, n);
    header = Unwrap(tensors::ParseHeader(kInMemory, json, bytes.size()));
    buffer = Unwrap(HostBuffer::Allocate(header.data_size, std::string(kInMemory) + ": load"));
    std::span<const std::byte> data_bytes = bytes.subspan(header.data_offset());
    std::copy(data_bytes.begin(), data_bytes.end(), buffer->data());
  }
  nb::list out;
  for (const TensorInfo& info : header.tensors) {
    nb::list shape;
    for (uint64_t d : info.shape) shape.append(d);
    out.append(nb::make_tuple(info.name, std::string(tensors::DTypeName(info.dtype)),
                              nb::tuple(shape),
                              ViewOf(buffer->bytes().subspan(info.begin, info.nbytes()), buffer)));
  }
  return out;
}

}  // namespace

void RegisterTensors(nb::module_& m) {
  nb::class_<PyTensorReader>(m, "TensorReader")
      .def(nb::init<const std::string&, const std::string&, int, size_t, int, size_t, bool>(),
           nb::arg("uri"), nb::arg("mode") = "eager", nb::kw_only(), nb::arg("parallelism") = 0,
           nb::arg("part_size") = size_t{8} << 20, nb::arg("staging_buffers") = 2,
           nb::arg("staging_buffer_size") = size_t{64} << 20, nb::arg("verify_checksums") = false)
      .def_prop_ro("uri", &PyTensorReader::Uri)
      .def_prop_ro("mode", &PyTensorReader::ModeName)
      .def_prop_ro("data_size", [](PyTensorReader& r) { return r.reader().header().data_size; })
      .def_prop_ro("data_offset",
                   [](PyTensorReader& r) { return r.reader().header().data_offset(); })
      .def("offset_keys", &PyTensorReader::OffsetKeys)
      .def("metadata", &PyTensorReader::Metadata)
      .def("checksums", &PyTensorReader::Checksums)
      .def("info", &PyTensorReader::Info, nb::arg("name"))
      .def("get", &PyTensorReader::Get, nb::arg("name"))
      .def("read_into", &PyTensorReader::ReadInto, nb::arg("name"), nb::arg("out"))
      .def("read_slice", &PyTensorReader::ReadSlice, nb::arg("name"), nb::arg("dims"))
      .def("read_range_into", &PyTensorReader::ReadRangeInto, nb::arg("begin"), nb::arg("out"))
      .def("close", &PyTensorReader::Close);
  m.def("load_to_device", &LoadToDevice, nb::arg("uri"), nb::arg("device_ptr"),
        nb::arg("device_bytes"), nb::arg("device"), nb::kw_only(), nb::arg("parallelism") = 0,
        nb::arg("part_size") = size_t{8} << 20, nb::arg("staging_buffers") = 2,
        nb::arg("staging_buffer_size") = size_t{64} << 20);
  m.def("write_safetensors", &WriteSafetensors, nb::arg("path"), nb::arg("tensors"),
        nb::arg("metadata") = nb::none(), nb::arg("checksums") = true);
  m.def("serialize_safetensors", &SerializeSafetensors, nb::arg("tensors"),
        nb::arg("metadata") = nb::none());
  m.def("load_safetensors_bytes", &LoadSafetensorsBytes, nb::arg("data"));
}

}  // namespace ferry::python
