// The HTTP server on a loopback socket: limits, request ids, streaming,
// slow clients, the connection cap and the graceful stop.
#include <catch2/catch.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include <boost/asio/executor_work_guard.hpp>

#include <future>
#include <optional>
#include <thread>

#include "m365vault/net/router.hpp"
#include "m365vault/net/server.hpp"
#include "support/http_client.hpp"
#include "support/log.hpp"

using namespace m365vault;
using namespace m365vault::net;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using m365vault::test::http_get;
using m365vault::test::http_request;
using m365vault::test::HttpRequest;

namespace {

struct TestServer {
  asio::io_context ioc;
  Router router;
  MetricsRegistry metrics;
  std::unique_ptr<HttpServer> server;
  std::vector<std::thread> threads;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{ioc.get_executor()};

  explicit TestServer(ServerOptions o = {}) {
    router.add("GET", "/ok", [](Request&) -> asio::awaitable<Response> { co_return Response::text(200, "ok"); });
    router.add("POST", "/echo", [](Request& r) -> asio::awaitable<Response> {
      co_return Response::text(200, std::to_string(r.body.size()));
    });
    router.add("GET", "/slow", [](Request&) -> asio::awaitable<Response> {
      asio::steady_timer t(co_await asio::this_coro::executor, 1500ms);
      co_await t.async_wait(asio::use_awaitable);
      co_return Response::text(200, "slow done");
    });
    router.add("GET", "/boom", [](Request&) -> asio::awaitable<Response> {
      throw Error(Errc::conflict, "thing 'x' is busy");
      co_return Response{};
    });
    router.add("GET", "/stream/{mode}", [](Request& r) -> asio::awaitable<Response> {
      Response res;
      res.headers.set("Content-Type", "application/octet-stream");
      if (r.params["mode"] == "sized") res.content_length = 3 * 100000;
      res.stream = [](BodySink& sink) -> asio::awaitable<void> {
        std::string chunk(100000, 'z');
        for (int i = 0; i < 3; ++i) co_await sink.write(chunk);
      };
      co_return res;
    });
    o.host = "127.0.0.1";
    o.port = 0;
    auto log = test::quiet_logger();
    server = std::make_unique<HttpServer>(ioc, o, router.handler(), log, &metrics);
    server->start();
    for (int i = 0; i < 2; ++i) threads.emplace_back([this] { ioc.run(); });
  }
  ~TestServer() {
    std::promise<void> p;
    server->stop(1s, [&] { p.set_value(); });
    p.get_future().wait_for(5s);
    work.reset();
    ioc.stop();
    for (auto& t : threads) t.join();
  }
  unsigned short port() const { return server->port(); }
};

// Sends raw bytes and reads until the peer closes or `timeout`.
std::string raw_exchange(unsigned short port, const std::string& bytes) {
  asio::io_context ioc;
  asio::ip::tcp::socket s(ioc);
  s.connect({asio::ip::make_address("127.0.0.1"), port});
  asio::write(s, asio::buffer(bytes));
  std::string out;
  boost::system::error_code ec;
  char buf[4096];
  for (;;) {
    auto n = s.read_some(asio::buffer(buf), ec);
    if (ec) break;
    out.append(buf, n);
  }
  return out;
}

}  // namespace

TEST_CASE("server echoes a sane X-Request-Id and generates one otherwise", "[unit]") {
  TestServer ts;
  HttpRequest r;
  r.port = ts.port();
  r.target = "/ok";
  r.headers = {{"X-Request-Id", "abc-123"}};
  auto res = http_request(r);
  CHECK(res.status == 200);
  CHECK(res.body == "ok");
  CHECK(res.header("x-request-id") == "abc-123");

  auto gen = http_get(ts.port(), "/ok");
  CHECK(gen.header("x-request-id").size() == 32);
  CHECK(gen.header("x-request-id") != "abc-123");
}

TEST_CASE("server turns handler errors into problem+json with the registered status", "[unit]") {
  TestServer ts;
  auto res = http_get(ts.port(), "/boom");
  CHECK(res.status == 409);
  CHECK(res.header("content-type") == "application/problem+json");
  auto j = nlohmann::json::parse(res.body);
  CHECK(j["code"] == "conflict");
  CHECK(j["detail"] == "thing 'x' is busy");
  CHECK(j["request_id"] == res.header("x-request-id"));
  CHECK(http_get(ts.port(), "/missing").status == 404);
}

TEST_CASE("server enforces header and body limits", "[unit]") {
  ServerOptions o;
  o.header_limit = 1024;
  o.body_limit = 1000;
  TestServer ts(o);
  HttpRequest big_header;
  big_header.port = ts.port();
  big_header.target = "/ok";
  big_header.headers = {{"X-Filler", std::string(4000, 'a')}};
  auto r1 = http_request(big_header);
  CHECK(r1.status == 431);
  CHECK(nlohmann::json::parse(r1.body)["code"] == "headers_too_large");

  HttpRequest big_body;
  big_body.method = "POST";
  big_body.port = ts.port();
  big_body.target = "/echo";
  big_body.body = std::string(5000, 'b');
  auto r2 = http_request(big_body);
  CHECK(r2.status == 413);
  CHECK(nlohmann::json::parse(r2.body)["code"] == "payload_too_large");

  big_body.body = std::string(900, 'b');
  auto r3 = http_request(big_body);
  CHECK(r3.status == 200);
  CHECK(r3.body == "900");
}

TEST_CASE("server answers a malformed request with 400 and closes", "[unit]") {
  TestServer ts;
  auto out = raw_exchange(ts.port(), "NOT A REQUEST\r\n\r\n");
  CHECK(out.rfind("HTTP/1.1 400", 0) == 0);
  auto out2 = raw_exchange(ts.port(), "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(out2.rfind("HTTP/1.1 400", 0) == 0);
}

TEST_CASE("a stalled client does not block others and is dropped at its deadline", "[unit]") {
  ServerOptions o;
  o.read_timeout = 500ms;
  TestServer ts(o);
  asio::io_context ioc;
  asio::ip::tcp::socket stalled(ioc);
  stalled.connect({asio::ip::make_address("127.0.0.1"), ts.port()});
  asio::write(stalled, asio::buffer(std::string("GET /ok HTTP/1.1\r\nHost: x\r\n")));  // never finished

  auto t0 = std::chrono::steady_clock::now();
  CHECK(http_get(ts.port(), "/ok").status == 200);
  CHECK(std::chrono::steady_clock::now() - t0 < 400ms);

  // The stalled one is closed after the read deadline.
  char buf[64];
  boost::system::error_code ec;
  stalled.read_some(asio::buffer(buf), ec);
  CHECK(ec);
  CHECK(std::chrono::steady_clock::now() - t0 < 3s);
}

TEST_CASE("connections over the cap get 503 overloaded", "[unit]") {
  ServerOptions o;
  o.max_connections = 2;
  TestServer ts(o);
  asio::io_context ioc;
  asio::ip::tcp::socket a(ioc), b(ioc);
  a.connect({asio::ip::make_address("127.0.0.1"), ts.port()});
  b.connect({asio::ip::make_address("127.0.0.1"), ts.port()});
  // Give the accept loop time to register both.
  for (int i = 0; i < 100 && ts.server->connections() < 2; ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(ts.server->connections() == 2);
  auto out = raw_exchange(ts.port(), "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(out.rfind("HTTP/1.1 503", 0) == 0);
  CHECK(out.find("\"code\":\"overloaded\"") != std::string::npos);
  a.close();
  b.close();
  for (int i = 0; i < 200 && ts.server->connections() > 0; ++i) std::this_thread::sleep_for(10ms);
  CHECK(http_get(ts.port(), "/ok").status == 200);
}

TEST_CASE("streamed responses arrive whole, chunked or with a length", "[unit]") {
  TestServer ts;
  auto chunked = http_get(ts.port(), "/stream/chunked");
  CHECK(chunked.status == 200);
  CHECK(chunked.header("transfer-encoding") == "chunked");
  CHECK(chunked.body == std::string(300000, 'z'));
  auto sized = http_get(ts.port(), "/stream/sized");
  CHECK(sized.header("content-length") == "300000");
  CHECK(sized.body == std::string(300000, 'z'));
}

TEST_CASE("stop lets a request in flight finish, then refuses new connections", "[unit]") {
  TestServer ts;
  auto port = ts.port();
  auto inflight = std::async(std::launch::async, [port] { return http_get(port, "/slow"); });
  for (int i = 0; i < 100 && ts.server->connections() == 0; ++i) std::this_thread::sleep_for(10ms);
  std::this_thread::sleep_for(100ms);
  std::promise<void> stopped;
  ts.server->stop(5s, [&] { stopped.set_value(); });
  auto res = inflight.get();
  CHECK(res.status == 200);
  CHECK(res.body == "slow done");
  CHECK(stopped.get_future().wait_for(3s) == std::future_status::ready);
  CHECK(http_get(port, "/ok", 1000ms).status == 0);
}

TEST_CASE("metrics count requests by route and status", "[unit]") {
  TestServer ts;
  http_get(ts.port(), "/ok");
  http_get(ts.port(), "/missing");
  // A request is recorded once its response is written, just after the client has
  // it: wait for both, since the server's threads may record them in either order.
  std::string text;
  for (int i = 0; i < 300; ++i) {
    text = ts.metrics.render();
    if (text.find("status=\"404\"") != std::string::npos && text.find("status=\"200\"") != std::string::npos) break;
    std::this_thread::sleep_for(10ms);
  }
  CHECK(text.find("m365vault_http_requests_total{route=\"/ok\",method=\"GET\",status=\"200\"} 1") != std::string::npos);
  CHECK(text.find("m365vault_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1") !=
        std::string::npos);
  CHECK(text.find("m365vault_http_request_duration_seconds_bucket{route=\"/ok\",le=\"+Inf\"} 1") !=
        std::string::npos);
}
