// Many daemons, one truth (DESIGN.md invariant 8), with real m365vaultd
// processes on one PostgreSQL and one repository backing up the emulator:
// queued runs executed exactly once, a daemon killed mid-backup and its run
// resumed by another within the lease, cancellation, and a schedule firing once
// per slot whatever the number of daemons.
#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <set>
#include <thread>

#include "backup_support.hpp"
#include "m365vault/scheduler/queue.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"

using namespace m365vault;
using namespace m365vault::test;
using namespace std::chrono_literals;

namespace {

json tiny_tenant() {
  return {{"users", 2},         {"mail_folders_per_user", 2}, {"messages_per_user", 6}, {"contacts_per_user", 2},
          {"events_per_user", 2}, {"max_attachment_bytes", 20000}};
}

struct Daemons {
  TempDir dir{"daemons"};
  std::vector<std::unique_ptr<Daemon>> procs;
  Daemons(BackupStack& s, int n, std::vector<std::string> extra = {}) {
    for (int i = 0; i < n; ++i) {
      auto name = "d" + std::to_string(i);
      procs.push_back(std::make_unique<Daemon>(DaemonRun{{"serve"}, s.daemon_env(name, extra), dir / (name + ".log")}));
    }
    for (auto& p : procs) REQUIRE(p->wait_for_output("listening on", 30s));
  }
  ~Daemons() {
    for (auto& p : procs)
      if (p->process().running()) p->process().signal(SIGTERM);
    for (auto& p : procs) p->process().wait(30s);
  }
};

std::string add_job(BackupStack& s, const std::string& name, std::optional<std::string> schedule = std::nullopt) {
  auto c = storage::PgConnection::connect(s.conninfo(), {});
  scheduler::JobSpec js;
  js.name = name;
  js.kind = "backup";
  js.tenant_id = s.catalog_tenant_id();
  js.schedule = schedule;
  return scheduler::Queue{}.create_job(c, js, std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now())).id;
}

std::string enqueue(BackupStack& s, const std::string& job) {
  auto c = storage::PgConnection::connect(s.conninfo(), {});
  return scheduler::Queue{}.enqueue(c, job);
}

scheduler::RunInfo wait_ended(BackupStack& s, const std::string& run, std::chrono::seconds within) {
  auto deadline = std::chrono::steady_clock::now() + within;
  auto c = storage::PgConnection::connect(s.conninfo(), {});
  for (;;) {
    auto r = scheduler::Queue{}.get_run(c, run);
    REQUIRE(r);
    if (r->state != scheduler::RunState::queued && r->state != scheduler::RunState::running) return *r;
    if (std::chrono::steady_clock::now() > deadline) FAIL("run " << run << " still " << scheduler::to_string(r->state));
    std::this_thread::sleep_for(200ms);
  }
}

void require_index_equals_manifest(BackupStack& s) {
  for (auto cat : {"mail", "contacts", "calendar"}) {
    auto want = s.manifest(cat);
    auto have = s.indexed(cat);
    CHECK(have.size() == want.size());
    if (std::string(cat) == "mail") CHECK(have == want);
  }
  // One open version per item, and no two consecutive versions with one change key.
  CHECK(s.query("SELECT count(*) FROM (SELECT item_id FROM item_versions WHERE to_at IS NULL"
                " GROUP BY item_id HAVING count(*) > 1) d")[0][0] == "0");
}

}  // namespace

TEST_CASE("daemons: three daemons execute 50 queued backups, each exactly once", "[graph][pg][e2e]") {
  BackupStack s(tiny_tenant());
  std::vector<std::string> runs;
  for (int i = 0; i < 50; ++i) runs.push_back(enqueue(s, add_job(s, "job " + std::to_string(i))));
  Daemons d(s, 3, {"M365VAULT_SCHEDULER_CONCURRENCY=2"});
  std::set<std::string> workers;
  for (auto& r : runs) {
    auto info = wait_ended(s, r, 240s);
    INFO(r << ": " << info.error.value_or(""));
    CHECK(info.state == scheduler::RunState::succeeded);
    CHECK(info.attempt == 1);
    CHECK(info.takeovers == 0);
    if (info.worker_id) workers.insert(*info.worker_id);
  }
  // (One tenant runs one backup at a time, so which daemon takes the next run is
  // a race each time; "exactly once" is the property, not the distribution.)
  CHECK(workers.size() >= 1);
  // Never two runs of the tenant at once: their [started, finished) never overlap.
  CHECK(s.query("SELECT count(*) FROM runs a JOIN runs b ON a.id < b.id"
                " WHERE a.started_at < b.finished_at AND b.started_at < a.finished_at")[0][0] == "0");
  require_index_equals_manifest(s);
}

TEST_CASE("daemons: a daemon killed mid-backup hands its run to another within the lease", "[graph][pg][e2e]") {
  BackupStack s({{"users", 4}, {"mail_folders_per_user", 3}, {"messages_per_user", 80}, {"contacts_per_user", 5},
                 {"events_per_user", 5}, {"max_attachment_bytes", 50000}});
  // Slow Graph down so the run is surely mid-way when its daemon dies.
  s.emulator().admin("PUT", "/_emulator/faults", {{"latency_ms", 15}});
  const int lease = 8;
  Daemons d(s, 3,
            {"M365VAULT_SCHEDULER_LEASE_S=" + std::to_string(lease), "M365VAULT_SCHEDULER_HEARTBEAT_S=2",
             "M365VAULT_SCHEDULER_CONCURRENCY=1"});
  auto run = enqueue(s, add_job(s, "big"));
  // Wait until a daemon holds it and has committed some pages.
  std::string holder_pid;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    auto rows = s.query(
        "SELECT i.pid, (SELECT count(*) FROM item_versions) FROM runs r JOIN instances i ON i.id = r.worker_id"
        " WHERE r.id = $1 AND r.state = 'running'",
        {run});
    if (!rows.empty() && std::stoi(rows[0][1]) > 20) {
      holder_pid = rows[0][0];
      break;
    }
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(100ms);
  }
  ::kill(std::stoi(holder_pid), SIGKILL);
  auto killed_at = std::chrono::steady_clock::now();
  // Another daemon takes it over within lease + 10 s ...
  for (;;) {
    auto rows = s.query("SELECT takeovers FROM runs WHERE id = $1", {run});
    if (rows[0][0] != "0") break;
    REQUIRE(std::chrono::steady_clock::now() - killed_at < std::chrono::seconds(lease + 10));
    std::this_thread::sleep_for(100ms);
  }
  // ... and finishes it from where it was: the result equals the manifest.
  s.emulator().admin("PUT", "/_emulator/faults", json::object());
  auto info = wait_ended(s, run, 240s);
  INFO(info.error.value_or(""));
  CHECK(info.state == scheduler::RunState::succeeded);
  CHECK(info.takeovers == 1);
  require_index_equals_manifest(s);
}

TEST_CASE("daemons: a cancelled backup stops within 5 s, the next run completes it", "[graph][pg][e2e]") {
  BackupStack s({{"users", 4}, {"mail_folders_per_user", 3}, {"messages_per_user", 100}, {"contacts_per_user", 3},
                 {"events_per_user", 3}, {"max_attachment_bytes", 50000}});
  s.emulator().admin("PUT", "/_emulator/faults", {{"latency_ms", 60}});
  Daemons d(s, 1, {"M365VAULT_SCHEDULER_HEARTBEAT_S=1", "M365VAULT_SCHEDULER_LEASE_S=10"});
  auto job = add_job(s, "cancel me");
  auto run = enqueue(s, job);
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (s.query("SELECT count(*) FROM item_versions")[0][0] == "0") {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(100ms);
  }
  {
    auto c = storage::PgConnection::connect(s.conninfo(), {});
    REQUIRE(scheduler::Queue{}.request_cancel(c, run));
  }
  auto asked = std::chrono::steady_clock::now();
  auto info = wait_ended(s, run, 30s);
  CHECK(info.state == scheduler::RunState::cancelled);
  CHECK(std::chrono::steady_clock::now() - asked < 5s);
  s.emulator().admin("PUT", "/_emulator/faults", json::object());
  auto next = wait_ended(s, enqueue(s, job), 120s);
  INFO(next.error.value_or(""));
  CHECK(next.state == scheduler::RunState::succeeded);
  require_index_equals_manifest(s);
}

TEST_CASE("daemons: an every-minute schedule fires once a minute for 5 minutes, with one daemon and with three",
          "[graph][pg][e2e]") {
  BackupStack one(tiny_tenant(), 11), three(tiny_tenant(), 12);
  add_job(one, "minutely", "* * * * *");
  add_job(three, "minutely", "* * * * *");
  Daemons d1(one, 1), d3(three, 3);
  const auto started = std::chrono::system_clock::now();
  std::this_thread::sleep_for(5min + 20s);
  for (auto* s : {&one, &three}) {
    auto rows = s->query(
        "SELECT scheduled_for, count(*) FROM runs WHERE trigger = 'schedule' GROUP BY scheduled_for ORDER BY 1");
    INFO((s == &one ? "one daemon" : "three daemons"));
    // Slots whose minute began after the daemons started: 5 (or 6 at a boundary).
    CHECK(rows.size() >= 5);
    CHECK(rows.size() <= 6);
    for (auto& r : rows) CHECK(r[1] == "1");  // never twice for one slot
    CHECK(s->query("SELECT count(*) FROM runs WHERE state NOT IN ('succeeded', 'queued', 'running')")[0][0] == "0");
  }
  (void)started;
}

TEST_CASE("repo verify --deep names the backed-up items a damaged byte affects", "[graph][pg][e2e]") {
  BackupStack s(tiny_tenant());
  REQUIRE(s.run().state == scheduler::RunState::succeeded);
  // Flip one byte in the middle of the largest pack.
  auto env = s.daemon_env("verify");
  std::string repo;
  for (auto& e : env)
    if (e.rfind("M365VAULT_STORAGE_REPOSITORY=file://", 0) == 0) repo = e.substr(std::string("M365VAULT_STORAGE_REPOSITORY=file://").size());
  std::filesystem::path biggest;
  for (auto& f : std::filesystem::recursive_directory_iterator(std::filesystem::path(repo) / "packs"))
    if (f.is_regular_file() && (biggest.empty() || f.file_size() > std::filesystem::file_size(biggest))) biggest = f.path();
  REQUIRE_FALSE(biggest.empty());
  {
    std::fstream f(biggest, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(std::filesystem::file_size(biggest) / 3));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x5a);
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(biggest) / 3));
    f.write(&c, 1);
  }
  auto r = run_daemon_command({"repo", "verify", "--deep"}, env);
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("DAMAGED pack " + biggest.filename().string().substr(0, 8)) != std::string::npos);
  CHECK(r.output.find("item version(s) have damaged content") != std::string::npos);
  CHECK(r.output.find("tenant 'contoso' owner '") != std::string::npos);
}
