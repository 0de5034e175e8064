// The client assertion's shape (CONTRACT §2) checked independently: header and
// claims decoded, thumbprints recomputed by the test helper, signature verified
// with the certificate's public key for RS256 (PKCS#1 v1.5) and PS256 (PSS).
#include <catch2/catch.hpp>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "emulator_support.hpp"
#include "m365vault/core/error.hpp"
#include "m365vault/graph/auth.hpp"

using namespace m365vault::graph;
using json = nlohmann::json;

namespace {

std::vector<std::string> split_jwt(const std::string& jwt) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    auto dot = jwt.find('.', start);
    parts.push_back(jwt.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

bool verify(const std::string& cert_pem, const std::string& jwt, bool pss) {
  auto parts = split_jwt(jwt);
  const std::string input = parts[0] + "." + parts[1];
  const std::string sig = base64url_decode(parts[2]);
  std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())), BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> x(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr), X509_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pub(X509_get_pubkey(x.get()), EVP_PKEY_free);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_PKEY_CTX* pctx = nullptr;
  REQUIRE(EVP_DigestVerifyInit(ctx.get(), &pctx, EVP_sha256(), nullptr, pub.get()) == 1);
  if (pss) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32);
  }
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
}

}  // namespace

TEST_CASE("client assertion: RS256 with x5t and PS256 with x5t#S256, claims per the identity platform", "[unit]") {
  auto tc = m365vault::test::make_test_cert();
  ClientCertificate cert(tc.cert_pem, tc.key_pem);
  CHECK(cert.x5t() == tc.x5t);
  CHECK(cert.x5t_s256() == tc.x5t_s256);
  CHECK(cert.x5t_s256().size() == 43);

  const std::string aud = "https://login.microsoftonline.com/t-1/oauth2/v2.0/token";
  const auto now = std::chrono::system_clock::from_time_t(1700000000);
  for (bool pss : {false, true}) {
    auto jwt = make_client_assertion(cert, "app-1", aud, pss, now);
    auto parts = split_jwt(jwt);
    REQUIRE(parts.size() == 3);
    for (auto& p : parts) CHECK(p.find_first_of("+/=") == std::string::npos);  // base64url, unpadded
    auto header = json::parse(base64url_decode(parts[0]));
    auto claims = json::parse(base64url_decode(parts[1]));
    CHECK(header["typ"] == "JWT");
    if (pss) {
      CHECK(header["alg"] == "PS256");
      CHECK(header["x5t#S256"] == tc.x5t_s256);
      CHECK_FALSE(header.contains("x5t"));
    } else {
      CHECK(header["alg"] == "RS256");
      CHECK(header["x5t"] == tc.x5t);
      CHECK_FALSE(header.contains("x5t#S256"));
    }
    CHECK(claims["aud"] == aud);
    CHECK(claims["iss"] == "app-1");
    CHECK(claims["sub"] == "app-1");
    CHECK(claims["jti"].get<std::string>().size() == 36);
    CHECK(claims["nbf"] == 1700000000);
    CHECK(claims["exp"] == 1700000600);
    CHECK(verify(tc.cert_pem, jwt, pss));
    CHECK_FALSE(verify(tc.cert_pem, jwt, !pss));  // the padding really differs
    // jti is fresh every time (the identity platform rejects replays).
    auto again = json::parse(base64url_decode(split_jwt(make_client_assertion(cert, "app-1", aud, pss, now))[1]));
    CHECK(again["jti"] != claims["jti"]);
  }
}

TEST_CASE("certificate problems are named without showing the key", "[unit]") {
  auto a = m365vault::test::make_test_cert();
  auto b = m365vault::test::make_test_cert();
  CHECK_THROWS_WITH(ClientCertificate("nope", a.key_pem), "certificate: not a PEM certificate");
  CHECK_THROWS_WITH(ClientCertificate(a.cert_pem, "nope"), Catch::Contains("private key: not a PEM private key"));
  CHECK_THROWS_WITH(ClientCertificate(a.cert_pem, b.key_pem), "private key: does not match the certificate");
}

TEST_CASE("base64url round trip", "[unit]") {
  for (const std::string& s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\xfb\xff\xfe", 3)}) {
    CHECK(base64url_decode(base64url_encode(s)) == s);
  }
  CHECK(base64url_encode(std::string("\xfb\xff\xfe", 3)) == "-__-");
  // The example of CONTRACT §2: thumbprint hex 84E05C1D...5534 -> hOBcHZi846VCHSJbFAs26Go9VTQ.
  const std::string hex = "84E05C1D98BCE3A5421D225B140B36E86A3D5534";
  std::string raw;
  for (std::size_t i = 0; i < hex.size(); i += 2) raw += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  CHECK(base64url_encode(raw) == "hOBcHZi846VCHSJbFAs26Go9VTQ");
}
