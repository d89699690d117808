#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "ferry/tensors.h"
#include "tests/support/test_support.h"

namespace ferry::tensors {
namespace {

using testing::TempDir;
using testing::TestBytes;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::vector<std::string> Listing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(WriterTest, AlignsDataAndTensorsAndRecordsChecksums) {
  TempDir dir;
  auto u8 = TestBytes(3, 1), f64 = TestBytes(16, 2), bf16 = TestBytes(6, 3), f32 = TestBytes(4, 4);
  std::vector<TensorToWrite> tensors = {
      {"odd", DType::kU8, {3}, u8},       {"wide", DType::kF64, {2}, f64},
      {"half", DType::kBF16, {3}, bf16},  {"scalar", DType::kF32, {}, f32},
      {"empty", DType::kI32, {0, 5}, {}},
  };
  std::vector<std::pair<std::string, std::string>> metadata = {{"format", "pt"}};
  std::string path = dir.Join("m.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, tensors, metadata).ok());

  auto source = io::OpenSource(path);
  ASSERT_TRUE(source.ok());
  auto header = ReadHeader(**source);
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  EXPECT_EQ(header->data_offset() % 4096, 0u);
  std::vector<std::string> order;
  for (const TensorInfo& info : header->tensors) {
    order.push_back(info.name);
    EXPECT_EQ(info.begin % (DTypeBits(info.dtype) / 8), 0u) << info.name;
  }
  // The reference's order: F64, F32, I32 (by dtype, not only by size), BF16, U8.
  EXPECT_EQ(order, (std::vector<std::string>{"wide", "scalar", "empty", "half", "odd"}));
  EXPECT_EQ(*header->FindMetadata("format"), "pt");
  EXPECT_EQ(*FindChecksum(*header, "wide"), ChecksumHex(f64));
  EXPECT_EQ(Listing(dir.path()), std::vector<std::string>{"m.safetensors"});  // no temp left

  std::string file = ReadAll(path);
  const TensorInfo* wide = header->Find("wide");
  EXPECT_EQ(0, std::memcmp(file.data() + header->data_offset() + wide->begin, f64.data(), 16));
}

TEST(WriterTest, ChecksumsCanBeTurnedOffAndStaleOnesAreDropped) {
  TempDir dir;
  auto bytes = TestBytes(8);
  std::vector<TensorToWrite> tensors = {{"a", DType::kU8, {8}, bytes}};
  std::vector<std::pair<std::string, std::string>> metadata = {
      {std::string(kChecksumKeyPrefix) + "a", "0000000000000000"}};
  ASSERT_TRUE(WriteSafetensors(dir.Join("x"), tensors, metadata,
                               WriteOptions{.checksums = false, .data_alignment = 4096})
                  .ok());
  auto source = io::OpenSource(dir.Join("x"));
  auto header = ReadHeader(**source);
  ASSERT_TRUE(header.ok());
  EXPECT_TRUE(header->metadata.empty());
}

TEST(WriterTest, RefusesBadTensorsAndLeavesNothing) {
  TempDir dir;
  auto bytes = TestBytes(8);
  auto expect_refused = [&](std::vector<TensorToWrite> tensors, const std::string& text) {
    Status s = WriteSafetensors(dir.Join("bad"), tensors);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find(text), std::string::npos) << s.message();
    EXPECT_TRUE(Listing(dir.path()).empty());
  };
  expect_refused({{"a", DType::kF32, {3}, bytes}}, "has 8 bytes but its shape and F32 need 12");
  expect_refused({{"a", DType::kU8, {8}, bytes}, {"a", DType::kU8, {8}, bytes}}, "given twice");
  expect_refused({{"w", DType::kU16, {4}, bytes},
                  {"x", DType::kU16, {4}, bytes},
                  {"w", DType::kU8, {8}, bytes}},
                 "given twice");  // duplicates of different element sizes too
  expect_refused({{"__metadata__", DType::kU8, {8}, bytes}}, "reserved");
  expect_refused({{"\xff", DType::kU8, {8}, bytes}}, "not valid UTF-8");
  expect_refused({{"f4", DType::kF4, {3}, std::span(bytes).first(2)}}, "whole bytes");
}

TEST(WriterTest, MissingDirectoryIsNotFound) {
  TempDir dir;
  Status s = WriteSafetensors(dir.Join("no/such/dir/m.safetensors"), {});
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("no/such/dir/m.safetensors"), std::string::npos);
}

// A write that fails half way (the file size limit, in a child process) leaves the old file
// as it was and no temporary file behind.
TEST(WriterTest, FailedWriteKeepsTheOldFile) {
  TempDir dir;
  std::string path = dir.Join("m.safetensors");
  auto small = TestBytes(16);
  ASSERT_TRUE(
      WriteSafetensors(path, std::vector<TensorToWrite>{{"a", DType::kU8, {16}, small}}).ok());
  std::string before = ReadAll(path);

  auto big = TestBytes(1 << 20);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);  // writes past the limit fail with EFBIG instead of killing us
    rlimit limit{64 * 1024, 64 * 1024};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    Status s =
        WriteSafetensors(path, std::vector<TensorToWrite>{{"a", DType::kU8, {1 << 20}, big}});
    ::_exit(s.code() == StatusCode::kIoError && s.message().find(path) != std::string::npos ? 0
                                                                                            : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the write did not fail with an I/O error naming the file";
  EXPECT_EQ(ReadAll(path), before);
  EXPECT_EQ(Listing(dir.path()), std::vector<std::string>{"m.safetensors"});
}

}  // namespace
}  // namespace ferry::tensors
