#pragma once
// A whole backup stack for tests: the real graph-emulator over HTTPS with a
// generated tenant, a scratch PostgreSQL database migrated to the current
// schema, a filesystem repository indexed in PostgreSQL, the tenant registered
// in the catalog with its secret sealed, and a run executed by the same worker
// code the daemon uses.
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <set>
#include <string>

#include "emulator/emulator_support.hpp"
#include "m365vault/backup/backup.hpp"
#include "m365vault/storage/fs_store.hpp"
#include "m365vault/storage/pg_index.hpp"
#include "support/pg.hpp"
#include "support/temp_dir.hpp"

namespace m365vault::test {

// (owner graph id, item graph id or immutable id) -> sha256 hex.
using ItemHashes = std::map<std::pair<std::string, std::string>, std::string>;

// The emulator's ground truth for a category of tenant `tenant_id`.
ItemHashes manifest_of(const EmulatorProcess& emu, const std::string& tenant_id, const std::string& category);

// Reads an index and its repository, whoever created them (a BackupStack, or
// m365vaultd run as a child process).
class IndexReader {
 public:
  IndexReader(std::string conninfo, storage::Repository& repo) : conninfo_(std::move(conninfo)), repo_(repo) {}
  // Rows of a query with text results (NULL reads as "").
  std::vector<std::vector<std::string>> query(const std::string& sql, const std::vector<std::string>& params = {}) const;
  // Open versions of a category.
  ItemHashes indexed(const std::string& category) const;
  // The content of an open version, read back from the repository.
  std::string content(const std::string& owner_graph_id, const std::string& item_graph_id) const;

 private:
  std::string conninfo_;
  storage::Repository& repo_;
};

// Catch checks that the index equals the manifest: the same items, each with the
// manifest's hash (MIME bytes for mail, canonical JSON for contacts and events,
// the file's bytes for onedrive and sharepoint, whose notebooks have no content).
void check_index_matches(const ItemHashes& manifest, const IndexReader& index, const std::string& category);

// Channel messages ("teams"), chat messages ("chats") or list items ("lists") of
// the emulator's manifest, keyed as the pipeline keys them: (team,
// "{channel}/{post}[/{reply}]"), (chat, "{chat}/{message}"), (site, "{list}/{item}").
ItemHashes keyed_manifest(const EmulatorProcess& emu, const std::string& tenant_id, const std::string& category);
// Open versions of item `kind` ("message", "list_item"), each hashed as the
// manifest does: the canonical JSON of what the repository gives back (a list
// item's `fields`). Checks on the way that the bytes hash to the index's sha256.
// `owner_kind` ("team", "chat"), when given, keeps only the items of such owners.
ItemHashes indexed_canonical(const IndexReader& index, const std::string& kind, const std::string& owner_kind = "");
// Catch checks that two sets hold the same keys with the same hashes.
void check_same_hashes(const ItemHashes& want, const ItemHashes& have, const std::string& what);

// Requests the emulator's statistics (`GET /_emulator/stats`) count for routes
// ending with `suffix` ("GET /v1.0/chats/{id}/messages"; "" for every route).
long long route_requests(const nlohmann::json& stats, const std::string& suffix);

// Catch checks of the index's own consistency: at most one open version per item,
// no version that repeats its predecessor's change key, and every blob an item
// version references is in the repository's index.
void check_index_consistent(const IndexReader& index);

class BackupStack {
 public:
  // `spec` completes the emulator tenant (users, messages_per_user, ...).
  explicit BackupStack(json spec, std::uint64_t seed = 42);
  ~BackupStack();

  EmulatorProcess& emulator() { return emu_; }
  const TestTenant& tenant() const { return tenant_; }
  const std::string& catalog_tenant_id() const { return catalog_tenant_; }
  storage::Database& db() { return *db_; }
  storage::Repository& repo() { return *repo_; }
  storage::SecretSealer& sealer() { return *sealer_; }

  // Queues a run of the stack's backup job and executes it to its end.
  struct Result {
    scheduler::RunState state;
    std::optional<std::string> error;
    backup::BackupSummary summary;
    nlohmann::json progress;
  };
  Result run(backup::BackupParams params = {}, backup::BackupOptions opts = {});

  // The emulator's ground truth for a category: (owner, immutable id) -> sha256 hex.
  ItemHashes manifest(const std::string& category) { return manifest_of(emu_, tenant_.tenant, category); }
  // What the index holds now (open versions): (owner graph id, item graph id) -> sha256 hex.
  ItemHashes indexed(const std::string& category) { return reader().indexed(category); }
  // What a daemon needs to serve this stack: the environment for m365vaultd (the
  // scratch database, this repository and its passphrase file, a data dir of
  // its own under `name`, a free port) plus `extra` (NAME=value).
  std::vector<std::string> daemon_env(const std::string& name, std::vector<std::string> extra = {});
  const std::string& conninfo() const { return sdb_.conninfo(); }
  // Rows of a query with text results (for assertions on the catalog).
  std::vector<std::vector<std::string>> query(const std::string& sql, const std::vector<std::string>& params = {}) {
    return reader().query(sql, params);
  }
  // The content of an open version, read back from the repository.
  std::string content(const std::string& owner_graph_id, const std::string& item_graph_id) {
    return reader().content(owner_graph_id, item_graph_id);
  }
  IndexReader reader() { return IndexReader(sdb_.conninfo(), *repo_); }
  // The first column of the first row of a query, as a number.
  long long count(const std::string& sql, const std::vector<std::string>& params = {}) {
    return std::stoll(query(sql, params)[0][0]);
  }

 private:
  EmulatorProcess emu_;
  TestTenant tenant_;
  ScratchDatabase sdb_;
  TempDir dir_{"backup-stack"};
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<storage::FsStore> store_;
  std::unique_ptr<storage::PgBlobIndex> index_;
  std::unique_ptr<storage::Repository> repo_;
  std::unique_ptr<storage::SecretSealer> sealer_;
  std::string catalog_tenant_;
  std::string job_id_;
};

// The emulator's canonical JSON of a contact or event (docs/emulator.md,
// "Manifest"): '@' properties and server-assigned ones dropped, keys sorted.
std::string canonical_item_json(const nlohmann::json& item);

}  // namespace m365vault::test
