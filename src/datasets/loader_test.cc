#include "datasets/loader.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include "tests/support/test_support.h"

namespace ferry::datasets {
namespace {

using testing::TempDir;

std::string Key(size_t shard, uint64_t index) {
  return "s" + std::to_string(shard) + "/k" + std::to_string(index);
}

std::string Text(size_t shard, uint64_t index) {
  std::string text;
  for (uint64_t w = 0; w < 3 + (shard * 7 + index) % 11; ++w) {
    text += (w ? " " : "") + std::string("word") + std::to_string((shard + index * w) % 13);
  }
  return text;
}

// Shards of samples {key, "txt": Text, "bin": `bin_bytes` test bytes}, one per count.
std::vector<std::string> MakeShards(const TempDir& dir, const std::vector<uint64_t>& counts,
                                    size_t bin_bytes = 16) {
  std::vector<std::string> urls;
  for (size_t s = 0; s < counts.size(); ++s) {
    std::vector<std::pair<std::string, std::string>> files;
    for (uint64_t i = 0; i < counts[s]; ++i) {
      std::vector<std::byte> bin = testing::TestBytes(bin_bytes, s * 1000 + i);
      files.emplace_back(Key(s, i) + ".txt", Text(s, i));
      files.emplace_back(Key(s, i) + ".bin",
                         std::string(reinterpret_cast<const char*>(bin.data()), bin.size()));
    }
    urls.push_back(dir.Join("shard-" + std::to_string(s) + ".tar"));
    testing::WriteFile(urls.back(), testing::UstarArchive(files));
  }
  return urls;
}

WorkerPlan Plan(const std::vector<SampleSpan>& spans) {
  WorkerPlan plan{spans, 0};
  for (const SampleSpan& span : spans) plan.samples += span.count;
  return plan;
}

std::vector<std::string> Drain(SampleLoader& loader, Status* error = nullptr) {
  std::vector<std::string> keys;
  while (true) {
    Result<std::optional<Sample>> next = loader.Next();
    if (!next.ok()) {
      if (error) *error = next.status();
      return keys;
    }
    if (!*next) return keys;
    keys.push_back((*next)->key);
  }
}

// However many shards are read at once, samples come out in plan order mixed by the shuffle
// buffer exactly as ShuffledOrder says (which resume relies on).
TEST(SampleLoaderTest, YieldsTheShuffledPlanOrderWhateverTheReaders) {
  TempDir dir;
  std::vector<std::string> urls = MakeShards(dir, {5, 0, 17, 3, 9});
  WorkerPlan plan = Plan({{2, 4, 10}, {0, 0, 5}, {4, 1, 8}, {3, 0, 3}, {2, 0, 2}});
  std::vector<std::string> plan_keys;
  for (const SampleSpan& span : plan.spans) {
    for (uint64_t i = 0; i < span.count; ++i) plan_keys.push_back(Key(span.shard, span.first + i));
  }
  for (size_t shuffle : {0, 1, 7, 100}) {
    std::vector<std::string> expected;
    for (uint64_t position : ShuffledOrder(plan_keys.size(), shuffle, 42)) {
      expected.push_back(plan_keys[position]);
    }
    for (int readers : {1, 2, 3, 8}) {
      LoaderOptions options;
      options.shuffle_buffer = shuffle;
      options.shuffle_seed = 42;
      options.readers = readers;
      options.queue_capacity = 2;
      auto loader = SampleLoader::Start(urls, plan, options);
      ASSERT_TRUE(loader.ok()) << loader.status().ToString();
      EXPECT_EQ(Drain(**loader), expected) << "shuffle " << shuffle << ", readers " << readers;
    }
  }
}

// Resuming after k samples yields exactly what an uninterrupted loader yields after its k-th,
// and does not open a shard all of whose samples had been yielded.
TEST(SampleLoaderTest, ResumesExactlyWhereTheInterruptedRunStopped) {
  TempDir dir;
  std::vector<std::string> urls = MakeShards(dir, {12, 7, 30, 5});
  WorkerPlan plan = Plan({{1, 0, 7}, {2, 3, 20}, {0, 0, 12}, {3, 1, 4}, {2, 23, 7}});
  for (size_t shuffle : {0, 1, 4, 9, 100}) {
    LoaderOptions options;
    options.shuffle_buffer = shuffle;
    options.shuffle_seed = 11;
    auto whole = SampleLoader::Start(urls, plan, options);
    ASSERT_TRUE(whole.ok());
    std::vector<std::string> expected = Drain(**whole);
    ASSERT_EQ(expected.size(), plan.samples);
    for (uint64_t k : {uint64_t{1}, uint64_t{6}, uint64_t{7}, uint64_t{25}, plan.samples - 1, plan.samples}) {
      options.skip_yielded = k;
      for (int readers : {1, 3}) {
        options.readers = readers;
        auto resumed = SampleLoader::Start(urls, plan, options);
        ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
        EXPECT_EQ(Drain(**resumed), std::vector<std::string>(expected.begin() + k, expected.end()))
            << "shuffle " << shuffle << ", resumed after " << k;
      }
    }
  }
  // In plan order, 9 samples consumed: all of shard 1 (the first span) is behind; its file may go.
  ASSERT_EQ(std::remove(urls[1].c_str()), 0);
  LoaderOptions options;
  options.skip_yielded = 9;
  auto resumed = SampleLoader::Start(urls, plan, options);
  ASSERT_TRUE(resumed.ok());
  Status error;
  EXPECT_EQ(Drain(**resumed, &error).size(), plan.samples - 9);
  EXPECT_TRUE(error.ok()) << error.ToString();
  options.skip_yielded = plan.samples + 1;
  EXPECT_EQ(SampleLoader::Start(urls, plan, options).status().code(), StatusCode::kInvalidArgument);
}

// A consumer much slower than the readers: what the pipeline holds stays within its queues and
// shuffle buffer, a small fraction of the data streamed.
TEST(SampleLoaderTest, ASlowConsumerDoesNotGrowMemory) {
  TempDir dir;
  constexpr size_t kBin = 8192;
  std::vector<std::string> urls = MakeShards(dir, std::vector<uint64_t>(10, 100), kBin);
  std::vector<SampleSpan> spans;
  for (size_t s = 0; s < urls.size(); ++s) spans.push_back({s, 0, 100});
  LoaderOptions options;
  options.readers = 2;
  options.queue_capacity = 4;
  options.shuffle_buffer = 8;
  auto loader = SampleLoader::Start(urls, Plan(spans), options);
  ASSERT_TRUE(loader.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the readers run ahead
  uint64_t samples = 0, max_sample = 0;
  while (true) {
    Result<std::optional<Sample>> next = (*loader)->Next();
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    if (!*next) break;
    ++samples;
    uint64_t bytes = 0;
    for (const auto& [field, data] : (*next)->fields) bytes += data.size();
    max_sample = std::max(max_sample, bytes);
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  EXPECT_EQ(samples, 1000u);
  // loader.h's bound: (2 x readers + 4) x queue_capacity + shuffle_buffer samples.
  uint64_t bound = ((2 * 2 + 4) * 4 + 8) * max_sample;
  EXPECT_GT((*loader)->held_bytes_high_water(), 0u);
  EXPECT_LE((*loader)->held_bytes_high_water(), bound);
  EXPECT_GT(samples * kBin, 20 * bound);  // so holding everything would have failed the test
}

// Shards 0 and 2 are whole; shard 1 is cut inside its fourth sample's second member.
std::vector<std::string> ShardsWithATruncatedOne(const TempDir& dir) {
  std::vector<std::string> urls = MakeShards(dir, {5, 5, 5}, 1000);
  std::vector<std::byte> bytes;
  {
    std::vector<std::pair<std::string, std::string>> files;
    for (uint64_t i = 0; i < 5; ++i) {
      files.emplace_back(Key(1, i) + ".txt", Text(1, i));
      files.emplace_back(Key(1, i) + ".bin", std::string(1000, 'x'));
    }
    bytes = testing::UstarArchive(files);
  }
  // Members are 512 (header) + 512 (txt) or 512 + 1024 (bin): cut 100 bytes into s1/k3.bin.
  size_t cut = 3 * (1024 + 1536) + 1024 + 512 + 100;
  bytes.resize(cut);
  testing::WriteFile(urls[1], bytes);
  return urls;
}

TEST(SampleLoaderTest, TheFirstErrorStopsAllAndNamesTheShardAndMember) {
  TempDir dir;
  std::vector<std::string> urls = ShardsWithATruncatedOne(dir);
  LoaderOptions options;
  options.readers = 3;
  auto loader = SampleLoader::Start(urls, Plan({{0, 0, 5}, {1, 0, 5}, {2, 0, 5}}), options);
  ASSERT_TRUE(loader.ok());
  Status error;
  std::vector<std::string> keys = Drain(**loader, &error);
  EXPECT_EQ(keys.size(), 5u + 3u);  // shard 0, then s1/k0..k2 (k3 never completes)
  EXPECT_EQ(error.code(), StatusCode::kCorruption);
  EXPECT_NE(error.message().find(urls[1]), std::string::npos) << error.ToString();
  EXPECT_NE(error.message().find("s1/k3.bin"), std::string::npos) << error.ToString();
  Result<std::optional<Sample>> again = (*loader)->Next();  // sticky
  EXPECT_EQ(again.status().message(), error.message());
}

TEST(SampleLoaderTest, SkipCountsAndReportsWhatWasLost) {
  TempDir dir;
  std::vector<std::string> urls = ShardsWithATruncatedOne(dir);
  urls.push_back(dir.Join("missing.tar"));
  LoaderOptions options;
  options.on_error = OnError::kSkip;
  options.shuffle_buffer = 4;
  auto loader =
      SampleLoader::Start(urls, Plan({{0, 0, 5}, {1, 1, 4}, {3, 0, 2}, {2, 0, 5}}), options);
  ASSERT_TRUE(loader.ok());
  Status error;
  std::vector<std::string> keys = Drain(**loader, &error);
  EXPECT_TRUE(error.ok()) << error.ToString();
  EXPECT_EQ(keys.size(), 5u + 2u + 5u);  // s1/k1, s1/k2 read before the cut
  std::vector<Skipped> skipped = (*loader)->skipped();
  ASSERT_EQ(skipped.size(), 2u);
  EXPECT_EQ(skipped[0].url, urls[1]);
  EXPECT_EQ(skipped[0].samples, 2u);
  EXPECT_NE(skipped[0].error.find("s1/k3.bin"), std::string::npos);
  EXPECT_EQ(skipped[1].url, urls[3]);
  EXPECT_EQ(skipped[1].samples, 2u);
}

// An empty file and an unreachable URL among good shards: errors naming them, or skipped.
TEST(SampleLoaderTest, AnEmptyShardAndAnUnreachableUrlFailOrAreSkipped) {
  TempDir dir;
  std::vector<std::string> urls = MakeShards(dir, {3, 4});
  urls.push_back(dir.Join("zero.tar"));
  testing::WriteFile(urls.back(), {});
  urls.push_back("http://127.0.0.1:1/unreachable.tar");  // port 1: nothing listens
  WorkerPlan plan = Plan({{0, 0, 3}, {2, 0, 5}, {3, 0, 6}, {1, 0, 4}});
  LoaderOptions options;
  options.source.http.max_retries = 1;  // connection refused is retried; keep the test short
  options.source.http.retry_base_delay = std::chrono::milliseconds(1);
  for (size_t bad : {2, 3}) {
    auto failing = SampleLoader::Start(urls, Plan({{0, 0, 3}, {bad, 0, 5}}), options);
    ASSERT_TRUE(failing.ok());
    Status error;
    EXPECT_EQ(Drain(**failing, &error).size(), 3u);
    EXPECT_NE(error.message().find(urls[bad]), std::string::npos) << error.ToString();
    EXPECT_EQ(error.code(), bad == 2 ? StatusCode::kCorruption : StatusCode::kUnavailable)
        << error.ToString();
  }
  options.on_error = OnError::kSkip;
  auto skipping = SampleLoader::Start(urls, plan, options);
  ASSERT_TRUE(skipping.ok());
  Status error;
  EXPECT_EQ(Drain(**skipping, &error).size(), 7u);
  EXPECT_TRUE(error.ok());
  std::vector<Skipped> skipped = (*skipping)->skipped();
  ASSERT_EQ(skipped.size(), 2u);
  EXPECT_EQ(skipped[0].url, urls[2]);
  EXPECT_NE(skipped[0].error.find("empty (0 bytes)"), std::string::npos) << skipped[0].error;
  EXPECT_EQ(skipped[1].url, urls[3]);
  EXPECT_EQ(skipped[1].samples, 6u);
}

TEST(SampleLoaderTest, AShardShorterThanItsIndexIsAnError) {
  TempDir dir;
  std::vector<std::string> urls = MakeShards(dir, {3});
  auto loader = SampleLoader::Start(urls, Plan({{0, 1, 5}}), LoaderOptions{});
  ASSERT_TRUE(loader.ok());
  Status error;
  EXPECT_EQ(Drain(**loader, &error).size(), 2u);
  EXPECT_EQ(error.code(), StatusCode::kCorruption);
  EXPECT_NE(error.message().find("fewer samples than its index says"), std::string::npos);
}

TEST(SampleLoaderTest, StoppingMidStreamReturnsPromptly) {
  TempDir dir;
  std::vector<std::string> urls = MakeShards(dir, {200, 200, 200, 200}, 4096);
  LoaderOptions options;
  options.queue_capacity = 1;
  for (int taken : {0, 1, 3}) {
    auto loader = SampleLoader::Start(
        urls, Plan({{0, 0, 200}, {1, 0, 200}, {2, 0, 200}, {3, 0, 200}}), options);
    ASSERT_TRUE(loader.ok());
    for (int i = 0; i < taken; ++i) ASSERT_TRUE((*loader)->Next().ok());
    loader->reset();  // readers blocked on full queues must still be joined
  }
}

// --------------------------------------------------------------------------------- packing

// The stream (documents each followed by the EOD id) cut naively: row r is
// stream[r * seq_len, r * seq_len + seq_len + 1), its segments start at 0 and at every document
// start inside it.
TEST(PlanReaderTest, PlansSeedsAndChecksAsTheSplitSays) {
  TempDir dir;
  std::vector<std::string> urls = MakeShards(dir, {5, 7, 4});
  Result<std::vector<ShardInfo>> shards = IndexShards(urls);
  ASSERT_TRUE(shards.ok());
  ReaderRequest request;
  request.split.seed = 3;
  request.split.epoch = 2;
  request.split.world_size = 2;
  request.split.num_workers = 2;
  request.rank = 1;
  request.plays = 1;
  request.skip_yielded = 1000;  // more than the plan holds: everything was yielded
  request.shuffle_buffer = 4;
  Result<ReaderPlan> plan = PlanReader(*shards, true, request, LoaderOptions{});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  Result<EpochPlan> epoch = PlanEpoch({5, 7, 4}, request.split);
  ASSERT_TRUE(epoch.ok());
  EXPECT_EQ(plan->plan.samples, epoch->plans[1][1].samples);
  EXPECT_EQ(plan->options.shuffle_seed, ShuffleSeed(3, 2, 1, 1));
  EXPECT_EQ(plan->options.shuffle_buffer, 4u);
  EXPECT_EQ(plan->options.skip_yielded, plan->plan.samples);
  EXPECT_EQ(plan->options.counted.size(), 3u);
  EXPECT_EQ(plan->urls, urls);

  request.plays = 2;
  EXPECT_EQ(PlanReader(*shards, true, request, {}).status().code(), StatusCode::kInvalidArgument);
  request.plays = 0;
  request.rank = 2;
  EXPECT_EQ(PlanReader(*shards, true, request, {}).status().code(), StatusCode::kInvalidArgument);
  // Shards not counted: only one rank, one worker, from the start.
  request.rank = 0;
  Result<ReaderPlan> uncounted = PlanReader(*shards, false, request, {});
  ASSERT_EQ(uncounted.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(uncounted.status().message().find("need the samples per shard"), std::string::npos);
  ReaderRequest whole;
  uncounted = PlanReader(*shards, false, whole, {});
  ASSERT_TRUE(uncounted.ok());
  ASSERT_EQ(uncounted->plan.spans.size(), 3u);
  EXPECT_EQ(uncounted->plan.spans[2].count, kToShardEnd);
  EXPECT_TRUE(uncounted->options.counted.empty());
}

TEST(TokenPackerTest, RowsStrideTheStreamWithDocumentBoundaries) {
  std::mt19937 random(5);
  for (uint64_t seq_len : {1, 2, 3, 8, 100}) {
    std::vector<int32_t> stream;
    std::vector<uint64_t> starts;
    TokenPacker packer(seq_len, 9999);
    TokenBatch batch;
    for (int d = 0; d < 200; ++d) {
      std::vector<uint32_t> doc(random() % 12);
      for (uint32_t& id : doc) id = random() % 50;
      starts.push_back(stream.size());
      stream.insert(stream.end(), doc.begin(), doc.end());
      stream.push_back(9999);
      packer.Add(doc);
      while (packer.NextRow(batch)) {
      }
    }
    const uint64_t width = seq_len + 1;
    ASSERT_EQ(batch.rows, (stream.size() - 1) / seq_len) << seq_len;
    for (size_t r = 0; r < batch.rows; ++r) {
      uint64_t begin = r * seq_len;
      std::vector<int32_t> want_row(stream.begin() + begin, stream.begin() + begin + width);
      std::vector<int32_t> got_row(batch.input_ids.begin() + r * width,
                                   batch.input_ids.begin() + (r + 1) * width);
      EXPECT_EQ(got_row, want_row);
      std::vector<int32_t> want_offsets = {0};
      for (uint64_t s : starts) {
        if (s > begin && s < begin + width) want_offsets.push_back(static_cast<int32_t>(s - begin));
      }
      want_offsets.push_back(static_cast<int32_t>(width));
      std::vector<int32_t> got_offsets(batch.doc_offsets.begin() + batch.row_starts[r],
                                       batch.doc_offsets.begin() + batch.row_starts[r + 1]);
      EXPECT_EQ(got_offsets, want_offsets) << "seq_len " << seq_len << " row " << r;
    }
  }
}

std::shared_ptr<const text::Tokenizer> TrainedTokenizer() {
  text::TrainOptions options;
  options.vocab_size = 300;
  options.special_tokens = {"<|endoftext|>"};
  text::BpeTrainer trainer(options);
  for (size_t s = 0; s < 4; ++s) {
    for (uint64_t i = 0; i < 20; ++i) EXPECT_TRUE(trainer.Feed(Text(s, i)).ok());
  }
  Result<std::string> json = trainer.Train();
  EXPECT_TRUE(json.ok());
  Result<std::shared_ptr<const text::Tokenizer>> tokenizer = text::Tokenizer::FromJson(*json, "trained");
  EXPECT_TRUE(tokenizer.ok());
  return *tokenizer;
}

// The batches are exactly those of encoding, in order, what the SampleLoader yields and packing
// it, whatever the number of tokenizer threads and the chunking.
TEST(PackedLoaderTest, PacksTheSampleStreamInOrder) {
  TempDir dir;
  std::vector<std::string> urls = MakeShards(dir, {30, 11, 25});
  WorkerPlan plan = Plan({{2, 0, 25}, {0, 3, 27}, {1, 0, 11}});
  LoaderOptions options;
  options.shuffle_buffer = 9;
  options.shuffle_seed = 3;
  auto tokenizer = TrainedTokenizer();
  PackOptions pack;
  pack.tokenizer = tokenizer;
  pack.seq_len = 7;
  pack.batch_size = 3;
  pack.eod_id = 0;

  auto samples = SampleLoader::Start(urls, plan, options);
  ASSERT_TRUE(samples.ok());
  TokenPacker packer(pack.seq_len, pack.eod_id);
  std::vector<TokenBatch> expected(1);
  text::EncodeOptions encode;
  encode.match_added_tokens = false;
  encode.add_special_tokens = false;
  while (true) {
    Result<std::optional<Sample>> next = (*samples)->Next();
    ASSERT_TRUE(next.ok());
    if (!*next) break;
    const Bytes& text = *(*next)->Find("txt");
    std::vector<text::TokenId> ids;
    ASSERT_TRUE(tokenizer->Encode(std::string_view(reinterpret_cast<const char*>(text.data()), text.size()), encode, ids).ok());
    packer.Add(ids);
    while (packer.NextRow(expected.back())) {
      if (expected.back().rows == pack.batch_size) expected.emplace_back();
    }
  }
  expected.pop_back();  // the partial batch is dropped
  ASSERT_GT(expected.size(), 3u);

  for (int threads : {1, 3}) {
    for (size_t chunk : {1, 4, 1000}) {
      pack.threads = threads;
      pack.documents_per_chunk = chunk;
      auto loader = PackedLoader::Start(urls, plan, options, pack);
      ASSERT_TRUE(loader.ok()) << loader.status().ToString();
      for (const TokenBatch& want : expected) {
        Result<std::optional<TokenBatch>> got = (*loader)->Next();
        ASSERT_TRUE(got.ok() && got->has_value());
        EXPECT_EQ((*got)->input_ids, want.input_ids);
        EXPECT_EQ((*got)->doc_offsets, want.doc_offsets);
        EXPECT_EQ((*got)->row_starts, want.row_starts);
      }
      Result<std::optional<TokenBatch>> end = (*loader)->Next();
      ASSERT_TRUE(end.ok());
      EXPECT_FALSE(end->has_value());
    }
  }
}

TEST(PackedLoaderTest, ASampleWithoutTheFieldFailsOrIsSkipped) {
  TempDir dir;
  std::vector<std::string> urls = MakeShards(dir, {6});
  WorkerPlan plan = Plan({{0, 0, 6}});
  PackOptions pack;
  pack.tokenizer = TrainedTokenizer();
  pack.field = "caption";
  pack.seq_len = 4;
  auto failing = PackedLoader::Start(urls, plan, LoaderOptions{}, pack);
  ASSERT_TRUE(failing.ok());
  Result<std::optional<TokenBatch>> error = (*failing)->Next();
  EXPECT_EQ(error.status().code(), StatusCode::kNotFound);
  EXPECT_NE(error.status().message().find(urls[0] + ": sample 's0/k0' has no field 'caption'"),
            std::string::npos)
      << error.status().ToString();

  LoaderOptions skip;
  skip.on_error = OnError::kSkip;
  auto skipping = PackedLoader::Start(urls, plan, skip, pack);
  ASSERT_TRUE(skipping.ok());
  Result<std::optional<TokenBatch>> end = (*skipping)->Next();
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(end->has_value());
  EXPECT_EQ((*skipping)->skipped().size(), 6u);
}

}  // namespace
}  // namespace ferry::datasets
