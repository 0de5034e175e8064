// Teams as an outside client sees them: teams from groups, channels of every
// membership type, channel message delta (top-level posts, $top ≤ 50, replies,
// edits and deletions as properties), hosted contents and the manifest.
#include <openssl/evp.h>

#include <catch2/catch.hpp>

#include <set>

#include "emulator_support.hpp"

using namespace m365vault::test;

namespace {
std::string sha256_hex(const std::string& d) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(d.data(), d.size(), out, &n, EVP_sha256(), nullptr);
  std::string h;
  char b[3];
  for (unsigned i = 0; i < n; ++i) {
    std::snprintf(b, sizeof b, "%02x", out[i]);
    h += b;
  }
  return h;
}
// The canonical JSON of docs/emulator.md: no '@' properties, no server-assigned ones,
// sorted keys (nlohmann's default object), no whitespace.
std::string canonical(json j) {
  for (auto k : {"id", "createdDateTime", "lastModifiedDateTime"}) j.erase(k);
  json out = json::object();
  for (auto& [k, v] : j.items())
    if (k.find('@') == std::string::npos) out[k] = v;
  return out.dump();
}
}  // namespace

TEST_CASE("teams: channels, message delta with replies, edits, deletions, hosted contents, manifest", "[graph]") {
  EmulatorProcess emu;
  // Not about throttling (emulator_chats_graphtest.cpp is): lift the Teams limits.
  emu.admin("PUT", "/_emulator/faults", {{"teams_rps", {{"channel_message", 100000}, {"team_channel", 100000},
                                                        {"channels_list", 100000}, {"per_team_or_channel", 100000}}}});
  // All posts inside the delta window here; the window has its own test.
  auto t = make_tenant(emu, 71, 8, 1,
                       {{"teams", 2}, {"channels_per_team", 3}, {"messages_per_channel", 12}, {"sites", 0},
                        {"old_messages_per_channel", 0}});
  auto tok = emu.token(t.tenant, t.client, t.secret);
  std::vector<std::string> teams;
  auto groups = emu.graph_json("/v1.0/groups", tok);
  for (auto& g : groups["value"]) {
    bool team = false;
    for (auto& o : g["resourceProvisioningOptions"]) team |= o == "Team";
    if (team) teams.push_back(g["id"]);
  }
  REQUIRE(teams.size() == 2);
  const std::string team = teams[0];
  auto tj = emu.graph_json("/v1.0/teams/" + team, tok);
  REQUIRE(tj["id"] == team);
  auto channels = emu.graph_json("/v1.0/teams/" + team + "/channels", tok)["value"];
  REQUIRE(channels.size() == 3);
  std::set<std::string> kinds;
  for (auto& c : channels) kinds.insert(c["membershipType"].get<std::string>());
  REQUIRE(kinds == std::set<std::string>{"standard", "private", "shared"});
  const std::string ch = channels[0]["id"];
  const std::string base = "/v1.0/teams/" + team + "/channels/" + ch + "/messages";
  REQUIRE(emu.graph(base + "/delta?$top=51", tok).status == 400);
  auto first = walk_delta(emu, base + "/delta?$top=5&$expand=replies", tok);
  REQUIRE(first.items.size() == 12);
  REQUIRE(first.pages == 3);
  int replies = 0, images = 0;
  for (auto& m : first.items) {
    REQUIRE(m["replyToId"].is_null());  // top-level posts only
    for (auto& r : m["replies"]) {
      ++replies;
      REQUIRE(r["replyToId"] == m["id"]);
    }
    auto listed = emu.graph_json(base + "/" + m["id"].get<std::string>() + "/replies", tok)["value"];
    REQUIRE(listed.size() == m["replies"].size());
    auto hosted = emu.graph_json(base + "/" + m["id"].get<std::string>() + "/hostedContents", tok)["value"];
    for (auto& h : hosted) {
      ++images;
      auto png = emu.graph(base + "/" + m["id"].get<std::string>() + "/hostedContents/" + h["id"].get<std::string>() + "/$value", tok);
      REQUIRE(png.status == 200);
      REQUIRE(png.body.substr(1, 3) == "PNG");
      REQUIRE(m["body"]["content"].get<std::string>().find(h["id"].get<std::string>()) != std::string::npos);
    }
  }
  REQUIRE(replies > 0);
  REQUIRE(images > 0);
  // Manifest: every post and reply, hashes recomputable from Graph's JSON.
  auto manifest = emu.admin("GET", "/_emulator/tenants/" + t.tenant + "/manifest?category=teams&owner=" + team)["items"];
  std::size_t here = 0;
  for (auto& m : manifest) {
    if (m["channel_id"] != ch) continue;
    ++here;
    auto got = emu.graph_json(base + "/" + m["id"].get<std::string>(), tok);
    REQUIRE(sha256_hex(canonical(got)) == m["sha256"]);
  }
  REQUIRE(here == first.items.size() + static_cast<std::size_t>(replies));
  // Activity: edits and deletions come back as items with lastEditedDateTime / deletedDateTime.
  auto act = emu.admin("POST", "/_emulator/tenants/" + t.tenant + "/activity",
                       {{"seed", 2}, {"categories", {"teams"}}, {"creates", 6}, {"updates", 6}, {"deletes", 6}});
  auto second = walk_delta(emu, first.delta_link, tok);
  for (auto& u : act["updated"]) {
    if (u["channel"] != ch) continue;
    auto it = std::find_if(second.items.begin(), second.items.end(), [&](auto& x) { return x["id"] == u["id"]; });
    REQUIRE(it != second.items.end());
    if ((*it)["deletedDateTime"].is_null()) REQUIRE((*it)["lastEditedDateTime"].is_string());
  }
  for (auto& d : act["deleted"]) {
    if (d["channel"] != ch) continue;
    auto it = std::find_if(second.items.begin(), second.items.end(), [&](auto& x) { return x["id"] == d["id"]; });
    REQUIRE(it != second.items.end());
    REQUIRE((*it)["deletedDateTime"].is_string());
    REQUIRE((*it)["body"]["content"] == "");
  }
  REQUIRE(emu.graph("/v1.0/teams/" + team + "/channels/19:nope@thread.tacv2/messages/delta", tok).status == 404);

  // expire_delta drops the channel's sync state: its deltaLink and a nextLink issued
  // before are refused with 400 syncStateNotFound (no Location); another channel's
  // deltaLink still works, and a delta without a token starts afresh.
  auto other = walk_delta(emu, "/v1.0/teams/" + team + "/channels/" + channels[1]["id"].get<std::string>() +
                                   "/messages/delta", tok);
  auto paged = emu.graph_json(base + "/delta?$top=5", tok);
  REQUIRE(paged.contains("@odata.nextLink"));
  auto exp = emu.admin("POST", "/_emulator/tenants/" + t.tenant + "/activity",
                       {{"expire_delta", {{{"owner", team}, {"channel", ch}}}}});
  REQUIRE(exp["expired"].size() == 1);
  REQUIRE(exp["created"].empty());
  for (const std::string& link : {second.delta_link, paged["@odata.nextLink"].get<std::string>()}) {
    auto gone = emu.graph(link, tok);
    REQUIRE(gone.status == 400);
    REQUIRE(json::parse(gone.body)["error"]["code"] == "syncStateNotFound");
    REQUIRE(gone.header("location").empty());
  }
  REQUIRE(emu.graph(other.delta_link, tok).status == 200);
  auto again = walk_delta(emu, base + "/delta", tok);
  // A fresh enumeration: every live post, no deletion (the plain listing shows both).
  std::size_t live = 0;
  for (std::string next = base; !next.empty();) {
    auto page = emu.graph_json(next, tok);
    for (auto& m : page["value"]) live += m["deletedDateTime"].is_null();
    next = page.value("@odata.nextLink", "");
  }
  REQUIRE(again.items.size() == live);
  for (auto& m : again.items) REQUIRE(m["deletedDateTime"].is_null());
  REQUIRE(emu.graph(again.delta_link, tok).status == 200);
  // Bad requests name the problem.
  auto bad = emu.call("POST", "/_emulator/tenants/" + t.tenant + "/activity", {{"Content-Type", "application/json"}},
                      json{{"expire_delta", {{{"owner", team}, {"channel", "19:nope@thread.tacv2"}}}}}.dump());
  REQUIRE(bad.status == 400);
  REQUIRE(bad.body.find("no channel '19:nope@thread.tacv2'") != std::string::npos);
}
