#pragma once
// A small blocking HTTP/1.1 client for tests (plain or TLS), one connection per
// request unless a Connection is reused explicitly.
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace m365vault::test {

struct HttpResult {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& lower_name) const;
};

struct HttpRequest {
  std::string method = "GET";
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  std::string target = "/";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds timeout{10'000};
  bool tls = false;
  std::string ca_file;  // TLS: trust this CA (peer verification on when set)
};

// Throws std::runtime_error on connection failure or timeout.
HttpResult http_request(const HttpRequest& req);

// GET http://127.0.0.1:port/target; returns status 0 when nothing answered.
HttpResult http_get(unsigned short port, const std::string& target,
                    std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

// Polls GET until it returns `status` or `within` passes; returns the last result.
HttpResult wait_for_status(unsigned short port, const std::string& target, int status,
                           std::chrono::milliseconds within);

// A free TCP port on 127.0.0.1 (bound and released; race-prone but fine for tests).
unsigned short free_port();

}  // namespace m365vault::test
