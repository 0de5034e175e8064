#pragma once
// Request and response as handlers see them: plain data, no Beast types, so that
// route code compiles quickly and can be unit-tested without a socket.
#include <boost/asio/awaitable.hpp>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "m365vault/core/error.hpp"

namespace m365vault::net {

// Header fields in arrival order; names compare case-insensitively.
class Headers {
 public:
  std::optional<std::string_view> get(std::string_view name) const;
  void set(std::string name, std::string value);  // replaces every field of that name
  void add(std::string name, std::string value);
  const std::vector<std::pair<std::string, std::string>>& all() const { return fields_; }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

struct Request {
  std::string method;  // "GET", ...
  std::string target;  // as sent: path and query
  std::string path;    // percent-decoded path
  std::string query;   // raw query, without '?'
  Headers headers;
  std::string body;
  std::string remote;      // peer address
  std::string request_id;  // X-Request-Id as received (when sane) or generated
  // Filled by the router: the matched template ("/api/v1/runs/{id}") and its parameters.
  std::string route;
  std::map<std::string, std::string> params;

  // The first value of a query parameter, percent-decoded; nullopt when absent.
  std::optional<std::string> query_param(std::string_view name) const;
};

// Receives a streamed body; write() suspends until the bytes are on the wire.
class BodySink {
 public:
  virtual ~BodySink() = default;
  virtual boost::asio::awaitable<void> write(std::string_view bytes) = 0;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;
  // A streamed body, produced while it is sent (downloads, exports). When set,
  // `body` is ignored; with content_length the length is announced, otherwise the
  // response is sent chunked.
  std::function<boost::asio::awaitable<void>(BodySink&)> stream;
  std::optional<std::uint64_t> content_length;

  static Response json(int status, const nlohmann::json& body);
  static Response text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
  // application/problem+json for a registered error code.
  static Response problem(Errc code, std::string_view detail, std::string_view request_id);
};

using Handler = std::function<boost::asio::awaitable<Response>(Request&)>;

// A fresh random request id (32 hex digits).
std::string new_request_id();
// Percent-decodes s; '+' stays '+' unless plus_is_space. Returns nullopt on a bad escape.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space = false);

}  // namespace m365vault::net
