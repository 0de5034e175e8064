#include "emulator_support.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/env.hpp"

namespace m365vault::test {

namespace {

std::string read_all(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string b64url(const std::string& raw) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  for (; i + 2 < raw.size(); i += 3) {
    unsigned v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
    out += a[v >> 18];
    out += a[(v >> 12) & 63];
    out += a[(v >> 6) & 63];
    out += a[v & 63];
  }
  if (i < raw.size()) {
    unsigned v = p[i] << 16;
    if (i + 1 < raw.size()) v |= p[i + 1] << 8;
    out += a[v >> 18];
    out += a[(v >> 12) & 63];
    if (i + 1 < raw.size()) out += a[(v >> 6) & 63];
  }
  return out;
}

std::string digest(const EVP_MD* md, const std::string& d) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(d.data(), d.size(), out, &n, md, nullptr);
  return std::string(reinterpret_cast<char*>(out), n);
}

std::string url_only_target(const std::string& base, const std::string& t) {
  if (t.rfind(base, 0) == 0) return t.substr(base.size());
  if (t.rfind("http", 0) == 0) FAIL("link does not point back at the emulator: " + t);
  return t;
}

}  // namespace

// Byte i is XORed into a 160-bit block at bit 11*i (mod 160), then the length goes
// little-endian into the last 8 bytes.
std::string naive_quickxor(const std::string& data) {
  std::vector<bool> bits(160, false);
  for (std::size_t i = 0; i < data.size(); ++i) {
    auto c = static_cast<unsigned char>(data[i]);
    for (int b = 0; b < 8; ++b)
      if (c & (1 << b)) bits[(i * 11 + static_cast<std::size_t>(b)) % 160] = !bits[(i * 11 + static_cast<std::size_t>(b)) % 160];
  }
  std::string out(20, '\0');
  for (std::size_t k = 0; k < 160; ++k)
    if (bits[k]) out[k / 8] = static_cast<char>(static_cast<unsigned char>(out[k / 8]) | (1 << (k % 8)));
  std::uint64_t len = data.size();
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(12 + i)] ^= static_cast<char>((len >> (8 * i)) & 0xff);
  return out;
}

std::string base64_encode(const std::string& raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(raw.data()),
                          static_cast<int>(raw.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string hex_digest(const EVP_MD* md, const std::string& d, bool upper) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(d.data(), d.size(), out, &n, md, nullptr);
  std::string h;
  char b[3];
  for (unsigned i = 0; i < n; ++i) {
    std::snprintf(b, sizeof b, upper ? "%02X" : "%02x", out[i]);
    h += b;
  }
  return h;
}

std::string new_uuid() {
  unsigned char b[16];
  RAND_bytes(b, 16);
  char s[40];
  std::snprintf(s, sizeof s, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
                b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return s;
}

EmulatorProcess::EmulatorProcess(const std::string& state_dir)
    : dir_(std::make_unique<TempDir>("graph-emulator")), state_dir_(state_dir) {
  start();
}

EmulatorProcess::~EmulatorProcess() {
  if (proc_ && proc_->running()) {
    proc_->signal(SIGTERM);
    proc_->wait(std::chrono::seconds(5));
  }
}

void EmulatorProcess::start() {
  auto out = (*dir_ / "emulator.log").string();
  std::ofstream(out, std::ios::trunc).close();
  ProcessOptions o;
  o.argv = {GRAPH_EMULATOR_BIN, "--listen", "127.0.0.1:0", "--tls-dir", (*dir_ / "tls").string()};
  if (!state_dir_.empty()) {
    o.argv.push_back("--state-dir");
    o.argv.push_back(state_dir_);
  }
  o.output_file = out;
  proc_ = std::make_unique<ChildProcess>(o);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  for (;;) {
    auto text = read_all(out);
    auto at = text.find("listening on ");
    if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
      base_ = text.substr(at + 13, text.find('\n', at) - at - 13);
      port_ = static_cast<unsigned short>(std::stoi(base_.substr(base_.rfind(':') + 1)));
      break;
    }
    if (!proc_->running() || std::chrono::steady_clock::now() > deadline)
      FAIL("graph-emulator did not start: " + text);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ca_ = (*dir_ / "tls" / "ca.pem").string();
}

void EmulatorProcess::restart() {
  stop();
  start();
}

int EmulatorProcess::stop() {
  proc_->signal(SIGTERM);
  auto rc = proc_->wait(std::chrono::seconds(10));
  REQUIRE(rc.has_value());
  return *rc;
}

HttpResult EmulatorProcess::call(const std::string& method, const std::string& target,
                                 std::vector<std::pair<std::string, std::string>> headers, const std::string& body) const {
  HttpRequest r;
  r.method = method;
  r.port = port_;
  r.target = url_only_target(base_, target);
  r.headers = std::move(headers);
  r.body = body;
  r.tls = true;
  r.ca_file = ca_;
  r.timeout = std::chrono::milliseconds(30000);
  return http_request(r);
}

json EmulatorProcess::admin(const std::string& method, const std::string& path, const json& body, int expect) const {
  auto r = call(method, path, {{"Content-Type", "application/json"}}, body.is_null() ? "" : body.dump());
  INFO(method << " " << path << " -> " << r.status << " " << r.body);
  REQUIRE(r.status == expect);
  if (r.body.empty()) return nullptr;
  return json::parse(r.body);
}

json EmulatorProcess::create_tenant(json spec) const { return admin("POST", "/_emulator/tenants", spec, 201); }

std::string EmulatorProcess::token(const std::string& tenant, const std::string& client, const std::string& secret) const {
  auto r = call("POST", "/" + tenant + "/oauth2/v2.0/token", {{"Content-Type", "application/x-www-form-urlencoded"}},
                "grant_type=client_credentials&client_id=" + client + "&client_secret=" + secret +
                    "&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default");
  INFO(r.body);
  REQUIRE(r.status == 200);
  return json::parse(r.body)["access_token"].get<std::string>();
}

HttpResult EmulatorProcess::graph(const std::string& target, const std::string& token,
                                  std::vector<std::pair<std::string, std::string>> headers) const {
  headers.emplace_back("Authorization", "Bearer " + token);
  return call("GET", target, headers);
}

json EmulatorProcess::graph_json(const std::string& target, const std::string& token,
                                 std::vector<std::pair<std::string, std::string>> headers) const {
  auto r = graph(target, token, std::move(headers));
  INFO("GET " << target << " -> " << r.status << " " << r.body.substr(0, 500));
  REQUIRE(r.status == 200);
  return json::parse(r.body);
}

HttpResult GraphWriter::send(const std::string& method, const std::string& path, const std::string& body,
                             const std::string& ctype) const {
  return emu.call(method, path, {{"Authorization", "Bearer " + tok}, {"Content-Type", ctype}}, body);
}

json GraphWriter::post(const std::string& path, const json& body, int expect) const {
  auto r = send("POST", path, body.dump());
  INFO("POST " << path << " -> " << r.status << " " << r.body.substr(0, 400));
  REQUIRE(r.status == expect);
  return r.body.empty() ? json() : json::parse(r.body);
}

TestTenant make_tenant(const EmulatorProcess& emu, std::uint64_t seed, int users, int messages, json extra) {
  TestTenant t{"t-" + std::to_string(seed), "app-" + std::to_string(seed), "secret-" + std::to_string(seed), {}};
  json spec = {{"tenant_id", t.tenant},          {"client_id", t.client}, {"client_secret", t.secret},
               {"seed", seed},                   {"users", users},        {"mail_folders_per_user", 3},
               {"messages_per_user", messages},  {"max_attachment_bytes", 400000}};
  spec.update(extra);
  t.spec = emu.create_tenant(spec);
  return t;
}

DeltaRound walk_delta(const EmulatorProcess& emu, const std::string& first, const std::string& token,
                      std::vector<std::pair<std::string, std::string>> headers) {
  DeltaRound round;
  std::string next = first;
  for (int guard = 0; guard < 10000; ++guard) {
    auto page = emu.graph_json(next, token, headers);
    ++round.pages;
    REQUIRE(page["value"].is_array());
    if (page["value"].empty()) ++round.empty_pages;
    for (auto& v : page["value"]) round.items.push_back(v);
    const bool has_next = page.contains("@odata.nextLink"), has_delta = page.contains("@odata.deltaLink");
    REQUIRE(has_next != has_delta);  // never both, never neither
    if (has_delta) {
      round.delta_link = page["@odata.deltaLink"].get<std::string>();
      REQUIRE(round.delta_link.rfind(emu.base(), 0) == 0);  // absolute, back at the emulator
      return round;
    }
    next = page["@odata.nextLink"].get<std::string>();
    REQUIRE(next.rfind(emu.base(), 0) == 0);
  }
  FAIL("delta never ended");
  return round;
}

std::string fixtures_dir() {
  auto shared = env("M365VAULT_SHARED_DIR").value_or(std::string(M365VAULT_SOURCE_DIR) + "/../shared");
  return shared + "/graph/fixtures";
}

json load_fixture(const std::string& rel) {
  auto text = read_all(fixtures_dir() + "/" + rel);
  INFO("fixture " << rel);
  REQUIRE(!text.empty());
  return json::parse(text);
}

TestCert make_test_cert() {
  TestCert out;
  EVP_PKEY* key = EVP_RSA_gen(2048);
  REQUIRE(key);
  X509* c = X509_new();
  X509_set_version(c, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c), 7);
  X509_gmtime_adj(X509_getm_notBefore(c), 0);
  X509_gmtime_adj(X509_getm_notAfter(c), 86400);
  X509_set_pubkey(c, key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("test app"), -1, -1, 0);
  X509_set_issuer_name(c, X509_get_subject_name(c));
  X509_sign(c, key, EVP_sha256());
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, c);
  char* data;
  long n = BIO_get_mem_data(b, &data);
  out.cert_pem.assign(data, static_cast<std::size_t>(n));
  BIO_free(b);
  b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  n = BIO_get_mem_data(b, &data);
  out.key_pem.assign(data, static_cast<std::size_t>(n));
  BIO_free(b);
  unsigned char* der = nullptr;
  int dn = i2d_X509(c, &der);
  std::string d(reinterpret_cast<char*>(der), static_cast<std::size_t>(dn));
  OPENSSL_free(der);
  out.x5t = b64url(digest(EVP_sha1(), d));
  out.x5t_s256 = b64url(digest(EVP_sha256(), d));
  X509_free(c);
  EVP_PKEY_free(key);
  return out;
}

std::string make_assertion(const TestCert& c, const std::string& alg, const json& claims) {
  json header = {{"alg", alg}, {"typ", "JWT"}};
  if (alg == "RS256") header["x5t"] = c.x5t;
  else header["x5t#S256"] = c.x5t_s256;
  std::string input = b64url(header.dump()) + "." + b64url(claims.dump());
  BIO* b = BIO_new_mem_buf(c.key_pem.data(), static_cast<int>(c.key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), nullptr, key);
  if (alg == "PS256") {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
  } else {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING);
  }
  std::size_t len = 0;
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(input.data()), input.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  return input + "." + b64url(sig);
}

}  // namespace m365vault::test
