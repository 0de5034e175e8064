#pragma once
// Names of zip entries that every unzip tool extracts where it should: no "..",
// no absolute paths, nothing Windows refuses (<>:"/\|?* and control characters,
// trailing dots and spaces, CON/PRN/AUX/NUL/COM1-9/LPT1-9), valid UTF-8, each
// component at most 200 bytes. Two items that would land on the same name (also
// case-insensitively, as on Windows and macOS) get " (2)", " (3)", ... in the
// order they are added, so the same export always yields the same names.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>

namespace m365vault::exporting {

// One path component made safe; never empty (an empty or all-dots name becomes "_").
std::string safe_component(std::string_view name);
// A '/'- or '\'-separated path made of safe components; empty components dropped.
std::string safe_path(std::string_view path);

class EntryNames {
 public:
  // A name under `dir` (a safe path, "" for the top) for `stem` + `ext` (ext
  // includes its dot, or is empty) not handed out before. `stem` is made safe here.
  std::string unique(std::string_view dir, std::string_view stem, std::string_view ext);
  // Reserves a directory prefix so that a later file cannot take its name.
  std::string unique_dir(std::string_view dir, std::string_view name);

 private:
  bool claim(const std::string& path);
  // 64-bit hashes of case-folded paths: a few bytes per entry for exports of
  // millions of items. A collision can only add a needless " (n)", never reuse a name.
  std::unordered_set<std::uint64_t> used_;
};

}  // namespace m365vault::exporting
