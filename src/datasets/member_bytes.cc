// The pool behind MemberAllocator (ferry/datasets.h).

#include <pthread.h>

#include <atomic>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "ferry/datasets.h"

namespace ferry::datasets::internal {
namespace {

constexpr size_t kBlock = size_t{64} << 10;      // pooled sizes are rounded up to this
constexpr size_t kLargest = size_t{4} << 20;     // bigger buffers are mmap'd by malloc anyway
constexpr size_t kKeptBytes = size_t{32} << 20;  // free memory the pool holds at most

struct Pool {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<std::byte*>> free;  // blocks of 64 KiB -> buffers
  size_t kept = 0;
};

std::atomic<Pool*> current{nullptr};

// A forked child has only the forking thread: the parent's pool (and maybe its locked mutex)
// is forgotten there, leaked, and the child starts a fresh one.
Pool& GetPool() {
  Pool* pool = current.load(std::memory_order_acquire);
  if (pool) return *pool;
  static std::once_flag atfork;
  std::call_once(atfork, [] { pthread_atfork(nullptr, nullptr, [] { current.store(nullptr); }); });
  auto* fresh = new Pool();
  if (current.compare_exchange_strong(pool, fresh)) return *fresh;
  delete fresh;  // another thread installed one first
  return *pool;
}

bool Pooled(size_t size) { return size >= kBlock && size <= kLargest; }
size_t Blocks(size_t size) { return (size + kBlock - 1) / kBlock; }

}  // namespace

std::byte* AllocateMemberBytes(size_t size) {
  if (!Pooled(size)) return static_cast<std::byte*>(::operator new(size));
  size_t blocks = Blocks(size);
  Pool& pool = GetPool();
  {
    std::lock_guard<std::mutex> lock(pool.mu);
    auto it = pool.free.find(blocks);
    if (it != pool.free.end() && !it->second.empty()) {
      std::byte* bytes = it->second.back();  // the most recently freed: its pages are warm
      it->second.pop_back();
      pool.kept -= blocks * kBlock;
      return bytes;
    }
  }
  return static_cast<std::byte*>(::operator new(blocks * kBlock));
}

void FreeMemberBytes(std::byte* bytes, size_t size) noexcept {
  if (!Pooled(size)) {
    ::operator delete(bytes);
    return;
  }
  size_t blocks = Blocks(size);
  Pool& pool = GetPool();
  {
    std::lock_guard<std::mutex> lock(pool.mu);
    if (pool.kept + blocks * kBlock <= kKeptBytes) {
      try {
        pool.free[blocks].push_back(bytes);
        pool.kept += blocks * kBlock;
        return;
      } catch (const std::bad_alloc&) {
        // no room to remember it: free it below
      }
    }
  }
  ::operator delete(bytes);
}

}  // namespace ferry::datasets::internal
