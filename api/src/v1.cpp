#include "m365vault/api/v1.hpp"

#include <mutex>
#include <unordered_map>

#include "input.hpp"
#include "routes.hpp"
#include "m365vault/api/auth.hpp"
#include "m365vault/scheduler/cron.hpp"
#include "m365vault/storage/catalog.hpp"

namespace m365vault::api {

using boost::asio::awaitable;
using net::Request;
using net::Response;
using scheduler::sys_seconds;

namespace {

constexpr std::initializer_list<Role> kAnyRole = {Role::admin, Role::operator_, Role::restorer, Role::viewer};
constexpr std::initializer_list<Role> kOperate = {Role::admin, Role::operator_};
constexpr std::initializer_list<Role> kAdmin = {Role::admin};

// Failed authentications per remote address in the current minute.
class FailureLimiter {
 public:
  explicit FailureLimiter(int per_minute) : limit_(per_minute) {}
  bool blocked(const std::string& remote) {
    std::lock_guard lk(mu_);
    auto it = counts_.find(remote);
    if (it == counts_.end()) return false;
    if (std::chrono::steady_clock::now() - it->second.since > std::chrono::minutes(1)) {
      counts_.erase(it);
      return false;
    }
    return it->second.n >= limit_;
  }
  void failed(const std::string& remote) {
    std::lock_guard lk(mu_);
    if (counts_.size() > 100000) counts_.clear();  // bounded memory under a spray of addresses
    auto& e = counts_[remote];
    if (e.n == 0 || std::chrono::steady_clock::now() - e.since > std::chrono::minutes(1)) e = {0, std::chrono::steady_clock::now()};
    ++e.n;
  }

 private:
  struct Entry {
    int n = 0;
    std::chrono::steady_clock::time_point since;
  };
  int limit_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> counts_;
};

struct Ctx {
  ApiOptions o;
  FailureLimiter limiter;
  explicit Ctx(ApiOptions opts) : o(std::move(opts)), limiter(o.auth_failures_per_minute) {}
};

// What a handler may add to its audit line.
struct AuditNote {
  std::optional<std::string> tenant_id;
  std::optional<std::string> target;
  nlohmann::json detail = nlohmann::json::object();
  bool record = false;  // audit this read too (searches, downloads)
};

using Authed = std::function<awaitable<Response>(Request&, const Principal&, AuditNote&)>;

Response no_content() {
  Response r;
  r.status = 204;
  return r;
}

sys_seconds now_s() { return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()); }

Response unauthorized(const Request& req, const std::string& detail) {
  auto res = Response::problem(Errc::unauthorized, detail, req.request_id);
  res.headers.set("WWW-Authenticate", "Bearer realm=\"m365vault\"");
  return res;
}

// Every path and query parameter is well-formed percent-encoded UTF-8 text
// before any handler reads it (the database would refuse it later, less clearly).
void check_text_params(const Request& req) {
  for (auto& [k, v] : req.params)
    if (!valid_text(v)) throw Error(Errc::bad_request, "path parameter '" + k + "': not valid UTF-8 text");
  std::string_view q = req.query;
  while (!q.empty()) {
    auto amp = q.find('&');
    auto part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (part.empty()) continue;
    auto eq = part.find('=');
    auto name = net::percent_decode(part.substr(0, eq), true);
    if (!name || !valid_text(*name))
      throw Error(Errc::bad_request, "a query parameter's name is not percent-encoded UTF-8 text");
    auto value = eq == std::string_view::npos ? std::optional<std::string>("") : net::percent_decode(part.substr(eq + 1), true);
    if (!value) throw Error(Errc::bad_request, "parameter '" + name->substr(0, 64) + "': malformed percent-encoding");
    if (!valid_text(*value)) throw Error(Errc::bad_request, "parameter '" + name->substr(0, 64) + "': not valid UTF-8 text");
  }
}

net::Handler secured(std::shared_ptr<Ctx> ctx, std::vector<Role> roles, Authed h) {
  std::vector<Role> allowed(roles);
  return [ctx, allowed, h](Request& req) -> awaitable<Response> {
    const bool is_change = req.method != "GET" && req.method != "HEAD";
    AuditEntry audit;
    audit.actor = "anonymous";
    audit.remote = req.remote;
    audit.request_id = req.request_id;
    audit.action = req.method + " " + req.path;
    auto record = [&](int status) -> awaitable<void> {
      audit.outcome = status;
      try {
        auto write = [&audit](storage::PgConnection& c) {
          AuditLog::record(c, audit);
          return 0;
        };
        co_await ctx->o.db->run(write);
      } catch (const std::exception& e) {
        ctx->o.log->error("req={} audit record failed: {}", req.request_id, e.what());
      }
    };

    if (ctx->limiter.blocked(req.remote)) {
      auto res = Response::problem(Errc::too_many_requests,
                                   "too many failed authentications from this address: wait a minute", req.request_id);
      res.headers.set("Retry-After", "60");
      co_return res;
    }
    auto authz = req.headers.get("Authorization");
    std::string secret;
    if (authz && authz->size() > 7 && (authz->substr(0, 7) == "Bearer " || authz->substr(0, 7) == "bearer "))
      secret = std::string(authz->substr(7));
    if (secret.empty()) {
      ctx->limiter.failed(req.remote);
      co_await record(401);
      co_return unauthorized(req, "missing 'Authorization: Bearer <token>'");
    }
    auto auth = [secret](storage::PgConnection& c) { return TokenStore::authenticate(c, secret); };
    std::optional<Principal> who;
    try {
      who = co_await ctx->o.db->run(auth);
    } catch (const Error& e) {
      co_return Response::problem(Errc::unavailable, std::string("cannot check the token: ") + e.what(), req.request_id);
    }
    if (!who) {
      ctx->limiter.failed(req.remote);
      co_await record(401);
      co_return unauthorized(req, "the token is unknown, expired or revoked");
    }
    audit.token_id = who->token_id;
    audit.actor = who->name;
    audit.role = std::string(to_string(who->role));
    audit.tenant_id = who->tenant_id;
    if (std::find(allowed.begin(), allowed.end(), who->role) == allowed.end()) {
      co_await record(403);
      co_return Response::problem(Errc::forbidden,
                                  "role '" + std::string(to_string(who->role)) + "' may not " + req.method + " " + req.route,
                                  req.request_id);
    }
    AuditNote note;
    Response res;
    try {
      check_text_params(req);
      res = co_await h(req, *who, note);
    } catch (const Error& e) {
      if (info(e.code()).http_status >= 500) ctx->o.log->error("req={} {}", req.request_id, e.what());
      res = Response::problem(e.code(), e.what(), req.request_id);
    }
    if (is_change || note.record) {
      if (note.tenant_id) audit.tenant_id = note.tenant_id;
      audit.target = note.target;
      audit.detail = note.detail;
      co_await record(res.status);
    }
    co_return res;
  };
}

bool visible(const Principal& p, const std::optional<std::string>& tenant_id) {
  return !p.tenant_id || (tenant_id && *tenant_id == *p.tenant_id);
}

// The job named in the path, if this principal may see it; else 404.
scheduler::Job visible_job(storage::PgConnection& c, const scheduler::Queue& q, const Principal& p, const std::string& id) {
  auto job = q.get_job(c, require_uuid("job id", id));
  if (!job || !visible(p, job->spec.tenant_id)) throw Error(Errc::not_found, "job '" + id + "' does not exist");
  return *job;
}

scheduler::RunInfo visible_run(storage::PgConnection& c, const scheduler::Queue& q, const Principal& p,
                               const std::string& id) {
  auto run = q.get_run(c, require_uuid("run id", id));
  if (run && p.tenant_id) {
    auto job = q.get_job(c, run->job_id);
    if (!job || !visible(p, job->spec.tenant_id)) run.reset();
  }
  if (!run) throw Error(Errc::not_found, "run '" + id + "' does not exist");
  return *run;
}

const std::set<std::string> kJobKinds = {"backup"};

// Applies the fields of a job body onto `spec` (all optional: PATCH; POST checks name).
void apply_job_body(JsonInput& in, scheduler::JobSpec& spec, const Principal& p) {
  if (auto v = in.string("name", 200, 1)) spec.name = *v;
  if (auto v = in.string("kind", 50)) {
    if (!kJobKinds.count(*v)) JsonInput::fail("kind", "unknown kind '" + *v + "' (known: backup)");
    spec.kind = *v;
  }
  if (in.has("tenant_id")) {
    auto t = in.string("tenant_id", 36);
    if (t) require_uuid("field 'tenant_id':", *t);
    spec.tenant_id = t;
  }
  if (in.has("schedule")) spec.schedule = in.string("schedule", 200);
  if (auto v = in.string("timezone", 100)) spec.timezone = *v;
  if (auto v = in.boolean("enabled")) spec.enabled = *v;
  if (auto v = in.integer("max_attempts", 1, 100)) spec.max_attempts = static_cast<int>(*v);
  if (auto v = in.object("params")) spec.params = *v;
  in.finish();
  // The scheduler checks these again; here a refusal names the field.
  try {
    scheduler::CronSchedule::parse("* * * * *", spec.timezone);
  } catch (const Error& e) {
    JsonInput::fail("timezone", e.what());
  }
  if (spec.schedule) {
    try {
      scheduler::CronSchedule::parse(*spec.schedule);
    } catch (const Error& e) {
      JsonInput::fail("schedule", e.what());
    }
  }
  if (p.tenant_id) {
    if (!spec.tenant_id) spec.tenant_id = p.tenant_id;
    if (spec.tenant_id != p.tenant_id) throw Error(Errc::forbidden, "this token is restricted to another tenant");
  }
}

void add_catalog_routes(net::Router& r, std::shared_ptr<Ctx> ctx);

}  // namespace

void add_v1_routes(net::Router& r, ApiOptions opts) {
  auto ctx = std::make_shared<Ctx>(std::move(opts));
  add_catalog_routes(r, ctx);
  // Route files beside this one get the same authentication, roles and audit.
  Secure secure = [ctx](std::vector<Role> roles, RouteFn f) {
    return secured(ctx, std::move(roles), [f](Request& q, const Principal& p, AuditNote& n) -> awaitable<Response> {
      RouteAudit a;
      // The audit note is kept also when the handler throws: a refused download
      // (404, 409) is audited like one that succeeds.
      std::exception_ptr failed;
      Response res;
      try {
        auto op = f(q, p, a);
        res = co_await std::move(op);
      } catch (...) {
        failed = std::current_exception();
      }
      n.tenant_id = a.tenant_id;
      n.target = a.target;
      n.detail = a.detail;
      n.record = a.record;
      if (failed) std::rethrow_exception(failed);
      co_return res;
    });
  };
  add_restore_routes(r, ctx->o.db, secure);
  add_export_routes(r, ctx->o.db, ctx->o.queue, ctx->o.export_content, secure);
  auto& q = ctx->o.queue;
  auto* db = ctx->o.db;

  // --- tokens (admin) ---
  r.add("GET", "/api/v1/tokens", secured(ctx, kAdmin, [db](Request&, const Principal&, AuditNote&) -> awaitable<Response> {
          auto list = [](storage::PgConnection& c) { return TokenStore::list(c); };
          auto tokens = co_await db->run(list);
          nlohmann::json items = nlohmann::json::array();
          for (auto& t : tokens) items.push_back(t.to_json());
          co_return Response::json(200, {{"items", items}});
        }));
  r.add("POST", "/api/v1/tokens",
        secured(ctx, kAdmin, [db](Request& req, const Principal& p, AuditNote& note) -> awaitable<Response> {
          JsonInput in(req);
          auto name = in.string("name", 200, 1);
          auto role_s = in.string("role", 20);
          auto tenant = in.string("tenant_id", 36);
          auto expires = in.string("expires_at", 40);
          in.finish();
          if (!name) JsonInput::fail("name", "is required");
          if (!role_s) JsonInput::fail("role", "is required (admin, operator, restorer or viewer)");
          auto role = parse_role(*role_s);
          if (!role) JsonInput::fail("role", "unknown role '" + *role_s + "' (admin, operator, restorer or viewer)");
          if (tenant) require_uuid("field 'tenant_id':", *tenant);
          if (expires && !scheduler::parse_rfc3339(*expires)) JsonInput::fail("expires_at", "not an RFC 3339 instant");
          if (p.tenant_id && tenant != p.tenant_id)
            throw Error(Errc::forbidden, "a tenant-restricted admin can only create tokens for its tenant");
          auto create = [&](storage::PgConnection& c) {
            return TokenStore::create(c, *name, *role, tenant, expires, "token:" + p.name);
          };
          auto t = co_await db->run(create);
          note.target = "token:" + t.info.id;
          note.detail = {{"name", t.info.name}, {"role", to_string(t.info.role)}};
          auto j = t.info.to_json();
          j["token"] = t.secret;
          co_return Response::json(201, j);
        }));
  r.add("DELETE", "/api/v1/tokens/{id}",
        secured(ctx, kAdmin, [db](Request& req, const Principal&, AuditNote& note) -> awaitable<Response> {
          auto id = require_uuid("token id", req.params["id"]);
          note.target = "token:" + id;
          auto revoke = [id](storage::PgConnection& c) { return TokenStore::revoke(c, id); };
          if (!co_await db->run(revoke)) throw Error(Errc::not_found, "token '" + id + "' does not exist or is revoked");
          co_return no_content();
        }));

  // --- audit (admin) ---
  r.add("GET", "/api/v1/audit", secured(ctx, kAdmin, [db](Request& req, const Principal&, AuditNote&) -> awaitable<Response> {
          int limit = limit_param(req, 100, 1000);
          std::optional<long long> before;
          if (auto c = req.query_param("cursor")) {
            if (c->empty() || c->size() > 18 || c->find_first_not_of("0123456789") != std::string::npos)
              throw Error(Errc::bad_request, "parameter 'cursor': not a cursor this API returned");
            before = std::stoll(*c);
          }
          auto list = [&](storage::PgConnection& c) { return AuditLog::list(c, before, limit); };
          auto items = co_await db->run(list);
          nlohmann::json next = nullptr;
          if (static_cast<int>(items.size()) == limit) next = std::to_string(items.back()["id"].get<long long>());
          co_return Response::json(200, {{"items", items}, {"next_cursor", next}});
        }));

  // --- jobs ---
  r.add("GET", "/api/v1/jobs", secured(ctx, kAnyRole, [db, q](Request&, const Principal& p, AuditNote&) -> awaitable<Response> {
          auto list = [q](storage::PgConnection& c) { return q.list_jobs(c); };
          auto jobs = co_await db->run(list);
          nlohmann::json items = nlohmann::json::array();
          for (auto& j : jobs)
            if (visible(p, j.spec.tenant_id)) items.push_back(j.to_json());
          co_return Response::json(200, {{"items", items}});
        }));
  r.add("POST", "/api/v1/jobs",
        secured(ctx, kOperate, [db, q](Request& req, const Principal& p, AuditNote& note) -> awaitable<Response> {
          JsonInput in(req);
          scheduler::JobSpec spec;
          spec.kind = "backup";
          apply_job_body(in, spec, p);
          if (spec.name.empty()) JsonInput::fail("name", "is required");
          auto create = [&](storage::PgConnection& c) { return q.create_job(c, spec, now_s()); };
          auto job = co_await db->run(create);
          note.target = "job:" + job.id;
          note.tenant_id = job.spec.tenant_id;
          note.detail = {{"name", job.spec.name}};
          auto res = Response::json(201, job.to_json());
          res.headers.set("Location", "/api/v1/jobs/" + job.id);
          co_return res;
        }));
  r.add("GET", "/api/v1/jobs/{id}",
        secured(ctx, kAnyRole, [db, q](Request& req, const Principal& p, AuditNote&) -> awaitable<Response> {
          auto get = [&](storage::PgConnection& c) { return visible_job(c, q, p, req.params["id"]); };
          co_return Response::json(200, (co_await db->run(get)).to_json());
        }));
  r.add("PATCH", "/api/v1/jobs/{id}",
        secured(ctx, kOperate, [db, q](Request& req, const Principal& p, AuditNote& note) -> awaitable<Response> {
          require_uuid("job id", req.params["id"]);  // a bad id is the first thing wrong, whatever the body
          JsonInput in(req);
          auto update = [&](storage::PgConnection& c) {
            auto job = visible_job(c, q, p, req.params["id"]);
            scheduler::require_own_job(job);
            auto spec = job.spec;
            apply_job_body(in, spec, p);
            return q.update_job(c, job.id, spec, now_s());
          };
          auto job = co_await db->run(update);
          note.target = "job:" + job.id;
          note.tenant_id = job.spec.tenant_id;
          co_return Response::json(200, job.to_json());
        }));
  r.add("DELETE", "/api/v1/jobs/{id}",
        secured(ctx, kOperate, [db, q](Request& req, const Principal& p, AuditNote& note) -> awaitable<Response> {
          auto del = [&](storage::PgConnection& c) {
            auto job = visible_job(c, q, p, req.params["id"]);
            scheduler::require_own_job(job);
            q.delete_job(c, job.id);
            return job;
          };
          auto job = co_await db->run(del);
          note.target = "job:" + job.id;
          note.tenant_id = job.spec.tenant_id;
          co_return no_content();
        }));
  r.add("POST", "/api/v1/jobs/{id}/run",
        secured(ctx, kOperate, [db, q](Request& req, const Principal& p, AuditNote& note) -> awaitable<Response> {
          auto run = [&](storage::PgConnection& c) {
            auto job = visible_job(c, q, p, req.params["id"]);
            scheduler::require_own_job(job);
            auto id = q.enqueue(c, job.id);
            return std::make_pair(job, *q.get_run(c, id));
          };
          auto [job, info] = co_await db->run(run);
          note.target = "run:" + info.id;
          note.tenant_id = job.spec.tenant_id;
          auto res = Response::json(202, info.to_json());
          res.headers.set("Location", "/api/v1/runs/" + info.id);
          co_return res;
        }));

  // --- runs ---
  r.add("GET", "/api/v1/runs", secured(ctx, kAnyRole, [db, q](Request& req, const Principal& p, AuditNote&) -> awaitable<Response> {
          scheduler::RunFilter f;
          if (auto j = req.query_param("job")) f.job_id = require_uuid("parameter 'job':", *j);
          if (auto s = req.query_param("state")) {
            f.state = scheduler::parse_run_state(*s);
            if (!f.state)
              throw Error(Errc::bad_request,
                          "parameter 'state': expected queued, running, succeeded, partial, failed or cancelled");
          }
          f.tenant_id = p.tenant_id;
          f.cursor = req.query_param("cursor");
          f.limit = limit_param(req, 50, 500);
          auto list = [&](storage::PgConnection& c) { return q.list_runs(c, f); };
          auto page = co_await db->run(list);
          nlohmann::json items = nlohmann::json::array();
          for (auto& run : page.runs) items.push_back(run.to_json());
          co_return Response::json(200, {{"items", items},
                                         {"next_cursor", page.next_cursor ? nlohmann::json(*page.next_cursor) : nullptr}});
        }));
  r.add("GET", "/api/v1/runs/{id}",
        secured(ctx, kAnyRole, [db, q](Request& req, const Principal& p, AuditNote&) -> awaitable<Response> {
          auto get = [&](storage::PgConnection& c) { return visible_run(c, q, p, req.params["id"]); };
          co_return Response::json(200, (co_await db->run(get)).to_json());
        }));
  r.add("POST", "/api/v1/runs/{id}/cancel",
        secured(ctx, kOperate, [db, q](Request& req, const Principal& p, AuditNote& note) -> awaitable<Response> {
          auto cancel = [&](storage::PgConnection& c) {
            auto run = visible_run(c, q, p, req.params["id"]);
            if (!q.request_cancel(c, run.id))
              throw Error(Errc::conflict, "run '" + run.id + "' has ended already (" +
                                              std::string(scheduler::to_string(run.state)) + ")");
            return *q.get_run(c, run.id);
          };
          auto run = co_await db->run(cancel);
          note.target = "run:" + run.id;
          co_return Response::json(202, run.to_json());
        }));
  r.add("GET", "/api/v1/runs/{id}/events",
        secured(ctx, kAnyRole, [db, q](Request& req, const Principal& p, AuditNote&) -> awaitable<Response> {
          long long after = 0;
          if (auto a = req.query_param("after")) {
            if (a->empty() || a->size() > 18 || a->find_first_not_of("0123456789") != std::string::npos)
              throw Error(Errc::bad_request, "parameter 'after': expected an event id");
            after = std::stoll(*a);
          }
          int limit = limit_param(req, 100, 1000);
          auto list = [&](storage::PgConnection& c) {
            auto run = visible_run(c, q, p, req.params["id"]);
            return q.list_events(c, run.id, after, limit);
          };
          auto events = co_await db->run(list);
          nlohmann::json items = nlohmann::json::array();
          for (auto& e : events) items.push_back({{"id", e.id}, {"at", e.at}, {"level", e.level}, {"message", e.message}});
          co_return Response::json(200, {{"items", items}});
        }));
}


// --- the catalog: tenants, owners, snapshots, browse, items, search ---
namespace {

constexpr std::initializer_list<Role> kRestore = {Role::admin, Role::restorer};

storage::Scope scope_of(const Principal& p) { return storage::Scope{p.tenant_id}; }

storage::Category category_param(const Request& req, bool required) {
  auto v = req.query_param("category");
  if (!v) {
    if (required) throw Error(Errc::bad_request, "parameter 'category': is required (mail, contacts, calendar, onedrive, sharepoint or teams)");
    return storage::Category::mail;
  }
  auto c = storage::parse_category(*v);
  if (!c)
    throw Error(Errc::bad_request, "parameter 'category': unknown category '" + v->substr(0, 64) +
                                       "' (mail, contacts, calendar, onedrive, sharepoint or teams)");
  return *c;
}

std::string required_param(const Request& req, const std::string& name) {
  auto v = req.query_param(name);
  if (!v || v->empty()) throw Error(Errc::bad_request, "parameter '" + name + "': is required");
  return *v;
}

nlohmann::json cursor_json(const std::optional<std::string>& c) { return c ? nlohmann::json(*c) : nlohmann::json(nullptr); }

// A tenant body: the settings, and the credential in clear (sealed at once,
// never stored or echoed). POST requires name, tenant_id, client_id and one
// credential; PATCH takes any subset.
struct TenantBody {
  storage::TenantSpec spec;
  std::optional<std::string> client_secret, private_key;
};

void read_tenant_body(JsonInput& in, TenantBody& b, bool create) {
  if (auto v = in.string("name", 200)) b.spec.name = *v;
  if (auto v = in.string("tenant_id", 200)) b.spec.directory_id = *v;
  if (auto v = in.string("client_id", 200)) b.spec.client_id = *v;
  b.client_secret = in.string("client_secret", 4096);
  auto cert = in.string("certificate", 65536);
  b.private_key = in.string("private_key", 65536);
  auto url_field = [&](const char* key, std::optional<std::string>& target) {
    if (!in.has(key)) return;
    auto v = in.string(key, 2000);
    if (v && v->rfind("https://", 0) != 0 && v->rfind("http://", 0) != 0)
      JsonInput::fail(key, "must be an http:// or https:// URL");
    target = v;
  };
  url_field("graph_url", b.spec.graph_url);
  url_field("login_url", b.spec.login_url);
  if (in.has("ca_file")) b.spec.ca_file = in.string("ca_file", 4096);
  if (auto v = in.boolean("disabled")) b.spec.disabled = *v;
  in.finish();
  if (b.client_secret && (cert || b.private_key))
    JsonInput::fail(cert ? "certificate" : "private_key",
                    "give either a client secret or a certificate and private key, not both ('client_secret' is given too)");
  if (cert || b.private_key) {
    if (!cert || !b.private_key)
      JsonInput::fail(cert ? "private_key" : "certificate",
                      cert ? "is required with 'certificate'" : "is required with 'private_key'");
    if (cert->find("-----BEGIN CERTIFICATE-----") == std::string::npos)
      JsonInput::fail("certificate", "not a PEM certificate");
    if (b.private_key->find("PRIVATE KEY-----") == std::string::npos)
      JsonInput::fail("private_key", "not a PEM private key");
    b.spec.auth = storage::AuthKind::certificate;
    b.spec.certificate_pem = cert;
  } else if (b.client_secret) {
    if (b.client_secret->empty()) JsonInput::fail("client_secret", "is empty");
    b.spec.auth = storage::AuthKind::secret;
    b.spec.certificate_pem.reset();
  }
  if (create) {
    if (b.spec.name.empty()) JsonInput::fail("name", "is required");
    if (b.spec.directory_id.empty()) JsonInput::fail("tenant_id", "is required (the Entra directory id)");
    if (b.spec.client_id.empty()) JsonInput::fail("client_id", "is required");
    if (!b.client_secret && !b.private_key)
      JsonInput::fail("client_secret", "a credential is required: client_secret, or certificate and private_key");
  }
}

std::optional<storage::SealedSecret> seal_body(storage::SecretSealer* sealer, const std::string& tenant_id,
                                               const TenantBody& b) {
  const auto& plain = b.client_secret ? b.client_secret : b.private_key;
  if (!plain) return std::nullopt;
  if (!sealer)
    throw Error(Errc::unavailable, "cannot seal the tenant's credential: the repository key is not configured");
  auto ctx = storage::Catalog::secret_context(tenant_id);
  return storage::SealedSecret{ctx, sealer->seal(ctx, *plain)};
}

void add_catalog_routes(net::Router& r, std::shared_ptr<Ctx> ctx) {
  auto* db = ctx->o.db;
  auto* sealer = ctx->o.sealer;
  auto* content = ctx->o.content;
  storage::Catalog cat;

  // --- tenants
  r.add("GET", "/api/v1/tenants",
        secured(ctx, kAnyRole, [db, cat](Request& req, const Principal& p, AuditNote&) -> awaitable<Response> {
          int limit = limit_param(req, 100, 1000);
          std::optional<std::string> after;  // names are unique: the last name shown is the position
          if (auto j = storage::read_page_cursor(req.query_param("cursor")); !j.is_null()) {
            if (j.size() != 1 || !j[0].is_string())
              throw Error(Errc::bad_request, "parameter 'cursor': not a cursor this API returned");
            after = j[0].get<std::string>();
          }
          auto list = [&](storage::PgConnection& c) { return cat.list_tenants(c, scope_of(p)); };
          auto tenants = co_await db->run(list);
          nlohmann::json items = nlohmann::json::array();
          std::optional<std::string> next;
          for (auto& t : tenants) {  // ordered by name, which is unique: the name is the cursor
            if (after && t.spec.name <= *after) continue;
            if (static_cast<int>(items.size()) == limit) {
              next = storage::page_cursor(nlohmann::json::array({items.back()["name"]}));
              break;
            }
            items.push_back(t.to_json());
          }
          co_return Response::json(200, {{"items", items}, {"next_cursor", cursor_json(next)}});
        }));
  r.add("POST", "/api/v1/tenants",
        secured(ctx, kOperate, [db, cat, sealer](Request& req, const Principal& p, AuditNote& note) -> awaitable<Response> {
          JsonInput in(req);
          TenantBody b;
          read_tenant_body(in, b, true);
          if (p.tenant_id) throw Error(Errc::forbidden, "a tenant-restricted token cannot register tenants");
          auto id = storage::Catalog::new_tenant_id();
          auto sealed = seal_body(sealer, id, b);
          auto create = [&](storage::PgConnection& c) { return cat.create_tenant(c, id, b.spec, *sealed); };
          auto t = co_await db->run(create);
          note.tenant_id = t.id;
          note.target = "tenant:" + t.id;
          note.detail = {{"name", t.spec.name}, {"auth", to_string(t.spec.auth)}};
          auto res = Response::json(201, t.to_json());
          res.headers.set("Location", "/api/v1/tenants/" + t.id);
          co_return res;
        }));
  auto visible_tenant = [cat](storage::PgConnection& c, const Principal& p, const std::string& id) {
    auto t = cat.get_tenant(c, require_uuid("tenant id", id), scope_of(p));
    if (!t) throw Error(Errc::not_found, "tenant '" + id + "' does not exist");
    return *t;
  };
  r.add("GET", "/api/v1/tenants/{id}",
        secured(ctx, kAnyRole, [db, visible_tenant](Request& req, const Principal& p, AuditNote&) -> awaitable<Response> {
          auto get = [&](storage::PgConnection& c) { return visible_tenant(c, p, req.params["id"]); };
          co_return Response::json(200, (co_await db->run(get)).to_json());
        }));
  r.add("PATCH", "/api/v1/tenants/{id}",
        secured(ctx, kOperate,
                [db, cat, sealer, visible_tenant](Request& req, const Principal& p, AuditNote& note) -> awaitable<Response> {
                  auto id = require_uuid("tenant id", req.params["id"]);  // before the body, as for jobs
                  JsonInput in(req);
                  note.tenant_id = id;
                  note.target = "tenant:" + id;
                  auto get = [&](storage::PgConnection& c) { return visible_tenant(c, p, id); };
                  auto t = co_await db->run(get);
                  TenantBody b;
                  b.spec = t.spec;
                  read_tenant_body(in, b, false);
                  if (b.spec.auth == storage::AuthKind::certificate && t.spec.auth == storage::AuthKind::secret &&
                      !b.private_key)
                    JsonInput::fail("certificate", "switching to a certificate needs certificate and private_key");
                  auto sealed = seal_body(sealer, id, b);
                  auto update = [&](storage::PgConnection& c) { return cat.update_tenant(c, id, b.spec, sealed); };
                  auto u = co_await db->run(update);
                  note.detail = {{"credential_replaced", sealed.has_value()}};
                  co_return Response::json(200, u.to_json());
                }));
  r.add("DELETE", "/api/v1/tenants/{id}",
        secured(ctx, kOperate, [db, cat, visible_tenant](Request& req, const Principal& p, AuditNote& note) -> awaitable<Response> {
          auto id = require_uuid("tenant id", req.params["id"]);
          note.tenant_id = id;
          note.target = "tenant:" + id;
          auto del = [&](storage::PgConnection& c) {
            auto t = visible_tenant(c, p, id);
            cat.delete_tenant(c, t.id);
            return t;
          };
          auto t = co_await db->run(del);
          note.detail = {{"name", t.spec.name}};
          co_return no_content();
        }));
  r.add("GET", "/api/v1/tenants/{id}/owners",
        secured(ctx, kAnyRole, [db, cat, visible_tenant](Request& req, const Principal& p, AuditNote&) -> awaitable<Response> {
          storage::OwnerFilter f;
          if (auto k = req.query_param("kind")) {
            f.kind = storage::parse_owner_kind(*k);
            if (!f.kind) throw Error(Errc::bad_request, "parameter 'kind': expected user, group, site, team or drive");
          }
          if (auto s = req.query_param("state")) {
            if (*s == "active") f.state = storage::OwnerState::active;
            else if (*s == "skipped") f.state = storage::OwnerState::skipped;
            else if (*s == "deleted") f.state = storage::OwnerState::deleted;
            else throw Error(Errc::bad_request, "parameter 'state': expected active, skipped or deleted");
          }
          f.cursor = req.query_param("cursor");
          f.limit = limit_param(req, 100, 1000);
          auto list = [&](storage::PgConnection& c) {
            auto t = visible_tenant(c, p, req.params["id"]);
            return cat.list_owners(c, t.id, f);
          };
          auto page = co_await db->run(list);
          nlohmann::json items = nlohmann::json::array();
          for (auto& o : page.owners) items.push_back(o.to_json());
          co_return Response::json(200, {{"items", items}, {"next_cursor", cursor_json(page.next_cursor)}});
        }));

  // --- snapshots
  r.add("GET", "/api/v1/snapshots",
        secured(ctx, kAnyRole, [db, cat](Request& req, const Principal& p, AuditNote&) -> awaitable<Response> {
          storage::SnapshotFilter f;
          if (auto t = req.query_param("tenant")) f.tenant_id = require_uuid("parameter 'tenant':", *t);
          if (auto o = req.query_param("owner")) f.owner_id = require_uuid("parameter 'owner':", *o);
          if (req.query_param("category")) f.category = category_param(req, true);
          f.cursor = req.query_param("cursor");
          f.limit = limit_param(req, 100, 1000);
          auto list = [&](storage::PgConnection& c) { return cat.list_snapshots(c, f, scope_of(p)); };
          auto page = co_await db->run(list);
          nlohmann::json items = nlohmann::json::array();
          for (auto& s : page.snapshots) items.push_back(s.to_json());
          co_return Response::json(200, {{"items", items}, {"next_cursor", cursor_json(page.next_cursor)}});
        }));

  // --- browse, items, search (restorers)
  r.add("GET", "/api/v1/browse",
        secured(ctx, kRestore, [db, cat](Request& req, const Principal& p, AuditNote&) -> awaitable<Response> {
          storage::BrowseQuery q;
          q.owner_id = require_uuid("parameter 'owner':", required_param(req, "owner"));
          q.category = category_param(req, true);
          q.container_id = req.query_param("container");
          q.at = req.query_param("at");
          q.cursor = req.query_param("cursor");
          q.limit = limit_param(req, 100, 1000);
          q.scope = scope_of(p);
          auto browse = [&](storage::PgConnection& c) { return cat.browse(c, q); };
          auto page = co_await db->run(browse);
          nlohmann::json containers = nlohmann::json::array(), items = nlohmann::json::array();
          for (auto& e : page.containers) containers.push_back(e.to_json());
          for (auto& i : page.items) items.push_back(i.to_json());
          co_return Response::json(200, {{"at", page.at},
                                         {"containers", containers},
                                         {"items", items},
                                         {"next_cursor", cursor_json(page.next_cursor)}});
        }));
  r.add("GET", "/api/v1/items/{id}",
        secured(ctx, kRestore, [db, cat](Request& req, const Principal& p, AuditNote&) -> awaitable<Response> {
          auto id = req.params["id"];
          auto at = req.query_param("at");
          auto get = [&](storage::PgConnection& c) { return cat.get_item(c, id, at, scope_of(p)); };
          auto v = co_await db->run(get);
          if (!v) throw Error(Errc::not_found, "item '" + id + "' does not exist" + (at ? " at '" + *at + "'" : std::string()));
          co_return Response::json(200, v->to_json());
        }));
  r.add("GET", "/api/v1/items/{id}/versions",
        secured(ctx, kRestore, [db, cat](Request& req, const Principal& p, AuditNote&) -> awaitable<Response> {
          auto id = req.params["id"];
          auto cursor = req.query_param("cursor");
          int limit = limit_param(req, 50, 1000);
          auto list = [&](storage::PgConnection& c) { return cat.item_versions(c, id, cursor, limit, scope_of(p)); };
          auto page = co_await db->run(list);
          nlohmann::json items = nlohmann::json::array();
          for (auto& v : page.versions) items.push_back(v.to_json());
          co_return Response::json(200, {{"items", items}, {"next_cursor", cursor_json(page.next_cursor)}});
        }));
  r.add("GET", "/api/v1/items/{id}/content",
        secured(ctx, kRestore, [db, cat, content](Request& req, const Principal& p, AuditNote& note) -> awaitable<Response> {
          auto id = req.params["id"];
          note.record = true;
          note.target = "item:" + id.substr(0, 40);
          auto at = req.query_param("at");
          auto version = req.query_param("version");
          if (at && version) throw Error(Errc::bad_request, "parameter 'version': give 'at' or 'version', not both");
          auto get = [&](storage::PgConnection& c) -> std::optional<storage::ItemVersion> {
            if (!version) return cat.get_item(c, id, at, scope_of(p));
            auto v = cat.get_version(c, *version, scope_of(p));
            if (v && v->item_id != id) v.reset();
            return v;
          };
          auto v = co_await db->run(get);
          if (!v) throw Error(Errc::not_found, "item '" + id + "' does not exist" + (at ? " at '" + *at + "'" : std::string()));
          note.detail = {{"version_id", v->version_id}};
          if (auto range = req.headers.get("Range")) note.detail["range"] = std::string(range->substr(0, 100));
          if (!content) throw Error(Errc::unavailable, "content downloads need the repository, which is not configured");
          co_return content_response(req, *v, *content);
        }));
  r.add("GET", "/api/v1/search",
        secured(ctx, kRestore, [db, cat](Request& req, const Principal& p, AuditNote& note) -> awaitable<Response> {
          note.record = true;
          storage::SearchQuery q;
          q.q = required_param(req, "q");
          if (auto t = req.query_param("tenant")) q.tenant_id = require_uuid("parameter 'tenant':", *t);
          if (auto o = req.query_param("owner")) q.owner_id = require_uuid("parameter 'owner':", *o);
          if (req.query_param("category")) q.category = category_param(req, true);
          q.after = req.query_param("after");
          q.before = req.query_param("before");
          q.at = req.query_param("at");
          q.cursor = req.query_param("cursor");
          q.limit = limit_param(req, 50, 500);
          q.scope = scope_of(p);
          note.tenant_id = q.tenant_id;
          note.detail = {{"q", q.q.substr(0, 200)}};
          if (q.owner_id) note.detail["owner"] = *q.owner_id;
          auto search = [&](storage::PgConnection& c) { return cat.search(c, q); };
          auto page = co_await db->run(search);
          nlohmann::json items = nlohmann::json::array();
          for (auto& v : page.items) items.push_back(v.to_json());
          note.detail["results"] = items.size();
          co_return Response::json(200, {{"items", items},
                                         {"next_cursor", cursor_json(page.next_cursor)},
                                         {"ranked_among", page.ranked_among},
                                         {"truncated", page.truncated}});
        }));
}

}  // namespace

}  // namespace m365vault::api
