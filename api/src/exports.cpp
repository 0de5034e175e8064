// Exports: POST /api/v1/exports queues an export (its run freezes the list of
// item versions), GET lists and shows them, GET .../download streams the zip.
#include "input.hpp"
#include "m365vault/export/exports.hpp"
#include "routes.hpp"

namespace m365vault::api {

using boost::asio::awaitable;
using net::Request;
using net::Response;

namespace {

// The download's body: a free coroutine so that everything it uses is copied
// into its frame (the response's std::function may be moved while it runs).
awaitable<void> send_export(storage::Database* db, exporting::ContentSource* source, std::string id,
                            storage::Scope scope, net::BodySink& sink) {
  co_await exporting::stream_export(*db, std::move(id), std::move(scope), *source, sink);
}

storage::Scope scope_of(const Principal& p) { return storage::Scope{p.tenant_id}; }

nlohmann::json cursor_json(const std::optional<std::string>& c) { return c ? nlohmann::json(*c) : nlohmann::json(nullptr); }

}  // namespace

void add_export_routes(net::Router& r, storage::Database* db, const scheduler::Queue& q,
                       exporting::ContentSource* source, const Secure& secure) {
  const std::vector<Role> kRestore = {Role::admin, Role::restorer};
  storage::Catalog cat;

  r.add("POST", "/api/v1/exports",
        secure(kRestore, [db, q, cat](Request& req, const Principal& p, RouteAudit& note) -> awaitable<Response> {
          JsonInput in(req, 32);
          nlohmann::json body = nlohmann::json::object();
          if (auto sel = in.object("selection")) body["selection"] = *sel;
          else JsonInput::fail("selection", "is required");
          if (auto fmt = in.object("format")) body["format"] = *fmt;
          in.finish();
          auto create = [&](storage::PgConnection& c) {
            return exporting::create_export(c, q, cat, body, p.name, scope_of(p));
          };
          auto e = co_await db->run(create);
          note.tenant_id = e.tenant_id;
          note.target = "export:" + e.id;
          note.detail = {{"selection", e.selection}, {"format", {{"mbox", e.format.mbox}}}};
          auto res = Response::json(202, e.to_json());
          res.headers.set("Location", "/api/v1/exports/" + e.id);
          co_return res;
        }));
  r.add("GET", "/api/v1/exports",
        secure(kRestore, [db](Request& req, const Principal& p, RouteAudit&) -> awaitable<Response> {
          auto cursor = req.query_param("cursor");
          const int limit = limit_param(req, 50, 500);
          auto list = [&](storage::PgConnection& c) { return exporting::list_exports(c, cursor, limit, scope_of(p)); };
          auto page = co_await db->run(list);
          nlohmann::json items = nlohmann::json::array();
          for (auto& e : page.exports) items.push_back(e.to_json());
          co_return Response::json(200, {{"items", items}, {"next_cursor", cursor_json(page.next_cursor)}});
        }));
  r.add("GET", "/api/v1/exports/{id}",
        secure(kRestore, [db](Request& req, const Principal& p, RouteAudit&) -> awaitable<Response> {
          auto id = require_uuid("export id", req.params["id"]);
          auto get = [&](storage::PgConnection& c) { return exporting::get_export(c, id, scope_of(p)); };
          auto e = co_await db->run(get);
          if (!e) throw Error(Errc::not_found, "export '" + id.substr(0, 64) + "' does not exist");
          co_return Response::json(200, e->to_json());
        }));
  r.add("GET", "/api/v1/exports/{id}/download",
        secure(kRestore, [db, source](Request& req, const Principal& p, RouteAudit& note) -> awaitable<Response> {
          auto id = require_uuid("export id", req.params["id"]);
          note.record = true;
          note.target = "export:" + id.substr(0, 64);
          auto get = [&](storage::PgConnection& c) { return exporting::get_export(c, id, scope_of(p)); };
          auto e = co_await db->run(get);
          if (!e) throw Error(Errc::not_found, "export '" + id.substr(0, 64) + "' does not exist");
          note.tenant_id = e->tenant_id;
          note.detail = {{"items", e->items ? nlohmann::json(*e->items) : nlohmann::json(nullptr)}};
          if (e->state != "ready")
            throw Error(Errc::conflict, "export '" + id + "' is " + e->state + ", not ready: download it once its state is 'ready'");
          if (!source) throw Error(Errc::unavailable, "export downloads need the repository, which is not configured");
          Response res;
          res.status = 200;
          res.headers.set("Content-Type", "application/zip");
          res.headers.set("Content-Disposition", "attachment; filename=\"export-" + e->id + ".zip\"");
          res.headers.set("Cache-Control", "no-store");
          auto scope = scope_of(p);
          res.stream = [db, source, id = e->id, scope](net::BodySink& sink) { return send_export(db, source, id, scope, sink); };
          co_return res;
        }));
}

}  // namespace m365vault::api
