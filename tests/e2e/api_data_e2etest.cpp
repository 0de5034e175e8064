// The read API on data a real backup stored: the emulator's tenant registered and
// backed up through the API by the daemon's own worker, then owners, snapshots,
// browse, items, versions, content, search and point-in-time reads over plain HTTP
// with tokens, compared with the emulator's ground truth. Every JSON body the
// daemon answers is held to openapi.yaml.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <map>
#include <set>
#include <thread>

#include "emulator/emulator_support.hpp"
#include "m365vault/storage/crypto.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/openapi_check.hpp"
#include "support/pg.hpp"
#include "support/temp_dir.hpp"

using namespace m365vault;
using namespace m365vault::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

std::string sha_hex(const std::string& s) { return storage::crypto::to_hex(storage::crypto::sha256(s)); }

std::string url_encode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += kHex[ch >> 4];
      out += kHex[ch & 15];
    }
  }
  return out;
}

// m365vaultd serve on a scratch database with a filesystem repository, set up the
// way an administrator does: a config file, a passphrase file, `repo init`, then serve.
struct DataDaemon {
  TempDir dir{"api-data"};
  ScratchDatabase db;
  unsigned short port = free_port();
  std::string config = (dir / "m365vault.toml").string();
  std::unique_ptr<Daemon> d;
  std::string admin;
  OpenApiCheck spec = OpenApiCheck::from_env();
  int request_no = 0;
  std::vector<std::string> audited_request_ids;  // searches and downloads this test made

  DataDaemon() {
    write_file(dir / "passphrase", "correct horse battery staple\n");
    write_file(dir / "m365vault.toml", "[server]\nlisten = \"127.0.0.1:" + std::to_string(port) +
                                           "\"\nauth_failures_per_minute = 100000\n"
                                           "[database]\nurl = \"" + db.conninfo() + "\"\n"
                                           "[storage]\ndata_dir = \"" + (dir / "data").string() + "\"\n"
                                           "repository = \"file://" + (dir / "repo").string() + "\"\n"
                                           "passphrase_file = \"" + (dir / "passphrase").string() + "\"\n");
    auto init = run_daemon_command({"--config", config, "repo", "init"});
    INFO(init.output);
    REQUIRE(init.exit_code == 0);
    d = std::make_unique<Daemon>(DaemonRun{{"--config", config, "serve"}, {}, dir / "daemon.log"});
    auto ready = wait_for_status(port, "/readyz", 200, 60s);
    INFO(d->output());
    REQUIRE(ready.status == 200);
    auto r = run_daemon_command({"--config", config, "token", "create", "--role", "admin", "--name", "root"});
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    auto last = r.output.substr(r.output.rfind("m365v_"));
    admin = last.substr(0, last.find('\n'));
  }
  ~DataDaemon() {
    d->process().signal(SIGTERM);
    d->process().wait(30s);
  }

  // One request; every response is checked against openapi.yaml.
  HttpResult call(const std::string& method, const std::string& target, const std::string& token,
                  const std::optional<json>& body = std::nullopt,
                  std::vector<std::pair<std::string, std::string>> headers = {}) {
    HttpRequest r;
    r.method = method;
    r.port = port;
    r.target = target;
    r.timeout = 30s;
    r.headers = std::move(headers);
    if (!token.empty()) r.headers.push_back({"Authorization", "Bearer " + token});
    const auto request_id = "api-data-" + std::to_string(++request_no);
    r.headers.push_back({"X-Request-Id", request_id});
    if (body) {
      r.headers.push_back({"Content-Type", "application/json"});
      r.body = body->dump();
    }
    auto res = http_request(r);
    auto problems = spec.check_response(method, target, res.status, res.header("content-type"), res.body);
    const bool json_body = res.header("content-type").find("json") != std::string::npos;
    INFO(method << " " << target << " -> " << res.status << " " << (json_body ? res.body.substr(0, 400) : std::string()));
    for (auto& p : problems) FAIL_CHECK("openapi: " << p);
    CHECK(res.header("x-request-id") == request_id);
    const auto path = target.substr(0, target.find('?'));
    if (path == "/api/v1/search" || (path.size() > 8 && path.substr(path.size() - 8) == "/content"))
      audited_request_ids.push_back(request_id);
    return res;
  }
  json get_json(const std::string& target, const std::string& token, int expect = 200) {
    auto r = call("GET", target, token);
    INFO("GET " << target << " -> " << r.status << " " << r.body.substr(0, 400));
    REQUIRE(r.status == expect);
    return json::parse(r.body);
  }
  std::string token(const std::string& role, const std::string& name, const std::optional<std::string>& tenant = {}) {
    json b = {{"name", name}, {"role", role}};
    if (tenant) b["tenant_id"] = *tenant;
    auto r = call("POST", "/api/v1/tokens", admin, b);
    REQUIRE(r.status == 201);
    return json::parse(r.body)["token"];
  }
  // Queues a run of the job and waits for the daemon's worker to end it.
  json run_job(const std::string& job_id) {
    auto q = call("POST", "/api/v1/jobs/" + job_id + "/run", admin);
    REQUIRE(q.status == 202);
    auto run_id = json::parse(q.body)["id"].get<std::string>();
    auto deadline = std::chrono::steady_clock::now() + 180s;
    json run;
    for (;;) {
      run = get_json("/api/v1/runs/" + run_id, admin);
      auto st = run["state"].get<std::string>();
      if (st != "queued" && st != "running") break;
      INFO(d->output().substr(d->output().size() > 4000 ? d->output().size() - 4000 : 0));
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(300ms);
    }
    return run;
  }
  // Follows next_cursor to the end; every page at most `limit` long.
  std::vector<json> walk(const std::string& target, const std::string& token, int limit, const std::string& key = "items") {
    std::vector<json> out;
    std::optional<std::string> cursor;
    for (int guard = 0; guard < 1000; ++guard) {
      auto sep = target.find('?') == std::string::npos ? "?" : "&";
      auto page = get_json(target + sep + "limit=" + std::to_string(limit) + (cursor ? "&cursor=" + url_encode(*cursor) : ""),
                           token);
      CHECK(page[key].size() <= static_cast<std::size_t>(limit));
      for (auto& it : page[key]) out.push_back(it);
      if (page["next_cursor"].is_null()) return out;
      cursor = page["next_cursor"].get<std::string>();
    }
    FAIL("pagination never ended: " << target);
    return out;
  }
};

// Every item of an owner's mail at `at`, by walking the container tree through
// browse pages of `limit`: item id -> item.
std::map<std::string, json> browse_all(DataDaemon& a, const std::string& token, const std::string& owner,
                                       const std::string& at, int limit) {
  std::map<std::string, json> items;
  std::vector<std::optional<std::string>> unvisited{std::nullopt};
  std::set<std::string> seen_containers;
  while (!unvisited.empty()) {
    auto container = unvisited.back();
    unvisited.pop_back();
    std::string base = "/api/v1/browse?owner=" + owner + "&category=mail" + (container ? "&container=" + *container : "") +
                       (at.empty() ? "" : "&at=" + url_encode(at));
    std::optional<std::string> cursor;
    std::set<std::string> page_ids;
    for (int guard = 0;; ++guard) {
      REQUIRE(guard < 1000);
      auto page = a.get_json(base + "&limit=" + std::to_string(limit) + (cursor ? "&cursor=" + url_encode(*cursor) : ""), token);
      CHECK(page["containers"].size() + page["items"].size() <= static_cast<std::size_t>(limit));
      for (auto& c : page["containers"]) {
        auto id = c["id"].get<std::string>();
        INFO("container " << id << " twice");
        CHECK(seen_containers.insert(id).second);  // no duplicates across pages
        unvisited.push_back(id);
      }
      for (auto& it : page["items"]) {
        auto id = it["id"].get<std::string>();
        INFO("item " << id << " twice");
        CHECK(items.emplace(id, it).second);
        CHECK(it["container_id"] == (container ? json(*container) : json(nullptr)));
      }
      if (page["next_cursor"].is_null()) break;
      cursor = page["next_cursor"].get<std::string>();
    }
  }
  return items;
}

}  // namespace

TEST_CASE("api data: a backup made through the API reads back through it, byte for byte and at any instant", "[e2e]") {
  EmulatorProcess emu;
  auto tenant = make_tenant(emu, 91, 2, 14, {{"contacts_per_user", 0}, {"events_per_user", 0}, {"max_attachment_bytes", 60000}});
  DataDaemon a;

  // --- register the tenant: the secret goes in and never comes out.
  json body = {{"name", "contoso"},         {"tenant_id", tenant.tenant}, {"client_id", tenant.client},
               {"client_secret", tenant.secret}, {"graph_url", emu.base()},   {"login_url", emu.base()},
               {"ca_file", emu.ca()}};
  auto created = a.call("POST", "/api/v1/tenants", a.admin, body);
  REQUIRE(created.status == 201);
  auto tenant_id = json::parse(created.body)["id"].get<std::string>();
  CHECK(created.header("location") == "/api/v1/tenants/" + tenant_id);
  auto got_tenant = a.call("GET", "/api/v1/tenants/" + tenant_id, a.admin);
  auto list_tenants = a.call("GET", "/api/v1/tenants", a.admin);
  for (auto* r : {&created, &got_tenant, &list_tenants}) {
    CHECK(r->body.find(tenant.secret) == std::string::npos);
    CHECK(r->body.find("client_secret") == std::string::npos);
  }
  CHECK(json::parse(got_tenant.body)["auth"] == "secret");

  // --- a backup, run by the daemon's worker.
  auto job = a.call("POST", "/api/v1/jobs", a.admin,
                    json{{"name", "mail"}, {"tenant_id", tenant_id}, {"params", {{"categories", {"mail"}}}}});
  REQUIRE(job.status == 201);
  auto job_id = json::parse(job.body)["id"].get<std::string>();
  auto run = a.run_job(job_id);
  INFO(run.dump());
  REQUIRE(run["state"] == "succeeded");
  a.get_json("/api/v1/runs/" + run["id"].get<std::string>() + "/events", a.admin);

  auto restorer = a.token("restorer", "alice");

  // --- owners: the emulator's users, paginated.
  auto owners = a.walk("/api/v1/tenants/" + tenant_id + "/owners?kind=user", a.admin, 1);
  REQUIRE(owners.size() == 2);
  std::set<std::string> owner_ids;
  for (auto& o : owners) owner_ids.insert(o["id"].get<std::string>());
  CHECK(owner_ids.size() == 2);

  // --- snapshots: one complete mail snapshot per owner.
  auto snaps = a.walk("/api/v1/snapshots?tenant=" + tenant_id, restorer, 1);
  CHECK(snaps.size() == 2);
  for (auto& s : snaps) {
    CHECK(s["state"] == "complete");
    CHECK(s["category"] == "mail");
    CHECK(owner_ids.count(s["owner_id"].get<std::string>()));
  }

  // --- browse every owner's mail, page by page, against the emulator's manifest.
  auto manifest = emu.admin("GET", "/_emulator/tenants/" + tenant.tenant + "/manifest?category=mail");
  std::map<std::string, std::string> sha_by_immutable, immutable_by_rest;
  for (auto& it : manifest["items"]) {
    auto imm = it.value("immutable_id", json()).is_string() ? it["immutable_id"].get<std::string>() : it["id"].get<std::string>();
    sha_by_immutable[imm] = it["sha256"].get<std::string>();
    immutable_by_rest[it["id"].get<std::string>()] = imm;
  }
  REQUIRE(sha_by_immutable.size() >= 20);
  std::string before_deletion;
  std::map<std::string, json> all_items;  // item id -> item
  for (auto& o : owners) {
    auto owner = o["id"].get<std::string>();
    auto big = browse_all(a, restorer, owner, "", 1000);
    auto small = browse_all(a, restorer, owner, "", 3);
    CHECK(big.size() == small.size());  // no gaps
    for (auto& [id, it] : small) {
      CHECK(big.count(id));
      all_items[id] = it;
    }
    if (before_deletion.empty())
      before_deletion = a.get_json("/api/v1/browse?owner=" + owner + "&category=mail", restorer)["at"].get<std::string>();
  }
  std::set<std::string> browsed_graph_ids;
  for (auto& [id, it] : all_items) browsed_graph_ids.insert(it["graph_id"].get<std::string>());
  std::set<std::string> manifest_ids;
  for (auto& [imm, _] : sha_by_immutable) manifest_ids.insert(imm);
  CHECK(browsed_graph_ids == manifest_ids);

  // --- one message: metadata, versions, content.
  REQUIRE_FALSE(all_items.empty());
  const auto& [item_id, listed] = *all_items.begin();
  auto item = a.get_json("/api/v1/items/" + item_id, restorer);
  CHECK(item["graph_id"] == listed["graph_id"]);
  CHECK(item["kind"] == "message");
  auto versions = a.get_json("/api/v1/items/" + item_id + "/versions", restorer);
  REQUIRE(versions["items"].size() == 1);
  CHECK(versions["items"][0]["version_id"] == item["version_id"]);

  auto content = a.call("GET", "/api/v1/items/" + item_id + "/content", restorer);
  REQUIRE(content.status == 200);
  const auto want_sha = sha_by_immutable[item["graph_id"].get<std::string>()];
  CHECK(sha_hex(content.body) == want_sha);
  CHECK(item["content"]["sha256"] == want_sha);
  CHECK(content.body.size() == item["content"]["size"].get<std::size_t>());
  CHECK(content.header("content-type") == "message/rfc822");
  CHECK_THAT(content.header("content-disposition"), Catch::StartsWith("attachment; filename=\"") && Catch::Contains(".eml\""));
  CHECK(content.header("accept-ranges") == "bytes");
  const auto etag = content.header("etag");
  CHECK(etag == "\"" + want_sha + "\"");
  const auto total = content.body.size();
  REQUIRE(total > 200);

  auto part = a.call("GET", "/api/v1/items/" + item_id + "/content", restorer, std::nullopt, {{"Range", "bytes=10-99"}});
  CHECK(part.status == 206);
  CHECK(part.body == content.body.substr(10, 90));
  CHECK(part.header("content-range") == "bytes 10-99/" + std::to_string(total));
  auto tail = a.call("GET", "/api/v1/items/" + item_id + "/content", restorer, std::nullopt, {{"Range", "bytes=-25"}});
  CHECK(tail.status == 206);
  CHECK(tail.body == content.body.substr(total - 25));
  CHECK(tail.header("content-range") == "bytes " + std::to_string(total - 25) + "-" + std::to_string(total - 1) + "/" +
                                            std::to_string(total));
  auto from = a.call("GET", "/api/v1/items/" + item_id + "/content", restorer, std::nullopt,
                     {{"Range", "bytes=" + std::to_string(total - 5) + "-"}});
  CHECK(from.status == 206);
  CHECK(from.body == content.body.substr(total - 5));
  auto beyond = a.call("GET", "/api/v1/items/" + item_id + "/content", restorer, std::nullopt,
                       {{"Range", "bytes=" + std::to_string(total) + "-"}});
  CHECK(beyond.status == 416);
  auto cached = a.call("GET", "/api/v1/items/" + item_id + "/content", restorer, std::nullopt, {{"If-None-Match", etag}});
  CHECK(cached.status == 304);
  CHECK(cached.body.empty());
  CHECK(cached.header("etag") == etag);
  // What caches and browsers send: several cached tags, or a weak one.
  auto cached_list = a.call("GET", "/api/v1/items/" + item_id + "/content", restorer, std::nullopt,
                            {{"If-None-Match", "\"0000\", W/" + etag}});
  CHECK(cached_list.status == 304);
  auto changed = a.call("GET", "/api/v1/items/" + item_id + "/content", restorer, std::nullopt,
                        {{"If-None-Match", "\"0000\""}});
  CHECK(changed.status == 200);
  CHECK(changed.body == content.body);
  auto stale = a.call("GET", "/api/v1/items/" + item_id + "/content", restorer, std::nullopt,
                      {{"Range", "bytes=0-9"}, {"If-Range", "\"0000\""}});
  CHECK(stale.status == 200);  // the range is for another content: the whole thing
  CHECK(stale.body == content.body);
  auto by_version = a.call("GET", "/api/v1/items/" + item_id + "/content?version=" + item["version_id"].get<std::string>(),
                           restorer);
  CHECK(by_version.status == 200);
  CHECK(by_version.body == content.body);

  // Every message's content equals the emulator's MIME.
  for (auto& [id, it] : all_items) {
    auto r = a.call("GET", "/api/v1/items/" + id + "/content", restorer);
    INFO("item " << id);
    CHECK(r.status == 200);
    CHECK(sha_hex(r.body) == sha_by_immutable[it["graph_id"].get<std::string>()]);
  }

  // --- search by a word of a subject: found, ranked, paginated.
  REQUIRE(item["subject"].is_string());
  std::string word;
  {
    std::string subject = item["subject"].get<std::string>(), cur;
    for (char ch : subject + " ") {
      if (std::isalpha(static_cast<unsigned char>(ch))) {
        cur += ch;
      } else {
        if (cur.size() > word.size()) word = cur;
        cur.clear();
      }
    }
  }
  INFO("subject '" << item["subject"] << "', searching '" << word << "'");
  REQUIRE(word.size() >= 3);
  auto everything = a.get_json("/api/v1/search?q=" + url_encode(word) + "&limit=500", restorer)["items"];
  bool found = false;
  double last_rank = 1e300;
  for (auto& hit : everything) {
    found = found || hit["id"] == item_id;
    REQUIRE(hit.contains("rank"));
    CHECK(hit["rank"].get<double>() <= last_rank);
    last_rank = hit["rank"].get<double>();
  }
  CHECK(found);
  auto paged = a.walk("/api/v1/search?q=" + url_encode(word), restorer, 2);
  std::vector<std::string> paged_ids, all_ids;
  for (auto& h : paged) paged_ids.push_back(h["id"].get<std::string>());
  for (auto& h : everything) all_ids.push_back(h["id"].get<std::string>());
  CHECK(paged_ids == all_ids);  // same order, no duplicates, no gaps
  CHECK(std::set<std::string>(paged_ids.begin(), paged_ids.end()).size() == paged_ids.size());
  auto scoped = a.get_json("/api/v1/search?q=" + url_encode(word) + "&tenant=" + tenant_id + "&category=mail", restorer);
  CHECK(scoped["items"].size() == std::min<std::size_t>(everything.size(), 50));

  // --- activity deletes messages; a second backup closes them. `at` before shows them.
  std::this_thread::sleep_for(1100ms);
  auto act = emu.admin("POST", "/_emulator/tenants/" + tenant.tenant + "/activity",
                       {{"seed", 5}, {"deletes", 3}, {"categories", {"mail"}}});
  auto run2 = a.run_job(job_id);
  INFO(run2.dump());
  REQUIRE(run2["state"] == "succeeded");
  std::map<std::string, std::string> item_by_graph;
  for (auto& [id, it] : all_items) item_by_graph[it["graph_id"].get<std::string>()] = id;
  int deleted_checked = 0;
  for (auto& del : act["deleted"]) {
    auto imm = immutable_by_rest.find(del["id"].get<std::string>());
    if (imm == immutable_by_rest.end() || !item_by_graph.count(imm->second)) continue;
    auto id = item_by_graph[imm->second];
    INFO("deleted item " << id);
    CHECK(a.call("GET", "/api/v1/items/" + id, restorer).status == 404);
    auto then = a.get_json("/api/v1/items/" + id + "?at=" + url_encode(before_deletion), restorer);
    CHECK(then["valid_to"].is_string());
    auto old = a.call("GET", "/api/v1/items/" + id + "/content?at=" + url_encode(before_deletion), restorer);
    CHECK(old.status == 200);
    CHECK(sha_hex(old.body) == sha_by_immutable[imm->second]);
    auto owner = then["owner_id"].get<std::string>();
    auto at_then = browse_all(a, restorer, owner, before_deletion, 1000);
    auto now = browse_all(a, restorer, owner, "", 1000);
    CHECK(at_then.count(id) == 1);
    CHECK(now.count(id) == 0);
    ++deleted_checked;
  }
  CHECK(deleted_checked >= 2);
  // A snapshot id works as `at` too (the first run's, before the deletion).
  auto first_snap = snaps.back()["id"].get<std::string>();
  a.get_json("/api/v1/browse?owner=" + snaps.back()["owner_id"].get<std::string>() + "&category=mail&at=" + first_snap,
             restorer);

  // --- another tenant's token sees nothing of this one.
  auto other = a.call("POST", "/api/v1/tenants", a.admin,
                      json{{"name", "fabrikam"}, {"tenant_id", "fabrikam.example"}, {"client_id", "app"},
                           {"client_secret", "s3cret"}});
  REQUIRE(other.status == 201);
  auto other_id = json::parse(other.body)["id"].get<std::string>();
  auto stranger = a.token("restorer", "bob", other_id);
  auto first_owner = owners[0]["id"].get<std::string>();
  CHECK(a.call("GET", "/api/v1/tenants/" + tenant_id, stranger).status == 404);
  CHECK(a.call("GET", "/api/v1/tenants/" + tenant_id + "/owners", stranger).status == 404);
  CHECK(a.call("GET", "/api/v1/items/" + item_id, stranger).status == 404);
  CHECK(a.call("GET", "/api/v1/items/" + item_id + "/versions", stranger).status == 404);
  CHECK(a.call("GET", "/api/v1/items/" + item_id + "/content", stranger).status == 404);
  CHECK(a.call("GET", "/api/v1/browse?owner=" + first_owner + "&category=mail", stranger).status == 404);
  CHECK(a.get_json("/api/v1/search?q=" + url_encode(word), stranger)["items"].empty());
  CHECK(a.get_json("/api/v1/snapshots", stranger)["items"].empty());
  CHECK(a.get_json("/api/v1/jobs", stranger)["items"].empty());
  auto visible_tenants = a.get_json("/api/v1/tenants", stranger)["items"];
  REQUIRE(visible_tenants.size() == 1);
  CHECK(visible_tenants[0]["id"] == other_id);
  auto foreign = a.call("GET", "/api/v1/search?q=" + url_encode(word) + "&tenant=" + tenant_id, stranger);
  const bool nothing_foreign = foreign.status == 404 || (foreign.status == 200 && json::parse(foreign.body)["items"].empty());
  CHECK(nothing_foreign);

  // --- a restore through the API: the first owner's mail into 'Restored <timestamp>'
  // of the second, executed by the daemon's worker; roles, tenant scope, Teams.
  auto viewer = a.token("viewer", "vic");
  const json mail_of_first = {{"tenant", tenant_id}, {"owners", {first_owner}}, {"categories", {"mail"}}};
  CHECK(a.call("POST", "/api/v1/restores", viewer, json{{"selection", mail_of_first}}).status == 403);
  CHECK(a.call("POST", "/api/v1/restores", stranger, json{{"selection", mail_of_first}}).status == 404);
  auto teams = a.call("POST", "/api/v1/restores", restorer,
                      json{{"selection", {{"tenant", tenant_id}, {"categories", {"teams"}}}}});
  CHECK(teams.status == 400);
  CHECK(teams.body.find("export") != std::string::npos);
  CHECK(a.call("POST", "/api/v1/restores", restorer, json{{"selection", mail_of_first}, {"conflict", "merge"}}).status == 400);
  auto posted = a.call("POST", "/api/v1/restores", restorer,
                       json{{"selection", mail_of_first}, {"target", {{"owner", owners[1]["id"]}}}});
  REQUIRE(posted.status == 202);
  const auto restore_id = json::parse(posted.body)["id"].get<std::string>();
  CHECK(posted.header("location") == "/api/v1/restores/" + restore_id);
  json restored;
  for (auto until = std::chrono::steady_clock::now() + 180s; std::chrono::steady_clock::now() < until;) {
    restored = a.get_json("/api/v1/restores/" + restore_id, restorer);
    auto st = restored["state"].is_string() ? restored["state"].get<std::string>() : "";
    if (st != "queued" && st != "running") break;
    std::this_thread::sleep_for(500ms);
  }
  INFO(restored.dump());
  CHECK(restored["state"] == "succeeded");
  CHECK(restored["target_folder"].get<std::string>().rfind("Restored ", 0) == 0);
  const int restored_n = restored["outcomes"].value("restored", 0);
  CHECK(restored_n >= 10);
  auto outcomes = a.walk("/api/v1/restores/" + restore_id + "/items", restorer, 4);
  CHECK(static_cast<int>(outcomes.size()) == restored_n);
  CHECK(a.get_json("/api/v1/restores/" + restore_id + "/items?outcome=failed", restorer)["items"].empty());
  CHECK(a.get_json("/api/v1/restores", a.admin)["items"].size() == 1);
  CHECK(a.get_json("/api/v1/restores", stranger)["items"].empty());
  CHECK(a.call("GET", "/api/v1/restores/" + restore_id, stranger).status == 404);
  CHECK(a.call("POST", "/api/v1/restores/" + restore_id + "/cancel", restorer).status == 202);

  // --- every search and download is in the audit log, with who and the outcome.
  auto audit = a.walk("/api/v1/audit", a.admin, 100);
  std::map<std::string, json> by_request;
  for (auto& e : audit)
    if (e["request_id"].is_string()) by_request[e["request_id"].get<std::string>()] = e;
  for (auto& rid : a.audited_request_ids) {
    INFO("request " << rid);
    REQUIRE(by_request.count(rid));
    auto& e = by_request[rid];
    const bool by_test_token = e["actor"] == "alice" || e["actor"] == "bob";
    CHECK(by_test_token);
    CHECK(e["outcome"].is_number_integer());
  }
  CHECK(a.audited_request_ids.size() > all_items.size());
}

TEST_CASE("api data: the openapi checker refuses undocumented fields, missing ones and wrong types", "[e2e]") {
  auto spec = OpenApiCheck::from_env();
  json item = {{"id", "1"},          {"version_id", "2"},   {"owner_id", "413d8f14-3984-4597-8ee2-4d96ab307bc3"},
               {"category", "mail"}, {"kind", "message"},   {"graph_id", "AAk"},
               {"container_id", "3"}, {"valid_from", "2026-01-01T00:00:00.000000Z"}, {"valid_to", nullptr},
               {"name", "hi"},       {"recipients", json::array()}, {"change_key", "ck"}, {"flags", json::array()},
               {"meta", json::object()},
               {"content", {{"type", "message/rfc822"}, {"size", 5}, {"sha256", nullptr}, {"blobs", 1}}}};
  auto check = [&](const json& body) {
    return spec.check_response("GET", "/api/v1/items/1", 200, "application/json", body.dump());
  };
  CHECK(check(item).empty());
  auto extra = item;
  extra["secret"] = "x";
  CHECK_FALSE(check(extra).empty());
  auto missing = item;
  missing.erase("version_id");
  CHECK_FALSE(check(missing).empty());
  auto wrong = item;
  wrong["category"] = "email";
  CHECK_FALSE(check(wrong).empty());
  auto null_name = item;
  null_name["name"] = nullptr;
  CHECK_FALSE(check(null_name).empty());
  auto nested = item;
  nested["content"]["extra"] = 1;
  CHECK_FALSE(check(nested).empty());
  CHECK_FALSE(spec.check_response("GET", "/api/v1/items/1", 418, "application/json", "{}").empty());
  CHECK_FALSE(spec.check_response("GET", "/api/v1/nothing", 200, "application/json", "{}").empty());
  // allOf (a created token is a Token plus its secret): the union of both, closed.
  json tok = {{"id", "9d066acf-6816-4f2f-8edc-2c65b0ade292"}, {"name", "a"}, {"role", "viewer"}, {"prefix", "m365v_abcdef"},
              {"created_at", "2026-01-01T00:00:00Z"}, {"tenant_id", nullptr}, {"expires_at", nullptr},
              {"revoked_at", nullptr}, {"last_used_at", nullptr}, {"token", "m365v_x"}};
  CHECK(spec.check_response("POST", "/api/v1/tokens", 201, "application/json", tok.dump()).empty());
  tok.erase("token");
  CHECK_FALSE(spec.check_response("POST", "/api/v1/tokens", 201, "application/json", tok.dump()).empty());
}
