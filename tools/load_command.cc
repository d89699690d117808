// ferry load URI --mode M: loads every tensor of a safetensors file the way a program using ferry
// would, and reports how long it took and how much host memory it needed. A benchmark for people:
// the numbers cover opening, the header and every byte of data.

#include <sys/resource.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "base/json.h"
#include "ferry/io.h"
#include "ferry/tensors.h"
#include "tools/commands.h"
#include "tools/output.h"

namespace ferry::cli {
namespace {

struct LoadArgs {
  std::string uri;
  std::string mode = "eager";
  std::string device = "cpu";
  int parallelism = 0;
  size_t part_size = tensors::ReaderOptions().part_size;
  int staging_buffers = tensors::ReaderOptions().staging_buffers;
  size_t staging_buffer_size = tensors::ReaderOptions().staging_buffer_size;
  bool verify = false;
  bool json = false;
};

struct LoadReport {
  size_t tensors = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  double peak_rss_mib = 0;
  size_t checksums_verified = 0;
};

Status CheckDevice(const LoadArgs& args) {
  if (args.device == "cpu") return Status::Ok();
  if (args.device.starts_with("cuda")) {
    return Unsupported(args.uri + ": --device " + args.device +
                       ": the CLI does not load to CUDA yet (Python does: "
                       "ferry.torch.load_file(..., device='cuda:0')); use --device cpu");
  }
  return InvalidArgument(args.uri + ": --device '" + args.device +
                         "' is not a device; expected cpu");
}

// Where TouchPages' sums go, so the compiler must do the reads.
volatile uint64_t touched_sink = 0;

// Reads one byte per page so a mapping's pages are really faulted in: an mmap "load" that
// touches nothing measures nothing.
uint64_t TouchPages(std::span<const std::byte> bytes) {
  constexpr size_t kPage = 4096;
  uint64_t sum = 0;
  for (size_t i = 0; i < bytes.size(); i += kPage) sum += static_cast<uint8_t>(bytes[i]);
  if (!bytes.empty()) sum += static_cast<uint8_t>(bytes.back());
  return sum;
}

double PeakRssMib() {
  rusage usage{};
  if (::getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

std::string Fixed(double value, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

Result<LoadReport> Load(const LoadArgs& args, const tensors::ReaderOptions& options) {
  LoadReport report;
  auto start = std::chrono::steady_clock::now();
  FERRY_ASSIGN_OR_RETURN(auto reader, tensors::TensorReader::Open(args.uri, options));
  const tensors::Header& header = reader->header();
  ProgressLine progress("loading", header.data_size);
  uint64_t touched = 0;
  for (const tensors::TensorInfo& info : header.tensors) {
    FERRY_ASSIGN_OR_RETURN(tensors::Tensor tensor, reader->Get(info.name));
    // Eager, lazy and plaid tensors have been read into memory by now; mmap views have not.
    if (options.mode == tensors::Mode::kMmap) touched += TouchPages(tensor.data);
    report.tensors++;
    report.bytes += tensor.data.size();
    progress.Update(report.bytes);
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  progress.Clear();
  touched_sink = touched;
  if (options.verify_checksums) {
    // The reader checked every recorded checksum as it handed the tensors out.
    for (const tensors::TensorInfo& info : header.tensors) {
      report.checksums_verified += tensors::FindChecksum(header, info.name) != nullptr;
    }
  }
  report.peak_rss_mib = PeakRssMib();
  return report;
}

std::string ReportJson(const LoadArgs& args, const LoadReport& report, double gb_per_s) {
  std::string out = "{\"uri\":";
  AppendJsonString(out, io::RedactUri(args.uri));
  out += ",\"mode\":";
  AppendJsonString(out, args.mode);
  out += ",\"device\":";
  AppendJsonString(out, args.device);
  out += ",\"tensors\":" + std::to_string(report.tensors);
  out += ",\"bytes\":" + std::to_string(report.bytes);
  out += ",\"seconds\":" + Fixed(report.seconds, 6);
  out += ",\"gb_per_s\":" + Fixed(gb_per_s, 6);
  out += ",\"peak_rss_mib\":" + Fixed(report.peak_rss_mib, 1);
  out += std::string(",\"verify\":") + (args.verify ? "true" : "false");
  out += ",\"checksums_verified\":" + std::to_string(report.checksums_verified);
  out += "}\n";
  return out;
}

std::string ReportText(const LoadArgs& args, const LoadReport& report, double gb_per_s) {
  std::string out = Printable(io::RedactUri(args.uri)) + ": " + args.mode + " load to " + args.device + "\n";
  out += "  tensors      " + std::to_string(report.tensors) + "\n";
  out += "  bytes        " + std::to_string(report.bytes) + " (" + HumanBytes(report.bytes) + ")\n";
  out += "  seconds      " + Fixed(report.seconds, 3) + "\n";
  out += "  GB/s         " + Fixed(gb_per_s, 3) + "\n";
  out += "  peak memory  " + Fixed(report.peak_rss_mib, 1) + " MiB (max resident set)\n";
  if (args.verify) {
    out += "  checksums    " + std::to_string(report.checksums_verified) + " verified\n";
  }
  return out;
}

Status RunLoad(const LoadArgs& args) {
  FERRY_RETURN_IF_ERROR(CheckDevice(args));
  std::optional<tensors::Mode> mode = tensors::ModeFromName(args.mode);
  if (!mode) return InvalidArgument(args.uri + ": unknown --mode '" + args.mode + "'");
  tensors::ReaderOptions options;
  options.mode = *mode;
  options.parallelism = args.parallelism;
  options.part_size = args.part_size;
  options.staging_buffers = args.staging_buffers;
  options.staging_buffer_size = args.staging_buffer_size;
  options.verify_checksums = args.verify;
  FERRY_ASSIGN_OR_RETURN(LoadReport report, Load(args, options));

  double gb_per_s =
      report.seconds > 0 ? static_cast<double>(report.bytes) / 1e9 / report.seconds : 0;
  std::string out =
      args.json ? ReportJson(args, report, gb_per_s) : ReportText(args, report, gb_per_s);
  std::fwrite(out.data(), 1, out.size(), stdout);
  if (std::fflush(stdout) != 0) return ErrnoStatus(errno, "cannot write to stdout");
  return Status::Ok();
}

}  // namespace

void RegisterLoad(CLI::App& app, Status* result) {
  auto args = std::make_shared<LoadArgs>();
  CLI::App* cmd = app.add_subcommand(
      "load", "Load every tensor of a safetensors file and report time, GB/s and peak memory");
  cmd->add_option("uri", args->uri, "Path, file://, http:// or https:// URI")->required();
  cmd->add_option("--mode", args->mode,
                  "eager: all at once; lazy: each tensor when asked; plaid: streamed through "
                  "fixed staging buffers; mmap: views of a mapped local file")
      ->check(CLI::IsMember({"eager", "lazy", "plaid", "mmap"}))
      ->capture_default_str();
  cmd->add_option("--device", args->device, "Where the tensors go: cpu (cuda is not built yet)")
      ->capture_default_str();
  cmd->add_option("--parallelism", args->parallelism,
                  "Concurrent reads (default: 4 connections for URLs, one thread per core up to "
                  "8 for files)")
      ->check(CLI::Range(1, 256));
  cmd->add_option("--part-size", args->part_size, "Bytes per read request")
      ->check(CLI::Range(size_t{4096}, size_t{1} << 30))
      ->capture_default_str();
  cmd->add_option("--staging-buffers", args->staging_buffers, "Plaid staging buffers")
      ->check(CLI::Range(2, 64))
      ->capture_default_str();
  cmd->add_option("--staging-buffer-size", args->staging_buffer_size,
                  "Bytes per plaid staging buffer")
      ->check(CLI::Range(size_t{4096}, size_t{1} << 34))
      ->capture_default_str();
  cmd->add_flag("--verify", args->verify, "Check the XXH3-64 checksums ferry's writer records");
  cmd->add_flag("--json", args->json, "One JSON object instead of text");
  cmd->callback([args, result] { *result = RunLoad(*args); });
}

}  // namespace ferry::cli
