// The object-store contract on the in-memory fake and on FsStore, plus what only
// the filesystem store promises (temporary files stay invisible, clear errors).
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "m365vault/core/error.hpp"
#include "m365vault/core/metrics.hpp"
#include "m365vault/storage/fs_store.hpp"
#include "m365vault/storage/metered_store.hpp"
#include "support/storage/memory_store.hpp"
#include "support/storage/object_store_contract.hpp"
#include "support/temp_dir.hpp"

using namespace m365vault;
using m365vault::test::TempDir;

TEST_CASE("object store contract: in-memory fake", "[unit]") {
  test::object_store_contract([] { return std::make_unique<test::MemoryStore>(); });
}

TEST_CASE("object store contract: FsStore", "[unit]") {
  TempDir dir("fsstore");
  int n = 0;
  test::object_store_contract([&] {
    auto root = dir / ("r" + std::to_string(n++));
    std::filesystem::create_directories(root);
    return std::make_unique<storage::FsStore>(root);
  });
}

TEST_CASE("FsStore leaves no temporary file behind and never lists one", "[unit]") {
  TempDir dir("fsstore");
  storage::FsStore s(dir.path());
  s.put("packs/ab/one", "1");
  // A crashed writer's leftover.
  test::write_file(dir / "packs/ab/.two.tmp-123456", "partial");
  CHECK(storage::list_all(s, "").size() == 1);
  int files = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir.path()))
    if (e.is_regular_file()) ++files;
  CHECK(files == 2);  // the object and the planted leftover, nothing of ours
}

TEST_CASE("FsStore reports a broken layout clearly", "[unit]") {
  TempDir dir("fsstore");
  storage::FsStore s(dir.path());
  test::write_file(dir / "packs", "a file where a directory belongs");
  try {
    s.put("packs/ab/one", "1");
    FAIL("put succeeded");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::storage);
    CHECK_THAT(e.what(), Catch::Contains("packs"));
  }
  CHECK_THROWS_AS(storage::FsStore(dir / "missing"), Error);
}

TEST_CASE("FsStore removes only stale temporary files", "[unit]") {
  TempDir dir("fsstore");
  storage::FsStore s(dir.path());
  s.put("packs/ab/one", "1");
  test::write_file(dir / "packs/ab/.old.tmp-111111", "crashed writer");
  test::write_file(dir / "packs/ab/.new.tmp-222222", "live writer");
  std::filesystem::last_write_time(dir / "packs/ab/.old.tmp-111111",
                                   std::filesystem::file_time_type::clock::now() - std::chrono::hours(2));
  CHECK(s.remove_stale_temporaries(std::chrono::hours(1)) == 1);
  CHECK_FALSE(std::filesystem::exists(dir / "packs/ab/.old.tmp-111111"));
  CHECK(std::filesystem::exists(dir / "packs/ab/.new.tmp-222222"));
  CHECK(s.get("packs/ab/one") == "1");
}

TEST_CASE("object store contract: MeteredStore over FsStore, and what it counts", "[unit]") {
  TempDir dir("metered");
  MetricsRegistry metrics;
  std::vector<std::unique_ptr<storage::FsStore>> inner;
  int n = 0;
  test::object_store_contract([&]() -> std::unique_ptr<storage::ObjectStore> {
    auto root = dir / ("r" + std::to_string(n++));
    std::filesystem::create_directories(root);
    inner.push_back(std::make_unique<storage::FsStore>(root));
    return std::make_unique<storage::MeteredStore>(*inner.back(), metrics, "fs");
  });
}

TEST_CASE("MeteredStore counts operations, outcomes and bytes", "[unit]") {
  TempDir dir("metered");
  MetricsRegistry metrics;
  storage::FsStore fs(dir.path());
  storage::MeteredStore s(fs, metrics, "fs");
  s.put("a", "12345");
  CHECK(s.get("a") == "12345");
  CHECK_THROWS_AS(s.put("../bad", "x"), Error);
  auto text = metrics.render();
  CHECK_THAT(text, Catch::Contains("m365vault_store_requests_total{store=\"fs\",op=\"put\",outcome=\"ok\"}"));
  CHECK_THAT(text, Catch::Contains("outcome=\"bad_request\""));
  CHECK_THAT(text, Catch::Contains("m365vault_store_bytes_total{store=\"fs\",direction=\"out\"} 5"));
  CHECK_THAT(text, Catch::Contains("m365vault_store_bytes_total{store=\"fs\",direction=\"in\"} 5"));
}
