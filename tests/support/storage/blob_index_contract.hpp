#pragma once
// The one behaviour suite every BlobIndex passes (MemoryIndex, PgBlobIndex against
// the real PostgreSQL). Call it from a TEST_CASE; it uses SECTIONs. `make` is called
// once per section and must return an empty index; `reopen` returns a second
// instance over the same data (for MemoryIndex: the same object).
#include <functional>
#include <memory>

#include "m365vault/storage/repository.hpp"

namespace m365vault::test {

struct BlobIndexFactory {
  std::function<std::shared_ptr<storage::BlobIndex>()> make;
  std::function<std::shared_ptr<storage::BlobIndex>(const std::shared_ptr<storage::BlobIndex>&)> reopen;
};

void blob_index_contract(const BlobIndexFactory& factory);

}  // namespace m365vault::test
