#pragma once
// The blob index in PostgreSQL (tables repo_packs and repo_blobs, migration 0005),
// with an in-memory set of blob ids in front of it so that the writer's question
// "have I this blob?" costs a hash probe, not a round trip, at millions of blobs.
//
// The cache holds, per indexed blob, the first 16 bytes of its id (ids are keyed
// HMACs: two distinct blobs share 128 bits with probability about n^2 / 2^129,
// below 10^-20 at 10^9 blobs) and the pack it lives in, 32 to 64 bytes a blob. It is
// loaded when the index is opened and kept up to date by add_pack(). Every
// `refresh` it re-reads which packs prune has doomed or deleted, so the writer
// stops deduping against them long before they go (prune's grace period), and
// loads the packs other daemons indexed meanwhile. Until then a blob another
// daemon just stored is stored again here (garbage for prune), never lost.
#include <spdlog/logger.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "m365vault/storage/pg.hpp"
#include "m365vault/storage/repository.hpp"

namespace m365vault::storage {

struct PgBlobIndexOptions {
  PgTimeouts timeouts;
  std::chrono::milliseconds refresh{10'000};  // how often contains() re-reads doomed and new packs
  std::shared_ptr<spdlog::logger> log;
};

// A pack as the index records it.
struct IndexedPack {
  PackId id;
  std::uint64_t size = 0;
  bool doomed = false;
  std::uint64_t blobs = 0;
};

// Thread-safe. Uses two connections of its own (writes; lookups), so a slow
// add_pack does not hold up find(). Throws Error(Errc::database/timeout) from
// PostgreSQL; the migrations must have been applied.
class PgBlobIndex final : public BlobIndex {
 public:
  // Connects and loads the cache (one keyset-paginated pass over repo_blobs).
  PgBlobIndex(const std::string& conninfo, PgBlobIndexOptions options = {});
  ~PgBlobIndex() override;

  // From the database (sees blobs other daemons indexed, and blobs in doomed packs:
  // they stay readable until prune deletes them).
  std::optional<BlobLocation> find(const BlobId& id) override;
  // From the cache alone (see above).
  bool contains(const BlobId& id) override;
  // One transaction: the pack row (a doomed pack added again is live again) and its
  // blobs in one multi-row INSERT; a blob already indexed keeps its location unless
  // that location is in a doomed pack.
  void add_pack(const PackId& pack, std::uint64_t pack_size, const std::vector<PackedBlob>& blobs) override;
  bool has_pack(const PackId& pack) override;

  // Maintenance (repo verify / prune / rebuild-index).
  std::vector<IndexedPack> packs();
  std::uint64_t blob_count();
  // The blobs the index places in `pack`.
  std::vector<BlobId> blobs_in(const PackId& pack);
  // Removes the packs' rows and their blobs' rows (a pack missing from the store).
  void forget_packs(const std::vector<PackId>& packs);
  // Empties both tables (rebuild-index, before adding every pack again).
  void clear();
  // Of `ids`, those that blob_refs lists (damage report: which damaged blobs matter).
  std::vector<BlobId> referenced(const std::vector<BlobId>& ids);

  struct PruneReport {
    std::uint64_t referenced_blobs = 0;   // rows of blob_refs
    std::vector<PackId> revived;          // doomed packs referenced again: live
    std::vector<PackId> newly_doomed;     // phase 1: unreferenced live packs, doomed now
    std::vector<IndexedPack> expired;     // phase 2: doomed longer than the grace, still unreferenced
    std::uint64_t expired_bytes = 0;
  };
  // Both phases in one transaction; with dry_run rolled back. `expired` packs have
  // their rows deleted here (commit first): the caller deletes their objects after.
  // Throws Error(Errc::conflict) when blob_refs is empty but the index is not
  // (nothing would survive: the catalog is missing, not everything unreferenced).
  PruneReport prune(std::chrono::seconds grace, bool dry_run);

  // Live packs in which blob_refs references some blob bytes, but less than
  // `max_used` (0..1) of them: candidates for repacking, with their referenced blobs.
  struct SparsePack {
    PackId id;
    std::uint64_t blob_bytes = 0, referenced_bytes = 0;
    std::vector<BlobId> referenced;
  };
  std::vector<SparsePack> sparse_packs(double max_used);
  // Marks live packs doomed now (repack: their blobs are written again elsewhere,
  // and add_pack moves the rows away from a doomed pack).
  void doom(const std::vector<PackId>& packs);

  // Number of blob ids in the cache (for tests and the benchmark).
  std::size_t cached_blobs() const;

 private:
  struct Slot {
    std::uint64_t a = 0, b = 0;  // the first 16 bytes of the id; both 0: empty
    std::uint32_t pack = 0;
  };
  static Slot key_of(const BlobId& id);
  void cache_put(const Slot& s, bool replace_dead);
  const Slot* cache_get(const Slot& s) const;
  std::uint32_t pack_slot(const PackId& p);
  void load();
  void cache_rows(const PgResult& r);
  void maybe_refresh();

  PgBlobIndexOptions options_;
  std::mutex write_mu_;
  std::unique_ptr<PgConnection> write_;
  std::mutex read_mu_;
  std::unique_ptr<PgConnection> read_;

  mutable std::mutex cache_mu_;
  std::vector<Slot> table_;  // open addressing, linear probing, size a power of two
  std::size_t used_ = 0;
  std::vector<PackId> pack_ids_;
  std::vector<std::uint8_t> pack_live_;
  std::unordered_map<PackId, std::uint32_t, IdHash> pack_slots_;
  std::chrono::steady_clock::time_point next_refresh_;
  std::string newest_;  // created_at of the newest pack seen by load/refresh (text)
};

}  // namespace m365vault::storage
