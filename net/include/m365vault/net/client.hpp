#pragma once
// An HTTP/1.1 client (Boost.Beast, coroutines) for the service's outbound calls:
// Microsoft Graph and the identity platform, webhooks, object stores. HTTPS
// verifies the peer and its host name against the system CAs or a CA file;
// plain http:// is refused except to loopback hosts unless allowed. Idle
// keep-alive connections are pooled per (scheme, host, port). Every connect,
// write and read has a deadline. Redirects are not followed: callers decide
// (Graph download URLs must be fetched without the Authorization header).
// Beast stays inside client.cpp.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "m365vault/net/http.hpp"

namespace m365vault::net {

struct ClientOptions {
  std::string ca_file;                              // PEM bundle to trust instead of the system CAs
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds io_timeout{60'000};     // longest wait for any single write or read
  std::size_t max_idle_per_host = 8;
  std::size_t max_body = 64 * 1024 * 1024;          // bodies read into memory; larger: Errc::payload_too_large
  bool allow_plain_http = false;                    // http:// to non-loopback hosts
  std::string user_agent = "m365vault";
};

struct ClientRequest {
  std::string method = "GET";
  std::string url;  // absolute http:// or https:// URL
  Headers headers;
  std::string body;
};

struct ClientResponse {
  int status = 0;
  Headers headers;
  std::string body;  // empty for streamed requests
};

// Called with each piece of a streamed body, in order.
using BodyChunkFn = std::function<boost::asio::awaitable<void>(std::string_view)>;
// Called once with the status and headers of a streamed response, before the
// first piece of its body (so that an error body can be told from content).
using HeadFn = std::function<void(int status, const Headers& headers)>;

class HttpClient {
 public:
  HttpClient(boost::asio::any_io_executor ex, ClientOptions opts);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends the request and reads the whole response. Throws Error with
  // Errc::bad_request (bad URL, refused scheme), Errc::unavailable (cannot
  // connect, TLS or peer verification failed, connection lost), Errc::timeout
  // (a deadline passed) or Errc::payload_too_large (body over max_body).
  // A pooled connection the server had closed is retried once on a new one.
  // Thread-safe; many requests may run at once.
  boost::asio::awaitable<ClientResponse> request(ClientRequest req);

  // The same, but hands the body to `on_chunk` as it arrives (bounded memory,
  // any size); the returned response has an empty body. `on_head`, when given,
  // sees the status and headers first.
  boost::asio::awaitable<ClientResponse> request_streamed(ClientRequest req, BodyChunkFn on_chunk,
                                                          HeadFn on_head = {});

  // Idle pooled connections (for tests and metrics).
  std::size_t idle_connections() const;

 private:
  std::shared_ptr<struct ClientImpl> impl_;
};

}  // namespace m365vault::net
