#pragma once
// QuickXorHash, the content hash OneDrive for Business and SharePoint report in
// file.hashes.quickXorHash: a 160-bit block into which byte i is XORed after a left
// rotation by 11*i bits, then the 64-bit little-endian length XORed into the last 8
// bytes (OneDrive docs, code-snippets/quickxorhash.md). Incremental; not thread-safe.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace m365vault::emulator {

class QuickXorHash {
 public:
  void update(std::string_view data);
  // The 20-byte digest; the object may not be updated afterwards.
  std::string digest() const;

 private:
  std::array<std::uint64_t, 3> cells_{};  // 64 + 64 + 32 bits
  std::uint64_t length_ = 0;
  std::uint32_t shift_ = 0;  // bit position of the next byte, modulo 160
};

}  // namespace m365vault::emulator
