#include "io/s3.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "tests/support/test_support.h"

namespace ferry::io::s3 {
namespace {

using testing::TempDir;

Environment Env(std::map<std::string, std::string> vars) {
  return [vars](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
}

void Write(const std::string& path, const std::string& text) {
  testing::WriteFile(
      path, std::vector<std::byte>(reinterpret_cast<const std::byte*>(text.data()),
                                   reinterpret_cast<const std::byte*>(text.data()) + text.size()));
}

TEST(S3ConfigTest, EnvironmentCredentialsAndEndpoint) {
  TempDir home;
  auto config = ResolveConfig(Env({{"HOME", home.path()},
                                   {"AWS_ACCESS_KEY_ID", "AK"},
                                   {"AWS_SECRET_ACCESS_KEY", "SK"},
                                   {"AWS_SESSION_TOKEN", "TOK"},
                                   {"AWS_DEFAULT_REGION", "eu-west-1"},
                                   {"AWS_ENDPOINT_URL", "http://127.0.0.1:7480/"}}));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->endpoint, "http://127.0.0.1:7480");
  EXPECT_EQ(config->region, "eu-west-1");
  EXPECT_TRUE(config->path_style);
  ASSERT_TRUE(config->credentials.has_value());
  EXPECT_EQ(config->credentials->session_token, "TOK");
  EXPECT_EQ(config->credentials_source, "environment");
}

TEST(S3ConfigTest, ProfilesFromTheAwsFiles) {
  TempDir home;
  std::filesystem::create_directories(home.Join(".aws"));
  Write(home.Join(".aws/credentials"),
        "[default]\naws_access_key_id = D\naws_secret_access_key = DS\n"
        "[work]\naws_access_key_id=W\naws_secret_access_key=WS\n");
  Write(home.Join(".aws/config"),
        "[default]\nregion = us-west-2\n[profile work]\nregion = ap-south-1\n"
        "endpoint_url = https://s3.example.test\n");
  auto plain = ResolveConfig(Env({{"HOME", home.path()}}));
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->credentials->access_key_id, "D");
  EXPECT_EQ(plain->region, "us-west-2");
  EXPECT_EQ(plain->endpoint, "https://s3.us-west-2.amazonaws.com");
  EXPECT_FALSE(plain->path_style);

  auto work = ResolveConfig(Env({{"HOME", home.path()}, {"AWS_PROFILE", "work"}}));
  ASSERT_TRUE(work.ok());
  EXPECT_EQ(work->credentials->secret_access_key, "WS");
  EXPECT_EQ(work->region, "ap-south-1");
  EXPECT_EQ(work->endpoint, "https://s3.example.test");

  auto missing = ResolveConfig(Env({{"HOME", home.path()}, {"AWS_PROFILE", "nope"}}));
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("AWS_PROFILE 'nope'"), std::string::npos);
}

TEST(S3ConfigTest, AnonymousWhenNoCredentialsOrAsked) {
  TempDir home;
  auto none = ResolveConfig(Env({{"HOME", home.path()}}));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->credentials.has_value());
  auto forced = ResolveConfig(Env({{"HOME", home.path()},
                                   {"AWS_ACCESS_KEY_ID", "AK"},
                                   {"AWS_SECRET_ACCESS_KEY", "SK"},
                                   {"AWS_NO_SIGN_REQUEST", "true"}}));
  ASSERT_TRUE(forced.ok());
  EXPECT_FALSE(forced->credentials.has_value());
}

TEST(S3ConfigTest, HalfSetCredentialsAreAnErrorWithoutTheSecret) {
  TempDir home;
  auto half = ResolveConfig(Env({{"HOME", home.path()}, {"AWS_SECRET_ACCESS_KEY", "s3cr3t"}}));
  EXPECT_EQ(half.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(half.status().message().find("s3cr3t"), std::string::npos);
}

TEST(S3UrlTest, PathAndVirtualHostedAddressing) {
  Config config;
  config.endpoint = "http://127.0.0.1:7480";
  Location loc{"data", "dir/a b+c=é.tar"};
  EXPECT_EQ(ObjectUrl(config, loc), "http://127.0.0.1:7480/data/dir/a%20b%2Bc%3D%C3%A9.tar");
  config.endpoint = "https://s3.us-east-1.amazonaws.com";
  config.path_style = false;
  EXPECT_EQ(ObjectUrl(config, loc),
            "https://data.s3.us-east-1.amazonaws.com/dir/a%20b%2Bc%3D%C3%A9.tar");
  EXPECT_EQ(ObjectUrl(config, {"my.bucket", "k"}),
            "https://s3.us-east-1.amazonaws.com/my.bucket/k");
}

TEST(S3UrlTest, BucketNamesAreChecked) {
  EXPECT_TRUE(ParseLocation("s3://ok-bucket/k", "ok-bucket/k").ok());
  EXPECT_EQ(ParseLocation("s3://ab/k", "ab/k").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseLocation("s3://Big/k", "Big/k").status().code(), StatusCode::kInvalidArgument);
  auto loc = ParseLocation("s3://bucket", "bucket");
  ASSERT_TRUE(loc.ok());
  EXPECT_EQ(loc->key, "");
}

TEST(S3ErrorTest, DescribesXmlErrors) {
  EXPECT_EQ(DescribeError("<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The "
                          "key &amp; more</Message></Error>"),
            "NoSuchKey: The key & more");
  EXPECT_EQ(DescribeError("<html>not found</html>"), "");
}

}  // namespace
}  // namespace ferry::io::s3
