// The one place where a ferry Status becomes a Python exception.
//
// Every StatusCode has an exception class that subclasses both ferry.Error and the builtin a
// Python user would catch for that situation (pyarrow's pattern), e.g.
//   ferry.NotFoundError(ferry.Error, FileNotFoundError).
// Bindings call Unwrap()/ThrowIfError(); the registered translator raises the right class.
#pragma once

#include <nanobind/nanobind.h>

#include <exception>
#include <utility>

#include "ferry/status.h"

namespace ferry::python {

class StatusError : public std::exception {
 public:
  explicit StatusError(Status status) : status_(std::move(status)) {}
  const Status& status() const { return status_; }
  const char* what() const noexcept override { return status_.message().c_str(); }

 private:
  Status status_;
};

inline void ThrowIfError(Status status) {
  if (!status.ok()) throw StatusError(std::move(status));
}

template <typename T>
T Unwrap(Result<T> result) {
  if (!result.ok()) throw StatusError(std::move(result).status());
  return std::move(result).value();
}

// Creates ferry.Error and one subclass per StatusCode in `m`, and registers the translator.
void RegisterErrors(nanobind::module_& m);

}  // namespace ferry::python
