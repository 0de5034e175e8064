// The PostgreSQL blob index (PgBlobIndex) and the repository maintenance built on
// it, against the real PostgreSQL of the test command: the BlobIndex behaviour
// suite, two-phase prune, verify (quick, deep, repair), rebuild-index, a store
// failing at every call N, SIGKILL at 20 random moments, and the cache's cost.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "m365vault/core/error.hpp"
#include "m365vault/core/process.hpp"
#include "m365vault/storage/fs_store.hpp"
#include "m365vault/storage/maintenance.hpp"
#include "m365vault/storage/migrate.hpp"
#include "m365vault/storage/pg_index.hpp"
#include "support/pg.hpp"
#include "support/storage/blob_index_contract.hpp"
#include "support/storage/crash_content.hpp"
#include "support/storage/memory_store.hpp"
#include "support/storage/repo_fixtures.hpp"
#include "support/temp_dir.hpp"
#include "support/log.hpp"

using namespace m365vault;
using namespace m365vault::storage;
using m365vault::test::ScratchDatabase;
using test::fast_init;
using test::text_data;

namespace {

spdlog::logger& quiet() {
  static spdlog::logger l = *test::quiet_logger();
  return l;
}

// A scratch database with every migration applied.
struct IndexDb {
  ScratchDatabase db;
  IndexDb() {
    auto c = PgConnection::connect(db.conninfo());
    migrate(c, builtin_migrations(), quiet());
  }
  const std::string& conninfo() const { return db.conninfo(); }
  // Stands in for the catalog's migration: blob_refs lists the ids of a table.
  void reference_table() {
    auto c = PgConnection::connect(conninfo());
    c.exec("CREATE TABLE test_refs (blob_id bytea NOT NULL)");
    c.exec("CREATE OR REPLACE VIEW blob_refs AS SELECT blob_id FROM test_refs");
  }
  void reference(const std::vector<BlobId>& ids) {
    auto c = PgConnection::connect(conninfo());
    for (auto& id : ids) c.exec("INSERT INTO test_refs VALUES (decode($1, 'hex'))", {id.hex()});
  }
  void unreference_all() { PgConnection::connect(conninfo()).exec("DELETE FROM test_refs"); }
  // Moves every doomed pack's doomed_at into the past, as if the grace had passed.
  void age_doomed(int hours) {
    PgConnection::connect(conninfo())
        .exec("UPDATE repo_packs SET doomed_at = doomed_at - make_interval(hours => $1::int) WHERE state = 'doomed'",
              {std::to_string(hours)});
  }
};

const KeySource kKeys{"correct horse", std::nullopt};


}  // namespace

TEST_CASE("blob index contract: PgBlobIndex", "[pg]") {
  IndexDb db;
  test::blob_index_contract(
      {[&] {
         PgConnection::connect(db.conninfo()).exec("TRUNCATE repo_packs, repo_blobs");
         return std::make_shared<PgBlobIndex>(db.conninfo());
       },
       [&](const std::shared_ptr<BlobIndex>&) { return std::make_shared<PgBlobIndex>(db.conninfo()); }});
}

TEST_CASE("pg index: prune is two-phase, keeps what is referenced, and the writer stops deduping doomed packs", "[pg]") {
  IndexDb db;
  test::MemoryStore store;
  Repository::init(store, fast_init());
  PgBlobIndexOptions io;
  io.refresh = std::chrono::milliseconds(0);  // re-read doomed packs on every contains()
  PgBlobIndex index(db.conninfo(), io);
  Repository repo(store, kKeys, index);
  auto keep = repo.add_blob(BlobType::data, text_data(400'000, 1));
  repo.flush();
  auto drop = repo.add_blob(BlobType::data, text_data(400'000, 2));
  repo.flush();
  auto keep_pack = index.find(keep)->pack, drop_pack = index.find(drop)->pack;
  REQUIRE(keep_pack != drop_pack);

  // With the catalog's view still empty, prune refuses rather than doom everything.
  CHECK_THROWS_AS(prune_repository(repo, store, index, {std::chrono::hours(24), false}), Error);

  db.reference_table();
  db.reference({keep});
  auto dry = prune_repository(repo, store, index, {std::chrono::hours(24), true});
  CHECK(dry.index.newly_doomed == std::vector<PackId>{drop_pack});
  CHECK(index.contains(drop));  // a dry run changes nothing

  auto first = prune_repository(repo, store, index, {std::chrono::hours(24), false});
  CHECK(first.index.newly_doomed == std::vector<PackId>{drop_pack});
  CHECK(first.index.expired.empty());
  CHECK(store.objects().count(pack_key(drop_pack)) == 1);  // phase 1 deletes nothing
  CHECK(repo.read_blob(drop) == text_data(400'000, 2));     // still readable
  // The writer no longer dedupes against a doomed pack: it stores a new copy, and
  // the index moves the blob's row to it.
  PgBlobIndex other(db.conninfo(), io);  // another daemon's cache sees the doom too
  CHECK_FALSE(other.contains(drop));
  CHECK(other.contains(keep));
  CHECK_FALSE(index.contains(drop));
  repo.add_blob(BlobType::data, text_data(400'000, 2));
  repo.flush();
  auto moved = index.find(drop)->pack;
  CHECK(moved != drop_pack);
  CHECK(index.contains(drop));

  // Before the grace has passed nothing goes (the new copy's pack, unreferenced
  // yet, is doomed in its turn).
  auto early = prune_repository(repo, store, index, {std::chrono::hours(24), false});
  CHECK(early.index.expired.empty());
  CHECK(early.index.newly_doomed == std::vector<PackId>{moved});
  // The backup commits its reference to the blob; after the grace the doomed pack
  // that holds nothing referenced goes (rows first, then the object), and the one
  // referenced again comes back to life instead.
  db.reference({drop});
  db.age_doomed(25);
  auto second = prune_repository(repo, store, index, {std::chrono::hours(24), false});
  REQUIRE(second.index.expired.size() == 1);
  CHECK(second.index.expired[0].id == drop_pack);
  CHECK(second.index.revived == std::vector<PackId>{moved});
  CHECK(second.index.newly_doomed.empty());
  CHECK(store.objects().count(pack_key(drop_pack)) == 0);
  CHECK(repo.read_blob(drop) == text_data(400'000, 2));  // from its new pack
  CHECK(repo.read_blob(keep) == text_data(400'000, 1));
  CHECK(index.contains(drop));
  auto v = verify_repository(repo, store, index, {true, false, {}});
  CHECK(v.ok());
  CHECK(v.unindexed.empty());
}

TEST_CASE("pg index: a daemon's cache learns the packs another daemon indexed", "[pg]") {
  IndexDb db;
  PgBlobIndexOptions io;
  io.refresh = std::chrono::milliseconds(0);
  PgBlobIndex a(db.conninfo(), io), b(db.conninfo(), io);
  std::vector<PackedBlob> blobs(3);
  for (std::size_t i = 0; i < blobs.size(); ++i) {
    blobs[i].id.bytes[0] = static_cast<std::uint8_t>(i + 1);
    blobs[i].offset = i * 100;
    blobs[i].length = 100;
  }
  PackId pack;
  pack.bytes[31] = 9;
  CHECK_FALSE(b.contains(blobs[0].id));
  a.add_pack(pack, 300, blobs);
  for (auto& blob : blobs) CHECK(b.contains(blob.id));
  CHECK(b.cached_blobs() == 3);
}

TEST_CASE("pg index: prune repacks a mostly-unreferenced pack and frees it after the grace", "[pg]") {
  IndexDb db;
  db.reference_table();
  test::MemoryStore store;
  Repository::init(store, fast_init());
  PgBlobIndex index(db.conninfo());
  Repository repo(store, kKeys, index);
  std::vector<BlobId> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(repo.add_blob(BlobType::data, text_data(80'000, 500 + static_cast<unsigned>(i))));
  repo.flush();
  auto old_pack = index.find(ids[3])->pack;
  REQUIRE(index.find(ids[9])->pack == old_pack);
  db.reference({ids[3]});  // a tenth of the pack is still needed

  auto dry = prune_repository(repo, store, index, {std::chrono::hours(24), true});
  REQUIRE(dry.repacked.size() == 1);
  CHECK(index.find(ids[3])->pack == old_pack);
  auto r = prune_repository(repo, store, index, {std::chrono::hours(24), false});
  REQUIRE(r.repacked.size() == 1);
  CHECK(r.repacked[0].id == old_pack);
  CHECK(r.repacked[0].referenced == std::vector<BlobId>{ids[3]});
  auto moved = index.find(ids[3])->pack;
  CHECK(moved != old_pack);
  CHECK(repo.read_blob(ids[3]) == text_data(80'000, 503));
  db.age_doomed(25);
  auto later = prune_repository(repo, store, index, {std::chrono::hours(24), false});
  REQUIRE(later.index.expired.size() == 1);
  CHECK(later.index.expired[0].id == old_pack);
  CHECK(store.objects().count(pack_key(old_pack)) == 0);
  CHECK(later.repacked.empty());
  CHECK(repo.read_blob(ids[3]) == text_data(80'000, 503));
  CHECK_FALSE(index.find(ids[4]).has_value());  // unreferenced: gone with its pack
  auto v = verify_repository(repo, store, index, {true, false, {}});
  CHECK(v.ok());
  CHECK(v.unindexed.empty());
}

TEST_CASE("pg index: verify --deep names exactly the blobs a flipped byte affects, rebuild-index restores", "[pg]") {
  IndexDb db;
  test::MemoryStore store;
  Repository::init(store, fast_init());
  PgBlobIndex index(db.conninfo());
  Repository repo(store, kKeys, index);
  std::vector<BlobId> ids;
  for (int i = 0; i < 30; ++i) ids.push_back(repo.add_blob(BlobType::meta, text_data(60'000, 100 + static_cast<unsigned>(i))));
  repo.flush();
  auto quick = verify_repository(repo, store, index, {});
  CHECK(quick.ok());
  CHECK(quick.indexed_blobs == ids.size());
  CHECK(verify_repository(repo, store, index, {true, false, {}}).ok());

  auto victim = index.find(ids[7]).value();
  store.objects()[pack_key(victim.pack)][victim.offset + victim.length / 3] ^= 0x01;
  db.reference_table();
  db.reference({ids[7], ids[8]});
  CHECK(verify_repository(repo, store, index, {}).ok());  // quick does not read blobs
  auto deep = verify_repository(repo, store, index, {true, false, {}});
  CHECK_FALSE(deep.ok());
  REQUIRE(deep.damaged.size() == 1);
  CHECK(deep.damaged[0].pack == victim.pack);
  CHECK(deep.damaged[0].damaged == std::vector<BlobId>{ids[7]});
  CHECK(deep.damaged_referenced == std::vector<BlobId>{ids[7]});
  store.objects()[pack_key(victim.pack)][victim.offset + victim.length / 3] ^= 0x01;

  // A lost database: rebuild from the store alone, then every blob reads back.
  PgConnection::connect(db.conninfo()).exec("TRUNCATE repo_packs, repo_blobs");
  PgBlobIndex fresh(db.conninfo());
  Repository reopened(store, kKeys, fresh);
  auto r = rebuild_index(reopened, store, fresh);
  CHECK(r.unreadable.empty());
  CHECK(r.blobs == ids.size());
  for (int i = 0; i < 30; ++i) CHECK(reopened.read_blob(ids[i]) == text_data(60'000, 100 + static_cast<unsigned>(i)));
  CHECK(verify_repository(reopened, store, fresh, {true, false, {}}).ok());

  // A pack the store lost is named, and --repair forgets its rows.
  store.objects().erase(pack_key(victim.pack));
  auto lost = verify_repository(reopened, store, fresh, {});
  CHECK(lost.missing == std::vector<PackId>{victim.pack});
  auto repaired = verify_repository(reopened, store, fresh, {false, true, {}});
  CHECK(repaired.forgotten == std::vector<PackId>{victim.pack});
  CHECK(verify_repository(reopened, store, fresh, {}).ok());
  CHECK_FALSE(fresh.contains(ids[7]));  // the writer will store it again
}

TEST_CASE("pg index: a store failing at call N never leaves the index pointing at a missing pack", "[pg]") {
  IndexDb db;
  auto run = [&](ObjectStore& s, test::Acked& acked) {
    PgBlobIndex index(db.conninfo());
    test::backup_like(s, index, 3, 10, acked);
  };
  auto clean = [&] { PgConnection::connect(db.conninfo()).exec("TRUNCATE repo_packs, repo_blobs"); };
  test::MemoryStore probe_store;
  Repository::init(probe_store, fast_init());
  test::FailingStore probe(probe_store, 0);
  test::Acked all;
  run(probe, all);
  int total = probe.calls();
  REQUIRE(total > 3);
  for (int n = 1; n <= total; ++n) {
    INFO("failing call " << n);
    clean();
    test::MemoryStore store;
    Repository::init(store, fast_init());
    test::FailingStore failing(store, n);
    test::Acked acked;
    std::string what;
    try {
      run(failing, acked);
    } catch (const Error& e) {
      what = e.what();
    }
    CHECK_THAT(what, Catch::Contains("injected failure"));
    PgBlobIndex index(db.conninfo());
    Repository repo(store, kKeys, index);
    auto v = verify_repository(repo, store, index, {true, false, {}});
    CHECK(v.missing.empty());  // never an index row without its pack
    CHECK(v.ok());
    for (auto& [id, data] : acked) CHECK(repo.read_blob(id) == data);
    // A retry on the healthy store completes, and everything reads back.
    test::Acked retry;
    run(store, retry);
    PgBlobIndex after(db.conninfo());
    Repository again(store, kKeys, after);
    for (auto& [id, data] : retry) CHECK(again.read_blob(id) == data);
    CHECK(verify_repository(again, store, after, {false, true, {}}).ok());
  }
}

TEST_CASE("pg index: SIGKILL at 20 random moments leaves a consistent repository (FsStore + PgBlobIndex)", "[pg]") {
  IndexDb db;
  test::TempDir dir("crash-pg");
  auto repo_dir = dir / "repo";
  std::filesystem::create_directories(repo_dir);
  FsStore store(repo_dir);
  test::init_crash_repository(store);
  auto ack_file = (dir / "acks").string();
  std::mt19937 rng(std::random_device{}());
  std::size_t acked_total = 0, adopted_total = 0;
  for (int round = 0; round < 20; ++round) {
    int code = test::run_and_kill(
        {M365VAULT_CRASH_WRITER, repo_dir.string(), ack_file, std::to_string(round), db.conninfo()},
        (dir / "writer.log").string(), std::chrono::milliseconds(100 + rng() % 500));
    INFO("round " << round << ", writer exit " << code);
    CHECK(code == 128 + SIGKILL);

    PgBlobIndex index(db.conninfo());
    Repository repo(store, KeySource{"crash passphrase", std::nullopt}, index);
    auto v = verify_repository(repo, store, index, {true, true, {}});
    CHECK(v.ok());
    CHECK(v.missing.empty());
    adopted_total += v.adopted.size();
    CHECK(verify_repository(repo, store, index, {}).unindexed.empty());
    acked_total = test::check_acknowledged(repo, ack_file);
  }
  CHECK(acked_total > 0);
  WARN("crash test: " << acked_total << " acknowledged blobs checked, " << adopted_total
                      << " packs adopted after kills");
}

TEST_CASE("pg index: the cache answers 'have I this blob?' cheaply at a million blobs", "[pg]") {
  IndexDb db;
  std::mt19937_64 rng(7);
  auto random_id = [&] {
    Id id;
    for (auto& b : id.bytes) b = static_cast<std::uint8_t>(rng());
    return id;
  };
  const std::size_t kPacks = 2000, kPerPack = 500;  // 1,000,000 blobs
  std::vector<BlobId> sample;
  double add_s = 0;
  {
    PgBlobIndex index(db.conninfo());
    auto t0 = std::chrono::steady_clock::now();
    for (std::size_t p = 0; p < kPacks; ++p) {
      std::vector<PackedBlob> blobs(kPerPack);
      std::uint64_t off = 0;
      for (auto& b : blobs) {
        b.id = random_id();
        b.offset = off;
        b.length = 30'000;
        b.plain_length = 60'000;
        off += b.length;
      }
      if (p % 20 == 0) sample.push_back(blobs[p % kPerPack].id);
      index.add_pack(random_id(), off, blobs);
    }
    add_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  auto t1 = std::chrono::steady_clock::now();
  PgBlobIndex index(db.conninfo());
  double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  CHECK(index.cached_blobs() == kPacks * kPerPack);

  const int kProbes = 1'000'000;
  std::size_t hits = 0;
  auto t2 = std::chrono::steady_clock::now();
  for (int i = 0; i < kProbes; ++i) hits += index.contains(i % 2 ? sample[static_cast<std::size_t>(i) % sample.size()] : random_id());
  double probe_ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t2).count() / kProbes;
  CHECK(hits == kProbes / 2);
  auto t3 = std::chrono::steady_clock::now();
  for (auto& id : sample) CHECK(index.find(id).has_value());
  double find_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t3).count() /
                   static_cast<double>(sample.size());
  WARN("pg index at " << kPacks * kPerPack << " blobs: add_pack " << (kPacks * kPerPack) / add_s << " blobs/s ("
                      << kPacks / add_s << " packs/s of " << kPerPack << "); cache load " << load_s << " s; contains() "
                      << probe_ns << " ns; find() " << find_us << " us");
  CHECK(probe_ns < 2000);
}
