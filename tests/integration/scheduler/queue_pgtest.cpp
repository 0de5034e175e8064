// The run queue on the real PostgreSQL: many workers, leases, retries,
// cancellation, schedules fired by several daemons at once.
#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "m365vault/scheduler/queue.hpp"
#include "m365vault/storage/migrate.hpp"
#include "support/pg.hpp"
#include "support/log.hpp"

using namespace m365vault;
using namespace m365vault::scheduler;
using storage::PgConnection;
using m365vault::test::ScratchDatabase;
using namespace std::chrono_literals;

namespace {

PgConnection migrated(const ScratchDatabase& db) {
  auto c = PgConnection::connect(db.conninfo());
  spdlog::logger quiet = *test::quiet_logger();
  storage::migrate(c, storage::builtin_migrations(), quiet);
  return c;
}

std::string new_worker_id(PgConnection& c) { return std::string(c.exec("SELECT gen_random_uuid()").get(0, 0)); }

sys_seconds t0() { return *parse_rfc3339("2026-11-29T10:00:30Z"); }

JobSpec manual_job(const std::string& name, int max_attempts = 3) {
  JobSpec s;
  s.name = name;
  s.kind = "test";
  s.max_attempts = max_attempts;
  return s;
}

}  // namespace

TEST_CASE("three workers share 50 queued runs and each runs exactly once", "[pg]") {
  ScratchDatabase db;
  auto c = migrated(db);
  Queue q;
  std::set<std::string> queued;
  for (int j = 0; j < 10; ++j) {
    auto job = q.create_job(c, manual_job("job-" + std::to_string(j)), t0());
    for (int k = 0; k < 5; ++k) queued.insert(q.enqueue(c, job.id));
  }
  REQUIRE(queued.size() == 50);

  std::mutex mu;
  std::map<std::string, int> executions;
  std::atomic<int> concurrent_same_job{0};
  std::map<std::string, int> running_per_job;
  auto worker = [&] {
    auto conn = PgConnection::connect(db.conninfo());
    auto me = new_worker_id(conn);
    int idle = 0;
    while (idle < 20) {
      auto run = q.claim(conn, me);
      if (!run) {
        ++idle;
        std::this_thread::sleep_for(10ms);
        continue;
      }
      idle = 0;
      {
        std::lock_guard lk(mu);
        ++executions[run->id];
        if (++running_per_job[run->job_id] > 1) ++concurrent_same_job;
      }
      std::this_thread::sleep_for(2ms);
      {
        std::lock_guard lk(mu);
        --running_per_job[run->job_id];
      }
      REQUIRE(q.finish(conn, run->id, me, RunState::succeeded, std::nullopt));
    }
  };
  std::vector<std::future<void>> workers;
  for (int i = 0; i < 3; ++i) workers.push_back(std::async(std::launch::async, worker));
  for (auto& w : workers) w.get();

  CHECK(executions.size() == 50);
  for (auto& [id, n] : executions) {
    INFO("run " << id);
    CHECK(n == 1);
    CHECK(queued.count(id) == 1);
  }
  CHECK(concurrent_same_job == 0);
  CHECK(c.exec("SELECT count(*) FROM runs WHERE state = 'succeeded'").get_int(0, 0) == 50);
}

TEST_CASE("an expired lease hands the run to another worker and the first one loses it", "[pg]") {
  ScratchDatabase db;
  auto c = migrated(db);
  Queue q(1s);
  auto job = q.create_job(c, manual_job("leased"), t0());
  auto run_id = q.enqueue(c, job.id);
  auto a = new_worker_id(c), b = new_worker_id(c);

  auto first = q.claim(c, a);
  REQUIRE(first);
  CHECK(first->id == run_id);
  CHECK_FALSE(first->taken_over);
  CHECK_FALSE(q.claim(c, b));  // held
  CHECK(q.heartbeat(c, run_id, a, {{"items", 10}}).lease_held);

  std::this_thread::sleep_for(1500ms);  // a dies: no heartbeat
  auto second = q.claim(c, b);
  REQUIRE(second);
  CHECK(second->id == run_id);
  CHECK(second->taken_over);
  auto info = q.get_run(c, run_id);
  CHECK(info->takeovers == 1);
  CHECK(info->worker_id == b);
  CHECK(info->progress["items"] == 10);  // what a committed, b resumes from

  CHECK_FALSE(q.heartbeat(c, run_id, a, {}).lease_held);
  CHECK_FALSE(q.finish(c, run_id, a, RunState::succeeded, std::nullopt));
  CHECK(q.finish(c, run_id, b, RunState::succeeded, std::nullopt));
  CHECK(q.get_run(c, run_id)->state == RunState::succeeded);
}

TEST_CASE("two runs of one job never run at once", "[pg]") {
  ScratchDatabase db;
  auto c = migrated(db);
  Queue q;
  auto job = q.create_job(c, manual_job("serial"), t0());
  auto r1 = q.enqueue(c, job.id);
  auto r2 = q.enqueue(c, job.id);
  auto a = new_worker_id(c), b = new_worker_id(c);
  auto got = q.claim(c, a);
  REQUIRE(got);
  CHECK(got->id == r1);
  CHECK_FALSE(q.claim(c, b));
  REQUIRE(q.finish(c, r1, a, RunState::succeeded, std::nullopt));
  auto next = q.claim(c, b);
  REQUIRE(next);
  CHECK(next->id == r2);
}

TEST_CASE("a failed run is retried until its attempts are used up", "[pg]") {
  ScratchDatabase db;
  auto c = migrated(db);
  Queue q;
  auto job = q.create_job(c, manual_job("flaky", 2), t0());
  q.enqueue(c, job.id);
  auto w = new_worker_id(c);
  auto first = q.claim(c, w);
  REQUIRE(first);
  CHECK(first->attempt == 1);
  REQUIRE(q.finish(c, first->id, w, RunState::failed, std::string("graph said no")));
  auto retry = q.claim(c, w);
  REQUIRE(retry);
  CHECK(retry->attempt == 2);
  REQUIRE(q.finish(c, retry->id, w, RunState::failed, std::string("still no")));
  CHECK_FALSE(q.claim(c, w));
  auto runs = q.list_runs(c, job.id);
  REQUIRE(runs.size() == 2);
  CHECK(runs[1].trigger == "retry");
  CHECK(runs[1].error == std::optional<std::string>("still no"));

  // A retry waits for its backoff.
  auto slow = q.create_job(c, manual_job("slow", 3), t0());
  q.enqueue(c, slow.id);
  auto s = q.claim(c, w);
  REQUIRE(q.finish(c, s->id, w, RunState::failed, std::string("x"), 3600s));
  CHECK_FALSE(q.claim(c, w));
}

TEST_CASE("cancellation: a queued run never starts, a running one is told at its heartbeat", "[pg]") {
  ScratchDatabase db;
  auto c = migrated(db);
  Queue q;
  auto job = q.create_job(c, manual_job("cancel-me"), t0());
  auto queued = q.enqueue(c, job.id);
  CHECK(q.request_cancel(c, queued));
  CHECK(q.get_run(c, queued)->state == RunState::cancelled);
  auto w = new_worker_id(c);
  CHECK_FALSE(q.claim(c, w));

  auto running = q.enqueue(c, job.id);
  auto got = q.claim(c, w);
  REQUIRE(got);
  CHECK_FALSE(q.heartbeat(c, running, w, {}).cancel_requested);
  CHECK(q.request_cancel(c, running));
  auto hb = q.heartbeat(c, running, w, {});
  CHECK(hb.lease_held);
  CHECK(hb.cancel_requested);
  REQUIRE(q.finish(c, running, w, RunState::cancelled, std::nullopt));
  CHECK(q.get_run(c, running)->state == RunState::cancelled);
  CHECK_FALSE(q.request_cancel(c, running));  // over already
}

TEST_CASE("a job due every minute fires once per minute with three daemons ticking at once", "[pg]") {
  ScratchDatabase db;
  auto c = migrated(db);
  Queue q;
  JobSpec spec = manual_job("minutely");
  spec.schedule = "* * * * *";
  auto job = q.create_job(c, spec, t0());
  CHECK(job.next_fire_at == parse_rfc3339("2026-11-29T10:01:00Z"));

  std::set<std::string> all;
  for (int minute = 1; minute <= 5; ++minute) {
    // Three daemons, each ticking twice within the same minute.
    std::vector<std::future<std::vector<std::string>>> ticks;
    for (int d = 0; d < 3; ++d)
      ticks.push_back(std::async(std::launch::async, [&, minute] {
        auto conn = PgConnection::connect(db.conninfo());
        auto now = t0() + std::chrono::minutes(minute);
        auto a = q.fire_due(conn, now);
        auto b = q.fire_due(conn, now + 20s);
        a.insert(a.end(), b.begin(), b.end());
        return a;
      }));
    size_t fired = 0;
    for (auto& t : ticks)
      for (auto& id : t.get()) {
        all.insert(id);
        ++fired;
      }
    INFO("minute " << minute);
    CHECK(fired == 1);
  }
  CHECK(all.size() == 5);
  auto runs = q.list_runs(c, job.id);
  REQUIRE(runs.size() == 5);
  for (int i = 0; i < 5; ++i) {
    CHECK(runs[static_cast<size_t>(i)].trigger == "schedule");
    CHECK(format_rfc3339(*runs[static_cast<size_t>(i)].scheduled_for) ==
          format_rfc3339(*parse_rfc3339("2026-11-29T10:01:00Z") + std::chrono::minutes(i)));
  }
}

TEST_CASE("slots missed while every daemon was down run once, not once per slot", "[pg]") {
  ScratchDatabase db;
  auto c = migrated(db);
  Queue q;
  JobSpec spec = manual_job("hourly");
  spec.schedule = "0 * * * *";
  spec.timezone = "Europe/Berlin";
  auto job = q.create_job(c, spec, t0());
  auto fired = q.fire_due(c, t0() + 10h);  // ten slots passed
  REQUIRE(fired.size() == 1);
  auto runs = q.list_runs(c, job.id);
  REQUIRE(runs.size() == 1);
  CHECK(format_rfc3339(*runs[0].scheduled_for) == "2026-11-29T20:00:00Z");
  CHECK(format_rfc3339(*q.get_job(c, job.id)->next_fire_at) == "2026-11-29T21:00:00Z");
  CHECK(q.fire_due(c, t0() + 10h + 30min).empty());
}

TEST_CASE("jobs: bad schedules and duplicate names are refused with their reason", "[pg]") {
  ScratchDatabase db;
  auto c = migrated(db);
  Queue q;
  JobSpec bad = manual_job("bad");
  bad.schedule = "61 * * * *";
  CHECK_THROWS_WITH(q.create_job(c, bad, t0()), Catch::Contains("minute: 61"));
  bad.schedule = "0 * * * *";
  bad.timezone = "Nowhere/City";
  CHECK_THROWS_WITH(q.create_job(c, bad, t0()), Catch::Contains("time zone 'Nowhere/City'"));
  q.create_job(c, manual_job("dup"), t0());
  try {
    q.create_job(c, manual_job("dup"), t0());
    FAIL("duplicate accepted");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::conflict);
  }
  CHECK(q.list_jobs(c).size() == 1);
  CHECK(q.get_job(c, "dup").has_value());
}

TEST_CASE("a run keeps a bounded event log", "[pg]") {
  ScratchDatabase db;
  auto c = migrated(db);
  Queue q;
  auto job = q.create_job(c, manual_job("chatty"), t0());
  auto run = q.enqueue(c, job.id);
  for (int i = 0; i < Queue::kMaxEventsPerRun + 5; ++i) q.add_event(c, run, "info", "event " + std::to_string(i));
  auto r = c.exec("SELECT count(*), min(message) FROM run_events WHERE run_id = $1::uuid", {run});
  CHECK(r.get_int(0, 0) == Queue::kMaxEventsPerRun);
  CHECK(c.exec("SELECT count(*) FROM run_events WHERE message = 'event 0'").get_int(0, 0) == 0);
}

TEST_CASE("queue statistics count runs by state and the last success per job", "[pg]") {
  ScratchDatabase db;
  auto c = migrated(db);
  Queue q;
  auto job = q.create_job(c, manual_job("stats"), t0());
  q.enqueue(c, job.id);
  q.enqueue(c, job.id);
  auto w = new_worker_id(c);
  auto run = q.claim(c, w);
  REQUIRE(q.finish(c, run->id, w, RunState::succeeded, std::nullopt));
  auto s = q.stats(c);
  CHECK(s.runs_by_state["succeeded"] == 1);
  CHECK(s.runs_by_state["queued"] == 1);
  CHECK(s.runs_by_state["failed"] == 0);
  REQUIRE(s.last_success_by_job.size() == 1);
  CHECK(s.last_success_by_job[0].first == "stats");
  CHECK(s.last_success_by_job[0].second > 1.7e9);
}
