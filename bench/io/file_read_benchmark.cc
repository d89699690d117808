// Local file -> memory: ferry's Source::ReadAt and ReadParallel against a plain read() loop over
// the same file into the same (pre-faulted) buffer, page cache warm, in one process.
// Prints one JSON object per line so bench/run.py can compute the ratios.
//
//   file_read_benchmark FILE [--repeat N] [--threads N]

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "ferry/io.h"

namespace {

double Seconds(const std::function<void()>& fn) {
  auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The baseline a careful C programmer writes: read() 1 MiB at a time into the destination.
void PlainReadLoop(const char* path, std::byte* dst, size_t size) {
  int fd = ::open(path, O_RDONLY);
  if (fd < 0) std::perror(path), std::exit(1);
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::read(fd, dst + done, std::min<size_t>(size - done, 1 << 20));
    if (n <= 0) std::perror("read"), std::exit(1);
    done += static_cast<size_t>(n);
  }
  ::close(fd);
}

uint64_t Checksum(const std::vector<std::byte>& bytes) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < bytes.size(); i += 4096)
    h = (h ^ static_cast<uint64_t>(bytes[i])) * 1099511628211ull;
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE [--repeat N] [--threads N]\n", argv[0]);
    return 2;
  }
  const char* path = argv[1];
  int repeat = 5, threads = 2;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--repeat") == 0) repeat = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--threads") == 0) threads = std::atoi(argv[i + 1]);
  }
  auto source = ferry::io::OpenSource(path);
  if (!source.ok()) {
    std::fprintf(stderr, "%s\n", source.status().ToString().c_str());
    return 1;
  }
  size_t size = (*source)->size();
  std::vector<std::byte> dst(size);  // value-initialised: every page is faulted in before timing
  PlainReadLoop(path, dst.data(), size);  // warm the page cache
  uint64_t expected = Checksum(dst);

  struct Case {
    const char* name;
    std::function<void()> run;
  };
  std::vector<Case> cases = {
      {"read() loop", [&] { PlainReadLoop(path, dst.data(), size); }},
      {"ferry ReadAt",
       [&] {
         if (!(*source)->ReadAt(0, dst).ok()) std::exit(1);
       }},
      {"ferry ReadParallel",
       [&] {
         if (!ferry::io::ReadParallel(**source, 0, dst, {threads, 8 << 20}).ok()) std::exit(1);
       }},
  };
  for (const Case& c : cases) {
    std::vector<double> times;
    for (int r = 0; r < repeat; ++r) {
      std::memset(dst.data(), 0, std::min<size_t>(size, 4096));
      times.push_back(Seconds(c.run));
      if (Checksum(dst) != expected) {
        std::fprintf(stderr, "%s read wrong bytes\n", c.name);
        return 1;
      }
    }
    std::sort(times.begin(), times.end());
    double median = times[times.size() / 2];
    std::printf(
        "{\"case\": \"%s\", \"bytes\": %zu, \"seconds\": %.6f, \"gbps\": %.3f, \"threads\": %d}\n",
        c.name, size, median, static_cast<double>(size) / median / 1e9,
        std::strcmp(c.name, "ferry ReadParallel") == 0 ? threads : 1);
  }
  return 0;
}
