// The restore request (parse, write back) and the restores / restore_items
// tables (migration 0010): create, read, list, page through outcomes.
#include <chrono>
#include <ctime>

#include "m365vault/core/error.hpp"
#include "m365vault/restore/restore.hpp"
#include "m365vault/scheduler/queue.hpp"

namespace m365vault::restore {

using json = nlohmann::json;
using storage::Category;
using storage::PgConnection;

namespace {

[[noreturn]] void bad_field(const std::string& field, const std::string& why) {
  throw Error(Errc::bad_request, "field '" + field + "': " + why);
}

const char* kTeamsRefusal =
    "Teams messages cannot be restored: Graph cannot write them back as their authors (export them instead, "
    "POST /api/v1/exports)";

std::string opt_string(const json& v, const std::string& field, size_t max) {
  if (!v.is_string() || v.get<std::string>().empty() || v.get<std::string>().size() > max)
    bad_field(field, "must be a string of 1 to " + std::to_string(max) + " characters");
  return v.get<std::string>();
}

// Cursors: base64url-free, since they are only ever two safe tokens joined.
std::string make_cursor(const std::string& a, const std::string& b) { return a + "~" + b; }
std::pair<std::string, std::string> read_cursor(const std::string& c) {
  auto p = c.find('~');
  if (p == std::string::npos || c.size() > 100) throw Error(Errc::bad_request, "parameter 'cursor': not a cursor this API returned");
  return {c.substr(0, p), c.substr(p + 1)};
}

bool is_uuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

}  // namespace

std::string_view to_string(Conflict c) {
  switch (c) {
    case Conflict::replace: return "replace";
    case Conflict::copy: return "copy";
    default: return "skip";
  }
}

RestoreRequest RestoreRequest::from_json(const json& j) {
  if (!j.is_object()) bad_field("request", "must be a JSON object");
  RestoreRequest r;
  bool has_selection = false;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto& k = it.key();
    const auto& v = it.value();
    if (k == "selection") {
      r.selection = Selection::from_json(v, "selection");
      has_selection = true;
    } else if (k == "target") {
      if (v.is_null()) continue;
      if (!v.is_object()) bad_field("target", "must be an object with 'owner' and/or 'folder'");
      for (auto t = v.begin(); t != v.end(); ++t) {
        if (t.key() == "owner") {
          if (!t.value().is_null()) r.to_owner = opt_string(t.value(), "target.owner", 320);
        } else if (t.key() == "folder") {
          if (t.value().is_null()) continue;
          auto f = opt_string(t.value(), "target.folder", 255);
          if (f.find_first_of("/\\") != std::string::npos) bad_field("target.folder", "a folder name, without '/' or '\\'");
          r.to_folder = f;
        } else {
          bad_field("target." + t.key(), "unknown field (expected owner, folder)");
        }
      }
    } else if (k == "conflict") {
      auto c = v.is_string() ? v.get<std::string>() : "";
      if (c == "skip") r.conflict = Conflict::skip;
      else if (c == "replace") r.conflict = Conflict::replace;
      else if (c == "copy") r.conflict = Conflict::copy;
      else bad_field("conflict", "must be one of skip, replace, copy");
    } else if (k == "dry_run") {
      if (!v.is_boolean()) bad_field("dry_run", "must be true or false");
      r.dry_run = v.get<bool>();
    } else {
      bad_field(k, "unknown field (expected selection, target, conflict, dry_run)");
    }
  }
  if (!has_selection) bad_field("selection", "required");
  for (auto c : r.selection.categories)
    if (c == Category::teams) throw Error(Errc::bad_request, std::string("field 'selection.categories': ") + kTeamsRefusal);
  return r;
}

json RestoreRequest::to_json() const {
  json j = {{"selection", selection.to_json()}, {"conflict", std::string(to_string(conflict))}, {"dry_run", dry_run}};
  if (!original_place()) {
    json t = json::object();
    if (to_owner) t["owner"] = *to_owner;
    if (to_folder) t["folder"] = *to_folder;
    j["target"] = t;
  }
  return j;
}

json RestoreInfo::to_json() const {
  auto o = [](const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); };
  return {{"id", id},           {"tenant_id", tenant_id},     {"request", request},     {"requested_by", o(requested_by)},
          {"created_at", created_at}, {"target_folder", o(target_root)}, {"run_id", o(run_id)},
          {"state", o(state)},  {"error", o(error)},          {"started_at", o(started_at)},
          {"finished_at", o(finished_at)}, {"progress", progress}, {"outcomes", outcomes}};
}

RestoreInfo create_restore(PgConnection& c, const RestoreRequest& req, const storage::Scope& scope,
                           const std::optional<std::string>& requested_by) {
  storage::Catalog cat;
  RestoreRequest pinned = req;
  // Teams cannot be written back: leave it out of "every category" and refuse it named.
  if (pinned.selection.categories.empty())
    pinned.selection.categories = {Category::mail, Category::contacts, Category::calendar, Category::onedrive,
                                   Category::sharepoint};
  {
    std::string items = "{", containers = "{";
    for (auto& i : req.selection.items) items += (items.size() > 1 ? "," : "") + i;
    for (auto& k : req.selection.containers) containers += (containers.size() > 1 ? "," : "") + k;
    auto r = c.exec(
        "SELECT 1 FROM items WHERE id = ANY($1::bigint[]) AND category = 'teams'"
        " UNION ALL SELECT 1 FROM containers WHERE id = ANY($2::bigint[]) AND category = 'teams' LIMIT 1",
        {items + "}", containers + "}"});
    if (r.rows() > 0) throw Error(Errc::bad_request, std::string("field 'selection': ") + kTeamsRefusal);
  }
  auto spec = resolve(c, cat, pinned.selection, scope);
  {
    // A team or a chat named as an owner: all it holds is Teams messages.
    std::string owners = "{";
    for (auto& o : spec.owner_ids) owners += (owners.size() > 1 ? "," : "") + o;
    auto r = c.exec("SELECT 1 FROM owners WHERE id = ANY($1::uuid[]) AND kind IN ('team', 'chat') LIMIT 1", {owners + "}"});
    if (r.rows() > 0) throw Error(Errc::bad_request, std::string("field 'selection.owners': ") + kTeamsRefusal);
  }
  pinned.selection = Selection::from_spec(spec);
  auto tenant = cat.get_tenant(c, spec.tenant_id, scope);
  if (req.to_owner) {
    auto o = find_owner(c, cat, spec.tenant_id, tenant->spec.name, *req.to_owner);
    pinned.to_owner = o.id;
  }
  std::optional<std::string> root;
  if (!req.original_place()) {
    if (req.to_folder) {
      root = *req.to_folder;
    } else {
      auto r = c.exec("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24.MI.SS')");
      root = "Restored " + std::string(r.get(0, 0));
    }
  }
  storage::PgTransaction tx(c);
  const std::string restore_id(c.exec("SELECT gen_random_uuid()::text").get(0, 0));
  scheduler::JobSpec js;
  js.name = "restore " + restore_id;
  js.kind = "restore";
  js.tenant_id = spec.tenant_id;
  js.params = pinned.to_json();
  js.params["restore"] = restore_id;
  js.max_attempts = 3;
  scheduler::Queue q;
  auto job = q.create_job(c, js, std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
  c.exec("INSERT INTO restores (id, job_id, tenant_id, request, requested_by, target_root)"
         " VALUES ($1::uuid, $2::uuid, $3::uuid, $4::jsonb, $5, $6)",
         {restore_id, job.id, spec.tenant_id, pinned.to_json().dump(), requested_by, root});
  q.enqueue(c, job.id);
  tx.commit();
  return *get_restore(c, restore_id, scope);
}

namespace {

const char* kRestoreSelect =
    "SELECT x.id, x.tenant_id, x.request::text, x.requested_by,"
    " to_char(x.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), x.target_root,"
    " r.id, r.state, r.error, to_char(r.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
    " to_char(r.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), coalesce(r.progress::text, '{}'),"
    " (SELECT coalesce(jsonb_object_agg(outcome, n), '{}')::text FROM"
    "   (SELECT outcome, count(*) AS n FROM restore_items WHERE restore_id = x.id GROUP BY outcome) o)"
    " FROM restores x LEFT JOIN LATERAL (SELECT * FROM runs WHERE job_id = x.job_id ORDER BY queued_at DESC LIMIT 1) r"
    " ON true";

RestoreInfo info_from_row(const storage::PgResult& r, int i) {
  auto o = [&](int col) { return r.is_null(i, col) ? std::nullopt : std::optional<std::string>(r.get(i, col)); };
  RestoreInfo x;
  x.id = std::string(r.get(i, 0));
  x.tenant_id = std::string(r.get(i, 1));
  x.request = json::parse(r.get(i, 2));
  x.request.erase("restore");
  x.requested_by = o(3);
  x.created_at = std::string(r.get(i, 4));
  x.target_root = o(5);
  x.run_id = o(6);
  x.state = o(7);
  x.error = o(8);
  x.started_at = o(9);
  x.finished_at = o(10);
  x.progress = json::parse(r.get(i, 11));
  x.outcomes = json::parse(r.get(i, 12));
  return x;
}

}  // namespace

std::optional<RestoreInfo> get_restore(PgConnection& c, const std::string& id, const storage::Scope& scope) {
  if (!is_uuid(id)) return std::nullopt;
  auto r = c.exec(std::string(kRestoreSelect) + " WHERE x.id = $1::uuid AND ($2::uuid IS NULL OR x.tenant_id = $2::uuid)",
                  {id, scope.tenant_id});
  if (r.rows() == 0) return std::nullopt;
  return info_from_row(r, 0);
}

RestorePage list_restores(PgConnection& c, const storage::Scope& scope, const std::optional<std::string>& tenant,
                          const std::optional<std::string>& cursor, int limit) {
  if (limit < 1 || limit > 1000) throw Error(Errc::bad_request, "parameter 'limit': 1 to 1000");
  storage::PgParam cur_at, cur_id, tenant_id;
  if (cursor) {
    auto [a, b] = read_cursor(*cursor);
    if (!is_uuid(b)) throw Error(Errc::bad_request, "parameter 'cursor': not a cursor this API returned");
    cur_at = a;
    cur_id = b;
  }
  if (tenant) {
    storage::Catalog cat;
    auto t = cat.get_tenant(c, *tenant, scope);
    if (!t) throw Error(Errc::not_found, "tenant '" + *tenant + "' does not exist");
    tenant_id = t->id;
  }
  auto r = c.exec(std::string(kRestoreSelect) +
                      " WHERE ($1::uuid IS NULL OR x.tenant_id = $1::uuid) AND ($2::uuid IS NULL OR x.tenant_id = $2::uuid)"
                      " AND ($3::text IS NULL OR (x.created_at, x.id) < ($3::timestamptz, $4::uuid))"
                      " ORDER BY x.created_at DESC, x.id DESC LIMIT $5",
                  {scope.tenant_id, tenant_id, cur_at, cur_id, std::to_string(limit + 1)});
  RestorePage page;
  int n = std::min(r.rows(), limit);
  for (int i = 0; i < n; ++i) page.restores.push_back(info_from_row(r, i));
  if (r.rows() > limit) page.next_cursor = make_cursor(page.restores.back().created_at, page.restores.back().id);
  return page;
}

RestoreItemPage restore_items(PgConnection& c, const std::string& id, const std::optional<std::string>& outcome,
                              const std::optional<std::string>& cursor, int limit) {
  if (limit < 1 || limit > 1000) throw Error(Errc::bad_request, "parameter 'limit': 1 to 1000");
  static const std::vector<std::string> kOutcomes = {"restored",      "replaced",      "copied",    "skipped", "failed",
                                                     "would_restore", "would_replace", "would_copy"};
  if (outcome && std::find(kOutcomes.begin(), kOutcomes.end(), *outcome) == kOutcomes.end())
    throw Error(Errc::bad_request, "parameter 'outcome': one of restored, replaced, copied, skipped, failed, "
                                   "would_restore, would_replace, would_copy");
  storage::PgParam after;
  if (cursor) {
    if (cursor->empty() || cursor->size() > 18 || cursor->find_first_not_of("0123456789") != std::string::npos)
      throw Error(Errc::bad_request, "parameter 'cursor': not a cursor this API returned");
    after = *cursor;
  }
  auto r = c.exec(
      "SELECT id, item_id, version_id, category, kind, name, path, outcome, detail, code, target_id,"
      " to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
      " FROM restore_items WHERE restore_id = $1::uuid AND ($2::text IS NULL OR outcome = $2)"
      " AND ($3::bigint IS NULL OR id > $3::bigint) ORDER BY id LIMIT $4",
      {id, outcome, after, std::to_string(limit + 1)});
  RestoreItemPage page;
  int n = std::min(r.rows(), limit);
  auto o = [&](int i, int col) { return r.is_null(i, col) ? json(nullptr) : json(std::string(r.get(i, col))); };
  std::string last;
  for (int i = 0; i < n; ++i) {
    last = std::string(r.get(i, 0));
    page.items.push_back({{"item_id", o(i, 1)},
                          {"version_id", o(i, 2)},
                          {"category", o(i, 3)},
                          {"kind", o(i, 4)},
                          {"name", o(i, 5)},
                          {"path", o(i, 6)},
                          {"outcome", o(i, 7)},
                          {"detail", o(i, 8)},
                          {"code", o(i, 9)},
                          {"target_id", o(i, 10)},
                          {"at", o(i, 11)}});
  }
  if (r.rows() > limit) page.next_cursor = last;
  return page;
}

}  // namespace m365vault::restore
