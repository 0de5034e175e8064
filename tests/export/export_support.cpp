#include "export_support.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "m365vault/core/process.hpp"

namespace m365vault::test {

nlohmann::json check_export(const std::string& kind, const std::filesystem::path& path) {
  ProcessOptions po;
  // Debian's interpreter: python3-icalendar and python3-vobject are installed for it.
  po.argv = {"/usr/bin/python3", std::string(EXPORT_TEST_DIR) + "/check_export.py", kind, path.string()};
  po.capture_output = true;
  auto r = run_process(po);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(r.output);
}

int unzip_test(const std::filesystem::path& zip, std::string& out) {
  ProcessOptions po;
  po.argv = {"unzip", "-t", zip.string()};
  po.capture_output = true;
  auto r = run_process(po);
  out = r.output;
  return r.exit_code;
}

std::string read_binary(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace m365vault::test
