#include "datasets/token_shard.h"

#include <algorithm>

#include "ferry/datasets.h"
#include "ferry/tensors.h"

namespace ferry::datasets {
namespace {

// Tokens read from a shard at once: what bounds a reader's memory, however large the shard or
// its documents (16 MiB of U32).
constexpr uint64_t kTokensPerRead = uint64_t{4} << 20;
// The most rows a packed id may index: rows are int32 and offsets within a row too.
constexpr uint64_t kMaxSeqLen = (uint64_t{1} << 30) - 1;

Status NotATokenShard(std::string_view uri, const std::string& problem) {
  return Corruption(std::string(uri) + ": not a ferry token shard (" + problem + ")");
}

}  // namespace

Status WriteTokenShard(std::string_view uri, std::span<const text::TokenId> tokens,
                       std::span<const uint64_t> doc_offsets, std::string_view tokenizer) {
  if (doc_offsets.empty() || doc_offsets.front() != 0 || doc_offsets.back() != tokens.size()) {
    return InvalidArgument(std::string(uri) + ": doc_offsets must run from 0 to the " +
                           std::to_string(tokens.size()) + " tokens");
  }
  for (size_t i = 1; i < doc_offsets.size(); ++i) {
    if (doc_offsets[i] < doc_offsets[i - 1]) {
      return InvalidArgument(std::string(uri) + ": doc_offsets[" + std::to_string(i) +
                             "] = " + std::to_string(doc_offsets[i]) + " is below the entry before it");
    }
  }
  const tensors::TensorToWrite written[2] = {
      {"tokens", tensors::DType::kU32, {tokens.size()}, std::as_bytes(tokens)},
      {"doc_offsets", tensors::DType::kU64, {doc_offsets.size()}, std::as_bytes(doc_offsets)},
  };
  std::vector<std::pair<std::string, std::string>> metadata = {
      {"ferry.format", std::string(kTokenShardFormat)},
      {"ferry.documents", std::to_string(doc_offsets.size() - 1)},
  };
  if (!tokenizer.empty()) metadata.emplace_back("ferry.tokenizer", std::string(tokenizer));
  return tensors::WriteSafetensors(uri, written, metadata);
}

Result<TokenShardInfo> ReadTokenShardInfo(std::string_view uri, const io::SourceOptions& options) {
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<io::Source> source, io::OpenSource(uri, options));
  FERRY_ASSIGN_OR_RETURN(tensors::Header header, tensors::ReadHeader(*source));
  const std::string* format = header.FindMetadata("ferry.format");
  if (format == nullptr || *format != kTokenShardFormat) {
    return NotATokenShard(uri, "__metadata__ ferry.format is not " + std::string(kTokenShardFormat));
  }
  TokenShardInfo info;
  const std::pair<const char*, tensors::DType> expected[2] = {{"tokens", tensors::DType::kU32},
                                                             {"doc_offsets", tensors::DType::kU64}};
  for (const auto& [name, dtype] : expected) {
    const tensors::TensorInfo* tensor = header.Find(name);
    if (tensor == nullptr) return NotATokenShard(uri, "no tensor '" + std::string(name) + "'");
    if (tensor->dtype != dtype || tensor->shape.size() != 1) {
      std::string shape;
      for (uint64_t d : tensor->shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
      return NotATokenShard(uri, "'" + std::string(name) + "' is " +
                                     std::string(tensors::DTypeName(tensor->dtype)) + " [" + shape +
                                     "], expected a 1-d " + std::string(tensors::DTypeName(dtype)));
    }
    const uint64_t at = header.data_offset() + tensor->begin;
    if (dtype == tensors::DType::kU32) {
      info.tokens = tensor->shape[0];
      info.tokens_at = at;
    } else {
      if (tensor->shape[0] < 1) {
        return NotATokenShard(uri, "'doc_offsets' is empty (it holds documents + 1 entries)");
      }
      info.documents = tensor->shape[0] - 1;
      info.offsets_at = at;
    }
  }
  if (const std::string* fingerprint = header.FindMetadata("ferry.tokenizer")) {
    info.tokenizer = *fingerprint;
  }
  info.url = std::string(uri);
  info.bytes = source->size();
  info.version = source->version();
  return info;
}

Result<TokenRowPlan> PlanTokenRows(std::span<const TokenShardInfo> shards,
                                   const TokenRowSplit& split) {
  if (split.seq_len < 1 || split.seq_len > kMaxSeqLen || split.batch_size < 1 ||
      split.world_size < 1 || split.rank < 0 || split.rank >= split.world_size ||
      split.num_workers < 1 || split.worker < 0 || split.worker >= split.num_workers) {
    return InvalidArgument("bad split: seq_len " + std::to_string(split.seq_len) +
                           ", batch_size " + std::to_string(split.batch_size) + ", rank " +
                           std::to_string(split.rank) + " of " + std::to_string(split.world_size) +
                           ", worker " + std::to_string(split.worker) + " of " +
                           std::to_string(split.num_workers));
  }
  uint64_t stream = 0;
  for (const TokenShardInfo& shard : shards) stream += shard.stream_tokens();
  const uint64_t rows = stream > split.seq_len ? (stream - 1) / split.seq_len : 0;
  const uint64_t world = static_cast<uint64_t>(split.world_size);
  TokenRowPlan plan;
  plan.batches_per_rank = rows / (world * split.batch_size);
  if (plan.batches_per_rank == 0) {
    return InvalidArgument(std::to_string(rows) + " packed rows of " +
                           std::to_string(split.seq_len) + " + 1 tokens cannot give each of " +
                           std::to_string(split.world_size) + " ranks a batch of " +
                           std::to_string(split.batch_size));
  }
  const uint64_t workers = static_cast<uint64_t>(split.num_workers);
  const uint64_t worker = static_cast<uint64_t>(split.worker);
  const uint64_t first = plan.batches_per_rank * worker / workers;
  const uint64_t last = plan.batches_per_rank * (worker + 1) / workers;
  plan.first_row = (static_cast<uint64_t>(split.rank) * plan.batches_per_rank + first) *
                   split.batch_size;
  plan.rows = (last - first) * split.batch_size;
  return plan;
}

Result<std::unique_ptr<TokenRowReader>> TokenRowReader::Open(std::vector<TokenShardInfo> shards,
                                                             const TokenRowSplit& split,
                                                             text::TokenId eod_id,
                                                             uint64_t skip_batches,
                                                             const io::SourceOptions& options) {
  FERRY_ASSIGN_OR_RETURN(TokenRowPlan plan, PlanTokenRows(shards, split));
  if (skip_batches > plan.rows / split.batch_size) {
    return InvalidArgument("cannot skip " + std::to_string(skip_batches) + " batches of a plan of " +
                           std::to_string(plan.rows / split.batch_size));
  }
  if (eod_id >= (text::TokenId{1} << 31)) {
    return InvalidArgument("eod_id " + std::to_string(eod_id) + " does not fit int32");
  }
  return std::unique_ptr<TokenRowReader>(
      new TokenRowReader(std::move(shards), split, plan, eod_id, skip_batches, options));
}

TokenRowReader::TokenRowReader(std::vector<TokenShardInfo> shards, TokenRowSplit split,
                               TokenRowPlan plan, text::TokenId eod_id, uint64_t skip_batches,
                               io::SourceOptions options)
    : shards_(std::move(shards)),
      split_(split),
      plan_(plan),
      options_(std::move(options)),
      packer_(split.seq_len, eod_id) {
  const uint64_t first = plan.first_row + skip_batches * split.batch_size;
  rows_left_ = plan.rows - skip_batches * split.batch_size;
  begin_ = first * split.seq_len;
  end_ = (first + rows_left_) * split.seq_len + 1;
}

Result<std::optional<TokenBatch>> TokenRowReader::Next() {
  if (rows_left_ == 0) return std::optional<TokenBatch>();
  TokenBatch batch;
  while (batch.rows < split_.batch_size) {
    if (packer_.NextRow(batch)) continue;
    if (open_ == nullptr && shard_ == shards_.size()) {
      return Corruption(shards_.back().url + ": the token shards end before row " +
                        std::to_string(plan_.first_row + plan_.rows - rows_left_ + batch.rows) +
                        " of the plan (their headers promised more)");
    }
    FERRY_RETURN_IF_ERROR(FeedMore());
  }
  rows_left_ -= batch.rows;
  if (rows_left_ == 0) open_.reset();
  return std::optional<TokenBatch>(std::move(batch));
}

Status TokenRowReader::OpenNextShard() {
  const TokenShardInfo& info = shards_[shard_];
  const uint64_t base = shard_base_;
  shard_base_ += info.stream_tokens();
  ++shard_;
  // No row of the plan is here (an empty shard holds no stream position at all).
  if (shard_base_ <= begin_ || base >= end_ || info.documents == 0) return Status::Ok();
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<io::Source> source, io::OpenSource(info.url, options_));
  FERRY_RETURN_IF_ERROR(CheckSourceUnchanged(info.url, info.bytes, info.version, *source,
                                             "make the dataset again, or restore the shard"));
  offsets_.resize(info.documents + 1);
  FERRY_RETURN_IF_ERROR(io::ReadParallel(*source, info.offsets_at,
                                         std::as_writable_bytes(std::span(offsets_))));
  for (size_t i = 0; i < offsets_.size(); ++i) {
    if ((i == 0 && offsets_[0] != 0) || (i > 0 && offsets_[i] < offsets_[i - 1]) ||
        offsets_[i] > info.tokens) {
      return Corruption(info.url + ": doc_offsets[" + std::to_string(i) + "] = " +
                        std::to_string(offsets_[i]) +
                        " does not tile the tokens (offsets run from 0 to the " +
                        std::to_string(info.tokens) + " tokens, never decreasing)");
    }
  }
  if (offsets_.back() != info.tokens) {
    return Corruption(info.url + ": doc_offsets end at " + std::to_string(offsets_.back()) +
                      ", not at the " + std::to_string(info.tokens) + " tokens");
  }
  // Document k takes stream positions [offsets[k] + k, offsets[k + 1] + k + 1): its ids, then
  // its end-of-document id. Start at the one that holds begin_.
  auto start = [&](uint64_t k) { return base + offsets_[k] + k; };
  uint64_t lo = 0, hi = info.documents;  // the last k with start(k) <= max(begin_, base)
  const uint64_t from = std::max(begin_, base);
  while (lo + 1 < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    (start(mid) <= from ? lo : hi) = mid;
  }
  // The documents to feed end before the first that starts at or after end_.
  uint64_t last = lo + 1;
  while (last < info.documents && start(last) < end_) ++last;
  open_ = std::move(source);
  next_document_ = lo;
  last_document_ = last;
  // begin_ may fall on the document's end-of-document id (the position after its ids): then
  // none of its ids are read, but its end still is, as the stream has it.
  next_token_ = offsets_[lo] + std::min(from - start(lo), offsets_[lo + 1] - offsets_[lo]);
  // Where the plan's first row begins, the row itself starts a segment: the document there is
  // joined, not started. A later shard's first document starts at the shard's start.
  in_document_ = from == begin_;
  return Status::Ok();
}

Status TokenRowReader::FeedMore() {
  if (open_ == nullptr) return OpenNextShard();
  const TokenShardInfo& info = shards_[shard_ - 1];
  // One read of at most kTokensPerRead ids from next_token_, never past the last document
  // needed; a longer document takes several.
  const uint64_t from = next_token_;
  const uint64_t to = std::min(from + kTokensPerRead, offsets_[last_document_]);
  tokens_.resize(to - from);
  if (to > from) {
    FERRY_RETURN_IF_ERROR(io::ReadParallel(*open_, info.tokens_at + from * sizeof(text::TokenId),
                                           std::as_writable_bytes(std::span(tokens_))));
  }
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i] >= (text::TokenId{1} << 31)) {
      return Corruption(info.url + ": token " + std::to_string(from + i) + " is " +
                        std::to_string(tokens_[i]) + ", which does not fit the int32 rows");
    }
  }
  // Hand them over document by document; a read may end inside one.
  while (next_document_ < last_document_) {
    if (!in_document_) packer_.StartDocument();
    in_document_ = true;
    const uint64_t document_end = offsets_[next_document_ + 1];
    const uint64_t until = std::min(document_end, to);
    packer_.Append(std::span(tokens_).subspan(next_token_ - from, until - next_token_));
    next_token_ = until;
    if (until < document_end) break;
    packer_.EndDocument();
    ++next_document_;
    in_document_ = false;
  }
  if (next_document_ == last_document_) open_.reset();
  return Status::Ok();
}

}  // namespace ferry::datasets
