// Ferry token shards: a tokenized corpus as a safetensors file, and the exact split of its packed
// rows across ranks and loader workers.
//
// A token shard holds `tokens` (U32: every document's ids back to back) and `doc_offsets` (U64,
// documents + 1 entries from 0 to the token count: document i is tokens[doc_offsets[i] ..
// doc_offsets[i + 1])), and in __metadata__ "ferry.format": "token-shard-v1", the encoding
// tokenizer's fingerprint ("ferry.tokenizer") and the document count ("ferry.documents"). Any
// safetensors reader opens it; `ferry tokenize` and ferry.ray write it, PackedDataset reads it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "datasets/packing.h"
#include "ferry/io.h"
#include "ferry/status.h"
#include "ferry/text.h"

namespace ferry::datasets {

inline constexpr std::string_view kTokenShardFormat = "token-shard-v1";

// Writes a token shard to `uri` (a local path or s3://, atomically: nothing appears on error).
// kInvalidArgument unless doc_offsets starts at 0, never decreases and ends at tokens.size().
// `tokenizer` is the fingerprint of what encoded the tokens ("" when unknown).
Status WriteTokenShard(std::string_view uri, std::span<const text::TokenId> tokens,
                       std::span<const uint64_t> doc_offsets, std::string_view tokenizer);

// A token shard as its header describes it: all a split needs, known before any token is read.
struct TokenShardInfo {
  std::string url;
  uint64_t bytes = 0;      // the file's size
  std::string version;     // io::Source::version() at open
  uint64_t tokens = 0;     // ids in `tokens`
  uint64_t documents = 0;  // entries of `doc_offsets` less one
  std::string tokenizer;   // "ferry.tokenizer" ("" when absent)
  // Where `doc_offsets` and `tokens` start in the file.
  uint64_t offsets_at = 0;
  uint64_t tokens_at = 0;
  // Tokens of the packing stream: every id, and one end-of-document id per document.
  uint64_t stream_tokens() const { return tokens + documents; }
};

// Reads and checks a token shard's header (one small read at the start of the file, which works
// on any source, sequential ones included): kCorruption "URI: not a ferry token shard (why)" when
// the format name, the tensors' names, dtypes or ranks are not a token shard's.
Result<TokenShardInfo> ReadTokenShardInfo(std::string_view uri,
                                          const io::SourceOptions& options = {});

// Which packed rows one (rank, worker) reads. The stream is every shard's documents in list
// order, each followed by the end-of-document id, cut into rows of seq_len + 1 tokens striding
// seq_len (TokenPacker). Every rank gets the same number of whole batches, `batches_per_rank` =
// rows / (world_size x batch_size) (the few rows left over are dropped), as contiguous rows of
// the one global packing, and each of its workers a contiguous run of whole batches.
struct TokenRowSplit {
  uint64_t seq_len = 0;
  uint64_t batch_size = 1;
  int rank = 0;
  int world_size = 1;
  int worker = 0;
  int num_workers = 1;
};
struct TokenRowPlan {
  uint64_t batches_per_rank = 0;
  uint64_t first_row = 0;  // of the global packing
  uint64_t rows = 0;       // this reader's, a multiple of batch_size
};
// kInvalidArgument for a split out of range, or when the stream cannot give every rank a batch.
Result<TokenRowPlan> PlanTokenRows(std::span<const TokenShardInfo> shards,
                                   const TokenRowSplit& split);

// Reads one plan's rows, batch_size at a time. It reads only what its rows overlap: of each shard
// it needs, the offsets, then the token range its rows cover (a sequential source is read
// forward only). Each shard is checked when opened against what its header said when planned
// (size, version: kSourceChanged otherwise) and its offsets against its token count
// (kCorruption). Not thread-safe; one consumer.
class TokenRowReader {
 public:
  // `skip_batches` of the plan's batches are passed over without reading their tokens (resume).
  static Result<std::unique_ptr<TokenRowReader>> Open(std::vector<TokenShardInfo> shards,
                                                      const TokenRowSplit& split,
                                                      text::TokenId eod_id,
                                                      uint64_t skip_batches = 0,
                                                      const io::SourceOptions& options = {});
  // The next batch of split.batch_size rows, nullopt after the plan's last.
  Result<std::optional<TokenBatch>> Next();
  const TokenRowPlan& plan() const { return plan_; }

 private:
  TokenRowReader(std::vector<TokenShardInfo> shards, TokenRowSplit split, TokenRowPlan plan,
                 text::TokenId eod_id, uint64_t skip_batches, io::SourceOptions options);
  // Opens the next shard if the plan's rows overlap it (else passes it over).
  Status OpenNextShard();
  // Reads the open shard's next ids (up to kTokensPerRead) into the packer, or opens the next
  // shard.
  Status FeedMore();

  const std::vector<TokenShardInfo> shards_;
  const TokenRowSplit split_;
  const TokenRowPlan plan_;
  const io::SourceOptions options_;
  TokenPacker packer_;
  uint64_t begin_ = 0;  // stream position of the first row still to make
  uint64_t end_ = 0;    // one past the last stream token the plan's rows hold
  uint64_t rows_left_ = 0;
  size_t shard_ = 0;         // the next shard to open
  uint64_t shard_base_ = 0;  // its first stream position
  // The shard being read: its source and offsets; the documents still to feed,
  // [next_document_, last_document_); the next of its ids to read; and whether the packer has
  // begun next_document_ already (a document longer than one read is fed in pieces).
  std::unique_ptr<io::Source> open_;
  std::vector<uint64_t> offsets_;
  uint64_t next_document_ = 0;
  uint64_t last_document_ = 0;
  uint64_t next_token_ = 0;
  bool in_document_ = false;
  std::vector<text::TokenId> tokens_;  // the ids of the last read
};

}  // namespace ferry::datasets
