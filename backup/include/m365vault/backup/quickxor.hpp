#pragma once
// QuickXorHash, the content hash OneDrive for Business and SharePoint give in
// file.hashes.quickXorHash (base64 of 20 bytes). Written from the published
// description (CONTRACT.md 8.1: a 160-bit block, each input byte XORed in at a
// position that advances 11 bits per byte, the little-endian 64-bit length XORed
// into the last 8 bytes), independently of the emulator's implementation, and
// checked against rclone's published vectors (tests/backup/quickxor_test.cpp).
// Streaming: update() any number of times, in pieces of any size.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace m365vault::backup {

class QuickXorHash {
 public:
  void update(std::string_view data);
  // The 20-byte digest of everything given so far (the state is left as is).
  std::array<std::uint8_t, 20> digest() const;
  // digest() in base64, as Graph spells it.
  std::string base64() const;

 private:
  static constexpr std::size_t kWidth = 160, kShift = 11;
  // Byte k of the stream lands at bit (11 * k) mod 160 of the block, so bytes 160
  // apart land at the same place: update() only XORs the stream into 160 lanes
  // (lane = k mod 160, one pass, a word at a time) and digest() places each lane.
  static constexpr int kWords = static_cast<int>(kWidth / 8);
  std::array<std::uint64_t, kWords> lanes_{};  // lane i is byte i of their object representation
  std::uint64_t length_ = 0;
};

}  // namespace m365vault::backup
