#pragma once
// The repository's on-store format for blobs and packs (format version 1).
//
// Blob (as stored inside a pack):
//   nonce(12) || AES-256-GCM(enc_key, codec(1) || payload) || tag(16), AAD = blob id
//   codec 0: payload is the plaintext; codec 1: payload is a zstd frame of it.
//   The id is HMAC-SHA-256(mac_key, plaintext), checked again after decryption.
// Pack:
//   blob || blob || ... || sealed table || table length (u32 LE) || "M3VP"
//   sealed table = nonce || AES-256-GCM(enc_key, table) || tag, AAD = "m365vault pack table v1"
//   table = version(1)=1 || count (u32 LE) || count × entry
//   entry = type(1) || id(32) || offset (u64 LE) || sealed length (u32 LE) || plaintext length (u32 LE)
//   The pack's id is SHA-256 of all its bytes; its key is packs/<first 2 hex>/<64 hex>.
#include <array>
#include <compare>
#include <cstring>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace m365vault::storage {

struct Id {
  std::array<std::uint8_t, 32> bytes{};
  std::string hex() const;
  std::string_view view() const { return {reinterpret_cast<const char*>(bytes.data()), bytes.size()}; }
  static std::optional<Id> from_hex(std::string_view hex);
  friend auto operator<=>(const Id&, const Id&) = default;
};
using BlobId = Id;
using PackId = Id;

struct IdHash {
  std::size_t operator()(const Id& id) const noexcept {
    std::size_t h;
    static_assert(sizeof h <= 32);
    std::memcpy(&h, id.bytes.data(), sizeof h);  // ids are uniformly random already
    return h;
  }
};

enum class BlobType : std::uint8_t { data = 0, meta = 1 };

struct RepositoryKeys {
  std::string enc_key;      // 32 bytes, AES-256-GCM
  std::string mac_key;      // 32 bytes, HMAC-SHA-256 blob ids
  std::string chunker_key;  // 32 bytes, derives the chunker's gear table
};

// HMAC-SHA-256 of the plaintext under the MAC key.
BlobId blob_id(const RepositoryKeys& keys, std::string_view plaintext);

// Compresses (when it helps) and seals one blob; appends to `out`. `zstd_level` 0
// stores raw. Returns the sealed length.
std::size_t seal_blob(std::string& out, const RepositoryKeys& keys, const BlobId& id, std::string_view plaintext,
                      int zstd_level);

// Opens a sealed blob and checks its id. Throws Error(Errc::data_corrupt) naming
// the blob (and `where`, e.g. the pack) when the tag, the codec or the id fails.
std::string open_blob(const RepositoryKeys& keys, const BlobId& id, std::string_view sealed, std::string_view where);

// The same compression and sealing for a whole object that is not a blob (snapshot
// manifests): `aad` binds it to its name. open_object throws Error(Errc::data_corrupt)
// starting with `what` on any failure.
std::string seal_object(const RepositoryKeys& keys, std::string_view plaintext, std::string_view aad, int zstd_level);
std::string open_object(const RepositoryKeys& keys, std::string_view sealed, std::string_view aad, std::string_view what);

struct PackedBlob {
  BlobId id;
  BlobType type = BlobType::data;
  std::uint64_t offset = 0;
  std::uint32_t length = 0;        // sealed bytes in the pack
  std::uint32_t plain_length = 0;  // plaintext bytes
};

std::string pack_key(const PackId& id);
// The pack id named by a key "packs/xx/<hex>", or nullopt for any other key.
std::optional<PackId> pack_id_from_key(std::string_view key);

// Accumulates sealed blobs and produces a finished pack. Not thread-safe.
class PackWriter {
 public:
  explicit PackWriter(const RepositoryKeys& keys, int zstd_level) : keys_(keys), level_(zstd_level) {}
  // Reserves room for `bytes` of sealed blobs and table (avoids regrowth copies).
  void reserve(std::size_t bytes) { data_.reserve(bytes); }
  // Writes into `buffer`'s memory (an earlier pack's bytes): one allocation, and
  // its pages faulted in, per uploader rather than per pack. Call before add().
  void reuse(std::string buffer) {
    data_ = std::move(buffer);
    data_.clear();
  }
  // Seals and appends a blob whose id the caller computed with blob_id().
  void add(BlobType type, const BlobId& id, std::string_view plaintext);
  std::size_t size() const { return data_.size(); }
  std::size_t count() const { return blobs_.size(); }
  const std::vector<PackedBlob>& blobs() const { return blobs_; }
  struct Finished {
    PackId id;
    std::string bytes;
    std::vector<PackedBlob> blobs;
  };
  // Appends the table and trailer; the writer is empty afterwards.
  Finished finish();

 private:
  const RepositoryKeys& keys_;
  int level_;
  std::string data_;
  std::vector<PackedBlob> blobs_;
};

// Reads the blob table from a pack's last bytes. `tail` holds the last `tail.size()`
// bytes of a pack of `pack_size` bytes; returns nullopt when more of the tail is
// needed (then `*needed` says how many bytes). Throws Error(Errc::data_corrupt)
// naming the pack when the trailer or table fails to authenticate or is inconsistent.
std::optional<std::vector<PackedBlob>> parse_pack_table(const RepositoryKeys& keys, const PackId& pack,
                                                        std::string_view tail, std::uint64_t pack_size,
                                                        std::size_t* needed);

}  // namespace m365vault::storage
