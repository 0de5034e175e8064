// Restores over HTTP: create (restorer or admin; audited), list, show with the
// per-outcome counts, page through item outcomes, cancel. A restore runs as a
// scheduler run (restore.hpp); this file only talks to the tables.
#include "input.hpp"
#include "m365vault/restore/restore.hpp"
#include "m365vault/scheduler/queue.hpp"
#include "routes.hpp"

namespace m365vault::api {

using boost::asio::awaitable;
using net::Request;
using net::Response;

namespace {

nlohmann::json or_null(const std::optional<std::string>& s) { return s ? nlohmann::json(*s) : nlohmann::json(nullptr); }

}  // namespace

void add_restore_routes(net::Router& r, storage::Database* db, const Secure& secure) {
  const std::vector<Role> restorers = {Role::admin, Role::restorer};
  const std::vector<Role> anyone = {Role::admin, Role::operator_, Role::restorer, Role::viewer};

  r.add("POST", "/api/v1/restores",
        secure(restorers, [db](Request& req, const Principal& p, RouteAudit& audit) -> awaitable<Response> {
          JsonInput in(req);
          auto request = restore::RestoreRequest::from_json(in.whole());
          storage::Scope scope{p.tenant_id};
          std::optional<std::string> who = "token:" + p.name;
          auto create = [&](storage::PgConnection& c) { return restore::create_restore(c, request, scope, who); };
          auto info = co_await db->run(create);
          audit.tenant_id = info.tenant_id;
          audit.target = "restore:" + info.id;
          audit.detail = info.request;
          auto res = Response::json(202, info.to_json());
          res.headers.set("Location", "/api/v1/restores/" + info.id);
          co_return res;
        }));

  r.add("GET", "/api/v1/restores",
        secure(anyone, [db](Request& req, const Principal& p, RouteAudit&) -> awaitable<Response> {
          const int limit = limit_param(req, 100, 1000);
          auto cursor = req.query_param("cursor");
          auto tenant = req.query_param("tenant");
          storage::Scope scope{p.tenant_id};
          auto list = [&](storage::PgConnection& c) { return restore::list_restores(c, scope, tenant, cursor, limit); };
          auto page = co_await db->run(list);
          nlohmann::json items = nlohmann::json::array();
          for (auto& x : page.restores) items.push_back(x.to_json());
          co_return Response::json(200, {{"items", items}, {"next_cursor", or_null(page.next_cursor)}});
        }));

  r.add("GET", "/api/v1/restores/{id}",
        secure(anyone, [db](Request& req, const Principal& p, RouteAudit&) -> awaitable<Response> {
          const std::string id = req.params["id"];
          require_uuid("restore id", id);
          storage::Scope scope{p.tenant_id};
          auto get = [&](storage::PgConnection& c) { return restore::get_restore(c, id, scope); };
          auto info = co_await db->run(get);
          if (!info) throw Error(Errc::not_found, "restore '" + id + "' does not exist");
          co_return Response::json(200, info->to_json());
        }));

  r.add("GET", "/api/v1/restores/{id}/items",
        secure(anyone, [db](Request& req, const Principal& p, RouteAudit&) -> awaitable<Response> {
          const std::string id = req.params["id"];
          require_uuid("restore id", id);
          const int limit = limit_param(req, 100, 1000);
          auto cursor = req.query_param("cursor");
          auto outcome = req.query_param("outcome");
          storage::Scope scope{p.tenant_id};
          auto get = [&](storage::PgConnection& c) {
            if (!restore::get_restore(c, id, scope)) throw Error(Errc::not_found, "restore '" + id + "' does not exist");
            return restore::restore_items(c, id, outcome, cursor, limit);
          };
          auto page = co_await db->run(get);
          co_return Response::json(200, {{"items", page.items}, {"next_cursor", or_null(page.next_cursor)}});
        }));

  r.add("POST", "/api/v1/restores/{id}/cancel",
        secure(restorers, [db](Request& req, const Principal& p, RouteAudit& audit) -> awaitable<Response> {
          const std::string id = req.params["id"];
          require_uuid("restore id", id);
          storage::Scope scope{p.tenant_id};
          auto cancel = [&](storage::PgConnection& c) {
            auto info = restore::get_restore(c, id, scope);
            if (!info) throw Error(Errc::not_found, "restore '" + id + "' does not exist");
            if (info->run_id) scheduler::Queue{}.request_cancel(c, *info->run_id);
            return *restore::get_restore(c, id, scope);
          };
          auto info = co_await db->run(cancel);
          audit.tenant_id = info.tenant_id;
          audit.target = "restore:" + id;
          co_return Response::json(202, info.to_json());
        }));
}

}  // namespace m365vault::api
