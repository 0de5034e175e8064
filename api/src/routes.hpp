#pragma once
// What the route files (exports.cpp, ...) share with v1.cpp: the wrapper that
// authenticates, authorises by role and audits every route, and the small readers
// of query parameters. Private to the API library.
#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>

#include "m365vault/api/auth.hpp"
#include "m365vault/api/v1.hpp"
#include "m365vault/net/http.hpp"
#include "m365vault/net/router.hpp"
#include "m365vault/storage/catalog.hpp"

namespace m365vault::api {

struct Ctx;  // v1.cpp: the options and the authentication-failure limiter
const ApiOptions& options(const Ctx& ctx);

// What a handler may add to its audit line.
struct AuditNote {
  std::optional<std::string> tenant_id;
  std::optional<std::string> target;
  nlohmann::json detail = nlohmann::json::object();
  bool record = false;  // audit this read too (searches, downloads)
};

using Authed = std::function<boost::asio::awaitable<net::Response>(net::Request&, const Principal&, AuditNote&)>;

inline constexpr std::initializer_list<Role> kRestore = {Role::admin, Role::restorer};

// The route handler: Bearer token checked, role among `roles`, changes (and
// reads that set note.record) written to the audit log, Error turned into
// problem+json.
net::Handler secured(std::shared_ptr<Ctx> ctx, std::initializer_list<Role> roles, Authed h);
// ?limit=, 1..max, dflt when absent; Errc::bad_request otherwise.
int limit_param(const net::Request& req, int dflt, int max);
// A tenant-restricted token sees only its tenant.
storage::Scope scope_of(const Principal& p);
nlohmann::json cursor_json(const std::optional<std::string>& c);

// exports.cpp: POST/GET /api/v1/exports, GET /api/v1/exports/{id}[/download].
void add_export_routes(net::Router& r, std::shared_ptr<Ctx> ctx);

}  // namespace m365vault::api
