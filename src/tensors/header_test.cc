#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "ferry/tensors.h"
#include "tests/support/test_support.h"

namespace ferry::tensors {
namespace {

std::string File(std::string_view json, size_t data_bytes) {
  std::string out(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i, n >>= 8) out[i] = static_cast<char>(n & 0xff);
  out += json;
  out.append(data_bytes, '\x01');
  return out;
}

Result<Header> Parse(std::string_view json, size_t data_bytes) {
  return ParseHeader("t.safetensors", json, 8 + json.size() + data_bytes);
}

TEST(DTypeTest, NamesAndSizesRoundTrip) {
  for (int i = 0; i <= static_cast<int>(DType::kU64); ++i) {
    DType dtype = static_cast<DType>(i);
    EXPECT_EQ(DTypeFromName(DTypeName(dtype)), dtype);
  }
  EXPECT_EQ(DTypeBits(DType::kBF16), 16);
  EXPECT_EQ(DTypeBits(DType::kF4), 4);
  EXPECT_EQ(DTypeBits(DType::kF6_E3M2), 6);
  EXPECT_EQ(DTypeBits(DType::kC64), 64);
  EXPECT_FALSE(DTypeFromName("bf16").has_value());  // names are case-sensitive
}

TEST(HeaderTest, AcceptsLegalEdgeCases) {
  // Listed out of offset order, null metadata, a 0-d scalar, an empty tensor, unknown keys,
  // leading and trailing whitespace.
  auto header = Parse(R"(  {"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12],"extra":1},)"
                      R"("__metadata__":null,"s":{"dtype":"BF16","shape":[],"data_offsets":[0,2]},)"
                      R"("e":{"dtype":"I64","shape":[0,3],"data_offsets":[2,2]},)"
                      R"("p":{"dtype":"F4","shape":[2,2],"data_offsets":[2,4]}}    )",
                      12);
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  ASSERT_EQ(header->tensors.size(), 4u);
  EXPECT_EQ(header->tensors[0].name, "s");  // file order
  EXPECT_EQ(header->tensors[1].name, "e");
  EXPECT_EQ(header->tensors[2].name, "p");
  EXPECT_EQ(header->tensors[3].name, "b");
  EXPECT_TRUE(header->metadata.empty());
  EXPECT_EQ(header->data_size, 12u);
  EXPECT_EQ(header->Find("b")->shape, std::vector<uint64_t>{2});
  EXPECT_TRUE(header->Find("s")->shape.empty());
  EXPECT_EQ(header->Find("nope"), nullptr);
}

TEST(HeaderTest, ReadsMetadataSorted) {
  auto header = Parse(R"({"__metadata__":{"z":"1","a":"\u00e9\n"}})", 0);
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  ASSERT_EQ(header->metadata.size(), 2u);
  EXPECT_EQ(header->metadata[0].first, "a");
  EXPECT_EQ(header->metadata[0].second, "\xc3\xa9\n");
  EXPECT_EQ(*header->FindMetadata("z"), "1");
  EXPECT_EQ(header->FindMetadata("y"), nullptr);
}

TEST(HeaderTest, EmptyObjectIsAnEmptyFile) {
  auto header = Parse("{}", 0);
  ASSERT_TRUE(header.ok());
  EXPECT_TRUE(header->tensors.empty());
  EXPECT_EQ(header->data_size, 0u);
}

TEST(HeaderTest, ErrorsNameFileTensorAndRule) {
  auto header = Parse(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8);
  ASSERT_FALSE(header.ok());
  EXPECT_EQ(header.status().code(), StatusCode::kCorruption);
  EXPECT_EQ(header.status().message(),
            "t.safetensors: safetensors header: tensor 'w': data_offsets [0, 8] span 8 bytes but "
            "dtype and shape need 12");
  auto duplicate_metadata = Parse(R"({"__metadata__":{"k":"1","k":"2"}})", 0);
  EXPECT_NE(duplicate_metadata.status().message().find("'k' appears twice"), std::string::npos);
}

TEST(HeaderLengthTest, ChecksBoundsBeforeAnyAllocation) {
  std::string file = File("{}", 0);
  auto ok = ParseHeaderLength("f", std::as_bytes(std::span(file)).first(8), file.size());
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 2u);
  EXPECT_FALSE(ParseHeaderLength("f", std::as_bytes(std::span(file)).first(8), 9).ok());
  EXPECT_FALSE(ParseHeaderLength("f", std::as_bytes(std::span(file)).first(5), 5).ok());
}

// Every file in tests/data/safetensors_hostile/ is refused with the error text expected.tsv
// gives, naming the file.
TEST(HostileFilesTest, EachIsRefusedWithItsError) {
  std::string dir = std::string(FERRY_SOURCE_DIR) + "/tests/data/safetensors_hostile";
  std::ifstream tsv(dir + "/expected.tsv");
  ASSERT_TRUE(tsv.good()) << "missing " << dir << "/expected.tsv";
  std::string line;
  int cases = 0;
  while (std::getline(tsv, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t tab = line.find('\t');
    std::string name = line.substr(0, tab), expected = line.substr(tab + 1);
    std::string path = dir + "/" + name;
    for (Mode mode : {Mode::kEager, Mode::kLazy, Mode::kPlaid, Mode::kMmap}) {
      ReaderOptions options;
      options.mode = mode;
      auto reader = TensorReader::Open(path, options);
      ASSERT_FALSE(reader.ok()) << name << " was accepted";
      EXPECT_EQ(reader.status().code(), StatusCode::kCorruption) << name;
      const std::string& message = reader.status().message();
      EXPECT_NE(message.find(path), std::string::npos) << message;
      EXPECT_NE(message.find(expected), std::string::npos)
          << name << ": expected '" << expected << "' in: " << message;
    }
    ++cases;
  }
  EXPECT_GE(cases, 20);
}

// The real-world files in the shared data: all parse (one is malformed on purpose).
TEST(SharedDataTest, RealFilesParse) {
  std::string data = testing::SharedDataDir();
  if (data.empty()) GTEST_SKIP() << "shared test data (../shared/data) is absent";
  int parsed = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(data + "/tensors")) {
    if (entry.path().extension() != ".safetensors") continue;
    auto source = io::OpenSource(entry.path().string());
    ASSERT_TRUE(source.ok());
    auto header = ReadHeader(**source);
    if (entry.path().filename() == "syoyo_abuse_attempt_1.safetensors") {
      ASSERT_FALSE(header.ok());
      EXPECT_NE(header.status().message().find("header length 1000 runs past the end of the "
                                               "88-byte file"),
                std::string::npos)
          << header.status().message();
      continue;
    }
    ASSERT_TRUE(header.ok()) << header.status().ToString();
    EXPECT_FALSE(header->tensors.empty()) << entry.path();
    ++parsed;
  }
  EXPECT_GE(parsed, 15);
}

}  // namespace
}  // namespace ferry::tensors
