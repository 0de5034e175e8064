#include "spool.hpp"

#include <cerrno>
#include <cstring>

#include "m365vault/core/error.hpp"

namespace m365vault::exporting {

namespace {
[[noreturn]] void fail(const char* what) {
  throw Error(Errc::storage, std::string("export spool file: ") + what + ": " + std::strerror(errno));
}
}  // namespace

Spool::Spool() : f_(std::tmpfile()) {
  if (!f_) fail("cannot create a temporary file");
}

void Spool::append(std::string_view bytes) {
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f_.get()) != bytes.size()) fail("write");
  size_ += bytes.size();
}

void Spool::rewind() {
  if (std::fflush(f_.get()) != 0) fail("flush");
  if (std::fseek(f_.get(), 0, SEEK_SET) != 0) fail("seek");
}

std::string Spool::next(std::size_t max) {
  std::string buf(max, '\0');
  auto n = std::fread(buf.data(), 1, max, f_.get());
  if (n < max && std::ferror(f_.get())) fail("read");
  buf.resize(n);
  return buf;
}

}  // namespace m365vault::exporting
