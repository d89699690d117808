#include <gtest/gtest.h>

#include "ferry/io.h"

namespace ferry::io {
namespace {

using Strings = std::vector<std::string>;

TEST(ParseUriTest, PlainPathsAreFiles) {
  for (const char* text : {"model.safetensors", "/data/a.tar", "./x", "weird:name", "a//b"}) {
    Result<Uri> uri = ParseUri(text);
    ASSERT_TRUE(uri.ok()) << text;
    EXPECT_EQ(uri->scheme, Scheme::kFile);
    EXPECT_EQ(uri->location, text);
  }
}

TEST(ParseUriTest, FileUrisArePercentDecoded) {
  EXPECT_EQ(ParseUri("file:///tmp/a%20b.bin")->location, "/tmp/a b.bin");
  EXPECT_EQ(ParseUri("file://localhost/x")->location, "/x");
  EXPECT_EQ(ParseUri("FILE:///x")->location, "/x");
}

TEST(ParseUriTest, BadFileUrisSayWhatWasExpected) {
  EXPECT_NE(ParseUri("file://server/x").status().message().find("expected file:///path"),
            std::string::npos);
  EXPECT_EQ(ParseUri("file://").status().code(), StatusCode::kInvalidArgument);
  Status bad_escape = ParseUri("file:///a%2").status();
  EXPECT_EQ(bad_escape.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_escape.message().find("offset 9"), std::string::npos) << bad_escape.message();
  EXPECT_EQ(ParseUri("file:///a%00b").status().code(), StatusCode::kInvalidArgument);
}

TEST(ParseUriTest, HttpUrlsKeepTheirText) {
  Result<Uri> uri = ParseUri("http://127.0.0.1:8080/a/b.tar?x=1");
  ASSERT_TRUE(uri.ok());
  EXPECT_EQ(uri->scheme, Scheme::kHttp);
  EXPECT_EQ(uri->location, "http://127.0.0.1:8080/a/b.tar?x=1");
  EXPECT_EQ(ParseUri("https://h/x")->scheme, Scheme::kHttps);
}

TEST(ParseUriTest, RejectsMalformedInput) {
  EXPECT_EQ(ParseUri("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseUri("http:///path").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseUri("http://h/a b").status().code(), StatusCode::kInvalidArgument);
  Status control = ParseUri(std::string("a\nb")).status();
  EXPECT_NE(control.message().find("0x0a at offset 1"), std::string::npos) << control.message();
  EXPECT_EQ(ParseUri(std::string("a\0b", 3)).status().code(), StatusCode::kInvalidArgument);
}

TEST(ParseUriTest, S3UrisKeepTheKeyAsWritten) {
  auto uri = ParseUri("s3://bucket/dir/a b+c=%41.tar");
  ASSERT_TRUE(uri.ok());
  EXPECT_EQ(uri->scheme, Scheme::kS3);
  EXPECT_EQ(uri->location, "bucket/dir/a b+c=%41.tar");
  EXPECT_EQ(ParseUri("s3:///key").status().code(), StatusCode::kInvalidArgument);
}

TEST(ParseUriTest, UnknownSchemesAreUnsupported) {
  Status s = ParseUri("ftp://h/x").status();
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("'ftp'"), std::string::npos);
}

TEST(ExpandBracesTest, NoBracesIsItself) {
  EXPECT_EQ(*ExpandBraces("a.tar"), Strings{"a.tar"});
  EXPECT_EQ(*ExpandBraces(""), Strings{""});
}

TEST(ExpandBracesTest, ZeroPaddedRangesKeepTheirWidth) {
  EXPECT_EQ(*ExpandBraces("shard-{0000..0002}.tar"),
            (Strings{"shard-0000.tar", "shard-0001.tar", "shard-0002.tar"}));
  EXPECT_EQ(*ExpandBraces("{8..11}"), (Strings{"8", "9", "10", "11"}));
  EXPECT_EQ(*ExpandBraces("{08..11}"), (Strings{"08", "09", "10", "11"}));
  EXPECT_EQ(ExpandBraces("s-{000000..000999}.tar")->back(), "s-000999.tar");
}

TEST(ExpandBracesTest, StepsAndDescendingRanges) {
  EXPECT_EQ(*ExpandBraces("{0..10..5}"), (Strings{"0", "5", "10"}));
  EXPECT_EQ(*ExpandBraces("{3..1}"), (Strings{"3", "2", "1"}));
  EXPECT_EQ(*ExpandBraces("{1..1}"), Strings{"1"});
}

TEST(ExpandBracesTest, ListsNestAndMultiply) {
  EXPECT_EQ(*ExpandBraces("{a,b}/{1..2}"), (Strings{"a/1", "a/2", "b/1", "b/2"}));
  EXPECT_EQ(*ExpandBraces("x{a,{b,c}d,}y"), (Strings{"xay", "xbdy", "xcdy", "xy"}));
  EXPECT_EQ(*ExpandBraces("http://h/{train,val}-{0..1}.tar"),
            (Strings{"http://h/train-0.tar", "http://h/train-1.tar", "http://h/val-0.tar",
                     "http://h/val-1.tar"}));
}

TEST(ExpandBracesTest, ErrorsNameTheOffset) {
  Status unmatched = ExpandBraces("ab{c,d").status();
  EXPECT_EQ(unmatched.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unmatched.message().find("unmatched '{' at offset 2"), std::string::npos)
      << unmatched.message();
  EXPECT_NE(ExpandBraces("a}b").status().message().find("unmatched '}' at offset 1"),
            std::string::npos);
  EXPECT_NE(ExpandBraces("{a..z}").status().message().find("not numeric"), std::string::npos);
  EXPECT_NE(ExpandBraces("{x}").status().message().find("one alternative"), std::string::npos);
  EXPECT_NE(ExpandBraces("{1..5..0}").status().message().find("step is 0"), std::string::npos);
  EXPECT_FALSE(ExpandBraces("{1..1234567890123456789}").ok());  // 19 digits
}

TEST(ExpandBracesTest, RefusesHugeExpansionsBeforeAllocating) {
  EXPECT_EQ(ExpandBraces("{0..999}{0..999}", 1000).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ExpandBraces("{0..999}", 1000)->size(), 1000u);
  EXPECT_FALSE(ExpandBraces("{0..999999999999}").ok());
  EXPECT_FALSE(ExpandBraces("{{0..600},{0..600}}", 1000).ok());  // ranges summed, not each
  std::string deep(40, '{');
  EXPECT_NE(ExpandBraces(deep).status().message().find("nested too deeply"), std::string::npos);
}


TEST(RedactUriTest, HidesPasswordsAndKeepsTheUser) {
  EXPECT_EQ(RedactUri("http://user:PW@127.0.0.1:9/x.bin"), "http://user:***@127.0.0.1:9/x.bin");
  EXPECT_EQ(RedactUri("https://TOKEN@host/x"), "https://***@host/x");
  EXPECT_EQ(RedactUri("http://a:b@c@host"), "http://a:***@host");  // the last '@' ends userinfo
  EXPECT_EQ(RedactUri("http://host/path/@scope/x"), "http://host/path/@scope/x");
}

TEST(RedactUriTest, HidesCredentialQueryParametersWhateverTheirCase) {
  EXPECT_EQ(RedactUri("https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                      "&X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abc&partNumber=2#frag"),
            "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=***&X-Amz-Credential=***"
            "&X-Amz-Signature=***&partNumber=2#frag");
  EXPECT_EQ(RedactUri("http://h/x?sig=S&sv=2021&access_token=T&API_KEY=K&name=keep&Token=U"),
            "http://h/x?sig=***&sv=2021&access_token=***&API_KEY=***&name=keep&Token=***");
  EXPECT_EQ(RedactUri("http://h/x?flag&&signature=S"), "http://h/x?flag&&signature=***");
  EXPECT_EQ(RedactUri("http://h/x?a=1"), "http://h/x?a=1");
}

TEST(RedactUriTest, HidesEncodedNamesFragmentsAndSemicolonSeparatedParameters) {
  EXPECT_EQ(RedactUri("https://h/k?X%2DAmz%2DSignature=abc&a=1"), "https://h/k?X%2DAmz%2DSignature=***&a=1");
  EXPECT_EQ(RedactUri("https://h/k?a=1;token=T;b=2"), "https://h/k?a=1;token=***;b=2");
  EXPECT_EQ(RedactUri("https://h/cb#access_token=T&state=s"), "https://h/cb#access_token=***&state=s");
  EXPECT_EQ(RedactUri("https://h/k?v=1#id_token=T"), "https://h/k?v=1#id_token=***");
  EXPECT_EQ(RedactUri("https://h/page#section-2"), "https://h/page#section-2");
  EXPECT_EQ(RedactUri("http://h/x?sessionid=S&jwt=J&hmac=H&sid=I&SAMLAssertion=A&keep=1"),
            "http://h/x?sessionid=***&jwt=***&hmac=***&sid=***&SAMLAssertion=***&keep=1");
}

TEST(RedactUriTest, LeavesPathsAndOtherTextAlone) {
  EXPECT_EQ(RedactUri("/data/a:b@c.tar"), "/data/a:b@c.tar");
  EXPECT_EQ(RedactUri("s3://bucket/key?x"), "s3://bucket/key?x");
  EXPECT_EQ(RedactUri(""), "");
}

TEST(RedactUrisTest, RedactsEveryUriInAMessage) {
  EXPECT_EQ(RedactUris("http://u:PW@h/a: HTTP 404; then 'https://h/b?token=T' failed"),
            "http://u:***@h/a: HTTP 404; then 'https://h/b?token=***' failed");
  EXPECT_EQ(RedactUris("no uri here"), "no uri here");
  EXPECT_EQ(RedactUris("endpoint=http://AK:SECRET@127.0.0.1:7480"),
            "endpoint=http://AK:***@127.0.0.1:7480");
  EXPECT_EQ(RedactUris("ends with ://"), "ends with ://");
  EXPECT_EQ(RedactUris("(http://h/x?sig=S): HTTP 404, http://h/y?token=T."),
            "(http://h/x?sig=***): HTTP 404, http://h/y?token=***.");
  // A quote inside a token does not end the URL: the rest of the value is hidden too.
  EXPECT_EQ(RedactUris("GET 'http://h/x?token=ab'cd&e=1' failed"), "GET 'http://h/x?token=***&e=1' failed");
  EXPECT_EQ(RedactUris("\"http://h/x?sig=S\", \"http://h/y\""), "\"http://h/x?sig=***\", \"http://h/y\"");
}

TEST(ResolveReferenceTest, DotSegmentsAreResolvedAndMayNotClimbAboveTheRoot) {
  EXPECT_EQ(*ResolveReference("http://h/m/v1/i.json", "../v2/a.tar"), "http://h/m/v2/a.tar");
  EXPECT_EQ(*ResolveReference("http://h/m/i.json", "./a/./b.tar?x=1"), "http://h/m/a/b.tar?x=1");
  Result<std::string> above = ResolveReference("http://u:PW@h/m/i.json", "../../../etc/passwd");
  ASSERT_EQ(above.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(above.status().message().find("climbs above the root of http://h"), std::string::npos)
      << above.status().message();
  EXPECT_EQ(above.status().message().find("PW"), std::string::npos);
  // S3 keys are names, not paths: ".." is part of the key.
  EXPECT_EQ(*ResolveReference("s3://b/d/i.json", "../x.tar"), "s3://b/d/../x.tar");
}


TEST(ResolveReferenceTest, RelativeNamesJoinTheFolderOfTheIndex) {
  EXPECT_EQ(*ResolveReference("http://h:8/m/model.safetensors.index.json", "model-1.safetensors"),
            "http://h:8/m/model-1.safetensors");
  EXPECT_EQ(*ResolveReference("http://h/m/i.json?v=1", "a/b.tar"), "http://h/m/a/b.tar");
  EXPECT_EQ(*ResolveReference("http://h", "a.tar"), "http://h/a.tar");
  EXPECT_EQ(*ResolveReference("https://h/m/i.json", "/other/a.tar"), "https://h/other/a.tar");
  EXPECT_EQ(*ResolveReference("s3://bucket/dir/index.json", "a.tar"), "s3://bucket/dir/a.tar");
  EXPECT_EQ(*ResolveReference("s3://bucket/index.json", "a.tar"), "s3://bucket/a.tar");
  EXPECT_EQ(*ResolveReference("/data/m/index.json", "model-1.safetensors"),
            "/data/m/model-1.safetensors");
  EXPECT_EQ(*ResolveReference("index.json", "model-1.safetensors"), "model-1.safetensors");
}

TEST(ResolveReferenceTest, SameOriginAbsoluteUrisAreKept) {
  EXPECT_EQ(*ResolveReference("http://H:8/i.json", "http://h:8/x/a.tar"), "http://h:8/x/a.tar");
  EXPECT_EQ(*ResolveReference("s3://b/i.json", "s3://b/x/a.tar"), "s3://b/x/a.tar");
  // A local index is as trusted as the command line.
  EXPECT_EQ(*ResolveReference("/data/index.json", "s3://b/a.tar"), "s3://b/a.tar");
  EXPECT_EQ(*ResolveReference("/data/index.json", "/etc/x"), "/etc/x");
}

TEST(ResolveReferenceTest, RemoteIndexCannotReachLocalFilesOrOtherHosts) {
  for (const char* reference : {"file:///etc/passwd", "http://other:8/x",
                                "https://h:8/x", "//other/x", "s3://b/x", "http://h:9/x"}) {
    Result<std::string> r = ResolveReference("http://u:PW@h:8/m/i.json", reference);
    ASSERT_FALSE(r.ok()) << reference << " -> " << *r;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("FERRY_ALLOW_CROSS_ORIGIN=1"), std::string::npos);
    EXPECT_EQ(r.status().message().find("PW"), std::string::npos) << r.status().message();
  }
  EXPECT_FALSE(ResolveReference("s3://b/i.json", "s3://other/x").ok());
  EXPECT_FALSE(ResolveReference("s3://b/i.json", "file:///etc/passwd").ok());
  EXPECT_EQ(*ResolveReference("http://h/i.json", "http://other/x", /*allow_cross_origin=*/true),
            "http://other/x");
}

TEST(WithoutQueryTest, KeepsTheObjectsNameOnly) {
  EXPECT_EQ(WithoutQuery("http://h/a.tar?sig=x#f"), "http://h/a.tar");
  EXPECT_EQ(WithoutQuery("s3://b/m.safetensors.index.json?versionId=1"), "s3://b/m.safetensors.index.json");
  EXPECT_EQ(WithoutQuery("/data/odd?name.tar"), "/data/odd?name.tar");
  EXPECT_EQ(WithoutQuery("http://h?x"), "http://h");
}

TEST(ResolveReferenceTest, EmptyNamesAreRefused) {
  EXPECT_EQ(ResolveReference("http://h/i.json", "").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::io
