#include "m365vault/storage/chunker.hpp"

#include <bit>

#include "m365vault/core/error.hpp"
#include "m365vault/storage/crypto.hpp"

namespace m365vault::storage {

namespace {
// `bits` ones in the top of the word: the gear hash's high bits mix the last 64
// bytes, the low bits only the last few.
std::uint64_t top_mask(int bits) { return bits <= 0 ? 0 : ~std::uint64_t{0} << (64 - bits); }
}  // namespace

Chunker::Chunker(const ChunkerParams& p, std::string_view secret) : params_(p) {
  if (!(p.min_size > 0 && p.min_size < p.avg_size && p.avg_size < p.max_size) || !std::has_single_bit(p.avg_size))
    throw Error(Errc::invalid_config, "chunker sizes must satisfy 0 < min < avg < max with avg a power of two");
  int bits = std::countr_zero(p.avg_size);
  // Normalisation level 2 (FastCDC paper): chunk sizes cluster around the average.
  mask_small_ = top_mask(bits + 2);
  mask_large_ = top_mask(bits - 2);
  // Gear table: HMAC-SHA-256(secret, "gear" || i), 4 entries per digest.
  for (int i = 0; i < 64; ++i) {
    std::string msg = "m365vault chunker gear " + std::to_string(i);
    auto d = crypto::hmac_sha256(secret, msg);
    for (int j = 0; j < 4; ++j) {
      std::uint64_t v = 0;
      for (int b = 0; b < 8; ++b) v = (v << 8) | d[static_cast<std::size_t>(j * 8 + b)];
      gear_[static_cast<std::size_t>(i * 4 + j)] = v;
    }
  }
}

std::size_t Chunker::next_cut(std::string_view data, bool eof) const {
  std::size_t n = data.size();
  if (n < params_.max_size && !eof) {
    // Not enough to decide unless a cut shows up in what we have; scanning twice
    // would cost more than waiting, so wait until max_size is buffered.
    return 0;
  }
  if (n <= params_.min_size) return n;
  if (n > params_.max_size) n = params_.max_size;
  std::size_t normal = std::min(params_.avg_size, n);
  auto* p = reinterpret_cast<const unsigned char*>(data.data());
  std::uint64_t h = 0;
  std::size_t i = params_.min_size;
  for (; i < normal; ++i) {
    h = (h << 1) + gear_[p[i]];
    if (!(h & mask_small_)) return i + 1;
  }
  for (; i < n; ++i) {
    h = (h << 1) + gear_[p[i]];
    if (!(h & mask_large_)) return i + 1;
  }
  return n;
}

}  // namespace m365vault::storage
