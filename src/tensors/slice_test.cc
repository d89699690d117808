#include <gtest/gtest.h>

#include <cstring>

#include "ferry/tensors.h"
#include "tests/support/test_support.h"

namespace ferry::tensors {
namespace {

using testing::ServerProcess;
using testing::TempDir;
using testing::TestBytes;

TensorInfo Info(DType dtype, std::vector<uint64_t> shape) {
  TensorInfo info;
  info.name = "w";
  info.dtype = dtype;
  info.shape = std::move(shape);
  uint64_t bits = static_cast<uint64_t>(DTypeBits(dtype));
  for (uint64_t d : info.shape) bits *= d;
  info.end = bits / 8;
  return info;
}

// The oracle: the slice element by element, as nested loops over its dimensions would take it.
std::vector<std::byte> SliceByElements(const TensorInfo& info, std::span<const std::byte> tensor,
                                       const std::vector<DimSlice>& dims) {
  size_t elem = static_cast<size_t>(DTypeBits(info.dtype) / 8);
  std::vector<std::byte> out;
  std::vector<uint64_t> k(dims.size(), 0);
  for (const DimSlice& d : dims) {
    if (d.count == 0) return out;
  }
  while (true) {
    uint64_t index = 0;
    for (size_t d = 0; d < dims.size(); ++d) {
      index = index * info.shape[d] + dims[d].start + k[d] * dims[d].step;
    }
    const std::byte* from = tensor.data() + index * elem;
    out.insert(out.end(), from, from + elem);
    size_t d = dims.size();
    while (d > 0 && ++k[d - 1] == dims[d - 1].count) k[--d] = 0;
    if (d == 0) return out;
  }
}

std::vector<SliceRead> Reads(const SlicePlan& plan, uint64_t max_gap, uint64_t max_span) {
  std::vector<SliceRead> reads;
  EXPECT_TRUE(plan.ForEachRead(max_gap, max_span, [&](const SliceRead& r) {
                    reads.push_back(r);
                    return Status::Ok();
                  }).ok());
  return reads;
}

TEST(SlicePlanTest, GatherMatchesElementByElementForManyIndexForms) {
  TensorInfo info = Info(DType::kF32, {6, 5, 7});
  std::vector<std::byte> tensor = TestBytes(info.nbytes(), 3);
  std::vector<std::vector<DimSlice>> cases = {
      {{0, 6, 1}, {0, 5, 1}, {0, 7, 1}},  // everything
      {{2, 3, 1}, {0, 5, 1}, {0, 7, 1}},  // leading rows
      {{4, 1, 1}, {0, 5, 1}, {0, 7, 1}},  // one row (an int index)
      {{0, 6, 1}, {1, 3, 1}, {0, 7, 1}},  // a middle range
      {{0, 6, 1}, {0, 5, 1}, {2, 4, 1}},  // an inner range
      {{0, 3, 2}, {0, 5, 1}, {0, 7, 1}},  // a step outside
      {{1, 2, 3}, {4, 1, 1}, {0, 4, 2}},  // steps and an int
      {{5, 1, 1}, {4, 1, 1}, {6, 1, 1}},  // one element
      {{0, 6, 1}, {0, 0, 1}, {0, 7, 1}},  // empty
  };
  for (const auto& dims : cases) {
    auto plan = SlicePlan::Make("m", info, dims);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    std::vector<std::byte> want = SliceByElements(info, tensor, dims);
    ASSERT_EQ(plan->nbytes(), want.size());
    std::vector<std::byte> got(want.size());
    plan->Gather(tensor, got);
    EXPECT_EQ(got, want) << dims[0].start << " " << dims[1].start << " " << dims[2].start;
    // Reading through any coalescing gives the same bytes.
    for (uint64_t gap : {uint64_t{0}, uint64_t{40}, uint64_t{1} << 20}) {
      std::vector<std::byte> read(want.size());
      for (const SliceRead& r : Reads(*plan, gap, 64)) {
        for (uint64_t k = 0; k < r.runs; ++k) {
          uint64_t run = r.first_run + k;
          uint64_t from = r.runs == 1 ? r.begin : plan->RunOffset(run);
          uint64_t length = r.runs == 1 ? r.end - r.begin : plan->run_bytes();
          ASSERT_LE(r.begin, from);
          ASSERT_LE(from + length, r.end);
          std::memcpy(read.data() + r.dst_offset + (r.runs == 1 ? 0 : k * plan->run_bytes()),
                      tensor.data() + from, length);
        }
      }
      EXPECT_EQ(read, want) << "gap " << gap;
    }
  }
}

TEST(SlicePlanTest, LeadingRowsAreOneRunAndInnerRangesOneRunPerRow) {
  TensorInfo info = Info(DType::kBF16, {64, 1024});  // 2 KiB rows
  auto rows = SlicePlan::Make("m", info, std::vector<DimSlice>{{8, 8, 1}, {0, 1024, 1}});
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->run_count(), 1u);
  std::vector<SliceRead> reads = Reads(*rows, 4096, 8 << 20);
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_EQ(reads[0].begin, 8u * 2048);
  EXPECT_EQ(reads[0].end, 16u * 2048);

  // Columns 0..127 of each row: 256 bytes wanted, 1792 skipped per row.
  auto columns = SlicePlan::Make("m", info, std::vector<DimSlice>{{0, 64, 1}, {0, 128, 1}});
  ASSERT_TRUE(columns.ok());
  EXPECT_EQ(columns->run_count(), 64u);
  EXPECT_EQ(columns->run_bytes(), 256u);
  std::vector<SliceRead> apart = Reads(*columns, 1024, 8 << 20);  // gaps too large to bridge
  ASSERT_EQ(apart.size(), 64u);
  for (const SliceRead& r : apart) EXPECT_TRUE(r.gapless(256));
  std::vector<SliceRead> bridged = Reads(*columns, 4096, 8 << 20);  // one read spanning them
  ASSERT_EQ(bridged.size(), 1u);
  EXPECT_EQ(bridged[0].runs, 64u);
  EXPECT_FALSE(bridged[0].gapless(256));
  EXPECT_EQ(bridged[0].end - bridged[0].begin, 63u * 2048 + 256);
  // Spans stay under max_span: 16 KiB holds 8 rows' runs.
  EXPECT_EQ(Reads(*columns, 4096, 16 << 10).size(), 8u);
  // A run longer than max_span goes in pieces that cover it exactly.
  std::vector<SliceRead> pieces = Reads(*rows, 4096, 5000);
  ASSERT_EQ(pieces.size(), 4u);
  EXPECT_EQ(pieces[0].begin, 8u * 2048);
  EXPECT_EQ(pieces[3].end, 16u * 2048);
  EXPECT_EQ(pieces[3].dst_offset, 15000u);
}

TEST(SlicePlanTest, ScalarsAndEmptyTensors) {
  TensorInfo scalar = Info(DType::kI64, {});
  auto plan = SlicePlan::Make("m", scalar, std::vector<DimSlice>{});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->nbytes(), 8u);
  TensorInfo empty = Info(DType::kF16, {0, 4});
  auto none = SlicePlan::Make("m", empty, std::vector<DimSlice>{{0, 0, 1}, {1, 2, 1}});
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(none->nbytes(), 0u);
  EXPECT_TRUE(Reads(*none, 0, 1).empty());
}

TEST(SlicePlanTest, RangesOutsideTheTensorAreRefusedNamingTheDimension) {
  TensorInfo info = Info(DType::kU8, {3, 4});
  struct Case {
    std::vector<DimSlice> dims;
    std::string message;
  };
  std::vector<Case> cases = {
      {{{0, 3, 1}}, "m: tensor 'w': a slice needs one range per dimension (2), got 1"},
      {{{0, 3, 1}, {4, 1, 1}}, "does not fit dimension 1 of size 4"},
      {{{0, 3, 1}, {0, 3, 2}}, "does not fit dimension 1 of size 4"},  // 0, 2, 4
      {{{0, 3, 1}, {0, 1, 0}}, "step 0"},
      {{{1, UINT64_MAX, UINT64_MAX}, {0, 4, 1}}, "does not fit dimension 0 of size 3"},
  };
  for (const Case& c : cases) {
    auto plan = SlicePlan::Make("m", info, c.dims);
    ASSERT_FALSE(plan.ok());
    EXPECT_EQ(plan.status().code(), StatusCode::kOutOfRange);
    EXPECT_NE(plan.status().message().find(c.message), std::string::npos)
        << plan.status().message();
  }
}

TEST(SlicePlanTest, SubByteSlicesMustCutWholeBytes) {
  TensorInfo info = Info(DType::kF4, {4, 6});  // 3 bytes a row
  EXPECT_TRUE(SlicePlan::Make("m", info, std::vector<DimSlice>{{1, 2, 1}, {0, 6, 1}}).ok());
  EXPECT_TRUE(SlicePlan::Make("m", info, std::vector<DimSlice>{{0, 4, 1}, {2, 4, 1}}).ok());
  auto odd = SlicePlan::Make("m", info, std::vector<DimSlice>{{0, 4, 1}, {1, 2, 1}});
  EXPECT_EQ(odd.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(odd.status().message().find("a slice of F4 must start and end on whole bytes"),
            std::string::npos);
}

// Every mode and both sources give the slice's bytes; lazy and plaid read them from the source.
TEST(TensorReaderSliceTest, EveryModeAndSourceReadsTheSameSlice) {
  TempDir dir;
  std::vector<std::byte> big = TestBytes(200 * 300 * 4, 7);
  std::vector<std::byte> small = TestBytes(10 * 2, 8);
  std::vector<TensorToWrite> tensors = {{"big", DType::kF32, {200, 300}, big},
                                        {"small", DType::kI16, {10}, small}};
  std::string path = dir.Join("m.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, tensors).ok());
  TensorInfo info = Info(DType::kF32, {200, 300});
  std::vector<std::vector<DimSlice>> cases = {
      {{25, 25, 1}, {0, 300, 1}}, {{0, 200, 1}, {100, 50, 1}}, {{3, 60, 3}, {7, 90, 3}}};
  std::vector<std::string> uris = {path};
  std::unique_ptr<ServerProcess> server;
  if (testing::NginxAvailable()) {
    auto started = ServerProcess::Start("nginx.py", {"--root", dir.path()});
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    server = std::move(*started);
    uris.push_back(server->Url("m.safetensors"));
  }
  for (const std::string& uri : uris) {
    for (Mode mode : {Mode::kEager, Mode::kLazy, Mode::kPlaid, Mode::kMmap}) {
      if (mode == Mode::kMmap && uri != path) continue;
      for (bool verify : {false, true}) {
        SCOPED_TRACE(uri + " " + std::string(ModeName(mode)) + (verify ? " verified" : ""));
        ReaderOptions options;
        options.mode = mode;
        options.part_size = 4096;  // many reads, several at a time
        options.parallelism = 3;
        options.staging_buffer_size = 64 << 10;
        options.verify_checksums = verify;
        auto reader = TensorReader::Open(uri, options);
        ASSERT_TRUE(reader.ok()) << reader.status().ToString();
        for (const auto& dims : cases) {
          std::vector<std::byte> want = SliceByElements(info, big, dims);
          std::vector<std::byte> got(want.size());
          Status status = (*reader)->ReadSlice("big", dims, got);
          ASSERT_TRUE(status.ok()) << status.ToString();
          EXPECT_EQ(got, want);
        }
        std::vector<std::byte> wrong(3);
        EXPECT_EQ((*reader)->ReadSlice("big", cases[0], wrong).code(),
                  StatusCode::kInvalidArgument);
        EXPECT_EQ((*reader)->ReadSlice("nope", cases[0], wrong).code(), StatusCode::kNotFound);
        if (mode == Mode::kPlaid) {  // a slice neither hands out nor evicts a plaid tensor
          auto whole = (*reader)->Get("big");
          ASSERT_TRUE(whole.ok()) << whole.status().ToString();
          EXPECT_TRUE(std::equal(whole->data.begin(), whole->data.end(), big.begin()));
        }
      }
    }
  }
}

}  // namespace
}  // namespace ferry::tensors
