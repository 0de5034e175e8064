#pragma once
// S3Store: an ObjectStore on any S3-compatible service (AWS S3, MinIO, Ceph RGW,
// OpenStack Swift's s3api, ...), over HTTP or HTTPS, signed with our SigV4.
// Beast stays inside s3_store.cpp.
//
// Retries: connection errors, timeouts, 5xx, 429 and SlowDown are retried up to
// `max_attempts` times with full-jitter exponential backoff; other 4xx are not
// (403 throws Error(Errc::storage_denied), naming the S3 error code). Objects of at
// least `multipart_threshold` bytes go up as a multipart upload, aborted when any
// step fails so no orphaned parts are billed.
#include <spdlog/logger.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "m365vault/storage/object_store.hpp"

namespace m365vault::storage {

struct S3Config {
  std::string endpoint;          // "https://s3.eu-west-1.amazonaws.com", "http://127.0.0.1:9000"
  std::string bucket;
  std::string prefix;            // optional key prefix inside the bucket, e.g. "tenant-a/repo" (no slashes at ends)
  std::string region = "us-east-1";
  std::string access_key;
  std::string secret_key;
  std::string session_token;     // temporary (STS) credentials
  bool path_style = true;        // false: virtual-host addressing (https://bucket.host/key)
  bool sign_payload = true;      // false: UNSIGNED-PAYLOAD (saves hashing; TLS still protects the body)
  std::string ca_file;           // HTTPS: trust this PEM bundle instead of the system's
  bool verify_tls = true;        // HTTPS: verify the peer (never turn off outside tests)
  std::string connect_address;   // connect here instead of resolving the endpoint's host (like curl --resolve)
  bool object_lock = false;      // the bucket has Object Lock enabled: honour PutOptions::retain_until
  std::uint64_t multipart_threshold = 64ull << 20;
  std::uint64_t part_size = 16ull << 20;  // at least 5 MiB (S3's minimum part size)
  int max_attempts = 5;
  std::chrono::milliseconds backoff_base{200};
  std::chrono::milliseconds backoff_max{10'000};
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds io_timeout{30'000};  // no progress for this long fails the attempt
  std::size_t max_idle_connections = 8;
};

class S3Store final : public ObjectStore {
 public:
  // Validates the configuration (throws Error(Errc::invalid_config) naming the key);
  // does no I/O. `log` may be null.
  S3Store(S3Config config, std::shared_ptr<spdlog::logger> log);
  ~S3Store() override;
  S3Store(const S3Store&) = delete;
  S3Store& operator=(const S3Store&) = delete;

  Capabilities capabilities() const override;
  std::string describe() const override;
  void put(std::string_view key, std::string_view data, const PutOptions& options = {}) override;
  std::optional<std::string> get(std::string_view key, ByteRange range = {}) override;
  std::optional<ObjectInfo> stat(std::string_view key) override;
  ListPage list(std::string_view prefix, std::string_view token = {}, std::size_t max_keys = 1000) override;
  void remove(std::string_view key) override;

  // Creates the bucket; succeeds when we already own it.
  void create_bucket();

  struct Stats {
    std::uint64_t requests = 0;  // attempts sent, retries included
    std::uint64_t retries = 0;
  };
  Stats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace m365vault::storage
