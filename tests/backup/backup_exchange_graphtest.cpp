// The backup pipeline against the real emulator over HTTPS, a real PostgreSQL
// and a real repository: full and incremental runs of mail, contacts and
// calendars compared with the emulator's ground truth, faults, throttling and
// resynchronisation.
#include <catch2/catch.hpp>

#include <regex>
#include <set>

#include "backup_support.hpp"
#include "m365vault/storage/catalog.hpp"
#include "m365vault/storage/crypto.hpp"

using namespace m365vault;
using namespace m365vault::test;

namespace {

json small_tenant() {
  return {{"users", 4},           {"mail_folders_per_user", 4}, {"messages_per_user", 60},
          {"contacts_per_user", 15}, {"events_per_user", 20},   {"max_attachment_bytes", 300000}};
}


// The index equals the manifest (backup_support.hpp).
void require_matches_manifest(BackupStack& s, const std::string& category) {
  check_index_matches(s.manifest(category), s.reader(), category);
}

}  // namespace

TEST_CASE("backup: a full run stores every message, contact and event of the tenant", "[graph][pg]") {
  BackupStack s(small_tenant());
  auto r = s.run();
  INFO(r.error.value_or(""));
  REQUIRE(r.state == scheduler::RunState::succeeded);
  CHECK(r.summary.owners == 4);
  require_matches_manifest(s, "mail");
  require_matches_manifest(s, "contacts");
  require_matches_manifest(s, "calendar");
  // A complete snapshot per owner and category, and the progress a person sees.
  CHECK(s.query("SELECT count(*) FROM snapshots WHERE state = 'complete'")[0][0] == "12");
  CHECK(r.progress["owners_done"] == 4);
  CHECK(r.progress["items_new"].get<long long>() == r.summary.items_new);
  // Search finds a stored message by a word of its subject: a whole ASCII word
  // ("union" inside "Réunion" is no word of it, and was picked at times).
  auto subject = s.query("SELECT subject FROM item_versions WHERE category = 'mail'"
                         " AND subject ~ '(^|\\s)[A-Za-z]{5,}($|[\\s,.:;!?])' LIMIT 1");
  REQUIRE(subject.size() == 1);
  std::smatch word;
  REQUIRE(std::regex_search(subject[0][0], word, std::regex("(?:^|\\s)([A-Za-z]{5,})(?=$|[\\s,.:;!?])")));
  INFO("subject '" << subject[0][0] << "', word '" << word.str(1) << "'");
  CHECK(std::stoi(s.query("SELECT count(*) FROM item_versions WHERE subject = $1 AND search @@ "
                          "websearch_to_tsquery('simple', $2)",
                          {subject[0][0], word.str(1)})[0][0]) >= 1);
}

TEST_CASE("backup: attachment names come from the MIME, equal Graph's, and search finds messages by them",
          "[graph][pg]") {
  BackupStack s(small_tenant());
  auto r = s.run();
  INFO(r.error.value_or(""));
  REQUIRE(r.state == scheduler::RunState::succeeded);
  auto& emu = s.emulator();
  const auto token = emu.token(s.tenant().tenant, s.tenant().client, s.tenant().secret);

  // Ground truth from Graph itself: a file attachment's name, an item
  // attachment's subject (Exchange's MIME gives it no file name). Reference
  // attachments are links in the body, not parts, and have no place here.
  auto rows = s.query(
      "SELECT o.graph_id, i.graph_id, coalesce(v.meta->'attachmentNames', '[]')::text FROM item_versions v"
      " JOIN items i ON i.id = v.item_id JOIN owners o ON o.id = v.owner_id"
      " WHERE v.category = 'mail' AND v.to_at IS NULL ORDER BY i.graph_id LIMIT 60");
  REQUIRE(rows.size() == 60);
  int with_names = 0, files = 0, items = 0, non_ascii = 0;
  std::string probe_item, probe_name;
  for (auto& row : rows) {
    auto atts = emu.graph_json("/v1.0/users/" + row[0] + "/messages/" + row[1] +
                                   "/attachments?$expand=microsoft.graph.itemattachment/item",
                               token);
    std::set<std::string> want;
    for (auto& a : atts["value"]) {
      auto type = a.value("@odata.type", "");
      if (type == "#microsoft.graph.fileAttachment") {
        want.insert(a["name"].get<std::string>());
        ++files;
      } else if (type == "#microsoft.graph.itemAttachment") {
        want.insert(a["item"]["subject"].get<std::string>());
        ++items;
      }
    }
    auto stored = json::parse(row[2]);
    std::set<std::string> got(stored.begin(), stored.end());
    INFO("message " << row[1] << " stored " << row[2] << " graph " << atts.dump());
    CHECK(got == want);
    CHECK(got.size() == stored.size());  // no duplicates
    if (!got.empty()) ++with_names;
    for (auto& n : got) {
      if (std::any_of(n.begin(), n.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) ++non_ascii;
      // A name made of letters and a dot: a clean phrase to search for.
      if (probe_name.empty() && std::regex_match(n, std::regex("[A-Za-z][A-Za-z0-9 _-]{3,}\\.[a-z]{3,4}")))
        probe_item = row[1], probe_name = n;
    }
  }
  INFO(with_names << " messages with names; " << files << " file and " << items << " item attachments; " << non_ascii
                  << " non-ASCII names");
  CHECK(with_names >= 10);
  CHECK(files >= 10);
  CHECK(non_ascii >= 1);  // RFC 2231 / RFC 2047 decoded, not left encoded
  REQUIRE(!probe_name.empty());

  // The catalog's search (what GET /api/v1/search runs) finds the message by the
  // name and by a word of it, and by nothing else it holds.
  auto c = storage::PgConnection::connect(s.conninfo());
  storage::Catalog cat;
  auto finds = [&](const std::string& q) {
    storage::SearchQuery sq;
    sq.q = q;
    sq.category = storage::Category::mail;
    sq.limit = 500;
    for (auto& v : cat.search(c, sq).items)
      if (v.graph_id == probe_item) return true;
    return false;
  };
  const std::string stem = probe_name.substr(0, probe_name.find_first_of(" _-."));
  INFO("searching for '" << probe_name << "' and '" << stem << "'");
  CHECK(finds("\"" + probe_name + "\""));
  CHECK(finds(stem));
  auto elsewhere = s.query(
      "SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id WHERE i.graph_id = $1 AND"
      " to_tsvector('simple', coalesce(v.subject, '') || ' ' || coalesce(v.body_preview, '') || ' ' ||"
      " coalesce(v.sender, '') || ' ' || array_to_string(v.recipients, ' ')) @@ websearch_to_tsquery('simple', $2)",
      {probe_item, "\"" + probe_name + "\""});
  CHECK(elsewhere[0][0] == "0");  // found by the attachment name, not by chance
}

TEST_CASE("backup: a second run after activity fetches only the changes and keeps history", "[graph][pg]") {
  BackupStack s(small_tenant());
  REQUIRE(s.run().state == scheduler::RunState::succeeded);
  auto before = s.query("SELECT now()")[0][0];
  auto& emu = s.emulator();
  // Activity names messages by their REST ids; the index keys them by immutable id.
  std::map<std::string, std::string> immutable;
  for (auto cat : {"mail", "contacts", "calendar"}) {
    auto m = emu.admin("GET", "/_emulator/tenants/" + s.tenant().tenant + "/manifest?category=" + cat);
    for (auto& it : m["items"])
      immutable[it["id"].get<std::string>()] =
          it.value("immutable_id", json()).is_string() ? it["immutable_id"].get<std::string>() : it["id"].get<std::string>();
  }
  emu.admin("DELETE", "/_emulator/stats", nullptr, 204);
  auto act = emu.admin("POST", "/_emulator/tenants/" + s.tenant().tenant + "/activity",
                       {{"seed", 7}, {"creates", 6}, {"updates", 5}, {"deletes", 4}, {"moves", 3},
                        {"categories", {"mail", "contacts", "calendar"}}});
  auto r = s.run();
  INFO(r.error.value_or(""));
  REQUIRE(r.state == scheduler::RunState::succeeded);
  require_matches_manifest(s, "mail");
  require_matches_manifest(s, "contacts");
  require_matches_manifest(s, "calendar");

  auto stats = emu.admin("GET", "/_emulator/stats");
  // MIME only for what was created, changed or moved; nothing for the rest.
  auto mime = route_requests(stats, "$value");
  INFO(stats.dump());
  CHECK(mime <= 6 + 5 + 3);
  CHECK(r.summary.items_deleted >= 4);
  // Deleted items are still there as they were before the run (those the
  // activity also created or moved first have no earlier version to keep).
  int checked = 0;
  for (auto& d : act["deleted"]) {
    auto it = immutable.find(d["id"].get<std::string>());
    if (it == immutable.end()) continue;
    auto rows = s.query(
        "SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id"
        " WHERE i.graph_id = $1 AND v.from_at <= $2::timestamptz AND v.to_at IS NOT NULL",
        {it->second, before});
    CHECK(rows[0][0] == "1");
    ++checked;
  }
  CHECK(checked >= 2);
  // A third run with nothing new changes nothing.
  auto again = s.run();
  REQUIRE(again.state == scheduler::RunState::succeeded);
  CHECK(again.summary.items_new == 0);
  CHECK(again.summary.items_changed == 0);
  CHECK(again.summary.items_deleted == 0);
}

TEST_CASE("backup: unlicensed users are skipped with the reason, not failed", "[graph][pg]") {
  auto spec = small_tenant();
  spec["unlicensed_users"] = 1;
  BackupStack s(spec);
  auto r = s.run();
  INFO(r.error.value_or(""));
  REQUIRE(r.state == scheduler::RunState::succeeded);
  CHECK(r.summary.owners_skipped == 1);
  auto rows = s.query("SELECT state, skip_reason FROM owners WHERE state = 'skipped'");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0][1].find("MailboxNotEnabledForRESTAPI") != std::string::npos);
  require_matches_manifest(s, "mail");
}

TEST_CASE("backup: refused credentials fail the run with the identity platform's reason", "[graph][pg]") {
  BackupStack s(small_tenant());
  s.query("UPDATE tenants SET client_id = 'not-the-app'");
  auto r = s.run();
  REQUIRE(r.state == scheduler::RunState::failed);
  REQUIRE(r.error);
  CHECK(r.error->find("AADSTS700016") != std::string::npos);
}

TEST_CASE("backup: throttled and failing Graph still gives the same result, within the limits", "[graph][pg]") {
  BackupStack s(small_tenant());
  auto& emu = s.emulator();
  emu.admin("PUT", "/_emulator/faults",
            {{"mailbox_concurrency", 4},
             {"mailbox_requests_per_window", 25},
             {"window_seconds", 2},
             {"retry_after", "fractional"},
             {"error_rate", {{"503", 0.02}, {"504", 0.01}, {"reset", 0.01}, {"truncated", 0.01}}}});
  backup::BackupOptions opts;
  opts.fetches_per_owner = 8;  // more than Graph allows: the client must hold the line
  auto r = s.run({}, opts);
  INFO(r.error.value_or(""));
  REQUIRE(r.state == scheduler::RunState::succeeded);
  CHECK(r.summary.graph.max_in_flight_per_mailbox <= 4);
  CHECK(r.summary.graph.throttled > 0);  // the budget did bite
  emu.admin("PUT", "/_emulator/faults", json::object());
  require_matches_manifest(s, "mail");
  require_matches_manifest(s, "contacts");
  require_matches_manifest(s, "calendar");
}

TEST_CASE("backup: an invalid delta token resynchronises without duplicates", "[graph][pg]") {
  BackupStack s(small_tenant());
  REQUIRE(s.run().state == scheduler::RunState::succeeded);
  const auto versions = s.count("SELECT count(*) FROM item_versions");
  auto& emu = s.emulator();
  emu.admin("POST", "/_emulator/tenants/" + s.tenant().tenant + "/activity",
            {{"seed", 9}, {"creates", 2}, {"deletes", 2}, {"categories", {"mail"}}});
  // Every delta call that carries a token is told to start over.
  emu.admin("PUT", "/_emulator/faults", {{"delta_reset_rate", 1.0}});
  emu.admin("DELETE", "/_emulator/stats", nullptr, 204);
  auto r = s.run();
  INFO(r.error.value_or(""));
  emu.admin("PUT", "/_emulator/faults", json::object());
  REQUIRE(r.state == scheduler::RunState::succeeded);
  require_matches_manifest(s, "mail");
  // Only the created messages were downloaded again; two new versions, two closed.
  auto stats = emu.admin("GET", "/_emulator/stats");
  CHECK(route_requests(stats, "$value") == 2);
  CHECK(s.count("SELECT count(*) FROM item_versions") == versions + 2);
}

TEST_CASE("backup: a tenant of the issue's size (20 users, 10 folders, 1,000 messages, 200 contacts, 300 events "
          "each) is backed up whole",
          "[graph][pg]") {
  BackupStack s({{"users", 20},
                 {"mail_folders_per_user", 10},
                 {"messages_per_user", 1000},
                 {"contacts_per_user", 200},
                 {"events_per_user", 300},
                 {"max_attachment_bytes", 60000}});
  auto t0 = std::chrono::steady_clock::now();
  auto r = s.run();
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(r.error.value_or(""));
  REQUIRE(r.state == scheduler::RunState::succeeded);
  CHECK(r.summary.owners == 20);
  WARN("20,000 messages, 4,000 contacts, 6,000 events in " << secs << " s (" << r.summary.items_new / secs
                                                           << " items/s on a shared machine)");
  require_matches_manifest(s, "mail");
  require_matches_manifest(s, "contacts");
  require_matches_manifest(s, "calendar");
  check_index_consistent(s.reader());
}
