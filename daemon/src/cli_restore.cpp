// `m365vaultd restore`: the administrator's "get that back now". It creates the
// restore exactly as POST /api/v1/restores does (the same checks, the same job of
// kind restore, audited as the CLI) and executes its run in this process with the
// worker code a daemon uses (lease, heartbeats, progress). Ctrl-C cancels the run;
// what was written stays written and recorded.
#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include <unistd.h>

#include <iostream>

#include "cli_common.hpp"
#include "m365vault/core/version.hpp"
#include "m365vault/daemon/app.hpp"
#include "m365vault/restore/restore.hpp"
#include "m365vault/scheduler/worker.hpp"

namespace m365vault::daemon {

int run_restore_command(const Config& cfg, const std::vector<std::string>& raw) {
  const char* usage =
      "usage: m365vaultd restore --tenant T [--owner O,...]... [--item ID,...]... [--container ID,...]...\n"
      "                          [--category C,...]...\n"
      "                          [--query Q] [--at RFC3339|SNAPSHOT] [--to-owner O] [--to-folder F]\n"
      "                          [--conflict skip|replace|copy] [--dry-run]\n"
      "exit status: 0 succeeded, 3 partial (some items failed: see the listed outcomes), 1 failed, 2 usage\n";
  Args a;
  std::vector<std::string> in = {"restore"};
  in.insert(in.end(), raw.begin(), raw.end());
  try {
    a = Args::parse(in, {"tenant", "owner", "item", "container", "category", "query", "at", "to-owner", "to-folder",
                         "conflict"},
                    {"dry-run"});
  } catch (const Error& e) {
    std::cerr << "m365vaultd restore: " << e.what() << "\n" << usage;
    return 2;
  }
  if (!a.opt("tenant") || !a.positional.empty()) {
    std::cerr << usage;
    return 2;
  }
  nlohmann::json sel = selection_from_args(a);
  if (auto q = a.opt("query")) sel["query"] = *q;
  nlohmann::json request = {{"selection", sel}, {"dry_run", a.flags.count("dry-run") > 0}};
  if (auto c = a.opt("conflict")) request["conflict"] = *c;
  if (a.opt("to-owner") || a.opt("to-folder")) {
    nlohmann::json t = nlohmann::json::object();
    if (auto o = a.opt("to-owner")) t["owner"] = *o;
    if (auto f = a.opt("to-folder")) t["folder"] = *f;
    request["target"] = t;
  }
  restore::RestoreRequest req;
  try {
    req = restore::RestoreRequest::from_json(request);
  } catch (const Error& e) {
    std::cerr << "m365vaultd: " << e.what() << "\n";
    return 2;
  }

  Session s(cfg);
  restore::RestoreInfo info;
  try {
    info = restore::create_restore(s.conn, req, {}, std::string("cli"));
  } catch (const Error& e) {
    std::cerr << "m365vaultd: " << e.what() << "\n";
    return e.code() == Errc::bad_request || e.code() == Errc::not_found ? 2 : 1;
  }
  audit_cli(s.conn, "restore", info.tenant_id, "restore:" + info.id, 202, info.request);
  std::cout << (req.dry_run ? "dry run of restore " : "restore ") << info.id << " (run " << *info.run_id << ")";
  if (info.target_root) std::cout << " into folder '" << *info.target_root << "'";
  std::cout << std::endl;

  auto repo = open_repository(cfg, s.dbh.conninfo, s.logging);
  storage::RepositorySealer sealer(*repo.repo);
  scheduler::Queue q(std::chrono::seconds(cfg.scheduler.lease_s));
  const std::string worker_id = boost::uuids::to_string(boost::uuids::random_generator()());
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  s.conn.exec("INSERT INTO instances (id, hostname, pid, version) VALUES ($1::uuid, $2, $3::int, $4)",
              {worker_id, std::string(host), std::to_string(::getpid()), std::string(version())});

  auto make_kinds = [&](boost::asio::any_io_executor ex, storage::Database& db) {
    KindMap kinds;
    kinds["restore"] = std::make_shared<restore::RestoreKind>(
        restore::RestoreServices{ex, db, *repo.repo, sealer, s.logging.get("restore"), restore_options(cfg)});
    return kinds;
  };
  int rc = execute_here(cfg, s, q, *info.run_id, worker_id, make_kinds,
                        "cancelling the restore; what is written stays, and is recorded");
  s.conn.exec("UPDATE instances SET stopped_at = now(), last_seen = now() WHERE id = $1::uuid", {worker_id});

  if (auto done = restore::get_restore(s.conn, info.id, {})) {
    std::cout << "outcomes:";
    if (done->outcomes.empty()) std::cout << " none (the selection held nothing)";
    for (auto& [k, v] : done->outcomes.items()) std::cout << " " << k << " " << v.get<long long>();
    std::cout << "\n";
    if (done->outcomes.contains("failed")) {
      auto failed = restore::restore_items(s.conn, info.id, std::string("failed"), std::nullopt, 20);
      for (auto& f : failed.items)
        std::cout << "  failed: " << f.value("path", nlohmann::json("")).dump() << " " << f["name"].get<std::string>()
                  << ": " << f.value("detail", nlohmann::json("")).dump() << "\n";
      if (failed.next_cursor) std::cout << "  ... (GET /api/v1/restores/" << info.id << "/items?outcome=failed)\n";
    }
    if (done->state == std::optional<std::string>("partial")) return 3;
  }
  return rc;
}

}  // namespace m365vault::daemon
