// The BlobIndex behaviour suite on the in-memory index (PgBlobIndex runs the same
// suite in tests/integration/storage/pg_index_pgtest.cpp), and secret sealing.
#include <catch2/catch.hpp>

#include "m365vault/core/error.hpp"
#include "m365vault/storage/repository.hpp"
#include "support/storage/blob_index_contract.hpp"
#include "support/storage/memory_store.hpp"
#include "support/storage/repo_fixtures.hpp"

using namespace m365vault;
using namespace m365vault::storage;
using test::code_of;
using test::fast_init;

TEST_CASE("blob index contract: MemoryIndex", "[unit]") {
  test::blob_index_contract({[] { return std::make_shared<MemoryIndex>(); },
                             [](const std::shared_ptr<BlobIndex>& same) { return same; }});
}


TEST_CASE("repository: sealed secrets open only with the same repository and context", "[unit]") {
  test::MemoryStore store;
  Repository::init(store, fast_init());
  MemoryIndex index;
  Repository repo(store, KeySource{"correct horse", std::nullopt}, index);
  using namespace std::string_literals;
  const std::string secret = "client-secret~with.all_sorts-of/chars\n\0and a NUL"s;
  auto sealed = repo.seal_secret("tenant:42:client_secret", secret);
  CHECK(sealed.rfind("v1:", 0) == 0);
  CHECK(sealed.find("client-secret") == std::string::npos);
  CHECK(sealed.find('\0') == std::string::npos);  // printable: safe in a text column
  CHECK(repo.open_secret("tenant:42:client_secret", sealed) == secret);
  CHECK(repo.seal_secret("tenant:42:client_secret", secret) != sealed);  // fresh nonce each time
  CHECK(repo.open_secret("c", repo.seal_secret("c", "")).empty());

  // Another context (a value copied to another tenant's row) does not open.
  CHECK(code_of([&] { repo.open_secret("tenant:43:client_secret", sealed); }) == Errc::data_corrupt);
  // A flipped character, a truncation, garbage.
  auto flipped = sealed;
  flipped[10] = flipped[10] == 'A' ? 'B' : 'A';
  CHECK(code_of([&] { repo.open_secret("tenant:42:client_secret", flipped); }) == Errc::data_corrupt);
  CHECK(code_of([&] { repo.open_secret("tenant:42:client_secret", sealed.substr(0, 20)); }) == Errc::data_corrupt);
  CHECK(code_of([&] { repo.open_secret("tenant:42:client_secret", "plain text"); }) == Errc::data_corrupt);

  // The same repository opened again (or by its key file) opens it; another repository does not.
  Repository again(store, KeySource{"correct horse", std::nullopt}, index);
  CHECK(again.open_secret("tenant:42:client_secret", sealed) == secret);
  test::MemoryStore other_store;
  Repository::init(other_store, fast_init());
  Repository other(other_store, KeySource{"correct horse", std::nullopt}, index);
  CHECK(code_of([&] { other.open_secret("tenant:42:client_secret", sealed); }) == Errc::data_corrupt);
}
