// AtomicFile: write a local file so that readers see either the old file or the whole new one.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "ferry/io.h"
#include "ferry/status.h"

namespace ferry::io {

// Bytes go to a hidden temporary file next to the destination (same file system, so the final
// rename is atomic). Commit() fsyncs it, renames it over the destination and fsyncs the
// directory. Destroying an uncommitted AtomicFile removes the temporary file, so an error or an
// exception never leaves a partial file under the final name. (A crash can leave the hidden
// temporary file behind, never a partial destination.)
class AtomicFile final : public Sink {
 public:
  static Result<std::unique_ptr<AtomicFile>> Create(std::string_view path);
  ~AtomicFile() override;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  Status Write(std::span<const std::byte> bytes) override;
  Status Commit() override;

 private:
  AtomicFile(std::string path, std::string temp_path, int fd)
      : path_(std::move(path)), temp_path_(std::move(temp_path)), fd_(fd) {}
  std::string path_;
  std::string temp_path_;
  int fd_;
  bool committed_ = false;
};

}  // namespace ferry::io
