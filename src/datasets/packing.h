// Token packing: documents of token ids joined into one stream and cut into fixed-length rows
// for language-model training, with the document boundaries attention masking needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "ferry/text.h"

namespace ferry::datasets {

// `rows` rows of `width` = seq_len + 1 int32 tokens, row-major. Row r's segments start at
// doc_offsets[row_starts[r] .. row_starts[r + 1]) (positions in the row, 0 first), the last of
// which is `width`: segment k is row[offsets[k] : offsets[k + 1]], what attention masking needs.
struct TokenBatch {
  size_t rows = 0;
  size_t width = 0;
  std::vector<int32_t> input_ids;
  std::vector<int32_t> doc_offsets;
  std::vector<size_t> row_starts;
};

// Joins documents, each followed by the end-of-document id, into one token stream and cuts it
// into rows of seq_len + 1 tokens striding seq_len: consecutive rows share one token, so with
// inputs = row[:-1] and targets = row[1:] every token is a target exactly once. The tail that
// does not fill a row is never returned. Memory: the tokens of at most one row plus the
// documents added since.
class TokenPacker {
 public:
  TokenPacker(uint64_t seq_len, text::TokenId eod_id) : seq_len_(seq_len), eod_id_(eod_id) {}
  // A whole document: StartDocument, Append, EndDocument.
  void Add(std::span<const text::TokenId> document);
  // A document in pieces (one longer than a reader holds at once): its start is a segment
  // boundary; its ids; its end-of-document id.
  void StartDocument();
  void Append(std::span<const text::TokenId> ids);
  void EndDocument();
  // Appends the next full row to `batch` (tokens, its segment offsets), or returns false.
  bool NextRow(TokenBatch& batch);

 private:
  uint64_t seq_len_;
  text::TokenId eod_id_;
  std::vector<int32_t> tokens_;  // the stream from stream position base_ on
  uint64_t base_ = 0;
  uint64_t row_begin_ = 0;  // stream position of the next row
  std::vector<uint64_t> starts_;  // stream positions of document starts >= row_begin_
  size_t first_start_ = 0;        // starts_[first_start_..] are still relevant
};

}  // namespace ferry::datasets
