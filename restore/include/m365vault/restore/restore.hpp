#pragma once
// The restore pipeline: a selection of backed-up items written back through
// Graph, to where they were or somewhere safe, as the scheduler's "restore" job
// kind (progress, events, cancel, leases and takeover are the scheduler's).
//
// A restore is a one-off job of kind "restore" (no schedule; params = the
// resolved request) plus a row in `restores` (migration 0010) and one row per
// item handled in `restore_items`. The run walks the selection scope by scope:
// containers first (found by id, else by name under their parent, else created),
// then items, several at once; each item ends restored, replaced, copied,
// skipped (with why) or failed (with Graph's code) — a failure never stops the
// run. A retried or taken-over run starts again at the checkpointed scope and
// recognises what the earlier attempt wrote (see "exists" in docs/restore.md),
// so nothing is written twice. A restore only reads the backup.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include <memory>
#include <optional>
#include <string>

#include "m365vault/graph/client.hpp"
#include "m365vault/restore/selection.hpp"
#include "m365vault/scheduler/worker.hpp"
#include "m365vault/storage/catalog.hpp"
#include "m365vault/storage/pg.hpp"
#include "m365vault/storage/repository.hpp"
#include "m365vault/storage/sealer.hpp"

namespace m365vault::restore {

enum class Conflict { skip, replace, copy };
std::string_view to_string(Conflict c);

//   {"selection": {...selection.hpp...},
//    "target": {"owner": "megan@contoso.com", "folder": "From Adele"},   optional
//    "conflict": "skip" | "replace" | "copy",                            default skip
//    "dry_run": false}
// No target: every item goes back to its owner and its folder path. A target
// owner and/or folder: under that folder (default "Restored <timestamp>") of
// that owner (default the item's), the paths recreated beneath it.
struct RestoreRequest {
  Selection selection;
  std::optional<std::string> to_owner, to_folder;
  Conflict conflict = Conflict::skip;
  bool dry_run = false;
  // Throws Error(bad_request) naming the field; Teams in the selection's
  // categories is refused (Graph cannot write messages back as their authors).
  static RestoreRequest from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
  bool original_place() const { return !to_owner && !to_folder; }
};

struct RestoreOptions {
  int parallel_items = 8;                    // items in flight per scope (Graph caps 4 per mailbox)
  int parallel_scopes = 8;                   // (owner, category) scopes written at once (1 into another owner)
  int run_items = 32;                        // items in flight in the whole run
  int page_size = 200;                       // selection page
  std::size_t attachment_direct_max = 3'000'000;   // contract: <= 3 MB attached directly
  std::size_t attachment_chunk = 4u << 20;         // upload-session PUTs of attachments: <= 4 MB
  std::size_t file_simple_max = 4u << 20;          // files up to this go in one PUT
  std::size_t file_fragment = 32u * 327'680;        // 10 MiB, a multiple of 320 KiB
  int file_uploads = 4;                             // files uploading at once, run-wide (a fragment each in memory)
  // At the tenant rate's ceiling from the start: at 1,000 requests/s (+20/s each
  // second) a mail restore, about 2.4 requests per message, was held near 450
  // messages/s however idle the machine and Graph were.
  graph::GraphOptions graph = graph::bulk_graph_options();
};

struct RestoreServices {
  boost::asio::any_io_executor ex;
  storage::Database& db;
  storage::Repository& repo;
  storage::SecretSealer& sealer;
  std::shared_ptr<spdlog::logger> log;
  RestoreOptions opts;
};

// A restore as the API shows it.
struct RestoreInfo {
  std::string id, tenant_id;
  nlohmann::json request;
  std::optional<std::string> requested_by;
  std::string created_at;
  std::optional<std::string> target_root;
  // Its latest run (the scheduler's): state, progress, error, times.
  std::optional<std::string> run_id, state, error, started_at, finished_at;
  nlohmann::json progress = nlohmann::json::object();
  nlohmann::json outcomes = nlohmann::json::object();  // outcome -> count
  nlohmann::json to_json() const;
};

struct RestorePage {
  std::vector<RestoreInfo> restores;
  std::optional<std::string> next_cursor;
};

struct RestoreItemPage {
  std::vector<nlohmann::json> items;
  std::optional<std::string> next_cursor;
};

// Resolves and checks the request in `scope`, then creates the restore, its job
// and its first run (queued) in one transaction. Errors as resolve() plus
// bad_request for a target owner that is not a user of the tenant.
RestoreInfo create_restore(storage::PgConnection& c, const RestoreRequest& req, const storage::Scope& scope,
                           const std::optional<std::string>& requested_by);
// nullopt: no such restore in scope.
std::optional<RestoreInfo> get_restore(storage::PgConnection& c, const std::string& id, const storage::Scope& scope);
// Newest first; keyset cursor. Throws bad_request for a foreign cursor.
RestorePage list_restores(storage::PgConnection& c, const storage::Scope& scope, const std::optional<std::string>& tenant,
                          const std::optional<std::string>& cursor, int limit);
// A restore's item outcomes in the order handled, optionally one outcome only.
RestoreItemPage restore_items(storage::PgConnection& c, const std::string& id, const std::optional<std::string>& outcome,
                              const std::optional<std::string>& cursor, int limit);

// The scheduler's "restore" kind.
class RestoreKind final : public scheduler::JobKind {
 public:
  explicit RestoreKind(RestoreServices services) : services_(std::move(services)) {}
  boost::asio::awaitable<scheduler::RunOutcome> execute(scheduler::RunContext& ctx) override;

 private:
  RestoreServices services_;
};

}  // namespace m365vault::restore
