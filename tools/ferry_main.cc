// The ferry command line. Errors print one line to stderr and exit with a code chosen by the
// error's class (sysexits.h numbering), so scripts can tell "no such file" from "bad data".

#include <cstdio>

#include "base/cuda_runtime.h"
#include "ferry/io.h"
#include "ferry/status.h"
#include "ferry/version.h"
#include "tools/commands.h"

namespace ferry::cli {

int ExitCodeFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 0;
    case StatusCode::kInvalidArgument:
      return 64;  // EX_USAGE
    case StatusCode::kOutOfRange:
      return 64;
    case StatusCode::kUnsupported:
      return 64;
    case StatusCode::kEvicted:
      return 64;
    case StatusCode::kCorruption:
      return 65;  // EX_DATAERR
    case StatusCode::kNotFound:
      return 66;  // EX_NOINPUT
    case StatusCode::kUnavailable:
      return 69;  // EX_UNAVAILABLE
    case StatusCode::kInternal:
      return 70;  // EX_SOFTWARE
    case StatusCode::kIoError:
      return 74;  // EX_IOERR
    case StatusCode::kTimeout:
      return 75;  // EX_TEMPFAIL
    case StatusCode::kSourceChanged:
      return 75;
    case StatusCode::kCancelled:
      return 75;
    case StatusCode::kPermissionDenied:
      return 77;  // EX_NOPERM
  }
  return 1;
}

}  // namespace ferry::cli

int main(int argc, char** argv) {
  CLI::App app("ferry: move ML data from storage to memory, fast and checked", "ferry");
  app.require_subcommand(0, 1);
  // A callback, so the CUDA probe (slow where a driver is present) runs only for --version.
  app.set_version_flag("--version", [] {
    return std::string("ferry ") + ferry::kVersion + " (" +
           ferry::DescribeCuda(ferry::ProbeCuda()) + ")";
  });
  ferry::Status result;
  ferry::cli::RegisterCat(app, &result);
  ferry::cli::RegisterIndex(app, &result);
  ferry::cli::RegisterInspect(app, &result);
  ferry::cli::RegisterVerify(app, &result);
  ferry::cli::RegisterLoad(app, &result);
  ferry::cli::RegisterStream(app, &result);
  ferry::cli::RegisterTokenize(app, &result);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (app.get_subcommands().empty()) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  }
  if (!result.ok()) {
    std::fprintf(stderr, "ferry: %s\n", ferry::io::RedactUris(result.ToString()).c_str());
    return ferry::cli::ExitCodeFor(result.code());
  }
  return 0;
}
