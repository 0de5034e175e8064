#include "gzip.hpp"

#include "m365vault/core/error.hpp"

namespace m365vault::graph::detail {

GzipDecoder::GzipDecoder(std::string what) : what_(std::move(what)) {
  if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) throw Error(Errc::internal, what_ + ": zlib init failed");
}

GzipDecoder::~GzipDecoder() { inflateEnd(&z_); }

void GzipDecoder::input(std::string_view in) {
  z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z_.avail_in = static_cast<uInt>(in.size());
}

bool GzipDecoder::read(std::string& out, std::size_t max) {
  out.clear();
  if (z_.avail_in == 0 && !pending_) return false;
  if (ended_) {  // trailing bytes after the gzip member: ignored, as browsers do
    z_.avail_in = 0;
    pending_ = false;
    return false;
  }
  out.resize(max);
  z_.next_out = reinterpret_cast<Bytef*>(out.data());
  z_.avail_out = static_cast<uInt>(max);
  const int rc = inflate(&z_, Z_NO_FLUSH);
  if (rc == Z_STREAM_END) ended_ = true;
  else if (rc == Z_BUF_ERROR) z_.avail_out = static_cast<uInt>(max);  // no progress possible: wants more input
  else if (rc != Z_OK)
    throw Error(Errc::unavailable, what_ + ": corrupt gzip body (" + std::string(z_.msg ? z_.msg : "zlib error") + ")");
  pending_ = z_.avail_out == 0;  // output space ran out: more may be waiting inside zlib
  out.resize(max - z_.avail_out);
  if (rc == Z_BUF_ERROR) z_.avail_in = 0;
  return true;
}

void GzipDecoder::finish() const {
  if (!ended_) throw Error(Errc::unavailable, what_ + ": gzip body cut short");
}

std::string gunzip(std::string_view in, std::size_t max, const std::string& what) {
  GzipDecoder d(what);
  d.input(in);
  std::string all, piece;
  while (d.read(piece)) {
    if (all.size() + piece.size() > max)
      throw Error(Errc::payload_too_large, what + ": decoded body larger than " + std::to_string(max) + " bytes");
    all += piece;
  }
  d.finish();
  return all;
}

}  // namespace m365vault::graph::detail
