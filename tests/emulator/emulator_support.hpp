#pragma once
// Starts the real graph-emulator binary over HTTPS and talks to it as an outside
// client would: only the admin API, the token endpoint and Graph URLs.
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "m365vault/core/process.hpp"
#include "support/http_client.hpp"
#include "support/temp_dir.hpp"

namespace m365vault::test {

using json = nlohmann::json;

class EmulatorProcess {
 public:
  // Starts graph-emulator with --tls-dir under a fresh temp dir (or `state_dir`).
  explicit EmulatorProcess(const std::string& state_dir = "");
  ~EmulatorProcess();
  void restart();
  // SIGTERM and the exit code.
  int stop();

  std::string base() const { return base_; }  // https://127.0.0.1:PORT
  unsigned short port() const { return port_; }
  const std::string& ca() const { return ca_; }
  const TempDir& dir() const { return *dir_; }

  // One HTTPS exchange; `target` is a path or an absolute URL on this emulator.
  HttpResult call(const std::string& method, const std::string& target,
                  std::vector<std::pair<std::string, std::string>> headers = {}, const std::string& body = "") const;
  json admin(const std::string& method, const std::string& path, const json& body = nullptr, int expect = 200) const;

  // Creates a tenant (tenant_id "t-<seed>", client "app-<seed>", secret "secret-<seed>").
  json create_tenant(json spec) const;
  std::string token(const std::string& tenant, const std::string& client, const std::string& secret) const;
  HttpResult graph(const std::string& target, const std::string& token,
                   std::vector<std::pair<std::string, std::string>> headers = {}) const;
  json graph_json(const std::string& target, const std::string& token,
                  std::vector<std::pair<std::string, std::string>> headers = {}) const;

 private:
  void start();
  std::unique_ptr<TempDir> dir_;
  std::string state_dir_;
  std::unique_ptr<ChildProcess> proc_;
  std::string base_, ca_;
  unsigned short port_ = 0;
};

// Sends writes with a bearer token: the restore side of Graph.
struct GraphWriter {
  const EmulatorProcess& emu;
  std::string tok;
  HttpResult send(const std::string& method, const std::string& path, const std::string& body,
                  const std::string& ctype = "application/json") const;
  // POST a JSON body, require `expect`, return the parsed body (null when empty).
  json post(const std::string& path, const json& body, int expect = 201) const;
};

// A standard tenant for tests: returns {tenant_id, client_id, client_secret}.
struct TestTenant {
  std::string tenant, client, secret;
  json spec;
};
TestTenant make_tenant(const EmulatorProcess& emu, std::uint64_t seed, int users = 4, int messages = 30,
                       json extra = json::object());

// Follows nextLinks to the deltaLink; returns all items and the deltaLink.
struct DeltaRound {
  std::vector<json> items;
  std::string delta_link;
  int pages = 0;
  int empty_pages = 0;
};
DeltaRound walk_delta(const EmulatorProcess& emu, const std::string& first, const std::string& token,
                      std::vector<std::pair<std::string, std::string>> headers = {});

// The shared fixtures directory (M365VAULT_SHARED_DIR or <source>/../shared) + "/graph/fixtures".
std::string fixtures_dir();
json load_fixture(const std::string& rel);

// RSA key and self-signed certificate for client assertions.
struct TestCert {
  std::string cert_pem;
  std::string key_pem;
  std::string x5t, x5t_s256;
};
TestCert make_test_cert();
// A signed client assertion JWT (alg RS256 with x5t, or PS256 with x5t#S256).
std::string make_assertion(const TestCert& c, const std::string& alg, const json& claims);
std::string new_uuid();

// QuickXorHash the slow way, straight from the description in the OneDrive docs, so
// tests check the emulator's fast one against something independent (raw 20 bytes).
std::string naive_quickxor(const std::string& data);
// Standard base64 with padding (as Graph sends hashes).
std::string base64_encode(const std::string& raw);
// Hex digest (lower case unless `upper`) with an OpenSSL EVP_MD.
std::string hex_digest(const EVP_MD* md, const std::string& d, bool upper = false);

}  // namespace m365vault::test
