#include "m365vault/backup/quickxor.hpp"

#include "m365vault/storage/crypto.hpp"

namespace m365vault::backup {

void QuickXorHash::update(std::string_view data) {
  // Byte k of the stream lands at bit (11 * k) mod 160 of the block. Bytes 160
  // apart land on the same position, so each of the (at most) 160 positions
  // this call touches is visited once, with the XOR of its bytes.
  const std::size_t n = data.size();
  const std::size_t lanes = n < static_cast<std::size_t>(kWidth) ? n : static_cast<std::size_t>(kWidth);
  int pos = shift_;
  for (std::size_t i = 0; i < lanes; ++i) {
    std::uint8_t x = 0;
    for (std::size_t j = i; j < n; j += kWidth) x ^= static_cast<std::uint8_t>(data[j]);
    const int cell = pos / 64, bit = pos % 64;
    const int cell_bits = cell == 2 ? 32 : 64;
    cells_[cell] ^= static_cast<std::uint64_t>(x) << bit;
    if (bit > cell_bits - 8) {
      // The byte straddles the cell's end: its high bits wrap into the next cell
      // (the last cell wraps to the first).
      cells_[cell == 2 ? 0 : cell + 1] ^= static_cast<std::uint64_t>(x) >> (cell_bits - bit);
    }
    pos = (pos + kShift) % kWidth;
  }
  shift_ = static_cast<int>((shift_ + static_cast<std::uint64_t>(kShift) * (n % kWidth)) % kWidth);
  length_ += n;
}

std::array<std::uint8_t, 20> QuickXorHash::digest() const {
  std::array<std::uint8_t, 20> out{};
  for (int i = 0; i < 20; ++i) out[i] = static_cast<std::uint8_t>(cells_[i / 8] >> (8 * (i % 8)));
  for (int i = 0; i < 8; ++i) out[12 + i] ^= static_cast<std::uint8_t>(length_ >> (8 * i));
  return out;
}

std::string QuickXorHash::base64() const {
  auto d = digest();
  return storage::crypto::base64_encode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}

}  // namespace m365vault::backup
