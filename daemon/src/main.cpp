// m365vaultd: the m365vault service and its administrator commands.
#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "m365vault/core/error.hpp"
#include "m365vault/core/version.hpp"
#include "m365vault/daemon/app.hpp"
#include "m365vault/daemon/config.hpp"

using namespace m365vault;
using namespace m365vault::daemon;

namespace {

constexpr int kExitUsage = 2;

const char* kUsage =
    "usage: m365vaultd [--config FILE] COMMAND\n"
    "\n"
    "commands:\n"
    "  serve      run the service (API, scheduler) until SIGTERM\n"
    "  demo       run everything on embedded defaults: a private PostgreSQL and a local\n"
    "             repository under the demo data directory, the API on http://127.0.0.1:8080\n"
    "  migrate    apply database migrations and exit\n"
    "  token create --role admin|operator|restorer|viewer --name NAME [--tenant UUID] [--expires RFC3339]\n"
    "             create an API token (printed once); token list; token revoke ID\n"
    "  job add --name NAME [--schedule CRON --timezone TZ] ... | job list | job show|rm|run NAME\n"
    "             backup jobs (see `m365vaultd job` for the options)\n"
    "  restore --tenant T [--owner O]... [--item ID]... [--container ID]... [--category C]... [--at T]\n"
    "          [--to-owner O] [--to-folder F] [--conflict skip|replace|copy] [--dry-run]\n"
    "             restore items, folders or owners as they were at an instant (docs/restore.md)\n"
  "  repo init [--key-file-out FILE] | repo verify [--deep] [--repair]\n"
    "  repo prune [--grace 24h] [--dry-run] | repo rebuild-index\n"
    "             create, check and prune the repository; rebuild its index from the store\n"
    "  export --tenant T [--owner O] [--container ID] [--category C] [--at T] [--mbox] --output FILE.zip\n"
    "             export what was backed up at an instant as a zip (see docs/export.md)\n"
    "\n"
    "options:\n"
    "  --config FILE   configuration file (default /etc/m365vault/m365vault.toml, or $M365VAULT_CONFIG)\n"
    "  --version       print the version and exit\n"
    "  --help          print this help and exit\n"
    "\n"
    "Every configuration key can be set by an environment variable: server.listen is\n"
    "M365VAULT_SERVER_LISTEN (or M365VAULT_LISTEN), database.url is M365VAULT_DATABASE_URL,\n"
    "storage.data_dir is M365VAULT_STORAGE_DATA_DIR (or M365VAULT_DATA_DIR). Exit status:\n"
    "0 success, 1 failure, 2 bad usage or configuration.\n";

}  // namespace

int main(int argc, char** argv) {
  // Buffers of a MiB and more (downloads' chunk buffers, pack batches and packs)
  // are allocated and freed on several threads. glibc's dynamic mmap threshold
  // rises to the size of the first one freed, and the later ones then come from
  // per-thread heap arenas that keep what is freed, fragmented: bench/backup_files
  // "many" peaked at 332 MB RSS with this unset and 218 MB with it, same build. A
  // fixed threshold keeps them mmapped, returned to the system when freed. An
  // operator's MALLOC_MMAP_THRESHOLD_ (glibc's own variable) wins.
  if (!std::getenv("MALLOC_MMAP_THRESHOLD_")) mallopt(M_MMAP_THRESHOLD, 1 << 20);
  std::vector<std::string> args(argv + 1, argv + argc);
  ConfigSource source{"/etc/m365vault/m365vault.toml", false};
  auto env = process_environment();
  if (auto it = env.find("M365VAULT_CONFIG"); it != env.end() && !it->second.empty()) source = {it->second, true};
  std::string command;
  std::vector<std::string> rest;  // the arguments after a command that takes some
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (command == "token" || command == "job" || command == "repo" || command == "tenant" ||
        command == "snapshot" || command == "backup" || command == "restore" || command == "export") {
      rest.push_back(a);
      continue;
    }
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (a == "--version") {
      std::cout << "m365vaultd " << version() << "\n";
      return 0;
    }
    if (a == "--config" || a.rfind("--config=", 0) == 0) {
      std::string v;
      if (a == "--config") {
        if (i + 1 >= args.size()) {
          std::cerr << "m365vaultd: --config needs a file\n";
          return kExitUsage;
        }
        v = args[++i];
      } else {
        v = a.substr(9);
      }
      source = {v, true};
      continue;
    }
    if (!a.empty() && a[0] == '-') {
      std::cerr << "m365vaultd: unknown option '" << a << "'\n" << kUsage;
      return kExitUsage;
    }
    if (!command.empty()) {
      std::cerr << "m365vaultd: unexpected argument '" << a << "'\n";
      return kExitUsage;
    }
    command = a;
  }
  if (command.empty()) {
    std::cerr << kUsage;
    return kExitUsage;
  }
  if (command != "serve" && command != "demo" && command != "migrate" && command != "token" &&
      command != "job" && command != "repo" && command != "tenant" && command != "snapshot" &&
      command != "backup" && command != "restore" && command != "export") {
    std::cerr << "m365vaultd: unknown command '" << command << "'\n" << kUsage;
    return kExitUsage;
  }

  Config cfg;
  try {
    Config defaults;
    if (command == "demo") {
      defaults.storage.data_dir = demo_data_dir();
      // The demo reads only an explicitly named file, never the system one.
      if (!source.required) source.path.reset();
    }
    cfg = load_config(source, env, defaults);
    if (command == "demo" && !cfg.database.url.empty()) {
      std::cerr << "m365vaultd: demo runs its own PostgreSQL; unset database.url (M365VAULT_DATABASE_URL)\n";
      return kExitUsage;
    }
  } catch (const Error& e) {
    std::cerr << "m365vaultd: " << e.what() << "\n";
    return kExitUsage;
  }

  try {
    if (command == "migrate") return run_migrate(cfg);
    if (command == "token") return run_token(cfg, rest);
    if (command == "job") return run_job(cfg, rest);
    if (command == "repo") return run_repo(cfg, rest);
    if (command == "tenant") return run_tenant(cfg, rest);
    if (command == "snapshot") return run_snapshot(cfg, rest);
    if (command == "backup") return run_backup_command(cfg, rest);
    if (command == "export") return run_export_command(cfg, rest);
    if (command == "restore") return run_restore_command(cfg, rest);
    return run_serve(cfg, source, command == "demo" ? ServeMode::demo : ServeMode::serve);
  } catch (const Error& e) {
    std::cerr << "m365vaultd: " << e.what() << "\n";
    return e.code() == Errc::invalid_config ? kExitUsage : 1;
  } catch (const std::exception& e) {
    std::cerr << "m365vaultd: " << e.what() << "\n";
    return 1;
  }
}
