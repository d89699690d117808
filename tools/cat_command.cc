// ferry cat URI [--offset N] [--length N]: the bytes of any source to stdout.

#include <unistd.h>

#include <cerrno>
#include <memory>
#include <optional>

#include "ferry/io.h"
#include "tools/commands.h"

namespace ferry::cli {
namespace {

// Bytes handed to stdout at once when one connection streams: a few of these stay in cache.
constexpr size_t kSequentialChunk = size_t{1} << 20;

struct CatArgs {
  std::string uri;
  uint64_t offset = 0;
  std::optional<uint64_t> length;
  int connections = 0;
  size_t part_size = 8u << 20;
};

Status WriteAll(int fd, std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "cannot write to stdout");
    }
    bytes = bytes.subspan(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status RunCat(const CatArgs& args) {
  FERRY_ASSIGN_OR_RETURN(auto source, io::OpenSource(args.uri));
  uint64_t size = source->size();
  if (args.offset > size) {
    return OutOfRange(args.uri + ": --offset " + std::to_string(args.offset) +
                      " is past the end (size " + std::to_string(size) + ")");
  }
  uint64_t length = args.length.value_or(size - args.offset);
  io::StreamOptions options;
  options.parallel.parallelism = args.connections;
  options.parallel.part_size = args.part_size;
  // One chunk feeds every connection at once; two more are read while stdout drains one. On
  // one connection the chunks come from one transfer (Source::ExpectSequential), so they can
  // be small enough to stay in cache between the socket and stdout.
  int parallelism = args.connections > 0 ? args.connections : source->default_parallelism();
  options.chunk_size = parallelism == 1 ? std::min<size_t>(args.part_size, kSequentialChunk)
                                        : args.part_size * static_cast<size_t>(parallelism);
  FERRY_ASSIGN_OR_RETURN(auto stream, io::Stream::Open(source.get(), args.offset, length, options));
  while (true) {
    FERRY_ASSIGN_OR_RETURN(auto chunk, stream->Next());
    if (chunk.empty()) return Status::Ok();
    FERRY_RETURN_IF_ERROR(WriteAll(STDOUT_FILENO, chunk));
  }
}

}  // namespace

void RegisterCat(CLI::App& app, Status* result) {
  auto args = std::make_shared<CatArgs>();
  CLI::App* cmd = app.add_subcommand("cat", "Write the bytes of a file or URL to stdout");
  cmd->add_option("uri", args->uri, "Path, file://, http:// or https:// URI")->required();
  cmd->add_option("--offset", args->offset, "First byte to write")->check(CLI::NonNegativeNumber);
  cmd->add_option("--length", args->length, "Number of bytes to write (default: to the end)");
  cmd->add_option("--connections", args->connections,
                  "Concurrent range requests (default: 4 for URLs, 1 for files)")
      ->check(CLI::Range(1, 256));
  cmd->add_option("--part-size", args->part_size, "Bytes per range request")
      ->check(CLI::Range(size_t{4096}, size_t{1} << 30));
  cmd->callback([args, result] { *result = RunCat(*args); });
}

}  // namespace ferry::cli
