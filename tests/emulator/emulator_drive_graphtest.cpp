// OneDrive and SharePoint as an outside client sees them: drive delta rounds, content
// through the 302 and the pre-authenticated URL (ranges, expiry, no bearer token),
// hashes checked with an independent quickXorHash, resync and snapshot faults, sites,
// lists, list item delta, resource-unit throttling and the manifest.
#include <openssl/evp.h>

#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "emulator_support.hpp"

using namespace m365vault::test;

namespace {

std::string first_user(const EmulatorProcess& emu, const std::string& tok) {
  return emu.graph_json("/v1.0/users", tok)["value"][0]["id"].get<std::string>();
}

void put_faults(const EmulatorProcess& emu, const json& f) { emu.admin("PUT", "/_emulator/faults", f); }

}  // namespace

TEST_CASE("drive delta enumerates the drive, content comes through a 302 and matches the hashes and the manifest",
          "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 61, 4, 1, {{"drive_files_per_user", 14}, {"drive_bytes_per_user", 3000000}});
  auto tok = emu.token(t.tenant, t.client, t.secret);
  auto manifest = emu.admin("GET", "/_emulator/tenants/" + t.tenant + "/manifest?category=files");
  std::map<std::string, json> truth;
  std::map<std::string, std::set<std::string>> owners_of_hash;
  for (auto& m : manifest["items"]) {
    truth[m["id"]] = m;
    owners_of_hash[m["sha256"]].insert(m["owner"].get<std::string>());
  }
  // The same bytes in several users' drives (exact duplicates across owners).
  REQUIRE(std::any_of(owners_of_hash.begin(), owners_of_hash.end(), [](auto& kv) { return kv.second.size() > 1; }));

  const std::string u = first_user(emu, tok);
  auto drive = emu.graph_json("/v1.0/users/" + u + "/drive", tok);
  REQUIRE(drive["driveType"] == "business");
  const std::string did = drive["id"];
  REQUIRE(did.rfind("b!", 0) == 0);
  auto round = walk_delta(emu, "/v1.0/users/" + u + "/drive/root/delta?$top=5", tok);
  REQUIRE(round.pages > 1);
  REQUIRE(round.delta_link.find("/root/delta?token=") != std::string::npos);
  int files = 0, folders = 0, roots = 0, packages = 0;
  for (auto& it : round.items) {
    INFO(it.dump());
    REQUIRE(!it["parentReference"].contains("path"));  // no path in delta (contract 8.1)
    REQUIRE(it.contains("eTag"));
    REQUIRE(it.contains("cTag"));
    int facets = it.contains("folder") + it.contains("file") + it.contains("package");
    REQUIRE(facets == 1);
    if (it.contains("root")) {
      ++roots;
      continue;
    }
    REQUIRE(it["parentReference"]["driveId"] == did);
    if (it.contains("folder")) ++folders;
    if (it.contains("package")) ++packages;
    if (!it.contains("file")) continue;
    ++files;
    REQUIRE(!it.contains("@microsoft.graph.downloadUrl"));  // only when selected
    const std::string id = it["id"];
    REQUIRE(truth.count(id));
    // 302 to a pre-authenticated URL, fetched without the bearer token.
    auto redirect = emu.graph("/v1.0/drives/" + did + "/items/" + id + "/content", tok);
    REQUIRE(redirect.status == 302);
    const std::string url = redirect.header("location");
    REQUIRE(url.rfind(emu.base(), 0) == 0);
    auto bytes = emu.call("GET", url);
    REQUIRE(bytes.status == 200);
    REQUIRE(bytes.body.size() == it["size"].get<std::size_t>());
    REQUIRE(hex_digest(EVP_sha256(), bytes.body) == truth[id]["sha256"]);
    REQUIRE(base64_encode(naive_quickxor(bytes.body)) == it["file"]["hashes"]["quickXorHash"]);
    REQUIRE(truth[id]["quickXorHash"] == it["file"]["hashes"]["quickXorHash"]);
  }
  REQUIRE(roots == 1);
  REQUIRE(folders > 0);
  REQUIRE(packages == 1);
  REQUIRE(static_cast<std::ptrdiff_t>(files) ==
          std::count_if(manifest["items"].begin(), manifest["items"].end(), [&](auto& m) { return m["owner"] == u; }));

  // Selecting the download URL puts it on file items.
  auto sel = emu.graph_json("/v1.0/drives/" + did + "/root/delta?$select=id,name,file,content.downloadUrl", tok);
  bool with_url = false;
  for (auto& it : sel["value"])
    if (it.contains("file")) with_url = it.contains("@microsoft.graph.downloadUrl");
  REQUIRE(with_url);
}

TEST_CASE("download URLs: ranges, If-None-Match, expiry and a refused Authorization header", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 62, 1, 1, {{"drive_files_per_user", 6}, {"drive_bytes_per_user", 4000000}});
  auto tok = emu.token(t.tenant, t.client, t.secret);
  const std::string u = first_user(emu, tok);
  auto round = walk_delta(emu, "/v1.0/users/" + u + "/drive/root/delta", tok);
  json big;
  for (auto& it : round.items)
    if (it.contains("file") && (big.is_null() || it["size"] > big["size"])) big = it;
  REQUIRE(big["size"].get<std::uint64_t>() > 100000);
  const std::string did = big["parentReference"]["driveId"], id = big["id"];
  const std::string content = "/v1.0/drives/" + did + "/items/" + id + "/content";
  const std::string url = emu.graph(content, tok).header("location");
  auto whole = emu.call("GET", url);
  REQUIRE(whole.status == 200);
  // Resume with a Range: 206 and Content-Range.
  auto part = emu.call("GET", url, {{"Range", "bytes=1000-99999"}});
  REQUIRE(part.status == 206);
  REQUIRE(part.header("content-range") == "bytes 1000-99999/" + std::to_string(whole.body.size()));
  REQUIRE(part.body == whole.body.substr(1000, 99000));
  auto tail = emu.call("GET", url, {{"Range", "bytes=-10"}});
  REQUIRE(tail.body == whole.body.substr(whole.body.size() - 10));
  REQUIRE(emu.call("GET", url, {{"Range", "bytes=" + std::to_string(whole.body.size()) + "-"}}).status == 416);
  // The ETag is the cTag; If-Range naming it keeps the range, another value gets
  // the whole (current) body, so a resume never splices two versions.
  REQUIRE(whole.header("etag") == big["cTag"].get<std::string>());
  REQUIRE(emu.call("GET", url, {{"Range", "bytes=10-"}, {"If-Range", whole.header("etag")}}).status == 206);
  auto changed = emu.call("GET", url, {{"Range", "bytes=10-"}, {"If-Range", "\"c:{00000000-0000-0000-0000-000000000000},9\""}});
  REQUIRE(changed.status == 200);
  REQUIRE(changed.body == whole.body);
  // download_cut_at: a download without Range is cut there; a resume goes through.
  put_faults(emu, {{"download_cut_at", 0.5}});
  REQUIRE_THROWS(emu.call("GET", url));  // the connection closes mid-body
  auto rest = emu.call("GET", url, {{"Range", "bytes=" + std::to_string(whole.body.size() / 2) + "-"}});
  REQUIRE(rest.status == 206);
  REQUIRE(rest.body == whole.body.substr(whole.body.size() / 2));
  // download_corrupt: the first byte of the body is flipped, the rest is the file.
  put_faults(emu, {{"download_corrupt", true}});
  auto bad = emu.call("GET", url);
  REQUIRE(bad.status == 200);
  REQUIRE(bad.body.size() == whole.body.size());
  REQUIRE(bad.body[0] == static_cast<char>(~whole.body[0]));
  REQUIRE(bad.body.substr(1) == whole.body.substr(1));
  put_faults(emu, json::object());
  // The Authorization header does not belong on the pre-authenticated URL.
  REQUIRE(emu.call("GET", url, {{"Authorization", "Bearer " + tok}}).status == 401);
  // If-None-Match with the current eTag or cTag → 304.
  auto item = emu.graph_json("/v1.0/drives/" + did + "/items/" + id, tok);
  REQUIRE(item["@microsoft.graph.downloadUrl"].is_string());
  REQUIRE(item["parentReference"]["path"].get<std::string>().rfind("/drive/root:", 0) == 0);
  REQUIRE(emu.graph(content, tok, {{"If-None-Match", item["eTag"].get<std::string>()}}).status == 304);
  REQUIRE(emu.graph(content, tok, {{"If-None-Match", item["cTag"].get<std::string>()}}).status == 304);
  REQUIRE(emu.graph(content, tok, {{"If-None-Match", "\"other\""}}).status == 302);
  // Configured to ignore ranges, as the real service may: 200 with everything.
  put_faults(emu, {{"download_ignore_range", true}});
  auto ignored = emu.call("GET", url, {{"Range", "bytes=0-9"}});
  REQUIRE(ignored.status == 200);
  REQUIRE(ignored.body.size() == whole.body.size());
  // An hour later (emulated clock) the URL has expired.
  put_faults(emu, {{"clock_offset_s", 3700}});
  REQUIRE(emu.call("GET", url).status == 401);
  put_faults(emu, json::object());
  // Folders and notebooks have no content.
  for (auto& it : round.items)
    if (it.contains("folder") && !it.contains("root"))
      REQUIRE(emu.graph("/v1.0/drives/" + did + "/items/" + it["id"].get<std::string>() + "/content", tok).status == 404);
}

TEST_CASE("later drive rounds report edits, moves, renames and deletions, latest, timestamp and resync", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 63, 1, 1, {{"drive_files_per_user", 30}, {"drive_bytes_per_user", 600000}, {"sites", 0}});
  auto tok = emu.token(t.tenant, t.client, t.secret);
  const std::string u = first_user(emu, tok);
  auto first = walk_delta(emu, "/v1.0/users/" + u + "/drive/root/delta", tok);
  auto latest = emu.graph_json("/v1.0/users/" + u + "/drive/root/delta?token=latest", tok);
  REQUIRE(latest["value"].empty());
  REQUIRE(latest.contains("@odata.deltaLink"));
  auto act = emu.admin("POST", "/_emulator/tenants/" + t.tenant + "/activity",
                       {{"seed", 5}, {"categories", {"files"}}, {"creates", 3}, {"updates", 3}, {"deletes", 2},
                        {"moves", 2}, {"renames", 2}});
  std::set<std::string> expected;
  for (auto& k : {"created", "updated", "deleted", "moved", "renamed"})
    for (auto& c : act[k]) expected.insert(c["id"].get<std::string>());
  auto second = walk_delta(emu, first.delta_link, tok);
  std::set<std::string> seen;
  for (auto& it : second.items) seen.insert(it["id"].get<std::string>());
  for (auto& id : expected) REQUIRE(seen.count(id));
  for (auto& d : act["deleted"]) {
    auto it = std::find_if(second.items.begin(), second.items.end(), [&](auto& x) { return x["id"] == d["id"]; });
    REQUIRE(it != second.items.end());
    REQUIRE(it->contains("deleted"));
    REQUIRE(!it->contains("name"));  // ODB omits name and cTag on deleted items
    REQUIRE(!it->contains("cTag"));
  }
  for (auto& r : act["renamed"]) {
    auto it = std::find_if(second.items.begin(), second.items.end(), [&](auto& x) { return x["id"] == r["id"]; });
    REQUIRE((*it)["name"] == r["name"]);
  }
  // The "latest" link taken before the activity sees the same changes.
  auto from_latest = walk_delta(emu, latest["@odata.deltaLink"], tok);
  REQUIRE(from_latest.items.size() == second.items.size());
  // A third round with no changes is empty.
  REQUIRE(walk_delta(emu, second.delta_link, tok).items.empty());
  // A timestamp token (business drives): what changed after that instant.
  auto since = walk_delta(emu, "/v1.0/users/" + u + "/drive/root/delta?token=2025-12-31T00%3A00%3A00Z", tok);
  REQUIRE(since.items.size() == second.items.size());
  // A garbled token.
  auto bad = emu.graph("/v1.0/users/" + u + "/drive/root/delta?token=garbage", tok);
  REQUIRE(bad.status == 400);
  REQUIRE(json::parse(bad.body)["error"]["code"] == "invalidRequest");
  // Resync on demand: 410 with a Location that starts over.
  put_faults(emu, {{"drive_resync_rate", 1.0}, {"drive_resync_code", "resyncChangesUploadDifferences"}});
  auto gone = emu.graph(second.delta_link, tok);
  REQUIRE(gone.status == 410);
  auto e = json::parse(gone.body)["error"];
  REQUIRE(e["code"] == "resyncRequired");
  REQUIRE(e["innerError"]["code"] == "resyncChangesUploadDifferences");
  const std::string loc = gone.header("location");
  REQUIRE(loc.find("/root/delta") != std::string::npos);
  REQUIRE(loc.find("token=") == std::string::npos);
  REQUIRE(!walk_delta(emu, loc, tok).items.empty());  // the Location itself is a full enumeration
  // cannotSnapshotTree: retryable, on drive delta only.
  put_faults(emu, {{"error_rate", {{"cannot_snapshot_tree", 1.0}}}});
  auto snap = emu.graph("/v1.0/users/" + u + "/drive/root/delta", tok);
  REQUIRE(snap.status == 503);
  REQUIRE(json::parse(snap.body)["error"]["innerError"]["code"] == "cannotSnapshotTree");
  REQUIRE(!snap.header("retry-after").empty());
  REQUIRE(emu.graph("/v1.0/users/" + u + "/drive", tok).status == 200);
  put_faults(emu, json::object());
}

TEST_CASE("mass rewrite changes a fraction of one owner's files, visible in delta and the manifest", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 64, 2, 1, {{"drive_files_per_user", 20}, {"drive_bytes_per_user", 500000}, {"sites", 0}});
  auto tok = emu.token(t.tenant, t.client, t.secret);
  const std::string u = first_user(emu, tok);
  auto before = emu.admin("GET", "/_emulator/tenants/" + t.tenant + "/manifest?category=files&owner=" + u)["items"];
  auto first = walk_delta(emu, "/v1.0/users/" + u + "/drive/root/delta", tok);
  auto act = emu.admin("POST", "/_emulator/tenants/" + t.tenant + "/activity",
                       {{"mass_rewrite", {{"owner", u}, {"fraction", 0.5}, {"suffix", ".locked"}}}});
  REQUIRE(act["updated"].size() == (before.size() + 1) / 2);
  auto after = emu.admin("GET", "/_emulator/tenants/" + t.tenant + "/manifest?category=files&owner=" + u)["items"];
  std::size_t changed = 0;
  for (auto& a : after)
    for (auto& b : before)
      if (a["id"] == b["id"] && a["sha256"] != b["sha256"]) {
        ++changed;
        REQUIRE(a["name"].get<std::string>().find(".locked") != std::string::npos);
      }
  REQUIRE(changed == act["updated"].size());
  auto second = walk_delta(emu, first.delta_link, tok);
  REQUIRE(second.items.size() == changed);
}

TEST_CASE("personal drives carry sha1Hash and sha256Hash and refuse timestamp tokens", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 65, 1, 1, {{"drive_files_per_user", 5}, {"drive_type", "personal"}, {"sites", 0}});
  auto tok = emu.token(t.tenant, t.client, t.secret);
  const std::string u = first_user(emu, tok);
  auto round = walk_delta(emu, "/v1.0/users/" + u + "/drive/root/delta", tok);
  int files = 0;
  for (auto& it : round.items) {
    REQUIRE(it["parentReference"]["driveType"] == "personal");
    if (!it.contains("file")) continue;
    ++files;
    REQUIRE(it["id"].get<std::string>().find('!') != std::string::npos);
    auto url = emu.graph("/v1.0/drives/" + it["parentReference"]["driveId"].get<std::string>() + "/items/" +
                             it["id"].get<std::string>() + "/content", tok).header("location");
    auto body = emu.call("GET", url).body;
    REQUIRE(it["file"]["hashes"]["sha1Hash"] == hex_digest(EVP_sha1(), body, true));
    REQUIRE(it["file"]["hashes"]["sha256Hash"] == hex_digest(EVP_sha256(), body, true));
    REQUIRE(!it["file"]["hashes"].contains("quickXorHash"));
  }
  REQUIRE(files > 0);
  REQUIRE(emu.graph("/v1.0/users/" + u + "/drive/root/delta?token=2025-12-31T00%3A00%3A00Z", tok).status == 400);
}

TEST_CASE("sites, subsites, libraries, lists, list items with fields and list item delta", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 66, 3, 1, {{"sites", 3}, {"files_per_site", 7}});
  auto tok = emu.token(t.tenant, t.client, t.secret);
  auto sites = emu.graph_json("/v1.0/sites", tok)["value"];
  REQUIRE(sites.size() == 5);  // 3 collections + subsites under the even ones
  REQUIRE(emu.graph_json("/v1.0/sites?search=*", tok)["value"].size() == 5);
  for (auto& s : sites) {
    const std::string id = s["id"];
    REQUIRE(std::count(id.begin(), id.end(), ',') == 2);  // {hostname},{collection},{web}
    REQUIRE(emu.graph_json("/v1.0/sites/" + id, tok)["id"] == id);
  }
  const std::string s0 = sites[0]["id"];
  REQUIRE(emu.graph_json("/v1.0/sites/" + s0 + "/sites", tok)["value"].size() == 1);
  auto drives = emu.graph_json("/v1.0/sites/" + sites[1]["id"].get<std::string>() + "/drives", tok)["value"];
  REQUIRE(drives.size() == 2);
  for (auto& d : drives) {
    REQUIRE(d["driveType"] == "documentLibrary");
    auto files = walk_delta(emu, "/v1.0/drives/" + d["id"].get<std::string>() + "/root/delta", tok);
    REQUIRE(!files.items.empty());
  }
  auto lists = emu.graph_json("/v1.0/sites/" + s0 + "/lists", tok)["value"];
  REQUIRE(lists.size() == 2);
  json generic;
  for (auto& l : lists)
    if (l["list"]["template"] == "genericList") generic = l;
  const std::string base = "/v1.0/sites/" + s0 + "/lists/" + generic["id"].get<std::string>();
  auto items = emu.graph_json(base + "/items?expand=fields", tok)["value"];
  REQUIRE(items.size() == 7);
  for (auto& i : items) REQUIRE(i["fields"]["Title"].is_string());
  auto one = emu.graph_json(base + "/items/" + items[0]["id"].get<std::string>() + "?$expand=fields", tok);
  REQUIRE(one["fields"] == items[0]["fields"]);
  auto first = walk_delta(emu, base + "/items/delta", tok);
  REQUIRE(first.items.size() == 7);
  auto act = emu.admin("POST", "/_emulator/tenants/" + t.tenant + "/activity",
                       {{"seed", 3}, {"categories", {"lists"}}, {"creates", 4}, {"updates", 4}, {"deletes", 2}});
  std::size_t here = 0;
  for (auto& k : {"created", "updated", "deleted"})
    for (auto& c : act[k]) here += c["owner"] == s0;
  auto second = walk_delta(emu, first.delta_link, tok);
  REQUIRE(second.items.size() <= here);
  for (auto& d : act["deleted"])
    if (d["owner"] == s0)
      REQUIRE(std::any_of(second.items.begin(), second.items.end(),
                          [&](auto& x) { return x["id"] == d["id"] && x.contains("@removed"); }));
  // The manifest's list items hash the canonical JSON of `fields`.
  auto manifest = emu.admin("GET", "/_emulator/tenants/" + t.tenant + "/manifest?category=lists&owner=" + s0)["items"];
  auto now_items = emu.graph_json(base + "/items?expand=fields", tok)["value"];
  REQUIRE(manifest.size() == now_items.size());
  for (auto& m : manifest) {
    auto it = std::find_if(now_items.begin(), now_items.end(), [&](auto& x) { return x["id"] == m["id"]; });
    REQUIRE(it != now_items.end());
    json f = (*it)["fields"];
    f.erase("@odata.etag");
    f.erase("id");
    REQUIRE(hex_digest(EVP_sha256(), f.dump()) == m["sha256"]);  // nlohmann sorts keys: the canonical form here
  }
  REQUIRE(emu.graph("/v1.0/sites/contoso.sharepoint.com,1,2", tok).status == 404);

  // expire_delta drops the list's sync state: its deltaLink is answered 410
  // resyncRequired with Location the token-less delta, which enumerates the list anew.
  auto exp = emu.admin("POST", "/_emulator/tenants/" + t.tenant + "/activity",
                       {{"expire_delta", {{{"owner", s0}, {"list", generic["id"]}}}}});
  REQUIRE(exp["expired"].size() == 1);
  auto gone = emu.graph(second.delta_link, tok);
  REQUIRE(gone.status == 410);
  REQUIRE(json::parse(gone.body)["error"]["code"] == "resyncRequired");
  REQUIRE(json::parse(gone.body)["error"]["innerError"]["code"] == "resyncChangesApplyDifferences");
  const std::string location = gone.header("location");
  REQUIRE(location.ends_with(base + "/items/delta"));
  auto anew = walk_delta(emu, location, tok);
  REQUIRE(anew.items.size() == now_items.size());
  REQUIRE(emu.graph(anew.delta_link, tok).status == 200);
  auto bad = emu.call("POST", "/_emulator/tenants/" + t.tenant + "/activity", {{"Content-Type", "application/json"}},
                      json{{"expire_delta", {{{"owner", s0}, {"list", "nope"}}}}}.dump());
  REQUIRE(bad.status == 400);
  REQUIRE(bad.body.find("no list 'nope'") != std::string::npos);
}

TEST_CASE("SharePoint resource units: RateLimit headers past 80 %, then 429 with Retry-After equal to the reset",
          "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 67, 2, 1, {{"sites", 1}});
  auto tok = emu.token(t.tenant, t.client, t.secret);
  put_faults(emu, {{"sharepoint_ru_per_minute", 20}});
  const std::string u = first_user(emu, tok);
  // A multi-item query costs 2, a single item 1.
  bool warned = false;
  HttpResult last;
  for (int i = 0; i < 30; ++i) {
    last = emu.graph("/v1.0/sites", tok);
    if (last.status == 429) break;
    if (!last.header("ratelimit-limit").empty()) {
      warned = true;
      REQUIRE(last.header("ratelimit-limit") == "20");
      REQUIRE(std::stoi(last.header("ratelimit-remaining")) <= 4);
    } else {
      REQUIRE(i < 8);  // no headers below 80 %
    }
  }
  REQUIRE(warned);
  REQUIRE(last.status == 429);
  REQUIRE(!last.header("retry-after").empty());
  REQUIRE(last.header("retry-after") == last.header("ratelimit-reset"));
  REQUIRE(last.header("ratelimit-remaining") == "0");
  // Mail is not SharePoint: unaffected.
  REQUIRE(emu.graph("/v1.0/users/" + u + "/mailFolders", tok).status == 200);
  put_faults(emu, json::object());
  REQUIRE(emu.graph("/v1.0/sites", tok).status == 200);  // new limits start a fresh window
}
