// OneDrive and SharePoint document libraries through the backup pipeline, against
// the real emulator over HTTPS, a real PostgreSQL and a real repository: the
// index must equal the emulator's files manifest (SHA-256 of the bytes), an
// incremental run must download only what changed, and a resync must neither
// duplicate nor lose anything.
#include <catch2/catch.hpp>

#include "backup_support.hpp"
#include "m365vault/storage/catalog.hpp"
#include "m365vault/storage/crypto.hpp"

using namespace m365vault;
using namespace m365vault::test;

namespace {

json drive_tenant() {
  return {{"users", 3},          {"messages_per_user", 2}, {"mail_folders_per_user", 1}, {"contacts_per_user", 1},
          {"events_per_user", 1}, {"drive_files_per_user", 14}, {"drive_bytes_per_user", 3 << 20},
          {"sites", 2},           {"files_per_site", 6},   {"unlicensed_users", 1}};
}

backup::BackupParams only(std::vector<storage::Category> cats) {
  backup::BackupParams p;
  p.categories = std::move(cats);
  return p;
}

std::string sha_hex(const std::string& s) { return storage::crypto::to_hex(storage::crypto::sha256(s)); }

bool is_site_id(const std::string& owner) { return owner.find(',') != std::string::npos; }

// The manifest's live files: (owner, id) -> sha256. OneDrive owners are users;
// library files are keyed by their drive, the owner the pipeline gives them.
std::map<std::pair<std::string, std::string>, std::string> files_manifest(BackupStack& s, bool sites) {
  auto m = s.emulator().admin("GET", "/_emulator/tenants/" + s.tenant().tenant + "/manifest?category=files");
  std::map<std::pair<std::string, std::string>, std::string> out;
  for (auto& it : m["items"]) {
    auto owner = it["owner"].get<std::string>();
    if (is_site_id(owner) != sites) continue;
    auto key = sites ? it["drive_id"].get<std::string>() : owner;
    out[{key, it["id"].get<std::string>()}] = it["sha256"].get<std::string>();
  }
  return out;
}

// Open file versions in the index: (owner graph id, item id) -> sha256 hex.
std::map<std::pair<std::string, std::string>, std::string> files_indexed(BackupStack& s, const std::string& category) {
  std::map<std::pair<std::string, std::string>, std::string> out;
  for (auto& row : s.query("SELECT o.graph_id, i.graph_id, encode(v.content_sha256, 'hex')"
                           " FROM item_versions v JOIN items i ON i.id = v.item_id JOIN owners o ON o.id = i.owner_id"
                           " WHERE v.to_at IS NULL AND v.category = $1 AND i.kind = 'file'",
                           {category}))
    out[{row[0], row[1]}] = row[2];
  return out;
}

// The index equals the manifest, and the bytes read back from the repository
// hash to the manifest's SHA-256 (checked for every file).
void require_files_match(BackupStack& s, const std::string& category) {
  auto want = files_manifest(s, category == "sharepoint");
  auto have = files_indexed(s, category);
  REQUIRE_FALSE(want.empty());
  std::vector<std::string> missing, extra, wrong;
  for (auto& [k, sha] : want) {
    auto it = have.find(k);
    if (it == have.end()) {
      missing.push_back(k.second);
    } else if (it->second != sha || sha_hex(s.content(k.first, k.second)) != sha) {
      wrong.push_back(k.second);
    }
  }
  for (auto& [k, _] : have)
    if (!want.count(k)) extra.push_back(k.second);
  INFO(category << ": " << want.size() << " files in the manifest, " << have.size() << " indexed");
  CHECK(missing.empty());
  CHECK(extra.empty());
  CHECK(wrong.empty());
}

}  // namespace

TEST_CASE("drives: a full OneDrive backup equals the files manifest, a user without a drive is skipped",
          "[graph][pg]") {
  BackupStack s(drive_tenant());
  auto r = s.run(only({storage::Category::onedrive}));
  INFO(r.error.value_or(""));
  REQUIRE(r.state == scheduler::RunState::succeeded);
  require_files_match(s, "onedrive");
  // The unlicensed user: skipped for this category with the reason, not a failure.
  CHECK(r.summary.categories_skipped == 1);
  CHECK(r.summary.owners_failed == 0);
  CHECK(s.count("SELECT count(*) FROM run_events WHERE message LIKE '%onedrive skipped: no OneDrive provisioned%'") ==
        1);
  // Folders are containers (a tree under each drive root), notebooks are items without content.
  CHECK(s.count("SELECT count(*) FROM container_versions cv JOIN containers k ON k.id = cv.container_id"
                 " WHERE k.category = 'onedrive' AND cv.well_known = 'root' AND cv.to_at IS NULL") == 2);
  CHECK(s.count("SELECT count(*) FROM container_versions cv JOIN containers k ON k.id = cv.container_id"
                 " WHERE k.category = 'onedrive' AND cv.parent_id IS NOT NULL AND cv.to_at IS NULL") >= 2);
  CHECK(s.count("SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id WHERE i.kind = 'package'"
                 " AND v.content_blobs = '{}' AND v.to_at IS NULL") == 2);
  CHECK(s.count("SELECT count(*) FROM snapshots WHERE category = 'onedrive' AND state = 'complete'") == 2);
  // The download URL (a short-lived credential) is not kept in the metadata.
  CHECK(s.count("SELECT count(*) FROM item_versions WHERE meta ? '@microsoft.graph.downloadUrl'") == 0);
}

TEST_CASE("drives: an incremental run after file activity downloads only the changed files", "[graph][pg]") {
  BackupStack s(drive_tenant());
  REQUIRE(s.run(only({storage::Category::onedrive})).state == scheduler::RunState::succeeded);
  auto& emu = s.emulator();
  auto act = emu.admin("POST", "/_emulator/tenants/" + s.tenant().tenant + "/activity",
                       {{"seed", 7},
                        {"categories", {"files"}},
                        {"creates", 6},
                        {"updates", 4},
                        {"deletes", 3},
                        {"moves", 3},
                        {"renames", 3}});
  INFO(act.dump());
  // Downloads owed: created or edited files of users' drives still alive.
  auto after = files_manifest(s, false);
  std::set<std::string> live;
  for (auto& [k, _] : after) live.insert(k.second);
  std::set<std::string> owed;
  for (auto kind : {"created", "updated"})
    for (auto& e : act[kind])
      if (e.contains("owner") && !is_site_id(e["owner"].get<std::string>()) && live.count(e["id"].get<std::string>()))
        owed.insert(e["id"].get<std::string>());
  auto before = s.query("SELECT now()")[0][0];
  emu.admin("DELETE", "/_emulator/stats", nullptr, 204);
  auto r = s.run(only({storage::Category::onedrive}));
  INFO(r.error.value_or(""));
  REQUIRE(r.state == scheduler::RunState::succeeded);
  auto stats = emu.admin("GET", "/_emulator/stats");
  INFO(stats.dump());
  CHECK(route_requests(stats, "/content") == static_cast<long long>(owed.size()));
  require_files_match(s, "onedrive");
  // Renamed and moved files got a new version that reuses the stored bytes.
  for (auto kind : {"moved", "renamed"})
    for (auto& e : act[kind]) {
      if (!e.contains("id") || is_site_id(e.value("owner", std::string(",")))) continue;
      auto id = e["id"].get<std::string>();
      if (!live.count(id)) continue;  // a folder, or deleted later
      CHECK(s.count("SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id WHERE i.graph_id = '" +
                         id + "'") == 2);
    }
  // Deleted files keep their history: closed, not gone.
  for (auto& e : act["deleted"]) {
    if (is_site_id(e.value("owner", std::string(",")))) continue;
    auto id = e["id"].get<std::string>();
    auto rows = s.query("SELECT count(*) FILTER (WHERE v.to_at IS NULL), count(*) FROM item_versions v"
                        " JOIN items i ON i.id = v.item_id WHERE i.graph_id = $1",
                        {id});
    CHECK(rows[0][0] == "0");
  }
  CHECK(s.count("SELECT count(*) FROM item_versions WHERE category = 'onedrive' AND to_at > '" + before + "'") > 0);
  // A third run with nothing changed downloads nothing.
  emu.admin("DELETE", "/_emulator/stats", nullptr, 204);
  REQUIRE(s.run(only({storage::Category::onedrive})).state == scheduler::RunState::succeeded);
  CHECK(route_requests(emu.admin("GET", "/_emulator/stats"), "/content") == 0);
}

TEST_CASE("drives: a resyncRequired round adds no duplicate and downloads only what differs", "[graph][pg]") {
  BackupStack s(drive_tenant());
  REQUIRE(s.run(only({storage::Category::onedrive})).state == scheduler::RunState::succeeded);
  auto versions = s.count("SELECT count(*) FROM item_versions WHERE category = 'onedrive'");
  auto& emu = s.emulator();
  auto act = emu.admin("POST", "/_emulator/tenants/" + s.tenant().tenant + "/activity",
                       {{"seed", 11}, {"categories", {"files"}}, {"updates", 2}, {"deletes", 2}});
  INFO(act.dump());
  std::set<std::string> owed;
  auto after = files_manifest(s, false);
  std::set<std::string> live;
  for (auto& [k, _] : after) live.insert(k.second);
  for (auto& e : act["updated"])
    if (!is_site_id(e.value("owner", std::string(","))) && live.count(e["id"].get<std::string>()))
      owed.insert(e["id"].get<std::string>());
  emu.admin("PUT", "/_emulator/faults", {{"drive_resync_rate", 1.0}});
  emu.admin("DELETE", "/_emulator/stats", nullptr, 204);
  auto r = s.run(only({storage::Category::onedrive}));
  auto stats = emu.admin("GET", "/_emulator/stats");
  emu.admin("PUT", "/_emulator/faults", json::object());
  INFO(r.error.value_or("") << " " << stats.dump());
  REQUIRE(r.state == scheduler::RunState::succeeded);
  CHECK(stats["status"].value("410", 0) >= 2);  // both drives resynchronised
  CHECK(route_requests(stats, "/content") == static_cast<long long>(owed.size()));
  require_files_match(s, "onedrive");
  // The round met every unchanged item as it was: only the edits added versions.
  CHECK(s.count("SELECT count(*) FROM item_versions WHERE category = 'onedrive'") ==
        versions + static_cast<long long>(owed.size()));
  CHECK(s.count("SELECT count(*) FROM (SELECT item_id FROM item_versions WHERE to_at IS NULL"
                 " GROUP BY item_id HAVING count(*) > 1) d") == 0);
  CHECK(s.count("SELECT count(*) FROM delta_cursors WHERE category = 'onedrive' AND round_id IS NOT NULL") == 0);
}

TEST_CASE("drives: downloads stay right when the server ignores Range and cuts bodies short", "[graph][pg]") {
  BackupStack s(drive_tenant());
  s.emulator().admin("PUT", "/_emulator/faults",
                     {{"download_ignore_range", true}, {"error_rate", {{"truncated", 0.15}, {"reset", 0.05}}}});
  auto r = s.run(only({storage::Category::onedrive}));
  s.emulator().admin("PUT", "/_emulator/faults", json::object());
  INFO(r.error.value_or("") << " retries " << r.summary.graph.retries);
  REQUIRE(r.state == scheduler::RunState::succeeded);
  require_files_match(s, "onedrive");
}

TEST_CASE("drives: a download cut at 50 % resumes with Range and reads every byte once", "[graph][pg]") {
  BackupStack s(drive_tenant());
  auto& emu = s.emulator();
  // Every download whose range spans the middle of its file is closed there.
  emu.admin("PUT", "/_emulator/faults", {{"download_cut_at", 0.5}});
  emu.admin("DELETE", "/_emulator/stats", nullptr, 204);
  auto r = s.run(only({storage::Category::onedrive}));
  auto stats = emu.admin("GET", "/_emulator/stats");
  emu.admin("PUT", "/_emulator/faults", json::object());
  INFO(r.error.value_or("") << " " << stats.dump());
  REQUIRE(r.state == scheduler::RunState::succeeded);
  require_files_match(s, "onedrive");
  // Files of 2 bytes or more are cut once each and resumed once each (206), never
  // restarted: the bytes read are exactly the files' sizes.
  auto m = emu.admin("GET", "/_emulator/tenants/" + s.tenant().tenant + "/manifest?category=files");
  long long cut = 0, bytes = 0, files = 0;
  for (auto& it : m["items"]) {
    if (is_site_id(it["owner"].get<std::string>())) continue;
    ++files;
    bytes += it["size"].get<long long>();
    if (it["size"].get<long long>() >= 2) ++cut;
  }
  REQUIRE(cut > 10);
  CHECK(stats["status"].value("206", 0) == cut);
  CHECK(route_requests(stats, "/content") == files + cut);
  CHECK(r.summary.bytes_read == bytes);
}

TEST_CASE("drives: a cut download whose resume is answered 200 (Range ignored) starts over cleanly", "[graph][pg]") {
  BackupStack s(drive_tenant());
  auto& emu = s.emulator();
  emu.admin("PUT", "/_emulator/faults", {{"download_cut_at", 0.5}, {"download_ignore_range", true}});
  emu.admin("DELETE", "/_emulator/stats", nullptr, 204);
  auto r = s.run(only({storage::Category::onedrive}));
  auto stats = emu.admin("GET", "/_emulator/stats");
  emu.admin("PUT", "/_emulator/faults", json::object());
  INFO(r.error.value_or("") << " " << stats.dump());
  REQUIRE(r.state == scheduler::RunState::succeeded);
  CHECK(stats["status"].value("206", 0) == 0);
  // Half of each file was read, dropped, and the whole read again: nothing spliced.
  require_files_match(s, "onedrive");
}

TEST_CASE("drives: bytes that do not match the item's hash are read again, then a fault, and the next run stores them",
          "[graph][pg]") {
  BackupStack s(drive_tenant());
  auto& emu = s.emulator();
  auto m = emu.admin("GET", "/_emulator/tenants/" + s.tenant().tenant + "/manifest?category=files");
  long long damaged = 0;  // every non-empty OneDrive file (an empty body has no byte to flip)
  for (auto& it : m["items"])
    if (!is_site_id(it["owner"].get<std::string>()) && it["size"].get<long long>() > 0) ++damaged;
  REQUIRE(damaged > 10);

  emu.admin("PUT", "/_emulator/faults", {{"download_corrupt", true}});
  emu.admin("DELETE", "/_emulator/stats", nullptr, 204);
  auto r = s.run(only({storage::Category::onedrive}));
  auto stats = emu.admin("GET", "/_emulator/stats");
  emu.admin("PUT", "/_emulator/faults", json::object());
  INFO(r.error.value_or("") << " " << stats.dump());
  // Told, not stored: the run is partial, each damaged file is an open fault that
  // names the hash, was downloaded three times, and has no version.
  CHECK(r.state == scheduler::RunState::partial);
  CHECK(r.summary.items_faulted == damaged);
  CHECK(route_requests(stats, "/content") >= 3 * damaged);
  CHECK(s.count("SELECT count(*) FROM item_faults WHERE category = 'onedrive' AND resolved_at IS NULL"
                " AND reason LIKE '%does not match its hash after 3 downloads (quickXorHash %'") == damaged);
  CHECK(s.count("SELECT count(*) FROM item_versions WHERE category = 'onedrive' AND content_size > 0") == 0);

  // The bytes are right again: the next run reads the faulted files by id and stores them.
  auto again = s.run(only({storage::Category::onedrive}));
  INFO(again.error.value_or(""));
  REQUIRE(again.state == scheduler::RunState::succeeded);
  require_files_match(s, "onedrive");
  CHECK(s.count("SELECT count(*) FROM item_faults WHERE resolved_at IS NULL") == 0);
}

// The bytes of an item as a snapshot saw it, read back through the catalog's
// point-in-time view and the repository; nullopt when the snapshot has no such item.
std::optional<std::string> content_at(BackupStack& s, const std::string& item_graph_id, const std::string& snapshot) {
  auto rows = s.query("SELECT id FROM items WHERE graph_id = $1", {item_graph_id});
  if (rows.empty()) return std::nullopt;
  auto c = storage::PgConnection::connect(s.conninfo(), {});
  auto v = storage::Catalog{}.get_item(c, rows[0][0], snapshot);
  if (!v) return std::nullopt;
  std::string out;
  for (auto& b : v->content_blobs) out += s.repo().read_blob(*storage::BlobId::from_hex(storage::crypto::to_hex(b)));
  return out;
}

TEST_CASE("drives: after a mass rewrite the next snapshot holds the rewritten files and the earlier ones the originals",
          "[graph][pg]") {
  BackupStack s(drive_tenant());
  auto& emu = s.emulator();
  REQUIRE(s.run(only({storage::Category::onedrive})).state == scheduler::RunState::succeeded);
  const std::string user = files_manifest(s, false).begin()->first.first;
  auto snap = [&] {
    return s.query("SELECT s.id FROM snapshots s JOIN owners o ON o.id = s.owner_id WHERE o.graph_id = $1"
                   " AND s.category = 'onedrive' AND s.state = 'complete' ORDER BY s.started_at DESC LIMIT 1",
                   {user})[0][0];
  };
  const std::string before = snap();
  std::map<std::string, std::string> originals;  // item id -> sha256 before the rewrite
  for (auto& [k, sha] : files_manifest(s, false))
    if (k.first == user) originals[k.second] = sha;
  REQUIRE(originals.size() >= 5);

  auto act = emu.admin("POST", "/_emulator/tenants/" + s.tenant().tenant + "/activity",
                       {{"seed", 13}, {"mass_rewrite", {{"owner", user}, {"fraction", 0.5}, {"suffix", ".locked"}}}});
  INFO(act.dump());
  REQUIRE(s.run(only({storage::Category::onedrive})).state == scheduler::RunState::succeeded);
  require_files_match(s, "onedrive");
  const std::string after = snap();
  REQUIRE(after != before);
  int rewritten = 0;
  for (auto& [k, sha] : files_manifest(s, false)) {
    if (k.first != user) continue;
    // The new snapshot: the current (rewritten) bytes.
    auto now = content_at(s, k.second, after);
    REQUIRE(now);
    CHECK(sha_hex(*now) == sha);
    if (originals.count(k.second) && originals[k.second] != sha) ++rewritten;
  }
  CHECK(rewritten >= static_cast<int>(originals.size()) / 3);
  // The earlier snapshot still restores every original, byte for byte.
  for (auto& [id, sha] : originals) {
    auto old = content_at(s, id, before);
    INFO(id);
    REQUIRE(old);
    CHECK(sha_hex(*old) == sha);
  }
  check_index_consistent(s.reader());
}

// Scripted changes to one user's OneDrive (the emulator's drive_ops); the result of each op.
json drive_ops(BackupStack& s, const std::string& user, json ops) {
  auto out = s.emulator().admin("POST", "/_emulator/tenants/" + s.tenant().tenant + "/activity",
                                {{"drive_ops", {{"owner", user}, {"ops", std::move(ops)}}}});
  return out["drive_ops"];
}

std::string first_user(BackupStack& s) { return files_manifest(s, false).begin()->first.first; }

long long content_requests(BackupStack& s) { return route_requests(s.emulator().admin("GET", "/_emulator/stats"), "/content"); }

TEST_CASE("drives: renaming or moving a folder of 1,000 files downloads nothing", "[graph][pg]") {
  BackupStack s(drive_tenant());
  const auto user = first_user(s);
  auto made = drive_ops(s, user, {{{"op", "folder"}, {"parent", "root"}, {"name", "Archive"}},
                                  {{"op", "folder"}, {"parent", "root"}, {"name", "Elsewhere"}}});
  const auto folder = made[0]["id"].get<std::string>(), dest = made[1]["id"].get<std::string>();
  drive_ops(s, user, {{{"op", "files"}, {"parent", folder}, {"count", 1000}, {"size", 3000}, {"prefix", "scan"}}});
  REQUIRE(s.run(only({storage::Category::onedrive})).state == scheduler::RunState::succeeded);
  require_files_match(s, "onedrive");
  const auto versions = s.count("SELECT count(*) FROM item_versions WHERE category = 'onedrive'");

  for (json op : {json{{"op", "rename"}, {"id", folder}, {"name", "Archive 2025"}},
                  json{{"op", "move"}, {"id", folder}, {"to", dest}}}) {
    INFO(op.dump());
    drive_ops(s, user, {op});
    s.emulator().admin("DELETE", "/_emulator/stats", nullptr, 204);
    auto r = s.run(only({storage::Category::onedrive}));
    INFO(r.error.value_or(""));
    REQUIRE(r.state == scheduler::RunState::succeeded);
    CHECK(content_requests(s) == 0);
    // The folder is a new container version; its files are untouched.
    CHECK(s.count("SELECT count(*) FROM item_versions WHERE category = 'onedrive'") == versions);
    require_files_match(s, "onedrive");
  }
  CHECK(s.count("SELECT count(*) FROM container_versions cv JOIN containers k ON k.id = cv.container_id"
                 " WHERE k.graph_id = '" + folder + "'") == 3);
}

TEST_CASE("drives: a folder deleted on one delta page with children moved out on a later page keeps the children",
          "[graph][pg]") {
  BackupStack s(drive_tenant());
  const auto user = first_user(s);
  // Index order is delta order: the doomed folder first, then more than a page
  // (200) of other changed items, then what is moved out of it.
  auto made = drive_ops(s, user, {{{"op", "folder"}, {"parent", "root"}, {"name", "Doomed"}},
                                  {{"op", "folder"}, {"parent", "root"}, {"name", "Safe"}}});
  const auto doomed = made[0]["id"].get<std::string>(), safe = made[1]["id"].get<std::string>();
  auto fill = drive_ops(s, user, {{{"op", "files"}, {"parent", "root"}, {"count", 250}, {"size", 100}, {"prefix", "filler"}},
                                  {{"op", "folder"}, {"parent", doomed}, {"name", "Sub"}}});
  const auto sub = fill[1]["id"].get<std::string>();
  auto kids = drive_ops(s, user, {{{"op", "files"}, {"parent", sub}, {"count", 5}, {"size", 5000}, {"prefix", "kept"}},
                                  {{"op", "files"}, {"parent", doomed}, {"count", 1}, {"size", 7000}, {"prefix", "child"}}});
  const auto child = kids[1]["ids"][0].get<std::string>();
  REQUIRE(s.run(only({storage::Category::onedrive})).state == scheduler::RunState::succeeded);
  require_files_match(s, "onedrive");

  json ops = json::array();
  for (auto& id : fill[0]["ids"]) ops.push_back({{"op", "rename"}, {"id", id}, {"name", "re " + id.get<std::string>()}});
  ops.push_back({{"op", "move"}, {"id", sub}, {"to", safe}});
  ops.push_back({{"op", "move"}, {"id", child}, {"to", safe}});
  ops.push_back({{"op", "delete"}, {"id", doomed}});
  drive_ops(s, user, ops);
  s.emulator().admin("DELETE", "/_emulator/stats", nullptr, 204);
  auto r = s.run(only({storage::Category::onedrive}));
  INFO(r.error.value_or(""));
  REQUIRE(r.state == scheduler::RunState::succeeded);
  CHECK(s.emulator().admin("GET", "/_emulator/stats")["requests"].value(
            "GET /v1.0/drives/{id}/root/delta", 0) >= 2);  // the round spanned pages
  // The moved subtree and the moved file are open, under their new parent, and
  // were never closed (no gap in their history): nothing was downloaded again.
  require_files_match(s, "onedrive");
  CHECK(content_requests(s) == 0);
  CHECK(s.count("SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id WHERE i.graph_id = '" + child +
                 "' AND v.to_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM item_versions w WHERE w.item_id = v.item_id"
                 " AND w.from_at = v.to_at)") == 0);
  CHECK(s.count("SELECT count(*) FROM container_versions cv JOIN containers k ON k.id = cv.container_id"
                 " WHERE k.graph_id = '" + doomed + "' AND cv.to_at IS NULL") == 0);
  check_index_consistent(s.reader());
}

TEST_CASE("drives: 1 MB edits in a 100 MB file add a few MB each to the repository, not the file", "[graph][pg]") {
  BackupStack s(drive_tenant());
  const auto user = first_user(s);
  auto big = drive_ops(s, user, {{{"op", "files"}, {"parent", "root"}, {"count", 1}, {"size", 100 << 20}, {"prefix", "disk image"}}});
  const auto id = big[0]["ids"][0].get<std::string>();
  REQUIRE(s.run(only({storage::Category::onedrive})).state == scheduler::RunState::succeeded);
  auto stored = [&] { return s.count("SELECT coalesce(sum(length), 0) FROM repo_blobs"); };
  const auto before = stored();
  // Four 1 MiB edits far apart. Chunk boundaries come from a per-repository
  // secret, so what one edit costs varies from repository to repository: the
  // chunks holding its two ends are stored again, and a chunk containing a given
  // byte is larger than the 512 KiB average. bench/chunker_edit's edits over
  // 200 random secrets, mean of four edits per secret: 2.60 MB on average,
  // median 2.52, 90th percentile 3.37, 99th 4.43, largest 4.62 (512 KiB / 1 MiB
  // / 8 MiB chunks: 3.77 on average, up to 6.35). The bound sits above that
  // largest, so that the test fails on a regression, not on an unlucky secret.
  json ops = json::array();
  for (int mb : {15, 40, 65, 90}) ops.push_back({{"op", "overwrite"}, {"id", id}, {"offset", mb << 20}, {"length", 1 << 20}});
  drive_ops(s, user, ops);
  s.emulator().admin("DELETE", "/_emulator/stats", nullptr, 204);
  auto r = s.run(only({storage::Category::onedrive}));
  REQUIRE(r.state == scheduler::RunState::succeeded);
  const double per_edit = static_cast<double>(stored() - before) / 4;
  WARN("a 1 MiB edit added " << per_edit / 1e6 << " MB to the repository (mean of 4)");
  CHECK(content_requests(s) == 1);
  CHECK(per_edit > (1 << 20));
  CHECK(per_edit <= 5e6);
  require_files_match(s, "onedrive");
}

TEST_CASE("drives: SharePoint sites' document libraries equal the manifest", "[graph][pg]") {
  BackupStack s(drive_tenant());
  auto r = s.run(only({storage::Category::sharepoint}));
  INFO(r.error.value_or(""));
  REQUIRE(r.state == scheduler::RunState::succeeded);
  require_files_match(s, "sharepoint");
  auto sites = s.query("SELECT count(*) FROM owners WHERE kind = 'site'")[0][0];
  CHECK(std::stoi(sites) >= 2);
  // Every library (Documents on every site, a second one on odd sites) is a drive owner.
  CHECK(s.count("SELECT count(*) FROM owners WHERE kind = 'drive'") > std::stoi(sites));
  // An incremental run after activity is right too.
  s.emulator().admin("POST", "/_emulator/tenants/" + s.tenant().tenant + "/activity",
                     {{"seed", 5}, {"categories", {"files"}}, {"creates", 4}, {"updates", 3}, {"deletes", 2},
                      {"moves", 2}, {"renames", 2}});
  REQUIRE(s.run(only({storage::Category::sharepoint})).state == scheduler::RunState::succeeded);
  require_files_match(s, "sharepoint");
}
