#include "datasets/packing.h"

#include <algorithm>

namespace ferry::datasets {

void TokenPacker::Add(std::span<const text::TokenId> document) {
  StartDocument();
  Append(document);
  EndDocument();
}

void TokenPacker::StartDocument() { starts_.push_back(base_ + tokens_.size()); }

void TokenPacker::Append(std::span<const text::TokenId> ids) {
  tokens_.insert(tokens_.end(), ids.begin(), ids.end());  // ids < 2^31: checked by the callers
}

void TokenPacker::EndDocument() { tokens_.push_back(static_cast<int32_t>(eod_id_)); }

bool TokenPacker::NextRow(TokenBatch& batch) {
  const uint64_t width = seq_len_ + 1;
  if (base_ + tokens_.size() < row_begin_ + width) return false;
  auto row = tokens_.begin() + static_cast<ptrdiff_t>(row_begin_ - base_);
  batch.input_ids.insert(batch.input_ids.end(), row, row + static_cast<ptrdiff_t>(width));
  while (first_start_ < starts_.size() && starts_[first_start_] < row_begin_) ++first_start_;
  // A row that begins inside a document still starts a segment at 0.
  if (first_start_ == starts_.size() || starts_[first_start_] != row_begin_) {
    batch.doc_offsets.push_back(0);
  }
  for (size_t k = first_start_; k < starts_.size() && starts_[k] < row_begin_ + width; ++k) {
    batch.doc_offsets.push_back(static_cast<int32_t>(starts_[k] - row_begin_));
  }
  batch.doc_offsets.push_back(static_cast<int32_t>(width));
  if (batch.row_starts.empty()) batch.row_starts.push_back(0);
  batch.row_starts.push_back(batch.doc_offsets.size());
  batch.width = width;
  ++batch.rows;
  row_begin_ += seq_len_;
  // Drop what no later row needs, once that is at least half the buffer (amortised O(1)).
  uint64_t dead = row_begin_ - base_;
  if (dead > tokens_.size() / 2) {
    tokens_.erase(tokens_.begin(), tokens_.begin() + static_cast<ptrdiff_t>(dead));
    base_ = row_begin_;
    starts_.erase(starts_.begin(), starts_.begin() + static_cast<ptrdiff_t>(first_start_));
    first_start_ = 0;
  }
  return true;
}

}  // namespace ferry::datasets
