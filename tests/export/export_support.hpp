#pragma once
// Helpers of the export tests: run check_export.py (Python's parsers, Debian's
// python3 with python3-icalendar and python3-vobject) and unzip -t on a file.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace m365vault::test {

// check_export.py KIND PATH, parsed; fails the test when the script fails.
nlohmann::json check_export(const std::string& kind, const std::filesystem::path& path);
// `unzip -t` exit code (0: every entry's CRC and sizes check out), output in `out`.
int unzip_test(const std::filesystem::path& zip, std::string& out);
std::string read_binary(const std::filesystem::path& path);

}  // namespace m365vault::test
