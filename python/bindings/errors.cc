#include "bindings/errors.h"

#include <array>

#include "ferry/io.h"

namespace nb = nanobind;

namespace ferry::python {
namespace {

struct ErrorClass {
  StatusCode code;
  const char* name;
  PyObject* builtin;
  const char* doc;
};

// Indexed by StatusCode; filled in RegisterErrors.
std::array<PyObject*, static_cast<size_t>(StatusCode::kInternal) + 1> classes{};

}  // namespace

void RegisterErrors(nb::module_& m) {
  PyObject* base = PyErr_NewExceptionWithDoc(
      "ferry.Error", "Base class of every error ferry raises.", PyExc_Exception, nullptr);
  m.attr("Error") = nb::steal(base);
  const ErrorClass table[] = {
      {StatusCode::kInvalidArgument, "InvalidArgumentError", PyExc_ValueError,
       "A malformed argument: URI, option, pattern."},
      {StatusCode::kNotFound, "NotFoundError", PyExc_FileNotFoundError,
       "A file, URL (404/410) or key that does not exist."},
      {StatusCode::kPermissionDenied, "PermissionDeniedError", PyExc_PermissionError,
       "Access denied (EACCES, HTTP 401/403)."},
      {StatusCode::kOutOfRange, "OutOfRangeError", PyExc_ValueError,
       "A read or index past the end of what exists."},
      {StatusCode::kCorruption, "CorruptionError", PyExc_ValueError,
       "Bytes that violate their format."},
      {StatusCode::kIoError, "IoError", PyExc_OSError,
       "The OS or a peer failed in a way retrying will not fix."},
      {StatusCode::kUnavailable, "UnavailableError", PyExc_ConnectionError,
       "Transient failures persisted past the retry budget."},
      {StatusCode::kTimeout, "DeadlineError", PyExc_TimeoutError,
       "A transfer stalled or a deadline passed."},
      {StatusCode::kSourceChanged, "SourceChangedError", PyExc_OSError,
       "The object changed (size, ETag) while being read."},
      {StatusCode::kUnsupported, "UnsupportedError", PyExc_NotImplementedError,
       "A valid request ferry does not implement."},
      {StatusCode::kCancelled, "CancelledError", PyExc_RuntimeError,
       "Stopped because another task failed first."},
      {StatusCode::kEvicted, "EvictedError", PyExc_LookupError,
       "A plaid-mode tensor that was already replaced by a later one in the staging buffers."},
      {StatusCode::kInternal, "InternalError", PyExc_RuntimeError,
       "A bug in ferry; please report it."},
  };
  for (const ErrorClass& e : table) {
    std::string qualified = std::string("ferry.") + e.name;
    PyObject* bases = PyTuple_Pack(2, base, e.builtin);
    PyObject* cls = PyErr_NewExceptionWithDoc(qualified.c_str(), e.doc, bases, nullptr);
    Py_DECREF(bases);
    if (cls == nullptr) throw nb::python_error();
    m.attr(e.name) = nb::steal(cls);
    classes[static_cast<size_t>(e.code)] = cls;  // the module keeps it alive
  }

  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const StatusError& e) {
      // A Ctrl-C that stopped the call (kCancelled from an interrupted wait) or arrived during
      // it: raise the KeyboardInterrupt Python's handler has pending instead (main thread).
      if (PyErr_CheckSignals() != 0) return;
      PyObject* cls = classes[static_cast<size_t>(e.status().code())];
      PyErr_SetString(cls != nullptr ? cls : PyExc_RuntimeError,
                      io::RedactUris(e.status().message()).c_str());
    }
  });
}

}  // namespace ferry::python
