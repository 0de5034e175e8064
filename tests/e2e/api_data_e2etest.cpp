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
#include "api_data_support.hpp"

using namespace m365vault;
using namespace m365vault::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// Every item of an owner's `category` at `at`, by walking the container tree
// through browse pages of `limit`: item id -> item.
std::map<std::string, json> browse_all(DataDaemon& a, const std::string& token, const std::string& owner,
                                       const std::string& at, int limit, const std::string& category = "mail") {
  std::map<std::string, json> items;
  std::vector<std::optional<std::string>> unvisited{std::nullopt};
  std::set<std::string> seen_containers;
  while (!unvisited.empty()) {
    auto container = unvisited.back();
    unvisited.pop_back();
    std::string base = "/api/v1/browse?owner=" + owner + "&category=" + category + (container ? "&container=" + *container : "") +
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
  auto created = a.register_tenant(emu, tenant);
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
  auto [job_id, run] = a.backup(tenant_id, "mail");
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
    // The top of the mailbox names its well-known folders, which the folder delta does not carry.
    auto top = a.get_json("/api/v1/browse?owner=" + owner + "&category=mail", restorer);
    std::map<std::string, std::string> name_of_well_known;
    for (auto& c : top["containers"])
      if (c["well_known"].is_string()) name_of_well_known[c["well_known"].get<std::string>()] = c["display_name"];
    CHECK(name_of_well_known["inbox"] == "Inbox");
    CHECK(name_of_well_known["sentitems"] == "Sent Items");
    CHECK(name_of_well_known["deleteditems"] == "Deleted Items");
    if (before_deletion.empty()) before_deletion = top["at"].get<std::string>();
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
  // A message has its folder's path (the source gives messages none).
  REQUIRE(item["path"].is_string());
  CHECK_FALSE(item["path"].get<std::string>().empty());
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
  auto first = a.get_json("/api/v1/search?q=" + url_encode(word) + "&limit=500", restorer);
  auto everything = first["items"];
  // Far under the ranking cap: every match ranked, none left out, and the page says so.
  if (first["next_cursor"].is_null())
    CHECK(first["ranked_among"] == everything.size());
  else
    CHECK(first["ranked_among"].get<std::size_t>() > everything.size());
  CHECK(first["truncated"] == false);
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

TEST_CASE("api data: a OneDrive file backed up through the API downloads whole and by Range, every step audited",
          "[e2e]") {
  EmulatorProcess emu;
  auto tenant = make_tenant(emu, 23, 1, 2,
                            {{"contacts_per_user", 0}, {"events_per_user", 0}, {"mail_folders_per_user", 1},
                             {"drive_files_per_user", 8}, {"drive_bytes_per_user", 1 << 20}});
  DataDaemon a;
  const auto tenant_id = a.add_tenant(emu, tenant);
  auto [job_id, run] = a.backup(tenant_id, "onedrive");
  INFO(run.dump());
  REQUIRE(run["state"] == "succeeded");

  auto restorer = a.token("restorer", "alice");
  auto owners = a.get_json("/api/v1/tenants/" + tenant_id + "/owners?kind=user", a.admin)["items"];
  REQUIRE(owners.size() == 1);
  auto files = browse_all(a, restorer, owners[0]["id"].get<std::string>(), "", 100, "onedrive");

  // The emulator's truth: SHA-256 of every live file's bytes, by drive item id.
  auto manifest = emu.admin("GET", "/_emulator/tenants/" + tenant.tenant + "/manifest?category=files");
  std::map<std::string, std::string> sha_by_id;
  for (auto& it : manifest["items"]) sha_by_id[it["id"].get<std::string>()] = it["sha256"].get<std::string>();
  REQUIRE(sha_by_id.size() >= 4);

  // The biggest file: whole, then pieces by Range, each equal to the same bytes.
  std::string file_id;
  json file;
  for (auto& [id, it] : files)
    if (it["kind"] == "file" && it["content"]["size"].is_number() &&
        (file_id.empty() || it["content"]["size"].get<long long>() > file["content"]["size"].get<long long>())) {
      file_id = id;
      file = it;
    }
  INFO("file " << file.dump().substr(0, 400));
  REQUIRE_FALSE(file_id.empty());
  REQUIRE(sha_by_id.count(file["graph_id"].get<std::string>()));
  const auto want = sha_by_id[file["graph_id"].get<std::string>()];
  auto whole = a.call("GET", "/api/v1/items/" + file_id + "/content", restorer);
  REQUIRE(whole.status == 200);
  CHECK(sha_hex(whole.body) == want);
  const auto total = whole.body.size();
  REQUIRE(total > 4096);
  CHECK(whole.header("etag") == "\"" + want + "\"");
  CHECK_THAT(whole.header("content-disposition"), Catch::Contains("filename*=UTF-8''"));
  const auto mid = total / 3;
  auto piece = a.call("GET", "/api/v1/items/" + file_id + "/content", restorer, std::nullopt,
                      {{"Range", "bytes=" + std::to_string(mid) + "-" + std::to_string(mid + 4095)}});
  CHECK(piece.status == 206);
  CHECK(piece.body == whole.body.substr(mid, 4096));
  CHECK(piece.header("content-range") ==
        "bytes " + std::to_string(mid) + "-" + std::to_string(mid + 4095) + "/" + std::to_string(total));
  CHECK(piece.header("content-type") == whole.header("content-type"));
  // A resumed download: the rest from where it stopped, if the file is still the same.
  auto rest = a.call("GET", "/api/v1/items/" + file_id + "/content", restorer, std::nullopt,
                     {{"Range", "bytes=" + std::to_string(mid) + "-"}, {"If-Range", whole.header("etag")}});
  CHECK(rest.status == 206);
  CHECK(whole.body.substr(0, mid) + rest.body == whole.body);

  // The file is found by a word of its name.
  std::string word;
  {
    std::string cur;
    for (char ch : file["name"].get<std::string>() + " ") {
      if (std::isalpha(static_cast<unsigned char>(ch))) {
        cur += ch;
      } else {
        if (cur.size() > word.size()) word = cur;
        cur.clear();
      }
    }
  }
  REQUIRE(word.size() >= 3);
  auto hits = a.get_json("/api/v1/search?q=" + url_encode(word) + "&category=onedrive&limit=500", restorer)["items"];
  bool found = false;
  for (auto& h : hits) found = found || h["id"] == file_id;
  CHECK(found);

  // Each step is in the audit log: who, what, the outcome, and the range asked for.
  auto audit = a.walk("/api/v1/audit", a.admin, 100);
  std::set<std::string> actions;
  std::map<std::string, json> by_request;
  for (auto& e : audit) {
    actions.insert(e["action"].get<std::string>() + " " + std::to_string(e["outcome"].get<int>()));
    if (e["request_id"].is_string()) by_request[e["request_id"].get<std::string>()] = e;
  }
  CHECK(actions.count("POST /api/v1/tenants 201"));
  CHECK(actions.count("POST /api/v1/jobs 201"));
  CHECK(actions.count("POST /api/v1/jobs/" + job_id + "/run 202"));
  CHECK(actions.count("POST /api/v1/tokens 201"));
  CHECK(actions.count("GET /api/v1/items/" + file_id + "/content 200"));
  CHECK(actions.count("GET /api/v1/items/" + file_id + "/content 206"));
  CHECK(actions.count("GET /api/v1/search 200"));
  int ranged = 0;
  for (auto& rid : a.audited_request_ids) {
    INFO("request " << rid);
    REQUIRE(by_request.count(rid));
    CHECK(by_request[rid]["actor"] == "alice");
    if (by_request[rid]["detail"].contains("range")) ++ranged;
  }
  CHECK(ranged == 2);
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
