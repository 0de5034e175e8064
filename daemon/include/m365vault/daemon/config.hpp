#pragma once
// The daemon's configuration: one TOML file (default /etc/m365vault/m365vault.toml)
// with every key overridable by an M365VAULT_* environment variable. Unknown
// keys, wrong types and bad values are errors that name the key.
// deploy/m365vault.example.toml documents every key; keep it in step with kKeys
// in config.cpp.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "m365vault/core/log.hpp"

namespace m365vault::daemon {

struct Config {
  struct Server {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;
    std::string tls_cert;
    std::string tls_key;
    std::int64_t max_connections = 1024;
    std::int64_t header_limit = 16 * 1024;
    std::int64_t body_limit = 1024 * 1024;
    std::int64_t read_timeout_s = 30;
    std::int64_t write_timeout_s = 30;
    std::int64_t idle_timeout_s = 60;
    std::int64_t shutdown_grace_s = 20;
    std::int64_t threads = 2;
    // Failed authentications one address may make per minute before its
    // requests get 429 for the rest of that minute.
    std::int64_t auth_failures_per_minute = 20;
  } server;
  struct Database {
    std::string url;  // empty: the embedded cluster under <data_dir>/pg
    std::int64_t pool_size = 8;
    std::int64_t connect_timeout_s = 5;
    std::int64_t statement_timeout_s = 30;
    std::int64_t startup_timeout_s = 60;
    std::string embedded_user = "m365vault";
    // The embedded cluster's shared_buffers in MiB; 0: a quarter of the memory
    // available, 128 MiB to 8 GiB.
    std::int64_t embedded_shared_buffers_mb = 0;
  } database;
  struct Storage {
    std::string data_dir = "/var/lib/m365vault";
    std::string repository;  // empty: file://<data_dir>/repo
    // How to open the repository's master key (see open_repository in wiring.hpp):
    // these, else $CREDENTIALS_DIRECTORY/repository-passphrase or repository-key.
    std::string passphrase;  // secret: prefer passphrase_file or M365VAULT_REPOSITORY_PASSPHRASE
    std::string key;         // the contents of a key file: set key_file
    // S3 (storage.repository = "s3://bucket/prefix").
    std::string s3_endpoint;  // https://s3.eu-west-1.amazonaws.com, http://127.0.0.1:9000
    std::string s3_region = "us-east-1";
    std::string s3_access_key;
    std::string s3_secret_key;  // secret
    bool s3_path_style = true;
    std::string s3_ca_file;
  } storage;
  struct Scheduler {
    std::int64_t concurrency = 2;    // runs this daemon executes at once
    std::int64_t lease_s = 60;       // a dead daemon's run is taken over after this
    std::int64_t heartbeat_s = 10;   // lease renewal and progress saving; under lease_s / 2
  } scheduler;
  struct Backup {
    std::int64_t downloads_per_drive = 4;  // file downloads at once per drive
    std::int64_t downloads_per_run = 8;    // file downloads at once in one run, all drives together
  } backup;
  // Microsoft Graph, for backups and restores alike.
  struct Graph {
    std::int64_t connect_timeout_s = 10;  // TCP and TLS set-up
    std::int64_t io_timeout_s = 60;       // one read or write on a connection
    std::int64_t max_attempts = 8;        // per call, the first included (throttling and faults)
    std::int64_t max_retry_after_s = 300; // a longer Retry-After fails the call instead of waiting
  } graph;
  struct Notify {
    std::string webhook_url;     // empty: no webhooks
    std::string webhook_secret;  // HMAC-SHA-256 signing key; empty: unsigned
  } notify;
  struct Log {
    spdlog::level::level_enum level = spdlog::level::info;
    LogFormat format = LogFormat::text;
  } log;

  // The repository URL after defaults.
  std::string repository_url() const;
};

using Environment = std::map<std::string, std::string>;

// The process environment as a map.
Environment process_environment();

// Where the configuration comes from.
struct ConfigSource {
  std::optional<std::string> path;  // the file; nullopt: none
  bool required = false;            // --config was given: a missing file is an error
};

// Loads defaults, then the file, then the environment. Throws
// Error(Errc::invalid_config) with a one-line message naming the key.
Config load_config(const ConfigSource& source, const Environment& env, Config defaults = {});

// The environment variable that overrides a key ("server.listen" -> "M365VAULT_SERVER_LISTEN").
std::string env_name_for(const std::string& key);

// Every key the file accepts, in documentation order.
std::vector<std::string> config_keys();

}  // namespace m365vault::daemon
