// ferry.io: bytes from any URI.

#include "ferry/io.h"

#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "base/host_buffer.h"
#include "bindings/bindings.h"
#include "bindings/errors.h"

namespace nb = nanobind;

namespace ferry::python {
namespace {

nb::bytes Read(const std::string& uri, uint64_t offset, std::optional<uint64_t> length,
               int parallelism, size_t part_size) {
  std::unique_ptr<io::Source> source;
  {
    BlockingCall blocking;
    source = Unwrap(io::OpenSource(uri));
  }
  uint64_t size = source->size();
  if (offset > size) {
    ThrowIfError(OutOfRange(uri + ": offset " + std::to_string(offset) + " is past the end (size " +
                            std::to_string(size) + ")"));
  }
  uint64_t n = length.value_or(size - offset);
  if (n > static_cast<uint64_t>(PY_SSIZE_T_MAX))
    ThrowIfError(InvalidArgument(uri + ": length too large"));
  // Read straight into the bytes object: it is not visible to any other code until we return.
  nb::object out = nb::steal(PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(n)));
  if (!out.is_valid()) throw nb::python_error();
  auto* dst = reinterpret_cast<std::byte*>(PyBytes_AS_STRING(out.ptr()));
  // Fresh memory filled from the page cache: huge pages mean 512x fewer first-touch faults
  // (bench: a 1 GiB local read went from 4.6 to 13.6 GB/s). Not for network reads: there a
  // huge-page fault inside recv() stalls the stream (1 GiB from S3 on one connection: 1.02
  // GB/s without, 0.58-0.73 with).
  if (Result<io::Uri> parsed = io::ParseUri(uri); parsed.ok() && parsed->scheme == io::Scheme::kFile) {
    AdviseHugePages({dst, static_cast<size_t>(n)});
  }
  {
    BlockingCall blocking;
    ThrowIfError(
        io::ReadParallel(*source, offset, {dst, static_cast<size_t>(n)}, {parallelism, part_size}));
  }
  return nb::borrow<nb::bytes>(out);
}

std::vector<std::string> ExpandPattern(const std::string& pattern) {
  BlockingCall blocking;
  return Unwrap(io::ExpandUriPattern(pattern));
}

}  // namespace

void RegisterIo(nb::module_& m) {
  m.def(
      "expand_braces", [](const std::string& p) { return Unwrap(io::ExpandBraces(p)); },
      nb::arg("pattern"), "'a-{00..02}.tar' -> ['a-00.tar', 'a-01.tar', 'a-02.tar'].");
  m.def("expand_uri_pattern", &ExpandPattern, nb::arg("pattern"),
        "URIs matching a local glob or an s3:// prefix or pattern; see ferry.io.list.");
  m.def("read", &Read, nb::arg("uri"), nb::arg("offset") = 0, nb::arg("length") = nb::none(),
        nb::kw_only(), nb::arg("parallelism") = 0, nb::arg("part_size") = size_t{8} << 20,
        "Bytes [offset, offset + length) of a path or URL; see ferry.io.read.");
  m.def(
      "resolve_reference",
      [](const std::string& base, const std::string& reference, std::optional<bool> cross_origin) {
        return Unwrap(io::ResolveReference(
            base, reference, cross_origin.value_or(io::CrossOriginAllowedByEnvironment())));
      },
      nb::arg("base"), nb::arg("reference"), nb::arg("allow_cross_origin") = nb::none(),
      "Where a name inside an index read from `base` points; see io::ResolveReference.");
  m.def(
      "without_query", [](const std::string& uri) { return std::string(io::WithoutQuery(uri)); },
      nb::arg("uri"), "A URL without its query and fragment: what its extension is read from.");
  m.def(
      "redact_uris", [](const std::string& text) { return io::RedactUris(text); }, nb::arg("text"),
      "`text` with passwords and credential query parameters of every URI hidden.");
}

}  // namespace ferry::python
