#pragma once
// Shared by the emulator's translation units: the emulator state, the Graph request
// pipeline (auth, throttling, faults, statistics) and response helpers.
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>

#include <strings.h>

#include "m365vault/core/error.hpp"
#include "m365vault/emulator/emulator.hpp"
#include "m365vault/net/router.hpp"
#include "model.hpp"

namespace m365vault::emulator {

struct Faults {
  int latency_ms = 0;
  int mailbox_concurrency = 4;
  long mailbox_requests_per_window = 10000;
  double window_seconds = 600;
  std::string retry_after = "integer";  // integer | fractional | http-date
  std::map<std::string, double> error_rate;  // "503", "503_empty", "504", "500", "429", "reset", "truncated"
  int token_lifetime_s = 3599;
  int generations_kept = 3;
  std::int64_t clock_offset_s = 0;
  double delta_empty_page_rate = 0;  // an Outlook delta page comes back empty with a nextLink
  double delta_repeat_rate = 0;      // the last item of a page is sent again on the next page
  double delta_reset_rate = 0;       // a tokened delta call gets 410 + Location (start over)
  // Files and sites (docs/emulator.md).
  int download_url_lifetime_s = 3600;
  bool download_ignore_range = false;  // answer Range with 200 and the whole body
  double download_cut_at = 0;          // close a download without Range at this fraction of the file (0: never)
  bool download_corrupt = false;       // flip the first byte of every download body (a hash mismatch)
  double drive_resync_rate = 0;        // a tokened drive delta gets 410 resyncRequired
  std::string drive_resync_code = "resyncChangesApplyDifferences";
  long sharepoint_ru_per_minute = 0;  // 0: by tenant size (contract 9)
  // Teams requests per second per app per tenant by kind (contract 9; 0: unlimited).
  // Keys as kTeamsLimits; a PUT overrides the ones it names.
  std::map<std::string, long> teams_rps;
  // A Graph request whose path contains one of these strings is answered with that
  // status (400-599), every time: a failure confined to one user or scope.
  std::map<std::string, int> fail_paths;
  long teams_rps_for(const std::string& kind) const;
  json to_json() const;
  static Faults from_json(const json& j);  // throws Error(bad_request)
};

// Teams per-app limits (contract 9, "per app per tenant" column) in requests per second.
inline const std::map<std::string, long> kTeamsLimits = {
    {"channel_message", 20}, {"chat_message", 20}, {"team_channel", 30}, {"channels_list", 60},
    {"get_all_messages", 200}, {"other", 30}, {"per_team_or_channel", 4}};

struct Prefer {
  std::optional<int> maxpagesize;
  bool immutable_ids = false;
  bool text_body = false;
  bool return_minimal = false;
  bool track_changes = false;
  bool unknown_enums = false;  // include-unknown-enum-members
};
Prefer parse_prefer(const net::Request& req);

// What a Graph handler sees.
struct GraphCtx {
  net::Request& req;
  std::shared_ptr<Tenant> tenant;
  std::string app;
  std::string version;  // "v1.0" or "beta"
  Prefer prefer;
  std::vector<std::string> applied;  // Preference-Applied values
  std::optional<std::uint32_t> user;  // resolved {user}
};

using GraphFn = std::function<net::Response(GraphCtx&)>;

// Upload session URLs are <base>/_upload/<id>. Drive session ids start with this
// prefix ('.' is outside base64url, so no attachment session id can).
inline constexpr std::string_view kDriveSessionPrefix = "od.";
inline constexpr double kUploadSessionLifetime = 6 * 3600;  // seconds; each fragment renews it

struct EmulatorImpl {
  std::shared_ptr<spdlog::logger> log;
  std::string base_url = "http://127.0.0.1";
  std::filesystem::path state_dir;
  std::string key;  // signs access tokens and delta tokens

  std::mutex mu;  // tenants map
  std::map<std::string, std::shared_ptr<Tenant>> tenants;  // by tenant id
  std::vector<json> journal_ops;

  mutable std::mutex fmu;
  Faults faults;

  std::mutex smu;
  std::map<std::string, std::uint64_t> stat_requests, stat_status;

  struct Throttle {
    int active = 0;
    double window_start = 0;
    long count = 0;
  };
  std::mutex tmu;
  std::map<std::string, Throttle> throttles;

  struct RuWindow {
    double start = 0;
    long used = 0;
  };
  std::mutex rumu;
  std::map<std::string, RuWindow> ru;  // SharePoint/OneDrive resource units per app per tenant

  struct RpsWindow {
    double start = 0;
    long count = 0;
  };
  std::mutex rpsmu;
  std::map<std::string, RpsWindow> rps;  // Teams: per app per tenant per kind, per team/channel

  net::Router router;

  Faults current_faults() const {
    std::lock_guard lk(fmu);
    return faults;
  }
  // The emulated clock (wall clock plus clock_offset_s).
  std::int64_t now() const;
  double now_precise() const;

  std::shared_ptr<Tenant> find_tenant(const std::string& id_or_domain);

  // Graph error envelope with innerError (date, request-id, client-request-id and,
  // OneDrive style, a more specific `inner_code` when given).
  net::Response graph_error(const net::Request& req, int status, const std::string& code, const std::string& message,
                            bool inner = true, const std::string& inner_code = "");
  net::Response graph_json(const GraphCtx& c, int status, const json& body);
  std::string retry_after_value(double seconds) const;
  // With probability delta_reset_rate, a delta call that carries a token is answered
  // 410 Gone with a Location holding the token-less delta URL (contract 3, reset).
  std::optional<net::Response> maybe_reset(const GraphCtx& c, bool has_token);

  // Delta and skip tokens: HMAC-protected, opaque to clients.
  std::string seal(const json& payload) const;
  std::optional<json> unseal(std::string_view token) const;

  // Routes.
  void add_graph(const std::string& method, const std::string& tmpl, const std::string& permission, bool outlook,
                 GraphFn fn);
  void register_identity();
  void register_admin();
  void register_graph();
  void register_pim();
  void register_writes();
  void register_drive();
  void register_teams();
  void register_chats();
  // A Teams route: requests per second per app per tenant for `kind` (a kTeamsLimits
  // key), and under /teams/{team} at most per_team_or_channel per app on that team or
  // channel; past either, 429 TooManyRequests with Retry-After (the window's end).
  void add_teams(const std::string& method, const std::string& tmpl, const std::string& permission,
                 const std::string& kind, GraphFn fn);
  // Hosted contents of a channel or chat message (its HTML body's inline images): the
  // list when `hc` is empty, else one (404 when the body does not reference it), its
  // bytes when `value`.
  net::Response hosted_contents(GraphCtx& c, const json& msg, const std::string& hc, bool value);
  // A SharePoint/OneDrive route: resource units charged per app per tenant (contract 9).
  // `cost` 0 means "1 with a delta token, 2 without".
  void add_sp(const std::string& method, const std::string& tmpl, const std::string& permission, int cost, GraphFn fn);

  // Renderers shared by the read and write routes (set by register_graph/register_pim).
  std::function<json(GraphCtx&, const Tenant&, std::uint32_t, std::uint32_t, const Msg&, const MessageContent&)> message_json_fn;
  std::function<json(Tenant&, std::uint32_t, const Mailbox&, const Folder&)> folder_json_fn;
  std::function<json(Tenant&, std::uint32_t, bool, std::uint32_t, const PimItem&)> pim_json_fn;
  std::function<json(Tenant&, std::uint32_t, bool, const PimStore&, const Folder&)> container_json_fn;
  std::function<net::Response(GraphCtx&)> get_event_fn;  // GET /users/{user}/events/{item} (a PATCH answers with it)

  // Upload sessions (graph_write_routes.cpp): the URL is the credential, so chunks
  // arrive without a token. One store and one route serve both kinds; the rules per
  // fragment and the commit differ (contract 11).
  struct UploadSession {
    enum Kind { attachment, drive_item } kind = attachment;
    std::string tenant;
    std::uint32_t user = 0, message = 0;  // attachment
    std::string name, content_type;       // attachment
    std::uint64_t size = 0;  // the total; drive sessions learn it from the first Content-Range
    std::string data;  // attachment: the bytes so far (in order)
    // drive_item: fragments by offset; they may come in any order but never overlap.
    std::map<std::uint64_t, std::string> frags;
    double expires = 0;
    json target;  // drive_item: the drive_put_file operation, without its bytes
    bool conflicted = false;  // drive_item: complete, but the name was taken at commit
    std::uint64_t received() const;
    // drive_item: the missing ranges, "a-b" between fragments and "a-" for the tail.
    json missing_ranges() const;
  };
  // Applies a restore write (apply_write) under the tenant lock and journals it; a
  // refused write comes back as a Graph error ("Code: text", status by Errc).
  std::optional<net::Response> write_op(const net::Request& req, Tenant& t, const json& op, json& result);
  // The Graph error for a write the model refused (Error "Code: text").
  net::Response refused_write(const net::Request& req, const Error& e);
  // Stores a new session under `id`, dropping expired ones.
  void store_upload(const std::string& id, UploadSession s);
  // Unfinished sessions survive a restart: with --state-dir each has a folder
  // uploads/<id>/ holding meta.json and its bytes (drive: one file per fragment,
  // frag-<offset>; attachment: data). Callers hold umu.
  void persist_session_meta(const std::string& id, const UploadSession& s);
  void persist_session_bytes(const std::string& id, std::uint64_t offset, const std::string& bytes);
  void forget_session(const std::string& id);
  void load_sessions();  // on start, after replay
  // The driveItem as GET returns it (caller holds t.mu); set by register_drive.
  std::function<json(Tenant&, std::uint32_t key, std::uint32_t index)> drive_item_json_fn;
  std::mutex umu;
  std::map<std::string, UploadSession> uploads;
  boost::asio::awaitable<net::Response> handle(net::Request& req);
  boost::asio::awaitable<net::Response> run_batch(net::Request& req, std::string version);
  boost::asio::awaitable<net::Response> run_graph(net::Request& req, const std::string& permission, bool outlook,
                                                  const GraphFn& fn);

  // Persistence: every state-changing admin call and Graph write is journaled and
  // replayed on start.
  void journal(const json& op);
  void replay();
  json apply_op(const json& op);  // create_tenant, activity

  void count(const std::string& route_key, int status);
};

std::string normalize_route(const std::string& method, const std::string& tmpl);
std::string new_guid();
// "a, b,c" → {"a","b","c"} (empty parts dropped).
std::vector<std::string> split_csv(const std::string& s);
// A uniform draw in [0, 1) (thread-local generator).
double chance();

}  // namespace m365vault::emulator
