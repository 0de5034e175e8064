#include "m365vault/net/client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>

#include <cstring>
#include <deque>
#include <map>
#include <mutex>

#include "m365vault/core/error.hpp"

namespace m365vault::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::use_awaitable;
constexpr auto kTuple = asio::as_tuple(use_awaitable);

namespace {

struct Target {
  bool tls = false;
  std::string host;      // without brackets
  std::string port;
  std::string target;    // path and query
  std::string origin;    // scheme://host:port, the pool key
  std::string redacted;  // scheme://host/path, for messages (no query: it may hold a token)
};

bool is_loopback(const std::string& host) {
  if (host == "localhost") return true;
  boost::system::error_code ec;
  auto a = asio::ip::make_address(host, ec);
  return !ec && a.is_loopback();
}

Target parse_target(const std::string& url, const ClientOptions& o) {
  auto u = boost::urls::parse_absolute_uri(url);
  if (!u) throw Error(Errc::bad_request, "url '" + url.substr(0, url.find('?')) + "': not an absolute URL");
  Target t;
  auto scheme = std::string(u->scheme());
  if (scheme == "https") t.tls = true;
  else if (scheme != "http")
    throw Error(Errc::bad_request, "url '" + url.substr(0, url.find('?')) + "': scheme '" + scheme + "' (use https)");
  t.host = std::string(u->host_address());
  if (t.host.empty()) throw Error(Errc::bad_request, "url '" + url.substr(0, url.find('?')) + "': no host");
  t.port = u->has_port() ? std::string(u->port()) : (t.tls ? "443" : "80");
  if (!t.tls && !o.allow_plain_http && !is_loopback(t.host))
    throw Error(Errc::bad_request, "url '" + url.substr(0, url.find('?')) +
                                       "': plain http is only allowed to loopback hosts (use https)");
  t.target = std::string(u->encoded_path());
  if (t.target.empty()) t.target = "/";
  if (u->has_query()) t.target += "?" + std::string(u->encoded_query());
  t.origin = scheme + "://" + t.host + ":" + t.port;
  t.redacted = scheme + "://" + std::string(u->encoded_host_and_port()) + std::string(u->encoded_path());
  return t;
}

struct Conn {
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  // Where bodies are read to, kept with the connection: a fresh buffer per
  // request was a large share of a small download's allocation cost. A body with
  // a Content-Length is read straight into it from the stream, up to its size a
  // read (one hand-over per 256 KiB rather than per 64 KiB, and no copy out of a
  // parser's buffer).
  static constexpr std::size_t kBodyChunk = 256 * 1024;
  std::unique_ptr<char[]> body;
  char* body_buffer() {
    if (!body) body = std::make_unique_for_overwrite<char[]>(kBodyChunk);
    return body.get();
  }
  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
};

bool stale_connection_error(const boost::system::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::ssl::error::stream_truncated;
}

}  // namespace

struct ClientImpl {
  asio::any_io_executor ex;
  ClientOptions opts;
  asio::ssl::context ssl{asio::ssl::context::tls_client};
  mutable std::mutex mu;
  std::map<std::string, std::deque<std::unique_ptr<Conn>>> idle;

  ClientImpl(asio::any_io_executor e, ClientOptions o) : ex(std::move(e)), opts(std::move(o)) {
    ssl.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                    asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    if (!opts.ca_file.empty()) ssl.load_verify_file(opts.ca_file, ec);
    else ssl.set_default_verify_paths(ec);
    if (ec)
      throw Error(Errc::invalid_config, "CA file '" + opts.ca_file + "': cannot load: " + ec.message());
    ssl.set_verify_mode(asio::ssl::verify_peer);
  }

  std::unique_ptr<Conn> take_idle(const std::string& origin) {
    std::lock_guard lk(mu);
    auto it = idle.find(origin);
    if (it == idle.end() || it->second.empty()) return nullptr;
    auto c = std::move(it->second.back());
    it->second.pop_back();
    return c;
  }

  void give_back(const std::string& origin, std::unique_ptr<Conn> c) {
    std::lock_guard lk(mu);
    auto& q = idle[origin];
    if (q.size() >= opts.max_idle_per_host) q.pop_front();
    q.push_back(std::move(c));
  }

  asio::awaitable<std::unique_ptr<Conn>> connect(const Target& t, const std::string& what) {
    using namespace asio::experimental::awaitable_operators;
    tcp::resolver resolver(ex);
    asio::steady_timer timer(ex, opts.connect_timeout);
    auto raced = co_await (resolver.async_resolve(t.host, t.port, kTuple) || timer.async_wait(kTuple));
    if (raced.index() == 1) throw Error(Errc::timeout, what + ": name not resolved within " + std::to_string(opts.connect_timeout.count()) + " ms");
    auto [rec, endpoints] = std::get<0>(raced);
    if (rec) throw Error(Errc::unavailable, what + ": cannot resolve '" + t.host + "': " + rec.message());

    auto c = std::make_unique<Conn>();
    beast::tcp_stream stream(ex);
    stream.expires_after(opts.connect_timeout);
    auto [cec, ep] = co_await stream.async_connect(endpoints, kTuple);
    if (cec == beast::error::timeout)
      throw Error(Errc::timeout, what + ": no connection within " + std::to_string(opts.connect_timeout.count()) + " ms");
    if (cec) throw Error(Errc::unavailable, what + ": cannot connect: " + cec.message());
    boost::system::error_code ig;
    stream.socket().set_option(tcp::no_delay(true), ig);
    if (!t.tls) {
      c->plain = std::make_unique<beast::tcp_stream>(std::move(stream));
      co_return c;
    }
    c->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(std::move(stream), ssl);
    asio::ip::make_address(t.host, ig);
    if (ig)  // a name, not an address literal: send it as SNI
      SSL_set_tlsext_host_name(c->tls->native_handle(), t.host.c_str());
    c->tls->set_verify_callback(asio::ssl::host_name_verification(t.host));
    beast::get_lowest_layer(*c->tls).expires_after(opts.connect_timeout);
    auto [hec] = co_await c->tls->async_handshake(asio::ssl::stream_base::client, kTuple);
    if (hec == beast::error::timeout) throw Error(Errc::timeout, what + ": TLS handshake timed out");
    if (hec) throw Error(Errc::unavailable, what + ": TLS handshake failed: " + hec.message());
    co_return c;
  }

  // One exchange on one connection. Returns whether the connection may be kept
  // alive, or nullopt (nothing received) when a reused connection turned out
  // closed, so that the caller may retry.
  template <class Stream>
  asio::awaitable<std::optional<bool>> exchange(Stream& s, Conn& c, const Target& t, const ClientRequest& req, ClientResponse& out,
                                 const BodyChunkFn* on_chunk, const HeadFn* on_head, const std::string& what,
                                 bool reused) {
    auto verb = http::string_to_verb(req.method);
    if (verb == http::verb::unknown) throw Error(Errc::bad_request, what + ": unknown method");
    // The body is a view of the caller's, which outlives the exchange: an upload
    // fragment (up to 10 MiB) is not copied into every request sent.
    http::request<http::span_body<const char>> r{verb, t.target, 11};
    bool default_port = (t.tls && t.port == "443") || (!t.tls && t.port == "80");
    std::string host = t.host.find(':') != std::string::npos ? "[" + t.host + "]" : t.host;
    r.set(http::field::host, default_port ? host : host + ":" + t.port);
    r.set(http::field::user_agent, opts.user_agent);
    for (auto& [k, v] : req.headers.all()) r.set(k, v);
    r.body() = boost::span<const char>(req.body.data(), req.body.size());
    if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "PATCH") r.prepare_payload();
    r.keep_alive(true);

    c.lowest().expires_after(opts.io_timeout);
    auto [wec, wn] = co_await http::async_write(s, r, kTuple);
    if (wec) {
      if (reused && stale_connection_error(wec)) co_return std::nullopt;
      if (wec == beast::error::timeout) throw Error(Errc::timeout, what + ": request not sent within " + std::to_string(opts.io_timeout.count()) + " ms");
      throw Error(Errc::unavailable, what + ": sending failed: " + wec.message());
    }
    http::response_parser<http::buffer_body> p;
    p.body_limit(boost::none);
    if (req.method == "HEAD") p.skip(true);
    c.lowest().expires_after(opts.io_timeout);
    auto [hec, hn] = co_await http::async_read_header(s, c.buffer, p, kTuple);
    if (hec) {
      if (reused && stale_connection_error(hec) && c.buffer.size() == 0) co_return std::nullopt;
      if (hec == beast::error::timeout) throw Error(Errc::timeout, what + ": no answer within " + std::to_string(opts.io_timeout.count()) + " ms");
      throw Error(Errc::unavailable, what + ": reading the answer failed: " + hec.message());
    }
    out.status = static_cast<int>(p.get().result_int());
    for (auto& f : p.get()) out.headers.add(std::string(f.name_string()), std::string(f.value()));
    if (on_head && *on_head) (*on_head)(out.status, out.headers);
    static constexpr std::size_t kChunk = Conn::kBodyChunk;
    char* const buf = c.body_buffer();
    // Hands `got` bytes of body over, or keeps them (capped) when not streamed.
    auto take = [&](std::string_view bytes) -> asio::awaitable<void> {
      if (bytes.empty()) co_return;
      if (on_chunk) {
        co_await (*on_chunk)(bytes);
        co_return;
      }
      if (out.body.size() + bytes.size() > opts.max_body)
        throw Error(Errc::payload_too_large, what + ": response body larger than " + std::to_string(opts.max_body) + " bytes");
      out.body.append(bytes);
    };
    auto fail = [&](const boost::system::error_code& ec) -> Error {
      if (ec == beast::error::timeout) return Error(Errc::timeout, what + ": body stalled for " + std::to_string(opts.io_timeout.count()) + " ms");
      return Error(Errc::unavailable, what + ": body cut short: " + ec.message());
    };
    if (!p.is_done() && !p.chunked() && p.content_length()) {
      // Content-Length: what the header read buffered past the header first, then
      // the rest from the stream itself. Bytes that arrived before the connection
      // failed are delivered too: a caller resuming with Range starts right after.
      std::uint64_t left = *p.content_length();
      const std::size_t early = static_cast<std::size_t>(std::min<std::uint64_t>(left, c.buffer.size()));
      if (early) {
        std::memcpy(buf, c.buffer.data().data(), early);
        c.buffer.consume(early);
        left -= early;
        const std::string_view first(buf, early);
        co_await take(first);
      }
      while (left > 0) {
        const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, kChunk));
        c.lowest().expires_after(opts.io_timeout);
        auto [ec, n] = co_await asio::async_read(s, asio::buffer(buf, want), kTuple);
        left -= n;
        const std::string_view got(buf, n);
        co_await take(got);
        if (ec) throw fail(ec);
      }
      // Bytes past the body (none from a sane server) would be read as the next
      // answer: such a connection is not kept.
      co_return p.get().keep_alive() && c.buffer.size() == 0;
    }
    while (!p.is_done()) {
      p.get().body().data = buf;
      p.get().body().size = kChunk;
      c.lowest().expires_after(opts.io_timeout);
      auto [ec, n] = co_await http::async_read(s, c.buffer, p, kTuple);
      if (ec == http::error::need_buffer) ec = {};
      // Bytes that arrived before the connection failed are delivered too.
      const std::string_view got(buf, kChunk - p.get().body().size);
      co_await take(got);
      if (ec) throw fail(ec);
    }
    co_return p.get().keep_alive();
  }

  asio::awaitable<ClientResponse> run(ClientRequest req, const BodyChunkFn* on_chunk, const HeadFn* on_head) {
    auto t = parse_target(req.url, opts);
    const std::string what = req.method + " " + t.redacted;
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto conn = attempt == 0 ? take_idle(t.origin) : nullptr;
      const bool reused = conn != nullptr;
      if (!conn) conn = co_await connect(t, what);
      ClientResponse out;
      auto keep = conn->tls ? co_await exchange(*conn->tls, *conn, t, req, out, on_chunk, on_head, what, reused)
                            : co_await exchange(*conn->plain, *conn, t, req, out, on_chunk, on_head, what, reused);
      if (!keep) continue;  // a pooled connection the server had closed: once more on a new one
      if (*keep) give_back(t.origin, std::move(conn));
      co_return out;
    }
    throw Error(Errc::unavailable, what + ": the server closed the connection twice");
  }
};

HttpClient::HttpClient(asio::any_io_executor ex, ClientOptions opts)
    : impl_(std::make_shared<ClientImpl>(std::move(ex), std::move(opts))) {}

HttpClient::~HttpClient() = default;

asio::awaitable<ClientResponse> HttpClient::request(ClientRequest req) {
  auto impl = impl_;
  co_return co_await impl->run(std::move(req), nullptr, nullptr);
}

asio::awaitable<ClientResponse> HttpClient::request_streamed(ClientRequest req, BodyChunkFn on_chunk, HeadFn on_head) {
  auto impl = impl_;
  co_return co_await impl->run(std::move(req), &on_chunk, &on_head);
}

std::size_t HttpClient::idle_connections() const {
  std::lock_guard lk(impl_->mu);
  std::size_t n = 0;
  for (auto& [_, q] : impl_->idle) n += q.size();
  return n;
}

}  // namespace m365vault::net
