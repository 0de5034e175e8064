// Fidelity: the emulator's payloads use the property names, JSON types and
// annotations of the real service, checked against the CSDL-derived schemas and
// the recorded fixtures in ../shared/graph/fixtures.
#include <catch2/catch.hpp>

#include "emulator_support.hpp"

using namespace m365vault::test;

namespace {
// Every property the emulator sends exists on the type with a compatible JSON type.
void check_against_schema(const json& item, const std::string& type) {
  auto schema = load_fixture("schema/" + type + ".schema.json");
  auto& props = schema["definition"]["properties"];
  for (auto& [k, v] : item.items()) {
    if (k.find('@') != std::string::npos) continue;  // annotations (@odata.*, @removed, members@delta)
    INFO(type << "." << k << " = " << v.dump().substr(0, 80));
    REQUIRE(props.contains(k));
    auto& p = props[k];
    if (v.is_null()) {
      REQUIRE(p.value("nullable", true));
      continue;
    }
    if (p.contains("type")) {
      auto t = p["type"].get<std::string>();
      if (t == "string") REQUIRE(v.is_string());
      else if (t == "boolean") REQUIRE(v.is_boolean());
      else if (t == "integer" || t == "number") REQUIRE(v.is_number());
      else if (t == "array") REQUIRE(v.is_array());
    } else if (p.contains("$ref")) {
      REQUIRE((v.is_object() || v.is_string()));  // complex types are objects; enums are strings
    }
  }
}
}  // namespace

TEST_CASE("fidelity: users, groups, folders, messages and attachments match schemas and fixtures", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 51, 6, 30);
  auto tok = emu.token(t.tenant, t.client, t.secret);

  auto users = walk_delta(emu, "/v1.0/users/delta", tok);
  auto fixture_user = load_fixture("users/user-delta-default.json")["value"][0];
  for (auto& u : users.items) {
    check_against_schema(u, "user");
    for (auto& [k, v] : fixture_user.items()) REQUIRE(u.contains(k));  // same default property set
  }
  auto page = emu.graph_json("/v1.0/users/delta", tok);
  REQUIRE(page["@odata.context"].get<std::string>().find("/v1.0/$metadata#users") != std::string::npos);

  auto groups = walk_delta(emu, "/v1.0/groups/delta", tok);
  for (auto& g : groups.items) {
    check_against_schema(g, "group");
    for (auto& m : g["members@delta"]) REQUIRE(m["@odata.type"] == "#microsoft.graph.user");
  }

  const std::string u = users.items[0]["id"];
  auto folders = walk_delta(emu, "/v1.0/users/" + u + "/mailFolders/delta", tok);
  auto fixture_folder = load_fixture("mail/mailfolders-list.json")["value"][0];
  for (auto& f : folders.items) {
    if (f.contains("@odata.type")) {
      REQUIRE(f["@odata.type"] == "#microsoft.graph.mailSearchFolder");  // derived type: extra properties
      continue;
    }
    check_against_schema(f, "mailFolder");
    for (auto& [k, v] : fixture_folder.items()) REQUIRE(f.contains(k));
  }

  auto msgs = walk_delta(emu, "/v1.0/users/" + u + "/mailFolders/inbox/messages/delta", tok);
  REQUIRE(!msgs.items.empty());
  auto fixture_msg = load_fixture("mail/message-get.json");
  auto delta_fixture = load_fixture("mail/messages-delta-page1.json");
  auto fixture_file_att = load_fixture("mail/attachment-file.json");
  auto fixture_ref_att = load_fixture("mail/attachment-reference.json");
  int references = 0;
  REQUIRE(emu.graph_json("/v1.0/users/" + u + "/mailFolders/inbox/messages/delta", tok)["@odata.context"]
              .get<std::string>()
              .find("$metadata#Collection(message)") != std::string::npos);
  for (auto& m : msgs.items) {
    check_against_schema(m, "message");
    for (auto& [k, v] : delta_fixture["value"][0].items()) REQUIRE(m.contains(k));
    auto full = emu.graph_json("/v1.0/users/" + u + "/messages/" + m["id"].get<std::string>(), tok);
    for (auto& [k, v] : fixture_msg.items()) {
      INFO(k);
      REQUIRE(full.contains(k));
      REQUIRE(full[k].type() == v.type());
    }
    auto atts = emu.graph_json("/v1.0/users/" + u + "/messages/" + m["id"].get<std::string>() + "/attachments", tok);
    for (auto& a : atts["value"]) {
      auto type = a["@odata.type"].get<std::string>();
      check_against_schema(a, type == "#microsoft.graph.fileAttachment"        ? "fileAttachment"
                              : type == "#microsoft.graph.referenceAttachment" ? "referenceAttachment"
                                                                               : "itemAttachment");
      if (type == "#microsoft.graph.referenceAttachment") {
        ++references;
        for (auto& [k, v] : fixture_ref_att.items())
          if (k != "@odata.context") REQUIRE(a.contains(k));
      }
      if (type == "#microsoft.graph.fileAttachment") {
        for (auto& [k, v] : fixture_file_att.items())
          if (k != "@odata.context") REQUIRE(a.contains(k));  // the context sits on the collection
      } else {
        if (type == "#microsoft.graph.itemAttachment") REQUIRE(a["contentType"].is_null());
      }
    }
  }
  REQUIRE(references > 0);  // seed 51 has links shared as reference attachments in the inbox
  // Text bodies on request, acknowledged with Preference-Applied.
  auto r = emu.graph("/v1.0/users/" + u + "/messages/" + msgs.items[0]["id"].get<std::string>(), tok,
                     {{"Prefer", "outlook.body-content-type=\"text\""}});
  REQUIRE(json::parse(r.body)["body"]["contentType"] == "text");
  REQUIRE(r.header("preference-applied") == "outlook.body-content-type=\"text\"");
  REQUIRE(r.header("odata-version") == "4.0");
  auto echoed = emu.graph("/v1.0/users", tok, {{"client-request-id", "0b0c0d0e-1111-2222-3333-444455556666"}});
  REQUIRE(echoed.header("client-request-id") == "0b0c0d0e-1111-2222-3333-444455556666");
  REQUIRE(!echoed.header("request-id").empty());
  REQUIRE(echoed.header("content-type").rfind("application/json;odata.metadata=minimal", 0) == 0);
  REQUIRE(!r.header("request-id").empty());
  // Error envelope shape.
  auto e = json::parse(emu.graph("/v1.0/users/" + u + "/messages/AAMkAAAA", tok).body);
  auto shape = load_fixture("errors/error-shape-example.json");
  for (auto& [k, v] : shape["error"].items()) REQUIRE(e["error"].contains(k));
}

TEST_CASE("fidelity: contacts, contact folders, calendars and events match schemas and fixtures", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 52, 2, 1, {{"contacts_per_user", 12}, {"events_per_user", 25}});
  auto tok = emu.token(t.tenant, t.client, t.secret);
  const std::string u = emu.graph_json("/v1.0/users", tok)["value"][0]["id"];
  auto contact_fixture = load_fixture("contacts/contact-full.json");
  auto folders = emu.graph_json("/v1.0/users/" + u + "/contactFolders", tok);
  for (auto& f : folders["value"]) check_against_schema(f, "contactFolder");
  auto folder_fixture = load_fixture("contacts/contactfolders-list.json")["value"][0];
  for (auto& [k, v] : folder_fixture.items()) REQUIRE(folders["value"][0].contains(k));
  auto contacts = walk_delta(emu, "/v1.0/users/" + u + "/contactFolders/contacts/contacts/delta", tok);
  REQUIRE(!contacts.items.empty());
  for (auto& c : contacts.items) {
    check_against_schema(c, "contact");
    REQUIRE(c["@odata.etag"].is_string());
    for (auto& [k, v] : contact_fixture.items()) {
      if (k == "@odata.context") continue;
      INFO(k);
      REQUIRE(c.contains(k));
    }
  }
  auto cals = emu.graph_json("/v1.0/users/" + u + "/calendars", tok)["value"];
  auto cal_fixture = load_fixture("calendar/calendars-list.json")["value"][0];
  for (auto& c : cals) {
    check_against_schema(c, "calendar");
    for (auto& [k, v] : cal_fixture.items())
      if (k != "@odata.id") REQUIRE(c.contains(k));
  }
  auto view = walk_delta(emu, "/v1.0/users/" + u + "/calendarView/delta?startDateTime=2025-06-01T00:00:00Z&endDateTime=2026-06-01T00:00:00Z", tok);
  auto ev_fixture = load_fixture("calendar/calendarview-delta-page1.json")["value"][0];
  REQUIRE(!view.items.empty());
  for (auto& e : view.items) {
    check_against_schema(e, "event");
    for (auto& [k, v] : ev_fixture.items()) REQUIRE(e.contains(k));
    REQUIRE(e["@odata.type"] == "#microsoft.graph.event");
  }
  auto r = emu.graph("/v1.0/users/" + u + "/calendarView/delta?startDateTime=2025-06-01T00:00:00Z&endDateTime=2026-06-01T00:00:00Z", tok);
  REQUIRE(r.header("preference-applied").find("odata.track-changes") != std::string::npos);
}

TEST_CASE("fidelity: drives, driveItems, sites, lists and list items match schemas and fixtures", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 53, 2, 1, {{"drive_files_per_user", 10}, {"sites", 2}, {"files_per_site", 4}});
  auto tok = emu.token(t.tenant, t.client, t.secret);
  const std::string u = emu.graph_json("/v1.0/users", tok)["value"][0]["id"];
  auto drive = emu.graph_json("/v1.0/users/" + u + "/drive", tok);
  check_against_schema(drive, "drive");
  const std::string did = drive["id"];
  // The root as ODB returns it.
  auto root = emu.graph_json("/v1.0/drives/" + did + "/root", tok);
  check_against_schema(root, "driveItem");
  auto root_fixture = load_fixture("drive/driveitem-get-root-odb.json");
  for (auto& [k, v] : root_fixture.items()) {
    INFO(k);
    REQUIRE(root.contains(k));
    REQUIRE(root[k].type() == v.type());
  }
  REQUIRE(root["eTag"].get<std::string>().rfind("\"{", 0) == 0);  // quoted GUID forms on ODB
  REQUIRE(root["cTag"].get<std::string>().rfind("\"c:{", 0) == 0);
  auto delta = walk_delta(emu, "/v1.0/drives/" + did + "/root/delta", tok);
  auto page = emu.graph_json("/v1.0/drives/" + did + "/root/delta", tok);
  REQUIRE(page["@odata.context"].get<std::string>().find("$metadata#Collection(driveItem)") != std::string::npos);
  auto delta_fixture_item = load_fixture("drive/driveitem-delta-page1.json")["value"][1];
  for (auto& it : delta.items) {
    check_against_schema(it, "driveItem");
    for (auto& [k, v] : delta_fixture_item.items())
      if (k != "file") REQUIRE(it.contains(k));  // id, name; the facet differs per item
  }
  auto children = emu.graph_json("/v1.0/drives/" + did + "/root/children", tok)["value"];
  for (auto& c : children) check_against_schema(c, "driveItem");
  // Deleted items and later pages.
  emu.admin("POST", "/_emulator/tenants/" + t.tenant + "/activity",
            {{"seed", 9}, {"categories", {"files"}}, {"deletes", 4}, {"updates", 2}});
  for (auto& it : walk_delta(emu, delta.delta_link, tok).items) check_against_schema(it, "driveItem");
  auto latest = emu.graph_json("/v1.0/drives/" + did + "/root/delta?token=latest", tok);
  auto latest_fixture = load_fixture("drive/driveitem-delta-token-latest.json");
  for (auto& [k, v] : latest_fixture.items()) REQUIRE(latest.contains(k));
  // 410 resync: the fixture's body and header.
  emu.admin("PUT", "/_emulator/faults", {{"drive_resync_rate", 1.0}});
  auto gone = emu.graph(delta.delta_link, tok);
  REQUIRE(gone.status == 410);
  auto fixture_410 = load_fixture("errors/drive-410-resyncrequired.json");
  auto body_410 = json::parse(gone.body);
  REQUIRE(body_410["error"]["code"] == fixture_410["error"]["code"]);
  REQUIRE(body_410["error"]["message"] == fixture_410["error"]["message"]);
  for (auto& [k, v] : fixture_410["error"]["innerError"].items()) REQUIRE(body_410["error"]["innerError"].contains(k));
  REQUIRE(!gone.header("location").empty());
  emu.admin("PUT", "/_emulator/faults", json::object());
  auto malformed = json::parse(emu.graph("/v1.0/drives/" + did + "/root/delta?token=x", tok).body);
  REQUIRE(malformed == load_fixture("errors/drive-400-malformed-sync-token.json"));
  // Sites, libraries and lists.
  auto sites = emu.graph_json("/v1.0/sites", tok)["value"];
  auto site_fixture = load_fixture("sites/site-get.json");
  auto all_fixture = load_fixture("sites/sites-list-all.json")["value"][1];
  for (auto& s : sites) {
    check_against_schema(s, "site");
    auto one = emu.graph_json("/v1.0/sites/" + s["id"].get<std::string>(), tok);
    for (auto& [k, v] : site_fixture.items()) REQUIRE(one.contains(k));
    if (s.contains("root"))
      for (auto& [k, v] : all_fixture.items()) REQUIRE(s.contains(k));
  }
  const std::string sid = sites[1]["id"];
  auto libs = emu.graph_json("/v1.0/sites/" + sid + "/drives", tok)["value"];
  auto lib_fixture = load_fixture("drive/site-drives-list.json")["value"][0];
  for (auto& d : libs) {
    check_against_schema(d, "drive");
    for (auto& [k, v] : lib_fixture.items()) REQUIRE(d.contains(k));
  }
  auto lists = emu.graph_json("/v1.0/sites/" + sid + "/lists", tok)["value"];
  auto list_fixture = load_fixture("sites/site-lists.json")["value"][1];
  for (auto& l : lists) {
    check_against_schema(l, "list");
    for (auto& [k, v] : list_fixture.items()) REQUIRE(l.contains(k));
    if (l["list"]["template"] != "genericList") continue;
    auto items = emu.graph_json("/v1.0/sites/" + sid + "/lists/" + l["id"].get<std::string>() + "/items?expand=fields", tok);
    for (auto& i : items["value"]) {
      json shape = i;
      shape.erase("fields");  // an expanded navigation property, not a structural one
      check_against_schema(shape, "listItem");
      REQUIRE(i["fields"].is_object());
    }
  }
  // SharePoint 429 headers as in the recorded response.
  emu.admin("PUT", "/_emulator/faults", {{"sharepoint_ru_per_minute", 3}});
  HttpResult r;
  for (int i = 0; i < 5; ++i) r = emu.graph("/v1.0/sites", tok);
  REQUIRE(r.status == 429);
  for (auto h : {"retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"}) REQUIRE(!r.header(h).empty());
  emu.admin("PUT", "/_emulator/faults", json::object());
}

TEST_CASE("fidelity: teams, channels and channel messages match schemas and fixtures", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 54, 4, 1, {{"teams", 1}, {"messages_per_channel", 6}, {"sites", 0}});
  auto tok = emu.token(t.tenant, t.client, t.secret);
  const std::string team = emu.graph_json("/v1.0/groups", tok)["value"][0]["id"];
  auto tj = emu.graph_json("/v1.0/teams/" + team, tok);
  tj.erase("@odata.context");
  check_against_schema(tj, "team");
  auto channels = emu.graph_json("/v1.0/teams/" + team + "/channels", tok);
  auto ch_fixture = load_fixture("teams/channels-list.json")["value"][0];
  for (auto& c : channels["value"]) {
    check_against_schema(c, "channel");
    for (auto& [k, v] : ch_fixture.items()) REQUIRE(c.contains(k));
  }
  const std::string ch = channels["value"][0]["id"];
  auto page = emu.graph_json("/v1.0/teams/" + team + "/channels/" + ch + "/messages/delta?$expand=replies", tok);
  REQUIRE(page["@odata.context"].get<std::string>().find("$metadata#Collection(chatMessage)") != std::string::npos);
  auto fixture = load_fixture("teams/channel-messages-delta-page1.json")["value"][0];
  for (auto& m : page["value"]) {
    json shape = m;
    shape.erase("replies");
    check_against_schema(shape, "chatMessage");
    for (auto& [k, v] : fixture.items()) {
      INFO(k);
      REQUIRE(m.contains(k));
      if (!v.is_null() && !m[k].is_null()) REQUIRE(m[k].type() == v.type());
    }
    for (auto& r : m["replies"]) check_against_schema(r, "chatMessage");
  }
}
