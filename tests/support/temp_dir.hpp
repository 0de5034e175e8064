#pragma once
#include <filesystem>
#include <string>

namespace m365vault::test {

// A fresh directory under $TMPDIR (or /tmp), mode 0755 so that an unprivileged
// PostgreSQL user can reach into it; removed with everything in it on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "m365vault-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& rel) const { return path_ / rel; }

 private:
  std::filesystem::path path_;
};

// Writes `text` to `path`, replacing it.
void write_file(const std::filesystem::path& path, const std::string& text);

}  // namespace m365vault::test
