#pragma once
// Thin, checked wrappers over OpenSSL 3 EVP: hashes, HMAC, AES-256-GCM, scrypt and
// the CSPRNG. Every function is thread-safe; failures inside OpenSSL throw
// Error(Errc::internal); an authentication failure is a value (nullopt), so callers
// can name what failed.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace m365vault::storage::crypto {

using Digest = std::array<std::uint8_t, 32>;

Digest sha256(std::string_view data);
// SHA-256 of a stream fed piece by piece (content checked as it arrives).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view data);
  Digest finish();  // once

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};
Digest hmac_sha256(std::string_view key, std::string_view data);
std::string to_hex(const std::uint8_t* p, std::size_t n);
inline std::string to_hex(const Digest& d) { return to_hex(d.data(), d.size()); }
inline std::string to_hex(std::string_view s) { return to_hex(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()); }
// Lower- or upper-case hex to bytes; nullopt on odd length or a non-hex digit.
std::optional<std::string> from_hex(std::string_view hex);
inline std::string_view as_view(const Digest& d) { return {reinterpret_cast<const char*>(d.data()), d.size()}; }

// `n` bytes from the OpenSSL CSPRNG.
std::string random_bytes(std::size_t n);

inline constexpr std::size_t kNonceSize = 12;
inline constexpr std::size_t kTagSize = 16;
inline constexpr std::size_t kSealOverhead = kNonceSize + kTagSize;

// AES-256-GCM with a fresh random nonce: returns nonce || ciphertext || tag.
// `key` is 32 bytes; `aad` is authenticated, not stored.
std::string seal(std::string_view key, std::string_view plaintext, std::string_view aad);
// Appends the sealed form to `out` (avoids a copy for pack building).
void seal_into(std::string& out, std::string_view key, std::string_view plaintext, std::string_view aad);
// Seals in place: `p` holds kNonceSize bytes of room, then `n` bytes of plaintext,
// then kTagSize bytes of room; afterwards it holds nonce || ciphertext || tag (what
// seal() returns). Spares a pack writer a copy of every blob.
void seal_in_place(char* p, std::size_t n, std::string_view key, std::string_view aad);
// Opens what seal() produced; nullopt when the tag, key, nonce or aad do not match.
std::optional<std::string> open(std::string_view key, std::string_view sealed, std::string_view aad);

struct ScryptParams {
  std::uint64_t n = 1u << 15;  // CPU/memory cost: 32 MiB with r = 8
  std::uint32_t r = 8;
  std::uint32_t p = 1;
};
// scrypt through EVP_KDF; `out_len` bytes.
std::string scrypt(std::string_view passphrase, std::string_view salt, const ScryptParams& params,
                   std::size_t out_len = 32);

// HKDF-SHA256 (RFC 5869) through EVP_KDF; `out_len` bytes.
std::string hkdf_sha256(std::string_view ikm, std::string_view salt, std::string_view info, std::size_t out_len = 32);

std::string base64_encode(std::string_view data);
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace m365vault::storage::crypto
