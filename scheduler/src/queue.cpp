#include "m365vault/scheduler/queue.hpp"

namespace m365vault::scheduler {

using storage::PgConnection;
using storage::PgError;
using storage::PgParam;

namespace {

constexpr const char* kUniqueViolation = "23505";
constexpr int kMaxSlotsWalked = 200000;  // a year of every-minute slots is 525600: cap the catch-up walk

std::optional<sys_seconds> epoch_or_null(const storage::PgResult& r, int row, int col) {
  if (r.is_null(row, col)) return std::nullopt;
  return sys_seconds{std::chrono::seconds{r.get_int(row, col)}};
}

PgParam ts(std::optional<sys_seconds> t) {
  if (!t) return std::nullopt;
  return format_rfc3339(*t);
}

using Tx = storage::PgTransaction;

// The advisory lock key of claims ("m365clm" as a number; any constant unique to us).
constexpr const char* kClaimLock = "7877379655134541";

const char* kJobColumns =
    "id, name, kind, tenant_id, params::text, schedule, timezone, enabled, max_attempts,"
    " extract(epoch from last_fired_for)::bigint, extract(epoch from next_fire_at)::bigint";

Job job_from_row(const storage::PgResult& r, int i) {
  Job j;
  j.id = std::string(r.get(i, 0));
  j.spec.name = std::string(r.get(i, 1));
  j.spec.kind = std::string(r.get(i, 2));
  if (!r.is_null(i, 3)) j.spec.tenant_id = std::string(r.get(i, 3));
  j.spec.params = nlohmann::json::parse(r.get(i, 4));
  if (!r.is_null(i, 5)) j.spec.schedule = std::string(r.get(i, 5));
  j.spec.timezone = std::string(r.get(i, 6));
  j.spec.enabled = r.get(i, 7) == "t";
  j.spec.max_attempts = static_cast<int>(r.get_int(i, 8));
  j.last_fired_for = epoch_or_null(r, i, 9);
  j.next_fire_at = epoch_or_null(r, i, 10);
  return j;
}

#define M365_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
const char* kRunColumns =
    "id, job_id, state, trigger, attempt, worker_id, extract(epoch from scheduled_for)::bigint, takeovers,"
    " progress::text, error, kind, " M365_TS("queued_at") ", " M365_TS("started_at") ", " M365_TS("finished_at")
    ", cancel_requested";

RunInfo run_from_row(const storage::PgResult& r, int i) {
  RunInfo x;
  x.id = std::string(r.get(i, 0));
  x.job_id = std::string(r.get(i, 1));
  x.state = parse_run_state(r.get(i, 2)).value_or(RunState::failed);
  x.trigger = std::string(r.get(i, 3));
  x.attempt = static_cast<int>(r.get_int(i, 4));
  if (!r.is_null(i, 5)) x.worker_id = std::string(r.get(i, 5));
  x.scheduled_for = epoch_or_null(r, i, 6);
  x.takeovers = static_cast<int>(r.get_int(i, 7));
  x.progress = nlohmann::json::parse(r.get(i, 8));
  if (!r.is_null(i, 9)) x.error = std::string(r.get(i, 9));
  x.kind = std::string(r.get(i, 10));
  x.queued_at = std::string(r.get(i, 11));
  if (!r.is_null(i, 12)) x.started_at = std::string(r.get(i, 12));
  if (!r.is_null(i, 13)) x.finished_at = std::string(r.get(i, 13));
  x.cancel_requested = r.get(i, 14) == "t";
  return x;
}

bool looks_like_uuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char ch = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (ch != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(ch))) {
      return false;
    }
  }
  return true;
}

}  // namespace

nlohmann::json Job::to_json() const {
  auto opt_ts = [](const std::optional<sys_seconds>& t) {
    return t ? nlohmann::json(format_rfc3339(*t)) : nlohmann::json(nullptr);
  };
  return {{"id", id},
          {"name", spec.name},
          {"kind", spec.kind},
          {"tenant_id", spec.tenant_id ? nlohmann::json(*spec.tenant_id) : nlohmann::json(nullptr)},
          {"params", spec.params},
          {"schedule", spec.schedule ? nlohmann::json(*spec.schedule) : nlohmann::json(nullptr)},
          {"timezone", spec.timezone},
          {"enabled", spec.enabled},
          {"max_attempts", spec.max_attempts},
          {"last_fired_for", opt_ts(last_fired_for)},
          {"next_fire_at", opt_ts(next_fire_at)}};
}

nlohmann::json RunInfo::to_json() const {
  auto opt = [](const std::optional<std::string>& s) { return s ? nlohmann::json(*s) : nlohmann::json(nullptr); };
  return {{"id", id},
          {"job_id", job_id},
          {"kind", kind},
          {"state", to_string(state)},
          {"trigger", trigger},
          {"attempt", attempt},
          {"worker_id", opt(worker_id)},
          {"scheduled_for", scheduled_for ? nlohmann::json(format_rfc3339(*scheduled_for)) : nlohmann::json(nullptr)},
          {"takeovers", takeovers},
          {"cancel_requested", cancel_requested},
          {"queued_at", queued_at},
          {"started_at", opt(started_at)},
          {"finished_at", opt(finished_at)},
          {"progress", progress},
          {"error", opt(error)}};
}

std::string_view to_string(RunState s) {
  switch (s) {
    case RunState::queued: return "queued";
    case RunState::running: return "running";
    case RunState::succeeded: return "succeeded";
    case RunState::partial: return "partial";
    case RunState::failed: return "failed";
    case RunState::cancelled: return "cancelled";
  }
  return "failed";
}

std::optional<RunState> parse_run_state(std::string_view s) {
  for (auto st : {RunState::queued, RunState::running, RunState::succeeded, RunState::partial, RunState::failed,
                  RunState::cancelled})
    if (to_string(st) == s) return st;
  return std::nullopt;
}

Job Queue::create_job(PgConnection& c, const JobSpec& spec, sys_seconds now) const {
  if (spec.name.empty() || spec.name.size() > 200) throw Error(Errc::bad_request, "job name must be 1 to 200 characters");
  if (spec.kind.empty()) throw Error(Errc::bad_request, "job kind is missing");
  if (spec.max_attempts < 1 || spec.max_attempts > 100)
    throw Error(Errc::bad_request, "job max_attempts must be between 1 and 100");
  std::optional<sys_seconds> next;
  if (spec.schedule) next = CronSchedule::parse(*spec.schedule, spec.timezone).next_after(now);
  else CronSchedule::parse("* * * * *", spec.timezone);  // validates the time zone
  try {
    auto r = c.exec(std::string("INSERT INTO jobs (id, name, kind, tenant_id, params, schedule, timezone, enabled,"
                                " max_attempts, last_fired_for, next_fire_at)"
                                " VALUES (gen_random_uuid(), $1, $2, $3::uuid, $4::jsonb, $5, $6, $7::boolean, $8::int,"
                                " $9::timestamptz, $10::timestamptz) RETURNING ") +
                        kJobColumns,
                    {spec.name, spec.kind, spec.tenant_id, spec.params.dump(), spec.schedule, spec.timezone,
                     spec.enabled ? "true" : "false", std::to_string(spec.max_attempts), ts(now), ts(next)});
    return job_from_row(r, 0);
  } catch (const PgError& e) {
    if (e.sqlstate() == kUniqueViolation) throw Error(Errc::conflict, "a job named '" + spec.name + "' exists already");
    throw;
  }
}

std::optional<Job> Queue::get_job(PgConnection& c, const std::string& id_or_name) const {
  auto r = looks_like_uuid(id_or_name)
               ? c.exec(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = $1::uuid", {id_or_name})
               : c.exec(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE name = $1", {id_or_name});
  if (r.rows() == 0) return std::nullopt;
  return job_from_row(r, 0);
}

bool managed_elsewhere(const Job& j) { return j.spec.kind == "restore" || j.spec.kind == "export"; }

void require_own_job(const Job& j) {
  if (!managed_elsewhere(j)) return;
  throw Error(Errc::conflict, "job '" + j.spec.name + "' belongs to a " + j.spec.kind + ": it is managed through /api/v1/" +
                                  j.spec.kind + "s (or `m365vaultd " + j.spec.kind +
                                  "`), not edited, deleted or run as a job");
}

std::vector<Job> Queue::list_jobs(PgConnection& c) const {
  auto r = c.exec(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE kind NOT IN ('restore', 'export') ORDER BY name");
  std::vector<Job> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(job_from_row(r, i));
  return out;
}

bool Queue::delete_job(PgConnection& c, const std::string& id) const {
  return c.exec("DELETE FROM jobs WHERE id = $1::uuid", {id}).affected() > 0;
}

Job Queue::update_job(PgConnection& c, const std::string& id, const JobSpec& spec, sys_seconds now) const {
  if (spec.name.empty() || spec.name.size() > 200) throw Error(Errc::bad_request, "job name must be 1 to 200 characters");
  if (spec.max_attempts < 1 || spec.max_attempts > 100)
    throw Error(Errc::bad_request, "job max_attempts must be between 1 and 100");
  std::optional<sys_seconds> next;
  if (spec.schedule) next = CronSchedule::parse(*spec.schedule, spec.timezone).next_after(now);
  else CronSchedule::parse("* * * * *", spec.timezone);
  try {
    // A changed schedule starts counting from now: slots of the old one are not owed.
    auto r = c.exec(std::string("UPDATE jobs SET name = $2, params = $3::jsonb,"
                                " last_fired_for = CASE WHEN schedule IS DISTINCT FROM $4 OR timezone <> $5"
                                "   THEN $8::timestamptz ELSE last_fired_for END,"
                                " schedule = $4, timezone = $5, enabled = $6::boolean, max_attempts = $7::int,"
                                " next_fire_at = $9::timestamptz, updated_at = now() WHERE id = $1::uuid RETURNING ") +
                        kJobColumns,
                    {id, spec.name, spec.params.dump(), spec.schedule, spec.timezone, spec.enabled ? "true" : "false",
                     std::to_string(spec.max_attempts), ts(now), ts(next)});
    if (r.rows() == 0) throw Error(Errc::not_found, "job '" + id + "' does not exist");
    return job_from_row(r, 0);
  } catch (const PgError& e) {
    if (e.sqlstate() == kUniqueViolation) throw Error(Errc::conflict, "a job named '" + spec.name + "' exists already");
    throw;
  }
}

std::string Queue::enqueue(PgConnection& c, const std::string& job_id) const {
  auto r = c.exec(
      "INSERT INTO runs (id, job_id, kind, trigger) SELECT gen_random_uuid(), id, kind, 'manual' FROM jobs"
      " WHERE id = $1::uuid RETURNING id",
      {job_id});
  if (r.rows() == 0) throw Error(Errc::not_found, "job '" + job_id + "' does not exist");
  return std::string(r.get(0, 0));
}

std::vector<std::string> Queue::fire_due(PgConnection& c, sys_seconds now) const {
  std::vector<std::string> queued;
  Tx tx(c);
  auto due = c.exec(
      "SELECT id, schedule, timezone, extract(epoch from coalesce(last_fired_for, created_at))::bigint"
      " FROM jobs WHERE enabled AND schedule IS NOT NULL AND (next_fire_at IS NULL OR next_fire_at <= $1::timestamptz)"
      " FOR UPDATE SKIP LOCKED",
      {ts(now)});
  for (int i = 0; i < due.rows(); ++i) {
    std::string id(due.get(i, 0));
    std::optional<CronSchedule> cron;
    try {
      cron = CronSchedule::parse(due.get(i, 1), due.get(i, 2));
    } catch (const Error&) {
      // Stored before a validation rule changed: park it rather than spin on it.
      c.exec("UPDATE jobs SET next_fire_at = NULL, enabled = false, updated_at = now() WHERE id = $1::uuid", {id});
      continue;
    }
    sys_seconds base{std::chrono::seconds{due.get_int(i, 3)}};
    std::optional<sys_seconds> latest;
    auto s = cron->next_after(base);
    for (int n = 0; s && *s <= now && n < kMaxSlotsWalked; ++n) {
      latest = s;
      s = cron->next_after(*s);
    }
    if (s && *s <= now) s = cron->next_after(now);  // walk capped: jump to the present
    if (latest) {
      auto r = c.exec(
          "INSERT INTO runs (id, job_id, kind, trigger, scheduled_for, not_before)"
          " SELECT gen_random_uuid(), id, kind, 'schedule', $2::timestamptz, $2::timestamptz FROM jobs WHERE id = $1::uuid"
          " ON CONFLICT (job_id, scheduled_for) DO NOTHING RETURNING id",
          {id, ts(latest)});
      if (r.rows() > 0) queued.emplace_back(r.get(0, 0));
    }
    c.exec(
        "UPDATE jobs SET last_fired_for = coalesce($2::timestamptz, last_fired_for), next_fire_at = $3::timestamptz"
        " WHERE id = $1::uuid",
        {id, ts(latest), ts(s)});
  }
  tx.commit();
  return queued;
}

std::optional<ClaimedRun> Queue::claim(PgConnection& c, const std::string& worker_id,
                                       const std::vector<std::string>& kinds,
                                       const std::optional<std::string>& only_run) const {
  // A text[] literal of the kinds; each is quoted and escaped.
  PgParam kinds_param;
  if (!kinds.empty()) {
    std::string arr = "{";
    for (size_t i = 0; i < kinds.size(); ++i) {
      if (i) arr += ',';
      arr += '"';
      for (char ch : kinds[i]) {
        if (ch == '"' || ch == '\\') arr += '\\';
        arr += ch;
      }
      arr += '"';
    }
    kinds_param = arr + "}";
  }
  for (int attempt = 0; attempt < 5; ++attempt) {
    try {
      // Claims are serialised across daemons by a transaction-scoped advisory
      // lock: "no other live run of this tenant" is then a true statement when
      // the claim commits (SKIP LOCKED alone cannot see another worker's claim
      // of a different run of the same tenant in the same instant).
      Tx tx(c);
      c.exec("SELECT pg_advisory_xact_lock($1::bigint)", {std::string(kClaimLock)});
      auto r = c.exec(
          "WITH pick AS ("
          "  SELECT r.id, r.state AS old_state FROM runs r"
          "  WHERE ((r.state = 'queued' AND r.not_before <= now() AND NOT r.cancel_requested)"
          "         OR (r.state = 'running' AND r.lease_expires_at < now()))"
          "    AND ($3::text[] IS NULL OR r.kind = ANY($3::text[]))"
          "    AND ($4::uuid IS NULL OR r.id = $4::uuid)"
          "    AND NOT EXISTS (SELECT 1 FROM runs o WHERE o.job_id = r.job_id AND o.state = 'running' AND o.id <> r.id)"
          // One live backup per tenant: two backups of the same mailboxes at once
          // would only contend for the same delta cursors and Graph budget. Other
          // kinds (a restore, an export) share no cursor and must not wait hours
          // behind a running backup; Graph's own limits pace them.
          "    AND (r.kind <> 'backup' OR NOT EXISTS (SELECT 1 FROM jobs j JOIN jobs oj ON oj.tenant_id = j.tenant_id"
          "                    JOIN runs o ON o.job_id = oj.id AND o.state = 'running' AND o.id <> r.id"
          "                                   AND o.kind = 'backup' AND o.lease_expires_at >= now()"
          "                    WHERE j.id = r.job_id))"
          "  ORDER BY r.not_before, r.queued_at"
          "  LIMIT 1 FOR UPDATE OF r SKIP LOCKED)"
          " UPDATE runs r SET state = 'running', worker_id = $1::uuid,"
          "   lease_expires_at = now() + make_interval(secs => $2::int),"
          // clock_timestamp(): now() is when the claim transaction began, before it
          // waited for the claim lock, which could predate the end of the run before.
          "   started_at = coalesce(r.started_at, clock_timestamp()),"
          "   takeovers = r.takeovers + CASE WHEN pick.old_state = 'running' THEN 1 ELSE 0 END"
          " FROM pick WHERE r.id = pick.id"
          " RETURNING r.id, r.job_id, r.kind, (SELECT params::text FROM jobs WHERE id = r.job_id), r.attempt,"
          "   pick.old_state, (SELECT tenant_id::text FROM jobs WHERE id = r.job_id)",
          {worker_id, std::to_string(lease_.count()), kinds_param,
           only_run ? PgParam(*only_run) : PgParam()});
      if (r.rows() == 0) {
        tx.commit();
        return std::nullopt;
      }
      ClaimedRun run{std::string(r.get(0, 0)), std::string(r.get(0, 1)), std::string(r.get(0, 2)),
                     nlohmann::json::parse(r.is_null(0, 3) ? std::string_view("{}") : r.get(0, 3)),
                     static_cast<int>(r.get_int(0, 4)), r.get(0, 5) == "running",
                     r.is_null(0, 6) ? std::nullopt : std::optional<std::string>(r.get(0, 6))};
      if (run.taken_over)
        add_event(c, run.id, "warn", "taken over by worker " + worker_id + " after the previous lease expired");
      tx.commit();
      return run;
    } catch (const PgError& e) {
      // Another worker claimed a run of the same job in the same instant: the
      // one-running-run-per-job index refused ours. Look again.
      if (e.sqlstate() != kUniqueViolation) throw;
    }
  }
  return std::nullopt;
}

HeartbeatResult Queue::heartbeat(PgConnection& c, const std::string& run_id, const std::string& worker_id,
                                 const nlohmann::json& progress) const {
  auto r = c.exec(
      "UPDATE runs SET lease_expires_at = now() + make_interval(secs => $3::int), progress = $4::jsonb"
      " WHERE id = $1::uuid AND worker_id = $2::uuid AND state = 'running' RETURNING cancel_requested",
      {run_id, worker_id, std::to_string(lease_.count()), progress.dump()});
  if (r.rows() == 0) return {false, false};
  return {true, r.get(0, 0) == "t"};
}

bool Queue::finish(PgConnection& c, const std::string& run_id, const std::string& worker_id, RunState state,
                   const std::optional<std::string>& error, std::chrono::seconds retry_delay) const {
  Tx tx(c);
  auto r = c.exec(
      "UPDATE runs r SET state = $3, finished_at = now(), error = $4, lease_expires_at = NULL"
      " WHERE id = $1::uuid AND worker_id = $2::uuid AND state = 'running'"
      " RETURNING r.job_id, r.attempt, (SELECT max_attempts FROM jobs WHERE id = r.job_id), r.cancel_requested",
      {run_id, worker_id, std::string(to_string(state)), error});
  if (r.rows() == 0) return false;
  const bool retry = state == RunState::failed && r.get_int(0, 1) < r.get_int(0, 2) && r.get(0, 3) != "t";
  if (retry) {
    c.exec(
        "INSERT INTO runs (id, job_id, kind, trigger, attempt, not_before)"
        " SELECT gen_random_uuid(), job_id, kind, 'retry', attempt + 1, now() + make_interval(secs => $2::int)"
        " FROM runs WHERE id = $1::uuid",
        {run_id, std::to_string(retry_delay.count())});
  }
  if (notify_ && (state == RunState::failed || state == RunState::partial)) {
    auto info = get_run(c, run_id);
    auto job = get_job(c, info->job_id);
    nlohmann::json payload = {{"event", "run." + std::string(to_string(state))},
                              {"run", info->to_json()},
                              {"job", job ? job->to_json() : nlohmann::json(nullptr)},
                              {"will_retry", retry}};
    c.exec("INSERT INTO notifications (event, payload) VALUES ($1, $2::jsonb)",
           {"run." + std::string(to_string(state)), payload.dump()});
  }
  tx.commit();
  return true;
}

bool Queue::release(PgConnection& c, const std::string& run_id, const std::string& worker_id) const {
  return c.exec(
             "UPDATE runs SET state = 'queued', worker_id = NULL, lease_expires_at = NULL"
             " WHERE id = $1::uuid AND worker_id = $2::uuid AND state = 'running'",
             {run_id, worker_id})
             .affected() > 0;
}

bool Queue::request_cancel(PgConnection& c, const std::string& run_id) const {
  auto r = c.exec(
      "UPDATE runs SET cancel_requested = true,"
      "  state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END,"
      "  finished_at = CASE WHEN state = 'queued' THEN now() ELSE finished_at END"
      " WHERE id = $1::uuid AND state IN ('queued', 'running')",
      {run_id});
  return r.affected() > 0;
}

void Queue::add_event(PgConnection& c, const std::string& run_id, std::string_view level,
                      const std::string& message) const {
  c.exec("INSERT INTO run_events (run_id, level, message) VALUES ($1::uuid, $2, $3)",
         {run_id, std::string(level), message});
  c.exec(
      "DELETE FROM run_events WHERE run_id = $1::uuid AND id <= (SELECT id FROM run_events WHERE run_id = $1::uuid"
      " ORDER BY id DESC OFFSET $2::int LIMIT 1)",
      {run_id, std::to_string(kMaxEventsPerRun)});
}

std::optional<RunInfo> Queue::get_run(PgConnection& c, const std::string& run_id) const {
  auto r = c.exec(std::string("SELECT ") + kRunColumns + " FROM runs WHERE id = $1::uuid", {run_id});
  if (r.rows() == 0) return std::nullopt;
  return run_from_row(r, 0);
}

std::vector<RunInfo> Queue::list_runs(PgConnection& c, const std::string& job_id) const {
  auto r = c.exec(std::string("SELECT ") + kRunColumns + " FROM runs WHERE job_id = $1::uuid ORDER BY queued_at, id",
                  {job_id});
  std::vector<RunInfo> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(run_from_row(r, i));
  return out;
}

RunPage Queue::list_runs(PgConnection& c, const RunFilter& f) const {
  // Cursor: "<queued_at microseconds since epoch>:<run id>" of the last row shown.
  PgParam cur_ts, cur_id;
  if (f.cursor) {
    auto colon = f.cursor->find(':');
    if (colon == std::string::npos || colon == 0 || f.cursor->substr(0, colon).find_first_not_of("0123456789") != std::string::npos ||
        !looks_like_uuid(f.cursor->substr(colon + 1)))
      throw Error(Errc::bad_request, "parameter 'cursor': not a cursor this API returned");
    cur_ts = f.cursor->substr(0, colon);
    cur_id = f.cursor->substr(colon + 1);
  }
  auto limit = std::clamp(f.limit, 1, 500);
  auto r = c.exec(std::string("SELECT ") + kRunColumns +
                      ", (extract(epoch from queued_at) * 1000000)::bigint FROM runs r"
                      " WHERE ($1::uuid IS NULL OR job_id = $1::uuid) AND ($2::text IS NULL OR state = $2)"
                      " AND ($3::uuid IS NULL OR job_id IN (SELECT id FROM jobs WHERE tenant_id = $3::uuid))"
                      " AND ($4::bigint IS NULL OR ((extract(epoch from queued_at) * 1000000)::bigint, id) <"
                      "      ($4::bigint, $5::uuid))"
                      " ORDER BY (extract(epoch from queued_at) * 1000000)::bigint DESC, id DESC LIMIT $6::int",
                  {f.job_id, f.state ? PgParam(std::string(to_string(*f.state))) : std::nullopt, f.tenant_id, cur_ts,
                   cur_id, std::to_string(limit + 1)});
  RunPage page;
  int n = std::min(r.rows(), limit);
  for (int i = 0; i < n; ++i) page.runs.push_back(run_from_row(r, i));
  if (r.rows() > limit) page.next_cursor = std::string(r.get(n - 1, 15)) + ":" + page.runs.back().id;
  return page;
}

std::vector<RunEvent> Queue::list_events(PgConnection& c, const std::string& run_id, long long after_id,
                                         int limit) const {
  auto r = c.exec(
      "SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), level, message FROM run_events"
      " WHERE run_id = $1::uuid AND id > $2::bigint ORDER BY id LIMIT $3::int",
      {run_id, std::to_string(after_id), std::to_string(std::clamp(limit, 1, 1000))});
  std::vector<RunEvent> out;
  for (int i = 0; i < r.rows(); ++i)
    out.push_back({r.get_int(i, 0), std::string(r.get(i, 1)), std::string(r.get(i, 2)), std::string(r.get(i, 3))});
  return out;
}

Queue::Stats Queue::stats(PgConnection& c) const {
  Stats s;
  for (auto st : {RunState::queued, RunState::running, RunState::succeeded, RunState::partial, RunState::failed,
                  RunState::cancelled})
    s.runs_by_state[std::string(to_string(st))] = 0;
  auto r = c.exec("SELECT state, count(*) FROM runs GROUP BY state");
  for (int i = 0; i < r.rows(); ++i) s.runs_by_state[std::string(r.get(i, 0))] = r.get_int(i, 1);
  auto l = c.exec(
      "SELECT j.name, extract(epoch from max(r.finished_at))::float8 FROM jobs j JOIN runs r ON r.job_id = j.id"
      " WHERE r.state = 'succeeded' GROUP BY j.name");
  for (int i = 0; i < l.rows(); ++i) s.last_success_by_job.emplace_back(std::string(l.get(i, 0)), std::stod(std::string(l.get(i, 1))));
  return s;
}

}  // namespace m365vault::scheduler
