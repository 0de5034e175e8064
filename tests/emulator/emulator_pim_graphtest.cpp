// Contacts and calendars: folder listing, per-folder contacts delta, calendars,
// calendarView delta window rules, series instances, beta events delta, and the
// manifest's canonical JSON recomputed from what Graph returns.
#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include <set>

#include "emulator_support.hpp"

using namespace m365vault::test;

namespace {
std::string sha256_hex(const std::string& s) {
  unsigned char out[32];
  unsigned n = 0;
  EVP_Digest(s.data(), s.size(), out, &n, EVP_sha256(), nullptr);
  static const char* h = "0123456789abcdef";
  std::string r;
  for (unsigned i = 0; i < n; ++i) {
    r += h[out[i] >> 4];
    r += h[out[i] & 15];
  }
  return r;
}
// docs/emulator.md "Manifest": drop annotations and server-assigned fields, sorted keys, no whitespace.
std::string canonical(json j) {
  for (auto k : {"id", "changeKey", "createdDateTime", "lastModifiedDateTime", "parentFolderId", "calendar", "webLink",
                 "iCalUId", "seriesMasterId", "transactionId"})
    j.erase(k);
  json out = json::object();
  for (auto& [k, v] : j.items())
    if (k.find('@') == std::string::npos) out[k] = v;
  return out.dump();
}
}  // namespace

TEST_CASE("contacts: folders, per-folder delta rounds with @removed, and canonical hashes", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 61, 2, 2, {{"contacts_per_user", 25}});
  auto tok = emu.token(t.tenant, t.client, t.secret);
  const std::string u = emu.graph_json("/v1.0/users", tok)["value"][0]["id"];
  auto top = emu.graph_json("/v1.0/users/" + u + "/contactFolders", tok)["value"];
  REQUIRE(top.size() == 1);
  REQUIRE(top[0]["displayName"] == "Contacts");
  auto kids = emu.graph_json("/v1.0/users/" + u + "/contactFolders/" + top[0]["id"].get<std::string>() + "/childFolders", tok)["value"];
  REQUIRE(kids.size() == 2);
  auto fd = walk_delta(emu, "/v1.0/users/" + u + "/contactFolders/delta", tok);
  REQUIRE(fd.items.size() == 3);

  std::size_t total = 0;
  std::map<std::string, std::string> deltas;
  std::map<std::string, json> contacts;
  for (auto& f : fd.items) {
    auto r = walk_delta(emu, "/v1.0/users/" + u + "/contactFolders/" + f["id"].get<std::string>() + "/contacts/delta", tok,
                        {{"Prefer", "odata.maxpagesize=4"}});
    total += r.items.size();
    deltas[f["id"]] = r.delta_link;
    for (auto& c : r.items) {
      REQUIRE(c["@odata.type"] == "#microsoft.graph.contact");
      REQUIRE(c["parentFolderId"] == f["id"]);
      contacts[c["id"]] = c;
    }
  }
  REQUIRE(total == 25);
  // The manifest's hashes are reproducible from Graph's JSON alone.
  auto manifest = emu.admin("GET", "/_emulator/tenants/" + t.tenant + "/manifest?category=contacts&owner=" + u);
  REQUIRE(manifest["items"].size() == 25);
  for (auto& it : manifest["items"]) {
    auto got = emu.graph_json("/v1.0/users/" + u + "/contacts/" + it["id"].get<std::string>(), tok);
    REQUIRE(sha256_hex(canonical(got)) == it["sha256"]);
    REQUIRE(got["displayName"] == it["name"]);
  }
  // Activity: deletions and updates show up in the next round of the right folder.
  json act;
  for (int seed = 1; seed < 50; ++seed) {
    act = emu.admin("POST", "/_emulator/tenants/" + t.tenant + "/activity",
                    {{"seed", seed}, {"updates", 2}, {"deletes", 2}, {"categories", {"contacts"}}});
    bool mine = false;
    for (auto& d : act["deleted"]) mine |= d["owner"] == u;
    if (mine) break;
  }
  std::set<std::string> removed, changed;
  for (auto& [fid, link] : deltas)
    for (auto& c : walk_delta(emu, link, tok).items) (c.contains("@removed") ? removed : changed).insert(c["id"].get<std::string>());
  for (auto& d : act["deleted"])
    if (d["owner"] == u) REQUIRE(removed.count(d["id"].get<std::string>()));
  for (auto& d : act["updated"])
    if (d["owner"] == u && !removed.count(d["id"].get<std::string>())) REQUIRE(changed.count(d["id"].get<std::string>()));
}

TEST_CASE("calendars: calendarView delta window rules, series instances, beta events delta, canonical hashes", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 62, 2, 2, {{"events_per_user", 40}});
  auto tok = emu.token(t.tenant, t.client, t.secret);
  const std::string u = emu.graph_json("/v1.0/users", tok)["value"][0]["id"];
  auto cals = emu.graph_json("/v1.0/users/" + u + "/calendars", tok)["value"];
  REQUIRE(cals.size() == 2);
  REQUIRE(cals[0]["isDefaultCalendar"] == true);

  const std::string view = "/v1.0/users/" + u + "/calendarView/delta";
  auto missing = emu.graph(view, tok);
  REQUIRE(missing.status == 400);
  REQUIRE(json::parse(missing.body)["error"]["code"] == "ErrorInvalidParameter");
  REQUIRE(emu.graph(view + "?startDateTime=2025-10-01T00:00:00Z&endDateTime=2026-01-01T00:00:00Z&$select=subject", tok).status == 400);

  const std::string window = view + "?startDateTime=2025-09-01T00:00:00Z&endDateTime=2026-04-01T00:00:00Z";
  auto r1 = walk_delta(emu, window, tok, {{"Prefer", "odata.maxpagesize=5"}});
  REQUIRE(!r1.items.empty());
  std::map<std::string, std::vector<json>> series;
  for (auto& e : r1.items) {
    REQUIRE(e["type"] != "seriesMaster");  // calendarView shows instances, not masters
    auto start = e["start"]["dateTime"].get<std::string>();
    REQUIRE(start.size() == 27);  // 2016-12-09T20:30:00.0000000
    REQUIRE(e["start"]["timeZone"] == "UTC");
    REQUIRE(start >= "2025-08-31");
    REQUIRE(start < "2026-04-01");
    if (!e["seriesMasterId"].is_null()) series[e["seriesMasterId"]].push_back(e);
  }
  REQUIRE(!series.empty());
  bool exception_seen = false;
  for (auto& [master, inst] : series) {
    auto m = emu.graph_json("/v1.0/users/" + u + "/events/" + master, tok);
    REQUIRE(m["type"] == "seriesMaster");
    REQUIRE(m["recurrence"]["pattern"]["type"] == "weekly");
    REQUIRE(m["cancelledOccurrences"].size() == 1);
    for (auto& i : inst) exception_seen |= i["type"] == "exception";
    if (inst.size() == 8) FAIL("a cancelled occurrence was shown");
  }
  REQUIRE(exception_seen);

  // Beta per-calendar events delta returns masters and singles; v1.0 has no such API.
  REQUIRE(emu.graph("/v1.0/users/" + u + "/calendars/" + cals[0]["id"].get<std::string>() + "/events/delta", tok).status == 400);
  std::size_t events = 0;
  for (auto& c : cals) {
    auto r = walk_delta(emu, "/beta/users/" + u + "/calendars/" + c["id"].get<std::string>() + "/events/delta", tok);
    for (auto& e : r.items) REQUIRE((e["type"] == "seriesMaster" || e["type"] == "singleInstance"));
    events += r.items.size();
  }
  auto manifest = emu.admin("GET", "/_emulator/tenants/" + t.tenant + "/manifest?category=calendar&owner=" + u);
  REQUIRE(manifest["items"].size() == events);
  for (auto& it : manifest["items"]) {
    auto got = emu.graph_json("/v1.0/users/" + u + "/events/" + it["id"].get<std::string>(), tok);
    REQUIRE(sha256_hex(canonical(got)) == it["sha256"]);
  }

  // Changes: an updated event inside the window comes back whole; deletions as @removed.
  std::set<std::string> touched;
  for (int seed = 1; seed < 40 && touched.size() < 3; ++seed) {
    auto act = emu.admin("POST", "/_emulator/tenants/" + t.tenant + "/activity",
                         {{"seed", seed}, {"updates", 2}, {"deletes", 1}, {"categories", {"calendar"}}});
    for (auto& d : act["updated"]) if (d["owner"] == u) touched.insert(d["id"].get<std::string>());
    for (auto& d : act["deleted"]) if (d["owner"] == u) touched.insert(d["id"].get<std::string>());
  }
  auto r2 = walk_delta(emu, r1.delta_link, tok);
  REQUIRE(!r2.items.empty());
  for (auto& e : r2.items) {
    if (e.contains("@removed")) {
      REQUIRE(e["@removed"]["reason"] == "deleted");
      continue;
    }
    auto start = e["start"]["dateTime"].get<std::string>();
    REQUIRE(start < "2026-04-01");
  }
}
