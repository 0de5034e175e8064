#pragma once
// The API end-to-end tests' daemon on real data: m365vaultd serve on a scratch
// database with a filesystem repository, set up as an administrator does, with
// every response held to openapi.yaml.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "emulator/emulator_support.hpp"
#include "m365vault/storage/crypto.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/openapi_check.hpp"
#include "support/pg.hpp"
#include "support/temp_dir.hpp"

namespace m365vault::test {

using namespace std::chrono_literals;
using json = nlohmann::json;

inline std::string sha_hex(const std::string& s) { return storage::crypto::to_hex(storage::crypto::sha256(s)); }

inline std::string url_encode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += kHex[ch >> 4];
      out += kHex[ch & 15];
    }
  }
  return out;
}

// m365vaultd serve on a scratch database with a filesystem repository, set up the
// way an administrator does: a config file, a passphrase file, `repo init`, then serve.
struct DataDaemon {
  TempDir dir{"api-data"};
  ScratchDatabase db;
  unsigned short port = free_port();
  std::string config = (dir / "m365vault.toml").string();
  std::unique_ptr<Daemon> d;
  std::string admin;
  OpenApiCheck spec = OpenApiCheck::from_env();
  int request_no = 0;
  std::vector<std::string> audited_request_ids;  // searches and downloads this test made

  DataDaemon() {
    write_file(dir / "passphrase", "correct horse battery staple\n");
    write_file(dir / "m365vault.toml", "[server]\nlisten = \"127.0.0.1:" + std::to_string(port) +
                                           "\"\nauth_failures_per_minute = 100000\n"
                                           "[database]\nurl = \"" + db.conninfo() + "\"\n"
                                           "[storage]\ndata_dir = \"" + (dir / "data").string() + "\"\n"
                                           "repository = \"file://" + (dir / "repo").string() + "\"\n"
                                           "passphrase_file = \"" + (dir / "passphrase").string() + "\"\n");
    auto init = run_daemon_command({"--config", config, "repo", "init"});
    INFO(init.output);
    REQUIRE(init.exit_code == 0);
    d = std::make_unique<Daemon>(DaemonRun{{"--config", config, "serve"}, {}, dir / "daemon.log"});
    auto ready = wait_for_status(port, "/readyz", 200, 60s);
    INFO(d->output());
    REQUIRE(ready.status == 200);
    auto r = run_daemon_command({"--config", config, "token", "create", "--role", "admin", "--name", "root"});
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    auto last = r.output.substr(r.output.rfind("m365v_"));
    admin = last.substr(0, last.find('\n'));
  }
  ~DataDaemon() {
    d->process().signal(SIGTERM);
    d->process().wait(30s);
  }

  // One request as given (any method, headers, body and content type); every
  // response is checked against openapi.yaml and must echo the request id.
  HttpResult send(HttpRequest r) {
    r.port = port;
    if (r.timeout == HttpRequest{}.timeout) r.timeout = 30s;
    const auto request_id = "api-data-" + std::to_string(++request_no);
    r.headers.push_back({"X-Request-Id", request_id});
    auto res = http_request(r);
    auto problems = spec.check_response(r.method, r.target, res.status, res.header("content-type"), res.body);
    const bool json_body = res.header("content-type").find("json") != std::string::npos;
    INFO(r.method << " " << r.target.substr(0, 300) << " -> " << res.status << " "
                  << (json_body ? res.body.substr(0, 400) : std::string()));
    for (auto& p : problems) FAIL_CHECK("openapi: " << p);
    CHECK(res.header("x-request-id") == request_id);
    const auto path = r.target.substr(0, r.target.find('?'));
    if (path == "/api/v1/search" || (path.size() > 8 && path.substr(path.size() - 8) == "/content"))
      audited_request_ids.push_back(request_id);
    return res;
  }
  HttpResult call(const std::string& method, const std::string& target, const std::string& token,
                  const std::optional<json>& body = std::nullopt,
                  std::vector<std::pair<std::string, std::string>> headers = {}) {
    HttpRequest r;
    r.method = method;
    r.target = target;
    r.headers = std::move(headers);
    if (!token.empty()) r.headers.push_back({"Authorization", "Bearer " + token});
    if (body) {
      r.headers.push_back({"Content-Type", "application/json"});
      r.body = body->dump();
    }
    return send(std::move(r));
  }
  json get_json(const std::string& target, const std::string& token, int expect = 200) {
    auto r = call("GET", target, token);
    INFO("GET " << target << " -> " << r.status << " " << r.body.substr(0, 400));
    REQUIRE(r.status == expect);
    return json::parse(r.body);
  }
  std::string token(const std::string& role, const std::string& name, const std::optional<std::string>& tenant = {}) {
    json b = {{"name", name}, {"role", role}};
    if (tenant) b["tenant_id"] = *tenant;
    auto r = call("POST", "/api/v1/tokens", admin, b);
    REQUIRE(r.status == 201);
    return json::parse(r.body)["token"];
  }
  // Registers the emulator's tenant as an administrator does: its secret, the
  // emulator as Graph and login endpoint and its CA. The response, unchecked.
  HttpResult register_tenant(const EmulatorProcess& emu, const TestTenant& t) {
    return call("POST", "/api/v1/tenants", admin,
                json{{"name", "contoso"}, {"tenant_id", t.tenant}, {"client_id", t.client}, {"client_secret", t.secret},
                     {"graph_url", emu.base()}, {"login_url", emu.base()}, {"ca_file", emu.ca()}});
  }
  // register_tenant, required to succeed; the tenant's id.
  std::string add_tenant(const EmulatorProcess& emu, const TestTenant& t) {
    auto created = register_tenant(emu, t);
    REQUIRE(created.status == 201);
    return json::parse(created.body)["id"].get<std::string>();
  }
  // A job backing up one category of the tenant, created and run to its end.
  struct JobRun {
    std::string job_id;
    json run;
  };
  JobRun backup(const std::string& tenant_id, const std::string& category) {
    auto job = call("POST", "/api/v1/jobs", admin,
                    json{{"name", category}, {"tenant_id", tenant_id}, {"params", {{"categories", {category}}}}});
    REQUIRE(job.status == 201);
    JobRun out;
    out.job_id = json::parse(job.body)["id"].get<std::string>();
    out.run = run_job(out.job_id);
    return out;
  }
  // Queues a run of the job and waits for the daemon's worker to end it.
  json run_job(const std::string& job_id) {
    auto q = call("POST", "/api/v1/jobs/" + job_id + "/run", admin);
    REQUIRE(q.status == 202);
    auto run_id = json::parse(q.body)["id"].get<std::string>();
    auto deadline = std::chrono::steady_clock::now() + 180s;
    json run;
    for (;;) {
      run = get_json("/api/v1/runs/" + run_id, admin);
      auto st = run["state"].get<std::string>();
      if (st != "queued" && st != "running") break;
      INFO(d->output().substr(d->output().size() > 4000 ? d->output().size() - 4000 : 0));
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(300ms);
    }
    return run;
  }
  // Follows next_cursor to the end; every page at most `limit` long.
  std::vector<json> walk(const std::string& target, const std::string& token, int limit, const std::string& key = "items") {
    std::vector<json> out;
    std::optional<std::string> cursor;
    for (int guard = 0; guard < 1000; ++guard) {
      auto sep = target.find('?') == std::string::npos ? "?" : "&";
      auto page = get_json(target + sep + "limit=" + std::to_string(limit) + (cursor ? "&cursor=" + url_encode(*cursor) : ""),
                           token);
      CHECK(page[key].size() <= static_cast<std::size_t>(limit));
      for (auto& it : page[key]) out.push_back(it);
      if (page["next_cursor"].is_null()) return out;
      cursor = page["next_cursor"].get<std::string>();
    }
    FAIL("pagination never ended: " << target);
    return out;
  }
};

}  // namespace m365vault::test
