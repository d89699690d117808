#include "io/http_connection.h"

#include <gtest/gtest.h>

namespace ferry::io::http {
namespace {

TEST(ChunkedDecoderTest, DecodesWholeAndSplitInput) {
  const std::string raw =
      "4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\nNEXT";
  for (size_t step : {raw.size(), size_t{1}, size_t{3}}) {
    ChunkedDecoder decoder(1 << 20);
    std::string out, pending;
    for (size_t i = 0; i < raw.size() && !decoder.done(); i += step) {
      pending += raw.substr(i, step);
      size_t used = 0;
      ASSERT_TRUE(decoder.Feed(pending, &used, &out).ok());
      pending.erase(0, used);
    }
    EXPECT_TRUE(decoder.done()) << step;
    EXPECT_EQ(out, "Wikipedia in \r\n\r\nchunks.") << step;
  }
}

TEST(ChunkedDecoderTest, RefusesBadFramingAndOversizedBodies) {
  std::string out;
  size_t used = 0;
  EXPECT_FALSE(ChunkedDecoder(100).Feed("zz\r\n", &used, &out).ok());
  EXPECT_FALSE(ChunkedDecoder(100).Feed("2\r\nabX\r\n", &used, &out).ok());
  Status big = ChunkedDecoder(100).Feed("1000\r\n", &used, &out);
  EXPECT_EQ(big.code(), StatusCode::kIoError);
  EXPECT_NE(big.message().find("exceeds 100 bytes"), std::string::npos);
  EXPECT_FALSE(ChunkedDecoder(100).Feed("ffffffffffffffff\r\n", &used, &out).ok());
}

}  // namespace
}  // namespace ferry::io::http
