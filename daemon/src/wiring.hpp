#pragma once
// Pieces of wiring shared by the daemon's commands (private to daemon/).
#include <memory>
#include <string>

#include "m365vault/backup/backup.hpp"
#include "m365vault/core/log.hpp"
#include "m365vault/daemon/config.hpp"
#include "m365vault/restore/restore.hpp"
#include "m365vault/storage/embedded_pg.hpp"
#include "m365vault/storage/pg.hpp"
#include "m365vault/storage/pg_index.hpp"
#include "m365vault/storage/repository.hpp"
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

// The repository the daemon writes to, opened from storage.repository and the
// key settings, with the PostgreSQL blob index. Members are destroyed in reverse:
// the repository before its index and store.
struct RepositoryHandle {
  std::unique_ptr<storage::ObjectStore> store;
  std::unique_ptr<storage::PgBlobIndex> index;
  std::unique_ptr<storage::Repository> repo;
};

// The object store storage.repository names (file:// directories are created when
// `create` is set). Throws Error(Errc::invalid_config) naming the key.
std::unique_ptr<storage::ObjectStore> open_store(const Config& cfg, Logging& logging, bool create = false);
// The configured key source: storage.passphrase(_file), storage.key(_file),
// M365VAULT_REPOSITORY_PASSPHRASE, else $CREDENTIALS_DIRECTORY/repository-passphrase
// or repository-key. Throws Error(Errc::invalid_config) when there is none.
storage::KeySource repository_keys(const Config& cfg);
// Opens store, index and repository; writes nothing. Throws Error(Errc::wrong_key)
// on a wrong passphrase or key file, Error(Errc::not_found) when there is no
// repository (with the hint to run `repo init`).
RepositoryHandle open_repository(const Config& cfg, const std::string& conninfo, Logging& logging);
// The demo's repository: initialised on first start with a generated passphrase
// kept in <data_dir>/repository-passphrase (mode 0600), which the log names.
// Leaves cfg's key settings pointing at it.
void ensure_demo_repository(Config& cfg, Logging& logging);

// The [backup] and [graph] settings as backup options (the daemon's runs and
// `backup run` alike).
backup::BackupOptions backup_options(const Config& cfg);
// The [graph] settings as restore options (the daemon's runs and `restore` alike).
restore::RestoreOptions restore_options(const Config& cfg);

}  // namespace m365vault::daemon
