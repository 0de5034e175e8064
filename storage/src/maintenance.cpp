#include "m365vault/storage/maintenance.hpp"

#include <algorithm>
#include <set>
#include <unordered_map>

#include "m365vault/core/error.hpp"

namespace m365vault::storage {

VerifyReport verify_repository(Repository& repo, ObjectStore& store, PgBlobIndex& index, const VerifyOptions& o) {
  VerifyReport r;
  // The index first, then the store: a pack is durable before it is indexed, so a
  // pack indexed before the listing started must appear in it.
  auto indexed = index.packs();
  r.indexed_packs = indexed.size();
  r.indexed_blobs = index.blob_count();
  std::unordered_map<PackId, std::uint64_t, IdHash> stored;
  for (auto& obj : list_all(store, "packs/"))
    if (auto id = pack_id_from_key(obj.key)) stored[*id] = obj.size;
  r.stored_packs = stored.size();

  std::unordered_map<PackId, const IndexedPack*, IdHash> by_id;
  for (auto& p : indexed) {
    by_id[p.id] = &p;
    auto it = stored.find(p.id);
    if (it == stored.end()) {
      // A prune may have deleted it meanwhile (rows first, then the object).
      if (index.has_pack(p.id) && !store.stat(pack_key(p.id))) r.missing.push_back(p.id);
    } else if (p.size != 0 && it->second != p.size) {
      r.size_mismatch.push_back(p.id);
    }
  }
  for (auto& [id, size] : stored)
    if (!by_id.count(id)) r.unindexed.push_back(id);
  std::sort(r.unindexed.begin(), r.unindexed.end());

  if (o.deep) {
    std::vector<PackId> all;
    for (auto& [id, size] : stored) all.push_back(id);
    std::sort(all.begin(), all.end());
    std::size_t done = 0;
    for (auto& p : all) {
      auto check = repo.check_pack(p);
      if (!check.ok()) {
        if (!check.table_ok && check.damaged.empty()) check.damaged = index.blobs_in(p);
        r.damaged.push_back(std::move(check));
      }
      if (o.progress) o.progress(++done, all.size());
    }
    std::vector<BlobId> hit;
    for (auto& d : r.damaged) hit.insert(hit.end(), d.damaged.begin(), d.damaged.end());
    r.damaged_referenced = index.referenced(hit);
  }

  if (o.repair) {
    auto adopt = repo.adopt_unindexed_packs();
    r.adopted = adopt.adopted;
    index.forget_packs(r.missing);
    r.forgotten = r.missing;
    // A damaged unindexed pack was not adopted; deep mode already lists it.
    if (!o.deep)
      for (auto& d : adopt.damaged) r.damaged.push_back(std::move(d));
  }
  return r;
}

PruneResult prune_repository(Repository& repo, ObjectStore& store, PgBlobIndex& index, const PruneOptions& o) {
  PruneResult r;
  r.index = index.prune(o.grace, o.dry_run);
  if (!o.dry_run) {
    for (auto& p : r.index.expired) {
      try {
        store.remove(pack_key(p.id));
      } catch (const Error& e) {
        r.remove_failed.push_back(pack_key(p.id) + ": " + e.what());
      }
    }
  }
  if (o.repack_below <= 0) return r;
  r.repacked = index.sparse_packs(o.repack_below);
  if (o.dry_run || r.repacked.empty()) return r;
  // Doomed first: from then on no writer dedupes against these packs, and the
  // copies written below take over their blobs' rows (add_pack moves a row away
  // from a doomed pack). A crash half-way leaves blobs readable where they were;
  // the next prune revives a doomed pack still referenced.
  std::vector<PackId> ids;
  for (auto& sp : r.repacked) ids.push_back(sp.id);
  index.doom(ids);
  for (auto& sp : r.repacked)
    for (auto& id : sp.referenced) {
      auto loc = index.find(id);
      if (!loc || loc->pack != sp.id) continue;  // already moved by a backup
      repo.add_blob(loc->type, repo.read_blob(id));
    }
  repo.flush();
  return r;
}

RebuildReport rebuild_index(Repository& repo, ObjectStore& store, PgBlobIndex& index) {
  RebuildReport r;
  index.clear();
  for (auto& obj : list_all(store, "packs/")) {
    auto id = pack_id_from_key(obj.key);
    if (!id) continue;
    auto& p = *id;
    try {
      auto table = repo.read_pack_table(p);
      index.add_pack(p, obj.size, table);
      ++r.packs;
      r.blobs += table.size();
    } catch (const Error& e) {
      if (e.code() != Errc::data_corrupt && e.code() != Errc::not_found) throw;
      r.unreadable.emplace_back(p, e.what());
    }
  }
  return r;
}

}  // namespace m365vault::storage
