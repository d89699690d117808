// ferry verify URI: checks a safetensors file end to end: the header rule for rule as the
// reference reader does, then every byte of every tensor against the XXH3-64 checksums ferry's
// writer records. The data streams once through fixed staging buffers (TensorStream), so a file
// far larger than memory verifies too, and each tensor is hashed incrementally across chunks.

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "ferry/io.h"
#include "ferry/tensors.h"
#include "tools/commands.h"
#include "tools/output.h"

namespace ferry::cli {
namespace {

struct VerifyArgs {
  std::string uri;
  size_t staging_buffer_size = tensors::ReaderOptions().staging_buffer_size;
};

// Mismatches are printed as they are found and the stream goes on, so one run names every bad
// tensor; the returned Status then sums them up.
class ChecksumChecker {
 public:
  ChecksumChecker(std::string uri, const tensors::Header& header)
      : uri_(std::move(uri)), header_(header), expected_(header.tensors.size()) {
    for (size_t i = 0; i < header.tensors.size(); ++i) {
      expected_[i] = tensors::FindChecksum(header, header.tensors[i].name);
      recorded_ += expected_[i] != nullptr;
    }
    XXH3_64bits_reset(&state_);
  }

  size_t recorded() const { return recorded_; }

  // Feeds a chunk; chunks arrive in file order and cover each tensor front to back.
  Status Add(const tensors::TensorChunk& chunk) {
    if (chunk.tensor < next_) return OutOfOrder(chunk.tensor);
    FERRY_RETURN_IF_ERROR(FinishBefore(chunk.tensor));
    if (chunk.offset_in_tensor != seen_) return OutOfOrder(chunk.tensor);
    // Tensors without a recorded checksum are only read: there is nothing to compare a hash to.
    if (expected_[next_] != nullptr) {
      XXH3_64bits_update(&state_, chunk.bytes.data(), chunk.bytes.size());
    }
    seen_ += chunk.bytes.size();
    return Status::Ok();
  }

  // After the last chunk: completes the remaining tensors and sums up the mismatches.
  Status Finish() {
    FERRY_RETURN_IF_ERROR(FinishBefore(header_.tensors.size()));
    if (failed_.empty()) return Status::Ok();
    std::string names;
    constexpr size_t kNamesShown = 8;
    for (size_t i = 0; i < failed_.size() && i < kNamesShown; ++i) {
      names += (i > 0 ? ", '" : "'") + failed_[i] + "'";
    }
    if (failed_.size() > kNamesShown) names += ", ...";
    return Corruption(uri_ + ": " + std::to_string(failed_.size()) + " of " +
                      std::to_string(recorded_) + " recorded checksums do not match (" + names +
                      ")");
  }

 private:
  // Completes the tensors before `end`. Empty tensors produce no chunk, so they are completed
  // here too, as the hash of no bytes.
  Status FinishBefore(size_t end) {
    for (; next_ < end; ++next_) {
      const tensors::TensorInfo& info = header_.tensors[next_];
      if (seen_ != info.nbytes()) {
        return Internal(uri_ + ": tensor '" + info.name + "': the stream delivered " +
                        std::to_string(seen_) + " of its " + std::to_string(info.nbytes()) +
                        " bytes");
      }
      seen_ = 0;
      if (expected_[next_] == nullptr) continue;
      std::string actual = tensors::FormatChecksum(XXH3_64bits_digest(&state_));
      XXH3_64bits_reset(&state_);
      if (actual == *expected_[next_]) continue;
      Status mismatch =
          Corruption(uri_ + ": tensor '" + info.name + "': checksum mismatch (XXH3-64 recorded " +
                     *expected_[next_] + ", data has " + actual + ")");
      std::fprintf(stderr, "ferry: %s\n", io::RedactUris(mismatch.ToString()).c_str());
      failed_.push_back(info.name);
    }
    return Status::Ok();
  }

  Status OutOfOrder(size_t tensor) const {
    return Internal(uri_ + ": tensor stream out of order at tensor '" +
                    header_.tensors[tensor].name + "'");
  }

  std::string uri_;
  const tensors::Header& header_;
  std::vector<const std::string*> expected_;  // by tensor index; null: none recorded
  size_t recorded_ = 0;
  size_t next_ = 0;    // the tensor being hashed; those before it are complete
  uint64_t seen_ = 0;  // its bytes seen so far
  XXH3_state_t state_{};
  std::vector<std::string> failed_;
};

Status RunVerify(const VerifyArgs& args) {
  FERRY_ASSIGN_OR_RETURN(auto source, io::OpenSource(args.uri));
  const std::string& uri = source->uri();
  FERRY_ASSIGN_OR_RETURN(tensors::Header header, tensors::ReadHeader(*source));

  // A checksum whose tensor is gone means the file was edited by a tool that kept the metadata;
  // worth saying, but the tensors that are there can still be right.
  for (const auto& [key, value] : header.metadata) {
    if (!key.starts_with(tensors::kChecksumKeyPrefix)) continue;
    std::string_view name = std::string_view(key).substr(tensors::kChecksumKeyPrefix.size());
    if (header.Find(name) == nullptr) {
      std::fprintf(stderr,
                   "ferry: warning: %s: checksum recorded for tensor '%s', which the file "
                   "does not hold\n",
                   io::RedactUri(uri).c_str(), Printable(name).c_str());
    }
  }

  ChecksumChecker checker(uri, header);
  tensors::ReaderOptions options;
  options.staging_buffer_size = args.staging_buffer_size;
  FERRY_ASSIGN_OR_RETURN(auto stream, tensors::TensorStream::Open(source.get(), &header, options));
  ProgressLine progress("verifying", header.data_size);
  uint64_t done = 0;
  while (true) {
    FERRY_ASSIGN_OR_RETURN(std::optional<tensors::TensorChunk> chunk, stream->Next());
    if (!chunk) break;
    FERRY_RETURN_IF_ERROR(checker.Add(*chunk));
    done += chunk->bytes.size();
    progress.Update(done);
  }
  progress.Clear();
  FERRY_RETURN_IF_ERROR(checker.Finish());

  size_t tensor_count = header.tensors.size();
  std::string checked;
  if (checker.recorded() == 0) {
    checked = "no checksums recorded (structure only)";
  } else {
    checked = Counted(checker.recorded(), "checksum") + " verified";
    if (checker.recorded() < tensor_count) {
      checked += " (" + Counted(tensor_count - checker.recorded(), "tensor") + " without one)";
    }
  }
  std::printf("%s: OK, %s, %s; %s\n", Printable(io::RedactUri(uri)).c_str(),
              Counted(tensor_count, "tensor").c_str(), Counted(header.data_size, "byte").c_str(),
              checked.c_str());
  return Status::Ok();
}

}  // namespace

void RegisterVerify(CLI::App& app, Status* result) {
  auto args = std::make_shared<VerifyArgs>();
  CLI::App* cmd = app.add_subcommand(
      "verify", "Check a safetensors file: its header, and every tensor against its checksum");
  cmd->add_option("uri", args->uri, "Path, file://, http:// or https:// URI")->required();
  cmd->add_option("--staging-buffer-size", args->staging_buffer_size,
                  "Bytes per staging buffer (memory used: two of them, whatever the file size)")
      ->check(CLI::Range(size_t{4096}, size_t{1} << 34))
      ->capture_default_str();
  cmd->callback([args, result] { *result = RunVerify(*args); });
}

}  // namespace ferry::cli
