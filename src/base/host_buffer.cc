#include "base/host_buffer.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <string>

namespace ferry {

Result<std::shared_ptr<HostBuffer>> HostBuffer::Allocate(size_t size, std::string_view what) {
  if (size == 0) return std::shared_ptr<HostBuffer>(new HostBuffer(nullptr, 0));
  void* data = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (data == MAP_FAILED) {
    return ErrnoStatus(errno, std::string(what) + ": cannot allocate " + std::to_string(size) +
                                  " bytes of host memory");
  }
  AdviseHugePages({static_cast<std::byte*>(data), size});
  return std::shared_ptr<HostBuffer>(new HostBuffer(static_cast<std::byte*>(data), size));
}

void AdviseHugePages(std::span<std::byte> memory) {
  constexpr uintptr_t kHugePage = uintptr_t{2} << 20;
  uintptr_t begin = (reinterpret_cast<uintptr_t>(memory.data()) + kHugePage - 1) & ~(kHugePage - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(memory.data()) + memory.size()) & ~(kHugePage - 1);
  // Only whole huge pages inside the range: the memory around it may belong to someone else.
  if (end > begin) (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

HostBuffer::~HostBuffer() {
  if (size_ != 0) ::munmap(data_, size_);
}

}  // namespace ferry
