#include <gtest/gtest.h>

#include "ferry/datasets.h"
#include "tests/support/test_support.h"

namespace ferry::datasets {
namespace {

TEST(SplitKeyFieldTest, FollowsWebDataset) {
  using KF = std::pair<std::string, std::string>;
  EXPECT_EQ(SplitKeyField("train/abc.jpg"), KF("train/abc", "jpg"));
  EXPECT_EQ(SplitKeyField("abc.seg.PNG"), KF("abc", "seg.png"));
  EXPECT_EQ(SplitKeyField("a.b/c.jpg"), KF("a.b/c", "jpg"));
  EXPECT_EQ(SplitKeyField("__meta__.json"), KF("__meta__", "json"));
  EXPECT_FALSE(SplitKeyField("README").has_value());
  EXPECT_FALSE(SplitKeyField("dir.d/README").has_value());
  EXPECT_FALSE(SplitKeyField("__a.b__").has_value());
}

// Samples k0..k3 of fields txt and bin, each member 512 bytes of header + 512 of data, cut `into`
// bytes past the start of member `member` (0-based, archive order).
std::vector<std::string> KeysBeforeACut(size_t member, size_t into, Status* error) {
  std::vector<std::pair<std::string, std::string>> files;
  for (int i = 0; i < 4; ++i) {
    files.emplace_back("k" + std::to_string(i) + ".txt", std::string(100, 't'));
    files.emplace_back("k" + std::to_string(i) + ".bin", std::string(100, 'b'));
  }
  std::vector<std::byte> bytes = testing::UstarArchive(files);
  bytes.resize(member * 1024 + into);
  testing::TempDir dir;
  testing::WriteFile(dir.Join("cut.tar"), bytes);
  auto reader = SampleReader::Open(dir.Join("cut.tar"));
  EXPECT_TRUE(reader.ok()) << reader.status().ToString();
  std::vector<std::string> keys;
  while (true) {
    Result<std::optional<Sample>> sample = (*reader)->Next();
    if (!sample.ok()) {
      *error = sample.status();
      break;
    }
    if (!*sample) break;
    EXPECT_EQ((*sample)->fields.size(), 2u) << (*sample)->key;
    keys.push_back((*sample)->key);
  }
  return keys;
}

// Damage inside k2.txt's data: k1 had both its fields, so it is kept, as webdataset keeps it;
// damage inside k2.bin leaves k2 incomplete, so k2 is dropped; a cut header names no member,
// so nothing after the last member known complete is trusted.
TEST(SampleReaderTest, KeepsTheLastCompleteSampleBeforeDamage) {
  Status error;
  EXPECT_EQ(KeysBeforeACut(4, 512 + 50, &error), (std::vector<std::string>{"k0", "k1"}));
  EXPECT_EQ(error.code(), StatusCode::kCorruption);
  EXPECT_NE(error.message().find("k2.txt"), std::string::npos) << error.ToString();

  EXPECT_EQ(KeysBeforeACut(5, 512 + 50, &error), (std::vector<std::string>{"k0", "k1"}));
  EXPECT_NE(error.message().find("k2.bin"), std::string::npos) << error.ToString();

  EXPECT_EQ(KeysBeforeACut(4, 200, &error), (std::vector<std::string>{"k0"}));
  EXPECT_EQ(error.code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace ferry::datasets
