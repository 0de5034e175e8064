#pragma once
// A zip written front to back, for a download that starts before the export is
// complete: every entry is written with a data descriptor (sizes and CRC after the
// data) and zip64 fields, so neither the entry sizes nor the archive size need to be
// known in advance and entries and archives past 4 GiB are valid. libarchive does
// the format; this class only collects what it produces so that the caller can
// send it on. Nothing is held but the bytes produced since the last take().
//
// Not thread-safe; one entry at a time (begin, write..., end), then finish().
// Throws Error(Errc::internal) when libarchive refuses an operation.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct archive;

namespace m365vault::exporting {

class ZipStream {
 public:
  ZipStream();
  ~ZipStream();
  ZipStream(const ZipStream&) = delete;
  ZipStream& operator=(const ZipStream&) = delete;

  // Starts an entry named `name` (UTF-8, '/'-separated, already made safe: see
  // entry_names.hpp) with modification time `mtime` (seconds since the epoch).
  // `deflate` false stores the bytes as they are (content that is already compressed).
  void begin(const std::string& name, std::int64_t mtime, bool deflate);
  void write(std::string_view bytes);
  void end();
  // Writes the central directory; no entry may follow.
  void finish();

  // The bytes produced since the last call, moved out. Call after every operation
  // to keep memory flat: a write() of n bytes produces at most about n bytes.
  std::string take();
  std::uint64_t bytes_out() const { return bytes_out_; }

 private:
  struct Deleter {
    void operator()(::archive* a) const;
  };
  static long on_write(::archive*, void* self, const void* buf, std::size_t n);
  void check(int rc, std::string_view what);

  std::unique_ptr<::archive, Deleter> a_;
  std::string out_;
  std::uint64_t bytes_out_ = 0;
  bool in_entry_ = false;
  bool finished_ = false;
};

}  // namespace m365vault::exporting
