#pragma once
// What route files beside v1.cpp (restores.cpp, ...) receive from it: a way to
// wrap a handler in v1's authentication, role check and audit line.
#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "m365vault/api/auth.hpp"
#include "m365vault/net/http.hpp"
#include "m365vault/net/router.hpp"
#include "m365vault/scheduler/queue.hpp"
#include "m365vault/storage/pg.hpp"

namespace m365vault::exporting {
class ContentSource;
}

namespace m365vault::api {

// What a handler adds to its audit line (changes are always audited).
struct RouteAudit {
  std::optional<std::string> tenant_id;
  std::optional<std::string> target;
  nlohmann::json detail = nlohmann::json::object();
  bool record = false;  // audit this read too
};

using RouteFn = std::function<boost::asio::awaitable<net::Response>(net::Request&, const Principal&, RouteAudit&)>;
// Wraps a handler for the given roles.
using Secure = std::function<net::Handler(std::vector<Role>, RouteFn)>;

// POST/GET /api/v1/restores, GET /api/v1/restores/{id}[/items], POST .../cancel.
void add_restore_routes(net::Router& r, storage::Database* db, const Secure& secure);
// POST/GET /api/v1/exports, GET /api/v1/exports/{id}[/download] (exports.cpp).
// `content` may be null (no repository): downloads then answer 503.
void add_export_routes(net::Router& r, storage::Database* db, const scheduler::Queue& q,
                       exporting::ContentSource* content, const Secure& secure);

}  // namespace m365vault::api
