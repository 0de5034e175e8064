#include "m365vault/daemon/app.hpp"
#include "wiring.hpp"

#include <systemd/sd-daemon.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <map>
#include <thread>

#include "content_reader.hpp"
#include "demo_emulator.hpp"
#include "m365vault/api/auth.hpp"
#include "m365vault/backup/backup.hpp"
#include "m365vault/export/exports.hpp"
#include "m365vault/restore/restore.hpp"
#include "m365vault/api/health.hpp"
#include "m365vault/api/v1.hpp"
#include "m365vault/core/error.hpp"
#include "m365vault/core/log.hpp"
#include "m365vault/core/metrics.hpp"
#include "m365vault/core/version.hpp"
#include "m365vault/net/router.hpp"
#include "m365vault/net/server.hpp"
#include "m365vault/net/client.hpp"
#include "m365vault/scheduler/notifier.hpp"
#include "m365vault/scheduler/worker.hpp"
#include "m365vault/storage/embedded_pg.hpp"
#include "m365vault/storage/migrate.hpp"
#include "m365vault/storage/pg.hpp"
#include "m365vault/storage/catalog.hpp"
#include "m365vault/scheduler/progress.hpp"

namespace m365vault::daemon {

namespace asio = boost::asio;
using namespace std::chrono_literals;

DatabaseHandle open_database(const Config& cfg, Logging& logging, bool attach) {
  DatabaseHandle h;
  if (!cfg.database.url.empty()) {
    h.conninfo = cfg.database.url;
    return h;
  }
  storage::EmbeddedPgOptions o;
  o.root = std::filesystem::path(cfg.storage.data_dir) / "pg";
  o.shared_buffers_mb = static_cast<std::size_t>(cfg.database.embedded_shared_buffers_mb);
  if (::geteuid() == 0) {
    o.run_as = lookup_user(cfg.database.embedded_user);
    if (!o.run_as)
      throw Error(Errc::invalid_config,
                  "config key 'database.embedded_user': no user '" + cfg.database.embedded_user +
                      "' to run the embedded PostgreSQL as (create it: useradd --system --home-dir " +
                      cfg.storage.data_dir + " --shell /usr/sbin/nologin " + cfg.database.embedded_user + ")");
    if (o.run_as->uid == 0)
      throw Error(Errc::invalid_config, "config key 'database.embedded_user': must not be root");
  }
  std::filesystem::create_directories(cfg.storage.data_dir);
  if (o.run_as) {
    // The cluster's user must be able to pass through the data directory.
    struct stat st{};
    if (::stat(cfg.storage.data_dir.c_str(), &st) == 0 && st.st_uid == 0 && (st.st_mode & 0011) != 0011)
      ::chmod(cfg.storage.data_dir.c_str(), (st.st_mode & 07777) | 0011);
  }
  h.embedded = std::make_unique<storage::EmbeddedPostgres>(o, logging.get("pg"));
  if (attach) h.embedded->attach_or_start();
  else h.embedded->start();
  h.conninfo = h.embedded->conninfo();
  return h;
}

storage::PgTimeouts timeouts_of(const Config& cfg) {
  return {std::chrono::seconds(cfg.database.connect_timeout_s), std::chrono::seconds(cfg.database.statement_timeout_s)};
}

// Connects and migrates, retrying while the database is unreachable for up to
// database.startup_timeout_s (a daemon may start before its database).
void migrate_with_retry(const Config& cfg, const std::string& conninfo, spdlog::logger& log) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(cfg.database.startup_timeout_s);
  for (int attempt = 1;; ++attempt) {
    try {
      auto conn = storage::PgConnection::connect(conninfo, timeouts_of(cfg));
      auto r = storage::migrate(conn, storage::builtin_migrations(), log);
      log.info("database schema at version {} ({} migration(s) applied now)", r.to_version, r.applied.size());
      return;
    } catch (const Error& e) {
      if (e.code() != Errc::database && e.code() != Errc::timeout) throw;
      if (std::chrono::steady_clock::now() >= deadline) throw;
      log.warn("database not reachable yet (attempt {}): {}; retrying", attempt, e.what());
      std::this_thread::sleep_for(std::min(std::chrono::seconds(attempt), 5s));
    }
  }
}

namespace {
void apply_graph(const Config& cfg, graph::GraphOptions& g) {
  g.connect_timeout = std::chrono::seconds(cfg.graph.connect_timeout_s);
  g.io_timeout = std::chrono::seconds(cfg.graph.io_timeout_s);
  g.max_attempts = static_cast<int>(cfg.graph.max_attempts);
  g.max_retry_after = std::chrono::seconds(cfg.graph.max_retry_after_s);
}
}  // namespace

backup::BackupOptions backup_options(const Config& cfg) {
  backup::BackupOptions o;
  o.downloads_per_drive = static_cast<int>(cfg.backup.downloads_per_drive);
  o.downloads_per_run = static_cast<int>(cfg.backup.downloads_per_run);
  apply_graph(cfg, o.graph);
  return o;
}

restore::RestoreOptions restore_options(const Config& cfg) {
  restore::RestoreOptions o;
  apply_graph(cfg, o.graph);
  return o;
}

namespace {
void notify(const std::string& state) { sd_notify(0, state.c_str()); }

// Stats the repository's `config` every 15 s on its own thread; status() is the
// last answer (nullopt: reachable).
class StoreProbe {
 public:
  StoreProbe(storage::ObjectStore* store, std::shared_ptr<spdlog::logger> log) : store_(store), log_(std::move(log)) {
    if (store_) thread_ = std::thread([this] { loop(); });
  }
  ~StoreProbe() {
    {
      std::lock_guard l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  std::optional<std::string> status() {
    std::lock_guard l(mu_);
    return status_;
  }

 private:
  void loop() {
    std::unique_lock l(mu_);
    while (!stop_) {
      l.unlock();
      std::optional<std::string> st;
      try {
        if (!store_->stat("config")) st = "'" + store_->describe() + "' holds no repository 'config'";
      } catch (const std::exception& e) {
        st = e.what();
      }
      l.lock();
      if (st && st != status_) log_->warn("repository store not reachable: {}", *st);
      status_ = st;
      cv_.wait_for(l, std::chrono::seconds(15), [&] { return stop_; });
    }
  }
  storage::ObjectStore* store_;
  std::shared_ptr<spdlog::logger> log_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::optional<std::string> status_;
  std::thread thread_;
};
}  // namespace

std::string demo_data_dir() {
  if (::geteuid() == 0) return "/var/lib/m365vault/demo";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.local/share/m365vault/demo";
}

int run_migrate(const Config& cfg) {
  Logging logging(cfg.log.format, cfg.log.level);
  auto log = logging.get("migrate");
  auto db = open_database(cfg, logging, true);
  auto conn = storage::PgConnection::connect(db.conninfo, timeouts_of(cfg));
  auto r = storage::migrate(conn, storage::builtin_migrations(), *log);
  std::cout << "database schema at version " << r.to_version << " (was " << r.from_version << ", applied "
            << r.applied.size() << ")\n";
  return 0;
}

namespace {

// Registers (or points at this start's emulator URL) the demo tenant, makes sure
// the hourly "demo backup" job exists, and queues a run of it now. Returns the run id.
std::string start_demo_backup(storage::Database& db, storage::SecretSealer& sealer, const DemoTenant& t) {
  auto f = [&](storage::PgConnection& c) {
    storage::Catalog cat;
    storage::TenantSpec spec;
    spec.name = "demo";
    spec.directory_id = t.tenant_id;
    spec.client_id = t.client_id;
    spec.graph_url = t.graph_url;
    spec.login_url = t.graph_url;
    spec.ca_file = t.ca_file;
    std::string tenant_id;
    if (auto existing = cat.get_tenant(c, "demo")) {
      tenant_id = existing->id;
      cat.update_tenant(c, tenant_id, spec, std::nullopt);  // the emulator listens on a new port each start
    } else {
      tenant_id = storage::Catalog::new_tenant_id();
      auto ctx = storage::Catalog::secret_context(tenant_id);
      cat.create_tenant(c, tenant_id, spec, {ctx, sealer.seal(ctx, t.client_secret)});
    }
    scheduler::Queue q;
    auto job = q.get_job(c, "demo backup");
    if (!job) {
      scheduler::JobSpec js;
      js.name = "demo backup";
      js.kind = "backup";
      js.tenant_id = tenant_id;
      js.schedule = "0 * * * *";
      // Everything the demo tenant holds: mailboxes, OneDrives, a site's libraries and lists, a team.
      js.params = {{"categories", {"mail", "contacts", "calendar", "onedrive", "sharepoint", "teams"}}};
      job = q.create_job(c, js, std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
    }
    return q.enqueue(c, job->id);
  };
  return db.with_connection<std::string>(f);
}

// Prints the demo run's progress now and then, and what it did when it ends.
asio::awaitable<void> follow_demo_run(storage::Database& db, std::string run_id, std::string data_dir,
                                      std::atomic<bool>& stopping) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  std::string last_state;
  auto last_print = std::chrono::steady_clock::now() - std::chrono::hours(1);
  while (!stopping) {
    auto get = [&](storage::PgConnection& c) { return scheduler::Queue{}.get_run(c, run_id); };
    auto r = co_await db.run(get);
    if (!r) co_return;
    const std::string state(scheduler::to_string(r->state));
    const bool ended = r->state != scheduler::RunState::queued && r->state != scheduler::RunState::running;
    if (ended || state != last_state || std::chrono::steady_clock::now() - last_print > std::chrono::seconds(10)) {
      std::cout << "backup: " << scheduler::render_progress(state, r->progress, false) << std::endl;
      last_print = std::chrono::steady_clock::now();
      last_state = state;
    }
    if (ended) {
      if (r->error) std::cout << "backup: " << *r->error << std::endl;
      std::cout << "backup: restore points are listed by\n         M365VAULT_DATA_DIR=" << data_dir
                << " m365vaultd snapshot list --tenant demo\n"
                << "         and the encrypted repository is in " << data_dir << "/repo" << std::endl;
      co_return;
    }
    t.expires_after(std::chrono::seconds(2));
    boost::system::error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace

int run_serve(Config cfg, const ConfigSource& source, ServeMode mode) {
  Logging logging(cfg.log.format, cfg.log.level);
  auto log = logging.get("daemon");
  log->info("m365vaultd {} starting ({}), data in '{}'", version(), mode == ServeMode::demo ? "demo" : "serve",
            cfg.storage.data_dir);

  auto dbh = open_database(cfg, logging);
  migrate_with_retry(cfg, dbh.conninfo, *logging.get("db"));
  storage::Database db(dbh.conninfo, static_cast<std::size_t>(cfg.database.pool_size), timeouts_of(cfg),
                       logging.get("db"));

  // The repository, before anything is written: a wrong passphrase stops start-up
  // here with one line. A serve with no key configured and no local repository
  // starts without one (API, scheduler) and says how to create it; an s3://
  // repository is configured on purpose, so it must open.
  RepositoryHandle repository;
  if (mode == ServeMode::demo) ensure_demo_repository(cfg, logging);
  const std::string repo_url = cfg.repository_url();
  if (mode == ServeMode::demo || !cfg.storage.passphrase.empty() || !cfg.storage.key.empty() ||
      repo_url.rfind("file://", 0) != 0 || std::filesystem::exists(std::filesystem::path(repo_url.substr(7)) / "config")) {
    repository = open_repository(cfg, dbh.conninfo, logging);
    log->info("repository {} at '{}' open", repository.repo->config().id, repository.store->describe());
  } else {
    log->warn("no repository at '{}': backups cannot run until one exists (create it with 'm365vaultd repo init')",
              repo_url);
  }

  // This daemon's row among the daemons sharing the database.
  const std::string instance_id = boost::uuids::to_string(boost::uuids::random_generator()());
  {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    auto f = [&](storage::PgConnection& c) {
      c.exec("INSERT INTO instances (id, hostname, pid, version) VALUES ($1, $2, $3, $4)",
             {instance_id, std::string(host), std::to_string(::getpid()), std::string(version())});
    };
    db.with_connection<void>(f);
  }

  MetricsRegistry metrics;
  metrics.gauge("m365vault_build_info", "build information", {{"version", std::string(version())}}).set(1);
  metrics.gauge("m365vault_start_time_seconds", "when this daemon started (unix time)")
      .set(static_cast<double>(std::time(nullptr)));

  asio::io_context ioc;
  net::Router router;
  api::HealthOptions health;
  health.metrics = &metrics;
  health.checks.push_back({"database", [&db](std::chrono::milliseconds t) { return db.ping(t); }});
  // The object store answers a stat of 'config' (one cheap request), probed in the
  // background so /readyz never waits on a slow store.
  StoreProbe store_probe(repository.store.get(), log);
  if (repository.store)
    health.checks.push_back({"repository", [&store_probe](std::chrono::milliseconds) -> asio::awaitable<std::optional<std::string>> {
                               co_return store_probe.status();
                             }});
  api::add_health_routes(router, health);
  scheduler::Queue queue(std::chrono::seconds(cfg.scheduler.lease_s));
  queue.set_notifications(!cfg.notify.webhook_url.empty());
  api::ApiOptions api_opts{&db, queue, logging.get("api")};
  // The repository seals tenant credentials and serves item content; without one
  // (a serve not yet given a repository) both answer 503 rather than store a
  // credential in clear.
  std::unique_ptr<storage::RepositorySealer> sealer;
  std::unique_ptr<RepositoryContentReader> content;
  if (repository.repo) {
    sealer = std::make_unique<storage::RepositorySealer>(*repository.repo);
    content = std::make_unique<RepositoryContentReader>(*repository.repo);
  }
  api_opts.sealer = sealer.get();
  api_opts.content = content.get();
  api_opts.export_content = content.get();
  api_opts.auth_failures_per_minute = static_cast<int>(cfg.server.auth_failures_per_minute);
  api::add_v1_routes(router, api_opts);

  net::ServerOptions so;
  so.host = cfg.server.host;
  so.port = cfg.server.port;
  so.tls_cert_file = cfg.server.tls_cert;
  so.tls_key_file = cfg.server.tls_key;
  so.max_connections = static_cast<std::size_t>(cfg.server.max_connections);
  so.header_limit = static_cast<std::size_t>(cfg.server.header_limit);
  so.body_limit = static_cast<std::size_t>(cfg.server.body_limit);
  so.read_timeout = std::chrono::seconds(cfg.server.read_timeout_s);
  so.write_timeout = std::chrono::seconds(cfg.server.write_timeout_s);
  so.idle_timeout = std::chrono::seconds(cfg.server.idle_timeout_s);
  net::HttpServer server(ioc, so, router.handler(), logging.get("http"), &metrics);
  server.start();

  // This daemon's scheduler worker: fires due schedules and executes the run
  // kinds it knows. Without a repository it executes nothing and leaves runs
  // queued for a daemon that can.
  std::map<std::string, std::shared_ptr<scheduler::JobKind>> kinds;
  const backup::BackupOptions bopts = backup_options(cfg);
  if (repository.repo) {
    kinds["backup"] = std::make_shared<backup::BackupKind>(backup::BackupServices{
        ioc.get_executor(), db, *repository.repo, *sealer, logging.get("backup"), bopts});
    kinds["restore"] = std::make_shared<restore::RestoreKind>(restore::RestoreServices{
        ioc.get_executor(), db, *repository.repo, *sealer, logging.get("restore"), restore_options(cfg)});
  }
  // Export runs only read the catalog (the list they freeze); any daemon may take them.
  kinds["export"] = std::make_shared<exporting::ExportKind>(db);

  // The demo's Microsoft 365: the emulator with a generated tenant, registered
  // here, and a first backup queued (then every hour).
  std::unique_ptr<DemoEmulator> emulator;
  std::string demo_run;
  if (mode == ServeMode::demo) {
    emulator = std::make_unique<DemoEmulator>(cfg.storage.data_dir + "/emulator");
    demo_run = start_demo_backup(db, *sealer, emulator->tenant());
  }
  scheduler::WorkerOptions wopts;
  wopts.concurrency = static_cast<std::size_t>(cfg.scheduler.concurrency);
  wopts.heartbeat_interval = std::chrono::seconds(cfg.scheduler.heartbeat_s);
  scheduler::Worker worker(ioc.get_executor(), db, queue, kinds, wopts, instance_id,
                           logging.get("scheduler"));
  worker.start();
  net::HttpClient http(ioc.get_executor(), net::ClientOptions{});
  scheduler::NotifierOptions nopts;
  nopts.url = cfg.notify.webhook_url;
  nopts.secret = cfg.notify.webhook_secret;
  scheduler::Notifier notifier(ioc.get_executor(), db, http, nopts, logging.get("notify"));
  notifier.start();

  const std::string scheme = cfg.server.tls_cert.empty() ? "http" : "https";
  const std::string url = scheme + "://" +
                          (cfg.server.host.find(':') != std::string::npos ? "[" + cfg.server.host + "]" : cfg.server.host) +
                          ":" + std::to_string(server.port());
  log->info("listening on {}", url);
  notify("READY=1\nSTATUS=serving on " + url);
  if (mode == ServeMode::demo) {
    std::cout << "\nm365vault demo is running\n"
              << "  API:       " << url << "  (try: curl " << url << "/readyz)\n"
              << "  metrics:   " << url << "/metrics\n"
              << "  data:      " << cfg.storage.data_dir << " (PostgreSQL in pg/, repository "
              << cfg.repository_url() << ")\n"
              << "  tenant:    'demo' on the Graph emulator at " << emulator->tenant().graph_url << " (log "
              << emulator->log_file() << ")\n"
              << "  backup:    run " << demo_run << " queued; follow it here, or with\n"
              << "             M365VAULT_DATA_DIR=" << cfg.storage.data_dir << " m365vaultd job show 'demo backup'\n"
              << "  API token: M365VAULT_DATA_DIR=" << cfg.storage.data_dir
              << " m365vaultd token create --role admin --name me\n"
              << "  stop with Ctrl-C\n"
              << std::endl;
  }

  auto work = asio::make_work_guard(ioc);
  // Timers and signals live on one strand: the io_context runs on several threads.
  auto control = asio::make_strand(ioc);
  asio::steady_timer heartbeat(control);
  asio::steady_timer watchdog(control);
  std::atomic<bool> stopping = false;
  if (!demo_run.empty())
    asio::co_spawn(control, follow_demo_run(db, demo_run, cfg.storage.data_dir, stopping), [](std::exception_ptr) {});

  // WATCHDOG=1 at half the interval systemd asked for, from the event loop, so a
  // stuck loop stops the pings and systemd restarts us.
  std::uint64_t wd_usec = 0;
  if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0) {
    auto period = std::chrono::microseconds(wd_usec / 2);
    log->info("systemd watchdog every {} ms", period.count() / 1000);
    std::function<void()> ping;
    ping = [&, period] {
      notify("WATCHDOG=1");
      watchdog.expires_after(period);
      watchdog.async_wait([&](boost::system::error_code ec) {
        if (!ec && !stopping) ping();
      });
    };
    ping();
  }

  // Refresh last_seen and the job/run gauges of /metrics.
  std::function<void()> beat;
  bool first_beat = true;
  beat = [&] {
    heartbeat.expires_after(first_beat ? 1s : 15s);
    first_beat = false;
    heartbeat.async_wait([&](boost::system::error_code ec) {
      if (ec || stopping) return;
      asio::co_spawn(
          control,
          [&]() -> asio::awaitable<void> {
            try {
              auto touch = [&](storage::PgConnection& c) {
                c.exec("UPDATE instances SET last_seen = now() WHERE id = $1", {instance_id});
                return scheduler::Queue{}.stats(c);
              };
              auto stats = co_await db.run(touch);
              for (auto& [state, n] : stats.runs_by_state)
                metrics.gauge("m365vault_runs", "runs in the database by state", {{"state", state}})
                    .set(static_cast<double>(n));
              for (auto& [job, t] : stats.last_success_by_job)
                metrics.gauge("m365vault_job_last_success_time_seconds", "when a job's last successful run ended",
                              {{"job", job}})
                    .set(t);
            } catch (const std::exception& e) {
              log->warn("heartbeat: {}", e.what());
            }
          },
          [&](std::exception_ptr) {
            if (!stopping) beat();
          });
    });
  };
  beat();

  asio::signal_set signals(control, SIGTERM, SIGINT, SIGHUP);
  std::function<void()> wait_signal;
  wait_signal = [&] {
    signals.async_wait([&](boost::system::error_code ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        try {
          auto fresh = load_config(source, process_environment(), cfg);
          logging.set_level(fresh.log.level);
          log->info("configuration reloaded: log level {}", spdlog::level::to_string_view(fresh.log.level));
        } catch (const std::exception& e) {
          log->error("reload refused, keeping the running configuration: {}", e.what());
        }
        wait_signal();
        return;
      }
      if (stopping) {
        log->warn("second signal {}: stopping now", sig);
        ioc.stop();
        return;
      }
      stopping = true;
      log->info("signal {}: draining (grace {} s)", sig, cfg.server.shutdown_grace_s);
      notify("STOPPING=1");
      // The HTTP server and the worker drain in parallel; the last one done
      // releases the event loop.
      auto pending = std::make_shared<std::atomic<int>>(3);
      auto one_done = [&, pending] {
        if (--*pending > 0) return;
        asio::post(control, [&] {
          heartbeat.cancel();
          watchdog.cancel();
          signals.cancel();
          work.reset();
        });
      };
      server.stop(std::chrono::seconds(cfg.server.shutdown_grace_s), one_done);
      worker.stop(one_done);
      notifier.stop(one_done);
      wait_signal();  // while draining, a second signal forces the stop
    });
  };
  wait_signal();

  std::vector<std::thread> threads;
  for (int i = 1; i < cfg.server.threads; ++i) threads.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();

  try {
    auto f = [&](storage::PgConnection& c) {
      c.exec("UPDATE instances SET stopped_at = now(), last_seen = now() WHERE id = $1", {instance_id});
    };
    db.with_connection<void>(f);
  } catch (const std::exception& e) {
    log->warn("could not record the stop: {}", e.what());
  }
  if (dbh.embedded) dbh.embedded->stop();
  log->info("stopped");
  return 0;
}

}  // namespace m365vault::daemon
