// libFuzzer target: arbitrary bytes as a (maybe gzip-compressed) tar shard. Reading it into
// WebDataset samples must never crash, hang or allocate what a header claims; every error must
// name the shard.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ferry/datasets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The reader takes a URI; a file in memory-backed /dev/shm keeps this fast.
  static const std::string path = "/dev/shm/ferry-tar-fuzz-" + std::to_string(::getpid()) + ".tar";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);

  ferry::datasets::TarOptions options;
  options.max_member_size = 1 << 20;
  options.stream.chunk_size = 4096;  // exercise chunk boundaries
  auto reader = ferry::datasets::SampleReader::Open(path, options);
  if (!reader.ok()) std::abort();  // a regular file always opens
  for (int i = 0; i < 100000; ++i) {
    auto sample = (*reader)->Next();
    if (!sample.ok()) {
      if (sample.status().message().find(path) == std::string::npos) std::abort();
      break;
    }
    if (!sample->has_value()) break;
    if ((*sample)->fields.empty() || (*sample)->url != path) std::abort();
  }
  return 0;
}
