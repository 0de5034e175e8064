// Directory: users and groups, their deltas, $select, return=minimal, soft and hard
// removal, members@delta, $deltatoken=latest, the 7-day token lifetime.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "emulator_support.hpp"

using namespace m365vault::test;

TEST_CASE("users delta: pages with $select, a deltaLink, changes after activity, latest, expiry, garbled", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 21, 7, 1);
  auto tok = emu.token(t.tenant, t.client, t.secret);
  const std::vector<std::pair<std::string, std::string>> small = {{"Prefer", "odata.maxpagesize=3"}};
  auto r1 = walk_delta(emu, "/v1.0/users/delta?$select=displayName,jobTitle", tok, small);
  REQUIRE(r1.items.size() == 7);
  REQUIRE(r1.pages == 3);
  std::set<std::string> ids;
  for (auto& u : r1.items) {
    ids.insert(u["id"].get<std::string>());
    REQUIRE(u.size() == 3);  // id + the two selected properties
    REQUIRE(u.contains("displayName"));
  }
  REQUIRE(ids.size() == 7);
  auto first = emu.graph_json("/v1.0/users/delta?$select=displayName,jobTitle", tok, small);
  REQUIRE(first["@odata.context"].get<std::string>().find("$metadata#users(displayName,jobTitle)") != std::string::npos);

  // No change: empty value and a fresh deltaLink.
  auto same = emu.graph_json(r1.delta_link, tok);
  REQUIRE(same["value"].empty());
  REQUIRE(same.contains("@odata.deltaLink"));

  auto act = emu.admin("POST", "/_emulator/tenants/" + t.tenant + "/activity",
                       {{"seed", 5}, {"updates", 2}, {"deletes", 2}, {"categories", {"directory"}}});
  auto r2 = walk_delta(emu, r1.delta_link, tok);
  std::map<std::string, json> seen;
  for (auto& i : r2.items) seen[i["id"].get<std::string>()] = i;  // the last occurrence wins
  for (auto& d : act["deleted"]) {
    auto& i = seen.at(d["id"].get<std::string>());
    REQUIRE(i["@removed"]["reason"] == d["reason"]);
  }
  for (auto& u : act["updated"]) {
    auto& i = seen.at(u["id"].get<std::string>());
    if (!i.contains("@removed")) REQUIRE(i.contains("displayName"));
  }
  // return=minimal on a deltaLink: only changed properties.
  emu.admin("POST", "/_emulator/tenants/" + t.tenant + "/activity", {{"seed", 9}, {"updates", 1}, {"categories", {"directory"}}});
  auto minimal = emu.graph_json(r2.delta_link, tok, {{"Prefer", "return=minimal"}});
  for (auto& i : minimal["value"])
    if (!i.contains("@removed")) REQUIRE(!i.contains("givenName"));

  // $deltatoken=latest: nothing now, changes later.
  auto latest = emu.graph_json("/v1.0/users/delta?$deltatoken=latest", tok);
  REQUIRE(latest["value"].empty());
  REQUIRE(latest.contains("@odata.deltaLink"));
  emu.admin("POST", "/_emulator/tenants/" + t.tenant + "/activity", {{"seed", 10}, {"creates", 1}, {"categories", {"directory"}}});
  auto after = walk_delta(emu, latest["@odata.deltaLink"].get<std::string>(), tok);
  REQUIRE(after.items.size() == 1);

  // Garbled and expired tokens.
  auto dl = r1.delta_link;
  auto garbled = emu.graph(dl.substr(0, dl.size() - 3) + "xyz", tok);
  REQUIRE(garbled.status == 400);
  emu.admin("PUT", "/_emulator/faults", {{"clock_offset_s", 8 * 24 * 3600}, {"token_lifetime_s", 100000000}});
  auto tok2 = emu.token(t.tenant, t.client, t.secret);
  auto old = emu.graph(dl, tok2);
  REQUIRE(old.status == 400);
  auto e = json::parse(old.body)["error"];
  REQUIRE(e["code"] == "syncStateNotFound");
  REQUIRE(e["message"] == load_fixture("errors/delta-400-syncstatenotfound-directory.json")["error"]["message"]);
}

TEST_CASE("groups delta carries members@delta, hard-deleted members are removed", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 22, 12, 1);
  auto tok = emu.token(t.tenant, t.client, t.secret);
  auto r1 = walk_delta(emu, "/v1.0/groups/delta?$select=displayName,description,members", tok);
  REQUIRE(r1.items.size() == 4);
  std::map<std::string, std::set<std::string>> members;
  for (auto& g : r1.items) {
    REQUIRE(g.contains("members@delta"));
    for (auto& m : g["members@delta"]) {
      REQUIRE(m["@odata.type"] == "#microsoft.graph.user");
      members[g["id"].get<std::string>()].insert(m["id"].get<std::string>());
    }
  }
  // Delete until someone is hard-deleted (a second delete of the same user).
  std::string hard;
  for (int seed = 1; seed < 200 && hard.empty(); ++seed) {
    auto act = emu.admin("POST", "/_emulator/tenants/" + t.tenant + "/activity",
                         {{"seed", seed}, {"deletes", 3}, {"categories", {"directory"}}});
    for (auto& d : act["deleted"])
      if (d["reason"] == "deleted") {
        bool member = false;
        for (auto& [g, ms] : members) member |= ms.count(d["id"].get<std::string>()) > 0;
        if (member) hard = d["id"].get<std::string>();
      }
  }
  REQUIRE(!hard.empty());
  auto r2 = walk_delta(emu, r1.delta_link, tok);
  bool removed = false;
  for (auto& g : r2.items)
    for (auto& m : g.value("members@delta", json::array()))
      if (m["id"] == hard && m["@removed"]["reason"] == "deleted") removed = true;
  REQUIRE(removed);
  // Unknown and unsupported properties.
  REQUIRE(emu.graph("/v1.0/users?$select=nosuchprop", tok).status == 400);
  auto skills = emu.graph("/v1.0/users?$select=skills", tok);
  REQUIRE(skills.status == 501);
  REQUIRE(json::parse(skills.body)["error"]["code"] == "NotImplemented");
}

TEST_CASE("large groups repeat across pages with member slices, $filter by id, unsupported options", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 23, 70, 1);
  auto tok = emu.token(t.tenant, t.client, t.secret);
  auto r = walk_delta(emu, "/v1.0/groups/delta?$select=displayName,members", tok);
  std::map<std::string, std::set<std::string>> merged;
  std::map<std::string, int> occurrences;
  for (auto& g : r.items) {
    ++occurrences[g["id"].get<std::string>()];
    REQUIRE(g["members@delta"].size() <= 20);
    for (auto& m : g["members@delta"]) merged[g["id"]].insert(m["id"].get<std::string>());
  }
  bool repeated = false;
  for (auto& [id, n] : occurrences) repeated |= n > 1;
  REQUIRE(repeated);  // at least one group needed several slices
  std::size_t biggest = 0;
  for (auto& [id, ms] : merged) biggest = std::max(biggest, ms.size());
  REQUIRE(biggest > 20);

  auto users = emu.graph_json("/v1.0/users?$top=3", tok)["value"];
  std::string filter = "id eq '" + users[0]["id"].get<std::string>() + "' or id eq '" + users[2]["id"].get<std::string>() + "'";
  std::string enc;
  for (char ch : filter) enc += ch == ' ' ? std::string("%20") : ch == '\'' ? std::string("%27") : std::string(1, ch);
  auto f = walk_delta(emu, "/v1.0/users/delta?$filter=" + enc, tok);
  REQUIRE(f.items.size() == 2);
  REQUIRE(emu.graph("/v1.0/users/delta?$top=5", tok).status == 400);
  REQUIRE(emu.graph("/v1.0/users/delta?$filter=displayName%20eq%20%27x%27", tok).status == 400);
}
