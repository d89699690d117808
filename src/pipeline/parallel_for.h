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

}  // namespace ferry::pipeline
