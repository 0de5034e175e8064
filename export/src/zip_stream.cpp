#include "m365vault/export/zip_stream.hpp"

#include <archive.h>
#include <archive_entry.h>

#include "m365vault/core/error.hpp"

namespace m365vault::exporting {

namespace {
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
}  // namespace

void ZipStream::Deleter::operator()(::archive* a) const { archive_write_free(a); }

long ZipStream::on_write(::archive*, void* self, const void* buf, std::size_t n) {
  auto* z = static_cast<ZipStream*>(self);
  z->out_.append(static_cast<const char*>(buf), n);
  z->bytes_out_ += n;
  return static_cast<long>(n);
}

ZipStream::ZipStream() : a_(archive_write_new()) {
  if (!a_) throw Error(Errc::internal, "zip: cannot allocate a libarchive writer");
  check(archive_write_set_format_zip(a_.get()), "set format zip");
  // Names are UTF-8 whatever the process locale is, and flagged so (bit 11).
  check(archive_write_set_format_option(a_.get(), "zip", "hdrcharset", "UTF-8"), "set hdrcharset");
  // deflate level 1: measured side by side on 210 MB of MIME-like text with base64
  // attachments, it took half the CPU of the default level 6 (5.8 s against 11.4 s
  // of process CPU, data generation included) for a zip 1.7 % larger (0.761 of the
  // input against 0.748). A download is limited by this CPU, not by its size.
  check(archive_write_set_format_option(a_.get(), "zip", "compression-level", "1"), "set compression level");
  // No blocking: every byte libarchive produces reaches out_ at once, no padding.
  check(archive_write_set_bytes_per_block(a_.get(), 0), "set bytes per block");
  check(archive_write_open2(a_.get(), this, nullptr, &ZipStream::on_write, nullptr, nullptr), "open");
}

// libarchive closes an unfinished archive on free and writes through on_write:
// free it while out_ still exists.
ZipStream::~ZipStream() { a_.reset(); }

void ZipStream::check(int rc, std::string_view what) {
  if (rc >= ARCHIVE_WARN) return;
  const char* msg = a_ ? archive_error_string(a_.get()) : nullptr;
  throw Error(Errc::internal, "zip: " + std::string(what) + ": " + (msg ? msg : "libarchive failed"));
}

void ZipStream::begin(const std::string& name, std::int64_t mtime, bool deflate) {
  if (in_entry_ || finished_) throw Error(Errc::internal, "zip: begin '" + name + "' while an entry is open");
  std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
  archive_entry_set_pathname_utf8(e.get(), name.c_str());
  archive_entry_set_filetype(e.get(), AE_IFREG);
  archive_entry_set_perm(e.get(), 0644);
  archive_entry_set_mtime(e.get(), static_cast<time_t>(mtime), 0);
  // The size stays unset: libarchive then writes a data descriptor and zip64 sizes.
  check(deflate ? archive_write_zip_set_compression_deflate(a_.get())
                : archive_write_zip_set_compression_store(a_.get()),
        "set compression");
  check(archive_write_header(a_.get(), e.get()), "header of '" + name + "'");
  in_entry_ = true;
}

void ZipStream::write(std::string_view bytes) {
  if (!in_entry_) throw Error(Errc::internal, "zip: write outside an entry");
  while (!bytes.empty()) {
    auto n = archive_write_data(a_.get(), bytes.data(), bytes.size());
    if (n < 0) check(static_cast<int>(n), "write data");
    if (n == 0) throw Error(Errc::internal, "zip: write data: no progress");
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

void ZipStream::end() {
  if (!in_entry_) return;
  check(archive_write_finish_entry(a_.get()), "finish entry");
  in_entry_ = false;
}

void ZipStream::finish() {
  if (finished_) return;
  end();
  check(archive_write_close(a_.get()), "close");
  finished_ = true;
}

std::string ZipStream::take() {
  std::string out;
  out.swap(out_);
  return out;
}

}  // namespace m365vault::exporting
