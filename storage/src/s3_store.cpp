// S3Store over Beast. Calls are blocking: each request takes an idle connection
// from a small pool (or opens one), drives its own io_context on the calling
// thread, and gives the connection back when the server keeps it alive. That keeps
// the ObjectStore interface synchronous (callers parallelise with threads) while
// every socket operation still has a deadline through beast::tcp_stream.
#include "m365vault/storage/s3_store.hpp"

#include <openssl/evp.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <limits>
#include <ctime>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "m365vault/core/error.hpp"
#include "m365vault/storage/crypto.hpp"
#include "m365vault/storage/sigv4.hpp"

namespace m365vault::storage {

namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct Endpoint {
  bool tls = false;
  std::string host;
  std::string port;
};

Endpoint parse_endpoint(const std::string& url) {
  Endpoint e;
  std::string_view rest = url;
  if (rest.starts_with("https://")) {
    e.tls = true;
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else {
    throw Error(Errc::invalid_config, "s3 endpoint '" + url + "' must start with http:// or https://");
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.empty() || rest.find('/') != std::string_view::npos)
    throw Error(Errc::invalid_config, "s3 endpoint '" + url + "' must be scheme://host[:port] without a path");
  auto colon = rest.rfind(':');
  if (colon != std::string_view::npos && rest.find(']') == std::string_view::npos) {
    e.host = std::string(rest.substr(0, colon));
    e.port = std::string(rest.substr(colon + 1));
  } else {
    e.host = std::string(rest);
    e.port = e.tls ? "443" : "80";
  }
  if (e.host.empty() || e.port.empty()) throw Error(Errc::invalid_config, "s3 endpoint '" + url + "' has no host");
  return e;
}

struct Conn {
  asio::io_context ioc{1};
  std::unique_ptr<beast::tcp_stream> tcp;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buf;
  bool connected = false;
  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *tcp; }
};

// Runs one coroutine on the connection's io_context until it finishes.
template <class Awaitable>
void run_on(Conn& c, Awaitable a) {
  std::exception_ptr ep;
  asio::co_spawn(c.ioc, std::move(a), [&](std::exception_ptr e) { ep = e; });
  c.ioc.restart();
  c.ioc.run();
  if (ep) std::rethrow_exception(ep);
}

using Request = http::request<http::string_body>;
using Parser = http::response_parser<http::string_body>;

template <class Stream>
asio::awaitable<void> exchange(Stream& s, beast::tcp_stream& low, beast::flat_buffer& buf, Request& req,
                               Parser& p, std::chrono::milliseconds io_timeout) {
  // Deadlines are per step, so a large body fails on a stall, not on its length.
  http::request_serializer<http::string_body> sr(req);
  while (!sr.is_done()) {
    low.expires_after(io_timeout);
    co_await http::async_write_some(s, sr, asio::use_awaitable);
  }
  low.expires_after(io_timeout);
  co_await http::async_read_header(s, buf, p, asio::use_awaitable);
  while (!p.is_done()) {
    low.expires_after(io_timeout);
    co_await http::async_read_some(s, buf, p, asio::use_awaitable);
  }
  low.expires_never();
}

struct HttpRes {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& n) const {
    auto it = headers.find(n);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct HttpReq {
  std::string method;
  std::string key;  // object key relative to the store ("" for the bucket)
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view body;
  bool head = false;
};

std::string xml_unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    static const std::pair<std::string_view, char> kEnt[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    bool done = false;
    for (auto& [ent, ch] : kEnt)
      if (s.substr(i).starts_with(ent)) {
        out += ch;
        i += ent.size() - 1;
        done = true;
        break;
      }
    if (!done) out += '&';
  }
  return out;
}

// The raw inner text of the first <tag>...</tag> at or after pos (entities left
// as they are, for nested elements); advances pos past it.
std::optional<std::string_view> xml_element(std::string_view xml, std::string_view tag, std::size_t& pos) {
  std::string open = "<" + std::string(tag) + ">", close = "</" + std::string(tag) + ">";
  auto a = xml.find(open, pos);
  if (a == std::string_view::npos) return std::nullopt;
  a += open.size();
  auto b = xml.find(close, a);
  if (b == std::string_view::npos) return std::nullopt;
  pos = b + close.size();
  return xml.substr(a, b - a);
}

// The unescaped text of the first <tag>...</tag>, or "".
std::string xml_tag(std::string_view xml, std::string_view tag) {
  std::size_t pos = 0;
  auto v = xml_element(xml, tag, pos);
  return v ? xml_unescape(*v) : std::string();
}

std::string md5_base64(std::string_view data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!EVP_Digest(data.data(), data.size(), d, &n, EVP_md5(), nullptr)) throw Error(Errc::internal, "md5 failed");
  return crypto::base64_encode(std::string_view(reinterpret_cast<char*>(d), n));
}

std::string iso8601(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool retriable(const HttpRes& r) {
  if (r.status >= 500 || r.status == 429) return true;
  if (r.status < 400) return false;  // never scan a successful body for error codes
  // S3 sends these with 400 as well.
  auto code = xml_tag(r.body, "Code");
  return code == "SlowDown" || code == "RequestTimeout" || code == "RequestTimeTooSkewed";
}
}  // namespace

struct S3Store::Impl {
  S3Config cfg;
  std::shared_ptr<spdlog::logger> log;
  Endpoint ep;
  std::string host_header;
  std::unique_ptr<asio::ssl::context> ssl_ctx;
  std::mutex mu;
  std::vector<std::unique_ptr<Conn>> idle;
  std::atomic<std::uint64_t> requests{0}, retries{0};

  std::string describe() const {
    return "s3://" + cfg.bucket + (cfg.prefix.empty() ? "" : "/" + cfg.prefix) + " at " + cfg.endpoint;
  }

  std::string full_key(std::string_view key) const {
    if (cfg.prefix.empty()) return std::string(key);
    return cfg.prefix + "/" + std::string(key);
  }

  std::string path_of(const std::string& full) const {
    std::string p = cfg.path_style ? "/" + cfg.bucket : std::string();
    if (!full.empty() || !cfg.path_style) p += "/" + full;
    return p;
  }

  std::unique_ptr<Conn> take() {
    {
      std::lock_guard lock(mu);
      if (!idle.empty()) {
        auto c = std::move(idle.back());
        idle.pop_back();
        return c;
      }
    }
    return std::make_unique<Conn>();
  }

  void give_back(std::unique_ptr<Conn> c) {
    std::lock_guard lock(mu);
    if (idle.size() < cfg.max_idle_connections) idle.push_back(std::move(c));
  }

  void connect(Conn& c) {
    tcp::resolver resolver(c.ioc);
    // Synchronous resolve: an async one would start a resolver thread per io_context.
    auto results = resolver.resolve(cfg.connect_address.empty() ? ep.host : cfg.connect_address, ep.port);
    if (ep.tls) {
      c.tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(c.ioc, *ssl_ctx);
      std::string sni = cfg.path_style ? ep.host : cfg.bucket + "." + ep.host;
      if (!SSL_set_tlsext_host_name(c.tls->native_handle(), sni.c_str()))
        throw Error(Errc::storage, "s3: cannot set TLS server name '" + sni + "'");
      if (cfg.verify_tls) c.tls->set_verify_callback(asio::ssl::host_name_verification(sni));
    } else {
      c.tcp = std::make_unique<beast::tcp_stream>(c.ioc);
    }
    auto timeout = cfg.connect_timeout;
    run_on(c, [](Conn& c, tcp::resolver::results_type results, std::chrono::milliseconds timeout,
                 bool tls) -> asio::awaitable<void> {
      c.lowest().expires_after(timeout);
      co_await c.lowest().async_connect(results, asio::use_awaitable);
      c.lowest().socket().set_option(tcp::no_delay(true));
      if (tls) co_await c.tls->async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
      c.lowest().expires_never();
    }(c, results, timeout, ep.tls));
    c.connected = true;
  }

  HttpRes exchange_once(Conn& c, const HttpReq& r) {
    std::string full = r.key.empty() ? std::string() : full_key(r.key);
    sigv4::Request sr;
    sr.method = r.method;
    sr.path = path_of(full);
    sr.query = r.query;
    std::string date = sigv4::amz_date(std::chrono::system_clock::now());
    sr.payload_hash = cfg.sign_payload ? sigv4::payload_sha256(r.body) : "UNSIGNED-PAYLOAD";
    sr.headers = {{"host", cfg.path_style ? host_header : cfg.bucket + "." + host_header},
                  {"x-amz-date", date},
                  {"x-amz-content-sha256", sr.payload_hash}};
    if (!cfg.session_token.empty()) sr.headers.emplace_back("x-amz-security-token", cfg.session_token);
    for (auto& h : r.headers) sr.headers.push_back(h);
    auto sig = sigv4::sign(sr, {cfg.access_key, cfg.secret_key, cfg.session_token}, cfg.region, "s3", date, false);

    // The target is encoded exactly as the canonical request encodes it.
    std::string target = sigv4::uri_encode(sr.path, true);
    for (std::size_t i = 0; i < r.query.size(); ++i)
      target += (i ? "&" : "?") + sigv4::uri_encode(r.query[i].first, false) + "=" +
                sigv4::uri_encode(r.query[i].second, false);
    Request req{http::string_to_verb(r.method), target, 11};
    for (auto& [n, v] : sr.headers) req.set(n, v);
    req.set(http::field::authorization, sig.authorization);
    req.set(http::field::user_agent, "m365vault");
    req.keep_alive(true);
    if (r.method == "PUT" || r.method == "POST") {
      req.body().assign(r.body.data(), r.body.size());
      req.content_length(r.body.size());
    }
    Parser p;
    // Objects come back whole (the interface returns them as strings); the caller
    // bounds their size (packs, config), so the parser does not.
    p.body_limit(std::numeric_limits<std::uint64_t>::max());
    p.header_limit(64 * 1024);
    if (r.head) p.skip(true);
    requests++;
    if (c.tls)
      run_on(c, exchange(*c.tls, c.lowest(), c.buf, req, p, cfg.io_timeout));
    else
      run_on(c, exchange(*c.tcp, c.lowest(), c.buf, req, p, cfg.io_timeout));
    auto& res = p.get();
    HttpRes out;
    out.status = static_cast<int>(res.result_int());
    for (auto& f : res) {
      std::string n(f.name_string());
      for (auto& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      out.headers[n] = std::string(f.value());
    }
    out.body = std::move(res.body());
    if (!res.keep_alive()) c.connected = false;
    return out;
  }

  void backoff(int attempt) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    auto cap = std::min<std::int64_t>(cfg.backoff_max.count(),
                                      cfg.backoff_base.count() * (std::int64_t{1} << std::min(attempt - 1, 20)));
    std::uniform_int_distribution<std::int64_t> d(0, std::max<std::int64_t>(cap, 0));
    std::this_thread::sleep_for(std::chrono::milliseconds(d(rng)));
  }

  // Sends with retries. Returns the final response (which may be an error status
  // the caller turns into a message); throws on transport failure after the last
  // attempt.
  HttpRes send(const HttpReq& r, std::string_view what) {
    bool stale_retry_used = false;
    for (int attempt = 1;; ++attempt) {
      auto c = take();
      bool reused = c->connected;
      try {
        if (!c->connected) connect(*c);
        HttpRes res = exchange_once(*c, r);
        if (c->connected) give_back(std::move(c));
        if (retriable(res) && attempt < cfg.max_attempts) {
          retries++;
          if (log)
            log->warn("s3 {} '{}': {} {}, retrying (attempt {} of {})", what, r.key, res.status,
                      xml_tag(res.body, "Code"), attempt, cfg.max_attempts);
          backoff(attempt);
          continue;
        }
        return res;
      } catch (const boost::system::system_error& e) {
        // A pooled connection the server closed while idle fails at once; that is
        // not the service failing, so retry it on a fresh one without counting.
        if (reused && !stale_retry_used) {
          stale_retry_used = true;
          --attempt;
          continue;
        }
        bool timed_out = e.code() == beast::error::timeout;
        std::string msg = "s3 " + std::string(what) + " '" + r.key + "' at " + describe() + ": " +
                          (timed_out ? std::string("timed out") : e.code().message());
        if (attempt >= cfg.max_attempts)
          throw Error(timed_out ? Errc::timeout : Errc::storage,
                      msg + " (after " + std::to_string(attempt) + " attempts)");
        retries++;
        if (log) log->warn("{}, retrying (attempt {} of {})", msg, attempt, cfg.max_attempts);
        backoff(attempt);
      }
    }
  }

  [[noreturn]] void fail(std::string_view what, std::string_view key, const HttpRes& r) const {
    std::string code = xml_tag(r.body, "Code"), message = xml_tag(r.body, "Message");
    std::string text = "s3 " + std::string(what) + " '" + std::string(key) + "' at " + describe() + ": " +
                       std::to_string(r.status) + (code.empty() ? "" : " " + code) +
                       (message.empty() ? "" : ": " + message);
    if (r.status == 401 || r.status == 403) {
      if (code == "SignatureDoesNotMatch" || code == "InvalidAccessKeyId" || code.empty())
        text += " (check the access key, secret key and region)";
      throw Error(Errc::storage_denied, text);
    }
    if (code == "NoSuchBucket") throw Error(Errc::storage, text + " (create the bucket first)");
    throw Error(Errc::storage, text);
  }

  std::vector<std::pair<std::string, std::string>> lock_headers(std::string_view body, const PutOptions& o) const {
    std::vector<std::pair<std::string, std::string>> h;
    if (cfg.object_lock) {
      h.emplace_back("content-md5", md5_base64(body));
      if (o.retain_until) {
        h.emplace_back("x-amz-object-lock-mode", "COMPLIANCE");
        h.emplace_back("x-amz-object-lock-retain-until-date", iso8601(*o.retain_until));
      }
    }
    return h;
  }

  void put_single(std::string_view key, std::string_view data, const PutOptions& o) {
    auto res = send({"PUT", std::string(key), {}, lock_headers(data, o), data}, "put");
    if (res.status != 200) fail("put", key, res);
  }

  void put_multipart(std::string_view key, std::string_view data, const PutOptions& o) {
    auto h = lock_headers({}, o);
    if (!h.empty()) h.erase(h.begin());  // no Content-MD5 on an empty create request
    auto res = send({"POST", std::string(key), {{"uploads", ""}}, h, {}}, "create multipart upload");
    std::string upload_id = xml_tag(res.body, "UploadId");
    if (res.status != 200 || upload_id.empty()) fail("create multipart upload", key, res);
    try {
      std::string complete = "<CompleteMultipartUpload>";
      int part = 1;
      for (std::uint64_t off = 0; off < data.size(); off += cfg.part_size, ++part) {
        auto chunk = data.substr(off, cfg.part_size);
        res = send({"PUT",
                    std::string(key),
                    {{"partNumber", std::to_string(part)}, {"uploadId", upload_id}},
                    cfg.object_lock ? std::vector<std::pair<std::string, std::string>>{{"content-md5", md5_base64(chunk)}}
                                    : std::vector<std::pair<std::string, std::string>>{},
                    chunk},
                   "upload part");
        std::string etag = res.header("etag");
        if (res.status != 200 || etag.empty()) fail("upload part " + std::to_string(part) + " of", key, res);
        complete += "<Part><PartNumber>" + std::to_string(part) + "</PartNumber><ETag>" + etag + "</ETag></Part>";
      }
      complete += "</CompleteMultipartUpload>";
      res = send({"POST", std::string(key), {{"uploadId", upload_id}}, {}, complete}, "complete multipart upload");
      // S3 may answer 200 and still report an error in the body.
      if (res.status != 200 || res.body.find("<Error>") != std::string::npos)
        fail("complete multipart upload", key, res);
    } catch (...) {
      try {
        auto a = send({"DELETE", std::string(key), {{"uploadId", upload_id}}, {}, {}}, "abort multipart upload");
        if (log && a.status != 204 && a.status != 200 && a.status != 404)
          log->warn("s3 abort multipart upload '{}' ({}): {}", key, upload_id, a.status);
      } catch (const std::exception& e) {
        if (log) log->warn("s3 abort multipart upload '{}' ({}): {}", key, upload_id, e.what());
      }
      throw;
    }
  }
};

S3Store::S3Store(S3Config config, std::shared_ptr<spdlog::logger> log) : impl_(std::make_unique<Impl>()) {
  auto& im = *impl_;
  im.cfg = std::move(config);
  im.log = std::move(log);
  auto& c = im.cfg;
  im.ep = parse_endpoint(c.endpoint);
  bool default_port = (im.ep.tls && im.ep.port == "443") || (!im.ep.tls && im.ep.port == "80");
  im.host_header = default_port ? im.ep.host : im.ep.host + ":" + im.ep.port;
  if (c.bucket.empty() || c.bucket.find('/') != std::string::npos)
    throw Error(Errc::invalid_config, "s3 bucket '" + c.bucket + "' is invalid");
  while (!c.prefix.empty() && c.prefix.back() == '/') c.prefix.pop_back();
  if (!c.prefix.empty()) validate_key(c.prefix);
  if (c.access_key.empty() || c.secret_key.empty())
    throw Error(Errc::invalid_config, "s3 access key and secret key must be set");
  if (c.part_size < (5ull << 20)) throw Error(Errc::invalid_config, "s3 part_size must be at least 5 MiB");
  if (c.multipart_threshold < c.part_size)
    throw Error(Errc::invalid_config, "s3 multipart_threshold must be at least part_size");
  if (c.max_attempts < 1) throw Error(Errc::invalid_config, "s3 max_attempts must be at least 1");
  if (im.ep.tls) {
    im.ssl_ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    boost::system::error_code ec;
    if (!c.ca_file.empty())
      im.ssl_ctx->load_verify_file(c.ca_file, ec);
    else
      im.ssl_ctx->set_default_verify_paths(ec);
    if (ec) throw Error(Errc::invalid_config, "s3 ca_file '" + c.ca_file + "': " + ec.message());
    im.ssl_ctx->set_verify_mode(c.verify_tls ? asio::ssl::verify_peer : asio::ssl::verify_none);
  }
}

S3Store::~S3Store() = default;

Capabilities S3Store::capabilities() const {
  Capabilities caps;
  caps.atomic_replace = true;  // S3 never exposes a partial object
  caps.object_lock = impl_->cfg.object_lock;
  caps.consistent_list = true;  // AWS since 2020; MinIO and Swift s3api on one node
  return caps;
}

std::string S3Store::describe() const { return impl_->describe(); }

void S3Store::put(std::string_view key, std::string_view data, const PutOptions& options) {
  validate_key(key);
  if (data.size() >= impl_->cfg.multipart_threshold)
    impl_->put_multipart(key, data, options);
  else
    impl_->put_single(key, data, options);
}

std::optional<std::string> S3Store::get(std::string_view key, ByteRange range) {
  validate_key(key);
  if (range.length && *range.length == 0)
    throw Error(Errc::bad_request, "s3 get '" + std::string(key) + "': empty range");
  std::vector<std::pair<std::string, std::string>> h;
  bool ranged = range.offset != 0 || range.length.has_value();
  if (ranged)
    h.emplace_back("range", "bytes=" + std::to_string(range.offset) + "-" +
                                (range.length ? std::to_string(range.offset + *range.length - 1) : std::string()));
  auto res = impl_->send({"GET", std::string(key), {}, h, {}}, "get");
  if (res.status == 404 && xml_tag(res.body, "Code") != "NoSuchBucket") return std::nullopt;
  if (res.status == 416) {
    auto st = stat(key);
    if (!st) return std::nullopt;
    if (st->size == 0 && range.offset == 0) return std::string();
    throw Error(Errc::bad_request, "s3 get '" + std::string(key) + "': range offset " + std::to_string(range.offset) +
                                       " is outside the object (" + std::to_string(st->size) + " bytes)");
  }
  if (res.status != 200 && res.status != 206) impl_->fail("get", key, res);
  if (ranged && res.status == 200) {
    // A server that ignored the Range header: cut the range out ourselves.
    if (range.offset >= res.body.size() && !res.body.empty())
      throw Error(Errc::bad_request, "s3 get '" + std::string(key) + "': range outside the object");
    return res.body.substr(std::min<std::size_t>(range.offset, res.body.size()),
                           range.length ? *range.length : std::string::npos);
  }
  return std::move(res.body);
}

std::optional<ObjectInfo> S3Store::stat(std::string_view key) {
  validate_key(key);
  HttpReq r{"HEAD", std::string(key), {}, {}, {}};
  r.head = true;
  auto res = impl_->send(r, "stat");
  if (res.status == 404) return std::nullopt;
  if (res.status != 200) impl_->fail("stat", key, res);
  return ObjectInfo{std::string(key), std::stoull(res.header("content-length").empty() ? "0" : res.header("content-length"))};
}

ListPage S3Store::list(std::string_view prefix, std::string_view token, std::size_t max_keys) {
  validate_prefix(prefix);
  if (max_keys == 0 || max_keys > 1000) throw Error(Errc::bad_request, "list: max_keys must be 1..1000");
  auto& cfg = impl_->cfg;
  std::string full_prefix = cfg.prefix.empty() ? std::string(prefix) : cfg.prefix + "/" + std::string(prefix);
  std::vector<std::pair<std::string, std::string>> q = {
      {"list-type", "2"}, {"max-keys", std::to_string(max_keys)}, {"prefix", full_prefix}};
  if (!token.empty()) q.emplace_back("continuation-token", std::string(token));
  auto res = impl_->send({"GET", "", q, {}, {}}, "list");
  if (res.status != 200) impl_->fail("list", prefix, res);
  ListPage page;
  std::size_t pos = 0;
  std::size_t strip = cfg.prefix.empty() ? 0 : cfg.prefix.size() + 1;
  while (auto contents = xml_element(res.body, "Contents", pos)) {
    std::string key = xml_tag(*contents, "Key");
    std::string size = xml_tag(*contents, "Size");
    if (key.size() < strip) continue;
    page.objects.push_back({key.substr(strip), size.empty() ? 0 : std::stoull(size)});
  }
  if (xml_tag(res.body, "IsTruncated") == "true") {
    page.next_token = xml_tag(res.body, "NextContinuationToken");
    if (page.next_token.empty())
      throw Error(Errc::storage, "s3 list '" + std::string(prefix) + "' at " + describe() +
                                     ": truncated listing without NextContinuationToken");
  }
  return page;
}

void S3Store::remove(std::string_view key) {
  validate_key(key);
  auto res = impl_->send({"DELETE", std::string(key), {}, {}, {}}, "remove");
  if (res.status == 404 && xml_tag(res.body, "Code") != "NoSuchBucket") return;
  if (res.status != 204 && res.status != 200) impl_->fail("remove", key, res);
}

void S3Store::create_bucket() {
  auto& cfg = impl_->cfg;
  std::string body;
  if (cfg.region != "us-east-1")
    body = "<CreateBucketConfiguration><LocationConstraint>" + cfg.region +
           "</LocationConstraint></CreateBucketConfiguration>";
  std::vector<std::pair<std::string, std::string>> h;
  if (cfg.object_lock) h.emplace_back("x-amz-bucket-object-lock-enabled", "true");
  auto res = impl_->send({"PUT", "", {}, h, body}, "create bucket");
  if (res.status == 200) return;
  if (res.status == 409 && xml_tag(res.body, "Code") == "BucketAlreadyOwnedByYou") return;
  impl_->fail("create bucket", cfg.bucket, res);
}

S3Store::Stats S3Store::stats() const { return {impl_->requests.load(), impl_->retries.load()}; }

}  // namespace m365vault::storage
