#pragma once
// The run queue in PostgreSQL. Runs are rows; a worker claims one with
// SELECT ... FOR UPDATE SKIP LOCKED and holds it under a lease that it renews by
// heartbeat. A run whose lease expired (its worker died) is claimed again by
// another worker, which resumes it from its last committed cursor. PostgreSQL
// enforces "one running run per job" (a partial unique index) and "one run per
// schedule slot" (a unique key), so any number of daemons can share the queue
// with no coordinator of their own.
//
// All methods are blocking and take the connection to use; call them through
// storage::Database::run on the database threads. Thread-compatible.
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "m365vault/scheduler/cron.hpp"
#include "m365vault/storage/pg.hpp"

namespace m365vault::scheduler {

enum class RunState { queued, running, succeeded, partial, failed, cancelled };
std::string_view to_string(RunState s);
std::optional<RunState> parse_run_state(std::string_view s);

struct JobSpec {
  std::string name;
  std::string kind;  // "backup", ...
  std::optional<std::string> tenant_id;
  nlohmann::json params = nlohmann::json::object();
  std::optional<std::string> schedule;  // cron; nullopt: manual only
  std::string timezone = "UTC";
  bool enabled = true;
  int max_attempts = 3;
};

struct Job {
  std::string id;
  JobSpec spec;
  std::optional<sys_seconds> last_fired_for;
  std::optional<sys_seconds> next_fire_at;
  nlohmann::json to_json() const;
};

// A job that another resource owns: the one-off job of a restore or an export
// (kinds "restore" and "export"). It is not listed among the jobs and is not
// edited, deleted or run through them; its runs are listed with the others.
bool managed_elsewhere(const Job& j);
// Throws Error(Errc::conflict) naming the job and where it is managed when
// managed_elsewhere(j).
void require_own_job(const Job& j);

struct ClaimedRun {
  std::string id;
  std::string job_id;
  std::string kind;
  nlohmann::json params;
  int attempt;
  bool taken_over;  // a previous worker's lease expired
  std::optional<std::string> tenant_id;  // the job's tenant
};

struct RunInfo {
  std::string id;
  std::string job_id;
  RunState state;
  std::string trigger;
  int attempt;
  std::optional<std::string> worker_id;
  std::optional<sys_seconds> scheduled_for;
  int takeovers;
  nlohmann::json progress;
  std::optional<std::string> error;
  std::string kind;
  std::string queued_at;  // RFC 3339, microseconds
  std::optional<std::string> started_at, finished_at;
  bool cancel_requested = false;
  nlohmann::json to_json() const;
};

struct RunFilter {
  std::optional<std::string> job_id;
  std::optional<RunState> state;
  std::optional<std::string> tenant_id;  // the job's tenant
  std::optional<std::string> cursor;     // from the previous page
  int limit = 50;
};

struct RunPage {
  std::vector<RunInfo> runs;
  std::optional<std::string> next_cursor;
};

struct RunEvent {
  long long id;
  std::string at;
  std::string level;
  std::string message;
};

struct HeartbeatResult {
  bool lease_held;        // false: the run is no longer ours (stop working on it)
  bool cancel_requested;  // the operator asked to cancel
};

class Queue {
 public:
  // With notifications on, a run that ends failed or partial also writes a
  // webhook notification to the outbox (see Notifier), in the same transaction.
  void set_notifications(bool on) { notify_ = on; }

  Queue() = default;
  explicit Queue(std::chrono::seconds lease) : lease_(lease) {}

  // Jobs. Throws Error(Errc::bad_request) for a bad schedule or time zone and
  // Error(Errc::conflict) for a duplicate name.
  Job create_job(storage::PgConnection& c, const JobSpec& spec, sys_seconds now) const;
  std::optional<Job> get_job(storage::PgConnection& c, const std::string& id_or_name) const;
  // Every job but those managed_elsewhere, by name.
  std::vector<Job> list_jobs(storage::PgConnection& c) const;
  bool delete_job(storage::PgConnection& c, const std::string& id) const;
  // Replaces a job's settings (the API's PATCH merges first); recomputes the next
  // fire time when the schedule or time zone changed. Same errors as create_job.
  Job update_job(storage::PgConnection& c, const std::string& id, const JobSpec& spec, sys_seconds now) const;

  // Queues a manual run now; returns its id.
  std::string enqueue(storage::PgConnection& c, const std::string& job_id) const;

  // Turns due schedule slots into runs: for each enabled scheduled job whose
  // next fire time has come, queues one run for the latest due slot (slots missed
  // while every daemon was down collapse into that one) and computes the next.
  // Safe to call from every daemon at once. Returns the runs queued.
  std::vector<std::string> fire_due(storage::PgConnection& c, sys_seconds now) const;

  // Claims the oldest runnable run (queued and due, or running with an expired
  // lease) of a job with no other run in progress and, for a backup, whose tenant
  // has no other live backup (restores and other kinds never wait behind one),
  // among the kinds this worker
  // can execute (empty: any). With `only_run`, that run or nothing (an
  // administrator command executing the run it queued). nullopt: nothing to do.
  std::optional<ClaimedRun> claim(storage::PgConnection& c, const std::string& worker_id,
                                  const std::vector<std::string>& kinds = {},
                                  const std::optional<std::string>& only_run = std::nullopt) const;

  // Renews the lease and saves progress.
  HeartbeatResult heartbeat(storage::PgConnection& c, const std::string& run_id, const std::string& worker_id,
                            const nlohmann::json& progress) const;

  // Ends a run held by this worker. A failed run with attempts left queues a
  // retry after `retry_delay` (the caller's backoff). Returns false when the
  // lease had been lost (someone else owns the run now).
  bool finish(storage::PgConnection& c, const std::string& run_id, const std::string& worker_id, RunState state,
              const std::optional<std::string>& error, std::chrono::seconds retry_delay = std::chrono::seconds(0)) const;

  // Gives a claimed run back to the queue untouched (a worker shutting down).
  bool release(storage::PgConnection& c, const std::string& run_id, const std::string& worker_id) const;

  // Asks a queued or running run to stop: a queued one is cancelled at once, a
  // running one when its worker next heartbeats. false: no such active run.
  bool request_cancel(storage::PgConnection& c, const std::string& run_id) const;

  void add_event(storage::PgConnection& c, const std::string& run_id, std::string_view level,
                 const std::string& message) const;
  std::optional<RunInfo> get_run(storage::PgConnection& c, const std::string& run_id) const;
  std::vector<RunInfo> list_runs(storage::PgConnection& c, const std::string& job_id) const;
  // Newest first, keyset-paginated. Throws Error(Errc::bad_request) for a bad cursor.
  RunPage list_runs(storage::PgConnection& c, const RunFilter& f) const;
  std::vector<RunEvent> list_events(storage::PgConnection& c, const std::string& run_id, long long after_id,
                                    int limit) const;

  // Figures for /metrics: runs by state, and per job the last successful end.
  struct Stats {
    std::map<std::string, long long> runs_by_state;
    std::vector<std::pair<std::string, double>> last_success_by_job;  // job name, unix seconds
  };
  Stats stats(storage::PgConnection& c) const;

  // Events kept per run; older ones are dropped as new ones arrive.
  static constexpr int kMaxEventsPerRun = 1000;

 private:
  std::chrono::seconds lease_{60};
  bool notify_ = false;
};

}  // namespace m365vault::scheduler
