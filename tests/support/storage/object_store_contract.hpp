#pragma once
// The one conformance suite every ObjectStore passes (the in-memory fake, FsStore,
// S3Store against a real server). Call it from a TEST_CASE; it uses SECTIONs, and
// `make` is called once per section and must return an empty store.
#include <functional>
#include <memory>

#include "m365vault/storage/object_store.hpp"

namespace m365vault::test {

void object_store_contract(const std::function<std::unique_ptr<storage::ObjectStore>()>& make);

}  // namespace m365vault::test
