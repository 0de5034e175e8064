// The binary and the identity platform: HTTPS with the generated CA, SIGTERM,
// client-secret and certificate-assertion tokens, and Graph-side token checks.
#include <catch2/catch.hpp>

#include <ctime>

#include "emulator_support.hpp"

using namespace m365vault::test;

namespace {
const std::string kForm = "application/x-www-form-urlencoded";
const std::string kScope = "scope=https%3A%2F%2Fgraph.microsoft.com%2F.default";

json token_call(const EmulatorProcess& emu, const std::string& tenant, const std::string& body, int expect,
                std::vector<std::pair<std::string, std::string>> extra = {}) {
  extra.emplace_back("Content-Type", kForm);
  auto r = emu.call("POST", "/" + tenant + "/oauth2/v2.0/token", extra, body);
  INFO(r.body);
  REQUIRE(r.status == expect);
  return json::parse(r.body);
}

void require_aad_error(const json& e, const std::string& error, long code) {
  REQUIRE(e["error"] == error);
  REQUIRE(e["error_codes"] == json::array({code}));
  auto d = e["error_description"].get<std::string>();
  REQUIRE(d.rfind("AADSTS" + std::to_string(code) + ": ", 0) == 0);
  REQUIRE(d.find("\r\nTrace ID: ") != std::string::npos);
  REQUIRE(d.find("\r\nCorrelation ID: ") != std::string::npos);
  REQUIRE(e["timestamp"].get<std::string>().size() == 20);  // "2026-01-01 00:00:00Z"
  REQUIRE(e.contains("trace_id"));
  REQUIRE(e.contains("correlation_id"));
}
}  // namespace

TEST_CASE("graph-emulator prints its URL, serves HTTPS under its own CA and exits 0 on SIGTERM", "[graph]") {
  EmulatorProcess emu;
  REQUIRE(emu.base().rfind("https://127.0.0.1:", 0) == 0);
  auto r = emu.call("GET", "/_emulator/faults");
  REQUIRE(r.status == 200);
  REQUIRE(json::parse(r.body)["mailbox_concurrency"] == 4);
  REQUIRE(emu.stop() == 0);
}

TEST_CASE("client secret tokens: form field and HTTP Basic, and the contract's error bodies", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 11, 2, 2);
  auto ok = token_call(emu, t.tenant, "grant_type=client_credentials&client_id=" + t.client + "&client_secret=" + t.secret + "&" + kScope, 200);
  REQUIRE(ok["token_type"] == "Bearer");
  REQUIRE(ok["expires_in"] == 3599);
  REQUIRE(ok["ext_expires_in"] == 3599);
  REQUIRE(ok["access_token"].get<std::string>().rfind("eyJ", 0) == 0);
  REQUIRE(!ok.contains("refresh_token"));
  // The tenant's domain names it as well as its id.
  token_call(emu, t.spec["domain"].get<std::string>(),
             "grant_type=client_credentials&client_id=" + t.client + "&client_secret=" + t.secret + "&" + kScope, 200);
  auto resp = emu.call("POST", "/" + t.tenant + "/oauth2/v2.0/token", {{"Content-Type", kForm}},
                       "grant_type=client_credentials&client_id=" + t.client + "&client_secret=" + t.secret + "&" + kScope);
  REQUIRE(resp.header("cache-control") == "no-cache, no-store");
  REQUIRE(resp.header("pragma") == "no-cache");
  REQUIRE(resp.header("expires") == "-1");
  // Basic auth (RFC 6749 2.3.1) instead of the form fields.
  std::string basic = t.client + ":" + t.secret;
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string enc;
  for (std::size_t i = 0; i < basic.size(); i += 3) {
    unsigned v = static_cast<unsigned char>(basic[i]) << 16;
    if (i + 1 < basic.size()) v |= static_cast<unsigned char>(basic[i + 1]) << 8;
    if (i + 2 < basic.size()) v |= static_cast<unsigned char>(basic[i + 2]);
    enc += a[v >> 18];
    enc += a[(v >> 12) & 63];
    enc += i + 1 < basic.size() ? a[(v >> 6) & 63] : '=';
    enc += i + 2 < basic.size() ? a[v & 63] : '=';
  }
  token_call(emu, t.tenant, "grant_type=client_credentials&" + kScope, 200, {{"Authorization", "Basic " + enc}});
  // Errors, with status as observed.
  require_aad_error(token_call(emu, t.tenant, "grant_type=client_credentials&client_id=" + t.client + "&client_secret=wrong&" + kScope, 401),
                    "invalid_client", 7000215);
  require_aad_error(token_call(emu, t.tenant, "grant_type=client_credentials&client_id=" + t.client + "&client_secret=" + t.secret +
                                                  "&scope=https%3A%2F%2Fexample.contoso.com%2Factivity.read", 400),
                    "invalid_scope", 70011);
  require_aad_error(token_call(emu, "no-such-tenant", "grant_type=client_credentials&client_id=x&client_secret=y&" + kScope, 400),
                    "invalid_request", 90002);
  require_aad_error(token_call(emu, t.tenant, "grant_type=client_credentials&client_id=" + t.client + "&" + kScope, 401),
                    "invalid_client", 7000218);
  require_aad_error(token_call(emu, t.tenant, "grant_type=client_credentials&client_id=other&client_secret=x&" + kScope, 400),
                    "unauthorized_client", 700016);
  require_aad_error(token_call(emu, "common", "grant_type=client_credentials&client_id=x&client_secret=y&" + kScope, 400),
                    "invalid_request", 9001023);
}

TEST_CASE("certificate assertions: RS256 with x5t and PS256 with x5t#S256, checked claims, no replay", "[graph]") {
  EmulatorProcess emu;
  auto cert = make_test_cert();
  auto other = make_test_cert();
  auto t = make_tenant(emu, 12, 2, 2, {{"certificates", json::array({cert.cert_pem})}});
  const auto now = static_cast<long>(std::time(nullptr));
  auto claims = [&](json patch = json::object()) {
    json c = {{"aud", "https://login.microsoftonline.com/" + t.tenant + "/oauth2/v2.0/token"},
              {"iss", t.client}, {"sub", t.client}, {"jti", new_uuid()}, {"nbf", now - 5}, {"exp", now + 600}};
    c.update(patch);
    return c;
  };
  auto form = [&](const std::string& assertion) {
    return "grant_type=client_credentials&client_id=" + t.client + "&" + kScope +
           "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=" + assertion;
  };
  REQUIRE(token_call(emu, t.tenant, form(make_assertion(cert, "RS256", claims())), 200)["token_type"] == "Bearer");
  REQUIRE(token_call(emu, t.tenant, form(make_assertion(cert, "PS256", claims())), 200)["token_type"] == "Bearer");
  // The emulator's own token URL is an accepted audience too.
  token_call(emu, t.tenant, form(make_assertion(cert, "PS256", claims({{"aud", emu.base() + "/" + t.tenant + "/oauth2/v2.0/token"}}))), 200);

  auto replayed = make_assertion(cert, "RS256", claims());
  token_call(emu, t.tenant, form(replayed), 200);
  require_aad_error(token_call(emu, t.tenant, form(replayed), 401), "invalid_client", 50027);
  // A key the app does not know, and a signature that does not match the registered key.
  require_aad_error(token_call(emu, t.tenant, form(make_assertion(other, "RS256", claims())), 401), "invalid_client", 700027);
  auto forged = make_assertion(other, "RS256", claims());
  auto h = make_assertion(cert, "RS256", claims());
  forged = h.substr(0, h.rfind('.')) + forged.substr(forged.rfind('.'));
  require_aad_error(token_call(emu, t.tenant, form(forged), 401), "invalid_client", 700027);
  require_aad_error(token_call(emu, t.tenant, form(make_assertion(cert, "RS256", claims({{"aud", "https://login.microsoftonline.com/other/oauth2/v2.0/token"}}))), 401),
                    "invalid_client", 50027);
  require_aad_error(token_call(emu, t.tenant, form(make_assertion(cert, "RS256", claims({{"iss", "someone-else"}}))), 401),
                    "invalid_client", 50027);
  require_aad_error(token_call(emu, t.tenant, form(make_assertion(cert, "RS256", claims({{"nbf", now - 1200}, {"exp", now - 600}}))), 401),
                    "invalid_client", 500133);
  require_aad_error(token_call(emu, t.tenant, form(make_assertion(cert, "PS256", claims({{"nbf", now + 3600}, {"exp", now + 4000}}))), 401),
                    "invalid_client", 500133);
}

TEST_CASE("Graph refuses missing, garbled, foreign and expired tokens with 401 and a missing permission with 403", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 13, 2, 2);
  auto t2 = make_tenant(emu, 14, 2, 2, {{"permissions", json::array({"User.Read.All"})}});
  auto tok = emu.token(t.tenant, t.client, t.secret);
  REQUIRE(emu.graph("/v1.0/users", tok).status == 200);

  auto missing = emu.call("GET", "/v1.0/users");
  REQUIRE(missing.status == 401);
  auto e = json::parse(missing.body)["error"];
  REQUIRE(e["code"] == "InvalidAuthenticationToken");
  REQUIRE(e["message"] == "Access token is empty.");
  REQUIRE(e["innerError"].contains("request-id"));
  REQUIRE(e["innerError"]["date"].get<std::string>().back() != 'Z');

  REQUIRE(json::parse(emu.graph("/v1.0/users", "garbage").body)["error"]["code"] == "InvalidAuthenticationToken");
  // A token from another emulator instance (another signing key) is foreign.
  EmulatorProcess other;
  make_tenant(other, 13, 2, 2);
  auto foreign = other.token(t.tenant, t.client, t.secret);
  REQUIRE(emu.graph("/v1.0/users", foreign).status == 401);

  // Expiry follows the emulated clock.
  emu.admin("PUT", "/_emulator/faults", {{"clock_offset_s", 3600}});
  auto expired = emu.graph("/v1.0/users", tok);
  REQUIRE(expired.status == 401);
  REQUIRE(json::parse(expired.body)["error"]["message"] == "Lifetime validation failed, the token is expired.");
  emu.admin("PUT", "/_emulator/faults", json::object());
  REQUIRE(emu.graph("/v1.0/users", tok).status == 200);

  // Token lifetime is configurable.
  emu.admin("PUT", "/_emulator/faults", {{"token_lifetime_s", 120}});
  auto r = emu.call("POST", "/" + t.tenant + "/oauth2/v2.0/token", {{"Content-Type", kForm}},
                    "grant_type=client_credentials&client_id=" + t.client + "&client_secret=" + t.secret + "&" + kScope);
  REQUIRE(json::parse(r.body)["expires_in"] == 120);

  auto tok2 = emu.token(t2.tenant, t2.client, t2.secret);
  REQUIRE(emu.graph("/v1.0/users", tok2).status == 200);
  auto denied = emu.graph("/v1.0/groups", tok2);
  REQUIRE(denied.status == 403);
  REQUIRE(json::parse(denied.body)["error"]["code"] == "Authorization_RequestDenied");
  auto users = emu.graph_json("/v1.0/users", tok2);
  auto mail = emu.graph("/v1.0/users/" + users["value"][0]["id"].get<std::string>() + "/mailFolders", tok2);
  REQUIRE(mail.status == 403);
  REQUIRE(json::parse(mail.body)["error"]["code"] == "ErrorAccessDenied");
}
