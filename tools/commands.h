// The `ferry` subcommands. Each Register* adds one subcommand to the app; its callback stores
// the command's Status in *result, which ferry_main turns into an exit code.
#pragma once

#include <CLI/CLI.hpp>

#include "ferry/status.h"

namespace ferry::cli {

void RegisterCat(CLI::App& app, Status* result);
void RegisterIndex(CLI::App& app, Status* result);
void RegisterInspect(CLI::App& app, Status* result);
void RegisterLoad(CLI::App& app, Status* result);
void RegisterStream(CLI::App& app, Status* result);
void RegisterTokenize(CLI::App& app, Status* result);
void RegisterVerify(CLI::App& app, Status* result);

}  // namespace ferry::cli
