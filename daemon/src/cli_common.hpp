#pragma once
// Pieces shared by the administrator commands (`token`, `job`, `repo`, `tenant`,
// `backup`...): argument parsing, a database session, the audit line. Private to daemon/.
#include <sys/ioctl.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <thread>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "m365vault/api/auth.hpp"
#include "m365vault/core/error.hpp"
#include "m365vault/scheduler/cron.hpp"
#include "m365vault/scheduler/progress.hpp"
#include "m365vault/scheduler/queue.hpp"
#include "m365vault/scheduler/worker.hpp"
#include "wiring.hpp"

namespace m365vault::daemon {

// `VERB [POSITIONAL...] [--key value | --flag]...`, checked against the options
// the verb takes. Throws Error(Errc::invalid_config) (exit status 2) naming the
// offending argument.
struct Args {
  std::string verb;
  std::vector<std::string> positional;
  std::map<std::string, std::string> opts;                // the last value of each option
  std::map<std::string, std::vector<std::string>> all;    // every value, for repeatable options
  std::set<std::string> flags;

  static Args parse(const std::vector<std::string>& in, const std::set<std::string>& valued,
                    const std::set<std::string>& flag_names) {
    Args a;
    if (in.empty()) throw Error(Errc::invalid_config, "missing a verb");
    a.verb = in[0];
    for (size_t i = 1; i < in.size(); ++i) {
      const auto& s = in[i];
      if (s.rfind("--", 0) != 0) {
        a.positional.push_back(s);
        continue;
      }
      auto name = s.substr(2);
      if (flag_names.count(name)) {
        a.flags.insert(name);
      } else if (valued.count(name)) {
        if (i + 1 >= in.size()) throw Error(Errc::invalid_config, "option '" + s + "' needs a value");
        a.opts[name] = in[++i];
        a.all[name].push_back(in[i]);
      } else {
        throw Error(Errc::invalid_config, "unknown option '" + s + "'");
      }
    }
    return a;
  }
  std::optional<std::string> opt(const std::string& k) const {
    auto it = opts.find(k);
    return it == opts.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  // Every value of a list option, in order: repeatable, and each value a
  // comma-separated list (`--owner a,b --owner c`); empty parts are dropped.
  std::vector<std::string> list(const std::string& k) const {
    std::vector<std::string> out;
    auto it = all.find(k);
    if (it == all.end()) return out;
    for (const auto& v : it->second) {
      for (std::size_t from = 0; from <= v.size();) {
        auto comma = std::min(v.find(',', from), v.size());
        if (comma > from) out.push_back(v.substr(from, comma - from));
        from = comma + 1;
      }
    }
    return out;
  }
};

// The selection of `restore` and `export` (restore/selection.hpp as JSON) from
// their shared options: --tenant, the list options --owner, --container, --item
// and --category (repeatable, comma-separated), --at.
inline nlohmann::json selection_from_args(const Args& a) {
  nlohmann::json sel = {{"tenant", a.opt("tenant").value_or("")}};
  for (auto [opt, field] : {std::pair{"owner", "owners"}, {"container", "containers"}, {"item", "items"},
                            {"category", "categories"}})
    if (a.opt(opt)) sel[field] = a.list(opt);
  if (auto v = a.opt("at")) sel["at"] = *v;
  return sel;
}

struct Session {
  Logging logging;
  DatabaseHandle dbh;
  storage::PgConnection conn;
  explicit Session(const Config& cfg)
      : logging(cfg.log.format, spdlog::level::warn), dbh(open_database(cfg, logging, true)),
        conn((migrate_with_retry(cfg, dbh.conninfo, *logging.get("db")),
              storage::PgConnection::connect(dbh.conninfo, timeouts_of(cfg)))) {}
};

inline void audit_cli(storage::PgConnection& c, const std::string& action, const std::optional<std::string>& tenant,
               const std::string& target, int outcome, nlohmann::json detail = nlohmann::json::object()) {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  api::AuditLog::record(c, {std::nullopt, "cli", std::nullopt, std::string("local:") + host, "", action, tenant, target,
                            outcome, std::move(detail)});
}

inline scheduler::sys_seconds now_s() { return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()); }

inline std::string or_dash(const std::optional<scheduler::sys_seconds>& t) {
  return t ? scheduler::format_rfc3339(*t) : std::string("-");
}


// Follows a run until it ends: a progress bar redrawn in place on a terminal,
// a plain line per change otherwise (logs, pipes). Returns the exit status:
// 0 succeeded, 1 anything else (partial, failed, cancelled, gone).
inline int follow_run(storage::PgConnection& conn, const scheduler::Queue& q, const std::string& run_id) {
  const bool tty = ::isatty(STDOUT_FILENO) == 1;
  std::string last;
  for (;;) {
    auto r = q.get_run(conn, run_id);
    if (!r) {
      std::cerr << "m365vaultd: run '" << run_id << "' is gone (its job was removed?)\n";
      return 1;
    }
    const bool ended = r->state != scheduler::RunState::queued && r->state != scheduler::RunState::running;
    int width = 100;
    winsize ws{};
    if (tty && ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) width = ws.ws_col - 1;
    auto line = scheduler::render_progress(scheduler::to_string(r->state), r->progress, tty, width);
    if (tty) {
      std::cout << "\r\x1b[K" << line << (ended ? "\n" : "") << std::flush;
    } else if (line != last) {
      std::cout << line << std::endl;
    }
    last = line;
    if (ended) {
      if (r->error) std::cerr << "m365vaultd: " << *r->error << "\n";
      return r->state == scheduler::RunState::succeeded ? 0 : 1;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

// Executes run `run_id` in this process with the worker code a daemon uses (the
// kinds `make_kinds` builds on the given executor and database), following it
// with follow_run's progress; Ctrl-C or SIGTERM asks the run to cancel and
// prints `on_cancel`. Returns follow_run's status once the worker has stopped.
using KindMap = std::map<std::string, std::shared_ptr<scheduler::JobKind>>;
inline int execute_here(const Config& cfg, Session& s, const scheduler::Queue& q, const std::string& run_id,
                        const std::string& worker_id,
                        const std::function<KindMap(boost::asio::any_io_executor, storage::Database&)>& make_kinds,
                        const std::string& on_cancel) {
  boost::asio::io_context ioc;
  auto work = boost::asio::make_work_guard(ioc);
  storage::Database db(s.dbh.conninfo, 4, timeouts_of(cfg), s.logging.get("db"));
  auto kinds = make_kinds(ioc.get_executor(), db);
  scheduler::WorkerOptions wo;
  wo.concurrency = 1;
  wo.fire_schedules = false;
  wo.only_run = run_id;
  wo.poll_interval = std::chrono::milliseconds(200);
  wo.heartbeat_interval = std::chrono::milliseconds(2000);
  scheduler::Worker worker(ioc.get_executor(), db, q, kinds, wo, worker_id, s.logging.get("scheduler"));
  worker.start();
  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (ec) return;
    std::cerr << "\nm365vaultd: " << on_cancel << "\n";
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
  return rc;
}

}  // namespace m365vault::daemon
