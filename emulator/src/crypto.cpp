#include "crypto.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <array>
#include <ctime>
#include <fstream>
#include <memory>

#include "m365vault/core/error.hpp"

namespace m365vault::emulator {

namespace {
struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
template <class T>
using Ptr = std::unique_ptr<T, Free>;

[[noreturn]] void fail(const std::string& what) { throw Error(Errc::internal, "tls: " + what); }

std::string digest(const EVP_MD* md, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), out, &n, md, nullptr);
  return std::string(reinterpret_cast<char*>(out), n);
}

std::string bio_string(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

Ptr<EVP_PKEY> new_ec_key() {
  Ptr<EVP_PKEY> k(EVP_EC_gen("P-256"));
  if (!k) fail("cannot generate an EC key");
  return k;
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Ptr<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || !X509_add_ext(cert, ext.get(), -1)) fail("cannot add extension");
}

Ptr<X509> make_cert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool ca, long serial) {
  Ptr<X509> c(X509_new());
  X509_set_version(c.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(c.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(c.get()), 60L * 60 * 24 * 3650);
  X509_set_pubkey(c.get(), key);
  X509_NAME* name = X509_get_subject_name(c.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("m365vault graph emulator"),
                             -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509* iss = issuer ? issuer : c.get();
  X509_set_issuer_name(c.get(), X509_get_subject_name(iss));
  if (ca) {
    add_ext(c.get(), iss, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(c.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(c.get(), iss, NID_subject_key_identifier, "hash");
  } else {
    add_ext(c.get(), iss, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(c.get(), iss, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    add_ext(c.get(), iss, NID_ext_key_usage, "serverAuth");
    add_ext(c.get(), iss, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
  }
  if (!X509_sign(c.get(), issuer_key ? issuer_key : key, EVP_sha256())) fail("cannot sign certificate");
  return c;
}

void write_pem(const std::filesystem::path& p, const std::string& text, bool secret) {
  auto tmp = p;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) fail("cannot write '" + tmp.string() + "'");
  }
  if (secret) std::filesystem::permissions(tmp, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  std::filesystem::rename(tmp, p);
}

std::string cert_pem(X509* c) {
  Ptr<BIO> b(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(b.get(), c);
  return bio_string(b.get());
}
std::string key_pem(EVP_PKEY* k) {
  Ptr<BIO> b(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(b.get(), k, nullptr, nullptr, 0, nullptr, nullptr);
  return bio_string(b.get());
}
}  // namespace

std::string sha256(std::string_view data) { return digest(EVP_sha256(), data); }
std::string sha1(std::string_view data) { return digest(EVP_sha1(), data); }

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &n);
  return std::string(reinterpret_cast<char*>(out), n);
}

std::string to_hex(std::string_view raw) {
  static const char* k = "0123456789abcdef";
  std::string s;
  s.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    s += k[c >> 4];
    s += k[c & 15];
  }
  return s;
}

std::string random_bytes(std::size_t n) {
  std::string s(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(s.data()), static_cast<int>(n)) != 1) fail("RAND_bytes failed");
  return s;
}

// Both write into a buffer sized once: the emulator turns every uploaded file and
// attachment into base64 and back (journaled operations), byte-at-a-time appends
// were a fifth of its CPU in bench/restore.
std::string base64(std::string_view raw, bool url, bool pad) {
  static const char* std_alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static const char* url_alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const char* a = url ? url_alpha : std_alpha;
  std::string out((raw.size() + 2) / 3 * 4, '\0');
  char* o = out.data();
  std::size_t i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  for (; i + 2 < raw.size(); i += 3) {
    std::uint32_t v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
    o[0] = a[v >> 18];
    o[1] = a[(v >> 12) & 63];
    o[2] = a[(v >> 6) & 63];
    o[3] = a[v & 63];
    o += 4;
  }
  if (i < raw.size()) {
    std::uint32_t v = p[i] << 16;
    if (i + 1 < raw.size()) v |= p[i + 1] << 8;
    *o++ = a[v >> 18];
    *o++ = a[(v >> 12) & 63];
    if (i + 1 < raw.size()) *o++ = a[(v >> 6) & 63];
    else if (pad) *o++ = '=';
    if (pad) *o++ = '=';
  }
  out.resize(static_cast<std::size_t>(o - out.data()));
  return out;
}

std::optional<std::string> unbase64(std::string_view text) {
  // Sextet per character (both alphabets); -2 padding, -3 line breaks, -1 invalid.
  static const auto table = [] {
    std::array<signed char, 256> t;
    t.fill(-1);
    for (int c = 0; c < 26; ++c) t['A' + c] = static_cast<signed char>(c), t['a' + c] = static_cast<signed char>(26 + c);
    for (int c = 0; c < 10; ++c) t['0' + c] = static_cast<signed char>(52 + c);
    t['+'] = t['-'] = 62;
    t['/'] = t['_'] = 63;
    t['='] = -2;
    t['\r'] = t['\n'] = -3;
    return t;
  }();
  std::string out(text.size() / 4 * 3 + 3, '\0');
  char* o = out.data();
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t pad = 0, i = 0;
  while (i < n) {
    if (bits == 0 && pad == 0 && i + 4 <= n) {  // four plain characters: three bytes
      const int a = table[p[i]], b = table[p[i + 1]], c = table[p[i + 2]], d = table[p[i + 3]];
      if ((a | b | c | d) >= 0) {
        const std::uint32_t v = static_cast<std::uint32_t>(a << 18 | b << 12 | c << 6 | d);
        o[0] = static_cast<char>(v >> 16);
        o[1] = static_cast<char>((v >> 8) & 0xff);
        o[2] = static_cast<char>(v & 0xff);
        o += 3;
        i += 4;
        continue;
      }
    }
    const int v = table[p[i++]];
    if (v == -2) {
      ++pad;
      continue;
    }
    if (v == -3) continue;
    if (v < 0) return std::nullopt;
    if (pad) return std::nullopt;  // data after padding
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      *o++ = static_cast<char>((acc >> bits) & 0xff);
    }
  }
  if (bits >= 6 || pad > 2) return std::nullopt;
  out.resize(static_cast<std::size_t>(o - out.data()));
  return out;
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr); }
Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
void Sha256::update(std::string_view d) { EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), d.data(), d.size()); }
std::string Sha256::final() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), out, &n);
  return std::string(reinterpret_cast<char*>(out), n);
}

TlsFiles ensure_tls_files(const std::filesystem::path& dir) {
  TlsFiles f{dir / "ca.pem", dir / "server.pem", dir / "server-key.pem"};
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail("cannot create '" + dir.string() + "': " + ec.message());
  if (std::filesystem::exists(f.ca_cert) && std::filesystem::exists(f.server_cert) &&
      std::filesystem::exists(f.server_key))
    return f;
  auto ca_key = new_ec_key();
  auto ca = make_cert(ca_key.get(), "m365vault graph emulator test CA", nullptr, nullptr, true, 1);
  auto srv_key = new_ec_key();
  auto srv = make_cert(srv_key.get(), "localhost", ca.get(), ca_key.get(), false,
                       static_cast<long>(std::time(nullptr)));
  write_pem(dir / "ca-key.pem", key_pem(ca_key.get()), true);
  write_pem(f.server_key, key_pem(srv_key.get()), true);
  write_pem(f.server_cert, cert_pem(srv.get()) + cert_pem(ca.get()), false);
  write_pem(f.ca_cert, cert_pem(ca.get()), false);  // last: its presence means "complete"
  return f;
}

std::optional<CertInfo> parse_certificate(std::string_view pem) {
  Ptr<BIO> b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Ptr<X509> c(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
  if (!c) return std::nullopt;
  unsigned char* der = nullptr;
  int n = i2d_X509(c.get(), &der);
  if (n <= 0) return std::nullopt;
  std::string d(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
  OPENSSL_free(der);
  CertInfo info;
  info.x5t = base64(sha1(d), true, false);
  info.x5t_s256 = base64(sha256(d), true, false);
  EVP_PKEY* pk = X509_get0_pubkey(c.get());
  if (!pk) return std::nullopt;
  Ptr<BIO> out(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(out.get(), pk);
  info.public_key_pem = bio_string(out.get());
  return info;
}

bool verify_jwt_signature(std::string_view alg, const std::string& public_key_pem, std::string_view signing_input,
                          std::string_view signature) {
  if (alg != "RS256" && alg != "PS256") return false;
  Ptr<BIO> b(BIO_new_mem_buf(public_key_pem.data(), static_cast<int>(public_key_pem.size())));
  Ptr<EVP_PKEY> key(PEM_read_bio_PUBKEY(b.get(), nullptr, nullptr, nullptr));
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA) return false;
  Ptr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (EVP_DigestVerifyInit(ctx.get(), &pctx, EVP_sha256(), nullptr, key.get()) != 1) return false;
  if (alg == "PS256") {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1) return false;
    if (EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) != 1) return false;
  } else if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                          reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()) == 1;
}

}  // namespace m365vault::emulator
