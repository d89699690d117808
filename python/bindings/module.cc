// ferry._core: the compiled half of `import ferry`. Keep this private; the public names live in
// python/ferry/*.py.

#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>

#include "base/cuda_runtime.h"
#include "bindings/bindings.h"
#include "bindings/errors.h"
#include "ferry/version.h"

NB_MODULE(_core, m) {
  m.attr("__version__") = ferry::kVersion;
  m.def(
      "cuda_description", [] { return ferry::DescribeCuda(ferry::ProbeCuda()); },
      "How this build of ferry sees CUDA, e.g. 'CUDA 13.0 runtime, no device (...)'.");
  m.def(
      "cuda_device_count", [] { return ferry::ProbeCuda().device_count; },
      "CUDA devices this build of ferry can use (0 without the toolkit, a driver or a GPU).");
  ferry::python::RegisterErrors(m);
  ferry::python::RegisterIo(m);
  ferry::python::RegisterTensors(m);
  ferry::python::RegisterDatasets(m);
  ferry::python::RegisterText(m);
  // At exit, GilReleased parks the daemon threads still inside ferry (see it). They hold their
  // objects, which nanobind would report as leaks; with none in flight the report stays on, so a
  // real leak fails the tests (scripts/test.sh).
  m.def("_at_exit", [] {
    ferry::python::GilReleased::CloseForExit();
    if (ferry::python::GilReleased::calls_in_flight() > 0) nanobind::set_leak_warnings(false);
  });
  nanobind::module_::import_("atexit").attr("register")(m.attr("_at_exit"));
}
