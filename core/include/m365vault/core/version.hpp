#pragma once
#include <string_view>

namespace m365vault {
// The release version, as set in the top-level CMakeLists.txt.
std::string_view version() noexcept;
}  // namespace m365vault
