// The file-write side of the emulator as a restore sees it over HTTPS: folder create,
// simple upload, upload sessions with OneDrive's fragment rules, conflict behaviours,
// fileSystemInfo, and the ground truth (content, hashes, manifest, delta) afterwards.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "emulator_support.hpp"

using namespace m365vault::test;

namespace {

constexpr std::size_t kUnit = 320 * 1024;

struct Drive {
  const EmulatorProcess& emu;
  GraphWriter w;
  std::string id;  // the drive id
  std::string base() const { return "/v1.0/drives/" + id; }
  HttpResult put(const std::string& path, const std::string& body) const {
    return w.send("PUT", base() + path, body, "application/octet-stream");
  }
  json put_json(const std::string& path, const std::string& body, int expect) const {
    auto r = put(path, body);
    INFO("PUT " << path << " -> " << r.status << " " << r.body.substr(0, 400));
    REQUIRE(r.status == expect);
    return json::parse(r.body);
  }
  // The bytes behind /content: 302, then the pre-authenticated URL without a token.
  std::string content(const std::string& item) const {
    auto redirect = emu.graph(base() + "/items/" + item + "/content", w.tok);
    REQUIRE(redirect.status == 302);
    auto bytes = emu.call("GET", redirect.header("location"));
    REQUIRE(bytes.status == 200);
    return bytes.body;
  }
};

Drive user_drive(const EmulatorProcess& emu, const TestTenant& t) {
  GraphWriter w{emu, emu.token(t.tenant, t.client, t.secret)};
  const std::string u = emu.graph_json("/v1.0/users", w.tok)["value"][0]["id"];
  const std::string d = emu.graph_json("/v1.0/users/" + u + "/drive", w.tok)["id"];
  return {emu, w, d};
}

// PUT bytes [from, to) of `payload` to an upload URL (no Authorization unless asked).
HttpResult put_fragment(const EmulatorProcess& emu, const std::string& url, const std::string& payload, std::size_t from,
                        std::size_t to, std::size_t total, const std::string& token = "") {
  std::vector<std::pair<std::string, std::string>> h = {
      {"Content-Range", "bytes " + std::to_string(from) + "-" + std::to_string(to - 1) + "/" + std::to_string(total)}};
  if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
  return emu.call("PUT", url, h, payload.substr(from, to - from));
}

std::string pattern(std::size_t n, unsigned salt) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 2654435761u + salt) >> 13);
  return s;
}

}  // namespace

TEST_CASE("drive upload session: 25 MB in 320 KiB multiples reads back identical, with hashes, manifest and delta",
          "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 81, 2, 1, {{"drive_files_per_user", 4}, {"drive_bytes_per_user", 200000}});
  auto drv = user_drive(emu, t);
  const std::string since = emu.graph_json(drv.base() + "/root/delta?token=latest", drv.w.tok)["@odata.deltaLink"];
  emu.admin("DELETE", "/_emulator/stats", nullptr, 204);

  auto folder = drv.w.post(drv.base() + "/root/children", {{"name", "Restore ✓"}, {"folder", json::object()}});
  REQUIRE(folder.contains("folder"));
  const std::string fid = folder["id"];

  const std::string created = "2019-03-04T05:06:07Z", modified = "2020-08-09T10:11:12Z";
  auto session = drv.w.post(drv.base() + "/items/" + fid + ":/big.bin:/createUploadSession",
                            {{"item",
                              {{"@microsoft.graph.conflictBehavior", "fail"},
                               {"name", "big.bin"},
                               {"fileSystemInfo", {{"createdDateTime", created}, {"lastModifiedDateTime", modified}}}}}},
                            200);
  REQUIRE(session["nextExpectedRanges"] == json::array({"0-"}));
  REQUIRE(session.contains("expirationDateTime"));
  const std::string url = session["uploadUrl"];
  REQUIRE(url.rfind(emu.base() + "/", 0) == 0);

  const std::size_t total = 25 * 1000 * 1000;  // not a multiple of 320 KiB: the last fragment is short
  const std::string payload = pattern(total, 7);
  const std::size_t step = 10 * kUnit;

  REQUIRE(put_fragment(emu, url, payload, 0, step, total, drv.w.tok).status == 401);  // no bearer on the upload URL
  auto odd = put_fragment(emu, url, payload, 0, kUnit + 1, total);
  REQUIRE(odd.status == 400);  // not a multiple of 320 KiB and not the last fragment
  auto first = put_fragment(emu, url, payload, 0, step, total);
  REQUIRE(first.status == 202);
  REQUIRE(json::parse(first.body)["nextExpectedRanges"] == json::array({std::to_string(step) + "-"}));

  // Re-sending received bytes: 416 in the shape of the OneDrive fixture.
  auto overlap = put_fragment(emu, url, payload, step - kUnit, 2 * step - kUnit, total);
  REQUIRE(overlap.status == 416);
  auto fixture = load_fixture("errors/drive-fragment-overlap.json");
  auto got = json::parse(overlap.body);
  REQUIRE(got["error"]["code"] == fixture["error"]["code"]);
  REQUIRE(got["error"]["message"] == fixture["error"]["message"]);
  REQUIRE(got["error"]["innerError"]["code"] == fixture["error"]["innerError"]["code"]);

  // The status of a session: what is still missing.
  auto status = emu.call("GET", url);
  REQUIRE(status.status == 200);
  REQUIRE(json::parse(status.body)["nextExpectedRanges"] == json::array({std::to_string(step) + "-"}));

  HttpResult last;
  for (std::size_t at = step; at < total; at += step) {
    auto to = std::min(total, at + step);
    last = put_fragment(emu, url, payload, at, to, total);
    INFO("fragment at " << at << " -> " << last.status << " " << last.body.substr(0, 300));
    REQUIRE(last.status == (to == total ? 201 : 202));
  }
  auto item = json::parse(last.body);
  const std::string qx = base64_encode(naive_quickxor(payload));
  REQUIRE(item["name"] == "big.bin");
  REQUIRE(item["size"] == total);
  REQUIRE(item["file"]["hashes"]["quickXorHash"] == qx);
  REQUIRE(item["parentReference"]["id"] == fid);
  REQUIRE(item["fileSystemInfo"]["createdDateTime"] == created);
  REQUIRE(item["fileSystemInfo"]["lastModifiedDateTime"] == modified);
  const std::string id = item["id"];
  REQUIRE(emu.call("PUT", url, {{"Content-Range", "bytes 0-9/10"}}, "0123456789").status == 404);  // session is done

  // Read back: the same bytes, the same hash on GET, in the manifest and in delta.
  REQUIRE(drv.content(id) == payload);
  auto fetched = emu.graph_json(drv.base() + "/items/" + id, drv.w.tok);
  REQUIRE(fetched["file"]["hashes"]["quickXorHash"] == qx);
  REQUIRE(fetched["fileSystemInfo"]["lastModifiedDateTime"] == modified);
  auto manifest = emu.admin("GET", "/_emulator/tenants/" + t.tenant + "/manifest?category=files");
  bool listed = false;
  for (auto& m : manifest["items"])
    if (m["id"] == id) {
      listed = true;
      REQUIRE(m["sha256"] == hex_digest(EVP_sha256(), payload));
      REQUIRE(m["quickXorHash"] == qx);
      REQUIRE(m["container_path"] == "/Restore ✓");
    }
  REQUIRE(listed);
  auto round = walk_delta(emu, since, drv.w.tok);
  std::set<std::string> changed;
  for (auto& it : round.items) changed.insert(it["id"].get<std::string>());
  REQUIRE(changed.count(fid) == 1);
  REQUIRE(changed.count(id) == 1);

  // Stats count the write routes and the upload URL.
  auto stats = emu.admin("GET", "/_emulator/stats")["requests"];
  REQUIRE(stats.value("POST /v1.0/drives/{id}/items/{id}/{id}/createUploadSession", 0) == 1);
  REQUIRE(stats.value("POST /v1.0/drives/{id}/root/children", 0) == 1);
  REQUIRE(stats.value("PUT /_upload/{id}", 0) >= 10);
}

TEST_CASE("drive upload session: DELETE, expiry, size mismatch, oversized fragments and a name clash at commit",
          "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 82, 2, 1, {{"drive_files_per_user", 4}, {"drive_bytes_per_user", 200000}});
  auto drv = user_drive(emu, t);
  auto open = [&](const std::string& name, const std::string& conflict = "replace") {
    return drv.w
        .post(drv.base() + "/root:/" + name + ":/createUploadSession",
              {{"item", {{"@microsoft.graph.conflictBehavior", conflict}}}}, 200)["uploadUrl"]
        .get<std::string>();
  };
  const std::string payload = pattern(3 * kUnit, 3);

  // DELETE cancels: 204, then the URL is gone.
  auto url = open("cancelled.bin");
  REQUIRE(put_fragment(emu, url, payload, 0, kUnit, payload.size()).status == 202);
  REQUIRE(emu.call("DELETE", url).status == 204);
  auto gone = put_fragment(emu, url, payload, kUnit, 2 * kUnit, payload.size());
  REQUIRE(gone.status == 404);
  REQUIRE(json::parse(gone.body)["error"]["code"] == "itemNotFound");
  REQUIRE(emu.call("DELETE", url).status == 404);

  // An expired session is unknown (the emulated clock moves past its expiry).
  url = open("expired.bin");
  emu.admin("PUT", "/_emulator/faults", {{"clock_offset_s", 7 * 3600}});
  REQUIRE(put_fragment(emu, url, payload, 0, kUnit, payload.size()).status == 404);
  emu.admin("PUT", "/_emulator/faults", json::object());

  // The total may not change between fragments.
  url = open("mismatch.bin");
  REQUIRE(put_fragment(emu, url, payload, 0, kUnit, payload.size()).status == 202);
  auto mismatch = put_fragment(emu, url, payload, kUnit, 2 * kUnit, payload.size() + 1);
  REQUIRE(mismatch.status == 400);
  REQUIRE(json::parse(mismatch.body)["error"]["innerError"]["code"] == "fragmentLengthMismatch");

  // Fragments must stay under 60 MiB.
  url = open("huge.bin");
  const std::string huge(61u * 1024 * 1024, 'x');
  REQUIRE(put_fragment(emu, url, huge, 0, huge.size(), huge.size() + kUnit).status == 413);

  // "fail" refuses a taken name when the session is created...
  auto existing = drv.put_json("/root:/taken.txt:/content", "first", 201);
  auto refused = drv.w.post(drv.base() + "/root:/taken.txt:/createUploadSession",
                            {{"item", {{"@microsoft.graph.conflictBehavior", "fail"}}}}, 409);
  REQUIRE(refused["error"]["code"] == "nameAlreadyExists");
  // ...and at commit when the name was taken meanwhile (409 upload_name_conflict).
  url = open("late.txt", "fail");
  drv.put_json("/root:/late.txt:/content", "someone else", 201);
  auto clash = put_fragment(emu, url, payload, 0, payload.size(), payload.size());
  REQUIRE(clash.status == 409);
  auto clash_fixture = load_fixture("errors/drive-409-upload-name-conflict.json");
  REQUIRE(json::parse(clash.body)["error"]["code"] == clash_fixture["error"]["code"]);
  REQUIRE(json::parse(clash.body)["error"]["message"] == clash_fixture["error"]["message"]);
  // The finished session is redirected to another name with @microsoft.graph.sourceUrl.
  auto fresh = emu.call("PUT", url, {{"Content-Range", "bytes 0-9/" + std::to_string(payload.size())}}, payload.substr(0, 10));
  REQUIRE(fresh.status == 416);  // no more bytes for a finished session
  auto moved = drv.w.send("PUT", drv.base() + "/root:/Redirected/late.txt",
                          json{{"@microsoft.graph.sourceUrl", url}}.dump());
  REQUIRE(moved.status == 404);  // the folder does not exist: a redirect creates none
  auto redirected = drv.w.send("PUT", drv.base() + "/root:/late%20(restored).txt",
                               json{{"@microsoft.graph.sourceUrl", url}, {"@microsoft.graph.conflictBehavior", "fail"}}.dump());
  INFO(redirected.body);
  REQUIRE(redirected.status == 201);
  auto restored = json::parse(redirected.body);
  REQUIRE(restored["name"] == "late (restored).txt");
  REQUIRE(drv.content(restored["id"]) == payload);
  // Consumed: the session URL is gone, a second redirect finds nothing.
  REQUIRE(emu.call("GET", url).status == 404);
  REQUIRE(drv.w.send("PUT", drv.base() + "/root:/again.txt", json{{"@microsoft.graph.sourceUrl", url}}.dump()).status == 404);

  // A session onto an existing name with "replace" keeps the item: 200, same id.
  url = open("taken.txt", "replace");
  auto replaced = put_fragment(emu, url, payload, 0, payload.size(), payload.size());
  REQUIRE(replaced.status == 200);
  REQUIRE(json::parse(replaced.body)["id"] == existing["id"]);
  REQUIRE(drv.content(existing["id"]) == payload);
}

TEST_CASE("drive writes: folders and simple uploads with conflictBehavior fail, replace and rename survive a restart",
          "[graph]") {
  TempDir state("emu-drive-write-state");
  EmulatorProcess emu(state.path().string());
  auto t = make_tenant(emu, 83, 2, 1, {{"drive_files_per_user", 4}, {"drive_bytes_per_user", 200000}});
  auto drv = user_drive(emu, t);
  const std::string u = emu.graph_json("/v1.0/users", drv.w.tok)["value"][0]["id"];

  // Folders: fail (the default) → 409, rename → "Projects 1", replace → the same folder (200).
  auto projects = drv.w.post("/v1.0/users/" + u + "/drive/root/children", {{"name", "Projects"}, {"folder", json::object()}});
  const std::string pid = projects["id"];
  auto dup = drv.w.post(drv.base() + "/root/children", {{"name", "projects"}, {"folder", json::object()}}, 409);
  REQUIRE(dup["error"]["code"] == "nameAlreadyExists");
  auto renamed = drv.w.post(drv.base() + "/root/children",
                            {{"name", "Projects"}, {"folder", json::object()}, {"@microsoft.graph.conflictBehavior", "rename"}});
  REQUIRE(renamed["name"] == "Projects 1");
  auto same = drv.w.post(drv.base() + "/root/children",
                         {{"name", "Projects"}, {"folder", json::object()}, {"@microsoft.graph.conflictBehavior", "replace"}}, 200);
  REQUIRE(same["id"] == pid);
  auto sub = drv.w.post(drv.base() + "/items/" + pid + "/children",
                        {{"name", "2024"},
                         {"folder", json::object()},
                         {"fileSystemInfo", {{"lastModifiedDateTime", "2024-02-03T04:05:06Z"}}}});
  REQUIRE(sub["parentReference"]["id"] == pid);
  REQUIRE(sub["fileSystemInfo"]["lastModifiedDateTime"] == "2024-02-03T04:05:06Z");
  REQUIRE(drv.w.post(drv.base() + "/root/children", {{"name", "a*b"}, {"folder", json::object()}}, 400)["error"]["code"] ==
          "invalidRequest");

  // Simple upload: new → 201 with the hash of the bytes; replace (the default) → 200, same id.
  const std::string path = "/items/" + sub["id"].get<std::string>() + ":/notes.txt:/content";
  auto notes = drv.put_json(path, "hello", 201);
  REQUIRE(notes["size"] == 5);
  REQUIRE(notes["file"]["hashes"]["quickXorHash"] == base64_encode(naive_quickxor("hello")));
  REQUIRE(notes["parentReference"]["id"] == sub["id"]);
  auto conflict = drv.put(path + "?@microsoft.graph.conflictBehavior=fail", "again");
  REQUIRE(conflict.status == 409);
  REQUIRE(json::parse(conflict.body)["error"]["code"] == "nameAlreadyExists");
  auto again = drv.put_json(path, "hello again", 200);
  REQUIRE(again["id"] == notes["id"]);
  REQUIRE(again["file"]["hashes"]["quickXorHash"] == base64_encode(naive_quickxor("hello again")));
  REQUIRE(drv.content(notes["id"]) == "hello again");
  // rename: the number goes before the extension, counting up.
  REQUIRE(drv.put_json(path + "?@microsoft.graph.conflictBehavior=rename", "2", 201)["name"] == "notes 1.txt");
  REQUIRE(drv.put_json(path + "?@microsoft.graph.conflictBehavior=rename", "3", 201)["name"] == "notes 2.txt");
  // By id: new content for the same item.
  auto by_id = drv.put_json("/items/" + notes["id"].get<std::string>() + "/content", "by id", 200);
  REQUIRE(by_id["id"] == notes["id"]);
  REQUIRE(drv.put("/items/" + pid + "/content", "x").status == 404);  // a folder has no content

  auto children = emu.graph_json(drv.base() + "/items/" + sub["id"].get<std::string>() + "/children", drv.w.tok)["value"];
  std::set<std::string> names;
  for (auto& c : children) names.insert(c["name"].get<std::string>());
  REQUIRE(names == std::set<std::string>{"notes.txt", "notes 1.txt", "notes 2.txt"});

  // Everything replays from the journal after a restart.
  auto before = emu.admin("GET", "/_emulator/tenants/" + t.tenant + "/manifest?category=files");
  emu.restart();
  REQUIRE(emu.admin("GET", "/_emulator/tenants/" + t.tenant + "/manifest?category=files") == before);
  Drive after{emu, GraphWriter{emu, emu.token(t.tenant, t.client, t.secret)}, drv.id};
  REQUIRE(after.content(notes["id"]) == "by id");
}

TEST_CASE("drive upload session: fragments out of order survive a restart, nested paths for PUT and sessions", "[graph]") {
  TempDir state("emu-upload-state");
  EmulatorProcess emu(state.path().string());
  auto t = make_tenant(emu, 85, 2, 1, {{"drive_files_per_user", 4}, {"drive_bytes_per_user", 200000}});
  auto drv = user_drive(emu, t);

  // Out of order: the last fragment first, then the first; the status lists both gaps
  // the way the fixture does (closed ranges between fragments, open at the tail).
  const std::string payload = pattern(5 * kUnit + 1234, 11);
  const auto total = payload.size();
  std::string url = drv.w.post(drv.base() + "/root:/shuffled.bin:/createUploadSession", json::object(), 200)["uploadUrl"];
  auto last = put_fragment(emu, url, payload, 4 * kUnit, total, total);
  REQUIRE(last.status == 202);
  REQUIRE(json::parse(last.body)["nextExpectedRanges"] == json::array({"0-" + std::to_string(4 * kUnit - 1)}));
  REQUIRE(put_fragment(emu, url, payload, 2 * kUnit, 3 * kUnit, total).status == 202);
  const json gaps =
      json::array({"0-" + std::to_string(2 * kUnit - 1), std::to_string(3 * kUnit) + "-" + std::to_string(4 * kUnit - 1)});
  REQUIRE(json::parse(emu.call("GET", url).body)["nextExpectedRanges"] == gaps);
  // The unfinished session and its fragments survive a restart (the emulator comes back
  // on another port: the session path stays valid).
  const std::string old_base = emu.base();
  emu.restart();
  url = emu.base() + url.substr(old_base.size());
  drv.w.tok = emu.token(t.tenant, t.client, t.secret);
  auto status = emu.call("GET", url);
  REQUIRE(status.status == 200);
  REQUIRE(json::parse(status.body)["nextExpectedRanges"] == gaps);
  // Overlapping a received fragment from either side is 416.
  REQUIRE(put_fragment(emu, url, payload, kUnit, 3 * kUnit, total).status == 416);
  REQUIRE(put_fragment(emu, url, payload, 3 * kUnit, 5 * kUnit, total).status == 416);
  REQUIRE(put_fragment(emu, url, payload, 0, 2 * kUnit, total).status == 202);
  auto done = put_fragment(emu, url, payload, 3 * kUnit, 4 * kUnit, total);
  REQUIRE(done.status == 201);
  auto item = json::parse(done.body);
  REQUIRE(drv.content(item["id"]) == payload);
  REQUIRE(item["size"] == total);
  // The session's write is journaled (its bytes as base64) and replays after a restart.
  emu.restart();
  drv.w.tok = emu.token(t.tenant, t.client, t.secret);
  REQUIRE(drv.content(item["id"]) == payload);

  // Simple PUT by a nested path creates the missing folders (root: and {parent}: forms).
  auto deep = drv.put_json("/root:/Restore%202026/Q1/Berichte/notes.txt:/content", "nested", 201);
  REQUIRE(drv.content(deep["id"]) == "nested");
  auto q1 = emu.graph_json(drv.base() + "/items/" + deep["parentReference"]["id"].get<std::string>(), drv.w.tok);
  REQUIRE(q1["name"] == "Berichte");
  REQUIRE(q1["folder"].is_object());
  const std::string restore_id =
      emu.graph_json(drv.base() + "/items/" + q1["parentReference"]["id"].get<std::string>(), drv.w.tok)["parentReference"]["id"];
  auto by_parent = drv.put_json("/items/" + restore_id + ":/Q1/Berichte/more.txt:/content", "more", 201);
  REQUIRE(by_parent["parentReference"]["id"] == deep["parentReference"]["id"]);  // the existing folders are reused
  auto children = emu.graph_json(drv.base() + "/items/" + restore_id + "/children", drv.w.tok)["value"];
  REQUIRE(children.size() == 1);  // "Q1" once, not twice
  // A file in the way of a folder is a conflict.
  REQUIRE(drv.put("/root:/Restore%202026/Q1/Berichte/notes.txt/x.txt:/content", "x").status == 409);

  // Upload sessions create no folders: 404 for a missing one, fine for existing ones.
  auto missing = drv.w.send("POST", drv.base() + "/root:/Nowhere/big.bin:/createUploadSession", "{}");
  REQUIRE(missing.status == 404);
  REQUIRE(json::parse(missing.body)["error"]["code"] == "itemNotFound");
  auto nested = drv.w.post(drv.base() + "/root:/Restore%202026/Q1/big.bin:/createUploadSession", json::object(), 200);
  auto fin = put_fragment(emu, nested["uploadUrl"], payload, 0, total, total);
  REQUIRE(fin.status == 201);
  REQUIRE(json::parse(fin.body)["parentReference"]["id"] == q1["parentReference"]["id"]);
}
