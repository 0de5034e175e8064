#pragma once
// Incremental gzip decoding (zlib) with bounded output per step, for bodies sent
// with Content-Encoding: gzip. Corrupt or cut-off input throws Error(unavailable):
// like a truncated body, worth one more try.
#include <zlib.h>

#include <string>
#include <string_view>

namespace m365vault::graph::detail {

class GzipDecoder {
 public:
  explicit GzipDecoder(std::string what);
  ~GzipDecoder();
  GzipDecoder(const GzipDecoder&) = delete;
  GzipDecoder& operator=(const GzipDecoder&) = delete;

  // Gives the next input; it must be drained with read() before the next input().
  void input(std::string_view in);
  // Replaces `out` with up to `max` decoded bytes; false when the input is used up.
  bool read(std::string& out, std::size_t max = 64 * 1024);
  // Throws unless the gzip stream ended properly.
  void finish() const;

 private:
  z_stream z_{};
  std::string what_;
  bool ended_ = false;
  bool pending_ = false;
};

// The whole body at once; throws Error(payload_too_large) past `max` decoded bytes.
std::string gunzip(std::string_view in, std::size_t max, const std::string& what);

}  // namespace m365vault::graph::detail
