#pragma once
// Webhook notifications: a JSON POST to the configured URL when a run ends
// failed or partial, and when a scheduled job has had no successful run within
// twice its schedule's interval (plus an hour of grace). Events wait in the
// `notifications` outbox; every daemon's notifier leases due rows, delivers
// them, and retries failures with exponential backoff (giving up after
// max_attempts, recorded in the row). With a secret, each POST carries
// `X-M365Vault-Signature: sha256=<hex HMAC-SHA-256 of the body>`.
#include <boost/asio/any_io_executor.hpp>
#include <spdlog/logger.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "m365vault/net/client.hpp"
#include "m365vault/scheduler/cron.hpp"
#include "m365vault/storage/pg.hpp"

namespace m365vault::scheduler {

struct NotifierOptions {
  std::string url;     // http(s) URL; empty: notifier off
  std::string secret;  // HMAC key; empty: unsigned
  std::chrono::milliseconds poll_interval{5000};
  std::chrono::seconds retry_base{30};  // then doubling, at most an hour
  int max_attempts = 10;
  std::chrono::seconds overdue_check_interval{60};
  std::chrono::seconds overdue_grace{3600};
};

// Finds scheduled jobs with no success within twice their interval and queues
// one "job.overdue" notification per overdue spell. Safe from many daemons.
// Returns how many it queued.
int queue_overdue_notifications(storage::PgConnection& c, sys_seconds now, std::chrono::seconds grace);

// The hex HMAC-SHA-256 of body under key.
std::string hmac_sha256_hex(const std::string& key, const std::string& body);

class Notifier {
 public:
  Notifier(boost::asio::any_io_executor ex, storage::Database& db, net::HttpClient& http, NotifierOptions opts,
           std::shared_ptr<spdlog::logger> log);
  ~Notifier();
  void start();
  void stop(std::function<void()> done);

 private:
  std::shared_ptr<struct NotifierState> s_;
};

}  // namespace m365vault::scheduler
