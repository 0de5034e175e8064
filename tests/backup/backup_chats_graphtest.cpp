// Teams chats through the backup pipeline, against the real emulator over HTTPS
// (its Teams per-app limits on), a real PostgreSQL and a real repository: the
// index must equal the emulator's chats manifest (canonical-JSON SHA-256 of each
// message, recomputed from what we stored), each chat stored once however many
// users are in it, and an incremental run must list only what changed since the
// last run, add versions for edits and close deleted messages.
#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "backup_support.hpp"

using namespace m365vault;
using namespace m365vault::test;

namespace {

// 6 users and 9 chats (3 one-on-one, 3 group, 3 meeting); 60 messages a chat
// make the 50-message pages turn.
json chats_tenant() {
  return {{"users", 6},           {"messages_per_user", 1},    {"mail_folders_per_user", 1}, {"contacts_per_user", 1},
          {"events_per_user", 1}, {"drive_files_per_user", 1}, {"sites", 0},                 {"teams", 1},
          {"channels_per_team", 1}, {"messages_per_channel", 3}, {"chats", 9},               {"messages_per_chat", 60}};
}

backup::BackupParams teams_only() {
  backup::BackupParams p;
  p.categories = {storage::Category::teams};
  return p;
}

void require_chats_match(BackupStack& s) {
  check_same_hashes(keyed_manifest(s.emulator(), s.tenant().tenant, "chats"),
                    indexed_canonical(s.reader(), "message", "chat"), "chats");
}

// A Teams run that must succeed and leave the index equal to the chats manifest;
// the emulator's statistics of that run alone.
json checked_run(BackupStack& s, BackupStack::Result& r) {
  s.emulator().admin("DELETE", "/_emulator/stats", nullptr, 204);
  r = s.run(teams_only());
  auto stats = s.emulator().admin("GET", "/_emulator/stats");
  INFO(r.error.value_or("") << " " << stats.dump());
  REQUIRE(r.state == scheduler::RunState::succeeded);
  require_chats_match(s);
  check_index_consistent(s.reader());
  return stats;
}

}  // namespace

TEST_CASE("chats: a full backup equals the chats manifest and a chat of several members is stored once",
          "[graph][pg]") {
  BackupStack s(chats_tenant());
  auto& emu = s.emulator();
  BackupStack::Result r;
  auto stats = checked_run(s, r);

  auto manifest = emu.admin("GET", "/_emulator/tenants/" + s.tenant().tenant + "/manifest?category=chats");
  std::map<std::string, std::set<std::string>> members;  // chat -> member user ids
  for (auto& it : manifest["items"])
    for (auto& m : it["members"]) members[it["chat_id"].get<std::string>()].insert(m.get<std::string>());
  REQUIRE(members.size() == 9);
  // Each chat is one owner of kind chat with one snapshot, whatever the number of
  // members whose listing found it; the channel's team is the other owner.
  CHECK(s.count("SELECT count(*) FROM owners WHERE kind = 'chat'") == 9);
  CHECK(s.count("SELECT count(DISTINCT graph_id) FROM owners WHERE kind = 'chat'") == 9);
  CHECK(s.count("SELECT count(*) FROM snapshots sn JOIN owners o ON o.id = sn.owner_id"
                 " WHERE o.kind = 'chat' AND sn.category = 'teams' AND sn.state = 'complete'") == 9);
  CHECK(r.summary.owners == 10);
  std::string shared;
  for (auto& [chat, users] : members)
    if (users.size() >= 3) shared = chat;
  REQUIRE_FALSE(shared.empty());
  CHECK(s.count("SELECT count(*) FROM owners WHERE graph_id = $1", {shared}) == 1);
  // Every member listed their chats, and each chat's messages were listed once:
  // 60 messages, two pages of 50. The emulator enforces Teams' per-app limits and
  // counts refused requests too: the client paces ahead of them, so 429s are at
  // most a few (a stalled process can still send a late burst), each retried.
  const long long refused = stats["status"].value("429", 0LL);
  const long long requests = route_requests(stats, "");
  CHECK(refused * 20 <= requests);
  CHECK(route_requests(stats, "GET /v1.0/users/{id}/chats") >= 6);
  CHECK(route_requests(stats, "GET /v1.0/users/{id}/chats") <= 6 + refused);
  CHECK(route_requests(stats, "GET /v1.0/chats/{id}/messages") >= 18);
  CHECK(route_requests(stats, "GET /v1.0/chats/{id}/messages") <= 18 + refused);
  CHECK(route_requests(stats, "GET /v1.0/chats/{id}/messages/{id}") == 0);

  // The chat itself (type, topic, members) is the item of its container.
  CHECK(s.count("SELECT count(*) FROM containers k JOIN owners o ON o.id = k.owner_id WHERE o.kind = 'chat'") == 9);
  auto info = s.query("SELECT v.meta FROM item_versions v JOIN items i ON i.id = v.item_id JOIN owners o"
                      " ON o.id = i.owner_id WHERE i.kind = 'chat' AND o.graph_id = $1 AND v.to_at IS NULL",
                      {shared});
  REQUIRE(info.size() == 1);
  auto chat = json::parse(info[0][0]);
  CHECK(chat["members"].size() == members[shared].size());
  CHECK(chat["chatType"] != "oneOnOne");
  // System events are stored as what they are, not unknownFutureValue.
  CHECK(s.count("SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id"
                 " WHERE i.kind = 'message' AND v.meta->>'messageType' = 'systemEventMessage'") == 6);
  CHECK(s.count("SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id"
                 " WHERE v.meta->>'messageType' = 'unknownFutureValue'") == 0);
  // Searchable metadata: sender and text of every chat message but the system events.
  CHECK(s.count("SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id JOIN owners o"
                 " ON o.id = i.owner_id WHERE o.kind = 'chat' AND i.kind = 'message'"
                 " AND v.meta->>'messageType' = 'message'"
                 " AND (v.sender IS NULL OR v.body_preview IS NULL OR v.body_preview LIKE '%<p>%' OR v.sent_at IS NULL)") ==
        0);
  // Inline images: one hosted_content item per reference, each read once.
  long long refs = 0;
  for (auto& row : s.query("SELECT o.graph_id, i.graph_id FROM item_versions v JOIN items i ON i.id = v.item_id"
                           " JOIN owners o ON o.id = i.owner_id WHERE o.kind = 'chat' AND i.kind = 'message'"
                           " AND v.to_at IS NULL")) {
    auto body = json::parse(s.content(row[0], row[1]))["body"]["content"].get<std::string>();
    for (auto at = body.find("/hostedContents/"); at != std::string::npos; at = body.find("/hostedContents/", at + 1))
      ++refs;
  }
  REQUIRE(refs > 0);
  CHECK(s.count("SELECT count(*) FROM items i JOIN owners o ON o.id = i.owner_id"
                 " WHERE o.kind = 'chat' AND i.kind = 'hosted_content'") == refs);
  CHECK(route_requests(stats, "GET /v1.0/chats/{id}/messages/{id}/hostedContents/{id}/$value") >= refs);
  CHECK(route_requests(stats, "GET /v1.0/chats/{id}/messages/{id}/hostedContents/{id}/$value") <= refs + refused);
}

TEST_CASE("chats: an incremental run lists only the changes, edits add versions, deletions close validity",
          "[graph][pg]") {
  BackupStack s(chats_tenant());
  auto& emu = s.emulator();
  REQUIRE(s.run(teams_only()).state == scheduler::RunState::succeeded);
  const long long versions_before = s.count("SELECT count(*) FROM item_versions");
  auto act = emu.admin("POST", "/_emulator/tenants/" + s.tenant().tenant + "/activity",
                       {{"seed", 11}, {"categories", {"chats"}}, {"creates", 6}, {"updates", 5}, {"deletes", 4}});
  INFO(act.dump());
  REQUIRE(act["deleted"].size() == 4);
  REQUIRE(act["updated"].size() == 5);
  auto before = s.query("SELECT now()")[0][0];
  BackupStack::Result r;
  auto stats = checked_run(s, r);
  // One filtered page per chat: only what changed since the last run (and the
  // few minutes of overlap) is listed, nothing is read one by one.
  const long long refused = stats["status"].value("429", 0LL);
  CHECK(route_requests(stats, "GET /v1.0/chats/{id}/messages") >= 9);
  CHECK(route_requests(stats, "GET /v1.0/chats/{id}/messages") <= 9 + refused);
  CHECK(route_requests(stats, "GET /v1.0/chats/{id}/messages/{id}") == 0);
  // A message created and deleted by the same activity was never stored; one
  // created and edited by it is one new version.
  auto key = [](const json& e) { return e["chat"].get<std::string>() + "/" + e["id"].get<std::string>(); };
  std::set<std::string> created, deleted;
  for (auto& c : act["created"]) created.insert(key(c));
  for (auto& d : act["deleted"]) deleted.insert(key(d));
  long long born = 0, died = 0;
  for (auto& c : created) born += deleted.count(c) ? 0 : 1;
  for (auto& d : deleted) died += created.count(d) ? 0 : 1;
  CHECK(r.summary.items_new >= born);
  CHECK(r.summary.items_new <= 2 * born);  // the new messages, and at most an image each
  CHECK(r.summary.items_deleted >= died);
  // Edits are new versions; the first version stays.
  for (auto& u : act["updated"]) {
    const std::string gid = key(u);
    if (created.count(gid) || deleted.count(gid)) continue;
    CHECK(s.count("SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id WHERE i.graph_id = $1",
                  {gid}) >= 2);
  }
  // Deleted messages are closed, and still there at an instant before the run.
  for (auto& gid : deleted) {
    if (created.count(gid)) continue;
    CHECK(s.count("SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id"
                  " WHERE i.graph_id = $1 AND v.to_at IS NULL",
                  {gid}) == 0);
    CHECK(s.count("SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id"
                  " WHERE i.graph_id = $1 AND v.from_at <= $2::timestamptz AND (v.to_at IS NULL OR v.to_at > $2::timestamptz)",
                  {gid, before}) == 1);
  }
  CHECK(s.count("SELECT count(*) FROM item_versions") > versions_before);

  // A quiet run lists the overlap again and changes nothing.
  const long long versions_after = s.count("SELECT count(*) FROM item_versions");
  auto q = s.run(teams_only());
  REQUIRE(q.state == scheduler::RunState::succeeded);
  CHECK(q.summary.items_new == 0);
  CHECK(q.summary.items_changed == 0);
  CHECK(q.summary.items_deleted == 0);
  CHECK(s.count("SELECT count(*) FROM item_versions") == versions_after);
  require_chats_match(s);
}

TEST_CASE("chats: a chat no member lists any more closes after a complete listing only, its versions kept",
          "[graph][pg]") {
  BackupStack s(chats_tenant());
  auto& emu = s.emulator();
  BackupStack::Result r;
  checked_run(s, r);
  // A meeting chat is deleted, every member of a 1:1 chat leaves it, and one member
  // of a group chat leaves it (the others still list it).
  std::map<std::string, std::vector<std::string>> members;  // chat id -> member user ids
  const auto manifest = emu.admin("GET", "/_emulator/tenants/" + s.tenant().tenant + "/manifest?category=chats");
  for (auto& row : manifest["items"]) members[row["chat_id"]] = row["members"].get<std::vector<std::string>>();
  std::string deleted, deserted, group;
  for (auto& [id, m] : members) {
    if (id.starts_with("19:meeting_")) deleted = id;
    else if (id.ends_with("@unq.gbl.spaces")) deserted = id;
    else group = id;
  }
  REQUIRE(!deleted.empty());
  REQUIRE(!deserted.empty());
  REQUIRE(!group.empty());
  const std::string leaver = members[group][1];
  json ops = {{{"op", "delete"}, {"chat", deleted}}, {{"op", "leave"}, {"chat", group}, {"user", leaver}}};
  for (auto& u : members[deserted]) ops.push_back({{"op", "leave"}, {"chat", deserted}, {"user", u}});
  emu.admin("POST", "/_emulator/tenants/" + s.tenant().tenant + "/activity", {{"chat_ops", ops}});
  auto open_of = [&](const std::string& chat) {
    return s.count("SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id JOIN owners o ON o.id = i.owner_id"
                   " WHERE o.graph_id = $1 AND v.to_at IS NULL",
                   {chat});
  };
  const long long deleted_open = open_of(deleted), deserted_open = open_of(deserted);
  REQUIRE(deleted_open > 0);
  REQUIRE(deserted_open > 0);

  // A partial listing proves nothing: one member of the deleted chat cannot list
  // their chats, so the run is partial and both chats stay as they were.
  emu.admin("PUT", "/_emulator/faults", {{"fail_paths", {{"/users/" + members[deleted][0] + "/chats", 500}}}});
  backup::BackupOptions quick;
  quick.graph.max_attempts = 2;
  auto partial = s.run(teams_only(), quick);
  INFO(partial.error.value_or(""));
  CHECK(partial.state == scheduler::RunState::partial);
  CHECK(partial.summary.owners_failed == 1);
  CHECK(open_of(deleted) == deleted_open);
  CHECK(open_of(deserted) == deserted_open);
  emu.admin("PUT", "/_emulator/faults", json::object());
  // A run narrowed to some users proves nothing either: a member it did not list may still have the chat.
  auto narrowed = teams_only();
  narrowed.owners = {members[deleted][1]};
  auto n = s.run(narrowed);
  INFO(n.error.value_or(""));
  CHECK(n.state == scheduler::RunState::succeeded);
  CHECK(open_of(deleted) == deleted_open);
  CHECK(open_of(deserted) == deserted_open);

  // A run over the whole tenant whose every listing completed closes both; the
  // group chat stays, without the member who left.
  auto before = s.query("SELECT now()")[0][0];
  auto full = checked_run(s, r);
  CHECK(open_of(deleted) == 0);
  CHECK(open_of(deserted) == 0);
  for (auto& chat : {deleted, deserted}) {
    INFO(chat);
    // Nothing lost: every version is kept, and an instant before the run still shows the chat whole.
    CHECK(s.count("SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id JOIN owners o ON o.id = i.owner_id"
                  " WHERE o.graph_id = $1 AND v.from_at <= $2::timestamptz AND v.to_at > $2::timestamptz",
                  {chat, before}) == (chat == deleted ? deleted_open : deserted_open));
    CHECK(s.query("SELECT state FROM owners WHERE graph_id = $1 AND kind = 'chat'", {chat})[0][0] == "deleted");
  }
  auto info = s.query("SELECT v.meta FROM item_versions v JOIN items i ON i.id = v.item_id"
                      " WHERE i.kind = 'chat' AND i.graph_id = $1 AND v.to_at IS NULL",
                      {group});
  REQUIRE(info.size() == 1);
  auto now_members = json::parse(info[0][0])["members"];
  CHECK(now_members.size() == members[group].size() - 1);
  for (auto& m : now_members) CHECK(m["userId"] != leaver);
  CHECK(route_requests(full, "GET /v1.0/chats/{id}/messages") > 0);
  // A quiet run closes nothing more and does not touch the closed chats.
  auto q = s.run(teams_only());
  REQUIRE(q.state == scheduler::RunState::succeeded);
  CHECK(q.summary.items_new == 0);
  CHECK(q.summary.items_changed == 0);
  CHECK(q.summary.items_deleted == 0);
}

TEST_CASE("chats: a selection may name a chat by id or name, a chat id is never reported as a missing user",
          "[graph][pg]") {
  BackupStack s(chats_tenant());
  auto& emu = s.emulator();
  auto manifest = emu.admin("GET", "/_emulator/tenants/" + s.tenant().tenant + "/manifest?category=chats")["items"];
  REQUIRE(!manifest.empty());
  const std::string chat = manifest[0]["chat_id"];
  // Before any run: the chat is read by id and backed up alone.
  auto one = teams_only();
  one.owners = {chat};
  auto r = s.run(one);
  INFO(r.error.value_or(""));
  REQUIRE(r.state == scheduler::RunState::succeeded);
  CHECK(r.summary.owners == 1);
  CHECK(r.summary.owners_failed == 0);
  CHECK(s.count("SELECT count(*) FROM owners WHERE kind = 'chat'") == 1);
  ItemHashes want;
  for (auto& [k, v] : keyed_manifest(emu, s.tenant().tenant, "chats"))
    if (k.first == chat) want[k] = v;
  check_same_hashes(want, indexed_canonical(s.reader(), "message", "chat"), "chats");
  // By its name once known.
  auto name = s.query("SELECT display_name FROM owners WHERE kind = 'chat'")[0][0];
  one.owners = {name};
  auto byname = s.run(one);
  INFO(byname.error.value_or(""));
  CHECK(byname.state == scheduler::RunState::succeeded);
  CHECK(byname.summary.owners == 1);
  // A chat Graph does not know, and a chat id in a run without category teams: named as chats.
  one.owners = {"19:00000000000000000000000000000000@thread.v2"};
  auto unknown = s.run(one);
  REQUIRE(unknown.summary.problems.size() == 1);
  CHECK(unknown.summary.problems[0].find("chat '19:00000000000000000000000000000000@thread.v2' not backed up") == 0);
  backup::BackupParams mail;
  mail.categories = {storage::Category::mail};
  mail.owners = {chat};
  auto m = s.run(mail);
  REQUIRE(m.summary.problems.size() == 1);
  CHECK(m.summary.problems[0] == "'" + chat + "' is a Teams chat: chats are backed up with category teams (--category teams)");
}
