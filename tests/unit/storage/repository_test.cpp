// The repository format: crypto wrappers, chunking, blob sealing, packs, key
// slots, durability order, dedupe, tamper detection and rebuilding an index from
// the store alone.
#include <catch2/catch.hpp>

#include <mutex>
#include <random>
#include <set>

#include "m365vault/core/error.hpp"
#include "m365vault/storage/chunker.hpp"
#include "m365vault/storage/crypto.hpp"
#include "m365vault/storage/pack.hpp"
#include "m365vault/storage/repository.hpp"
#include "support/storage/memory_store.hpp"
#include "support/storage/repo_fixtures.hpp"

using namespace m365vault;
using namespace m365vault::storage;
using test::code_of;
using test::fast_init;
using test::text_data;

namespace {
std::string noise_data(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    auto v = rng();
    std::memcpy(s.data() + i, &v, 8);
  }
  return s;
}




std::vector<std::size_t> cuts(const Chunker& c, const std::string& data, std::size_t feed) {
  std::vector<std::size_t> out;
  std::string buf;
  std::size_t pos = 0;
  for (;;) {
    while (buf.size() < c.params().max_size && pos < data.size()) {
      auto n = std::min(feed, data.size() - pos);
      buf.append(data, pos, n);
      pos += n;
    }
    if (buf.empty()) break;
    auto cut = c.next_cut(buf, pos == data.size());
    REQUIRE(cut > 0);
    out.push_back(cut);
    buf.erase(0, cut);
  }
  return out;
}
}  // namespace

TEST_CASE("crypto: scrypt matches RFC 7914, AES-GCM detects tampering", "[unit]") {
  auto k = crypto::scrypt("password", "NaCl", {1024, 8, 16}, 64);
  CHECK(crypto::to_hex(k) ==
        "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640");
  std::string key(32, 'k');
  auto sealed = crypto::seal(key, "secret", "aad");
  CHECK(crypto::open(key, sealed, "aad") == "secret");
  CHECK_FALSE(crypto::open(key, sealed, "other aad").has_value());
  sealed[15] ^= 1;
  CHECK_FALSE(crypto::open(key, sealed, "aad").has_value());
  CHECK(crypto::seal(key, "x", "") != crypto::seal(key, "x", ""));  // random nonces
  CHECK(crypto::base64_decode(crypto::base64_encode("ab")) == "ab");
}

TEST_CASE("crypto: SHA-256 fed piece by piece equals the one-shot digest", "[unit]") {
  auto data = noise_data(100'000, 7);
  crypto::Sha256 h;
  for (std::size_t i = 0; i < data.size(); i += 4093) h.update(std::string_view(data).substr(i, 4093));
  CHECK(crypto::to_hex(h.finish()) == crypto::to_hex(crypto::sha256(data)));
  crypto::Sha256 empty;
  CHECK(crypto::to_hex(empty.finish()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("chunker: bounded, deterministic, independent of how bytes arrive", "[unit]") {
  Chunker c(ChunkerParams{}, std::string(32, 's'));
  auto data = noise_data(40u << 20, 1);
  auto a = cuts(c, data, 1u << 20);
  auto b = cuts(c, data, 777'777);
  CHECK(a == b);
  std::size_t total = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    total += a[i];
    if (i + 1 < a.size()) {
      CHECK(a[i] >= c.params().min_size);
      CHECK(a[i] <= c.params().max_size);
    }
  }
  CHECK(total == data.size());
  double mean = static_cast<double>(total) / static_cast<double>(a.size());
  const auto avg = static_cast<double>(c.params().avg_size);
  CHECK(mean > 0.7 * avg);
  CHECK(mean < 1.6 * avg);
  // Another secret cuts elsewhere.
  Chunker other(ChunkerParams{}, std::string(32, 't'));
  CHECK(cuts(other, data, 1u << 20) != a);
}

TEST_CASE("chunker: an edit in the middle changes only nearby chunks", "[unit]") {
  Chunker c(ChunkerParams{}, std::string(32, 's'));
  auto data = noise_data(30u << 20, 2);
  auto edited = data;
  edited.insert(15u << 20, "an inserted line\r\n");
  auto split = [&](const std::string& d) {
    std::set<std::string> chunks;
    std::size_t pos = 0;
    for (auto n : cuts(c, d, 1u << 20)) {
      chunks.insert(d.substr(pos, n));
      pos += n;
    }
    return chunks;
  };
  auto before = split(data), after = split(edited);
  std::size_t fresh = 0;
  for (auto& ch : after) fresh += before.count(ch) ? 0 : 1;
  CHECK(fresh >= 1);
  CHECK(fresh <= 2);
}

TEST_CASE("blobs: compressed when it helps, raw when not, authenticated either way", "[unit]") {
  RepositoryKeys keys{std::string(32, 'e'), std::string(32, 'm'), std::string(32, 'c')};
  auto text = text_data(100'000, 3);
  auto noise = noise_data(100'000, 4);
  std::string sealed_text, sealed_noise;
  auto id_text = blob_id(keys, text), id_noise = blob_id(keys, noise);
  seal_blob(sealed_text, keys, id_text, text, 3);
  seal_blob(sealed_noise, keys, id_noise, noise, 3);
  CHECK(sealed_text.size() < text.size() / 3);
  CHECK(sealed_noise.size() == noise.size() + 1 + crypto::kSealOverhead);
  // Large blobs are sampled first: noise is stored raw without a full attempt,
  // text and text behind a noise header (a sample from the middle and the end
  // compresses) are still compressed.
  auto big_noise = noise_data(1u << 20, 5);
  auto big_text = text_data(1u << 20, 6);
  auto headed = noise_data(64u << 10, 7) + text_data((1u << 20) - (64u << 10), 8);
  for (auto* big : {&big_noise, &big_text, &headed}) {
    std::string sealed;
    auto id = blob_id(keys, *big);
    seal_blob(sealed, keys, id, *big, 3);
    if (big == &big_noise)
      CHECK(sealed.size() == big->size() + 1 + crypto::kSealOverhead);
    else
      CHECK(sealed.size() < big->size() / 2);
    CHECK(open_blob(keys, id, sealed, "test") == *big);
  }
  CHECK(open_blob(keys, id_text, sealed_text, "test") == text);
  CHECK(open_blob(keys, id_noise, sealed_noise, "test") == noise);
  std::string what;
  CHECK(code_of([&] { open_blob(keys, id_noise, sealed_text, "pack P"); }, &what) == Errc::data_corrupt);
  CHECK_THAT(what, Catch::Contains(id_noise.hex()) && Catch::Contains("pack P"));
  CHECK(blob_id(keys, "a") != blob_id(RepositoryKeys{keys.enc_key, std::string(32, 'x'), keys.chunker_key}, "a"));
}

TEST_CASE("repository: init refuses to overwrite, wrong passphrase writes nothing", "[unit]") {
  test::MemoryStore store;
  auto opts = fast_init();
  auto key_file = generate_key_file();
  opts.keys.key_file = key_file;
  auto cfg = Repository::init(store, opts);
  CHECK(cfg.id.size() == 32);
  CHECK(code_of([&] { Repository::init(store, opts); }) == Errc::conflict);
  auto config_before = store.objects().at("config");
  CHECK(config_before.find("correct horse") == std::string::npos);

  MemoryIndex index;
  auto snapshot = store.objects();
  std::string what;
  CHECK(code_of([&] { Repository r(store, KeySource{"wrong horse", std::nullopt}, index); }, &what) == Errc::wrong_key);
  CHECK_THAT(what, Catch::Contains("wrong passphrase"));
  CHECK(code_of([&] { Repository r(store, KeySource{std::nullopt, generate_key_file()}, index); }) == Errc::wrong_key);
  CHECK(store.objects() == snapshot);  // nothing written

  Repository by_pass(store, KeySource{"correct horse", std::nullopt}, index);
  Repository by_file(store, KeySource{std::nullopt, key_file}, index);
  CHECK(by_pass.config().id == cfg.id);
  auto id = by_pass.add_blob(BlobType::meta, "hello");
  by_pass.flush();
  CHECK(by_file.read_blob(id) == "hello");  // both slots open the same master key

  test::MemoryStore empty;
  CHECK(code_of([&] { Repository r(empty, KeySource{"x", std::nullopt}, index); }) == Errc::not_found);

  // A config edited behind our back is refused, not obeyed.
  auto& config = store.objects().at("config");
  auto at = config.find("\"zstd_level\": 3");
  REQUIRE(at != std::string::npos);
  config.replace(at, 15, "\"zstd_level\": 9");
  std::string what2;
  CHECK(code_of([&] { Repository r(store, KeySource{"correct horse", std::nullopt}, index); }, &what2) ==
        Errc::data_corrupt);
  CHECK_THAT(what2, Catch::Contains("config"));
}

TEST_CASE("repository: blobs are stored once, and only reported once durable", "[unit]") {
  test::MemoryStore store;
  Repository::init(store, fast_init());
  MemoryIndex index;
  Repository repo(store, KeySource{"correct horse", std::nullopt}, index);
  std::mutex durable_mu;  // uploader threads report concurrently
  std::vector<PackId> durable;
  repo.on_pack_durable([&](const PackId& p, const std::vector<PackedBlob>&) {
    std::lock_guard lock(durable_mu);
    durable.push_back(p);
  });

  auto a = repo.add_blob(BlobType::meta, text_data(5000, 1));
  auto b = repo.add_blob(BlobType::meta, text_data(5000, 2));
  auto a2 = repo.add_blob(BlobType::meta, text_data(5000, 1));
  CHECK(a == a2);
  CHECK_FALSE(index.find(a).has_value());  // not durable yet
  CHECK(store.objects().size() == 1);        // only config
  repo.flush();
  REQUIRE(durable.size() == 1);
  CHECK(index.find(a)->pack == durable[0]);
  CHECK(store.objects().count(pack_key(durable[0])) == 1);
  CHECK(repo.read_blob(a) == text_data(5000, 1));
  CHECK(repo.read_blob(b) == text_data(5000, 2));

  // Already indexed: nothing new is written.
  repo.add_blob(BlobType::meta, text_data(5000, 2));
  repo.flush();
  CHECK(durable.size() == 1);
  auto s = repo.stats();
  CHECK(s.blobs_added == 4);
  CHECK(s.blobs_new == 2);

  // Packs roll over at the target size (1 MiB here).
  for (int i = 0; i < 40; ++i) repo.add_blob(BlobType::data, noise_data(100'000, 100 + static_cast<unsigned>(i)));
  repo.flush();
  CHECK(durable.size() >= 4);
  CHECK(code_of([&] { repo.read_blob(blob_id(RepositoryKeys{}, "x")); }) == Errc::not_found);
}

TEST_CASE("repository: streams dedupe across an edit in the middle", "[unit]") {
  test::MemoryStore store;
  Repository::init(store, fast_init());
  MemoryIndex index;
  Repository repo(store, KeySource{"correct horse", std::nullopt}, index);
  auto feed = [](const std::string& s) {
    return [&s, pos = std::size_t{0}](char* out, std::size_t n) mutable {
      n = std::min(n, s.size() - pos);
      std::memcpy(out, s.data() + pos, n);
      pos += n;
      return n;
    };
  };
  auto file = noise_data(24u << 20, 9);
  auto ids = repo.add_stream(feed(file));
  repo.flush();
  auto before = repo.stats();
  auto edited = file;
  edited.replace(12u << 20, 5, "EDIT!");
  auto ids2 = repo.add_stream(feed(edited));
  repo.flush();
  auto after = repo.stats();
  CHECK(after.blobs_new - before.blobs_new <= 2);
  CHECK(after.bytes_new - before.bytes_new <= 2 * (8u << 20));
  std::string back;
  for (auto& id : ids2) back += repo.read_blob(id);
  CHECK(back == edited);
}

TEST_CASE("repository: one created with the old chunk sizes keeps them, reads and writes alike", "[unit]") {
  // Repositories created before the defaults became 256 KiB / 512 KiB / 4 MiB
  // record 512 KiB / 1 MiB / 8 MiB in their authenticated config.
  const ChunkerParams old{512u << 10, 1u << 20, 8u << 20};
  REQUIRE(ChunkerParams{}.max_size == (4u << 20));
  test::MemoryStore store;
  auto init = fast_init();
  init.chunker = old;
  Repository::init(store, init);
  MemoryIndex index;
  auto file = noise_data(40u << 20, 21);
  auto feed = [&file, pos = std::size_t{0}](char* out, std::size_t n) mutable {
    n = std::min(n, file.size() - pos);
    std::memcpy(out, file.data() + pos, n);
    pos += n;
    return n;
  };
  std::vector<BlobId> ids;
  {
    Repository repo(store, KeySource{"correct horse", std::nullopt}, index);
    CHECK(repo.chunker().params().min_size == old.min_size);
    CHECK(repo.chunker().params().avg_size == old.avg_size);
    CHECK(repo.chunker().params().max_size == old.max_size);
    ids = repo.add_stream(feed);
    repo.flush();
  }
  // Cut with the old sizes: no chunk but the last under the old 512 KiB minimum
  // (today's sizes cut about one chunk in eight between 256 and 512 KiB), none
  // over the old maximum, about 1 MiB on average.
  std::vector<std::size_t> sizes;
  for (auto& id : ids) sizes.push_back(index.find(id)->plain_length);
  REQUIRE(sizes.size() > 20);
  std::size_t total = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    total += sizes[i];
    if (i + 1 < sizes.size()) CHECK(sizes[i] >= old.min_size);
    CHECK(sizes[i] <= old.max_size);
  }
  CHECK(total == file.size());
  CHECK(static_cast<double>(total) / static_cast<double>(sizes.size()) > 0.7 * static_cast<double>(old.avg_size));
  // Reopened (what a daemon restart does), it reads everything back and cuts the
  // same file into the same chunks: nothing new is stored.
  Repository again(store, KeySource{"correct horse", std::nullopt}, index);
  std::string back;
  for (auto& id : ids) back += again.read_blob(id);
  CHECK(back == file);
  auto feed2 = [&file, pos = std::size_t{0}](char* out, std::size_t n) mutable {
    n = std::min(n, file.size() - pos);
    std::memcpy(out, file.data() + pos, n);
    pos += n;
    return n;
  };
  CHECK(again.add_stream(feed2) == ids);
  again.flush();
  CHECK(again.stats().blobs_new == 0);
  // A new repository gets the new defaults.
  test::MemoryStore fresh_store;
  Repository::init(fresh_store, fast_init());
  MemoryIndex fresh_index;
  Repository fresh(fresh_store, KeySource{"correct horse", std::nullopt}, fresh_index);
  CHECK(fresh.chunker().params().max_size == (4u << 20));
  CHECK(fresh.chunker().params().min_size == (256u << 10));
}

TEST_CASE("repository: a flipped byte fails loudly, naming exactly the damaged blob", "[unit]") {
  test::MemoryStore store;
  Repository::init(store, fast_init());
  MemoryIndex index;
  Repository repo(store, KeySource{"correct horse", std::nullopt}, index);
  std::vector<BlobId> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(repo.add_blob(BlobType::meta, text_data(20'000, 50 + static_cast<unsigned>(i))));
  repo.flush();
  auto packs = repo.list_packs();
  REQUIRE(packs.size() == 1);
  auto victim = index.find(ids[2]).value();
  store.objects()[pack_key(packs[0])][victim.offset + victim.length / 2] ^= 0x20;

  std::string what;
  CHECK(code_of([&] { repo.read_blob(ids[2]); }, &what) == Errc::data_corrupt);
  CHECK_THAT(what, Catch::Contains(ids[2].hex()) && Catch::Contains(packs[0].hex()));
  CHECK(repo.read_blob(ids[1]) == text_data(20'000, 51));
  auto check = repo.check_pack(packs[0]);
  CHECK_FALSE(check.ok());
  CHECK_FALSE(check.hash_ok);
  CHECK(check.table_ok);
  CHECK(check.damaged == std::vector<BlobId>{ids[2]});

  // A damaged table is reported, not trusted.
  auto& bytes = store.objects()[pack_key(packs[0])];
  bytes[bytes.size() - 20] ^= 1;
  CHECK(code_of([&] { repo.read_pack_table(packs[0]); }) == Errc::data_corrupt);
  CHECK_FALSE(repo.check_pack(packs[0]).table_ok);
  // A truncated pack too.
  bytes.resize(bytes.size() / 2);
  CHECK(code_of([&] { repo.read_pack_table(packs[0]); }) == Errc::data_corrupt);
}

TEST_CASE("repository: the store alone rebuilds the index", "[unit]") {
  test::MemoryStore store;
  Repository::init(store, fast_init());
  std::vector<std::pair<BlobId, std::string>> written;
  {
    MemoryIndex index;
    Repository repo(store, KeySource{"correct horse", std::nullopt}, index);
    for (int i = 0; i < 30; ++i) {
      auto data = text_data(60'000 + static_cast<std::size_t>(i), 200 + static_cast<unsigned>(i));
      written.emplace_back(repo.add_blob(BlobType::data, data), data);
    }
    repo.flush();
  }
  MemoryIndex rebuilt;
  Repository repo(store, KeySource{"correct horse", std::nullopt}, rebuilt);
  for (auto& p : repo.list_packs()) {
    auto table = repo.read_pack_table(p);
    rebuilt.add_pack(p, store.stat(pack_key(p))->size, table);
  }
  CHECK(rebuilt.blob_count() == written.size());
  for (auto& [id, data] : written) CHECK(repo.read_blob(id) == data);
}

TEST_CASE("repository: a store failing at call N never loses an acknowledged blob", "[unit]") {
  // A backup-like sequence: batches of blobs, each acknowledged by flush().
  auto run = [](ObjectStore& s, test::Acked& acked) {
    MemoryIndex index;
    test::backup_like(s, index, 4, 12, acked);
  };
  test::MemoryStore probe_store;
  Repository::init(probe_store, fast_init());
  test::FailingStore probe(probe_store, 0);
  std::vector<std::pair<BlobId, std::string>> all;
  run(probe, all);
  int total_calls = probe.calls();
  REQUIRE(total_calls > 4);

  for (int n = 1; n <= total_calls; ++n) {
    INFO("failing call " << n);
    test::MemoryStore store;
    Repository::init(store, fast_init());
    test::FailingStore failing(store, n);
    std::vector<std::pair<BlobId, std::string>> acked;
    CHECK_THROWS_AS(run(failing, acked), Error);
    // Reopen on the healthy store, rebuild the index, check everything acknowledged.
    MemoryIndex index;
    Repository repo(store, KeySource{"correct horse", std::nullopt}, index);
    for (auto& p : repo.list_packs()) {
      auto check = repo.check_pack(p);
      CHECK(check.ok());
      index.add_pack(p, 0, check.blobs);
    }
    for (auto& [id, data] : acked) CHECK(repo.read_blob(id) == data);
  }
}

namespace {
// An index whose commit fails, as when PostgreSQL goes away between the upload
// and the index transaction.
class FailingIndex final : public BlobIndex {
 public:
  std::optional<BlobLocation> find(const BlobId&) override { return std::nullopt; }
  void add_pack(const PackId&, std::uint64_t, const std::vector<PackedBlob>&) override {
    throw Error(Errc::database, "injected: index commit failed");
  }
  bool has_pack(const PackId&) override { return false; }
};
}  // namespace

TEST_CASE("repository: a pack uploaded but never indexed is adopted, a damaged one reported", "[unit]") {
  test::MemoryStore store;
  Repository::init(store, fast_init());
  MemoryIndex index;
  BlobId kept;
  {
    Repository repo(store, KeySource{"correct horse", std::nullopt}, index);
    kept = repo.add_blob(BlobType::meta, "indexed normally");
    repo.flush();
  }
  std::vector<BlobId> orphaned;
  {
    FailingIndex broken;
    Repository repo(store, KeySource{"correct horse", std::nullopt}, broken);
    for (int i = 0; i < 3; ++i) orphaned.push_back(repo.add_blob(BlobType::meta, text_data(3000, 900 + static_cast<unsigned>(i))));
    CHECK(code_of([&] { repo.flush(); }) == Errc::database);
    CHECK(code_of([&] { repo.add_blob(BlobType::meta, "after the failure"); }) == Errc::database);  // sticky
  }
  Repository repo(store, KeySource{"correct horse", std::nullopt}, index);
  CHECK(repo.list_packs().size() == 2);
  CHECK(code_of([&] { repo.read_blob(orphaned[0]); }) == Errc::not_found);
  auto report = repo.adopt_unindexed_packs();
  CHECK(report.adopted.size() == 1);
  CHECK(report.damaged.empty());
  for (int i = 0; i < 3; ++i) CHECK(repo.read_blob(orphaned[static_cast<std::size_t>(i)]) == text_data(3000, 900 + static_cast<unsigned>(i)));
  CHECK(repo.read_blob(kept) == "indexed normally");
  CHECK(repo.adopt_unindexed_packs().adopted.empty());  // idempotent

  // An unindexed pack that is damaged is reported, never indexed.
  MemoryIndex fresh;
  Repository again(store, KeySource{"correct horse", std::nullopt}, fresh);
  auto victim = pack_key(report.adopted[0]);
  store.objects()[victim][10] ^= 1;
  auto second = again.adopt_unindexed_packs();
  CHECK(second.adopted.size() == 1);
  REQUIRE(second.damaged.size() == 1);
  CHECK(second.damaged[0].pack == report.adopted[0]);
  CHECK_FALSE(fresh.has_pack(report.adopted[0]));
}

TEST_CASE("repository: parallel uploads keep every blob", "[unit]") {
  test::MemoryStore store;
  Repository::init(store, fast_init());
  MemoryIndex index;
  RepositoryOptions o;
  o.upload_threads = 4;
  o.max_queued_packs = 3;
  Repository repo(store, KeySource{"correct horse", std::nullopt}, index, o);
  std::vector<BlobId> ids;
  for (int i = 0; i < 60; ++i) ids.push_back(repo.add_blob(BlobType::data, noise_data(200'000, 5000 + static_cast<unsigned>(i))));
  repo.flush();
  CHECK(index.blob_count() == 60);
  CHECK(index.pack_count() == repo.stats().packs_written);
  for (int i = 0; i < 60; ++i) CHECK(repo.read_blob(ids[static_cast<std::size_t>(i)]) == noise_data(200'000, 5000 + static_cast<unsigned>(i)));
}

TEST_CASE("repository: changing the passphrase keeps the data and retires the old one", "[unit]") {
  test::MemoryStore store;
  Repository::init(store, fast_init("old passphrase"));
  MemoryIndex index;
  BlobId id;
  {
    Repository repo(store, KeySource{"old passphrase", std::nullopt}, index);
    id = repo.add_blob(BlobType::meta, "kept across the change");
    repo.flush();
    auto key_file = generate_key_file();
    repo.set_keys(KeySource{"new passphrase", key_file}, {1024, 8, 1});
    Repository by_file(store, KeySource{std::nullopt, key_file}, index);
    CHECK(by_file.read_blob(id) == "kept across the change");
  }
  CHECK(code_of([&] { Repository r(store, KeySource{"old passphrase", std::nullopt}, index); }) == Errc::wrong_key);
  Repository repo(store, KeySource{"new passphrase", std::nullopt}, index);
  CHECK(repo.read_blob(id) == "kept across the change");
  CHECK(code_of([&] { repo.set_keys(KeySource{}); }) == Errc::bad_request);
}

TEST_CASE("repository: manifests are sealed, bound to their id, and listed", "[unit]") {
  test::MemoryStore store;
  Repository::init(store, fast_init());
  MemoryIndex index;
  Repository repo(store, KeySource{"correct horse", std::nullopt}, index);
  auto body = text_data(50'000, 77);
  repo.put_manifest("snap-1", body);
  repo.put_manifest("snap-2", "second");
  CHECK(repo.get_manifest("snap-1") == body);
  CHECK_FALSE(repo.get_manifest("snap-3").has_value());
  CHECK(repo.list_manifests() == std::vector<std::string>{"snap-1", "snap-2"});
  CHECK(store.objects().at("manifests/snap-1").find("mailbox") == std::string::npos);  // not in clear
  // Swapping two manifests is detected: each is bound to its name.
  std::swap(store.objects().at("manifests/snap-1"), store.objects().at("manifests/snap-2"));
  std::string what;
  CHECK(code_of([&] { repo.get_manifest("snap-1"); }, &what) == Errc::data_corrupt);
  CHECK_THAT(what, Catch::Contains("snap-1"));
  CHECK(code_of([&] { repo.put_manifest("../x", "y"); }) == Errc::bad_request);
}

TEST_CASE("repository: add_blobs equals add_blob one by one", "[unit]") {
  test::MemoryStore store;
  Repository::init(store, fast_init());
  MemoryIndex index;
  Repository repo(store, KeySource{"correct horse", std::nullopt}, index);
  std::vector<std::string> items;
  for (int i = 0; i < 40; ++i) items.push_back(text_data(1000 + 5000 * static_cast<std::size_t>(i % 30 % 7), 300 + static_cast<unsigned>(i % 30)));
  std::vector<std::string_view> views(items.begin(), items.end());
  auto ids = repo.add_blobs(BlobType::meta, views);
  repo.flush();
  REQUIRE(ids.size() == items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    CHECK(ids[i] == repo.add_blob(BlobType::meta, items[i]));
    CHECK(repo.read_blob(ids[i]) == items[i]);
  }
  CHECK(repo.stats().blobs_new == 30);  // ten repeats deduplicated
}
