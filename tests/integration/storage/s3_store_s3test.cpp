// S3Store against a real S3-compatible server that checks signatures (OpenStack
// Swift with s3api, started by scripts/s3-server.sh; see tests/storage.cmake).
#include <catch2/catch.hpp>

#include <cstring>
#include <random>

#include "m365vault/core/error.hpp"
#include "m365vault/storage/crypto.hpp"
#include "m365vault/storage/repository.hpp"
#include "m365vault/storage/s3_store.hpp"
#include "support/env.hpp"
#include "support/storage/object_store_contract.hpp"

using namespace m365vault;
using storage::S3Config;
using storage::S3Store;

namespace {
S3Config config_from_env() {
  S3Config c;
  c.endpoint = test::require_service("M365VAULT_TEST_S3_ENDPOINT");
  c.access_key = test::env("M365VAULT_TEST_S3_ACCESS_KEY").value_or("test:tester");
  c.secret_key = test::env("M365VAULT_TEST_S3_SECRET_KEY").value_or("testing");
  c.region = test::env("M365VAULT_TEST_S3_REGION").value_or("us-east-1");
  c.bucket = test::env("M365VAULT_TEST_S3_BUCKET").value_or("m365vault-test");
  // Small parts so the contract's 12 MiB object goes up in three parts.
  c.multipart_threshold = 5u << 20;
  c.part_size = 5u << 20;
  c.max_attempts = 3;
  return c;
}

// A fresh prefix per store, so sections never see each other's objects.
std::string fresh_prefix() {
  return "t-" + storage::crypto::to_hex(storage::crypto::random_bytes(6));
}

std::unique_ptr<S3Store> make_store(S3Config c) {
  c.prefix = fresh_prefix();
  auto s = std::make_unique<S3Store>(c, nullptr);
  s->create_bucket();
  return s;
}
}  // namespace

TEST_CASE("object store contract: S3Store, path-style, signed payloads", "[s3]") {
  auto c = config_from_env();
  test::object_store_contract([&] { return make_store(c); });
}

TEST_CASE("object store contract: S3Store, UNSIGNED-PAYLOAD", "[s3]") {
  auto c = config_from_env();
  c.sign_payload = false;
  test::object_store_contract([&] { return make_store(c); });
}

TEST_CASE("S3Store with a wrong secret fails with a clear access-denied error", "[s3]") {
  auto good = config_from_env();
  make_store(good);  // the bucket exists
  auto bad = good;
  bad.secret_key = "not-the-secret";
  bad.prefix = fresh_prefix();
  S3Store s(bad, nullptr);
  try {
    s.put("config", "x");
    FAIL("put with a wrong secret succeeded");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::storage_denied);
    CHECK_THAT(e.what(), Catch::Contains("403"));
    CHECK_THAT(e.what(), Catch::Contains("check the access key"));
  }
  CHECK_THROWS_AS(s.get("config"), Error);
  CHECK(s.stats().retries == 0);  // a 403 is not retried
}

TEST_CASE("S3Store paginates ListObjectsV2 with continuation tokens", "[s3]") {
  auto store = make_store(config_from_env());
  for (int i = 0; i < 25; ++i) store->put("packs/" + std::to_string(100 + i), "x");
  std::size_t pages = 0, total = 0;
  std::string token;
  do {
    auto page = store->list("packs/", token, 7);
    ++pages;
    total += page.objects.size();
    token = page.next_token;
  } while (!token.empty());
  CHECK(total == 25);
  CHECK(pages == 4);
}

TEST_CASE("S3Store uploads large objects in parts and reads them back whole", "[s3]") {
  auto store = make_store(config_from_env());
  std::string big(11u << 20, '\0');
  std::mt19937 rng(7);
  for (auto& ch : big) ch = static_cast<char>(rng());
  auto before = store->stats().requests;
  store->put("packs/ab/big", big);
  // create + 3 parts (5 + 5 + 1 MiB) + complete
  CHECK(store->stats().requests - before == 5);
  CHECK(store->get("packs/ab/big") == big);
}

TEST_CASE("object store contract: S3Store, virtual-host addressing", "[s3]") {
  auto c = config_from_env();
  // scripts/s3-server.sh serves "<bucket>.localhost"; connect to the endpoint's
  // address and name the bucket in the Host header.
  auto colon = c.endpoint.rfind(':');
  auto host_start = c.endpoint.find("://") + 3;
  c.connect_address = c.endpoint.substr(host_start, colon - host_start);
  c.endpoint = c.endpoint.substr(0, host_start) + "localhost" + c.endpoint.substr(colon);
  c.path_style = false;
  test::object_store_contract([&] { return make_store(c); });

  // The same object seen through both addressing styles proves the Host header
  // really selected the bucket.
  auto path_cfg = config_from_env();
  auto vcfg = c;
  vcfg.prefix = fresh_prefix();
  S3Store v(vcfg, nullptr);
  v.put("probe", "through the virtual host");
  path_cfg.prefix = vcfg.prefix;
  S3Store p(path_cfg, nullptr);
  CHECK(p.get("probe") == "through the virtual host");
}

TEST_CASE("repository on S3: write, read back, wrong passphrase, tamper", "[s3]") {
  auto store = make_store(config_from_env());
  storage::InitOptions init;
  init.keys.passphrase = "s3 passphrase";
  init.kdf = {1024, 8, 1};
  init.pack_size = 4u << 20;
  storage::Repository::init(*store, init);

  storage::MemoryIndex index;
  std::string file(20u << 20, '\0');
  std::mt19937_64 rng(11);
  for (std::size_t i = 0; i + 8 <= file.size(); i += 8) {
    auto v = rng();
    std::memcpy(file.data() + i, &v, 8);
  }
  std::vector<storage::BlobId> ids;
  storage::BlobId small;
  {
    storage::Repository repo(*store, storage::KeySource{"s3 passphrase", std::nullopt}, index);
    std::size_t pos = 0;
    ids = repo.add_stream([&](char* out, std::size_t n) {
      n = std::min(n, file.size() - pos);
      std::memcpy(out, file.data() + pos, n);
      pos += n;
      return n;
    });
    small = repo.add_blob(storage::BlobType::meta, "Subject: hello\r\n\r\nbody");
    repo.flush();
    std::string back;
    for (auto& id : ids) back += repo.read_blob(id);
    CHECK(back == file);
    CHECK(repo.read_blob(small) == "Subject: hello\r\n\r\nbody");
  }

  auto before = storage::list_all(*store, "");
  try {
    storage::Repository wrong(*store, storage::KeySource{"not it", std::nullopt}, index);
    FAIL("opened with a wrong passphrase");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::wrong_key);
  }
  CHECK(storage::list_all(*store, "") == before);

  storage::Repository repo(*store, storage::KeySource{"s3 passphrase", std::nullopt}, index);
  auto loc = index.find(small).value();
  auto key = storage::pack_key(loc.pack);
  auto bytes = store->get(key).value();
  bytes[loc.offset + 3] ^= 1;
  store->put(key, bytes);
  auto check = repo.check_pack(loc.pack);
  CHECK(check.damaged == std::vector<storage::BlobId>{small});
  CHECK_THROWS_AS(repo.read_blob(small), Error);
}
