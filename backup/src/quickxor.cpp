#include "m365vault/backup/quickxor.hpp"

#include <algorithm>
#include <cstring>

#include "m365vault/storage/crypto.hpp"

namespace m365vault::backup {

void QuickXorHash::update(std::string_view data) {
  // One pass: byte k of the stream is XORed into lane k mod 160; whole 160-byte
  // periods a word at a time. Where each lane lands in the block is digest()'s.
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t n = data.size();
  auto* lane = reinterpret_cast<unsigned char*>(lanes_.data());
  const std::size_t at = length_ % kWidth;
  length_ += n;
  if (at != 0) {  // up to the end of the current period
    const std::size_t k = std::min(n, kWidth - at);
    for (std::size_t i = 0; i < k; ++i) lane[at + i] ^= p[i];
    p += k;
    n -= k;
  }
  if (n >= kWidth) {
    // A local copy: stores through `lanes_` could alias the input (char data), so
    // the compiler would reload and store every word on every period.
    auto acc = lanes_;
    for (; n >= kWidth; p += kWidth, n -= kWidth)
      for (int w = 0; w < kWords; ++w) {
        std::uint64_t x;
        std::memcpy(&x, p + 8 * w, 8);
        acc[static_cast<std::size_t>(w)] ^= x;
      }
    lanes_ = acc;
  }
  for (std::size_t i = 0; i < n; ++i) lane[i] ^= p[i];
}

std::array<std::uint8_t, 20> QuickXorHash::digest() const {
  // Lane i (the XOR of every byte k with k mod 160 = i) lands at bit 11 * i mod 160
  // of the block: cells of 64 + 64 + 32 bits, a byte straddling a cell's end
  // wrapping its high bits into the next cell (the last wraps to the first).
  std::array<std::uint64_t, 3> cells{};
  const auto* lane = reinterpret_cast<const unsigned char*>(lanes_.data());
  for (std::size_t i = 0; i < kWidth; ++i) {
    const std::uint64_t x = lane[i];
    const std::size_t pos = (kShift * i) % kWidth;
    const std::size_t cell = pos / 64, bit = pos % 64;
    const std::size_t cell_bits = cell == 2 ? 32 : 64;
    cells[cell] ^= x << bit;
    if (bit > cell_bits - 8) cells[cell == 2 ? 0 : cell + 1] ^= x >> (cell_bits - bit);
  }
  std::array<std::uint8_t, 20> out{};
  for (int i = 0; i < 20; ++i) out[i] = static_cast<std::uint8_t>(cells[i / 8] >> (8 * (i % 8)));
  for (int i = 0; i < 8; ++i) out[12 + i] ^= static_cast<std::uint8_t>(length_ >> (8 * i));
  return out;
}

std::string QuickXorHash::base64() const {
  auto d = digest();
  return storage::crypto::base64_encode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}

}  // namespace m365vault::backup
