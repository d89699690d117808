// ferry._core's dataset half, for ferry.data: SampleReader (one shard's samples), SampleLoader and
// PackedLoader (the staged pipeline over one loader worker's part of an epoch plan), plan_for and
// index_shards.

#include "ferry/datasets.h"

#include <algorithm>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include "bindings/bindings.h"
#include "bindings/errors.h"
#include "datasets/loader.h"
#include "datasets/split.h"

namespace nb = nanobind;

namespace ferry::python {
namespace {

nb::dict SampleDict(const datasets::Sample& sample) {
  nb::dict out;
  out["__key__"] = sample.key;
  out["__url__"] = sample.url;
  for (const auto& [field, bytes] : sample.fields) {
    out[nb::str(field.c_str(), field.size())] =
        nb::bytes(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  return out;
}

// The next sample of `reader` (SampleReader or SampleLoader) as a dict; StopIteration at the end.
template <typename Reader>
nb::dict NextDict(Reader& reader) {
  std::optional<datasets::Sample> sample;
  {
    nb::gil_scoped_release release;
    sample = Unwrap(reader.Next());
  }
  if (!sample) throw nb::stop_iteration();
  return SampleDict(*sample);
}

class PySampleReader {
 public:
  explicit PySampleReader(const std::string& uri) {
    nb::gil_scoped_release release;
    reader_ = Unwrap(datasets::SampleReader::Open(uri));
  }

  nb::dict Next() { return NextDict(*reader_); }

 private:
  std::unique_ptr<datasets::SampleReader> reader_;
};

using Span = std::tuple<size_t, uint64_t, uint64_t>;  // (shard, first, count)

datasets::WorkerPlan PlanOf(const std::vector<Span>& spans) {
  datasets::WorkerPlan plan;
  for (const auto& [shard, first, count] : spans) {
    plan.spans.push_back({shard, first, count});
    plan.samples += count;
  }
  return plan;
}

datasets::LoaderOptions LoaderOptionsOf(size_t shuffle_buffer, uint64_t shuffle_seed, int readers,
                                        size_t queue_capacity, const std::string& on_error,
                                        uint64_t skip_yielded) {
  if (on_error != "fail" && on_error != "skip") {
    ThrowIfError(InvalidArgument("on_error must be 'fail' or 'skip' (got '" + on_error + "')"));
  }
  datasets::LoaderOptions options;
  options.shuffle_buffer = shuffle_buffer;
  options.shuffle_seed = shuffle_seed;
  options.readers = readers;
  options.queue_capacity = queue_capacity;
  options.on_error = on_error == "skip" ? datasets::OnError::kSkip : datasets::OnError::kFail;
  options.skip_yielded = skip_yielded;
  return options;
}

// (url, error, samples lost or None for "the rest of a shard not indexed").
using SkippedTuple = std::tuple<std::string, std::string, std::optional<uint64_t>>;

std::vector<SkippedTuple> SkippedTuples(const std::vector<datasets::Skipped>& skipped) {
  std::vector<SkippedTuple> out;
  for (const auto& s : skipped) {
    out.emplace_back(s.url, s.error,
                     s.samples == datasets::kToShardEnd ? std::nullopt : std::optional(s.samples));
  }
  return out;
}

class PySampleLoader {
 public:
  PySampleLoader(std::vector<std::string> urls, const std::vector<Span>& spans,
                 size_t shuffle_buffer, uint64_t shuffle_seed, int readers, size_t queue_capacity,
                 const std::string& on_error, uint64_t skip_yielded) {
    datasets::LoaderOptions options = LoaderOptionsOf(shuffle_buffer, shuffle_seed, readers,
                                                      queue_capacity, on_error, skip_yielded);
    nb::gil_scoped_release release;
    loader_ = Unwrap(datasets::SampleLoader::Start(std::move(urls), PlanOf(spans), options));
  }

  nb::dict Next() { return NextDict(*loader_); }

  // Up to `n` samples as one columnar dict: {"__key__": [str], "__url__": [str], field: [bytes or
  // None where a sample lacks the field]}, the shape webdataset's batched() gives bytes fields.
  // One Python object per batch instead of per sample is what makes a DataLoader worker cheap
  // to drain. None at the end.
  std::optional<nb::dict> NextBatch(size_t n) {
    std::vector<datasets::Sample> samples;
    {
      nb::gil_scoped_release release;
      while (samples.size() < n) {
        std::optional<datasets::Sample> sample = Unwrap(loader_->Next());
        if (!sample) break;
        samples.push_back(std::move(*sample));
      }
    }
    if (samples.empty()) return std::nullopt;
    nb::list keys, urls;
    nb::dict batch;
    batch["__key__"] = keys;
    batch["__url__"] = urls;
    // field -> its column: a batch has a handful of fields, so a short list beats a dict lookup
    // (and a new Python str) per field of every sample.
    std::vector<std::pair<std::string_view, nb::list>> columns;
    for (size_t i = 0; i < samples.size(); ++i) {
      keys.append(nb::str(samples[i].key.c_str(), samples[i].key.size()));
      urls.append(nb::str(samples[i].url.c_str(), samples[i].url.size()));
      for (const auto& [field, bytes] : samples[i].fields) {
        auto column = std::find_if(columns.begin(), columns.end(),
                                   [&](const auto& c) { return c.first == field; });
        if (column == columns.end()) {
          nb::list values;
          for (size_t k = 0; k < samples.size(); ++k) values.append(nb::none());
          batch[nb::str(field.c_str(), field.size())] = values;
          column = columns.insert(columns.end(), {field, values});
        }
        column->second[i] = nb::bytes(reinterpret_cast<const char*>(bytes.data()), bytes.size());
      }
    }
    return batch;
  }

  std::vector<SkippedTuple> Skipped() const { return SkippedTuples(loader_->skipped()); }
  uint64_t HighWater() const { return loader_->held_bytes_high_water(); }

 private:
  std::unique_ptr<datasets::SampleLoader> loader_;
};

template <typename T>
using Array = nb::ndarray<nb::numpy, T>;

class PyPackedLoader {
 public:
  PyPackedLoader(std::vector<std::string> urls, const std::vector<Span>& spans,
                 size_t shuffle_buffer, uint64_t shuffle_seed, int readers, size_t queue_capacity,
                 const std::string& on_error, uint64_t skip_yielded, nb::handle tokenizer,
                 const std::string& field, uint64_t seq_len, uint64_t batch_size, uint32_t eod_id,
                 int threads) {
    datasets::LoaderOptions options = LoaderOptionsOf(shuffle_buffer, shuffle_seed, readers,
                                                      queue_capacity, on_error, skip_yielded);
    datasets::PackOptions pack;
    pack.tokenizer = TokenizerOf(tokenizer);
    pack.field = field;
    pack.seq_len = seq_len;
    pack.batch_size = batch_size;
    pack.eod_id = eod_id;
    pack.threads = threads;
    nb::gil_scoped_release release;
    loader_ = Unwrap(datasets::PackedLoader::Start(std::move(urls), PlanOf(spans), options, pack));
  }

  // {"input_ids": int32 [batch, seq_len + 1], "doc_offsets": [int32 array per row]}.
  nb::dict Next() {
    std::optional<datasets::TokenBatch> batch;
    {
      nb::gil_scoped_release release;
      batch = Unwrap(loader_->Next());
    }
    if (!batch) throw nb::stop_iteration();
    nb::list offsets;
    for (size_t r = 0; r < batch->rows; ++r) {
      std::vector<int32_t> row(batch->doc_offsets.begin() + static_cast<ptrdiff_t>(batch->row_starts[r]),
                               batch->doc_offsets.begin() + static_cast<ptrdiff_t>(batch->row_starts[r + 1]));
      size_t n = row.size();
      offsets.append(OwnedArray<Array<int32_t>>(std::move(row), {n}));
    }
    nb::dict out;
    out["input_ids"] =
        OwnedArray<Array<int32_t>>(std::move(batch->input_ids), {batch->rows, batch->width});
    out["doc_offsets"] = offsets;
    return out;
  }
  std::vector<SkippedTuple> Skipped() const { return SkippedTuples(loader_->skipped()); }
  uint64_t Tokens() const { return loader_->tokens(); }

 private:
  std::unique_ptr<datasets::PackedLoader> loader_;
};

// Packs documents given one at a time (ferry.data.pack_tokens): the C++ TokenPacker.
class PyTokenPacker {
 public:
  PyTokenPacker(uint64_t seq_len, uint32_t eod_id) : packer_(seq_len, eod_id) {
    if (seq_len < 1) ThrowIfError(InvalidArgument("seq_len must be >= 1, got 0"));
    if (eod_id >= (uint32_t{1} << 31)) ThrowIfError(InvalidArgument("eod_id must fit int32"));
  }
  // Rows are int32: an id of 2^31 or more would turn negative, so it is refused.
  void Add(nb::ndarray<uint32_t, nb::ndim<1>, nb::c_contig, nb::device::cpu> document) {
    std::span<const uint32_t> ids(document.data(), document.shape(0));
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] >= (uint32_t{1} << 31)) {
        ThrowIfError(OutOfRange("token id " + std::to_string(ids[i]) + " at position " +
                                std::to_string(i) + " of a document does not fit int32"));
      }
    }
    packer_.Add(ids);
  }
  // The rows that are full now, as (row, doc_offsets) pairs.
  nb::list Rows() {
    nb::list out;
    datasets::TokenBatch batch;
    while (packer_.NextRow(batch)) {
      size_t width = batch.width, n = batch.doc_offsets.size();
      out.append(nb::make_tuple(OwnedArray<Array<int32_t>>(std::move(batch.input_ids), {width}),
                                OwnedArray<Array<int32_t>>(std::move(batch.doc_offsets), {n})));
      batch = datasets::TokenBatch{};
    }
    return out;
  }

 private:
  datasets::TokenPacker packer_;
};

datasets::SplitOptions MakeOptions(uint64_t seed, uint64_t epoch, bool shuffle_shards,
                                   int world_size, int num_workers, uint64_t batch_size,
                                   const std::string& remainder) {
  if (remainder != "pad" && remainder != "drop") {
    ThrowIfError(InvalidArgument("remainder must be 'pad' or 'drop' (got '" + remainder + "')"));
  }
  datasets::SplitOptions o;
  o.seed = seed;
  o.epoch = epoch;
  o.shuffle_shards = shuffle_shards;
  o.world_size = world_size;
  o.num_workers = num_workers;
  o.batch_size = batch_size;
  o.remainder = remainder == "pad" ? datasets::Remainder::kPad : datasets::Remainder::kDrop;
  return o;
}

// (samples per rank, shard order, the spans of one (rank, worker)).
std::tuple<uint64_t, std::vector<size_t>, std::vector<Span>> WorkerSpans(
    const datasets::EpochPlan& plan, int rank, int worker) {
  if (rank < 0 || static_cast<size_t>(rank) >= plan.plans.size()) {
    ThrowIfError(InvalidArgument("rank " + std::to_string(rank) + " is not in [0, " +
                                 std::to_string(plan.plans.size()) + ")"));
  }
  const auto& workers = plan.plans[static_cast<size_t>(rank)];
  if (worker < 0 || static_cast<size_t>(worker) >= workers.size()) {
    ThrowIfError(InvalidArgument("worker " + std::to_string(worker) + " is out of range"));
  }
  std::vector<Span> spans;
  for (const auto& s : workers[static_cast<size_t>(worker)].spans) {
    spans.emplace_back(s.shard, s.first, s.count);
  }
  return {plan.samples_per_rank, plan.shard_order, spans};
}

std::tuple<uint64_t, std::vector<size_t>, std::vector<Span>> PlanFor(
    const std::vector<uint64_t>& counts, int rank, int worker, uint64_t seed, uint64_t epoch,
    bool shuffle_shards, int world_size, int num_workers, uint64_t batch_size,
    const std::string& remainder) {
  auto options = MakeOptions(seed, epoch, shuffle_shards, world_size, num_workers, batch_size, remainder);
  return WorkerSpans(Unwrap(datasets::PlanEpoch(counts, options)), rank, worker);
}

// The same for the rest of an epoch an earlier run (old_*) was interrupted in.
std::tuple<uint64_t, std::vector<size_t>, std::vector<Span>> PlanForResumed(
    const std::vector<uint64_t>& counts, int rank, int worker, uint64_t seed, uint64_t epoch,
    bool shuffle_shards, int world_size, int num_workers, uint64_t batch_size,
    const std::string& remainder, int old_world_size, int old_num_workers,
    uint64_t old_batch_size, const std::string& old_remainder, size_t old_shuffle_buffer,
    uint64_t samples_per_rank) {
  auto options = MakeOptions(seed, epoch, shuffle_shards, world_size, num_workers, batch_size, remainder);
  datasets::ResumePoint resume;
  resume.options = MakeOptions(seed, epoch, shuffle_shards, old_world_size, old_num_workers,
                               old_batch_size, old_remainder);
  resume.shuffle_buffer = old_shuffle_buffer;
  resume.samples_per_rank = samples_per_rank;
  datasets::EpochPlan plan;
  {
    nb::gil_scoped_release release;
    plan = Unwrap(datasets::PlanResumedEpoch(counts, resume, options));
  }
  return WorkerSpans(plan, rank, worker);
}

std::vector<std::tuple<std::string, uint64_t, uint64_t>> IndexShards(
    const std::vector<std::string>& urls, int threads) {
  std::vector<datasets::ShardInfo> shards;
  {
    nb::gil_scoped_release release;
    shards = Unwrap(datasets::IndexShards(urls, threads > 0 ? threads : 8));
  }
  std::vector<std::tuple<std::string, uint64_t, uint64_t>> out;
  for (const auto& s : shards) out.emplace_back(s.url, s.bytes, s.samples);
  return out;
}

}  // namespace

void RegisterDatasets(nb::module_& m) {
  nb::class_<PySampleReader>(m, "SampleReader")
      .def(nb::init<const std::string&>(), nb::arg("uri"))
      .def("__iter__", [](nb::handle self) { return self; })
      .def("__next__", &PySampleReader::Next);
  nb::class_<PySampleLoader>(m, "SampleLoader")
      .def(nb::init<std::vector<std::string>, const std::vector<Span>&, size_t, uint64_t, int,
                    size_t, const std::string&, uint64_t>(),
           nb::arg("urls"), nb::arg("spans"), nb::arg("shuffle_buffer"), nb::arg("shuffle_seed"),
           nb::arg("readers"), nb::arg("queue_capacity"), nb::arg("on_error"),
           nb::arg("skip_yielded"))
      .def("__iter__", [](nb::handle self) { return self; })
      .def("__next__", &PySampleLoader::Next)
      .def("next_batch", &PySampleLoader::NextBatch, nb::arg("n"))
      .def("skipped", &PySampleLoader::Skipped)
      .def("held_bytes_high_water", &PySampleLoader::HighWater);
  nb::class_<PyPackedLoader>(m, "PackedLoader")
      .def(nb::init<std::vector<std::string>, const std::vector<Span>&, size_t, uint64_t, int,
                    size_t, const std::string&, uint64_t, nb::handle, const std::string&, uint64_t,
                    uint64_t, uint32_t, int>(),
           nb::arg("urls"), nb::arg("spans"), nb::arg("shuffle_buffer"), nb::arg("shuffle_seed"),
           nb::arg("readers"), nb::arg("queue_capacity"), nb::arg("on_error"),
           nb::arg("skip_yielded"), nb::arg("tokenizer"), nb::arg("field"), nb::arg("seq_len"), nb::arg("batch_size"),
           nb::arg("eod_id"), nb::arg("threads"))
      .def("__iter__", [](nb::handle self) { return self; })
      .def("__next__", &PyPackedLoader::Next)
      .def("skipped", &PyPackedLoader::Skipped)
      .def("tokens", &PyPackedLoader::Tokens);
  nb::class_<PyTokenPacker>(m, "TokenPacker")
      .def(nb::init<uint64_t, uint32_t>(), nb::arg("seq_len"), nb::arg("eod_id"))
      .def("add", &PyTokenPacker::Add, nb::arg("document"))
      .def("rows", &PyTokenPacker::Rows);
  m.def("plan_for", &PlanFor, nb::arg("counts"), nb::arg("rank"), nb::arg("worker"),
        nb::arg("seed"), nb::arg("epoch"), nb::arg("shuffle_shards"), nb::arg("world_size"),
        nb::arg("num_workers"), nb::arg("batch_size"), nb::arg("remainder"));
  m.def("plan_for_resumed", &PlanForResumed, nb::arg("counts"), nb::arg("rank"), nb::arg("worker"),
        nb::arg("seed"), nb::arg("epoch"), nb::arg("shuffle_shards"), nb::arg("world_size"),
        nb::arg("num_workers"), nb::arg("batch_size"), nb::arg("remainder"),
        nb::arg("old_world_size"), nb::arg("old_num_workers"), nb::arg("old_batch_size"),
        nb::arg("old_remainder"), nb::arg("old_shuffle_buffer"), nb::arg("samples_per_rank"));
  m.def("shuffle_seed", &datasets::ShuffleSeed);
  m.def(
      "expand_shards",
      [](const std::vector<std::string>& specs) {
        nb::gil_scoped_release release;
        return Unwrap(datasets::ExpandShards(specs));
      },
      nb::arg("specs"));
  m.def("index_shards", &IndexShards, nb::arg("urls"), nb::arg("threads") = 0);
  m.def(
      "read_index",
      [](const std::string& uri) {
        std::vector<datasets::ShardInfo> shards;
        {
          nb::gil_scoped_release release;
          shards = Unwrap(datasets::ReadIndex(uri));
        }
        std::vector<std::tuple<std::string, uint64_t, uint64_t>> out;
        for (const auto& s : shards) out.emplace_back(s.url, s.bytes, s.samples);
        return out;
      },
      nb::arg("uri"));
}

}  // namespace ferry::python
