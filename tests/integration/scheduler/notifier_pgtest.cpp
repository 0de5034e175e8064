// Webhook notifications through the outbox, delivered to a real HTTP receiver.
#include <catch2/catch.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <future>
#include <mutex>
#include <thread>

#include "m365vault/net/router.hpp"
#include "m365vault/net/server.hpp"
#include "m365vault/scheduler/notifier.hpp"
#include "m365vault/scheduler/queue.hpp"
#include "m365vault/storage/migrate.hpp"
#include "support/pg.hpp"
#include "support/log.hpp"

using namespace m365vault;
using namespace m365vault::scheduler;
using storage::PgConnection;
using m365vault::test::ScratchDatabase;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

std::shared_ptr<spdlog::logger> quiet() {
  return test::quiet_logger();
}

struct Receiver {
  std::mutex mu;
  std::vector<net::Request> got;
  int fail_first = 0;
  int calls = 0;
};

struct Fixture {
  ScratchDatabase db;
  PgConnection c = PgConnection::connect(db.conninfo());
  storage::Database pool{db.conninfo(), 2, {}, quiet()};
  asio::io_context ioc;
  asio::executor_work_guard<asio::io_context::executor_type> guard{ioc.get_executor()};
  net::Router router;
  std::shared_ptr<Receiver> rx = std::make_shared<Receiver>();
  std::unique_ptr<net::HttpServer> server;
  std::unique_ptr<net::HttpClient> http;
  std::unique_ptr<Notifier> notifier;
  std::thread thread;

  Fixture() {
    spdlog::logger l = *test::quiet_logger("m");
    storage::migrate(c, storage::builtin_migrations(), l);
    auto rx_ = rx;
    router.add("POST", "/hook", [rx_](net::Request& r) -> asio::awaitable<net::Response> {
      std::lock_guard lk(rx_->mu);
      if (rx_->calls++ < rx_->fail_first) co_return net::Response::text(503, "busy");
      rx_->got.push_back(r);
      co_return net::Response::text(204, "");
    });
    net::ServerOptions so;
    so.port = 0;
    server = std::make_unique<net::HttpServer>(ioc, so, router.handler(), quiet(), nullptr);
    server->start();
    http = std::make_unique<net::HttpClient>(ioc.get_executor(), net::ClientOptions{});
  }
  void start(int fail_first = 0) {
    rx->fail_first = fail_first;
    NotifierOptions o;
    o.url = "http://127.0.0.1:" + std::to_string(server->port()) + "/hook";
    o.secret = "s3cret";
    o.poll_interval = 100ms;
    o.retry_base = 0s;
    o.overdue_grace = 0s;
    notifier = std::make_unique<Notifier>(ioc.get_executor(), pool, *http, o, quiet());
    notifier->start();
    thread = std::thread([this] { ioc.run(); });
  }
  ~Fixture() {
    if (notifier) {
      std::promise<void> p;
      notifier->stop([&] { p.set_value(); });
      p.get_future().wait_for(5s);
    }
    server->stop(0ms, [] {});
    guard.reset();
    ioc.stop();
    if (thread.joinable()) thread.join();
  }
  bool wait_for(size_t n, std::chrono::seconds within) {
    auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard lk(rx->mu);
        if (rx->got.size() >= n) return true;
      }
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
};

}  // namespace

TEST_CASE("a failed run posts one signed webhook, retried until the receiver takes it", "[pg]") {
  Fixture f;
  Queue q;
  q.set_notifications(true);
  JobSpec spec;
  spec.name = "mail";
  spec.kind = "test";
  spec.max_attempts = 1;
  auto job = q.create_job(f.c, spec, std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
  q.enqueue(f.c, job.id);
  auto w = std::string(f.c.exec("SELECT gen_random_uuid()").get(0, 0));
  auto run = q.claim(f.c, w);
  REQUIRE(q.finish(f.c, run->id, w, RunState::failed, std::string("AADSTS7000215: invalid client secret")));

  f.start(2);  // the receiver fails twice first
  REQUIRE(f.wait_for(1, 20s));
  std::this_thread::sleep_for(500ms);
  std::lock_guard lk(f.rx->mu);
  REQUIRE(f.rx->got.size() == 1);  // delivered once
  auto& req = f.rx->got[0];
  auto body = nlohmann::json::parse(req.body);
  CHECK(body["event"] == "run.failed");
  CHECK(body["run"]["id"] == run->id);
  CHECK(body["run"]["error"] == "AADSTS7000215: invalid client secret");
  CHECK(body["job"]["name"] == "mail");
  CHECK(req.headers.get("X-M365Vault-Event") == std::optional<std::string_view>("run.failed"));
  CHECK(req.headers.get("X-M365Vault-Signature") ==
        std::optional<std::string_view>("sha256=" + hmac_sha256_hex("s3cret", req.body)));
  CHECK(f.c.exec("SELECT attempts FROM notifications").get_int(0, 0) == 3);
}

TEST_CASE("a scheduled job without a recent success is reported overdue once", "[pg]") {
  Fixture f;
  Queue q;
  JobSpec spec;
  spec.name = "hourly";
  spec.kind = "test";
  spec.schedule = "0 * * * *";
  auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  auto job = q.create_job(f.c, spec, now);
  // Created five hours ago, never succeeded: overdue after 2 intervals.
  f.c.exec("UPDATE jobs SET created_at = now() - interval '5 hours' WHERE id = $1::uuid", {job.id});
  CHECK(queue_overdue_notifications(f.c, now, 0s) == 1);
  CHECK(queue_overdue_notifications(f.c, now + 60s, 0s) == 0);  // once per overdue spell
  f.start();
  REQUIRE(f.wait_for(1, 10s));
  std::lock_guard lk(f.rx->mu);
  auto body = nlohmann::json::parse(f.rx->got[0].body);
  CHECK(body["event"] == "job.overdue");
  CHECK(body["job"]["name"] == "hourly");
  CHECK(body["last_success"].is_null());
}
