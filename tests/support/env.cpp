#include "support/env.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>

namespace m365vault::test {

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

std::string require_service(const char* env_name) {
  if (auto v = env(env_name)) return *v;
  FAIL(std::string(env_name) + " is not set: the service this test needs was not started "
                               "(run the tests through scripts/test.sh)");
  return {};
}

}  // namespace m365vault::test
