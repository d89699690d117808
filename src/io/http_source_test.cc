// HTTP sources against real loopback servers: Debian's nginx for the happy paths and
// tests/servers/fault_server.py for every way a link or a server can misbehave.

#include <gtest/gtest.h>

#include <cstring>

#include "ferry/io.h"
#include "tests/support/test_support.h"

namespace ferry::io {
namespace {

using ferry::testing::ServerProcess;
using ferry::testing::TempDir;
using ferry::testing::TestBytes;
using ferry::testing::WriteFile;

constexpr size_t kSize = 3'000'017;  // not a multiple of any buffer size

SourceOptions FastRetries() {
  SourceOptions options;
  options.http.retry_base_delay = std::chrono::milliseconds(5);
  options.http.retry_max_delay = std::chrono::milliseconds(50);
  options.http.stall_timeout = std::chrono::milliseconds(1000);
  options.http.max_retries = 4;
  return options;
}

std::string Contains(const Status& s, const std::string& needle) {
  return s.message().find(needle) != std::string::npos ? ""
                                                       : "'" + needle + "' not in: " + s.ToString();
}

class HttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    bytes_ = new std::vector<std::byte>(TestBytes(kSize));
    WriteFile(dir_->Join("data.bin"), *bytes_);
    WriteFile(dir_->Join("empty.bin"), {});
    WriteFile(dir_->Join("one.bin"), {std::byte{7}});
  }
  static void TearDownTestSuite() {
    delete bytes_;
    delete dir_;
  }

  // Reads the whole object and checks every byte.
  static void ExpectWholeObject(Source& source, int parallelism = 1) {
    ASSERT_EQ(source.size(), kSize);
    std::vector<std::byte> got(kSize);
    Status s = ReadParallel(source, 0, got, {parallelism, 256 * 1024});
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(0, std::memcmp(got.data(), bytes_->data(), kSize));
  }

  static TempDir* dir_;
  static std::vector<std::byte>* bytes_;
};
TempDir* HttpTest::dir_ = nullptr;
std::vector<std::byte>* HttpTest::bytes_ = nullptr;

// ---------------------------------------------------------------------------------------------
// nginx

class NginxTest : public HttpTest {
 protected:
  void SetUp() override {
    if (!ferry::testing::NginxAvailable())
      GTEST_SKIP() << "nginx is not installed (apt-get install nginx-light)";
    auto server = ServerProcess::Start("nginx.py", {"--root", dir_->path()});
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
  }
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(NginxTest, ReadsWholeObjectOverOneAndManyConnections) {
  auto source = OpenSource(server_->Url("data.bin"));
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  ExpectWholeObject(**source, 1);
  ExpectWholeObject(**source, 6);
}

TEST_F(NginxTest, ReadsArbitraryRanges) {
  auto source = OpenSource(server_->Url("data.bin"));
  ASSERT_TRUE(source.ok());
  for (uint64_t offset : {uint64_t{0}, uint64_t{1}, uint64_t{kSize - 1}, uint64_t{123'456}}) {
    std::vector<std::byte> got(std::min<uint64_t>(kSize - offset, 70'001));
    ASSERT_TRUE((*source)->ReadAt(offset, got).ok());
    EXPECT_EQ(0, std::memcmp(got.data(), bytes_->data() + offset, got.size())) << offset;
  }
  std::vector<std::byte> past(2);
  Status s = (*source)->ReadAt(kSize - 1, past);
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_EQ(
      Contains(s, server_->Url("data.bin") + ": read of 2 bytes at offset 3000016 is past the end"),
      "");
}

// Regression: after a large body raised the socket's receive low-water mark, the next small
// response on the same keep-alive connection waited for bytes that never came, until the stall
// timeout; retries hid it. No retries allowed here, so any stall fails the test.
TEST_F(NginxTest, KeepAliveConnectionsServeSmallAfterLargeWithoutStalling) {
  SourceOptions options;
  options.http.max_retries = 0;
  options.http.stall_timeout = std::chrono::milliseconds(5000);
  auto source = OpenSource(server_->Url("data.bin"), options);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  std::vector<std::byte> tiny(7);
  for (int i = 0; i < 10; ++i) {
    std::vector<std::byte> large(100'000 + 4099 * i);  // bodies that end mid-wait
    ASSERT_TRUE((*source)->ReadAt(1000 * i, large).ok());
    Status s = (*source)->ReadAt(kSize - tiny.size(), tiny);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(0, std::memcmp(tiny.data(), bytes_->data() + kSize - tiny.size(), tiny.size()));
  }
  ExpectWholeObject(**source, 4);
}

TEST_F(NginxTest, EmptyAndOneByteObjects) {
  auto empty = OpenSource(server_->Url("empty.bin"));
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ((*empty)->size(), 0u);
  auto one = OpenSource(server_->Url("one.bin"));
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  std::byte b{};
  ASSERT_TRUE((*one)->ReadAt(0, {&b, 1}).ok());
  EXPECT_EQ(b, std::byte{7});
}

TEST_F(NginxTest, MissingObjectIsNotFound) {
  Status s = OpenSource(server_->Url("missing.bin")).status();
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(Contains(s, server_->Url("missing.bin") + ": HTTP 404"), "");
}

TEST_F(NginxTest, ForbiddenIsPermissionDenied) {
  // nginx answers 403 for a folder without an index when autoindex is off.
  Status s = OpenSource(server_->Url("")).status();
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(Contains(s, "HTTP 403"), "");
}

TEST_F(NginxTest, StreamReadsSequentially) {
  auto source = OpenSource(server_->Url("data.bin"));
  ASSERT_TRUE(source.ok());
  StreamOptions options{.chunk_size = 1 << 20, .read_ahead = 2, .parallel = {3, 300'000}};
  auto stream = Stream::Open(source->get(), 5, kSize - 5, options);
  ASSERT_TRUE(stream.ok());
  std::vector<std::byte> got;
  while (true) {
    auto chunk = (*stream)->Next();
    ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
    if (chunk->empty()) break;
    got.insert(got.end(), chunk->begin(), chunk->end());
  }
  ASSERT_EQ(got.size(), kSize - 5);
  EXPECT_EQ(0, std::memcmp(got.data(), bytes_->data() + 5, got.size()));
}

// ---------------------------------------------------------------------------------------------
// Fault injection

class FaultTest : public HttpTest {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start("fault_server.py", {"--root", dir_->path()});
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
  }
  // A URL whose fault counters belong to this test alone.
  std::string Url(const std::string& query) {
    return server_->Url(
        "data.bin?id=" +
        std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "&" + query);
  }
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(FaultTest, DroppedConnectionsResumeAtTheExactByte) {
  // Every one of the first 5 responses closes after 100,003 bytes; the read resumes each time.
  auto source = OpenSource(Url("drop_after=100003&drops=5"), FastRetries());
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  ExpectWholeObject(**source);
}

TEST_F(FaultTest, ResetConnectionsResumeAtTheExactByte) {
  auto source = OpenSource(Url("reset_after=77777&resets=4"), FastRetries());
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  ExpectWholeObject(**source);
}

TEST_F(FaultTest, DropsDuringParallelReadsResumeEachPart) {
  auto source = OpenSource(Url("drop_after=50000&drops=12"), FastRetries());
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  ExpectWholeObject(**source, 4);
}

TEST_F(FaultTest, ServiceUnavailableIsRetried) {
  auto source = OpenSource(Url("fail=503&fails=3"), FastRetries());
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  ExpectWholeObject(**source);
}

TEST_F(FaultTest, TooManyRequestsIsRetried) {
  auto source = OpenSource(Url("fail=429&fails=2"), FastRetries());
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  ExpectWholeObject(**source);
}

TEST_F(FaultTest, PersistentFailureGivesUpWithTheCause) {
  Status s = OpenSource(Url("fail=503&fails=1000"), FastRetries()).status();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(Contains(s, "giving up after 5 attempts"), "");
  EXPECT_EQ(Contains(s, "HTTP 503"), "");
  EXPECT_EQ(Contains(s, "data.bin"), "");
}

TEST_F(FaultTest, StallIsDetectedAndResumed) {
  auto source = OpenSource(Url("stall_after=200000&stalls=2"), FastRetries());
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  ExpectWholeObject(**source);
}

TEST_F(FaultTest, ShortAnswersAreCompleted) {
  auto source = OpenSource(Url("short=65536"), FastRetries());
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  ExpectWholeObject(**source);
}

// All of a Stream on one connection, in small chunks.
std::vector<std::byte> StreamAll(Source& source, uint64_t offset, Status& status) {
  StreamOptions options{.chunk_size = 256 * 1024, .read_ahead = 2, .parallel = {1, 8 << 20}};
  std::vector<std::byte> got;
  auto stream = Stream::Open(&source, offset, source.size() - offset, options);
  if (!stream.ok()) {
    status = stream.status();
    return got;
  }
  while (true) {
    auto chunk = (*stream)->Next();
    if (!chunk.ok()) {
      status = chunk.status();
      return got;
    }
    if (chunk->empty()) return got;
    got.insert(got.end(), chunk->begin(), chunk->end());
  }
}

TEST_F(FaultTest, StreamOnOneConnectionIsOneTransfer) {
  // The probe is request 1 and the stream's ranged GET request 2; any request after that sees
  // the object "replaced" and fails, so the 12 chunks must all come from that one transfer.
  auto source = OpenSource(Url("change_after=2"), FastRetries());
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  Status status;
  std::vector<std::byte> got = StreamAll(**source, 7, status);
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_EQ(got.size(), kSize - 7);
  EXPECT_EQ(0, std::memcmp(got.data(), bytes_->data() + 7, got.size()));
}

TEST_F(FaultTest, StreamOnOneConnectionResumesDroppedTransfersAtTheExactByte) {
  auto source = OpenSource(Url("drop_after=100003&drops=5"), FastRetries());
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  Status status;
  std::vector<std::byte> got = StreamAll(**source, 0, status);
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_EQ(got.size(), kSize);
  EXPECT_EQ(0, std::memcmp(got.data(), bytes_->data(), kSize));
}

TEST_F(FaultTest, ReadsOutOfOrderInsideAStreamedRangeAreStillRight) {
  auto source = OpenSource(Url("drop_after=70001&drops=2"), FastRetries());
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  (*source)->ExpectSequential(0, kSize);
  std::vector<std::byte> got(1000);
  for (uint64_t offset : {uint64_t{500'000}, uint64_t{10}, uint64_t{11'000}, kSize - 1000}) {
    ASSERT_TRUE((*source)->ReadAt(offset, got).ok()) << offset;
    EXPECT_EQ(0, std::memcmp(got.data(), bytes_->data() + offset, got.size())) << offset;
  }
  ExpectWholeObject(**source, 3);  // and parallel reads beside it
}

TEST_F(FaultTest, ServerIgnoringRangeIsReadAsOneTransfer) {
  auto source = OpenSource(Url("ignore_range=1"), FastRetries());
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  EXPECT_FALSE((*source)->random_access());
  EXPECT_EQ((*source)->default_parallelism(), 1);
  ExpectWholeObject(**source, /*parallelism=*/4);  // parts asked for in parallel: read in order
  // Forward skips, then a read before the transfer's position, which starts it again.
  std::vector<std::byte> got(1000);
  for (uint64_t offset : {uint64_t{10}, uint64_t{500'000}, uint64_t{3}, kSize - 1000}) {
    ASSERT_TRUE((*source)->ReadAt(offset, got).ok()) << offset;
    EXPECT_EQ(0, std::memcmp(got.data(), bytes_->data() + offset, got.size())) << offset;
  }
}

TEST_F(FaultTest, ServerIgnoringRangeRetriesFromTheStartAndSkips) {
  auto source = OpenSource(Url("ignore_range=1&drop_after=300001&drops=3"), FastRetries());
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  ExpectWholeObject(**source);
}

TEST_F(FaultTest, ServerIgnoringRangeThatChangesBetweenTransfersIsDetected) {
  // The first transfer (the probe's) breaks; the second one serves a new ETag, same size.
  auto source =
      OpenSource(Url("ignore_range=1&drop_after=1000&drops=1&change_after=1&grow=0"), FastRetries());
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  std::vector<std::byte> got(kSize);
  Status s = (*source)->ReadAt(0, got);
  EXPECT_EQ(s.code(), StatusCode::kSourceChanged) << s.ToString();
  EXPECT_EQ(Contains(s, "ETag \"v1\""), "");
  EXPECT_EQ(Contains(s, "ETag \"v2\""), "");
}

TEST_F(FaultTest, ServerIgnoringRangeWithoutContentLengthIsAClearError) {
  Status s = OpenSource(Url("ignore_range=1&chunked=1"), FastRetries()).status();
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_EQ(Contains(s, "no Content-Length"), "");
  EXPECT_EQ(Contains(s, "data.bin"), "");
}

TEST_F(FaultTest, SlowServerThatKeepsSendingIsNotAStall) {
  // 2,000 bytes every 100 ms: far below the 64 KiB poll() waits for, but never silent for 300 ms.
  SourceOptions options = FastRetries();
  options.http.stall_timeout = std::chrono::milliseconds(300);
  options.http.max_retries = 0;  // a stall would fail the read at once
  auto source = OpenSource(Url("drip=2000&drip_ms=100"), options);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  std::vector<std::byte> got(20'000);
  Status s = (*source)->ReadAt(0, got);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(0, std::memcmp(got.data(), bytes_->data(), got.size()));
}

TEST_F(FaultTest, StallAfterHeadersGivesUpAtTheDeadline) {
  SourceOptions options = FastRetries();
  options.http.stall_timeout = std::chrono::milliseconds(300);
  options.http.timeout = std::chrono::milliseconds(1000);
  options.http.max_retries = 1000;  // the deadline, not the count, ends it
  // Headers, then silence, from the first request on (the probe's).
  Status s = OpenSource(Url("stall_after=0&stalls=1000"), options).status();
  EXPECT_EQ(s.code(), StatusCode::kTimeout) << s.ToString();
  EXPECT_EQ(Contains(s, "FERRY_HTTP_TIMEOUT"), "");
}

TEST_F(FaultTest, RefusedConnectionAtOpenFailsAfterAFewQuickRetries) {
  SourceOptions options = FastRetries();
  options.http.max_retries = 1000;  // only the open-time limit applies
  Status s = OpenSource("http://127.0.0.1:9/x.bin", options).status();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_EQ(Contains(s, "giving up after 3 attempts"), "");
  EXPECT_EQ(Contains(s, "127.0.0.1:9"), "");
}

TEST_F(FaultTest, ChangedETagIsDetected) {
  auto source = OpenSource(Url("change_after=1"), FastRetries());  // the probe is request 1
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  std::vector<std::byte> got(1000);
  Status s = (*source)->ReadAt(500, got);
  EXPECT_EQ(s.code(), StatusCode::kSourceChanged);
  EXPECT_EQ(Contains(s, "changed while being read"), "");
  EXPECT_EQ(Contains(s, "ETag \"v1\""), "");
  EXPECT_EQ(Contains(s, "ETag \"v2\""), "");
}

TEST_F(FaultTest, ChangedSizeIsDetected) {
  auto source = OpenSource(Url("change_after=1&grow=10"), FastRetries());
  ASSERT_TRUE(source.ok());
  std::vector<std::byte> got(10);
  Status s = (*source)->ReadAt(0, got);
  EXPECT_EQ(s.code(), StatusCode::kSourceChanged);
  EXPECT_EQ(Contains(s, "size 3000027"), "");
}

TEST_F(FaultTest, ErrorStatusesMapToCodes) {
  EXPECT_EQ(OpenSource(Url("status=404")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(OpenSource(Url("status=403")).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(OpenSource(Url("status=401")).status().code(), StatusCode::kPermissionDenied);
  Status teapot = OpenSource(Url("status=418")).status();
  EXPECT_EQ(teapot.code(), StatusCode::kIoError);
  EXPECT_EQ(Contains(teapot, "unexpected HTTP 418"), "");
}

TEST(HttpConnectTest, RefusedConnectionGivesUpNamingTheUrl) {
  // Port 1 on loopback: nothing listens there.
  SourceOptions options = FastRetries();
  options.http.max_retries = 1;
  Status s = OpenSource("http://127.0.0.1:1/x.bin", options).status();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(Contains(s, "http://127.0.0.1:1/x.bin"), "");
}

}  // namespace
}  // namespace ferry::io
