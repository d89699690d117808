#include "tests/support/test_support.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace ferry::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base ? base : "/tmp") + "/ferry-test-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) std::abort();
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::vector<std::byte> TestBytes(size_t size, uint64_t seed) {
  std::vector<std::byte> out(size);
  for (size_t i = 0; i < size; ++i) {
    uint64_t x = (i + seed * 0x9E3779B97F4A7C15ull) * 0xD6E8FEB86659FD93ull;
    out[i] = static_cast<std::byte>(x >> 56);
  }
  return out;
}

void WriteFile(const std::string& path, const std::vector<std::byte>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out) std::abort();
}

std::vector<std::byte> UstarArchive(const std::vector<std::pair<std::string, std::string>>& files) {
  std::vector<std::byte> out;
  auto append = [&](const char* data, size_t size) {
    const auto* bytes = reinterpret_cast<const std::byte*>(data);
    out.insert(out.end(), bytes, bytes + size);
    out.resize((out.size() + 511) / 512 * 512);  // pad to the block
  };
  for (const auto& [name, contents] : files) {
    if (name.size() > 99) std::abort();
    char header[512] = {};
    std::snprintf(header, 100, "%s", name.c_str());
    std::snprintf(header + 100, 8, "%07o", 0644);
    std::snprintf(header + 108, 8, "%07o", 0);
    std::snprintf(header + 116, 8, "%07o", 0);
    std::snprintf(header + 124, 12, "%011zo", contents.size());
    std::snprintf(header + 136, 12, "%011o", 0);
    header[156] = '0';
    std::memcpy(header + 257, "ustar\0" "00", 8);
    std::memset(header + 148, ' ', 8);  // the checksum counts its own field as spaces
    unsigned sum = 0;
    for (unsigned char c : header) sum += c;
    std::snprintf(header + 148, 8, "%06o", sum);
    append(header, sizeof header);
    append(contents.data(), contents.size());
  }
  out.resize(out.size() + 1024);
  return out;
}

Result<std::unique_ptr<ServerProcess>> ServerProcess::Start(const std::string& script,
                                                            const std::vector<std::string>& args) {
  std::string program = std::string(FERRY_SOURCE_DIR) + "/tests/servers/" + script;
  std::vector<std::string> argv_strings = {FERRY_TEST_PYTHON, program};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  int to_child[2], from_child[2];
  if (::pipe2(to_child, O_CLOEXEC) != 0 || ::pipe2(from_child, O_CLOEXEC) != 0) {
    return IoError("pipe failed");
  }
  pid_t pid = ::fork();
  if (pid < 0) return IoError("fork failed");
  if (pid == 0) {
    ::dup2(to_child[0], STDIN_FILENO);
    ::dup2(from_child[1], STDOUT_FILENO);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  ::close(to_child[0]);
  ::close(from_child[1]);

  // Read the "PORT <n>" line.
  std::string line;
  char c;
  while (line.size() < 256 && ::read(from_child[0], &c, 1) == 1 && c != '\n') line += c;
  ::close(from_child[0]);
  int port = 0;
  if (std::sscanf(line.c_str(), "PORT %d", &port) != 1 || port <= 0) {
    ::close(to_child[1]);
    ::waitpid(pid, nullptr, 0);
    return Unavailable(program + " did not start (said '" + line + "')");
  }
  return std::unique_ptr<ServerProcess>(new ServerProcess(pid, to_child[1], port));
}

ServerProcess::~ServerProcess() {
  ::close(stdin_fd_);  // the server exits at EOF on stdin
  for (int i = 0; i < 200; ++i) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
    ::usleep(50'000);
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
}

std::string ServerProcess::Url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/" + path;
}

bool NginxAvailable() { return ::access("/usr/sbin/nginx", X_OK) == 0; }

std::string SharedDataDir() {
  const char* env = std::getenv("FERRY_SHARED_DATA");
  std::string dir = env != nullptr ? env : std::string(FERRY_SOURCE_DIR) + "/../shared/data";
  struct stat st {};
  return ::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) ? dir : "";
}

}  // namespace ferry::testing
