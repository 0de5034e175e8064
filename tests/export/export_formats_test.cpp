// The pieces of an export, each read back by a parser that knows nothing of ours:
// unzip -t and Python's zipfile for the zip, Python's email and mailbox for .eml
// and mbox, the icalendar package and libical for .ics, vobject for .vcf.
#include <catch2/catch.hpp>
#include <libical/ical.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "emulator/emulator_support.hpp"
#include "export/export_support.hpp"
#include "m365vault/core/error.hpp"
#include "m365vault/export/entry_names.hpp"
#include "m365vault/export/formats.hpp"
#include "m365vault/export/zip_stream.hpp"
#include "m365vault/storage/crypto.hpp"
#include "support/temp_dir.hpp"

using namespace m365vault;
using namespace m365vault::exporting;
using nlohmann::json;

namespace {

void write_binary(const std::filesystem::path& p, std::string_view bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string sha_hex(std::string_view s) { return storage::crypto::to_hex(storage::crypto::sha256(s)); }

}  // namespace

TEST_CASE("entry names: nothing escapes the folder, nothing Windows refuses, duplicates numbered", "[unit]") {
  CHECK(safe_component("..") == "_");
  CHECK(safe_component(".") == "_");
  CHECK(safe_component("") == "_");
  CHECK(safe_component("a/b\\c") == "a_b_c");
  CHECK(safe_component("Re: what? <now> \"x\" | y*") == "Re_ what_ _now_ _x_ _ y_");
  CHECK(safe_component("trailing. . ") == "trailing");
  CHECK(safe_component("CON") == "_CON");
  CHECK(safe_component("com1.txt") == "_com1.txt");
  CHECK(safe_component("COM10") == "COM10");
  CHECK(safe_component("tab\there\x01") == "tab_here_");
  CHECK(safe_component("Grüße 🙂") == "Grüße 🙂");
  CHECK(safe_component(std::string("bad\xff\xfe utf8")) == "bad__ utf8");
  auto longest = safe_component(std::string(150, 'a') + std::string(100, '\xc3') );  // lone lead bytes
  CHECK(longest.size() <= 200);
  auto umlauts = safe_component(std::string(300, 'x').replace(199, 2, "ü"));
  CHECK(umlauts.size() == 199);  // the 2-byte character at 199 would pass 200: cut before it

  CHECK(safe_path("/etc/passwd") == "etc/passwd");
  CHECK(safe_path("../../x/./y") == "_/_/x/_/y");
  CHECK(safe_path("Inbox\\Sub//Deep") == "Inbox/Sub/Deep");

  EntryNames names;
  CHECK(names.unique("Mail/Inbox", "Hello", ".eml") == "Mail/Inbox/Hello.eml");
  CHECK(names.unique("Mail/Inbox", "Hello", ".eml") == "Mail/Inbox/Hello (2).eml");
  CHECK(names.unique("Mail/Inbox", "HELLO", ".eml") == "Mail/Inbox/HELLO (3).eml");  // case-insensitive filesystems
  CHECK(names.unique("Mail/Inbox", "../Hello", ".eml") == "Mail/Inbox/.._Hello.eml");
  CHECK(names.unique("Mail/Other", "Hello", ".eml") == "Mail/Other/Hello.eml");
  CHECK(names.unique_dir("Mail", "Archive") == "Mail/Archive");
  CHECK(names.unique_dir("Mail", "archive") == "Mail/archive (2)");  // two folders differing in case
  CHECK(names.unique("Mail", "Archive", "") == "Mail/Archive (3)");   // a file cannot take a folder's name
  EntryNames again;  // same order in, same names out
  CHECK(again.unique("Mail/Inbox", "Hello", ".eml") == "Mail/Inbox/Hello.eml");
  CHECK(again.unique("Mail/Inbox", "Hello", ".eml") == "Mail/Inbox/Hello (2).eml");
}

TEST_CASE("zip stream: streamed entries with data descriptors pass unzip -t and read back exactly", "[unit]") {
  test::TempDir dir("m365vault-export");
  auto path = dir / "out.zip";
  std::ofstream out(path, std::ios::binary);
  ZipStream zip;
  std::size_t largest_take = 0;
  auto drain = [&] {
    auto bytes = zip.take();
    largest_take = std::max(largest_take, bytes.size());
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };
  // Incompressible bytes, stored, fed in 256 KiB pieces: the output never piles up.
  std::string random;
  for (int i = 0; random.size() < (3u << 20); ++i) {
    auto d = storage::crypto::sha256("block " + std::to_string(i));
    random.append(reinterpret_cast<const char*>(d.data()), d.size());
  }
  zip.begin("Files/Documents/random.bin", 1700000000, false);
  drain();
  for (std::size_t off = 0; off < random.size(); off += 256 * 1024) {
    zip.write(std::string_view(random).substr(off, 256 * 1024));
    drain();
  }
  zip.end();
  drain();
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "line " + std::to_string(i) + " of a text that deflates well\r\n";
  zip.begin("Mail/Grüße/Ünïcode 🙂.eml", 1700000000, true);
  zip.write(text);
  zip.end();
  drain();
  zip.begin("empty.txt", 0, true);
  zip.end();
  zip.finish();
  drain();
  out.close();
  CHECK(largest_take <= 256 * 1024 + 4096);

  std::string log;
  INFO(log);
  REQUIRE(test::unzip_test(path, log) == 0);
  auto seen = test::check_export("zip", path);
  REQUIRE(seen["testzip"].is_null());
  auto& e = seen["entries"];
  REQUIRE(e.size() == 3);
  CHECK(e["Files/Documents/random.bin"]["sha256"] == sha_hex(random));
  CHECK(e["Files/Documents/random.bin"]["data_descriptor"] == true);
  CHECK(e["Mail/Grüße/Ünïcode 🙂.eml"]["sha256"] == sha_hex(text));
  CHECK(e["Mail/Grüße/Ünïcode 🙂.eml"]["utf8_flag"] == true);
  CHECK(e["empty.txt"]["size"] == 0);
  CHECK(zip.bytes_out() == std::filesystem::file_size(path));
  CHECK(std::filesystem::file_size(path) < random.size() + text.size() / 4);  // the text was deflated
}

TEST_CASE("zip stream: misuse is an error, not a corrupt archive", "[unit]") {
  ZipStream zip;
  CHECK_THROWS_AS(zip.write("x"), Error);
  zip.begin("a", 0, true);
  CHECK_THROWS_AS(zip.begin("b", 0, true), Error);
}

TEST_CASE("vcard: a full Graph contact reads back in vobject with its fields", "[unit]") {
  auto contact = test::load_fixture("contacts/contact-full.json");
  contact["personalNotes"] = "Line one, with; specials\\ and\r\nline two. " + std::string(80, 'x') + " Grüße 🙂 " +
                             std::string(40, 'y');
  auto card = vcard_from_graph(contact);
  for (std::size_t pos = 0, next; (next = card.find("\r\n", pos)) != std::string::npos; pos = next + 2)
    CHECK(next - pos <= 75);  // folded at 75 octets
  test::TempDir dir("m365vault-export");
  write_binary(dir / "c.vcf", card);
  auto seen = test::check_export("vcf", dir / "c.vcf");
  REQUIRE(seen["cards"].size() == 1);
  auto& c = seen["cards"][0];
  CHECK(c["fn"] == "Wo. Random Peterson Person Jr.");
  CHECK(c["n"] == json::array({"Person", "Random"}));
  CHECK(c["emails"] == json::array({"mockemail@provider.com", "anotheremail@place.com"}));
  CHECK(c["tels"] == json::array({"123091230921", "00000111111"}));
  CHECK(c["note"] == contact["personalNotes"].get<std::string>().replace(contact["personalNotes"].get<std::string>().find("\r\n"), 2, "\n"));
  CHECK(c["org"] == json::array({"Company Name", "Mangrove"}));
  CHECK(c["uid"] == contact["id"]);

  CHECK_THROWS_AS(vcard_from_graph(json{{"displayName", 42}}), Error);
  CHECK_THROWS_WITH(vcard_from_graph(json{{"displayName", 42}}), Catch::Contains("displayName"));
}

TEST_CASE("icalendar: a series with an exception and a cancelled occurrence, a single and an all-day event", "[unit]") {
  json master = {{"id", "M1"},
                 {"iCalUId", "040000008200E00074C5B7101A82E008AAAA"},
                 {"type", "seriesMaster"},
                 {"subject", "Weekly sync"},
                 {"createdDateTime", "2026-01-01T09:00:00Z"},
                 {"lastModifiedDateTime", "2026-01-02T09:00:00Z"},
                 {"body", {{"contentType", "html"}, {"content", "<html><body><p>Agenda &amp; notes</p></body></html>"}}},
                 {"start", {{"dateTime", "2026-01-05T10:00:00.0000000"}, {"timeZone", "UTC"}}},
                 {"end", {{"dateTime", "2026-01-05T10:30:00.0000000"}, {"timeZone", "UTC"}}},
                 {"isAllDay", false},
                 {"isReminderOn", true},
                 {"reminderMinutesBeforeStart", 15},
                 {"location", {{"displayName", "Room 1"}}},
                 {"recurrence",
                  {{"pattern", {{"type", "weekly"}, {"interval", 1}, {"daysOfWeek", {"monday"}}, {"firstDayOfWeek", "sunday"}}},
                   {"range", {{"type", "endDate"}, {"startDate", "2026-01-05"}, {"endDate", "2026-03-30"}}}}},
                 {"cancelledOccurrences", {"OID.M1.2026-01-19"}},
                 {"organizer", {{"emailAddress", {{"name", "Ann Owner"}, {"address", "ann@example.com"}}}}},
                 {"attendees",
                  {{{"type", "required"}, {"status", {{"response", "accepted"}}}, {"emailAddress", {{"name", "Bob"}, {"address", "bob@example.com"}}}},
                   {{"type", "optional"}, {"status", {{"response", "none"}}}, {"emailAddress", {{"name", "Cy"}, {"address", "cy@example.com"}}}}}}};
  json exception = master;
  exception["id"] = "E1";
  exception["iCalUId"] = "different-per-occurrence";
  exception["type"] = "exception";
  exception["seriesMasterId"] = "M1";
  exception["recurrence"] = nullptr;
  exception["cancelledOccurrences"] = json::array();
  exception["subject"] = "Weekly sync (moved)";
  exception["originalStart"] = "2026-01-12T10:00:00Z";
  exception["start"]["dateTime"] = "2026-01-13T15:00:00.0000000";
  exception["end"]["dateTime"] = "2026-01-13T15:30:00.0000000";
  json occurrence = exception;
  occurrence["id"] = "O1";
  occurrence["type"] = "occurrence";
  json single = {{"id", "S1"}, {"type", "singleInstance"}, {"subject", "Dentist"},
                 {"start", {{"dateTime", "2026-02-01T08:00:00.0000000"}, {"timeZone", "Europe/Berlin"}}},
                 {"end", {{"dateTime", "2026-02-01T09:00:00.0000000"}, {"timeZone", "Europe/Berlin"}}}};
  json all_day = {{"id", "A1"}, {"type", "singleInstance"}, {"subject", "Holiday"}, {"isAllDay", true}, {"isCancelled", true},
                  {"start", {{"dateTime", "2026-05-01T00:00:00.0000000"}, {"timeZone", "UTC"}}},
                  {"end", {{"dateTime", "2026-05-02T00:00:00.0000000"}, {"timeZone", "UTC"}}}};
  auto ics = icalendar_from_graph({master, exception, occurrence, single, all_day});
  INFO(ics);

  // libical parses it back and finds nothing its restrictions refuse.
  icalcomponent* parsed = icalcomponent_new_from_string(ics.c_str());
  REQUIRE(parsed != nullptr);
  CHECK(icalcomponent_count_components(parsed, ICAL_VEVENT_COMPONENT) == 4);
  CHECK(icalcomponent_count_errors(parsed) == 0);
  icalcomponent_free(parsed);

  test::TempDir dir("m365vault-export");
  write_binary(dir / "cal.ics", ics);
  auto seen = test::check_export("ics", dir / "cal.ics");
  auto& ev = seen["events"];
  REQUIRE(ev.size() == 4);
  CHECK(ev[0]["uid"] == "040000008200E00074C5B7101A82E008AAAA");
  CHECK(ev[0]["rrule"] == "FREQ=WEEKLY;UNTIL=20260330T235959Z;BYDAY=MO;WKST=SU");
  CHECK(ev[0]["exdates"] == 1);
  CHECK(ev[0]["attendees"] == 2);
  CHECK(ev[0]["organizer"] == "mailto:ann@example.com");
  CHECK(ev[1]["uid"] == ev[0]["uid"]);  // the override belongs to the series
  CHECK(ev[1]["recurrence_id"] == "2026-01-12T10:00:00+00:00");
  CHECK(ev[1]["start"] == "2026-01-13T15:00:00+00:00");
  CHECK(ev[2]["start"] == "2026-02-01T08:00:00+01:00");  // Berlin, with its VTIMEZONE
  CHECK(seen["timezones"] == 1);
  CHECK(ev[3]["start"] == "2026-05-01");

  // As a backup stores a series: its exceptions inside the master
  // (`exceptionOccurrences`), written as the same overrides; one also exported as
  // an item of its own is written once.
  json stored_master = master;
  stored_master["exceptionOccurrences"] = json::array({exception});
  for (auto& events : {std::vector<json>{stored_master}, std::vector<json>{stored_master, exception}}) {
    write_binary(dir / "stored.ics", icalendar_from_graph(events));
    auto stored = test::check_export("ics", dir / "stored.ics")["events"];
    REQUIRE(stored.size() == 2);
    CHECK(stored[1]["uid"] == stored[0]["uid"]);
    CHECK(stored[1]["recurrence_id"] == "2026-01-12T10:00:00+00:00");
    CHECK(stored[1]["summary"] == "Weekly sync (moved)");
    CHECK(stored[0]["exdates"] == 1);
  }

  json bad = single;
  bad["recurrence"] = {{"pattern", {{"type", "fortnightly"}}}};
  CHECK_THROWS_WITH(icalendar_from_graph({bad}), Catch::Contains("fortnightly"));
  CHECK_THROWS_WITH(icalendar_from_graph({json{{"id", "x"}, {"subject", "no start"}}}), Catch::Contains("start"));
}

TEST_CASE("mbox: From lines quoted mboxrd-style, every message back byte for byte at every split", "[unit]") {
  std::vector<std::string> messages = {
      "From: a@example.com\r\nSubject: one\r\n\r\nFrom the start\r\n>From quoted\r\n>>From twice\r\nFrom\r\nFro\r\n",
      "Subject: two\r\n\r\nno newline at the end, From here",
      "Subject: three\n\nFrom x\n\n>From y\n"};
  std::string whole;
  for (auto& m : messages) {
    whole += mbox_from_line("Ann <ann@example.com>", "2026-01-05T10:00:00Z");
    MboxQuoter q;
    q.feed(m, whole);
    q.finish(whole);
  }
  CHECK(whole.starts_with("From ann@example.com Mon Jan  5 10:00:00 2026\n"));
  // Fed in pieces split at every position, the output is the same.
  for (std::size_t split = 1; split < messages[0].size(); ++split) {
    std::string a, b;
    MboxQuoter q1, q2;
    q1.feed(messages[0], a);
    q1.finish(a);
    q2.feed(std::string_view(messages[0]).substr(0, split), b);
    q2.feed(std::string_view(messages[0]).substr(split), b);
    q2.finish(b);
    REQUIRE(a == b);
  }
  test::TempDir dir("m365vault-export");
  write_binary(dir / "f.mbox", whole);
  auto seen = test::check_export("mbox", dir / "f.mbox");
  REQUIRE(seen["messages"].size() == messages.size());
  CHECK(seen["messages"][0]["sha256"] == sha_hex(messages[0]));
  CHECK(seen["messages"][1]["sha256"] == sha_hex(messages[1] + "\n"));  // the newline mbox needs to end a line
  CHECK(seen["messages"][2]["sha256"] == sha_hex(messages[2]));
  CHECK(mbox_from_line(std::nullopt, std::nullopt) == "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n");
}
