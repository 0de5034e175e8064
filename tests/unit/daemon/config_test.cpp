#include <catch2/catch.hpp>

#include <unistd.h>

#include <fstream>

#include "m365vault/core/error.hpp"
#include "m365vault/daemon/config.hpp"
#include "m365vault/storage/embedded_pg.hpp"
#include "wiring.hpp"
#include "support/temp_dir.hpp"

using namespace m365vault;
using namespace m365vault::daemon;
using m365vault::test::TempDir;
using m365vault::test::write_file;

namespace {
// The message of the Error load_config throws (fails the test when it does not throw).
std::string load_error(const std::string& toml, const Environment& env = {}) {
  TempDir dir;
  auto path = (dir / "c.toml").string();
  write_file(path, toml);
  try {
    load_config({path, true}, env);
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_config);
    return e.what();
  }
  FAIL("load_config accepted: " << toml);
  return {};
}
Config load(const std::string& toml, const Environment& env = {}) {
  TempDir dir;
  auto path = (dir / "c.toml").string();
  write_file(path, toml);
  return load_config({path, true}, env);
}
}  // namespace

TEST_CASE("config: defaults when no file exists and none was asked for", "[unit]") {
  auto c = load_config({"/nonexistent/m365vault.toml", false}, {});
  CHECK(c.server.host == "127.0.0.1");
  CHECK(c.server.port == 8080);
  CHECK(c.database.url.empty());
  CHECK(c.storage.data_dir == "/var/lib/m365vault");
  CHECK(c.repository_url() == "file:///var/lib/m365vault/repo");
  CHECK(c.log.level == spdlog::level::info);
}

TEST_CASE("config: a missing file named by --config is an error", "[unit]") {
  CHECK_THROWS_WITH(load_config({"/nonexistent/x.toml", true}, {}), Catch::Contains("'/nonexistent/x.toml' does not exist"));
}

TEST_CASE("config: every documented key parses", "[unit]") {
  auto c = load(R"(
[server]
listen = "[::1]:9090"
max_connections = 10
header_limit = 2048
body_limit = 4096
read_timeout_s = 5
write_timeout_s = 6
idle_timeout_s = 7
shutdown_grace_s = 8
threads = 3
[database]
url = "postgresql://u@db.example/m365"
pool_size = 4
connect_timeout_s = 2
statement_timeout_s = 9
startup_timeout_s = 0
embedded_user = "pguser"
embedded_shared_buffers_mb = 512
[storage]
data_dir = "/srv/m365"
repository = "s3://bucket/prefix"
[graph]
connect_timeout_s = 3
io_timeout_s = 120
max_attempts = 5
max_retry_after_s = 60
[log]
level = "debug"
format = "json"
)");
  CHECK(c.server.host == "::1");
  CHECK(c.server.port == 9090);
  CHECK(c.server.max_connections == 10);
  CHECK(c.server.threads == 3);
  CHECK(c.database.url == "postgresql://u@db.example/m365");
  CHECK(c.database.embedded_user == "pguser");
  CHECK(c.database.embedded_shared_buffers_mb == 512);
  CHECK(c.graph.connect_timeout_s == 3);
  CHECK(c.graph.io_timeout_s == 120);
  CHECK(c.graph.max_attempts == 5);
  CHECK(c.graph.max_retry_after_s == 60);
  CHECK(c.storage.data_dir == "/srv/m365");
  CHECK(c.repository_url() == "s3://bucket/prefix");
  CHECK(c.log.level == spdlog::level::debug);
  CHECK(c.log.format == LogFormat::json);
}

TEST_CASE("config: unknown keys and sections are named", "[unit]") {
  CHECK_THAT(load_error("[server]\nlisten = \"127.0.0.1:1\"\nlisten_port = 5\n"),
             Catch::Contains("config key 'server.listen_port': unknown key"));
  CHECK_THAT(load_error("[srever]\nlisten = \"x\"\n"), Catch::Contains("config key 'srever.listen': unknown key"));
  CHECK_THAT(load_error("loose = 1\n"), Catch::Contains("config key 'loose'"));
}

TEST_CASE("config: wrong types and bad values are named", "[unit]") {
  CHECK_THAT(load_error("[server]\nlisten = \"nope\"\n"), Catch::Contains("config key 'server.listen': expected HOST:PORT"));
  CHECK_THAT(load_error("[server]\nlisten = \"127.0.0.1:99999\"\n"), Catch::Contains("config key 'server.listen'"));
  CHECK_THAT(load_error("[server]\nlisten = 8080\n"), Catch::Contains("config key 'server.listen': expected a string"));
  CHECK_THAT(load_error("[server]\nmax_connections = \"many\"\n"),
             Catch::Contains("config key 'server.max_connections': expected an integer"));
  CHECK_THAT(load_error("[server]\nmax_connections = 0\n"),
             Catch::Contains("config key 'server.max_connections': must be between 1 and"));
  CHECK_THAT(load_error("[backup]\ndownloads_per_drive = 0\n"),
             Catch::Contains("config key 'backup.downloads_per_drive': must be between 1 and 32"));
  CHECK_THAT(load_error("[log]\nlevel = \"loud\"\n"), Catch::Contains("config key 'log.level': unknown level 'loud'"));
  CHECK_THAT(load_error("[log]\nformat = \"xml\"\n"), Catch::Contains("config key 'log.format'"));
  CHECK_THAT(load_error("[storage]\nrepository = \"sftp://host/x\"\n"),
             Catch::Contains("config key 'storage.repository': unknown scheme"));
  CHECK_THAT(load_error("[storage]\ndata_dir = \"relative\"\n"),
             Catch::Contains("config key 'storage.data_dir': must be an absolute path"));
  CHECK_THAT(load_error("[database]\nurl = \"host=x colour=blue\"\n"), Catch::Contains("config key 'database.url'"));
  CHECK_THAT(load_error("[server]\ntls_cert = \"/nonexistent.pem\"\n"), Catch::Contains("config key 'server.tls_"));
  CHECK_THAT(load_error("[server\n"), Catch::Contains("c.toml"));
}

TEST_CASE("config: environment variables override the file", "[unit]") {
  Environment env = {{"M365VAULT_LISTEN", "0.0.0.0:7000"},
                     {"M365VAULT_DATABASE_URL", "postgresql:///m365"},
                     {"M365VAULT_DATA_DIR", "/data"},
                     {"M365VAULT_SERVER_THREADS", "4"},
                     {"M365VAULT_LOG_FORMAT", "json"},
                     {"PATH", "/usr/bin"}};
  auto c = load("[server]\nlisten = \"127.0.0.1:1\"\nthreads = 1\n", env);
  CHECK(c.server.host == "0.0.0.0");
  CHECK(c.server.port == 7000);
  CHECK(c.database.url == "postgresql:///m365");
  CHECK(c.storage.data_dir == "/data");
  CHECK(c.server.threads == 4);
  CHECK(c.log.format == LogFormat::json);
}

TEST_CASE("config: a misspelt or malformed environment variable is an error", "[unit]") {
  CHECK_THROWS_WITH(load_config({std::nullopt, false}, {{"M365VAULT_DATABSE_URL", "x"}}),
                    Catch::Contains("'M365VAULT_DATABSE_URL': not a configuration key"));
  CHECK_THROWS_WITH(load_config({std::nullopt, false}, {{"M365VAULT_SERVER_THREADS", "two"}}),
                    Catch::Contains("config key 'server.threads': expected an integer in $M365VAULT_SERVER_THREADS"));
}

TEST_CASE("config: secrets come from *_file keys, also relative to $CREDENTIALS_DIRECTORY", "[unit]") {
  TempDir dir;
  write_file(dir / "dburl", "postgresql://app:s3cret@db/m365\n");
  auto c = load("[database]\nurl_file = \"" + (dir / "dburl").string() + "\"\n");
  CHECK(c.database.url == "postgresql://app:s3cret@db/m365");

  auto c2 = load("[database]\nurl_file = \"dburl\"\n", {{"CREDENTIALS_DIRECTORY", dir.path().string()}});
  CHECK(c2.database.url == "postgresql://app:s3cret@db/m365");

  auto c3 = load_config({std::nullopt, false}, {{"M365VAULT_DATABASE_URL_FILE", (dir / "dburl").string()}});
  CHECK(c3.database.url == "postgresql://app:s3cret@db/m365");

  CHECK_THAT(load_error("[database]\nurl_file = \"dburl\"\n"), Catch::Contains("needs $CREDENTIALS_DIRECTORY"));
  CHECK_THAT(load_error("[database]\nurl_file = \"/nonexistent\"\n"),
             Catch::Contains("config key 'database.url_file': cannot read"));
  // Only secret keys take a _file form.
  CHECK_THAT(load_error("[log]\nlevel_file = \"/x\"\n"), Catch::Contains("config key 'log.level_file': unknown key"));
}

TEST_CASE("config: env names follow the key names", "[unit]") {
  CHECK(env_name_for("server.listen") == "M365VAULT_SERVER_LISTEN");
  CHECK(env_name_for("storage.data_dir") == "M365VAULT_STORAGE_DATA_DIR");
  auto keys = config_keys();
  CHECK(std::find(keys.begin(), keys.end(), "database.url_file") != keys.end());
}

TEST_CASE("config: the example file documents every key and loads", "[unit]") {
  std::ifstream f(std::string(M365VAULT_SOURCE_DIR) + "/deploy/m365vault.example.toml");
  REQUIRE(f);
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  for (auto& k : config_keys()) {
    auto name = k.substr(k.find('.') + 1);
    INFO("key " << k);
    CHECK(text.find(name + " =") != std::string::npos);
  }
  CHECK_NOTHROW(load_config({std::string(M365VAULT_SOURCE_DIR) + "/deploy/m365vault.example.toml", true}, {}));
}

TEST_CASE("config: the embedded cluster's shared_buffers follow the memory available", "[unit]") {
  constexpr std::size_t MiB = 1 << 20;
  CHECK(storage::embedded_shared_buffers_mb(8192 * MiB) == 2048);   // a quarter
  CHECK(storage::embedded_shared_buffers_mb(256 * MiB) == 128);     // never under PostgreSQL's default
  CHECK(storage::embedded_shared_buffers_mb(131072 * MiB) == 8192);  // at most 8 GiB
  // What this process may use: some RAM, never more than the machine has.
  const auto avail = storage::available_memory_bytes();
  CHECK(avail > 64 * MiB);
  CHECK(avail <= static_cast<std::size_t>(::sysconf(_SC_PHYS_PAGES)) * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)));
}

TEST_CASE("config: [graph] reaches the Graph clients of backups and restores", "[unit]") {
  Config c;
  c.graph.connect_timeout_s = 3;
  c.graph.io_timeout_s = 120;
  c.graph.max_attempts = 5;
  c.graph.max_retry_after_s = 60;
  for (const graph::GraphOptions& g : {backup_options(c).graph, restore_options(c).graph}) {
    CHECK(g.connect_timeout == std::chrono::seconds(3));
    CHECK(g.io_timeout == std::chrono::seconds(120));
    CHECK(g.max_attempts == 5);
    CHECK(g.max_retry_after == std::chrono::seconds(60));
  }
  // Backups and restores keep their own start rate (bulk_graph_options, the rate's
  // ceiling) under the [graph] keys.
  CHECK(backup_options(c).graph.aimd.initial_rate == graph::bulk_graph_options().aimd.initial_rate);
  CHECK(restore_options(c).graph.aimd.initial_rate == graph::bulk_graph_options().aimd.initial_rate);
  CHECK(restore_options(c).graph.aimd.initial_rate > graph::GraphOptions{}.aimd.initial_rate);
}
