#include "io/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::io {
namespace {

// The process umask, read without changing it (umask(2) would race with other threads).
mode_t CurrentUmask() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Umask:", 0) == 0)
      return static_cast<mode_t>(std::stoul(line.substr(6), nullptr, 8));
  }
  return 022;
}

std::string DirectoryOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

constexpr std::string_view kTempMarker = ".ferry-tmp-";
constexpr size_t kTempSuffix = 6;  // mkostemp's XXXXXX

// The temporaries of this process's live AtomicFiles, by (device, inode): the cleaner never
// opens these (see the header on NFS locks).
class LiveTemporaries {
 public:
  static LiveTemporaries& Get() {
    static LiveTemporaries* live = new LiveTemporaries;  // never destroyed: used at exit too
    return *live;
  }
  void Add(dev_t dev, ino_t ino) {
    std::lock_guard<std::mutex> lock(mu_);
    files_.emplace(dev, ino);
  }
  void Remove(dev_t dev, ino_t ino) {
    std::lock_guard<std::mutex> lock(mu_);
    files_.erase({dev, ino});
  }
  bool Contains(dev_t dev, ino_t ino) {
    std::lock_guard<std::mutex> lock(mu_);
    return files_.count({dev, ino}) != 0;
  }

 private:
  std::mutex mu_;
  std::set<std::pair<dev_t, ino_t>> files_;
};

bool IsTemporaryName(std::string_view name) {
  size_t marker = name.rfind(kTempMarker);
  return name.size() > 1 && name[0] == '.' && marker != std::string_view::npos && marker > 1 &&
         name.size() == marker + kTempMarker.size() + kTempSuffix;
}

// The names of ferry temporaries in each large directory, as of its last listing. Listing costs
// about 0.4 us an entry (measured on ext4: 4 ms for 10,000 files, 37 ms for 100,000), too much
// to pay before each of many shards written into one folder. A listing up to kRelistSeconds
// old misses only temporaries created since, and those are not stale for kStaleAfterSeconds
// anyway. A directory of up to kSmallDirectoryBytes (hundreds to a few thousand entries, by
// file system; under a millisecond to list) is listed every time.
class TemporaryListings {
 public:
  static constexpr time_t kRelistSeconds = 60;
  static constexpr off_t kSmallDirectoryBytes = 64 << 10;

  static TemporaryListings& Get() {
    static TemporaryListings* listings = new TemporaryListings;  // never destroyed
    return *listings;
  }

  // The temporaries in `directory` whose names start with `prefix`; from a listing up to a
  // minute old for a large directory, unless `relist`.
  std::vector<std::string> Find(const std::string& directory, const std::string& prefix,
                                bool relist) {
    struct stat st;
    if (::stat(directory.c_str(), &st) != 0) return {};
    if (st.st_size <= kSmallDirectoryBytes) return List(directory, prefix);
    const std::pair<dev_t, ino_t> key(st.st_dev, st.st_ino);
    const time_t now = ::time(nullptr);
    std::vector<std::string> names;
    bool listed = false;
    if (!relist) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = listings_.find(key);
      if (it != listings_.end() && now - it->second.taken < kRelistSeconds) {
        names = it->second.names;
        listed = true;
      }
    }
    if (!listed) {
      names = List(directory, "");
      std::lock_guard<std::mutex> lock(mu_);
      if (listings_.size() >= 1024) listings_.clear();  // bounded, whatever a process writes to
      listings_[key] = {now, names};
    }
    std::erase_if(names, [&](const std::string& name) { return !name.starts_with(prefix); });
    return names;
  }

  void Forget(const std::string& directory, const std::string& name) {
    struct stat st;
    if (::stat(directory.c_str(), &st) != 0) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = listings_.find({st.st_dev, st.st_ino});
    if (it != listings_.end()) std::erase(it->second.names, name);
  }

 private:
  // The temporaries in `directory` whose names start with `prefix`.
  static std::vector<std::string> List(const std::string& directory, std::string_view prefix) {
    std::vector<std::string> names;
    DIR* dir = ::opendir(directory.c_str());
    if (dir == nullptr) return names;
    while (dirent* entry = ::readdir(dir)) {
      std::string_view name = entry->d_name;
      if (name.starts_with(prefix) && IsTemporaryName(name)) names.emplace_back(name);
    }
    ::closedir(dir);
    return names;
  }

  struct Listing {
    time_t taken;
    std::vector<std::string> names;
  };
  std::mutex mu_;
  std::map<std::pair<dev_t, ino_t>, Listing> listings_;
};

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

// Errors are ignored: cleaning up is a courtesy, never a reason to fail a write.
void AtomicFile::RemoveStaleTemporaries(std::string_view path_view, bool relist) {
  const std::string path(path_view);
  if (path.empty() || path.back() == '/') return;
  const std::string directory = DirectoryOf(path);
  const std::string prefix = "." + BaseName(path) + std::string(kTempMarker);
  const time_t now = ::time(nullptr);
  for (const std::string& name : TemporaryListings::Get().Find(directory, prefix, relist)) {
    if (name.size() != prefix.size() + kTempSuffix) continue;  // another file's, "a.b" vs "a"
    const std::string temp = directory + "/" + name;
    struct stat named;
    if (::lstat(temp.c_str(), &named) != 0) {
      if (errno == ENOENT) TemporaryListings::Get().Forget(directory, name);  // renamed, removed
      continue;
    }
    if (!S_ISREG(named.st_mode) || named.st_uid != ::geteuid() ||
        now - named.st_mtime < kStaleAfterSeconds ||
        LiveTemporaries::Get().Contains(named.st_dev, named.st_ino)) {
      continue;
    }
    int fd = ::open(temp.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat opened;
    // A live writer holds its lock until its file is renamed or removed; a killed one's lock
    // died with it. Any other answer (ENOLCK, a file system without locks) keeps the file.
    if (::fstat(fd, &opened) == 0 && opened.st_dev == named.st_dev &&
        opened.st_ino == named.st_ino && ::flock(fd, LOCK_EX | LOCK_NB) == 0 &&
        ::unlink(temp.c_str()) == 0) {
      TemporaryListings::Get().Forget(directory, name);
    }
    ::close(fd);
  }
}

Result<std::unique_ptr<AtomicFile>> AtomicFile::Create(std::string_view path_view) {
  std::string path(path_view);
  if (path.empty() || path.back() == '/') return InvalidArgument("'" + path + "': not a file name");
  std::string base = BaseName(path);
  RemoveStaleTemporaries(path);
  std::string temp = DirectoryOf(path) + "/." + base + std::string(kTempMarker) + "XXXXXX";
  int fd = ::mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, path + ": cannot create a temporary file " + temp);
  // mkstemp makes the file 0600; give it the mode a plain open(O_CREAT, 0666) would.
  (void)::fchmod(fd, 0666 & ~CurrentUmask());
  // Marks the file live for other processes' cleaners (blocking: a cleaner may hold the lock for
  // the instant it takes to look; it never removes a file this new). The lock lives on a second
  // descriptor of the same open file, so Commit() can close (and check) the first before the
  // rename while the lock still holds. Where locks are not supported the age rule protects it.
  int lock_fd = ::dup(fd);
  if (lock_fd >= 0) (void)::flock(lock_fd, LOCK_EX);
  auto file = std::unique_ptr<AtomicFile>(new AtomicFile(std::move(path), std::move(temp), fd));
  file->lock_fd_ = lock_fd;
  struct stat st;
  if (::fstat(fd, &st) == 0) {
    file->dev_ = st.st_dev;
    file->ino_ = st.st_ino;
    LiveTemporaries::Get().Add(st.st_dev, st.st_ino);
  }
  return file;
}

AtomicFile::~AtomicFile() {
  // Removed before the lock goes, so no cleaner ever finds it unlocked.
  if (!committed_) ::unlink(temp_path_.c_str());
  if (fd_ >= 0) ::close(fd_);
  Release();
}

void AtomicFile::Release() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
  lock_fd_ = -1;
  if (ino_ != 0) LiveTemporaries::Get().Remove(dev_, ino_);
  ino_ = 0;
}

Status AtomicFile::Write(std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd_, bytes.data(), std::min<size_t>(bytes.size(), size_t{1} << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, path_ + ": write failed");
    }
    bytes = bytes.subspan(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status AtomicFile::Commit() {
  if (::fsync(fd_) != 0) return ErrnoStatus(errno, path_ + ": fsync failed");
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return ErrnoStatus(errno, path_ + ": close failed");
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    return ErrnoStatus(errno, path_ + ": cannot rename the temporary file into place");
  }
  committed_ = true;
  Release();  // no longer a temporary
  // Make the rename itself durable.
  int dir = ::open(DirectoryOf(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    (void)::fsync(dir);
    ::close(dir);
  }
  return Status::Ok();
}

}  // namespace ferry::io
