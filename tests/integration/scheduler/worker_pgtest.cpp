// Workers executing runs on the real PostgreSQL: shared work, cancellation,
// retries with backoff, and a clean stop.
#include <catch2/catch.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <future>
#include <map>
#include <thread>

#include "m365vault/scheduler/worker.hpp"
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

// A job kind for tests: counts executions per run, works `work` long (checking
// for cancellation), fails the first `fail_first` attempts.
struct TestKind : JobKind {
  std::mutex mu;
  std::map<std::string, int> executions;
  std::chrono::milliseconds work{30};
  int fail_first = 0;
  asio::awaitable<RunOutcome> execute(RunContext& ctx) override {
    {
      std::lock_guard lk(mu);
      ++executions[ctx.run().id];
    }
    auto until = std::chrono::steady_clock::now() + work;
    while (std::chrono::steady_clock::now() < until) {
      if (ctx.cancelled()) co_return RunOutcome{RunState::cancelled, std::string("cancelled by the operator")};
      asio::steady_timer t(co_await asio::this_coro::executor, 20ms);
      co_await t.async_wait(asio::use_awaitable);
      ctx.set_progress({{"ticks", 1}});
    }
    if (ctx.run().attempt <= fail_first) co_return RunOutcome{RunState::failed, std::string("transient failure")};
    co_return RunOutcome{RunState::succeeded, std::nullopt};
  }
};

struct Fixture {
  ScratchDatabase db;
  PgConnection c = PgConnection::connect(db.conninfo());
  storage::Database pool{db.conninfo(), 4, {}, quiet()};
  asio::io_context ioc;
  asio::executor_work_guard<asio::io_context::executor_type> guard{ioc.get_executor()};
  std::vector<std::thread> threads;
  std::shared_ptr<TestKind> kind = std::make_shared<TestKind>();
  Queue queue{5s};
  std::vector<std::unique_ptr<Worker>> workers;

  Fixture() {
    spdlog::logger l = *test::quiet_logger("m");
    storage::migrate(c, storage::builtin_migrations(), l);
  }
  void start_workers(int n, std::chrono::seconds retry_base = 0s) {
    WorkerOptions o;
    o.concurrency = 2;
    o.poll_interval = 50ms;
    o.heartbeat_interval = 200ms;
    o.tick_interval = 100ms;
    o.retry_base = retry_base;
    for (int i = 0; i < n; ++i) {
      auto id = std::string(c.exec("SELECT gen_random_uuid()").get(0, 0));
      workers.push_back(std::make_unique<Worker>(ioc.get_executor(), pool, queue,
                                                 std::map<std::string, std::shared_ptr<JobKind>>{{"test", kind}}, o, id,
                                                 quiet()));
      workers.back()->start();
    }
    for (int i = 0; i < 2; ++i) threads.emplace_back([this] { ioc.run(); });
  }
  ~Fixture() {
    for (auto& w : workers) {
      std::promise<void> p;
      w->stop([&] { p.set_value(); });
      p.get_future().wait_for(10s);
    }
    guard.reset();
    ioc.stop();
    for (auto& t : threads) t.join();
  }
  std::string job(const std::string& name, int max_attempts = 3) {
    JobSpec s;
    s.name = name;
    s.kind = "test";
    s.max_attempts = max_attempts;
    return queue.create_job(c, s, std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now())).id;
  }
  // Waits until `sql` (a count) reaches n.
  bool wait_count(const std::string& sql, long long n, std::chrono::seconds within) {
    auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      if (c.exec(sql).get_int(0, 0) == n) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
};

}  // namespace

TEST_CASE("two workers execute 20 runs, each exactly once", "[pg]") {
  Fixture f;
  for (int i = 0; i < 20; ++i) f.queue.enqueue(f.c, f.job("j" + std::to_string(i)));
  f.start_workers(2);
  REQUIRE(f.wait_count("SELECT count(*) FROM runs WHERE state = 'succeeded'", 20, 30s));
  std::lock_guard lk(f.kind->mu);
  CHECK(f.kind->executions.size() == 20);
  for (auto& [id, n] : f.kind->executions) CHECK(n == 1);
  // Both workers took part.
  CHECK(f.c.exec("SELECT count(DISTINCT worker_id) FROM runs").get_int(0, 0) == 2);
  CHECK(f.c.exec("SELECT count(*) FROM runs WHERE progress->>'ticks' = '1'").get_int(0, 0) == 20);
}

TEST_CASE("a cancelled running run stops within seconds", "[pg]") {
  Fixture f;
  f.kind->work = 60s;
  auto run = f.queue.enqueue(f.c, f.job("long"));
  f.start_workers(1);
  REQUIRE(f.wait_count("SELECT count(*) FROM runs WHERE state = 'running'", 1, 10s));
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(f.queue.request_cancel(f.c, run));
  REQUIRE(f.wait_count("SELECT count(*) FROM runs WHERE state = 'cancelled'", 1, 5s));
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  CHECK(f.c.exec("SELECT count(*) FROM runs").get_int(0, 0) == 1);  // no retry of a cancelled run
}

TEST_CASE("a failed run is retried and then succeeds", "[pg]") {
  Fixture f;
  f.kind->fail_first = 1;
  f.queue.enqueue(f.c, f.job("flaky"));
  f.start_workers(1);
  REQUIRE(f.wait_count("SELECT count(*) FROM runs WHERE state = 'succeeded'", 1, 20s));
  auto r = f.c.exec("SELECT state, attempt, trigger FROM runs ORDER BY attempt");
  REQUIRE(r.rows() == 2);
  CHECK(r.get(0, 0) == "failed");
  CHECK(r.get(1, 1) == "2");
  CHECK(r.get(1, 2) == "retry");
  CHECK(f.c.exec("SELECT count(*) FROM run_events WHERE message = 'transient failure'").get_int(0, 0) == 1);
}

TEST_CASE("workers only claim kinds they can execute", "[pg]") {
  Fixture f;
  JobSpec other;
  other.name = "restore-job";
  other.kind = "restore";
  auto job = f.queue.create_job(f.c, other, std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
  f.queue.enqueue(f.c, job.id);
  f.start_workers(1);
  std::this_thread::sleep_for(500ms);
  CHECK(f.c.exec("SELECT count(*) FROM runs WHERE state = 'queued'").get_int(0, 0) == 1);
}
