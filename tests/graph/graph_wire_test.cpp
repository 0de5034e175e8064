// What GraphClient puts on the wire and makes of odd answers, against a loopback
// server that plays the token endpoint and Graph: gzip (whole and streamed),
// Prefer headers, per-mailbox concurrency, Retry-After on 503, single-flight
// tokens, redirects without the bearer token.
#include <catch2/catch.hpp>
#include <zlib.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <thread>

#include "graph_support.hpp"
#include "m365vault/graph/client.hpp"
#include "m365vault/net/router.hpp"
#include "m365vault/net/server.hpp"
#include "support/log.hpp"

using namespace m365vault;
using namespace m365vault::graph;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

std::string gzip(const std::string& in) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&z, in.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string big_text() {
  std::string s;
  for (int i = 0; s.size() < 3 * 1024 * 1024; ++i) s += "line " + std::to_string(i) + " of a long MIME body\r\n";
  return s;
}

struct FakeGraph {
  asio::io_context server_ioc;
  net::Router router;
  std::unique_ptr<net::HttpServer> server;
  std::thread server_thread;
  std::atomic<int> token_calls{0}, in_flight{0}, max_in_flight{0}, flaky_calls{0};
  std::string last_prefer, last_accept_encoding, redirected_auth = "unset", token_form;
  std::mutex mu;

  FakeGraph() {
    router.add("POST", "/t1/oauth2/v2.0/token", [this](net::Request& r) -> asio::awaitable<net::Response> {
      int n = ++token_calls;
      {
        std::lock_guard lk(mu);
        token_form = r.body;
      }
      asio::steady_timer t(co_await asio::this_coro::executor, 100ms);  // slow enough for callers to pile up
      co_await t.async_wait(asio::use_awaitable);
      co_return net::Response::json(200, {{"token_type", "Bearer"}, {"expires_in", 3599},
                                          {"access_token", "tok-" + std::to_string(n)}});
    });
    router.add("GET", "/v1.0/users", [this](net::Request& r) -> asio::awaitable<net::Response> {
      {
        std::lock_guard lk(mu);
        last_accept_encoding = std::string(r.headers.get("Accept-Encoding").value_or(""));
      }
      if (r.headers.get("Authorization").value_or("").rfind("Bearer tok-", 0) != 0)
        co_return net::Response::json(401, {{"error", {{"code", "InvalidAuthenticationToken"}}}});
      auto res = net::Response::text(200, gzip(R"({"value":[{"id":"u1"},{"id":"u2"}]})"), "application/json");
      res.headers.set("Content-Encoding", "gzip");
      co_return res;
    });
    router.add("GET", "/v1.0/users/{u}/messages/{m}/$value", [](net::Request&) -> asio::awaitable<net::Response> {
      auto res = net::Response::text(200, gzip(big_text()), "text/plain");
      res.headers.set("Content-Encoding", "gzip");
      co_return res;
    });
    router.add("GET", "/v1.0/users/{u}/mailFolders", [this](net::Request& r) -> asio::awaitable<net::Response> {
      int now = ++in_flight;
      int seen = max_in_flight.load();
      while (now > seen && !max_in_flight.compare_exchange_weak(seen, now)) {
      }
      {
        std::lock_guard lk(mu);
        last_prefer = std::string(r.headers.get("Prefer").value_or(""));
      }
      asio::steady_timer t(co_await asio::this_coro::executor, 30ms);
      co_await t.async_wait(asio::use_awaitable);
      --in_flight;
      co_return net::Response::json(200, {{"value", nlohmann::json::array()}});
    });
    router.add("GET", "/v1.0/flaky", [this](net::Request&) -> asio::awaitable<net::Response> {
      if (++flaky_calls <= 2) {
        net::Response res;
        res.status = 503;
        res.headers.set("Retry-After", "0.2");
        co_return res;
      }
      co_return net::Response::json(200, {{"ok", true}});
    });
    router.add("GET", "/v1.0/drives/{d}/items/{i}/content", [this](net::Request&) -> asio::awaitable<net::Response> {
      auto res = net::Response::text(302, "");
      res.headers.set("Location", "http://localhost:" + std::to_string(server->port()) + "/download/abc");
      co_return res;
    });
    router.add("GET", "/download/abc", [this](net::Request& r) -> asio::awaitable<net::Response> {
      std::lock_guard lk(mu);
      redirected_auth = std::string(r.headers.get("Authorization").value_or(""));
      co_return net::Response::text(200, "file bytes", "application/octet-stream");
    });
    net::ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    server = std::make_unique<net::HttpServer>(server_ioc, o, router.handler(),
                                               test::quiet_logger("s"),
                                               nullptr);
    server->start();
    server_thread = std::thread([this] { server_ioc.run(); });
  }
  ~FakeGraph() {
    server->stop(0ms, [] {});
    server_thread.join();
  }
  TenantEndpoint endpoint() {
    TenantEndpoint ep;
    ep.tenant_id = "t1";
    ep.client_id = "app-1";
    ep.client_secret = "s3cret&=+";
    ep.graph_url = ep.login_url = "http://127.0.0.1:" + std::to_string(server->port());
    return ep;
  }
};

}  // namespace

TEST_CASE("wire: gzip bodies decoded, whole and streamed in bounded pieces, concurrent callers share one token", "[unit]") {
  FakeGraph g;
  asio::io_context ioc;
  GraphClient c(ioc.get_executor(), g.endpoint());
  auto many = [&]() -> asio::awaitable<int> {
    std::vector<std::future<GraphResponse>> fs;
    auto ex = co_await asio::this_coro::executor;
    for (int i = 0; i < 8; ++i) fs.push_back(asio::co_spawn(ex, c.get("/users"), asio::use_future));
    asio::steady_timer t(ex, 400ms);
    co_await t.async_wait(asio::use_awaitable);
    int ok = 0;
    for (auto& f : fs) ok += f.get().parse()["value"].size() == 2;
    co_return ok;
  };
  CHECK(m365vault::test::run_on(ioc, many(), 2) == 8);
  CHECK(g.token_calls == 1);  // single flight
  CHECK(c.stats().token_requests == 1);
  CHECK(g.last_accept_encoding == "gzip");
  // The secret is form-encoded, never sent raw.
  CHECK(g.token_form.find("client_secret=s3cret%26%3D%2B") != std::string::npos);
  CHECK(g.token_form.find("grant_type=client_credentials") != std::string::npos);

  std::size_t total = 0, largest = 0;
  auto r = m365vault::test::run_on(ioc, c.get_stream("/users/u1/messages/m1/$value", [&](std::string_view piece) -> asio::awaitable<void> {
    total += piece.size();
    largest = std::max(largest, piece.size());
    co_return;
  }));
  CHECK(r.status == 200);
  CHECK(total == big_text().size());
  CHECK(largest <= 64u * 1024);
}

TEST_CASE("wire: Outlook Prefer headers, at most 4 in flight per mailbox, Retry-After on 503, redirects without the token", "[unit]") {
  FakeGraph g;
  asio::io_context ioc;
  GraphClient c(ioc.get_executor(), g.endpoint());
  auto burst = [&]() -> asio::awaitable<int> {
    auto ex = co_await asio::this_coro::executor;
    std::vector<std::future<GraphResponse>> fs;
    for (int i = 0; i < 12; ++i) fs.push_back(asio::co_spawn(ex, c.get("/users/U1/mailFolders"), asio::use_future));
    asio::steady_timer t(ex, 1500ms);
    co_await t.async_wait(asio::use_awaitable);
    int ok = 0;
    for (auto& f : fs) ok += f.get().status == 200;
    co_return ok;
  };
  CHECK(m365vault::test::run_on(ioc, burst(), 2) == 12);
  CHECK(g.max_in_flight == 4);
  CHECK(c.stats().max_in_flight_per_mailbox == 4);
  CHECK(g.last_prefer == "odata.maxpagesize=100, IdType=\"ImmutableId\"");
  RequestOptions ro;
  ro.max_page_size = 7;
  ro.prefer.push_back("outlook.body-content-type=\"text\"");
  m365vault::test::run_on(ioc, c.get("/v1.0/users/u1/mailFolders", ro));
  CHECK(g.last_prefer == "odata.maxpagesize=7, IdType=\"ImmutableId\", outlook.body-content-type=\"text\"");

  const auto t0 = std::chrono::steady_clock::now();
  auto flaky = m365vault::test::run_on(ioc, c.get("/flaky"));
  CHECK(flaky.status == 200);
  CHECK(std::chrono::steady_clock::now() - t0 >= 400ms);  // two Retry-After: 0.2 honoured
  CHECK(c.stats().transient == 2);
  CHECK(c.stats().retries == 2);

  std::string got;
  auto file = m365vault::test::run_on(ioc, c.get_stream("/drives/d1/items/i1/content", [&](std::string_view p) -> asio::awaitable<void> {
    got += p;
    co_return;
  }));
  CHECK(file.status == 200);
  CHECK(got == "file bytes");
  CHECK(g.redirected_auth.empty());  // the pre-authenticated URL gets no bearer token
}
