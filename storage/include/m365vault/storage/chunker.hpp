#pragma once
// Content-defined chunking (FastCDC with normalised chunking over a gear hash), so
// an edit in the middle of a large file changes only the chunks around it. The gear
// table is derived from a per-repository secret: cut points then reveal nothing
// about content to someone who can see chunk sizes (restic's reasoning, too).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace m365vault::storage {

struct ChunkerParams {
  std::size_t min_size = 512u << 10;
  std::size_t avg_size = 1u << 20;  // a power of two
  std::size_t max_size = 8u << 20;
};

class Chunker {
 public:
  // Throws Error(Errc::invalid_config) unless min < avg < max and avg is a power of two.
  Chunker(const ChunkerParams& params, std::string_view secret);

  // The length of the next chunk at the start of `data`: a content-defined cut, or
  // max_size, or all of `data` when `eof`. Returns 0 when more data is needed to
  // decide (less than max_size buffered and not at eof). Stateless between calls:
  // the same bytes always cut the same way, however they were fed.
  std::size_t next_cut(std::string_view data, bool eof) const;

  const ChunkerParams& params() const { return params_; }

 private:
  ChunkerParams params_;
  std::uint64_t mask_small_;  // more bits: harder to cut before the average
  std::uint64_t mask_large_;  // fewer bits: easier to cut after it
  std::array<std::uint64_t, 256> gear_{};
};

}  // namespace m365vault::storage
