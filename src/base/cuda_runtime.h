// What the CUDA runtime can offer this process. ferry links the CUDA runtime statically when the
// toolkit is present at build time, so no CUDA library is needed to run; without a driver or GPU
// this reports why, and every CPU path works as before.
#pragma once

#include <string>

namespace ferry {

struct CudaAvailability {
  bool built = false;       // compiled with the CUDA toolkit
  int runtime_version = 0;  // e.g. 13000 for 13.0; 0 when not built
  int device_count = 0;
  std::string reason;  // why device_count is 0, for messages
};

CudaAvailability ProbeCuda();

// "CUDA 13.0 runtime, 1 device" / "CUDA 13.0 runtime, no device (...)" / "built without CUDA".
std::string DescribeCuda(const CudaAvailability& cuda);

}  // namespace ferry
