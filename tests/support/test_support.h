// Helpers shared by ferry's C++ tests: temporary folders, deterministic test bytes, and real
// loopback servers (nginx, the fault-injecting server) run as child processes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ferry/status.h"

namespace ferry::testing {

// A fresh folder under $TMPDIR, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// `size` bytes that differ at every offset in a way a shifted or repeated range would not
// reproduce (a multiplicative hash of the offset, not a short period).
std::vector<std::byte> TestBytes(size_t size, uint64_t seed = 0);

void WriteFile(const std::string& path, const std::vector<std::byte>& bytes);

// A ustar archive of regular files (name up to 99 bytes, contents), ending in two zero blocks.
std::vector<std::byte> UstarArchive(const std::vector<std::pair<std::string, std::string>>& files);

// A server program from tests/servers/ run with the test Python. It prints "PORT <n>" when
// ready and exits when its stdin closes, which the destructor does.
class ServerProcess {
 public:
  // `script` is relative to tests/servers/. Fails with the reason if it does not come up.
  static Result<std::unique_ptr<ServerProcess>> Start(const std::string& script,
                                                      const std::vector<std::string>& args);
  ~ServerProcess();
  int port() const { return port_; }
  std::string Url(const std::string& path) const;

 private:
  ServerProcess(int pid, int stdin_fd, int port) : pid_(pid), stdin_fd_(stdin_fd), port_(port) {}
  int pid_;
  int stdin_fd_;
  int port_;
};

bool NginxAvailable();

// The workplace's shared third-party test data (tokenizers, tensors, shards, corpora):
// $FERRY_SHARED_DATA, else ../shared/data beside the source tree. Empty when absent; tests
// then skip with a message saying so.
std::string SharedDataDir();

}  // namespace ferry::testing
