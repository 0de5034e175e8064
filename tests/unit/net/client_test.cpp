// The HTTP client against our own server on loopback, plain and TLS.
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <cstdio>
#include <thread>

#include "m365vault/core/process.hpp"
#include "m365vault/net/client.hpp"
#include "m365vault/net/router.hpp"
#include "m365vault/net/server.hpp"
#include "support/temp_dir.hpp"
#include "support/log.hpp"

using namespace m365vault;
using namespace m365vault::net;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

// Bytes that differ with their position (a reordered or repeated piece shows).
std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7 + i / 251) & 0xff);
  return s;
}
constexpr std::size_t kPatternSize = 3 * 1024 * 1024 + 12345;

// A server that speaks raw bytes, for answers our own server would never give
// (bodies cut short, chunked encoding): for each answer in turn it accepts one
// connection, reads the request's head, writes the answer, waits `linger`, and
// closes the connection.
struct RawServer {
  asio::io_context ioc;
  asio::ip::tcp::acceptor acceptor{ioc, {asio::ip::make_address("127.0.0.1"), 0}};
  std::thread thread;
  explicit RawServer(std::vector<std::string> answers, std::chrono::milliseconds linger = 0ms) {
    thread = std::thread([this, answers = std::move(answers), linger] {
      for (auto& a : answers) {
        asio::ip::tcp::socket s(ioc);
        acceptor.accept(s);
        asio::streambuf head;
        asio::read_until(s, head, "\r\n\r\n");
        asio::write(s, asio::buffer(a));
        std::this_thread::sleep_for(linger);
        boost::system::error_code ec;
        s.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
      }
    });
  }
  ~RawServer() { thread.join(); }
  std::string url(const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()) + path;
  }
};

std::string chunked(const std::vector<std::string>& pieces) {
  std::string out;
  for (auto& p : pieces) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", p.size());
    out += size + p + "\r\n";
  }
  return out;
}

struct Fixture {
  asio::io_context server_ioc;
  Router router;
  MetricsRegistry metrics;
  std::unique_ptr<HttpServer> server;
  std::thread server_thread;
  asio::io_context ioc;  // the client's

  explicit Fixture(ServerOptions o = {}) {
    router.add("GET", "/hello", [](Request& r) -> asio::awaitable<Response> {
      auto res = Response::text(200, "hello " + r.query_param("name").value_or("?"));
      res.headers.set("X-Echo-Agent", std::string(r.headers.get("User-Agent").value_or("")));
      co_return res;
    });
    router.add("POST", "/echo", [](Request& r) -> asio::awaitable<Response> { co_return Response::text(201, r.body); });
    router.add("GET", "/big", [](Request&) -> asio::awaitable<Response> {
      Response res;
      res.content_length = 5 * 1024 * 1024;
      res.stream = [](BodySink& sink) -> asio::awaitable<void> {
        std::string block(1024 * 1024, 'b');
        for (int i = 0; i < 5; ++i) co_await sink.write(block);
      };
      co_return res;
    });
    router.add("GET", "/pattern", [](Request&) -> asio::awaitable<Response> {
      Response res;
      res.content_length = static_cast<long long>(pattern(kPatternSize).size());
      res.stream = [](BodySink& sink) -> asio::awaitable<void> {
        const std::string all = pattern(kPatternSize);
        for (std::size_t at = 0; at < all.size(); at += 100'000) co_await sink.write(std::string_view(all).substr(at, 100'000));
      };
      co_return res;
    });
    router.add("GET", "/slow", [](Request&) -> asio::awaitable<Response> {
      asio::steady_timer t(co_await asio::this_coro::executor, 2s);
      co_await t.async_wait(asio::use_awaitable);
      co_return Response::text(200, "late");
    });
    router.add("GET", "/redirect", [](Request&) -> asio::awaitable<Response> {
      auto res = Response::text(302, "");
      res.headers.set("Location", "/hello");
      co_return res;
    });
    o.host = "127.0.0.1";
    o.port = 0;
    server = std::make_unique<HttpServer>(server_ioc, o, router.handler(),
                                          test::quiet_logger("s"),
                                          &metrics);
    server->start();
    server_thread = std::thread([this] { server_ioc.run(); });
  }
  ~Fixture() {
    server->stop(0ms, [] {});
    server_thread.join();
  }
  std::string url(const std::string& path, const std::string& scheme = "http") {
    return scheme + "://127.0.0.1:" + std::to_string(server->port()) + path;
  }
  template <class T>
  T run(asio::awaitable<T> op) {
    auto f = asio::co_spawn(ioc, std::move(op), asio::use_future);
    ioc.restart();
    ioc.run();
    return f.get();
  }
  double connections_accepted() { return metrics.counter("m365vault_http_connections_total", "").value(); }
};

ClientRequest get(const std::string& url) {
  ClientRequest r;
  r.url = url;
  return r;
}

Errc error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  FAIL("no error");
  return Errc::internal;
}

// A self-signed certificate for localhost and 127.0.0.1, written into `dir`:
// {key file, certificate file}.
std::pair<std::string, std::string> self_signed(const m365vault::test::TempDir& dir) {
  auto key = (dir / "key.pem").string(), cert = (dir / "cert.pem").string();
  ProcessOptions gen;
  gen.argv = {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
              "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"};
  gen.capture_output = true;
  REQUIRE(run_process(gen).exit_code == 0);
  return {key, cert};
}

}  // namespace

TEST_CASE("client: GET and POST on loopback, one pooled connection reused", "[unit]") {
  Fixture f;
  HttpClient c(f.ioc.get_executor(), {});
  auto r = f.run(c.request(get(f.url("/hello?name=vault"))));
  CHECK(r.status == 200);
  CHECK(r.body == "hello vault");
  CHECK(r.headers.get("X-Echo-Agent") == std::optional<std::string_view>("m365vault"));
  ClientRequest post;
  post.method = "POST";
  post.url = f.url("/echo");
  post.headers.set("Content-Type", "application/json");
  post.body = "{\"a\":1}";
  auto p = f.run(c.request(post));
  CHECK(p.status == 201);
  CHECK(p.body == "{\"a\":1}");
  CHECK(c.idle_connections() == 1);
  CHECK(f.connections_accepted() == 1);  // both requests on one connection
  // Redirects are the caller's to follow.
  auto red = f.run(c.request(get(f.url("/redirect"))));
  CHECK(red.status == 302);
  CHECK(red.headers.get("Location") == std::optional<std::string_view>("/hello"));
}

TEST_CASE("client: a streamed body arrives in bounded pieces, an in-memory one is capped", "[unit]") {
  Fixture f;
  HttpClient c(f.ioc.get_executor(), {});
  std::size_t total = 0, largest = 0;
  auto r = f.run(c.request_streamed(get(f.url("/big")), [&](std::string_view piece) -> asio::awaitable<void> {
    total += piece.size();
    largest = std::max(largest, piece.size());
    co_return;
  }));
  CHECK(r.status == 200);
  CHECK(r.body.empty());
  CHECK(total == 5u * 1024 * 1024);
  CHECK(largest <= 256u * 1024);

  ClientOptions small;
  small.max_body = 1024 * 1024;
  HttpClient capped(f.ioc.get_executor(), small);
  CHECK(error_of([&] { f.run(capped.request(get(f.url("/big")))); }) == Errc::payload_too_large);
}

TEST_CASE("client: deadlines, refused connections and refused schemes are typed errors", "[unit]") {
  Fixture f;
  ClientOptions o;
  o.io_timeout = 300ms;
  HttpClient c(f.ioc.get_executor(), o);
  auto t0 = std::chrono::steady_clock::now();
  CHECK(error_of([&] { f.run(c.request(get(f.url("/slow")))); }) == Errc::timeout);
  CHECK(std::chrono::steady_clock::now() - t0 < 1500ms);

  asio::io_context tmp;
  asio::ip::tcp::acceptor a(tmp, {asio::ip::make_address("127.0.0.1"), 0});
  auto dead_port = a.local_endpoint().port();
  a.close();
  CHECK(error_of([&] { f.run(c.request(get("http://127.0.0.1:" + std::to_string(dead_port) + "/"))); }) ==
        Errc::unavailable);
  CHECK(error_of([&] { f.run(c.request(get("http://example.invalid/x"))); }) == Errc::bad_request);
  CHECK(error_of([&] { f.run(c.request(get("ftp://127.0.0.1/x"))); }) == Errc::bad_request);
  CHECK(error_of([&] { f.run(c.request(get("not a url"))); }) == Errc::bad_request);
}

TEST_CASE("client: a pooled connection the server closed is replaced transparently", "[unit]") {
  ServerOptions so;
  so.idle_timeout = 200ms;
  Fixture f(so);
  HttpClient c(f.ioc.get_executor(), {});
  CHECK(f.run(c.request(get(f.url("/hello")))).status == 200);
  std::this_thread::sleep_for(500ms);  // the server drops the idle connection
  CHECK(f.run(c.request(get(f.url("/hello")))).status == 200);
  CHECK(f.connections_accepted() == 2);
}

TEST_CASE("client: HTTPS verifies the certificate and the host name", "[unit]") {
  m365vault::test::TempDir dir;
  const auto [key, cert] = self_signed(dir);
  ServerOptions so;
  so.tls_cert_file = cert;
  so.tls_key_file = key;
  Fixture f(so);

  ClientOptions trusted;
  trusted.ca_file = cert;
  HttpClient good(f.ioc.get_executor(), trusted);
  auto r = f.run(good.request(get(f.url("/hello?name=tls", "https"))));
  CHECK(r.status == 200);
  CHECK(r.body == "hello tls");
  auto by_name = f.run(good.request(get("https://localhost:" + std::to_string(f.server->port()) + "/hello")));
  CHECK(by_name.status == 200);

  HttpClient system_cas(f.ioc.get_executor(), {});  // a self-signed certificate is not trusted
  CHECK(error_of([&] { f.run(system_cas.request(get(f.url("/hello", "https")))); }) == Errc::unavailable);
}

TEST_CASE("client: a Content-Length body arrives whole and in order, plain and over TLS, and the connection is kept",
          "[unit]") {
  m365vault::test::TempDir dir;
  const auto [key, cert] = self_signed(dir);
  ServerOptions so;
  so.tls_cert_file = cert;
  so.tls_key_file = key;
  Fixture f(so);
  ClientOptions trusted;
  trusted.ca_file = cert;
  HttpClient c(f.ioc.get_executor(), trusted);
  const std::string want = pattern(kPatternSize);
  for (int round = 0; round < 2; ++round) {
    std::string got;
    auto r = f.run(c.request_streamed(get(f.url("/pattern", "https")), [&](std::string_view piece) -> asio::awaitable<void> {
      got.append(piece);
      co_return;
    }));
    CHECK(r.status == 200);
    CHECK(got.size() == want.size());
    CHECK(got == want);
    auto whole = f.run(c.request(get(f.url("/pattern", "https"))));
    CHECK(whole.body == want);
  }
  CHECK(c.idle_connections() == 1);
  CHECK(f.connections_accepted() == 1);  // four bodies on one connection
}

namespace {
// Streams GET `path` from `raw` to its end or its failure: the bytes delivered,
// the error it ended with (nullopt: none), and the idle connections left.
struct Streamed {
  std::string got;
  std::optional<Errc> error;
  std::size_t idle = 0;
};
Streamed stream_from(RawServer& raw, const std::string& path, ClientOptions o = {}) {
  asio::io_context ioc;
  HttpClient c(ioc.get_executor(), o);
  Streamed out;
  auto op = c.request_streamed(get(raw.url(path)), [&](std::string_view piece) -> asio::awaitable<void> {
    out.got.append(piece);
    co_return;
  });
  auto fut = asio::co_spawn(ioc, std::move(op), asio::use_future);
  ioc.run();
  try {
    fut.get();
  } catch (const Error& e) {
    out.error = e.code();
  }
  out.idle = c.idle_connections();
  return out;
}
}  // namespace

TEST_CASE("client: a body cut short delivers every byte that arrived, then a typed error", "[unit]") {
  const std::string body = pattern(700'000);
  SECTION("Content-Length, connection closed at 300,000 bytes") {
    RawServer raw({"HTTP/1.1 200 OK\r\nContent-Length: 700000\r\n\r\n" + body.substr(0, 300'000)});
    auto r = stream_from(raw, "/cut");
    CHECK(r.error == Errc::unavailable);
    CHECK(r.got == body.substr(0, 300'000));
    CHECK(r.idle == 0);
  }
  SECTION("Content-Length, the server stalls past the read deadline") {
    RawServer raw({"HTTP/1.1 200 OK\r\nContent-Length: 700000\r\n\r\n" + body.substr(0, 200'000)}, 1500ms);
    ClientOptions o;
    o.io_timeout = 300ms;
    auto r = stream_from(raw, "/stall", o);
    CHECK(r.error == Errc::timeout);
    CHECK(r.got == body.substr(0, 200'000));
  }
  SECTION("chunked, cut in the middle of its third chunk") {
    const std::string sent = chunked({body.substr(0, 100'000), body.substr(100'000, 150'000)}) + "30000\r\n" +
                             body.substr(250'000, 1000);
    RawServer raw({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + sent});
    auto r = stream_from(raw, "/chunked-cut");
    CHECK(r.error == Errc::unavailable);
    // Every byte of the first two chunks, and what came of the third.
    REQUIRE(r.got.size() >= 250'000);
    CHECK(r.got == body.substr(0, r.got.size()));
  }
}

TEST_CASE("client: a chunked body arrives whole, streamed and in memory", "[unit]") {
  const std::string body = pattern(600'000);
  const std::string answer = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
                             chunked({body.substr(0, 1), body.substr(1, 70'000), body.substr(70'001, 300'000),
                                      body.substr(370'001)}) +
                             "0\r\n\r\n";
  RawServer raw({answer, answer});
  asio::io_context ioc;
  HttpClient c(ioc.get_executor(), {});
  std::string got;
  auto op = c.request_streamed(get(raw.url("/chunked")), [&](std::string_view piece) -> asio::awaitable<void> {
    got.append(piece);
    co_return;
  });
  auto fut = asio::co_spawn(ioc, std::move(op), asio::use_future);
  ioc.run();
  CHECK(fut.get().status == 200);
  CHECK(got == body);
  auto whole = asio::co_spawn(ioc, c.request(get(raw.url("/chunked"))), asio::use_future);
  ioc.restart();
  ioc.run();
  CHECK(whole.get().body == body);
  CHECK(c.idle_connections() == 0);  // "Connection: close" is honoured
}
