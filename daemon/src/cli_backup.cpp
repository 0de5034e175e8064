// `m365vaultd backup run`: the administrator's "back up now". It queues a run of
// a per-tenant manual job ("cli backup <tenant>") and executes that run in this
// process with the same worker code a daemon uses (lease, heartbeats, progress,
// the backup job kind), so what it does is exactly what a scheduled run does.
// A running daemon never takes the run: this process claims it first, and the
// lease keeps it. Ctrl-C cancels the run; what was committed stays.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include <future>
#include <iostream>
#include <sstream>

#include "cli_common.hpp"
#include "m365vault/backup/backup.hpp"
#include "m365vault/daemon/app.hpp"
#include "m365vault/scheduler/worker.hpp"
#include "m365vault/storage/catalog.hpp"

namespace m365vault::daemon {

namespace {
std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, ','))
    if (!part.empty()) out.push_back(part);
  return out;
}
}  // namespace

int run_backup_command(const Config& cfg, const std::vector<std::string>& raw) {
  const char* usage =
      "usage: m365vaultd backup run --tenant NAME|ID [--owner UPN|ID[,...]] [--category mail,contacts,calendar]\n"
      "exit status: 0 succeeded, 3 partial (some items could not be read: see the run's faults), 1 failed\n";
  Args a;
  try {
    a = Args::parse(raw, {"tenant", "owner", "category"}, {});
  } catch (const Error& e) {
    std::cerr << "m365vaultd backup: " << e.what() << "\n" << usage;
    return 2;
  }
  if (a.verb != "run" || !a.opt("tenant") || !a.positional.empty()) {
    std::cerr << usage;
    return 2;
  }
  backup::BackupParams params;
  try {
    nlohmann::json pj = nlohmann::json::object();
    if (auto o = a.opt("owner")) pj["owners"] = split_list(*o);
    if (auto c = a.opt("category")) pj["categories"] = split_list(*c);
    params = backup::BackupParams::from_json(pj);
  } catch (const Error& e) {
    std::cerr << "m365vaultd: " << e.what() << "\n";
    return 2;
  }

  Session s(cfg);
  storage::Catalog cat;
  auto tenant = cat.get_tenant(s.conn, *a.opt("tenant"));
  if (!tenant) {
    std::cerr << "m365vaultd: no tenant '" << *a.opt("tenant") << "' (see 'm365vaultd tenant list')\n";
    return 2;
  }
  params.tenant = tenant->id;
  auto repo = open_repository(cfg, s.dbh.conninfo, s.logging);
  storage::RepositorySealer sealer(*repo.repo);

  // The run belongs to a manual job of its own, so it has a history like any other.
  scheduler::Queue q;
  const std::string job_name = "cli backup " + tenant->spec.name;
  scheduler::JobSpec js;
  js.name = job_name;
  js.kind = "backup";
  js.tenant_id = tenant->id;
  js.max_attempts = 1;  // the operator is watching: no silent retry
  js.params = params.to_json();
  std::string job_id;
  if (auto job = q.get_job(s.conn, job_name))
    job_id = q.update_job(s.conn, job->id, js, now_s()).id;
  else
    job_id = q.create_job(s.conn, js, now_s()).id;
  auto run_id = q.enqueue(s.conn, job_id);
  audit_cli(s.conn, "backup run", tenant->id, "run:" + run_id, 202, params.to_json());
  std::cout << "backing up tenant '" << tenant->spec.name << "' (run " << run_id << ")" << std::endl;

  boost::asio::io_context ioc;
  auto work = boost::asio::make_work_guard(ioc);
  storage::Database db(s.dbh.conninfo, 4, timeouts_of(cfg), s.logging.get("db"));
  std::map<std::string, std::shared_ptr<scheduler::JobKind>> kinds;
  kinds["backup"] = std::make_shared<backup::BackupKind>(
      backup::BackupServices{ioc.get_executor(), db, *repo.repo, sealer, s.logging.get("backup"), {}});
  scheduler::WorkerOptions wo;
  wo.concurrency = 1;
  wo.fire_schedules = false;
  wo.only_run = run_id;
  wo.poll_interval = std::chrono::milliseconds(200);
  wo.heartbeat_interval = std::chrono::milliseconds(2000);
  scheduler::Worker worker(ioc.get_executor(), db, q, kinds, wo, boost::uuids::to_string(boost::uuids::random_generator()()),
                           s.logging.get("scheduler"));
  worker.start();
  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (ec) return;
    std::cerr << "\nm365vaultd: cancelling the run; what is committed stays\n";
    auto c = storage::PgConnection::connect(s.dbh.conninfo, timeouts_of(cfg));
    q.request_cancel(c, run_id);
  });
  std::thread io([&] { ioc.run(); });

  int rc = follow_run(s.conn, q, run_id);
  std::promise<void> stopped;
  worker.stop([&] { stopped.set_value(); });
  stopped.get_future().wait();
  signals.cancel();
  work.reset();
  ioc.stop();
  io.join();

  auto r = q.get_run(s.conn, run_id);
  if (r) {
    auto& p = r->progress;
    std::cout << "owners " << p.value("owners_done", 0) << " (skipped " << p.value("owners_skipped", 0) << "), items new "
              << p.value("items_new", 0) << ", changed " << p.value("items_changed", 0) << ", deleted "
              << p.value("items_deleted", 0) << ", faults " << p.value("items_faulted", 0) << ", read "
              << scheduler::human_bytes(p.value("bytes_read", 0.0)) << ", stored "
              << scheduler::human_bytes(p.value("bytes_new", 0.0)) << "\n";
    if (r->state == scheduler::RunState::partial) return 3;
  }
  return rc;
}

}  // namespace m365vault::daemon
