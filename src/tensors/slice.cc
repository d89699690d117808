// SlicePlan: which bytes of a tensor a slice index selects, as runs and coalesced reads.

#include <algorithm>
#include <cstring>

#include "ferry/tensors.h"

namespace ferry::tensors {

Result<SlicePlan> SlicePlan::Make(std::string_view uri, const TensorInfo& info,
                                  std::span<const DimSlice> dims) {
  auto error = [&](const std::string& what) {
    return OutOfRange(std::string(uri) + ": tensor '" + info.name + "': " + what);
  };
  const size_t ndim = info.shape.size();
  if (dims.size() != ndim) {
    return error("a slice needs one range per dimension (" + std::to_string(ndim) + "), got " +
                 std::to_string(dims.size()));
  }
  for (size_t d = 0; d < ndim; ++d) {
    const DimSlice& s = dims[d];
    // start + (count - 1) * step < shape, without overflow.
    bool inside = s.step >= 1 &&
                  (s.count == 0 || (s.start < info.shape[d] &&
                                    s.count - 1 <= (info.shape[d] - 1 - s.start) / s.step));
    if (!inside) {
      return error("range start " + std::to_string(s.start) + ", count " +
                   std::to_string(s.count) + ", step " + std::to_string(s.step) +
                   " does not fit dimension " + std::to_string(d) + " of size " +
                   std::to_string(info.shape[d]));
    }
  }
  SlicePlan plan;
  // Strides in bits, so sub-byte dtypes are planned like the others; the header was validated,
  // so the tensor's bit size (and thus every stride) fits in 64 bits.
  std::vector<uint64_t> stride(ndim);
  uint64_t bits = static_cast<uint64_t>(DTypeBits(info.dtype));
  for (size_t d = ndim; d-- > 0;) {
    stride[d] = bits;
    bits *= info.shape[d];
  }
  bool empty =
      std::any_of(dims.begin(), dims.end(), [](const DimSlice& s) { return s.count == 0; });
  uint64_t run_bits = static_cast<uint64_t>(DTypeBits(info.dtype));
  uint64_t base_bits = 0;
  size_t d = ndim;
  // Whole dimensions from the innermost out join the run...
  while (d > 0 && dims[d - 1].start == 0 && dims[d - 1].count == info.shape[d - 1] &&
         (dims[d - 1].step == 1 || dims[d - 1].count <= 1)) {
    --d;
    run_bits *= info.shape[d];
  }
  // ...and so does the next one if its elements are adjacent.
  if (d > 0 && (dims[d - 1].step == 1 || dims[d - 1].count <= 1)) {
    --d;
    run_bits *= dims[d].count;
    base_bits += dims[d].start * stride[d];
  }
  std::vector<std::pair<uint64_t, uint64_t>> outer_bits;  // (count, stride in bits)
  for (size_t i = 0; i < d; ++i) {
    base_bits += dims[i].start * stride[i];
    if (dims[i].count > 1) outer_bits.emplace_back(dims[i].count, dims[i].step * stride[i]);
  }
  bool whole_bytes = run_bits % 8 == 0 && base_bits % 8 == 0 &&
                     std::all_of(outer_bits.begin(), outer_bits.end(),
                                 [](const auto& o) { return o.second % 8 == 0; });
  if (!empty && !whole_bytes) {
    return Unsupported(std::string(uri) + ": tensor '" + info.name + "': a slice of " +
                       std::string(DTypeName(info.dtype)) +
                       " must start and end on whole bytes in every row; read the whole "
                       "tensor instead");
  }
  if (empty) return plan;  // no runs
  plan.base_ = base_bits / 8;
  plan.run_bytes_ = run_bits / 8;
  plan.run_count_ = 1;
  for (const auto& [count, stride_bits] : outer_bits) {
    plan.outer_.push_back({count, stride_bits / 8});
    plan.run_count_ *= count;
  }
  return plan;
}

uint64_t SlicePlan::RunOffset(uint64_t index) const {
  uint64_t offset = base_;
  for (size_t i = outer_.size(); i-- > 0;) {
    offset += (index % outer_[i].count) * outer_[i].stride;
    index /= outer_[i].count;
  }
  return offset;
}

Status SlicePlan::ForEachRead(uint64_t max_gap, uint64_t max_span,
                              const std::function<Status(const SliceRead&)>& visit) const {
  max_span = std::max<uint64_t>(max_span, 1);
  std::vector<uint64_t> position(outer_.size(), 0);  // odometer over the outer dimensions
  uint64_t offset = base_;
  SliceRead open;
  for (uint64_t run = 0; run < run_count_; ++run) {
    uint64_t dst = run * run_bytes_;
    bool joins = open.runs > 0 && offset - open.end <= max_gap &&
                 offset + run_bytes_ - open.begin <= max_span;
    if (joins) {
      open.end = offset + run_bytes_;
      open.runs++;
    } else {
      if (open.runs > 0) FERRY_RETURN_IF_ERROR(visit(open));
      open = SliceRead{};
      if (run_bytes_ > max_span) {  // a long run goes in pieces, each straight to its place
        for (uint64_t piece = 0; piece < run_bytes_; piece += max_span) {
          uint64_t length = std::min(max_span, run_bytes_ - piece);
          FERRY_RETURN_IF_ERROR(
              visit({offset + piece, offset + piece + length, dst + piece, run, 1}));
        }
      } else {
        open = {offset, offset + run_bytes_, dst, run, 1};
      }
    }
    for (size_t i = outer_.size(); i-- > 0;) {  // advance to the next run
      offset += outer_[i].stride;
      if (++position[i] < outer_[i].count) break;
      offset -= outer_[i].count * outer_[i].stride;
      position[i] = 0;
    }
  }
  if (open.runs > 0) FERRY_RETURN_IF_ERROR(visit(open));
  return Status::Ok();
}

void SlicePlan::Gather(std::span<const std::byte> tensor, std::span<std::byte> dst) const {
  // A long read span never matters here: everything is in memory, one run per copy.
  (void)ForEachRead(0, UINT64_MAX, [&](const SliceRead& read) {
    std::memcpy(dst.data() + read.dst_offset, tensor.data() + read.begin, read.end - read.begin);
    return Status::Ok();
  });
}

}  // namespace ferry::tensors
