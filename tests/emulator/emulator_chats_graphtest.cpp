// Teams chats, team membership, the Teams per-app rate limits and the 8-month window
// of channel delta, as an outside client sees them over HTTPS.
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "emulator_support.hpp"

using namespace m365vault::test;

namespace {
// Limits high enough that a test walking everything is never throttled.
const json kNoTeamsLimits = {{"teams_rps",
                              {{"channel_message", 100000}, {"chat_message", 100000}, {"team_channel", 100000},
                               {"channels_list", 100000}, {"get_all_messages", 100000}, {"other", 100000},
                               {"per_team_or_channel", 100000}}}};

// The canonical JSON of docs/emulator.md (as in the teams test).
std::string canonical(json j) {
  for (auto k : {"id", "createdDateTime", "lastModifiedDateTime"}) j.erase(k);
  json out = json::object();
  for (auto& [k, v] : j.items())
    if (k.find('@') == std::string::npos) out[k] = v;
  return out.dump();
}

// Follows nextLinks; returns every item.
std::vector<json> walk(const EmulatorProcess& emu, std::string url, const std::string& tok, int* pages = nullptr,
                       std::vector<std::pair<std::string, std::string>> headers = {}) {
  std::vector<json> all;
  for (int n = 0; !url.empty(); ++n) {
    REQUIRE(n < 1000);
    auto page = emu.graph_json(url, tok, headers);
    for (auto& v : page["value"]) all.push_back(v);
    url = page.value("@odata.nextLink", "");
    if (pages) ++*pages;
  }
  return all;
}

std::string max_modified(const std::vector<json>& msgs) {
  std::string m;
  for (auto& x : msgs) m = std::max(m, x["lastModifiedDateTime"].get<std::string>());
  return m;
}
}  // namespace

TEST_CASE("chats: chats with members, messages newest first, system events, hosted contents, activity, manifest",
          "[graph]") {
  TempDir state("emu-chats-state");
  EmulatorProcess emu(state.path().string());
  emu.admin("PUT", "/_emulator/faults", kNoTeamsLimits);
  auto t = make_tenant(emu, 81, 6, 1, {{"chats", 9}, {"messages_per_chat", 12}, {"sites", 0}});
  auto tok = emu.token(t.tenant, t.client, t.secret);
  auto users = emu.graph_json("/v1.0/users", tok)["value"];
  REQUIRE(users.size() == 6);

  // Every chat appears for each of its members, and only for them.
  std::map<std::string, json> chats;
  std::map<std::string, std::set<std::string>> seen_by;
  for (auto& u : users) {
    const std::string uid = u["id"];
    int pages = 0;
    for (auto& c : walk(emu, "/v1.0/users/" + uid + "/chats?$top=2&$expand=members", tok, &pages)) {
      bool member = false;
      for (auto& m : c["members"]) {
        member |= m["userId"] == uid;
        REQUIRE(m["@odata.type"] == "#microsoft.graph.aadUserConversationMember");
      }
      REQUIRE(member);
      chats[c["id"]] = c;
      seen_by[c["id"]].insert(uid);
    }
  }
  REQUIRE(chats.size() == 9);
  std::set<std::string> types;
  for (auto& [id, c] : chats) {
    types.insert(c["chatType"].get<std::string>());
    std::set<std::string> members;
    for (auto& m : c["members"]) members.insert(m["userId"].get<std::string>());
    REQUIRE(members == seen_by[id]);
    if (c["chatType"] == "oneOnOne") {
      REQUIRE(members.size() == 2);
      REQUIRE(c["topic"].is_null());
    }
    if (c["chatType"] == "meeting") REQUIRE(c["onlineMeetingInfo"]["joinWebUrl"].is_string());
    auto got = emu.graph_json("/v1.0/chats/" + id, tok);
    REQUIRE(got["chatType"] == c["chatType"]);
    REQUIRE(emu.graph_json("/v1.0/chats/" + id + "/members", tok)["value"].size() == members.size());
  }
  REQUIRE(types == std::set<std::string>{"oneOnOne", "group", "meeting"});
  REQUIRE(emu.graph("/v1.0/chats/19:nope@thread.v2", tok).status == 404);

  // A group chat: 12 messages in pages of 5, newest first; its first is a system event.
  std::string group;
  for (auto& [id, c] : chats)
    if (c["chatType"] == "group") group = id;
  const std::string msgs_url = "/v1.0/chats/" + group + "/messages";
  int pages = 0;
  auto msgs = walk(emu, msgs_url + "?$top=5", tok, &pages);
  REQUIRE(msgs.size() == 12);
  REQUIRE(pages == 3);
  for (std::size_t i = 1; i < msgs.size(); ++i)
    REQUIRE(msgs[i - 1]["lastModifiedDateTime"].get<std::string>() >= msgs[i]["lastModifiedDateTime"].get<std::string>());
  REQUIRE(msgs.back()["messageType"] == "unknownFutureValue");
  REQUIRE(msgs.back()["from"].is_null());
  REQUIRE(msgs.back()["eventDetail"]["@odata.type"] == "#microsoft.graph.chatRenamedEventMessageDetail");
  auto with_enums = emu.graph(msgs_url + "/" + msgs.back()["id"].get<std::string>(), tok,
                              {{"Prefer", "include-unknown-enum-members"}});
  REQUIRE(with_enums.status == 200);
  REQUIRE(json::parse(with_enums.body)["messageType"] == "systemEventMessage");
  REQUIRE(with_enums.header("preference-applied") == "include-unknown-enum-members");
  for (auto& m : msgs) REQUIRE(m["chatId"] == group);

  // Bad options are refused with a clear 400.
  REQUIRE(emu.graph(msgs_url + "?$top=51", tok).status == 400);
  REQUIRE(emu.graph(msgs_url + "?$orderby=createdDateTime%20asc", tok).status == 400);
  REQUIRE(emu.graph(msgs_url + "?$filter=createdDateTime%20gt%202026-01-01T00:00:00Z", tok).status == 400);
  REQUIRE(emu.graph(msgs_url + "?$orderby=createdDateTime%20desc&$filter=createdDateTime%20gt%202026-01-01T00:00:00Z", tok)
              .status == 400);
  auto by_created = walk(emu, msgs_url + "?$orderby=createdDateTime%20desc&$top=50", tok);
  REQUIRE(by_created.size() == 12);

  // Hosted contents of chat messages (inline images), over all chats.
  int images = 0;
  for (auto& [id, c] : chats) {
    for (auto& m : walk(emu, "/v1.0/chats/" + id + "/messages?$top=50", tok)) {
      const std::string base = "/v1.0/chats/" + id + "/messages/" + m["id"].get<std::string>();
      auto hosted = emu.graph_json(base + "/hostedContents", tok)["value"];
      for (auto& h : hosted) {
        ++images;
        auto png = emu.graph(base + "/hostedContents/" + h["id"].get<std::string>() + "/$value", tok);
        REQUIRE(png.status == 200);
        REQUIRE(png.body.substr(1, 3) == "PNG");
        REQUIRE(m["body"]["content"].get<std::string>().find(h["id"].get<std::string>()) != std::string::npos);
      }
    }
  }
  REQUIRE(images > 0);

  // Manifest: one row per message, owner = the chat, hashes recomputable from Graph's
  // JSON (with system events under their real type).
  auto manifest = emu.admin("GET", "/_emulator/tenants/" + t.tenant + "/manifest?category=chats")["items"];
  REQUIRE(manifest.size() == 9 * 12);
  for (auto& row : manifest) {
    if (row["chat_id"] != group) continue;
    REQUIRE(row["owner"] == group);
    auto got = emu.graph_json(msgs_url + "/" + row["id"].get<std::string>(), tok, {{"Prefer", "include-unknown-enum-members"}});
    REQUIRE(hex_digest(EVP_sha256(), canonical(got)) == row["sha256"]);
  }
  const std::string some_user = users[0]["id"];
  auto mine = emu.admin("GET", "/_emulator/tenants/" + t.tenant + "/manifest?category=chats&owner=" + some_user)["items"];
  REQUIRE(!mine.empty());
  for (auto& row : mine) REQUIRE(seen_by[row["owner"].get<std::string>()].count(some_user) == 1);

  // getAllMessages: every message of the user's chats.
  auto all = walk(emu, "/v1.0/users/" + some_user + "/chats/getAllMessages?$top=7", tok);
  REQUIRE(all.size() == mine.size());

  // Activity: an incremental pass with $filter=lastModifiedDateTime gt <last seen>
  // finds exactly the created, edited and deleted messages of each chat.
  std::map<std::string, std::string> high;
  for (auto& [id, c] : chats) high[id] = max_modified(walk(emu, "/v1.0/chats/" + id + "/messages?$top=50", tok));
  auto act = emu.admin("POST", "/_emulator/tenants/" + t.tenant + "/activity",
                       {{"seed", 5}, {"categories", {"chats"}}, {"creates", 4}, {"updates", 4}, {"deletes", 3}});
  std::map<std::string, std::set<std::string>> changed;
  for (auto kind : {"created", "updated", "deleted"})
    for (auto& e : act[kind]) changed[e["chat"]].insert(e["id"].get<std::string>());
  REQUIRE(!changed.empty());
  for (auto& [id, c] : chats) {
    auto inc = walk(emu, "/v1.0/chats/" + id + "/messages?$top=50&$filter=lastModifiedDateTime%20gt%20" + high[id], tok);
    std::set<std::string> got;
    for (auto& m : inc) got.insert(m["id"].get<std::string>());
    REQUIRE(got == changed[id]);
  }
  for (auto& d : act["deleted"]) {
    auto m = emu.graph_json("/v1.0/chats/" + d["chat"].get<std::string>() + "/messages/" + d["id"].get<std::string>(), tok);
    REQUIRE(m["deletedDateTime"].is_string());
    REQUIRE(m["body"]["content"] == "");
  }
  for (auto& u : act["updated"]) {
    auto m = emu.graph_json("/v1.0/chats/" + u["chat"].get<std::string>() + "/messages/" + u["id"].get<std::string>(), tok);
    if (m["deletedDateTime"].is_null()) REQUIRE(m["lastEditedDateTime"].is_string());
  }
  // Activity survives a restart (journaled with its time).
  auto before = emu.admin("GET", "/_emulator/tenants/" + t.tenant + "/manifest?category=chats")["items"];
  emu.restart();
  auto after = emu.admin("GET", "/_emulator/tenants/" + t.tenant + "/manifest?category=chats")["items"];
  // Inline image URLs carry the emulator's address, which a restart changes: compare the rest.
  for (auto* rows : {&before, &after})
    for (auto& row : *rows) {
      row.erase("sha256");
      row.erase("size");
    }
  REQUIRE(before == after);
  tok = emu.token(t.tenant, t.client, t.secret);
  for (auto& u : act["updated"]) {
    auto m = emu.graph_json("/v1.0/chats/" + u["chat"].get<std::string>() + "/messages/" + u["id"].get<std::string>(), tok);
    REQUIRE((m["lastEditedDateTime"].is_string() || m["deletedDateTime"].is_string()));
  }

  // chat_ops: a deleted chat answers 404 and leaves every member's list and the
  // manifest; a member who leaves no longer lists the chat, the others still do.
  auto group_chat = [&](const char* type) {
    for (auto& [id, c] : chats)
      if (c["chatType"] == type) return id;
    FAIL("no " << type << " chat");
    return std::string();
  };
  const std::string gone = group_chat("meeting"), left = group_chat("group");
  const std::string leaver = chats[left]["members"][1]["userId"];
  auto ops = emu.admin("POST", "/_emulator/tenants/" + t.tenant + "/activity",
                       {{"chat_ops", {{{"op", "delete"}, {"chat", gone}}, {{"op", "leave"}, {"chat", left}, {"user", leaver}}}}});
  REQUIRE(ops["chat_ops"].size() == 2);
  REQUIRE(ops["created"].empty());
  REQUIRE(emu.graph("/v1.0/chats/" + gone, tok).status == 404);
  REQUIRE(emu.graph("/v1.0/chats/" + gone + "/messages", tok).status == 404);
  auto listed_by = [&](const std::string& uid) {
    std::set<std::string> ids;
    for (auto& c : walk(emu, "/v1.0/users/" + uid + "/chats?$expand=members", tok)) ids.insert(c["id"].get<std::string>());
    return ids;
  };
  for (auto& uid : seen_by[gone]) REQUIRE(listed_by(uid).count(gone) == 0);
  REQUIRE(listed_by(leaver).count(left) == 0);
  for (auto& uid : seen_by[left])
    if (uid != leaver) REQUIRE(listed_by(uid).count(left) == 1);
  auto still = emu.graph_json("/v1.0/chats/" + left + "?$expand=members", tok);
  REQUIRE(still["members"].size() == chats[left]["members"].size() - 1);
  for (auto& m : still["members"]) REQUIRE(m["userId"] != leaver);
  std::set<std::string> in_manifest;
  const auto manifest_now = emu.admin("GET", "/_emulator/tenants/" + t.tenant + "/manifest?category=chats");
  for (auto& row : manifest_now["items"]) in_manifest.insert(row["owner"].get<std::string>());
  REQUIRE(in_manifest.count(gone) == 0);
  REQUIRE(in_manifest.count(left) == 1);
  auto bad = emu.call("POST", "/_emulator/tenants/" + t.tenant + "/activity", {{"Content-Type", "application/json"}},
                      json{{"chat_ops", {{{"op", "leave"}, {"chat", left}, {"user", leaver}}}}}.dump());
  REQUIRE(bad.status == 400);
  REQUIRE(bad.body.find("is not a member of chat") != std::string::npos);
  emu.restart();  // journaled
  tok = emu.token(t.tenant, t.client, t.secret);
  REQUIRE(emu.graph("/v1.0/chats/" + gone, tok).status == 404);
  REQUIRE(listed_by(leaver).count(left) == 0);
}

TEST_CASE("teams: joinedTeams and team members follow group membership", "[graph]") {
  EmulatorProcess emu;
  emu.admin("PUT", "/_emulator/faults", kNoTeamsLimits);
  auto t = make_tenant(emu, 82, 8, 1, {{"teams", 2}, {"sites", 0}});
  auto tok = emu.token(t.tenant, t.client, t.secret);
  std::map<std::string, std::set<std::string>> members_of;  // team → user ids
  auto groups = emu.graph_json("/v1.0/groups", tok)["value"];
  for (auto& g : groups) {
    bool team = false;
    for (auto& o : g["resourceProvisioningOptions"]) team |= o == "Team";
    if (!team) continue;
    auto members = emu.graph_json("/v1.0/teams/" + g["id"].get<std::string>() + "/members", tok)["value"];
    REQUIRE(!members.empty());
    REQUIRE(members[0]["roles"] == json::array({"owner"}));
    for (auto& m : members) members_of[g["id"]].insert(m["userId"].get<std::string>());
  }
  REQUIRE(members_of.size() == 2);
  std::size_t memberships = 0;
  auto users = emu.graph_json("/v1.0/users", tok)["value"];
  for (auto& u : users) {
    auto joined = emu.graph_json("/v1.0/users/" + u["id"].get<std::string>() + "/joinedTeams", tok)["value"];
    for (auto& team : joined) {
      REQUIRE(members_of[team["id"]].count(u["id"].get<std::string>()) == 1);
      ++memberships;
    }
  }
  std::size_t expected = 0;
  for (auto& [id, m] : members_of) expected += m.size();
  REQUIRE(memberships == expected);
  REQUIRE(expected > 0);
}

TEST_CASE("teams: per-app rate limits answer 429 with Retry-After, per kind and per channel", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 83, 6, 1, {{"teams", 1}, {"chats", 3}, {"sites", 0}});
  auto tok = emu.token(t.tenant, t.client, t.secret);
  REQUIRE(emu.call("PUT", "/_emulator/faults", {{"Content-Type", "application/json"}},
                   json{{"teams_rps", {{"chat_mesage", 2}}}}.dump())
              .status == 400);
  const std::string uid = emu.graph_json("/v1.0/users", tok)["value"][0]["id"];
  auto chats = emu.graph_json("/v1.0/users/" + uid + "/chats", tok)["value"];
  REQUIRE(!chats.empty());
  const std::string url = "/v1.0/chats/" + chats[0]["id"].get<std::string>() + "/messages";

  // Two chat-message GETs per second for this app in this tenant.
  emu.admin("PUT", "/_emulator/faults", {{"teams_rps", {{"chat_message", 2}}}});
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // a fresh window
  int ok = 0, throttled = 0;
  for (int i = 0; i < 6; ++i) {
    auto r = emu.graph(url, tok);
    if (r.status == 200) ++ok;
    if (r.status == 429) {
      ++throttled;
      REQUIRE(json::parse(r.body)["error"]["code"] == "TooManyRequests");
      auto after = std::stod(r.header("retry-after"));
      REQUIRE(after >= 0);
      REQUIRE(after <= 1);
    }
  }
  REQUIRE(ok >= 2);
  REQUIRE(throttled >= 1);
  REQUIRE(ok + throttled == 6);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  REQUIRE(emu.graph(url, tok).status == 200);  // the next window admits again

  // At most N per second on one channel, whatever the kind.
  emu.admin("PUT", "/_emulator/faults", {{"teams_rps", {{"per_team_or_channel", 1}}}});
  std::string team;
  auto groups = emu.graph_json("/v1.0/groups", tok)["value"];
  for (auto& g : groups)
    for (auto& o : g["resourceProvisioningOptions"])
      if (o == "Team") team = g["id"];
  REQUIRE(!team.empty());
  auto channels = emu.graph_json("/v1.0/teams/" + team + "/channels", tok)["value"];
  REQUIRE(channels.size() >= 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const std::string ch0 = "/v1.0/teams/" + team + "/channels/" + channels[0]["id"].get<std::string>();
  const std::string ch1 = "/v1.0/teams/" + team + "/channels/" + channels[1]["id"].get<std::string>();
  auto a = emu.graph(ch0 + "/messages", tok);
  auto b = emu.graph(ch0 + "/messages/delta", tok);
  auto other = emu.graph(ch1 + "/messages", tok);  // another channel has its own budget
  // Two in the same second on channel 0: one passes, one does not (unless a window
  // boundary fell between them, which the retry below tolerates once).
  if (a.status == 200 && b.status == 200) {
    a = emu.graph(ch0 + "/messages", tok);
    b = emu.graph(ch0 + "/messages", tok);
  }
  REQUIRE((a.status == 429 || b.status == 429));
  REQUIRE(other.status == 200);
  emu.admin("PUT", "/_emulator/faults", json::object());
}

TEST_CASE("teams: channel delta covers the last 8 months, older posts only in the full listing", "[graph]") {
  EmulatorProcess emu;
  emu.admin("PUT", "/_emulator/faults", kNoTeamsLimits);
  auto t = make_tenant(emu, 84, 6, 1, {{"teams", 1}, {"channels_per_team", 1}, {"messages_per_channel", 12}, {"sites", 0}});
  REQUIRE(t.spec["old_messages_per_channel"] == 3);
  auto tok = emu.token(t.tenant, t.client, t.secret);
  std::string team;
  auto groups = emu.graph_json("/v1.0/groups", tok)["value"];
  for (auto& g : groups)
    for (auto& o : g["resourceProvisioningOptions"])
      if (o == "Team") team = g["id"];
  REQUIRE(!team.empty());
  const std::string ch = emu.graph_json("/v1.0/teams/" + team + "/channels", tok)["value"][0]["id"];
  const std::string base = "/v1.0/teams/" + team + "/channels/" + ch + "/messages";
  auto listed = walk(emu, base + "?$top=50", tok);
  auto first = walk_delta(emu, base + "/delta?$top=50", tok);
  REQUIRE(listed.size() == 12);
  REQUIRE(first.items.size() == 9);
  std::set<std::string> in_delta;
  for (auto& m : first.items) in_delta.insert(m["id"].get<std::string>());
  // What delta leaves out is exactly what was last modified more than 243 days ago.
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  for (auto& m : listed) {
    const bool old = std::stoll(m["id"].get<std::string>()) / 1000 < now_s - 243LL * 86400;
    REQUIRE(old == (in_delta.count(m["id"].get<std::string>()) == 0));
  }
  // An edit brings an old post back into the window: the next delta round has it.
  bool edited_old = false;
  for (int seed = 1; seed < 40 && !edited_old; ++seed) {
    auto act = emu.admin("POST", "/_emulator/tenants/" + t.tenant + "/activity",
                         {{"seed", seed}, {"categories", {"teams"}}, {"updates", 1}});
    for (auto& u : act["updated"]) edited_old |= !in_delta.count(u["id"].get<std::string>());
  }
  REQUIRE(edited_old);
  auto second = walk_delta(emu, first.delta_link, tok);
  bool back = false;
  for (auto& m : second.items) back |= !in_delta.count(m["id"].get<std::string>());
  REQUIRE(back);
  // Moving the emulated clock a year ahead empties the window of a fresh delta.
  emu.admin("PUT", "/_emulator/faults", {{"clock_offset_s", 365 * 86400}, {"token_lifetime_s", 100000000},
                                         {"teams_rps", kNoTeamsLimits["teams_rps"]}});
  tok = emu.token(t.tenant, t.client, t.secret);
  REQUIRE(walk_delta(emu, base + "/delta", tok).items.empty());
  REQUIRE(walk(emu, base, tok).size() == 12);
}
