#include "support/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <cctype>
#include <stdexcept>
#include <thread>

namespace m365vault::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string HttpResult::header(const std::string& n) const {
  auto it = headers.find(n);
  return it == headers.end() ? std::string() : it->second;
}

namespace {
template <class Stream>
HttpResult exchange(Stream& s, const HttpRequest& r, beast::tcp_stream& lowest) {
  http::request<http::string_body> req{http::string_to_verb(r.method), r.target, 11};
  req.set(http::field::host, r.host);
  for (auto& [k, v] : r.headers) req.set(k, v);
  req.body() = r.body;
  if (!r.body.empty() || r.method == "POST" || r.method == "PUT" || r.method == "PATCH") req.prepare_payload();
  lowest.expires_after(r.timeout);
  http::write(s, req);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> p;
  p.body_limit(1ull << 32);
  if (r.method == "HEAD") p.skip(true);
  http::read(s, buf, p);
  HttpResult out;
  auto& res = p.get();
  out.status = static_cast<int>(res.result_int());
  for (auto& f : res) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(f.value());
  }
  out.body = std::move(res.body());
  return out;
}
}  // namespace

HttpResult http_request(const HttpRequest& r) {
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  stream.expires_after(r.timeout);
  stream.connect(resolver.resolve(r.host, std::to_string(r.port)));
  if (!r.tls) {
    auto out = exchange(stream, r, stream);
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    return out;
  }
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  if (!r.ca_file.empty()) {
    ctx.load_verify_file(r.ca_file);
    ctx.set_verify_mode(asio::ssl::verify_peer);
  }
  beast::ssl_stream<beast::tcp_stream> tls(std::move(stream), ctx);
  SSL_set_tlsext_host_name(tls.native_handle(), r.host.c_str());
  if (!r.ca_file.empty()) tls.set_verify_callback(asio::ssl::host_name_verification(r.host));
  tls.handshake(asio::ssl::stream_base::client);
  return exchange(tls, r, beast::get_lowest_layer(tls));
}

HttpResult http_get(unsigned short port, const std::string& target, std::chrono::milliseconds timeout) {
  HttpRequest r;
  r.port = port;
  r.target = target;
  r.timeout = timeout;
  try {
    return http_request(r);
  } catch (const std::exception&) {
    return {};
  }
}

HttpResult wait_for_status(unsigned short port, const std::string& target, int status,
                           std::chrono::milliseconds within) {
  auto deadline = std::chrono::steady_clock::now() + within;
  HttpResult last;
  for (;;) {
    last = http_get(port, target, std::chrono::milliseconds(3000));
    if (last.status == status || std::chrono::steady_clock::now() >= deadline) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

unsigned short free_port() {
  asio::io_context ioc;
  tcp::acceptor a(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

}  // namespace m365vault::test
