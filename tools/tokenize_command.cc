// ferry tokenize --tokenizer FILE INPUT... [-o SHARD | --count]: text, JSONL or WebDataset tar
// shards -> a token shard.
//
// Documents: a `.jsonl` input has one JSON object per line and the document is its `--field`
// (default "text"); a `.tar`/`.tgz` shard has one per sample, its `--field` (default "txt"); any
// other input is text with one document per line (the newline is not part of the document; empty
// lines are skipped). Inputs may be shard specs (ranges, globs, @FILE), expanded in order. Inputs are streamed, encoded in batches of
// documents on every core (the window scheduler), and written as one ferry token shard
// (datasets/token_shard.h).

#include <simdjson.h>

#include <chrono>
#include <cstdio>

#include "datasets/token_shard.h"
#include "ferry/datasets.h"
#include "ferry/io.h"
#include "ferry/text.h"
#include "tools/commands.h"
#include "tools/output.h"

namespace ferry::cli {
namespace {

constexpr size_t kBatchDocuments = 4096;

struct TokenizeArgs {
  std::string tokenizer;
  std::vector<std::string> inputs;
  std::string output;
  std::string field;  // default: "text" for JSONL, "txt" for tar shards
  std::string pattern;
  bool count = false;
  bool json = false;
  bool match_special_tokens = false;
  int threads = 0;
};

// Accumulates documents, encodes them a batch at a time, keeps the tokens and offsets.
class Encoder {
 public:
  // keep_tokens false: only count (memory stays one batch, whatever the input's size).
  // match_special: encode special-token text (<|endoftext|>) as its id; else text is data, as
  // tiktoken's encode_ordinary and PackedDataset over text shards encode it.
  Encoder(const text::Tokenizer& tokenizer, int threads, bool keep_tokens, bool match_special)
      : tokenizer_(tokenizer), threads_(threads), keep_tokens_(keep_tokens) {
    offsets_.push_back(0);
    options_.add_special_tokens = false;  // a token shard holds documents, not model inputs
    options_.match_added_tokens = match_special;
  }

  Status Add(std::string document) {
    bytes_ += document.size();
    pending_.push_back(std::move(document));
    if (pending_.size() >= kBatchDocuments) return Flush();
    return Status::Ok();
  }

  Status Flush() {
    std::vector<std::string_view> views(pending_.begin(), pending_.end());
    FERRY_RETURN_IF_ERROR(tokenizer_.EncodeBatch(views, options_, threads_, encoded_));
    for (const auto& ids : encoded_) {
      token_count_ += ids.size();
      if (keep_tokens_) {
        tokens_.insert(tokens_.end(), ids.begin(), ids.end());
        offsets_.push_back(tokens_.size());
      }
    }
    documents_ += encoded_.size();
    pending_.clear();
    return Status::Ok();
  }

  const std::vector<uint32_t>& tokens() const { return tokens_; }
  const std::vector<uint64_t>& offsets() const { return offsets_; }
  uint64_t bytes() const { return bytes_; }
  uint64_t token_count() const { return token_count_; }
  uint64_t documents() const { return documents_; }

 private:
  const text::Tokenizer& tokenizer_;
  int threads_;
  bool keep_tokens_;
  text::EncodeOptions options_;
  std::vector<std::string> pending_;
  std::vector<std::vector<uint32_t>> encoded_;
  std::vector<uint32_t> tokens_;
  std::vector<uint64_t> offsets_;
  uint64_t bytes_ = 0;
  uint64_t token_count_ = 0;
  uint64_t documents_ = 0;
};

// kInvalidArgument for an input that is not text by its first bytes: a compressed file, or
// binary data (a NUL byte), which would otherwise be tokenized into a shard of garbage.
Status CheckLooksLikeText(const std::string& uri, std::string_view start) {
  auto refuse = [&](const std::string& what) {
    return InvalidArgument(uri + ": " + what +
                           "; ferry tokenize reads text (.txt, a document per line), JSONL and "
                           ".tar/.tgz shards");
  };
  if (start.starts_with("\x1f\x8b")) return refuse("gzip-compressed (decompress it first)");
  if (start.starts_with("\x28\xb5\x2f\xfd")) return refuse("zstd-compressed (decompress it first)");
  if (start.starts_with("BZh")) return refuse("bzip2-compressed (decompress it first)");
  if (start.starts_with("\xfd" "7zXZ")) return refuse("xz-compressed (decompress it first)");
  const std::string_view head = start.substr(0, 64 * 1024);
  if (size_t nul = head.find('\0'); nul != std::string_view::npos) {
    return refuse("binary, not text (a NUL byte at offset " + std::to_string(nul) + ")");
  }
  return Status::Ok();
}

// Calls on_line(line, number) for each line of `uri`, streamed.
template <typename OnLine>
Status ForEachLine(const std::string& uri, ProgressLine& progress, uint64_t& done, OnLine&& on_line) {
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<io::Source> source, io::OpenSource(uri));
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<io::Stream> stream,
                         io::Stream::Open(source.get(), 0, source->size()));
  std::string partial;
  uint64_t number = 0;
  bool first = true;
  while (true) {
    FERRY_ASSIGN_OR_RETURN(std::span<const std::byte> chunk, stream->Next());
    if (chunk.empty()) break;
    std::string_view text(reinterpret_cast<const char*>(chunk.data()), chunk.size());
    if (first) FERRY_RETURN_IF_ERROR(CheckLooksLikeText(uri, text));
    first = false;
    done += chunk.size();
    progress.Update(done);
    size_t pos = 0;
    for (size_t nl; (nl = text.find('\n', pos)) != std::string_view::npos; pos = nl + 1) {
      partial.append(text.substr(pos, nl - pos));
      FERRY_RETURN_IF_ERROR(on_line(std::move(partial), ++number));
      partial.clear();
    }
    partial.append(text.substr(pos));
  }
  if (!partial.empty()) FERRY_RETURN_IF_ERROR(on_line(std::move(partial), ++number));
  return Status::Ok();
}

// Each sample's `field` of a WebDataset tar shard, as one document.
Status AddShardDocuments(const std::string& uri, const std::string& field, Encoder& encoder,
                         ProgressLine& progress, uint64_t& done) {
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<datasets::SampleReader> samples,
                         datasets::SampleReader::Open(uri));
  while (true) {
    FERRY_ASSIGN_OR_RETURN(std::optional<datasets::Sample> sample, samples->Next());
    if (!sample) break;
    const datasets::Bytes* text = sample->Find(field);
    if (text == nullptr) return datasets::MissingField(*sample, field);
    for (const auto& [name, bytes] : sample->fields) done += bytes.size();
    progress.Update(done);
    FERRY_RETURN_IF_ERROR(
        encoder.Add(std::string(reinterpret_cast<const char*>(text->data()), text->size())));
  }
  return Status::Ok();
}

Status RunTokenize(const TokenizeArgs& args) {
  if (args.output.empty() && !args.count) return InvalidArgument("give -o SHARD or --count");
  text::TiktokenOptions tiktoken;
  tiktoken.pattern = args.pattern;
  FERRY_ASSIGN_OR_RETURN(std::shared_ptr<const text::Tokenizer> tokenizer,
                         text::Tokenizer::Open(args.tokenizer, tiktoken));
  FERRY_ASSIGN_OR_RETURN(std::vector<std::string> inputs, datasets::ExpandShards(args.inputs));
  uint64_t total = 0;
  for (const std::string& input : inputs) {
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<io::Source> source, io::OpenSource(input));
    total += source->size();
  }
  Encoder encoder(*tokenizer, args.threads, /*keep_tokens=*/!args.output.empty(),
                  args.match_special_tokens);
  ProgressLine progress("tokenizing", total);
  uint64_t done = 0;
  auto start = std::chrono::steady_clock::now();
  simdjson::dom::parser parser;
  for (const std::string& input : inputs) {
    const std::string_view name = io::WithoutQuery(input);  // a presigned URL is still a .tar
    if (name.ends_with(".tar") || name.ends_with(".tgz") || name.ends_with(".tar.gz")) {
      FERRY_RETURN_IF_ERROR(AddShardDocuments(input, args.field.empty() ? "txt" : args.field,
                                              encoder, progress, done));
      continue;
    }
    bool jsonl = name.ends_with(".jsonl");
    const std::string field = args.field.empty() ? "text" : args.field;
    FERRY_RETURN_IF_ERROR(ForEachLine(input, progress, done, [&](std::string line, uint64_t number) -> Status {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) return Status::Ok();
      if (!jsonl) return encoder.Add(std::move(line));
      std::string_view value;
      simdjson::dom::element doc;
      std::string where = input + ":" + std::to_string(number) + ": ";
      if (auto error = parser.parse(line).get(doc)) {
        return Corruption(where + "not a JSON object (" + simdjson::error_message(error) + ")");
      }
      if (doc[field].get_string().get(value) != simdjson::SUCCESS) {
        return Corruption(where + "no string field \"" + field + "\"");
      }
      return encoder.Add(std::string(value));
    }));
  }
  FERRY_RETURN_IF_ERROR(encoder.Flush());
  progress.Clear();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  uint64_t documents = encoder.documents();
  if (!args.output.empty()) {
    FERRY_RETURN_IF_ERROR(datasets::WriteTokenShard(args.output, encoder.tokens(), encoder.offsets(),
                                                    tokenizer->fingerprint()));
  }
  double mbps = static_cast<double>(encoder.bytes()) / 1e6 / std::max(seconds, 1e-9);
  if (args.json) {
    std::printf("{\"documents\": %llu, \"tokens\": %llu, \"bytes\": %llu, \"seconds\": %.6f}\n",
                static_cast<unsigned long long>(documents),
                static_cast<unsigned long long>(encoder.token_count()),
                static_cast<unsigned long long>(encoder.bytes()), seconds);
  } else {
    std::printf("%llu documents, %llu tokens from %s of text in %.3f s: %.1f MB/s, %.0f tokens/s%s%s\n",
                static_cast<unsigned long long>(documents),
                static_cast<unsigned long long>(encoder.token_count()),
                HumanBytes(encoder.bytes()).c_str(), seconds, mbps,
                static_cast<double>(encoder.token_count()) / std::max(seconds, 1e-9),
                args.output.empty() ? "" : " -> ", args.output.c_str());
  }
  return Status::Ok();
}

}  // namespace

void RegisterTokenize(CLI::App& app, Status* result) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize", "Encode text (one document per line), JSONL or tar shards into a token shard");
  cmd->add_option("--tokenizer", args->tokenizer, "tokenizer.json or .tiktoken (path or URL)")
      ->required();
  cmd->add_option("inputs", args->inputs,
                  ".txt (a document per line), .jsonl or .tar shards; paths, URLs, ranges, @FILE")
      ->required();
  cmd->add_option("-o,--output", args->output, "Token shard to write (safetensors)");
  cmd->add_option("--field", args->field,
                  "Field holding the text (default: text for JSONL, txt for tar shards)");
  cmd->add_flag("--count", args->count, "Only count tokens and report MB/s");
  cmd->add_option("--pattern", args->pattern,
                  "Split pattern for a .tiktoken file that is not a named encoding (llama3, ...)");
  cmd->add_option("--threads", args->threads, "Encoding threads (default: one per core)");
  cmd->add_flag("--json", args->json, "Print the totals as JSON");
  cmd->add_flag("--match-special-tokens", args->match_special_tokens,
                "Encode special-token text in documents (<|endoftext|>) as its id (default: text "
                "is data, encoded as tiktoken's encode_ordinary)");
  cmd->callback([args, result] { *result = RunTokenize(*args); });
}

}  // namespace ferry::cli
