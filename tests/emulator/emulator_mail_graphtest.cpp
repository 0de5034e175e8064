// Mail: folder tree and folder delta, per-folder message delta rounds, immutable
// ids across moves, sync generations (410), MIME read by a standard parser, the
// manifest as ground truth, and determinism from the seed.
#include <catch2/catch.hpp>

#include <fstream>
#include <set>

#include "emulator_support.hpp"
#include "m365vault/core/process.hpp"

using namespace m365vault;
using namespace m365vault::test;

namespace {
std::string first_user(const EmulatorProcess& emu, const std::string& tok) {
  return emu.graph_json("/v1.0/users", tok)["value"][0]["id"].get<std::string>();
}
}  // namespace

TEST_CASE("mail folders: top level, hidden, children, well-known names and a flattened folder delta", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 31, 2, 10, {{"mail_folders_per_user", 6}});
  auto tok = emu.token(t.tenant, t.client, t.secret);
  auto u = first_user(emu, tok);
  auto top = emu.graph_json("/v1.0/users/" + u + "/mailFolders", tok)["value"];
  auto hidden = emu.graph_json("/v1.0/users/" + u + "/mailFolders?includeHiddenFolders=true", tok)["value"];
  REQUIRE(hidden.size() == top.size() + 1);
  std::set<std::string> names;
  for (auto& f : top) names.insert(f["displayName"].get<std::string>());
  for (auto n : {"Inbox", "Drafts", "Sent Items", "Deleted Items", "Archive", "Junk Email"}) REQUIRE(names.count(n));
  auto inbox = emu.graph_json("/v1.0/users/" + u + "/mailFolders/inbox", tok);
  REQUIRE(inbox["displayName"] == "Inbox");
  auto kids = emu.graph_json("/v1.0/users/" + u + "/mailFolders/" + inbox["id"].get<std::string>() + "/childFolders", tok)["value"];
  REQUIRE(inbox["childFolderCount"] == kids.size());
  bool search = false;
  for (auto& k : kids) search |= k.value("@odata.type", "") == "#microsoft.graph.mailSearchFolder";
  REQUIRE(search);
  // Folder delta is flat: every folder with its parentFolderId.
  auto d = walk_delta(emu, "/v1.0/users/" + u + "/mailFolders/delta", tok, {{"Prefer", "odata.maxpagesize=4"}});
  std::set<std::string> ids;
  for (auto& f : d.items) ids.insert(f["id"].get<std::string>());
  for (auto& f : d.items) REQUIRE(f.contains("parentFolderId"));
  for (auto& k : kids) REQUIRE(ids.count(k["id"].get<std::string>()));
  REQUIRE(d.items.size() >= hidden.size() + 6);
  REQUIRE(emu.graph("/v1.0/users/" + u + "/mailFolders/not-an-id", tok).status == 400);
}

TEST_CASE("messages delta: rounds, @removed, updates, changeType and immutable ids across moves", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 32, 1, 60, {{"mail_folders_per_user", 1}});
  auto tok = emu.token(t.tenant, t.client, t.secret);
  auto u = first_user(emu, tok);
  const std::string url = "/v1.0/users/" + u + "/mailFolders/inbox/messages/delta?$select=subject,isRead";
  const std::vector<std::pair<std::string, std::string>> imm = {{"Prefer", "odata.maxpagesize=5, IdType=\"ImmutableId\""}};
  auto r1 = walk_delta(emu, url, tok, imm);
  auto inbox = emu.graph_json("/v1.0/users/" + u + "/mailFolders/inbox", tok);
  REQUIRE(r1.items.size() == inbox["totalItemCount"].get<std::size_t>());
  REQUIRE(r1.items.size() > 10);
  for (auto& m : r1.items) {
    REQUIRE(m["@odata.type"] == "#microsoft.graph.message");
    REQUIRE(m["@odata.etag"].get<std::string>().rfind("W/\"", 0) == 0);
    REQUIRE(m["isRead"].is_boolean());
    REQUIRE(!m.contains("body"));
  }
  auto rest = walk_delta(emu, url, tok, {{"Prefer", "odata.maxpagesize=50"}});
  REQUIRE(rest.items.size() == r1.items.size());

  // Moves, deletes and updates across the mailbox until the inbox changed.
  json moved_out;
  for (int seed = 1; seed < 100 && moved_out.is_null(); ++seed) {
    auto act = emu.admin("POST", "/_emulator/tenants/" + t.tenant + "/activity", {{"seed", seed}, {"moves", 2}, {"updates", 2}, {"deletes", 1}});
    for (auto& m : act["moved"])
      if (m["from"] == "/Inbox") moved_out = m;
  }
  REQUIRE(!moved_out.is_null());
  auto r2 = walk_delta(emu, r1.delta_link, tok, imm);
  bool removed = false;
  for (auto& m : r2.items)
    if (m["id"] == moved_out["immutable_id"] && m.contains("@removed")) removed = m["@removed"]["reason"] == "deleted";
  REQUIRE(removed);
  // The immutable id still reads the message after the move; the old REST id does not.
  REQUIRE(emu.graph("/v1.0/users/" + u + "/messages/" + moved_out["immutable_id"].get<std::string>(), tok).status == 200);
  REQUIRE(emu.graph("/v1.0/users/" + u + "/messages/" + moved_out["old_id"].get<std::string>(), tok).status == 404);
  REQUIRE(emu.graph("/v1.0/users/" + u + "/messages/" + moved_out["id"].get<std::string>(), tok).status == 200);
  auto with_imm = emu.graph_json("/v1.0/users/" + u + "/messages/" + moved_out["id"].get<std::string>(), tok,
                                 {{"Prefer", "IdType=\"ImmutableId\""}});
  REQUIRE(with_imm["id"] == moved_out["immutable_id"]);

  // changeType=created only reports new arrivals.
  auto created = walk_delta(emu, "/v1.0/users/" + u + "/mailFolders/inbox/messages/delta?changeType=created", tok);
  REQUIRE(!created.items.empty());
  // Garbled token.
  auto dl = r2.delta_link;
  auto bad = emu.graph(dl.substr(0, dl.size() - 2) + "zz", tok);
  REQUIRE(bad.status == 400);
}

TEST_CASE("Outlook keeps the last generations: an evicted deltaLink gets 410 SyncStateNotFound", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 33, 1, 12);
  auto tok = emu.token(t.tenant, t.client, t.secret);
  auto u = first_user(emu, tok);
  auto r0 = walk_delta(emu, "/v1.0/users/" + u + "/mailFolders/inbox/messages/delta", tok);
  // Replaying a still-cached deltaLink works (three more rounds keep it alive until the fourth).
  std::string link = r0.delta_link;
  for (int i = 0; i < 3; ++i) {
    auto again = walk_delta(emu, link, tok);
    link = again.delta_link;
  }
  auto gone = emu.graph(r0.delta_link, tok);
  REQUIRE(gone.status == 410);
  auto e = json::parse(gone.body)["error"];
  REQUIRE(e["code"] == "SyncStateNotFound");
  REQUIRE(e["message"].get<std::string>().rfind("The sync state generation is not found; generation=", 0) == 0);
  REQUIRE(emu.graph(link, tok).status == 200);
  // generations_kept is configurable.
  emu.admin("PUT", "/_emulator/faults", {{"generations_kept", 1}});
  auto a = walk_delta(emu, link, tok);
  auto b = walk_delta(emu, a.delta_link, tok);
  REQUIRE(emu.graph(a.delta_link, tok).status == 410);
  REQUIRE(emu.graph(b.delta_link, tok).status == 200);
}

TEST_CASE("MIME from $value reads with a standard parser and matches the JSON, attachments and the manifest", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 34, 2, 40);
  auto tok = emu.token(t.tenant, t.client, t.secret);
  auto manifest = emu.admin("GET", "/_emulator/tenants/" + t.tenant + "/manifest?category=mail");
  REQUIRE(manifest["items"].size() == 80);
  int with_attachments = 0, checked = 0;
  for (auto& item : manifest["items"]) {
    const std::string base = "/v1.0/users/" + item["owner"].get<std::string>() + "/messages/" + item["id"].get<std::string>();
    auto mime = emu.graph(base + "/$value", tok);
    REQUIRE(mime.status == 200);
    REQUIRE(mime.body.size() == item["size"].get<std::size_t>());
    auto msg = emu.graph_json(base, tok);
    auto atts = emu.graph_json(base + "/attachments", tok)["value"];
    if (msg["hasAttachments"].get<bool>()) ++with_attachments;
    if (checked >= 12 && !msg["hasAttachments"].get<bool>()) continue;
    ++checked;
    auto path = (emu.dir() / ("m" + std::to_string(checked) + ".eml")).string();
    std::ofstream(path, std::ios::binary) << mime.body;
    ProcessOptions po;
    po.argv = {"python3", std::string(EMULATOR_TEST_DIR) + "/check_mime.py", path};
    po.capture_output = true;
    auto pr = run_process(po);
    INFO(pr.output);
    REQUIRE(pr.exit_code == 0);
    auto parsed = json::parse(pr.output);
    REQUIRE(parsed["defects"].empty());
    REQUIRE(parsed["crlf_only"] == true);
    REQUIRE(parsed["mime_version"] == "1.0");
    if (!msg["isDraft"].get<bool>()) REQUIRE(parsed["received"].get<int>() >= 1);  // transport headers
    REQUIRE(parsed["subject"] == msg["subject"]);
    REQUIRE(parsed["subject"] == item["name"]);
    REQUIRE(parsed["message_id"] == msg["internetMessageId"]);
    REQUIRE(parsed["has_html"] == (msg["body"]["contentType"] == "html"));
    // Every file attachment of the JSON is in the MIME with the same name and decoded size,
    // and $value returns exactly those bytes.
    std::size_t files = 0;
    for (auto& a : atts) {
      if (a["@odata.type"] != "#microsoft.graph.fileAttachment") continue;
      ++files;
      bool found = false;
      for (auto& p : parsed["attachments"])
        if (p["name"] == a["name"] && p["size"] == a["size"]) found = true;
      INFO(a["name"]);
      REQUIRE(found);
      auto raw = emu.graph(base + "/attachments/" + a["id"].get<std::string>() + "/$value", tok);
      REQUIRE(raw.body.size() == a["size"].get<std::size_t>());
    }
    std::size_t mime_files = 0;
    for (auto& p : parsed["attachments"]) mime_files += p["type"] != "message/rfc822";
    REQUIRE(mime_files == files);
  }
  REQUIRE(with_attachments > 5);
}

TEST_CASE("the same seed gives the same tenant byte for byte, activity changes the manifest", "[graph]") {
  EmulatorProcess a, b;
  auto ta = make_tenant(a, 35, 2, 25);
  auto tb = make_tenant(b, 35, 2, 25);
  auto ma = a.admin("GET", "/_emulator/tenants/" + ta.tenant + "/manifest");
  auto mb = b.admin("GET", "/_emulator/tenants/" + tb.tenant + "/manifest");
  REQUIRE(ma == mb);
  auto tok = a.token(ta.tenant, ta.client, ta.secret);
  auto tok_b = b.token(tb.tenant, tb.client, tb.secret);
  auto& item = ma["items"][3];
  const std::string path = "/v1.0/users/" + item["owner"].get<std::string>() + "/messages/" + item["id"].get<std::string>();
  REQUIRE(a.graph(path + "/$value", tok).body == b.graph(path + "/$value", tok_b).body);
  REQUIRE(a.graph_json(path, tok)["subject"] == b.graph_json(path, tok_b)["subject"]);
  a.admin("POST", "/_emulator/tenants/" + ta.tenant + "/activity", {{"seed", 1}, {"creates", 3}, {"updates", 3}, {"deletes", 2}});
  auto ma2 = a.admin("GET", "/_emulator/tenants/" + ta.tenant + "/manifest");
  REQUIRE(ma2["items"].size() == ma["items"].size() + 1);
  REQUIRE(ma2 != ma);
}

TEST_CASE("a state directory keeps tenants and activity across a restart", "[graph]") {
  TempDir state("emu-state");
  EmulatorProcess emu(state.path().string());
  auto t = make_tenant(emu, 36, 2, 10);
  emu.admin("POST", "/_emulator/tenants/" + t.tenant + "/activity", {{"seed", 4}, {"creates", 2}, {"moves", 2}});
  auto before = emu.admin("GET", "/_emulator/tenants/" + t.tenant + "/manifest");
  auto tok = emu.token(t.tenant, t.client, t.secret);
  auto u = first_user(emu, tok);
  auto r = walk_delta(emu, "/v1.0/users/" + u + "/mailFolders/inbox/messages/delta", tok);
  emu.restart();
  auto after = emu.admin("GET", "/_emulator/tenants/" + t.tenant + "/manifest");
  REQUIRE(after == before);
  // Tokens are signed with a persisted key, so the old access token still works.
  REQUIRE(emu.graph("/v1.0/users", tok).status == 200);
}

TEST_CASE("users without a mailbox answer MailboxNotEnabledForRESTAPI and stay out of the manifest", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 37, 3, 5, {{"unlicensed_users", 1}});
  auto tok = emu.token(t.tenant, t.client, t.secret);
  auto users = emu.graph_json("/v1.0/users", tok)["value"];
  REQUIRE(users.size() == 3);
  int refused = 0;
  for (auto& u : users) {
    auto r = emu.graph("/v1.0/users/" + u["id"].get<std::string>() + "/mailFolders", tok);
    if (r.status == 404) {
      ++refused;
      REQUIRE(json::parse(r.body)["error"]["code"] == "MailboxNotEnabledForRESTAPI");
    } else {
      REQUIRE(r.status == 200);
    }
  }
  REQUIRE(refused == 1);
  REQUIRE(emu.admin("GET", "/_emulator/tenants/" + t.tenant + "/manifest?category=mail")["items"].size() == 10);
}
