// LoadToDevice: file -> pinned staging buffers -> CUDA device memory, reads overlapping copies.

#include "base/cuda_runtime.h"
#include "ferry/tensors.h"

#ifdef FERRY_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace ferry::tensors {
namespace {

#ifdef FERRY_HAVE_CUDA
Status CudaError(cudaError_t err, const std::string& what) {
  return IoError(what + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

#define FERRY_CUDA_RETURN_IF_ERROR(call, what)                                   \
  do {                                                                           \
    cudaError_t ferry_cuda_err_ = (call);                                        \
    if (ferry_cuda_err_ != cudaSuccess) return CudaError(ferry_cuda_err_, what); \
  } while (0)

// Page-locks host memory for the life of the object, so device copies from it are true DMA and
// can run asynchronously.
class PageLock {
 public:
  PageLock(std::span<std::byte> bytes) : bytes_(bytes) {}
  Status Lock(const std::string& what) {
    FERRY_CUDA_RETURN_IF_ERROR(
        cudaHostRegister(bytes_.data(), bytes_.size(), cudaHostRegisterDefault), what);
    locked_ = true;
    return Status::Ok();
  }
  ~PageLock() {
    if (locked_) (void)cudaHostUnregister(bytes_.data());
  }

 private:
  std::span<std::byte> bytes_;
  bool locked_ = false;
};

class CudaStream {
 public:
  ~CudaStream() {
    if (stream_ != nullptr) {
      (void)cudaStreamSynchronize(stream_);  // never free memory a copy is still reading
      (void)cudaStreamDestroy(stream_);
    }
  }
  Status Create(const std::string& what) {
    FERRY_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), what);
    return Status::Ok();
  }
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};
#endif

}  // namespace

Status LoadToDevice(io::Source& source, const Header& header, const ReaderOptions& options,
                    int device, void* device_base, uint64_t device_bytes) {
  const std::string target = source.uri() + ": cannot load to cuda:" + std::to_string(device);
  CudaAvailability cuda = ProbeCuda();
  if (!cuda.built || cuda.device_count == 0) return Unsupported(target + " (" + cuda.reason + ")");
  if (device < 0 || device >= cuda.device_count) {
    return InvalidArgument(target + " (this machine has " + std::to_string(cuda.device_count) +
                           " CUDA device" + (cuda.device_count == 1 ? "" : "s") + ")");
  }
  if (device_bytes != header.data_size) {
    return SourceChanged(target + ": the file holds " + std::to_string(header.data_size) +
                         " bytes of tensors but " + std::to_string(device_bytes) +
                         " were allocated (was it replaced since it was opened?)");
  }
  if (header.data_size == 0) return Status::Ok();  // nothing to copy, nothing to page-lock
#ifdef FERRY_HAVE_CUDA
  int previous_device = 0;
  FERRY_CUDA_RETURN_IF_ERROR(cudaGetDevice(&previous_device), target);
  FERRY_CUDA_RETURN_IF_ERROR(cudaSetDevice(device), target);
  // The caller's thread (Python's, with torch on it) keeps its own current device.
  struct RestoreDevice {
    int device;
    ~RestoreDevice() { (void)cudaSetDevice(device); }
  } restore{previous_device};
  // Declaration order is destruction order in reverse: the stream is synchronised, then the
  // staging memory unlocked, then the read-ahead stopped and its memory freed.
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<TensorStream> tensors,
                         TensorStream::Open(&source, &header, options));
  PageLock lock(tensors->staging_bytes());
  FERRY_RETURN_IF_ERROR(lock.Lock(target + ": page-locking the staging buffers"));
  CudaStream stream;
  FERRY_RETURN_IF_ERROR(stream.Create(target));
  auto* base = static_cast<std::byte*>(device_base);
  while (true) {
    FERRY_ASSIGN_OR_RETURN(std::optional<TensorChunk> chunk, tensors->Next());
    if (!chunk) break;
    const TensorInfo& info = header.tensors[chunk->tensor];
    FERRY_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(base + info.begin + chunk->offset_in_tensor, chunk->bytes.data(),
                        chunk->bytes.size(), cudaMemcpyHostToDevice, stream.get()),
        target + ": copying tensor '" + info.name + "'");
    // The read-ahead already fills the other buffer; this one is handed back only after its
    // copies are done.
    if (chunk->last_in_buffer) {
      FERRY_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream.get()), target);
    }
  }
  FERRY_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream.get()), target);
  return Status::Ok();
#else
  (void)options;
  (void)device_base;
  return Internal(target + ": CUDA reported present in a build without it");
#endif
}

}  // namespace ferry::tensors
