// QuickXorHash against rclone's published vectors
// (backend/onedrive/quickxorhash/quickxorhash_test.go), whole and in pieces.
#include <catch2/catch.hpp>

#include <algorithm>

#include "m365vault/backup/quickxor.hpp"
#include "m365vault/storage/crypto.hpp"

using m365vault::backup::QuickXorHash;

namespace {

struct Vector {
  const char* in;   // base64 of the input
  const char* out;  // base64 of the digest
};

// A selection: empty, short, the 20-byte block boundary, past 64, and inputs
// longer than the 160-byte lane period.
const Vector kVectors[] = {
    {"", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="},
    {"Sg==", "SgAAAAAAAAAAAAAAAQAAAAAAAAA="},
    {"tbQ=", "taAFAAAAAAAAAAAAAgAAAAAAAAA="},
    {"0pZP", "0rDEEwAAAAAAAAAAAwAAAAAAAAA="},
    {"/aNzzCFPS/A=", "/RjFHJgRgicsAR4ACAAAAAAAAAA="},
    {"2fuxhBJXtpWFe8dOfdGeHw==", "O9tHLAghgSvYohKFyMMxnNCHaHg="},
    {"T6LYJIfDh81JrAK309H2JMJTXis=", "zBTHrspn3mEcohlJdIUAbjGNaNg="},
    {"DWAAX5/CIfrmErgZa8ot6ZraeSbu", "LR2Z0PjuRYGKQB/mhQAuMrAGZbQ="},
    {"Mb7EGva2rEE5fENDL85P+BsapHEEjv2/siVhKjvAQe02feExVOQSkfmuYzU/kTF1MaKjPmKF/w+c"
     "bvwfdWL8aQ==",
     "n1anP5NfvD4XDYWIeRPW3ZkPv1Y="},
    {"PfxMcUd0vIW6VbHG/uj/Y0W6qEoKmyBD0nYebEKazKaKG+UaDqBEcmQjbfQeVnVLuodMoPp7P7TR"
     "1htX5n2VnkHh22xDyoJ8C/ZQKiSNqQfXvh83judf4RVr9exJCud8Uvgip6aVZTaPrJHVjQhMCp/d"
     "EnGvqg0oN5OVkM2qqAXvA0teKUDhgNM71sDBVBCGXxNOR2bpbD1iM4dnuT0ey4L+loXEHTL0fqMe"
     "UcEi2asgImnlNakwenDzz0x57aBwyq3AspCFGB1ncX4yYCr/OaCcS5OKi/00WH+wNQU3",
     "QX/YEpG0gDsmhEpCdWhsxDzsfVE="},
    {"qwGf2ESubE5jOUHHyc94ORczFYYbc2OmEzo+hBIyzJiNwAzC8PvJqtTzwkWkSslgHFGWQZR2BV5+"
     "uYTrYT7HVwRM40vqfj0dBgeDENyTenIOL1LHkjtDKoXEnQ0mXAHoJ8PjbNC93zi5TovVRXTNzfGE"
     "s5dpWVqxUzb5lc7dwkyvOluBw482mQ4xrzYyIY1t+//OrNi1ObGXuUw2jBQOFfJVj2Y6BOyYmfB1"
     "y36eBxi3zxeG5d5NYjm2GSh6e08QMAwu3zrINcqIzLOuNIiGXBtl7DjKt7b5wqi4oFiRpZsCyx2s"
     "mhSrdrtK/CkdU6nDN+34vSR/M8rZpWQdBE7a8g==",
     "WYT9JY3JIo/pEBp+tIM6Gt2nyTM="},
    {"w0LGhqU1WXFbdavqDE4kAjEzWLGGzmTNikzqnsiXHx2KRReKVTxkv27u3UcEz9+lbMvYl4xFf2Z4"
     "aE1xRBBNd1Ke5C0zToSaYw5o4B/7X99nKK2/XaUX1byLow2aju2XJl2OpKpJg+tSJ2fmjIJTkfuY"
     "Uz574dFX6/VXxSxwGH/xQEAKS5TCsBK3CwnuG1p5SAsQq3gGVozDWyjEBcWDMdy8/AIFrj/y03Lf"
     "c/RNRCQTAfZbnf2QwV7sluw4fH3XJr07UoD0YqN+7XZzidtrwqMY26fpLZnyZjnBEt1FAZWO7RnK"
     "G5asg8xRk9YaDdedXdQSJAOy6bWEWlABj+tVAigBxavaluUH8LOj+yfCFldJjNLdi90fVHkUD/m4"
     "Mr5OtmupNMXPwuG3EQlqWUVpQoYpUYKLsk7a5Mvg6UFkiH596y5IbJEVCI1Kb3D1",
     "e3+wo77iKcILiZegnzyUNcjCdoQ="},
};

}  // namespace

TEST_CASE("quickxorhash: rclone's vectors, whole and in pieces of every size", "[unit]") {
  for (auto& v : kVectors) {
    auto in = m365vault::storage::crypto::base64_decode(v.in);
    REQUIRE(in);
    for (std::size_t piece : {std::size_t(0), std::size_t(1), std::size_t(3), std::size_t(7), std::size_t(64),
                              std::size_t(159), std::size_t(161)}) {
      QuickXorHash h;
      if (piece == 0) {
        h.update(*in);
      } else {
        for (std::size_t i = 0; i < in->size(); i += piece)
          h.update(std::string_view(*in).substr(i, std::min(piece, in->size() - i)));
      }
      INFO("input of " << in->size() << " bytes in pieces of " << piece);
      CHECK(h.base64() == v.out);
    }
  }
}

namespace {
// The description, bit by bit: byte k XORed in at bit 11 * k mod 160 (wrapping
// past bit 159), then the length XORed into the last 8 bytes. Slow; long inputs
// only here, where the vectors above stop at a few hundred bytes.
std::array<std::uint8_t, 20> by_the_book(const std::string& data) {
  std::array<std::uint8_t, 20> block{};
  for (std::size_t k = 0; k < data.size(); ++k)
    for (int b = 0; b < 8; ++b)
      if ((static_cast<unsigned char>(data[k]) >> b) & 1) {
        const std::size_t bit = (11 * k + static_cast<std::size_t>(b)) % 160;
        block[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      }
  const std::uint64_t n = data.size();
  for (int i = 0; i < 8; ++i) block[12 + i] ^= static_cast<std::uint8_t>(n >> (8 * i));
  return block;
}
}  // namespace

TEST_CASE("quickxorhash: long inputs in uneven pieces match the description bit by bit", "[unit]") {
  std::string data(1'000'003, '\0');
  std::uint64_t x = 0x9e3779b97f4a7c15u;
  for (auto& c : data) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>(x);
  }
  const auto want = by_the_book(data);
  QuickXorHash whole;
  whole.update(data);
  CHECK(whole.digest() == want);
  // Pieces that start at every offset within the 160-byte period, and long ones.
  QuickXorHash parts;
  std::size_t at = 0, piece = 1;
  while (at < data.size()) {
    const std::size_t n = std::min(piece, data.size() - at);
    parts.update(std::string_view(data).substr(at, n));
    at += n;
    piece = piece * 3 % 100'003 + 1;
  }
  CHECK(parts.digest() == want);
  CHECK(parts.base64() == whole.base64());
}
