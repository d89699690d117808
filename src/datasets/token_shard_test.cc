#include "datasets/token_shard.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "ferry/tensors.h"
#include "tests/support/test_support.h"

namespace ferry::datasets {
namespace {

using testing::TempDir;
using Document = std::vector<text::TokenId>;

// Writes token shards of random documents (empty ones included), one per count; returns their
// paths and every document in order.
std::vector<std::string> MakeShards(const TempDir& dir, const std::vector<size_t>& counts,
                                    std::vector<Document>& documents, uint32_t seed = 7) {
  std::mt19937 rng(seed);
  const size_t lengths[] = {0, 1, 5, 17, 40};
  std::vector<std::string> paths;
  for (size_t s = 0; s < counts.size(); ++s) {
    std::vector<text::TokenId> tokens;
    std::vector<uint64_t> offsets = {0};
    for (size_t d = 0; d < counts[s]; ++d) {
      Document& doc = documents.emplace_back();
      for (size_t i = 0, n = lengths[rng() % 5]; i < n; ++i) doc.push_back(1 + rng() % 499);
      tokens.insert(tokens.end(), doc.begin(), doc.end());
      offsets.push_back(tokens.size());
    }
    paths.push_back(dir.Join("tokens-" + std::to_string(s) + ".safetensors"));
    EXPECT_TRUE(WriteTokenShard(paths.back(), tokens, offsets, "fp").ok());
  }
  return paths;
}

std::vector<TokenShardInfo> Infos(const std::vector<std::string>& paths) {
  std::vector<TokenShardInfo> infos;
  for (const std::string& path : paths) {
    Result<TokenShardInfo> info = ReadTokenShardInfo(path);
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    infos.push_back(*info);
  }
  return infos;
}

// A row's ids followed by its segment starts: rows are equal when both are.
using Row = std::vector<int32_t>;

void AppendRows(const TokenBatch& batch, std::vector<Row>& rows) {
  for (size_t r = 0; r < batch.rows; ++r) {
    auto ids = batch.input_ids.begin() + static_cast<ptrdiff_t>(r * batch.width);
    Row& row = rows.emplace_back(ids, ids + static_cast<ptrdiff_t>(batch.width));
    row.insert(row.end(), batch.doc_offsets.begin() + static_cast<ptrdiff_t>(batch.row_starts[r]),
               batch.doc_offsets.begin() + static_cast<ptrdiff_t>(batch.row_starts[r + 1]));
  }
}

// The rows one packer gives the whole stream: what every split must be a part of.
std::vector<Row> AllRows(const std::vector<Document>& documents, uint64_t seq_len) {
  TokenPacker packer(seq_len, 0);
  std::vector<Row> rows;
  for (const Document& doc : documents) {
    packer.Add(doc);
    TokenBatch batch;
    while (packer.NextRow(batch)) {
      AppendRows(batch, rows);
      batch = TokenBatch{};
    }
  }
  return rows;
}

std::vector<Row> ReadRows(const std::vector<TokenShardInfo>& infos, const TokenRowSplit& split,
                          uint64_t skip = 0) {
  Result<std::unique_ptr<TokenRowReader>> reader = TokenRowReader::Open(infos, split, 0, skip);
  EXPECT_TRUE(reader.ok()) << reader.status().ToString();
  std::vector<Row> rows;
  while (true) {
    Result<std::optional<TokenBatch>> batch = (*reader)->Next();
    EXPECT_TRUE(batch.ok()) << batch.status().ToString();
    if (!batch.ok() || !*batch) return rows;
    EXPECT_EQ((*batch)->rows, split.batch_size);
    AppendRows(**batch, rows);
  }
}

TEST(TokenShardTest, WrittenShardReadsBackItsHeader) {
  TempDir dir;
  std::vector<Document> documents;
  auto paths = MakeShards(dir, {6}, documents);
  TokenShardInfo info = Infos(paths)[0];
  uint64_t tokens = 0;
  for (const Document& doc : documents) tokens += doc.size();
  EXPECT_EQ(info.tokens, tokens);
  EXPECT_EQ(info.documents, 6u);
  EXPECT_EQ(info.tokenizer, "fp");
  EXPECT_EQ(info.bytes, std::filesystem::file_size(paths[0]));
  EXPECT_FALSE(info.version.empty());
}

TEST(TokenShardTest, WriterRefusesOffsetsThatDoNotTileTheTokens) {
  TempDir dir;
  const std::vector<text::TokenId> tokens = {1, 2, 3};
  for (std::vector<uint64_t> offsets :
       std::vector<std::vector<uint64_t>>{{}, {1, 3}, {0, 2}, {0, 2, 1, 3}}) {
    Status status = WriteTokenShard(dir.Join("bad.safetensors"), tokens, offsets, "");
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
    EXPECT_NE(status.message().find("bad.safetensors: doc_offsets"), std::string::npos)
        << status.message();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.Join("bad.safetensors")));
}

TEST(TokenShardTest, AnotherSafetensorsFileIsNamedAsNotATokenShard) {
  TempDir dir;
  const std::vector<float> values = {1, 2};
  tensors::TensorToWrite x{"x", tensors::DType::kF32, {2}, std::as_bytes(std::span(values))};
  ASSERT_TRUE(tensors::WriteSafetensors(dir.Join("x.safetensors"), std::span(&x, 1)).ok());
  Result<TokenShardInfo> info = ReadTokenShardInfo(dir.Join("x.safetensors"));
  ASSERT_EQ(info.status().code(), StatusCode::kCorruption);
  EXPECT_NE(info.status().message().find(
                "x.safetensors: not a ferry token shard (__metadata__ ferry.format is not "
                "token-shard-v1)"),
            std::string::npos)
      << info.status().message();
}

TEST(TokenShardTest, EverySplitIsContiguousRowsOfOneGlobalPacking) {
  TempDir dir;
  std::vector<Document> documents;
  auto infos = Infos(MakeShards(dir, {5, 0, 1, 13, 7}, documents));
  for (uint64_t seq_len : {3u, 16u}) {
    const auto all = AllRows(documents, seq_len);
    for (int world : {1, 2, 3}) {
      for (int workers : {1, 2, 3}) {
        for (uint64_t batch : {1u, 2u, 4u}) {
          const uint64_t per_rank = all.size() / (world * batch);
          TokenRowSplit split{seq_len, batch, 0, world, 0, 1};
          if (per_rank == 0) {
            EXPECT_EQ(PlanTokenRows(infos, split).status().code(), StatusCode::kInvalidArgument);
            continue;
          }
          std::vector<Row> got;
          for (int rank = 0; rank < world; ++rank) {
            size_t before = got.size();
            for (int worker = 0; worker < workers; ++worker) {
              for (auto& row : ReadRows(infos, {seq_len, batch, rank, world, worker, workers})) {
                got.push_back(std::move(row));
              }
            }
            EXPECT_EQ(got.size() - before, per_rank * batch)
                << seq_len << " " << world << " " << workers << " " << batch;
          }
          EXPECT_TRUE(std::equal(got.begin(), got.end(), all.begin()))
              << seq_len << " " << world << " " << workers << " " << batch;
        }
      }
    }
  }
}

TEST(TokenShardTest, SkippedBatchesAreTheOnesAnUninterruptedReaderGaveFirst) {
  TempDir dir;
  std::vector<Document> documents;
  auto infos = Infos(MakeShards(dir, {20, 3, 30}, documents, 11));
  const TokenRowSplit split{8, 2, 1, 2, 1, 2};
  const auto whole = ReadRows(infos, split);
  ASSERT_GE(whole.size(), 6u);
  for (uint64_t skip = 0; skip <= whole.size() / 2; ++skip) {
    const auto rest = ReadRows(infos, split, skip);
    ASSERT_EQ(rest.size(), whole.size() - 2 * skip);
    EXPECT_TRUE(std::equal(rest.begin(), rest.end(), whole.begin() + 2 * skip)) << skip;
  }
  EXPECT_EQ(TokenRowReader::Open(infos, split, 0, whole.size() / 2 + 1).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(TokenShardTest, LongDocumentsAreReadInBoundedPieces) {
  // A document of more than two reads' worth of ids (4M each) between short ones: it is fed to
  // the packer in pieces, and the rows still come out exact.
  TempDir dir;
  std::vector<text::TokenId> tokens(9 * (size_t{1} << 20) + 17);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = 1 + i % 1000;
  const std::vector<uint64_t> offsets = {0, 3, tokens.size() - 5, tokens.size()};
  ASSERT_TRUE(WriteTokenShard(dir.Join("long.safetensors"), tokens, offsets, "").ok());
  auto infos = Infos({dir.Join("long.safetensors")});
  std::vector<Document> documents;
  for (size_t k = 0; k + 1 < offsets.size(); ++k) {
    documents.emplace_back(tokens.begin() + static_cast<ptrdiff_t>(offsets[k]),
                           tokens.begin() + static_cast<ptrdiff_t>(offsets[k + 1]));
  }
  const auto all = AllRows(documents, 4096);
  const auto got = ReadRows(infos, {4096, 3, 1, 2, 0, 1});
  const uint64_t per_rank = all.size() / 6 * 3;
  ASSERT_EQ(got.size(), per_rank);
  EXPECT_TRUE(std::equal(got.begin(), got.end(), all.begin() + static_cast<ptrdiff_t>(per_rank)));
}

TEST(TokenShardTest, RewrittenShardIsRefusedNotMisread) {
  TempDir dir;
  std::vector<Document> documents;
  auto paths = MakeShards(dir, {9, 9}, documents);
  auto infos = Infos(paths);
  // The second shard rewritten with other documents.
  const std::vector<text::TokenId> tokens = {5, 6, 7};
  const std::vector<uint64_t> offsets = {0, 3};
  ASSERT_TRUE(WriteTokenShard(paths[1], tokens, offsets, "fp").ok());
  auto reader = TokenRowReader::Open(infos, {4, 1, 0, 1, 0, 1}, 0);
  ASSERT_TRUE(reader.ok());
  Status status;
  while (true) {
    Result<std::optional<TokenBatch>> batch = (*reader)->Next();
    if (!batch.ok()) {
      status = batch.status();
      break;
    }
    if (!*batch) break;
  }
  EXPECT_EQ(status.code(), StatusCode::kSourceChanged) << status.ToString();
  EXPECT_NE(status.message().find("tokens-1.safetensors: the shard changed since it was planned"),
            std::string::npos)
      << status.message();
}

TEST(TokenShardTest, OffsetsThatLieAboutTheTokensAreCorruption) {
  // A header that passes (right names, dtypes, ranks) over offsets that do not tile the tokens.
  TempDir dir;
  const std::vector<text::TokenId> tokens = {1, 2, 3, 4};
  const std::vector<uint64_t> offsets = {0, 3, 2, 4};
  tensors::TensorToWrite tensors[2] = {
      {"tokens", tensors::DType::kU32, {4}, std::as_bytes(std::span(tokens))},
      {"doc_offsets", tensors::DType::kU64, {4}, std::as_bytes(std::span(offsets))}};
  std::pair<std::string, std::string> metadata[] = {{"ferry.format", "token-shard-v1"}};
  ASSERT_TRUE(tensors::WriteSafetensors(dir.Join("lie.safetensors"), tensors, metadata).ok());
  auto infos = Infos({dir.Join("lie.safetensors")});
  auto reader = TokenRowReader::Open(infos, {2, 1, 0, 1, 0, 1}, 0);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  Result<std::optional<TokenBatch>> batch = (*reader)->Next();
  ASSERT_EQ(batch.status().code(), StatusCode::kCorruption);
  EXPECT_NE(batch.status().message().find("lie.safetensors: doc_offsets[2] = 2 does not tile"),
            std::string::npos)
      << batch.status().message();
}

}  // namespace
}  // namespace ferry::datasets
