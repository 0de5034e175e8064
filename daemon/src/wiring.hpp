#pragma once
// Pieces of wiring shared by the daemon's commands (private to daemon/).
#include <memory>
#include <string>

#include "m365vault/core/log.hpp"
#include "m365vault/daemon/config.hpp"
#include "m365vault/storage/embedded_pg.hpp"
#include "m365vault/storage/pg.hpp"
#include "m365vault/storage/sealer.hpp"

namespace m365vault::daemon {

// The database the daemon uses: the configured URL, or the embedded cluster.
struct DatabaseHandle {
  std::unique_ptr<storage::EmbeddedPostgres> embedded;
  std::string conninfo;
};

// Opens the configured database, starting the embedded cluster when there is no
// URL. With `attach`, an embedded cluster already run by a daemon is used as it
// is (administrator commands beside a running service).
DatabaseHandle open_database(const Config& cfg, Logging& logging, bool attach = false);
storage::PgTimeouts timeouts_of(const Config& cfg);
// Connects and migrates, retrying an unreachable database for database.startup_timeout_s.
void migrate_with_retry(const Config& cfg, const std::string& conninfo, spdlog::logger& log);
// The sealer of tenant credentials (the repository key), or nullptr when this
// build cannot seal: callers then refuse to take a credential (cli_tenant.cpp).
std::unique_ptr<storage::SecretSealer> open_secret_sealer(const Config& cfg);

}  // namespace m365vault::daemon
