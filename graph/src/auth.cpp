#include "m365vault/graph/auth.hpp"

#include <nlohmann/json.hpp>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <cstdio>

#include "m365vault/core/error.hpp"

namespace m365vault::graph {

namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

BioPtr memory_bio(std::string_view pem) {
  BioPtr b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!b) throw Error(Errc::internal, "openssl: cannot allocate a memory BIO");
  return b;
}

std::string cert_digest(X509* x, const EVP_MD* md) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  if (X509_digest(x, md, out, &n) != 1) throw Error(Errc::internal, "certificate: cannot compute its thumbprint");
  return base64url_encode(std::string_view(reinterpret_cast<const char*>(out), n));
}

std::string random_guid() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) throw Error(Errc::internal, "openssl: random generator failed");
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  char s[37];
  std::snprintf(s, sizeof s, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
                b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return s;
}

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (auto& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

std::string base64url_decode(std::string_view text) {
  std::string s(text);
  for (auto& c : s) c = c == '-' ? '+' : c == '_' ? '/' : c;
  const std::size_t pad = (4 - s.size() % 4) % 4;
  if (pad == 3) return {};
  s.append(pad, '=');
  std::string out(s.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (n < 0) return {};
  out.resize(static_cast<std::size_t>(n) - pad);  // EVP_DecodeBlock counts the padding as zero bytes
  return out;
}

struct CertImpl {
  X509Ptr cert;
  PkeyPtr key;
  std::string x5t, x5t_s256;
};

ClientCertificate::ClientCertificate(std::string_view certificate_pem, std::string_view private_key_pem)
    : impl_(std::make_unique<CertImpl>()) {
  auto cb = memory_bio(certificate_pem);
  impl_->cert.reset(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
  if (!impl_->cert) {
    ERR_clear_error();
    throw Error(Errc::invalid_config, "certificate: not a PEM certificate");
  }
  auto kb = memory_bio(private_key_pem);
  impl_->key.reset(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  if (!impl_->key) {
    ERR_clear_error();
    throw Error(Errc::invalid_config, "private key: not a PEM private key (or it is encrypted)");
  }
  if (EVP_PKEY_get_base_id(impl_->key.get()) != EVP_PKEY_RSA)
    throw Error(Errc::invalid_config, "private key: not RSA (RS256 and PS256 need an RSA key)");
  if (X509_check_private_key(impl_->cert.get(), impl_->key.get()) != 1) {
    ERR_clear_error();
    throw Error(Errc::invalid_config, "private key: does not match the certificate");
  }
  impl_->x5t = cert_digest(impl_->cert.get(), EVP_sha1());
  impl_->x5t_s256 = cert_digest(impl_->cert.get(), EVP_sha256());
}

ClientCertificate::~ClientCertificate() = default;
ClientCertificate::ClientCertificate(ClientCertificate&&) noexcept = default;
ClientCertificate& ClientCertificate::operator=(ClientCertificate&&) noexcept = default;

const std::string& ClientCertificate::x5t() const { return impl_->x5t; }
const std::string& ClientCertificate::x5t_s256() const { return impl_->x5t_s256; }

std::string ClientCertificate::sign_jwt(std::string_view header_json, std::string_view claims_json, bool pss) const {
  const std::string input = base64url_encode(header_json) + "." + base64url_encode(claims_json);
  MdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (!ctx || EVP_DigestSignInit(ctx.get(), &pctx, EVP_sha256(), nullptr, impl_->key.get()) != 1)
    throw Error(Errc::internal, "client assertion: cannot start signing");
  if (pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
              EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
    throw Error(Errc::internal, "client assertion: cannot select PSS padding");
  std::size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1)
    throw Error(Errc::internal, "client assertion: signing failed");
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1)
    throw Error(Errc::internal, "client assertion: signing failed");
  sig.resize(len);
  return input + "." + base64url_encode(sig);
}

std::string make_client_assertion(const ClientCertificate& cert, std::string_view client_id,
                                  std::string_view audience, bool pss, std::chrono::system_clock::time_point now,
                                  std::chrono::seconds lifetime) {
  nlohmann::json header = {{"alg", pss ? "PS256" : "RS256"}, {"typ", "JWT"}};
  if (pss) header["x5t#S256"] = cert.x5t_s256();
  else header["x5t"] = cert.x5t();
  const auto t = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  nlohmann::json claims = {{"aud", audience},      {"iss", client_id}, {"sub", client_id}, {"jti", random_guid()},
                           {"nbf", t},            {"iat", t},         {"exp", t + lifetime.count()}};
  return cert.sign_jwt(header.dump(), claims.dump(), pss);
}

}  // namespace m365vault::graph
