#pragma once
// The demo's "Microsoft 365": the graph-emulator binary started beside the
// daemon over HTTPS with its own CA, state kept under the demo data directory
// (so the tenant, its tokens and delta links survive a restart of the demo),
// and a generated tenant created through its admin API. Private to daemon/.
#include <memory>
#include <string>

#include "m365vault/core/process.hpp"

namespace m365vault::daemon {

struct DemoTenant {
  std::string tenant_id;   // the directory (tenant) id
  std::string client_id;
  std::string client_secret;
  std::string graph_url;   // the emulator's base URL: Graph and login both
  std::string ca_file;     // the emulator's CA certificate
};

class DemoEmulator {
 public:
  // Starts the emulator (found next to this executable, in the build tree, or in
  // PATH) with state under `dir`, waits for it to listen, and makes sure the
  // demo tenant exists. Throws Error naming what failed.
  explicit DemoEmulator(const std::string& dir);
  ~DemoEmulator();  // SIGTERM, then SIGKILL after 5 s
  DemoEmulator(const DemoEmulator&) = delete;
  DemoEmulator& operator=(const DemoEmulator&) = delete;

  const DemoTenant& tenant() const { return tenant_; }
  const std::string& log_file() const { return log_file_; }

 private:
  std::unique_ptr<ChildProcess> proc_;
  DemoTenant tenant_;
  std::string log_file_;
};

// Where graph-emulator is: beside `self` (an installed or container layout),
// in the build tree (../emulator/), or "graph-emulator" to look up in PATH.
std::string find_emulator_binary(const std::string& self);

}  // namespace m365vault::daemon
