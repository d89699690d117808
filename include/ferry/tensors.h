// ferry tensors: safetensors files, read and written exactly as the reference library does.
//
//   FERRY_ASSIGN_OR_RETURN(auto reader, ferry::tensors::TensorReader::Open("model.safetensors",
//                                                                          {.mode =
//                                                                          Mode::kEager}));
//   FERRY_ASSIGN_OR_RETURN(ferry::tensors::Tensor t, reader->Get("lm_head.weight"));
//
// The on-disk format is plain safetensors (8-byte little-endian header length, UTF-8 JSON header,
// data buffer), validated rule for rule like the reference reader; see ParseHeader. A reader
// serves one of four modes (see Mode); a writer (WriteSafetensors) pads the header so the data
// starts on a page boundary and replaces the destination atomically.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ferry/io.h"
#include "ferry/status.h"

namespace ferry::tensors {

// ---------------------------------------------------------------------------------------------
// Element types

enum class DType : uint8_t {
  kBool,
  kU8,
  kI8,
  kF8_E5M2,
  kF8_E4M3,
  kF8_E8M0,
  kF8_E4M3FNUZ,
  kF8_E5M2FNUZ,
  kF4,
  kF6_E2M3,
  kF6_E3M2,
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kC64,
  kF64,
  kI64,
  kU64,
};

// The safetensors name, e.g. "BF16".
std::string_view DTypeName(DType dtype);
// Bits per element: 4 for F4, 6 for the F6 types, 8..64 for the others.
int DTypeBits(DType dtype);
// The reference writer lays tensors out by this rank, highest first (then by name): U64, I64,
// F64, C64, F32, U32, I32, BF16, ... U8, F6_*, F4, BOOL. A wider type ranks higher (F4 and F6
// above BOOL, but they fill whole bytes), so each tensor starts on a multiple of its element size.
int DTypeWriteOrder(DType dtype);
std::optional<DType> DTypeFromName(std::string_view name);

// ---------------------------------------------------------------------------------------------
// Header

struct TensorInfo {
  std::string name;
  DType dtype = DType::kU8;
  std::vector<uint64_t> shape;  // empty: a 0-d scalar
  uint64_t begin = 0;           // byte offsets relative to the start of the data buffer
  uint64_t end = 0;             // one past the last byte
  uint64_t nbytes() const { return end - begin; }
};

struct Header {
  uint64_t header_size = 0;  // N, the JSON length including padding
  uint64_t data_offset() const { return 8 + header_size; }
  uint64_t data_size = 0;  // bytes in the data buffer (the last tensor's end)
  // In file order (sorted by begin); a header may list them in any order.
  std::vector<TensorInfo> tensors;
  // `__metadata__`, sorted by key. Absent, `{}` and `null` all give an empty list.
  std::vector<std::pair<std::string, std::string>> metadata;
  // Name -> index into `tensors`.
  std::unordered_map<std::string, size_t> index;

  const TensorInfo* Find(std::string_view name) const;
  const std::string* FindMetadata(std::string_view key) const;
};

// Largest header the reference reader accepts.
inline constexpr uint64_t kMaxHeaderSize = 100'000'000;

// Validates `json` (the N header bytes) of a file of `file_size` bytes, as the reference reader
// does: UTF-8 JSON object; known dtypes; shape x bits without overflow and in whole bytes;
// data_offsets that, sorted, start at 0 and follow each other without gap or overlap; each
// span equal to its shape's size; the last end exactly at the end of the file; `__metadata__`
// absent, null or string -> string. Also rejects duplicate tensor names. Errors are kCorruption
// and name `uri`, the tensor and what was expected.
Result<Header> ParseHeader(std::string_view uri, std::string_view json, uint64_t file_size);

// Checks the 8-byte little-endian header length at the start of a file of `file_size` bytes
// (`prefix`: its first min(8, file_size) bytes): at most kMaxHeaderSize and inside the file.
Result<uint64_t> ParseHeaderLength(std::string_view uri, std::span<const std::byte> prefix,
                                   uint64_t file_size);

// Reads and validates the header of a safetensors source: two reads (length, then JSON).
Result<Header> ReadHeader(io::Source& source);

// ---------------------------------------------------------------------------------------------
// Checksums

// Per-tensor checksums live in `__metadata__` under "ferry.xxh3_64/<tensor name>" as 16 lower-case
// hex digits of XXH3-64 over the tensor's bytes, so the file stays valid for every other reader.
inline constexpr std::string_view kChecksumKeyPrefix = "ferry.xxh3_64/";
std::string ChecksumHex(std::span<const std::byte> bytes);
// An XXH3-64 value in the recorded form, for callers that hash incrementally (`ferry verify`
// streams tensors larger than memory). ChecksumHex formats through it, so the two always agree.
std::string FormatChecksum(uint64_t xxh3_64);
// The checksum recorded for `name`, if any.
const std::string* FindChecksum(const Header& header, std::string_view name);
// OK when no checksum is recorded for the tensor or it matches; kCorruption naming the file, the
// tensor and both values otherwise.
Status VerifyChecksum(std::string_view uri, const Header& header, const TensorInfo& info,
                      std::span<const std::byte> bytes);

// ---------------------------------------------------------------------------------------------
// Writing

struct TensorToWrite {
  std::string name;
  DType dtype = DType::kU8;
  std::vector<uint64_t> shape;
  std::span<const std::byte> data;  // row-major, little-endian, exactly the shape's size
};

struct WriteOptions {
  bool checksums = true;           // record per-tensor XXH3-64 checksums in __metadata__
  uint64_t data_alignment = 4096;  // pad the header so the data buffer starts at a multiple
};

// What a safetensors file holds in order: `prefix` (the 8-byte header length, the JSON header
// and its padding), then the bytes of each tensor of `order`. Tensors are laid out as the
// reference writer lays them out: by DTypeWriteOrder, highest first, then by name; with
// checksums off and 8-byte alignment the file is byte for byte what the reference writes, when
// `metadata` has at most one key (ferry sorts the keys; the reference writes them in hash order,
// which changes from run to run). `__metadata__` is written when `metadata` is not empty.
struct SafetensorsLayout {
  std::string prefix;
  std::vector<const TensorToWrite*> order;  // pointers into the caller's tensors
  uint64_t size() const;                    // of the whole file
};

// The layout of `tensors`; kInvalidArgument naming `where`, the tensor or key and the problem
// for a bad name (reserved, duplicate, not UTF-8), shape, size or metadata, or a header over
// kMaxHeaderSize. Metadata keys starting with "ferry." are reserved for ferry.
Result<SafetensorsLayout> LayOutSafetensors(
    std::string_view where, std::span<const TensorToWrite> tensors,
    std::span<const std::pair<std::string, std::string>> metadata, const WriteOptions& options);

// Writes a safetensors file to `path` (a local path or s3://bucket/key) atomically: the bytes go
// to a temporary file in the same directory, fsynced and renamed over `path` (or to an S3 upload
// completed only at the end); on any error nothing appears and `path` is untouched. The layout
// is LayOutSafetensors'.
Status WriteSafetensors(std::string_view path, std::span<const TensorToWrite> tensors,
                        std::span<const std::pair<std::string, std::string>> metadata = {},
                        const WriteOptions& options = {});

// ---------------------------------------------------------------------------------------------
// Slices

// The elements start, start + step, ... (`count` of them) along one dimension. REQUIRES step >= 1.
struct DimSlice {
  uint64_t start = 0;
  uint64_t count = 0;
  uint64_t step = 1;
};

// One read of a slice: bytes [begin, end) of the tensor, landing at `dst_offset` of the slice.
// It holds runs [first_run, first_run + runs), or a piece of one long run (runs == 1). When
// they fill it (one run or piece, or runs without gaps) it can go straight into the
// destination; otherwise the caller reads the span and copies the runs out of it.
struct SliceRead {
  uint64_t begin = 0;
  uint64_t end = 0;
  uint64_t dst_offset = 0;
  uint64_t first_run = 0;
  uint64_t runs = 0;
  bool gapless(uint64_t run_bytes) const { return runs == 1 || end - begin == runs * run_bytes; }
};

// Where the bytes of a slice lie in its tensor (row-major): run_count() runs of run_bytes()
// contiguous bytes each, at increasing offsets, which concatenated are the slice in C order.
// Dimensions taken whole from the innermost outwards, and then the first one taken with step 1,
// fold into one run: `w[a:b]` of any tensor is a single run, `w[:, a:b]` of a matrix one run
// per row.
class SlicePlan {
 public:
  // `dims`: one entry per dimension of `info`. kOutOfRange naming `uri`, the tensor and the
  // dimension when there are more or fewer, or one reaches past its dimension; kUnsupported
  // for a slice of a sub-byte dtype (F4, F6) whose runs do not start and end on whole bytes.
  static Result<SlicePlan> Make(std::string_view uri, const TensorInfo& info,
                                std::span<const DimSlice> dims);

  uint64_t nbytes() const { return run_count_ * run_bytes_; }
  uint64_t run_count() const { return run_count_; }
  uint64_t run_bytes() const { return run_bytes_; }
  // Offset in the tensor of run `index` (< run_count()).
  uint64_t RunOffset(uint64_t index) const;

  // Calls `visit` for each read, in order, that covers the runs: neighbouring runs whose gap is
  // at most `max_gap` bytes share one read, no read spans more than `max_span` bytes (a run
  // longer than that is split), and a run is never shared between reads unless split. Stops at
  // and returns the first error `visit` returns.
  Status ForEachRead(uint64_t max_gap, uint64_t max_span,
                     const std::function<Status(const SliceRead&)>& visit) const;

  // Copies the slice out of the whole tensor's bytes `tensor` (already in memory) into `dst`
  // (nbytes()), run by run, touching no other bytes of `tensor`.
  void Gather(std::span<const std::byte> tensor, std::span<std::byte> dst) const;

 private:
  struct Outer {  // a dimension outside the run: `count` positions `stride` bytes apart
    uint64_t count;
    uint64_t stride;
  };
  uint64_t base_ = 0;  // offset of run 0
  uint64_t run_bytes_ = 0;
  uint64_t run_count_ = 0;
  std::vector<Outer> outer_;  // outermost first
};

// ---------------------------------------------------------------------------------------------
// Reading

enum class Mode {
  // Every tensor read in the constructor, in parallel, into one allocation. Tensors stay valid
  // for as long as anyone holds them.
  kEager,
  // Each tensor read on first access, then cached. Tensors stay valid forever.
  kLazy,
  // Tensors streamed in file order through `staging_buffers` fixed-size buffers. A tensor is a
  // view valid until the next Get(); asking again for one already passed is kEvicted. See
  // "IMPORTANT: lifetime" below (Tensor).
  kPlaid,
  // Zero-copy views of a private mapping of a local file; pages are read on first touch. A file
  // truncated under it can crash the process: see "IMPORTANT: lifetime" below (Tensor).
  kMmap,
};
std::string_view ModeName(Mode mode);
std::optional<Mode> ModeFromName(std::string_view name);

struct ReaderOptions {
  Mode mode = Mode::kEager;
  // Concurrent reads (threads for files, connections for HTTP); 0 = the source's default.
  int parallelism = 0;
  size_t part_size = 8u << 20;  // bytes per read request
  // Plaid staging: memory is staging_buffers x staging_buffer_size, whatever the tensor sizes.
  int staging_buffers = 2;
  size_t staging_buffer_size = 64u << 20;
  // Check the checksums recorded by the writer as tensors are read. A checksum covers a whole
  // tensor, so with this set a slice is cut from the whole tensor, read and checked.
  bool verify_checksums = false;
  // Slices: unwanted bytes one read may span between two wanted runs rather than split into two
  // requests; 0 = 4 KiB for local files (the page the kernel reads anyway), 256 KiB for HTTP and
  // S3 (a request's round trip costs more than that much transfer on most links).
  uint64_t slice_max_gap = 0;
  io::SourceOptions source;
};

// A tensor handed out by a reader. `owner` keeps the bytes alive (never freed while it lives);
// whether they stay the tensor's bytes depends on the mode, below.
//
// =============================================================================================
// IMPORTANT: lifetime. What `data` holds while `owner` lives depends on the mode:
// =============================================================================================
//   eager, lazy  memory of ferry's own: valid and unchanged for as long as it is held.
//   plaid        a staging buffer (or, for a tensor larger than one, a buffer of its own): valid
//                only until the reader's next Get() or ReadInto(), from any thread, which may
//                overwrite it with the next tensor's bytes. Copy what you keep. Asking again for
//                a tensor already passed is kEvicted, never stale bytes. ReadSlice() copies
//                and never overwrites a view.
//   mmap         the file's own pages, read on touch. If the file is truncated (or rewritten in
//                place) while a view lives, touching a page past the new end raises SIGBUS,
//                which kills the process, as with safetensors' mmap. Get() re-checks the size
//                (fstat) and returns kSourceChanged naming both sizes when the file changed
//                since it was mapped, but nothing can protect a view already handed out, or a
//                truncation after the check. Replace a file by renaming a new one over it (as
//                WriteSafetensors does): mapped readers then keep the old file, safely. Writes
//                through a view go to this process's private copy of the page, never the file.
// =============================================================================================
struct Tensor {
  TensorInfo info;  // a copy: a tensor may outlive its reader
  std::span<std::byte> data;
  std::shared_ptr<void> owner;
};

// Thread safety: uri(), header() and mode() never change after Open, and every method may be
// called from several threads at once, with these rules per mode:
//   eager, mmap  Get, ReadInto and ReadSlice only read shared state (mmap: one fstat per Get),
//                so any number run in parallel.
//   lazy         one mutex guards the cache, held only to look up or store a tensor; the reads
//                run outside it, so different tensors load in parallel. Two threads that ask for
//                the same uncached tensor both read it and both get the copy that was cached
//                first.
//   plaid        one mutex serialises Get and ReadInto, since there is one stream and one
//                current tensor; safe, but a view from one thread is overwritten by any other
//                thread's next Get (see "IMPORTANT: lifetime" above), so share a plaid reader
//                between threads only to copy tensors out under your own ordering. ReadSlice
//                takes no lock and runs alongside them.
// ReadInto and ReadSlice may use up to `parallelism` threads of their own for one call.
// Destroying a reader while another thread is inside one of its methods is undefined; tensors
// already handed out stay valid per their mode, since `owner` holds their memory.
class TensorReader {
 public:
  static Result<std::unique_ptr<TensorReader>> Open(std::string_view uri,
                                                    const ReaderOptions& options = {});
  virtual ~TensorReader() = default;

  const std::string& uri() const { return uri_; }
  const Header& header() const { return header_; }
  Mode mode() const { return mode_; }

  // The tensor called `name`: kNotFound when the file has no such tensor; in plaid mode
  // kEvicted when it was handed out before and a later tensor has replaced it; in mmap mode
  // kSourceChanged when the file's size differs from its size when mapped.
  virtual Result<Tensor> Get(std::string_view name) = 0;

  // Copies the tensor's bytes into `dst` (exactly its size), e.g. a destination the caller
  // already owns such as a module's parameter. Lazy and plaid modes read straight into `dst`
  // (no cache, no staging), so no tensor-sized memory is needed beyond it; in plaid mode the
  // tensor then counts as handed out. Errors as Get().
  virtual Status ReadInto(std::string_view name, std::span<std::byte> dst);

  // Copies the slice `dims` of tensor `name` (see SlicePlan) into `dst`, exactly the slice's
  // size, in C order. Eager mode copies it out of memory. Lazy (for a tensor not cached), plaid
  // and mmap modes read only the slice's bytes from the source (mmap: from the file, not the
  // mapping, so no mapped page is touched), coalesced per SlicePlan::ForEachRead into reads of
  // at most `part_size` bytes, `parallelism` at a time, gapless ones straight into `dst`: memory
  // beyond `dst` is at most parallelism x part_size. A slice neither caches its tensor nor moves
  // plaid's stream (no tensor is evicted or handed out). Errors as Get() and SlicePlan::Make.
  virtual Status ReadSlice(std::string_view name, std::span<const DimSlice> dims,
                           std::span<std::byte> dst);

  // Copies bytes [begin, begin + dst.size()) of the data buffer (offsets as in TensorInfo) into
  // `dst`, whatever tensors they cut: the planner's primitive for loads that split a file by
  // bytes (a torch.distributed group load gives each rank one range). Eager mode copies from
  // memory; lazy, plaid and mmap read the range from the source in reads of at most
  // `part_size`, `parallelism` at a time, straight into `dst` (no cache, no staging, plaid's
  // stream untouched; mmap touches no mapped page). kOutOfRange naming the file when the range
  // reaches past the data buffer; kUnsupported from an HTTP server that ignores Range requests.
  // With verify_checksums, each tensor inside the range is checked, and a range that cuts a
  // tensor with a recorded checksum is kInvalidArgument (its checksum covers bytes not read).
  virtual Status ReadRange(uint64_t begin, std::span<std::byte> dst);

 protected:
  TensorReader(std::string uri, Header header, Mode mode)
      : uri_(std::move(uri)), header_(std::move(header)), mode_(mode) {}
  Status NotFoundError(std::string_view name) const;
  // kInvalidArgument unless `dst` is exactly the size of `info`.
  Status CheckDestination(const TensorInfo& info, std::span<std::byte> dst) const;
  // ReadSlice from `source` (this reader's file or URL), as the modes that read slices from
  // their source do.
  Status ReadSliceFromSource(io::Source& source, const ReaderOptions& options,
                             std::string_view name, std::span<const DimSlice> dims,
                             std::span<std::byte> dst) const;
  // ReadRange from `source`, as the modes that read ranges from their source do.
  Status ReadRangeFromSource(io::Source& source, const ReaderOptions& options, uint64_t begin,
                             std::span<std::byte> dst) const;
  // kOutOfRange unless [begin, begin + size) lies inside the data buffer.
  Status CheckRange(uint64_t begin, uint64_t size) const;

 private:
  std::string uri_;
  Header header_;
  Mode mode_;
};

// ---------------------------------------------------------------------------------------------
// Streaming through fixed staging buffers (the engine of plaid mode)

// One contiguous piece of one tensor, in a staging buffer.
struct TensorChunk {
  size_t tensor = 0;              // index into header.tensors
  uint64_t offset_in_tensor = 0;  // where `bytes` starts inside the tensor
  std::span<std::byte> bytes;
  // The last chunk in its staging buffer: the next Next() hands the buffer back for refilling,
  // so anything still reading it (an asynchronous device copy) must finish first.
  bool last_in_buffer = false;
};

// Streams tensors [first_tensor, end) of a header in file order through
// `options.staging_buffers` (at least 2) buffers of `options.staging_buffer_size` bytes, filled
// ahead of the consumer by a background thread. Neighbouring small tensors share one read; a
// tensor that fits in a buffer is never split; a larger one arrives in buffer-sized chunks;
// empty tensors produce no chunk. A buffer is refilled only after the consumer has moved on to
// the next one, so a plain copy out of a chunk (or a CUDA copy synchronised before the next
// call) is always complete before its bytes are overwritten.
class TensorStream {
 public:
  // REQUIRES: `source` and `header` outlive the stream.
  static Result<std::unique_ptr<TensorStream>> Open(io::Source* source, const Header* header,
                                                    const ReaderOptions& options,
                                                    size_t first_tensor = 0);
  // kInvalidArgument unless there are at least 2 staging buffers of at least 4096 bytes.
  static Status CheckOptions(const std::string& uri, const ReaderOptions& options);
  virtual ~TensorStream() = default;

  // The next chunk, or nullopt after the last.
  //
  // IMPORTANT: lifetime. A chunk's bytes are valid until the next call to Next(), which may
  // hand their buffer back to the read-ahead thread for refilling (they are never freed while
  // `staging()` is held). Finish every copy out of a chunk, device copies included, first.
  //
  // Thread safety: one consumer. Next() must not be called from two threads at once; the
  // stream's own thread touches only buffers the consumer has handed back.
  virtual Result<std::optional<TensorChunk>> Next() = 0;
  // Keeps the staging memory alive; hand it out as the owner of views into chunks.
  virtual std::shared_ptr<void> staging() const = 0;
  // All staging buffers, one block (e.g. to page-lock it for device copies).
  virtual std::span<std::byte> staging_bytes() const = 0;
};

// ---------------------------------------------------------------------------------------------
// Device memory

// Copies every tensor of the file to CUDA device `device`, into `device_base` (`device_bytes`
// there, which must equal header.data_size: a file replaced since the caller sized the
// allocation is kSourceChanged) at the tensor's data offset, so tensors are views of one device
// allocation. The calling thread's current CUDA device is left as it was. The
// bytes stream through `options.staging_buffers` page-locked staging buffers: reading the next
// buffer overlaps the asynchronous host-to-device copy of the current one, and a buffer is
// refilled only after its copy has completed. kUnsupported (naming the reason) when ferry was
// built without CUDA or the device does not exist.
Status LoadToDevice(io::Source& source, const Header& header, const ReaderOptions& options,
                    int device, void* device_base, uint64_t device_bytes);

}  // namespace ferry::tensors
