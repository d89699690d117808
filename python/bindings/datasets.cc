// ferry._core's dataset half, for ferry.data: SampleReader (one shard's samples), SampleLoader and
// PackedLoader (the staged pipeline over one loader worker's part of an epoch plan), plan_for and
// index_shards.

#include "ferry/datasets.h"

#include <algorithm>
#include <cstring>

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
#include "datasets/token_shard.h"

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
    BlockingCall blocking;
    sample = Unwrap(reader.Next());
  }
  if (!sample) throw nb::stop_iteration();
  return SampleDict(*sample);
}

class PySampleReader {
 public:
  explicit PySampleReader(const std::string& uri) {
    BlockingCall blocking;
    reader_ = Unwrap(datasets::SampleReader::Open(uri));
  }

  nb::dict Next() { return NextDict(*reader_); }

 private:
  std::unique_ptr<datasets::SampleReader> reader_;
};

// A counted shard as ferry.data holds it: (url, bytes, version, samples).
using ShardTuple = std::tuple<std::string, uint64_t, std::string, uint64_t>;

std::vector<datasets::ShardInfo> ShardsOf(const std::vector<ShardTuple>& tuples) {
  std::vector<datasets::ShardInfo> shards;
  for (const auto& [url, bytes, version, samples] : tuples) {
    datasets::ShardInfo& shard = shards.emplace_back();
    shard.url = url;
    shard.bytes = bytes;
    shard.version = version;
    shard.samples = samples;
  }
  return shards;
}

datasets::OnError OnErrorOf(const std::string& on_error) {
  if (on_error != "fail" && on_error != "skip") {
    ThrowIfError(InvalidArgument("on_error must be 'fail' or 'skip' (got '" + on_error + "')"));
  }
  return on_error == "skip" ? datasets::OnError::kSkip : datasets::OnError::kFail;
}

datasets::Remainder RemainderOf(const std::string& remainder) {
  if (remainder != "pad" && remainder != "drop") {
    ThrowIfError(InvalidArgument("remainder must be 'pad' or 'drop' (got '" + remainder + "')"));
  }
  return remainder == "pad" ? datasets::Remainder::kPad : datasets::Remainder::kDrop;
}

// (url, error, samples lost or None for "the rest of a shard not indexed").
using SkippedTuple = std::tuple<std::string, std::string, std::optional<uint64_t>>;

std::vector<SkippedTuple> SkippedTuples(const std::vector<datasets::Skipped>& skipped) {
  std::vector<SkippedTuple> out;
  for (const auto& s : skipped) {
    out.emplace_back(s.url, io::RedactUris(s.error),
                     s.samples == datasets::kToShardEnd ? std::nullopt : std::optional(s.samples));
  }
  return out;
}

template <typename T>
using Array = nb::ndarray<nb::numpy, T>;

class PySampleLoader {
 public:
  PySampleLoader(const std::vector<ShardTuple>& shards, const datasets::ReaderRequest& request,
                 const datasets::LoaderOptions& options) {
    BlockingCall blocking;
    datasets::ReaderPlan plan = Unwrap(datasets::PlanReader(ShardsOf(shards), true, request, options));
    loader_ = Unwrap(datasets::SampleLoader::Start(std::move(plan.urls), std::move(plan.plan),
                                                   std::move(plan.options)));
  }

  nb::dict Next() {
    nb::dict sample = NextDict(*loader_);
    ++yielded_;
    return sample;
  }

  // Up to `n` samples as one columnar dict: {"__key__": [str], "__url__": [str], field: (buffer,
  // offsets, missing)}, None at the end. Each field's values lie back to back in one buffer of
  // their total size that `allocate(field, size)` returns (anything nb::ndarray takes as a
  // writable 1-D uint8 CPU array: a torch tensor in shared memory, a numpy array), or in a new
  // bytes object where it returns None; offsets (int64, samples + 1) delimit them and `missing`
  // lists the samples that lack the field. ferry.data wraps them as ByteColumn. One buffer per
  // field instead of one bytes object per value is what lets a DataLoader worker hand a batch
  // over as a shared-memory handle rather than through the pipe (bench/RESULTS.md, 2026-12-02
  // (late) and (night)); one memcpy per member fills it.
  std::optional<nb::dict> NextBatch(size_t n, nb::callable allocate) {
    std::vector<datasets::Sample> samples;
    {
      BlockingCall blocking;
      while (samples.size() < n) {
        std::optional<datasets::Sample> sample = Unwrap(loader_->Next());
        if (!sample) break;
        samples.push_back(std::move(*sample));
      }
    }
    if (samples.empty()) return std::nullopt;
    // Fields in the order the batch first has them: a handful per batch, so a short vector beats
    // a map (and a new Python str) per field of every sample.
    struct Column {
      std::string_view field;
      std::vector<const datasets::Bytes*> values;  // per sample; null where it lacks the field
      std::vector<int64_t> offsets;
      std::vector<int64_t> missing;
      nb::object owner;  // what `allocate` returned
      uint8_t* data = nullptr;
    };
    std::vector<Column> columns;
    for (size_t i = 0; i < samples.size(); ++i) {
      for (const auto& [field, bytes] : samples[i].fields) {
        auto column = std::find_if(columns.begin(), columns.end(),
                                   [&](const Column& c) { return c.field == field; });
        if (column == columns.end()) {
          column = columns.insert(columns.end(), Column{field, {}, {}, {}, {}, nullptr});
          column->values.resize(samples.size(), nullptr);
        }
        column->values[i] = &bytes;
      }
    }
    using Buffer = nb::ndarray<uint8_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
    for (Column& column : columns) {
      column.offsets.reserve(samples.size() + 1);
      column.offsets.push_back(0);
      for (size_t i = 0; i < samples.size(); ++i) {
        const datasets::Bytes* value = column.values[i];
        if (value == nullptr) column.missing.push_back(static_cast<int64_t>(i));
        column.offsets.push_back(column.offsets.back() +
                                 static_cast<int64_t>(value == nullptr ? 0 : value->size()));
      }
      auto size = static_cast<size_t>(column.offsets.back());
      nb::str field(column.field.data(), column.field.size());
      column.owner = allocate(field, size);
      if (column.owner.is_none()) {
        // A bytes object, filled before any Python code can see it (CPython's own
        // PyBytes_FromStringAndSize(NULL, n) idiom): it pickles through a pipe without the copy
        // a numpy array's reduction makes. For size 0 that is the shared empty bytes, which the
        // copy below never writes (it skips empty values).
        column.owner = nb::steal(PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(size)));
        if (!column.owner.is_valid()) throw nb::python_error();
        column.data = reinterpret_cast<uint8_t*>(PyBytes_AS_STRING(column.owner.ptr()));
        continue;
      }
      Buffer buffer;
      if (!nb::try_cast(column.owner, buffer, /*convert=*/false)) {
        throw nb::type_error(("next_batch: allocate('" + std::string(column.field) + "', " +
                              std::to_string(size) + ") returned a " +
                              nb::type_name(column.owner.type()).c_str() +
                              ", not a writable contiguous 1-D uint8 CPU array")
                                 .c_str());
      }
      if (buffer.shape(0) != size) {
        ThrowIfError(InvalidArgument("next_batch: allocate('" + std::string(column.field) + "', " +
                                     std::to_string(size) + ") returned a buffer of " +
                                     std::to_string(buffer.shape(0)) + " bytes"));
      }
      column.data = buffer.data();
    }
    {
      GilReleased released;  // a batch's bytes (6.4 MB in bench/'s binary rows): others may run
      for (Column& column : columns) {
        for (size_t i = 0; i < samples.size(); ++i) {
          const datasets::Bytes* value = column.values[i];
          if (value != nullptr && !value->empty()) {
            std::memcpy(column.data + column.offsets[i], value->data(), value->size());
          }
        }
      }
    }
    nb::list keys, urls;
    for (const datasets::Sample& sample : samples) {
      keys.append(nb::str(sample.key.c_str(), sample.key.size()));
      urls.append(nb::str(sample.url.c_str(), sample.url.size()));
    }
    nb::dict batch;
    batch["__key__"] = keys;
    batch["__url__"] = urls;
    for (Column& column : columns) {
      size_t bounds = column.offsets.size();
      batch[nb::str(column.field.data(), column.field.size())] = nb::make_tuple(
          column.owner, OwnedArray<Array<int64_t>>(std::move(column.offsets), {bounds}),
          nb::cast(column.missing));
    }
    yielded_ += samples.size();  // counted once handed over: a failed allocate hands nothing
    return batch;
  }

  std::vector<SkippedTuple> Skipped() const { return SkippedTuples(loader_->skipped()); }
  uint64_t HighWater() const { return loader_->held_bytes_high_water(); }
  // Samples handed to Python so far (by __next__ and next_batch): what a dataset's state counts.
  uint64_t Yielded() const { return yielded_; }

 private:
  ForkSafeOwner<datasets::SampleLoader> loader_;
  uint64_t yielded_ = 0;
};

// {"input_ids": int32 [rows, seq_len + 1], "doc_offsets": [int32 array of segment starts per row]}.
nb::dict BatchDict(datasets::TokenBatch batch) {
  nb::list offsets;
  for (size_t r = 0; r < batch.rows; ++r) {
    std::vector<int32_t> row(batch.doc_offsets.begin() + static_cast<ptrdiff_t>(batch.row_starts[r]),
                             batch.doc_offsets.begin() + static_cast<ptrdiff_t>(batch.row_starts[r + 1]));
    size_t n = row.size();
    offsets.append(OwnedArray<Array<int32_t>>(std::move(row), {n}));
  }
  nb::dict out;
  out["input_ids"] = OwnedArray<Array<int32_t>>(std::move(batch.input_ids), {batch.rows, batch.width});
  out["doc_offsets"] = offsets;
  return out;
}

class PyPackedLoader {
 public:
  PyPackedLoader(const std::vector<ShardTuple>& shards, const datasets::ReaderRequest& request,
                 const datasets::LoaderOptions& options, nb::handle tokenizer,
                 const std::string& field, uint64_t seq_len, uint64_t batch_size, uint32_t eod_id,
                 int threads) {
    datasets::PackOptions pack;
    pack.tokenizer = TokenizerOf(tokenizer);
    pack.field = field;
    pack.seq_len = seq_len;
    pack.batch_size = batch_size;
    pack.eod_id = eod_id;
    pack.threads = threads;
    BlockingCall blocking;
    datasets::ReaderPlan plan = Unwrap(datasets::PlanReader(ShardsOf(shards), true, request, options));
    loader_ = Unwrap(datasets::PackedLoader::Start(std::move(plan.urls), std::move(plan.plan),
                                                   std::move(plan.options), std::move(pack)));
  }

  nb::dict Next() {
    std::optional<datasets::TokenBatch> batch;
    {
      BlockingCall blocking;
      batch = Unwrap(loader_->Next());
    }
    if (!batch) throw nb::stop_iteration();
    return BatchDict(std::move(*batch));
  }
  std::vector<SkippedTuple> Skipped() const { return SkippedTuples(loader_->skipped()); }
  uint64_t Tokens() const { return loader_->tokens(); }

 private:
  ForkSafeOwner<datasets::PackedLoader> loader_;
};

// An index entry as read_index gives it and write_index takes it: (url, bytes, samples, version,
// sha256), the last two "" when unknown.
using IndexEntry = std::tuple<std::string, uint64_t, uint64_t, std::string, std::string>;

// A token shard's header as a tuple that pickles to DataLoader workers: (url, bytes, version,
// tokens, documents, tokenizer, offsets_at, tokens_at).
using TokenShardTuple =
    std::tuple<std::string, uint64_t, std::string, uint64_t, uint64_t, std::string, uint64_t, uint64_t>;

TokenShardTuple TupleOf(const datasets::TokenShardInfo& i) {
  return {i.url, i.bytes, i.version, i.tokens, i.documents, i.tokenizer, i.offsets_at, i.tokens_at};
}

datasets::TokenShardInfo InfoOf(const TokenShardTuple& t) {
  datasets::TokenShardInfo i;
  std::tie(i.url, i.bytes, i.version, i.tokens, i.documents, i.tokenizer, i.offsets_at,
           i.tokens_at) = t;
  return i;
}

// One (rank, worker)'s batches of packed rows of token shards (ferry.data.PackedDataset).
class PyTokenRowReader {
 public:
  PyTokenRowReader(const std::vector<TokenShardTuple>& shards, uint64_t seq_len,
                   uint64_t batch_size, int rank, int world_size, int worker, int num_workers,
                   uint32_t eod_id, uint64_t skip_batches) {
    std::vector<datasets::TokenShardInfo> infos;
    for (const TokenShardTuple& t : shards) infos.push_back(InfoOf(t));
    datasets::TokenRowSplit split{seq_len, batch_size, rank, world_size, worker, num_workers};
    batch_size_ = batch_size;
    reader_ = Unwrap(datasets::TokenRowReader::Open(std::move(infos), split, eod_id, skip_batches));
  }
  nb::dict Next() {
    std::optional<datasets::TokenBatch> batch;
    {
      BlockingCall blocking;
      batch = Unwrap(reader_->Next());
    }
    if (!batch) throw nb::stop_iteration();
    return BatchDict(std::move(*batch));
  }
  uint64_t BatchesPerRank() const { return reader_->plan().batches_per_rank; }
  uint64_t Batches() const { return reader_->plan().rows / batch_size_; }

 private:
  std::unique_ptr<datasets::TokenRowReader> reader_;
  uint64_t batch_size_ = 1;
};

// Packs documents given one at a time (ferry.data.pack_tokens): the C++ TokenPacker.
class PyTokenPacker {
 public:
  PyTokenPacker(uint64_t seq_len, uint32_t eod_id) : packer_(seq_len, eod_id) {
    if (seq_len < 1) ThrowIfError(InvalidArgument("seq_len must be >= 1, got 0"));
    if (eod_id >= (uint32_t{1} << 31)) ThrowIfError(InvalidArgument("eod_id must fit int32"));
  }
  // Rows are int32: an id of 2^31 or more would turn negative, so it is refused.
  void Add(nb::ndarray<const uint32_t, nb::ndim<1>, nb::c_contig, nb::device::cpu> document) {
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

// One epoch's plan, for ferry.data: how many samples each worker's plan holds (what a loader's
// progress and a resume are computed over).
class PyEpochPlan {
 public:
  explicit PyEpochPlan(datasets::EpochPlan plan) : plan_(std::move(plan)) {}
  uint64_t SamplesPerRank() const { return plan_.samples_per_rank; }
  std::vector<uint64_t> WorkerSamples(int rank) const {
    std::vector<uint64_t> out;
    for (const auto& plan : Workers(rank)) out.push_back(plan.samples);
    return out;
  }

 private:
  const std::vector<datasets::WorkerPlan>& Workers(int rank) const {
    if (rank < 0 || static_cast<size_t>(rank) >= plan_.plans.size()) {
      ThrowIfError(InvalidArgument("rank " + std::to_string(rank) + " is not in [0, " +
                                   std::to_string(plan_.plans.size()) + ")"));
    }
    return plan_.plans[static_cast<size_t>(rank)];
  }
  datasets::EpochPlan plan_;
};

// (url, bytes, samples, error or None, version); with keep_going a shard that cannot be read to
// its end has its error and the samples before it, else the first error (in url order) is raised.
std::vector<std::tuple<std::string, uint64_t, uint64_t, std::optional<std::string>, std::string>>
IndexShards(
    const std::vector<std::string>& urls, int threads, bool keep_going) {
  datasets::IndexOptions options;
  if (threads > 0) options.threads = threads;
  options.keep_going = keep_going;
  std::vector<datasets::ShardInfo> shards;
  {
    BlockingCall blocking;
    shards = Unwrap(datasets::IndexShards(urls, options));
  }
  std::vector<std::tuple<std::string, uint64_t, uint64_t, std::optional<std::string>, std::string>>
      out;
  for (const auto& s : shards) {
    out.emplace_back(s.url, s.bytes, s.samples,
                     s.error.ok() ? std::nullopt : std::optional(io::RedactUris(s.error.message())),
                     s.version);
  }
  return out;
}

}  // namespace

void RegisterDatasets(nb::module_& m) {
  nb::class_<PySampleReader>(m, "SampleReader")
      .def(nb::init<const std::string&>(), nb::arg("uri"))
      .def("__iter__", [](nb::handle self) { return self; })
      .def("__next__", &PySampleReader::Next);
  nb::class_<datasets::LoaderOptions>(m, "LoaderOptions")
      .def(
          "__init__",
          [](datasets::LoaderOptions* self, int readers, size_t queue_capacity,
             const std::string& on_error) {
            new (self) datasets::LoaderOptions();
            self->readers = readers;
            self->queue_capacity = queue_capacity;
            self->on_error = OnErrorOf(on_error);
          },
          nb::kw_only(), nb::arg("readers") = 0, nb::arg("queue_capacity") = 64,
          nb::arg("on_error") = "fail");
  nb::class_<PySampleLoader>(m, "SampleLoader")
      .def(nb::init<const std::vector<ShardTuple>&, const datasets::ReaderRequest&,
                    const datasets::LoaderOptions&>(),
           nb::arg("shards"), nb::arg("request"), nb::arg("options"))
      .def("__iter__", [](nb::handle self) { return self; })
      .def("__next__", &PySampleLoader::Next)
      .def("next_batch", &PySampleLoader::NextBatch, nb::arg("n"), nb::arg("allocate"))
      .def("skipped", &PySampleLoader::Skipped)
      .def("held_bytes_high_water", &PySampleLoader::HighWater)
      .def("yielded", &PySampleLoader::Yielded);
  nb::class_<PyPackedLoader>(m, "PackedLoader")
      .def(nb::init<const std::vector<ShardTuple>&, const datasets::ReaderRequest&,
                    const datasets::LoaderOptions&, nb::handle, const std::string&, uint64_t,
                    uint64_t, uint32_t, int>(),
           nb::arg("shards"), nb::arg("request"), nb::arg("options"), nb::kw_only(),
           nb::arg("tokenizer"), nb::arg("field"), nb::arg("seq_len"), nb::arg("batch_size"),
           nb::arg("eod_id"), nb::arg("threads"))
      .def("__iter__", [](nb::handle self) { return self; })
      .def("__next__", &PyPackedLoader::Next)
      .def("skipped", &PyPackedLoader::Skipped)
      .def("tokens", &PyPackedLoader::Tokens);
  m.def(
      "read_token_shard_info",
      [](const std::string& uri) {
        BlockingCall blocking;
        return TupleOf(Unwrap(datasets::ReadTokenShardInfo(uri)));
      },
      nb::arg("uri"));
  m.def(
      "write_token_shard",
      [](const std::string& uri, nb::ndarray<uint32_t, nb::ndim<1>, nb::c_contig, nb::device::cpu> tokens,
         nb::ndarray<uint64_t, nb::ndim<1>, nb::c_contig, nb::device::cpu> doc_offsets,
         const std::string& tokenizer) {
        std::span<const uint32_t> ids(tokens.data(), tokens.shape(0));
        std::span<const uint64_t> offsets(doc_offsets.data(), doc_offsets.shape(0));
        BlockingCall blocking;
        ThrowIfError(datasets::WriteTokenShard(uri, ids, offsets, tokenizer));
      },
      nb::arg("uri"), nb::arg("tokens"), nb::arg("doc_offsets"), nb::arg("tokenizer") = "");
  nb::class_<PyTokenRowReader>(m, "TokenRowReader")
      .def(nb::init<const std::vector<TokenShardTuple>&, uint64_t, uint64_t, int, int, int, int,
                    uint32_t, uint64_t>(),
           nb::arg("shards"), nb::kw_only(), nb::arg("seq_len"), nb::arg("batch_size"),
           nb::arg("rank"), nb::arg("world_size"), nb::arg("worker"), nb::arg("num_workers"),
           nb::arg("eod_id"), nb::arg("skip_batches") = 0)
      .def("__iter__", [](nb::handle self) { return self; })
      .def("__next__", &PyTokenRowReader::Next)
      .def_prop_ro("batches_per_rank", &PyTokenRowReader::BatchesPerRank)
      .def_prop_ro("batches", &PyTokenRowReader::Batches);
  nb::class_<PyTokenPacker>(m, "TokenPacker")
      .def(nb::init<uint64_t, uint32_t>(), nb::arg("seq_len"), nb::arg("eod_id"))
      .def("add", &PyTokenPacker::Add, nb::arg("document"))
      .def("rows", &PyTokenPacker::Rows);
  nb::class_<datasets::SplitOptions>(m, "SplitOptions")
      .def(
          "__init__",
          [](datasets::SplitOptions* self, uint64_t seed, uint64_t epoch, bool shuffle_shards,
             int world_size, int num_workers, uint64_t batch_size, const std::string& remainder,
             uint64_t resampled_samples) {
            new (self) datasets::SplitOptions{seed,        epoch,       shuffle_shards,
                                              world_size,  num_workers, batch_size,
                                              RemainderOf(remainder), resampled_samples};
          },
          nb::kw_only(), nb::arg("seed"), nb::arg("epoch"), nb::arg("shuffle_shards"),
          nb::arg("world_size"), nb::arg("num_workers"), nb::arg("batch_size"),
          nb::arg("remainder"), nb::arg("resampled_samples") = 0);
  nb::class_<datasets::ResumeSegment>(m, "ResumeSegment")
      .def(
          "__init__",
          [](datasets::ResumeSegment* self, const datasets::SplitOptions& options,
             size_t shuffle_buffer, std::vector<uint64_t> consumed, size_t next_worker) {
            new (self) datasets::ResumeSegment{options, shuffle_buffer,
                                               {std::move(consumed), next_worker}};
          },
          nb::kw_only(), nb::arg("options"), nb::arg("shuffle_buffer"), nb::arg("consumed"),
          nb::arg("next_worker"));
  nb::class_<datasets::ReaderRequest>(m, "ReaderRequest")
      .def(
          "__init__",
          [](datasets::ReaderRequest* self, const datasets::SplitOptions& split,
             std::vector<datasets::ResumeSegment> history, int rank, size_t plays,
             uint64_t skip_yielded, size_t shuffle_buffer) {
            new (self) datasets::ReaderRequest{split, std::move(history), rank, plays,
                                               skip_yielded, shuffle_buffer};
          },
          nb::kw_only(), nb::arg("split"), nb::arg("history"), nb::arg("rank"), nb::arg("plays"),
          nb::arg("skip_yielded"), nb::arg("shuffle_buffer"));
  nb::class_<PyEpochPlan>(m, "EpochPlan")
      .def_prop_ro("samples_per_rank", &PyEpochPlan::SamplesPerRank)
      .def("worker_samples", &PyEpochPlan::WorkerSamples, nb::arg("rank"));
  m.def(
      "plan_epoch",
      [](const std::vector<uint64_t>& counts, const datasets::SplitOptions& options,
         const std::vector<datasets::ResumeSegment>& history) {
        BlockingCall blocking;
        return PyEpochPlan(Unwrap(datasets::PlanEpochAfter(counts, history, options)));
      },
      nb::arg("counts"), nb::arg("options"), nb::arg("history"));
  m.def(
      "progress_after",
      [](const std::vector<uint64_t>& worker_samples, uint64_t turn, bool drop_last,
         uint64_t samples_seen, const std::string& items) {
        datasets::WorkerProgress p =
            Unwrap(datasets::ProgressAfter(worker_samples, {turn, drop_last, items}, samples_seen));
        return std::make_tuple(p.consumed, p.next_worker);
      },
      nb::arg("worker_samples"), nb::arg("turn"), nb::arg("drop_last"), nb::arg("samples_seen"),
      nb::arg("items") = "samples");
  m.def(
      "resume_worker",
      [](std::vector<uint64_t> consumed, size_t next_worker, size_t worker) {
        datasets::WorkerResume r = datasets::ResumeWorker({std::move(consumed), next_worker}, worker);
        return std::make_tuple(r.plays, r.skip);
      },
      nb::arg("consumed"), nb::arg("next_worker"), nb::arg("worker"));
  m.def(
      "expand_shards",
      [](const std::vector<std::string>& specs) {
        BlockingCall blocking;
        return Unwrap(datasets::ExpandShards(specs));
      },
      nb::arg("specs"));
  m.def("index_shards", &IndexShards, nb::arg("urls"), nb::arg("threads") = 0,
        nb::arg("keep_going") = false);
  m.def(
      "read_index",
      [](const std::string& uri) {
        std::vector<datasets::ShardInfo> shards;
        {
          BlockingCall blocking;
          shards = Unwrap(datasets::ReadIndex(uri));
        }
        std::vector<IndexEntry> out;
        for (const auto& s : shards) out.emplace_back(s.url, s.bytes, s.samples, s.version, s.sha256);
        return out;
      },
      nb::arg("uri"));
  m.def(
      "write_index",
      [](const std::string& uri, const std::vector<IndexEntry>& entries) {
        std::vector<datasets::ShardInfo> shards;
        for (const auto& [url, bytes, samples, version, sha256] : entries) {
          datasets::ShardInfo& shard = shards.emplace_back();
          shard.url = url;
          shard.bytes = bytes;
          shard.version = version;
          shard.samples = samples;
          shard.sha256 = sha256;
        }
        BlockingCall blocking;
        ThrowIfError(datasets::WriteIndex(uri, shards));
      },
      nb::arg("uri"), nb::arg("shards"));
}

}  // namespace ferry::python
