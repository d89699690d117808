#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "base/cuda_runtime.h"
#include "ferry/tensors.h"
#include "tests/support/test_support.h"

namespace ferry::tensors {
namespace {

using testing::ServerProcess;
using testing::TempDir;
using testing::TestBytes;

constexpr size_t kStaging = 64 * 1024;  // small staging buffers so tensors span several

// A checkpoint with tensors smaller than, equal to and several times larger than a staging
// buffer, plus empty and scalar ones, in several dtypes.
class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>();
    Add("embed", DType::kBF16, {300, 500});  // 300,000 B: 4.6 buffers
    Add("norm", DType::kF32, {512});         // 2 KiB
    Add("exact", DType::kU8, {kStaging});    // exactly one buffer
    Add("bias", DType::kF64, {7});
    Add("scalar", DType::kI64, {});
    Add("empty", DType::kF16, {0, 4});
    Add("head", DType::kF32, {100, 200});  // 80,000 B
    for (int i = 0; i < 40; ++i) Add("small." + std::to_string(i), DType::kI8, {1000u + i});
    std::vector<TensorToWrite> tensors;
    for (auto& [name, t] : expected_) tensors.push_back({name, t.dtype, t.shape, t.bytes});
    path_ = dir_->Join("model.safetensors");
    ASSERT_TRUE(WriteSafetensors(path_, tensors).ok());
  }

  void Add(const std::string& name, DType dtype, std::vector<uint64_t> shape) {
    uint64_t n = DTypeBits(dtype) / 8;
    for (uint64_t d : shape) n *= d;
    expected_[name] = {dtype, shape, TestBytes(n, expected_.size() + 1)};
  }

  void ExpectTensor(const Tensor& t, const std::string& name) {
    const Expected& e = expected_.at(name);
    EXPECT_EQ(t.info.name, name);
    EXPECT_EQ(t.info.dtype, e.dtype);
    EXPECT_EQ(t.info.shape, e.shape);
    ASSERT_EQ(t.data.size(), e.bytes.size()) << name;
    EXPECT_TRUE(std::equal(t.data.begin(), t.data.end(), e.bytes.begin())) << name;
  }

  ReaderOptions Options(Mode mode) {
    ReaderOptions options;
    options.mode = mode;
    options.staging_buffer_size = kStaging;
    options.part_size = 16 * 1024;
    options.parallelism = 3;
    options.verify_checksums = true;
    return options;
  }

  struct Expected {
    DType dtype;
    std::vector<uint64_t> shape;
    std::vector<std::byte> bytes;
  };
  std::unique_ptr<TempDir> dir_;
  std::string path_;
  std::map<std::string, Expected> expected_;
};

TEST_F(CheckpointTest, EveryModeReturnsEveryTensorByName) {
  for (Mode mode : {Mode::kEager, Mode::kLazy, Mode::kMmap, Mode::kPlaid}) {
    SCOPED_TRACE(std::string(ModeName(mode)));
    auto reader = TensorReader::Open(path_, Options(mode));
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    EXPECT_EQ((*reader)->header().tensors.size(), expected_.size());
    for (const TensorInfo& info : (*reader)->header().tensors) {  // file order
      auto t = (*reader)->Get(info.name);
      ASSERT_TRUE(t.ok()) << t.status().ToString();
      ExpectTensor(*t, info.name);
    }
    auto missing = (*reader)->Get("nope");
    EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
    EXPECT_EQ(missing.status().message(), path_ + ": no tensor named 'nope'");
  }
}

TEST_F(CheckpointTest, EagerLazyAndMmapTensorsOutliveTheReader) {
  for (Mode mode : {Mode::kEager, Mode::kLazy, Mode::kMmap}) {
    Tensor kept;
    {
      auto reader = TensorReader::Open(path_, Options(mode));
      ASSERT_TRUE(reader.ok());
      kept = *(*reader)->Get("embed");
    }
    ExpectTensor(kept, "embed");
  }
}

// Regression: a file truncated under an mmap reader killed the process with SIGBUS at the first
// touch of a page past the new end. Get() now re-checks the size and refuses. (Checksums off:
// verifying would touch the pages, so before the fix this test would crash, not fail.)
TEST_F(CheckpointTest, MmapRefusesTensorsOfAFileTruncatedUnderIt) {
  ReaderOptions options = Options(Mode::kMmap);
  options.verify_checksums = false;
  auto reader = TensorReader::Open(path_, options);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  ASSERT_TRUE((*reader)->Get("embed").ok());
  const uint64_t mapped = std::filesystem::file_size(path_);
  const uint64_t cut = (*reader)->header().data_offset() + 100;
  std::filesystem::resize_file(path_, cut);
  for (const char* name : {"embed", "head", "small.39"}) {
    SCOPED_TRACE(name);
    Result<Tensor> tensor = (*reader)->Get(name);
    ASSERT_EQ(tensor.status().code(), StatusCode::kSourceChanged) << tensor.status().ToString();
    const std::string& message = tensor.status().message();
    EXPECT_NE(message.find(path_ + ": the file is now " + std::to_string(cut) + " bytes but was " +
                           std::to_string(mapped) + " when mapped"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("tensor '" + std::string(name) + "' is refused"), std::string::npos);
  }
  std::vector<std::byte> dst(expected_.at("norm").bytes.size());
  EXPECT_EQ((*reader)->ReadInto("norm", dst).code(), StatusCode::kSourceChanged);
}

// The size check follows the mapped file, not the path: a file renamed over the path (how
// ferry's writers replace files) leaves the reader on the old one, which stays valid.
TEST_F(CheckpointTest, MmapKeepsServingAFileReplacedByRename) {
  ReaderOptions options = Options(Mode::kMmap);
  auto reader = TensorReader::Open(path_, options);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  const std::vector<std::byte> three = TestBytes(3);
  const std::vector<TensorToWrite> other = {{"x", DType::kU8, {3}, three}};
  ASSERT_TRUE(WriteSafetensors(path_, other).ok());
  ASSERT_NE(std::filesystem::file_size(path_), (*reader)->header().data_offset() +
                                                   (*reader)->header().data_size);
  for (const char* name : {"embed", "norm", "head"}) {
    auto tensor = (*reader)->Get(name);
    ASSERT_TRUE(tensor.ok()) << tensor.status().ToString();
    ExpectTensor(*tensor, name);
  }
}

// Plaid: a tensor is valid until the next; a destination that copies each one out ends up with
// every byte right (the question tensorizer's issue #30 left open).
TEST_F(CheckpointTest, PlaidHandsOutEachTensorOnceAndKeepsCopiesIntact) {
  auto reader = TensorReader::Open(path_, Options(Mode::kPlaid));
  ASSERT_TRUE(reader.ok());
  std::map<std::string, std::vector<std::byte>> kept;
  for (const TensorInfo& info : (*reader)->header().tensors) {
    auto t = (*reader)->Get(info.name);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    auto again = (*reader)->Get(info.name);  // the current tensor may be asked for again
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->data.data(), t->data.data());
    kept[info.name].assign(t->data.begin(), t->data.end());
  }
  for (auto& [name, e] : expected_) EXPECT_EQ(kept.at(name), e.bytes) << name;

  const std::string first = (*reader)->header().tensors.front().name;
  auto evicted = (*reader)->Get(first);
  EXPECT_EQ(evicted.status().code(), StatusCode::kEvicted);
  EXPECT_NE(evicted.status().message().find("'" + first + "' was evicted"), std::string::npos)
      << evicted.status().message();
}

TEST_F(CheckpointTest, PlaidServesAnyOrderByRestartingTheStream) {
  auto reader = TensorReader::Open(path_, Options(Mode::kPlaid));
  ASSERT_TRUE(reader.ok());
  for (const std::string name : {"small.39", "head", "small.0", "embed", "scalar", "empty"}) {
    auto t = (*reader)->Get(name);
    ASSERT_TRUE(t.ok()) << name << ": " << t.status().ToString();
    ExpectTensor(*t, name);
  }
}

TEST_F(CheckpointTest, StreamDeliversChunksNoLargerThanAStagingBuffer) {
  auto source = io::OpenSource(path_);
  ASSERT_TRUE(source.ok());
  auto header = ReadHeader(**source);
  ASSERT_TRUE(header.ok());
  auto stream = TensorStream::Open(source->get(), &*header, Options(Mode::kPlaid));
  ASSERT_TRUE(stream.ok());
  std::map<std::string, std::vector<std::byte>> assembled;
  const std::byte* previous_end = nullptr;
  int chunks = 0, buffers = 0;
  while (true) {
    auto chunk = (*stream)->Next();
    ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
    if (!chunk->has_value()) break;
    const TensorChunk& c = **chunk;
    EXPECT_LE(c.bytes.size(), kStaging);
    // Chunks of one buffer are contiguous; the last one says so.
    if (previous_end != nullptr) {
      EXPECT_EQ(c.bytes.data(), previous_end) << "chunk " << chunks;
    }
    previous_end = c.last_in_buffer ? nullptr : c.bytes.data() + c.bytes.size();
    buffers += c.last_in_buffer;
    ++chunks;
    auto& bytes = assembled[header->tensors[c.tensor].name];
    ASSERT_EQ(bytes.size(), c.offset_in_tensor);
    bytes.insert(bytes.end(), c.bytes.begin(), c.bytes.end());
  }
  for (auto& [name, e] : expected_) {
    if (e.bytes.empty()) continue;
    EXPECT_EQ(assembled[name], e.bytes) << name;
  }
  EXPECT_EQ(previous_end, nullptr);  // the very last chunk closes its buffer
  EXPECT_GT(buffers, 6);             // 400+ KB through 64 KiB buffers
}

TEST_F(CheckpointTest, LoadToDeviceWithoutAGpuSaysWhy) {
  if (ProbeCuda().device_count > 0) GTEST_SKIP() << "a CUDA device is present";
  auto source = io::OpenSource(path_);
  ASSERT_TRUE(source.ok());
  auto header = ReadHeader(**source);
  ASSERT_TRUE(header.ok());
  Status s = LoadToDevice(**source, *header, Options(Mode::kPlaid), 0, nullptr, header->data_size);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find(path_ + ": cannot load to cuda:0"), std::string::npos) << s.message();
}

TEST_F(CheckpointTest, ReadIntoFillsCallerMemoryInEveryMode) {
  for (Mode mode : {Mode::kEager, Mode::kLazy, Mode::kMmap, Mode::kPlaid}) {
    SCOPED_TRACE(std::string(ModeName(mode)));
    auto reader = TensorReader::Open(path_, Options(mode));
    ASSERT_TRUE(reader.ok());
    for (const TensorInfo& info : (*reader)->header().tensors) {
      std::vector<std::byte> dst(info.nbytes());
      Status s = (*reader)->ReadInto(info.name, dst);
      ASSERT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(dst, expected_.at(info.name).bytes) << info.name;
    }
    std::vector<std::byte> wrong(3);
    Status s = (*reader)->ReadInto("norm", wrong);
    if (mode == Mode::kPlaid) {
      EXPECT_EQ(s.code(), StatusCode::kEvicted);
    } else {
      EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
      EXPECT_NE(s.message().find("tensor 'norm' has 2048 bytes; the destination has 3"),
                std::string::npos)
          << s.message();
    }
  }
}

// Ranges are compared with the data buffer assembled from the tensors the test wrote.
TEST_F(CheckpointTest, ReadRangeCopiesAnyBytesOfTheDataInEveryMode) {
  for (Mode mode : {Mode::kEager, Mode::kLazy, Mode::kMmap, Mode::kPlaid}) {
    SCOPED_TRACE(std::string(ModeName(mode)));
    ReaderOptions options = Options(mode);
    options.verify_checksums = false;
    auto reader = TensorReader::Open(path_, options);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    const Header& header = (*reader)->header();
    std::vector<std::byte> data(header.data_size);
    for (const TensorInfo& info : header.tensors) {
      const auto& bytes = expected_.at(info.name).bytes;
      std::copy(bytes.begin(), bytes.end(), data.begin() + info.begin);
    }
    const TensorInfo& embed = *header.Find("embed");
    const uint64_t n = header.data_size;
    // Inside one tensor, across several (cutting both ends), the whole buffer, empty ranges.
    for (auto [begin, size] : std::vector<std::pair<uint64_t, uint64_t>>{
             {embed.begin + 3, 1001}, {embed.end - 17, 40'000}, {0, n}, {n / 3, n - n / 3},
             {n, 0}, {5, 0}}) {
      SCOPED_TRACE(std::to_string(begin) + "+" + std::to_string(size));
      std::vector<std::byte> dst(size, std::byte{0xee});
      Status s = (*reader)->ReadRange(begin, dst);
      ASSERT_TRUE(s.ok()) << s.ToString();
      EXPECT_TRUE(std::equal(dst.begin(), dst.end(), data.begin() + begin));
    }
    std::vector<std::byte> past(10);
    Status s = (*reader)->ReadRange(n - 9, past);
    EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
    EXPECT_EQ(s.message(), path_ + ": 10 bytes at offset " + std::to_string(n - 9) +
                               " of the data buffer reach past its end (" + std::to_string(n) +
                               " bytes)");
    EXPECT_EQ((*reader)->ReadRange(UINT64_MAX - 2, past).code(), StatusCode::kOutOfRange);
  }
}

TEST_F(CheckpointTest, ReadRangeWithChecksumsChecksWholeTensorsAndRefusesCutOnes) {
  for (Mode mode : {Mode::kLazy, Mode::kMmap, Mode::kPlaid}) {
    SCOPED_TRACE(std::string(ModeName(mode)));
    auto reader = TensorReader::Open(path_, Options(mode));
    ASSERT_TRUE(reader.ok());
    const TensorInfo& head = *(*reader)->header().Find("head");
    std::vector<std::byte> whole(head.nbytes());
    ASSERT_TRUE((*reader)->ReadRange(head.begin, whole).ok());
    EXPECT_EQ(whole, expected_.at("head").bytes);
    std::vector<std::byte> cut(head.nbytes() - 1);
    Status s = (*reader)->ReadRange(head.begin + 1, cut);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("cut tensor 'head'"), std::string::npos) << s.message();
  }
  // A flipped byte inside a whole tensor of the range is caught.
  const uint64_t at = [&] {
    auto source = io::OpenSource(path_);
    auto header = ReadHeader(**source);
    return header->data_offset() + header->Find("head")->begin + 7;
  }();
  {
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(at));
    f.put('\x33' ^ static_cast<char>(expected_["head"].bytes[7]));
  }
  auto reader = TensorReader::Open(path_, Options(Mode::kLazy));
  ASSERT_TRUE(reader.ok());
  const TensorInfo& head = *(*reader)->header().Find("head");
  std::vector<std::byte> whole(head.nbytes());
  Status s = (*reader)->ReadRange(head.begin, whole);
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.ToString();
}

TEST_F(CheckpointTest, BadStagingOptionsAreRefused) {
  ReaderOptions options = Options(Mode::kPlaid);
  options.staging_buffers = 1;
  auto reader = TensorReader::Open(path_, options);
  EXPECT_EQ(reader.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(reader.status().message().find("at least 2 staging buffers"), std::string::npos);
}

TEST_F(CheckpointTest, ChecksumMismatchNamesTheTensor) {
  // Flip one byte of "norm" in place.
  auto source = io::OpenSource(path_);
  auto header = ReadHeader(**source);
  ASSERT_TRUE(header.ok());
  const TensorInfo* norm = header->Find("norm");
  {
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(header->data_offset() + norm->begin + 5));
    f.put('\x5a' ^ static_cast<char>(expected_["norm"].bytes[5]));
  }
  {
    // Regression: a plaid Get that fails must not leave the failed tensor behind as "current"
    // (a later ReadInto of the previous tensor copied it into a too-small buffer).
    auto reader = TensorReader::Open(path_, Options(Mode::kPlaid));
    ASSERT_TRUE(reader.ok());
    const auto& tensors = (*reader)->header().tensors;
    size_t norm_index = (*reader)->header().index.at("norm");
    ASSERT_GT(norm_index, 0u);
    const std::string before = tensors[norm_index - 1].name;
    ASSERT_TRUE((*reader)->Get(before).ok());
    EXPECT_EQ((*reader)->Get("norm").status().code(), StatusCode::kCorruption);
    std::vector<std::byte> dst(tensors[norm_index - 1].nbytes());
    Status again = (*reader)->ReadInto(before, dst);
    EXPECT_EQ(again.code(), StatusCode::kEvicted) << again.ToString();
    EXPECT_EQ((*reader)->Get("norm").status().code(), StatusCode::kCorruption);  // not evicted
  }
  for (Mode mode : {Mode::kEager, Mode::kLazy, Mode::kMmap, Mode::kPlaid}) {
    SCOPED_TRACE(std::string(ModeName(mode)));
    auto reader = TensorReader::Open(path_, Options(mode));
    Status s = reader.ok() ? (*reader)->Get("norm").status() : reader.status();
    EXPECT_EQ(s.code(), StatusCode::kCorruption);
    EXPECT_NE(s.message().find("tensor 'norm': checksum mismatch"), std::string::npos)
        << s.message();
    ReaderOptions unchecked = Options(mode);
    unchecked.verify_checksums = false;
    auto lenient = TensorReader::Open(path_, unchecked);
    ASSERT_TRUE(lenient.ok());
    EXPECT_TRUE((*lenient)->Get("norm").ok());
  }
}

TEST_F(CheckpointTest, LoadsOverHttpInEveryNetworkMode) {
  if (!testing::NginxAvailable())
    GTEST_SKIP() << "nginx is not installed (apt-get install nginx-light)";
  auto server = ServerProcess::Start("nginx.py", {"--root", dir_->path()});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  std::string url = (*server)->Url("model.safetensors");
  for (Mode mode : {Mode::kEager, Mode::kLazy, Mode::kPlaid}) {
    SCOPED_TRACE(std::string(ModeName(mode)));
    auto reader = TensorReader::Open(url, Options(mode));
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    for (const TensorInfo& info : (*reader)->header().tensors) {
      auto t = (*reader)->Get(info.name);
      ASSERT_TRUE(t.ok()) << t.status().ToString();
      ExpectTensor(*t, info.name);
    }
  }
  auto mmap = TensorReader::Open(url, Options(Mode::kMmap));
  EXPECT_EQ(mmap.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(mmap.status().message().find("mmap mode needs a local file"), std::string::npos);
}

}  // namespace
}  // namespace ferry::tensors
