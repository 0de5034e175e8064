#pragma once
// OpenSSL 3 helpers the emulator needs: digests, HMAC, base64, the test CA and
// server certificate, and JWT signature checks for client assertions.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace m365vault::emulator {

std::string sha256(std::string_view data);  // raw 32 bytes
std::string sha1(std::string_view data);    // raw 20 bytes
std::string hmac_sha256(std::string_view key, std::string_view data);
std::string to_hex(std::string_view raw);
std::string random_bytes(std::size_t n);

std::string base64(std::string_view raw, bool url = false, bool pad = true);
// Accepts standard and URL alphabets, with or without padding; nullopt when malformed.
std::optional<std::string> unbase64(std::string_view text);

// An incremental SHA-256 (for hashing MIME without holding a second copy).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view data);
  std::string final();  // raw 32 bytes

 private:
  void* ctx_;
};

struct TlsFiles {
  std::filesystem::path ca_cert;      // what clients trust
  std::filesystem::path server_cert;  // server certificate then the CA
  std::filesystem::path server_key;
};

// Creates DIR/ca.pem, ca-key.pem, server.pem, server-key.pem on first use (EC P-256,
// SAN IP:127.0.0.1 and DNS:localhost) and returns their paths. Throws Error(internal).
TlsFiles ensure_tls_files(const std::filesystem::path& dir);

// A certificate registered for an app: its thumbprints and public key (PEM).
struct CertInfo {
  std::string x5t;        // base64url SHA-1 of the DER
  std::string x5t_s256;   // base64url SHA-256 of the DER
  std::string public_key_pem;
};
// Parses one PEM certificate; nullopt when it is not one.
std::optional<CertInfo> parse_certificate(std::string_view pem);

// Verifies an RS256 (PKCS#1 v1.5) or PS256 (PSS, SHA-256) signature.
bool verify_jwt_signature(std::string_view alg, const std::string& public_key_pem, std::string_view signing_input,
                          std::string_view signature);

}  // namespace m365vault::emulator
