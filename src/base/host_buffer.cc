#include "base/host_buffer.h"

#include <sys/mman.h>

#include <cerrno>
#include <string>

namespace ferry {

Result<std::shared_ptr<HostBuffer>> HostBuffer::Allocate(size_t size, std::string_view what) {
  if (size == 0) return std::shared_ptr<HostBuffer>(new HostBuffer(nullptr, 0));
  void* data = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (data == MAP_FAILED) {
    return ErrnoStatus(errno, std::string(what) + ": cannot allocate " + std::to_string(size) +
                                  " bytes of host memory");
  }
  constexpr size_t kHugePage = size_t{2} << 20;
  if (size >= kHugePage) (void)::madvise(data, size, MADV_HUGEPAGE);  // advisory only
  return std::shared_ptr<HostBuffer>(new HostBuffer(static_cast<std::byte*>(data), size));
}

HostBuffer::~HostBuffer() {
  if (size_ != 0) ::munmap(data_, size_);
}

}  // namespace ferry
