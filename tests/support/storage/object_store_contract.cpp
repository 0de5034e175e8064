#include "support/storage/object_store_contract.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <set>
#include <thread>

#include "m365vault/core/error.hpp"

namespace m365vault::test {

using storage::ByteRange;
using storage::ObjectInfo;

namespace {
std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

std::vector<std::string> keys_of(const std::vector<ObjectInfo>& v) {
  std::vector<std::string> out;
  for (auto& o : v) out.push_back(o.key);
  return out;
}

Errc code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  FAIL("expected an Error");
  return Errc::internal;
}
}  // namespace

void object_store_contract(const std::function<std::unique_ptr<storage::ObjectStore>()>& make) {
  auto store = make();
  auto& s = *store;
  INFO("store " << s.describe());

  SECTION("put then get returns the same bytes, binary and empty alike") {
    std::string bin = random_bytes(70'000, 1);
    bin[10] = '\0';
    s.put("packs/00/aa", bin);
    s.put("empty", "");
    CHECK(s.get("packs/00/aa") == bin);
    CHECK(s.get("empty") == std::string());
    CHECK(s.stat("packs/00/aa") == ObjectInfo{"packs/00/aa", bin.size()});
    CHECK(s.stat("empty") == ObjectInfo{"empty", 0});
  }

  SECTION("absent objects are values, not errors") {
    CHECK_FALSE(s.get("nope/x").has_value());
    CHECK_FALSE(s.stat("nope/x").has_value());
    CHECK_NOTHROW(s.remove("nope/x"));
    CHECK(s.list("nope/").objects.empty());
    CHECK(s.list("nope/").next_token.empty());
  }

  SECTION("put replaces the whole object") {
    s.put("config", std::string(5000, 'a'));
    s.put("config", "short");
    CHECK(s.get("config") == "short");
    CHECK(s.stat("config")->size == 5);
  }

  SECTION("ranged reads") {
    std::string data = random_bytes(10'000, 2);
    s.put("r", data);
    CHECK(s.get("r", ByteRange{0, 10}) == data.substr(0, 10));
    CHECK(s.get("r", ByteRange{9'990, std::nullopt}) == data.substr(9'990));
    CHECK(s.get("r", ByteRange{5'000, 100}) == data.substr(5'000, 100));
    CHECK(s.get("r", ByteRange{9'995, 100}) == data.substr(9'995));  // clamped to the end
    CHECK(s.get("r", ByteRange{9'999, 1}) == data.substr(9'999));
    CHECK(code_of([&] { s.get("r", ByteRange{10'000, 1}); }) == Errc::bad_request);
    CHECK(code_of([&] { s.get("r", ByteRange{20'000, std::nullopt}); }) == Errc::bad_request);
    CHECK_FALSE(s.get("absent", ByteRange{5, 5}).has_value());
  }

  SECTION("list filters by prefix, sorts, and paginates without loss or repeats") {
    std::vector<std::string> keys = {"packs/00/a1", "packs/00/a2", "packs/01/b1", "packs/ff/c1",
                                     "packs/ff/c2", "manifests/m1", "config"};
    for (auto& k : keys) s.put(k, k);
    std::vector<std::string> got;
    std::string token;
    int pages = 0;
    do {
      auto page = s.list("packs/", token, 2);
      CHECK(page.objects.size() <= 2);
      for (auto& o : page.objects) {
        CHECK(o.size == o.key.size());
        got.push_back(o.key);
      }
      token = page.next_token;
      REQUIRE(++pages < 10);
    } while (!token.empty());
    CHECK(got == std::vector<std::string>{"packs/00/a1", "packs/00/a2", "packs/01/b1", "packs/ff/c1", "packs/ff/c2"});
    CHECK(pages >= 3);
    CHECK(keys_of(storage::list_all(s, "packs/0")) ==
          std::vector<std::string>{"packs/00/a1", "packs/00/a2", "packs/01/b1"});
    CHECK(keys_of(storage::list_all(s, "packs/ff/c2")) == std::vector<std::string>{"packs/ff/c2"});
    auto everything = keys_of(storage::list_all(s, ""));
    auto sorted = keys;
    std::sort(sorted.begin(), sorted.end());
    CHECK(everything == sorted);
  }

  SECTION("remove deletes and is idempotent") {
    s.put("packs/aa/x", "x");
    s.put("packs/aa/y", "y");
    s.remove("packs/aa/x");
    s.remove("packs/aa/x");
    CHECK_FALSE(s.get("packs/aa/x").has_value());
    CHECK(keys_of(storage::list_all(s, "packs/")) == std::vector<std::string>{"packs/aa/y"});
  }

  SECTION("invalid keys are refused before any I/O") {
    for (std::string bad : {"", "/abs", "a//b", "../etc/passwd", "a/../b", "a/.hidden", "sp ace", "trailing/"}) {
      INFO("key '" << bad << "'");
      CHECK(code_of([&] { s.put(bad, "x"); }) == Errc::bad_request);
      CHECK(code_of([&] { s.get(bad); }) == Errc::bad_request);
    }
  }

  SECTION("concurrent writers of one key leave exactly one whole version") {
    std::vector<std::string> versions;
    for (unsigned i = 0; i < 6; ++i) versions.push_back(random_bytes(50'000 + i * 7'000, 100 + i));
    std::vector<std::thread> threads;
    for (unsigned i = 0; i < versions.size(); ++i)
      threads.emplace_back([&, i] {
        for (int round = 0; round < 3; ++round) s.put("packs/cc/same", versions[i]);
      });
    for (auto& t : threads) t.join();
    auto got = s.get("packs/cc/same");
    REQUIRE(got.has_value());
    CHECK(std::find(versions.begin(), versions.end(), *got) != versions.end());
    CHECK(keys_of(storage::list_all(s, "packs/cc/")) == std::vector<std::string>{"packs/cc/same"});
  }

  SECTION("concurrent writers of different keys all land") {
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < 5; ++i) s.put("packs/d" + std::to_string(t) + "/k" + std::to_string(i), std::to_string(t * 100 + i));
      });
    for (auto& t : threads) t.join();
    CHECK(storage::list_all(s, "packs/").size() == 20);
    CHECK(s.get("packs/d3/k4") == "304");
  }

  SECTION("a large object round-trips (multipart where the store uses it)") {
    std::string big = random_bytes(12u << 20, 3);
    s.put("packs/bb/big", big);
    CHECK(s.stat("packs/bb/big")->size == big.size());
    auto got = s.get("packs/bb/big");
    REQUIRE(got.has_value());
    CHECK(got->size() == big.size());
    CHECK(*got == big);
    CHECK(s.get("packs/bb/big", ByteRange{(6u << 20) - 3, 10}) == big.substr((6u << 20) - 3, 10));
  }
}

}  // namespace m365vault::test
