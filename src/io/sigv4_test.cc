// SigV4 against the worked examples AWS publishes for S3 ("Signature Calculations for the
// Authorization Header" and "Query Parameters" in the S3 API reference): example credentials
// AKIAIOSFODNN7EXAMPLE, bucket examplebucket, 2013-05-24T00:00:00Z, us-east-1.

#include "io/sigv4.h"

#include <gtest/gtest.h>

namespace ferry::io::sigv4 {
namespace {

const Credentials kExample{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
const auto kMay24 = std::chrono::system_clock::from_time_t(1369353600);  // 2013-05-24 00:00:00 UTC
constexpr char kEmptySha256[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::string Find(const std::vector<std::pair<std::string, std::string>>& headers,
                 const std::string& name) {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return "";
}

TEST(SigV4Test, GetObjectWithRange) {
  Request r;
  r.host = "examplebucket.s3.amazonaws.com";
  r.path = "/test.txt";
  r.headers = {{"Range", "bytes=0-9"}};
  r.payload_sha256 = kEmptySha256;
  auto headers = SignHeaders(r, kExample, "us-east-1", "s3", kMay24);
  EXPECT_EQ(Find(headers, "x-amz-date"), "20130524T000000Z");
  EXPECT_EQ(Find(headers, "Authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4Test, ListObjectsSortsAndEncodesTheQuery) {
  Request r;
  r.host = "examplebucket.s3.amazonaws.com";
  r.path = "/";
  r.query = {{"prefix", "J"}, {"max-keys", "2"}};  // given unsorted
  r.payload_sha256 = kEmptySha256;
  auto headers = SignHeaders(r, kExample, "us-east-1", "s3", kMay24);
  EXPECT_NE(Find(headers, "Authorization")
                .find("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
            std::string::npos)
      << Find(headers, "Authorization");
}

TEST(SigV4Test, PresignedGet) {
  Request r;
  r.host = "examplebucket.s3.amazonaws.com";
  r.path = "/test.txt";
  std::string query = PresignQuery(r, kExample, "us-east-1", "s3", kMay24, std::chrono::hours(24));
  EXPECT_EQ(query,
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
            "us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
            "X-Amz-SignedHeaders=host&X-Amz-Signature="
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

TEST(SigV4Test, SessionTokenIsSignedAndSent) {
  Request r;
  r.host = "h";
  r.path = "/k";
  Credentials temporary = kExample;
  temporary.session_token = "token/with+chars=";
  auto headers = SignHeaders(r, temporary, "us-east-1", "s3", kMay24);
  EXPECT_EQ(Find(headers, "x-amz-security-token"), "token/with+chars=");
  EXPECT_NE(Find(headers, "Authorization").find("x-amz-date;x-amz-security-token,"),
            std::string::npos);
}

TEST(SigV4Test, UriEncodeFollowsRfc3986) {
  EXPECT_EQ(UriEncode("a b+c=d/é~_.-", false), "a%20b%2Bc%3Dd%2F%C3%A9~_.-");
  EXPECT_EQ(UriEncode("dir/a b", true), "dir/a%20b");
}

TEST(SigV4Test, CanonicalRequestTrimsAndSortsHeaders) {
  Request r;
  r.host = "h";
  r.path = "/";
  std::string canonical =
      CanonicalRequest(r, {{"My-Header", "  a   b  "}, {"host", "h"}, {"A", "1"}});
  EXPECT_EQ(canonical,
            "GET\n/\n\na:1\nhost:h\nmy-header:a b\n\na;host;my-header\nUNSIGNED-PAYLOAD");
}

}  // namespace
}  // namespace ferry::io::sigv4
