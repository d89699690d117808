#include "io/file_source.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <thread>

namespace ferry::io {
namespace {

// Linux moves at most 0x7ffff000 bytes per read call; ask for 1 GiB at a time so huge reads
// are a loop of full-size calls rather than one call that silently comes back short.
constexpr size_t kMaxReadPerCall = size_t{1} << 30;

// Opens `path` read-only and checks it is a regular file. Returns the fd and its size.
Result<std::pair<int, uint64_t>> OpenRegularFile(const std::string& uri, const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, uri + ": cannot open");
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus(err, uri + ": cannot stat");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument(uri +
                           (S_ISDIR(st.st_mode) ? ": is a directory" : ": is not a regular file") +
                           " (expected a regular file)");
  }
  return std::pair<int, uint64_t>{fd, static_cast<uint64_t>(st.st_size)};
}

class FileSource final : public Source {
 public:
  FileSource(std::string uri, int fd, uint64_t size)
      : uri_(std::move(uri)), fd_(fd), size_(size), version_(ModificationTime(fd)) {}
  ~FileSource() override { ::close(fd_); }

  // One thread per core, up to 8: a warm page-cache read is a memcpy bound per core (two threads
  // read 1.95x as fast as one on the 2-core dev VM, bench/RESULTS.md).
  int default_parallelism() const override {
    return static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
  }

  const std::string& uri() const override { return uri_; }
  uint64_t size() const override { return size_; }
  std::string version() const override { return version_; }

  Status ReadAt(uint64_t offset, std::span<std::byte> dst) override {
    if (offset > size_ || dst.size() > size_ - offset) {
      return OutOfRange(uri_ + ": read of " + std::to_string(dst.size()) + " bytes at offset " +
                        std::to_string(offset) + " is past the end (size " + std::to_string(size_) +
                        ")");
    }
    size_t done = 0;
    while (done < dst.size()) {
      size_t want = std::min(dst.size() - done, kMaxReadPerCall);
      ssize_t n = ::pread(fd_, dst.data() + done, want, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno,
                           uri_ + ": read failed at offset " + std::to_string(offset + done));
      }
      if (n == 0) {
        return SourceChanged(uri_ + ": file ended at offset " + std::to_string(offset + done) +
                             " but had " + std::to_string(size_) +
                             " bytes when opened (truncated while reading?)");
      }
      done += static_cast<size_t>(n);
    }
    return Status::Ok();
  }

 private:
  static std::string ModificationTime(int fd) {
    struct stat st;
    if (::fstat(fd, &st) != 0) return "";
    char text[48];
    std::snprintf(text, sizeof text, "mtime %lld.%09ld", static_cast<long long>(st.st_mtim.tv_sec),
                  static_cast<long>(st.st_mtim.tv_nsec));
    return text;
  }

  std::string uri_;
  int fd_;
  uint64_t size_;
  std::string version_;
};

}  // namespace

Result<std::unique_ptr<Source>> OpenFileSource(std::string uri, const std::string& path) {
  FERRY_ASSIGN_OR_RETURN(auto opened, OpenRegularFile(uri, path));
  // Sequential scans dominate (loading, streaming shards); a larger kernel read-ahead helps them
  // and costs random readers nothing they would notice.
  (void)::posix_fadvise(opened.first, 0, 0, POSIX_FADV_SEQUENTIAL);
  return std::unique_ptr<Source>(new FileSource(std::move(uri), opened.first, opened.second));
}

Result<std::unique_ptr<MappedFile>> MappedFile::Open(std::string_view uri) {
  FERRY_ASSIGN_OR_RETURN(Uri parsed, ParseUri(uri));
  if (parsed.scheme != Scheme::kFile) {
    return InvalidArgument(std::string(uri) + ": mmap needs a local file (got a URL)");
  }
  FERRY_ASSIGN_OR_RETURN(auto opened, OpenRegularFile(std::string(uri), parsed.location));
  auto [fd, size] = opened;
  if (size == 0) {  // mmap of length 0 is EINVAL; an empty file is an empty span
    return std::unique_ptr<MappedFile>(new MappedFile(std::string(uri), fd, nullptr, 0));
  }
  // Writable but private: writes land in copy-on-write pages and never reach the file, so callers
  // may hand out mutable views (torch and numpy expect them) without risk to the file.
  void* data = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  if (data == MAP_FAILED) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus(err, std::string(uri) + ": mmap failed");
  }
  // The descriptor stays open for CurrentSize().
  return std::unique_ptr<MappedFile>(
      new MappedFile(std::string(uri), fd, static_cast<std::byte*>(data), size));
}

Result<uint64_t> MappedFile::CurrentSize() const {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return ErrnoStatus(errno, path_ + ": fstat failed");
  return static_cast<uint64_t>(st.st_size);
}

MappedFile::~MappedFile() {
  if (size_ != 0) ::munmap(data_, size_);
  ::close(fd_);
}

}  // namespace ferry::io
