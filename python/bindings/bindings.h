// One Register* function per binding file; module.cc calls them all.
#pragma once

#include <nanobind/nanobind.h>

namespace ferry::python {

void RegisterIo(nanobind::module_& m);
void RegisterTensors(nanobind::module_& m);
void RegisterDatasets(nanobind::module_& m);
void RegisterText(nanobind::module_& m);

}  // namespace ferry::python
