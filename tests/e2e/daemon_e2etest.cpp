// m365vaultd as an administrator meets it: started as a process, driven over HTTP
// and with signals.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <csignal>
#include <filesystem>
#include <sstream>
#include <thread>

#include "m365vault/core/process.hpp"
#include "m365vault/storage/embedded_pg.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/temp_dir.hpp"
#include "support/log.hpp"

using namespace m365vault;
using namespace m365vault::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> base_env(const TempDir& dir, unsigned short port) {
  return {"M365VAULT_DATA_DIR=" + (dir / "data").string(), "M365VAULT_LISTEN=127.0.0.1:" + std::to_string(port)};
}

// No PostgreSQL process is left running on this data directory.
bool no_postgres_left(const fs::path& data_dir) {
  return processes_matching((data_dir / "pg" / "data").string()).empty() &&
         !fs::exists(data_dir / "pg" / "data" / "postmaster.pid");
}

std::shared_ptr<spdlog::logger> quiet() {
  return quiet_logger();
}

}  // namespace

TEST_CASE("a config with an unknown key or a bad listen address exits 2 naming the key", "[e2e]") {
  TempDir dir;
  write_file(dir / "bad.toml", "[server]\nlisten = \"127.0.0.1:1\"\nlisen = \"x\"\n");
  auto r = run_daemon_command({"--config", (dir / "bad.toml").string(), "serve"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("config key 'server.lisen': unknown key"));

  write_file(dir / "nope.toml", "[server]\nlisten = \"nope\"\n");
  auto r2 = run_daemon_command({"--config", (dir / "nope.toml").string(), "serve"});
  CHECK(r2.exit_code == 2);
  CHECK_THAT(r2.output, Catch::Contains("config key 'server.listen'"));
  // One line, naming the key: nothing else was started.
  CHECK(std::count(r2.output.begin(), r2.output.end(), '\n') == 1);

  auto r3 = run_daemon_command({"serve"}, {"M365VAULT_LISTEN=nope"});
  CHECK(r3.exit_code == 2);
  CHECK_THAT(r3.output, Catch::Contains("config key 'server.listen'"));

  auto usage = run_daemon_command({"frobnicate"});
  CHECK(usage.exit_code == 2);
  auto ver = run_daemon_command({"--version"});
  CHECK(ver.exit_code == 0);
  CHECK_THAT(ver.output, Catch::StartsWith("m365vaultd "));
  auto help = run_daemon_command({"--help"});
  CHECK(help.exit_code == 0);
  CHECK_THAT(help.output, Catch::Contains("demo"));
}

TEST_CASE("with no database URL the daemon runs its own PostgreSQL, is ready, stops cleanly and starts again",
          "[e2e]") {
  TempDir dir;
  auto port = free_port();
  for (int round = 0; round < 2; ++round) {
    INFO("start number " << round + 1);
    Daemon d({{"serve"}, base_env(dir, port), dir / ("daemon" + std::to_string(round) + ".log")});
    auto t0 = std::chrono::steady_clock::now();
    auto ready = wait_for_status(port, "/readyz", 200, 30s);
    INFO(d.output());
    REQUIRE(ready.status == 200);
    CHECK(std::chrono::steady_clock::now() - t0 < 30s);
    CHECK(nlohmann::json::parse(ready.body)["checks"]["database"] == "ok");
    CHECK(http_get(port, "/healthz").status == 200);
    CHECK_FALSE(processes_matching((dir / "data" / "pg" / "data").string()).empty());

    d.process().signal(SIGTERM);
    auto code = d.process().wait(30s);
    INFO(d.output());
    REQUIRE(code.has_value());
    CHECK(*code == 0);
    CHECK(no_postgres_left(dir / "data"));
    // The buffer cache outlives the stop: autoprewarm wrote its list of blocks,
    // which the next start reads back.
    CHECK(fs::exists(dir / "data" / "pg" / "data" / "autoprewarm.blocks"));
  }
}

TEST_CASE("after a SIGKILL the next start takes over the orphaned PostgreSQL", "[e2e]") {
  TempDir dir;
  auto port = free_port();
  {
    Daemon d({{"serve"}, base_env(dir, port), dir / "first.log"});
    REQUIRE(wait_for_status(port, "/readyz", 200, 30s).status == 200);
    d.process().signal(SIGKILL);
    d.process().wait(10s);
  }
  // The cluster outlived its daemon.
  REQUIRE_FALSE(processes_matching((dir / "data" / "pg" / "data").string()).empty());
  Daemon d2({{"serve"}, base_env(dir, port), dir / "second.log"});
  auto ready = wait_for_status(port, "/readyz", 200, 30s);
  INFO(d2.output());
  REQUIRE(ready.status == 200);
  CHECK_THAT(d2.output(), Catch::Contains("still up; restarting it"));
  d2.process().signal(SIGTERM);
  REQUIRE(d2.process().wait(30s) == std::optional<int>(0));
  CHECK(no_postgres_left(dir / "data"));
}

TEST_CASE("readiness turns 503 naming the database while PostgreSQL is down, 200 when it is back", "[e2e]") {
  TempDir dir;
  storage::EmbeddedPgOptions o;
  o.root = dir / "pg";
  if (::geteuid() == 0) o.run_as = lookup_user("m365vault");
  storage::EmbeddedPostgres pg(o, quiet());
  pg.start();
  auto port = free_port();
  auto env = base_env(dir, port);
  env.push_back("M365VAULT_DATABASE_URL=" + pg.conninfo());
  Daemon d({{"serve"}, env, dir / "daemon.log"});
  REQUIRE(wait_for_status(port, "/readyz", 200, 30s).status == 200);

  pg.stop();
  auto down = wait_for_status(port, "/readyz", 503, 10s);
  INFO(d.output());
  REQUIRE(down.status == 503);
  CHECK(down.header("content-type") == "application/problem+json");
  auto body = nlohmann::json::parse(down.body);
  CHECK(body["code"] == "unavailable");
  CHECK_THAT(body["detail"].get<std::string>(), Catch::Contains("database"));
  CHECK(body["checks"]["database"] != "ok");
  CHECK(http_get(port, "/healthz").status == 200);  // alive, just not ready
  auto metrics = http_get(port, "/metrics").body;
  CHECK_THAT(metrics, Catch::Contains("m365vault_dependency_up{dependency=\"database\"} 0"));

  pg.start();
  CHECK(wait_for_status(port, "/readyz", 200, 15s).status == 200);
  d.process().signal(SIGTERM);
  CHECK(d.process().wait(30s) == std::optional<int>(0));
}

TEST_CASE("SIGTERM lets a request in flight finish, then the daemon exits 0", "[e2e]") {
  TempDir dir;
  auto port = free_port();
  Daemon d({{"serve"}, base_env(dir, port), dir / "daemon.log"});
  REQUIRE(wait_for_status(port, "/readyz", 200, 30s).status == 200);

  namespace asio = boost::asio;
  asio::io_context ioc;
  asio::ip::tcp::socket s(ioc);
  s.connect({asio::ip::make_address("127.0.0.1"), port});
  // Half a request: the server is now busy with it.
  asio::write(s, asio::buffer(std::string("GET /readyz HTTP/1.1\r\nHost: x\r\n")));
  std::this_thread::sleep_for(200ms);
  d.process().signal(SIGTERM);
  REQUIRE(d.wait_for_output("draining", 5s));
  // New connections are refused while it drains.
  CHECK(http_get(port, "/healthz", 1000ms).status == 0);
  asio::write(s, asio::buffer(std::string("\r\n")));
  std::string reply;
  char buf[4096];
  boost::system::error_code ec;
  while (!ec) {
    auto n = s.read_some(asio::buffer(buf), ec);
    reply.append(buf, n);
  }
  CHECK_THAT(reply, Catch::StartsWith("HTTP/1.1 200"));
  CHECK_THAT(reply, Catch::Contains("\"database\":\"ok\""));
  auto code = d.process().wait(30s);
  INFO(d.output());
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(no_postgres_left(dir / "data"));
}

TEST_CASE("systemd notifications: READY=1 once listening, WATCHDOG=1, STOPPING=1", "[e2e]") {
  TempDir dir;
  auto sock_path = (dir / "notify.sock").string();
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock_path.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  auto port = free_port();
  auto env = base_env(dir, port);
  env.push_back("NOTIFY_SOCKET=" + sock_path);
  env.push_back("WATCHDOG_USEC=400000");
  Daemon d({{"serve"}, env, dir / "daemon.log"});

  std::vector<std::string> messages;
  auto receive_until = [&](const std::string& needle, std::chrono::seconds within) {
    auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      char buf[1024];
      auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        messages.emplace_back(buf, static_cast<size_t>(n));
        if (messages.back().find(needle) != std::string::npos) return true;
      }
    }
    return false;
  };
  REQUIRE(receive_until("READY=1", 30s));
  // The listener is bound by the time READY=1 is sent.
  CHECK(http_get(port, "/healthz").status == 200);
  CHECK(receive_until("WATCHDOG=1", 3s));
  d.process().signal(SIGTERM);
  CHECK(receive_until("STOPPING=1", 5s));
  CHECK(d.process().wait(30s) == std::optional<int>(0));
  ::close(fd);
}

TEST_CASE("JSON logs hold one object per line and SIGHUP re-reads the log level", "[e2e]") {
  TempDir dir;
  auto port = free_port();
  auto cfg = dir / "m365vault.toml";
  write_file(cfg, "[log]\nlevel = \"warn\"\nformat = \"json\"\n");
  Daemon d({{"--config", cfg.string(), "serve"}, base_env(dir, port), dir / "daemon.log"});
  REQUIRE(wait_for_status(port, "/readyz", 200, 30s).status == 200);
  http_get(port, "/healthz");
  std::this_thread::sleep_for(200ms);
  CHECK(d.output().find("GET /healthz") == std::string::npos);  // access lines are info

  write_file(cfg, "[log]\nlevel = \"info\"\nformat = \"json\"\n");
  d.process().signal(SIGHUP);
  REQUIRE(d.wait_for_output("configuration reloaded", 5s));
  HttpRequest r;
  r.port = port;
  r.target = "/healthz";
  r.headers = {{"X-Request-Id", "hup-check-1"}};
  CHECK(http_request(r).status == 200);
  CHECK(d.wait_for_output("req=hup-check-1", 5s));
  d.process().signal(SIGTERM);
  CHECK(d.process().wait(30s) == std::optional<int>(0));

  std::istringstream lines(d.output());
  std::string line;
  int parsed = 0;
  while (std::getline(lines, line)) {
    INFO(line);
    auto j = nlohmann::json::parse(line);  // throws, failing the test, on a non-JSON line
    CHECK(j.contains("ts"));
    CHECK(j.contains("level"));
    CHECK(j.contains("msg"));
    ++parsed;
  }
  CHECK(parsed >= 3);
}

TEST_CASE("TLS from server.tls_cert and server.tls_key", "[e2e]") {
  TempDir dir;
  auto key = (dir / "key.pem").string(), cert = (dir / "cert.pem").string();
  ProcessOptions gen;
  gen.argv = {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
              "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"};
  gen.capture_output = true;
  REQUIRE(run_process(gen).exit_code == 0);
  auto port = free_port();
  auto env = base_env(dir, port);
  env.push_back("M365VAULT_SERVER_TLS_CERT=" + cert);
  env.push_back("M365VAULT_SERVER_TLS_KEY=" + key);
  Daemon d({{"serve"}, env, dir / "daemon.log"});
  REQUIRE(d.wait_for_output("listening on https://", 30s));
  HttpRequest r;
  r.port = port;
  r.target = "/healthz";
  r.tls = true;
  r.ca_file = cert;
  auto res = http_request(r);
  CHECK(res.status == 200);
  CHECK(http_get(port, "/healthz", 2000ms).status == 0);  // plain HTTP is not spoken there
  d.process().signal(SIGTERM);
  CHECK(d.process().wait(30s) == std::optional<int>(0));
}

TEST_CASE("demo runs on embedded defaults and says where everything is", "[e2e]") {
  TempDir dir;
  auto port = free_port();
  Daemon d({{"demo"}, base_env(dir, port), dir / "demo.log"});
  REQUIRE(wait_for_status(port, "/readyz", 200, 30s).status == 200);
  REQUIRE(d.wait_for_output("m365vault demo is running", 5s));
  CHECK_THAT(d.output(), Catch::Contains("http://127.0.0.1:" + std::to_string(port)));
  CHECK(fs::exists(dir / "data" / "pg" / "data" / "PG_VERSION"));
  d.process().signal(SIGINT);
  CHECK(d.process().wait(30s) == std::optional<int>(0));
  CHECK(no_postgres_left(dir / "data"));
}

TEST_CASE("job commands add, list, show, run and remove jobs beside a running daemon", "[e2e]") {
  TempDir dir;
  auto port = free_port();
  auto env = base_env(dir, port);
  Daemon d({{"serve"}, env, dir / "daemon.log"});
  REQUIRE(wait_for_status(port, "/readyz", 200, 30s).status == 200);

  auto add = run_daemon_command({"job", "add", "--name", "nightly", "--schedule", "0 2 * * *", "--timezone",
                                 "Europe/Berlin", "--params", "{\"categories\":[\"mail\"]}"},
                                env);
  INFO(add.output);
  REQUIRE(add.exit_code == 0);
  CHECK_THAT(add.output, Catch::Contains("job 'nightly' added"));

  auto bad = run_daemon_command({"job", "add", "--name", "broken", "--schedule", "0 25 * * *"}, env);
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.output, Catch::Contains("hour: 25 is outside 0-23"));
  CHECK(run_daemon_command({"job", "add", "--name", "x", "--colour", "red"}, env).exit_code == 2);
  auto dup = run_daemon_command({"job", "add", "--name", "nightly"}, env);
  CHECK(dup.exit_code == 1);
  CHECK_THAT(dup.output, Catch::Contains("exists already"));

  auto list = run_daemon_command({"job", "list"}, env);
  CHECK(list.exit_code == 0);
  CHECK_THAT(list.output, Catch::Contains("0 2 * * * Europe/Berlin"));

  auto run = run_daemon_command({"job", "run", "nightly"}, env);
  CHECK(run.exit_code == 0);
  CHECK_THAT(run.output, Catch::Contains("queued"));
  auto show = run_daemon_command({"job", "show", "nightly"}, env);
  CHECK(show.exit_code == 0);
  CHECK_THAT(show.output, Catch::Contains("\"categories\""));
  CHECK_THAT(show.output, Catch::Contains("queued"));

  CHECK(run_daemon_command({"job", "rm", "nightly"}, env).exit_code == 0);
  CHECK(run_daemon_command({"job", "show", "nightly"}, env).exit_code == 1);
  // The daemon kept running through all of it (its PostgreSQL was shared, not restarted).
  CHECK(http_get(port, "/readyz").status == 200);
  d.process().signal(SIGTERM);
  CHECK(d.process().wait(30s) == std::optional<int>(0));
}
