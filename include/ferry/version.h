#pragma once

// FERRY_VERSION comes from `project(ferry VERSION ...)` in CMakeLists.txt, the one place it is set.
#ifndef FERRY_VERSION
#error "FERRY_VERSION must be defined by the build"
#endif

namespace ferry {
inline constexpr const char* kVersion = FERRY_VERSION;
}  // namespace ferry
