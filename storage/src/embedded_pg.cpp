#include "m365vault/storage/embedded_pg.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "m365vault/core/error.hpp"
#include "m365vault/storage/pg.hpp"

namespace m365vault::storage {

namespace fs = std::filesystem;

namespace {
constexpr const char* kSuperuser = "m365vault";

void chown_tree(const fs::path& p, const UserIds& u) {
  if (::lchown(p.c_str(), u.uid, u.gid) != 0)
    throw Error(Errc::internal, "cannot give '" + p.string() + "' to user '" + u.name + "'");
  if (fs::is_directory(p))
    for (auto& e : fs::recursive_directory_iterator(p)) ::lchown(e.path().c_str(), u.uid, u.gid);
}

bool safe_path(const std::string& s) { return s.find_first_of("'\\\n") == std::string::npos; }
}  // namespace

std::size_t embedded_shared_buffers_mb(std::size_t available_bytes) {
  return std::clamp<std::size_t>(available_bytes / 4 >> 20, 128, 8192);
}

std::size_t available_memory_bytes() {
  std::size_t bytes = static_cast<std::size_t>(::sysconf(_SC_PHYS_PAGES)) * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  // A cgroup limit (systemd MemoryMax=, a container's --memory) counts, not the
  // host's RAM: cgroup v2 names our group in /proc/self/cgroup ("0::/path").
  auto limit_in = [&](const fs::path& file) {
    std::ifstream in(file);
    std::string v;
    if (!(in >> v) || v.empty() || v.find_first_not_of("0123456789") != std::string::npos) return;  // "max"
    if (auto n = std::stoull(v); n > 0 && n < bytes) bytes = static_cast<std::size_t>(n);
  };
  std::ifstream groups("/proc/self/cgroup");
  for (std::string line; std::getline(groups, line);)
    if (line.rfind("0::", 0) == 0) limit_in(fs::path("/sys/fs/cgroup") / fs::path(line.substr(3)).relative_path() / "memory.max");
  limit_in("/sys/fs/cgroup/memory/memory.limit_in_bytes");  // cgroup v1
  return bytes;
}

std::string find_postgres_bin_dir() {
  std::error_code ec;
  int best = -1;
  std::string dir;
  for (auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    auto name = e.path().filename().string();
    int v = std::atoi(name.c_str());
    if (v > best && fs::exists(e.path() / "bin" / "initdb")) {
      best = v;
      dir = (e.path() / "bin").string();
    }
  }
  return dir;
}

EmbeddedPostgres::EmbeddedPostgres(EmbeddedPgOptions opts, std::shared_ptr<spdlog::logger> log)
    : opts_(std::move(opts)), log_(std::move(log)) {
  if (opts_.bin_dir.empty()) opts_.bin_dir = find_postgres_bin_dir();
  data_ = opts_.root / "data";
  run_ = opts_.root / "run";
  logfile_ = opts_.root / "postgresql.log";
}

EmbeddedPostgres::~EmbeddedPostgres() {
  if (started_) {
    try {
      stop();
    } catch (const std::exception& e) {
      log_->error("stopping the embedded PostgreSQL: {}", e.what());
    }
  }
}

std::string EmbeddedPostgres::tool(const std::string& name) const { return opts_.bin_dir + "/" + name; }

ProcessResult EmbeddedPostgres::pg_ctl(const std::vector<std::string>& args) const {
  ProcessOptions o;
  o.argv = {tool("pg_ctl")};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.user = opts_.run_as;
  o.capture_output = true;
  o.env = {"LC_ALL=C"};
  return run_process(o);
}

std::string EmbeddedPostgres::log_tail() const {
  std::ifstream f(logfile_);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(f, line)) {
    lines.push_back(line);
    if (lines.size() > 5) lines.erase(lines.begin());
  }
  std::string out;
  for (auto& l : lines) out += "\n  " + l;
  return out.empty() ? "" : "; last lines of " + logfile_.string() + ":" + out;
}

bool EmbeddedPostgres::running() const {
  if (!fs::exists(data_ / "PG_VERSION")) return false;
  return pg_ctl({"status", "-D", data_.string()}).exit_code == 0;
}

void EmbeddedPostgres::start() {
  if (opts_.bin_dir.empty() || !fs::exists(tool("initdb")))
    throw Error(Errc::unavailable,
                "embedded PostgreSQL: no PostgreSQL binaries found under /usr/lib/postgresql (install the "
                "'postgresql' package, or set 'database.url' to use an existing server)");
  if (::geteuid() == 0 && !opts_.run_as)
    throw Error(Errc::invalid_config, "embedded PostgreSQL cannot run as root: set 'database.embedded_user'");
  if (!safe_path(opts_.root.string()))
    throw Error(Errc::invalid_config, "config key 'storage.data_dir': path '" + opts_.root.string() +
                                          "' contains a quote, backslash or newline");

  fs::create_directories(opts_.root);
  fs::create_directories(run_);
  ::chmod(opts_.root.c_str(), 0700);
  ::chmod(run_.c_str(), 0700);
  if (opts_.run_as) chown_tree(opts_.root, *opts_.run_as);

  if (!fs::exists(data_ / "PG_VERSION")) {
    if (fs::exists(data_)) {
      log_->warn("embedded PostgreSQL: '{}' holds an unfinished cluster; creating it again", data_.string());
      fs::remove_all(data_);
    }
    log_->info("embedded PostgreSQL: creating a cluster in '{}'", data_.string());
    ProcessOptions o;
    o.argv = {tool("initdb"), "-D", data_.string(), "-U", kSuperuser, "--auth-local=trust", "--auth-host=reject",
              "-E", "UTF8", "--no-locale", "--no-instructions"};
    o.user = opts_.run_as;
    o.capture_output = true;
    o.env = {"LC_ALL=C"};
    auto r = run_process(o);
    if (r.exit_code != 0) {
      std::string hint;
      if (r.output.find("ermission denied") != std::string::npos && opts_.run_as)
        hint = " (user '" + opts_.run_as->name + "' must be able to enter every parent directory of '" +
               opts_.root.string() + "')";
      throw Error(Errc::unavailable, "embedded PostgreSQL: initdb failed" + hint + ": " + r.output);
    }
    std::ofstream conf(data_ / "postgresql.conf", std::ios::app);
    conf << "\n# m365vault: settings rewritten at every start\ninclude_if_exists 'm365vault.conf'\n";
  }
  const std::size_t memory = available_memory_bytes();
  const std::size_t buffers_mb = opts_.shared_buffers_mb ? opts_.shared_buffers_mb : embedded_shared_buffers_mb(memory);
  // The buffer cache survives a restart: pg_prewarm's autoprewarm writes the list
  // of cached blocks every 5 minutes and at shutdown, and reads them back in the
  // background after a start. Without it the first folder pages after a restart
  // or a reboot each wait for some 500 scattered reads. Where the module is
  // installed (Debian's postgresql package has it).
  const bool prewarm = fs::exists(fs::path(opts_.bin_dir).parent_path() / "lib" / "pg_prewarm.so");
  {
    // Absolute socket path may change when the data directory moves: rewrite each start.
    std::ofstream conf(data_ / "m365vault.conf", std::ios::trunc);
    conf << "listen_addresses = ''\n"
         << "unix_socket_directories = '" << run_.string() << "'\n"
         << "unix_socket_permissions = 0700\n"
         << "max_connections = 100\n"
         << "logging_collector = off\n"
         << "shared_buffers = " << buffers_mb << "MB\n"
         << "effective_cache_size = " << std::max(buffers_mb, memory / 4 * 3 >> 20) << "MB\n"
         // JIT needs writable+executable memory, which the systemd unit forbids.
         << "jit = off\n";
    if (prewarm) conf << "shared_preload_libraries = 'pg_prewarm'\n";
  }
  if (opts_.run_as) chown_tree(data_ / "m365vault.conf", *opts_.run_as);

  // What a crash left behind.
  if (fs::exists(data_ / "postmaster.pid")) {
    if (pg_ctl({"status", "-D", data_.string()}).exit_code == 0) {
      log_->warn("embedded PostgreSQL: a server from an earlier run is still up; restarting it under this daemon");
      pg_ctl({"stop", "-D", data_.string(), "-m", "fast", "-w", "-t", "60"});
    } else {
      log_->warn("embedded PostgreSQL: removing the stale lock file of a server that is gone");
      fs::remove(data_ / "postmaster.pid");
    }
  }
  std::error_code ec;
  for (auto& e : fs::directory_iterator(run_, ec))
    if (e.path().filename().string().rfind(".s.PGSQL.", 0) == 0) fs::remove(e.path(), ec);

  auto r = pg_ctl({"start", "-D", data_.string(), "-l", logfile_.string(), "-w", "-t", "60", "-s"});
  if (r.exit_code != 0)
    throw Error(Errc::unavailable, "embedded PostgreSQL: the server did not start: " + r.output + log_tail());
  started_ = true;
  log_->info("embedded PostgreSQL: running in '{}' (shared_buffers {} MiB, {})", data_.string(), buffers_mb,
             prewarm ? "autoprewarm on" : "no pg_prewarm module: the buffer cache starts empty after a restart");

  auto admin = PgConnection::connect("host=" + run_.string() + " dbname=postgres user=" + kSuperuser);
  auto exists = admin.exec("SELECT 1 FROM pg_database WHERE datname = $1", {opts_.database});
  if (exists.rows() == 0) {
    for (char c : opts_.database)
      if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_'))
        throw Error(Errc::invalid_config, "embedded PostgreSQL: database name '" + opts_.database + "' is not [a-z0-9_]");
    admin.exec("CREATE DATABASE " + opts_.database);
  }
}

void EmbeddedPostgres::attach_or_start() {
  if (fs::exists(data_ / "postmaster.pid") && running()) {
    log_->debug("embedded PostgreSQL: using the running server in '{}'", data_.string());
    return;
  }
  start();
}

void EmbeddedPostgres::stop() {
  auto r = pg_ctl({"stop", "-D", data_.string(), "-m", "fast", "-w", "-t", "60", "-s"});
  started_ = false;
  if (r.exit_code != 0 && running())
    throw Error(Errc::unavailable, "embedded PostgreSQL: the server did not stop: " + r.output);
  log_->info("embedded PostgreSQL: stopped");
}

std::string EmbeddedPostgres::conninfo() const {
  return "host=" + run_.string() + " dbname=" + opts_.database + " user=" + kSuperuser;
}

}  // namespace m365vault::storage
