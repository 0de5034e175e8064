#include "support/storage/blob_index_contract.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <thread>

#include "m365vault/storage/crypto.hpp"

namespace m365vault::test {

using namespace storage;

namespace {
Id random_id(std::mt19937_64& rng) {
  Id id;
  for (auto& b : id.bytes) b = static_cast<std::uint8_t>(rng());
  return id;
}

std::vector<PackedBlob> blobs_for(std::mt19937_64& rng, std::size_t n) {
  std::vector<PackedBlob> out;
  std::uint64_t offset = 0;
  for (std::size_t i = 0; i < n; ++i) {
    PackedBlob b;
    b.id = random_id(rng);
    b.type = i % 3 == 0 ? BlobType::meta : BlobType::data;
    b.offset = offset;
    b.length = static_cast<std::uint32_t>(100 + rng() % 100000);
    b.plain_length = b.length + static_cast<std::uint32_t>(rng() % 1000);
    offset += b.length;
    out.push_back(b);
  }
  return out;
}

void check_at(BlobIndex& index, const PackId& pack, const PackedBlob& b) {
  auto loc = index.find(b.id);
  REQUIRE(loc.has_value());
  CHECK(loc->pack == pack);
  CHECK(loc->type == b.type);
  CHECK(loc->offset == b.offset);
  CHECK(loc->length == b.length);
  CHECK(loc->plain_length == b.plain_length);
  CHECK(index.contains(b.id));
}
}  // namespace

void blob_index_contract(const BlobIndexFactory& factory) {
  std::mt19937_64 rng(std::random_device{}());
  auto index = factory.make();

  SECTION("an empty index knows nothing") {
    auto id = random_id(rng);
    CHECK_FALSE(index->find(id).has_value());
    CHECK_FALSE(index->contains(id));
    CHECK_FALSE(index->has_pack(random_id(rng)));
  }

  SECTION("add_pack makes every blob findable at its exact location, and survives a reopen") {
    auto pack = random_id(rng);
    auto blobs = blobs_for(rng, 300);
    index->add_pack(pack, 12345678, blobs);
    CHECK(index->has_pack(pack));
    for (auto& b : blobs) check_at(*index, pack, b);
    CHECK_FALSE(index->contains(random_id(rng)));
    auto again = factory.reopen(index);
    CHECK(again->has_pack(pack));
    for (auto& b : blobs) check_at(*again, pack, b);
    CHECK_FALSE(again->contains(random_id(rng)));
  }

  SECTION("a blob indexed twice keeps its first location") {
    auto first = random_id(rng), second = random_id(rng);
    auto blobs = blobs_for(rng, 5);
    index->add_pack(first, 1000, blobs);
    auto copy = blobs;
    for (auto& b : copy) b.offset += 7;
    copy.push_back(blobs_for(rng, 1)[0]);
    index->add_pack(second, 2000, copy);
    for (auto& b : blobs) check_at(*index, first, b);
    check_at(*index, second, copy.back());
    CHECK(index->has_pack(second));
  }

  SECTION("a pack added twice (a retried commit) is harmless") {
    auto pack = random_id(rng);
    auto blobs = blobs_for(rng, 20);
    index->add_pack(pack, 500, blobs);
    index->add_pack(pack, 500, blobs);
    for (auto& b : blobs) check_at(*index, pack, b);
  }

  SECTION("an empty pack is recorded") {
    auto pack = random_id(rng);
    index->add_pack(pack, 64, {});
    CHECK(index->has_pack(pack));
  }

  SECTION("uploaders add packs while the writer asks, from several threads") {
    std::vector<std::pair<PackId, std::vector<PackedBlob>>> packs;
    for (int i = 0; i < 16; ++i) packs.emplace_back(random_id(rng), blobs_for(rng, 200));
    std::vector<std::thread> threads;
    std::atomic<int> next{0};
    for (int t = 0; t < 3; ++t)
      threads.emplace_back([&] {
        for (int i; (i = next++) < static_cast<int>(packs.size());) {
          index->add_pack(packs[i].first, 1 << 20, packs[i].second);
          // Our own blobs are there at once; other threads' are there or not, never wrong.
          CHECK(index->contains(packs[i].second[0].id));
          auto other = packs[(i + 5) % packs.size()].second[1];
          if (auto loc = index->find(other.id)) CHECK(loc->offset == other.offset);
        }
      });
    for (auto& t : threads) t.join();
    for (auto& [pack, blobs] : packs)
      for (auto& b : blobs) check_at(*index, pack, b);
  }
}

}  // namespace m365vault::test
