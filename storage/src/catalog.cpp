#include "m365vault/storage/catalog.hpp"

#include <openssl/rand.h>

#include <cstring>
#include <map>

#include "catalog_sql.hpp"
#include "m365vault/core/error.hpp"

namespace m365vault::storage {

namespace catalog_sql {

constexpr const char* kUniqueViolation = "23505";

// ---------------------------------------------------------------- small helpers

using Tx = PgTransaction;

std::optional<std::string> opt(const PgResult& r, int row, int col) {
  if (r.is_null(row, col)) return std::nullopt;
  return std::string(r.get(row, col));
}
std::optional<long long> opt_int(const PgResult& r, int row, int col) {
  if (r.is_null(row, col)) return std::nullopt;
  return r.get_int(row, col);
}

const char* kHex = "0123456789abcdef";

std::string to_hex(std::string_view raw) {
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char ch : raw) {
    out += kHex[ch >> 4];
    out += kHex[ch & 15];
  }
  return out;
}

std::string from_hex(std::string_view hex) {
  auto val = [](char ch) -> int {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2) throw Error(Errc::internal, "odd-length hex");
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = val(hex[2 * i]), lo = val(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) throw Error(Errc::internal, "bad hex");
    out[i] = static_cast<char>(hi * 16 + lo);
  }
  return out;
}

// bytea text output ("\x...") to raw bytes.
std::string bytea_raw(std::string_view v) {
  if (v.size() >= 2 && v[0] == '\\' && v[1] == 'x') return from_hex(v.substr(2));
  return std::string(v);
}
std::string bytea_param(std::string_view raw) { return "\\x" + to_hex(raw); }

const char* kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string b64url(std::string_view s) {
  std::string out;
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<unsigned>(static_cast<unsigned char>(s[k])); };
  for (; i + 2 < s.size(); i += 3) {
    unsigned v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    for (int sh : {18, 12, 6, 0}) out += kB64[(v >> sh) & 63];
  }
  if (s.size() - i == 1) {
    unsigned v = byte(i) << 16;
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
  } else if (s.size() - i == 2) {
    unsigned v = (byte(i) << 16) | (byte(i + 1) << 8);
    for (int sh : {18, 12, 6}) out += kB64[(v >> sh) & 63];
  }
  return out;
}

std::optional<std::string> unb64url(std::string_view s) {
  auto val = [](char ch) -> int {
    const char* p = std::strchr(kB64, ch);
    return (ch && p) ? static_cast<int>(p - kB64) : -1;
  };
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (char ch : s) {
    int v = val(ch);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

// Cursors are opaque to clients: base64url of a small JSON array.
std::string make_cursor(const json& j) { return b64url(j.dump()); }
json read_cursor(const std::optional<std::string>& c) {
  if (!c) return nullptr;
  auto bad = [] { return Error(Errc::bad_request, "parameter 'cursor': not a cursor this API returned"); };
  if (c->empty() || c->size() > 4096) throw bad();
  auto raw = unb64url(*c);
  if (!raw) throw bad();
  auto j = json::parse(*raw, nullptr, false);
  if (j.is_discarded() || !j.is_array()) throw bad();
  return j;
}
[[noreturn]] void bad_cursor() { throw Error(Errc::bad_request, "parameter 'cursor': not a cursor this API returned"); }

bool looks_like_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char ch = s[i];
    bool ok = (i == 8 || i == 13 || i == 18 || i == 23) ? ch == '-' : std::isxdigit(static_cast<unsigned char>(ch)) != 0;
    if (!ok) return false;
  }
  return true;
}
bool looks_like_id(std::string_view s) {
  return !s.empty() && s.size() <= 18 && s.find_first_not_of("0123456789") == std::string_view::npos;
}
void require_uuid(std::string_view what, const std::string& s) {
  if (!looks_like_uuid(s)) throw Error(Errc::bad_request, std::string(what) + " '" + s.substr(0, 64) + "' is not a UUID");
}

PgParam scope_param(const Scope& s) { return s.tenant_id; }

void check_limit(int limit) {
  if (limit < 1 || limit > 10000) throw Error(Errc::bad_request, "parameter 'limit': out of range");
}

json str_array(const std::vector<std::string>& v) { return json(v); }

json hex_array(const std::vector<std::string>& raw, const char* field) {
  json a = json::array();
  for (auto& b : raw) {
    if (b.size() != 32) throw Error(Errc::bad_request, std::string("field '") + field + "': a blob id must be 32 bytes");
    a.push_back(to_hex(b));
  }
  return a;
}

const std::vector<std::pair<Category, std::string_view>> kCategories = {
    {Category::mail, "mail"},         {Category::contacts, "contacts"},     {Category::calendar, "calendar"},
    {Category::onedrive, "onedrive"}, {Category::sharepoint, "sharepoint"}, {Category::teams, "teams"}};
const std::vector<std::pair<OwnerKind, std::string_view>> kOwnerKinds = {{OwnerKind::user, "user"},
                                                                         {OwnerKind::group, "group"},
                                                                         {OwnerKind::site, "site"},
                                                                         {OwnerKind::team, "team"},
                                                                         {OwnerKind::drive, "drive"},
                                                                         {OwnerKind::chat, "chat"}};

OwnerState parse_owner_state(std::string_view s) {
  if (s == "skipped") return OwnerState::skipped;
  if (s == "deleted") return OwnerState::deleted;
  return OwnerState::active;
}
SnapshotState parse_snapshot_state(std::string_view s) {
  if (s == "complete") return SnapshotState::complete;
  if (s == "partial") return SnapshotState::partial;
  return SnapshotState::running;
}

// ---------------------------------------------------------------- row readers

const char* kTenantColumns =
    "id, name, directory_id, client_id, auth_kind, certificate_pem, graph_url, login_url, ca_file, disabled, " TS(
        "created_at") ", " TS("updated_at");

Tenant tenant_from_row(const PgResult& r, int i) {
  Tenant t;
  t.id = std::string(r.get(i, 0));
  t.spec.name = std::string(r.get(i, 1));
  t.spec.directory_id = std::string(r.get(i, 2));
  t.spec.client_id = std::string(r.get(i, 3));
  t.spec.auth = parse_auth_kind(r.get(i, 4)).value_or(AuthKind::secret);
  t.spec.certificate_pem = opt(r, i, 5);
  t.spec.graph_url = opt(r, i, 6);
  t.spec.login_url = opt(r, i, 7);
  t.spec.ca_file = opt(r, i, 8);
  t.spec.disabled = r.get(i, 9) == "t";
  t.created_at = std::string(r.get(i, 10));
  t.updated_at = std::string(r.get(i, 11));
  return t;
}

const char* kOwnerColumns =
    "id, tenant_id, kind, graph_id, display_name, upn, mail, state, skip_reason, " TS("discovered_at") ", " TS(
        "updated_at");

Owner owner_from_row(const PgResult& r, int i) {
  Owner o;
  o.id = std::string(r.get(i, 0));
  o.tenant_id = std::string(r.get(i, 1));
  o.spec.kind = parse_owner_kind(r.get(i, 2)).value_or(OwnerKind::user);
  o.spec.graph_id = std::string(r.get(i, 3));
  o.spec.display_name = opt(r, i, 4);
  o.spec.upn = opt(r, i, 5);
  o.spec.mail = opt(r, i, 6);
  o.state = parse_owner_state(r.get(i, 7));
  o.skip_reason = opt(r, i, 8);
  o.discovered_at = std::string(r.get(i, 9));
  o.updated_at = std::string(r.get(i, 10));
  return o;
}

const char* kSnapshotColumns =
    "s.id, s.tenant_id, s.owner_id, s.category, s.run_id, s.state, " TS("s.started_at") ", " TS(
        "s.completed_at") ", s.items_added, s.items_changed, s.items_deleted, s.bytes_added, s.faults, s.items_total";

Snapshot snapshot_from_row(const PgResult& r, int i) {
  Snapshot s;
  s.id = std::string(r.get(i, 0));
  s.tenant_id = std::string(r.get(i, 1));
  s.owner_id = std::string(r.get(i, 2));
  s.category = parse_category(r.get(i, 3)).value_or(Category::mail);
  s.run_id = opt(r, i, 4);
  s.state = parse_snapshot_state(r.get(i, 5));
  s.started_at = std::string(r.get(i, 6));
  s.completed_at = opt(r, i, 7);
  s.items_added = r.get_int(i, 8);
  s.items_changed = r.get_int(i, 9);
  s.items_deleted = r.get_int(i, 10);
  s.bytes_added = r.get_int(i, 11);
  s.faults = r.get_int(i, 12);
  s.items_total = opt_int(r, i, 13);
  return s;
}

const char* kFaultColumns =
    "id, run_id, owner_id, category, item_graph_id, reason, code, " TS("first_seen_at") ", " TS(
        "last_seen_at") ", attempts, " TS("resolved_at");

Fault fault_from_row(const PgResult& r, int i) {
  Fault f;
  f.id = std::string(r.get(i, 0));
  f.run_id = std::string(r.get(i, 1));
  f.owner_id = std::string(r.get(i, 2));
  f.category = parse_category(r.get(i, 3)).value_or(Category::mail);
  f.item_graph_id = std::string(r.get(i, 4));
  f.reason = std::string(r.get(i, 5));
  f.code = opt(r, i, 6);
  f.first_seen_at = std::string(r.get(i, 7));
  f.last_seen_at = std::string(r.get(i, 8));
  f.attempts = static_cast<int>(r.get_int(i, 9));
  f.resolved_at = opt(r, i, 10);
  return f;
}

// Versions joined with their item (i) : v.
const char* kVersionColumns =
    "i.id, v.id, v.owner_id, i.graph_id, i.kind, v.category, v.container_id, " TS("v.from_at") ", " TS(
        "v.to_at") ", v.name,"
    // An item without a path of its own (a message, a contact) has its container's
    // path as it was when this version began.
    " coalesce(v.path, (SELECT cv.path FROM container_versions cv WHERE cv.container_id = v.container_id"
    " AND cv.from_at <= v.from_at ORDER BY cv.from_at DESC LIMIT 1)), v.subject, v.sender, to_jsonb(v.recipients)::text, " TS("v.sent_at") ", " TS(
        "v.received_at") ", " TS("v.modified_at") ", v.size, coalesce(v.change_key, ''), to_jsonb(v.flags)::text,"
    " v.body_preview, v.meta::text, v.content_type,"
    " (SELECT coalesce(jsonb_agg(encode(b, 'hex') ORDER BY n), '[]') FROM unnest(v.content_blobs) WITH ORDINALITY"
    " AS t(b, n))::text, encode(v.content_sha256, 'hex'), v.content_size";
const int kVersionColumnCount = 26;

ItemVersion version_from_row(const PgResult& r, int i) {
  ItemVersion v;
  v.item_id = std::string(r.get(i, 0));
  v.version_id = std::string(r.get(i, 1));
  v.owner_id = std::string(r.get(i, 2));
  v.graph_id = std::string(r.get(i, 3));
  v.kind = std::string(r.get(i, 4));
  v.category = parse_category(r.get(i, 5)).value_or(Category::mail);
  v.container_id = opt(r, i, 6);
  v.valid_from = std::string(r.get(i, 7));
  v.valid_to = opt(r, i, 8);
  v.name = std::string(r.get(i, 9));
  v.path = opt(r, i, 10);
  v.subject = opt(r, i, 11);
  v.sender = opt(r, i, 12);
  v.recipients = json::parse(r.get(i, 13)).get<std::vector<std::string>>();
  v.sent_at = opt(r, i, 14);
  v.received_at = opt(r, i, 15);
  v.modified_at = opt(r, i, 16);
  v.size = opt_int(r, i, 17);
  v.change_key = std::string(r.get(i, 18));
  v.flags = json::parse(r.get(i, 19)).get<std::vector<std::string>>();
  v.body_preview = opt(r, i, 20);
  v.meta = json::parse(r.get(i, 21));
  v.content_type = opt(r, i, 22);
  for (auto& h : json::parse(r.get(i, 23))) v.content_blobs.push_back(from_hex(h.get<std::string>()));
  if (!r.is_null(i, 24)) v.content_sha256 = from_hex(r.get(i, 24));
  v.content_size = opt_int(r, i, 25);
  return v;
}

const char* kContainerColumns =
    "c.id, c.graph_id, cv.display_name, cv.path, cv.parent_id, cv.well_known, " TS("cv.from_at") ", " TS("cv.to_at");

ContainerEntry container_from_row(const PgResult& r, int i) {
  ContainerEntry e;
  e.id = std::string(r.get(i, 0));
  e.graph_id = std::string(r.get(i, 1));
  e.display_name = std::string(r.get(i, 2));
  e.path = std::string(r.get(i, 3));
  e.parent_id = opt(r, i, 4);
  e.well_known = opt(r, i, 5);
  e.valid_from = std::string(r.get(i, 6));
  e.valid_to = opt(r, i, 7);
  return e;
}

// The visibility predicate of versions aliased `a` at the instant `p`: a parameter
// ("$2") or an SQL expression ("statement_timestamp()").
std::string visible(const std::string& a, const std::string& p) {
  return "(" + a + ".from_at <= " + p + "::timestamptz AND (" + a + ".to_at IS NULL OR " + a + ".to_at > " + p +
         "::timestamptz))";
}

// How many matches a search ranks, the newest first (docs/catalog.md, openapi.yaml).
constexpr int kSearchRankedMatches = 2000;

// True when `at` asks for the present (absent, empty or "now"), as resolve_at reads it.
bool means_now(const std::optional<std::string>& at) { return !at || at->empty() || *at == "now"; }

// visible() for a read at the instant resolved from `at`. At the present nothing
// committed is closed after the instant, so "to_at IS NULL OR to_at > $p" is
// exactly "to_at IS NULL": the predicate of the partial indexes on open versions
// (item_versions_browse_now, item_versions_open, container_versions_open), which
// the disjunction keeps the planner from using (a folder page then reads and
// drops every closed version on its way). A version closed between resolve_at
// and the statement (a backup committing in that instant) is not shown, like
// its successor, which is newer than the instant the page reports.
std::string visible_at(const std::string& a, const std::string& p, const std::optional<std::string>& at) {
  if (!means_now(at)) return visible(a, p);
  return "(" + a + ".from_at <= " + p + "::timestamptz AND " + a + ".to_at IS NULL)";
}

// Scope check for an owner id in parameter `p`, with the scope tenant in `s`.
std::string owner_in_scope(const std::string& col, const std::string& s) {
  return "(" + s + "::uuid IS NULL OR " + col + " IN (SELECT id FROM owners WHERE tenant_id = " + s + "::uuid))";
}

// ---------------------------------------------------------------- the page commit, step by step

void ensure_page_tables(PgConnection& c) {
  c.exec(
      "CREATE TEMP TABLE IF NOT EXISTS cat_page_containers ("
      " graph_id text, parent_graph text, display_name text, well_known text, removed boolean,"
      " container_id bigint, parent_id bigint, open_id bigint, status text) ON COMMIT DELETE ROWS");
  c.exec(
      "CREATE TEMP TABLE IF NOT EXISTS cat_page_items ("
      " graph_id text, kind text, container_graph text, change_key text, name text, path text, subject text,"
      " sender text, recipients text[], sent_at timestamptz, received_at timestamptz, modified_at timestamptz,"
      " size bigint, flags text[], body_preview text, meta jsonb, content_type text, content_blobs bytea[],"
      " content_sha256 bytea, content_size bigint,"
      " item_id bigint, container_id bigint, open_id bigint, status text) ON COMMIT DELETE ROWS");
}

// The id of a container identity, created when first named.
std::string container_identity(PgConnection& c, const std::string& owner, const std::string& cat,
                               const std::string& graph_id) {
  c.exec("INSERT INTO containers (owner_id, category, graph_id) VALUES ($1::uuid, $2, $3) ON CONFLICT DO NOTHING",
         {owner, cat, graph_id});
  auto r = c.exec("SELECT id FROM containers WHERE owner_id = $1::uuid AND category = $2 AND graph_id = $3",
                  {owner, cat, graph_id});
  return std::string(r.get(0, 0));
}

// Closes the open versions of the containers listed in cat_close_roots' subtree
// (including themselves) and of the items in them. Returns items closed.
int close_subtrees(PgConnection& c, const std::string& root_ids_json, const PgParam& snap) {
  auto r = c.exec(
      "WITH RECURSIVE sub(id, depth) AS ("
      "  SELECT (x)::bigint, 0 FROM jsonb_array_elements_text($1::jsonb) AS x"
      "  UNION"
      "  SELECT v.container_id, sub.depth + 1 FROM container_versions v JOIN sub ON v.parent_id = sub.id"
      "  WHERE v.to_at IS NULL AND sub.depth < 64),"
      " cc AS (UPDATE container_versions SET to_at = now() WHERE to_at IS NULL AND container_id IN (SELECT id FROM sub)"
      "        RETURNING 1),"
      " ci AS (UPDATE item_versions SET to_at = now(), closed_in = $2::uuid WHERE to_at IS NULL"
      "        AND container_id IN (SELECT id FROM sub) RETURNING 1)"
      " SELECT (SELECT count(*) FROM ci), (SELECT count(*) FROM cc)",
      {root_ids_json, snap});
  return static_cast<int>(r.get_int(0, 0));
}

void recompute_paths(PgConnection& c, const std::string& owner, const std::string& cat) {
  c.exec(
      "WITH RECURSIVE open_v AS ("
      "  SELECT v.id, v.container_id, v.parent_id, v.display_name FROM container_versions v"
      "  JOIN containers k ON k.id = v.container_id"
      "  WHERE k.owner_id = $1::uuid AND k.category = $2 AND v.to_at IS NULL),"
      " t(container_id, path, depth) AS ("
      "  SELECT o.container_id, o.display_name, 0 FROM open_v o"
      "  WHERE o.parent_id IS NULL OR NOT EXISTS (SELECT 1 FROM open_v p WHERE p.container_id = o.parent_id)"
      "  UNION ALL"
      "  SELECT o.container_id, t.path || '/' || o.display_name, t.depth + 1 FROM open_v o"
      "  JOIN t ON o.parent_id = t.container_id WHERE t.depth < 64)"
      " UPDATE container_versions v SET path = t.path FROM t"
      " WHERE v.container_id = t.container_id AND v.to_at IS NULL AND v.path IS DISTINCT FROM t.path",
      {owner, cat});
}

}  // namespace catalog_sql
using namespace catalog_sql;

std::string page_cursor(const json& position) { return make_cursor(position); }
json read_page_cursor(const std::optional<std::string>& cursor) { return read_cursor(cursor); }

// ---------------------------------------------------------------- enums

std::string_view to_string(Category c) {
  for (auto& [k, v] : kCategories)
    if (k == c) return v;
  return "mail";
}
std::optional<Category> parse_category(std::string_view s) {
  for (auto& [k, v] : kCategories)
    if (v == s) return k;
  return std::nullopt;
}
std::string_view to_string(OwnerKind k) {
  for (auto& [e, v] : kOwnerKinds)
    if (e == k) return v;
  return "user";
}
std::optional<OwnerKind> parse_owner_kind(std::string_view s) {
  for (auto& [e, v] : kOwnerKinds)
    if (v == s) return e;
  return std::nullopt;
}
std::string_view to_string(OwnerState s) {
  switch (s) {
    case OwnerState::active: return "active";
    case OwnerState::skipped: return "skipped";
    case OwnerState::deleted: return "deleted";
  }
  return "active";
}
std::string_view to_string(AuthKind k) { return k == AuthKind::certificate ? "certificate" : "secret"; }
std::optional<AuthKind> parse_auth_kind(std::string_view s) {
  if (s == "secret") return AuthKind::secret;
  if (s == "certificate") return AuthKind::certificate;
  return std::nullopt;
}
std::string_view to_string(SnapshotState s) {
  switch (s) {
    case SnapshotState::running: return "running";
    case SnapshotState::complete: return "complete";
    case SnapshotState::partial: return "partial";
  }
  return "running";
}

// ---------------------------------------------------------------- JSON

namespace {
json or_null(const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); }
json or_null(const std::optional<long long>& n) { return n ? json(*n) : json(nullptr); }
}  // namespace

json Tenant::to_json() const {
  return {{"id", id},
          {"name", spec.name},
          {"tenant_id", spec.directory_id},
          {"client_id", spec.client_id},
          {"auth", to_string(spec.auth)},
          {"certificate", or_null(spec.certificate_pem)},
          {"graph_url", or_null(spec.graph_url)},
          {"login_url", or_null(spec.login_url)},
          {"ca_file", or_null(spec.ca_file)},
          {"disabled", spec.disabled},
          {"created_at", created_at},
          {"updated_at", updated_at}};
}

json Owner::to_json() const {
  return {{"id", id},
          {"tenant_id", tenant_id},
          {"kind", to_string(spec.kind)},
          {"graph_id", spec.graph_id},
          {"display_name", or_null(spec.display_name)},
          {"upn", or_null(spec.upn)},
          {"mail", or_null(spec.mail)},
          {"state", to_string(state)},
          {"skip_reason", or_null(skip_reason)},
          {"discovered_at", discovered_at},
          {"updated_at", updated_at}};
}

json Snapshot::to_json() const {
  return {{"id", id},
          {"tenant_id", tenant_id},
          {"owner_id", owner_id},
          {"category", to_string(category)},
          {"run_id", or_null(run_id)},
          {"state", to_string(state)},
          {"started_at", started_at},
          {"completed_at", or_null(completed_at)},
          {"items_added", items_added},
          {"items_changed", items_changed},
          {"items_deleted", items_deleted},
          {"items_total", or_null(items_total)},
          {"bytes_added", bytes_added},
          {"faults", faults}};
}

json Fault::to_json() const {
  return {{"id", id},
          {"run_id", run_id},
          {"owner_id", owner_id},
          {"category", to_string(category)},
          {"item_graph_id", item_graph_id},
          {"reason", reason},
          {"code", or_null(code)},
          {"first_seen_at", first_seen_at},
          {"last_seen_at", last_seen_at},
          {"attempts", attempts},
          {"resolved_at", or_null(resolved_at)}};
}

json ItemVersion::to_json() const {
  json j = {{"id", item_id},
            {"version_id", version_id},
            {"owner_id", owner_id},
            {"category", to_string(category)},
            {"kind", kind},
            {"graph_id", graph_id},
            {"container_id", or_null(container_id)},
            {"valid_from", valid_from},
            {"valid_to", or_null(valid_to)},
            {"name", name},
            {"path", or_null(path)},
            {"subject", or_null(subject)},
            {"sender", or_null(sender)},
            {"recipients", recipients},
            {"sent_at", or_null(sent_at)},
            {"received_at", or_null(received_at)},
            {"modified_at", or_null(modified_at)},
            {"size", or_null(size)},
            {"change_key", change_key},
            {"flags", flags},
            {"body_preview", or_null(body_preview)},
            {"meta", meta},
            {"content",
             {{"type", or_null(content_type)},
              {"size", or_null(content_size)},
              {"sha256", content_sha256 ? json(to_hex(*content_sha256)) : json(nullptr)},
              {"blobs", content_blobs.size()}}}};
  if (rank) j["rank"] = *rank;
  return j;
}

json ContainerEntry::to_json() const {
  return {{"id", id},
          {"graph_id", graph_id},
          {"display_name", display_name},
          {"path", path},
          {"parent_id", or_null(parent_id)},
          {"well_known", or_null(well_known)},
          {"valid_from", valid_from},
          {"valid_to", or_null(valid_to)}};
}

// ---------------------------------------------------------------- tenants

std::string Catalog::secret_context(const std::string& tenant_id) { return "m365vault tenant " + tenant_id + " credential"; }

std::string Catalog::new_tenant_id() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) throw Error(Errc::internal, "no randomness for a tenant id");
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  auto h = to_hex(std::string_view(reinterpret_cast<char*>(b), sizeof b));
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

namespace {
void check_tenant_spec(const TenantSpec& s) {
  if (s.name.empty() || s.name.size() > 200) throw Error(Errc::bad_request, "field 'name': 1 to 200 characters");
  if (s.directory_id.empty()) throw Error(Errc::bad_request, "field 'tenant_id': is required");
  if (s.client_id.empty()) throw Error(Errc::bad_request, "field 'client_id': is required");
  if (s.auth == AuthKind::certificate && (!s.certificate_pem || s.certificate_pem->empty()))
    throw Error(Errc::bad_request, "field 'certificate': is required for certificate authentication");
}
}  // namespace

Tenant Catalog::create_tenant(PgConnection& c, const std::string& id, const TenantSpec& s,
                              const SealedSecret& secret) const {
  require_uuid("tenant id", id);
  check_tenant_spec(s);
  if (secret.sealed.empty()) throw Error(Errc::bad_request, "tenant '" + s.name + "': a sealed credential is required");
  try {
    auto r = c.exec(std::string("INSERT INTO tenants (id, name, directory_id, client_id, auth_kind, sealed_secret,"
                                " seal_context, certificate_pem, graph_url, login_url, ca_file, disabled)"
                                " VALUES ($1::uuid, $2, $3, $4, $5, $6::bytea, $7, $8, $9, $10, $11, $12::boolean)"
                                " RETURNING ") +
                        kTenantColumns,
                    {id, s.name, s.directory_id, s.client_id, std::string(to_string(s.auth)),
                     bytea_param(secret.sealed), secret.context, s.certificate_pem, s.graph_url, s.login_url,
                     s.ca_file, s.disabled ? "true" : "false"});
    return tenant_from_row(r, 0);
  } catch (const PgError& e) {
    if (e.sqlstate() == kUniqueViolation) throw Error(Errc::conflict, "tenant '" + s.name + "' exists already");
    throw;
  }
}

std::optional<Tenant> Catalog::get_tenant(PgConnection& c, const std::string& id_or_name, const Scope& scope) const {
  auto r = looks_like_uuid(id_or_name)
               ? c.exec(std::string("SELECT ") + kTenantColumns +
                            " FROM tenants WHERE id = $1::uuid AND ($2::uuid IS NULL OR id = $2::uuid)",
                        {id_or_name, scope_param(scope)})
               : c.exec(std::string("SELECT ") + kTenantColumns +
                            " FROM tenants WHERE name = $1 AND ($2::uuid IS NULL OR id = $2::uuid)",
                        {id_or_name, scope_param(scope)});
  if (r.rows() == 0) return std::nullopt;
  return tenant_from_row(r, 0);
}

std::vector<Tenant> Catalog::list_tenants(PgConnection& c, const Scope& scope) const {
  auto r = c.exec(std::string("SELECT ") + kTenantColumns +
                      " FROM tenants WHERE ($1::uuid IS NULL OR id = $1::uuid) ORDER BY name",
                  {scope_param(scope)});
  std::vector<Tenant> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(tenant_from_row(r, i));
  return out;
}

Tenant Catalog::update_tenant(PgConnection& c, const std::string& id, const TenantSpec& s,
                              const std::optional<SealedSecret>& secret) const {
  require_uuid("tenant id", id);
  check_tenant_spec(s);
  PgParam sealed, context;
  if (secret) {
    if (secret->sealed.empty()) throw Error(Errc::bad_request, "tenant '" + s.name + "': empty sealed credential");
    sealed = bytea_param(secret->sealed);
    context = secret->context;
  }
  try {
    auto r = c.exec(std::string("UPDATE tenants SET name = $2, directory_id = $3, client_id = $4, auth_kind = $5,"
                                " certificate_pem = $6, graph_url = $7, login_url = $8, ca_file = $9,"
                                " disabled = $10::boolean, sealed_secret = coalesce($11::bytea, sealed_secret),"
                                " seal_context = coalesce($12, seal_context), updated_at = now()"
                                " WHERE id = $1::uuid RETURNING ") +
                        kTenantColumns,
                    {id, s.name, s.directory_id, s.client_id, std::string(to_string(s.auth)), s.certificate_pem,
                     s.graph_url, s.login_url, s.ca_file, s.disabled ? "true" : "false", sealed, context});
    if (r.rows() == 0) throw Error(Errc::not_found, "tenant '" + id + "' does not exist");
    return tenant_from_row(r, 0);
  } catch (const PgError& e) {
    if (e.sqlstate() == kUniqueViolation) throw Error(Errc::conflict, "tenant '" + s.name + "' exists already");
    throw;
  }
}

bool Catalog::delete_tenant(PgConnection& c, const std::string& id) const {
  require_uuid("tenant id", id);
  return c.exec("DELETE FROM tenants WHERE id = $1::uuid", {id}).affected() > 0;
}

std::optional<SealedSecret> Catalog::tenant_secret(PgConnection& c, const std::string& tenant_id) const {
  require_uuid("tenant id", tenant_id);
  auto r = c.exec("SELECT seal_context, sealed_secret FROM tenants WHERE id = $1::uuid", {tenant_id});
  if (r.rows() == 0) return std::nullopt;
  return SealedSecret{std::string(r.get(0, 0)), bytea_raw(r.get(0, 1))};
}

// ---------------------------------------------------------------- owners

std::vector<Owner> Catalog::upsert_owners(PgConnection& c, const std::string& tenant_id,
                                          const std::vector<OwnerSpec>& owners) const {
  require_uuid("tenant id", tenant_id);
  if (owners.empty()) return {};
  json rows = json::array();
  for (size_t i = 0; i < owners.size(); ++i) {
    auto& o = owners[i];
    if (o.graph_id.empty()) throw Error(Errc::bad_request, "owner " + std::to_string(i) + ": field 'graph_id' is empty");
    rows.push_back({{"ord", i},
                    {"kind", to_string(o.kind)},
                    {"graph_id", o.graph_id},
                    {"display_name", or_null(o.display_name)},
                    {"upn", or_null(o.upn)},
                    {"mail", or_null(o.mail)}});
  }
  auto r = c.exec(std::string("WITH x AS (SELECT DISTINCT ON (kind, graph_id) * FROM jsonb_to_recordset($2::jsonb)"
                              "   AS x(ord int, kind text, graph_id text, display_name text, upn text, mail text)"
                              "   ORDER BY kind, graph_id, ord DESC),"
                              " up AS (INSERT INTO owners (tenant_id, kind, graph_id, display_name, upn, mail)"
                              "   SELECT $1::uuid, kind, graph_id, display_name, upn, mail FROM x"
                              "   ON CONFLICT (tenant_id, kind, graph_id) DO UPDATE SET"
                              "   display_name = EXCLUDED.display_name, upn = EXCLUDED.upn, mail = EXCLUDED.mail,"
                              "   state = CASE WHEN owners.state = 'deleted' THEN 'active' ELSE owners.state END,"
                              "   skip_reason = CASE WHEN owners.state = 'deleted' THEN NULL ELSE owners.skip_reason END,"
                              "   updated_at = now() RETURNING *)"
                              " SELECT ") +
                      kOwnerColumns + " FROM up",
                  {tenant_id, rows.dump()});
  std::map<std::pair<std::string, std::string>, Owner> by_key;
  for (int i = 0; i < r.rows(); ++i) {
    auto o = owner_from_row(r, i);
    by_key[{std::string(to_string(o.spec.kind)), o.spec.graph_id}] = o;
  }
  std::vector<Owner> out;
  for (auto& o : owners) out.push_back(by_key.at({std::string(to_string(o.kind)), o.graph_id}));
  return out;
}

void Catalog::set_owner_state(PgConnection& c, const std::string& owner_id, OwnerState state,
                              const std::optional<std::string>& reason) const {
  require_uuid("owner id", owner_id);
  auto r = c.exec("UPDATE owners SET state = $2, skip_reason = $3, updated_at = now() WHERE id = $1::uuid",
                  {owner_id, std::string(to_string(state)), reason});
  if (r.affected() == 0) throw Error(Errc::not_found, "owner '" + owner_id + "' does not exist");
}

std::optional<Owner> Catalog::get_owner(PgConnection& c, const std::string& owner_id, const Scope& scope) const {
  require_uuid("owner id", owner_id);
  auto r = c.exec(std::string("SELECT ") + kOwnerColumns +
                      " FROM owners WHERE id = $1::uuid AND ($2::uuid IS NULL OR tenant_id = $2::uuid)",
                  {owner_id, scope_param(scope)});
  if (r.rows() == 0) return std::nullopt;
  return owner_from_row(r, 0);
}

OwnerPage Catalog::list_owners(PgConnection& c, const std::string& tenant_id, const OwnerFilter& f) const {
  require_uuid("tenant id", tenant_id);
  check_limit(f.limit);
  PgParam cur_name, cur_id;
  if (auto j = read_cursor(f.cursor); !j.is_null()) {
    if (j.size() != 2 || !j[0].is_string() || !j[1].is_string() || !looks_like_uuid(j[1].get<std::string>()))
      bad_cursor();
    cur_name = j[0].get<std::string>();
    cur_id = j[1].get<std::string>();
  }
  PgParam kind, state;
  if (f.kind) kind = std::string(to_string(*f.kind));
  if (f.state) state = std::string(to_string(*f.state));
  auto r = c.exec(std::string("SELECT ") + kOwnerColumns +
                      ", coalesce(display_name, '') FROM owners WHERE tenant_id = $1::uuid"
                      " AND ($2::text IS NULL OR kind = $2) AND ($3::text IS NULL OR state = $3)"
                      " AND ($4::text IS NULL OR (coalesce(display_name, ''), id) > ($4, $5::uuid))"
                      " ORDER BY coalesce(display_name, ''), id LIMIT $6",
                  {tenant_id, kind, state, cur_name, cur_id, std::to_string(f.limit + 1)});
  OwnerPage page;
  int n = std::min(r.rows(), f.limit);
  for (int i = 0; i < n; ++i) page.owners.push_back(owner_from_row(r, i));
  if (r.rows() > f.limit) page.next_cursor = make_cursor(json::array({std::string(r.get(n - 1, 11)), page.owners.back().id}));
  return page;
}

// ---------------------------------------------------------------- the page commit

PageResult Catalog::commit_page(PgConnection& c, const PageCommit& p) const {
  require_uuid("owner id", p.owner_id);
  if (p.snapshot_id) require_uuid("snapshot id", *p.snapshot_id);
  const std::string owner = p.owner_id;
  const std::string cat(to_string(p.category));
  const PgParam snap = p.snapshot_id;

  // Shape the page as JSON before touching the database: bad blob ids fail here.
  json containers = json::array();
  for (auto& k : p.containers) {
    if (k.graph_id.empty()) throw Error(Errc::bad_request, "container: field 'graph_id' is empty");
    containers.push_back({{"ord", containers.size()},
                          {"graph_id", k.graph_id},
                          {"parent_graph", or_null(k.parent_graph_id)},
                          {"display_name", k.display_name},
                          {"well_known", or_null(k.well_known)},
                          {"removed", k.removed}});
  }
  json items = json::array();
  for (size_t i = 0; i < p.items.size(); ++i) {
    auto& it = p.items[i];
    if (it.graph_id.empty()) throw Error(Errc::bad_request, "item " + std::to_string(i) + ": field 'graph_id' is empty");
    if (it.content_sha256 && it.content_sha256->size() != 32)
      throw Error(Errc::bad_request, "item '" + it.graph_id + "': field 'content_sha256' must be 32 bytes");
    items.push_back({{"ord", i},
                     {"graph_id", it.graph_id},
                     {"kind", it.kind},
                     {"container", or_null(it.container_graph_id)},
                     {"change_key", it.change_key},
                     {"name", it.name},
                     {"path", or_null(it.path)},
                     {"subject", or_null(it.subject)},
                     {"sender", or_null(it.sender)},
                     {"recipients", str_array(it.recipients)},
                     {"sent_at", or_null(it.sent_at)},
                     {"received_at", or_null(it.received_at)},
                     {"modified_at", or_null(it.modified_at)},
                     {"size", or_null(it.size)},
                     {"flags", str_array(it.flags)},
                     {"body_preview", or_null(it.body_preview)},
                     {"meta", it.meta.is_null() ? json::object() : it.meta},
                     {"content_type", or_null(it.content_type)},
                     {"blobs", hex_array(it.content_blobs, "content_blobs")},
                     {"sha256", it.content_sha256 ? json(to_hex(*it.content_sha256)) : json(nullptr)},
                     {"content_size", or_null(it.content_size)}});
  }

  return input_errors([&]() -> PageResult {
    PageResult res;
    Tx tx(c);
    if (c.exec("SELECT 1 FROM owners WHERE id = $1::uuid", {owner}).rows() == 0)
      throw Error(Errc::not_found, "owner '" + owner + "' does not exist");
    if (snap && c.exec("SELECT 1 FROM snapshots WHERE id = $1::uuid AND owner_id = $2::uuid AND category = $3",
                       {snap, owner, cat})
                        .rows() == 0)
      throw Error(Errc::not_found, "snapshot '" + *snap + "' of owner '" + owner + "' (" + cat + ") does not exist");

    // The scope's cursor row, locked: commits of one delta are serial whatever the
    // number of workers, and a stale one can be refused below.
    PgParam scope_container;
    if (p.container_graph_id) scope_container = container_identity(c, owner, cat, *p.container_graph_id);
    c.exec("INSERT INTO delta_cursors (owner_id, category, container_id) VALUES ($1::uuid, $2, $3::bigint)"
           " ON CONFLICT DO NOTHING",
           {owner, cat, scope_container});
    auto cur = c.exec(
        "SELECT id, coalesce(cursor, ''), round_id, round_covers FROM delta_cursors WHERE owner_id = $1::uuid"
        " AND category = $2 AND container_id IS NOT DISTINCT FROM $3::bigint FOR UPDATE",
        {owner, cat, scope_container});
    const std::string cursor_row(cur.get(0, 0));
    if (p.expected_cursor && *p.expected_cursor != cur.get(0, 1))
      throw Error(Errc::conflict, "delta cursor of owner '" + owner + "' (" + cat +
                                      ") moved since this page was fetched: another worker has committed past it");
    const PgParam round = opt(cur, 0, 2);
    const std::string covers = cur.is_null(0, 3) ? "" : std::string(cur.get(0, 3));

    ensure_page_tables(c);

    // --- containers
    if (!containers.empty()) {
      c.exec(
          "INSERT INTO cat_page_containers (graph_id, parent_graph, display_name, well_known, removed)"
          " SELECT DISTINCT ON (graph_id) graph_id, parent_graph, display_name, well_known, removed"
          " FROM jsonb_to_recordset($1::jsonb) AS x(ord int, graph_id text, parent_graph text,"
          "   display_name text, well_known text, removed boolean)"
          " ORDER BY graph_id, ord DESC",
          {containers.dump()});
      c.exec(
          "INSERT INTO containers (owner_id, category, graph_id)"
          " SELECT $1::uuid, $2, g FROM (SELECT graph_id AS g FROM cat_page_containers"
          "   UNION SELECT parent_graph FROM cat_page_containers WHERE parent_graph IS NOT NULL) s"
          " ON CONFLICT DO NOTHING",
          {owner, cat});
      c.exec(
          "UPDATE cat_page_containers p SET container_id = k.id,"
          " parent_id = (SELECT id FROM containers q WHERE q.owner_id = $1::uuid AND q.category = $2"
          "              AND q.graph_id = p.parent_graph),"
          " open_id = (SELECT v.id FROM container_versions v WHERE v.container_id = k.id AND v.to_at IS NULL)"
          " FROM containers k WHERE k.owner_id = $1::uuid AND k.category = $2 AND k.graph_id = p.graph_id",
          {owner, cat});
      c.exec(
          "UPDATE cat_page_containers p SET status = CASE"
          "   WHEN p.removed THEN CASE WHEN p.open_id IS NULL THEN 'none' ELSE 'remove' END"
          "   WHEN p.open_id IS NULL THEN 'new'"
          "   WHEN EXISTS (SELECT 1 FROM container_versions v WHERE v.id = p.open_id"
          "     AND v.parent_id IS NOT DISTINCT FROM p.parent_id AND v.display_name = p.display_name"
          "     AND v.well_known IS NOT DISTINCT FROM p.well_known) THEN 'same'"
          "   ELSE 'changed' END");
      if (round)
        c.exec("UPDATE containers SET seen_round = $1::bigint WHERE id IN"
               " (SELECT container_id FROM cat_page_containers WHERE NOT removed)",
               {round});
      auto removed = c.exec(
          "SELECT coalesce(jsonb_agg(container_id::text), '[]')::text FROM cat_page_containers WHERE status = 'remove'");
      res.items_closed += close_subtrees(c, std::string(removed.get(0, 0)), snap);
      auto changed = c.exec(
          "WITH closed AS (UPDATE container_versions SET to_at = now() WHERE to_at IS NULL AND id IN"
          "   (SELECT open_id FROM cat_page_containers WHERE status = 'changed') RETURNING 1),"
          " added AS (INSERT INTO container_versions (container_id, parent_id, display_name, well_known, path, from_at)"
          "   SELECT container_id, parent_id, display_name, well_known, display_name, now() FROM cat_page_containers"
          "   WHERE status = 'new' RETURNING 1)"
          " SELECT (SELECT count(*) FROM added) + (SELECT count(*) FROM cat_page_containers"
          "   WHERE status IN ('changed', 'remove'))");
      // A changed container's new version goes in after its old one is closed (the
      // open-version index allows one), so in a statement of its own.
      c.exec(
          "INSERT INTO container_versions (container_id, parent_id, display_name, well_known, path, from_at)"
          " SELECT container_id, parent_id, display_name, well_known, display_name, now() FROM cat_page_containers"
          " WHERE status = 'changed'");
      res.containers_changed = static_cast<int>(changed.get_int(0, 0));
      if (res.containers_changed > 0) recompute_paths(c, owner, cat);
    }

    // --- items
    if (!items.empty()) {
      c.exec(
          "INSERT INTO cat_page_items (graph_id, kind, container_graph, change_key, name, path, subject, sender,"
          " recipients, sent_at, received_at, modified_at, size, flags, body_preview, meta, content_type,"
          " content_blobs, content_sha256, content_size)"
          " SELECT DISTINCT ON (x.graph_id) x.graph_id, x.kind, x.container, x.change_key, x.name, x.path, x.subject,"
          "  x.sender, ARRAY(SELECT jsonb_array_elements_text(x.recipients)), x.sent_at, x.received_at,"
          "  x.modified_at, x.size, ARRAY(SELECT jsonb_array_elements_text(x.flags)), x.body_preview, x.meta,"
          "  x.content_type,"
          "  ARRAY(SELECT decode(b, 'hex') FROM jsonb_array_elements_text(x.blobs) WITH ORDINALITY AS t(b, n)"
          "        ORDER BY n),"
          "  decode(x.sha256, 'hex'), x.content_size"
          " FROM jsonb_to_recordset($1::jsonb) AS x(ord int, graph_id text, kind text, container text,"
          "  change_key text, name text, path text, subject text, sender text, recipients jsonb,"
          "  sent_at timestamptz, received_at timestamptz, modified_at timestamptz, size bigint, flags jsonb,"
          "  body_preview text, meta jsonb, content_type text, blobs jsonb, sha256 text, content_size bigint)"
          " ORDER BY x.graph_id, x.ord DESC",
          {items.dump()});
      c.exec(
          "INSERT INTO containers (owner_id, category, graph_id)"
          " SELECT DISTINCT $1::uuid, $2, container_graph FROM cat_page_items WHERE container_graph IS NOT NULL"
          " ON CONFLICT DO NOTHING",
          {owner, cat});
      c.exec(
          "INSERT INTO items (owner_id, category, graph_id, kind) SELECT $1::uuid, $2, graph_id, kind"
          " FROM cat_page_items ON CONFLICT DO NOTHING",
          {owner, cat});
      c.exec(
          "UPDATE cat_page_items p SET item_id = i.id,"
          " container_id = (SELECT k.id FROM containers k WHERE k.owner_id = $1::uuid AND k.category = $2"
          "                 AND k.graph_id = p.container_graph),"
          " open_id = (SELECT v.id FROM item_versions v WHERE v.item_id = i.id AND v.to_at IS NULL)"
          " FROM items i WHERE i.owner_id = $1::uuid AND i.category = $2 AND i.graph_id = p.graph_id",
          {owner, cat});
      // Unchanged: the same change key (or, without one, the same content) in the
      // same container. A move is a change: it adds a version in the new container.
      c.exec(
          "UPDATE cat_page_items p SET status = CASE"
          "   WHEN p.open_id IS NULL THEN CASE WHEN EXISTS (SELECT 1 FROM item_versions v WHERE v.item_id = p.item_id)"
          "     THEN 'changed' ELSE 'new' END"
          "   WHEN EXISTS (SELECT 1 FROM item_versions v WHERE v.id = p.open_id"
          "     AND coalesce(v.change_key, '') = p.change_key"
          "     AND (p.change_key <> '' OR v.content_sha256 IS NOT DISTINCT FROM p.content_sha256)"
          "     AND v.container_id IS NOT DISTINCT FROM p.container_id) THEN 'same'"
          "   ELSE 'changed' END");
      c.exec(
          "UPDATE item_versions SET to_at = now(), closed_in = $1::uuid WHERE to_at IS NULL AND id IN"
          " (SELECT open_id FROM cat_page_items WHERE status = 'changed')",
          {snap});
      auto ins = c.exec(
          "WITH ins AS (INSERT INTO item_versions (item_id, owner_id, category, container_id, from_at, added_in, name,"
          "  path, subject, sender, recipients, sent_at, received_at, modified_at, size, change_key, flags,"
          "  body_preview, meta, content_type, content_blobs, content_sha256, content_size, search)"
          " SELECT item_id, $1::uuid, $2, container_id, now(), $3::uuid, coalesce(name, ''), path, subject, sender,"
          "  recipients, sent_at, received_at, modified_at, size, change_key, flags, body_preview, meta,"
          "  content_type, content_blobs, content_sha256, content_size,"
          "  setweight(to_tsvector('simple', coalesce(subject, '') || ' ' || coalesce(name, '')), 'A') ||"
          "  setweight(to_tsvector('simple', coalesce(sender, '') || ' ' || array_to_string(recipients, ' ') || ' ' ||"
          "    translate(coalesce(sender, '') || ' ' || array_to_string(recipients, ' '), '@.<>\"', '     ')), 'B') ||"
          "  setweight(to_tsvector('simple', translate(coalesce(path, ''), '/\\_.-', '     ')), 'C') ||"
          // Attachment names (meta.attachmentNames, from the MIME): whole, and split
          // at the punctuation of file names so a word of one finds it too.
          "  setweight(to_tsvector('simple', attachment_names || ' ' || translate(attachment_names, '/\\_.-', '     ')),"
          "    'C') ||"
          "  setweight(to_tsvector('simple', coalesce(body_preview, '')), 'D')"
          " FROM (SELECT *, coalesce((SELECT string_agg(n, ' ') FROM jsonb_array_elements_text(CASE WHEN"
          "   jsonb_typeof(meta->'attachmentNames') = 'array' THEN meta->'attachmentNames' END) n), '')"
          "   AS attachment_names FROM cat_page_items) p WHERE status IN ('new', 'changed')"
          " RETURNING content_size)"
          " SELECT count(*), coalesce(sum(content_size), 0)::bigint FROM ins",
          {owner, cat, snap});
      res.bytes_added = ins.get_int(0, 1);
      auto counts = c.exec(
          "SELECT count(*) FILTER (WHERE status = 'new'), count(*) FILTER (WHERE status = 'changed'),"
          " count(*) FILTER (WHERE status = 'same') FROM cat_page_items");
      res.items_added = static_cast<int>(counts.get_int(0, 0));
      res.items_changed = static_cast<int>(counts.get_int(0, 1));
      res.items_unchanged = static_cast<int>(counts.get_int(0, 2));
      c.exec(
          "UPDATE item_faults SET resolved_at = now() WHERE owner_id = $1::uuid AND category = $2"
          " AND resolved_at IS NULL AND item_graph_id IN (SELECT graph_id FROM cat_page_items)",
          {owner, cat});
      if (round)
        c.exec("UPDATE items SET seen_round = $1::bigint WHERE id IN (SELECT item_id FROM cat_page_items)", {round});
    }
    if (round && !p.unchanged_items.empty())
      c.exec(
          "UPDATE items SET seen_round = $3::bigint WHERE owner_id = $1::uuid AND category = $2"
          " AND graph_id IN (SELECT jsonb_array_elements_text($4::jsonb))",
          {owner, cat, round, json(p.unchanged_items).dump()});
    res.items_unchanged += static_cast<int>(p.unchanged_items.size());

    // --- removals, inside this delta's container only (a message moved to another
    // folder is removed from this one's delta but lives on in the other).
    if (!p.removed_items.empty()) {
      auto r = c.exec(
          "UPDATE item_versions v SET to_at = now(), closed_in = $4::uuid FROM items i"
          " WHERE v.item_id = i.id AND v.to_at IS NULL AND i.owner_id = $1::uuid AND i.category = $2"
          " AND i.graph_id IN (SELECT jsonb_array_elements_text($3::jsonb))"
          " AND ($5::bigint IS NULL OR v.container_id = $5::bigint)",
          {owner, cat, json(p.removed_items).dump(), snap, scope_container});
      res.items_closed += static_cast<int>(r.affected());
    }

    // --- a completed resync round closes what it did not see
    if (round && p.delta_link) {
      if (covers == "containers" || covers == "both") {
        auto unseen = c.exec(
            "SELECT coalesce(jsonb_agg(k.id::text), '[]')::text FROM containers k JOIN container_versions v"
            " ON v.container_id = k.id AND v.to_at IS NULL WHERE k.owner_id = $1::uuid AND k.category = $2"
            " AND k.seen_round IS DISTINCT FROM $3::bigint AND ($4::bigint IS NULL OR k.id <> $4::bigint)",
            {owner, cat, round, scope_container});
        res.items_closed += close_subtrees(c, std::string(unseen.get(0, 0)), snap);
      }
      if (covers == "items" || covers == "both") {
        auto r = c.exec(
            "UPDATE item_versions v SET to_at = now(), closed_in = $4::uuid FROM items i"
            " WHERE v.item_id = i.id AND v.to_at IS NULL AND i.owner_id = $1::uuid AND i.category = $2"
            " AND i.seen_round IS DISTINCT FROM $3::bigint AND ($5::bigint IS NULL OR v.container_id = $5::bigint)",
            {owner, cat, round, snap, scope_container});
        res.items_closed += static_cast<int>(r.affected());
      }
      res.round_completed = true;
    }

    c.exec(
        "UPDATE delta_cursors SET cursor = $2, updated_at = now(),"
        " round_id = CASE WHEN $3::boolean THEN NULL ELSE round_id END,"
        " round_covers = CASE WHEN $3::boolean THEN NULL ELSE round_covers END,"
        " round_started_at = CASE WHEN $3::boolean THEN NULL ELSE round_started_at END WHERE id = $1::bigint",
        {cursor_row, p.cursor, res.round_completed ? "true" : "false"});
    if (snap)
      c.exec(
          "UPDATE snapshots SET items_added = items_added + $2::bigint, items_changed = items_changed + $3::bigint,"
          " items_deleted = items_deleted + $4::bigint, bytes_added = bytes_added + $5::bigint WHERE id = $1::uuid",
          {snap, std::to_string(res.items_added), std::to_string(res.items_changed), std::to_string(res.items_closed),
           std::to_string(res.bytes_added)});
    tx.commit();
    return res;
  });
}

DeltaState Catalog::delta_state(PgConnection& c, const std::string& owner_id, Category category,
                                const std::optional<std::string>& container_graph_id) const {
  require_uuid("owner id", owner_id);
  auto r = c.exec(
      "SELECT d.cursor, d.round_id FROM delta_cursors d LEFT JOIN containers k ON k.id = d.container_id"
      " WHERE d.owner_id = $1::uuid AND d.category = $2"
      " AND (($3::text IS NULL AND d.container_id IS NULL) OR k.graph_id = $3)",
      {owner_id, std::string(to_string(category)), container_graph_id});
  DeltaState s;
  if (r.rows() == 0) return s;
  s.cursor = opt(r, 0, 0);
  if (s.cursor && s.cursor->empty()) s.cursor.reset();
  s.round_id = opt_int(r, 0, 1);
  return s;
}

long long Catalog::start_round(PgConnection& c, const std::string& owner_id, Category category,
                               const std::optional<std::string>& container_graph_id, RoundCovers covers) const {
  require_uuid("owner id", owner_id);
  const std::string cat(to_string(category));
  Tx tx(c);
  if (c.exec("SELECT 1 FROM owners WHERE id = $1::uuid", {owner_id}).rows() == 0)
    throw Error(Errc::not_found, "owner '" + owner_id + "' does not exist");
  PgParam container;
  if (container_graph_id) container = container_identity(c, owner_id, cat, *container_graph_id);
  const char* cov = covers == RoundCovers::items ? "items" : covers == RoundCovers::containers ? "containers" : "both";
  c.exec("INSERT INTO delta_cursors (owner_id, category, container_id) VALUES ($1::uuid, $2, $3::bigint)"
         " ON CONFLICT DO NOTHING",
         {owner_id, cat, container});
  auto r = c.exec(
      "UPDATE delta_cursors SET cursor = NULL, round_id = nextval('delta_rounds'), round_covers = $4,"
      " round_started_at = now(), updated_at = now()"
      " WHERE owner_id = $1::uuid AND category = $2 AND container_id IS NOT DISTINCT FROM $3::bigint RETURNING round_id",
      {owner_id, cat, container, std::string(cov)});
  auto id = r.get_int(0, 0);
  tx.commit();
  return id;
}

std::unordered_map<std::string, KnownItem> Catalog::known_items(PgConnection& c, const std::string& owner_id,
                                                                Category category,
                                                                const std::vector<std::string>& graph_ids) const {
  require_uuid("owner id", owner_id);
  std::unordered_map<std::string, KnownItem> out;
  if (graph_ids.empty()) return out;
  // Each id looked up on its own through the (owner_id, category, graph_id) index:
  // with `graph_id IN (SELECT ...)`, statistics that lag a first backup (items
  // "empty") made PostgreSQL walk every item of the mailbox and compare it with
  // every id: 16-40 ms a page, growing with the mailbox, a third of the
  // database's CPU in bench/backup_exchange.
  // (LIMIT 1, the key being unique, keeps PostgreSQL from flattening the lookup
  // back into a join of its own choosing.)
  auto r = c.exec(
      "SELECT g.id, i.id, coalesce(v.change_key, ''), k.graph_id"
      " FROM jsonb_array_elements_text($3::jsonb) AS g(id)"
      " CROSS JOIN LATERAL (SELECT i.id FROM items i"
      "   WHERE i.owner_id = $1::uuid AND i.category = $2 AND i.graph_id = g.id LIMIT 1) i"
      " JOIN item_versions v ON v.item_id = i.id AND v.to_at IS NULL"
      " LEFT JOIN containers k ON k.id = v.container_id",
      {owner_id, std::string(to_string(category)), json(graph_ids).dump()});
  for (int i = 0; i < r.rows(); ++i)
    out[std::string(r.get(i, 0))] = KnownItem{std::string(r.get(i, 1)), std::string(r.get(i, 2)), opt(r, i, 3)};
  return out;
}

std::vector<std::string> Catalog::open_items_under(PgConnection& c, const std::string& owner_id, Category category,
                                                  const std::vector<std::string>& prefixes) const {
  require_uuid("owner id", owner_id);
  std::vector<std::string> out;
  if (prefixes.empty()) return out;
  for (auto& p : prefixes)
    if (p.empty()) throw Error(Errc::bad_request, "open_items_under: an empty prefix would match every item");
  auto r = c.exec(
      "SELECT i.graph_id FROM items i JOIN item_versions v ON v.item_id = i.id AND v.to_at IS NULL"
      " WHERE i.owner_id = $1::uuid AND i.category = $2"
      " AND EXISTS (SELECT 1 FROM jsonb_array_elements_text($3::jsonb) AS p(x) WHERE starts_with(i.graph_id, p.x))"
      " ORDER BY i.graph_id",
      {owner_id, std::string(to_string(category)), json(prefixes).dump()});
  for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.get(i, 0));
  return out;
}

// ---------------------------------------------------------------- snapshots

Snapshot Catalog::begin_snapshot(PgConnection& c, const std::string& owner_id, Category category,
                                 const std::string& run_id) const {
  require_uuid("owner id", owner_id);
  require_uuid("run id", run_id);
  const std::string cat(to_string(category));
  auto r = c.exec(std::string("WITH o AS (SELECT id, tenant_id FROM owners WHERE id = $1::uuid),"
                              " ins AS (INSERT INTO snapshots (tenant_id, owner_id, category, run_id)"
                              "   SELECT tenant_id, id, $2, $3::uuid FROM o ON CONFLICT (run_id, owner_id, category)"
                              "   DO NOTHING RETURNING *)"
                              " SELECT ") +
                      kSnapshotColumns +
                      " FROM ins s UNION ALL SELECT " + kSnapshotColumns +
                      " FROM snapshots s WHERE s.run_id = $3::uuid AND s.owner_id = $1::uuid AND s.category = $2",
                  {owner_id, cat, run_id});
  if (r.rows() == 0) throw Error(Errc::not_found, "owner '" + owner_id + "' does not exist");
  return snapshot_from_row(r, 0);
}

Snapshot Catalog::complete_snapshot(PgConnection& c, const std::string& snapshot_id, SnapshotState state) const {
  require_uuid("snapshot id", snapshot_id);
  if (state == SnapshotState::running) throw Error(Errc::bad_request, "a snapshot completes as complete or partial");
  auto r = c.exec(std::string("UPDATE snapshots s SET state = $2, completed_at = now(),"
                              " items_total = (SELECT count(*) FROM item_versions v WHERE v.owner_id = s.owner_id"
                              "   AND v.category = s.category AND v.to_at IS NULL)"
                              " WHERE id = $1::uuid RETURNING ") +
                      kSnapshotColumns,
                  {snapshot_id, std::string(to_string(state))});
  if (r.rows() == 0) throw Error(Errc::not_found, "snapshot '" + snapshot_id + "' does not exist");
  return snapshot_from_row(r, 0);
}

std::optional<Snapshot> Catalog::get_snapshot(PgConnection& c, const std::string& snapshot_id,
                                              const Scope& scope) const {
  require_uuid("snapshot id", snapshot_id);
  auto r = c.exec(std::string("SELECT ") + kSnapshotColumns +
                      " FROM snapshots s WHERE s.id = $1::uuid AND ($2::uuid IS NULL OR s.tenant_id = $2::uuid)",
                  {snapshot_id, scope_param(scope)});
  if (r.rows() == 0) return std::nullopt;
  return snapshot_from_row(r, 0);
}

SnapshotPage Catalog::list_snapshots(PgConnection& c, const SnapshotFilter& f, const Scope& scope) const {
  check_limit(f.limit);
  if (f.tenant_id) require_uuid("parameter 'tenant':", *f.tenant_id);
  if (f.owner_id) require_uuid("parameter 'owner':", *f.owner_id);
  PgParam cur_at, cur_id;
  if (auto j = read_cursor(f.cursor); !j.is_null()) {
    if (j.size() != 2 || !j[0].is_string() || !j[1].is_string() || !looks_like_uuid(j[1].get<std::string>()))
      bad_cursor();
    cur_at = j[0].get<std::string>();
    cur_id = j[1].get<std::string>();
  }
  PgParam cat;
  if (f.category) cat = std::string(to_string(*f.category));
  auto r = input_errors([&] {
    return c.exec(std::string("SELECT ") + kSnapshotColumns +
                      " FROM snapshots s WHERE ($1::uuid IS NULL OR s.tenant_id = $1::uuid)"
                      " AND ($2::uuid IS NULL OR s.tenant_id = $2::uuid) AND ($3::uuid IS NULL OR s.owner_id = $3::uuid)"
                      " AND ($4::text IS NULL OR s.category = $4)"
                      " AND ($5::timestamptz IS NULL OR (s.started_at, s.id) < ($5::timestamptz, $6::uuid))"
                      " ORDER BY s.started_at DESC, s.id DESC LIMIT $7",
                  {scope_param(scope), f.tenant_id, f.owner_id, cat, cur_at, cur_id, std::to_string(f.limit + 1)});
  });
  SnapshotPage page;
  int n = std::min(r.rows(), f.limit);
  for (int i = 0; i < n; ++i) page.snapshots.push_back(snapshot_from_row(r, i));
  if (r.rows() > f.limit)
    page.next_cursor = make_cursor(json::array({page.snapshots.back().started_at, page.snapshots.back().id}));
  return page;
}

// ---------------------------------------------------------------- faults

void Catalog::record_fault(PgConnection& c, const std::string& run_id, const std::string& owner_id, Category category,
                           const std::string& item_graph_id, const std::string& reason,
                           const std::optional<std::string>& code, const std::optional<std::string>& snapshot_id) const {
  require_uuid("run id", run_id);
  require_uuid("owner id", owner_id);
  if (snapshot_id) require_uuid("snapshot id", *snapshot_id);
  Tx tx(c);
  auto r = c.exec(
      "INSERT INTO item_faults (run_id, owner_id, category, item_graph_id, reason, code)"
      " VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6)"
      " ON CONFLICT (run_id, owner_id, category, item_graph_id) DO UPDATE SET reason = EXCLUDED.reason,"
      " code = EXCLUDED.code, last_seen_at = now(), attempts = item_faults.attempts + 1, resolved_at = NULL"
      " RETURNING attempts",
      {run_id, owner_id, std::string(to_string(category)), item_graph_id, reason, code});
  if (snapshot_id && r.get_int(0, 0) == 1)
    c.exec("UPDATE snapshots SET faults = faults + 1 WHERE id = $1::uuid", {snapshot_id});
  tx.commit();
}

int Catalog::resolve_faults(PgConnection& c, const std::string& owner_id, Category category,
                            const std::vector<std::string>& item_graph_ids) const {
  require_uuid("owner id", owner_id);
  if (item_graph_ids.empty()) return 0;
  return static_cast<int>(
      c.exec("UPDATE item_faults SET resolved_at = now() WHERE owner_id = $1::uuid AND category = $2"
             " AND resolved_at IS NULL AND item_graph_id IN (SELECT jsonb_array_elements_text($3::jsonb))",
             {owner_id, std::string(to_string(category)), json(item_graph_ids).dump()})
          .affected());
}

std::vector<Fault> Catalog::list_faults(PgConnection& c, const std::string& run_id,
                                        const std::optional<std::string>& after_id, int limit) const {
  require_uuid("run id", run_id);
  check_limit(limit);
  if (after_id && !looks_like_id(*after_id)) bad_cursor();
  auto r = c.exec(std::string("SELECT ") + kFaultColumns +
                      " FROM item_faults WHERE run_id = $1::uuid AND ($2::bigint IS NULL OR id > $2::bigint)"
                      " ORDER BY id LIMIT $3",
                  {run_id, after_id, std::to_string(limit)});
  std::vector<Fault> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(fault_from_row(r, i));
  return out;
}

std::vector<Fault> Catalog::open_faults(PgConnection& c, const std::string& owner_id, Category category) const {
  require_uuid("owner id", owner_id);
  auto r = c.exec(std::string("SELECT DISTINCT ON (item_graph_id) ") + kFaultColumns +
                      " FROM item_faults WHERE owner_id = $1::uuid AND category = $2 AND resolved_at IS NULL"
                      " ORDER BY item_graph_id, last_seen_at DESC",
                  {owner_id, std::string(to_string(category))});
  std::vector<Fault> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(fault_from_row(r, i));
  return out;
}

// ---------------------------------------------------------------- reads

// ---------------------------------------------------------------- discovery

std::optional<std::string> Catalog::tenant_cursor(PgConnection& c, const std::string& tenant_id,
                                                  const std::string& scope) const {
  require_uuid("tenant id", tenant_id);
  auto r = c.exec("SELECT cursor FROM tenant_cursors WHERE tenant_id = $1::uuid AND scope = $2", {tenant_id, scope});
  if (r.rows() == 0) return std::nullopt;
  return std::string(r.get(0, 0));
}

void Catalog::commit_directory_page(PgConnection& c, const std::string& tenant_id, const std::string& scope,
                                    OwnerKind kind, const std::vector<OwnerSpec>& owners,
                                    const std::vector<std::string>& removed, const std::string& cursor) const {
  require_uuid("tenant id", tenant_id);
  Tx tx(c);
  upsert_owners(c, tenant_id, owners);
  if (!removed.empty()) {
    json ids = removed;
    c.exec("UPDATE owners SET state = 'deleted', skip_reason = 'removed from the directory', updated_at = now()"
           " WHERE tenant_id = $1::uuid AND kind = $2"
           " AND graph_id IN (SELECT jsonb_array_elements_text($3::jsonb)) AND state <> 'deleted'",
           {tenant_id, std::string(to_string(kind)), ids.dump()});
  }
  if (!cursor.empty())
    c.exec("INSERT INTO tenant_cursors (tenant_id, scope, cursor) VALUES ($1::uuid, $2, $3)"
           " ON CONFLICT (tenant_id, scope) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()",
           {tenant_id, scope, cursor});
  tx.commit();
}

std::vector<ContainerEntry> Catalog::open_containers(PgConnection& c, const std::string& owner_id,
                                                     Category category) const {
  require_uuid("owner id", owner_id);
  auto r = c.exec(std::string("SELECT ") + kContainerColumns +
                      " FROM containers c JOIN container_versions cv ON cv.container_id = c.id AND cv.to_at IS NULL"
                      " WHERE c.owner_id = $1::uuid AND c.category = $2 ORDER BY cv.path, c.id",
                  {owner_id, std::string(to_string(category))});
  std::vector<ContainerEntry> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(container_from_row(r, i));
  return out;
}

std::string Catalog::resolve_at(PgConnection& c, const std::optional<std::string>& at, const Scope& scope) const {
  if (means_now(at)) {
    auto r = c.exec("SELECT " TS("clock_timestamp()"));
    return std::string(r.get(0, 0));
  }
  if (looks_like_uuid(*at)) {
    auto r = c.exec("SELECT " TS("coalesce(completed_at, clock_timestamp())") " FROM snapshots"
                    " WHERE id = $1::uuid AND ($2::uuid IS NULL OR tenant_id = $2::uuid)",
                    {*at, scope_param(scope)});
    if (r.rows() == 0) throw Error(Errc::not_found, "snapshot '" + *at + "' does not exist");
    return std::string(r.get(0, 0));
  }
  // An RFC 3339 instant: a date, 'T', a time and a zone. PostgreSQL would take
  // much more ("yesterday", "epoch"); the API promises RFC 3339 only.
  const auto& s = *at;
  bool shape = s.size() >= 20 && s.size() <= 40 && s[4] == '-' && s[7] == '-' && (s[10] == 'T' || s[10] == 't') &&
               s[13] == ':' && (s.back() == 'Z' || s.back() == 'z' || s[s.size() - 3] == ':');
  if (!shape) throw Error(Errc::bad_request, "parameter 'at': '" + s.substr(0, 64) + "' is not an RFC 3339 instant or a snapshot id");
  try {
    auto r = c.exec("SELECT " TS("$1::timestamptz"), {s});
    return std::string(r.get(0, 0));
  } catch (const PgError&) {
    throw Error(Errc::bad_request, "parameter 'at': '" + s.substr(0, 64) + "' is not an RFC 3339 instant or a snapshot id");
  }
}

BrowsePage Catalog::browse(PgConnection& c, const BrowseQuery& q) const {
  require_uuid("parameter 'owner':", q.owner_id);
  check_limit(q.limit);
  if (q.container_id && !looks_like_id(*q.container_id))
    throw Error(Errc::bad_request, "parameter 'container': '" + q.container_id->substr(0, 64) + "' is not a container id");
  const std::string cat(to_string(q.category));
  // The owner and container checks and, at the present, the instant, in one
  // statement: three round trips before, each a millisecond or more to a
  // PostgreSQL on another host.
  auto checks = c.exec("SELECT EXISTS (SELECT 1 FROM owners WHERE id = $1::uuid AND ($2::uuid IS NULL OR tenant_id = $2::uuid)),"
                       " $3::bigint IS NULL OR EXISTS (SELECT 1 FROM containers"
                       "   WHERE id = $3::bigint AND owner_id = $1::uuid AND category = $4), " TS("clock_timestamp()"),
                       {q.owner_id, scope_param(q.scope), q.container_id, cat});
  if (checks.get(0, 0) != "t") throw Error(Errc::not_found, "owner '" + q.owner_id + "' does not exist");
  if (checks.get(0, 1) != "t") throw Error(Errc::not_found, "container '" + *q.container_id + "' does not exist");
  BrowsePage page;
  page.at = means_now(q.at) ? std::string(checks.get(0, 2)) : resolve_at(c, q.at, q.scope);

  // The cursor: [phase ("c" containers, "i" items), name, id].
  std::string phase = "c";
  PgParam cur_name, cur_id;
  if (auto j = read_cursor(q.cursor); !j.is_null()) {
    if (j.size() != 3 || !j[0].is_string() || !j[1].is_string() || !j[2].is_string() ||
        !looks_like_id(j[2].get<std::string>()) || (j[0] != "c" && j[0] != "i"))
      bad_cursor();
    phase = j[0].get<std::string>();
    cur_name = j[1].get<std::string>();
    cur_id = j[2].get<std::string>();
  }
  const std::string lim = std::to_string(q.limit + 1);
  if (phase == "c") {
    // Children of the container, or the roots: containers whose parent has no
    // version then (mail's top-level folders hang under an unlisted root).
    auto r = c.exec(std::string("SELECT ") + kContainerColumns +
                        " FROM container_versions cv JOIN containers c ON c.id = cv.container_id"
                        " WHERE c.owner_id = $1::uuid AND c.category = $2 AND " +
                        visible_at("cv", "$3", q.at) +
                        " AND (CASE WHEN $4::bigint IS NOT NULL THEN cv.parent_id = $4::bigint ELSE"
                        "   cv.parent_id IS NULL OR NOT EXISTS (SELECT 1 FROM container_versions pv"
                        "   WHERE pv.container_id = cv.parent_id AND " +
                        visible_at("pv", "$3", q.at) +
                        ") END)"
                        " AND ($5::text IS NULL OR (cv.display_name COLLATE \"C\", c.id) > ($5 COLLATE \"C\", $6::bigint))"
                        " ORDER BY cv.display_name COLLATE \"C\", c.id LIMIT $7",
                    {q.owner_id, cat, page.at, q.container_id, cur_name, cur_id, lim});
    int n = std::min(r.rows(), q.limit);
    for (int i = 0; i < n; ++i) page.containers.push_back(container_from_row(r, i));
    if (r.rows() > q.limit) {
      auto& last = page.containers.back();
      page.next_cursor = make_cursor(json::array({"c", last.display_name, last.id}));
      return page;
    }
    cur_name.reset();
    cur_id.reset();
  }
  if (!q.container_id) return page;  // items live in containers
  int room = q.limit - static_cast<int>(page.containers.size());
  if (room <= 0) {
    // The page filled exactly with containers: items may follow.
    if (c.exec("SELECT 1 FROM item_versions v WHERE v.container_id = $1::bigint AND " + visible_at("v", "$2", q.at) + " LIMIT 1",
               {q.container_id, page.at})
            .rows() > 0)
      page.next_cursor = make_cursor(json::array({"i", "", "0"}));
    return page;
  }
  // The page's ids first, then its rows: at a past instant the ids come from an
  // index-only scan of item_versions_browse_at (its validity columns included),
  // so the versions not visible then are skipped without reading the table.
  auto r = c.exec(std::string("WITH p AS (SELECT v.id, v.name FROM item_versions v"
                              " WHERE v.container_id = $1::bigint AND ") +
                      visible_at("v", "$2", q.at) +
                      " AND ($3::text IS NULL OR (v.name, v.id) > ($3, $4::bigint))"
                      " ORDER BY v.name, v.id LIMIT $5)"
                      " SELECT " + kVersionColumns +
                      " FROM p JOIN item_versions v ON v.id = p.id JOIN items i ON i.id = v.item_id"
                      " ORDER BY p.name, p.id",
                  {q.container_id, page.at, cur_name, cur_id, std::to_string(room + 1)});
  int n = std::min(r.rows(), room);
  for (int i = 0; i < n; ++i) page.items.push_back(version_from_row(r, i));
  if (r.rows() > room) {
    auto& last = page.items.back();
    page.next_cursor = make_cursor(json::array({"i", last.name, last.version_id}));
  }
  return page;
}

std::optional<ItemVersion> Catalog::get_item(PgConnection& c, const std::string& item_id,
                                             const std::optional<std::string>& at, const Scope& scope) const {
  if (!looks_like_id(item_id)) throw Error(Errc::bad_request, "item id '" + item_id.substr(0, 64) + "' is not an item id");
  // At the present the instant is the statement's own start: no statement of its
  // own to read the clock (half the round trips of a metadata request).
  std::vector<PgParam> params{item_id, scope_param(scope)};
  std::string when = "statement_timestamp()";
  if (!means_now(at)) {
    params.push_back(resolve_at(c, at, scope));
    when = "$3";
  }
  auto r = c.exec(std::string("SELECT ") + kVersionColumns +
                      " FROM item_versions v JOIN items i ON i.id = v.item_id WHERE i.id = $1::bigint AND " +
                      visible_at("v", when, at) + " AND " + owner_in_scope("i.owner_id", "$2"),
                  params);
  if (r.rows() == 0) return std::nullopt;
  return version_from_row(r, 0);
}

std::optional<ItemVersion> Catalog::get_version(PgConnection& c, const std::string& version_id,
                                                const Scope& scope) const {
  auto found = get_versions(c, {version_id}, scope);
  if (found.empty()) return std::nullopt;
  return std::move(found.begin()->second);
}

std::map<std::string, ItemVersion> Catalog::get_versions(PgConnection& c, const std::vector<std::string>& version_ids,
                                                         const Scope& scope) const {
  std::string ids = "{";
  for (auto& id : version_ids) {
    if (!looks_like_id(id))
      throw Error(Errc::bad_request, "parameter 'version': '" + id.substr(0, 64) + "' is not a version id");
    if (ids.size() > 1) ids += ',';
    ids += id;
  }
  ids += '}';
  std::map<std::string, ItemVersion> out;
  if (version_ids.empty()) return out;
  auto r = c.exec(std::string("SELECT ") + kVersionColumns +
                      " FROM item_versions v JOIN items i ON i.id = v.item_id WHERE v.id = ANY($1::bigint[]) AND " +
                      owner_in_scope("i.owner_id", "$2"),
                  {ids, scope_param(scope)});
  for (int i = 0; i < r.rows(); ++i) {
    auto v = version_from_row(r, i);
    auto key = v.version_id;
    out.emplace(std::move(key), std::move(v));
  }
  return out;
}

VersionPage Catalog::item_versions(PgConnection& c, const std::string& item_id, const std::optional<std::string>& cursor,
                                   int limit, const Scope& scope) const {
  if (!looks_like_id(item_id)) throw Error(Errc::bad_request, "item id '" + item_id.substr(0, 64) + "' is not an item id");
  check_limit(limit);
  PgParam cur_at, cur_id;
  if (auto j = read_cursor(cursor); !j.is_null()) {
    if (j.size() != 2 || !j[0].is_string() || !j[1].is_string() || !looks_like_id(j[1].get<std::string>())) bad_cursor();
    cur_at = j[0].get<std::string>();
    cur_id = j[1].get<std::string>();
  }
  if (c.exec("SELECT 1 FROM items i WHERE i.id = $1::bigint AND " + owner_in_scope("i.owner_id", "$2"),
             {item_id, scope_param(scope)})
          .rows() == 0)
    throw Error(Errc::not_found, "item '" + item_id + "' does not exist");
  auto r = input_errors([&] {
    return c.exec(std::string("SELECT ") + kVersionColumns +
                      " FROM item_versions v JOIN items i ON i.id = v.item_id WHERE v.item_id = $1::bigint"
                      " AND ($2::timestamptz IS NULL OR (v.from_at, v.id) < ($2::timestamptz, $3::bigint))"
                      " ORDER BY v.from_at DESC, v.id DESC LIMIT $4",
                  {item_id, cur_at, cur_id, std::to_string(limit + 1)});
  });
  VersionPage page;
  int n = std::min(r.rows(), limit);
  for (int i = 0; i < n; ++i) page.versions.push_back(version_from_row(r, i));
  if (r.rows() > limit)
    page.next_cursor = make_cursor(json::array({page.versions.back().valid_from, page.versions.back().version_id}));
  return page;
}

SearchPage Catalog::search(PgConnection& c, const SearchQuery& q) const {
  check_limit(q.limit);
  if (q.q.empty() || q.q.size() > 1000) throw Error(Errc::bad_request, "parameter 'q': 1 to 1000 characters");
  if (q.q.find_first_not_of(" \t\r\n") == std::string::npos) throw Error(Errc::bad_request, "parameter 'q': is blank");
  if (q.tenant_id) require_uuid("parameter 'tenant':", *q.tenant_id);
  if (q.owner_id) require_uuid("parameter 'owner':", *q.owner_id);
  auto when = resolve_at(c, q.at, q.scope);
  // The shape first, then PostgreSQL's own reading (the one the query uses), so a
  // month 13 is refused naming the parameter rather than as a failed statement.
  auto check_time = [&](const std::optional<std::string>& t, const char* name) {
    auto bad = [&] {
      return Error(Errc::bad_request, std::string("parameter '") + name + "': '" + t->substr(0, 64) +
                                          "' is not an RFC 3339 date or instant");
    };
    if (!t) return;
    if (t->size() < 10 || t->size() > 40 || (*t)[4] != '-' || t->find_first_not_of("0123456789-:.TtZz+ ") != std::string::npos)
      throw bad();
    try {
      c.exec("SELECT $1::timestamptz", {*t});
    } catch (const PgError& e) {
      if (e.sqlstate().rfind("22", 0) == 0) throw bad();
      throw;
    }
  };
  check_time(q.after, "after");
  check_time(q.before, "before");
  PgParam cur_rank, cur_id;
  if (auto j = read_cursor(q.cursor); !j.is_null()) {
    if (j.size() != 2 || !j[0].is_string() || !j[1].is_string() || !looks_like_id(j[1].get<std::string>())) bad_cursor();
    cur_rank = j[0].get<std::string>();
    cur_id = j[1].get<std::string>();
    if (cur_rank->empty() || cur_rank->size() > 30 ||
        cur_rank->find_first_not_of("0123456789.e-+") != std::string::npos)
      bad_cursor();
  }
  PgParam cat;
  if (q.category) cat = std::string(to_string(*q.category));
  // Ranked by ts_rank (subject and names weigh most, then people, paths, the
  // preview); keyset on (rank, version id), the rank travelling as its exact text.
  // Only the kSearchRankedMatches most recently stored matches (highest version
  // id) are ranked: a word in most of the index would otherwise rank millions of
  // rows on every page. The candidates are the same for every page of a query,
  // so the keyset still walks one fixed order. One candidate more than the cap is
  // read to tell the client truthfully whether older matches were left out (k);
  // the filters narrow the candidates before the cap, so a narrower query reaches
  // them. k is joined on the left so that a page past the end still reports it.
  const std::string cap = std::to_string(kSearchRankedMatches);
  auto r = input_errors([&] {
    return c.exec(std::string("WITH c AS (SELECT v.id, v.search FROM item_versions v"
                              "   WHERE v.search @@ websearch_to_tsquery('simple', $1) AND ") +
                      visible_at("v", "$2", q.at) + " AND " + owner_in_scope("v.owner_id", "$3") +
                      "   AND ($4::uuid IS NULL OR v.owner_id IN (SELECT id FROM owners WHERE tenant_id = $4::uuid))"
                      "   AND ($5::uuid IS NULL OR v.owner_id = $5::uuid) AND ($6::text IS NULL OR v.category = $6)"
                      "   AND ($7::timestamptz IS NULL OR coalesce(v.received_at, v.sent_at, v.modified_at) >= $7::timestamptz)"
                      "   AND ($8::timestamptz IS NULL OR coalesce(v.received_at, v.sent_at, v.modified_at) < $8::timestamptz)"
                      "   ORDER BY v.id DESC LIMIT " + cap + " + 1),"
                      " k AS (SELECT count(*) AS n, min(c.id) AS low FROM c),"
                      " m AS (SELECT c.id, ts_rank(c.search, websearch_to_tsquery('simple', $1)) AS rank FROM c, k"
                      "  WHERE k.n <= " + cap + " OR c.id > k.low),"
                      // The page before the joins: they then fetch limit + 1 rows, not every candidate.
                      " p AS (SELECT m.id, m.rank FROM m WHERE ($9::real IS NULL OR (m.rank, m.id) < ($9::real, $10::bigint))"
                      "  ORDER BY m.rank DESC, m.id DESC LIMIT $11)"
                      " SELECT " +
                      kVersionColumns +
                      ", p.rank::text, k.n FROM k LEFT JOIN (p JOIN item_versions v ON v.id = p.id"
                      "  JOIN items i ON i.id = v.item_id) ON true"
                      " ORDER BY p.rank DESC, p.id DESC",
                  {q.q, when, scope_param(q.scope), q.tenant_id, q.owner_id, cat, q.after, q.before, cur_rank, cur_id,
                   std::to_string(q.limit + 1)});
  });
  SearchPage page;
  const long long candidates = r.get_int(0, kVersionColumnCount + 1);
  page.ranked_among = std::min<long long>(candidates, kSearchRankedMatches);
  page.truncated = candidates > kSearchRankedMatches;
  const bool none = r.is_null(0, kVersionColumnCount);  // k alone: no match on this page
  int n = none ? 0 : std::min(r.rows(), q.limit);
  std::string last_rank;
  for (int i = 0; i < n; ++i) {
    auto v = version_from_row(r, i);
    last_rank = std::string(r.get(i, kVersionColumnCount));
    v.rank = std::stod(last_rank);
    page.items.push_back(std::move(v));
  }
  if (!none && r.rows() > q.limit) page.next_cursor = make_cursor(json::array({last_rank, page.items.back().version_id}));
  return page;
}

}  // namespace m365vault::storage
