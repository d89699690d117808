// HTTP(S) sources over libcurl: ranged GETs, pooled connections, retries that resume.
#pragma once

#include <memory>
#include <string>

#include "ferry/io.h"

namespace ferry::io {

// Opens `url`: one `Range: bytes=0-0` request learns the size (from Content-Range), proves the
// server honours Range, and pins the ETag / Last-Modified validators that every later response
// must repeat.
Result<std::unique_ptr<Source>> OpenHttpSource(std::string url, const HttpOptions& options);

}  // namespace ferry::io
