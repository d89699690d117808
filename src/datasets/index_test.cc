#include <gtest/gtest.h>

#include "ferry/datasets.h"
#include "tests/support/test_support.h"

namespace ferry::datasets {
namespace {

const std::string kSha(64, 'a');

TEST(ShardIndexTest, JsonRoundTripsEveryFieldTheSha256Included) {
  std::vector<ShardInfo> shards(2);
  shards[0].url = "a.tar";
  shards[0].bytes = 10;
  shards[0].version = "mtime 1.000000000";
  shards[0].samples = 3;
  shards[1].url = "b.tar";
  shards[1].bytes = 20;
  shards[1].samples = 4;
  shards[1].sha256 = kSha;
  std::string json = IndexJson(shards);
  Result<std::vector<ShardInfo>> back = ParseIndex(json, "index.json");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ((*back)[i].url, shards[i].url);
    EXPECT_EQ((*back)[i].bytes, shards[i].bytes);
    EXPECT_EQ((*back)[i].version, shards[i].version);
    EXPECT_EQ((*back)[i].samples, shards[i].samples);
    EXPECT_EQ((*back)[i].sha256, shards[i].sha256);
  }
  EXPECT_EQ(json.find("\"sha256\"", json.find("a.tar")), json.find(kSha) - 11);  // b.tar's only
}

// A re-run skips a shard found in place when its bytes hash to the recorded sha256, so a field
// that cannot be such a hash is refused, not taken as "no hash".
TEST(ShardIndexTest, RefusesAnSha256ThatIsNotOne) {
  for (std::string bad : {std::string(63, 'a'), std::string(64, 'A'), std::string(64, 'g'),
                          kSha + "0"}) {
    std::string json = R"({"format": "ferry-shard-index-v1", "shards": [{"url": "a.tar", "bytes": 1,
        "samples": 1, "sha256": ")" + bad + R"("}]})";
    Result<std::vector<ShardInfo>> parsed = ParseIndex(json, "idx.json");
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), StatusCode::kCorruption);
    EXPECT_NE(parsed.status().message().find("idx.json: not a ferry shard index (shard 0: "
                                             "\"sha256\" is not 64 lowercase hex digits)"),
              std::string::npos)
        << parsed.status().ToString();
  }
  Result<std::vector<ShardInfo>> number = ParseIndex(
      R"({"format": "ferry-shard-index-v1", "shards": [{"url": "a", "bytes": 1, "samples": 1,
          "sha256": 7}]})",
      "idx.json");
  EXPECT_FALSE(number.ok());
}

// keep_going records a shard cut inside its third sample with the two whole samples before it.
TEST(ShardIndexTest, KeepGoingCountsTheSamplesBeforeTheDamage) {
  testing::TempDir dir;
  std::vector<std::pair<std::string, std::string>> files;
  for (int i = 0; i < 4; ++i) files.emplace_back("k" + std::to_string(i) + ".txt", "text");
  std::vector<std::byte> whole = testing::UstarArchive(files);
  testing::WriteFile(dir.Join("good.tar"), whole);
  whole.resize(2 * 1024 + 600);  // 512 + 512 per member: inside k2.txt's data
  testing::WriteFile(dir.Join("cut.tar"), whole);
  std::vector<std::string> urls = {dir.Join("good.tar"), dir.Join("cut.tar")};
  EXPECT_FALSE(IndexShards(urls).ok());
  IndexOptions options;
  options.keep_going = true;
  Result<std::vector<ShardInfo>> shards = IndexShards(urls, options);
  ASSERT_TRUE(shards.ok()) << shards.status().ToString();
  EXPECT_EQ((*shards)[0].samples, 4u);
  EXPECT_TRUE((*shards)[0].error.ok());
  EXPECT_EQ((*shards)[1].samples, 2u);
  EXPECT_EQ((*shards)[1].error.code(), StatusCode::kCorruption);
  EXPECT_NE((*shards)[1].error.message().find("k2.txt"), std::string::npos);
}

}  // namespace
}  // namespace ferry::datasets
