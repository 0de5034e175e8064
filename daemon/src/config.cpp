#include "m365vault/daemon/config.hpp"

#include <arpa/inet.h>

#include <toml++/toml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <variant>

#include "m365vault/core/error.hpp"
#include "m365vault/storage/pg.hpp"

extern char** environ;

namespace m365vault::daemon {

namespace {

enum class Kind { string, integer, boolean };
using Value = std::variant<std::string, std::int64_t, bool>;
// Returns an error text (without the key) or nullopt when the value is accepted.
using Apply = std::function<std::optional<std::string>(Config&, const Value&)>;

struct KeySpec {
  std::string key;
  Kind kind;
  Apply apply;
  std::string alias = {};  // a short environment variable name, besides M365VAULT_SECTION_NAME
  bool secret_file = false;  // also accepts KEY_file naming a file that holds the value
};

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::string: return "a string";
    case Kind::integer: return "an integer";
    case Kind::boolean: return "true or false";
  }
  return "?";
}


template <class Section>
Apply int_in(Section Config::*section, std::int64_t Section::*field, std::int64_t lo, std::int64_t hi) {
  return [=](Config& c, const Value& v) -> std::optional<std::string> {
    auto n = std::get<std::int64_t>(v);
    if (n < lo || n > hi) return "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " + std::to_string(n);
    (c.*section).*field = n;
    return std::nullopt;
  };
}

template <class Section>
Apply str(Section Config::*section, std::string Section::*field) {
  return [=](Config& c, const Value& v) -> std::optional<std::string> {
    (c.*section).*field = std::get<std::string>(v);
    return std::nullopt;
  };
}

std::optional<std::string> parse_listen(Config& c, const Value& v) {
  const auto& s = std::get<std::string>(v);
  auto bad = "expected HOST:PORT with a numeric IPv4 or [IPv6] host (for example 127.0.0.1:8080), got '" + s + "'";
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) return bad;
  std::string host = s.substr(0, colon), port = s.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned char buf[16];
  if (inet_pton(AF_INET, host.c_str(), buf) != 1 && inet_pton(AF_INET6, host.c_str(), buf) != 1) return bad;
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return bad;
  long p = std::strtol(port.c_str(), nullptr, 10);
  if (p < 0 || p > 65535) return "port must be between 0 and 65535, got " + port;
  c.server.host = host;
  c.server.port = static_cast<std::uint16_t>(p);
  return std::nullopt;
}

std::optional<std::string> parse_db_url(Config& c, const Value& v) {
  const auto& s = std::get<std::string>(v);
  if (!s.empty()) {
    if (auto problem = storage::conninfo_problem(s)) return "not a PostgreSQL URL or conninfo: " + *problem;
  }
  c.database.url = s;
  return std::nullopt;
}

std::optional<std::string> parse_repository(Config& c, const Value& v) {
  const auto& s = std::get<std::string>(v);
  if (!s.empty()) {
    auto scheme = s.substr(0, s.find("://"));
    if (s.find("://") == std::string::npos || (scheme != "file" && scheme != "s3"))
      return "unknown scheme in '" + s + "' (use file:///path or s3://bucket/prefix)";
    if (scheme == "file" && (s.size() <= 7 || s[7] != '/')) return "file URL needs an absolute path: '" + s + "'";
  }
  c.storage.repository = s;
  return std::nullopt;
}

std::optional<std::string> parse_data_dir(Config& c, const Value& v) {
  const auto& s = std::get<std::string>(v);
  if (s.empty() || s.front() != '/') return "must be an absolute path, got '" + s + "'";
  c.storage.data_dir = s;
  return std::nullopt;
}

template <class Section>
Apply boolean(Section Config::*section, bool Section::*field) {
  return [=](Config& c, const Value& v) -> std::optional<std::string> {
    (c.*section).*field = std::get<bool>(v);
    return std::nullopt;
  };
}

std::optional<std::string> parse_s3_endpoint(Config& c, const Value& v) {
  const auto& s = std::get<std::string>(v);
  if (!s.empty() && s.rfind("https://", 0) != 0 && s.rfind("http://", 0) != 0)
    return "expected an http:// or https:// URL, got '" + s + "'";
  c.storage.s3_endpoint = s;
  return std::nullopt;
}

std::optional<std::string> parse_webhook(Config& c, const Value& v) {
  const auto& s = std::get<std::string>(v);
  if (!s.empty() && s.rfind("https://", 0) != 0 && s.rfind("http://", 0) != 0)
    return "expected an https:// URL (http:// only to a loopback host), got '" + s + "'";
  c.notify.webhook_url = s;
  return std::nullopt;
}

std::optional<std::string> parse_level(Config& c, const Value& v) {
  auto lv = parse_log_level(std::get<std::string>(v));
  if (!lv) return "unknown level '" + std::get<std::string>(v) + "' (use trace, debug, info, warn, error, critical or off)";
  c.log.level = *lv;
  return std::nullopt;
}

std::optional<std::string> parse_format(Config& c, const Value& v) {
  auto f = parse_log_format(std::get<std::string>(v));
  if (!f) return "unknown format '" + std::get<std::string>(v) + "' (use text or json)";
  c.log.format = *f;
  return std::nullopt;
}

std::optional<std::string> parse_file_path(std::string Config::Server::*field, Config& c, const Value& v) {
  c.server.*field = std::get<std::string>(v);
  return std::nullopt;
}

const std::vector<KeySpec>& keys() {
  using S = Config::Server;
  using D = Config::Database;
  using St = Config::Storage;
  static const std::vector<KeySpec> kKeys = {
      {"server.listen", Kind::string, parse_listen, "M365VAULT_LISTEN"},
      {"server.tls_cert", Kind::string, [](Config& c, const Value& v) { return parse_file_path(&S::tls_cert, c, v); }},
      {"server.tls_key", Kind::string, [](Config& c, const Value& v) { return parse_file_path(&S::tls_key, c, v); }},
      {"server.max_connections", Kind::integer, int_in(&Config::server, &S::max_connections, 1, 1'000'000)},
      {"server.header_limit", Kind::integer, int_in(&Config::server, &S::header_limit, 1024, 1 << 20)},
      {"server.body_limit", Kind::integer, int_in(&Config::server, &S::body_limit, 1024, 1LL << 32)},
      {"server.read_timeout_s", Kind::integer, int_in(&Config::server, &S::read_timeout_s, 1, 3600)},
      {"server.write_timeout_s", Kind::integer, int_in(&Config::server, &S::write_timeout_s, 1, 3600)},
      {"server.idle_timeout_s", Kind::integer, int_in(&Config::server, &S::idle_timeout_s, 1, 3600)},
      {"server.shutdown_grace_s", Kind::integer, int_in(&Config::server, &S::shutdown_grace_s, 0, 3600)},
      {"server.threads", Kind::integer, int_in(&Config::server, &S::threads, 1, 256)},
      {"server.auth_failures_per_minute", Kind::integer,
       int_in(&Config::server, &S::auth_failures_per_minute, 1, 1'000'000)},
      {"database.url", Kind::string, parse_db_url, "", true},
      {"database.pool_size", Kind::integer, int_in(&Config::database, &D::pool_size, 1, 256)},
      {"database.connect_timeout_s", Kind::integer, int_in(&Config::database, &D::connect_timeout_s, 1, 600)},
      {"database.statement_timeout_s", Kind::integer, int_in(&Config::database, &D::statement_timeout_s, 1, 86400)},
      {"database.startup_timeout_s", Kind::integer, int_in(&Config::database, &D::startup_timeout_s, 0, 3600)},
      {"database.embedded_user", Kind::string, str(&Config::database, &D::embedded_user)},
      {"database.embedded_shared_buffers_mb", Kind::integer,
       int_in(&Config::database, &D::embedded_shared_buffers_mb, 0, 1 << 20)},
      {"storage.data_dir", Kind::string, parse_data_dir, "M365VAULT_DATA_DIR"},
      {"storage.repository", Kind::string, parse_repository},
      {"storage.passphrase", Kind::string, str(&Config::storage, &St::passphrase), "M365VAULT_REPOSITORY_PASSPHRASE", true},
      {"storage.key", Kind::string, str(&Config::storage, &St::key), "", true},
      {"storage.s3_endpoint", Kind::string, parse_s3_endpoint},
      {"storage.s3_region", Kind::string, str(&Config::storage, &St::s3_region)},
      {"storage.s3_access_key", Kind::string, str(&Config::storage, &St::s3_access_key)},
      {"storage.s3_secret_key", Kind::string, str(&Config::storage, &St::s3_secret_key), "", true},
      {"storage.s3_path_style", Kind::boolean, boolean(&Config::storage, &St::s3_path_style)},
      {"storage.s3_ca_file", Kind::string, str(&Config::storage, &St::s3_ca_file)},
      {"scheduler.concurrency", Kind::integer, int_in(&Config::scheduler, &Config::Scheduler::concurrency, 1, 64)},
      {"scheduler.lease_s", Kind::integer, int_in(&Config::scheduler, &Config::Scheduler::lease_s, 5, 3600)},
      {"scheduler.heartbeat_s", Kind::integer, int_in(&Config::scheduler, &Config::Scheduler::heartbeat_s, 1, 1800)},
      {"backup.downloads_per_drive", Kind::integer,
       int_in(&Config::backup, &Config::Backup::downloads_per_drive, 1, 32)},
      {"backup.downloads_per_run", Kind::integer,
       int_in(&Config::backup, &Config::Backup::downloads_per_run, 1, 256)},
      {"graph.connect_timeout_s", Kind::integer, int_in(&Config::graph, &Config::Graph::connect_timeout_s, 1, 600)},
      {"graph.io_timeout_s", Kind::integer, int_in(&Config::graph, &Config::Graph::io_timeout_s, 1, 3600)},
      {"graph.max_attempts", Kind::integer, int_in(&Config::graph, &Config::Graph::max_attempts, 1, 100)},
      {"graph.max_retry_after_s", Kind::integer, int_in(&Config::graph, &Config::Graph::max_retry_after_s, 1, 86400)},
      {"notify.webhook_url", Kind::string, parse_webhook},
      {"notify.webhook_secret", Kind::string, str(&Config::notify, &Config::Notify::webhook_secret), "", true},
      {"log.level", Kind::string, parse_level, "M365VAULT_LOG_LEVEL"},
      {"log.format", Kind::string, parse_format},
  };
  return kKeys;
}

[[noreturn]] void fail(const std::string& key, const std::string& what) {
  throw Error(Errc::invalid_config, "config key '" + key + "': " + what);
}

// Reads a secret from a file: absolute, or relative to $CREDENTIALS_DIRECTORY
// (systemd LoadCredential=) when that is set. One trailing newline is dropped.
std::string read_secret_file(const std::string& key, const std::string& path, const Environment& env) {
  std::filesystem::path p = path;
  if (p.is_relative()) {
    auto it = env.find("CREDENTIALS_DIRECTORY");
    if (it == env.end()) fail(key, "relative path '" + path + "' needs $CREDENTIALS_DIRECTORY (systemd LoadCredential=)");
    p = std::filesystem::path(it->second) / p;
  }
  std::ifstream f(p, std::ios::binary);
  if (!f) fail(key, "cannot read '" + p.string() + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  auto s = ss.str();
  if (!s.empty() && s.back() == '\n') s.pop_back();
  if (!s.empty() && s.back() == '\r') s.pop_back();
  return s;
}

void apply_value(Config& c, const KeySpec& spec, const Value& v) {
  if (auto err = spec.apply(c, v)) fail(spec.key, *err);
}

// Parses an environment string as the key's kind.
Value env_value(const KeySpec& spec, const std::string& var, const std::string& s) {
  switch (spec.kind) {
    case Kind::string: return s;
    case Kind::integer: {
      char* end = nullptr;
      errno = 0;
      long long n = std::strtoll(s.c_str(), &end, 10);
      if (s.empty() || *end || errno) fail(spec.key, "expected an integer in $" + var + ", got '" + s + "'");
      return static_cast<std::int64_t>(n);
    }
    case Kind::boolean:
      if (s == "true" || s == "1") return true;
      if (s == "false" || s == "0") return false;
      fail(spec.key, "expected true or false in $" + var + ", got '" + s + "'");
  }
  return s;
}

}  // namespace

std::string env_name_for(const std::string& key) {
  std::string out = "M365VAULT_";
  for (char ch : key) out += ch == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return out;
}

std::vector<std::string> config_keys() {
  std::vector<std::string> out;
  for (auto& k : keys()) {
    out.push_back(k.key);
    if (k.secret_file) out.push_back(k.key + "_file");
  }
  return out;
}

std::string Config::repository_url() const {
  if (!storage.repository.empty()) return storage.repository;
  return "file://" + storage.data_dir + "/repo";
}

Environment process_environment() {
  Environment env;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

Config load_config(const ConfigSource& source, const Environment& env, Config defaults) {
  Config c = std::move(defaults);
  std::map<std::string, const KeySpec*> by_key;
  for (auto& k : keys()) by_key[k.key] = &k;

  if (source.path) {
    std::error_code ec;
    if (!std::filesystem::exists(*source.path, ec)) {
      if (source.required) throw Error(Errc::invalid_config, "config file '" + *source.path + "' does not exist");
    } else {
      toml::table tbl;
      try {
        tbl = toml::parse_file(*source.path);
      } catch (const toml::parse_error& e) {
        std::ostringstream where;
        where << e.source().begin;
        throw Error(Errc::invalid_config, "config file '" + *source.path + "': " + std::string(e.description()) +
                                              " at " + where.str());
      }
      for (auto& [section, node] : tbl) {
        std::string sec(section.str());
        auto* inner = node.as_table();
        if (!inner) fail(sec, "unknown key (settings live in sections: [server], [database], [storage], [scheduler], [notify], [log])");
        for (auto& [name, val] : *inner) {
          std::string key = sec + "." + std::string(name.str());
          std::string base = key;
          bool from_file = false;
          if (key.size() > 5 && key.ends_with("_file")) {
            auto stripped = key.substr(0, key.size() - 5);
            if (auto it = by_key.find(stripped); it != by_key.end() && it->second->secret_file) {
              base = stripped;
              from_file = true;
            }
          }
          auto it = by_key.find(base);
          if (it == by_key.end()) fail(key, "unknown key (see deploy/m365vault.example.toml for the keys there are)");
          const KeySpec& spec = *it->second;
          if (from_file) {
            auto p = val.value<std::string>();
            if (!p) fail(key, "expected a string (a file path)");
            apply_value(c, spec, read_secret_file(key, *p, env));
            continue;
          }
          switch (spec.kind) {
            case Kind::string: {
              auto s = val.value_exact<std::string>();
              if (!s) fail(key, std::string("expected ") + kind_name(spec.kind));
              apply_value(c, spec, *s);
              break;
            }
            case Kind::integer: {
              auto n = val.value_exact<std::int64_t>();
              if (!n) fail(key, std::string("expected ") + kind_name(spec.kind));
              apply_value(c, spec, *n);
              break;
            }
            case Kind::boolean: {
              auto b = val.value_exact<bool>();
              if (!b) fail(key, std::string("expected ") + kind_name(spec.kind));
              apply_value(c, spec, *b);
              break;
            }
          }
        }
      }
    }
  }

  // Environment overrides, then a check that no M365VAULT_* variable is a typo.
  std::map<std::string, std::pair<const KeySpec*, bool>> by_env;  // bool: names a *_file
  for (auto& k : keys()) {
    by_env[env_name_for(k.key)] = {&k, false};
    if (!k.alias.empty()) by_env[k.alias] = {&k, false};
    if (k.secret_file) by_env[env_name_for(k.key) + "_FILE"] = {&k, true};
  }
  for (auto& [var, value] : env) {
    if (var.rfind("M365VAULT_", 0) != 0) continue;
    // Variables of the tools around the daemon, not configuration keys.
    if (var == "M365VAULT_CONFIG" || var.rfind("M365VAULT_TEST_", 0) == 0 || var == "M365VAULT_SHARED_DIR") continue;
    auto it = by_env.find(var);
    if (it == by_env.end())
      throw Error(Errc::invalid_config, "environment variable '" + var + "': not a configuration key");
    auto [spec, is_file] = it->second;
    if (is_file) apply_value(c, *spec, read_secret_file(spec->key + "_file", value, env));
    else apply_value(c, *spec, env_value(*spec, var, value));
  }

  if (c.server.tls_cert.empty() != c.server.tls_key.empty())
    fail(c.server.tls_cert.empty() ? "server.tls_cert" : "server.tls_key",
         "TLS needs both server.tls_cert and server.tls_key");
  if (c.scheduler.heartbeat_s * 2 > c.scheduler.lease_s)
    fail("scheduler.heartbeat_s", "must be at most half of scheduler.lease_s (" + std::to_string(c.scheduler.lease_s) +
                                      "), or a slow heartbeat loses the lease of a live run");
  for (auto* f : {&c.server.tls_cert, &c.server.tls_key}) {
    if (f->empty()) continue;
    std::ifstream probe(*f);
    if (!probe) fail(f == &c.server.tls_cert ? "server.tls_cert" : "server.tls_key", "cannot read '" + *f + "'");
  }
  return c;
}

}  // namespace m365vault::daemon
