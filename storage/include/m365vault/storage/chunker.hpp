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

// The defaults apply to repositories created from now on: an existing one keeps
// the sizes recorded in its authenticated config (512 KiB / 1 MiB / 8 MiB before
// these). Half those sizes add about 2.6 MB per 1 MiB edit instead of 3.8
// (bench/chunker_edit), for twice the chunks per GiB. min_size is also the size
// below which content is batched per page rather than handed over item by item.
struct ChunkerParams {
  std::size_t min_size = 256u << 10;
  std::size_t avg_size = 512u << 10;  // a power of two
  std::size_t max_size = 4u << 20;
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
