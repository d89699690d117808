#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "ferry/io.h"
#include "tests/support/test_support.h"

namespace ferry::io {
namespace {

using ferry::testing::TempDir;
using ferry::testing::TestBytes;
using ferry::testing::WriteFile;

std::string Contains(const Status& s, const std::string& needle) {
  return s.message().find(needle) != std::string::npos ? ""
                                                       : "'" + needle + "' not in: " + s.ToString();
}

TEST(FileSourceTest, EmptyFileHasSizeZeroAndReadsNothing) {
  TempDir dir;
  WriteFile(dir.Join("empty"), {});
  auto source = OpenSource(dir.Join("empty"));
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  EXPECT_EQ((*source)->size(), 0u);
  EXPECT_TRUE((*source)->ReadAt(0, {}).ok());
  std::byte one[1];
  Status past = (*source)->ReadAt(0, one);
  EXPECT_EQ(past.code(), StatusCode::kOutOfRange);
  EXPECT_EQ(Contains(past, "read of 1 bytes at offset 0 is past the end (size 0)"), "");
}

TEST(FileSourceTest, OneByteFile) {
  TempDir dir;
  WriteFile(dir.Join("one"), {std::byte{0x5a}});
  auto source = OpenSource("file://" + dir.Join("one"));
  ASSERT_TRUE(source.ok());
  std::byte b{};
  ASSERT_TRUE((*source)->ReadAt(0, {&b, 1}).ok());
  EXPECT_EQ(b, std::byte{0x5a});
  EXPECT_EQ((*source)->ReadAt(1, {&b, 1}).code(), StatusCode::kOutOfRange);
  EXPECT_TRUE((*source)->ReadAt(1, {}).ok());  // an empty read at the end is fine
}

TEST(FileSourceTest, ReadsAtEveryOffsetMatch) {
  TempDir dir;
  auto bytes = TestBytes(100'003);
  WriteFile(dir.Join("f"), bytes);
  auto source = OpenSource(dir.Join("f"));
  ASSERT_TRUE(source.ok());
  for (uint64_t offset : {0u, 1u, 4095u, 4096u, 65'537u, 99'999u}) {
    std::vector<std::byte> got(bytes.size() - offset);
    ASSERT_TRUE((*source)->ReadAt(offset, got).ok());
    EXPECT_EQ(0, std::memcmp(got.data(), bytes.data() + offset, got.size())) << offset;
  }
  std::vector<std::byte> too_long(10);
  EXPECT_EQ((*source)->ReadAt(bytes.size() - 5, too_long).code(), StatusCode::kOutOfRange);
  EXPECT_EQ((*source)->ReadAt(~uint64_t{0}, too_long).code(), StatusCode::kOutOfRange);
}

TEST(FileSourceTest, SparseFileLargerThan4GiB) {
  TempDir dir;
  const uint64_t size = (uint64_t{5} << 30) + 3;
  const uint64_t marker_at = (uint64_t{4} << 30) - 2;  // straddles the 4 GiB boundary
  int fd = ::open(dir.Join("big").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
  const char marker[] = "ferry!";
  ASSERT_EQ(::pwrite(fd, marker, 6, static_cast<off_t>(marker_at)), 6);
  ::close(fd);

  auto source = OpenSource(dir.Join("big"));
  ASSERT_TRUE(source.ok());
  EXPECT_EQ((*source)->size(), size);
  char got[8];
  ASSERT_TRUE((*source)->ReadAt(marker_at - 1, {reinterpret_cast<std::byte*>(got), 8}).ok());
  EXPECT_EQ(std::string(got, 8), std::string("\0ferry!\0", 8));
  std::byte tail[3];
  ASSERT_TRUE((*source)->ReadAt(size - 3, tail).ok());
  EXPECT_EQ((*source)->ReadAt(size - 2, tail).code(), StatusCode::kOutOfRange);
}

TEST(FileSourceTest, MissingFileIsNotFoundAndNamesThePath) {
  TempDir dir;
  Status s = OpenSource(dir.Join("nope.bin")).status();
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(Contains(s, dir.Join("nope.bin") + ": cannot open: No such file or directory"), "");
}

TEST(FileSourceTest, DirectoryIsRejected) {
  TempDir dir;
  Status s = OpenSource(dir.path()).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Contains(s, dir.path() + ": is a directory (expected a regular file)"), "");
}

TEST(FileSourceTest, FifoIsRejected) {
  TempDir dir;
  ASSERT_EQ(::mkfifo(dir.Join("fifo").c_str(), 0600), 0);
  // O_RDONLY on a FIFO blocks until a writer appears; give it one that never writes.
  int writer = ::open(dir.Join("fifo").c_str(), O_RDWR);
  Status s = OpenSource(dir.Join("fifo")).status();
  ::close(writer);
  EXPECT_EQ(Contains(s, "is not a regular file"), "");
}

TEST(FileSourceTest, NoPermissionIsPermissionDenied) {
  TempDir dir;
  WriteFile(dir.Join("secret"), TestBytes(10));
  ASSERT_EQ(::chmod(dir.Join("secret").c_str(), 0600), 0);
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  // Root reads anything, so check in a child that has dropped to an unprivileged user.
  EXPECT_EXIT(
      {
        if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) _exit(3);
        if (::geteuid() == 0) _exit(4);
        Status s = OpenSource(dir.Join("secret")).status();
        if (s.code() != StatusCode::kPermissionDenied) _exit(1);
        _exit(Contains(s, dir.Join("secret") + ": cannot open: Permission denied").empty() ? 0 : 2);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(MappedFileTest, MapsBytesWithoutCopying) {
  TempDir dir;
  auto bytes = TestBytes(12'345);
  WriteFile(dir.Join("f"), bytes);
  auto mapped = MappedFile::Open(dir.Join("f"));
  ASSERT_TRUE(mapped.ok()) << mapped.status().ToString();
  ASSERT_EQ((*mapped)->bytes().size(), bytes.size());
  EXPECT_EQ(0, std::memcmp((*mapped)->bytes().data(), bytes.data(), bytes.size()));

  WriteFile(dir.Join("empty"), {});
  auto empty = MappedFile::Open(dir.Join("empty"));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE((*empty)->bytes().empty());

  EXPECT_EQ(MappedFile::Open(dir.path()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(MappedFile::Open("http://127.0.0.1:1/x").status().code(), StatusCode::kInvalidArgument);
}

TEST(ReadParallelTest, SplitsOverThreadsAndMatches) {
  TempDir dir;
  auto bytes = TestBytes(1'000'001);
  WriteFile(dir.Join("f"), bytes);
  auto source = OpenSource(dir.Join("f"));
  ASSERT_TRUE(source.ok());
  for (int parallelism : {1, 2, 7}) {
    std::vector<std::byte> got(bytes.size() - 3);
    ASSERT_TRUE(ReadParallel(**source, 3, got, {parallelism, 4096 * 3 + 1}).ok());
    EXPECT_EQ(0, std::memcmp(got.data(), bytes.data() + 3, got.size())) << parallelism;
  }
  std::vector<std::byte> too_long(bytes.size());
  EXPECT_EQ(ReadParallel(**source, 1, too_long, {4, 4096}).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(ReadParallel(**source, 0, too_long, {4, 0}).code(), StatusCode::kInvalidArgument);
}

TEST(StreamTest, YieldsTheRangeInChunksInOrder) {
  TempDir dir;
  auto bytes = TestBytes(100'000);
  WriteFile(dir.Join("f"), bytes);
  auto source = OpenSource(dir.Join("f"));
  ASSERT_TRUE(source.ok());
  auto stream = Stream::Open(source->get(), 10, 99'980,
                             {.chunk_size = 7'000, .read_ahead = 2, .parallel = {}});
  ASSERT_TRUE(stream.ok());
  std::vector<std::byte> got;
  while (true) {
    auto chunk = (*stream)->Next();
    ASSERT_TRUE(chunk.ok());
    if (chunk->empty()) break;
    EXPECT_LE(chunk->size(), 7'000u);
    got.insert(got.end(), chunk->begin(), chunk->end());
  }
  ASSERT_EQ(got.size(), 99'980u);
  EXPECT_EQ(0, std::memcmp(got.data(), bytes.data() + 10, got.size()));
  EXPECT_TRUE((*stream)->Next()->empty());  // stays at the end
  EXPECT_EQ(Stream::Open(source->get(), 1, 100'000).status().code(), StatusCode::kOutOfRange);
}

TEST(StreamTest, EmptyRangeEndsAtOnce) {
  TempDir dir;
  WriteFile(dir.Join("f"), TestBytes(10));
  auto source = OpenSource(dir.Join("f"));
  auto stream = Stream::Open(source->get(), 10, 0);
  ASSERT_TRUE(stream.ok());
  EXPECT_TRUE((*stream)->Next()->empty());
}

}  // namespace
}  // namespace ferry::io
