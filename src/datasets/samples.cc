// WebDataset grouping: members -> samples.

#include <algorithm>
#include <cctype>
#include <utility>

#include "ferry/datasets.h"

namespace ferry::datasets {

const Bytes* Sample::Find(std::string_view field) const {
  for (const auto& [name, bytes] : fields) {
    if (name == field) return &bytes;
  }
  return nullptr;
}

Status MissingField(const Sample& sample, std::string_view field) {
  std::string fields;
  for (const auto& [name, data] : sample.fields) fields += (fields.empty() ? "" : ", ") + name;
  return NotFound(sample.url + ": sample '" + sample.key + "' has no field '" +
                  std::string(field) + "' (fields: " + fields + ")");
}

std::optional<std::pair<std::string, std::string>> SplitKeyField(std::string_view path) {
  size_t slash = path.rfind('/');
  size_t base = slash == std::string_view::npos ? 0 : slash + 1;
  // Metadata members such as "__index__" are skipped; webdataset's rule is the whole name
  // starting and ending with "__" (so "__meta__.json" is an ordinary sample, as there).
  if (path.size() >= 4 && path.starts_with("__") && path.ends_with("__")) return std::nullopt;
  size_t dot = path.find('.', base);
  if (dot == std::string_view::npos) return std::nullopt;
  std::string field(path.substr(dot + 1));
  for (char& c : field) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return std::pair(std::string(path.substr(0, dot)), std::move(field));
}

Result<std::unique_ptr<SampleReader>> SampleReader::Open(std::string_view uri,
                                                         const TarOptions& options,
                                                         const io::SourceOptions& source_options) {
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<TarReader> tar,
                         TarReader::Open(uri, options, source_options));
  return std::unique_ptr<SampleReader>(new SampleReader(std::string(uri), std::move(tar)));
}

Result<std::optional<Sample>> SampleReader::Next() {
  if (!deferred_error_.ok()) return std::exchange(deferred_error_, Status());
  while (!done_) {
    Result<std::optional<TarMember>> next = tar_->Next();
    if (!next.ok()) {
      // A member of another key is damaged: the sample gathered so far has all its fields.
      auto damaged = SplitKeyField(tar_->damaged_member());
      if (!pending_ || !damaged || damaged->first == pending_->key) return next.status();
      deferred_error_ = next.status();
      done_ = true;
      return std::exchange(pending_, std::nullopt);
    }
    std::optional<TarMember> member = std::move(*next);
    if (!member) {
      done_ = true;
      break;
    }
    auto split = SplitKeyField(member->name);
    if (!split) continue;
    auto& [key, field] = *split;
    if (pending_ && pending_->key != key) {
      std::optional<Sample> ready = std::move(pending_);
      pending_ = Sample{key, uri_, {}};
      pending_->fields.emplace_back(std::move(field), std::move(member->data));
      return ready;
    }
    if (!pending_) pending_ = Sample{key, uri_, {}};
    if (pending_->Find(field) != nullptr) {
      return Corruption(uri_ + ": sample '" + key + "' has field '" + field +
                        "' twice (member at offset " + std::to_string(member->header_offset) + ")");
    }
    pending_->fields.emplace_back(std::move(field), std::move(member->data));
  }
  std::optional<Sample> last = std::move(pending_);
  pending_.reset();
  return last;
}

}  // namespace ferry::datasets
