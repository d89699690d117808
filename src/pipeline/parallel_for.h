// ParallelFor: run independent tasks on a few threads; first error wins.
#pragma once

#include <cstddef>
#include <functional>

#include "ferry/status.h"

namespace ferry::pipeline {

// Runs task(i) for every i in [0, count) on up to `threads` threads, the calling thread being
// one of them. Threads claim indices in increasing order from one atomic counter, so neighbouring
// tasks (e.g. adjacent byte ranges) run at about the same time. After a task fails no new task
// starts; the first failure observed is returned once all running tasks have finished.
// With threads <= 1 or count <= 1 this is a plain loop on the calling thread.
Status ParallelFor(size_t count, int threads, const std::function<Status(size_t)>& task);

// The window scheduler (DESIGN.md, batch work such as encoding a batch of texts): like
// ParallelFor, but a thread claims a contiguous window of WindowSize(count, threads, max_window)
// indices per fetch_add on one cache-line-padded counter and runs them in order. Adjacent
// inputs and outputs are then touched by one thread, so cache lines move between cores as whole
// runs rather than item by item, and the counter is hit count/window times instead of count.
// Failure stops every thread at its next item. The helper threads come from a process-wide pool
// that lives on between calls (so per-thread caches stay warm), or are started for the call when
// the pool is busy (a concurrent or nested call). A child forked from a process that used the
// pool gets a fresh one on its first call.
Status ParallelForWindows(size_t count, int threads, size_t max_window,
                          const std::function<Status(size_t)>& task);

// clamp(ceil(count / (4 * threads)), 1, max_window): about four windows per thread, so the
// threads that finish early can take work from the tail of the batch.
size_t WindowSize(size_t count, int threads, size_t max_window);

}  // namespace ferry::pipeline
