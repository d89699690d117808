// ferry._core's dataset half, for ferry.data: SampleReader (one shard's samples), PlanReader (one
// loader worker's samples of an epoch plan), plan_for and index_shards.

#include "ferry/datasets.h"

#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include "bindings/bindings.h"
#include "bindings/errors.h"
#include "datasets/plan_reader.h"
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

// The next sample of `reader` (SampleReader or PlanReader) as a dict; StopIteration at the end.
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

class PyPlanReader {
 public:
  PyPlanReader(std::vector<std::string> urls, const std::vector<Span>& spans, size_t shuffle_buffer,
               uint64_t shuffle_seed) {
    datasets::WorkerPlan plan;
    for (const auto& [shard, first, count] : spans) {
      plan.spans.push_back({shard, first, count});
      plan.samples += count;
    }
    datasets::PlanReaderOptions options;
    options.shuffle_buffer = shuffle_buffer;
    options.shuffle_seed = shuffle_seed;
    reader_ = std::make_unique<datasets::PlanReader>(std::move(urls), std::move(plan), options);
  }

  nb::dict Next() { return NextDict(*reader_); }

 private:
  std::unique_ptr<datasets::PlanReader> reader_;
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
  nb::class_<PyPlanReader>(m, "PlanReader")
      .def(nb::init<std::vector<std::string>, const std::vector<Span>&, size_t, uint64_t>(),
           nb::arg("urls"), nb::arg("spans"), nb::arg("shuffle_buffer"), nb::arg("shuffle_seed"))
      .def("__iter__", [](nb::handle self) { return self; })
      .def("__next__", &PyPlanReader::Next);
  m.def("plan_for", &PlanFor, nb::arg("counts"), nb::arg("rank"), nb::arg("worker"),
        nb::arg("seed"), nb::arg("epoch"), nb::arg("shuffle_shards"), nb::arg("world_size"),
        nb::arg("num_workers"), nb::arg("batch_size"), nb::arg("remainder"));
  m.def("plan_for_resumed", &PlanForResumed, nb::arg("counts"), nb::arg("rank"), nb::arg("worker"),
        nb::arg("seed"), nb::arg("epoch"), nb::arg("shuffle_shards"), nb::arg("world_size"),
        nb::arg("num_workers"), nb::arg("batch_size"), nb::arg("remainder"),
        nb::arg("old_world_size"), nb::arg("old_num_workers"), nb::arg("old_batch_size"),
        nb::arg("old_remainder"), nb::arg("old_shuffle_buffer"), nb::arg("samples_per_rank"));
  m.def("shuffle_seed", &datasets::ShuffleSeed);
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
