#pragma once
// The daemon's commands. Only daemon/ builds concrete objects and wires them.
#include <string>

#include "m365vault/daemon/config.hpp"

namespace m365vault::daemon {

enum class ServeMode { serve, demo };

// Runs the service until SIGTERM/SIGINT. Returns the process exit status.
// `source` is re-read on SIGHUP (log level).
int run_serve(Config cfg, const ConfigSource& source, ServeMode mode);

// Applies the database migrations and returns the exit status.
int run_migrate(const Config& cfg);

// The data directory `demo` uses: /var/lib/m365vault/demo as root, else
// $HOME/.local/share/m365vault/demo.
std::string demo_data_dir();

}  // namespace m365vault::daemon
