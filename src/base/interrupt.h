// Ctrl-C for C++ code that blocks with the GIL released.
//
// Python's own SIGINT handler only sets a flag that the main thread acts on the next time it runs
// bytecode, which a thread blocked in poll() or a retry back-off never does: a stalled server
// used to hold Python for minutes. So while an InterruptScope is open, a SIGINT is also recorded
// here (by a handler chained in front of whatever handler was installed, which still runs), and
// every blocking wait in ferry waits in slices of at most kInterruptPollInterval and gives up
// with kCancelled once Interrupted() is true. The Python binding's error translation turns that
// into the KeyboardInterrupt Python's handler has pending.
//
// A SIGINT with no scope open is Python's business alone (it raises at the next bytecode), so a
// Ctrl-C caught and ignored by a program never cancels a later call.
//
// Thread safety: everything here may be used from any thread; the handler is async-signal-safe.
#pragma once

#include <chrono>

#include "ferry/status.h"

namespace ferry {

inline constexpr std::chrono::milliseconds kInterruptPollInterval{200};

// Marks a blocking call (a read, a load, a loader's next) during which SIGINT cancels ferry's
// waits. Scopes nest and may be open on several threads; the first one to open clears a Ctrl-C
// recorded before and (re)installs the chained handler if another one replaced it.
class InterruptScope {
 public:
  InterruptScope();
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;
};

// Whether SIGINT arrived while a scope was open (and since the first open scope began).
bool Interrupted();

// The status a wait returns when Interrupted().
Status InterruptedStatus();

// Sleeps for `duration`, waking every kInterruptPollInterval to check Interrupted().
Status InterruptibleSleep(std::chrono::milliseconds duration);

}  // namespace ferry
