// The REST API as an administrator's script uses it: tokens and roles, jobs and
// runs, strict input, tenant restriction and the audit log.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <set>

#include "m365vault/api/health.hpp"
#include "m365vault/api/v1.hpp"
#include "support/daemon.hpp"
#include "support/env.hpp"
#include "support/http_client.hpp"
#include "support/temp_dir.hpp"

using namespace m365vault::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

struct ApiDaemon {
  TempDir dir;
  unsigned short port = free_port();
  std::vector<std::string> env{"M365VAULT_DATA_DIR=" + (dir / "data").string(),
                               "M365VAULT_LISTEN=127.0.0.1:" + std::to_string(port)};
  std::unique_ptr<Daemon> d;
  std::string admin;

  explicit ApiDaemon(std::vector<std::string> extra_env = {}) {
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    d = std::make_unique<Daemon>(DaemonRun{{"serve"}, env, dir / "daemon.log"});
    REQUIRE(wait_for_status(port, "/readyz", 200, 30s).status == 200);
    // The bootstrap token, from the command line, beside the running daemon.
    auto r = run_daemon_command({"token", "create", "--role", "admin", "--name", "root"}, env);
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    auto last = r.output.substr(r.output.rfind("m365v_"));
    admin = last.substr(0, last.find('\n'));
    REQUIRE(admin.size() > 40);
  }
  ~ApiDaemon() {
    d->process().signal(SIGTERM);
    d->process().wait(30s);
  }
  HttpResult call(const std::string& method, const std::string& target, const std::string& token,
                  const std::optional<json>& body = std::nullopt, const std::string& content_type = "application/json",
                  const std::string& raw_body = "") {
    HttpRequest r;
    r.method = method;
    r.port = port;
    r.target = target;
    if (!token.empty()) r.headers.push_back({"Authorization", "Bearer " + token});
    if (body || !raw_body.empty()) {
      r.headers.push_back({"Content-Type", content_type});
      r.body = body ? body->dump() : raw_body;
    }
    return http_request(r);
  }
  std::string token(const std::string& role, const std::string& name, const std::optional<std::string>& tenant = {}) {
    json b = {{"name", name}, {"role", role}};
    if (tenant) b["tenant_id"] = *tenant;
    auto r = call("POST", "/api/v1/tokens", admin, b);
    REQUIRE(r.status == 201);
    return json::parse(r.body)["token"];
  }
};

std::string code_of(const HttpResult& r) { return json::parse(r.body).value("code", ""); }

}  // namespace

TEST_CASE("api: no token, a wrong token or a revoked one is 401 with WWW-Authenticate", "[e2e]") {
  ApiDaemon a;
  auto none = a.call("GET", "/api/v1/jobs", "");
  CHECK(none.status == 401);
  CHECK(none.header("www-authenticate") == "Bearer realm=\"m365vault\"");
  CHECK(none.header("content-type") == "application/problem+json");
  CHECK(code_of(none) == "unauthorized");
  CHECK(a.call("GET", "/api/v1/jobs", "m365v_notarealtoken").status == 401);
  CHECK(a.call("GET", "/healthz", "").status == 200);  // health stays open

  auto viewer = a.token("viewer", "dash");
  CHECK(a.call("GET", "/api/v1/jobs", viewer).status == 200);
  auto list = json::parse(a.call("GET", "/api/v1/tokens", a.admin).body)["items"];
  std::string viewer_id;
  for (auto& t : list) {
    CHECK_FALSE(t.contains("token"));  // secrets are never listed
    if (t["name"] == "dash") viewer_id = t["id"];
  }
  REQUIRE_FALSE(viewer_id.empty());
  CHECK(a.call("DELETE", "/api/v1/tokens/" + viewer_id, a.admin).status == 204);
  CHECK(a.call("GET", "/api/v1/jobs", viewer).status == 401);
}

TEST_CASE("api: roles decide who may change jobs and read tokens and audit", "[e2e]") {
  ApiDaemon a;
  auto viewer = a.token("viewer", "v");
  auto restorer = a.token("restorer", "r");
  auto op = a.token("operator", "o");
  json job = {{"name", "nightly"}, {"schedule", "0 2 * * *"}, {"timezone", "Europe/Berlin"}};
  CHECK(a.call("POST", "/api/v1/jobs", viewer, job).status == 403);
  CHECK(a.call("POST", "/api/v1/jobs", restorer, job).status == 403);
  auto created = a.call("POST", "/api/v1/jobs", op, job);
  REQUIRE(created.status == 201);
  auto j = json::parse(created.body);
  CHECK(j["kind"] == "backup");
  CHECK(j["next_fire_at"].is_string());
  CHECK(created.header("location") == "/api/v1/jobs/" + j["id"].get<std::string>());
  for (auto* t : {&viewer, &restorer, &op}) CHECK(a.call("GET", "/api/v1/jobs/" + j["id"].get<std::string>(), *t).status == 200);
  for (auto* t : {&viewer, &restorer, &op}) {
    CHECK(a.call("GET", "/api/v1/tokens", *t).status == 403);
    CHECK(a.call("GET", "/api/v1/audit", *t).status == 403);
  }
  auto forbidden = a.call("DELETE", "/api/v1/jobs/" + j["id"].get<std::string>(), viewer);
  CHECK(forbidden.status == 403);
  CHECK(code_of(forbidden) == "forbidden");
}

TEST_CASE("api: jobs and runs, from creation to cancellation, with the audit trail", "[e2e]") {
  ApiDaemon a;
  auto created = a.call("POST", "/api/v1/jobs", a.admin, json{{"name", "mail"}, {"params", {{"categories", {"mail"}}}}});
  REQUIRE(created.status == 201);
  auto id = json::parse(created.body)["id"].get<std::string>();

  auto patched = a.call("PATCH", "/api/v1/jobs/" + id, a.admin, json{{"schedule", "*/5 * * * *"}, {"max_attempts", 5}});
  REQUIRE(patched.status == 200);
  CHECK(json::parse(patched.body)["schedule"] == "*/5 * * * *");
  CHECK(json::parse(patched.body)["max_attempts"] == 5);
  CHECK(json::parse(patched.body)["params"]["categories"][0] == "mail");

  auto run = a.call("POST", "/api/v1/jobs/" + id + "/run", a.admin);
  REQUIRE(run.status == 202);
  auto run_id = json::parse(run.body)["id"].get<std::string>();
  CHECK(json::parse(run.body)["state"] == "queued");
  auto runs = json::parse(a.call("GET", "/api/v1/runs?job=" + id, a.admin).body)["items"];
  REQUIRE(runs.size() == 1);
  CHECK(runs[0]["id"] == run_id);
  CHECK(a.call("GET", "/api/v1/runs?state=queued", a.admin).status == 200);

  auto cancelled = a.call("POST", "/api/v1/runs/" + run_id + "/cancel", a.admin);
  REQUIRE(cancelled.status == 202);
  CHECK(json::parse(cancelled.body)["state"] == "cancelled");
  auto again = a.call("POST", "/api/v1/runs/" + run_id + "/cancel", a.admin);
  CHECK(again.status == 409);
  CHECK(code_of(again) == "conflict");
  CHECK(a.call("GET", "/api/v1/runs/" + run_id + "/events", a.admin).status == 200);

  CHECK(a.call("DELETE", "/api/v1/jobs/" + id, a.admin).status == 204);
  CHECK(a.call("GET", "/api/v1/jobs/" + id, a.admin).status == 404);

  auto audit = json::parse(a.call("GET", "/api/v1/audit?limit=50", a.admin).body)["items"];
  std::set<std::string> actions;
  for (auto& e : audit) actions.insert(e["action"].get<std::string>() + " " + std::to_string(e["outcome"].get<int>()));
  CHECK(actions.count("POST /api/v1/jobs 201"));
  CHECK(actions.count("PATCH /api/v1/jobs/" + id + " 200"));
  CHECK(actions.count("POST /api/v1/jobs/" + id + "/run 202"));
  CHECK(actions.count("POST /api/v1/runs/" + run_id + "/cancel 202"));
  CHECK(actions.count("POST /api/v1/runs/" + run_id + "/cancel 409"));
  CHECK(actions.count("DELETE /api/v1/jobs/" + id + " 204"));
  CHECK(actions.count("token create 201"));  // the CLI bootstrap
  for (auto& e : audit)
    if (e["action"] == "POST /api/v1/jobs") CHECK(e["actor"] == "root");
}

TEST_CASE("api: bad input is a 4xx naming the problem, and nothing changes", "[e2e]") {
  ApiDaemon a;
  auto post = [&](const std::string& raw, const std::string& ct = "application/json") {
    return a.call("POST", "/api/v1/jobs", a.admin, std::nullopt, ct, raw);
  };
  auto detail = [](const HttpResult& r) { return json::parse(r.body)["detail"].get<std::string>(); };
  auto r1 = a.call("POST", "/api/v1/jobs", a.admin, json{{"name", "x"}, {"bogus", 1}});
  CHECK(r1.status == 400);
  CHECK_THAT(detail(r1), Catch::Contains("field 'bogus': unknown field"));
  auto r2 = a.call("POST", "/api/v1/jobs", a.admin, json{{"name", 5}});
  CHECK(r2.status == 400);
  CHECK_THAT(detail(r2), Catch::Contains("field 'name': must be a string"));
  auto r3 = a.call("POST", "/api/v1/jobs", a.admin, json{{"name", "x"}, {"schedule", "99 * * * *"}});
  CHECK(r3.status == 400);
  CHECK_THAT(detail(r3), Catch::Contains("minute: 99"));
  auto r4 = a.call("POST", "/api/v1/jobs", a.admin, json{{"name", "x"}, {"max_attempts", -1}});
  CHECK(r4.status == 400);
  CHECK(a.call("POST", "/api/v1/jobs", a.admin, json{{"name", "x"}, {"max_attempts", 1e300}}).status == 400);
  CHECK(post("{\"name\": ").status == 400);
  CHECK(post("{\"name\": \"\xff\xfe\"}").status == 400);           // invalid UTF-8
  CHECK(post(std::string(100, '[') + std::string(100, ']')).status == 400);  // deeply nested
  CHECK(post("[1,2]").status == 400);
  CHECK(post("{\"name\":\"x\"}", "text/plain").status == 415);
  CHECK(post("{\"name\":\"" + std::string(2 * 1024 * 1024, 'a') + "\"}").status == 413);
  auto sql = a.call("POST", "/api/v1/jobs", a.admin, json{{"name", "x'); DROP TABLE jobs; --"}});
  CHECK(sql.status == 201);  // just a name
  CHECK(a.call("GET", "/api/v1/jobs/not-a-uuid", a.admin).status == 400);
  CHECK(a.call("GET", "/api/v1/jobs/..%2F..%2Fetc%2Fpasswd", a.admin).status == 400);
  CHECK(a.call("GET", "/api/v1/runs?limit=-5", a.admin).status == 400);
  CHECK(a.call("GET", "/api/v1/runs?limit=99999999999999", a.admin).status == 400);
  CHECK(a.call("GET", "/api/v1/runs?cursor=zzz", a.admin).status == 400);
  CHECK(a.call("GET", "/api/v1/runs?state=done", a.admin).status == 400);
  CHECK(a.call("POST", "/api/v1/jobs", a.admin, json{{"name", "x'); DROP TABLE jobs; --"}}).status == 409);
  // Only the one valid job exists; the daemon is still up.
  auto jobs = json::parse(a.call("GET", "/api/v1/jobs", a.admin).body)["items"];
  CHECK(jobs.size() == 1);
  CHECK(http_get(a.port, "/readyz").status == 200);
}

TEST_CASE("api: a tenant-restricted token never sees another tenant's jobs", "[e2e]") {
  ApiDaemon a;
  const std::string tenant_a = "11111111-1111-4111-8111-111111111111";
  const std::string tenant_b = "22222222-2222-4222-8222-222222222222";
  auto ja = json::parse(a.call("POST", "/api/v1/jobs", a.admin, json{{"name", "a"}, {"tenant_id", tenant_a}}).body);
  auto op_b = a.token("operator", "op-b", tenant_b);
  auto list = json::parse(a.call("GET", "/api/v1/jobs", op_b).body)["items"];
  CHECK(list.empty());
  CHECK(a.call("GET", "/api/v1/jobs/" + ja["id"].get<std::string>(), op_b).status == 404);
  CHECK(a.call("POST", "/api/v1/jobs/" + ja["id"].get<std::string>() + "/run", op_b).status == 404);
  CHECK(a.call("POST", "/api/v1/jobs", op_b, json{{"name", "sneaky"}, {"tenant_id", tenant_a}}).status == 403);
  auto own = a.call("POST", "/api/v1/jobs", op_b, json{{"name", "mine"}});
  REQUIRE(own.status == 201);
  CHECK(json::parse(own.body)["tenant_id"] == tenant_b);  // defaults to the token's tenant
  CHECK(json::parse(a.call("GET", "/api/v1/jobs", op_b).body)["items"].size() == 1);
  CHECK(json::parse(a.call("GET", "/api/v1/jobs", a.admin).body)["items"].size() == 2);
}

TEST_CASE("api: repeated authentication failures from one address are slowed down", "[e2e]") {
  ApiDaemon a;
  int last = 0;
  for (int i = 0; i < 25; ++i) last = a.call("GET", "/api/v1/jobs", "m365v_wrong" + std::to_string(i)).status;
  CHECK(last == 429);
  auto blocked = a.call("GET", "/api/v1/jobs", a.admin);
  CHECK(blocked.status == 429);  // even a good token waits out the minute from that address
  CHECK(blocked.header("retry-after") == "60");
}

namespace {
json load_openapi() {
  auto path = require_service("M365VAULT_TEST_OPENAPI_JSON");
  return json::parse(read_text(path));
}
const std::set<std::string> kMethods = {"get", "post", "put", "patch", "delete"};
}  // namespace

TEST_CASE("api: the server's routes and openapi.yaml's operations are the same set", "[e2e]") {
  auto spec = load_openapi();
  m365vault::net::Router router;
  m365vault::api::add_health_routes(router, {});
  m365vault::api::add_v1_routes(router, m365vault::api::ApiOptions{});
  std::set<std::string> served, documented;
  for (auto& [method, path] : router.routes()) served.insert(method + " " + path);
  for (auto& [path, item] : spec["paths"].items())
    for (auto& [method, op] : item.items())
      if (kMethods.count(method)) {
        std::string m = method;
        for (auto& ch : m) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        documented.insert(m + " " + path);
      }
  CHECK(served == documented);
}

TEST_CASE("api: role matrix from openapi.yaml x-roles, for every operation and role", "[e2e]") {
  auto spec = load_openapi();
  // One unauthenticated call per operation: more than the default failure budget
  // of an address per minute.
  ApiDaemon a({"M365VAULT_SERVER_AUTH_FAILURES_PER_MINUTE=100000"});
  std::map<std::string, std::string> tokens = {{"admin", a.admin},
                                               {"operator", a.token("operator", "m-op")},
                                               {"restorer", a.token("restorer", "m-re")},
                                               {"viewer", a.token("viewer", "m-vi")}};
  auto tenant_op = a.token("operator", "m-op-t", std::string("33333333-3333-4333-8333-333333333333"));
  int checked = 0;
  for (auto& [path, item] : spec["paths"].items()) {
    if (path.rfind("/api/v1/", 0) != 0) continue;
    for (auto& [method, op] : item.items()) {
      if (!kMethods.count(method)) continue;
      REQUIRE(op.contains("x-roles"));  // every API operation says who may call it
      std::set<std::string> allowed = op["x-roles"].get<std::set<std::string>>();
      std::string target = path;
      for (auto pos = target.find('{'); pos != std::string::npos; pos = target.find('{'))
        target.replace(pos, target.find('}', pos) - pos + 1, "44444444-4444-4444-8444-444444444444");
      std::string m = method;
      for (auto& ch : m) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      std::optional<json> body;
      if (m == "POST" || m == "PATCH" || m == "PUT") body = json::object();
      INFO(m << " " << target);
      CHECK(a.call(m, target, "", body).status == 401);
      for (auto& [role, token] : tokens) {
        INFO("role " << role);
        auto status = a.call(m, target, token, body).status;
        if (allowed.count(role)) {
          CHECK(status != 401);
          CHECK(status != 403);
          CHECK(status < 500);
        } else {
          CHECK(status == 403);
        }
        ++checked;
      }
      auto st = a.call(m, target, tenant_op, body).status;
      CHECK(st == (allowed.count("operator") ? st : 403));
      CHECK(st != 401);
      CHECK(st < 500);
    }
  }
  CHECK(checked >= 14 * 4);
}
