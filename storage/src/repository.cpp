#include "m365vault/storage/repository.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <future>

#include "m365vault/core/error.hpp"

namespace m365vault::storage {

using nlohmann::json;

namespace {
constexpr std::string_view kConfigKey = "config";
constexpr std::string_view kFormat = "m365vault-repository";
constexpr std::string_view kKeyFileTag = "m365vault-key-v1";
constexpr std::size_t kMasterSize = 96;  // enc || mac || chunker
constexpr std::string_view kSecretsLabel = "m365vault secrets v1";
constexpr std::string_view kSecretTag = "v1:";

std::string slot_aad(const std::string& repo_id) { return "m365vault key slot v1 " + repo_id; }

std::string key_file_secret(std::string_view contents) {
  std::string_view s = contents;
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
  if (!s.starts_with(kKeyFileTag) || s.size() <= kKeyFileTag.size() + 1 || s[kKeyFileTag.size()] != ' ')
    throw Error(Errc::invalid_config, "the key file is not an m365vault key file (expected '" +
                                          std::string(kKeyFileTag) + " <base64>')");
  auto raw = crypto::base64_decode(s.substr(kKeyFileTag.size() + 1));
  if (!raw || raw->size() != 32) throw Error(Errc::invalid_config, "the key file's key is not 32 bytes of base64");
  return *raw;
}

// The config's fields (everything but "mac") authenticated under the MAC key, so
// a changed chunker, compression or pack setting is noticed, not obeyed.
std::string config_mac(const std::string& mac_key, json doc) {
  doc.erase("mac");
  return crypto::to_hex(crypto::hmac_sha256(mac_key, "m365vault config v1 " + doc.dump()));
}

json make_slots(const std::string& master, const std::string& repo_id, const KeySource& keys,
                const crypto::ScryptParams& kdf) {
  json slots = json::array();
  if (keys.passphrase) {
    if (keys.passphrase->empty()) throw Error(Errc::bad_request, "the passphrase is empty");
    std::string salt = crypto::random_bytes(16);
    std::string kek = crypto::scrypt(*keys.passphrase, salt, kdf);
    slots.push_back({{"type", "passphrase"},
                     {"kdf", {{"name", "scrypt"}, {"n", kdf.n}, {"r", kdf.r}, {"p", kdf.p},
                              {"salt", crypto::base64_encode(salt)}}},
                     {"wrapped", crypto::base64_encode(crypto::seal(kek, master, slot_aad(repo_id)))}});
  }
  if (keys.key_file) {
    std::string kek = key_file_secret(*keys.key_file);
    slots.push_back({{"type", "key_file"},
                     {"wrapped", crypto::base64_encode(crypto::seal(kek, master, slot_aad(repo_id)))}});
  }
  if (slots.empty()) throw Error(Errc::bad_request, "a passphrase or a key file is needed");
  return slots;
}

RepositoryKeys split_master(std::string_view master) {
  return {std::string(master.substr(0, 32)), std::string(master.substr(32, 32)), std::string(master.substr(64, 32))};
}
}  // namespace

// ---- MemoryIndex ----

std::optional<BlobLocation> MemoryIndex::find(const BlobId& id) {
  std::lock_guard lock(mu_);
  auto it = blobs_.find(id);
  if (it == blobs_.end()) return std::nullopt;
  return it->second;
}

void MemoryIndex::add_pack(const PackId& pack, std::uint64_t pack_size, const std::vector<PackedBlob>& blobs) {
  std::lock_guard lock(mu_);
  packs_[pack] = pack_size;
  for (auto& b : blobs) blobs_.try_emplace(b.id, BlobLocation{pack, b.type, b.offset, b.length, b.plain_length});
}

bool MemoryIndex::has_pack(const PackId& pack) {
  std::lock_guard lock(mu_);
  return packs_.count(pack) != 0;
}

std::size_t MemoryIndex::blob_count() const {
  std::lock_guard lock(mu_);
  return blobs_.size();
}

std::size_t MemoryIndex::pack_count() const {
  std::lock_guard lock(mu_);
  return packs_.size();
}

// ---- init / open ----

std::string generate_key_file() {
  return std::string(kKeyFileTag) + " " + crypto::base64_encode(crypto::random_bytes(32)) + "\n";
}

RepositoryConfig Repository::init(ObjectStore& store, const InitOptions& o) {
  if (!o.keys.passphrase && !o.keys.key_file)
    throw Error(Errc::bad_request, "repo init needs a passphrase or a key file");
  if (o.keys.passphrase && o.keys.passphrase->empty())
    throw Error(Errc::bad_request, "repo init: the passphrase is empty");
  Chunker check(o.chunker, std::string(32, '\0'));  // validates the sizes
  if (o.pack_size < (1u << 20) || o.pack_size > (1ull << 30))
    throw Error(Errc::invalid_config, "repository pack_size must be between 1 MiB and 1 GiB");
  if (o.zstd_level < 0 || o.zstd_level > 19) throw Error(Errc::invalid_config, "zstd level must be 0..19");
  auto existing = store.list("", {}, 1);
  if (!existing.objects.empty())
    throw Error(Errc::conflict, "'" + store.describe() + "' is not empty (it holds '" + existing.objects[0].key +
                                    "'): refusing to create a repository over existing data");

  RepositoryConfig cfg;
  cfg.id = crypto::to_hex(crypto::random_bytes(16));
  cfg.zstd_level = o.zstd_level;
  cfg.pack_size = o.pack_size;
  cfg.chunker = o.chunker;
  std::string master = crypto::random_bytes(kMasterSize);

  json slots = make_slots(master, cfg.id, o.keys, o.kdf);
  json doc = {{"format", kFormat},
              {"version", cfg.version},
              {"id", cfg.id},
              {"compression", {{"zstd_level", cfg.zstd_level}}},
              {"pack_size", cfg.pack_size},
              {"chunker", {{"min", o.chunker.min_size}, {"avg", o.chunker.avg_size}, {"max", o.chunker.max_size}}},
              {"keys", slots}};
  doc["mac"] = config_mac(split_master(master).mac_key, doc);
  store.put(kConfigKey, doc.dump(2) + "\n");
  return cfg;
}

Repository::Repository(ObjectStore& store, const KeySource& keys, BlobIndex& index, RepositoryOptions options)
    : store_(store), index_(index), options_(std::move(options)) {
  if (options_.upload_threads == 0 || options_.max_queued_packs == 0)
    throw Error(Errc::invalid_config, "repository upload_threads and max_queued_packs must be at least 1");
  if (!keys.passphrase && !keys.key_file)
    throw Error(Errc::bad_request, "opening a repository needs a passphrase or a key file");
  auto text = store_.get(kConfigKey);
  if (!text)
    throw Error(Errc::not_found, "no repository at '" + store_.describe() +
                                     "' (no 'config' object): create one with 'm365vaultd repo init'");
  std::optional<std::string> master;
  json doc;
  try {
    doc = json::parse(*text);
    if (doc.at("format") != kFormat) throw Error(Errc::invalid_config, "not an m365vault repository config");
    config_.version = doc.at("version").get<int>();
    if (config_.version != 1)
      throw Error(Errc::invalid_config, "repository format version " + std::to_string(config_.version) +
                                            " is newer than this build understands (1)");
    config_.id = doc.at("id").get<std::string>();
    config_.zstd_level = doc.at("compression").at("zstd_level").get<int>();
    config_.pack_size = doc.at("pack_size").get<std::uint64_t>();
    config_.chunker.min_size = doc.at("chunker").at("min").get<std::size_t>();
    config_.chunker.avg_size = doc.at("chunker").at("avg").get<std::size_t>();
    config_.chunker.max_size = doc.at("chunker").at("max").get<std::size_t>();
    for (auto& slot : doc.at("keys")) {
      auto wrapped = crypto::base64_decode(slot.at("wrapped").get<std::string>());
      if (!wrapped) continue;
      std::string kek;
      auto type = slot.at("type").get<std::string>();
      if (type == "passphrase" && keys.passphrase) {
        auto& kdf = slot.at("kdf");
        if (kdf.at("name") != "scrypt") continue;
        crypto::ScryptParams p{kdf.at("n").get<std::uint64_t>(), kdf.at("r").get<std::uint32_t>(),
                               kdf.at("p").get<std::uint32_t>()};
        auto salt = crypto::base64_decode(kdf.at("salt").get<std::string>());
        if (!salt) continue;
        kek = crypto::scrypt(*keys.passphrase, *salt, p);
      } else if (type == "key_file" && keys.key_file) {
        kek = key_file_secret(*keys.key_file);
      } else {
        continue;
      }
      master = crypto::open(kek, *wrapped, slot_aad(config_.id));
      if (master && master->size() == kMasterSize) break;
      master.reset();
    }
  } catch (const json::exception& e) {
    throw Error(Errc::data_corrupt, "repository config at '" + store_.describe() + "' is malformed: " + e.what());
  }
  if (!master)
    throw Error(Errc::wrong_key, "repository at '" + store_.describe() +
                                     "': the passphrase or key file does not open it (wrong passphrase or key file?)");
  keys_ = split_master(*master);
  master_ = *master;
  secret_key_ = crypto::hkdf_sha256(master_, config_.id, kSecretsLabel);
  config_doc_ = doc.dump();
  if (!doc.contains("mac") || !doc["mac"].is_string() || doc["mac"].get<std::string>() != config_mac(keys_.mac_key, doc))
    throw Error(Errc::data_corrupt, "repository config at '" + store_.describe() +
                                        "' fails its authentication (modified outside m365vault?)");
  chunker_ = std::make_unique<Chunker>(config_.chunker, keys_.chunker_key);
  batch_target_ = static_cast<std::size_t>(config_.pack_size);
  for (std::size_t i = 0; i < options_.upload_threads; ++i) uploaders_.emplace_back([this] { upload_loop(); });
}

Repository::~Repository() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : uploaders_) t.join();
}

// ---- writing ----

void Repository::rethrow_upload_error() {
  std::lock_guard lock(mu_);
  if (upload_error_) std::rethrow_exception(upload_error_);
}

BlobId Repository::add_blob(BlobType type, std::string_view plaintext) {
  rethrow_upload_error();
  return add_blob_with_id(type, blob_id(keys_, plaintext), plaintext);
}

std::vector<BlobId> Repository::add_blobs(BlobType type, const std::vector<std::string_view>& plaintexts) {
  rethrow_upload_error();
  std::vector<BlobId> ids(plaintexts.size());
  auto hash = [&](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) ids[i] = blob_id(keys_, plaintexts[i]);
  };
  std::size_t total = 0;
  for (auto p : plaintexts) total += p.size();
  if (plaintexts.size() > 1 && total >= (256u << 10)) {
    // Split by bytes, not count: one large item should not leave a thread idle.
    std::size_t half = 0, acc = 0;
    while (half < plaintexts.size() && acc < total / 2) acc += plaintexts[half++].size();
    auto other = std::async(std::launch::async, hash, half, plaintexts.size());
    hash(0, half);
    other.get();
  } else {
    hash(0, plaintexts.size());
  }
  for (std::size_t i = 0; i < plaintexts.size(); ++i) add_blob_with_id(type, ids[i], plaintexts[i]);
  return ids;
}

BlobId Repository::add_blob_with_id(BlobType type, const BlobId& id, std::string_view plaintext) {
  rethrow_upload_error();
  {
    std::lock_guard lock(mu_);
    stats_.blobs_added++;
    stats_.bytes_added += plaintext.size();
    if (in_open_pack_.count(id) || in_flight_.count(id)) return id;
  }
  if (index_.contains(id)) return id;
  if (plaintext.size() > (256u << 20)) throw Error(Errc::bad_request, "blob larger than 256 MiB (use add_stream)");
  // One allocation per batch, never grown: grown by doubling, each batch held (open,
  // queued, sealing) took up to twice its bytes (heaptrack: 143 of 255 MiB at the
  // peak of bench/backup_files "many"). An empty std::string's capacity is not 0
  // (the small-string buffer), so the batch's first blob is what says "size it".
  // It is sealed at the target it was sized for, so an uploader raising
  // batch_target_ meanwhile does not take it past its room; a blob larger than the
  // room left (add_blob takes any size) seals the batch first.
  if (!open_.blobs.empty() && open_.arena.size() + plaintext.size() > open_.arena.capacity()) seal_open_pack();
  if (open_.blobs.empty()) {
    std::lock_guard lock(mu_);
    open_target_ = batch_target_;
    open_.arena.reserve(std::max(open_target_ + chunker_->params().max_size, plaintext.size()));
  }
  open_.blobs.push_back({type, id, open_.arena.size(), plaintext.size()});
  open_.arena.append(plaintext);
  {
    std::lock_guard lock(mu_);
    in_open_pack_.insert(id);
    stats_.blobs_new++;
    stats_.bytes_new += plaintext.size();
  }
  if (open_.arena.size() >= open_target_) seal_open_pack();
  return id;
}

void Repository::seal_open_pack() {
  if (open_.blobs.empty()) return;
  Batch finished = std::move(open_);
  open_ = Batch{};
  std::unique_lock lock(mu_);
  // A bounded queue: the writer blocks instead of filling memory.
  cv_.wait(lock, [&] { return queue_.size() < options_.max_queued_packs || upload_error_; });
  if (upload_error_) std::rethrow_exception(upload_error_);
  for (auto& b : finished.blobs) in_flight_.insert(b.id);
  in_open_pack_.clear();
  queue_.push_back(std::move(finished));
  cv_.notify_all();
}

void Repository::upload_loop() {
  std::string out;  // this thread's pack bytes, reused from pack to pack
  std::unique_lock lock(mu_);
  for (;;) {
    auto ready = [&] { return stopping_ || !queue_.empty(); };
    // Given back after a second without work (a daemon between runs keeps none).
    if (!out.empty() && !cv_.wait_for(lock, std::chrono::seconds(1), ready)) std::string().swap(out);
    cv_.wait(lock, ready);
    if (queue_.empty()) return;  // stopping, nothing sealed is left behind
    Batch batch = std::move(queue_.front());
    queue_.pop_front();
    ++uploading_;
    lock.unlock();
    std::exception_ptr err;
    PackWriter::Finished pack;
    const std::size_t plain = batch.arena.size();
    try {
      PackWriter writer(keys_, config_.zstd_level);
      writer.reuse(std::move(out));
      writer.reserve(batch.arena.size() + batch.blobs.size() * (crypto::kSealOverhead + 64) + 4096);
      for (auto& b : batch.blobs) writer.add(b.type, b.id, std::string_view(batch.arena).substr(b.offset, b.length));
      pack = writer.finish();
      // The plaintext is sealed into pack.bytes: free it before the upload, which
      // is the long part against a remote store.
      std::string().swap(batch.arena);
      // Durable first, indexed second: the index never names a pack the store lacks.
      store_.put(pack_key(pack.id), pack.bytes);
      index_.add_pack(pack.id, pack.bytes.size(), pack.blobs);
      if (on_durable_) on_durable_(pack.id, pack.blobs);
      if (options_.log) options_.log->debug("pack {} durable: {} blobs, {} bytes", pack.id.hex(), pack.blobs.size(), pack.bytes.size());
    } catch (...) {
      err = std::current_exception();
    }
    const std::size_t packed = pack.bytes.size();
    // Kept unless an outsized blob (add_blob takes up to 256 MiB) made it large.
    if (pack.bytes.capacity() <= 2 * config_.pack_size + chunker_->params().max_size) out = std::move(pack.bytes);
    lock.lock();
    --uploading_;
    for (auto& b : batch.blobs) in_flight_.erase(b.id);
    if (err) {
      // Sticky: everything after the last successful flush is unacknowledged, and
      // the writer must reopen rather than carry on over a hole.
      upload_error_ = err;
      for (auto& q : queue_)
        for (auto& b : q.blobs) in_flight_.erase(b.id);
      queue_.clear();
    } else {
      stats_.packs_written++;
      stats_.bytes_written += packed;
      // Aim batches at pack_size after compression: scale by the ratio seen so
      // far, at most 1.5x (memory) and at least 1x (incompressible data).
      plain_sealed_ += plain;
      double ratio = static_cast<double>(stats_.bytes_written) / static_cast<double>(std::max<std::uint64_t>(plain_sealed_, 1));
      double scale = std::clamp(1.0 / std::max(ratio, 0.01), 1.0, 1.5);
      batch_target_ = static_cast<std::size_t>(static_cast<double>(config_.pack_size) * scale);
    }
    cv_.notify_all();
  }
}

void Repository::flush() {
  rethrow_upload_error();
  seal_open_pack();
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return (queue_.empty() && uploading_ == 0) || upload_error_; });
  if (upload_error_) std::rethrow_exception(upload_error_);
}

std::vector<BlobId> Repository::add_stream(const std::function<std::size_t(char*, std::size_t)>& read) {
  rethrow_upload_error();
  const std::size_t max = chunker_->params().max_size;
  const std::size_t cap = 2 * max;
  // Kept between calls and never zero-filled: a fresh buffer per file cost more
  // than chunking it.
  if (!stream_buf_) stream_buf_ = std::make_unique_for_overwrite<char[]>(cap);
  char* buf = stream_buf_.get();
  std::size_t start = 0, end = 0;
  bool eof = false;
  std::vector<BlobId> ids;
  std::vector<std::pair<std::size_t, std::size_t>> chunks;
  std::vector<BlobId> chunk_ids;
  for (;;) {
    // Keep at least max bytes ahead of `start` (or everything, at eof). Compacting
    // moves less than max bytes and is followed by reading at least max.
    if (!eof && end - start < max) {
      if (start > 0) {
        std::memmove(buf, buf + start, end - start);
        end -= start;
        start = 0;
      }
      while (!eof && end < cap) {
        std::size_t n = read(buf + end, cap - end);
        if (n == 0) eof = true;
        end += n;
      }
    }
    if (start == end) break;
    // Cut every chunk that can be decided now, then hash them on two threads (the
    // HMAC is most of the cost of a stream that is already stored), then add them
    // in order.
    chunks.clear();
    while (start < end && (eof || end - start >= max)) {
      std::size_t cut = chunker_->next_cut(std::string_view(buf + start, end - start), eof);
      chunks.emplace_back(start, cut);
      start += cut;
    }
    chunk_ids.assign(chunks.size(), BlobId{});
    auto hash = [&](std::size_t from, std::size_t to) {
      for (std::size_t i = from; i < to; ++i)
        chunk_ids[i] = blob_id(keys_, std::string_view(buf + chunks[i].first, chunks[i].second));
    };
    if (chunks.size() > 1) {
      auto half = chunks.size() / 2;
      auto other = std::async(std::launch::async, hash, half, chunks.size());
      hash(0, half);
      other.get();
    } else {
      hash(0, chunks.size());
    }
    for (std::size_t i = 0; i < chunks.size(); ++i)
      ids.push_back(add_blob_with_id(BlobType::data, chunk_ids[i], std::string_view(buf + chunks[i].first, chunks[i].second)));
  }
  return ids;
}

void Repository::on_pack_durable(std::function<void(const PackId&, const std::vector<PackedBlob>&)> fn) {
  std::lock_guard lock(mu_);
  on_durable_ = std::move(fn);
}

Repository::Stats Repository::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

// ---- reading ----

std::string Repository::read_blob(const BlobId& id) {
  auto loc = index_.find(id);
  if (!loc) throw Error(Errc::not_found, "blob " + id.hex() + " is not in the index");
  auto key = pack_key(loc->pack);
  auto bytes = store_.get(key, ByteRange{loc->offset, loc->length});
  if (!bytes)
    throw Error(Errc::data_corrupt, "blob " + id.hex() + ": its pack " + loc->pack.hex() + " is missing from '" +
                                        store_.describe() + "'");
  if (bytes->size() != loc->length)
    throw Error(Errc::data_corrupt, "blob " + id.hex() + " in pack " + loc->pack.hex() + ": the pack is truncated");
  return open_blob(keys_, id, *bytes, "pack " + loc->pack.hex());
}

std::vector<PackedBlob> Repository::read_pack_table(const PackId& pack) {
  auto key = pack_key(pack);
  auto info = store_.stat(key);
  if (!info) throw Error(Errc::not_found, "pack " + pack.hex() + " is not in '" + store_.describe() + "'");
  std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(info->size, 64 * 1024));
  for (int round = 0; round < 2; ++round) {
    if (want == 0) break;
    auto tail = store_.get(key, ByteRange{info->size - want, want});
    if (!tail) throw Error(Errc::not_found, "pack " + pack.hex() + " vanished while reading it");
    std::size_t needed = 0;
    if (auto table = parse_pack_table(keys_, pack, *tail, info->size, &needed)) return *table;
    want = needed;
  }
  throw Error(Errc::data_corrupt, "pack " + pack.hex() + ": cannot read its blob table");
}

PackCheck Repository::check_pack(const PackId& pack) {
  PackCheck r;
  r.pack = pack;
  auto bytes = store_.get(pack_key(pack));
  if (!bytes) {
    r.error = "pack " + pack.hex() + " is missing";
    return r;
  }
  r.readable = true;
  r.hash_ok = PackId{crypto::sha256(*bytes)} == pack;
  if (!r.hash_ok) r.error = "pack " + pack.hex() + ": content does not hash to its name";
  try {
    r.blobs = *parse_pack_table(keys_, pack, *bytes, bytes->size(), nullptr);
    r.table_ok = true;
  } catch (const Error& e) {
    if (r.error.empty()) r.error = e.what();
    return r;
  }
  std::string where = "pack " + pack.hex();
  for (auto& b : r.blobs) {
    try {
      open_blob(keys_, b.id, std::string_view(*bytes).substr(b.offset, b.length), where);
    } catch (const Error& e) {
      r.damaged.push_back(b.id);
      if (r.error.empty()) r.error = e.what();
    }
  }
  return r;
}

// ---- keys and manifests ----

void Repository::set_keys(const KeySource& keys, const crypto::ScryptParams& kdf) {
  json doc = json::parse(config_doc_);
  doc["keys"] = make_slots(master_, config_.id, keys, kdf);
  doc["mac"] = config_mac(keys_.mac_key, doc);
  // One atomic replace: readers see the old slots or the new ones.
  store_.put(kConfigKey, doc.dump(2) + "\n");
  config_doc_ = doc.dump();
}

std::string Repository::seal_secret(std::string_view context, std::string_view plaintext) const {
  return std::string(kSecretTag) + crypto::base64_encode(crypto::seal(secret_key_, plaintext, context));
}

std::string Repository::open_secret(std::string_view context, std::string_view sealed) const {
  auto bad = [&](const char* why) {
    return Error(Errc::data_corrupt, "sealed secret for '" + std::string(context) + "': " + why);
  };
  if (!sealed.starts_with(kSecretTag)) throw bad("not a sealed secret (expected 'v1:<base64>')");
  auto raw = crypto::base64_decode(sealed.substr(kSecretTag.size()));
  if (!raw) throw bad("malformed base64");
  auto plain = crypto::open(secret_key_, *raw, context);
  if (!plain) throw bad("fails authentication (altered, another repository's, or sealed for another context)");
  return *plain;
}

namespace {
void validate_manifest_id(std::string_view id) {
  bool ok = !id.empty() && id.size() <= 128;
  for (char c : id) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_');
  if (!ok) throw Error(Errc::bad_request, "manifest id '" + std::string(id) + "' is invalid (use [A-Za-z0-9_-])");
}
std::string manifest_aad(std::string_view id) { return "m365vault manifest v1 " + std::string(id); }
}  // namespace

void Repository::put_manifest(std::string_view id, std::string_view content) {
  validate_manifest_id(id);
  store_.put("manifests/" + std::string(id), seal_object(keys_, content, manifest_aad(id), config_.zstd_level));
}

std::optional<std::string> Repository::get_manifest(std::string_view id) {
  validate_manifest_id(id);
  auto sealed = store_.get("manifests/" + std::string(id));
  if (!sealed) return std::nullopt;
  return open_object(keys_, *sealed, manifest_aad(id), "manifest '" + std::string(id) + "'");
}

std::vector<std::string> Repository::list_manifests() {
  std::vector<std::string> out;
  for (auto& o : list_all(store_, "manifests/")) out.push_back(o.key.substr(10));
  return out;
}

AdoptReport Repository::adopt_unindexed_packs() {
  AdoptReport r;
  for (auto& p : list_packs()) {
    if (index_.has_pack(p)) continue;
    auto check = check_pack(p);
    if (check.ok()) {
      index_.add_pack(p, store_.stat(pack_key(p)).value_or(ObjectInfo{}).size, check.blobs);
      r.adopted.push_back(p);
    } else {
      r.damaged.push_back(std::move(check));
    }
  }
  return r;
}

std::vector<PackId> Repository::list_packs() {
  std::vector<PackId> out;
  for (auto& o : list_all(store_, "packs/"))
    if (auto id = pack_id_from_key(o.key)) out.push_back(*id);
  return out;
}

}  // namespace m365vault::storage
