#include "base/interrupt.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

namespace ferry {
namespace {

std::atomic<int> open_scopes{0};
std::atomic<bool> interrupted{false};
struct sigaction previous{};  // the handler ours runs after; written under install_mu only
std::mutex install_mu;

void OnSigint(int signal, siginfo_t* info, void* context) {
  if (open_scopes.load(std::memory_order_relaxed) > 0) {
    interrupted.store(true, std::memory_order_relaxed);
  }
  if (previous.sa_flags & SA_SIGINFO) {
    if (previous.sa_sigaction != nullptr) previous.sa_sigaction(signal, info, context);
  } else if (previous.sa_handler == SIG_DFL) {
    // Nobody handled SIGINT before: do what the default would have done.
    ::signal(SIGINT, SIG_DFL);
    ::raise(SIGINT);
  } else if (previous.sa_handler != SIG_IGN) {
    previous.sa_handler(signal);
  }
}

void InstallIfReplaced() {
  std::lock_guard<std::mutex> lock(install_mu);
  struct sigaction current{};
  if (::sigaction(SIGINT, nullptr, &current) != 0) return;
  if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == OnSigint) return;
  if (!(current.sa_flags & SA_SIGINFO) && current.sa_handler == SIG_IGN) return;  // ignored
  struct sigaction ours{};
  ours.sa_sigaction = OnSigint;
  ours.sa_flags = SA_SIGINFO | (current.sa_flags & SA_RESTART);
  sigemptyset(&ours.sa_mask);
  previous = current;
  ::sigaction(SIGINT, &ours, nullptr);
}

}  // namespace

InterruptScope::InterruptScope() {
  if (open_scopes.fetch_add(1) == 0) {
    interrupted.store(false);
    InstallIfReplaced();
  }
}

InterruptScope::~InterruptScope() { open_scopes.fetch_sub(1); }

bool Interrupted() { return interrupted.load(std::memory_order_relaxed); }

Status InterruptedStatus() { return Cancelled("interrupted (SIGINT, Ctrl-C)"); }

Status InterruptibleSleep(std::chrono::milliseconds duration) {
  auto until = std::chrono::steady_clock::now() + duration;
  while (true) {
    if (Interrupted()) return InterruptedStatus();
    auto left = until - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return Status::Ok();
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(left, kInterruptPollInterval));
  }
}

}  // namespace ferry
