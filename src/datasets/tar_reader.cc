// TarReader: ustar / pax / GNU tar parsing over a streamed (and maybe gzip-inflated) source.

#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "base/strings.h"
#include "ferry/datasets.h"

namespace ferry::datasets {
namespace {

constexpr size_t kBlock = 512;

// The archive's bytes in order: straight from an io::Stream, or inflated from a gzip stream.
class ArchiveBytes {
 public:
  // `first` is the stream's first chunk, already taken from it to look for gzip's magic bytes.
  ArchiveBytes(std::string uri, std::unique_ptr<io::Source> source,
               std::unique_ptr<io::Stream> stream, std::span<const std::byte> first, bool gzip)
      : uri_(std::move(uri)),
        source_(std::move(source)),
        stream_(std::move(stream)),
        raw_(first),
        gzip_(gzip) {
    if (gzip_) {
      inflateInit2(&z_, 15 + 32);  // zlib or gzip header, detected
      inflated_.resize(1u << 20);
    }
  }
  ~ArchiveBytes() {
    if (gzip_) inflateEnd(&z_);
  }

  uint64_t offset() const { return offset_; }

  // Fills `dst` completely; `*clean_eof` is set (and OK returned) when the archive ended before
  // the first byte. Ending part way is kCorruption.
  Status ReadExact(std::span<std::byte> dst, bool* clean_eof) {
    *clean_eof = false;
    size_t done = 0;
    while (done < dst.size()) {
      FERRY_ASSIGN_OR_RETURN(std::span<const std::byte> bytes, Pull(dst.size() - done));
      if (bytes.empty()) {
        if (done == 0) {
          *clean_eof = true;
          return Status::Ok();
        }
        return Corruption(uri_ + ": archive truncated at offset " + std::to_string(offset_) + " (" +
                          std::to_string(dst.size() - done) + " more bytes expected)");
      }
      std::memcpy(dst.data() + done, bytes.data(), bytes.size());
      done += bytes.size();
    }
    return Status::Ok();
  }

  Status Skip(uint64_t n) {
    while (n > 0) {
      FERRY_ASSIGN_OR_RETURN(std::span<const std::byte> bytes,
                             Pull(static_cast<size_t>(std::min<uint64_t>(n, 1u << 20))));
      if (bytes.empty()) {
        return Corruption(uri_ + ": archive truncated at offset " + std::to_string(offset_) +
                          " while skipping " + std::to_string(n) + " bytes");
      }
      n -= bytes.size();
    }
    return Status::Ok();
  }

 private:
  // Up to `max` next bytes (empty at the end), valid until the next call.
  Result<std::span<const std::byte>> Pull(size_t max) {
    if (!gzip_) {
      if (raw_.empty()) {
        FERRY_ASSIGN_OR_RETURN(raw_, stream_->Next());
      }
      auto out = raw_.first(std::min(max, raw_.size()));
      raw_ = raw_.subspan(out.size());
      offset_ += out.size();
      return out;
    }
    while (inflated_pos_ == inflated_end_) {
      if (z_done_) return std::span<const std::byte>();
      FERRY_RETURN_IF_ERROR(Inflate());
    }
    size_t n = std::min(max, inflated_end_ - inflated_pos_);
    auto out = std::span<const std::byte>(inflated_.data() + inflated_pos_, n);
    inflated_pos_ += n;
    offset_ += n;
    return out;
  }

  Status Inflate() {
    if (raw_.empty()) {
      FERRY_ASSIGN_OR_RETURN(raw_, stream_->Next());
      if (raw_.empty()) {
        if (!z_started_ || z_at_member_end_) {
          z_done_ = true;
          return Status::Ok();
        }
        return Corruption(uri_ + ": gzip stream truncated after " + std::to_string(offset_) +
                          " inflated bytes");
      }
    }
    if (z_at_member_end_) {  // concatenated gzip members continue the stream
      inflateReset(&z_);
      z_at_member_end_ = false;
    }
    z_started_ = true;
    const size_t given = std::min<size_t>(raw_.size(), 1u << 30);  // zlib counts in uInt
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(raw_.data()));
    z_.avail_in = static_cast<uInt>(given);
    z_.next_out = reinterpret_cast<Bytef*>(inflated_.data());
    z_.avail_out = static_cast<uInt>(inflated_.size());
    int rc = inflate(&z_, Z_NO_FLUSH);
    raw_ = raw_.subspan(given - z_.avail_in);
    inflated_pos_ = 0;
    inflated_end_ = inflated_.size() - z_.avail_out;
    if (rc == Z_STREAM_END) {
      z_at_member_end_ = true;
    } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return Corruption(uri_ + ": gzip data is corrupt after " + std::to_string(offset_) +
                        " inflated bytes (" + (z_.msg != nullptr ? z_.msg : "zlib error") + ")");
    }
    return Status::Ok();
  }

  std::string uri_;
  std::unique_ptr<io::Source> source_;  // outlives stream_, which reads it
  std::unique_ptr<io::Stream> stream_;
  std::span<const std::byte> raw_;  // unconsumed bytes of the current stream chunk
  uint64_t offset_ = 0;             // bytes of the archive delivered so far
  const bool gzip_;
  z_stream z_{};
  std::vector<std::byte> inflated_;
  size_t inflated_pos_ = 0, inflated_end_ = 0;
  bool z_started_ = false, z_at_member_end_ = false, z_done_ = false;
};

std::string_view Field(const std::byte* header, size_t offset, size_t length) {
  std::string_view f(reinterpret_cast<const char*>(header) + offset, length);
  return f.substr(0, f.find('\0'));
}

// Octal (NUL/space padded) or GNU base-256 (high bit of the first byte set) numbers.
bool ParseNumber(const std::byte* header, size_t offset, size_t length, uint64_t* out) {
  const auto* p = reinterpret_cast<const unsigned char*>(header) + offset;
  if (p[0] & 0x80) {
    if (p[0] != 0x80) return false;  // negative or wider than 63 bits
    uint64_t v = 0;
    for (size_t i = 1; i < length; ++i) {
      if (v >> 55) return false;
      v = (v << 8) | p[i];
    }
    *out = v;
    return true;
  }
  uint64_t v = 0;
  size_t i = 0;
  while (i < length && p[i] == ' ') ++i;
  size_t digits = 0;
  for (; i < length && p[i] >= '0' && p[i] <= '7'; ++i, ++digits) {
    if (v >> 60) return false;
    v = v * 8 + (p[i] - '0');
  }
  for (; i < length; ++i) {
    if (p[i] != ' ' && p[i] != '\0') return false;
  }
  *out = v;
  return digits > 0 || length == 0;
}

bool ChecksumMatches(const std::byte* header) {
  uint64_t recorded = 0;
  if (!ParseNumber(header, 148, 8, &recorded)) return false;
  uint64_t sum = 0;
  for (size_t i = 0; i < kBlock; ++i) {
    sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(header[i]);
  }
  return sum == recorded;
}

bool AllZero(const std::byte* block) {
  return std::all_of(block, block + kBlock, [](std::byte b) { return b == std::byte{0}; });
}

// pax records: "LEN key=value\n" repeated.
Status ParsePax(const std::string& uri, uint64_t offset, std::string_view text,
                std::vector<std::pair<std::string, std::string>>& out) {
  while (!text.empty()) {
    size_t space = text.find(' ');
    uint64_t len = 0;
    bool ok = space != std::string_view::npos && space > 0 && space <= 20;
    for (size_t i = 0; ok && i < space; ++i) {
      ok = text[i] >= '0' && text[i] <= '9';
      len = len * 10 + static_cast<uint64_t>(text[i] - '0');
    }
    if (!ok || len <= space + 1 || len > text.size() || text[len - 1] != '\n') {
      return Corruption(uri + ": malformed pax record in the header at offset " +
                        std::to_string(offset));
    }
    std::string_view record = text.substr(space + 1, len - space - 2);
    size_t eq = record.find('=');
    if (eq == std::string_view::npos) {
      return Corruption(uri + ": pax record without '=' in the header at offset " +
                        std::to_string(offset));
    }
    out.emplace_back(std::string(record.substr(0, eq)), std::string(record.substr(eq + 1)));
    text.remove_prefix(len);
  }
  return Status::Ok();
}

class StreamingTarReader final : public TarReader {
 public:
  StreamingTarReader(std::string uri, uint64_t stored_size, std::string stored_version,
                     std::unique_ptr<ArchiveBytes> bytes, TarOptions options)
      : uri_(std::move(uri)),
        stored_size_(stored_size),
        stored_version_(std::move(stored_version)),
        bytes_(std::move(bytes)),
        options_(options) {}

  uint64_t stored_size() const override { return stored_size_; }
  const std::string& stored_version() const override { return stored_version_; }
  const std::string& damaged_member() const override { return damaged_member_; }

  Result<std::optional<TarMember>> Next() override {
    std::vector<std::pair<std::string, std::string>> local_pax;
    std::string long_name;
    bool have_long_name = false;
    while (!finished_) {
      std::byte header[kBlock];
      uint64_t header_offset = bytes_->offset();
      bool eof = false;
      FERRY_RETURN_IF_ERROR(bytes_->ReadExact(header, &eof));
      // Every tar archive, even one without members, ends with zero blocks; an empty file is a
      // shard that was never written (or was cut to nothing), not an empty dataset.
      if (eof && header_offset == 0) {
        return Corruption(uri_ + ": the shard is empty (0 bytes), not a tar archive");
      }
      if (eof || AllZero(header)) {  // end-of-archive marker (or a bare end)
        finished_ = true;
        break;
      }
      if (!ChecksumMatches(header)) {
        return Corruption(uri_ + ": not a tar header at offset " + std::to_string(header_offset) +
                          " (checksum mismatch)");
      }
      uint64_t size = 0;
      if (!ParseNumber(header, 124, 12, &size)) {
        return Corruption(uri_ + ": bad size field in the tar header at offset " +
                          std::to_string(header_offset));
      }
      char type = static_cast<char>(header[156]);
      auto pax_size = FindPax(local_pax, "size");
      if (pax_size && (type == '0' || type == '\0' || type == '7')) {
        uint64_t v = 0;
        bool ok = !pax_size->empty();
        for (char c : *pax_size) {
          ok = ok && c >= '0' && c <= '9' && v < (uint64_t{1} << 59);
          v = v * 10 + static_cast<uint64_t>(c - '0');
        }
        if (!ok) {
          return Corruption(uri_ + ": bad pax size '" + *pax_size + "' for the member at offset " +
                            std::to_string(header_offset));
        }
        size = v;
      }
      uint64_t padded = (size + kBlock - 1) / kBlock * kBlock;
      if (padded < size) return Corruption(uri_ + ": member size overflows");

      if (type == 'x' || type == 'g' || type == 'L') {
        // Metadata for what follows: read it (bounded), then apply it to the next header.
        constexpr uint64_t kMaxMetadata = 1u << 20;
        if (size > kMaxMetadata) {
          return Corruption(uri_ + ": " + std::string(1, type) + " record of " +
                            std::to_string(size) + " bytes at offset " +
                            std::to_string(header_offset) + " exceeds 1 MiB");
        }
        std::string text(size, '\0');
        FERRY_RETURN_IF_ERROR(
            ReadBody(std::as_writable_bytes(std::span(text)), padded - size, header_offset));
        if (type == 'L') {
          long_name = text.substr(0, text.find('\0'));
          have_long_name = true;
        } else {
          FERRY_RETURN_IF_ERROR(
              ParsePax(uri_, header_offset, text, type == 'x' ? local_pax : global_pax_));
        }
        continue;
      }
      bool regular = type == '0' || type == '\0' || type == '7';
      if (!regular) {  // directories, links, devices, GNU 'K' long link names...
        FERRY_RETURN_IF_ERROR(bytes_->Skip(padded));
        local_pax.clear();
        have_long_name = false;
        continue;
      }
      TarMember member;
      member.header_offset = header_offset;
      member.name = MemberName(header, local_pax, have_long_name ? &long_name : nullptr);
      if (size > options_.max_member_size) {
        return Corruption(uri_ + ": member " + Quoted(member.name) + " at offset " +
                          std::to_string(header_offset) + " claims " + std::to_string(size) +
                          " bytes, over the limit of " + std::to_string(options_.max_member_size));
      }
      member.data.resize(size);
      if (Status body = ReadBody(member.data, padded - size, header_offset, member.name);
          !body.ok()) {
        damaged_member_ = std::move(member.name);
        return body;
      }
      return std::optional<TarMember>(std::move(member));
    }
    return std::optional<TarMember>();
  }

 private:
  // A member's data into `dst`, then its `padding` to the next block. `name`: the member's, for
  // messages; empty for pax and long-name records.
  Status ReadBody(std::span<std::byte> dst, uint64_t padding, uint64_t header_offset,
                  std::string_view name = {}) {
    std::string member = name.empty() ? "the member" : "member " + Quoted(name);
    bool eof = false;
    Status read = bytes_->ReadExact(dst, &eof);
    if (read.ok() && eof && !dst.empty()) {
      return Corruption(uri_ + ": archive ends inside " + member + " at offset " +
                        std::to_string(header_offset));
    }
    if (read.ok()) read = bytes_->Skip(padding);
    if (!read.ok()) {
      return Status(read.code(), read.message() + " in " + member + " whose header is at offset " +
                                     std::to_string(header_offset));
    }
    return Status::Ok();
  }

  std::optional<std::string> FindPax(const std::vector<std::pair<std::string, std::string>>& local,
                                     std::string_view key) const {
    for (auto it = local.rbegin(); it != local.rend(); ++it) {
      if (it->first == key) return it->second;
    }
    for (auto it = global_pax_.rbegin(); it != global_pax_.rend(); ++it) {
      if (it->first == key) return it->second;
    }
    return std::nullopt;
  }

  std::string MemberName(const std::byte* header,
                         const std::vector<std::pair<std::string, std::string>>& local,
                         const std::string* long_name) const {
    if (auto path = FindPax(local, "path")) return *path;
    if (long_name != nullptr) return *long_name;
    std::string name(Field(header, 0, 100));
    if (Field(header, 257, 5) == "ustar") {
      std::string prefix(Field(header, 345, 155));
      if (!prefix.empty()) name = prefix + "/" + name;
    }
    return name;
  }

  std::string uri_;
  uint64_t stored_size_;
  std::string stored_version_;
  std::unique_ptr<ArchiveBytes> bytes_;
  TarOptions options_;
  std::vector<std::pair<std::string, std::string>> global_pax_;
  std::string damaged_member_;
  bool finished_ = false;
};

}  // namespace

Result<std::unique_ptr<TarReader>> TarReader::Open(std::string_view uri_view,
                                                   const TarOptions& options,
                                                   const io::SourceOptions& source_options) {
  std::string uri(uri_view);
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<io::Source> source, io::OpenSource(uri, source_options));
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<io::Stream> stream,
                         io::Stream::Open(source.get(), 0, source->size(), options.stream));
  // The magic bytes come from the stream's first chunk, not a read of their own, which a server
  // without Range support would answer by sending the whole shard once more.
  FERRY_ASSIGN_OR_RETURN(std::span<const std::byte> first, stream->Next());
  bool gzip = first.size() >= 2 && first[0] == std::byte{0x1f} && first[1] == std::byte{0x8b};
  uint64_t stored_size = source->size();
  std::string stored_version = source->version();
  auto bytes =
      std::make_unique<ArchiveBytes>(uri, std::move(source), std::move(stream), first, gzip);
  return std::unique_ptr<TarReader>(new StreamingTarReader(
      std::move(uri), stored_size, std::move(stored_version), std::move(bytes), options));
}

}  // namespace ferry::datasets
