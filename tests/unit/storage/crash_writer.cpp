// Helper for crash_test: writes batches of blobs into a filesystem repository
// forever, appending "<content number> <blob id>\n" to the ack file after each
// flush() returns (the moment a backup would commit its index rows). The test
// kills it with SIGKILL at random moments.
//   storage_crash_writer REPO ACK_FILE ROUND [CONNINFO]
// With CONNINFO the index is the PostgreSQL one (PgBlobIndex), else in memory.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "m365vault/storage/fs_store.hpp"
#include "m365vault/storage/pg_index.hpp"
#include "m365vault/storage/repository.hpp"
#include "support/storage/crash_content.hpp"

using namespace m365vault;

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) return 2;
  try {
    storage::FsStore store(argv[1]);
    std::unique_ptr<storage::BlobIndex> index;
    if (argc == 5) {
      index = std::make_unique<storage::PgBlobIndex>(argv[4]);
    } else {
      index = std::make_unique<storage::MemoryIndex>();
    }
    storage::Repository repo(store, storage::KeySource{"crash passphrase", std::nullopt}, *index);
    if (argc == 4)
      for (auto& p : repo.list_packs()) index->add_pack(p, 0, repo.read_pack_table(p));
    int ack = ::open(argv[2], O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (ack < 0) return 3;
    std::uint64_t round = std::stoull(argv[3]);
    for (std::uint64_t n = 0; n < 100'000; n += 10) {
      std::string lines;
      for (std::uint64_t k = n; k < n + 10; ++k) {
        // Every seventh blob repeats one of an earlier round (the dedupe path).
        std::uint64_t content = (k % 7 == 6 && round > 0) ? (round - 1) * 1'000'000 + k : round * 1'000'000 + k;
        auto id = repo.add_blob(storage::BlobType::data, test::crash_content(content));
        lines += std::to_string(content) + " " + id.hex() + "\n";
      }
      repo.flush();
      if (::write(ack, lines.data(), lines.size()) != static_cast<ssize_t>(lines.size())) return 4;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crash writer: %s\n", e.what());
    return 1;
  }
}
