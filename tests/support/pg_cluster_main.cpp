// m365vault-test-pg start DIR | stop DIR
// The throwaway PostgreSQL cluster of the test command, run by the same code as
// the daemon's embedded cluster (as user m365vault when started by root). `start`
// prints the conninfo of its 'm365vault' database on stdout.
#include <unistd.h>

#include <iostream>
#include <spdlog/sinks/stdout_sinks.h>

#include "m365vault/core/error.hpp"
#include "m365vault/storage/embedded_pg.hpp"

using namespace m365vault;

int main(int argc, char** argv) {
  if (argc != 3 || (std::string(argv[1]) != "start" && std::string(argv[1]) != "stop")) {
    std::cerr << "usage: m365vault-test-pg start|stop DIR\n";
    return 2;
  }
  auto log = std::make_shared<spdlog::logger>("test-pg", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  storage::EmbeddedPgOptions o;
  o.root = argv[2];
  if (::geteuid() == 0) {
    o.run_as = lookup_user("m365vault");
    if (!o.run_as) {
      std::cerr << "m365vault-test-pg: no user 'm365vault' (scripts/test.sh creates it)\n";
      return 1;
    }
  }
  try {
    storage::EmbeddedPostgres pg(o, log);
    if (std::string(argv[1]) == "start") {
      pg.start();
      std::cout << pg.conninfo() << std::endl;
      // Leave it running: the test command stops it.
      pg.release();
    } else {
      pg.stop();
    }
  } catch (const std::exception& e) {
    std::cerr << "m365vault-test-pg: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
