// Local files: positional reads with pread(2).
#pragma once

#include <memory>
#include <string>

#include "ferry/io.h"

namespace ferry::io {

// Opens `path` (the location of a parsed file URI) for reading. `uri` is the text the user gave,
// used in messages. Directories, FIFOs, sockets and devices are rejected with a clear error.
Result<std::unique_ptr<Source>> OpenFileSource(std::string uri, const std::string& path);

}  // namespace ferry::io
