#include "base/cuda_runtime.h"

#ifdef FERRY_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace ferry {

CudaAvailability ProbeCuda() {
  CudaAvailability cuda;
#ifdef FERRY_HAVE_CUDA
  cuda.built = true;
  cuda.runtime_version = CUDART_VERSION;
  cudaError_t err = cudaGetDeviceCount(&cuda.device_count);
  if (err == cudaErrorInsufficientDriver) {
    // What cudart says when no driver is installed at all, the common case on CPU machines.
    cuda.device_count = 0;
    cuda.reason = "no NVIDIA driver, or one older than the CUDA runtime";
  } else if (err != cudaSuccess) {
    cuda.device_count = 0;
    cuda.reason = cudaGetErrorString(err);
  } else if (cuda.device_count == 0) {
    cuda.reason = "no CUDA device found";
  }
#else
  cuda.reason = "ferry was built without the CUDA toolkit";
#endif
  return cuda;
}

std::string DescribeCuda(const CudaAvailability& cuda) {
  if (!cuda.built) return "built without CUDA";
  std::string out = "CUDA " + std::to_string(cuda.runtime_version / 1000) + "." +
                    std::to_string(cuda.runtime_version % 1000 / 10) + " runtime, ";
  if (cuda.device_count == 0) return out + "no device (" + cuda.reason + ")";
  return out + std::to_string(cuda.device_count) +
         (cuda.device_count == 1 ? " device" : " devices");
}

}  // namespace ferry
