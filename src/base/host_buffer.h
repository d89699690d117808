// HostBuffer: a large, page-aligned block of host memory.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

#include "ferry/status.h"

namespace ferry {

// Anonymous private memory from mmap: page-aligned (so any tensor alignment a file offers is
// kept), returned to the OS on destruction rather than kept by malloc, and backed by transparent
// huge pages where the kernel allows: 512x fewer first-touch faults. (A one-off A/B on the dev
// VM, not in bench/: an eager 2.2 GB load took 0.33-0.74 s with MADV_HUGEPAGE, 0.95-1.37 s
// without.) Contents start zeroed.
class HostBuffer {
 public:
  // kIoError (naming `what` and the size) when the memory cannot be had.
  static Result<std::shared_ptr<HostBuffer>> Allocate(size_t size, std::string_view what);
  ~HostBuffer();
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;

  std::span<std::byte> bytes() const { return {data_, size_}; }
  std::byte* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  HostBuffer(std::byte* data, size_t size) : data_(data), size_(size) {}
  std::byte* data_;
  size_t size_;
};

// Asks for transparent huge pages on the whole 2 MiB pages inside `memory` (any memory: a
// Python bytes object about to be filled, say), before it is first touched. Advisory only.
void AdviseHugePages(std::span<std::byte> memory);

}  // namespace ferry
