#pragma once
// What the test command (scripts/test.sh) hands the tests: service addresses.
#include <optional>
#include <string>

namespace m365vault::test {

// The value of an environment variable, or nullopt when unset or empty.
std::optional<std::string> env(const char* name);

// A service address the test needs. A missing one fails the test (never a silent
// skip): run the tests through scripts/test.sh, which starts the services.
std::string require_service(const char* env_name);

}  // namespace m365vault::test
