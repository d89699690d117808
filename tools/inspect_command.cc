// ferry inspect URI [--json]: what a safetensors file holds, from its header alone. Two small
// reads (length, then JSON), so a multi-GB file behind a URL is described without fetching data.

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "base/json.h"
#include "ferry/io.h"
#include "ferry/tensors.h"
#include "tools/commands.h"
#include "tools/output.h"

namespace ferry::cli {
namespace {

struct InspectArgs {
  std::string uri;
  bool json = false;
};

// "[4096, 11008]", "[]" for a scalar; valid JSON as well.
std::string ShapeText(const std::vector<uint64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

bool IsChecksumKey(std::string_view key) { return key.starts_with(tensors::kChecksumKeyPrefix); }

// Every metadata entry, checksums included: a script may want to compare them.
std::string InspectJson(std::string_view uri, const tensors::Header& header) {
  std::string out = "{\"uri\":";
  AppendJsonString(out, uri);
  out += ",\"header_size\":" + std::to_string(header.header_size);
  out += ",\"data_offset\":" + std::to_string(header.data_offset());
  out += ",\"total_bytes\":" + std::to_string(header.data_size);
  out += ",\"tensors\":[";
  for (size_t i = 0; i < header.tensors.size(); ++i) {
    const tensors::TensorInfo& info = header.tensors[i];
    if (i > 0) out += ',';
    out += "{\"name\":";
    AppendJsonString(out, info.name);
    out += ",\"dtype\":";
    AppendJsonString(out, tensors::DTypeName(info.dtype));
    out += ",\"shape\":" + ShapeText(info.shape);
    out += ",\"bytes\":" + std::to_string(info.nbytes());
    out +=
        ",\"data_offsets\":[" + std::to_string(info.begin) + "," + std::to_string(info.end) + "]}";
  }
  out += "],\"metadata\":{";
  for (size_t i = 0; i < header.metadata.size(); ++i) {
    if (i > 0) out += ',';
    AppendJsonString(out, header.metadata[i].first);
    out += ':';
    AppendJsonString(out, header.metadata[i].second);
  }
  out += "}}\n";
  return out;
}

// Columns padded to their widest cell: text columns left-aligned, numbers right-aligned.
std::string Table(const std::vector<std::array<std::string, 6>>& rows) {
  constexpr std::array<bool, 6> kRightAligned = {false, false, false, true, true, true};
  std::array<size_t, 6> widths{};
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) {
      widths[c] = std::max(widths[c], DisplayWidth(row[c]));
    }
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      std::string padding(widths[c] - DisplayWidth(row[c]), ' ');
      if (c > 0) line += "  ";
      line += kRightAligned[c] ? padding + row[c] : row[c] + padding;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string InspectText(std::string_view uri, const tensors::Header& header) {
  std::string out = Printable(uri) + "\n";
  if (header.tensors.empty()) {
    out += "(no tensors)\n";
  } else {
    std::vector<std::array<std::string, 6>> rows;
    rows.push_back({"name", "dtype", "shape", "bytes", "begin", "end"});
    for (const tensors::TensorInfo& info : header.tensors) {
      rows.push_back({Printable(info.name), std::string(tensors::DTypeName(info.dtype)),
                      ShapeText(info.shape), std::to_string(info.nbytes()),
                      std::to_string(info.begin), std::to_string(info.end)});
    }
    out += Table(rows);
  }
  out += "\n" + Counted(header.tensors.size(), "tensor") + ", " + std::to_string(header.data_size) +
         " bytes (" + HumanBytes(header.data_size) + ")\n";
  out += "header " + std::to_string(header.header_size) + " bytes; data buffer at file offset " +
         std::to_string(header.data_offset()) + " (begin/end are relative to it)\n";

  size_t shown = 0;
  for (const auto& [key, value] : header.metadata) {
    if (IsChecksumKey(key)) continue;
    if (shown++ == 0) out += "metadata:\n";
    out += "  " + Printable(key) + ": " + Printable(value) + "\n";
  }
  if (shown == 0) out += "metadata: none\n";
  size_t checksummed = 0;
  for (const tensors::TensorInfo& info : header.tensors) {
    checksummed += tensors::FindChecksum(header, info.name) != nullptr;
  }
  if (checksummed > 0) {
    out += Counted(checksummed, "tensor") + (checksummed == 1 ? " carries" : " carry") +
           " ferry checksums (check them with `ferry verify`)\n";
  }
  return out;
}

Status RunInspect(const InspectArgs& args) {
  FERRY_ASSIGN_OR_RETURN(auto source, io::OpenSource(args.uri));
  FERRY_ASSIGN_OR_RETURN(tensors::Header header, tensors::ReadHeader(*source));
  std::string out =
      args.json ? InspectJson(io::RedactUri(source->uri()), header)
                : InspectText(io::RedactUri(source->uri()), header);
  std::fwrite(out.data(), 1, out.size(), stdout);
  if (std::fflush(stdout) != 0) return ErrnoStatus(errno, "cannot write to stdout");
  return Status::Ok();
}

}  // namespace

void RegisterInspect(CLI::App& app, Status* result) {
  auto args = std::make_shared<InspectArgs>();
  CLI::App* cmd = app.add_subcommand(
      "inspect", "Describe a safetensors file from its header: tensors, offsets, metadata");
  cmd->add_option("uri", args->uri, "Path, file://, http:// or https:// URI")->required();
  cmd->add_flag("--json", args->json, "One JSON object instead of a table");
  cmd->callback([args, result] { *result = RunInspect(*args); });
}

}  // namespace ferry::cli
