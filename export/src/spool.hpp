#pragma once
// Bytes set aside on disk while another zip entry is being written (a zip takes
// one entry at a time): an anonymous temporary file (tmpfile(3), in $TMPDIR),
// gone when the Spool is destroyed or the process ends. Throws
// Error(Errc::storage) when the disk refuses.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

namespace m365vault::exporting {

class Spool {
 public:
  Spool();
  void append(std::string_view bytes);
  std::uint64_t size() const { return size_; }
  // Back to the start for reading; then next() gives up to `max` bytes at a time,
  // empty at the end.
  void rewind();
  std::string next(std::size_t max);

 private:
  struct Close {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::unique_ptr<std::FILE, Close> f_;
  std::uint64_t size_ = 0;
};

}  // namespace m365vault::exporting
