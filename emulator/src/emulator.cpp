// The emulator core: the Graph request pipeline (bearer token, permission,
// per-mailbox throttling, injected faults, latency), statistics, sealed delta
// tokens and the journal that persists tenants across restarts.
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include "internal.hpp"
#include "m365vault/core/error.hpp"

namespace m365vault::emulator {

namespace asio = boost::asio;

// --- small helpers --------------------------------------------------------------

std::string new_guid() {
  auto r = random_bytes(16);
  r[6] = static_cast<char>((r[6] & 0x0f) | 0x40);
  r[8] = static_cast<char>((r[8] & 0x3f) | 0x80);
  auto h = to_hex(r);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

std::string normalize_route(const std::string& method, const std::string& tmpl) {
  std::string out;
  std::size_t i = 0;
  while (i < tmpl.size()) {
    if (tmpl[i] == '{') {
      auto j = tmpl.find('}', i);
      out += "{id}";
      i = j + 1;
    } else {
      out += tmpl[i++];
    }
  }
  return method + " " + out;
}

Prefer parse_prefer(const net::Request& req) {
  Prefer p;
  for (auto& [k, v] : req.headers.all()) {
    if (k.size() != 6 || strncasecmp(k.c_str(), "prefer", 6) != 0) continue;
    std::string_view s = v;
    while (!s.empty()) {
      auto comma = s.find(',');
      auto item = s.substr(0, comma);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      std::string low(item);
      for (auto& ch : low) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (low.rfind("odata.maxpagesize=", 0) == 0) {
        try {
          int n = std::stoi(low.substr(18));
          if (n > 0) p.maxpagesize = n;
        } catch (...) {
        }
      } else if (low == "idtype=\"immutableid\"") {
        p.immutable_ids = true;
      } else if (low == "outlook.body-content-type=\"text\"" || low == "outlook.body-content-type=text") {
        p.text_body = true;
      } else if (low == "return=minimal") {
        p.return_minimal = true;
      } else if (low == "odata.track-changes") {
        p.track_changes = true;
      } else if (low == "include-unknown-enum-members") {
        p.unknown_enums = true;
      }
      if (comma == std::string_view::npos) break;
      s.remove_prefix(comma + 1);
    }
  }
  return p;
}

json Faults::to_json() const {
  return {{"latency_ms", latency_ms},
          {"mailbox_concurrency", mailbox_concurrency},
          {"mailbox_requests_per_window", mailbox_requests_per_window},
          {"window_seconds", window_seconds},
          {"retry_after", retry_after},
          {"error_rate", error_rate},
          {"token_lifetime_s", token_lifetime_s},
          {"generations_kept", generations_kept},
          {"clock_offset_s", clock_offset_s},
          {"delta_empty_page_rate", delta_empty_page_rate},
          {"delta_repeat_rate", delta_repeat_rate},
          {"delta_reset_rate", delta_reset_rate},
          {"download_url_lifetime_s", download_url_lifetime_s},
          {"download_ignore_range", download_ignore_range},
          {"download_cut_at", download_cut_at},
          {"download_corrupt", download_corrupt},
          {"drive_resync_rate", drive_resync_rate},
          {"drive_resync_code", drive_resync_code},
          {"sharepoint_ru_per_minute", sharepoint_ru_per_minute},
          {"teams_rps", teams_rps},
          {"fail_paths", fail_paths}};
}

long Faults::teams_rps_for(const std::string& kind) const {
  auto it = teams_rps.find(kind);
  return it != teams_rps.end() ? it->second : kTeamsLimits.at(kind);
}

double chance() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0, 1)(rng);
}

Faults Faults::from_json(const json& j) {
  if (!j.is_object()) throw Error(Errc::bad_request, "faults must be a JSON object");
  Faults f;
  static const std::set<std::string> known = {"latency_ms",       "mailbox_concurrency", "mailbox_requests_per_window",
                                              "window_seconds",   "retry_after",         "error_rate",
                                              "token_lifetime_s", "generations_kept",    "clock_offset_s",
                                              "delta_empty_page_rate", "delta_repeat_rate", "delta_reset_rate",
                                              "download_url_lifetime_s", "download_ignore_range", "drive_resync_rate",
                                              "drive_resync_code", "sharepoint_ru_per_minute", "teams_rps",
                                              "download_cut_at", "download_corrupt", "fail_paths"};
  for (auto& [k, v] : j.items())
    if (!known.count(k)) throw Error(Errc::bad_request, "unknown fault key '" + k + "'");
  try {
    f.latency_ms = j.value("latency_ms", f.latency_ms);
    f.mailbox_concurrency = j.value("mailbox_concurrency", f.mailbox_concurrency);
    f.mailbox_requests_per_window = j.value("mailbox_requests_per_window", f.mailbox_requests_per_window);
    f.window_seconds = j.value("window_seconds", f.window_seconds);
    f.retry_after = j.value("retry_after", f.retry_after);
    if (j.contains("error_rate")) f.error_rate = j["error_rate"].get<std::map<std::string, double>>();
    f.token_lifetime_s = j.value("token_lifetime_s", f.token_lifetime_s);
    f.generations_kept = j.value("generations_kept", f.generations_kept);
    f.clock_offset_s = j.value("clock_offset_s", f.clock_offset_s);
    f.delta_empty_page_rate = j.value("delta_empty_page_rate", f.delta_empty_page_rate);
    f.delta_repeat_rate = j.value("delta_repeat_rate", f.delta_repeat_rate);
    f.delta_reset_rate = j.value("delta_reset_rate", f.delta_reset_rate);
    f.download_url_lifetime_s = j.value("download_url_lifetime_s", f.download_url_lifetime_s);
    f.download_ignore_range = j.value("download_ignore_range", f.download_ignore_range);
    f.download_cut_at = j.value("download_cut_at", f.download_cut_at);
    f.download_corrupt = j.value("download_corrupt", f.download_corrupt);
    f.drive_resync_rate = j.value("drive_resync_rate", f.drive_resync_rate);
    f.drive_resync_code = j.value("drive_resync_code", f.drive_resync_code);
    f.sharepoint_ru_per_minute = j.value("sharepoint_ru_per_minute", f.sharepoint_ru_per_minute);
    if (j.contains("teams_rps")) f.teams_rps = j["teams_rps"].get<std::map<std::string, long>>();
    if (j.contains("fail_paths")) f.fail_paths = j["fail_paths"].get<std::map<std::string, int>>();
  } catch (const json::exception& e) {
    throw Error(Errc::bad_request, std::string("faults: ") + e.what());
  }
  static const std::set<std::string> kinds = {"500",   "503",       "503_empty",         "504",
                                              "429",   "429_bare",  "reset",             "truncated",
                                              "attachment_cannot_open", "attachment_corrupt", "cannot_snapshot_tree"};
  for (auto& [k, v] : f.error_rate)
    if (!kinds.count(k) || v < 0 || v > 1)
      throw Error(Errc::bad_request, "error_rate key '" + k + "' unknown or rate outside [0,1] (keys: 500, 503, "
                                     "503_empty, 504, 429, 429_bare, reset, truncated, attachment_cannot_open, "
                                     "attachment_corrupt, cannot_snapshot_tree)");
  if (f.retry_after != "integer" && f.retry_after != "fractional" && f.retry_after != "http-date")
    throw Error(Errc::bad_request, "retry_after must be 'integer', 'fractional' or 'http-date'");
  if (f.mailbox_concurrency < 1 || f.mailbox_requests_per_window < 1 || f.window_seconds <= 0 ||
      f.generations_kept < 1 || f.token_lifetime_s < 1 || f.latency_ms < 0 || f.delta_empty_page_rate < 0 ||
      f.delta_empty_page_rate > 1 || f.delta_repeat_rate < 0 || f.delta_repeat_rate > 1 || f.delta_reset_rate < 0 ||
      f.delta_reset_rate > 1 || f.download_url_lifetime_s < 1 || f.drive_resync_rate < 0 || f.drive_resync_rate > 1 ||
      f.sharepoint_ru_per_minute < 0 || f.download_cut_at < 0 || f.download_cut_at >= 1)
    throw Error(Errc::bad_request, "faults: limits must be positive (download_cut_at in [0,1))");
  for (auto& [k, v] : f.teams_rps)
    if (!kTeamsLimits.count(k) || v < 0)
      throw Error(Errc::bad_request, "teams_rps key '" + k + "' unknown or negative (keys: channel_message, chat_message, "
                                     "team_channel, channels_list, get_all_messages, other, per_team_or_channel)");
  for (auto& [k, v] : f.fail_paths)
    if (k.empty() || v < 400 || v > 599)
      throw Error(Errc::bad_request, "fail_paths key '" + k + "': the path part must not be empty and the status "
                                     "must be within 400-599");
  if (f.drive_resync_code != "resyncChangesApplyDifferences" && f.drive_resync_code != "resyncChangesUploadDifferences")
    throw Error(Errc::bad_request,
                "drive_resync_code must be 'resyncChangesApplyDifferences' or 'resyncChangesUploadDifferences'");
  return f;
}

// --- EmulatorImpl ----------------------------------------------------------------

std::int64_t EmulatorImpl::now() const { return static_cast<std::int64_t>(std::floor(now_precise())); }

double EmulatorImpl::now_precise() const {
  auto t = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::lock_guard lk(fmu);
  return t + static_cast<double>(faults.clock_offset_s);
}

std::shared_ptr<Tenant> EmulatorImpl::find_tenant(const std::string& id) {
  std::lock_guard lk(mu);
  if (auto it = tenants.find(id); it != tenants.end()) return it->second;
  for (auto& [k, t] : tenants)
    if (strcasecmp(t->spec.domain.c_str(), id.c_str()) == 0) return t;
  return nullptr;
}

net::Response EmulatorImpl::graph_error(const net::Request& req, int status, const std::string& code,
                                        const std::string& message, bool inner, const std::string& inner_code) {
  json e = {{"code", code}, {"message", message}};
  std::string rid = new_guid();
  if (inner) {
    std::string date = iso_time(now());
    date.pop_back();  // Graph's innerError date has no zone suffix
    json ie = {{"date", date}, {"request-id", rid}};
    ie["client-request-id"] = std::string(req.headers.get("client-request-id").value_or(rid));
    if (!inner_code.empty()) ie["code"] = inner_code;
    e["innerError"] = ie;
  }
  auto r = net::Response::json(status, json{{"error", e}});
  r.headers.set("Content-Type", "application/json");
  r.headers.set("request-id", rid);
  r.headers.set("client-request-id", std::string(req.headers.get("client-request-id").value_or(rid)));
  r.headers.set("Cache-Control", "private");
  return r;
}

net::Response EmulatorImpl::graph_json(const GraphCtx& c, int status, const json& body) {
  auto r = net::Response::json(status, body);
  r.headers.set("Content-Type",
                "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8");
  r.headers.set("OData-Version", "4.0");
  r.headers.set("Cache-Control", "private");
  if (!c.applied.empty()) {
    std::string v;
    for (auto& a : c.applied) v += (v.empty() ? "" : ",") + a;
    r.headers.set("Preference-Applied", v);
  }
  return r;
}

std::string EmulatorImpl::retry_after_value(double seconds) const {
  auto f = current_faults();
  if (f.retry_after == "fractional") {
    char b[32];
    std::snprintf(b, sizeof b, "%.3f", std::max(0.001, seconds));
    return b;
  }
  if (f.retry_after == "http-date") {
    std::time_t t = static_cast<std::time_t>(std::ceil(now_precise() + seconds));
    std::tm tm{};
    gmtime_r(&t, &tm);
    char b[64];
    std::strftime(b, sizeof b, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return b;
  }
  return std::to_string(std::max<long>(1, static_cast<long>(std::ceil(seconds))));
}

std::optional<net::Response> EmulatorImpl::maybe_reset(const GraphCtx& c, bool has_token) {
  if (!has_token || chance() >= current_faults().delta_reset_rate) return std::nullopt;
  auto r = graph_error(c.req, 410, "resyncRequired", "The sync state is no longer valid; start a new synchronization.");
  r.headers.set("Location", base_url + c.req.path);
  return r;
}

std::string EmulatorImpl::seal(const json& payload) const {
  auto body = base64(payload.dump(), true, false);
  return body + "." + base64(hmac_sha256(key, body).substr(0, 12), true, false);
}

std::optional<json> EmulatorImpl::unseal(std::string_view token) const {
  auto dot = token.rfind('.');
  if (dot == std::string_view::npos) return std::nullopt;
  auto body = token.substr(0, dot);
  auto mac = token.substr(dot + 1);
  if (base64(hmac_sha256(key, body).substr(0, 12), true, false) != mac) return std::nullopt;
  auto raw = unbase64(body);
  if (!raw) return std::nullopt;
  auto j = json::parse(*raw, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

void EmulatorImpl::count(const std::string& key, int status) {
  std::lock_guard lk(smu);
  ++stat_requests[key];
  ++stat_status[std::to_string(status)];
}

void EmulatorImpl::add_graph(const std::string& method, const std::string& tmpl, const std::string& permission,
                             bool outlook, GraphFn fn) {
  for (std::string v : {"v1.0", "beta"}) {
    auto shared = std::make_shared<GraphFn>(fn);
    router.add(method, "/" + v + tmpl, [this, permission, outlook, shared](net::Request& req) {
      return run_graph(req, permission, outlook, *shared);
    });
  }
}

namespace {

struct TokenCheck {
  std::shared_ptr<Tenant> tenant;
  std::string app;
  std::vector<std::string> roles;
  std::string error;  // set on failure
};

struct SlotGuard {
  EmulatorImpl* impl = nullptr;
  std::string key;
  ~SlotGuard() {
    if (!impl) return;
    std::lock_guard lk(impl->tmu);
    --impl->throttles[key].active;
  }
};

// Sends half the body (or nothing) and fails, so the server closes the connection
// mid-response: the client sees a truncated body or a reset.
asio::awaitable<void> broken_body(std::shared_ptr<std::string> body, bool truncated, net::BodySink& sink) {
  if (truncated) co_await sink.write(std::string_view(*body).substr(0, body->size() / 2));
  if (truncated) throw std::runtime_error("injected fault: truncated body");
  throw std::runtime_error("injected fault: connection reset");
}

}  // namespace

asio::awaitable<net::Response> EmulatorImpl::run_graph(net::Request& req, const std::string& permission, bool outlook,
                                                       const GraphFn& fn) {
  // 1. Bearer token.
  auto auth = req.headers.get("Authorization");
  std::string_view tok;
  if (auth && auth->size() > 7 && strncasecmp(auth->data(), "Bearer ", 7) == 0) tok = auth->substr(7);
  if (tok.empty()) {
    auto r = graph_error(req, 401, "InvalidAuthenticationToken", "Access token is empty.");
    r.headers.set("WWW-Authenticate", "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/"
                                      "oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"");
    co_return r;
  }
  TokenCheck tc;
  {
    std::string t(tok);
    auto d1 = t.find('.'), d2 = t.rfind('.');
    std::optional<json> claims;
    if (d1 != std::string::npos && d2 != d1) {
      auto signing = t.substr(0, d2);
      if (base64(hmac_sha256(key, signing), true, false) == t.substr(d2 + 1)) {
        auto raw = unbase64(t.substr(d1 + 1, d2 - d1 - 1));
        if (raw) {
          auto j = json::parse(*raw, nullptr, false);
          if (j.is_object()) claims = j;
        }
      } else {
        tc.error = "Access token validation failure. Invalid audience.";
      }
    }
    if (!claims && tc.error.empty()) tc.error = "CompactToken parsing failed with error code: 80049217";
    if (claims) {
      tc.tenant = find_tenant(claims->value("tid", ""));
      tc.app = claims->value("appid", "");
      tc.roles = claims->value("roles", std::vector<std::string>{});
      if (!tc.tenant || tc.tenant->spec.client_id != tc.app) tc.error = "Access token validation failure.";
      else if (claims->value("exp", std::int64_t{0}) <= now())
        tc.error = "Lifetime validation failed, the token is expired.";
    }
  }
  if (!tc.error.empty()) co_return graph_error(req, 401, "InvalidAuthenticationToken", tc.error);
  // 2. Permission.
  if (!permission.empty() && std::find(tc.roles.begin(), tc.roles.end(), permission) == tc.roles.end()) {
    if (outlook) co_return graph_error(req, 403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.");
    co_return graph_error(req, 403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.");
  }
  GraphCtx ctx{req, tc.tenant, tc.app, req.path.rfind("/beta/", 0) == 0 ? "beta" : "v1.0", parse_prefer(req), {}, {}};
  // 3. The mailbox, for per-mailbox throttling.
  if (auto it = req.params.find("user"); it != req.params.end()) {
    std::lock_guard lk(ctx.tenant->mu);
    const bool by_upn = it->second.find('@') != std::string::npos;
    for (std::uint32_t i = 0; i < ctx.tenant->users.size(); ++i) {
      auto& u = ctx.tenant->users[i];
      if (u.removed != Removed::none) continue;
      if (by_upn ? strcasecmp(user_json(*ctx.tenant, i)["userPrincipalName"].get<std::string>().c_str(),
                              it->second.c_str()) == 0
                 : strcasecmp(u.id.c_str(), it->second.c_str()) == 0) {
        ctx.user = i;
        break;
      }
    }
    if (!ctx.user) {
      if (outlook) co_return graph_error(req, 404, "ErrorInvalidUser", "The requested user '" + it->second + "' is invalid.");
      co_return graph_error(req, 404, "Request_ResourceNotFound",
                            "Resource '" + it->second + "' does not exist or one of its queried reference-property objects "
                            "are not present.");
    }
  }
  if (outlook && ctx.user && !has_mailbox(ctx.tenant->spec, *ctx.user))
    co_return graph_error(req, 404, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, soft-deleted, or is hosted on-premise.");
  auto faults_now = current_faults();
  SlotGuard guard;
  if (outlook && ctx.user) {
    std::string key = tc.app + "|" + ctx.tenant->users[*ctx.user].id;
    double now_s = now_precise();
    std::optional<net::Response> refused;
    {
      std::lock_guard lk(tmu);
      auto& th = throttles[key];
      if (now_s - th.window_start >= faults_now.window_seconds) {
        th.window_start = now_s;
        th.count = 0;
      }
      ++th.count;  // throttled requests count against the budget too
      if (th.active >= faults_now.mailbox_concurrency) {
        refused = graph_error(req, 429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.", false);
        refused->headers.set("Retry-After", retry_after_value(1));
      } else if (th.count > faults_now.mailbox_requests_per_window) {
        refused = graph_error(req, 429, "ApplicationThrottled", "Application is over its resource limits.", false);
        refused->headers.set("Retry-After", retry_after_value(th.window_start + faults_now.window_seconds - now_s));
      } else {
        ++th.active;
        guard.impl = this;
        guard.key = key;
      }
    }
    if (refused) co_return std::move(*refused);
  }
  // 4. Latency and injected errors.
  if (faults_now.latency_ms > 0) {
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(faults_now.latency_ms));
    co_await timer.async_wait(asio::use_awaitable);
  }
  for (auto& [part, status] : faults_now.fail_paths)
    if (req.path.find(part) != std::string::npos)
      co_return graph_error(req, status, status >= 500 ? "generalException" : "invalidRequest",
                            "The request failed (emulator fault fail_paths).");
  std::string injected;
  if (!faults_now.error_rate.empty()) {
    double x = chance();
    const bool attachment_route = req.route.find("/attachments") != std::string::npos;
    for (auto& [k, p] : faults_now.error_rate) {
      if (k.rfind("attachment_", 0) == 0 && !attachment_route) continue;
      if (k == "cannot_snapshot_tree" && req.route.find("/root/delta") == std::string::npos) continue;
      if (x < p) {
        injected = k;
        break;
      }
      x -= p;
    }
  }
  if (injected == "503") {
    auto r = graph_error(req, 503, "serviceNotAvailable", "The service is temporarily unavailable.");
    r.headers.set("Retry-After", retry_after_value(2));
    co_return r;
  }
  if (injected == "503_empty") {
    net::Response r;
    r.status = 503;
    co_return r;
  }
  if (injected == "504") co_return graph_error(req, 504, "GatewayTimeout", "The gateway timed out.");
  if (injected == "500") co_return graph_error(req, 500, "generalException", "An internal server error occurred.");
  if (injected == "429") {
    auto r = graph_error(req, 429, "TooManyRequests", "Please retry again later.");
    r.headers.set("Retry-After", retry_after_value(2));
    co_return r;
  }
  if (injected == "429_bare") co_return graph_error(req, 429, "TooManyRequests", "Please retry again later.");
  if (injected == "attachment_cannot_open")
    co_return graph_error(req, 500, "ErrorCannotOpenFileAttachment", "OLE conversion failed.");
  if (injected == "attachment_corrupt")
    co_return graph_error(req, 500, "ErrorCorruptData", "Data is corrupt.");
  if (injected == "cannot_snapshot_tree") {
    auto r = graph_error(req, 503, "serviceNotAvailable", "Failed to get a consistent delta snapshot. Try again later.",
                         true, "cannotSnapshotTree");
    r.headers.set("Retry-After", retry_after_value(2));
    co_return r;
  }
  net::Response res;
  try {
    res = fn(ctx);
  } catch (const Error& e) {
    if (e.code() == Errc::bad_request) res = graph_error(req, 400, "BadRequest", e.what());
    else if (e.code() == Errc::not_found) res = graph_error(req, 404, "ErrorItemNotFound", e.what());
    else throw;
  }
  if (!res.headers.get("request-id")) {
    std::string rid = new_guid();
    res.headers.set("request-id", rid);
    res.headers.set("client-request-id", std::string(req.headers.get("client-request-id").value_or(rid)));
  }
  if (injected == "reset" || injected == "truncated") {
    auto body = std::make_shared<std::string>(std::move(res.body));
    bool truncated = injected == "truncated";
    res.content_length = body->size();
    res.stream = [body, truncated](net::BodySink& sink) { return broken_body(body, truncated, sink); };
  }
  co_return res;
}

asio::awaitable<net::Response> EmulatorImpl::handle(net::Request& req) {
  auto res = co_await router.dispatch(req);
  if (req.route == "unmatched") {
    if (req.path.rfind("/v1.0/", 0) == 0 || req.path.rfind("/beta/", 0) == 0) {
      // Graph answers an unknown segment with 400 BadRequest, not 404.
      auto slash = req.path.find_last_of('/');
      res = graph_error(req, res.status == 405 ? 405 : 400, res.status == 405 ? "Request_BadRequest" : "BadRequest",
                        res.status == 405 ? "Specified HTTP method is not allowed for the request target."
                                          : "Resource not found for the segment '" + req.path.substr(slash + 1) + "'.");
    }
    count("unmatched", res.status);
  } else if (req.route.rfind("/_emulator/", 0) != 0) {
    count(normalize_route(req.method, req.route), res.status);  // Graph and token traffic only
  }
  co_return res;
}

// --- persistence -----------------------------------------------------------------

json EmulatorImpl::apply_op(const json& op) {
  auto kind = op.value("op", "");
  if (kind == "create_tenant") {
    auto spec = TenantSpec::from_json(op["spec"]);
    auto t = std::shared_ptr<Tenant>(make_tenant(spec));
    std::lock_guard lk(mu);
    if (tenants.count(spec.tenant_id)) throw Error(Errc::conflict, "tenant '" + spec.tenant_id + "' exists");
    tenants[spec.tenant_id] = t;
    return spec.to_json();
  }
  if (kind == "write") {
    auto t = find_tenant(op.value("tenant", ""));
    if (!t) throw Error(Errc::not_found, "no tenant '" + op.value("tenant", "") + "'");
    std::lock_guard lk(t->mu);
    return apply_write(*t, op["write"]);
  }
  if (kind == "activity") {
    auto t = find_tenant(op.value("tenant", ""));
    if (!t) throw Error(Errc::not_found, "no tenant '" + op.value("tenant", "") + "'");
    std::lock_guard lk(t->mu);
    return apply_activity(*t, op["request"]);
  }
  throw Error(Errc::bad_request, "unknown journal op '" + kind + "'");
}

void EmulatorImpl::journal(const json& op) {
  if (state_dir.empty()) return;
  std::ofstream out(state_dir / "journal.jsonl", std::ios::app);
  out << op.dump() << "\n";
  out.flush();
  if (!out) log->error("cannot append to the state journal in '{}'", state_dir.string());
}

void EmulatorImpl::replay() {
  std::ifstream in(state_dir / "journal.jsonl");
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto op = json::parse(line, nullptr, false);
    if (op.is_discarded()) {
      log->warn("state journal: skipping a damaged line");
      continue;
    }
    try {
      apply_op(op);
      ++n;
    } catch (const std::exception& e) {
      log->warn("state journal: {}", e.what());
    }
  }
  if (n) log->info("state restored: {} journal entries from '{}'", n, state_dir.string());
}

// --- Emulator -------------------------------------------------------------------

Emulator::Emulator(EmulatorOptions opts, std::shared_ptr<spdlog::logger> log) : impl_(std::make_shared<EmulatorImpl>()) {
  impl_->log = std::move(log);
  impl_->state_dir = opts.state_dir;
  if (!opts.state_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(opts.state_dir, ec);
    auto kf = opts.state_dir / "signing.key";
    std::ifstream in(kf, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    impl_->key = ss.str();
    if (impl_->key.size() != 32) {
      impl_->key = random_bytes(32);
      std::ofstream out(kf, std::ios::binary | std::ios::trunc);
      out << impl_->key;
      if (!out) throw Error(Errc::invalid_config, "--state-dir: cannot write '" + kf.string() + "'");
      std::filesystem::permissions(kf, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, ec);
    }
  } else {
    impl_->key = random_bytes(32);
  }
  impl_->register_identity();
  impl_->register_admin();
  impl_->register_graph();
  impl_->register_pim();
  impl_->register_writes();
  impl_->register_drive();
  impl_->register_teams();
  impl_->register_chats();
  if (!opts.state_dir.empty()) {
    impl_->replay();
    impl_->load_sessions();
  }
}

Emulator::~Emulator() = default;

void Emulator::set_base_url(std::string url) { impl_->base_url = std::move(url); }

net::Handler Emulator::handler() {
  auto impl = impl_;
  return [impl](net::Request& req) { return impl->handle(req); };
}

TlsPaths ensure_tls(const std::filesystem::path& dir) {
  auto f = ensure_tls_files(dir);
  return {f.ca_cert.string(), f.server_cert.string(), f.server_key.string()};
}

}  // namespace m365vault::emulator
