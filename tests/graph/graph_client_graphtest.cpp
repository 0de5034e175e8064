// GraphClient and DeltaPager against the real graph-emulator over HTTPS with its
// CA: tokens by secret and certificate (RS256, PS256), renewal before expiry and
// once on a 401, a mail folder delta paged to the end (and resumed from a saved
// nextLink), MIME streamed byte for byte, resync on 410, skipped mailboxes.
#include <catch2/catch.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <set>
#include <thread>

#include "graph_support.hpp"
#include "m365vault/graph/pager.hpp"
#include "m365vault/storage/crypto.hpp"

using namespace m365vault;
using namespace m365vault::graph;
using namespace m365vault::test;
namespace asio = boost::asio;

namespace {

std::string first_user(EmulatorProcess& emu, const TestTenant& t) {
  auto tok = emu.token(t.tenant, t.client, t.secret);
  return emu.graph_json("/v1.0/users", tok)["value"][0]["id"].get<std::string>();
}

std::vector<json> inbox_manifest(EmulatorProcess& emu, const TestTenant& t, const std::string& user) {
  auto m = emu.admin("GET", "/_emulator/tenants/" + t.tenant + "/manifest?owner=" + user + "&category=mail");
  std::vector<json> out;
  for (auto& i : m["items"])
    if (i["container_path"] == "/Inbox") out.push_back(i);
  return out;
}

struct Round {
  std::vector<json> items;
  std::string delta_link;
  std::vector<std::string> cursors;  // what a caller would persist, page by page
  int pages = 0;
  bool resynced = false;
};

asio::awaitable<Round> walk(GraphClient& c, std::string start, RequestOptions ro, PagerOptions po = {},
                            int stop_after = -1) {
  Round r;
  DeltaPager p(c, std::move(start), ro, po);
  while (auto page = co_await p.next()) {
    ++r.pages;
    r.resynced = r.resynced || page->resynced;
    REQUIRE(page->next_link.has_value() != page->delta_link.has_value());
    for (auto& i : page->items) r.items.push_back(i);
    r.cursors.push_back(page->next_link ? *page->next_link : *page->delta_link);
    if (page->delta_link) r.delta_link = *page->delta_link;
    if (r.pages == stop_after) break;
  }
  co_return r;
}

}  // namespace

TEST_CASE("graph client: token by secret shared by concurrent callers, a wrong secret names AADSTS7000215", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 601, 3, 5);
  asio::io_context ioc;
  GraphClient c(ioc.get_executor(), emulator_endpoint(emu, t));
  auto burst = [&]() -> asio::awaitable<int> {
    auto ex = co_await asio::this_coro::executor;
    std::vector<std::future<GraphResponse>> fs;
    for (int i = 0; i < 6; ++i) fs.push_back(asio::co_spawn(ex, c.get("/users"), asio::use_future));
    int users = 0;
    for (auto& f : fs) {
      while (f.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
        asio::steady_timer tm(ex, std::chrono::milliseconds(20));
        co_await tm.async_wait(asio::use_awaitable);
      }
      users += static_cast<int>(f.get().parse()["value"].size());
    }
    co_return users;
  };
  CHECK(run_on(ioc, burst(), 2) == 18);
  CHECK(c.stats().token_requests == 1);

  auto bad = emulator_endpoint(emu, t);
  bad.client_secret = "not-the-secret-xyz";
  GraphClient wrong(ioc.get_executor(), bad);
  try {
    run_on(ioc, wrong.get("/users"));
    FAIL("a wrong secret got a token");
  } catch (const TokenError& e) {
    CHECK(e.aadsts() == 7000215);
    CHECK(e.error() == "invalid_client");
    CHECK(e.status() == 401);
    CHECK(is_auth_failure(e));
    CHECK(std::string(e.what()).find("AADSTS7000215") != std::string::npos);
    CHECK(std::string(e.what()).find("Trace ID") == std::string::npos);
    CHECK(std::string(e.what()).find("not-the-secret-xyz") == std::string::npos);  // secrets never in messages
    CHECK(e.code() == Errc::unauthorized);
  }
  CHECK(wrong.stats().token_requests == 1);  // a refusal is not retried
}

TEST_CASE("graph client: token by certificate assertion, RS256 with x5t and PS256 with x5t#S256", "[graph]") {
  EmulatorProcess emu;
  auto cert = make_test_cert();
  auto t = make_tenant(emu, 602, 2, 3, {{"certificates", {cert.cert_pem}}});
  asio::io_context ioc;
  for (bool pss : {false, true}) {
    auto ep = emulator_endpoint(emu, t);
    ep.client_secret.reset();
    ep.certificate_pem = cert.cert_pem;
    ep.private_key_pem = cert.key_pem;
    ep.pss = pss;
    GraphClient c(ioc.get_executor(), ep);
    auto r = run_on(ioc, c.get("/v1.0/users"));
    CHECK(r.status == 200);
    CHECK(r.parse()["value"].size() == 2);
    CHECK(c.stats().token_requests == 1);
  }
  // An unregistered certificate is refused with the identity platform's code.
  auto other = make_test_cert();
  auto ep = emulator_endpoint(emu, t);
  ep.client_secret.reset();
  ep.certificate_pem = other.cert_pem;
  ep.private_key_pem = other.key_pem;
  GraphClient c(ioc.get_executor(), ep);
  CHECK_THROWS_MATCHES(run_on(ioc, c.get("/users")), TokenError,
                       Catch::Predicate<TokenError>([](const TokenError& e) { return e.aadsts() == 700027; }));
}

TEST_CASE("graph client: renewed once on a 401 (expired on the service's clock) and before expiry", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 603, 1, 3);
  asio::io_context ioc;
  GraphClient c(ioc.get_executor(), emulator_endpoint(emu, t));
  CHECK(run_on(ioc, c.get("/users")).status == 200);
  emu.admin("PUT", "/_emulator/faults", {{"clock_offset_s", 7200}});  // our cached token is now expired there
  CHECK(run_on(ioc, c.get("/users")).status == 200);
  CHECK(c.stats().token_requests == 2);
  CHECK(c.stats().token_renewals == 1);

  emu.admin("PUT", "/_emulator/faults", {{"token_lifetime_s", 4}});
  GraphClient shortlived(ioc.get_executor(), emulator_endpoint(emu, t));
  CHECK(run_on(ioc, shortlived.get("/users")).status == 200);
  CHECK(run_on(ioc, shortlived.get("/users")).status == 200);
  CHECK(shortlived.stats().token_requests == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(2300));  // past half the lifetime
  CHECK(run_on(ioc, shortlived.get("/users")).status == 200);
  CHECK(shortlived.stats().token_requests == 2);
  CHECK(shortlived.stats().token_renewals == 0);  // renewed early, never hit a 401
}

TEST_CASE("graph client: a mail folder delta paged to its deltaLink, resumed from a saved nextLink, MIME streamed", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 604, 2, 60);
  const auto u = first_user(emu, t);
  auto truth = inbox_manifest(emu, t, u);
  REQUIRE(truth.size() >= 5);
  std::set<std::string> want;
  for (auto& i : truth) want.insert(i["immutable_id"].get<std::string>());

  asio::io_context ioc;
  GraphClient c(ioc.get_executor(), emulator_endpoint(emu, t));
  RequestOptions ro;
  ro.max_page_size = 4;
  const std::string start = "/users/" + u + "/mailFolders/inbox/messages/delta?$select=subject,isRead";
  auto full = run_on(ioc, walk(c, start, ro));
  std::set<std::string> got;
  for (auto& i : full.items) {
    CHECK_FALSE(is_removed(i));
    got.insert(i["id"].get<std::string>());
  }
  CHECK(got == want);  // immutable ids, every message of the folder
  CHECK(full.pages >= static_cast<int>(want.size() / 4));
  CHECK(full.delta_link.rfind(emu.base(), 0) == 0);

  // A run killed after two pages resumes from the cursor it saved with page 2.
  auto head = run_on(ioc, walk(c, start, ro, {}, 2));
  auto tail = run_on(ioc, walk(c, head.cursors.back(), ro));
  std::set<std::string> resumed;
  for (auto& i : head.items) resumed.insert(i["id"].get<std::string>());
  for (auto& i : tail.items) resumed.insert(i["id"].get<std::string>());
  CHECK(resumed == want);

  // The next round from the deltaLink: no change, no items, a fresh deltaLink.
  auto quiet = run_on(ioc, walk(c, full.delta_link, ro));
  CHECK(quiet.items.empty());
  CHECK(!quiet.delta_link.empty());

  // MIME content streamed: bytes equal the service's ground truth.
  for (std::size_t k = 0; k < 5; ++k) {
    std::string mime;
    auto r = run_on(ioc, c.get_stream("/users/" + u + "/messages/" + truth[k]["immutable_id"].get<std::string>() + "/$value",
                                      [&](std::string_view p) -> asio::awaitable<void> {
                                        mime += p;
                                        co_return;
                                      }));
    CHECK(r.status == 200);
    CHECK(mime.size() == truth[k]["size"].get<std::size_t>());
    CHECK(storage::crypto::to_hex(storage::crypto::sha256(mime)) == truth[k]["sha256"].get<std::string>());
  }
  CHECK(c.stats().max_in_flight_per_mailbox <= 4);
}

TEST_CASE("graph client: 410 with Location means re-enumerate, mailboxes without REST are named", "[graph]") {
  EmulatorProcess emu;
  auto t = make_tenant(emu, 605, 2, 12, {{"unlicensed_users", 1}});
  auto tok = emu.token(t.tenant, t.client, t.secret);
  auto users = emu.graph_json("/v1.0/users", tok)["value"];
  const std::string u = users[0]["id"], unlicensed = users[1]["id"];
  asio::io_context ioc;
  GraphClient c(ioc.get_executor(), emulator_endpoint(emu, t));
  RequestOptions ro;
  ro.max_page_size = 5;
  const std::string start = "/users/" + u + "/mailFolders/inbox/messages/delta";
  auto first = run_on(ioc, walk(c, start, ro));
  emu.admin("PUT", "/_emulator/faults", {{"delta_reset_rate", 1.0}});
  try {
    run_on(ioc, walk(c, first.delta_link, ro));
    FAIL("no reset");
  } catch (const GraphError& e) {
    CHECK(is_invalid_delta(e));
    CHECK(e.status() == 410);
    CHECK(e.location().find("/messages/delta") != std::string::npos);
    CHECK(e.location().find("deltatoken") == std::string::npos);
  }
  // Following the reset: the first page comes from the token-less URL.
  PagerOptions follow;
  follow.follow_resync = true;
  DeltaPager p(c, first.delta_link, ro, follow);
  auto page = run_on(ioc, p.next());
  REQUIRE(page);
  CHECK(page->resynced);
  emu.admin("PUT", "/_emulator/faults", json::object());
  std::size_t n = page->items.size();
  while (auto more = run_on(ioc, p.next())) {
    CHECK(more->resynced);
    n += more->items.size();
  }
  CHECK(n == first.items.size());

  try {
    run_on(ioc, c.get("/users/" + unlicensed + "/mailFolders"));
    FAIL("an unlicensed mailbox answered");
  } catch (const GraphError& e) {
    CHECK(is_mailbox_not_enabled(e));
    CHECK_FALSE(is_not_found(e));
    CHECK(e.status() == 404);
  }
}
