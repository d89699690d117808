// One Register* function per binding file; module.cc calls them all.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <initializer_list>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "base/interrupt.h"
#include "ferry/text.h"

namespace ferry::python {

void RegisterIo(nanobind::module_& m);
void RegisterTensors(nanobind::module_& m);
void RegisterDatasets(nanobind::module_& m);
void RegisterText(nanobind::module_& m);

// The GIL released while C++ works. Taking it back while the interpreter shuts down ends the
// thread (Python 3.11: pthread_exit), which unwinds through noexcept C++ frames and aborts the
// process: a daemon thread still inside ferry when the program exits did that (exit code 134).
// Such a thread is parked instead, the process being on its way out.
//
// Checking for shutdown just before taking the GIL back is not enough: a thread can already be
// waiting for the GIL when shutdown begins (seen: 1 exit in 3 with a thread encoding batches in a
// loop). So the exit hook (module.cc, run by atexit while the interpreter is whole) closes the
// door first: it sets exiting(), then lets every thread already on its way back (returning())
// take the GIL and leave before it goes on. A thread that comes back after that parks. The
// thread that runs the exit hook is never parked: it is the one shutting down, which Python
// does not end. calls_in_flight() lets the hook tell parked threads' objects from leaks.
class GilReleased {
 public:
  GilReleased() : state_(PyEval_SaveThread()) { calls_in_flight().fetch_add(1); }
  ~GilReleased() {
    returning().fetch_add(1);
    if ((exiting().load() || Finalizing()) && std::this_thread::get_id() != exit_thread()) {
      returning().fetch_sub(1);
      while (true) std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    calls_in_flight().fetch_sub(1);
    PyEval_RestoreThread(state_);
    returning().fetch_sub(1);
  }
  GilReleased(const GilReleased&) = delete;
  GilReleased& operator=(const GilReleased&) = delete;

  static std::atomic<int>& calls_in_flight() {
    static std::atomic<int> count{0};
    return count;
  }

  // The exit hook's part, called with the GIL held: from now on threads coming back park; those
  // already on their way get the GIL (released here meanwhile) and leave first.
  static void CloseForExit() {
    exit_thread() = std::this_thread::get_id();
    exiting().store(true);
    PyThreadState* state = PyEval_SaveThread();
    while (returning().load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    PyEval_RestoreThread(state);
  }

 private:
  static bool Finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
  }
  static std::atomic<bool>& exiting() {
    static std::atomic<bool> flag{false};
    return flag;
  }
  static std::atomic<int>& returning() {
    static std::atomic<int> count{0};
    return count;
  }
  static std::thread::id& exit_thread() {  // written before exiting() is set, read after
    static std::thread::id id;
    return id;
  }
  PyThreadState* state_;
};

// What a binding that may block on I/O holds while C++ runs: the GIL released, and Ctrl-C
// recorded for ferry's waits (base/interrupt.h), so it stops them within a fraction of a second;
// the error translation (errors.cc) then raises the KeyboardInterrupt Python has pending.
struct BlockingCall {
  GilReleased release;
  InterruptScope interrupts;
};

// A numpy array (of nanobind type `Array`) that takes over `values`' memory: no copy; the
// array keeps it alive and frees it.
template <typename Array, typename T>
Array OwnedArray(std::vector<T>&& values, std::initializer_list<size_t> shape) {
  auto* owner = new std::vector<T>(std::move(values));
  nanobind::capsule capsule(owner, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  static T empty_sentinel{};  // numpy wants a non-null pointer even when empty
  return Array(owner->empty() ? &empty_sentinel : owner->data(), shape.size(), shape.begin(),
               capsule);
}

// Owns an object that runs threads (a loader's pipeline) for a Python object. A process forked
// while it was alive (a DataLoader worker) holds a copy of it whose threads do not exist there:
// destroying that copy would cancel and join them, which crashes (seen: a worker segfaulted
// when it replaced a ShardDataset's record of an in-process iteration). So in a forked child the
// object is left as it is, never destroyed: a little memory, once per worker.
template <typename T>
class ForkSafeOwner {
 public:
  ForkSafeOwner() = default;
  explicit ForkSafeOwner(std::unique_ptr<T> owned) : owned_(std::move(owned)) {}
  ForkSafeOwner& operator=(std::unique_ptr<T> owned) {
    owned_ = std::move(owned);
    pid_ = ::getpid();
    return *this;
  }
  ForkSafeOwner(const ForkSafeOwner&) = delete;
  ForkSafeOwner& operator=(const ForkSafeOwner&) = delete;
  ~ForkSafeOwner() {
    if (::getpid() != pid_) (void)owned_.release();
  }
  T* operator->() const { return owned_.get(); }
  T& operator*() const { return *owned_; }

 private:
  std::unique_ptr<T> owned_;
  pid_t pid_ = ::getpid();
};

// The tokenizer inside a `_core.Tokenizer` (TypeError for anything else), for other bindings.
std::shared_ptr<const text::Tokenizer> TokenizerOf(nanobind::handle tokenizer);

}  // namespace ferry::python
