// AtomicFile: write a local file so that readers see either the old file or the whole new one.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "ferry/io.h"
#include "ferry/status.h"

namespace ferry::io {

// Bytes go to a hidden temporary file next to the destination (same file system, so the final
// rename is atomic), `.<name>.ferry-tmp-XXXXXX`. Commit() fsyncs it, renames it over the
// destination and fsyncs the directory. Destroying an uncommitted AtomicFile removes the
// temporary file, so an error or an exception never leaves a partial file under the final name.
//
// A crash or a kill can leave the temporary behind (never a partial destination), as large as
// the file was to be. Create() removes such leftovers of the same destination: temporaries
// named for it, owned by this user, unmodified for kStaleAfterSeconds, whose lock can be taken.
// A writer holds an flock(2) on its temporary from creation until it is renamed or removed, and
// the kernel drops the lock when the writer dies, however it dies. So a live writer's temporary
// is never removed: its lock is held (against other processes and containers; a PID in the name
// would not do, PIDs being reused and per namespace), and even without the lock (the instant
// between mkostemp and flock, a writer of an older ferry) it is recent, since every write
// updates its time. This process's own temporaries are never even opened: on NFS, flock is
// emulated by POSIX locks, which a process never conflicts with and loses on closing any
// descriptor of the file (there the lock also lapses between Commit()'s close and rename, when
// the age rule alone protects the file).
class AtomicFile final : public Sink {
 public:
  // A temporary unmodified for this long may be a leftover (if no writer holds it).
  static constexpr long kStaleAfterSeconds = 10 * 60;

  // Calls RemoveStaleTemporaries(path), then creates the temporary.
  static Result<std::unique_ptr<AtomicFile>> Create(std::string_view path);
  // Removes the leftovers of writers of `path` that died (the rule above). A large directory's
  // list of temporaries is reused for up to a minute (listing 100,000 files takes ~37 ms),
  // unless `relist`; that misses only temporaries too new to be stale.
  static void RemoveStaleTemporaries(std::string_view path, bool relist = false);
  ~AtomicFile() override;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  Status Write(std::span<const std::byte> bytes) override;
  Status Commit() override;

 private:
  AtomicFile(std::string path, std::string temp_path, int fd)
      : path_(std::move(path)), temp_path_(std::move(temp_path)), fd_(fd) {}
  void Release();  // drops the lock and the in-process record of the temporary
  std::string path_;
  std::string temp_path_;
  int fd_;
  int lock_fd_ = -1;  // a dup of fd_ holding the flock
  dev_t dev_ = 0;     // the temporary's identity, for the in-process record
  ino_t ino_ = 0;
  bool committed_ = false;
};

}  // namespace ferry::io
