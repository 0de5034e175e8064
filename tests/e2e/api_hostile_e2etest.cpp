// Hostile input over every operation of openapi.yaml that takes input: path ids,
// query parameters, headers and JSON bodies get SQL metacharacters, path
// traversal, invalid UTF-8, NUL bytes, negative and enormous numbers, bad UUIDs
// and times, wrong types, wrong content types, deep nesting and oversized bodies.
// Every answer must be a 4xx problem+json (naming the field where one is at
// fault) that openapi.yaml documents, the daemon must stay up, and the stored
// state (every table but the append-only audit log) must be byte for byte the
// same afterwards. The operations come from openapi.yaml, so a new one cannot be
// left out: one whose ids this test cannot fill fails it.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "api_data_support.hpp"
#include "emulator/emulator_support.hpp"
#include "m365vault/storage/pg.hpp"
#include "support/env.hpp"

using namespace m365vault;
using namespace m365vault::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// Every table's rows as sorted JSON text, except what changes by design while
// nothing is stored: the audit log (refusals are recorded), the daemons' heartbeats,
// a token's last use and an export's download count (each operation's valid
// request, sent first, downloads it once).
std::map<std::string, std::string> dump_tables(const std::string& conninfo) {
  auto c = storage::PgConnection::connect(conninfo);
  auto tables = c.exec("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1");
  std::map<std::string, std::string> out;
  for (int i = 0; i < tables.rows(); ++i) {
    std::string t(tables.get(i, 0));
    if (t == "audit_log" || t == "instances") continue;
    // The name comes from pg_tables, quoted as an identifier by the server.
    auto rows = c.exec("SELECT coalesce(string_agg(x, E'\\n' ORDER BY x), '') FROM"
                       " (SELECT (to_jsonb(t) - 'last_used_at' - 'downloads')::text AS x FROM " +
                       std::string(c.exec("SELECT quote_ident($1)", {t}).get(0, 0)) + " t) s");
    out[t] = std::string(rows.get(0, 0));
  }
  return out;
}

const json& resolve(const json& spec, const json& node) {
  if (!node.is_object() || !node.contains("$ref")) return node;
  auto ref = node["$ref"].get<std::string>();
  REQUIRE(ref.rfind("#/", 0) == 0);
  return resolve(spec, spec.at(json::json_pointer(ref.substr(1))));
}

std::string upper(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

bool valid_utf8(const std::string& s) {
  try {
    (void)json(s).dump();
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

// Values no path id or query parameter of this API accepts (raw bytes; URL-encoded
// when sent). `q` alone is free text: there only the invalid ones must be refused.
const std::vector<std::string> kHostileValues = {
    "' OR '1'='1",
    "1; DROP TABLE items; --",
    "1' UNION SELECT secret_sealed FROM tenants --",
    "'); SELECT pg_sleep(10); --",
    "../../../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "%2e%2e%2f%2e%2e%2fetc",
    std::string("\xff\xfe", 2),
    std::string("\xc0\xaf", 2),
    std::string("a\0b", 3),
    "-1",
    "-9223372036854775809",
    "99999999999999999999999999",
    "1e308",
    "NaN",
    "0x10",
    "00000000-0000-0000-0000-00000000000g",
    "{00000000-0000-0000-0000-000000000000}",
    "2024-13-45T25:61:00Z",
    "0000-00-00T00:00:00Z",
    "99999999-01-01T00:00:00Z",
    "2024-01-01T00:00:00+99:99",
    std::string(5000, 'a'),
    "\t\r\n",
};

// Body fields that are free text (any string is a legitimate value), so only
// wrong types and lengths are refused there.
const std::set<std::string> kFreeText = {"name", "tenant_id@TenantInput", "client_id", "client_secret", "ca_file"};

struct Hostile {
  std::string label;
  std::string raw_body;  // the whole body, raw
};

std::string with_field(json base, const std::string& key, const std::string& raw_value) {
  base[key] = "@@HOSTILE@@";
  auto s = base.dump();
  auto pos = s.find("\"@@HOSTILE@@\"");
  return s.replace(pos, 13, raw_value);
}

// Invalid values for one body property, by its schema.
std::vector<Hostile> field_mutations(const json& base, const std::string& key, const json& prop, bool free_text) {
  std::vector<std::string> raws;
  std::set<std::string> types;
  if (prop.contains("type")) {
    if (prop["type"].is_string()) types.insert(prop["type"].get<std::string>());
    else for (auto& t : prop["type"]) types.insert(t.get<std::string>());
  }
  auto add_not = [&](const char* type, std::initializer_list<const char*> vals) {
    if (!types.count(type))
      for (auto* v : vals) raws.push_back(v);
  };
  add_not("string", {"12345"});
  add_not("boolean", {"true"});
  add_not("array", {"[\"x\", 1]"});
  add_not("object", {"{\"$ne\": 1}"});
  if (types.count("string")) {
    raws.push_back(std::string("\"bad \xff\xfe utf-8\""));
    raws.push_back("\"" + std::string(prop.value("maxLength", 100000) + 1, 'x') + "\"");
    if (!free_text) {
      for (auto* v : {"' OR '1'='1", "1; DROP TABLE tenants; --", "../../../../etc/passwd",
                      "00000000-0000-0000-0000-00000000000g", "2024-13-45T25:61:00Z", "-1"})
        raws.push_back(json(v).dump());
    }
    if (prop.contains("minLength") && prop["minLength"].get<int>() > 0) raws.push_back("\"\"");
  }
  if (types.count("integer")) {
    for (auto* v : {"\"1\"", "1.5", "1e308", "18446744073709551616", "-9223372036854775809", "-1", "0"})
      if (!(std::string(v) == "0" && prop.value("minimum", 0) <= 0)) raws.push_back(v);
    if (prop.contains("maximum")) raws.push_back(std::to_string(prop["maximum"].get<long long>() + 1));
  }
  if (types.count("boolean")) raws.push_back("\"true\"");
  if (types.count("boolean")) raws.push_back("1");
  std::vector<Hostile> out;
  for (auto& r : raws) out.push_back({"field '" + key + "' = " + r.substr(0, 60), with_field(base, key, r)});
  return out;
}

// Whole bodies no operation accepts, with the content type they are sent as.
struct BadBody {
  std::string label, content_type, body;
  std::set<int> statuses;
};
std::vector<BadBody> bad_bodies(const json& base) {
  std::vector<BadBody> v;
  auto ok = base.dump();
  v.push_back({"no content type", "", ok, {415}});
  v.push_back({"text/plain", "text/plain", ok, {415}});
  v.push_back({"a form", "application/x-www-form-urlencoded", "name=x&role=admin", {415}});
  v.push_back({"json-ish type", "application/jsonx", ok, {415}});
  v.push_back({"empty", "application/json", "", {400}});
  v.push_back({"truncated", "application/json", ok.substr(0, ok.size() / 2), {400}});
  v.push_back({"an array", "application/json", "[" + ok + "]", {400}});
  v.push_back({"null", "application/json", "null", {400}});
  v.push_back({"a number", "application/json", "1e999", {400}});
  v.push_back({"deep arrays", "application/json", std::string(100000, '['), {400}});
  std::string deep;
  for (int i = 0; i < 5000; ++i) deep += "{\"a\":";
  v.push_back({"deep objects", "application/json", deep + "1" + std::string(5000, '}'), {400}});
  v.push_back({"invalid UTF-8 in a key", "application/json", "{\"\xff\": 1}", {400}});
  v.push_back({"NUL in the text", "application/json", std::string("{\"a\0\": 1}", 9), {400}});
  auto unknown = base;
  unknown["$where"] = "1 == 1";
  v.push_back({"an unknown field", "application/json", unknown.dump(), {400}});
  v.push_back({"2 MiB", "application/json", "{\"name\": \"" + std::string(2 << 20, 'a') + "\"}", {413}});
  // Past the limit but within what the server drains before closing (8 MiB), so
  // a client that writes its whole body first still reads the 413.
  v.push_back({"6 MiB of blanks", "application/json", std::string(6 << 20, ' ') + ok, {413}});
  return v;
}

}  // namespace

TEST_CASE("api hostile: every operation refuses hostile input with a 4xx naming it, stays up and changes nothing",
          "[e2e]") {
  EmulatorProcess emu;
  auto tenant = make_tenant(emu, 77, 1, 12, {{"contacts_per_user", 0}, {"events_per_user", 0}});
  DataDaemon a;

  // --- real data behind every id: a tenant backed up by a job's run, a token.
  const auto tenant_id = a.add_tenant(emu, tenant);
  const auto [job_id, run] = a.backup(tenant_id, "mail");
  REQUIRE(run["state"] == "succeeded");
  const auto run_id = run["id"].get<std::string>();
  auto tok = a.call("POST", "/api/v1/tokens", a.admin, json{{"name", "grafana"}, {"role", "viewer"}});
  REQUIRE(tok.status == 201);
  const auto token_id = json::parse(tok.body)["id"].get<std::string>();
  // The one user (groups are owners too, discovered beside users).
  auto owners = a.get_json("/api/v1/tenants/" + tenant_id + "/owners?kind=user", a.admin)["items"];
  REQUIRE(owners.size() == 1);
  const auto owner_id = owners[0]["id"].get<std::string>();
  auto top = a.get_json("/api/v1/browse?owner=" + owner_id + "&category=mail", a.admin);
  std::string item_id;
  for (auto& c : top["containers"]) {
    auto page = a.get_json("/api/v1/browse?owner=" + owner_id + "&category=mail&container=" + c["id"].get<std::string>(),
                           a.admin);
    if (!page["items"].empty()) {
      item_id = page["items"][0]["id"].get<std::string>();
      break;
    }
  }
  REQUIRE_FALSE(item_id.empty());
  // A finished restore (a dry run: nothing written) and a ready export, so their
  // ids are real; both end before the tables are compared.
  auto created_and_ended = [&](const std::string& path, const json& body) {
    auto created = a.call("POST", path, a.admin, body);
    INFO(created.body);
    REQUIRE(created.status == 202);
    const auto id = json::parse(created.body)["id"].get<std::string>();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    for (;;) {
      auto state = a.get_json(path + "/" + id, a.admin)["state"].get<std::string>();
      if (state != "queued" && state != "running") return id;
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  };
  const json one_item = {{"tenant", tenant_id}, {"items", {item_id}}};
  const auto restore_id = created_and_ended("/api/v1/restores", json{{"selection", one_item}, {"dry_run", true}});
  const auto export_id = created_and_ended("/api/v1/exports", json{{"selection", one_item}});

  // Valid values: path ids by collection, required query parameters by name.
  const std::map<std::string, std::string> id_of = {{"/api/v1/tokens/", token_id}, {"/api/v1/jobs/", job_id},
                                                    {"/api/v1/runs/", run_id},     {"/api/v1/tenants/", tenant_id},
                                                    {"/api/v1/items/", item_id},   {"/api/v1/restores/", restore_id},
                                                    {"/api/v1/exports/", export_id}};
  const std::map<std::string, std::string> query_value = {
      {"owner", owner_id}, {"category", "mail"}, {"q", "hello"}, {"tenant", tenant_id}};

  auto spec = json::parse(read_text(require_service("M365VAULT_TEST_OPENAPI_JSON")));
  const auto before = dump_tables(a.db.conninfo());
  REQUIRE(before.count("item_versions"));
  REQUIRE(before.at("item_versions").size() > 100);

  int requests = 0, operations = 0;
  std::map<int, int> statuses;
  // Sends one hostile request and checks the answer.
  auto expect_refused = [&](const std::string& what, HttpRequest r, const std::set<int>& allowed,
                            const std::string& names) {
    r.headers.push_back({"Authorization", "Bearer " + a.admin});
    INFO(what << ": " << r.method << " " << r.target.substr(0, 200));
    HttpResult res;
    try {
      res = a.send(r);
    } catch (const std::exception& e) {
      FAIL_CHECK("no answer: " << e.what());
      return;
    }
    ++requests;
    ++statuses[res.status];
    INFO("-> " << res.status << " " << res.body.substr(0, 300));
    CHECK(allowed.count(res.status));
    if (res.status >= 400) {
      CHECK(res.header("content-type") == "application/problem+json");
      auto p = json::parse(res.body, nullptr, false);
      REQUIRE(p.is_object());
      CHECK(p["status"] == res.status);
      CHECK(p["code"].is_string());
      if (!names.empty() && res.status == 400) CHECK_THAT(p["detail"].get<std::string>(), Catch::Contains(names));
    }
  };

  for (auto& [path, item] : spec["paths"].items()) {
    if (path.rfind("/api/v1/", 0) != 0) continue;
    json path_params = item.value("parameters", json::array());
    for (auto& [method, op] : item.items()) {
      if (method == "parameters" || method == "summary" || method == "description") continue;
      const auto m = upper(method);
      INFO("operation " << m << " " << path);
      const bool changes = m != "GET";
      ++operations;
      // The operation's parameters, path-level ones first.
      std::vector<json> params;
      for (auto& p : path_params) params.push_back(resolve(spec, p));
      for (auto& p : op.value("parameters", json::array())) params.push_back(resolve(spec, p));

      // A valid target: real ids, required query parameters filled.
      std::string target = path;
      std::string path_prefix = path.substr(0, path.find('{'));
      if (path.find('{') != std::string::npos) {
        INFO("no real id for " << path << ": teach this test the new collection");
        REQUIRE(id_of.count(path_prefix));
        target.replace(target.find('{'), target.find('}') - target.find('{') + 1, id_of.at(path_prefix));
      }
      std::vector<std::pair<std::string, std::string>> required_query;
      for (auto& p : params)
        if (p["in"] == "query" && p.value("required", false)) {
          auto name = p["name"].get<std::string>();
          INFO("no valid value for the required parameter '" << name << "'");
          REQUIRE(query_value.count(name));
          required_query.push_back({name, query_value.at(name)});
        }
      auto build = [&](const std::string& base, const std::string& name, const std::optional<std::string>& value) {
        std::string t = base, sep = "?";
        for (auto& [k, v] : required_query) {
          if (k == name) continue;
          t += sep + k + "=" + url_encode(v);
          sep = "&";
        }
        if (value) t += sep + name + "=" + url_encode(*value);
        return t;
      };
      if (!changes) {  // the valid request works, so each refusal below is the hostile value's doing
        HttpRequest ok;
        ok.target = build(target, "", std::nullopt);
        ok.headers.push_back({"Authorization", "Bearer " + a.admin});
        INFO("valid request " << ok.target);
        auto res = a.send(ok);
        CHECK(res.status / 100 == 2);
      }
      // Operations with a body get a valid one (the documented example) beside a
      // hostile path id, so the id is what is wrong.
      json example = json::object();
      if (op.contains("requestBody"))
        example = resolve(spec, op["requestBody"])["content"]["application/json"].value("example", json::object());

      for (auto& p : params) {
        const auto name = p["name"].get<std::string>();
        const auto where = p["in"].get<std::string>();
        const json schema = resolve(spec, p.value("schema", json::object()));  // a copy: value() is a temporary
        for (auto& v : kHostileValues) {
          HttpRequest r;
          r.method = m;
          if (where == "path") {
            r.target = build(path_prefix + url_encode(v) + path.substr(path.find('}') + 1), "", std::nullopt);
            if (op.contains("requestBody")) {
              r.body = example.dump();
              r.headers.push_back({"Content-Type", "application/json"});
            }
            expect_refused("path " + name, r, {400, 404}, name);
          } else if (where == "query") {
            if (changes) continue;  // no changing operation takes query parameters
            r.target = build(target, name, v);
            const bool free_text = name == "q" && valid_utf8(v) && v.find('\0') == std::string::npos &&
                                   v.size() <= schema.value("maxLength", size_t{1000}) && v.find_first_not_of(" \t\r\n") != std::string::npos;
            if (free_text) expect_refused("query " + name, r, {200}, "");
            else expect_refused("query " + name, r, {400, 404}, "'" + name + "'");
          } else if (where == "header") {
            if (!valid_utf8(v) || v.find_first_of(std::string("\r\n\0", 3)) != std::string::npos) continue;  // not a header value
            r.target = build(target, "", std::nullopt);
            r.headers.push_back({name, v});
            // A header the server cannot use is ignored (RFC 9110), or a range is unsatisfiable.
            expect_refused("header " + name, r, {200, 206, 304, 400, 416}, "");
          }
        }
      }

      if (op.contains("requestBody")) {
        const auto& content = resolve(spec, op["requestBody"])["content"]["application/json"];
        const auto& schema = resolve(spec, content["schema"]);
        std::string schema_name;
        if (content["schema"].contains("$ref")) {
          auto ref = content["schema"]["$ref"].get<std::string>();
          schema_name = ref.substr(ref.rfind('/') + 1);
        }
        const json& base = example;
        for (auto& b : bad_bodies(base)) {
          HttpRequest r;
          r.method = m;
          r.target = target;
          r.body = b.body;
          if (!b.content_type.empty()) r.headers.push_back({"Content-Type", b.content_type});
          expect_refused("body: " + b.label, r, b.statuses, "");
        }
        REQUIRE(schema.contains("properties"));
        for (auto& [key, prop_ref] : schema["properties"].items()) {
          INFO("property " << key);
          const auto& prop = resolve(spec, prop_ref);
          const bool free_text = kFreeText.count(key) || kFreeText.count(key + "@" + schema_name);
          for (auto& h : field_mutations(base, key, prop, free_text)) {
            HttpRequest r;
            r.method = m;
            r.target = target;
            r.body = h.raw_body;
            r.headers.push_back({"Content-Type", "application/json"});
            const bool utf8 = valid_utf8(h.raw_body);
            expect_refused("body " + h.label, r, {400}, utf8 ? "'" + key + "'" : "");
          }
        }
      }
      // The daemon is still up after each operation's batch.
      INFO("after " << m << " " << path);
      REQUIRE(http_get(a.port, "/healthz").status == 200);
    }
  }
  INFO("statuses seen: " << json(statuses).dump());
  CHECK(operations >= 20);
  CHECK(requests > 1000);
  CHECK(statuses.count(500) == 0);

  // Nothing stored changed: every table, row by row.
  const auto after = dump_tables(a.db.conninfo());
  CHECK(after.size() == before.size());
  for (auto& [table, rows] : before) {
    INFO("table " << table);
    CHECK(after.count(table));
    if (after.count(table)) CHECK(after.at(table) == rows);
  }
  CHECK(http_get(a.port, "/readyz").status == 200);
}
