#pragma once
// An HTTP/1.1 server (Boost.Beast, coroutines, one strand per connection) with
// limits on header and body size, read/write/idle deadlines and a connection cap,
// optional TLS, one access-log line and request metrics per request, and a
// graceful stop. Beast stays inside server.cpp.
#include <boost/asio/io_context.hpp>
#include <spdlog/logger.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "m365vault/core/metrics.hpp"
#include "m365vault/net/http.hpp"

namespace m365vault::net {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0: any free port (see HttpServer::port())
  std::string tls_cert_file;  // PEM chain; TLS when both files are set
  std::string tls_key_file;
  std::size_t header_limit = 16 * 1024;
  std::size_t body_limit = 1024 * 1024;
  std::chrono::milliseconds read_timeout{30'000};   // a whole request, once its first byte came
  std::chrono::milliseconds write_timeout{30'000};  // each write of a response
  std::chrono::milliseconds idle_timeout{60'000};   // keep-alive wait for the next request
  std::size_t max_connections = 1024;
  std::string server_name = "m365vault";
};

class HttpServer {
 public:
  // `metrics` may be null. The handler may be called concurrently on the
  // io_context's threads (one call at a time per connection).
  HttpServer(boost::asio::io_context& ioc, ServerOptions opts, Handler handler,
             std::shared_ptr<spdlog::logger> log, MetricsRegistry* metrics);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts accepting. Throws Error(Errc::invalid_config) when the address
  // cannot be bound or the TLS files cannot be loaded.
  void start();
  // The bound port (useful with port 0).
  std::uint16_t port() const;
  // Stops accepting, closes idle connections, lets requests in flight finish for up
  // to `grace`, then closes the rest; calls `done` (on an io_context thread) when no
  // connection is left.
  void stop(std::chrono::milliseconds grace, std::function<void()> done);
  std::size_t connections() const;

 private:
  std::shared_ptr<struct ServerImpl> impl_;
};

}  // namespace m365vault::net
