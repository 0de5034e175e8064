#pragma once
// API tokens and the audit log. A token is 256 random bits shown once
// ("m365v_" + base64url); only its SHA-256 is stored. Blocking calls on a
// connection: use them through storage::Database::run.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "m365vault/storage/pg.hpp"

namespace m365vault::api {

enum class Role { admin, operator_, restorer, viewer };
std::string_view to_string(Role r);
std::optional<Role> parse_role(std::string_view s);

// Who is calling.
struct Principal {
  std::string token_id;
  std::string name;
  Role role;
  std::optional<std::string> tenant_id;  // restricted to this tenant when set
};

struct TokenInfo {
  std::string id;
  std::string name;
  Role role;
  std::optional<std::string> tenant_id;
  std::string prefix;
  std::string created_at;
  std::optional<std::string> expires_at;
  std::optional<std::string> revoked_at;
  std::optional<std::string> last_used_at;
  nlohmann::json to_json() const;
};

struct CreatedToken {
  TokenInfo info;
  std::string secret;  // shown once, never stored
};

class TokenStore {
 public:
  // Throws Error(Errc::bad_request) for an empty/long name or a past expiry.
  static CreatedToken create(storage::PgConnection& c, const std::string& name, Role role,
                             const std::optional<std::string>& tenant_id,
                             const std::optional<std::string>& expires_at_rfc3339, const std::string& created_by);
  // The principal of a valid (known, unexpired, unrevoked) token, or nullopt.
  static std::optional<Principal> authenticate(storage::PgConnection& c, const std::string& secret);
  static std::vector<TokenInfo> list(storage::PgConnection& c);
  // false: no such active token.
  static bool revoke(storage::PgConnection& c, const std::string& id);
};

struct AuditEntry {
  std::optional<std::string> token_id;
  std::string actor;
  std::optional<std::string> role;
  std::string remote;
  std::string request_id;
  std::string action;
  std::optional<std::string> tenant_id;
  std::optional<std::string> target;
  int outcome = 0;
  nlohmann::json detail = nlohmann::json::object();
};

class AuditLog {
 public:
  static void record(storage::PgConnection& c, const AuditEntry& e);
  // Newest first; `before_id` continues a page (keyset).
  static nlohmann::json list(storage::PgConnection& c, std::optional<long long> before_id, int limit);
};

}  // namespace m365vault::api
