// ZipExport over an in-memory content source (a fake: the real repository is in
// the graph tests): layout, mbox and .ics grouping, faults, and the manifest,
// all read back with unzip -t and Python's parsers.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>

#include <fstream>
#include <map>

#include "export/export_support.hpp"
#include "m365vault/core/error.hpp"
#include "m365vault/export/zip_export.hpp"
#include "support/temp_dir.hpp"

using namespace m365vault;
using namespace m365vault::exporting;
using boost::asio::awaitable;
using nlohmann::json;

namespace {

class MapSource : public ContentSource {
 public:
  std::map<std::string, std::string> content;  // by version id; absent: the read fails
  awaitable<void> read(const storage::ItemVersion& v, net::BodySink& sink) override {
    auto it = content.find(v.version_id);
    if (it == content.end()) throw Error(Errc::data_corrupt, "blob of version '" + v.version_id + "' failed authentication");
    // In 1 MiB pieces, like the repository's chunks.
    for (std::size_t off = 0; off < it->second.size(); off += 1 << 20) {
      auto piece = std::string_view(it->second).substr(off, 1 << 20);
      co_await sink.write(piece);
    }
  }
};

class FileSink : public net::BodySink {
 public:
  explicit FileSink(const std::filesystem::path& p) : out(p, std::ios::binary) {}
  awaitable<void> write(std::string_view bytes) override {
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    largest = std::max(largest, bytes.size());
    co_return;
  }
  std::ofstream out;
  std::size_t largest = 0;
};

ExportEntry entry(MapSource& src, const std::string& id, const std::string& kind, storage::Category cat,
                  const std::string& name, std::optional<std::string> path, std::optional<std::string> content) {
  ExportEntry e;
  e.version.item_id = "i" + id;
  e.version.version_id = "v" + id;
  e.version.owner_id = "o1";
  e.version.kind = kind;
  e.version.category = cat;
  e.version.name = name;
  if (kind == "message") e.version.subject = name;
  e.version.modified_at = "2026-01-05T10:00:00Z";
  e.version.content_blobs = {"blob"};
  e.version.content_size = content ? static_cast<long long>(content->size()) : 10;
  if (content) src.content[e.version.version_id] = *content;
  e.owner_label = "adele@contoso.com";
  e.container_path = std::move(path);
  return e;
}

void run(boost::asio::io_context& io, awaitable<void> a) {
  auto f = boost::asio::co_spawn(io, std::move(a), boost::asio::use_future);
  io.run();
  io.restart();
  f.get();
}

const std::string kMime1 = "From: a@example.com\r\nSubject: Hello\r\nMessage-ID: <1@x>\r\n\r\nFrom the top\r\n";
const std::string kMime2 = "From: b@example.com\r\nSubject: Hello\r\nMessage-ID: <2@x>\r\n\r\n>From quoted\r\n";
const std::string kEvent = R"({"id":"E1","type":"singleInstance","subject":"Review","start":{"dateTime":"2026-01-05T10:00:00.0000000","timeZone":"UTC"},"end":{"dateTime":"2026-01-05T11:00:00.0000000","timeZone":"UTC"}})";
const std::string kContact = R"({"id":"C1","displayName":"Bob Example","emailAddresses":[{"address":"bob@example.com"}]})";
// A post with an inline image and two things that must not run when the page is opened.
const std::string kPost =
    R"({"id":"1700000000000","messageType":"message","from":{"user":{"displayName":"Adele Vance"}},)"
    R"("createdDateTime":"2026-01-05T10:00:00Z","body":{"contentType":"html","content":"<p>Hi <img src=\"https://graph.microsoft.com/v1.0/teams/t1/channels/19:c/messages/1700000000000/hostedContents/aGMx/$value\"></p><script>alert(1)</script><img src=x onerror=alert(2)>"}})";
const std::string kReply =
    R"({"id":"1700000000001","replyToId":"1700000000000","messageType":"message","from":{"user":{"displayName":"Bob"}},)"
    R"("createdDateTime":"2026-01-05T10:05:00Z","lastEditedDateTime":"2026-01-05T10:06:00Z","body":{"contentType":"text","content":"<b>not bold</b>"}})";

}  // namespace

TEST_CASE("zip export: every kind in its folder, faults listed, manifest hashes the files", "[unit]") {
  for (bool mbox : {false, true}) {
    DYNAMIC_SECTION("mbox " << mbox) {
      test::TempDir dir("m365vault-export");
      auto path = dir / "export.zip";
      MapSource src;
      std::string big(ZipExport::kWholeItemLimit + 3 * (1 << 20) + 17, 'z');
      for (std::size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + i % 26);
      std::vector<ExportEntry> entries = {
          entry(src, "1", "message", storage::Category::mail, "Hello", "Inbox", kMime1),
          entry(src, "2", "message", storage::Category::mail, "Hello", "Inbox", kMime2),
          entry(src, "3", "message", storage::Category::mail, "Broken", "Inbox", std::nullopt),
          entry(src, "4", "message", storage::Category::mail, "Deep", "Inbox/Sub: 1", kMime1),
          entry(src, "5", "contact", storage::Category::contacts, "Bob Example", "Contacts", kContact),
          entry(src, "6", "contact", storage::Category::contacts, "Bad", "Contacts", "{not json"),
          entry(src, "7", "event", storage::Category::calendar, "Review", "Calendar", kEvent),
          entry(src, "8", "file", storage::Category::onedrive, "report.txt", "root/Documents", "quarterly\n"),
          entry(src, "9", "file", storage::Category::onedrive, "big.bin", "root/Documents", big),
          entry(src, "10", "file", storage::Category::onedrive, "../../etc/passwd", "../..", "not there\n"),
          // A channel in thread order (exports.cpp's sort key): its image, the post, its reply.
          entry(src, "12", "hosted_content", storage::Category::teams, "image 1", "General", "\x89PNG..."),
          entry(src, "11", "message", storage::Category::teams, "Hello team", "General", kPost),
          entry(src, "13", "message", storage::Category::teams, "Re", "General", kReply),
      };
      entries[entries.size() - 3].version.content_type = "image/png";
      entries[entries.size() - 3].version.graph_id = "19:c/1700000000000/hc/aGMx";
      entries[entries.size() - 2].version.graph_id = "19:c/1700000000000";
      entries[entries.size() - 1].version.graph_id = "19:c/1700000000000/1700000000001";
      FileSink sink(path);
      ExportOptions opts;
      opts.mbox = mbox;
      ZipExport z(opts, sink);
      boost::asio::io_context io;
      run(io, [&]() -> awaitable<void> {
        for (auto& e : entries) co_await z.add(e, src);
        json about = {{"id", "x1"}};
        co_await z.finish(about);
      }());
      sink.out.close();
      CHECK(sink.largest <= (1u << 20) + 4096);  // streamed: never more than a chunk at once

      std::string log;
      INFO(log);
      REQUIRE(test::unzip_test(path, log) == 0);
      auto seen = test::check_export("zip", path);
      REQUIRE(seen["testzip"].is_null());
      INFO(seen.dump(1));
      CHECK(seen["manifest"]["mismatched"].empty());
      CHECK(seen["manifest"]["unlisted"].empty());
      auto& e = seen["entries"];
      if (mbox) {
        REQUIRE(e.contains("adele@contoso.com/Mail/Inbox.mbox"));
        auto& msgs = e["adele@contoso.com/Mail/Inbox.mbox"]["parsed"]["messages"];
        REQUIRE(msgs.size() == 2);
        CHECK(msgs[0]["sha256"] == storage::crypto::to_hex(storage::crypto::sha256(kMime1)));
        CHECK(msgs[1]["sha256"] == storage::crypto::to_hex(storage::crypto::sha256(kMime2)));
        CHECK(e.contains("adele@contoso.com/Mail/Inbox/Sub_ 1.mbox"));
      } else {
        CHECK(e["adele@contoso.com/Mail/Inbox/Hello.eml"]["sha256"] == storage::crypto::to_hex(storage::crypto::sha256(kMime1)));
        CHECK(e["adele@contoso.com/Mail/Inbox/Hello (2).eml"]["sha256"] == storage::crypto::to_hex(storage::crypto::sha256(kMime2)));
        CHECK(e["adele@contoso.com/Mail/Inbox/Hello.eml"]["parsed"]["defects"].empty());
        CHECK(e.contains("adele@contoso.com/Mail/Inbox/Sub_ 1/Deep.eml"));
      }
      CHECK(e["adele@contoso.com/Contacts/Contacts/Bob Example.vcf"]["parsed"]["cards"][0]["emails"] == json::array({"bob@example.com"}));
      CHECK(e["adele@contoso.com/Calendar/Calendar.ics"]["parsed"]["events"][0]["summary"] == "Review");
      CHECK(e["adele@contoso.com/OneDrive/root/Documents/report.txt"]["sha256"] == storage::crypto::to_hex(storage::crypto::sha256("quarterly\n")));
      CHECK(e["adele@contoso.com/OneDrive/root/Documents/big.bin"]["sha256"] == storage::crypto::to_hex(storage::crypto::sha256(big)));
      CHECK(e.contains("adele@contoso.com/OneDrive/_/_/.._.._etc_passwd"));
      // A Teams channel: one page with the reply under its post, the image shown
      // from beside it, nothing that runs; one JSON file with the reply nested;
      // never an .eml, never in an mbox, no file per message.
      CHECK(e["adele@contoso.com/Teams/General/image 1.png"]["sha256"] == storage::crypto::to_hex(storage::crypto::sha256("\x89PNG...")));
      CHECK_FALSE(e.contains("adele@contoso.com/Teams/General/Hello team.json"));
      auto& page = e["adele@contoso.com/Teams/General/messages.html"]["parsed"];
      CHECK(page["messages"] == json::parse(R"([{"id": "1700000000000", "kind": "post", "post": null},
                                                {"id": "1700000000001", "kind": "reply", "post": "1700000000000"}])"));
      CHECK(page["images"] == json::array({"image 1.png"}));
      CHECK(page["unresolved_images"].empty());
      CHECK(page["hazards"].empty());
      const auto text = page["text"].get<std::string>();
      CHECK_THAT(text, Catch::Contains("Adele Vance") && Catch::Contains("(edited 2026-01-05T10:06:00Z)") &&
                           Catch::Contains("<b>not bold</b>") && Catch::Contains("[image]"));
      CHECK_THAT(text, !Catch::Contains("alert"));
      auto& threads = e["adele@contoso.com/Teams/General/messages.json"]["parsed"]["threads"];
      // Each message's bytes in the file are the stored ones.
      const auto sha = [](const std::string& b) { return storage::crypto::to_hex(storage::crypto::sha256(b)); };
      json want = {{{"version_id", "v11"}, {"post_missing", false}, {"id", "1700000000000"}, {"sha256", sha(kPost)},
                    {"replies", {{{"version_id", "v13"}, {"id", "1700000000001"}, {"sha256", sha(kReply)}}}}}};
      CHECK(threads == want);

      // The manifest names the two faults and what went wrong, and where every item went.
      auto& m = seen["manifest"];
      REQUIRE(m["faults"].size() == 2);
      CHECK(m["faults"][0]["version_id"] == "v3");
      CHECK_THAT(m["faults"][0]["error"].get<std::string>(), Catch::Contains("failed authentication"));
      CHECK(m["faults"][1]["version_id"] == "v6");
      CHECK_THAT(m["faults"][1]["error"].get<std::string>(), Catch::Contains("does not parse"));
      CHECK(m["summary"]["items"] == 11);
      CHECK(m["summary"]["faults"] == 2);
      CHECK(m["items"]["v9"] == "adele@contoso.com/OneDrive/root/Documents/big.bin");
      CHECK(m["items"].size() == 11);
    }
  }
}
