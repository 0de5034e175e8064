#pragma once
// The Graph client of one tenant: tokens (secret or certificate), HTTPS through
// the pooled net::HttpClient, Outlook Prefer headers, gzip, retries with
// Retry-After and backoff, at most N requests in flight per mailbox and an
// adaptive per-tenant rate. Beast stays in the .cpp files.
//
// Thread-safety: every member function may be called concurrently from any
// thread of the executor's io_context. The client must outlive the calls.
// GCC 12 note: pass named RequestOptions / callbacks rather than braced or lambda
// temporaries inside a co_await expression (GCC destroys such temporaries twice).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "m365vault/graph/endpoint.hpp"
#include "m365vault/graph/errors.hpp"
#include "m365vault/graph/throttle.hpp"
#include "m365vault/net/http.hpp"

namespace m365vault::graph {

struct RequestOptions {
  // Throttling key: the mailbox (user id) the request touches. When empty, an
  // Outlook path (/users/{id}/mailFolders|messages|contacts|calendar...) gives it.
  // Use one spelling per mailbox (the id, not sometimes the UPN).
  std::string mailbox;
  // Prefer: odata.maxpagesize=N; Outlook calls get GraphOptions::outlook_page_size when unset.
  std::optional<int> max_page_size;
  // Outlook Prefer headers (IdType="ImmutableId", maxpagesize): nullopt decides by path.
  std::optional<bool> outlook;
  std::vector<std::string> prefer;  // more Prefer values, comma-joined with ours
  std::vector<std::pair<std::string, std::string>> headers;  // more headers (ConsistencyLevel, If-None-Match...)
  // The whole call, retries and waits included. A Retry-After that would end past
  // it makes the call fail with that GraphError instead of sleeping.
  std::chrono::milliseconds deadline{std::chrono::minutes(10)};
  // Retry a POST on 503/504 and connection errors (it may have been applied).
  // GET, PUT, PATCH and DELETE are always retried; POST always on 429.
  bool retry_unsafe = false;
  // Treat a 2xx body that is not JSON (a cut-off page) as a transient failure and retry.
  bool expect_json = false;
  // An absolute pre-authenticated URL (an upload session's uploadUrl): never send
  // our token to it, even on Graph's own origin (CONTRACT.md §11: with one, 401).
  bool pre_authenticated = false;
};

struct GraphResponse {
  int status = 0;
  net::Headers headers;
  std::string body;              // decoded (gzip removed); empty for streamed calls
  nlohmann::json json;           // parsed body when expect_json was set (else null)
  std::string request_id() const;  // the request-id header, "" if absent
  // Parses body (throws Error(Errc::bad_request) naming the request when not JSON).
  nlohmann::json parse() const;
};

// A snapshot of the counters (monotonic since construction, except the gauges).
struct GraphStats {
  std::uint64_t requests = 0;           // HTTP attempts sent to Graph
  std::uint64_t retries = 0;            // attempts after the first of a call
  std::uint64_t throttled = 0;          // 429 answers
  std::uint64_t transient = 0;          // 502/503/504 answers
  std::uint64_t connection_errors = 0;  // resets, timeouts, truncated bodies
  std::uint64_t token_requests = 0;     // POSTs to the token endpoint
  std::uint64_t token_renewals = 0;     // tokens dropped after a 401
  std::uint64_t rate_cuts = 0;          // AIMD decreases
  std::uint64_t rate_limit_paced = 0;   // answers whose RateLimit-Remaining was low enough to space requests
  std::uint64_t teams_paced = 0;        // requests that waited for a slot under the Teams per-app limits
  std::uint64_t waited_ms = 0;          // total time slept for Retry-After and backoff
  double current_rate = 0;              // AIMD requests/s now
  int in_flight = 0;                    // requests on the wire now
  int max_in_flight_per_mailbox = 0;    // the most ever seen at once on one mailbox
};

struct GraphOptions {
  int max_in_flight_per_mailbox = 4;  // Outlook's limit per app per mailbox
  int max_attempts = 8;               // per call, the first included
  BackoffPolicy backoff;              // waits when no Retry-After came
  std::chrono::milliseconds max_retry_after{std::chrono::minutes(5)};  // longer waits fail the call
  AimdOptions aimd;
  int outlook_page_size = 100;
  std::chrono::seconds token_renew_before{300};  // or half the lifetime, if shorter
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds io_timeout{60'000};  // per read/write
  std::size_t max_body = 64 * 1024 * 1024;        // non-streamed bodies, after gzip
  // Idle keep-alive connections kept per host: at least the requests a run has in
  // flight at once (owners x 4), or connections that finish together are closed and
  // the next requests pay a TLS handshake each, on both sides.
  std::size_t max_idle_connections = 64;
  std::string user_agent = "NONISV|m365vault|m365vault/0.1";
  // Teams' per-app limits, requests per second per app and tenant (CONTRACT.md 9,
  // the 2025 figures), by the class of the path (teams_route_of): requests are
  // spaced ahead of time so that 429s stay rare; 0 = not paced.
  std::map<std::string, double> teams_rps = {{"channel_message", 20}, {"chat_message", 20}, {"team_channel", 30},
                                             {"channels_list", 60},   {"get_all_messages", 200}, {"other", 30}};
  double teams_rps_per_team_or_channel = 4;  // on top: one team, or one channel
  double teams_pace_margin = 0.9;            // pace at this fraction of each limit (clocks and windows differ)
};

// For a bulk job (a backup, a restore): the tenant rate starts at its ceiling
// rather than the cautious 1,000 requests/s (+20/s each second), which bounded
// whole runs against an unthrottled tenant. The first 429 still halves it.
inline GraphOptions bulk_graph_options() {
  GraphOptions g;
  g.aimd.initial_rate = g.aimd.max_rate;
  return g;
}

// Receives the bytes of a streamed body in order; a suspended callback holds the
// stream (bounded memory: at most ~64 KiB per call).
using ChunkFn = std::function<boost::asio::awaitable<void>(std::string_view)>;
// Sees the status and headers of a streamed 2xx answer before its first byte
// (206 or 200 to a Range request, ETag, Content-Range).
using StreamHeadFn = std::function<void(int status, const net::Headers& headers)>;

class GraphClient {
 public:
  // Throws Error(Errc::invalid_config) for a bad certificate/key, no credential,
  // or an unreadable ca_file.
  GraphClient(boost::asio::any_io_executor ex, TenantEndpoint endpoint, GraphOptions opts = {},
              std::shared_ptr<spdlog::logger> log = nullptr);
  ~GraphClient();
  GraphClient(const GraphClient&) = delete;
  GraphClient& operator=(const GraphClient&) = delete;

  // `path_or_url`: "/users", "/v1.0/users", "/beta/users/{id}/..." (relative to
  // graph_url; no version means v1.0) or an absolute URL (nextLink, deltaLink) sent
  // verbatim. The bearer token goes only to graph_url's origin.
  // Returns 2xx and 3xx answers; throws GraphError for the rest once retries are
  // spent, TokenError when no token can be had, Error(unavailable|timeout) when
  // the connection kept failing.
  boost::asio::awaitable<GraphResponse> get(std::string path_or_url, RequestOptions opts = {});
  boost::asio::awaitable<GraphResponse> post(std::string path_or_url, const nlohmann::json& body,
                                             RequestOptions opts = {});
  boost::asio::awaitable<GraphResponse> patch(std::string path_or_url, const nlohmann::json& body,
                                              RequestOptions opts = {});
  boost::asio::awaitable<GraphResponse> del(std::string path_or_url, RequestOptions opts = {});
  // Any method with a raw body (MIME import is text/plain base64, uploads are bytes).
  boost::asio::awaitable<GraphResponse> send(std::string method, std::string path_or_url, std::string body,
                                             std::string content_type, RequestOptions opts = {});

  // GET whose 2xx body goes to `on_chunk` as it arrives (MIME $value, file bytes),
  // gzip decoded on the fly. A 302 is followed without the Authorization header
  // (drive download URLs). When the connection fails after some bytes were
  // delivered, the call is retried from the start only if `on_restart` is given
  // (it is called first: discard what you got); otherwise the Error propagates
  // (the caller may resume with a Range header). `on_head` sees each 2xx answer's
  // status and headers before its body. The returned response has an empty body.
  boost::asio::awaitable<GraphResponse> get_stream(std::string path_or_url, ChunkFn on_chunk,
                                                   RequestOptions opts = {}, std::function<void()> on_restart = {},
                                                   StreamHeadFn on_head = {});

  // A valid access token (cached; renewed before expiry; concurrent callers share
  // one token request). Throws TokenError.
  boost::asio::awaitable<std::string> access_token();

  GraphStats stats() const;
  const TenantEndpoint& endpoint() const;
  // The absolute URL a path_or_url resolves to.
  std::string resolve(std::string_view path_or_url) const;

 private:
  std::shared_ptr<struct ClientState> s_;
};

// The mailbox key of an Outlook path or URL ("/v1.0/users/{id}/mailFolders/..." ->
// lower-cased, percent-decoded id), or "" when the path is not an Outlook one.
std::string outlook_mailbox_of(std::string_view path_or_url);

// Which Teams per-app limit a path or URL falls under: `rate_class` is a key of
// GraphOptions::teams_rps ("chat_message" for /chats/{id}/messages..., "channel_message"
// for .../channels/{id}/messages..., "channels_list", "team_channel" for a team or one
// channel, "get_all_messages", "other" for chats, members and joinedTeams);
// `scope` the team or channel it counts against ("channel:{id}", "team:{id}",
// "" outside /teams). nullopt: not a Teams path.
struct TeamsRoute {
  std::string rate_class, scope;
};
std::optional<TeamsRoute> teams_route_of(std::string_view path_or_url);

}  // namespace m365vault::graph
