#pragma once
// A private PostgreSQL cluster under a directory of ours, run with Debian's
// PostgreSQL binaries: initdb once, then pg_ctl start/stop. It listens on a unix
// socket inside that directory only (no TCP), in a socket directory only its
// owner can enter, with trust authentication for that owner.
//
// Layout under root: data/ (PGDATA), run/ (the socket), postgresql.log.
// When we run as root the cluster runs as `run_as` (PostgreSQL refuses root).
#include <spdlog/logger.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "m365vault/core/process.hpp"

namespace m365vault::storage {

struct EmbeddedPgOptions {
  std::filesystem::path root;
  std::optional<UserIds> run_as;  // required when the process runs as root
  std::string bin_dir;            // where initdb/pg_ctl live; found automatically when empty
  std::string database = "m365vault";
  // PostgreSQL's shared_buffers in MiB; 0: sized from the memory this process may
  // use (see embedded_shared_buffers_mb).
  std::size_t shared_buffers_mb = 0;
};

// The shared_buffers the embedded cluster gets by default: a quarter of the memory
// available (the smaller of the machine's RAM and the cgroup's memory.max), at
// least 128 MiB (PostgreSQL's own default) and at most 8 GiB. PostgreSQL's 128 MiB
// held under 2 % of a 5 M-version catalog: every browse page read ~200 heap pages
// through the kernel instead of from its own cache.
std::size_t embedded_shared_buffers_mb(std::size_t available_bytes);
// The memory this process may use: RAM, or less under a cgroup memory limit.
std::size_t available_memory_bytes();

class EmbeddedPostgres {
 public:
  EmbeddedPostgres(EmbeddedPgOptions opts, std::shared_ptr<spdlog::logger> log);
  // Stops the cluster if this object started it.
  ~EmbeddedPostgres();
  EmbeddedPostgres(const EmbeddedPostgres&) = delete;
  EmbeddedPostgres& operator=(const EmbeddedPostgres&) = delete;

  // Creates the cluster on first use, clears what a crash left behind (a stale
  // postmaster.pid, or a server orphaned by a killed daemon, which is stopped and
  // started again under our control), starts it, waits until it accepts
  // connections and creates the database. Throws Error naming what failed, with
  // the tail of the server log.
  void start();
  // For administrator commands run beside a daemon: when the cluster is already
  // up (its daemon is running), use it as it is and leave it running; otherwise
  // start() it (and stop it with this object).
  void attach_or_start();
  // Fast shutdown (in-flight transactions roll back), waiting for it to finish.
  void stop();
  bool running() const;
  // Leaves a started cluster running when this object goes away (tools that
  // start a cluster for others to use).
  void release() { started_ = false; }

  // libpq conninfo for the database.
  std::string conninfo() const;
  const std::filesystem::path& data_dir() const { return data_; }

 private:
  ProcessResult pg_ctl(const std::vector<std::string>& args) const;
  std::string tool(const std::string& name) const;
  std::string log_tail() const;

  EmbeddedPgOptions opts_;
  std::shared_ptr<spdlog::logger> log_;
  std::filesystem::path data_, run_, logfile_;
  bool started_ = false;
};

// Debian's PostgreSQL binary directory (newest /usr/lib/postgresql/N/bin), or "" if none.
std::string find_postgres_bin_dir();

}  // namespace m365vault::storage
