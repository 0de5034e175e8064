#include "m365vault/graph/client.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <boost/url/url.hpp>

#include <array>
#include <atomic>
#include <charconv>
#include <map>
#include <mutex>
#include <random>

#include "gzip.hpp"
#include "m365vault/core/semaphore.hpp"
#include "m365vault/core/text.hpp"
#include "m365vault/graph/auth.hpp"
#include "m365vault/net/client.hpp"

namespace m365vault::graph {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// ASCII case-insensitive equality, without building a lower-cased copy.
using boost::beast::iequals;

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

bool is_absolute(std::string_view s) { return starts_with_ci(s, "https://") || starts_with_ci(s, "http://"); }

// scheme://host:port, lower case, default port written out; "" when not a URL.
std::string origin_of(std::string_view url) {
  auto u = boost::urls::parse_absolute_uri(url);
  if (!u) return {};
  auto scheme = ascii_lower(u->scheme());
  std::string port = u->has_port() ? std::string(u->port()) : (scheme == "https" ? "443" : "80");
  return scheme + "://" + ascii_lower(u->encoded_host()) + ":" + port;
}

// The path of a URL or of a relative target, without the query (links carry tokens):
// a view into `url`.
std::string_view path_view(std::string_view url) {
  auto q = url.find('?');
  if (q != std::string_view::npos) url = url.substr(0, q);
  if (is_absolute(url)) {
    auto host = url.find("://") + 3;
    auto slash = url.find('/', host);
    url = slash == std::string_view::npos ? std::string_view("/") : url.substr(slash);
  }
  return url;
}

std::string path_only(std::string_view url) { return std::string(path_view(url)); }

std::string form_encode(std::string_view s) {
  return boost::urls::encode(s, boost::urls::unreserved_chars);
}

// Outlook segments that follow /users/{id} (lower case). Mailbox throttling and
// the Outlook Prefer headers apply to these.
bool outlook_segment(std::string_view seg) {
  static const char* const kOutlook[] = {"mailfolders",    "messages",      "contactfolders", "contacts",
                                         "calendars",      "calendar",      "calendarview",   "events",
                                         "calendargroups", "mailboxsettings", "outlook",      "inferenceclassification"};
  const auto name = seg.substr(0, seg.find('('));  // mailFolders('AAMk...') in links
  for (const char* k : kOutlook)
    if (iequals(name, k)) return true;
  return false;
}

struct MailboxState {
  std::unique_ptr<AsyncSemaphore> sem;  // null for the tenant-wide (unkeyed) state
  Clock::time_point blocked_until{};           // Retry-After of the last 429 here
  int in_flight = 0;
  // RateLimit-* pacing: while it lasts, each request takes its own slot `pace_gap`
  // after the previous one, so requests waiting together do not leave together.
  Clock::duration pace_gap{};
  Clock::time_point pace_until{}, next_slot{};
};

}  // namespace

namespace {

// The segments of a path or URL after its version ("v1.0", "beta"; relative paths
// without one start at the first segment), as views into the caller's string: the
// first kKept of them, and how many there are in all. Built once per request
// attempt, so it allocates nothing.
struct Segments {
  static constexpr std::size_t kKept = 6;
  std::array<std::string_view, kKept> kept{};
  std::size_t count = 0;

  std::size_t size() const { return count; }
  std::string_view operator[](std::size_t i) const { return i < kKept ? kept[i] : std::string_view(); }
  bool is(std::size_t i, std::string_view name) const { return i < count && iequals((*this)[i], name); }
};

Segments segments_after_version(std::string_view path_or_url) {
  const auto path = path_view(path_or_url);
  auto each = [&](auto&& fn) {  // non-empty segments in order
    std::string_view rest(path);
    while (!rest.empty()) {
      auto slash = rest.find('/');
      auto seg = rest.substr(0, slash);
      if (!seg.empty()) fn(seg);
      if (slash == std::string_view::npos) break;
      rest.remove_prefix(slash + 1);
    }
  };
  std::size_t version = 0, n = 0;  // segments up to and including the first version one
  each([&](std::string_view seg) {
    ++n;
    if (!version && (iequals(seg, "v1.0") || iequals(seg, "beta"))) version = n;
  });
  Segments out;
  std::size_t i = 0;
  each([&](std::string_view seg) {
    if (i++ < version) return;
    if (out.count < Segments::kKept) out.kept[out.count] = seg;
    ++out.count;
  });
  return out;
}

std::optional<TeamsRoute> teams_route(const Segments& segs) {
  auto is = [&](std::size_t i, std::string_view name) { return segs.is(i, name); };
  if (is(0, "chats") && segs.size() >= 2)
    return TeamsRoute{is(2, "messages") ? "chat_message" : "other", ""};
  if (is(0, "teams") && segs.size() >= 2) {
    const std::string team = "team:" + ascii_lower(segs[1]);
    if (!is(2, "channels")) return TeamsRoute{segs.size() == 2 ? "team_channel" : "other", team};
    if (segs.size() == 3) return TeamsRoute{"channels_list", team};
    const std::string channel = "channel:" + ascii_lower(segs[3]);
    if (is(4, "messages")) return TeamsRoute{"channel_message", channel};
    return TeamsRoute{segs.size() == 4 ? "team_channel" : "other", channel};
  }
  if (is(0, "users") && (is(2, "chats") || is(2, "joinedteams")))
    return TeamsRoute{is(3, "getallmessages") ? "get_all_messages" : "other", ""};
  return std::nullopt;
}

std::string outlook_mailbox(const Segments& segs) {
  if (segs.size() == 0) return {};
  std::string_view id;
  std::size_t next;
  const auto first = segs[0];
  if (iequals(first, "me")) {
    id = "me";
    next = 1;
  } else if (iequals(first, "users") && segs.size() > 1) {
    id = segs[1];
    next = 2;
  } else if (starts_with_ci(first, "users(")) {  // users('id')
    auto in = first.substr(6);
    if (!in.empty() && in.back() == ')') in.remove_suffix(1);
    if (in.size() >= 2 && in.front() == '\'' && in.back() == '\'') in = in.substr(1, in.size() - 2);
    id = in;
    next = 1;
  } else {
    return {};
  }
  if (next >= segs.size() || !outlook_segment(segs[next]) || id.empty()) return {};
  return ascii_lower(net::percent_decode(id).value_or(std::string(id)));
}

}  // namespace

std::optional<TeamsRoute> teams_route_of(std::string_view path_or_url) {
  return teams_route(segments_after_version(path_or_url));
}

std::string outlook_mailbox_of(std::string_view path_or_url) {
  return outlook_mailbox(segments_after_version(path_or_url));
}


std::string GraphResponse::request_id() const { return std::string(headers.get("request-id").value_or("")); }

nlohmann::json GraphResponse::parse() const {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded())
    throw Error(Errc::bad_request, "graph answer " + std::to_string(status) + " (request-id '" + request_id() +
                                       "'): body is not JSON");
  return j;
}

struct ClientState {
  asio::any_io_executor ex;
  TenantEndpoint ep;
  GraphOptions o;
  std::shared_ptr<spdlog::logger> log;
  net::HttpClient http;
  std::optional<ClientCertificate> cert;
  std::string graph_base, graph_origin, token_url, what_tenant;
  std::string graph_literal_origin;  // scheme://authority of graph_base as written
  AimdRate aimd;

  std::atomic<std::uint64_t> requests{0}, retries{0}, throttled{0}, transient{0}, connection_errors{0},
      token_requests{0}, token_renewals{0}, waited_ms{0}, rate_limit_paced{0};
  std::atomic<int> in_flight{0}, max_in_flight{0};

  std::mutex mu;  // mailboxes and their fields, teams_next
  std::map<std::string, std::shared_ptr<MailboxState>> mailboxes;
  // Teams per-app pacing: the next free slot of each limit (a rate class, a team
  // or a channel).
  std::map<std::string, Clock::time_point> teams_next;
  std::atomic<std::uint64_t> teams_paced{0};

  AsyncSemaphore token_gate{1};  // single flight for token requests
  std::mutex token_mu;
  std::string token;
  Clock::time_point token_refresh_at{};
  std::uint64_t token_fetches = 0;
  std::exception_ptr token_error;

  static net::ClientOptions http_options(const TenantEndpoint& ep, const GraphOptions& o) {
    net::ClientOptions h;
    h.ca_file = ep.ca_file;
    h.connect_timeout = o.connect_timeout;
    h.io_timeout = o.io_timeout;
    h.max_body = o.max_body;
    h.max_idle_per_host = o.max_idle_connections;
    h.user_agent = o.user_agent;
    return h;
  }

  ClientState(asio::any_io_executor e, TenantEndpoint endpoint, GraphOptions opts, std::shared_ptr<spdlog::logger> l)
      : ex(e), ep(std::move(endpoint)), o(std::move(opts)), log(std::move(l)), http(e, http_options(ep, o)), aimd(o.aimd) {
    what_tenant = "tenant '" + ep.tenant_id + "'";
    if (ep.tenant_id.empty() || ep.client_id.empty())
      throw Error(Errc::invalid_config, "graph endpoint: tenant id and client id are required");
    if (ep.certificate_pem || ep.private_key_pem) {
      if (!ep.certificate_pem || !ep.private_key_pem)
        throw Error(Errc::invalid_config, what_tenant + ": a certificate needs its private key (and the key its certificate)");
      try {
        cert.emplace(*ep.certificate_pem, *ep.private_key_pem);
      } catch (const Error& err) {
        throw Error(Errc::invalid_config, what_tenant + ": " + err.what());
      }
    } else if (!ep.client_secret || ep.client_secret->empty()) {
      throw Error(Errc::invalid_config,
                  what_tenant + ": no credential (give a client secret, or a certificate and its private key)");
    }
    graph_base = ep.graph_url;
    while (!graph_base.empty() && graph_base.back() == '/') graph_base.pop_back();
    graph_origin = origin_of(graph_base);
    if (graph_origin.empty()) throw Error(Errc::invalid_config, "graph url '" + ep.graph_url + "': not an absolute URL");
    graph_literal_origin = graph_base.substr(0, graph_base.find('/', graph_base.find("://") + 3));
    auto login = ep.login_url;
    while (!login.empty() && login.back() == '/') login.pop_back();
    if (origin_of(login).empty()) throw Error(Errc::invalid_config, "login url '" + ep.login_url + "': not an absolute URL");
    token_url = login + "/" + form_encode(ep.tenant_id) + "/oauth2/v2.0/token";
  }

  // Whether a URL is on Graph's origin. Links Graph returns repeat the base's own
  // spelling, so a literal prefix match settles nearly every request without
  // parsing; anything else is compared as a normalised origin.
  bool is_graph(std::string_view url) const {
    if (url.size() >= graph_literal_origin.size() && url.substr(0, graph_literal_origin.size()) == graph_literal_origin &&
        (url.size() == graph_literal_origin.size() || url[graph_literal_origin.size()] == '/' ||
         url[graph_literal_origin.size()] == '?'))
      return true;
    return origin_of(url) == graph_origin;
  }

  std::string resolve(std::string_view p) const {
    if (is_absolute(p)) return std::string(p);
    std::string path(p);
    if (path.empty() || path.front() != '/') path.insert(0, "/");
    if (starts_with_ci(path, "/v1.0/") || starts_with_ci(path, "/beta/") || ascii_lower(path) == "/v1.0" ||
        ascii_lower(path) == "/beta")
      return graph_base + path;
    return graph_base + "/v1.0" + path;
  }

  std::shared_ptr<MailboxState> mailbox(const std::string& key, bool limited) {
    std::lock_guard lk(mu);
    auto& m = mailboxes[key];
    if (!m) {
      m = std::make_shared<MailboxState>();
      if (limited) m->sem = std::make_unique<AsyncSemaphore>(o.max_in_flight_per_mailbox);
    }
    return m;
  }

  void debug(const std::string& line) {
    if (log) log->debug("{}", line);
  }
  // Whether debug lines are written: a line per request is built only then.
  bool debugging() const { return log && log->should_log(spdlog::level::debug); }
  void warn(const std::string& line) {
    if (log) log->warn("{}", line);
  }
};

namespace {

asio::awaitable<void> sleep_until(Clock::time_point tp) {
  if (tp <= Clock::now()) co_return;
  asio::steady_timer t(co_await asio::this_coro::executor);
  t.expires_at(tp);
  co_await t.async_wait(asio::use_awaitable);
}

// Counts a request on the wire for its mailbox and the whole client.
class InFlight {
 public:
  InFlight(ClientState& s, std::shared_ptr<MailboxState> mb, bool keyed) : s_(s), mb_(std::move(mb)) {
    s_.in_flight.fetch_add(1);
    std::lock_guard lk(s_.mu);
    const int n = ++mb_->in_flight;
    if (keyed) {
      int seen = s_.max_in_flight.load();
      while (n > seen && !s_.max_in_flight.compare_exchange_weak(seen, n)) {
      }
    }
  }
  ~InFlight() { reset(); }
  void reset() {
    if (done_) return;
    done_ = true;
    s_.in_flight.fetch_sub(1);
    std::lock_guard lk(s_.mu);
    --mb_->in_flight;
  }

 private:
  ClientState& s_;
  std::shared_ptr<MailboxState> mb_;
  bool done_ = false;
};

struct TokenAnswer {
  std::string token;
  std::chrono::seconds lifetime;
};

long aadsts_of(const nlohmann::json& j, const std::string& description) {
  auto codes = j.find("error_codes");
  if (codes != j.end() && codes->is_array() && !codes->empty() && (*codes)[0].is_number_integer())
    return (*codes)[0].get<long>();
  auto at = description.find("AADSTS");
  if (at == std::string::npos) return 0;
  long v = 0;
  for (auto i = at + 6; i < description.size() && description[i] >= '0' && description[i] <= '9'; ++i)
    v = v * 10 + (description[i] - '0');
  return v;
}

asio::awaitable<TokenAnswer> request_token(ClientState& s) {
  std::string form = "grant_type=client_credentials&client_id=" + form_encode(s.ep.client_id) +
                     "&scope=" + form_encode(s.ep.scope);
  const int kAttempts = 4;
  for (int attempt = 1;; ++attempt) {
    net::ClientRequest req;
    req.method = "POST";
    req.url = s.token_url;
    req.headers.set("Content-Type", "application/x-www-form-urlencoded");
    req.headers.set("Accept", "application/json");
    // A fresh assertion per attempt: its jti must never be reused.
    req.body = form + (s.cert ? "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
                                "&client_assertion=" +
                                    make_client_assertion(*s.cert, s.ep.client_id, s.token_url, s.ep.pss)
                              : "&client_secret=" + form_encode(*s.ep.client_secret));
    s.token_requests.fetch_add(1);
    net::ClientResponse res;
    bool unreachable = false;
    try {
      res = co_await s.http.request(std::move(req));
    } catch (const Error& e) {
      if ((e.code() != Errc::unavailable && e.code() != Errc::timeout) || attempt >= kAttempts)
        throw TokenError(Errc::unavailable, 0, "", 0, e.what(),
                         s.what_tenant + ": token endpoint unreachable: " + e.what());
      unreachable = true;
    }
    if (unreachable) {
      co_await sleep_until(Clock::now() + s.o.backoff.delay(attempt - 1));
      continue;
    }
    auto j = nlohmann::json::parse(res.body, nullptr, false);
    if (res.status == 200 && j.is_object() && j.contains("access_token") && j["access_token"].is_string()) {
      long secs = 3599;
      if (auto e = j.find("expires_in"); e != j.end()) {
        if (e->is_number()) secs = e->get<long>();
        else if (e->is_string()) secs = std::strtol(e->get<std::string>().c_str(), nullptr, 10);
      }
      co_return TokenAnswer{j["access_token"].get<std::string>(), std::chrono::seconds(std::max(secs, 1L))};
    }
    const bool transient = res.status == 429 || res.status >= 500;
    if (transient && attempt < kAttempts) {
      auto ra = parse_retry_after(res.headers.get("Retry-After").value_or(""));
      co_await sleep_until(Clock::now() + (ra ? std::min(*ra, s.o.max_retry_after) : s.o.backoff.delay(attempt - 1)));
      continue;
    }
    std::string error, description;
    long code = 0;
    if (j.is_object()) {
      if (auto e = j.find("error"); e != j.end() && e->is_string()) error = e->get<std::string>();
      if (auto d = j.find("error_description"); d != j.end() && d->is_string()) {
        description = d->get<std::string>();
        description = description.substr(0, description.find("\r\n"));  // drop Trace ID / Correlation ID lines
      }
      code = aadsts_of(j, description);
    }
    std::string what = s.what_tenant + ": token request refused: " + std::to_string(res.status);
    if (!error.empty()) what += " " + error;
    if (!description.empty()) what += ": " + description;
    else if (j.is_discarded()) what += " (answer is not JSON)";
    throw TokenError(transient ? Errc::unavailable : Errc::unauthorized, res.status, error, code, description, what);
  }
}

asio::awaitable<std::string> get_token(std::shared_ptr<ClientState> s) {
  std::uint64_t seen;
  {
    std::lock_guard lk(s->token_mu);
    if (!s->token.empty() && Clock::now() < s->token_refresh_at) co_return s->token;
    seen = s->token_fetches;
  }
  auto permit = co_await s->token_gate.acquire();
  {
    std::lock_guard lk(s->token_mu);
    if (!s->token.empty() && Clock::now() < s->token_refresh_at) co_return s->token;
    // Someone fetched while we queued and failed: share that failure rather than
    // hammering the token endpoint once per waiter.
    if (s->token_fetches != seen && s->token_error) std::rethrow_exception(s->token_error);
  }
  std::exception_ptr failed;
  try {
    auto ans = co_await request_token(*s);
    const auto early = std::min<std::chrono::seconds>(s->o.token_renew_before, ans.lifetime / 2);
    std::lock_guard lk(s->token_mu);
    s->token = ans.token;
    s->token_refresh_at = Clock::now() + ans.lifetime - early;
    s->token_error = nullptr;
    ++s->token_fetches;
    s->debug(s->what_tenant + ": new access token, valid " + std::to_string(ans.lifetime.count()) + " s");
    co_return ans.token;
  } catch (...) {
    failed = std::current_exception();
  }
  {
    std::lock_guard lk(s->token_mu);
    s->token_error = failed;
    ++s->token_fetches;
  }
  std::rethrow_exception(failed);
}

void drop_token(ClientState& s, const std::string& bad) {
  std::lock_guard lk(s.token_mu);
  if (s.token == bad) s.token.clear();  // a token renewed meanwhile stays
}

// SharePoint's RateLimit-* headers (CONTRACT.md 9): past 80 % of the minute's
// resource units each answer says how many remain and in how many seconds the
// window resets. Once a tenth or less remains, the requests sharing this state
// are spaced so the rest of the budget lasts until the reset, instead of running
// into a 429 and its Retry-After; what the requests still in flight will spend is
// counted as spent (with several downloads at once, their answers arrive together).
// Answers without the headers cost nothing.
void pace_rate_limit(ClientState& s, MailboxState& mb, const net::Headers& h) {
  auto rem = h.get("RateLimit-Remaining"), reset = h.get("RateLimit-Reset");
  if (!rem || !reset) return;
  auto num = [](std::string_view v, long& out) {
    auto r = std::from_chars(v.data(), v.data() + v.size(), out);
    return r.ec == std::errc() && out >= 0;
  };
  long remaining = 0, reset_s = 0, limit = 0;
  if (!num(*rem, remaining) || !num(*reset, reset_s)) return;
  if (auto l = h.get("RateLimit-Limit"); !l || !num(*l, limit)) limit = 0;
  const long low = limit > 0 ? std::max<long>(limit / 10, 1) : 10;
  const auto window = std::chrono::milliseconds(std::min<long>(reset_s, 60) * 1000);
  std::lock_guard lk(s.mu);
  // A request costs at most 2 units (a multi-item query or a write; a download or
  // a single item 1), and those still in flight (this answer's request is no
  // longer) will spend theirs first.
  constexpr long kMaxCost = 2;
  if (remaining - kMaxCost * mb.in_flight > low) return;
  const long spare = remaining / kMaxCost - mb.in_flight;
  const auto now = Clock::now();
  if (spare <= 0) {
    mb.blocked_until = std::max(mb.blocked_until, now + window);
  } else {
    mb.pace_gap = window / (spare + 1);
    mb.pace_until = now + window;
  }
  s.rate_limit_paced.fetch_add(1);
}

struct Call {
  std::string method, url, body, content_type;
  RequestOptions opts;
  const ChunkFn* on_chunk = nullptr;
  const std::function<void()>* on_restart = nullptr;
  const StreamHeadFn* on_head = nullptr;
};

bool is_redirect(int st) { return st == 301 || st == 302 || st == 303 || st == 307 || st == 308; }

std::string join_location(const std::string& base, std::string_view loc) {
  if (is_absolute(loc)) return std::string(loc);
  auto u = boost::urls::parse_absolute_uri(base);
  if (!u) return std::string(loc);
  boost::urls::url out(*u);
  auto ref = boost::urls::parse_uri_reference(loc);
  if (!ref || out.resolve(*ref).has_error()) return std::string(loc);
  return std::string(out.buffer());
}

// Teams' per-app limits (CONTRACT.md 9): the request takes the first slot free
// under its rate class and its team or channel, and moves each of them on by one
// interval from there. Returns when it may leave.
Clock::time_point teams_pace(ClientState& s, const std::optional<TeamsRoute>& route) {
  if (!route) return {};
  const double margin = s.o.teams_pace_margin > 0 ? s.o.teams_pace_margin : 1.0;
  std::vector<std::pair<std::string, Clock::duration>> limits;
  auto add = [&](std::string key, double rps) {
    if (rps > 0)
      limits.emplace_back(std::move(key), std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(1.0 / (rps * margin))));
  };
  if (auto it = s.o.teams_rps.find(route->rate_class); it != s.o.teams_rps.end()) add("class:" + route->rate_class, it->second);
  if (!route->scope.empty()) add(route->scope, s.o.teams_rps_per_team_or_channel);
  if (limits.empty()) return {};
  std::lock_guard lk(s.mu);
  const auto now = Clock::now();
  auto slot = now;
  for (auto& [key, gap] : limits) slot = std::max(slot, s.teams_next[key]);
  for (auto& [key, gap] : limits) s.teams_next[key] = slot + gap;
  if (slot > now) s.teams_paced.fetch_add(1);
  return slot;
}

asio::awaitable<GraphResponse> execute(std::shared_ptr<ClientState> s, Call c) {
  const auto deadline = Clock::now() + c.opts.deadline;
  const bool safe = c.method == "GET" || c.method == "PUT" || c.method == "PATCH" || c.method == "DELETE" ||
                    c.method == "HEAD" || c.opts.retry_unsafe;
  bool renewed = false;
  int redirects = 0;
  for (int attempt = 1;; ++attempt) {
    // A followed redirect is a pre-authenticated download URL: never our token,
    // even when it lives on Graph's own origin (the emulator's does).
    const bool to_graph = redirects == 0 && !c.opts.pre_authenticated && s->is_graph(c.url);
    // The URL is read once per attempt, into views (no copies): its mailbox, its Teams limit.
    const auto segs = to_graph ? segments_after_version(c.url) : Segments{};
    const auto derived = outlook_mailbox(segs);
    const std::string key = !c.opts.mailbox.empty() ? ascii_lower(c.opts.mailbox) : derived;
    const bool outlook = to_graph && c.opts.outlook.value_or(!derived.empty());
    // For messages only: most attempts never need it.
    auto what = [&c] { return ascii_lower(c.method) + " '" + path_only(c.url) + "'"; };
    // Download URLs elsewhere (drive content) are neither capped nor paced as Graph calls.
    auto mb = to_graph ? s->mailbox(key, !key.empty()) : s->mailbox("\x01external", false);

    AsyncSemaphore::Permit permit;
    if (mb->sem) permit = co_await mb->sem->acquire();
    // Honour a Retry-After that a request on this mailbox (or, unkeyed, the tenant) received.
    for (;;) {
      Clock::time_point blocked;
      {
        std::lock_guard lk(s->mu);
        blocked = mb->blocked_until;
      }
      if (blocked <= Clock::now()) break;
      co_await sleep_until(blocked);
    }
    Clock::time_point slot{};
    {
      std::lock_guard lk(s->mu);
      const auto now = Clock::now();
      if (now < mb->pace_until) {
        slot = std::max(now, mb->next_slot);
        mb->next_slot = slot + mb->pace_gap;
      }
    }
    if (slot > Clock::now()) co_await sleep_until(slot);
    if (to_graph) {
      const auto teams_slot = teams_pace(*s, teams_route(segs));
      if (teams_slot > Clock::now()) co_await sleep_until(teams_slot);
    }
    std::string token;
    if (to_graph) {
      co_await sleep_until(s->aimd.pace());
      token = co_await get_token(s);
    }

    net::ClientRequest req;
    req.method = c.method;
    req.url = c.url;
    req.body = c.body;
    if (!token.empty()) req.headers.set("Authorization", "Bearer " + token);
    if (!c.content_type.empty()) req.headers.set("Content-Type", c.content_type);
    req.headers.set("Accept-Encoding", "gzip");
    if (!c.on_chunk) req.headers.set("Accept", "application/json");
    if (to_graph) {
      std::string prefer;
      auto add = [&](const std::string& v) { prefer += (prefer.empty() ? "" : ", ") + v; };
      if (c.opts.max_page_size) add("odata.maxpagesize=" + std::to_string(*c.opts.max_page_size));
      else if (outlook && s->o.outlook_page_size > 0) add("odata.maxpagesize=" + std::to_string(s->o.outlook_page_size));
      if (outlook) add("IdType=\"ImmutableId\"");
      for (auto& p : c.opts.prefer) add(p);
      if (!prefer.empty()) req.headers.set("Prefer", prefer);
      if (attempt > 1) req.headers.set("retry-attempt", std::to_string(attempt - 1));
    }
    for (auto& [k, v] : c.opts.headers) req.headers.set(k, v);

    s->requests.fetch_add(1);
    if (attempt > 1) s->retries.fetch_add(1);
    InFlight flying(*s, mb, !key.empty() && to_graph);
    const auto started = Clock::now();

    net::ClientResponse res;
    GraphResponse out;
    bool delivered = false;  // streamed content already handed to the caller
    std::string failure;     // why this attempt failed in transit ("" if it did not)
    try {
      if (c.on_chunk) {
        int head_status = 0;
        std::unique_ptr<detail::GzipDecoder> gz;
        std::string error_body, piece;
        net::HeadFn on_head = [&](int st, const net::Headers& h) {
          head_status = st;
          if (st >= 200 && st < 300 && ascii_lower(h.get("Content-Encoding").value_or("")) == "gzip")
            gz = std::make_unique<detail::GzipDecoder>(what());
          if (st >= 200 && st < 300 && c.on_head) (*c.on_head)(st, h);
        };
        net::BodyChunkFn on_piece = [&](std::string_view bytes) -> asio::awaitable<void> {
          if (head_status < 200 || head_status >= 300) {
            if (error_body.size() < 64 * 1024) error_body.append(bytes.substr(0, 64 * 1024 - error_body.size()));
            co_return;
          }
          if (!gz) {
            delivered = true;
            co_await (*c.on_chunk)(bytes);
            co_return;
          }
          gz->input(bytes);
          while (gz->read(piece))
            if (!piece.empty()) {
              delivered = true;
              co_await (*c.on_chunk)(piece);
            }
        };
        res = co_await s->http.request_streamed(req, on_piece, on_head);
        if (gz) gz->finish();
        res.body = std::move(error_body);
      } else {
        // Moved: the body (an upload fragment, up to 10 MiB) is not copied once more;
        // a retry builds its request again from the call.
        res = co_await s->http.request(std::move(req));
        if (ascii_lower(res.headers.get("Content-Encoding").value_or("")) == "gzip")
          res.body = detail::gunzip(res.body, s->o.max_body, what());
        if (c.opts.expect_json && res.status >= 200 && res.status < 300) {
          out.json = nlohmann::json::parse(res.body, nullptr, false);
          if (out.json.is_discarded())
            throw Error(Errc::unavailable, what() + ": " + std::to_string(res.status) + " answer is not JSON (cut short?)");
        }
      }
    } catch (const Error& e) {
      if (e.code() != Errc::unavailable && e.code() != Errc::timeout) throw;
      failure = e.what();
      s->connection_errors.fetch_add(1);
      if (!safe || attempt >= s->o.max_attempts || (delivered && !c.on_restart)) throw;
    }
    flying.reset();
    permit.reset();
    const auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - started).count();

    if (!failure.empty()) {
      auto delay = s->o.backoff.delay(attempt - 1);
      if (Clock::now() + delay > deadline) throw Error(Errc::timeout, what() + ": deadline passed while retrying: " + failure);
      s->warn(what() + ": " + failure + "; retry " + std::to_string(attempt) + " in " + std::to_string(delay.count()) + " ms");
      if (delivered) (*c.on_restart)();
      s->waited_ms.fetch_add(static_cast<std::uint64_t>(delay.count()));
      co_await sleep_until(Clock::now() + delay);
      continue;
    }

    const int st = res.status;
    if (s->debugging())
      s->debug(what() + " -> " + std::to_string(st) + " in " + std::to_string(ms) + " ms (attempt " +
               std::to_string(attempt) + ", request-id " + std::string(res.headers.get("request-id").value_or("-")) + ")");
    if (st < 400) pace_rate_limit(*s, *mb, res.headers);  // a 302 to drive content is charged too
    if (c.on_chunk && is_redirect(st) && res.headers.get("Location")) {
      // Drive content: the pre-authenticated URL is fetched without our token.
      if (++redirects > 5) throw Error(Errc::unavailable, what() + ": too many redirects");
      c.url = join_location(c.url, *res.headers.get("Location"));
      --attempt;
      continue;
    }
    if (st < 400) {
      out.status = st;
      out.headers = std::move(res.headers);
      out.body = std::move(res.body);
      co_return out;
    }
    if (st == 401 && !token.empty() && !renewed) {
      // An expired or revoked token: renew once, then let a second 401 fail.
      renewed = true;
      drop_token(*s, token);
      s->token_renewals.fetch_add(1);
      continue;
    }
    auto ra = parse_retry_after(res.headers.get("Retry-After").value_or(""));
    auto err = make_graph_error(st, res.body, res.headers.get("request-id").value_or(""), ra,
                                std::string(res.headers.get("Location").value_or("")), what());
    bool retry = false;
    if (st == 429) {
      s->throttled.fetch_add(1);
      s->aimd.on_throttled();
      retry = true;
    } else if (st == 502 || st == 503 || st == 504) {
      s->transient.fetch_add(1);
      retry = safe || st == 503;  // 503 means not processed; 502/504 may hide a completed POST
    }
    if (!retry || attempt >= s->o.max_attempts) throw err;
    if (ra && *ra > s->o.max_retry_after) throw err;
    const auto delay = ra ? *ra : s->o.backoff.delay(attempt - 1);
    if (Clock::now() + delay > deadline) throw err;
    if (st == 429 && ra) {
      std::lock_guard lk(s->mu);
      mb->blocked_until = std::max(mb->blocked_until, Clock::now() + delay);
    }
    if (s->debugging())
      s->debug(what() + ": " + std::to_string(st) + ", waiting " + std::to_string(delay.count()) + " ms" +
             (ra ? " (Retry-After)" : " (backoff)"));
    s->waited_ms.fetch_add(static_cast<std::uint64_t>(delay.count()));
    co_await sleep_until(Clock::now() + delay);
  }
}

}  // namespace

GraphClient::GraphClient(asio::any_io_executor ex, TenantEndpoint endpoint, GraphOptions opts,
                         std::shared_ptr<spdlog::logger> log)
    : s_(std::make_shared<ClientState>(std::move(ex), std::move(endpoint), std::move(opts), std::move(log))) {}

GraphClient::~GraphClient() = default;

// Calls are built as named locals: GCC 12 destroys an aggregate temporary inside a
// co_await full-expression twice.
asio::awaitable<GraphResponse> GraphClient::get(std::string path_or_url, RequestOptions opts) {
  return send("GET", std::move(path_or_url), "", "", std::move(opts));
}

asio::awaitable<GraphResponse> GraphClient::post(std::string path_or_url, const nlohmann::json& body,
                                                 RequestOptions opts) {
  return send("POST", std::move(path_or_url), body.dump(), "application/json", std::move(opts));
}

asio::awaitable<GraphResponse> GraphClient::patch(std::string path_or_url, const nlohmann::json& body,
                                                  RequestOptions opts) {
  return send("PATCH", std::move(path_or_url), body.dump(), "application/json", std::move(opts));
}

asio::awaitable<GraphResponse> GraphClient::del(std::string path_or_url, RequestOptions opts) {
  return send("DELETE", std::move(path_or_url), "", "", std::move(opts));
}

asio::awaitable<GraphResponse> GraphClient::send(std::string method, std::string path_or_url, std::string body,
                                                 std::string content_type, RequestOptions opts) {
  Call c;
  c.method = std::move(method);
  c.url = s_->resolve(path_or_url);
  c.body = std::move(body);
  c.content_type = std::move(content_type);
  c.opts = std::move(opts);
  auto s = s_;
  GraphResponse r = co_await execute(std::move(s), std::move(c));
  co_return r;
}

asio::awaitable<GraphResponse> GraphClient::get_stream(std::string path_or_url, ChunkFn on_chunk, RequestOptions opts,
                                                       std::function<void()> on_restart, StreamHeadFn on_head) {
  Call c;
  c.method = "GET";
  c.url = s_->resolve(path_or_url);
  c.opts = std::move(opts);
  c.on_chunk = &on_chunk;
  if (on_restart) c.on_restart = &on_restart;
  if (on_head) c.on_head = &on_head;
  auto s = s_;
  GraphResponse r = co_await execute(std::move(s), std::move(c));
  co_return r;
}

asio::awaitable<std::string> GraphClient::access_token() { co_return co_await get_token(s_); }

GraphStats GraphClient::stats() const {
  GraphStats st;
  st.requests = s_->requests.load();
  st.retries = s_->retries.load();
  st.throttled = s_->throttled.load();
  st.transient = s_->transient.load();
  st.connection_errors = s_->connection_errors.load();
  st.token_requests = s_->token_requests.load();
  st.token_renewals = s_->token_renewals.load();
  st.waited_ms = s_->waited_ms.load();
  st.rate_cuts = s_->aimd.cuts();
  st.rate_limit_paced = s_->rate_limit_paced.load();
  st.teams_paced = s_->teams_paced.load();
  st.current_rate = s_->aimd.rate();
  st.in_flight = s_->in_flight.load();
  st.max_in_flight_per_mailbox = s_->max_in_flight.load();
  return st;
}

const TenantEndpoint& GraphClient::endpoint() const { return s_->ep; }

std::string GraphClient::resolve(std::string_view path_or_url) const { return s_->resolve(path_or_url); }

}  // namespace m365vault::graph
