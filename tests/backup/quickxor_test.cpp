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
