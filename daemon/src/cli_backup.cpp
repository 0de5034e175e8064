// `m365vaultd backup run`: the administrator's "back up now". It queues a run of
// a per-tenant manual job ("cli backup <tenant>") and executes that run in this
// process with the same worker code a daemon uses (lease, heartbeats, progress,
// the backup job kind), so what it does is exactly what a scheduled run does.
// A running daemon never takes the run: this process claims it first, and the
// lease keeps it. Ctrl-C cancels the run; what was committed stays.
//
// A `backup run` killed outright (SIGKILL, power loss) leaves its run `running`
// under a lease, and a job has at most one running run (runs_one_running_per_job).
// The next `backup run` of the same tenant therefore resumes that run rather than
// queueing a second one: at once when the process that held it is gone (it is
// registered in `instances` with this host and its pid, and that pid no longer
// exists), when the lease has expired, or, when a live worker elsewhere holds it,
// after waiting for that worker to finish or its lease to expire. The resumed run
// starts again from the last committed cursor of every folder (DESIGN.md
// invariant 1), so nothing is fetched twice that was already committed.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <future>
#include <iostream>

#include "cli_common.hpp"
#include "wiring.hpp"
#include "m365vault/backup/backup.hpp"
#include "m365vault/core/version.hpp"
#include "m365vault/daemon/app.hpp"
#include "m365vault/scheduler/worker.hpp"
#include "m365vault/storage/catalog.hpp"

namespace m365vault::daemon {

namespace {
std::string host_name() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return host;
}

// True when `pid` on this host is certainly gone (not: belongs to another user).
bool process_gone(long long pid) { return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH; }

// The run this command executes: a run of `job_id` left behind by a dead process
// or an expired lease (taken over), a queued one, or a new one. Waits while a
// live worker holds a run of the job.
std::string run_to_execute(storage::PgConnection& c, const scheduler::Queue& q, const std::string& job_id) {
  const std::string host = host_name();
  bool said_waiting = false;
  for (;;) {
    auto r = c.exec(
        "SELECT r.id::text, r.state, r.lease_expires_at IS NULL OR r.lease_expires_at < now(), i.hostname, i.pid,"
        "  r.worker_id::text FROM runs r LEFT JOIN instances i ON i.id = r.worker_id"
        " WHERE r.job_id = $1::uuid AND (r.state = 'running' OR (r.state = 'queued' AND NOT r.cancel_requested))"
        " ORDER BY r.state = 'running' DESC, r.queued_at LIMIT 1",
        {job_id});
    if (r.rows() == 0) return q.enqueue(c, job_id);
    std::string id(r.get(0, 0));
    if (r.get(0, 1) == "queued") {
      std::cout << "executing run " << id << ", queued earlier for this tenant" << std::endl;
      return id;
    }
    const bool expired = r.get(0, 2) == "t";
    const bool dead = !r.is_null(0, 3) && r.get(0, 3) == host && process_gone(r.get_int(0, 4));
    if (expired || dead) {
      if (!expired) {
        // Its holder is gone: end the lease now rather than wait it out.
        c.exec("UPDATE runs SET lease_expires_at = now() - interval '1 second'"
               " WHERE id = $1::uuid AND state = 'running' AND worker_id = $2::uuid",
               {id, std::string(r.get(0, 5))});
      }
      std::cout << "resuming run " << id << " of this tenant, left running by "
                << (dead ? "process " + std::string(r.get(0, 4)) + ", which is gone"
                         : std::string("a worker whose lease expired"))
                << std::endl;
      return id;
    }
    if (!said_waiting) {
      std::cout << "run " << id << " of this tenant is held by a live worker"
                << (r.is_null(0, 3) ? std::string() : " (" + std::string(r.get(0, 3)) + " pid " + std::string(r.get(0, 4)) + ")")
                << ": waiting for it to end or for its lease to expire" << std::endl;
      said_waiting = true;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}
}  // namespace

int run_backup_command(const Config& cfg, const std::vector<std::string>& raw) {
  const char* usage =
      "usage: m365vaultd backup run --tenant NAME|ID [--owner UPN|ID[,...]] [--category mail,contacts,calendar,onedrive,sharepoint,teams]\n"
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
    if (a.opt("owner")) pj["owners"] = a.list("owner");
    if (a.opt("category")) pj["categories"] = a.list("category");
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
  scheduler::Queue q(std::chrono::seconds(cfg.scheduler.lease_s));
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
  // This process registers like a daemon does, so that the next `backup run` can
  // tell a run it left behind (killed) from one that is still being worked on.
  const std::string worker_id = boost::uuids::to_string(boost::uuids::random_generator()());
  s.conn.exec("INSERT INTO instances (id, hostname, pid, version) VALUES ($1::uuid, $2, $3::int, $4)",
              {worker_id, host_name(), std::to_string(::getpid()), std::string(version())});
  auto run_id = run_to_execute(s.conn, q, job_id);
  audit_cli(s.conn, "backup run", tenant->id, "run:" + run_id, 202, params.to_json());
  std::cout << "backing up tenant '" << tenant->spec.name << "' (run " << run_id << ")" << std::endl;

  auto make_kinds = [&](boost::asio::any_io_executor ex, storage::Database& db) {
    KindMap kinds;
    kinds["backup"] = std::make_shared<backup::BackupKind>(
        backup::BackupServices{ex, db, *repo.repo, sealer, s.logging.get("backup"), backup_options(cfg)});
    return kinds;
  };
  int rc = execute_here(cfg, s, q, run_id, worker_id, make_kinds, "cancelling the run; what is committed stays");
  s.conn.exec("UPDATE instances SET stopped_at = now(), last_seen = now() WHERE id = $1::uuid", {worker_id});

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
