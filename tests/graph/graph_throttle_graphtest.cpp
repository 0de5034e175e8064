// Good Graph citizenship against the real emulator: its per-mailbox request budget
// answering 429 with each Retry-After form, its concurrency limit of 4, and
// injected 503/504/resets/truncated bodies, all of which the client rides out.
#include <catch2/catch.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <set>

#include "graph_support.hpp"
#include "m365vault/graph/pager.hpp"
#include "m365vault/storage/crypto.hpp"

using namespace m365vault;
using namespace m365vault::graph;
using namespace m365vault::test;
namespace asio = boost::asio;

namespace {

int status_count(EmulatorProcess& emu, const std::string& status) {
  auto s = emu.admin("GET", "/_emulator/stats");
  return s["status"].contains(status) ? s["status"][status].get<int>() : 0;
}

// Runs `n` GETs of `path` at once and counts the 200s.
asio::awaitable<int> concurrently(GraphClient& c, std::vector<std::string> paths) {
  auto ex = co_await asio::this_coro::executor;
  std::vector<std::future<GraphResponse>> fs;
  for (auto& p : paths) fs.push_back(asio::co_spawn(ex, c.get(p), asio::use_future));
  int ok = 0;
  for (auto& f : fs) {
    while (f.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
      asio::steady_timer tm(ex, std::chrono::milliseconds(20));
      co_await tm.async_wait(asio::use_awaitable);
    }
    ok += f.get().status == 200;
  }
  co_return ok;
}

}  // namespace

TEST_CASE("throttling: 429s from the mailbox budget are honoured in every Retry-After form", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 701, 1, 3);
  auto tok = emu.token(t.tenant, t.client, t.secret);
  const std::string u = emu.graph_json("/v1.0/users", tok)["value"][0]["id"];
  asio::io_context ioc;
  for (std::string form : {"integer", "fractional", "http-date"}) {
    INFO("retry_after " << form);
    GraphClient c(ioc.get_executor(), emulator_endpoint(emu, t));
    run_on(ioc, c.access_token());  // the token request does not count against the mailbox
    emu.admin("PUT", "/_emulator/faults", {{"mailbox_requests_per_window", 4}, {"window_seconds", 2}, {"retry_after", form}});
    emu.call("DELETE", "/_emulator/stats");
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 10; ++i) CHECK(run_on(ioc, c.get("/users/" + u + "/mailFolders")).status == 200);
    const auto took = std::chrono::steady_clock::now() - t0;
    const auto st = c.stats();
    // 10 requests at 4 per 2 s window: two windows crossed, one 429 each when every
    // Retry-After is waited out in full (an HTTP-date rounds to whole seconds: one more at most).
    CHECK(st.throttled >= 2);
    CHECK(st.throttled <= (form == "http-date" ? 4u : 2u));
    CHECK(status_count(emu, "429") == static_cast<int>(st.throttled));
    CHECK(status_count(emu, "200") == 10);
    CHECK(took >= std::chrono::milliseconds(3000));
    CHECK(st.rate_cuts >= 1);
    CHECK(st.current_rate < GraphOptions{}.aimd.initial_rate);
  }
}

TEST_CASE("throttling: never more than 4 in flight per mailbox, so the emulator's limit never bites", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 702, 2, 3);
  auto tok = emu.token(t.tenant, t.client, t.secret);
  auto users = emu.graph_json("/v1.0/users", tok)["value"];
  emu.admin("PUT", "/_emulator/faults", {{"latency_ms", 150}, {"mailbox_concurrency", 4}});
  emu.call("DELETE", "/_emulator/stats");
  asio::io_context ioc;
  GraphClient c(ioc.get_executor(), emulator_endpoint(emu, t));
  std::vector<std::string> paths;
  for (int i = 0; i < 16; ++i)
    for (auto& u : users) paths.push_back("/users/" + u["id"].get<std::string>() + "/mailFolders");
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(run_on(ioc, concurrently(c, paths), 2) == 32);
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(status_count(emu, "429") == 0);
  CHECK(c.stats().throttled == 0);
  CHECK(c.stats().max_in_flight_per_mailbox == 4);
  // Both mailboxes ran 4 at a time in parallel: 16 per mailbox / 4 × 150 ms ≈ 600 ms, not 2.4 s.
  CHECK(took < std::chrono::milliseconds(2000));
}

TEST_CASE("faults: injected 503, 504, resets and truncated bodies, delta and MIME still complete exactly", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 703, 1, 40);
  auto tok = emu.token(t.tenant, t.client, t.secret);
  const std::string u = emu.graph_json("/v1.0/users", tok)["value"][0]["id"];
  auto manifest = emu.admin("GET", "/_emulator/tenants/" + t.tenant + "/manifest?owner=" + u + "&category=mail");
  std::map<std::string, std::string> want;  // immutable id -> sha256, Inbox only
  for (auto& i : manifest["items"])
    if (i["container_path"] == "/Inbox") want[i["immutable_id"]] = i["sha256"];
  REQUIRE(want.size() >= 5);
  emu.admin("PUT", "/_emulator/faults",
            {{"error_rate", {{"503", 0.06}, {"503_empty", 0.04}, {"504", 0.06}, {"reset", 0.05}, {"truncated", 0.05}}}});
  asio::io_context ioc;
  GraphOptions o;
  o.backoff.base = std::chrono::milliseconds(50);
  o.backoff.cap = std::chrono::milliseconds(1000);
  o.max_attempts = 10;
  GraphClient c(ioc.get_executor(), emulator_endpoint(emu, t), o);
  auto work = [&]() -> asio::awaitable<std::map<std::string, std::string>> {
    std::map<std::string, std::string> got;
    RequestOptions ro;
    ro.max_page_size = 5;
    DeltaPager p(c, "/users/" + u + "/mailFolders/inbox/messages/delta", ro);
    while (auto page = co_await p.next()) {
      for (auto& item : page->items) {
        const std::string id = item["id"];
        std::string mime;
        // Named, not temporaries: GCC 12 double-destroys temporaries in a co_await expression.
        const std::string path = "/users/" + u + "/messages/" + id + "/$value";
        ChunkFn sink = [&](std::string_view piece) -> asio::awaitable<void> {
          mime += piece;
          co_return;
        };
        std::function<void()> restart = [&] { mime.clear(); };  // a restart starts the content over
        RequestOptions none;
        co_await c.get_stream(path, sink, none, restart);
        got[id] = storage::crypto::to_hex(storage::crypto::sha256(mime));
      }
    }
    co_return got;
  };
  CHECK(run_on(ioc, work()) == want);
  auto st = c.stats();
  CHECK(st.retries > 0);
  CHECK(st.retries == st.transient + st.connection_errors + st.throttled);
  INFO("requests " << st.requests << " retries " << st.retries << " transient " << st.transient << " connection "
                   << st.connection_errors);
  CHECK(st.requests > want.size());
}
