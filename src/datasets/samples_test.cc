#include <gtest/gtest.h>

#include "ferry/datasets.h"

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

}  // namespace
}  // namespace ferry::datasets
