// graph-emulator: Microsoft Graph and the identity platform for tests, the demo and
// the benchmarks. See docs/emulator.md.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <thread>

#include "m365vault/core/error.hpp"
#include "m365vault/core/log.hpp"
#include "m365vault/emulator/emulator.hpp"
#include "m365vault/net/server.hpp"

using namespace m365vault;

namespace {
void usage(std::ostream& o) {
  o << "usage: graph-emulator --listen HOST:PORT [--tls-dir DIR] [--state-dir DIR] [--threads N] [--log-level LEVEL]\n"
       "  --listen     address to serve (port 0 picks a free port)\n"
       "  --tls-dir    serve HTTPS with a CA and server certificate kept in DIR (created on first start;\n"
       "               clients trust DIR/ca.pem)\n"
       "  --state-dir  persist tenants and activity in DIR across restarts (default: memory only)\n"
       "  --threads    I/O threads (default 2)\n"
       "  --log-level  trace|debug|info|warn|error (default warn)\n";
}
}  // namespace

int main(int argc, char** argv) {
  std::string listen, tls_dir, state_dir, level = "warn";
  int threads = 2;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) {
        std::cerr << "graph-emulator: option '" << a << "' needs a value\n";
        std::exit(2);
      }
      out = argv[++i];
    };
    if (a == "--listen") value(listen);
    else if (a == "--tls-dir") value(tls_dir);
    else if (a == "--state-dir") value(state_dir);
    else if (a == "--log-level") value(level);
    else if (a == "--threads") {
      std::string t;
      value(t);
      threads = std::max(1, std::atoi(t.c_str()));
    } else if (a == "--help" || a == "-h") {
      usage(std::cout);
      return 0;
    } else {
      std::cerr << "graph-emulator: unknown option '" << a << "'\n";
      usage(std::cerr);
      return 2;
    }
  }
  auto colon = listen.rfind(':');
  if (listen.empty() || colon == std::string::npos) {
    std::cerr << "graph-emulator: --listen HOST:PORT is required\n";
    usage(std::cerr);
    return 2;
  }
  auto lvl = parse_log_level(level);
  if (!lvl) {
    std::cerr << "graph-emulator: bad --log-level '" << level << "'\n";
    return 2;
  }
  try {
    Logging logging(LogFormat::text, *lvl);
    net::ServerOptions so;
    so.host = listen.substr(0, colon);
    if (so.host.size() > 2 && so.host.front() == '[') so.host = so.host.substr(1, so.host.size() - 2);
    so.port = static_cast<std::uint16_t>(std::atoi(listen.c_str() + colon + 1));
    so.body_limit = 251ull << 20;  // simple drive uploads (250 MiB, refused by the route above that), MIME, batches
    so.server_name = "graph-emulator";
    if (!tls_dir.empty()) {
      auto tls = emulator::ensure_tls(tls_dir);
      so.tls_cert_file = tls.server_cert;
      so.tls_key_file = tls.server_key;
    }
    emulator::Emulator emu({state_dir}, logging.get("emulator"));
    boost::asio::io_context ioc;
    net::HttpServer server(ioc, so, emu.handler(), logging.get("http"), nullptr);
    server.start();
    std::string host = so.host.find(':') != std::string::npos ? "[" + so.host + "]" : so.host;
    std::string url = std::string(tls_dir.empty() ? "http" : "https") + "://" + host + ":" + std::to_string(server.port());
    emu.set_base_url(url);
    boost::asio::signal_set signals(ioc, SIGTERM, SIGINT);
    signals.async_wait([&](auto, int) {
      server.stop(std::chrono::seconds(2), [&] { ioc.stop(); });
    });
    std::printf("listening on %s\n", url.c_str());
    std::fflush(stdout);
    std::vector<std::thread> pool;
    for (int i = 1; i < threads; ++i) pool.emplace_back([&] { ioc.run(); });
    ioc.run();
    for (auto& t : pool) t.join();
    return 0;
  } catch (const Error& e) {
    std::cerr << "graph-emulator: " << e.what() << "\n";
    return e.code() == Errc::invalid_config ? 2 : 1;
  } catch (const std::exception& e) {
    std::cerr << "graph-emulator: " << e.what() << "\n";
    return 1;
  }
}
