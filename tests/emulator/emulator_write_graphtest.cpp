// Restore-side writes: folders (ErrorFolderExists), messages by JSON with MAPI
// extended properties and by MIME (draft), attachments direct and by upload
// session, move, delete, contacts and events (invitations counted), persistence.
#include <catch2/catch.hpp>

#include "emulator_support.hpp"

using namespace m365vault::test;


TEST_CASE("restore writes: folders, JSON and MIME messages, attachments, upload sessions, move, delete", "[graph]") {
  TempDir state("emu-write-state");
  EmulatorProcess emu(state.path().string());
  auto t = make_tenant(emu, 71, 2, 5);
  GraphWriter w{emu, emu.token(t.tenant, t.client, t.secret)};
  const std::string u = emu.graph_json("/v1.0/users", w.tok)["value"][0]["id"];
  const std::string base = "/v1.0/users/" + u;

  auto folder = w.post(base + "/mailFolders", {{"displayName", "Restored ✓"}, {"isHidden", false}});
  REQUIRE(folder["displayName"] == "Restored ✓");
  auto dup = w.post(base + "/mailFolders", {{"displayName", "restored ✓"}}, 409);
  REQUIRE(dup["error"]["code"] == "ErrorFolderExists");
  auto child = w.post(base + "/mailFolders/" + folder["id"].get<std::string>() + "/childFolders", {{"displayName", "2024"}});
  REQUIRE(child["parentFolderId"] == folder["id"]);

  // JSON route: the MAPI flags make it a sent/received message, not a draft.
  auto req = load_fixture("mail/message-restore-request-with-extended-props.json");
  auto msg = w.post(base + "/mailFolders/" + child["id"].get<std::string>() + "/messages", req);
  REQUIRE(msg["isDraft"] == false);
  REQUIRE(msg["parentFolderId"] == child["id"]);
  for (auto& p : req["singleValueExtendedProperties"]) {
    if (p["id"] == "SystemTime 0x0039") REQUIRE(msg["sentDateTime"] == p["value"]);
    if (p["id"] == "SystemTime 0x0E06") REQUIRE(msg["receivedDateTime"] == p["value"]);
  }
  REQUIRE(msg["subject"] == req["subject"]);
  auto draft = w.post(base + "/mailFolders/inbox/messages", {{"subject", "no flags"}, {"body", {{"contentType", "text"}, {"content", "x"}}}});
  REQUIRE(draft["isDraft"] == true);
  // MIME into a folder is refused; MIME to /messages lands in Drafts.
  const std::string mime = "From: A <a@example.com>\r\nTo: B <b@example.com>\r\nSubject: imported\r\nMessage-ID: <x1@example.com>\r\n"
                           "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n";
  REQUIRE(w.send("POST", base + "/mailFolders/inbox/messages", base64_encode(mime), "text/plain").status == 400);
  auto r = w.send("POST", base + "/messages", base64_encode(mime), "text/plain");
  REQUIRE(r.status == 201);
  auto imported = json::parse(r.body);
  REQUIRE(imported["isDraft"] == true);
  REQUIRE(imported["subject"] == "imported");
  auto drafts = emu.graph_json(base + "/mailFolders/drafts", w.tok);
  REQUIRE(imported["parentFolderId"] == drafts["id"]);
  REQUIRE(emu.graph(base + "/messages/" + imported["id"].get<std::string>() + "/$value", w.tok).body == mime);
  auto bad = w.send("POST", base + "/messages", "***not base64***", "text/plain");
  REQUIRE(bad.status == 400);
  REQUIRE(json::parse(bad.body) == load_fixture("mail/message-create-mime-error-400.json"));

  // Attachments: direct up to 3 MB, upload session above.
  const std::string mid = msg["id"];
  auto att = w.post(base + "/messages/" + mid + "/attachments",
                    {{"@odata.type", "#microsoft.graph.fileAttachment"}, {"name", "small.txt"}, {"contentType", "text/plain"},
                     {"contentBytes", base64_encode("hello attachment")}});
  REQUIRE(att["size"] == 16);
  REQUIRE(w.post(base + "/messages/" + mid + "/attachments",
                 {{"@odata.type", "#microsoft.graph.fileAttachment"}, {"name", "big.bin"}, {"contentBytes", base64_encode(std::string(3500000, 'x'))}},
                 413)["error"]["code"].is_string());
  const std::size_t big = 5 * 1024 * 1024 + 123;
  std::string payload(big, '\0');
  for (std::size_t i = 0; i < big; ++i) payload[i] = static_cast<char>((i * 131) ^ (i >> 9));
  auto session = w.post(base + "/messages/" + mid + "/attachments/createUploadSession",
                        {{"AttachmentItem", {{"attachmentType", "file"}, {"name", "big.bin"}, {"size", big}}}});
  REQUIRE(session["nextExpectedRanges"] == json::array({"0-"}));
  const std::string url = session["uploadUrl"];
  auto put = [&](std::size_t from, std::size_t to, bool auth) {
    std::vector<std::pair<std::string, std::string>> h = {
        {"Content-Range", "bytes " + std::to_string(from) + "-" + std::to_string(to - 1) + "/" + std::to_string(big)},
        {"Content-Type", "application/octet-stream"}};
    if (auth) h.emplace_back("Authorization", "Bearer " + w.tok);
    return emu.call("PUT", url, h, payload.substr(from, to - from));
  };
  REQUIRE(put(0, 1024, true).status == 401);  // the upload URL must not get the bearer token
  auto p1 = put(0, 4 * 1024 * 1024, false);
  REQUIRE(p1.status == 200);
  REQUIRE(json::parse(p1.body)["NextExpectedRanges"] == json::array({std::to_string(4 * 1024 * 1024)}));
  REQUIRE(put(0, 1024, false).status == 416);  // overlap
  auto p2 = put(4 * 1024 * 1024, big, false);
  REQUIRE(p2.status == 201);
  REQUIRE(p2.body.empty());
  REQUIRE(p2.header("location").find("/attachments('") != std::string::npos);
  auto atts = emu.graph_json(base + "/messages/" + mid + "/attachments", w.tok)["value"];
  REQUIRE(atts.size() == 2);
  std::string big_id;
  for (auto& a : atts)
    if (a["name"] == "big.bin") big_id = a["id"];
  REQUIRE(emu.graph(base + "/messages/" + mid + "/attachments/" + big_id + "/$value", w.tok).body == payload);

  // Move gives a new REST id; delete removes it.
  auto moved = w.post(base + "/messages/" + mid + "/move", {{"destinationId", "archive"}});
  REQUIRE(moved["id"] != mid);
  REQUIRE(emu.graph(base + "/messages/" + mid, w.tok).status == 404);
  auto del = w.send("DELETE", base + "/messages/" + moved["id"].get<std::string>(), "");
  REQUIRE(del.status == 204);
  REQUIRE(emu.graph(base + "/messages/" + moved["id"].get<std::string>(), w.tok).status == 404);

  // Everything survives a restart (the journal replays the writes).
  auto before = emu.admin("GET", "/_emulator/tenants/" + t.tenant + "/manifest?category=mail");
  emu.restart();
  REQUIRE(emu.admin("GET", "/_emulator/tenants/" + t.tenant + "/manifest?category=mail") == before);
}

TEST_CASE("restore writes: named extended properties are stored, PATCHed and returned by $expand", "[graph]") {
  TempDir state("emu-write-xprop");
  EmulatorProcess emu(state.path().string());
  auto t = make_tenant(emu, 72, 1, 2);
  GraphWriter w{emu, emu.token(t.tenant, t.client, t.secret)};
  const std::string u = emu.graph_json("/v1.0/users", w.tok)["value"][0]["id"];
  const std::string base = "/v1.0/users/" + u;
  const std::string id = "String {6f1d3c52-8a0e-4e7b-9c41-2d5b7a90e3f4} Name m365vaultRestorePending";
  const std::string expand =
      "$expand=singleValueExtendedProperties($filter=id%20eq%20%27String%20%7B6f1d3c52-8a0e-4e7b-9c41-2d5b7a90e3f4%7D"
      "%20Name%20m365vaultRestorePending%27)";
  auto msg = w.post(base + "/mailFolders/inbox/messages",
                    {{"subject", "marked"},
                     {"internetMessageId", "<xprop@example.com>"},
                     {"singleValueExtendedProperties",
                      {{{"id", "Integer 0x0E07"}, {"value", "4"}}, {{"id", id}, {"value", "pending r1"}}}}});
  const std::string mid = msg["id"];
  // Not expanded: absent, as in Graph.
  REQUIRE_FALSE(emu.graph_json(base + "/messages/" + mid, w.tok).contains("singleValueExtendedProperties"));
  auto got = emu.graph_json(base + "/messages/" + mid + "?$select=id,subject&" + expand, w.tok);
  REQUIRE(got["singleValueExtendedProperties"] == json::array({{{"id", id}, {"value", "pending r1"}}}));
  auto listed = emu.graph_json(base + "/mailFolders/inbox/messages?$top=1000&$select=id,internetMessageId&" + expand, w.tok);
  int marked = 0;
  for (auto& m : listed["value"]) {
    if (m["id"] == mid) {
      REQUIRE(m["singleValueExtendedProperties"][0]["value"] == "pending r1");
      ++marked;
    } else {
      REQUIRE_FALSE(m.contains("singleValueExtendedProperties"));  // generated messages carry none
    }
  }
  REQUIRE(marked == 1);
  // PATCH replaces the value by id (case-insensitive id match).
  std::string lower_id = id;
  for (auto& ch : lower_id) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  json patch = {{"singleValueExtendedProperties", {{{"id", lower_id}, {"value", "complete"}}}}};
  auto r = w.send("PATCH", base + "/messages/" + mid, patch.dump());
  REQUIRE(r.status == 200);
  got = emu.graph_json(base + "/messages/" + mid + "?" + expand, w.tok);
  REQUIRE(got["singleValueExtendedProperties"] == json::array({{{"id", id}, {"value", "complete"}}}));
  REQUIRE(got["isDraft"] == false);
  // What the emulator cannot patch is refused, not silently ignored.
  REQUIRE(w.send("PATCH", base + "/messages/" + mid, json{{"subject", "x"}}.dump()).status == 400);
}

TEST_CASE("restore writes: contact folders, contacts, calendars and events, attendees count as invitations", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 72, 2, 1, {{"contacts_per_user", 2}, {"events_per_user", 2}});
  GraphWriter w{emu, emu.token(t.tenant, t.client, t.secret)};
  const std::string u = emu.graph_json("/v1.0/users", w.tok)["value"][0]["id"];
  const std::string base = "/v1.0/users/" + u;
  auto cf = w.post(base + "/contactFolders", {{"displayName", "Restored contacts"}});
  REQUIRE(w.post(base + "/contactFolders", {{"displayName", "Restored contacts"}}, 409)["error"]["code"] == "ErrorFolderExists");
  auto contact = w.post(base + "/contactFolders/" + cf["id"].get<std::string>() + "/contacts", load_fixture("contacts/contact-create-request.json"));
  REQUIRE(contact["parentFolderId"] == cf["id"]);
  REQUIRE(contact["givenName"] == load_fixture("contacts/contact-create-request.json")["givenName"]);
  auto r = walk_delta(emu, base + "/contactFolders/" + cf["id"].get<std::string>() + "/contacts/delta", w.tok);
  REQUIRE(r.items.size() == 1);

  auto cal = w.post(base + "/calendars", {{"name", "Restored calendar"}});
  auto request = load_fixture("calendar/event-create-request.json");
  REQUIRE(!request["attendees"].empty());
  emu.call("DELETE", "/_emulator/stats");
  auto before = emu.admin("GET", "/_emulator/stats")["invitations_sent"].get<int>();
  auto quiet = request;
  quiet["attendees"] = json::array();
  auto ev = w.post(base + "/calendars/" + cal["id"].get<std::string>() + "/events", quiet);
  REQUIRE(ev["subject"] == request["subject"]);
  REQUIRE(emu.admin("GET", "/_emulator/stats")["invitations_sent"] == before);  // a restore that sends none
  w.post(base + "/events", request);
  REQUIRE(emu.admin("GET", "/_emulator/stats")["invitations_sent"] == before + static_cast<int>(request["attendees"].size()));
  auto events = walk_delta(emu, "/beta/users/" + u + "/calendars/" + cal["id"].get<std::string>() + "/events/delta", w.tok);
  REQUIRE(events.items.size() == 1);
}
