#pragma once
// The daemon's commands. Only daemon/ builds concrete objects and wires them.
#include <string>
#include <vector>

#include "m365vault/daemon/config.hpp"

namespace m365vault::daemon {

enum class ServeMode { serve, demo };

// Runs the service until SIGTERM/SIGINT. Returns the process exit status.
// `source` is re-read on SIGHUP (log level).
int run_serve(Config cfg, const ConfigSource& source, ServeMode mode);

// `token create|list|revoke`: API tokens from the command line (the bootstrap).
int run_token(const Config& cfg, const std::vector<std::string>& args);
// `job add|list|show|rm|run`: backup jobs from the command line.
int run_job(const Config& cfg, const std::vector<std::string>& args);
// `tenant add|list`: Microsoft 365 tenants (credentials sealed, never in clear).
int run_tenant(const Config& cfg, const std::vector<std::string>& args);
// `snapshot list --tenant N`: restore points.
int run_snapshot(const Config& cfg, const std::vector<std::string>& args);
// `backup run --tenant N [--owner A,B] [--category mail,contacts,calendar]`:
// queues a run and executes it in this process with the scheduler's worker code.
int run_backup_command(const Config& cfg, const std::vector<std::string>& args);
// `export --tenant N [--owner ...] ... --output FILE.zip`: the API's export, to a file.
int run_export_command(const Config& cfg, const std::vector<std::string>& args);
// `m365vaultd restore ...` (cli_restore.cpp): creates a restore and runs it here.
int run_restore_command(const Config& cfg, const std::vector<std::string>& args);

// Applies the database migrations and returns the exit status.
int run_migrate(const Config& cfg);
// `m365vaultd repo init|verify|prune|rebuild-index ...` (cli_repo.cpp).
int run_repo(const Config& cfg, const std::vector<std::string>& args);

// The data directory `demo` uses: /var/lib/m365vault/demo as root, else
// $HOME/.local/share/m365vault/demo.
std::string demo_data_dir();

}  // namespace m365vault::daemon
