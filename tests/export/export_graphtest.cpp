// Export end to end: the emulator's tenant backed up (real emulator over HTTPS,
// real PostgreSQL, real repository), then a real m365vaultd serving the API:
// POST /api/v1/exports, wait until ready, download the zip and read it with
// tools that know nothing of ours. Every response is held to openapi.yaml.
#include <catch2/catch.hpp>
#include <csignal>

#include <fstream>
#include <set>
#include <thread>

#include "backup/backup_support.hpp"
#include "export/export_support.hpp"
#include "m365vault/storage/crypto.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/openapi_check.hpp"

using namespace m365vault;
using namespace m365vault::test;
using namespace std::chrono_literals;

namespace {

json export_tenant() {
  return {{"users", 2},          {"mail_folders_per_user", 3}, {"messages_per_user", 40}, {"contacts_per_user", 8},
          {"events_per_user", 10}, {"drive_files_per_user", 16}, {"drive_bytes_per_user", 160 << 20},
          {"max_attachment_bytes", 200000}};
}

// Peak resident set of a process (VmHWM), in bytes.
long long peak_rss(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  return -1;
}

// Writes a downloaded zip to `path`, requires `unzip -t` to pass and the manifest
// to list exactly the zip's entries with matching hashes and no fault, and returns
// what the checker saw (tests/export/check_export.py).
json checked_zip(const std::filesystem::path& path, const std::string& body) {
  std::ofstream(path, std::ios::binary) << body;
  std::string log;
  const int rc = unzip_test(path, log);
  INFO(log);
  REQUIRE(rc == 0);
  auto seen = check_export("zip", path);
  REQUIRE(seen["testzip"].is_null());
  auto& m = seen["manifest"];
  CHECK(m["mismatched"].empty());
  CHECK(m["unlisted"].empty());
  CHECK(m["faults"].empty());
  return seen;
}

// A backup of the Teams category (channels and chats) that must succeed.
void back_up_teams(BackupStack& s) {
  backup::BackupParams params;
  params.categories = {storage::Category::teams};
  auto r = s.run(params);
  INFO(r.error.value_or(""));
  REQUIRE(r.state == scheduler::RunState::succeeded);
}

struct ExportDaemon {
  BackupStack& s;
  OpenApiCheck spec = OpenApiCheck::from_env();
  std::vector<std::string> env;
  unsigned short port = 0;
  std::unique_ptr<Daemon> d;
  std::string admin;

  explicit ExportDaemon(BackupStack& stack, const std::filesystem::path& log) : s(stack), env(stack.daemon_env("export")) {
    for (auto& e : env)
      if (e.rfind("M365VAULT_LISTEN=", 0) == 0) port = static_cast<unsigned short>(std::stoi(e.substr(e.rfind(':') + 1)));
    d = std::make_unique<Daemon>(DaemonRun{{"serve"}, env, log});
    auto ready = wait_for_status(port, "/readyz", 200, 60s);
    INFO(d->output());
    REQUIRE(ready.status == 200);
    admin = token("restorer", "alice");
  }
  std::string token(const std::string& role, const std::string& name) {
    auto r = run_daemon_command({"token", "create", "--role", role, "--name", name}, env);
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    auto last = r.output.substr(r.output.rfind("m365v_"));
    return last.substr(0, last.find('\n'));
  }
  ~ExportDaemon() {
    d->process().signal(SIGTERM);
    d->process().wait(30s);
  }
  HttpResult call(const std::string& method, const std::string& target, const std::optional<json>& body = std::nullopt,
                  const std::string& as = {}) {
    HttpRequest r;
    r.method = method;
    r.port = port;
    r.target = target;
    r.timeout = 300s;
    r.headers.push_back({"Authorization", "Bearer " + (as.empty() ? admin : as)});
    if (body) {
      r.headers.push_back({"Content-Type", "application/json"});
      r.body = body->dump();
    }
    auto res = http_request(r);
    for (auto& p : spec.check_response(method, target, res.status, res.header("content-type"), res.body))
      FAIL_CHECK("openapi: " << method << " " << target << ": " << p);
    return res;
  }
  // Creates an export and waits until it is ready; returns it.
  json export_ready(const json& selection, bool mbox = false) {
    auto created = call("POST", "/api/v1/exports", json{{"selection", selection}, {"format", {{"mbox", mbox}}}});
    INFO(created.body);
    REQUIRE(created.status == 202);
    auto id = json::parse(created.body)["id"].get<std::string>();
    auto deadline = std::chrono::steady_clock::now() + 120s;
    for (;;) {
      auto e = json::parse(call("GET", "/api/v1/exports/" + id).body);
      if (e["state"] == "ready") return e;
      INFO(e.dump());
      REQUIRE((e["state"] == "queued" || e["state"] == "running"));
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(200ms);
    }
  }
};

}  // namespace

TEST_CASE("export: a mailbox and a drive through the API download, read back by unzip, Python and the manifests", "[graph]") {
  BackupStack s(export_tenant());
  backup::BackupParams params;
  params.categories = {storage::Category::mail, storage::Category::contacts, storage::Category::calendar,
                       storage::Category::onedrive};
  auto r = s.run(params);
  INFO(r.error.value_or(""));
  REQUIRE(r.state == scheduler::RunState::succeeded);
  TempDir dir("m365vault-export");
  ExportDaemon api(s, dir / "daemon.log");

  auto owner = s.query("SELECT id, graph_id, upn FROM owners WHERE kind = 'user' AND upn IS NOT NULL ORDER BY upn LIMIT 1");
  REQUIRE(owner.size() == 1);
  const std::string owner_id = owner[0][0], owner_graph = owner[0][1], upn = owner[0][2];

  json selection = {{"tenant", s.catalog_tenant_id()}, {"owners", {upn}}, {"categories", {"mail", "contacts", "calendar", "onedrive"}}};
  auto e = api.export_ready(selection);
  CHECK(e["items"].get<long long>() > 0);

  // A small export first, so the peak below is the big download's own.
  auto small = api.export_ready({{"tenant", s.catalog_tenant_id()}, {"owners", {upn}}, {"categories", {"contacts"}}});
  REQUIRE(api.call("GET", "/api/v1/exports/" + small["id"].get<std::string>() + "/download").status == 200);
  const auto before = peak_rss(api.d->process().pid());
  auto dl = api.call("GET", "/api/v1/exports/" + e["id"].get<std::string>() + "/download");
  REQUIRE(dl.status == 200);
  CHECK(dl.header("content-type") == "application/zip");
  CHECK(dl.header("content-length").empty());  // streamed: chunked, the size unknown up front
  const auto after = peak_rss(api.d->process().pid());
  auto seen = checked_zip(dir / "export.zip", dl.body);
  auto& m = seen["manifest"];
  // The OneNote notebook has no content of its own: listed as skipped, with the reason.
  REQUIRE(m["skipped"].size() == 1);
  CHECK(m["skipped"][0]["kind"] == "package");
  CHECK(m["items"].size() + m["skipped"].size() == e["items"].get<std::size_t>());

  // Mail: every .eml is the stored MIME byte for byte (the stored hash is the
  // emulator's), parses without defects, and every message of the mailbox is there.
  std::set<std::string> eml_hashes, want_mail;
  for (auto& [k, sha] : s.manifest("mail"))
    if (k.first == owner_graph) want_mail.insert(sha);
  std::map<std::string, std::string> stored;  // version id -> sha256 hex
  for (auto& row : s.query("SELECT v.id, encode(v.content_sha256, 'hex') FROM item_versions v JOIN items i ON i.id = v.item_id"
                           " WHERE i.owner_id = $1::uuid AND v.to_at IS NULL",
                           {owner_id}))
    stored[row[0]] = row[1];
  int emls = 0, vcards = 0, events = 0;
  for (auto& [path, entry] : seen["entries"].items()) {
    if (path.size() > 4 && path.substr(path.size() - 4) == ".eml") {
      ++emls;
      CHECK(entry["parsed"]["defects"].empty());
      eml_hashes.insert(entry["sha256"].get<std::string>());
    }
    if (path.size() > 4 && path.substr(path.size() - 4) == ".vcf") vcards += static_cast<int>(entry["parsed"]["cards"].size());
    if (path.size() > 4 && path.substr(path.size() - 4) == ".ics") events += static_cast<int>(entry["parsed"]["events"].size());
    const bool under_owner = path.rfind(upn + "/", 0) == 0 || path == "manifest.json";
    CHECK(under_owner);
  }
  CHECK(emls == static_cast<int>(want_mail.size()));
  CHECK(eml_hashes == want_mail);
  for (auto& [version, path] : m["items"].items()) {
    auto& entry = seen["entries"][path.get<std::string>()];
    if (path.get<std::string>().ends_with(".eml")) CHECK(entry["sha256"] == stored[version]);
  }
  CHECK(vcards == 8);
  CHECK(events > 0);

  // Files: the drive's files, each hashing as the emulator's manifest says.
  auto files = s.emulator().admin("GET", "/_emulator/tenants/" + s.tenant().tenant + "/manifest?category=files");
  std::multiset<std::string> want_files, got_files;
  for (auto& it : files["items"])
    if (it["owner"] == owner_graph) want_files.insert(it["sha256"].get<std::string>());
  for (auto& [path, entry] : seen["entries"].items())
    if (path.find("/OneDrive/") != std::string::npos) got_files.insert(entry["sha256"].get<std::string>());
  REQUIRE_FALSE(want_files.empty());
  CHECK(got_files == want_files);

  // Streamed: the daemon's peak RSS grew by far less than the zip it sent (an
  // item up to 16 MiB is held whole, plus the repository's reads).
  const auto exported = m["summary"]["bytes"].get<long long>();
  INFO("peak RSS before " << before << " after " << after << ", zip " << dl.body.size() << ", exported " << exported);
  CHECK(exported > (50ll << 20));
  CHECK(after - before < exported / 2);
  CHECK(after - before < (32ll << 20));

  // mbox: one file per mail folder; messages back byte for byte.
  auto e2 = api.export_ready({{"tenant", s.catalog_tenant_id()}, {"owners", {upn}}, {"categories", {"mail"}}}, true);
  auto dl2 = api.call("GET", "/api/v1/exports/" + e2["id"].get<std::string>() + "/download");
  REQUIRE(dl2.status == 200);
  std::ofstream(dir / "mbox.zip", std::ios::binary) << dl2.body;
  auto seen2 = check_export("zip", dir / "mbox.zip");
  std::set<std::string> mbox_hashes;
  int mboxes = 0;
  for (auto& [path, entry] : seen2["entries"].items())
    if (path.ends_with(".mbox")) {
      ++mboxes;
      for (auto& msg : entry["parsed"]["messages"]) mbox_hashes.insert(msg["sha256"].get<std::string>());
    }
  CHECK(mboxes >= 1);
  CHECK(mbox_hashes == want_mail);

  // The list, and what the API refuses.
  auto list = json::parse(api.call("GET", "/api/v1/exports?limit=1").body);
  CHECK(list["items"].size() == 1);
  REQUIRE(list["next_cursor"].is_string());
  auto page2 = json::parse(api.call("GET", "/api/v1/exports?limit=1&cursor=" + list["next_cursor"].get<std::string>()).body);
  CHECK(page2["items"].size() == 1);
  CHECK(page2["items"][0]["id"] != list["items"][0]["id"]);
  CHECK(api.call("POST", "/api/v1/exports", json{{"selection", {{"tenant", s.catalog_tenant_id()}}}}).status == 400);
  CHECK(api.call("POST", "/api/v1/exports", json{{"selection", {{"tenant", s.catalog_tenant_id()}, {"owners", {"nobody@nowhere"}}}}}).status == 404);
  CHECK(api.call("POST", "/api/v1/exports", json{{"selection", selection}, {"format", {{"zip64", true}}}}).status == 400);
  CHECK(api.call("GET", "/api/v1/exports/00000000-0000-4000-8000-000000000000/download").status == 404);
  // The CLI writes the same zip to a file (and never leaves a half one by that name).
  auto out = dir / "cli.zip";
  auto cli = run_daemon_command({"export", "--tenant", s.catalog_tenant_id(), "--owner", upn, "--category", "mail",
                                 "--output", out.string()},
                                api.env);
  INFO(cli.output);
  REQUIRE(cli.exit_code == 0);
  std::string log;
  REQUIRE(unzip_test(out, log) == 0);
  auto seen3 = check_export("zip", out);
  std::set<std::string> cli_hashes;
  for (auto& [path, entry] : seen3["entries"].items())
    if (path.ends_with(".eml")) cli_hashes.insert(entry["sha256"].get<std::string>());
  CHECK(cli_hashes == want_mail);
  CHECK_FALSE(std::filesystem::exists(dir / "cli.zip.partial"));
  auto bad = run_daemon_command({"export", "--tenant", s.catalog_tenant_id(), "--owner", "nobody@nowhere", "--output",
                                 (dir / "bad.zip").string()},
                                api.env);
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.output, Catch::Contains("nobody@nowhere"));
  CHECK_FALSE(std::filesystem::exists(dir / "bad.zip"));

  // Every download was audited.
  auto audited = s.query("SELECT count(*) FROM audit_log WHERE action LIKE 'GET /api/v1/exports/%/download'");
  CHECK(audited[0][0] == "4");
}

TEST_CASE("export: a team's channels as threaded pages and JSON, images beside them, a hostile body neutralised, "
          "the export's job is not a job to edit", "[graph]") {
  // 4 users make 2 groups, the first with a team: 2 channels of 12 posts, with replies and inline images.
  BackupStack s({{"users", 4}, {"messages_per_user", 1}, {"mail_folders_per_user", 1}, {"contacts_per_user", 1},
                 {"events_per_user", 1}, {"drive_files_per_user", 1}, {"sites", 1}, {"files_per_site", 1},
                 {"teams", 1}, {"channels_per_team", 2}, {"messages_per_channel", 12}});
  auto& emu = s.emulator();
  emu.admin("PUT", "/_emulator/faults",
            {{"teams_rps", {{"channel_message", 0}, {"team_channel", 0}, {"channels_list", 0}, {"other", 0},
                            {"per_team_or_channel", 0}}}});
  const std::string tid = s.tenant().tenant;
  auto posts = emu.admin("GET", "/_emulator/tenants/" + tid + "/manifest?category=teams");
  REQUIRE_FALSE(posts["items"].empty());
  json first;
  for (auto& it : posts["items"])
    if (it["reply_to"].is_null()) {
      first = it;
      break;
    }
  REQUIRE(first.is_object());
  const std::string team = first["owner"];
  // A post as someone hostile would write it: what runs, what fetches, what hides.
  const std::string hostile =
      "<p>hostile post</p><script>document.title='pwned'</script><img src=x onerror=\"alert('img')\">"
      "<a href=\"javascript:alert('link')\">click</a><iframe src=\"https://evil.example/\"></iframe>"
      "<p onmouseover=\"alert('hover')\" style=\"background:url(https://evil.example/t.png)\">hover text</p>"
      "<svg><script>alert('svg')</script></svg><b>unclosed";
  auto act = emu.admin("POST", "/_emulator/tenants/" + tid + "/activity",
                       {{"teams_body", {{"owner", team}, {"channel", first["channel_id"]}, {"id", first["id"]}, {"html", hostile}}}});
  INFO(act.dump());
  REQUIRE(act["updated"].size() == 1);
  back_up_teams(s);

  TempDir dir("m365vault-export-teams");
  ExportDaemon api(s, dir / "daemon.log");
  // The team by its catalog id: its group shares its graph id.
  auto owner = s.query("SELECT id FROM owners WHERE kind = 'team' AND graph_id = $1", {team});
  REQUIRE(owner.size() == 1);
  auto e = api.export_ready({{"tenant", s.catalog_tenant_id()}, {"owners", {owner[0][0]}}, {"categories", {"teams"}}});
  auto dl = api.call("GET", "/api/v1/exports/" + e["id"].get<std::string>() + "/download");
  REQUIRE(dl.status == 200);
  auto seen = checked_zip(dir / "teams.zip", dl.body);

  // Every message of the team's manifest is on a page, a reply under its post, and
  // in that channel's JSON file, nested the same way.
  std::map<std::string, json> want;  // message id -> manifest entry
  const auto after_edit = emu.admin("GET", "/_emulator/tenants/" + tid + "/manifest?category=teams");  // named: the loop reads into it
  for (auto& it : after_edit["items"])
    if (it["owner"] == team) want[it["id"].get<std::string>()] = it;
  std::map<std::string, json> on_page;  // message id -> page message
  std::set<std::string> in_json;
  std::map<std::string, std::string> stored_sha;  // version id -> stored sha256 hex
  for (auto& row : s.query("SELECT v.id, encode(v.content_sha256, 'hex') FROM item_versions v JOIN items i ON i.id = v.item_id"
                           " WHERE i.kind = 'message' AND i.category = 'teams'"))
    stored_sha[row[0]] = row[1];
  int pages = 0, images = 0;
  std::string hostile_page;
  for (auto& [path, entry] : seen["entries"].items()) {
    INFO(path);
    if (path.ends_with("/messages.html")) {
      ++pages;
      auto& page = entry["parsed"];
      CHECK(page["hazards"].empty());
      CHECK(page["unresolved_images"].empty());
      images += static_cast<int>(page["images"].size());
      for (auto& msg : page["messages"]) {
        CHECK_FALSE(on_page.count(msg["id"].get<std::string>()));
        on_page[msg["id"].get<std::string>()] = msg;
      }
      if (page["text"].get<std::string>().find("hostile post") != std::string::npos) hostile_page = page["text"].get<std::string>();
      auto json_path = path.substr(0, path.size() - 4) + "json";
      REQUIRE(seen["entries"].contains(json_path));
      for (auto& t : seen["entries"][json_path]["parsed"]["threads"]) {
        CHECK_FALSE(t["post_missing"].get<bool>());
        in_json.insert(t["id"].get<std::string>());
        CHECK(t["sha256"] == stored_sha[t["version_id"].get<std::string>()]);  // the stored bytes, unchanged
        for (auto& reply : t["replies"]) {
          in_json.insert(reply["id"].get<std::string>());
          CHECK(reply["sha256"] == stored_sha[reply["version_id"].get<std::string>()]);
          auto w = want.find(reply["id"].get<std::string>());
          REQUIRE(w != want.end());
          CHECK(w->second["reply_to"] == t["id"]);
        }
      }
    }
    CHECK_FALSE(path.ends_with(".eml"));
  }
  CHECK(pages == 2);
  CHECK(images > 0);
  REQUIRE(on_page.size() == want.size());
  for (auto& [id, it] : want) {
    INFO(id);
    REQUIRE(on_page.count(id));
    CHECK(on_page[id]["kind"] == (it["reply_to"].is_null() ? "post" : "reply"));
    CHECK(on_page[id]["post"] == it["reply_to"]);
    CHECK(in_json.count(id));
  }
  // The hostile body: its text is there, nothing of what would run or fetch.
  REQUIRE_FALSE(hostile_page.empty());
  CHECK_THAT(hostile_page, Catch::Contains("hover text") && Catch::Contains("click") && Catch::Contains("[image]"));
  CHECK_THAT(hostile_page, !Catch::Contains("pwned") && !Catch::Contains("alert"));

  // The export's one-off job: not listed among the jobs, not edited, deleted or run
  // there (409 naming where it is managed), its run listed with its kind.
  const std::string root = api.token("admin", "root");
  auto run = json::parse(api.call("GET", "/api/v1/runs/" + e["run_id"].get<std::string>()).body);
  const std::string job_id = run["job_id"];
  CHECK(run["kind"] == "export");
  auto jobs = json::parse(api.call("GET", "/api/v1/jobs", std::nullopt, root).body);
  for (auto& j : jobs["items"]) CHECK(j["id"] != job_id);
  for (auto& [method, target, body] : std::vector<std::tuple<std::string, std::string, std::optional<json>>>{
           {"PATCH", "/api/v1/jobs/" + job_id, json{{"enabled", false}}},
           {"DELETE", "/api/v1/jobs/" + job_id, std::nullopt},
           {"POST", "/api/v1/jobs/" + job_id + "/run", std::nullopt}}) {
    auto res = api.call(method, target, body, root);
    INFO(method << " " << target << ": " << res.body);
    CHECK(res.status == 409);
    CHECK_THAT(res.body, Catch::Contains("/api/v1/exports"));
  }
  auto runs = json::parse(api.call("GET", "/api/v1/runs?job=" + job_id, std::nullopt, root).body);
  REQUIRE(runs["items"].size() == 1);
  CHECK(runs["items"][0]["kind"] == "export");
  auto listed = run_daemon_command({"job", "list"}, api.env);
  CHECK(listed.exit_code == 0);
  CHECK(listed.output.find(job_id) == std::string::npos);
  auto rm = run_daemon_command({"job", "rm", job_id}, api.env);
  CHECK(rm.exit_code == 1);
  CHECK_THAT(rm.output, Catch::Contains("managed through /api/v1/exports"));
  // Still there, still downloadable.
  CHECK(api.call("GET", "/api/v1/exports/" + e["id"].get<std::string>() + "/download").status == 200);
}

TEST_CASE("export: chats as threaded pages and JSON like channels, each message as stored, images beside them",
          "[graph]") {
  // 3 chats (one-on-one, group, meeting) of 14 messages, about one in five with an inline image.
  BackupStack s({{"users", 4}, {"messages_per_user", 1}, {"mail_folders_per_user", 1}, {"contacts_per_user", 1},
                 {"events_per_user", 1}, {"drive_files_per_user", 1}, {"sites", 0}, {"teams", 0},
                 {"chats", 3}, {"messages_per_chat", 14}});
  auto& emu = s.emulator();
  emu.admin("PUT", "/_emulator/faults",
            {{"teams_rps", {{"chat_message", 0}, {"other", 0}, {"per_team_or_channel", 0}}}});
  const std::string tid = s.tenant().tenant;
  back_up_teams(s);

  TempDir dir("m365vault-export-chats");
  ExportDaemon api(s, dir / "daemon.log");
  json owners = json::array();
  for (auto& row : s.query("SELECT id FROM owners WHERE kind = 'chat' ORDER BY graph_id")) owners.push_back(row[0]);
  REQUIRE(owners.size() == 3);
  auto e = api.export_ready({{"tenant", s.catalog_tenant_id()}, {"owners", owners}, {"categories", {"teams"}}});
  auto dl = api.call("GET", "/api/v1/exports/" + e["id"].get<std::string>() + "/download");
  REQUIRE(dl.status == 200);
  auto seen = checked_zip(dir / "chats.zip", dl.body);

  // What is stored: each open chat message's version id and SHA-256 by its graph id
  // ("{chat}/{message}"), and each chat's own item.
  std::map<std::string, std::pair<std::string, std::string>> stored;  // message graph id -> (version id, sha256)
  for (auto& row : s.query("SELECT i.graph_id, v.id, encode(v.content_sha256, 'hex') FROM item_versions v"
                           " JOIN items i ON i.id = v.item_id JOIN owners o ON o.id = i.owner_id"
                           " WHERE v.to_at IS NULL AND o.kind = 'chat' AND i.kind = 'message'"))
    stored[row[0]] = {row[1], row[2]};
  const auto chats = s.count("SELECT count(*) FROM items i JOIN owners o ON o.id = i.owner_id"
                             " WHERE o.kind = 'chat' AND i.kind = 'chat'");
  CHECK(chats == 3);

  // The emulator's chats: every message (system events included) on its chat's page,
  // as a post (chats have no replies), and in that page's JSON byte for byte as stored.
  std::map<std::string, std::string> want;  // message id -> chat id
  const auto manifest = emu.admin("GET", "/_emulator/tenants/" + tid + "/manifest?category=chats");  // named: the loop reads into it
  for (auto& it : manifest["items"]) want[it["id"].get<std::string>()] = it["chat_id"].get<std::string>();
  REQUIRE(want.size() == stored.size());
  std::map<std::string, std::string> page_of;  // message id -> page path
  std::set<std::string> chat_jsons, folders;
  int pages = 0, images = 0;
  for (auto& [path, entry] : seen["entries"].items()) {
    INFO(path);
    CHECK_FALSE(path.ends_with(".eml"));
    if (path.ends_with(".json") && !path.ends_with("/messages.json") && path != "manifest.json") chat_jsons.insert(path);
    if (!path.ends_with("/messages.html")) continue;
    ++pages;
    const std::string folder = path.substr(0, path.size() - std::string("/messages.html").size());
    folders.insert(folder);
    CHECK(folder.find("/Teams/") != std::string::npos);
    auto& page = entry["parsed"];
    CHECK(page["hazards"].empty());
    CHECK(page["unresolved_images"].empty());
    images += static_cast<int>(page["images"].size());
    for (auto& msg : page["messages"]) {
      const std::string id = msg["id"];
      CHECK_FALSE(page_of.count(id));
      page_of[id] = path;
      CHECK(msg["kind"] == "post");
      CHECK(msg["post"].is_null());
    }
    const std::string json_path = folder + "/messages.json";
    REQUIRE(seen["entries"].contains(json_path));
    std::set<std::string> in_json;
    for (auto& t : seen["entries"][json_path]["parsed"]["threads"]) {
      CHECK_FALSE(t["post_missing"].get<bool>());
      CHECK(t["replies"].empty());
      const std::string id = t["id"];
      in_json.insert(id);
      auto w = want.find(id);
      REQUIRE(w != want.end());
      auto st = stored.find(w->second + "/" + id);
      REQUIRE(st != stored.end());
      CHECK(t["version_id"] == st->second.first);
      CHECK(t["sha256"] == st->second.second);  // the stored bytes, unchanged
    }
    std::set<std::string> on_this_page;
    for (auto& msg : page["messages"]) on_this_page.insert(msg["id"].get<std::string>());
    CHECK(in_json == on_this_page);
  }
  CHECK(pages == 3);
  CHECK(images > 0);
  REQUIRE(page_of.size() == want.size());
  std::map<std::string, std::string> page_of_chat;  // chat id -> its page: one page per chat
  for (auto& [id, chat] : want) {
    INFO(id);
    REQUIRE(page_of.count(id));
    auto [it, fresh] = page_of_chat.emplace(chat, page_of[id]);
    CHECK(it->second == page_of[id]);
  }
  CHECK(page_of_chat.size() == 3);
  // Each chat's own JSON (type, members) beside its page.
  CHECK(chat_jsons.size() == 3);
  for (auto& p : chat_jsons) CHECK(folders.count(p.substr(0, p.rfind('/'))));
}
