// Throttling and faults: per-mailbox concurrency, the request budget with every
// Retry-After form, injected 503/truncated bodies, statistics and $batch.
#include <catch2/catch.hpp>

#include <future>
#include <set>

#include "emulator_support.hpp"

using namespace m365vault::test;

TEST_CASE("a fifth concurrent request on one mailbox gets 429 MailboxConcurrency, the budget bites per window", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 41, 2, 5);
  auto tok = emu.token(t.tenant, t.client, t.secret);
  auto users = emu.graph_json("/v1.0/users", tok)["value"];
  const std::string u = users[0]["id"], u2 = users[1]["id"];
  emu.admin("PUT", "/_emulator/faults", {{"latency_ms", 2500}});
  std::vector<std::future<HttpResult>> f;
  for (int i = 0; i < 5; ++i)
    f.push_back(std::async(std::launch::async, [&] { return emu.graph("/v1.0/users/" + u + "/mailFolders", tok); }));
  // Another mailbox is not affected.
  auto other = std::async(std::launch::async, [&] { return emu.graph("/v1.0/users/" + u2 + "/mailFolders", tok); });
  int ok = 0, throttled = 0;
  for (auto& x : f) {
    auto r = x.get();
    if (r.status == 200) ++ok;
    if (r.status == 429) {
      ++throttled;
      auto e = json::parse(r.body);
      REQUIRE(e == load_fixture("errors/error-429-outlook-mailboxconcurrency.json"));
      REQUIRE(!r.header("retry-after").empty());
    }
  }
  REQUIRE(ok == 4);
  REQUIRE(throttled == 1);
  REQUIRE(other.get().status == 200);

  emu.admin("PUT", "/_emulator/faults", {{"mailbox_requests_per_window", 3}, {"window_seconds", 30}, {"retry_after", "fractional"}});
  for (int i = 0; i < 3; ++i) REQUIRE(emu.graph("/v1.0/users/" + u + "/mailFolders", tok).status == 200);
  auto over = emu.graph("/v1.0/users/" + u + "/mailFolders", tok);
  REQUIRE(over.status == 429);
  auto ra = over.header("retry-after");
  REQUIRE(ra.find('.') != std::string::npos);
  REQUIRE(std::stod(ra) > 0);
  REQUIRE(std::stod(ra) <= 30);
  emu.admin("PUT", "/_emulator/faults", {{"mailbox_requests_per_window", 3}, {"window_seconds", 30}, {"retry_after", "http-date"}});
  for (int i = 0; i < 3; ++i) REQUIRE(emu.graph("/v1.0/users/" + u + "/mailFolders", tok).status == 200);
  auto dated = emu.graph("/v1.0/users/" + u + "/mailFolders", tok);
  REQUIRE(dated.status == 429);
  REQUIRE(dated.header("retry-after").find("GMT") != std::string::npos);
  // A short window lets requests through again.
  emu.admin("PUT", "/_emulator/faults", {{"mailbox_requests_per_window", 2}, {"window_seconds", 1}});
  emu.graph("/v1.0/users/" + u + "/mailFolders", tok);
  emu.graph("/v1.0/users/" + u + "/mailFolders", tok);
  auto third = emu.graph("/v1.0/users/" + u + "/mailFolders", tok);
  REQUIRE(third.status == 429);
  REQUIRE(std::stoi(third.header("retry-after")) >= 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  REQUIRE(emu.graph("/v1.0/users/" + u + "/mailFolders", tok).status == 200);
}

TEST_CASE("faults: GET/PUT round trip, injected 503 and truncated bodies, empty object restores defaults", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 42, 1, 3);
  auto tok = emu.token(t.tenant, t.client, t.secret);
  auto set = emu.admin("PUT", "/_emulator/faults", {{"error_rate", {{"503", 1.0}}}});
  REQUIRE(emu.admin("GET", "/_emulator/faults") == set);
  auto r = emu.graph("/v1.0/users", tok);
  REQUIRE(r.status == 503);
  REQUIRE(!r.header("retry-after").empty());
  emu.admin("PUT", "/_emulator/faults", {{"error_rate", {{"503_empty", 1.0}}}});
  r = emu.graph("/v1.0/users", tok);
  REQUIRE(r.status == 503);
  REQUIRE(r.body.empty());
  emu.admin("PUT", "/_emulator/faults", {{"error_rate", {{"truncated", 1.0}}}});
  bool failed = false;
  try {
    emu.graph("/v1.0/users", tok);
  } catch (const std::exception&) {
    failed = true;  // the body ended before its Content-Length
  }
  REQUIRE(failed);
  emu.admin("PUT", "/_emulator/faults", {{"nonsense", 1}}, 400);
  auto defaults = emu.admin("PUT", "/_emulator/faults", json::object());
  REQUIRE(defaults["error_rate"].empty());
  REQUIRE(defaults["generations_kept"] == 3);
  REQUIRE(emu.graph("/v1.0/users", tok).status == 200);
}

TEST_CASE("stats count requests by route template and status, DELETE resets", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 43, 1, 3);
  auto tok = emu.token(t.tenant, t.client, t.secret);
  emu.call("DELETE", "/_emulator/stats");
  auto u = emu.graph_json("/v1.0/users", tok)["value"][0]["id"].get<std::string>();
  auto m = emu.graph_json("/v1.0/users/" + u + "/mailFolders/inbox/messages?$top=1", tok)["value"];
  emu.graph("/v1.0/users/" + u + "/mailFolders/inbox", tok);
  emu.graph("/v1.0/users/" + u + "/mailFolders/sentitems", tok);
  emu.graph("/v1.0/nothing/here", tok);
  auto s = emu.admin("GET", "/_emulator/stats");
  REQUIRE(s["requests"]["GET /v1.0/users"] == 1);
  REQUIRE(s["requests"]["GET /v1.0/users/{id}/mailFolders/{id}"] == 2);
  REQUIRE(s["status"]["200"].get<int>() >= 4);
  REQUIRE(s["status"]["400"] == 1);
  emu.admin("DELETE", "/_emulator/stats", nullptr, 204);
  REQUIRE(emu.admin("GET", "/_emulator/stats")["requests"].empty());
}

TEST_CASE("$batch: mixed statuses, dependsOn with 424, limits", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 44, 2, 3);
  auto tok = emu.token(t.tenant, t.client, t.secret);
  auto u = emu.graph_json("/v1.0/users", tok)["value"][0]["id"].get<std::string>();
  json batch = {{"requests", json::array({
      {{"id", "1"}, {"method", "GET"}, {"url", "/users/" + u}},
      {{"id", "2"}, {"method", "GET"}, {"url", "users/" + u + "/mailFolders/nosuch"}},
      {{"id", "3"}, {"method", "GET"}, {"url", "/users"}, {"dependsOn", {"2"}}},
      {{"id", "4"}, {"method", "GET"}, {"url", "/users/" + u + "/mailFolders/inbox"}, {"dependsOn", {"1"}}}})}};
  auto r = emu.call("POST", "/v1.0/$batch", {{"Authorization", "Bearer " + tok}, {"Content-Type", "application/json"}}, batch.dump());
  REQUIRE(r.status == 200);
  INFO(r.body);
  std::map<std::string, int> st;
  auto parsed = json::parse(r.body);
  for (auto& x : parsed["responses"]) st[x["id"].get<std::string>()] = x["status"].get<int>();
  REQUIRE(st["1"] == 200);
  REQUIRE(st["2"] == 400);
  REQUIRE(st["3"] == 424);
  REQUIRE(st["4"] == 200);
  json dup = {{"requests", {{{"id", "a"}, {"method", "GET"}, {"url", "/users"}}, {{"id", "A"}, {"method", "GET"}, {"url", "/users"}}}}};
  REQUIRE(emu.call("POST", "/v1.0/$batch", {{"Authorization", "Bearer " + tok}, {"Content-Type", "application/json"}}, dup.dump()).status == 400);
  json nested = {{"requests", {{{"id", "n"}, {"method", "POST"}, {"url", "/$batch"}, {"headers", {{"Content-Type", "application/json"}}},
                                {"body", {{"requests", json::array()}}}}}}};
  auto nr = emu.call("POST", "/v1.0/$batch", {{"Authorization", "Bearer " + tok}, {"Content-Type", "application/json"}}, nested.dump());
  REQUIRE(nr.status == 200);
  REQUIRE(json::parse(nr.body)["responses"][0]["status"] == 400);
  json many = {{"requests", json::array()}};
  for (int i = 0; i < 21; ++i) many["requests"].push_back({{"id", std::to_string(i)}, {"method", "GET"}, {"url", "/users"}});
  REQUIRE(emu.call("POST", "/v1.0/$batch", {{"Authorization", "Bearer " + tok}, {"Content-Type", "application/json"}}, many.dump()).status == 400);
  // Sub-requests are throttled one by one while the batch stays 200.
  emu.admin("PUT", "/_emulator/faults", {{"mailbox_requests_per_window", 2}, {"window_seconds", 60}});
  json th = {{"requests", json::array()}};
  for (int i = 0; i < 4; ++i) th["requests"].push_back({{"id", std::to_string(i)}, {"method", "GET"}, {"url", "/users/" + u + "/mailFolders"}});
  r = emu.call("POST", "/v1.0/$batch", {{"Authorization", "Bearer " + tok}, {"Content-Type", "application/json"}}, th.dump());
  REQUIRE(r.status == 200);
  int n429 = 0;
  auto throttled = json::parse(r.body);
  for (auto& x : throttled["responses"])
    if (x["status"] == 429) {
      ++n429;
      REQUIRE(x["headers"].contains("Retry-After"));
    }
  REQUIRE(n429 == 2);
}

TEST_CASE("delta faults: empty pages and repeated items still converge, 429 without Retry-After, attachment errors", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 45, 1, 80);
  auto tok = emu.token(t.tenant, t.client, t.secret);
  const std::string u = emu.graph_json("/v1.0/users", tok)["value"][0]["id"];
  const std::string url = "/v1.0/users/" + u + "/mailFolders/inbox/messages/delta?$select=subject";
  // Small pages and a high rate: missing an empty page by chance is below 1e-7.
  const std::vector<std::pair<std::string, std::string>> small = {{"Prefer", "odata.maxpagesize=2"}};
  auto clean = walk_delta(emu, url, tok, small);
  REQUIRE(clean.pages >= 15);
  REQUIRE(clean.empty_pages == 0);
  emu.admin("PUT", "/_emulator/faults", {{"delta_empty_page_rate", 0.5}, {"delta_repeat_rate", 0.3}});
  auto noisy = walk_delta(emu, url, tok, small);
  REQUIRE(noisy.empty_pages > 0);
  REQUIRE(noisy.items.size() > clean.items.size());  // repeats
  std::set<std::string> a, b;
  for (auto& m : clean.items) a.insert(m["id"].get<std::string>());
  for (auto& m : noisy.items) b.insert(m["id"].get<std::string>());
  REQUIRE(a == b);  // the last occurrence wins: same set of messages

  // Reset: a tokened call gets 410 and a Location to start over from.
  emu.admin("PUT", "/_emulator/faults", {{"delta_reset_rate", 1.0}});
  auto reset = emu.graph(clean.delta_link, tok);
  REQUIRE(reset.status == 410);
  auto location = reset.header("location");
  REQUIRE(location.rfind(emu.base() + "/v1.0/users/", 0) == 0);
  REQUIRE(location.find("token") == std::string::npos);
  REQUIRE(emu.graph(location, tok).status == 200);  // a fresh initial round
  auto users_round = walk_delta(emu, "/v1.0/users/delta", tok);
  REQUIRE(emu.graph(users_round.delta_link, tok).status == 410);

  emu.admin("PUT", "/_emulator/faults", {{"error_rate", {{"429_bare", 1.0}}}});
  auto bare = emu.graph("/v1.0/users", tok);
  REQUIRE(bare.status == 429);
  REQUIRE(bare.header("retry-after").empty());
  emu.admin("PUT", "/_emulator/faults", {{"error_rate", {{"attachment_corrupt", 1.0}}}});
  REQUIRE(emu.graph("/v1.0/users", tok).status == 200);  // only attachment routes fail
  const std::string mid = clean.items[0]["id"];
  auto corrupt = emu.graph("/v1.0/users/" + u + "/messages/" + mid + "/attachments", tok);
  REQUIRE(corrupt.status == 500);
  REQUIRE(json::parse(corrupt.body)["error"]["code"] == "ErrorCorruptData");
  emu.admin("PUT", "/_emulator/faults", {{"error_rate", {{"attachment_cannot_open", 1.0}}}});
  REQUIRE(json::parse(emu.graph("/v1.0/users/" + u + "/messages/" + mid + "/attachments", tok).body)["error"]["code"] ==
          "ErrorCannotOpenFileAttachment");
  emu.admin("PUT", "/_emulator/faults", {{"error_rate", {{"504", 1.0}}}});
  REQUIRE(emu.graph("/v1.0/users", tok).status == 504);
}
