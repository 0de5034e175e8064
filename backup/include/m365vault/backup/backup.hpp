#pragma once
// The backup pipeline: a tenant turned into restore points, incrementally.
//
// A run discovers owners through the users (and groups) delta, then, for each
// selected user and category (mail, contacts, calendar), walks the container
// hierarchy and each container's item delta from the cursors saved by the last
// run, downloads what is new or changed (full MIME for mail, the Graph JSON for
// contacts and events), stores it in the repository and commits the page's
// versions and the cursor that follows it in one transaction, only after the
// blobs are durable (DESIGN.md invariant 1). Killed anywhere, the next run
// resumes from the last committed page. An item that cannot be read is a fault
// of that item (the run ends `partial`, the next run tries it again); a tenant
// whose credentials fail ends `failed` with the identity platform's reason.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "m365vault/graph/client.hpp"
#include "m365vault/scheduler/progress.hpp"
#include "m365vault/scheduler/worker.hpp"
#include "m365vault/storage/catalog.hpp"
#include "m365vault/storage/pg.hpp"
#include "m365vault/storage/repository.hpp"
#include "m365vault/storage/sealer.hpp"

namespace m365vault::backup {

// What a backup job's params hold: {"tenant": "...", "owners": [...], "categories": [...]}.
struct BackupParams {
  std::string tenant;                // catalog id or name; the job's tenant when empty
  // User ids, UPNs or mail addresses; sites by id, name or URL; teams by id or name;
  // chats by id (or the name of a chat known from an earlier run). Empty: all.
  std::vector<std::string> owners;
  std::vector<storage::Category> categories{storage::Category::mail, storage::Category::contacts,
                                            storage::Category::calendar};
  // Throws Error(Errc::bad_request) naming the field that is wrong.
  static BackupParams from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
};

struct BackupOptions {
  // Owners backed up at once. Outlook budgets each mailbox (4 in flight, a request
  // budget per window), so mailboxes side by side are what fills a tenant's
  // allowance: with 4, a throttled run over 8 mailboxes reached 0.53 of the limit.
  // More is not free: each stream costs CPU (16 owners took 1.6x the CPU of 4 for
  // the same 100,000 messages), so 8.
  int parallel_owners = 8;
  int fetches_per_owner = 4;     // content downloads at once per mailbox (Outlook allows 4)
  // File downloads at once per drive (OneDrive, each document library). Each holds
  // at most about one chunk's worth of bytes (the repository's maximum chunk size)
  // whatever the file's size.
  int downloads_per_drive = 4;
  // File downloads at once in one run, whatever the number of drives backed up
  // side by side (parallel_owners x downloads_per_drive would be 32): what bounds
  // the memory a run's downloads hold.
  int downloads_per_run = 8;
  int page_size = 100;           // Prefer: odata.maxpagesize on item deltas
  std::size_t commit_bytes = 8u << 20;        // commit a folder's pages once this much content waits
  std::chrono::milliseconds commit_interval{5000};  // or this long passed
  graph::GraphOptions graph = graph::bulk_graph_options();
};

// The daemon's pieces a backup uses; all must outlive it.
struct BackupServices {
  boost::asio::any_io_executor ex;
  storage::Database& db;
  storage::Repository& repo;
  storage::SecretSealer& sealer;
  std::shared_ptr<spdlog::logger> log;
  BackupOptions opts;
};

// Counts of one run, for the CLI's summary and the tests.
struct BackupSummary {
  int owners = 0, owners_skipped = 0, owners_failed = 0;
  int categories_skipped = 0;  // an owner without one category (a user without a OneDrive)
  long long items_new = 0, items_changed = 0, items_deleted = 0, items_faulted = 0;
  long long bytes_read = 0;
  std::vector<std::string> problems;  // one line per failed owner / category
  graph::GraphStats graph;            // requests, retries, 429s, in-flight peaks
};

// Runs one backup as run `ctx`. Returns succeeded, partial (item faults, or some
// owners failed), failed (credentials refused, nothing could be done) or
// cancelled.
boost::asio::awaitable<scheduler::RunOutcome> run_backup(BackupServices& services, const BackupParams& params,
                                                         scheduler::RunContext& ctx, BackupSummary* summary = nullptr);

// The scheduler's "backup" kind.
class BackupKind final : public scheduler::JobKind {
 public:
  explicit BackupKind(BackupServices services) : services_(std::move(services)) {}
  boost::asio::awaitable<scheduler::RunOutcome> execute(scheduler::RunContext& ctx) override;

 private:
  BackupServices services_;
};

// The Graph endpoint of a catalog tenant, its credential opened with `sealer`.
graph::TenantEndpoint tenant_endpoint(const storage::Tenant& tenant, const storage::SealedSecret& secret,
                                      storage::SecretSealer& sealer);

}  // namespace m365vault::backup
