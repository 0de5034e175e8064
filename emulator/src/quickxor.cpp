#include "quickxor.hpp"

#include <cstring>

namespace m365vault::emulator {

namespace {
constexpr std::uint32_t kWidth = 160;
constexpr std::uint32_t kShift = 11;
}  // namespace

// Byte i lands at bit (11 * i) mod 160, and 160 * 11 ≡ 0 (mod 160): bytes 160 apart
// share an offset. So the data is first folded into 160 lanes (lane j the XOR of
// every 160th byte from j), in one sequential pass eight bytes at a time, and each
// lane is rotated in once. (Walking each lane with a stride of 160 instead reads
// the whole input 160 times over from memory: 25 ms per 8 MB.)
void QuickXorHash::update(std::string_view data) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const std::size_t n = data.size();
  const std::size_t lanes = n < kWidth ? n : kWidth;
  std::uint64_t words[kWidth / 8] = {};
  std::size_t i = 0;
  for (; i + kWidth <= n; i += kWidth)
    for (std::size_t w = 0; w < kWidth / 8; ++w) {
      std::uint64_t x;
      std::memcpy(&x, p + i + 8 * w, 8);
      words[w] ^= x;
    }
  unsigned char fold[kWidth];
  std::memcpy(fold, words, kWidth);  // byte order kept: XOR is bytewise
  for (std::size_t j = 0; i + j < n; ++j) fold[j] ^= p[i + j];
  for (std::size_t lane = 0; lane < lanes; ++lane) {
    const unsigned char x = fold[lane];
    const std::uint32_t bit = (shift_ + static_cast<std::uint32_t>(lane) * kShift) % kWidth;
    const std::uint32_t cell = bit / 64, offset = bit % 64;
    const std::uint32_t cell_bits = cell == 2 ? 32 : 64;
    if (offset <= cell_bits - 8) {
      cells_[cell] ^= static_cast<std::uint64_t>(x) << offset;
    } else {
      // The byte straddles two cells (the last cell wraps to the first).
      const std::uint32_t next = cell == 2 ? 0 : cell + 1;
      cells_[cell] ^= static_cast<std::uint64_t>(x) << offset;
      cells_[next] ^= static_cast<std::uint64_t>(x) >> (cell_bits - offset);
    }
  }
  cells_[2] &= 0xffffffffULL;
  shift_ = static_cast<std::uint32_t>((shift_ + (n % kWidth) * kShift) % kWidth);
  length_ += n;
}

std::string QuickXorHash::digest() const {
  std::string out(20, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((cells_[0] >> (8 * i)) & 0xff);
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(8 + i)] = static_cast<char>((cells_[1] >> (8 * i)) & 0xff);
  for (int i = 0; i < 4; ++i) out[static_cast<std::size_t>(16 + i)] = static_cast<char>((cells_[2] >> (8 * i)) & 0xff);
  for (int i = 0; i < 8; ++i)
    out[static_cast<std::size_t>(12 + i)] =
        static_cast<char>(static_cast<unsigned char>(out[static_cast<std::size_t>(12 + i)]) ^ ((length_ >> (8 * i)) & 0xff));
  return out;
}

}  // namespace m365vault::emulator
