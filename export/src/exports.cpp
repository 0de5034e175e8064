#include "m365vault/export/exports.hpp"

#include <algorithm>

#include "m365vault/core/error.hpp"
#include "m365vault/restore/selection.hpp"

namespace m365vault::exporting {

using boost::asio::awaitable;
using nlohmann::json;
using storage::PgConnection;
using storage::PgParam;

namespace {

constexpr int kFreezePage = 500;
constexpr int kDownloadPage = 200;

// Threads each Teams channel of a frozen export (export_items.sort_key, see
// migration 0013): the channel's own item first (''), then its inline images
// ('0'), then its messages ('1'), both by thread: the post's time and id, then for
// a reply its own time and id. A message's graph id is "<channel>/<post>[/<reply>]",
// an image's "<message>/hc/<id>" with its message in meta. A reply whose post is
// not in the export sorts by its post's id alone, still beside its siblings.
constexpr const char* kThreadOrder =
    "WITH t AS (SELECT e.folder, e.seq, v.owner_id, i.graph_id AS gid, i.kind, v.sent_at,"
    "   CASE WHEN i.kind = 'hosted_content' THEN coalesce(v.meta->>'message', '') ELSE i.graph_id END AS msg"
    "  FROM export_items e JOIN item_versions v ON v.id = e.version_id JOIN items i ON i.id = v.item_id"
    "  WHERE e.export_id = $1::uuid AND v.category = 'teams' AND i.kind IN ('message', 'hosted_content')),"
    " k AS (SELECT t.*, split_part(t.msg, '/', 1) || '/' || split_part(t.msg, '/', 2) AS post,"
    "   split_part(t.msg, '/', 3) <> '' AS is_reply FROM t),"
    " m AS (SELECT owner_id, gid, to_char(sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') AS at"
    "  FROM t WHERE kind = 'message')"
    " UPDATE export_items x SET sort_key ="
    "   CASE WHEN k.kind = 'hosted_content' THEN '0' ELSE '1' END || coalesce(p.at, '') || '|' || k.post || '|'"
    "   || CASE WHEN k.is_reply THEN coalesce(r.at, '') || '|' || k.msg || '|' ELSE '' END"
    "   || CASE WHEN k.kind = 'hosted_content' THEN k.gid ELSE '' END"
    " FROM k LEFT JOIN m p ON p.owner_id = k.owner_id AND p.gid = k.post"
    " LEFT JOIN m r ON r.owner_id = k.owner_id AND r.gid = k.msg"
    " WHERE x.export_id = $1::uuid AND x.folder = k.folder AND x.seq = k.seq";

const char* kColumns =
    "e.id, e.job_id, e.tenant_id, e.selection::text, e.format::text, e.requested_by, "
    "to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "to_char(e.frozen_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), e.items, e.bytes, e.downloads, "
    "r.id, r.state, r.error, (extract(epoch from e.created_at) * 1000000)::bigint";
// The export's latest run.
const char* kFrom =
    " FROM exports e LEFT JOIN LATERAL (SELECT id, state, error FROM runs WHERE job_id = e.job_id"
    " ORDER BY queued_at DESC LIMIT 1) r ON true";

std::optional<std::string> opt(const storage::PgResult& r, int row, int col) {
  if (r.is_null(row, col)) return std::nullopt;
  return std::string(r.get(row, col));
}

ExportInfo from_row(const storage::PgResult& r, int i) {
  ExportInfo e;
  e.id = r.get(i, 0);
  e.job_id = r.get(i, 1);
  e.tenant_id = r.get(i, 2);
  e.selection = json::parse(r.get(i, 3));
  auto format = json::parse(r.get(i, 4));
  e.format.mbox = format.value("mbox", false);
  e.requested_by = opt(r, i, 5);
  e.created_at = r.get(i, 6);
  e.frozen_at = opt(r, i, 7);
  if (!r.is_null(i, 8)) e.items = r.get_int(i, 8);
  if (!r.is_null(i, 9)) e.bytes = r.get_int(i, 9);
  e.downloads = static_cast<int>(r.get_int(i, 10));
  e.run_id = opt(r, i, 11);
  auto run_state = opt(r, i, 12).value_or("queued");
  e.error = opt(r, i, 13);
  if (e.frozen_at) e.state = "ready";
  else if (run_state == "succeeded" || run_state == "partial") e.state = "failed";  // ended without a list: a bug
  else e.state = run_state;
  return e;
}

bool looks_like_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

ExportOptions read_format(const json& body) {
  ExportOptions o;
  auto it = body.find("format");
  if (it == body.end() || it->is_null()) return o;
  if (!it->is_object()) throw Error(Errc::bad_request, "field 'format': must be an object");
  for (auto& [k, v] : it->items()) {
    if (k != "mbox") throw Error(Errc::bad_request, "field 'format." + k + "': unknown field (mbox)");
    if (!v.is_boolean()) throw Error(Errc::bad_request, "field 'format.mbox': must be true or false");
    o.mbox = v.get<bool>();
  }
  return o;
}

std::string owner_label(PgConnection& c, const storage::Catalog& cat, const std::string& owner_id) {
  auto o = cat.get_owner(c, owner_id);
  if (!o) return owner_id;
  for (auto* v : {&o->spec.upn, &o->spec.mail, &o->spec.display_name})
    if (*v && !(*v)->empty()) return **v;
  return o->spec.graph_id;
}

}  // namespace

json ExportInfo::to_json() const {
  auto n = [](const std::optional<long long>& v) { return v ? json(*v) : json(nullptr); };
  auto s = [](const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); };
  return {{"id", id},
          {"tenant_id", tenant_id},
          {"state", state},
          {"selection", selection},
          {"format", {{"mbox", format.mbox}}},
          {"requested_by", s(requested_by)},
          {"created_at", created_at},
          {"ready_at", s(frozen_at)},
          {"run_id", s(run_id)},
          {"error", s(error)},
          {"items", n(items)},
          {"bytes", n(bytes)},
          {"downloads", downloads},
          {"download", state == "ready" ? json("/api/v1/exports/" + id + "/download") : json(nullptr)}};
}

ExportInfo create_export(PgConnection& c, const scheduler::Queue& q, const storage::Catalog& cat, const json& body,
                         const std::optional<std::string>& requested_by, const storage::Scope& scope) {
  if (!body.is_object()) throw Error(Errc::bad_request, "request body must be a JSON object");
  for (auto& [k, _] : body.items())
    if (k != "selection" && k != "format") throw Error(Errc::bad_request, "field '" + k + "': unknown field (selection, format)");
  if (!body.contains("selection")) throw Error(Errc::bad_request, "field 'selection': is required");
  auto selection = restore::Selection::from_json(body["selection"]);
  auto format = read_format(body);
  auto spec = restore::resolve(c, cat, selection, scope);
  auto pinned = restore::Selection::from_spec(spec).to_json();

  storage::PgTransaction tx(c);
  auto id = std::string(c.exec("SELECT gen_random_uuid()").get(0, 0));
  scheduler::JobSpec js;
  js.name = "export " + id;
  js.kind = "export";
  js.tenant_id = spec.tenant_id;
  js.params = {{"export_id", id}};
  js.max_attempts = 3;
  auto job = q.create_job(c, js, std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
  c.exec("INSERT INTO exports (id, job_id, tenant_id, selection, format, requested_by)"
         " VALUES ($1::uuid, $2::uuid, $3::uuid, $4::jsonb, $5::jsonb, $6)",
         {id, job.id, spec.tenant_id, pinned.dump(), json{{"mbox", format.mbox}}.dump(), requested_by});
  q.enqueue(c, job.id);
  tx.commit();
  auto e = get_export(c, id, scope);
  if (!e) throw Error(Errc::internal, "export '" + id + "' vanished after its creation");
  return *e;
}

std::optional<ExportInfo> get_export(PgConnection& c, const std::string& id, const storage::Scope& scope) {
  if (!looks_like_uuid(id)) return std::nullopt;
  auto r = c.exec(std::string("SELECT ") + kColumns + kFrom +
                      " WHERE e.id = $1::uuid AND ($2::uuid IS NULL OR e.tenant_id = $2::uuid)",
                  {id, scope.tenant_id});
  if (r.rows() == 0) return std::nullopt;
  return from_row(r, 0);
}

ExportPage list_exports(PgConnection& c, const std::optional<std::string>& cursor, int limit, const storage::Scope& scope) {
  // Cursor: "<created_at microseconds>:<export id>" of the last row shown (as runs do).
  PgParam cur_ts, cur_id;
  if (cursor) {
    auto colon = cursor->find(':');
    if (colon == std::string::npos || colon == 0 || cursor->substr(0, colon).find_first_not_of("0123456789") != std::string::npos ||
        colon > 20 || !looks_like_uuid(std::string_view(*cursor).substr(colon + 1)))
      throw Error(Errc::bad_request, "parameter 'cursor': not a cursor this API returned");
    cur_ts = cursor->substr(0, colon);
    cur_id = cursor->substr(colon + 1);
  }
  limit = std::clamp(limit, 1, 500);
  auto r = c.exec(std::string("SELECT ") + kColumns + kFrom +
                      " WHERE ($1::uuid IS NULL OR e.tenant_id = $1::uuid)"
                      " AND ($2::bigint IS NULL OR ((extract(epoch from e.created_at) * 1000000)::bigint, e.id) < ($2::bigint, $3::uuid))"
                      " ORDER BY (extract(epoch from e.created_at) * 1000000)::bigint DESC, e.id DESC LIMIT $4::int",
                  {scope.tenant_id, cur_ts, cur_id, std::to_string(limit + 1)});
  ExportPage page;
  int n = std::min(r.rows(), limit);
  for (int i = 0; i < n; ++i) page.exports.push_back(from_row(r, i));
  if (r.rows() > limit) page.next_cursor = std::string(r.get(n - 1, 14)) + ":" + page.exports.back().id;
  return page;
}

// --------------------------------------------------------------- the job kind

awaitable<scheduler::RunOutcome> ExportKind::execute(scheduler::RunContext& ctx) {
  const auto& params = ctx.run().params;
  if (!params.is_object() || !params.contains("export_id") || !params["export_id"].is_string())
    throw Error(Errc::bad_request, "export params: expected {\"export_id\": \"<uuid>\"}");
  const std::string export_id = params["export_id"].get<std::string>();
  storage::Catalog cat;

  // The pinned selection, resolved again (the same ids and instant), and the
  // list started afresh: a retried run writes the same list.
  auto start = [&](PgConnection& c) {
    auto e = get_export(c, export_id, {});
    if (!e) throw Error(Errc::not_found, "export '" + export_id + "' does not exist");
    auto sel = restore::Selection::from_json(e->selection);
    auto spec = restore::resolve(c, cat, sel, storage::Scope{e->tenant_id});
    c.exec("DELETE FROM export_items WHERE export_id = $1::uuid", {export_id});
    c.exec("UPDATE exports SET frozen_at = NULL, items = NULL, bytes = NULL WHERE id = $1::uuid", {export_id});
    return spec;
  };
  auto spec = co_await db_.run(start);
  restore::SelectionEnumerator walk(cat, spec, kFreezePage);
  long long seq = 0, items = 0, bytes = 0;
  std::map<std::string, std::string> labels;  // owner id -> label
  for (;;) {
    if (ctx.cancelled()) co_return scheduler::RunOutcome{scheduler::RunState::cancelled, std::nullopt};
    auto step = [&](PgConnection& c) -> bool {
      auto page = walk.next(c);
      if (!page) return false;
      if (page->items.empty()) return true;
      auto& owner = page->scope.owner_id;
      if (!labels.count(owner)) labels[owner] = owner_label(c, cat, owner);
      const std::string category(storage::to_string(page->scope.category));
      json rows = json::array();
      for (auto& it : page->items) {
        const auto& v = it.version;
        long long size = v.content_size.value_or(v.size.value_or(0));
        rows.push_back({{"folder", owner + "/" + category + "/" + it.container_path.value_or("")},
                        {"seq", ++seq},
                        {"version_id", std::stoll(v.version_id)},
                        {"owner_label", labels[owner]},
                        {"container_path", it.container_path ? json(*it.container_path) : json(nullptr)},
                        {"size", size}});
        ++items;
        bytes += size;
      }
      c.exec("INSERT INTO export_items (export_id, folder, seq, version_id, owner_label, container_path, size)"
             " SELECT $1::uuid, x.folder, x.seq, x.version_id, x.owner_label, x.container_path, x.size"
             " FROM jsonb_to_recordset($2::jsonb) AS x(folder text, seq bigint, version_id bigint, owner_label text,"
             " container_path text, size bigint)",
             {export_id, rows.dump()});
      return true;
    };
    bool more = co_await db_.run(step);
    ctx.set_progress({{"items", items}, {"bytes", bytes}});
    if (!more) break;
  }
  auto done = [&](PgConnection& c) {
    c.exec(kThreadOrder, {export_id});
    c.exec("UPDATE exports SET frozen_at = now(), items = $2::bigint, bytes = $3::bigint WHERE id = $1::uuid",
           {export_id, std::to_string(items), std::to_string(bytes)});
    return 0;
  };
  co_await db_.run(done);
  ctx.log().info("export={} frozen: {} item versions, {} bytes", export_id, items, bytes);
  co_return scheduler::RunOutcome{scheduler::RunState::succeeded, std::nullopt};
}

// --------------------------------------------------------------- the download

awaitable<ExportSummary> stream_export(storage::Database& db, std::string export_id, storage::Scope scope,
                                       ContentSource& source, net::BodySink& sink) {
  storage::Catalog cat;
  auto open = [&](PgConnection& c) {
    auto e = get_export(c, export_id, scope);
    if (!e) throw Error(Errc::not_found, "export '" + export_id + "' does not exist");
    if (e->state != "ready")
      throw Error(Errc::conflict, "export '" + export_id + "' is " + e->state + ", not ready: download it once its state is 'ready'");
    c.exec("UPDATE exports SET downloads = downloads + 1 WHERE id = $1::uuid", {export_id});
    return *e;
  };
  auto info = co_await db.run(open);
  ZipExport zip(info.format, sink);
  std::string after_folder, after_key;
  long long after_seq = 0;
  for (;;) {
    auto page = [&](PgConnection& c) {
      auto r = c.exec(
          "SELECT folder, seq, version_id, owner_label, container_path, sort_key FROM export_items"
          " WHERE export_id = $1::uuid AND (folder, sort_key, seq) > ($2, $3, $4::bigint)"
          " ORDER BY folder, sort_key, seq LIMIT $5::int",
          {export_id, after_folder, after_key, std::to_string(after_seq), std::to_string(kDownloadPage)});
      // The page's versions in one query, not one per item.
      std::vector<std::string> ids;
      ids.reserve(static_cast<std::size_t>(r.rows()));
      for (int i = 0; i < r.rows(); ++i) ids.emplace_back(r.get(i, 2));
      auto versions = cat.get_versions(c, ids, storage::Scope{info.tenant_id});
      std::vector<ExportEntry> out;
      for (int i = 0; i < r.rows(); ++i) {
        after_folder = r.get(i, 0);
        after_seq = r.get_int(i, 1);
        after_key = r.get(i, 5);
        ExportEntry e;
        if (auto v = versions.find(ids[static_cast<std::size_t>(i)]); v != versions.end()) {
          e.version = v->second;  // copied, so a version listed twice is exported twice as before
        } else {
          // Pruned since the list was frozen: reported as a fault of this item.
          e.version.version_id = r.get(i, 2);
          e.version.kind = "missing";
        }
        e.owner_label = r.get(i, 3);
        e.container_path = opt(r, i, 4);
        out.push_back(std::move(e));
      }
      return out;
    };
    auto entries = co_await db.run(page);
    if (entries.empty()) break;
    for (auto& e : entries) co_await zip.add(e, source);
  }
  json about = info.to_json();
  about.erase("download");
  co_await zip.finish(about);
  co_return zip.summary();
}

}  // namespace m365vault::exporting
