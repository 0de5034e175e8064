#include "m365vault/storage/crypto.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <cstring>
#include <memory>

#include "m365vault/core/error.hpp"

namespace m365vault::storage::crypto {

namespace {
struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  void operator()(EVP_MAC* m) const { EVP_MAC_free(m); }
  void operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }
  void operator()(EVP_KDF* k) const { EVP_KDF_free(k); }
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};

[[noreturn]] void ossl_fail(const char* what) { throw Error(Errc::internal, std::string("openssl: ") + what + " failed"); }

const EVP_CIPHER* aes_gcm() {
  static EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  if (!c) ossl_fail("fetch AES-256-GCM");
  return c;
}

EVP_MAC* hmac_alg() {
  static EVP_MAC* m = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (!m) ossl_fail("fetch HMAC");
  return m;
}

const unsigned char* u8(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }
}  // namespace

Digest sha256(std::string_view data) {
  Digest d{};
  unsigned int len = 0;
  if (!EVP_Digest(data.data(), data.size(), d.data(), &len, EVP_sha256(), nullptr)) ossl_fail("sha256");
  return d;
}

struct Sha256::Ctx {
  std::unique_ptr<EVP_MD_CTX, CtxFree> md{EVP_MD_CTX_new()};
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  if (!ctx_->md || !EVP_DigestInit_ex(ctx_->md.get(), EVP_sha256(), nullptr)) ossl_fail("sha256 init");
}
Sha256::~Sha256() = default;
void Sha256::update(std::string_view data) {
  if (!EVP_DigestUpdate(ctx_->md.get(), data.data(), data.size())) ossl_fail("sha256 update");
}
Digest Sha256::finish() {
  Digest d{};
  unsigned int len = 0;
  if (!EVP_DigestFinal_ex(ctx_->md.get(), d.data(), &len)) ossl_fail("sha256 final");
  return d;
}

Digest hmac_sha256(std::string_view key, std::string_view data) {
  // A context per call; the fetched algorithm is shared (fetching is the slow part).
  std::unique_ptr<EVP_MAC_CTX, CtxFree> ctx(EVP_MAC_CTX_new(hmac_alg()));
  char digest_name[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0), OSSL_PARAM_END};
  Digest d{};
  std::size_t len = 0;
  if (!ctx || !EVP_MAC_init(ctx.get(), u8(key), key.size(), params) ||
      !EVP_MAC_update(ctx.get(), u8(data), data.size()) || !EVP_MAC_final(ctx.get(), d.data(), &len, d.size()))
    ossl_fail("hmac-sha256");
  return d;
}

std::string to_hex(const std::uint8_t* p, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(n * 2, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    s[2 * i] = kDigits[p[i] >> 4];
    s[2 * i + 1] = kDigits[p[i] & 15];
  }
  return s;
}

std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2) return std::nullopt;
  auto val = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out(hex.size() / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = val(hex[2 * i]), lo = val(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<char>(hi * 16 + lo);
  }
  return out;
}

std::string random_bytes(std::size_t n) {
  std::string s(n, '\0');
  if (n && RAND_bytes(reinterpret_cast<unsigned char*>(s.data()), static_cast<int>(n)) != 1) ossl_fail("RAND_bytes");
  return s;
}

void seal_into(std::string& out, std::string_view key, std::string_view plaintext, std::string_view aad) {
  std::size_t base = out.size();
  out.resize(base + kNonceSize + plaintext.size() + kTagSize);
  if (!plaintext.empty()) std::memcpy(out.data() + base + kNonceSize, plaintext.data(), plaintext.size());
  seal_in_place(out.data() + base, plaintext.size(), key, aad);
}

void seal_in_place(char* where, std::size_t n, std::string_view key, std::string_view aad) {
  if (key.size() != 32) throw Error(Errc::internal, "seal: key must be 32 bytes");
  std::unique_ptr<EVP_CIPHER_CTX, CtxFree> ctx(EVP_CIPHER_CTX_new());
  auto* p = reinterpret_cast<unsigned char*>(where);
  if (RAND_bytes(p, kNonceSize) != 1) ossl_fail("RAND_bytes");
  int len = 0;
  if (!ctx || !EVP_EncryptInit_ex2(ctx.get(), aes_gcm(), u8(key), p, nullptr)) ossl_fail("gcm init");
  if (!aad.empty() && !EVP_EncryptUpdate(ctx.get(), nullptr, &len, u8(aad), static_cast<int>(aad.size())))
    ossl_fail("gcm aad");
  std::size_t done = 0;
  unsigned char* c = p + kNonceSize;  // GCM encrypts in place: input and output are the same bytes
  while (done < n) {  // int-sized steps
    int step = static_cast<int>(std::min<std::size_t>(n - done, 1u << 30));
    if (!EVP_EncryptUpdate(ctx.get(), c + done, &len, c + done, step)) ossl_fail("gcm encrypt");
    done += static_cast<std::size_t>(len);
  }
  if (!EVP_EncryptFinal_ex(ctx.get(), c + done, &len)) ossl_fail("gcm final");
  if (!EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize, c + n)) ossl_fail("gcm tag");
}

std::string seal(std::string_view key, std::string_view plaintext, std::string_view aad) {
  std::string out;
  seal_into(out, key, plaintext, aad);
  return out;
}

std::optional<std::string> open(std::string_view key, std::string_view sealed, std::string_view aad) {
  if (key.size() != 32) throw Error(Errc::internal, "open: key must be 32 bytes");
  if (sealed.size() < kSealOverhead) return std::nullopt;
  std::unique_ptr<EVP_CIPHER_CTX, CtxFree> ctx(EVP_CIPHER_CTX_new());
  std::size_t ct_len = sealed.size() - kSealOverhead;
  const unsigned char* nonce = u8(sealed);
  const unsigned char* ct = nonce + kNonceSize;
  std::string plain(ct_len, '\0');
  auto* out = reinterpret_cast<unsigned char*>(plain.data());
  int len = 0;
  if (!ctx || !EVP_DecryptInit_ex2(ctx.get(), aes_gcm(), u8(key), nonce, nullptr)) ossl_fail("gcm init");
  if (!aad.empty() && !EVP_DecryptUpdate(ctx.get(), nullptr, &len, u8(aad), static_cast<int>(aad.size())))
    ossl_fail("gcm aad");
  std::size_t done = 0;
  while (done < ct_len) {
    int step = static_cast<int>(std::min<std::size_t>(ct_len - done, 1u << 30));
    if (!EVP_DecryptUpdate(ctx.get(), out + done, &len, ct + done, step)) ossl_fail("gcm decrypt");
    done += static_cast<std::size_t>(len);
  }
  if (!EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize, const_cast<unsigned char*>(ct + ct_len)))
    ossl_fail("gcm set tag");
  if (EVP_DecryptFinal_ex(ctx.get(), out + done, &len) != 1) return std::nullopt;
  return plain;
}

std::string scrypt(std::string_view passphrase, std::string_view salt, const ScryptParams& prm, std::size_t out_len) {
  std::unique_ptr<EVP_KDF, CtxFree> kdf(EVP_KDF_fetch(nullptr, "SCRYPT", nullptr));
  if (!kdf) ossl_fail("fetch SCRYPT");
  std::unique_ptr<EVP_KDF_CTX, CtxFree> ctx(EVP_KDF_CTX_new(kdf.get()));
  std::uint64_t n = prm.n;
  std::uint32_t r = prm.r, p = prm.p;
  std::uint64_t maxmem = 1ull << 31;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, const_cast<char*>(passphrase.data()), passphrase.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(salt.data()), salt.size()),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
      OSSL_PARAM_END};
  std::string out(out_len, '\0');
  if (!ctx || EVP_KDF_derive(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), out_len, params) != 1)
    throw Error(Errc::invalid_config, "scrypt failed (n=" + std::to_string(n) + " r=" + std::to_string(r) +
                                          " p=" + std::to_string(p) + "): check the repository's kdf parameters");
  return out;
}

std::string hkdf_sha256(std::string_view ikm, std::string_view salt, std::string_view info, std::size_t out_len) {
  std::unique_ptr<EVP_KDF, CtxFree> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) ossl_fail("fetch HKDF");
  std::unique_ptr<EVP_KDF_CTX, CtxFree> ctx(EVP_KDF_CTX_new(kdf.get()));
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(ikm.data()), ikm.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(salt.data()), salt.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()), info.size()),
      OSSL_PARAM_END};
  std::string out(out_len, '\0');
  if (!ctx || EVP_KDF_derive(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), out_len, params) != 1)
    ossl_fail("HKDF derive");
  return out;
}

std::string base64_encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), u8(data), static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4) return std::nullopt;
  std::string out(text.size() / 4 * 3 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), u8(text), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  std::size_t pad = 0;
  if (!text.empty() && text.back() == '=') ++pad;
  if (text.size() > 1 && text[text.size() - 2] == '=') ++pad;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

}  // namespace m365vault::storage::crypto
