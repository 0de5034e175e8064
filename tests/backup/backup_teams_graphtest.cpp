// Teams channels and SharePoint lists through the backup pipeline, against the
// real emulator over HTTPS, a real PostgreSQL and a real repository: the index
// must equal the emulator's manifests (canonical-JSON SHA-256 of channel messages
// and of list items' fields, recomputed from what we stored), an incremental run
// must fetch only changes and close deleted items' validity, a quiet run must
// change nothing, and groups and teams must be discovered as owners.
#include <catch2/catch.hpp>

#include <functional>
#include <map>
#include <set>

#include "backup_support.hpp"
#include "m365vault/storage/crypto.hpp"

using namespace m365vault;
using namespace m365vault::test;

namespace {

// 8 users give 3 groups (users / 4 + 1), the first 2 with a team; 55 posts a
// channel make the 50-message pages turn.
json teams_tenant() {
  return {{"users", 8},          {"messages_per_user", 1}, {"mail_folders_per_user", 1}, {"contacts_per_user", 1},
          {"events_per_user", 1}, {"drive_files_per_user", 1}, {"sites", 2},           {"files_per_site", 6},
          {"teams", 2},          {"channels_per_team", 3},  {"messages_per_channel", 55}};
}

backup::BackupParams only(storage::Category c) {
  backup::BackupParams p;
  p.categories = {c};
  return p;
}

void require_match(BackupStack& s, const std::string& category, const std::string& kind) {
  check_same_hashes(keyed_manifest(s.emulator(), s.tenant().tenant, category), indexed_canonical(s.reader(), kind),
                    category);
}

// Versions per item of a category: (owner graph id, item graph id) -> count.
std::map<std::pair<std::string, std::string>, long long> versions_per_item(BackupStack& s, const std::string& category) {
  std::map<std::pair<std::string, std::string>, long long> out;
  for (auto& row : s.query("SELECT o.graph_id, i.graph_id, count(*) FROM item_versions v JOIN items i ON i.id = v.item_id"
                           " JOIN owners o ON o.id = i.owner_id WHERE v.category = $1 GROUP BY 1, 2",
                           {category}))
    out[{row[0], row[1]}] = std::stoll(row[2]);
  return out;
}

// Open versions of an item and the items under it ({key}/...).
long long open_under(BackupStack& s, const std::string& owner, const std::string& key) {
  return s.count("SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id JOIN owners o ON o.id = i.owner_id"
                 " WHERE o.graph_id = $1 AND (i.graph_id = $2 OR starts_with(i.graph_id, $2 || '/')) AND v.to_at IS NULL",
                 {owner, key});
}

// After a run that re-enumerated: an item stored before has a new version only when
// the activity changed it (`changed`), and no more than one; nothing else moved.
void check_no_extra_versions(const std::map<std::pair<std::string, std::string>, long long>& before,
                             const std::map<std::pair<std::string, std::string>, long long>& after,
                             const std::set<std::pair<std::string, std::string>>& changed) {
  long long extra = 0;
  for (auto& [key, n] : before) {
    auto a = after.find(key);
    REQUIRE(a != after.end());
    const long long want = n + (changed.count(key) ? 1 : 0);
    if (a->second != want) {
      UNSCOPED_INFO(key.first << " " << key.second << ": " << n << " version(s) before, " << a->second << " after");
      ++extra;
    }
  }
  CHECK(extra == 0);
}

// What activity rounds did, each item keyed as the catalog keys it: (owner graph id,
// "<container graph id>/<item id>"), the container named by `container_of(event)`.
struct ActivityKeys {
  std::set<std::pair<std::string, std::string>> created, updated, deleted;
  // What a run must store as exactly one new version: updated, and neither created
  // (never stored before) nor deleted since.
  std::set<std::pair<std::string, std::string>> changed() const {
    std::set<std::pair<std::string, std::string>> out;
    for (auto& k : updated)
      if (!deleted.count(k) && !created.count(k)) out.insert(k);
    return out;
  }
};

ActivityKeys activity_keys(std::initializer_list<const json*> rounds,
                           const std::function<std::string(const json&)>& container_of) {
  ActivityKeys k;
  for (auto* act : rounds)
    for (auto [kind, into] : {std::pair{"created", &k.created}, std::pair{"updated", &k.updated},
                              std::pair{"deleted", &k.deleted}})
      for (auto& e : (*act)[kind])
        into->insert({e["owner"].get<std::string>(), container_of(e) + "/" + e["id"].get<std::string>()});
  return k;
}

// A run of `category` whose selection names the first owner of `kind` by display
// name: it succeeds with no problem (no "no user" failure for a non-user name).
struct SelectedRun {
  backup::BackupParams params;
  backup::BackupSummary summary;
};
SelectedRun run_selecting_by_name(BackupStack& s, const std::string& kind, storage::Category category) {
  auto name = s.query("SELECT display_name FROM owners WHERE kind = $1 ORDER BY display_name LIMIT 1", {kind})[0][0];
  SelectedRun out{only(category), {}};
  out.params.owners = {name};
  auto r = s.run(out.params);
  INFO(kind << " '" << name << "': " << r.error.value_or(""));
  CHECK(r.state == scheduler::RunState::succeeded);
  CHECK(r.summary.owners_failed == 0);
  CHECK(r.summary.problems.empty());
  out.summary = r.summary;
  return out;
}

}  // namespace

TEST_CASE("teams: groups and teams are owners, a full backup equals the channel-messages manifest", "[graph][pg]") {
  BackupStack s(teams_tenant());
  auto& emu = s.emulator();
  emu.admin("DELETE", "/_emulator/stats", nullptr, 204);
  // The request counts below are exact only without the Teams per-app limits
  // (their 429s are requests too); the other tests run under them.
  emu.admin("PUT", "/_emulator/faults",
            {{"teams_rps", {{"channel_message", 0}, {"team_channel", 0}, {"channels_list", 0}, {"other", 0},
                            {"per_team_or_channel", 0}}}});
  auto r = s.run(only(storage::Category::teams));
  auto stats = emu.admin("GET", "/_emulator/stats");
  INFO(r.error.value_or("") << " " << stats.dump());
  REQUIRE(r.state == scheduler::RunState::succeeded);
  require_match(s, "teams", "message");
  check_index_consistent(s.reader());

  CHECK(s.count("SELECT count(*) FROM owners WHERE kind = 'group'") == 3);
  CHECK(s.count("SELECT count(*) FROM owners WHERE kind = 'team'") == 2);
  CHECK(s.count("SELECT count(*) FROM owners t JOIN owners g ON g.graph_id = t.graph_id AND g.kind = 'group'"
                 " WHERE t.kind = 'team'") == 2);
  CHECK(r.summary.owners == 2);
  CHECK(s.count("SELECT count(*) FROM snapshots WHERE category = 'teams' AND state = 'complete'") == 2);
  // Channels are containers; each holds its own JSON with the membership type.
  CHECK(s.count("SELECT count(*) FROM containers WHERE category = 'teams'") == 6);
  auto kinds = s.query("SELECT DISTINCT v.meta->>'membershipType' FROM item_versions v JOIN items i ON i.id = v.item_id"
                       " WHERE i.kind = 'channel' AND v.to_at IS NULL ORDER BY 1");
  REQUIRE(kinds.size() == 3);
  CHECK(kinds[0][0] == "private");
  CHECK(kinds[1][0] == "shared");
  CHECK(kinds[2][0] == "standard");
  // The first run of a channel lists it whole (posts older than the 8-month
  // delta window are only there): 55 posts take two pages of 50; then it walks
  // its delta from scratch, which holds only the recent three quarters (the
  // emulator puts a quarter of each channel out of the window): one page.
  CHECK(route_requests(stats, "GET /v1.0/teams/{id}/channels/{id}/messages") == 12);
  CHECK(route_requests(stats, "GET /v1.0/teams/{id}/channels/{id}/messages/delta") == 6);
  CHECK(s.count("SELECT count(*) FROM delta_cursors d JOIN containers k ON k.id = d.container_id"
                 " WHERE d.category = 'teams' AND d.cursor LIKE '%$deltatoken=%'") == 6);
  // Inline images: one stored image per reference in a stored message's body,
  // each downloaded once, holding the PNG bytes.
  long long refs = 0;
  for (auto& row : s.query("SELECT o.graph_id, i.graph_id FROM item_versions v JOIN items i ON i.id = v.item_id"
                           " JOIN owners o ON o.id = i.owner_id WHERE i.kind = 'message' AND v.to_at IS NULL")) {
    auto body = json::parse(s.content(row[0], row[1]))["body"]["content"].get<std::string>();
    for (auto at = body.find("/hostedContents/"); at != std::string::npos; at = body.find("/hostedContents/", at + 1))
      ++refs;
  }
  REQUIRE(refs > 0);
  CHECK(s.count("SELECT count(*) FROM items WHERE kind = 'hosted_content'") == refs);
  CHECK(route_requests(stats, "/hostedContents/{id}/$value") == refs);
  auto img = s.query("SELECT o.graph_id, i.graph_id, v.content_type FROM item_versions v JOIN items i ON i.id = v.item_id"
                     " JOIN owners o ON o.id = i.owner_id WHERE i.kind = 'hosted_content' LIMIT 1");
  REQUIRE(img.size() == 1);
  CHECK(img[0][2] == "image/png");
  CHECK(s.content(img[0][0], img[0][1]).rfind("\x89PNG\r\n\x1a\n", 0) == 0);
  // Searchable metadata: sender, text without markup, times, the channel.
  CHECK(s.count("SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id WHERE i.kind = 'message'"
                 " AND (v.sender IS NULL OR v.body_preview IS NULL OR v.body_preview LIKE '%<p>%' OR v.sent_at IS NULL"
                 "      OR v.container_id IS NULL)") == 0);
  CHECK(s.count("SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id WHERE i.kind = 'message'"
                 " AND 'reply' = ANY(v.flags)") > 0);
}

TEST_CASE("teams: an incremental run fetches only the changes, deletions close validity, a quiet run changes nothing",
          "[graph][pg]") {
  BackupStack s(teams_tenant());
  auto& emu = s.emulator();
  REQUIRE(s.run(only(storage::Category::teams)).state == scheduler::RunState::succeeded);
  auto act = emu.admin("POST", "/_emulator/tenants/" + s.tenant().tenant + "/activity",
                       {{"seed", 9}, {"categories", {"teams"}}, {"creates", 5}, {"updates", 4}, {"deletes", 3}});
  INFO(act.dump());
  REQUIRE(act["deleted"].size() == 3);
  auto before = s.query("SELECT now()")[0][0];
  emu.admin("DELETE", "/_emulator/stats", nullptr, 204);
  auto r = s.run(only(storage::Category::teams));
  auto stats = emu.admin("GET", "/_emulator/stats");
  INFO(r.error.value_or("") << " " << stats.dump());
  REQUIRE(r.state == scheduler::RunState::succeeded);
  require_match(s, "teams", "message");
  check_index_consistent(s.reader());
  // Only the deltas: no listing again, no message read one by one.
  CHECK(route_requests(stats, "GET /v1.0/teams/{id}/channels/{id}/messages") == 0);
  CHECK(route_requests(stats, "GET /v1.0/teams/{id}/channels/{id}/messages/delta") == 6);
  CHECK(route_requests(stats, "GET /v1.0/teams/{id}/channels/{id}/messages/{id}") == 0);
  CHECK(route_requests(stats, "/replies") == 0);
  // Edits are new versions of the post; its replies did not change.
  CHECK(r.summary.items_changed >= 1);
  for (auto& e : act["updated"]) {
    auto key = e["channel"].get<std::string>() + "/" + e["id"].get<std::string>();
    bool deleted_later = false;
    for (auto& d : act["deleted"]) deleted_later = deleted_later || (d["id"] == e["id"] && d["channel"] == e["channel"]);
    if (deleted_later) continue;
    CHECK(s.count("SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id WHERE i.graph_id = $1",
                {key}) == 2);
  }
  // A deleted post closes with its replies and images; before the run they were there.
  for (auto& e : act["deleted"]) {
    auto key = e["channel"].get<std::string>() + "/" + e["id"].get<std::string>();
    CHECK(s.count("SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id"
                   " WHERE (i.graph_id = $1 OR starts_with(i.graph_id, $1 || '/')) AND v.to_at IS NULL",
                {key}) == 0);
    CHECK(s.count("SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id"
                   " WHERE i.graph_id = $1 AND v.from_at <= $2::timestamptz AND v.to_at > $2::timestamptz",
                {key, before}) == 1);
  }
  CHECK(r.summary.items_deleted >= 3);
  // A quiet run: nothing new, nothing closed, no image downloaded.
  emu.admin("DELETE", "/_emulator/stats", nullptr, 204);
  auto versions = s.count("SELECT count(*) FROM item_versions WHERE category = 'teams'");
  auto q = s.run(only(storage::Category::teams));
  REQUIRE(q.state == scheduler::RunState::succeeded);
  CHECK(q.summary.items_new == 0);
  CHECK(q.summary.items_changed == 0);
  CHECK(q.summary.items_deleted == 0);
  CHECK(s.count("SELECT count(*) FROM item_versions WHERE category = 'teams'") == versions);
  CHECK(route_requests(emu.admin("GET", "/_emulator/stats"), "/hostedContents/{id}/$value") == 0);
  // A selection may name a team by its display name: that team alone, no "no user" failure.
  CHECK(run_selecting_by_name(s, "team", storage::Category::teams).summary.owners == 1);
}

TEST_CASE("teams: expired channel message deltas list the channels again, add no duplicate, notice deletions",
          "[graph][pg]") {
  BackupStack s(teams_tenant());
  auto& emu = s.emulator();
  const std::string activity = "/_emulator/tenants/" + s.tenant().tenant + "/activity";
  REQUIRE(s.run(only(storage::Category::teams)).state == scheduler::RunState::succeeded);
  auto before_act = emu.admin("POST", activity,
                              {{"seed", 11}, {"categories", {"teams"}}, {"creates", 4}, {"updates", 4}, {"deletes", 2}});
  json expire = json::array();
  for (auto& row : s.query("SELECT o.graph_id, k.graph_id FROM containers k JOIN owners o ON o.id = k.owner_id"
                           " WHERE k.category = 'teams' AND o.kind = 'team'"))
    expire.push_back({{"owner", row[0]}, {"channel", row[1]}});
  REQUIRE(expire.size() == 6);
  REQUIRE(emu.admin("POST", activity, {{"expire_delta", expire}})["expired"].size() == 6);
  // Changes while the tokens are expired: only a new enumeration can see them.
  auto while_act = emu.admin("POST", activity,
                             {{"seed", 12}, {"categories", {"teams"}}, {"creates", 2}, {"updates", 3}, {"deletes", 3}});
  INFO(before_act.dump() << " " << while_act.dump());
  const auto keys = activity_keys({&before_act, &while_act}, [](const json& e) { return e["channel"].get<std::string>(); });
  const auto& [created, updated, deleted] = keys;
  REQUIRE(deleted.size() == 5);
  const auto versions = versions_per_item(s, "teams");
  auto at_before = s.query("SELECT now()")[0][0];
  emu.admin("DELETE", "/_emulator/stats", nullptr, 204);
  auto r = s.run(only(storage::Category::teams));
  auto stats = emu.admin("GET", "/_emulator/stats");
  INFO(r.error.value_or("") << " " << stats.dump());
  REQUIRE(r.state == scheduler::RunState::succeeded);
  require_match(s, "teams", "message");
  check_index_consistent(s.reader());
  // Every channel's saved delta was refused once (400 syncStateNotFound), then the
  // channel was listed whole (55 posts and a few new ones: two pages of 50) and its
  // delta walked from scratch (one page).
  CHECK(stats["status"].value("400", 0) == 6);
  CHECK(route_requests(stats, "GET /v1.0/teams/{id}/channels/{id}/messages") == 12);
  CHECK(route_requests(stats, "GET /v1.0/teams/{id}/channels/{id}/messages/delta") == 12);
  // Images downloaded: only those of the new posts and their replies.
  CHECK(route_requests(stats, "/hostedContents/{id}/$value") ==
        s.count("SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id"
                " WHERE i.kind = 'hosted_content' AND v.from_at > $1::timestamptz",
                {at_before}));
  // No duplicates: of what was stored, only edited posts (not deleted since) have one new version.
  const auto changed = keys.changed();
  check_no_extra_versions(versions, versions_per_item(s, "teams"), changed);
  CHECK(r.summary.items_changed == static_cast<long long>(changed.size()));
  // Deletions, also those made while the tokens were expired, closed validity with
  // replies and images; before the run they were there.
  for (auto& [owner, key] : deleted) {
    INFO(key);
    CHECK(open_under(s, owner, key) == 0);
    if (created.count({owner, key})) continue;  // never stored
    CHECK(s.count("SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id"
                   " WHERE i.graph_id = $1 AND v.from_at <= $2::timestamptz AND v.to_at > $2::timestamptz",
                   {key, at_before}) == 1);
  }
  // The round is over: the next run follows the new deltaLinks and changes nothing.
  emu.admin("DELETE", "/_emulator/stats", nullptr, 204);
  auto q = s.run(only(storage::Category::teams));
  auto qstats = emu.admin("GET", "/_emulator/stats");
  REQUIRE(q.state == scheduler::RunState::succeeded);
  CHECK(route_requests(qstats, "GET /v1.0/teams/{id}/channels/{id}/messages") == 0);
  CHECK(route_requests(qstats, "GET /v1.0/teams/{id}/channels/{id}/messages/delta") == 6);
  CHECK(q.summary.items_new == 0);
  CHECK(q.summary.items_changed == 0);
  CHECK(q.summary.items_deleted == 0);
}

TEST_CASE("sharepoint lists: an expired item delta enumerates the list again, adds no duplicate, closes deletions",
          "[graph][pg]") {
  BackupStack s(teams_tenant());
  auto& emu = s.emulator();
  const std::string activity = "/_emulator/tenants/" + s.tenant().tenant + "/activity";
  REQUIRE(s.run(only(storage::Category::sharepoint)).state == scheduler::RunState::succeeded);
  // The generic list of each site (document libraries are drives, not lists here).
  std::map<std::string, std::string> list_of;  // site graph id -> list graph id
  for (auto& row : s.query("SELECT o.graph_id, k.graph_id FROM containers k JOIN owners o ON o.id = k.owner_id"
                           " WHERE k.category = 'sharepoint' AND o.kind = 'site'"))
    list_of[row[0]] = row[1];
  REQUIRE(list_of.size() == static_cast<std::size_t>(s.count("SELECT count(*) FROM owners WHERE kind = 'site'")));
  auto before_act = emu.admin("POST", activity,
                              {{"seed", 21}, {"categories", {"lists"}}, {"creates", 3}, {"updates", 3}, {"deletes", 2}});
  json expire = json::array();
  for (auto& [site, list] : list_of) expire.push_back({{"owner", site}, {"list", list}});
  REQUIRE(emu.admin("POST", activity, {{"expire_delta", expire}})["expired"].size() == list_of.size());
  auto while_act = emu.admin("POST", activity,
                             {{"seed", 22}, {"categories", {"lists"}}, {"creates", 2}, {"updates", 2}, {"deletes", 3}});
  INFO(before_act.dump() << " " << while_act.dump());
  const auto keys =
      activity_keys({&before_act, &while_act}, [&](const json& e) { return list_of.at(e["owner"].get<std::string>()); });
  const auto& [created, updated, deleted] = keys;
  REQUIRE(deleted.size() == 5);
  const auto versions = versions_per_item(s, "sharepoint");
  emu.admin("DELETE", "/_emulator/stats", nullptr, 204);
  auto r = s.run(only(storage::Category::sharepoint));
  auto stats = emu.admin("GET", "/_emulator/stats");
  INFO(r.error.value_or("") << " " << stats.dump());
  REQUIRE(r.state == scheduler::RunState::succeeded);
  require_match(s, "lists", "list_item");
  check_index_consistent(s.reader());
  // Every list's saved delta got 410 resyncRequired, then a delta from scratch.
  CHECK(stats["status"].value("410", 0) == static_cast<long long>(list_of.size()));
  CHECK(route_requests(stats, "GET /v1.0/sites/{id}/lists/{id}/items/{id}") == 0);
  const auto changed = keys.changed();
  check_no_extra_versions(versions, versions_per_item(s, "sharepoint"), changed);
  long long added = 0, closed = 0;
  for (auto& k : created) added += !deleted.count(k);
  for (auto& k : deleted) closed += !created.count(k);
  CHECK(r.summary.items_new == added);
  CHECK(r.summary.items_changed == static_cast<long long>(changed.size()));
  CHECK(r.summary.items_deleted == closed);
  // A delta from scratch does not report what was deleted: the completed round closed it.
  for (auto& [site, key] : deleted) {
    INFO(key);
    CHECK(open_under(s, site, key) == 0);
  }
  auto q = s.run(only(storage::Category::sharepoint));
  REQUIRE(q.state == scheduler::RunState::succeeded);
  CHECK(q.summary.items_new == 0);
  CHECK(q.summary.items_changed == 0);
  CHECK(q.summary.items_deleted == 0);
}

TEST_CASE("sharepoint lists: full, incremental and quiet runs equal the list-items manifest", "[graph][pg]") {
  BackupStack s(teams_tenant());
  auto& emu = s.emulator();
  auto r = s.run(only(storage::Category::sharepoint));
  INFO(r.error.value_or(""));
  REQUIRE(r.state == scheduler::RunState::succeeded);
  require_match(s, "lists", "list_item");
  check_index_consistent(s.reader());
  // The generic list is a container of each site, with its own JSON; libraries are drives, not lists here.
  auto sites = s.count("SELECT count(*) FROM owners WHERE kind = 'site'");
  CHECK(s.count("SELECT count(*) FROM items i JOIN owners o ON o.id = i.owner_id WHERE i.kind = 'list'"
                 " AND o.kind = 'site'") == sites);
  CHECK(s.count("SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id WHERE i.kind = 'list'"
                 " AND v.meta#>>'{list,template}' = 'documentLibrary'") == 0);
  CHECK(s.count("SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id WHERE i.kind = 'list_item'"
                 " AND (v.name = '' OR v.body_preview IS NULL OR v.modified_at IS NULL)") == 0);

  auto act = emu.admin("POST", "/_emulator/tenants/" + s.tenant().tenant + "/activity",
                       {{"seed", 4}, {"categories", {"lists"}}, {"creates", 3}, {"updates", 3}, {"deletes", 2}});
  INFO(act.dump());
  REQUIRE(act["deleted"].size() == 2);
  auto before = s.count("SELECT count(*) FROM item_versions WHERE category = 'sharepoint' AND to_at IS NOT NULL");
  emu.admin("DELETE", "/_emulator/stats", nullptr, 204);
  auto r2 = s.run(only(storage::Category::sharepoint));
  auto stats = emu.admin("GET", "/_emulator/stats");
  INFO(r2.error.value_or("") << " " << stats.dump());
  REQUIRE(r2.state == scheduler::RunState::succeeded);
  require_match(s, "lists", "list_item");
  check_index_consistent(s.reader());
  // Through the saved delta: no item read one by one, no full listing of items.
  CHECK(route_requests(stats, "GET /v1.0/sites/{id}/lists/{id}/items/{id}") == 0);
  CHECK(route_requests(stats, "GET /v1.0/sites/{id}/lists/{id}/items") == 0);
  CHECK(s.count("SELECT count(*) FROM item_versions WHERE category = 'sharepoint' AND to_at IS NOT NULL") >=
        before + 2);

  auto versions = s.count("SELECT count(*) FROM item_versions WHERE category = 'sharepoint'");
  auto q = s.run(only(storage::Category::sharepoint));
  REQUIRE(q.state == scheduler::RunState::succeeded);
  CHECK(q.summary.items_new == 0);
  CHECK(q.summary.items_changed == 0);
  CHECK(q.summary.items_deleted == 0);
  CHECK(s.count("SELECT count(*) FROM item_versions WHERE category = 'sharepoint'") == versions);

  // A selection names a site by its display name: no "no user" failure for it; a
  // name that is no user and no site is one, named as such.
  auto one = only(storage::Category::sharepoint);
  one.owners = run_selecting_by_name(s, "site", storage::Category::sharepoint).params.owners;
  one.owners.push_back("No Such Site");
  auto bad = s.run(one);
  CHECK(bad.state != scheduler::RunState::succeeded);
  CHECK(bad.summary.owners_failed == 1);
  REQUIRE(bad.summary.problems.size() == 1);
  CHECK(bad.summary.problems[0] == "no user or site 'No Such Site' in tenant 'contoso'");
}

TEST_CASE("teams and lists: faulted inline images and list items are read again by id on the next run",
          "[graph][pg]") {
  BackupStack s(teams_tenant());
  auto& emu = s.emulator();
  backup::BackupParams both;
  both.categories = {storage::Category::sharepoint, storage::Category::teams};
  REQUIRE(s.run(both).state == scheduler::RunState::succeeded);
  // Faults as a failed read leaves them: an image and a list item that exist, and
  // a list item that is gone since.
  auto img = s.query("SELECT o.id, i.graph_id FROM items i JOIN owners o ON o.id = i.owner_id"
                     " WHERE i.kind = 'hosted_content' ORDER BY i.graph_id LIMIT 1");
  auto li = s.query("SELECT o.id, i.graph_id FROM items i JOIN owners o ON o.id = i.owner_id"
                    " WHERE i.kind = 'list_item' ORDER BY i.graph_id LIMIT 1");
  REQUIRE(img.size() == 1);
  REQUIRE(li.size() == 1);
  const auto run1 = s.query("SELECT id FROM runs ORDER BY queued_at LIMIT 1")[0][0];
  const auto gone = li[0][1].substr(0, li[0][1].find('/')) + "/9999";
  {
    auto c = storage::PgConnection::connect(s.conninfo(), {});
    storage::Catalog cat;
    cat.record_fault(c, run1, img[0][0], storage::Category::teams, img[0][1], "test: 503 after retries");
    cat.record_fault(c, run1, li[0][0], storage::Category::sharepoint, li[0][1], "test: 503 after retries");
    cat.record_fault(c, run1, li[0][0], storage::Category::sharepoint, gone, "test: 503 after retries");
  }
  emu.admin("DELETE", "/_emulator/stats", nullptr, 204);
  auto r = s.run(both);
  auto stats = emu.admin("GET", "/_emulator/stats");
  INFO(r.error.value_or("") << " " << stats.dump());
  REQUIRE(r.state == scheduler::RunState::succeeded);
  CHECK(route_requests(stats, "/hostedContents/{id}/$value") == 1);
  CHECK(route_requests(stats, "GET /v1.0/sites/{id}/lists/{id}/items/{id}") == 2);
  CHECK(s.count("SELECT count(*) FROM item_faults WHERE resolved_at IS NULL") == 0);
  CHECK(r.summary.items_new == 0);
  require_match(s, "teams", "message");
  require_match(s, "lists", "list_item");
  check_index_consistent(s.reader());
}

TEST_CASE("sharepoint: a resource-unit budget tight enough to bite is paced by RateLimit-* before any 429",
          "[graph][pg]") {
  BackupStack s(teams_tenant());
  auto& emu = s.emulator();
  emu.admin("PUT", "/_emulator/faults", {{"sharepoint_ru_per_minute", 40}});
  emu.admin("DELETE", "/_emulator/stats", nullptr, 204);
  auto r = s.run(only(storage::Category::sharepoint));
  auto stats = emu.admin("GET", "/_emulator/stats");
  emu.admin("PUT", "/_emulator/faults", json::object());
  INFO(r.error.value_or("") << " " << stats.dump());
  REQUIRE(r.state == scheduler::RunState::succeeded);
  require_match(s, "lists", "list_item");
  // The run needed more than one minute's budget, was spaced before the budget
  // ran out and never met a 429.
  // Units as the contract costs them: 1 for /content, 2 for collections and token-less deltas (all of them here).
  long long charged = 0;
  for (auto& [k, v] : stats["requests"].items())
    if (k.find("/content") != std::string::npos)
      charged += v.get<long long>();
    else if (k.find("/sites") != std::string::npos || k.find("/drives") != std::string::npos)
      charged += 2 * v.get<long long>();
  CHECK(charged > 40);
  CHECK(r.summary.graph.rate_limit_paced > 0);
  CHECK(r.summary.graph.throttled == 0);
  CHECK(stats["status"].value("429", 0) == 0);
}
