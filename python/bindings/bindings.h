// One Register* function per binding file; module.cc calls them all.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <initializer_list>
#include <memory>
#include <vector>

#include "ferry/text.h"

namespace ferry::python {

void RegisterIo(nanobind::module_& m);
void RegisterTensors(nanobind::module_& m);
void RegisterDatasets(nanobind::module_& m);
void RegisterText(nanobind::module_& m);

// A numpy array (of nanobind type `Array`) that takes over `values`' memory: no copy; the
// array keeps it alive and frees it.
template <typename Array, typename T>
Array OwnedArray(std::vector<T>&& values, std::initializer_list<size_t> shape) {
  auto* owner = new std::vector<T>(std::move(values));
  nanobind::capsule capsule(owner, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  static T empty_sentinel{};  // numpy wants a non-null pointer even when empty
  return Array(owner->empty() ? &empty_sentinel : owner->data(), shape.size(), shape.begin(),
               capsule);
}

// The tokenizer inside a `_core.Tokenizer` (TypeError for anything else), for other bindings.
std::shared_ptr<const text::Tokenizer> TokenizerOf(nanobind::handle tokenizer);

}  // namespace ferry::python
