#include "io/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace ferry::io {
namespace {

using ferry::testing::TempDir;
using ferry::testing::TestBytes;
using ferry::testing::WriteFile;

std::vector<std::string> Names(const std::string& directory) {
  std::vector<std::string> names;
  DIR* dir = ::opendir(directory.c_str());
  while (dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

// Sets a file's modification time `seconds` into the past.
void Age(const std::string& path, long seconds) {
  struct timespec times[2];
  times[0].tv_sec = times[1].tv_sec = ::time(nullptr) - seconds;
  times[0].tv_nsec = times[1].tv_nsec = 0;
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

// The temporaries of live AtomicFiles in `directory`.
std::vector<std::string> Temporaries(const std::string& directory) {
  std::vector<std::string> out;
  for (const std::string& name : Names(directory)) {
    if (name.find(".ferry-tmp-") != std::string::npos) out.push_back(name);
  }
  return out;
}

Status Save(const std::string& path, size_t size) {
  FERRY_ASSIGN_OR_RETURN(auto file, AtomicFile::Create(path));
  std::vector<std::byte> bytes = TestBytes(size);
  FERRY_RETURN_IF_ERROR(file->Write(bytes));
  return file->Commit();
}

TEST(AtomicFileTest, CommitReplacesTheFileAndLeavesNoTemporary) {
  TempDir dir;
  ASSERT_TRUE(Save(dir.Join("m.bin"), 1000).ok());
  ASSERT_TRUE(Save(dir.Join("m.bin"), 10).ok());
  EXPECT_EQ(Names(dir.path()), std::vector<std::string>{"m.bin"});
  struct stat st;
  ASSERT_EQ(::stat(dir.Join("m.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 10);
}

TEST(AtomicFileTest, AnUncommittedFileLeavesNothing) {
  TempDir dir;
  {
    auto file = AtomicFile::Create(dir.Join("m.bin"));
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->Write(TestBytes(100)).ok());
    EXPECT_EQ(Temporaries(dir.path()).size(), 1u);
  }
  EXPECT_EQ(Names(dir.path()), std::vector<std::string>{});
}

// Regression: a writer killed mid-save (SIGKILL, OOM) left its temporary, as large as the
// checkpoint, for ever. The next save of the same file removes it; what it must not remove
// is anything a live writer may still own.
TEST(AtomicFileTest, NextSaveRemovesTheStaleTemporaryOfAKilledWriter) {
  TempDir dir;
  const long stale = AtomicFile::kStaleAfterSeconds + 60;
  // What a killed writer leaves: the name mkostemp made, no lock (it died with the writer).
  const std::string killed = dir.Join(".m.bin.ferry-tmp-Ab3xQ9");
  WriteFile(killed, TestBytes(5000));
  Age(killed, stale);
  // Kept: recent (a writer between creating and locking it, or an older ferry's live writer).
  const std::string recent = dir.Join(".m.bin.ferry-tmp-recent");
  WriteFile(recent, TestBytes(10));
  Age(recent, AtomicFile::kStaleAfterSeconds - 60);
  // Kept: old but locked, as a live writer in another process holds its temporary.
  const std::string locked = dir.Join(".m.bin.ferry-tmp-locked");
  WriteFile(locked, TestBytes(10));
  Age(locked, stale);
  int holder = ::open(locked.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(holder, 0);
  ASSERT_EQ(::flock(holder, LOCK_EX | LOCK_NB), 0);
  // Kept: another destination's, and names that only look alike.
  for (const char* name : {".other.bin.ferry-tmp-Ab3xQ9", ".m.bin.ferry-tmp-toolong1",
                           "m.bin.ferry-tmp-Ab3xQ9", ".m.bin.ferry-tmp-"}) {
    WriteFile(dir.Join(name), TestBytes(10));
    Age(dir.Join(name), stale);
  }

  ASSERT_TRUE(Save(dir.Join("m.bin"), 100).ok());
  EXPECT_EQ(Names(dir.path()),
            (std::vector<std::string>{".m.bin.ferry-tmp-", ".m.bin.ferry-tmp-locked",
                                      ".m.bin.ferry-tmp-recent", ".m.bin.ferry-tmp-toolong1",
                                      ".other.bin.ferry-tmp-Ab3xQ9", "m.bin",
                                      "m.bin.ferry-tmp-Ab3xQ9"}));
  ::close(holder);  // that writer dies: its temporary is now a leftover too
  ASSERT_TRUE(Save(dir.Join("m.bin"), 100).ok());
  EXPECT_EQ(::access(locked.c_str(), F_OK), -1);
  EXPECT_EQ(::access(recent.c_str(), F_OK), 0);
}

// A live writer of the same file, idle for longer than the age rule (say, between two slow
// tensors), keeps its temporary while another save of that file comes and goes.
TEST(AtomicFileTest, ALiveWritersTemporaryIsNeverRemoved) {
  TempDir dir;
  auto slow = AtomicFile::Create(dir.Join("m.bin"));
  ASSERT_TRUE(slow.ok());
  ASSERT_TRUE((*slow)->Write(TestBytes(3000)).ok());
  std::vector<std::string> temps = Temporaries(dir.path());
  ASSERT_EQ(temps.size(), 1u);
  Age(dir.Join(temps[0]), AtomicFile::kStaleAfterSeconds + 60);
  ASSERT_TRUE(Save(dir.Join("m.bin"), 100).ok());
  EXPECT_EQ(Temporaries(dir.path()), temps);
  ASSERT_TRUE((*slow)->Write(TestBytes(1000)).ok());
  ASSERT_TRUE((*slow)->Commit().ok());
  struct stat st;
  ASSERT_EQ(::stat(dir.Join("m.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 4000);
  EXPECT_EQ(Temporaries(dir.path()), std::vector<std::string>{});
}

// A large directory is listed at most once a minute (a listing of 100,000 entries costs ~37 ms,
// too much before each of many shards): a leftover that appears after the listing waits for the
// next one. (It could not be stale yet anyway unless, as here, its time was set back.)
TEST(AtomicFileTest, ALargeDirectoryIsListedAtMostOnceAMinute) {
  TempDir dir;
  // Long names make a directory of more than 64 KiB (what counts as large) from few files.
  const std::string padding(200, 'x');
  struct stat st;
  for (int i = 0; i < 4000; ++i) {
    if (i % 100 == 0 && ::stat(dir.path().c_str(), &st) == 0 && st.st_size > 64 << 10) break;
    const std::string name = dir.Join(padding + std::to_string(i));
    int fd = ::open(name.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ::close(fd);
  }
  ASSERT_EQ(::stat(dir.path().c_str(), &st), 0);
  if (st.st_size <= 64 << 10) GTEST_SKIP() << "this file system sizes directories otherwise";
  ASSERT_TRUE(Save(dir.Join("m.bin"), 100).ok());  // listed now
  const std::string killed = dir.Join(".m.bin.ferry-tmp-Ab3xQ9");
  WriteFile(killed, TestBytes(100));
  Age(killed, AtomicFile::kStaleAfterSeconds + 60);
  ASSERT_TRUE(Save(dir.Join("m.bin"), 100).ok());
  EXPECT_EQ(::access(killed.c_str(), F_OK), 0);
  AtomicFile::RemoveStaleTemporaries(dir.Join("m.bin"), /*relist=*/true);
  EXPECT_EQ(::access(killed.c_str(), F_OK), -1);
}

}  // namespace
}  // namespace ferry::io
