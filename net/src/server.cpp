#include "m365vault/net/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <optional>

namespace m365vault::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::use_awaitable;
constexpr auto kTuple = asio::as_tuple(use_awaitable);

namespace {

const std::vector<double> kLatencyBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                            0.1,    0.25,  0.5,    1,     2.5,  5,     10};

// An X-Request-Id from the client is kept when it is short and printable.
bool sane_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (unsigned char c : id)
    if (c < 0x21 || c > 0x7e) return false;
  return true;
}

bool is_disconnect(const boost::system::error_code& ec) {
  return ec == beast::error::timeout || ec == asio::error::eof || ec == http::error::end_of_stream ||
         ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
         ec == asio::error::broken_pipe || ec == asio::error::bad_descriptor ||
         ec == asio::ssl::error::stream_truncated || ec == http::error::partial_message;
}

// Per connection, shared between the session coroutine and HttpServer::stop().
// Every member is touched only on the connection's strand, except busy.
struct SessionCtl {
  asio::any_io_executor strand;
  std::function<void()> close;  // set while the session runs
  std::atomic<bool> busy{false};
};

template <class Stream>
tcp::socket& lowest_socket(Stream& s) {
  return beast::get_lowest_layer(s).socket();
}

}  // namespace

struct ServerImpl : std::enable_shared_from_this<ServerImpl> {
  ServerImpl(asio::io_context& io, ServerOptions o, Handler h, std::shared_ptr<spdlog::logger> l, MetricsRegistry* m)
      : ioc(io), opts(std::move(o)), handler(std::move(h)), log(std::move(l)), metrics(m),
        strand(asio::make_strand(io)), acceptor(strand) {}

  asio::io_context& ioc;
  ServerOptions opts;
  Handler handler;
  std::shared_ptr<spdlog::logger> log;
  MetricsRegistry* metrics;
  asio::strand<asio::io_context::executor_type> strand;  // acceptor, stop, timers
  tcp::acceptor acceptor;
  std::optional<asio::ssl::context> ssl;
  std::atomic<bool> stopping{false};
  std::uint16_t bound_port = 0;

  mutable std::mutex mu;
  std::map<std::uint64_t, std::shared_ptr<SessionCtl>> sessions;
  std::uint64_t next_id = 0;
  std::function<void()> on_drained;
  std::optional<asio::steady_timer> grace_timer;

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> run_session(tcp::socket sock, std::shared_ptr<SessionCtl> ctl, std::string remote);
  template <class Stream>
  asio::awaitable<void> serve(Stream& stream, SessionCtl& ctl, const std::string& remote);
  template <class Stream>
  asio::awaitable<bool> write_response(Stream& stream, Request& req, Response& res, bool keep_alive,
                                       std::uint64_t& bytes);
  void session_ended(std::uint64_t id);
  std::size_t connections_now() const {
    std::lock_guard lk(mu);
    return sessions.size();
  }
  void close_sessions(bool only_idle);
  void record(const Request& req, int status, std::uint64_t bytes, std::chrono::steady_clock::duration took);
};

void ServerImpl::record(const Request& req, int status, std::uint64_t bytes,
                        std::chrono::steady_clock::duration took) {
  double secs = std::chrono::duration<double>(took).count();
  std::string route = req.route.empty() ? "unmatched" : req.route;
  if (metrics) {
    metrics->counter("m365vault_http_requests_total", "HTTP requests by route, method and status",
                     {{"route", route}, {"method", req.method}, {"status", std::to_string(status)}})
        .inc();
    metrics->histogram("m365vault_http_request_duration_seconds", "HTTP request latency by route", kLatencyBounds,
                       {{"route", route}})
        .observe(secs);
  }
  // The path only: query strings may carry pre-authenticated tokens.
  log->info("req={} remote={} \"{} {}\" status={} bytes={} latency_ms={:.2f}", req.request_id, req.remote,
            req.method, req.path, status, bytes, secs * 1000.0);
}

template <class Stream>
asio::awaitable<bool> ServerImpl::write_response(Stream& stream, Request& req, Response& res, bool keep_alive,
                                                 std::uint64_t& bytes) {
  auto& lowest = beast::get_lowest_layer(stream);
  const bool head = req.method == "HEAD";
  auto fill = [&](auto& msg) {
    msg.result(static_cast<unsigned>(res.status));
    msg.version(11);
    for (auto& [k, v] : res.headers.all()) msg.insert(k, v);
    msg.set(http::field::server, opts.server_name);
    msg.set("X-Request-Id", req.request_id);
    msg.keep_alive(keep_alive);
  };
  if (!res.stream || head) {
    if (head) {
      http::response<http::empty_body> msg;
      fill(msg);
      msg.content_length(res.stream ? res.content_length.value_or(0) : res.body.size());
      lowest.expires_after(opts.write_timeout);
      auto [ec, n] = co_await http::async_write(stream, msg, kTuple);
      co_return !ec;
    }
    http::response<http::string_body> msg;
    fill(msg);
    bytes = res.body.size();
    msg.body() = std::move(res.body);
    msg.prepare_payload();
    lowest.expires_after(opts.write_timeout);
    auto [ec, n] = co_await http::async_write(stream, msg, kTuple);
    co_return !ec;
  }

  http::response<http::empty_body> msg;
  fill(msg);
  const bool chunked = !res.content_length;
  if (chunked) msg.chunked(true);
  else msg.content_length(*res.content_length);
  http::response_serializer<http::empty_body> sr{msg};
  lowest.expires_after(opts.write_timeout);
  auto [ec, n] = co_await http::async_write_header(stream, sr, kTuple);
  if (ec) co_return false;

  struct Sink final : BodySink {
    Stream& s;
    std::chrono::milliseconds timeout;
    bool chunked;
    std::uint64_t& count;
    Sink(Stream& st, std::chrono::milliseconds t, bool c, std::uint64_t& n) : s(st), timeout(t), chunked(c), count(n) {}
    asio::awaitable<void> write(std::string_view b) override {
      if (b.empty()) co_return;
      beast::get_lowest_layer(s).expires_after(timeout);
      if (chunked) co_await asio::async_write(s, http::make_chunk(asio::buffer(b.data(), b.size())), use_awaitable);
      else co_await asio::async_write(s, asio::buffer(b.data(), b.size()), use_awaitable);
      count += b.size();
    }
  } sink(stream, opts.write_timeout, chunked, bytes);
  try {
    co_await res.stream(sink);
    if (chunked) {
      lowest.expires_after(opts.write_timeout);
      co_await asio::async_write(stream, http::make_chunk_last(), use_awaitable);
    }
  } catch (const std::exception& e) {
    log->warn("req={} streamed response ended early after {} bytes: {}", req.request_id, bytes, e.what());
    co_return false;  // the client sees a short body; the connection must close
  }
  if (!chunked && bytes != *res.content_length) {
    log->error("req={} streamed {} bytes but announced {}", req.request_id, bytes, *res.content_length);
    co_return false;
  }
  co_return true;
}

template <class Stream>
asio::awaitable<void> ServerImpl::serve(Stream& stream, SessionCtl& ctl, const std::string& remote) {
  auto& lowest = beast::get_lowest_layer(stream);
  beast::flat_buffer buffer;
  for (;;) {
    ctl.busy = false;
    if (stopping) break;
    // Wait for the first byte of the next request under the idle deadline...
    if (buffer.size() == 0) {
      lowest.expires_after(opts.idle_timeout);
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), kTuple);
      if (ec) break;
      buffer.commit(n);
    }
    ctl.busy = true;
    // ...then the whole request under the read deadline.
    auto started = std::chrono::steady_clock::now();
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(opts.header_limit));
    parser.body_limit(opts.body_limit);
    lowest.expires_after(opts.read_timeout);
    auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, kTuple);
    boost::system::error_code ec = hec;
    if (!ec) {
      auto expect = parser.get()[http::field::expect];
      if (beast::iequals(expect, "100-continue") && !parser.is_done()) {
        static const std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(kContinue), kTuple);
        if (wec) break;
      }
      auto [bec, bn] = co_await http::async_read(stream, buffer, parser, kTuple);
      ec = bec;
    }

    Request req;
    req.remote = remote;
    req.request_id = new_request_id();
    if (ec) {
      if (is_disconnect(ec)) break;
      Errc code = Errc::bad_request;
      std::string detail = "malformed HTTP request: " + ec.message();
      if (ec == http::error::header_limit) {
        code = Errc::headers_too_large;
        detail = "request header larger than " + std::to_string(opts.header_limit) + " bytes";
      } else if (ec == http::error::body_limit) {
        code = Errc::payload_too_large;
        detail = "request body larger than " + std::to_string(opts.body_limit) + " bytes";
      }
      if (parser.is_header_done()) {
        req.method = std::string(parser.get().method_string());
        auto t = parser.get().target();
        req.path = std::string(t.substr(0, t.find('?')));
      }
      // The refusal carries the caller's request id too, as every answer does (a
      // Content-Length over the limit stops the parser before the header counts
      // as done, but the fields read so far are there).
      if (auto id = parser.get()["X-Request-Id"]; !id.empty() && sane_request_id(id)) req.request_id = std::string(id);
      Response res = Response::problem(code, detail, req.request_id);
      std::uint64_t bytes = 0;
      co_await write_response(stream, req, res, false, bytes);
      record(req, res.status, bytes, std::chrono::steady_clock::now() - started);
      // Lingering close: the client may still be sending the body we refused.
      // Closing now would reset the connection and it would never read our
      // answer; stop sending and swallow its input for a moment first.
      boost::system::error_code sec;
      lowest.socket().shutdown(tcp::socket::shutdown_send, sec);
      std::size_t swallowed = 0;
      beast::flat_buffer sink;
      while (swallowed < 8 * 1024 * 1024) {
        lowest.expires_after(std::chrono::seconds(1));
        auto [rec, rn] = co_await lowest.async_read_some(sink.prepare(64 * 1024), kTuple);
        if (rec) break;
        swallowed += rn;
      }
      break;
    }

    auto& hreq = parser.get();
    req.method = std::string(hreq.method_string());
    req.target = std::string(hreq.target());
    auto qpos = req.target.find('?');
    auto raw_path = std::string_view(req.target).substr(0, qpos);
    if (qpos != std::string::npos) req.query = req.target.substr(qpos + 1);
    for (auto& f : hreq) req.headers.add(std::string(f.name_string()), std::string(f.value()));
    if (auto id = req.headers.get("X-Request-Id"); id && sane_request_id(*id)) req.request_id = std::string(*id);
    req.body = std::move(hreq.body());
    bool close_after = false;

    Response res;
    auto decoded = percent_decode(raw_path);
    if (!decoded || raw_path.empty() || raw_path.front() != '/') {
      req.path = std::string(raw_path);
      res = Response::problem(Errc::bad_request, "request target is not a valid absolute path", req.request_id);
      close_after = true;
    } else {
      req.path = std::move(*decoded);
      try {
        res = co_await handler(req);
      } catch (const Error& e) {
        if (info(e.code()).http_status >= 500) log->error("req={} {}", req.request_id, e.what());
        res = Response::problem(e.code(), e.what(), req.request_id);
      } catch (const std::exception& e) {
        log->error("req={} unhandled: {}", req.request_id, e.what());
        res = Response::problem(Errc::internal, "internal error (see the server log for request id)",
                                req.request_id);
      }
    }
    const bool keep_alive = hreq.keep_alive() && !stopping && !close_after;
    std::uint64_t bytes = 0;
    bool ok = co_await write_response(stream, req, res, keep_alive, bytes);
    record(req, res.status, bytes, std::chrono::steady_clock::now() - started);
    if (!ok || !keep_alive) break;
  }
  ctl.busy = false;
}

asio::awaitable<void> ServerImpl::run_session(tcp::socket sock, std::shared_ptr<SessionCtl> ctl, std::string remote) {
  beast::tcp_stream plain(std::move(sock));
  if (!ssl) {
    ctl->close = [&plain] {
      boost::system::error_code ec;
      plain.socket().shutdown(tcp::socket::shutdown_both, ec);
      plain.socket().close(ec);
    };
    co_await serve(plain, *ctl, remote);
    boost::system::error_code ec;
    plain.socket().shutdown(tcp::socket::shutdown_send, ec);
    ctl->close = nullptr;
    co_return;
  }
  beast::ssl_stream<beast::tcp_stream> tls(std::move(plain), *ssl);
  ctl->close = [&tls] {
    boost::system::error_code ec;
    lowest_socket(tls).shutdown(tcp::socket::shutdown_both, ec);
    lowest_socket(tls).close(ec);
  };
  beast::get_lowest_layer(tls).expires_after(opts.read_timeout);
  auto [ec] = co_await tls.async_handshake(asio::ssl::stream_base::server, kTuple);
  if (!ec) {
    co_await serve(tls, *ctl, remote);
    beast::get_lowest_layer(tls).expires_after(std::chrono::seconds(2));
    co_await tls.async_shutdown(kTuple);
  } else {
    log->debug("remote={} TLS handshake failed: {}", remote, ec.message());
  }
  ctl->close = nullptr;
}

void ServerImpl::session_ended(std::uint64_t id) {
  std::function<void()> done;
  {
    std::lock_guard lk(mu);
    sessions.erase(id);
    if (stopping && sessions.empty() && on_drained) done = std::exchange(on_drained, nullptr);
  }
  if (done) {
    asio::post(strand, [self = shared_from_this(), done] {
      if (self->grace_timer) self->grace_timer->cancel();
      done();
    });
  }
}

void ServerImpl::close_sessions(bool only_idle) {
  std::lock_guard lk(mu);
  for (auto& [id, ctl] : sessions) {
    asio::post(ctl->strand, [ctl, only_idle] {
      if ((!only_idle || !ctl->busy) && ctl->close) ctl->close();
    });
  }
}

asio::awaitable<void> ServerImpl::accept_loop() {
  auto self = shared_from_this();
  static const std::string kOverloaded =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\nConnection: close\r\n"
      "Retry-After: 1\r\nContent-Length: 125\r\n\r\n"
      "{\"type\":\"https://m365vault.dev/problems/overloaded\",\"title\":\"Server overloaded\",\"status\":503,"
      "\"code\":\"overloaded\"}";
  while (!stopping) {
    auto [ec, sock] = co_await acceptor.async_accept(asio::make_strand(ioc), kTuple);
    if (stopping) break;
    if (ec) {
      log->warn("accept: {}", ec.message());
      // Out of file descriptors and the like: do not spin.
      asio::steady_timer t(strand, std::chrono::milliseconds(50));
      co_await t.async_wait(kTuple);
      continue;
    }
    boost::system::error_code rec;
    auto ep = sock.remote_endpoint(rec);
    std::string remote = rec ? "?" : ep.address().to_string();
    sock.set_option(tcp::no_delay(true), rec);

    auto ctl = std::make_shared<SessionCtl>();
    ctl->strand = sock.get_executor();
    std::uint64_t id;
    bool over;
    {
      std::lock_guard lk(mu);
      over = sessions.size() >= opts.max_connections;
      id = ++next_id;
      if (!over) sessions.emplace(id, ctl);
    }
    if (metrics) metrics->counter("m365vault_http_connections_total", "TCP connections accepted").inc();
    if (over) {
      if (metrics) metrics->counter("m365vault_http_connections_rejected_total", "connections refused at the cap").inc();
      auto s = std::make_shared<tcp::socket>(std::move(sock));
      if (!ssl) {
        asio::async_write(*s, asio::buffer(kOverloaded), [s](auto, auto) {
          boost::system::error_code e;
          s->shutdown(tcp::socket::shutdown_both, e);
        });
      }
      continue;
    }
    asio::co_spawn(ctl->strand, run_session(std::move(sock), ctl, std::move(remote)),
                   [self, id](std::exception_ptr e) {
                     if (e) {
                       try {
                         std::rethrow_exception(e);
                       } catch (const std::exception& ex) {
                         self->log->error("connection ended by an error: {}", ex.what());
                       }
                     }
                     self->session_ended(id);
                   });
  }
}

HttpServer::HttpServer(asio::io_context& ioc, ServerOptions opts, Handler handler, std::shared_ptr<spdlog::logger> log,
                       MetricsRegistry* metrics)
    : impl_(std::make_shared<ServerImpl>(ioc, std::move(opts), std::move(handler), std::move(log), metrics)) {}

HttpServer::~HttpServer() = default;

void HttpServer::start() {
  auto& o = impl_->opts;
  if (!o.tls_cert_file.empty() || !o.tls_key_file.empty()) {
    try {
      impl_->ssl.emplace(asio::ssl::context::tls_server);
      impl_->ssl->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                              asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                              asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
      impl_->ssl->use_certificate_chain_file(o.tls_cert_file);
      impl_->ssl->use_private_key_file(o.tls_key_file, asio::ssl::context::pem);
    } catch (const std::exception& e) {
      throw Error(Errc::invalid_config, "config key 'server.tls_cert': cannot load '" + o.tls_cert_file + "' / '" +
                                            o.tls_key_file + "': " + e.what());
    }
  }
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(o.host, ec);
  if (ec) throw Error(Errc::invalid_config, "config key 'server.listen': bad address '" + o.host + "'");
  tcp::endpoint ep(addr, o.port);
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw Error(Errc::invalid_config, "config key 'server.listen': cannot listen on '" + o.host + ":" +
                                          std::to_string(o.port) + "': " + ec.message());
  impl_->bound_port = a.local_endpoint().port();
  auto impl = impl_;
  asio::co_spawn(impl_->strand, impl_->accept_loop(), [impl](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        impl->log->critical("accept loop ended: {}", ex.what());
      }
    }
  });
}

std::uint16_t HttpServer::port() const { return impl_->bound_port; }

std::size_t HttpServer::connections() const {
  return impl_->connections_now();
}

void HttpServer::stop(std::chrono::milliseconds grace, std::function<void()> done) {
  auto impl = impl_;
  asio::post(impl->strand, [impl, grace, done = std::move(done)]() mutable {
    impl->stopping = true;
    boost::system::error_code ec;
    impl->acceptor.close(ec);
    bool empty;
    {
      std::lock_guard lk(impl->mu);
      empty = impl->sessions.empty();
      if (!empty) impl->on_drained = std::move(done);
    }
    if (empty) {
      if (done) done();
      return;
    }
    impl->close_sessions(true);
    impl->grace_timer.emplace(impl->strand, grace);
    impl->grace_timer->async_wait([impl](boost::system::error_code e) {
      if (e) return;
      impl->log->warn("shutdown grace period over: closing {} connection(s) still busy", impl->connections_now());
      impl->close_sessions(false);
    });
  });
}

}  // namespace m365vault::net
