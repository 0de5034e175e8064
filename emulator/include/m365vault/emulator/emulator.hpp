#pragma once
// The Graph emulator as an HTTP handler: the identity platform token endpoint,
// Microsoft Graph (/v1.0 and /beta) and the admin API under /_emulator/, as
// docs/emulator.md describes. Thread-safe: the handler may run on several threads.
#include <spdlog/logger.h>

#include <filesystem>
#include <memory>
#include <string>

#include "m365vault/net/http.hpp"

namespace m365vault::emulator {

struct EmulatorOptions {
  // Where tenants, activity and keys persist across restarts; empty: memory only.
  std::filesystem::path state_dir;
};

class Emulator {
 public:
  // Throws Error(invalid_config) when the state directory cannot be used.
  Emulator(EmulatorOptions opts, std::shared_ptr<spdlog::logger> log);
  ~Emulator();
  Emulator(const Emulator&) = delete;
  Emulator& operator=(const Emulator&) = delete;

  // The scheme, host and port clients use ("https://127.0.0.1:8443"): nextLinks,
  // deltaLinks and token audiences are built from it. Call before serving.
  void set_base_url(std::string url);
  // Dispatches every request; valid while the Emulator lives.
  net::Handler handler();

 private:
  std::shared_ptr<struct EmulatorImpl> impl_;
};

// TLS material for --tls-dir: generated on first use (a CA and a server certificate
// for 127.0.0.1 and localhost), reused afterwards.
struct TlsPaths {
  std::string ca_cert, server_cert, server_key;
};
TlsPaths ensure_tls(const std::filesystem::path& dir);

}  // namespace m365vault::emulator
