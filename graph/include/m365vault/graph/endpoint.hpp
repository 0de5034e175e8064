#pragma once
// Where a tenant lives and how the daemon proves it is the tenant's app. Plain
// data; the daemon fills it from the index (secrets unsealed in memory only).
#include <optional>
#include <string>

namespace m365vault::graph {

struct TenantEndpoint {
  std::string tenant_id, client_id;
  // Public cloud by default; a national cloud or the emulator otherwise. Plain
  // http:// is accepted for loopback hosts only (net::HttpClient enforces it).
  std::string graph_url = "https://graph.microsoft.com";
  std::string login_url = "https://login.microsoftonline.com";
  // The one resource the token is for (national clouds name their own Graph host).
  std::string scope = "https://graph.microsoft.com/.default";
  std::string ca_file;  // PEM bundle to trust instead of the system CAs (the emulator's CA)

  // Credential: a client secret, or a certificate and its private key (PEM text).
  std::optional<std::string> client_secret;
  std::optional<std::string> certificate_pem, private_key_pem;
  bool pss = false;  // PS256 with x5t#S256 instead of RS256 with x5t
};

}  // namespace m365vault::graph
