#include "m365vault/storage/pack.hpp"

#include <zstd.h>

#include <algorithm>
#include <memory>

#include "m365vault/core/error.hpp"
#include "m365vault/storage/crypto.hpp"

namespace m365vault::storage {

namespace {
constexpr std::string_view kTableAad = "m365vault pack table v1";
constexpr std::string_view kMagic = "M3VP";
constexpr std::size_t kEntrySize = 1 + 32 + 8 + 4 + 4;
constexpr std::size_t kTrailerSize = 4 + 4;
// No blob may claim to decompress to more than this (a forged frame could otherwise
// ask for gigabytes); the chunker's max is far below.
constexpr std::uint64_t kMaxBlobSize = 256ull << 20;

struct ZstdFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

ZSTD_CCtx* cctx() {
  thread_local std::unique_ptr<ZSTD_CCtx, ZstdFree> c(ZSTD_createCCtx());
  return c.get();
}
ZSTD_DCtx* dctx() {
  thread_local std::unique_ptr<ZSTD_DCtx, ZstdFree> c(ZSTD_createDCtx());
  return c.get();
}

void put_u32(std::string& s, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
}
void put_u64(std::string& s, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
}
std::uint64_t get_le(std::string_view s, std::size_t at, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + static_cast<std::size_t>(i)]);
  return v;
}
}  // namespace

std::string Id::hex() const { return crypto::to_hex(bytes.data(), bytes.size()); }

std::optional<Id> Id::from_hex(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  auto raw = crypto::from_hex(hex);
  if (!raw) return std::nullopt;
  Id id;
  std::memcpy(id.bytes.data(), raw->data(), 32);
  return id;
}

BlobId blob_id(const RepositoryKeys& keys, std::string_view plaintext) {
  BlobId id;
  id.bytes = crypto::hmac_sha256(keys.mac_key, plaintext);
  return id;
}

namespace {
// A sample of a large blob is compressed first: where it saves less than 1/64, the
// whole blob is stored raw without trying (already compressed media, archives and
// encrypted files, most of the bytes of a file share, cost zstd 15 % of the
// daemon's CPU in bench/backup_files and gain nothing). Samples from the start, middle
// and end, so a compressed file with a plain header is still recognised.
constexpr std::size_t kSampleFrom = 256u << 10;  // smaller blobs are simply tried
constexpr std::size_t kSample = 16u << 10;

bool saves_enough(std::size_t in, std::size_t out) { return out + in / 64 < in; }

bool sample_compresses(std::string_view plaintext, int zstd_level) {
  thread_local std::string scratch;
  if (scratch.size() < ZSTD_compressBound(kSample)) scratch.resize(ZSTD_compressBound(kSample));
  std::size_t in = 0, out = 0;
  for (std::size_t at : {std::size_t{0}, plaintext.size() / 2, plaintext.size() - kSample}) {
    std::size_t n = ZSTD_compressCCtx(cctx(), scratch.data(), scratch.size(), plaintext.data() + at, kSample, zstd_level);
    if (ZSTD_isError(n)) throw Error(Errc::internal, std::string("zstd: ") + ZSTD_getErrorName(n));
    in += kSample;
    out += n;
  }
  return saves_enough(in, out);
}

// Room encode_into needs for `plaintext`.
std::size_t encode_bound(std::string_view plaintext, int zstd_level) {
  return 1 + (zstd_level > 0 && plaintext.size() >= 64 ? std::max(ZSTD_compressBound(plaintext.size()), plaintext.size())
                                                        : plaintext.size());
}

// Writes codec(1) || payload at `out` (encode_bound bytes of room): zstd when it
// saves at least 1/64 of the size, else raw. Returns its length.
std::size_t encode_into(char* out, std::string_view plaintext, int zstd_level) {
  if (zstd_level > 0 && plaintext.size() >= 64 &&
      (plaintext.size() < kSampleFrom || sample_compresses(plaintext, zstd_level))) {
    std::size_t n = ZSTD_compressCCtx(cctx(), out + 1, ZSTD_compressBound(plaintext.size()), plaintext.data(),
                                      plaintext.size(), zstd_level);
    if (ZSTD_isError(n)) throw Error(Errc::internal, std::string("zstd: ") + ZSTD_getErrorName(n));
    if (saves_enough(plaintext.size(), n)) {
      out[0] = 1;
      return 1 + n;
    }
  }
  out[0] = 0;
  if (!plaintext.empty()) std::memcpy(out + 1, plaintext.data(), plaintext.size());
  return 1 + plaintext.size();
}

// Appends nonce || AES-GCM(codec || payload) || tag to `out`, compressing and
// encrypting in place there. Returns the sealed length.
std::size_t seal_encoded(std::string& out, std::string_view key, std::string_view plaintext, std::string_view aad,
                         int zstd_level) {
  const std::size_t base = out.size();
  out.resize(base + crypto::kNonceSize + encode_bound(plaintext, zstd_level) + crypto::kTagSize);
  const std::size_t inner = encode_into(out.data() + base + crypto::kNonceSize, plaintext, zstd_level);
  crypto::seal_in_place(out.data() + base, inner, key, aad);
  out.resize(base + crypto::kSealOverhead + inner);
  return out.size() - base;
}

// The plaintext of codec || payload; sets *why and returns nullopt when malformed.
std::optional<std::string> decode_payload(std::string_view inner, std::string* why) {
  if (inner.empty()) {
    *why = "empty payload";
    return std::nullopt;
  }
  std::string_view payload = inner.substr(1);
  if (inner[0] == 0) return std::string(payload);
  if (inner[0] != 1) {
    *why = "unknown codec " + std::to_string(static_cast<int>(inner[0]));
    return std::nullopt;
  }
  auto size = ZSTD_getFrameContentSize(payload.data(), payload.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > kMaxBlobSize) {
    *why = "bad zstd frame";
    return std::nullopt;
  }
  std::string plain(size, '\0');
  std::size_t n = ZSTD_decompressDCtx(dctx(), plain.data(), plain.size(), payload.data(), payload.size());
  if (ZSTD_isError(n) || n != size) {
    *why = "zstd decompression failed";
    return std::nullopt;
  }
  return plain;
}
}  // namespace

std::size_t seal_blob(std::string& out, const RepositoryKeys& keys, const BlobId& id, std::string_view plaintext,
                      int zstd_level) {
  return seal_encoded(out, keys.enc_key, plaintext, id.view(), zstd_level);
}

std::string open_blob(const RepositoryKeys& keys, const BlobId& id, std::string_view sealed, std::string_view where) {
  auto fail = [&](const std::string& why) -> Error {
    return Error(Errc::data_corrupt, "blob " + id.hex() + " in " + std::string(where) + ": " + why);
  };
  auto inner = crypto::open(keys.enc_key, sealed, id.view());
  if (!inner) throw fail("authentication failed (damaged, truncated or not this blob)");
  std::string why;
  auto plain = decode_payload(*inner, &why);
  if (!plain) throw fail(why);
  if (blob_id(keys, *plain) != id) throw fail("content does not match its id");
  return std::move(*plain);
}

std::string seal_object(const RepositoryKeys& keys, std::string_view plaintext, std::string_view aad, int zstd_level) {
  std::string out;
  seal_encoded(out, keys.enc_key, plaintext, aad, zstd_level);
  return out;
}

std::string open_object(const RepositoryKeys& keys, std::string_view sealed, std::string_view aad,
                        std::string_view what) {
  auto inner = crypto::open(keys.enc_key, sealed, aad);
  if (!inner) throw Error(Errc::data_corrupt, std::string(what) + ": authentication failed (damaged or replaced)");
  std::string why;
  auto plain = decode_payload(*inner, &why);
  if (!plain) throw Error(Errc::data_corrupt, std::string(what) + ": " + why);
  return std::move(*plain);
}

std::string pack_key(const PackId& id) {
  auto h = id.hex();
  return "packs/" + h.substr(0, 2) + "/" + h;
}

std::optional<PackId> pack_id_from_key(std::string_view key) {
  if (!key.starts_with("packs/") || key.size() != 6 + 3 + 64 || key[8] != '/') return std::nullopt;
  auto id = PackId::from_hex(key.substr(9));
  if (!id || id->hex().substr(0, 2) != key.substr(6, 2)) return std::nullopt;
  return id;
}

void PackWriter::add(BlobType type, const BlobId& id, std::string_view plaintext) {
  if (plaintext.size() > kMaxBlobSize) throw Error(Errc::bad_request, "blob larger than 256 MiB");
  PackedBlob b;
  b.id = id;
  b.type = type;
  b.offset = data_.size();
  b.length = static_cast<std::uint32_t>(seal_blob(data_, keys_, id, plaintext, level_));
  b.plain_length = static_cast<std::uint32_t>(plaintext.size());
  blobs_.push_back(b);
}

PackWriter::Finished PackWriter::finish() {
  std::string table;
  table.reserve(5 + blobs_.size() * kEntrySize);
  table += '\x01';
  put_u32(table, static_cast<std::uint32_t>(blobs_.size()));
  for (auto& b : blobs_) {
    table += static_cast<char>(b.type);
    table.append(b.id.view());
    put_u64(table, b.offset);
    put_u32(table, b.length);
    put_u32(table, b.plain_length);
  }
  std::size_t before = data_.size();
  crypto::seal_into(data_, keys_.enc_key, table, kTableAad);
  put_u32(data_, static_cast<std::uint32_t>(data_.size() - before));
  data_.append(kMagic);
  Finished f;
  f.id.bytes = crypto::sha256(data_);
  f.bytes = std::move(data_);
  f.blobs = std::move(blobs_);
  data_.clear();
  blobs_.clear();
  return f;
}

std::optional<std::vector<PackedBlob>> parse_pack_table(const RepositoryKeys& keys, const PackId& pack,
                                                        std::string_view tail, std::uint64_t pack_size,
                                                        std::size_t* needed) {
  auto fail = [&](const std::string& why) {
    return Error(Errc::data_corrupt, "pack " + pack.hex() + ": " + why);
  };
  if (pack_size < kTrailerSize || tail.size() < kTrailerSize) throw fail("too short to be a pack");
  if (tail.substr(tail.size() - 4) != kMagic) throw fail("trailer magic missing (truncated or not a pack)");
  std::uint64_t table_len = get_le(tail, tail.size() - kTrailerSize, 4);
  if (table_len + kTrailerSize > pack_size) throw fail("table length exceeds the pack");
  if (table_len + kTrailerSize > tail.size()) {
    if (needed) *needed = static_cast<std::size_t>(table_len + kTrailerSize);
    return std::nullopt;
  }
  auto sealed = tail.substr(tail.size() - kTrailerSize - table_len, table_len);
  auto table = crypto::open(keys.enc_key, sealed, kTableAad);
  if (!table) throw fail("blob table failed authentication (damaged, or another repository's pack)");
  if (table->size() < 5 || (*table)[0] != 1) throw fail("unknown table version");
  std::uint64_t count = get_le(*table, 1, 4);
  if (table->size() != 5 + count * kEntrySize) throw fail("table size does not match its count");
  std::uint64_t data_end = pack_size - kTrailerSize - table_len;
  std::vector<PackedBlob> out;
  out.reserve(count);
  for (std::uint64_t i = 0; i < count; ++i) {
    std::size_t at = 5 + i * kEntrySize;
    PackedBlob b;
    b.type = static_cast<BlobType>((*table)[at]);
    std::memcpy(b.id.bytes.data(), table->data() + at + 1, 32);
    b.offset = get_le(*table, at + 33, 8);
    b.length = static_cast<std::uint32_t>(get_le(*table, at + 41, 4));
    b.plain_length = static_cast<std::uint32_t>(get_le(*table, at + 45, 4));
    if (b.offset + b.length > data_end) throw fail("blob " + b.id.hex() + " lies outside the pack's data");
    out.push_back(b);
  }
  return out;
}

}  // namespace m365vault::storage
