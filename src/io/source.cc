// OpenSource (URI -> Source), CreateSink, ExpandUriPattern, ReadParallel and Stream: the parts
// of io that do not care which kind of source they work on.

#include <glob.h>

#include <algorithm>
#include <memory>

#include "ferry/io.h"
#include "io/atomic_file.h"
#include "io/file_source.h"
#include "io/http_source.h"
#include "io/s3.h"
#include "pipeline/parallel_for.h"
#include "pipeline/prefetcher.h"

namespace ferry::io {

Result<std::unique_ptr<Source>> OpenSource(std::string_view uri, const SourceOptions& options) {
  FERRY_ASSIGN_OR_RETURN(Uri parsed, ParseUri(uri));
  switch (parsed.scheme) {
    case Scheme::kFile:
      return OpenFileSource(std::string(uri), parsed.location);
    case Scheme::kHttp:
    case Scheme::kHttps:
      FERRY_RETURN_IF_ERROR(CheckHttpEnvironment());
      return OpenHttpSource(std::move(parsed.location), options.http);
    case Scheme::kS3:
      FERRY_RETURN_IF_ERROR(CheckHttpEnvironment());
      return s3::OpenS3Source(std::string(uri), parsed.location, options);
  }
  return Internal("unhandled URI scheme");
}

Result<std::unique_ptr<Sink>> CreateSink(std::string_view uri, const SourceOptions& options) {
  FERRY_ASSIGN_OR_RETURN(Uri parsed, ParseUri(uri));
  switch (parsed.scheme) {
    case Scheme::kFile: {
      FERRY_ASSIGN_OR_RETURN(auto file, AtomicFile::Create(parsed.location));
      return std::unique_ptr<Sink>(std::move(file));
    }
    case Scheme::kS3:
      return s3::CreateS3Sink(std::string(uri), parsed.location, options);
    case Scheme::kHttp:
    case Scheme::kHttps:
      break;
  }
  return Unsupported(std::string(uri) + ": ferry writes to local paths and s3:// URIs, not URLs");
}

Result<std::vector<std::string>> ExpandUriPattern(std::string_view pattern,
                                                  const SourceOptions& options) {
  FERRY_ASSIGN_OR_RETURN(Uri parsed, ParseUri(pattern));
  if (parsed.scheme == Scheme::kS3) return s3::ExpandS3Pattern(pattern, parsed.location, options);
  if (parsed.scheme != Scheme::kFile || parsed.location.find_first_of("*?[") == std::string::npos) {
    return std::vector<std::string>{std::string(pattern)};
  }
  glob_t matches{};
  int rc = ::glob(parsed.location.c_str(), GLOB_ERR, nullptr, &matches);
  std::vector<std::string> out(matches.gl_pathv, matches.gl_pathv + matches.gl_pathc);
  ::globfree(&matches);
  if (rc == GLOB_NOMATCH || (rc == 0 && out.empty())) {
    return NotFound(std::string(pattern) + ": no file matches");
  }
  if (rc != 0) return IoError(std::string(pattern) + ": cannot list the folder");
  return out;  // glob sorts
}

Status ReadParallel(Source& source, uint64_t offset, std::span<std::byte> dst,
                    const ParallelReadOptions& options) {
  if (options.part_size == 0) return InvalidArgument(source.uri() + ": part_size must be > 0");
  int parallelism = options.parallelism > 0 ? options.parallelism : source.default_parallelism();
  size_t parts = (dst.size() + options.part_size - 1) / options.part_size;
  if (parallelism <= 1 || parts <= 1 || !source.random_access()) return source.ReadAt(offset, dst);
  // Check the whole range once so a bad request fails as one error, not one per part.
  if (offset > source.size() || dst.size() > source.size() - offset)
    return source.ReadAt(offset, dst);
  return pipeline::ParallelFor(parts, parallelism, [&](size_t i) {
    size_t begin = i * options.part_size;
    size_t length = std::min(options.part_size, dst.size() - begin);
    return source.ReadAt(offset + begin, dst.subspan(begin, length));
  });
}

namespace {

struct Chunk {
  std::unique_ptr<std::byte[]> data;  // allocated once, reused for every chunk the slot holds
  size_t size = 0;
};

class PrefetchingStream final : public Stream {
 public:
  PrefetchingStream(Source* source, uint64_t offset, uint64_t length, const StreamOptions& options)
      : prefetcher_(std::vector<Chunk>(static_cast<size_t>(options.read_ahead) + 1),
                    (length + options.chunk_size - 1) / options.chunk_size,
                    [=](size_t index, Chunk& chunk) {
                      uint64_t begin = static_cast<uint64_t>(index) * options.chunk_size;
                      chunk.size = static_cast<size_t>(
                          std::min<uint64_t>(options.chunk_size, length - begin));
                      if (!chunk.data) chunk.data.reset(new std::byte[options.chunk_size]);
                      return ReadParallel(*source, offset + begin, {chunk.data.get(), chunk.size},
                                          options.parallel);
                    }) {}

  Result<std::span<const std::byte>> Next() override {
    FERRY_ASSIGN_OR_RETURN(Chunk * chunk, prefetcher_.Next());
    if (chunk == nullptr) return std::span<const std::byte>();
    return std::span<const std::byte>(chunk->data.get(), chunk->size);
  }

 private:
  pipeline::Prefetcher<Chunk> prefetcher_;
};

}  // namespace

Result<std::unique_ptr<Stream>> Stream::Open(Source* source, uint64_t offset, uint64_t length,
                                             const StreamOptions& options) {
  if (offset > source->size() || length > source->size() - offset) {
    return OutOfRange(source->uri() + ": range of " + std::to_string(length) + " bytes at offset " +
                      std::to_string(offset) + " is past the end (size " +
                      std::to_string(source->size()) + ")");
  }
  if (options.chunk_size == 0 || options.read_ahead < 1) {
    return InvalidArgument(source->uri() + ": stream needs chunk_size > 0 and read_ahead >= 1");
  }
  // One connection reads the chunks in order: let the source serve them from one transfer.
  const int parallelism = options.parallel.parallelism > 0 ? options.parallel.parallelism
                                                            : source->default_parallelism();
  if (parallelism <= 1) source->ExpectSequential(offset, length);
  return std::unique_ptr<Stream>(new PrefetchingStream(source, offset, length, options));
}

Result<std::string> ReadSmallObject(std::string_view uri, uint64_t max_bytes,
                                    const SourceOptions& options) {
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Source> source, OpenSource(uri, options));
  if (source->size() > max_bytes) {
    return Corruption(std::string(uri) + ": " + std::to_string(source->size()) +
                      " bytes, more than the " + std::to_string(max_bytes) +
                      " this kind of file may have");
  }
  std::string text(source->size(), '\0');
  FERRY_RETURN_IF_ERROR(source->ReadAt(0, std::as_writable_bytes(std::span(text))));
  return text;
}

}  // namespace ferry::io
