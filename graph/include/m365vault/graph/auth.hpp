#pragma once
// Client-credentials proof for the identity platform (CONTRACT.md §2): the
// certificate and key of an app registration, and the signed client assertion
// (JWT) sent in place of a secret. OpenSSL stays inside auth.cpp.
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace m365vault::graph {

// An X.509 certificate with its RSA private key. Immutable and thread-safe once built.
class ClientCertificate {
 public:
  // Parses PEM text. Throws Error(Errc::invalid_config) naming what is wrong
  // ("certificate: not a PEM certificate", "private key: does not match the
  // certificate", "private key: not RSA (RS256/PS256 need RSA)"). The key text is
  // never part of a message.
  ClientCertificate(std::string_view certificate_pem, std::string_view private_key_pem);
  ~ClientCertificate();
  ClientCertificate(ClientCertificate&&) noexcept;
  ClientCertificate& operator=(ClientCertificate&&) noexcept;

  // base64url (no padding) of the SHA-1 / SHA-256 of the certificate's DER.
  const std::string& x5t() const;
  const std::string& x5t_s256() const;

  // base64url(header).base64url(claims).base64url(signature) over SHA-256 with
  // PKCS#1 v1.5 (RS256) or PSS, salt length 32 (PS256).
  std::string sign_jwt(std::string_view header_json, std::string_view claims_json, bool pss) const;

 private:
  std::unique_ptr<struct CertImpl> impl_;
};

// The assertion the token endpoint wants: header {alg: RS256, typ: JWT, x5t} or
// {alg: PS256, typ: JWT, x5t#S256}; claims aud = `audience` (the token endpoint
// URL), iss = sub = client id, jti = a random GUID, nbf = iat = now, exp = now + lifetime.
std::string make_client_assertion(const ClientCertificate& cert, std::string_view client_id,
                                  std::string_view audience, bool pss,
                                  std::chrono::system_clock::time_point now = std::chrono::system_clock::now(),
                                  std::chrono::seconds lifetime = std::chrono::seconds(600));

// base64url without padding (RFC 7515 §2), and its inverse (nullopt-free: returns
// "" for invalid input; for tests and JWT inspection).
std::string base64url_encode(std::string_view bytes);
std::string base64url_decode(std::string_view text);

}  // namespace m365vault::graph
