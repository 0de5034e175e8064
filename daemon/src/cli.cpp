// Administrator commands: `token ...` and `job ...`. They run the same code as
// the API (TokenStore, Queue), against the configured database, beside a
// running daemon or without one.
#include <unistd.h>

#include <iomanip>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "m365vault/api/auth.hpp"
#include "m365vault/core/error.hpp"
#include "m365vault/daemon/app.hpp"
#include "m365vault/scheduler/queue.hpp"
#include "cli_common.hpp"

namespace m365vault::daemon {


int run_token(const Config& cfg, const std::vector<std::string>& raw) {
  const char* usage =
      "usage: m365vaultd token create --role admin|operator|restorer|viewer --name NAME [--tenant UUID] [--expires RFC3339]\n"
      "       m365vaultd token list\n"
      "       m365vaultd token revoke ID\n";
  Args a;
  try {
    a = Args::parse(raw, {"role", "name", "tenant", "expires"}, {});
  } catch (const Error& e) {
    std::cerr << "m365vaultd token: " << e.what() << "\n" << usage;
    return 2;
  }
  if (a.verb == "create") {
    if (!a.opt("role") || !a.opt("name")) {
      std::cerr << usage;
      return 2;
    }
    auto role = api::parse_role(*a.opt("role"));
    if (!role) {
      std::cerr << "m365vaultd: unknown role '" << *a.opt("role") << "' (admin, operator, restorer or viewer)\n";
      return 2;
    }
    Session s(cfg);
    auto t = api::TokenStore::create(s.conn, *a.opt("name"), *role, a.opt("tenant"), a.opt("expires"), "cli");
    audit_cli(s.conn, "token create", a.opt("tenant"), "token:" + t.info.id, 201,
              {{"name", t.info.name}, {"role", api::to_string(*role)}});
    std::cerr << "token '" << t.info.name << "' (" << api::to_string(*role) << ", id " << t.info.id
              << ") created. It is shown once, here; store it now:\n";
    std::cout << t.secret << std::endl;
    return 0;
  }
  if (a.verb == "list") {
    Session s(cfg);
    for (auto& t : api::TokenStore::list(s.conn))
      std::cout << t.id << "  " << t.prefix << "...  " << api::to_string(t.role) << "  " << t.name
                << (t.revoked_at ? "  (revoked)" : "") << "\n";
    return 0;
  }
  if (a.verb == "revoke" && a.positional.size() == 1) {
    Session s(cfg);
    if (!api::TokenStore::revoke(s.conn, a.positional[0])) {
      std::cerr << "m365vaultd: no active token '" << a.positional[0] << "'\n";
      return 1;
    }
    audit_cli(s.conn, "token revoke", std::nullopt, "token:" + a.positional[0], 204);
    std::cout << "revoked\n";
    return 0;
  }
  std::cerr << usage;
  return 2;
}

int run_job(const Config& cfg, const std::vector<std::string>& raw) {
  const char* usage =
      "usage: m365vaultd job add --name NAME [--kind backup] [--tenant UUID] [--schedule CRON] [--timezone TZ]\n"
      "                          [--max-attempts N] [--params JSON] [--disabled]\n"
      "       m365vaultd job list\n"
      "       m365vaultd job show NAME|ID\n"
      "       m365vaultd job rm NAME|ID\n"
      "       m365vaultd job run NAME|ID [--wait]\n";
  Args a;
  try {
    a = Args::parse(raw, {"name", "kind", "tenant", "schedule", "timezone", "max-attempts", "params"},
                    {"disabled", "wait"});
  } catch (const Error& e) {
    std::cerr << "m365vaultd job: " << e.what() << "\n" << usage;
    return 2;
  }
  scheduler::Queue q;
  auto find = [&](Session& s) -> std::optional<scheduler::Job> {
    if (a.positional.size() != 1) return std::nullopt;
    auto job = q.get_job(s.conn, a.positional[0]);
    if (!job) std::cerr << "m365vaultd: no job '" << a.positional[0] << "'\n";
    return job;
  };
  // A restore's or an export's job is managed there: rm and run refuse it.
  auto managed = [](const scheduler::Job& job) {
    try {
      scheduler::require_own_job(job);
      return false;
    } catch (const Error& e) {
      std::cerr << "m365vaultd: " << e.what() << "\n";
      return true;
    }
  };
  if (a.verb == "add") {
    if (!a.opt("name")) {
      std::cerr << usage;
      return 2;
    }
    scheduler::JobSpec spec;
    spec.name = *a.opt("name");
    spec.kind = a.opt("kind").value_or("backup");
    spec.tenant_id = a.opt("tenant");
    spec.schedule = a.opt("schedule");
    spec.timezone = a.opt("timezone").value_or("UTC");
    spec.enabled = !a.flags.count("disabled");
    if (auto n = a.opt("max-attempts")) {
      if (n->empty() || n->size() > 3 || n->find_first_not_of("0123456789") != std::string::npos) {
        std::cerr << "m365vaultd: --max-attempts takes a whole number from 1 to 100\n";
        return 2;
      }
      spec.max_attempts = std::stoi(*n);
    }
    if (auto p = a.opt("params")) {
      try {
        spec.params = nlohmann::json::parse(*p);
      } catch (const std::exception&) {
        std::cerr << "m365vaultd: --params is not valid JSON\n";
        return 2;
      }
      if (!spec.params.is_object()) {
        std::cerr << "m365vaultd: --params must be a JSON object\n";
        return 2;
      }
    }
    Session s(cfg);
    try {
      auto job = q.create_job(s.conn, spec, now_s());
      audit_cli(s.conn, "job add", job.spec.tenant_id, "job:" + job.id, 201, {{"name", job.spec.name}});
      std::cout << "job '" << job.spec.name << "' added (id " << job.id << "), next run " << or_dash(job.next_fire_at)
                << "\n";
      return 0;
    } catch (const Error& e) {
      std::cerr << "m365vaultd: " << e.what() << "\n";
      return e.code() == Errc::bad_request ? 2 : 1;
    }
  }
  if (a.verb == "list") {
    Session s(cfg);
    std::cout << std::left << std::setw(38) << "ID" << std::setw(24) << "NAME" << std::setw(10) << "KIND"
              << std::setw(22) << "SCHEDULE" << "NEXT RUN\n";
    for (auto& j : q.list_jobs(s.conn))
      std::cout << std::setw(38) << j.id << std::setw(24) << j.spec.name << std::setw(10) << j.spec.kind << std::setw(22)
                << (j.spec.schedule ? *j.spec.schedule + " " + j.spec.timezone : std::string("manual"))
                << (j.spec.enabled ? or_dash(j.next_fire_at) : std::string("disabled")) << "\n";
    return 0;
  }
  if (a.verb == "show") {
    Session s(cfg);
    auto job = find(s);
    if (!job) return a.positional.size() == 1 ? 1 : (std::cerr << usage, 2);
    std::cout << job->to_json().dump(2) << "\n";
    scheduler::RunFilter f;
    f.job_id = job->id;
    f.limit = 10;
    auto page = q.list_runs(s.conn, f);
    std::cout << "last runs:\n";
    for (auto& r : page.runs)
      std::cout << "  " << r.id << "  " << std::setw(10) << scheduler::to_string(r.state) << " " << r.queued_at
                << (r.error ? "  " + *r.error : "") << "\n";
    return 0;
  }
  if (a.verb == "rm") {
    Session s(cfg);
    auto job = find(s);
    if (!job) return a.positional.size() == 1 ? 1 : (std::cerr << usage, 2);
    if (managed(*job)) return 1;
    q.delete_job(s.conn, job->id);
    audit_cli(s.conn, "job rm", job->spec.tenant_id, "job:" + job->id, 204);
    std::cout << "job '" << job->spec.name << "' removed\n";
    return 0;
  }
  if (a.verb == "run") {
    Session s(cfg);
    auto job = find(s);
    if (!job) return a.positional.size() == 1 ? 1 : (std::cerr << usage, 2);
    if (managed(*job)) return 1;
    auto run_id = q.enqueue(s.conn, job->id);
    audit_cli(s.conn, "job run", job->spec.tenant_id, "run:" + run_id, 202);
    std::cout << "run " << run_id << " queued\n";
    if (!a.flags.count("wait")) return 0;
    // The run is executed by a daemon's worker; follow it until it ends.
    return follow_run(s.conn, q, run_id);
  }
  std::cerr << usage;
  return 2;
}

}  // namespace m365vault::daemon
