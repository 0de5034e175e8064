// Kill -9 a writer at 20 random moments; after each kill the repository verifies
// deep (every pack hashes to its name, every blob authenticates) and every blob
// acknowledged before the kill reads back identical.
#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "m365vault/core/process.hpp"
#include "m365vault/storage/fs_store.hpp"
#include "m365vault/storage/repository.hpp"
#include "support/storage/crash_content.hpp"
#include "support/storage/repo_fixtures.hpp"
#include "support/temp_dir.hpp"

using namespace m365vault;

TEST_CASE("repository survives SIGKILL at 20 random moments", "[unit]") {
  test::TempDir dir("crash");
  auto repo_dir = dir / "repo";
  std::filesystem::create_directories(repo_dir);
  storage::FsStore store(repo_dir);
  test::init_crash_repository(store);
  auto ack_file = (dir / "acks").string();

  std::mt19937 rng(std::random_device{}());
  std::size_t acked_total = 0;
  for (int round = 0; round < 20; ++round) {
    int code = test::run_and_kill({M365VAULT_CRASH_WRITER, repo_dir.string(), ack_file, std::to_string(round)},
                                  (dir / "writer.log").string(), std::chrono::milliseconds(30 + rng() % 400));
    INFO("round " << round << ", writer exit " << code);
    CHECK(code == 128 + SIGKILL);

    // verify --deep, and the index rebuilt from the store alone.
    storage::MemoryIndex index;
    storage::Repository repo(store, storage::KeySource{"crash passphrase", std::nullopt}, index);
    for (auto& p : repo.list_packs()) {
      auto check = repo.check_pack(p);
      INFO(check.error);
      CHECK(check.ok());
      index.add_pack(p, 0, check.blobs);
    }
    acked_total = test::check_acknowledged(repo, ack_file);
  }
  // The kills landed while work was being acknowledged, not all before the first flush.
  CHECK(acked_total > 0);
}
