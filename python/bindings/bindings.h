// One Register* function per binding file; module.cc calls them all.
#pragma once

#include <nanobind/nanobind.h>

#include <memory>

#include "ferry/text.h"

namespace ferry::python {

void RegisterIo(nanobind::module_& m);
void RegisterTensors(nanobind::module_& m);
void RegisterDatasets(nanobind::module_& m);
void RegisterText(nanobind::module_& m);

// The tokenizer inside a `_core.Tokenizer` (TypeError for anything else), for other bindings.
std::shared_ptr<const text::Tokenizer> TokenizerOf(nanobind::handle tokenizer);

}  // namespace ferry::python
