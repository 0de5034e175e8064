#pragma once
// The repository: deduplicated, compressed, encrypted blobs in packs on an
// ObjectStore, described by a `config` object (see pack.hpp for the byte format).
//
// Durability order: add_blob() only queues a blob in an open pack. A pack is
// uploaded when it reaches the target size or at flush(); only after the store
// has acknowledged it durable is the BlobIndex told (add_pack), and only then does
// the blob count as stored. A crash loses at most the unacknowledged blobs, and
// the index never points at a pack that is not in the store.
#include <spdlog/logger.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "m365vault/storage/chunker.hpp"
#include "m365vault/storage/crypto.hpp"
#include "m365vault/storage/object_store.hpp"
#include "m365vault/storage/pack.hpp"

namespace m365vault::storage {

// Where a blob lives.
struct BlobLocation {
  PackId pack;
  BlobType type = BlobType::data;
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
  std::uint32_t plain_length = 0;
};

// The blob index the repository consults and feeds: "have I this blob, where is
// it" and "these blobs are now durable in pack P". The PostgreSQL index implements
// it; MemoryIndex below serves tests, benchmarks and index rebuilds. Implementations
// are thread-safe: find() is called by the writer thread for every new blob (make
// it cheap: a cache in front of the database), add_pack() by uploader threads.
class BlobIndex {
 public:
  virtual ~BlobIndex() = default;
  virtual std::optional<BlobLocation> find(const BlobId& id) = 0;
  // "May the writer dedupe against this blob?": true only when the blob is indexed
  // in a pack that is not awaiting deletion by prune. The writer asks this for
  // every new blob; an index with a database behind it answers from memory.
  virtual bool contains(const BlobId& id) { return find(id).has_value(); }
  // Called once per pack, after the pack is durable in the store. A blob already
  // indexed in another pack keeps its first location (a duplicate copy is garbage
  // for prune to collect).
  virtual void add_pack(const PackId& pack, std::uint64_t pack_size, const std::vector<PackedBlob>& blobs) = 0;
  // Whether add_pack was called for this pack (finds packs a crash left unindexed).
  virtual bool has_pack(const PackId& pack) = 0;
};

class MemoryIndex final : public BlobIndex {
 public:
  std::optional<BlobLocation> find(const BlobId& id) override;
  void add_pack(const PackId& pack, std::uint64_t pack_size, const std::vector<PackedBlob>& blobs) override;
  bool has_pack(const PackId& pack) override;
  std::size_t blob_count() const;
  std::size_t pack_count() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<BlobId, BlobLocation, IdHash> blobs_;
  std::unordered_map<PackId, std::uint64_t, IdHash> packs_;
};

// How to open the repository's master key. At least one must be set.
struct KeySource {
  std::optional<std::string> passphrase;
  std::optional<std::string> key_file;  // the contents of a key file (see generate_key_file)
};

struct InitOptions {
  KeySource keys;  // every given source gets a key slot
  crypto::ScryptParams kdf;
  int zstd_level = 3;
  std::uint64_t pack_size = 16ull << 20;
  ChunkerParams chunker;
};

// Printed by `repo init`: it must be said plainly.
inline constexpr std::string_view kLostKeyWarning =
    "keep the passphrase and the key file safe and apart from the repository: without one of them "
    "nobody, not even the operators of this service, can read the backed-up data";

// A new key file's contents: "m365vault-key-v1 <base64 of 32 random bytes>\n".
std::string generate_key_file();

struct RepositoryConfig {
  std::string id;  // 32 hex digits
  int version = 1;
  int zstd_level = 3;
  std::uint64_t pack_size = 16ull << 20;
  ChunkerParams chunker;
};

// Report of a deep check of one pack.
struct PackCheck {
  PackId pack;
  bool readable = false;   // the object exists
  bool hash_ok = false;    // its bytes hash to its name
  bool table_ok = false;   // its blob table authenticates
  std::vector<PackedBlob> blobs;    // from the table (empty when the table is damaged)
  std::vector<BlobId> damaged;      // blobs that fail to authenticate or to match their id
  std::string error;                // first problem, for messages
  bool ok() const { return readable && hash_ok && table_ok && damaged.empty(); }
};

struct RepositoryOptions {
  std::size_t upload_threads = 2;    // packs sealed (zstd, AES-GCM) and uploaded in parallel
  std::size_t max_queued_packs = 1;  // packs waiting: bounds memory to about this + threads packs
  std::shared_ptr<spdlog::logger> log;
};

// What adopt_unindexed_packs() found.
struct AdoptReport {
  std::vector<PackId> adopted;    // intact packs now in the index
  std::vector<PackCheck> damaged; // unindexed packs that fail the deep check (not indexed)
};

class Repository {
 public:
  // Creates a repository in an empty store: writes `config` and nothing else.
  // Throws Error(Errc::conflict) when the store already holds objects (never
  // overwrites), Error(Errc::bad_request) when no key source is given.
  static RepositoryConfig init(ObjectStore& store, const InitOptions& options);

  // Opens an existing repository. Reads `config` only; writes nothing. Throws
  // Error(Errc::wrong_key) when no key slot opens with `keys`, Error(Errc::not_found)
  // when the store holds no repository. `index` must outlive the repository.
  Repository(ObjectStore& store, const KeySource& keys, BlobIndex& index, RepositoryOptions options = {});
  // Does not flush: blobs of the open pack are dropped, as in a crash (packs already
  // handed to the uploaders are finished first). Call flush() to keep them.
  ~Repository();
  Repository(const Repository&) = delete;
  Repository& operator=(const Repository&) = delete;

  const RepositoryConfig& config() const { return config_; }
  // The repository's keyed chunker, for writers that cut streams themselves.
  const Chunker& chunker() const { return *chunker_; }

  // Writer side: one thread at a time (use several Repository objects to write in
  // parallel). add_blob returns the blob's id; the blob is stored once its pack is
  // durable (flush() returns, or on_pack_durable fires). Errors of a background
  // upload are rethrown by the next add_blob/add_stream/flush.
  BlobId add_blob(BlobType type, std::string_view plaintext);
  // add_blob for many small items at once (a page of messages): ids are computed on
  // two threads, then the blobs are added in order. Returns the ids in order.
  std::vector<BlobId> add_blobs(BlobType type, const std::vector<std::string_view>& plaintexts);
  // Splits a stream with the repository's chunker and adds each chunk; `read` fills
  // the buffer and returns the bytes read (0 at end).
  std::vector<BlobId> add_stream(const std::function<std::size_t(char*, std::size_t)>& read);
  // Seals the open pack and waits until every pack is durable and indexed.
  void flush();

  // Reader side, thread-safe. Throws Error(Errc::not_found) for a blob the index
  // does not know, Error(Errc::data_corrupt) naming the blob and pack when the
  // stored bytes fail authentication or their id.
  std::string read_blob(const BlobId& id);

  // The blob table of a pack, read from the store alone (rebuild-index).
  std::vector<PackedBlob> read_pack_table(const PackId& pack);
  // Downloads a pack and authenticates everything in it (verify --deep).
  PackCheck check_pack(const PackId& pack);
  // Every pack in the store.
  std::vector<PackId> list_packs();
  // Finds packs in the store the index does not know (a crash between the upload
  // and the index commit), deep-checks each, and indexes the intact ones. Call
  // while no writer is flushing into the same index (verify --repair).
  AdoptReport adopt_unindexed_packs();

  // Replaces every key slot with slots for `keys` (passphrase change, key file
  // rotation). The master key, and so all data, stay the same; the old passphrase
  // and key file stop working once this returns. Not thread-safe with itself.
  void set_keys(const KeySource& keys, const crypto::ScryptParams& kdf = {});

  // Snapshot manifests (manifests/<id>): compressed and sealed like blobs, bound to
  // their id, durable when put_manifest returns. Write a manifest only after the
  // flush() that made the blobs it names durable. get_manifest returns nullopt when
  // absent and throws Error(Errc::data_corrupt) when damaged or swapped.
  void put_manifest(std::string_view id, std::string_view content);
  std::optional<std::string> get_manifest(std::string_view id);
  std::vector<std::string> list_manifests();

  // Tenant credentials and other small secrets kept in the database: AES-256-GCM
  // under a subkey derived from the master key (HKDF-SHA256, label "m365vault
  // secrets v1"), `context` (e.g. "tenant:<uuid>:client_secret") authenticated as
  // associated data, so a sealed value moved to another row does not open. The
  // result is printable text ("v1:" + base64). open_secret throws
  // Error(Errc::data_corrupt) when `sealed` is malformed, altered, sealed by another
  // repository or under another context. Thread-safe.
  std::string seal_secret(std::string_view context, std::string_view plaintext) const;
  std::string open_secret(std::string_view context, std::string_view sealed) const;

  struct Stats {
    std::uint64_t blobs_added = 0;    // add_blob calls
    std::uint64_t blobs_new = 0;      // not deduplicated
    std::uint64_t bytes_added = 0;    // plaintext bytes offered
    std::uint64_t bytes_new = 0;      // plaintext bytes of new blobs
    std::uint64_t packs_written = 0;
    std::uint64_t bytes_written = 0;  // pack bytes uploaded
  };
  Stats stats() const;

  // Test hook and progress: called after each pack is durable and indexed, on an
  // uploader thread (several may call it at once).
  void on_pack_durable(std::function<void(const PackId&, const std::vector<PackedBlob>&)> fn);

 private:
  BlobId add_blob_with_id(BlobType type, const BlobId& id, std::string_view plaintext);
  void seal_open_pack();
  void upload_loop();
  void rethrow_upload_error();

  ObjectStore& store_;
  BlobIndex& index_;
  RepositoryConfig config_;
  RepositoryKeys keys_;
  std::string master_;       // to wrap new key slots
  std::string secret_key_;   // seal_secret's subkey
  std::string config_doc_;   // the config as read (compact JSON)
  std::unique_ptr<Chunker> chunker_;
  // Blobs of the open pack, as plaintext: compression and encryption happen on the
  // uploader threads, so the writer thread only hashes and copies.
  struct PendingBlob {
    BlobType type;
    BlobId id;
    std::size_t offset;
    std::size_t length;
  };
  struct Batch {
    std::string arena;
    std::vector<PendingBlob> blobs;
  };
  Batch open_;
  std::size_t batch_target_ = 0;        // plaintext bytes that make about one pack_size pack
  std::size_t open_target_ = 0;         // batch_target_ when open_ was sized: it is sealed there
  std::unique_ptr<char[]> stream_buf_;  // add_stream's read buffer, 2 x chunker max
  std::unordered_set<BlobId, IdHash> in_open_pack_;

  // Uploader: sealed packs wait here (at most 2, bounding memory to a few packs).
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch> queue_;
  std::uint64_t plain_sealed_ = 0;  // plaintext bytes of written packs, for batch_target_
  std::unordered_set<BlobId, IdHash> in_flight_;  // blobs in queued or uploading packs
  std::size_t uploading_ = 0;
  bool stopping_ = false;
  std::exception_ptr upload_error_;
  std::function<void(const PackId&, const std::vector<PackedBlob>&)> on_durable_;
  Stats stats_;
  RepositoryOptions options_;
  std::vector<std::thread> uploaders_;
};

}  // namespace m365vault::storage
