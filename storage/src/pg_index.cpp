#include "m365vault/storage/pg_index.hpp"

#include <cstring>

#include "m365vault/core/error.hpp"
#include "m365vault/storage/crypto.hpp"

namespace m365vault::storage {

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes exactly out.size() bytes of hex; throws on a bad digit (a bug, not data).
void decode_hex(std::string_view hex, std::uint8_t* out, std::size_t n) {
  if (hex.size() != 2 * n) throw Error(Errc::internal, "blob index: unexpected hex length from the database");
  for (std::size_t i = 0; i < n; ++i) {
    int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) throw Error(Errc::internal, "blob index: bad hex from the database");
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
}

Id id_of(std::string_view hex) {
  Id id;
  decode_hex(hex, id.bytes.data(), id.bytes.size());
  return id;
}

// A text[] literal of hex strings: hex needs no quoting.
template <class It, class F>
std::string text_array(It begin, It end, F f) {
  std::string s = "{";
  for (auto it = begin; it != end; ++it) {
    if (s.size() > 1) s += ',';
    s += f(*it);
  }
  s += '}';
  return s;
}

std::string hex_array(const std::vector<Id>& ids) {
  return text_array(ids.begin(), ids.end(), [](const Id& i) { return i.hex(); });
}

// Runs `f` between BEGIN and COMMIT, rolling back when it throws.
template <class F>
void in_transaction(PgConnection& c, F f) {
  c.exec("BEGIN");
  try {
    f();
    c.exec("COMMIT");
  } catch (...) {
    try {
      if (c.healthy()) c.exec("ROLLBACK");
    } catch (...) {
    }
    throw;
  }
}

constexpr std::uint32_t kDeadPack = 0xffffffffu;

}  // namespace

PgBlobIndex::PgBlobIndex(const std::string& conninfo, PgBlobIndexOptions options) : options_(std::move(options)) {
  write_ = std::make_unique<PgConnection>(PgConnection::connect(conninfo, options_.timeouts));
  read_ = std::make_unique<PgConnection>(PgConnection::connect(conninfo, options_.timeouts));
  table_.resize(1024);
  auto started = std::chrono::steady_clock::now();
  load();
  if (options_.log)
    options_.log->info("blob index: {} blobs in {} packs cached in {} ms", used_, pack_ids_.size(),
                       std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started)
                           .count());
  next_refresh_ = std::chrono::steady_clock::now() + options_.refresh;
}

PgBlobIndex::~PgBlobIndex() = default;

PgBlobIndex::Slot PgBlobIndex::key_of(const BlobId& id) {
  Slot s;
  std::memcpy(&s.a, id.bytes.data(), 8);
  std::memcpy(&s.b, id.bytes.data() + 8, 8);
  return s;
}

const PgBlobIndex::Slot* PgBlobIndex::cache_get(const Slot& k) const {
  std::size_t mask = table_.size() - 1;
  for (std::size_t i = k.a & mask;; i = (i + 1) & mask) {
    const Slot& s = table_[i];
    if (s.a == k.a && s.b == k.b) return &s;
    if (s.a == 0 && s.b == 0) return nullptr;
  }
}

void PgBlobIndex::cache_put(const Slot& k, bool replace_dead) {
  if ((used_ + 1) * 4 > table_.size() * 3) {
    std::vector<Slot> old(table_.size() * 2);
    old.swap(table_);
    std::size_t mask = table_.size() - 1;
    for (auto& s : old) {
      if (s.a == 0 && s.b == 0) continue;
      std::size_t i = s.a & mask;
      while (table_[i].a != 0 || table_[i].b != 0) i = (i + 1) & mask;
      table_[i] = s;
    }
  }
  std::size_t mask = table_.size() - 1;
  for (std::size_t i = k.a & mask;; i = (i + 1) & mask) {
    Slot& s = table_[i];
    if (s.a == k.a && s.b == k.b) {
      // Mirrors add_pack's SQL: the first location stays unless its pack is doomed.
      if (replace_dead && (s.pack == kDeadPack || !pack_live_[s.pack])) s.pack = k.pack;
      return;
    }
    if (s.a == 0 && s.b == 0) {
      s = k;
      ++used_;
      return;
    }
  }
}

std::uint32_t PgBlobIndex::pack_slot(const PackId& p) {
  auto [it, fresh] = pack_slots_.try_emplace(p, static_cast<std::uint32_t>(pack_ids_.size()));
  if (fresh) {
    pack_ids_.push_back(p);
    pack_live_.push_back(1);
  }
  return it->second;
}

// Rows of (pack hex, live, concatenated 16-byte id prefixes in hex) into the cache.
void PgBlobIndex::cache_rows(const PgResult& r) {
  for (int row = 0; row < r.rows(); ++row) {
    std::uint32_t ps = pack_slot(id_of(r.get(row, 0)));
    pack_live_[ps] = r.get(row, 1) == "t";
    if (r.is_null(row, 2)) continue;
    auto hex = r.get(row, 2);
    for (std::size_t at = 0; at + 32 <= hex.size(); at += 32) {
      std::uint8_t raw[16];
      decode_hex(hex.substr(at, 32), raw, 16);
      Slot s;
      std::memcpy(&s.a, raw, 8);
      std::memcpy(&s.b, raw + 8, 8);
      s.pack = ps;
      if (s.a == 0 && s.b == 0) continue;  // the empty marker: contains() asks the database
      cache_put(s, true);
    }
  }
}

namespace {
constexpr const char* kPackRows =
    "SELECT encode(p.id, 'hex'), p.state = 'live',"
    " (SELECT encode(string_agg(substring(b.id FROM 1 FOR 16), ''::bytea), 'hex')"
    "    FROM repo_blobs b WHERE b.pack = p.id)"
    " FROM repo_packs p ";
}  // namespace

void PgBlobIndex::load() {
  std::lock_guard rl(read_mu_);
  std::lock_guard cl(cache_mu_);
  // Packs created from here on are picked up by maybe_refresh().
  newest_ = std::string(read_->exec("SELECT coalesce(max(created_at), '-infinity')::text FROM repo_packs").get(0, 0));
  // One page per ~200 packs, each row a pack and the concatenated 16-byte id
  // prefixes of its blobs: about 32 hex characters a blob, bounded memory.
  std::string after;  // hex of the last pack seen
  for (;;) {
    auto r = read_->exec(std::string(kPackRows) + "WHERE p.id > decode($1, 'hex') ORDER BY p.id LIMIT 200", {after});
    cache_rows(r);
    if (r.rows() > 0) after = std::string(r.get(r.rows() - 1, 0));
    if (r.rows() < 200) break;
  }
}

void PgBlobIndex::maybe_refresh() {
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard cl(cache_mu_);
    if (now < next_refresh_) return;
    next_refresh_ = now + options_.refresh;
  }
  std::vector<PackId> was_dead;
  {
    std::lock_guard cl(cache_mu_);
    for (std::size_t i = 0; i < pack_ids_.size(); ++i)
      if (!pack_live_[i]) was_dead.push_back(pack_ids_[i]);
  }
  std::lock_guard rl(read_mu_);
  // Packs other daemons indexed since: created_at is the committing transaction's
  // start, so look back a margin longer than any add_pack transaction can last,
  // and load only the packs this cache does not know.
  auto newest = std::string(read_->exec("SELECT coalesce(max(created_at), '-infinity')::text FROM repo_packs").get(0, 0));
  auto recent = read_->exec(
      "SELECT encode(id, 'hex') FROM repo_packs WHERE created_at > $1::timestamptz - interval '10 minutes'", {newest_});
  std::vector<PackId> unknown;
  {
    std::lock_guard cl(cache_mu_);
    for (int i = 0; i < recent.rows(); ++i) {
      auto id = id_of(recent.get(i, 0));
      if (!pack_slots_.count(id)) unknown.push_back(id);
    }
  }
  if (!unknown.empty()) {
    auto rows = read_->exec(std::string(kPackRows) + "WHERE p.id IN (SELECT decode(x, 'hex') FROM unnest($1::text[]) AS x)",
                            {hex_array(unknown)});
    std::lock_guard cl(cache_mu_);
    cache_rows(rows);
  }
  newest_ = newest;
  auto doomed = read_->exec("SELECT encode(id, 'hex') FROM repo_packs WHERE state = 'doomed'");
  auto revived = read_->exec(
      "SELECT encode(id, 'hex') FROM repo_packs WHERE state = 'live'"
      " AND id IN (SELECT decode(x, 'hex') FROM unnest($1::text[]) AS x)",
      {hex_array(was_dead)});
  std::lock_guard cl(cache_mu_);
  for (int i = 0; i < doomed.rows(); ++i)
    if (auto it = pack_slots_.find(id_of(doomed.get(i, 0))); it != pack_slots_.end()) pack_live_[it->second] = 0;
  for (int i = 0; i < revived.rows(); ++i)
    if (auto it = pack_slots_.find(id_of(revived.get(i, 0))); it != pack_slots_.end()) pack_live_[it->second] = 1;
}

bool PgBlobIndex::contains(const BlobId& id) {
  maybe_refresh();
  Slot k = key_of(id);
  if (k.a == 0 && k.b == 0) {
    auto loc = find(id);
    return loc.has_value();
  }
  std::lock_guard cl(cache_mu_);
  auto* s = cache_get(k);
  return s && s->pack != kDeadPack && pack_live_[s->pack];
}

std::optional<BlobLocation> PgBlobIndex::find(const BlobId& id) {
  std::lock_guard rl(read_mu_);
  auto r = read_->exec(
      "SELECT encode(pack, 'hex'), type, \"offset\", length, plain_length FROM repo_blobs WHERE id = decode($1, 'hex')",
      {id.hex()});
  if (r.rows() == 0) return std::nullopt;
  BlobLocation loc;
  loc.pack = id_of(r.get(0, 0));
  loc.type = r.get_int(0, 1) == 1 ? BlobType::meta : BlobType::data;
  loc.offset = static_cast<std::uint64_t>(r.get_int(0, 2));
  loc.length = static_cast<std::uint32_t>(r.get_int(0, 3));
  loc.plain_length = static_cast<std::uint32_t>(r.get_int(0, 4));
  return loc;
}

void PgBlobIndex::add_pack(const PackId& pack, std::uint64_t pack_size, const std::vector<PackedBlob>& blobs) {
  // Columns as text[] literals: one statement for every blob of the pack.
  auto num = [](auto v) { return std::to_string(v); };
  std::string ids = text_array(blobs.begin(), blobs.end(), [](const PackedBlob& b) { return b.id.hex(); });
  std::string types = text_array(blobs.begin(), blobs.end(), [&](const PackedBlob& b) { return num(static_cast<int>(b.type)); });
  std::string offsets = text_array(blobs.begin(), blobs.end(), [&](const PackedBlob& b) { return num(b.offset); });
  std::string lengths = text_array(blobs.begin(), blobs.end(), [&](const PackedBlob& b) { return num(b.length); });
  std::string plains = text_array(blobs.begin(), blobs.end(), [&](const PackedBlob& b) { return num(b.plain_length); });
  {
    std::lock_guard wl(write_mu_);
    in_transaction(*write_, [&] {
      write_->exec(
          "INSERT INTO repo_packs (id, size) VALUES (decode($1, 'hex'), $2)"
          " ON CONFLICT (id) DO UPDATE SET state = 'live', doomed_at = NULL",
          {pack.hex(), std::to_string(pack_size)});
      if (blobs.empty()) return;
      write_->exec(
          "INSERT INTO repo_blobs (id, pack, type, \"offset\", length, plain_length)"
          " SELECT decode(b.id, 'hex'), decode($1, 'hex'), b.type, b.off, b.len, b.plain"
          " FROM unnest($2::text[], $3::smallint[], $4::bigint[], $5::integer[], $6::integer[])"
          "   AS b (id, type, off, len, plain)"
          " ON CONFLICT (id) DO UPDATE SET pack = EXCLUDED.pack, type = EXCLUDED.type, \"offset\" = EXCLUDED.\"offset\","
          "   length = EXCLUDED.length, plain_length = EXCLUDED.plain_length"
          " WHERE repo_blobs.pack IN (SELECT id FROM repo_packs WHERE state = 'doomed')",
          {pack.hex(), ids, types, offsets, lengths, plains});
    });
  }
  std::lock_guard cl(cache_mu_);
  std::uint32_t ps = pack_slot(pack);
  pack_live_[ps] = 1;
  for (auto& b : blobs) {
    Slot s = key_of(b.id);
    if (s.a == 0 && s.b == 0) continue;
    s.pack = ps;
    cache_put(s, true);
  }
}

bool PgBlobIndex::has_pack(const PackId& pack) {
  std::lock_guard rl(read_mu_);
  return read_->exec("SELECT 1 FROM repo_packs WHERE id = decode($1, 'hex')", {pack.hex()}).rows() > 0;
}

std::vector<IndexedPack> PgBlobIndex::packs() {
  std::lock_guard rl(read_mu_);
  auto r = read_->exec(
      "SELECT encode(p.id, 'hex'), p.size, p.state = 'doomed', (SELECT count(*) FROM repo_blobs b WHERE b.pack = p.id)"
      " FROM repo_packs p ORDER BY p.id");
  std::vector<IndexedPack> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i)
    out.push_back({id_of(r.get(i, 0)), static_cast<std::uint64_t>(r.get_int(i, 1)), r.get(i, 2) == "t",
                   static_cast<std::uint64_t>(r.get_int(i, 3))});
  return out;
}

std::uint64_t PgBlobIndex::blob_count() {
  std::lock_guard rl(read_mu_);
  return static_cast<std::uint64_t>(read_->exec("SELECT count(*) FROM repo_blobs").get_int(0, 0));
}

std::vector<BlobId> PgBlobIndex::blobs_in(const PackId& pack) {
  std::lock_guard rl(read_mu_);
  auto r = read_->exec("SELECT encode(id, 'hex') FROM repo_blobs WHERE pack = decode($1, 'hex') ORDER BY \"offset\"",
                       {pack.hex()});
  std::vector<BlobId> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(id_of(r.get(i, 0)));
  return out;
}

void PgBlobIndex::forget_packs(const std::vector<PackId>& packs) {
  if (packs.empty()) return;
  {
    std::lock_guard wl(write_mu_);
    write_->exec("DELETE FROM repo_packs WHERE id IN (SELECT decode(x, 'hex') FROM unnest($1::text[]) AS x)",
                 {hex_array(packs)});
  }
  std::lock_guard cl(cache_mu_);
  for (auto& p : packs)
    if (auto it = pack_slots_.find(p); it != pack_slots_.end()) pack_live_[it->second] = 0;
}

void PgBlobIndex::clear() {
  {
    std::lock_guard wl(write_mu_);
    in_transaction(*write_, [&] {
      write_->exec("DELETE FROM repo_blobs");
      write_->exec("DELETE FROM repo_packs");
    });
  }
  std::lock_guard cl(cache_mu_);
  table_.assign(1024, Slot{});
  used_ = 0;
  std::fill(pack_live_.begin(), pack_live_.end(), 0);
}

std::vector<BlobId> PgBlobIndex::referenced(const std::vector<BlobId>& ids) {
  if (ids.empty()) return {};
  std::lock_guard rl(read_mu_);
  auto r = read_->exec(
      "SELECT DISTINCT encode(blob_id, 'hex') FROM blob_refs"
      " WHERE blob_id IN (SELECT decode(x, 'hex') FROM unnest($1::text[]) AS x)",
      {hex_array(ids)});
  std::vector<BlobId> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(id_of(r.get(i, 0)));
  return out;
}

PgBlobIndex::PruneReport PgBlobIndex::prune(std::chrono::seconds grace, bool dry_run) {
  PruneReport rep;
  std::lock_guard wl(write_mu_);
  auto& c = *write_;
  c.exec("BEGIN");
  try {
    // Serialises prunes, and makes the three steps see one state of blob_refs.
    c.exec("LOCK TABLE repo_packs IN SHARE ROW EXCLUSIVE MODE");
    rep.referenced_blobs = static_cast<std::uint64_t>(c.exec("SELECT count(*) FROM blob_refs").get_int(0, 0));
    if (rep.referenced_blobs == 0 && c.exec("SELECT EXISTS (SELECT 1 FROM repo_blobs)").get(0, 0) == "t")
      throw Error(Errc::conflict,
                  "prune: 'blob_refs' lists no blob but the index holds some: refusing to doom every pack "
                  "(is the catalog's migration missing?)");
    const char* referenced_pack =
        "EXISTS (SELECT 1 FROM repo_blobs b JOIN blob_refs r ON r.blob_id = b.id WHERE b.pack = repo_packs.id)";
    auto revived = c.exec(std::string("UPDATE repo_packs SET state = 'live', doomed_at = NULL"
                                      " WHERE state = 'doomed' AND ") + referenced_pack + " RETURNING encode(id, 'hex')");
    for (int i = 0; i < revived.rows(); ++i) rep.revived.push_back(id_of(revived.get(i, 0)));
    auto expired = c.exec(std::string("DELETE FROM repo_packs WHERE state = 'doomed'"
                                      " AND doomed_at <= now() - make_interval(secs => $1::double precision) AND NOT ") +
                              referenced_pack + " RETURNING encode(id, 'hex'), size",
                          {std::to_string(grace.count())});
    for (int i = 0; i < expired.rows(); ++i) {
      rep.expired.push_back({id_of(expired.get(i, 0)), static_cast<std::uint64_t>(expired.get_int(i, 1)), true, 0});
      rep.expired_bytes += static_cast<std::uint64_t>(expired.get_int(i, 1));
    }
    auto doomed = c.exec(std::string("UPDATE repo_packs SET state = 'doomed', doomed_at = now()"
                                     " WHERE state = 'live' AND NOT ") + referenced_pack + " RETURNING encode(id, 'hex')");
    for (int i = 0; i < doomed.rows(); ++i) rep.newly_doomed.push_back(id_of(doomed.get(i, 0)));
    c.exec(dry_run ? "ROLLBACK" : "COMMIT");
  } catch (...) {
    try {
      if (c.healthy()) c.exec("ROLLBACK");
    } catch (...) {
    }
    throw;
  }
  if (!dry_run) {
    std::lock_guard cl(cache_mu_);
    auto mark = [&](const PackId& p, std::uint8_t live) {
      if (auto it = pack_slots_.find(p); it != pack_slots_.end()) pack_live_[it->second] = live;
    };
    for (auto& p : rep.revived) mark(p, 1);
    for (auto& p : rep.newly_doomed) mark(p, 0);
    for (auto& p : rep.expired) mark(p.id, 0);
  }
  return rep;
}

std::vector<PgBlobIndex::SparsePack> PgBlobIndex::sparse_packs(double max_used) {
  std::lock_guard rl(read_mu_);
  auto r = read_->exec(
      "WITH refs AS (SELECT DISTINCT blob_id FROM blob_refs),"
      " usage AS (SELECT b.pack, sum(b.length) AS total,"
      "   coalesce(sum(b.length) FILTER (WHERE refs.blob_id IS NOT NULL), 0) AS used"
      "   FROM repo_blobs b JOIN repo_packs p ON p.id = b.pack AND p.state = 'live'"
      "   LEFT JOIN refs ON refs.blob_id = b.id GROUP BY b.pack)"
      " SELECT encode(pack, 'hex'), total, used FROM usage"
      " WHERE used > 0 AND used < $1::double precision * total ORDER BY pack",
      {std::to_string(max_used)});
  std::vector<SparsePack> out;
  for (int i = 0; i < r.rows(); ++i) {
    SparsePack sp;
    sp.id = id_of(r.get(i, 0));
    sp.blob_bytes = static_cast<std::uint64_t>(r.get_int(i, 1));
    sp.referenced_bytes = static_cast<std::uint64_t>(r.get_int(i, 2));
    auto ids = read_->exec(
        "SELECT encode(b.id, 'hex') FROM repo_blobs b WHERE b.pack = decode($1, 'hex')"
        " AND b.id IN (SELECT blob_id FROM blob_refs) ORDER BY b.\"offset\"",
        {sp.id.hex()});
    for (int k = 0; k < ids.rows(); ++k) sp.referenced.push_back(id_of(ids.get(k, 0)));
    out.push_back(std::move(sp));
  }
  return out;
}

void PgBlobIndex::doom(const std::vector<PackId>& packs) {
  if (packs.empty()) return;
  {
    std::lock_guard wl(write_mu_);
    write_->exec(
        "UPDATE repo_packs SET state = 'doomed', doomed_at = now() WHERE state = 'live'"
        " AND id IN (SELECT decode(x, 'hex') FROM unnest($1::text[]) AS x)",
        {hex_array(packs)});
  }
  std::lock_guard cl(cache_mu_);
  for (auto& p : packs)
    if (auto it = pack_slots_.find(p); it != pack_slots_.end()) pack_live_[it->second] = 0;
}

std::size_t PgBlobIndex::cached_blobs() const {
  std::lock_guard cl(cache_mu_);
  return used_;
}

}  // namespace m365vault::storage
