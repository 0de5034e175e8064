#pragma once
// The repository's maintenance operations behind `m365vaultd repo verify | prune |
// rebuild-index`: plain functions over a Repository, its ObjectStore and the
// PostgreSQL index, so tests drive exactly what the command runs.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "m365vault/storage/pg_index.hpp"
#include "m365vault/storage/repository.hpp"

namespace m365vault::storage {

struct VerifyOptions {
  bool deep = false;    // download and authenticate every blob of every pack
  bool repair = false;  // adopt intact unindexed packs; forget index rows of packs the store lost
  std::function<void(std::size_t done, std::size_t total)> progress;  // deep: after each pack
};

struct VerifyReport {
  std::uint64_t indexed_packs = 0, stored_packs = 0, indexed_blobs = 0;
  std::vector<PackId> missing;         // indexed but absent from the store: data lost
  std::vector<PackId> size_mismatch;   // the store's size differs from the index's
  std::vector<PackId> unindexed;       // in the store, not in the index (a crash before the commit)
  std::vector<PackCheck> damaged;      // deep: packs failing the check, with the blobs affected
  std::vector<BlobId> damaged_referenced;  // of the damaged blobs, those blob_refs lists
  std::vector<PackId> adopted;         // repair: unindexed packs now indexed
  std::vector<PackId> forgotten;       // repair: missing packs whose rows were removed
  // Damage: missing, mismatched or damaged packs (unindexed ones are a notice).
  bool ok() const { return missing.empty() && size_mismatch.empty() && damaged.empty(); }
};

// Quick: the index against the store's listing. Deep: also check_pack() on every
// stored pack; a pack whose table is unreadable lists as affected every blob the
// index places in it. Never writes unless `repair`.
VerifyReport verify_repository(Repository& repo, ObjectStore& store, PgBlobIndex& index, const VerifyOptions& options);

struct PruneOptions {
  std::chrono::seconds grace{24 * 3600};
  bool dry_run = false;
  // Repack live packs in which less than this share of the blob bytes is
  // referenced: their referenced blobs are written again into new packs and the old
  // pack is doomed (deleted by a prune after the grace). 0 turns repacking off.
  double repack_below = 0.2;
};

struct PruneResult {
  PgBlobIndex::PruneReport index;
  std::vector<PgBlobIndex::SparsePack> repacked;  // (dry run: would be)
  std::vector<std::string> remove_failed;  // objects whose deletion failed (an unindexed pack: verify --repair)
};

// Two-phase prune (see PgBlobIndex::prune); then deletes the expired packs' objects,
// after their rows are gone, so the index never names a missing pack; then repacks
// sparse packs through `repo` (which must not be written by anyone else meanwhile).
PruneResult prune_repository(Repository& repo, ObjectStore& store, PgBlobIndex& index, const PruneOptions& options);

struct RebuildReport {
  std::uint64_t packs = 0, blobs = 0;
  std::vector<std::pair<PackId, std::string>> unreadable;  // packs whose table fails (not indexed)
};

// Recreates repo_packs and repo_blobs from the packs' own tables. Run it with no
// daemon writing to the repository.
RebuildReport rebuild_index(Repository& repo, ObjectStore& store, PgBlobIndex& index);

}  // namespace m365vault::storage
