// Drives (OneDrive and document libraries), generated file bytes and their hashes,
// SharePoint sites and their generic list, and activity on all of them.
#include <openssl/evp.h>
#include <strings.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <tuple>

#include "m365vault/core/error.hpp"
#include "model.hpp"
#include "quickxor.hpp"

namespace m365vault::emulator {

namespace {

[[noreturn]] void bad(const std::string& m) { throw Error(Errc::bad_request, m); }

constexpr std::uint64_t kTextBlock = 4096;

inline std::uint64_t word_at(std::uint64_t seed, std::uint64_t k) {
  std::uint64_t z = seed + (k + 1) * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

const std::vector<std::string> kWords = {"the", "report", "budget", "Überblick", "projet", "会議", "quarterly",
                                         "revenue", "schedule", "équipe", "design", "review", "customer", "données",
                                         "plan", "Straße", "launch", "forecast", "contract", "notes", "🚀", "and",
                                         "of", "to", "in", "draft", "final", "approved", "résumé", "季度"};

// One 4096-byte block of text: words, spaces and CRLFs, cut at the block end (a
// multi-byte character may be split across blocks, as in any byte range).
void text_block(std::uint64_t seed, std::uint64_t block, std::string& out) {
  Rng r(mix(seed, block));
  std::string b;
  b.reserve(kTextBlock + 32);
  int col = 0;
  while (b.size() < kTextBlock) {
    const auto& w = r.pick(kWords);
    b += w;
    col += static_cast<int>(w.size()) + 1;
    if (col > 70) {
      b += "\r\n";
      col = 0;
    } else {
      b += ' ';
    }
  }
  b.resize(kTextBlock);
  out += b;
}

std::string edit_marker(std::uint32_t e) { return "[edit " + std::to_string(e) + "]"; }

std::uint32_t crc32(std::string_view d) {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xffffffffu;
  for (unsigned char ch : d) c = table[(c ^ ch) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

void le16(std::string& s, std::uint32_t v) {
  s += static_cast<char>(v & 0xff);
  s += static_cast<char>((v >> 8) & 0xff);
}
void le32(std::string& s, std::uint32_t v) {
  le16(s, v & 0xffff);
  le16(s, v >> 16);
}

const std::string kContentTypes =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\r\n<Types "
    "xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"xml\" "
    "ContentType=\"application/xml\"/><Override PartName=\"/word/document.xml\" "
    "ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/></Types>";
const std::string kDocHead =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\r\n<w:document "
    "xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body><w:p><w:r><w:t>";
const std::string kDocTail = "</w:t></w:r></w:p></w:body></w:document>";
const std::string kEntry1 = "[Content_Types].xml", kEntry2 = "word/document.xml";

}  // namespace

std::uint64_t office_zip_min_size() {
  return 30 + kEntry1.size() + kContentTypes.size() + 30 + kEntry2.size() + kDocHead.size() + kDocTail.size() + 46 +
         kEntry1.size() + 46 + kEntry2.size() + 22 + 64;
}

std::string office_zip(std::uint64_t seed, std::uint64_t size, std::uint32_t edit, const std::string& name) {
  const std::uint64_t text_len = std::max<std::uint64_t>(size, office_zip_min_size()) - office_zip_min_size() + 64;
  std::string doc = kDocHead;
  std::string title = name + " — Revision " + std::to_string(edit) + "\r\n";
  std::string body;
  body.reserve(text_len + kTextBlock);
  body += title;
  for (std::uint64_t b = 0; body.size() < text_len; ++b) text_block(seed, b, body);
  body.resize(text_len);
  // Keep the XML well-formed: no markup characters, no split UTF-8 at the end.
  for (auto& ch : body)
    if (ch == '<' || ch == '>' || ch == '&') ch = ' ';
  std::size_t cut = body.size();
  while (cut > 0 && (static_cast<unsigned char>(body[cut - 1]) & 0x80)) --cut;
  for (std::size_t i = cut; i < body.size(); ++i) body[i] = '.';
  doc += body;
  doc += kDocTail;
  std::string z;
  z.reserve(doc.size() + 1024);
  struct Entry {
    const std::string* name;
    const std::string* data;
    std::uint32_t crc, offset;
  };
  std::vector<Entry> entries = {{&kEntry1, &kContentTypes, crc32(kContentTypes), 0}, {&kEntry2, &doc, crc32(doc), 0}};
  const std::uint32_t dos_time = 0x6000, dos_date = 0x5821;  // 2024-01-01 12:00
  for (auto& e : entries) {
    e.offset = static_cast<std::uint32_t>(z.size());
    le32(z, 0x04034b50);
    le16(z, 20);
    le16(z, 0);
    le16(z, 0);  // stored
    le16(z, dos_time);
    le16(z, dos_date);
    le32(z, e.crc);
    le32(z, static_cast<std::uint32_t>(e.data->size()));
    le32(z, static_cast<std::uint32_t>(e.data->size()));
    le16(z, static_cast<std::uint32_t>(e.name->size()));
    le16(z, 0);
    z += *e.name;
    z += *e.data;
  }
  const auto cd = static_cast<std::uint32_t>(z.size());
  for (auto& e : entries) {
    le32(z, 0x02014b50);
    le16(z, 20);
    le16(z, 20);
    le16(z, 0);
    le16(z, 0);
    le16(z, dos_time);
    le16(z, dos_date);
    le32(z, e.crc);
    le32(z, static_cast<std::uint32_t>(e.data->size()));
    le32(z, static_cast<std::uint32_t>(e.data->size()));
    le16(z, static_cast<std::uint32_t>(e.name->size()));
    le16(z, 0);
    le16(z, 0);
    le16(z, 0);
    le16(z, 0);
    le32(z, 0);
    le32(z, e.offset);
    z += *e.name;
  }
  const auto cd_size = static_cast<std::uint32_t>(z.size()) - cd;
  le32(z, 0x06054b50);
  le16(z, 0);
  le16(z, 0);
  le16(z, 2);
  le16(z, 2);
  le32(z, cd_size);
  le32(z, cd);
  le16(z, 0);
  return z;
}

void Blob::read(std::uint64_t offset, std::uint64_t len, std::string& out) const {
  if (offset >= size) return;
  len = std::min(len, size - offset);
  const std::size_t start = out.size();
  switch (kind) {
    case supplied:
      out.append(*data, static_cast<std::size_t>(offset), static_cast<std::size_t>(len));
      return;
    case office: {
      auto z = office_zip(seed, size, edit, "Document");
      out.append(z, static_cast<std::size_t>(offset), static_cast<std::size_t>(len));
      return;
    }
    case binary: {
      std::uint64_t k = offset / 8;
      std::uint64_t skip = offset % 8;
      out.resize(start + static_cast<std::size_t>(len));
      char* p = out.data() + start;
      std::uint64_t left = len;
      while (left > 0) {
        std::uint64_t w = word_at(seed, k++);
        char buf[8];
        std::memcpy(buf, &w, 8);
        std::uint64_t n = std::min<std::uint64_t>(8 - skip, left);
        std::memcpy(p, buf + skip, static_cast<std::size_t>(n));
        p += n;
        left -= n;
        skip = 0;
      }
      break;
    }
    case text: {
      std::uint64_t b = offset / kTextBlock;
      std::string tmp;
      std::uint64_t skip = offset % kTextBlock, left = len;
      while (left > 0) {
        tmp.clear();
        text_block(seed, b++, tmp);
        std::uint64_t n = std::min<std::uint64_t>(kTextBlock - skip, left);
        out.append(tmp, static_cast<std::size_t>(skip), static_cast<std::size_t>(n));
        left -= n;
        skip = 0;
      }
      break;
    }
  }
  // Small edits: each version overwrites a few bytes somewhere in the file.
  for (std::uint32_t e = 1; e <= edit; ++e) {
    auto m = edit_marker(e);
    std::uint64_t at = size > m.size() ? mix(seed, e) % (size - m.size()) : 0;
    for (std::size_t i = 0; i < m.size() && at + i < size; ++i) {
      std::uint64_t pos = at + i;
      if (pos >= offset && pos < offset + len) out[start + static_cast<std::size_t>(pos - offset)] = m[i];
    }
  }
}

std::string Blob::all() const {
  std::string s;
  s.reserve(static_cast<std::size_t>(size));
  read(0, size, s);
  return s;
}

FileHashes blob_hashes(const Blob& b) {
  using Key = std::tuple<int, std::uint64_t, std::uint64_t, std::uint32_t>;
  static std::mutex mu;
  static std::map<Key, FileHashes> cache;
  if (b.hashes) return *b.hashes;
  const Key key{b.kind, b.seed, b.size, b.edit};
  if (b.kind != Blob::supplied) {
    std::lock_guard lk(mu);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
  }
  QuickXorHash qx;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> s1(EVP_MD_CTX_new(), EVP_MD_CTX_free),
      s256(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(s1.get(), EVP_sha1(), nullptr);
  EVP_DigestInit_ex(s256.get(), EVP_sha256(), nullptr);
  auto feed = [&](std::string_view d) {
    qx.update(d);
    EVP_DigestUpdate(s1.get(), d.data(), d.size());
    EVP_DigestUpdate(s256.get(), d.data(), d.size());
  };
  if (b.kind == Blob::supplied) {
    feed(*b.data);
  } else if (b.kind == Blob::office) {
    feed(b.all());
  } else {
    std::string chunk;
    for (std::uint64_t off = 0; off < b.size; off += 1 << 20) {
      chunk.clear();
      b.read(off, 1 << 20, chunk);
      feed(chunk);
    }
  }
  unsigned char d1[EVP_MAX_MD_SIZE], d2[EVP_MAX_MD_SIZE];
  unsigned n1 = 0, n2 = 0;
  EVP_DigestFinal_ex(s1.get(), d1, &n1);
  EVP_DigestFinal_ex(s256.get(), d2, &n2);
  FileHashes h{qx.digest(), std::string(reinterpret_cast<char*>(d1), n1), std::string(reinterpret_cast<char*>(d2), n2)};
  if (b.kind != Blob::supplied) {
    std::lock_guard lk(mu);
    cache.emplace(key, h);
  }
  return h;
}

std::string mime_type_of(const std::string& name) {
  static const std::map<std::string, std::string> types = {
      {"txt", "text/plain"},
      {"md", "text/markdown"},
      {"csv", "text/csv"},
      {"pdf", "application/pdf"},
      {"jpg", "image/jpeg"},
      {"png", "image/png"},
      {"zip", "application/x-zip-compressed"},
      {"mp4", "video/mp4"},
      {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
      {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
      {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"}};
  auto dot = name.rfind('.');
  if (dot == std::string::npos) return "application/octet-stream";
  std::string ext = name.substr(dot + 1);
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto it = types.find(ext);
  return it == types.end() ? "application/octet-stream" : it->second;
}

// --- drives -----------------------------------------------------------------------

namespace {

const std::vector<std::string> kDriveFolders = {"Documents", "Pictures", "Projekt Überblick", "財務", "Archive 2024",
                                                "Desktop",   "Shared",   "Réunions",          "Design", "Old"};
struct FileKind {
  const char* base;
  const char* ext;
  Blob::Kind kind;
};
const std::vector<FileKind> kSmallFiles = {
    {"Quarterly report", "docx", Blob::office}, {"Budget", "xlsx", Blob::office},
    {"Präsentation", "pptx", Blob::office},     {"notes", "txt", Blob::text},
    {"README", "md", Blob::text},               {"export", "csv", Blob::text},
    {"Rechnung", "pdf", Blob::binary},          {"photo", "jpg", Blob::binary},
    {"スクリーンショット", "png", Blob::binary}};
const std::vector<FileKind> kLargeFiles = {
    {"backup", "zip", Blob::binary}, {"recording", "mp4", Blob::binary}, {"dataset", "csv", Blob::text}};

bool name_taken(const DriveStore& d, std::int32_t parent, const std::string& name, std::int64_t except = -1) {
  for (std::size_t i = 0; i < d.items.size(); ++i) {
    const auto& e = d.items[i];
    if (e.alive && e.parent == parent && static_cast<std::int64_t>(i) != except &&
        strcasecmp(e.name.c_str(), name.c_str()) == 0)
      return true;
  }
  return false;
}

}  // namespace

DriveStore& drive(Tenant& t, std::uint32_t key) {
  auto& slot = t.drives[key];
  if (slot) return *slot;
  slot = std::make_unique<DriveStore>();
  auto& d = *slot;
  d.key = key;
  const bool user = (key & 3) == 0;
  const std::uint32_t owner = key >> 2;
  int nfiles = user ? t.spec.drive_files_per_user
                    : ((key & 3) == 1 ? t.spec.files_per_site : t.spec.files_per_site / 2);
  std::uint64_t avg = t.spec.drive_files_per_user > 0
                          ? t.spec.drive_bytes_per_user / static_cast<std::uint64_t>(t.spec.drive_files_per_user)
                          : 64 * 1024;
  std::uint64_t total = user ? t.spec.drive_bytes_per_user : avg * static_cast<std::uint64_t>(nfiles);
  DriveEntry root;
  root.folder = true;
  root.name = "root";
  root.created = kBaseEpoch - 400 * 86400;
  root.modified = root.created;
  d.items.push_back(root);
  Rng r(mix(mix(t.spec.seed, 0x64726976), key));
  // Folders: about one per six files.
  std::vector<std::int32_t> folders = {0};
  int nfolders = nfiles >= 3 ? std::max(1, nfiles / 6) : 0;
  for (int i = 0; i < nfolders; ++i) {
    DriveEntry f;
    f.folder = true;
    f.parent = r.below(3) == 0 ? folders[r.below(folders.size())] : 0;
    f.name = kDriveFolders[static_cast<std::size_t>(i) % kDriveFolders.size()];
    if (i >= static_cast<int>(kDriveFolders.size())) f.name += " " + std::to_string(i);
    f.created = root.created + i * 3600;
    f.modified = f.created;
    folders.push_back(static_cast<std::int32_t>(d.items.size()));
    d.items.push_back(f);
  }
  if (user && nfiles >= 5) {
    DriveEntry nb;
    nb.package = true;
    nb.parent = 0;
    nb.name = "Notebook";
    nb.created = root.created + 86400;
    nb.modified = nb.created;
    d.items.push_back(nb);
  }
  // Sizes: most files share the budget evenly, about one in ten is a large binary.
  std::vector<std::uint64_t> weights;
  std::uint64_t wsum = 0;
  Rng wr(mix(mix(t.spec.seed, 0x77656967), key));
  for (int i = 0; i < nfiles; ++i) {
    std::uint64_t w = wr.below(10) == 0 ? 40 : 1 + wr.below(4);
    weights.push_back(w);
    wsum += w;
  }
  std::int32_t last_plain = -1;
  for (int i = 0; i < nfiles; ++i) {
    DriveEntry f;
    f.parent = folders[r.below(folders.size())];
    f.created = root.created + 86400 * 2 + static_cast<std::int64_t>(i) * 7200;
    f.modified = f.created + static_cast<std::int64_t>(r.below(86400 * 30));
    std::uint64_t size = wsum ? total * weights[static_cast<std::size_t>(i)] / wsum : 0;
    const double x = r.unit();
    if (x < 0.12) {
      // The same bytes in many drives (a handbook everyone keeps a copy of).
      auto k = r.below(3);
      f.name = "Company Handbook " + std::to_string(2024 + k) + ".pdf";
      f.blob = {Blob::binary, mix(mix(t.spec.seed, 0x73686172), k), 90000 + k * 37000, 0, nullptr, nullptr};
    } else if (x < 0.22 && last_plain >= 0) {
      // A copy that differs from an earlier file by a small edit.
      const auto& src = d.items[static_cast<std::size_t>(last_plain)];
      f.name = "Copy of " + src.name;
      f.blob = src.blob;
      f.blob.edit += 1;
    } else {
      const auto& k = weights[static_cast<std::size_t>(i)] >= 40 ? r.pick(kLargeFiles) : r.pick(kSmallFiles);
      f.name = std::string(k.base) + " " + std::to_string(i + 1) + "." + k.ext;
      f.blob.kind = k.kind;
      f.blob.seed = mix(mix(mix(t.spec.seed, 0x66696c65), key), static_cast<std::uint64_t>(i));
      f.blob.size = size;
      if (k.kind == Blob::office) {
        f.blob.size = std::clamp<std::uint64_t>(size, office_zip_min_size(), 1 << 20);
      }
    }
    if (f.blob.kind != Blob::office) last_plain = static_cast<std::int32_t>(d.items.size());
    if (name_taken(d, f.parent, f.name)) f.name = std::to_string(i) + " " + f.name;
    d.items.push_back(std::move(f));
  }
  (void)owner;
  return d;
}

namespace {
const char* kB32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
std::string base32(std::string_view raw) {
  std::string out;
  std::uint64_t buf = 0;
  int bits = 0;
  for (unsigned char c : raw) {
    buf = (buf << 8) | c;
    bits += 8;
    while (bits >= 5) {
      out += kB32[(buf >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += kB32[(buf << (5 - bits)) & 31];
  return out;
}
std::optional<std::string> unbase32(std::string_view s) {
  std::string out;
  std::uint64_t buf = 0;
  int bits = 0;
  for (char c : s) {
    const char* p = std::strchr(kB32, c);
    if (!p || !c) return std::nullopt;
    buf = (buf << 5) | static_cast<std::uint64_t>(p - kB32);
    bits += 5;
    if (bits >= 8) {
      out += static_cast<char>((buf >> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return out;
}
std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
}  // namespace

std::string drive_id(const Tenant& t, std::uint32_t key) {
  if (personal(t.spec)) {
    char b[32];
    std::snprintf(b, sizeof b, "%x%07x", (t.hash & 0xfffffff) | 0x1000000, key);
    return b;
  }
  std::string raw;
  put32(raw, t.hash);
  put32(raw, key);
  auto m = mix(t.hash, key);
  for (int i = 0; i < 8; ++i) raw += static_cast<char>((m >> (8 * i)) & 0xff);
  m = mix(m, 7);
  for (int i = 0; i < 8; ++i) raw += static_cast<char>((m >> (8 * i)) & 0xff);
  return "b!" + base64(raw, true, false);
}

std::optional<std::uint32_t> parse_drive_id(const Tenant& t, std::string_view id) {
  if (personal(t.spec)) {
    if (id.size() < 8) return std::nullopt;
    std::string s(id);
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    char* end = nullptr;
    auto key = std::strtoul(s.substr(s.size() - 7).c_str(), &end, 16);
    if (*end) return std::nullopt;
    auto k = static_cast<std::uint32_t>(key);
    if (drive_id(t, k) != s) return std::nullopt;
    return k;
  }
  if (id.rfind("b!", 0) != 0) return std::nullopt;
  auto raw = unbase64(id.substr(2));
  if (!raw || raw->size() != 24 || get32(*raw, 0) != t.hash) return std::nullopt;
  auto key = get32(*raw, 4);
  if (drive_id(t, key) != id) return std::nullopt;
  return key;
}

std::string drive_item_id(const Tenant& t, std::uint32_t key, std::uint32_t index) {
  if (personal(t.spec)) return upper(drive_id(t, key)) + "!" + std::to_string(index + 101);
  std::string raw;
  put32(raw, t.hash);
  put32(raw, key);
  put32(raw, index);
  auto m = mix(mix(t.hash, key), index);
  for (int i = 0; i < 8; ++i) raw += static_cast<char>((m >> (8 * i)) & 0xff);
  return "01" + base32(raw);
}

std::optional<std::pair<std::uint32_t, std::uint32_t>> parse_drive_item_id(const Tenant& t, std::string_view id) {
  if (personal(t.spec)) {
    auto bang = id.find('!');
    if (bang == std::string_view::npos) return std::nullopt;
    auto key = parse_drive_id(t, id.substr(0, bang));
    if (!key) return std::nullopt;
    try {
      auto n = std::stoul(std::string(id.substr(bang + 1)));
      if (n < 101) return std::nullopt;
      return std::make_pair(*key, static_cast<std::uint32_t>(n - 101));
    } catch (...) {
      return std::nullopt;
    }
  }
  if (id.size() != 34 || id.substr(0, 2) != "01") return std::nullopt;
  auto raw = unbase32(id.substr(2));
  if (!raw || raw->size() < 20 || get32(*raw, 0) != t.hash) return std::nullopt;
  auto key = get32(*raw, 4), index = get32(*raw, 8);
  if (drive_item_id(t, key, index) != id) return std::nullopt;
  return std::make_pair(key, index);
}

std::string drive_parent_path(const DriveStore& d, std::uint32_t index) {
  std::string p;
  std::int32_t cur = d.items[index].parent;
  while (cur > 0) {
    p = "/" + d.items[static_cast<std::size_t>(cur)].name + p;
    cur = d.items[static_cast<std::size_t>(cur)].parent;
  }
  return p;
}

// --- sites ----------------------------------------------------------------------

std::uint32_t site_count(const TenantSpec& s) {
  return static_cast<std::uint32_t>(s.sites + (s.sites + 1) / 2);
}

std::optional<std::uint32_t> site_parent(const TenantSpec& s, std::uint32_t site) {
  if (site < static_cast<std::uint32_t>(s.sites)) return std::nullopt;
  return (site - static_cast<std::uint32_t>(s.sites)) * 2;
}

std::uint32_t site_libraries(std::uint32_t site) { return site % 2 ? 2 : 1; }

std::string site_host(const Tenant& t) {
  return t.spec.domain.substr(0, t.spec.domain.find('.')) + ".sharepoint.com";
}

std::string list_id(const Tenant& t, std::uint32_t site, int which) {
  return guid_from(mix(t.spec.seed, 0x6c69737401ULL + static_cast<std::uint64_t>(which)), site);
}

std::optional<int> parse_list_id(const Tenant& t, std::uint32_t site, std::string_view id) {
  for (int w = 0; w < 2; ++w)
    if (list_id(t, site, w).size() == id.size() && strncasecmp(list_id(t, site, w).c_str(), id.data(), id.size()) == 0)
      return w;
  return std::nullopt;
}

std::string site_id(const Tenant& t, std::uint32_t site) {
  auto coll = site_parent(t.spec, site).value_or(site);
  return site_host(t) + "," + guid_from(mix(t.spec.seed, 0x73697465), coll) + "," +
         guid_from(mix(t.spec.seed, 0x77656221), site);
}

std::optional<std::uint32_t> parse_site_id(const Tenant& t, std::string_view id) {
  auto n = site_count(t.spec);
  for (std::uint32_t s = 0; s < n; ++s)
    if (strcasecmp(site_id(t, s).c_str(), std::string(id).c_str()) == 0) return s;
  return std::nullopt;
}

namespace {
const std::vector<std::string> kSiteNames = {"Marketing", "Ventes Europe", "Engineering Hub", "経理部", "Legal",
                                             "Projekt Nordlicht", "Support", "HR Portal"};
std::string site_name(const TenantSpec& s, std::uint32_t site) {
  if (auto p = site_parent(s, site)) return site_name(s, *p) + " Archive";
  if (site == 0) return "Communication site";
  return kSiteNames[site % kSiteNames.size()] + (site >= kSiteNames.size() ? " " + std::to_string(site) : "");
}
std::string site_path(const TenantSpec& s, std::uint32_t site) {
  if (auto p = site_parent(s, site)) return site_path(s, *p) + "/archive";
  if (site == 0) return "";
  return "/sites/site" + std::to_string(site);
}
}  // namespace

json site_json(const Tenant& t, std::uint32_t site) {
  const auto& s = t.spec;
  const std::string name = site_name(s, site);
  json j = {{"createdDateTime", iso_time(kBaseEpoch - 500 * 86400 + site * 86400)},
            {"description", "Site for " + name},
            {"id", site_id(t, site)},
            {"lastModifiedDateTime", iso_time(kBaseEpoch - 3 * 86400)},
            {"name", site == 0 ? std::string("") : site_path(s, site).substr(site_path(s, site).rfind('/') + 1)},
            {"webUrl", "https://" + site_host(t) + site_path(s, site)},
            {"displayName", name}};
  j["siteCollection"] = {{"hostname", site_host(t)}};
  if (!site_parent(s, site)) {
    j["root"] = json::object();
    if (site == 0) j["siteCollection"]["root"] = json::object();
  }
  return j;
}

SiteState& site_state(Tenant& t, std::uint32_t site) {
  auto& slot = t.sites[site];
  if (slot) return *slot;
  slot = std::make_unique<SiteState>();
  slot->items.resize(static_cast<std::size_t>(t.spec.files_per_site));
  for (std::size_t i = 0; i < slot->items.size(); ++i)
    slot->items[i].modified = kBaseEpoch - 200 * 86400 + static_cast<std::int64_t>(i) * 3600;
  return *slot;
}

json list_item_fields(const Tenant& t, std::uint32_t site, std::uint32_t index, const ListEntry& e) {
  static const std::vector<std::string> titles = {"Drucker im 2. OG defekt", "Renew SSL certificate", "会議室の予約",
                                                  "Mise à jour du site", "Onboarding checklist", "VPN flaky 🐢"};
  static const std::vector<std::string> statuses = {"New", "Active", "Resolved", "Closed"};
  Rng r(mix(mix(mix(t.spec.seed, 0x6c697374), site), index));
  Rng v(mix(r.next(), e.version));
  return {{"Title", r.pick(titles) + " #" + std::to_string(index + 1)},
          {"Status", e.version ? v.pick(statuses) : statuses[0]},
          {"Priority", static_cast<int>(1 + r.below(3))},
          {"Description", "Reported by " + user_person(t, static_cast<std::uint32_t>(r.below(t.users.size()))).name +
                              (e.version ? " — update " + std::to_string(e.version) : "")},
          {"DueDate", iso_time(kBaseEpoch + static_cast<std::int64_t>(r.below(90)) * 86400)}};
}

// --- activity ----------------------------------------------------------------------

namespace {
std::vector<std::uint32_t> drive_keys(Tenant& t) {
  std::vector<std::uint32_t> keys;
  for (std::uint32_t u = 0; u < t.users.size(); ++u)
    if (t.users[u].removed == Removed::none && has_mailbox(t.spec, u)) keys.push_back(user_drive_key(u));
  for (std::uint32_t s = 0; s < site_count(t.spec); ++s)
    for (std::uint32_t l = 0; l < site_libraries(s); ++l) keys.push_back(site_drive_key(s, l));
  return keys;
}
std::optional<std::uint32_t> pick_item(Rng& r, const DriveStore& d, bool want_folder) {
  for (int tries = 0; tries < 64 && d.items.size() > 1; ++tries) {
    auto i = static_cast<std::uint32_t>(1 + r.below(d.items.size() - 1));
    const auto& e = d.items[i];
    if (e.alive && !e.package && e.folder == want_folder) return i;
  }
  return std::nullopt;
}
std::string owner_of(const Tenant& t, std::uint32_t key) {
  return (key & 3) == 0 ? t.users[key >> 2].id : site_id(t, key >> 2);
}
void touch(DriveStore& d, std::uint32_t i, std::int64_t now) {
  auto& e = d.items[i];
  e.seq = ++d.seq;
  ++e.version;
  e.modified = now;
}
}  // namespace

void remove_drive_item(DriveStore& d, std::uint32_t index, std::int64_t now) {
  // A folder takes its descendants with it; each is reported deleted. Children can
  // sit before their parent (an upload into an older folder that was later replaced),
  // so mark until nothing changes.
  std::vector<bool> gone(d.items.size(), false);
  gone[index] = true;
  for (bool more = true; more;) {
    more = false;
    for (std::size_t k = 0; k < d.items.size(); ++k)
      if (!gone[k] && d.items[k].parent >= 0 && gone[static_cast<std::size_t>(d.items[k].parent)]) gone[k] = more = true;
  }
  const auto seq = ++d.seq;
  for (std::size_t k = 0; k < d.items.size(); ++k)
    if (gone[k] && d.items[k].alive) {
      d.items[k].alive = false;
      d.items[k].seq = seq;
      d.items[k].modified = now;
    }
}

void apply_drive_activity(Tenant& t, Rng& r, int creates, int updates, int deletes, int moves, int renames, json& out) {
  auto keys = drive_keys(t);
  if (keys.empty()) return;
  const std::int64_t now = kBaseEpoch + static_cast<std::int64_t>(r.below(86400));
  auto rec = [&](const char* what, std::uint32_t key, std::uint32_t i, json extra = json::object()) {
    auto& d = drive(t, key);
    json j = {{"category", "files"}, {"owner", owner_of(t, key)}, {"drive_id", drive_id(t, key)},
              {"id", drive_item_id(t, key, i)}, {"name", d.items[i].name}, {"folder", d.items[i].folder}};
    j.update(extra);
    out[what].push_back(j);
  };
  for (int n = 0; n < creates; ++n) {
    auto key = keys[r.below(keys.size())];
    auto& d = drive(t, key);
    std::vector<std::int32_t> folders;
    for (std::size_t i = 0; i < d.items.size(); ++i)
      if (d.items[i].alive && d.items[i].folder) folders.push_back(static_cast<std::int32_t>(i));
    DriveEntry e;
    e.parent = folders[r.below(folders.size())];
    e.created = e.modified = now;
    e.seq = ++d.seq;
    const auto idx = static_cast<std::uint32_t>(d.items.size());
    if (r.below(5) == 0) {
      e.folder = true;
      e.name = "New folder " + std::to_string(idx);
    } else {
      const auto& k = r.pick(kSmallFiles);
      e.name = std::string(k.base) + " new " + std::to_string(idx) + "." + k.ext;
      e.blob.kind = k.kind;
      e.blob.seed = mix(mix(mix(t.spec.seed, 0x6e657766), key), idx);
      e.blob.size = k.kind == Blob::office ? office_zip_min_size() + 20000 : 1000 + r.below(200000);
    }
    d.items.push_back(e);
    rec("created", key, idx);
  }
  for (int n = 0; n < updates; ++n) {
    auto key = keys[r.below(keys.size())];
    auto& d = drive(t, key);
    auto i = pick_item(r, d, false);
    if (!i) continue;
    auto& e = d.items[*i];
    if (e.blob.kind == Blob::supplied) {
      auto s = std::make_shared<std::string>(*e.blob.data + "\n[edit]");
      e.blob.data = s;
      e.blob.size = s->size();
      e.blob.hashes.reset();
    } else {
      ++e.blob.edit;
    }
    ++e.content_version;
    touch(d, *i, now);
    rec("updated", key, *i);
  }
  for (int n = 0; n < deletes; ++n) {
    auto key = keys[r.below(keys.size())];
    auto& d = drive(t, key);
    auto i = pick_item(r, d, r.below(6) == 0);
    if (!i) i = pick_item(r, d, false);
    if (!i) continue;
    rec("deleted", key, *i);
    remove_drive_item(d, *i, now);
  }
  for (int n = 0; n < moves; ++n) {
    auto key = keys[r.below(keys.size())];
    auto& d = drive(t, key);
    auto i = pick_item(r, d, false);
    if (!i) continue;
    std::vector<std::int32_t> dests;
    for (std::size_t k = 0; k < d.items.size(); ++k)
      if (d.items[k].alive && d.items[k].folder && static_cast<std::int32_t>(k) != d.items[*i].parent)
        dests.push_back(static_cast<std::int32_t>(k));
    if (dests.empty()) continue;
    auto to = dests[r.below(dests.size())];
    std::string from = drive_parent_path(d, *i);
    if (name_taken(d, to, d.items[*i].name, *i)) d.items[*i].name = "moved " + d.items[*i].name;
    d.items[*i].parent = to;
    touch(d, *i, now);
    rec("moved", key, *i, {{"from", from.empty() ? "/" : from}, {"to", drive_parent_path(d, *i).empty() ? "/" : drive_parent_path(d, *i)}});
  }
  for (int n = 0; n < renames; ++n) {
    auto key = keys[r.below(keys.size())];
    auto& d = drive(t, key);
    auto i = pick_item(r, d, r.below(4) == 0);
    if (!i) i = pick_item(r, d, false);
    if (!i) continue;
    std::string old = d.items[*i].name;
    d.items[*i].name = "Renamed " + std::to_string(d.seq) + " " + old;
    touch(d, *i, now);
    rec("renamed", key, *i, {{"old_name", old}});
  }
}

void apply_mass_rewrite(Tenant& t, const json& mass, json& out) {
  if (!mass.is_object() || !mass.contains("owner") || !mass["owner"].is_string())
    bad("field 'mass_rewrite' must be {\"owner\": user id, \"fraction\": 0..1, \"suffix\": optional}");
  const std::string owner = mass["owner"].get<std::string>();
  const double fraction = mass.value("fraction", 1.0);
  if (fraction < 0 || fraction > 1) bad("field 'mass_rewrite.fraction' must be between 0 and 1");
  const std::string suffix = mass.value("suffix", std::string());
  std::optional<std::uint32_t> user;
  for (std::uint32_t u = 0; u < t.users.size(); ++u)
    if (t.users[u].id == owner || user_person(t, u).address == owner) user = u;
  if (!user) bad("mass_rewrite: no user '" + owner + "'");
  auto key = user_drive_key(*user);
  auto& d = drive(t, key);
  std::vector<std::uint32_t> files;
  for (std::uint32_t i = 1; i < d.items.size(); ++i)
    if (d.items[i].alive && !d.items[i].folder && !d.items[i].package) files.push_back(i);
  const auto n = static_cast<std::size_t>(static_cast<double>(files.size()) * fraction + 0.5);
  const std::int64_t now = kBaseEpoch + 86400;
  Rng r(mix(t.spec.seed, 0x72616e73));
  for (std::size_t k = 0; k < n; ++k) {
    auto i = files[k];
    auto& e = d.items[i];
    // What ransomware leaves: same-size random bytes (plus a header), maybe a new name.
    e.blob = {Blob::binary, r.next(), e.blob.size + 16, 0, nullptr, nullptr};
    ++e.content_version;
    if (!suffix.empty()) e.name += suffix;
    touch(d, i, now);
    out["updated"].push_back({{"category", "files"}, {"owner", owner_of(t, key)}, {"drive_id", drive_id(t, key)},
                              {"id", drive_item_id(t, key, i)}, {"name", e.name}, {"folder", false}});
  }
}

// Scripted changes to one user's OneDrive, for tests that need a precise shape
// (a large file edited in the middle, a folder of many files moved, a child moved
// out of a folder that is then deleted).
void apply_drive_ops(Tenant& t, const json& req, json& out) {
  if (!req.is_object() || !req.contains("owner") || !req["owner"].is_string() || !req.contains("ops") ||
      !req["ops"].is_array())
    bad("field 'drive_ops' must be {\"owner\": user id, \"ops\": [...]}");
  const std::string owner = req["owner"].get<std::string>();
  std::optional<std::uint32_t> user;
  for (std::uint32_t u = 0; u < t.users.size(); ++u)
    if (t.users[u].id == owner || user_person(t, u).address == owner) user = u;
  if (!user) bad("drive_ops: no user '" + owner + "'");
  const auto key = user_drive_key(*user);
  auto& d = drive(t, key);
  const std::int64_t now = kBaseEpoch + 2 * 86400;
  auto item = [&](const json& op, const char* field) -> std::uint32_t {
    const std::string ref = op.value(field, std::string());
    if (ref == "root") return 0;
    auto p = parse_drive_item_id(t, ref);
    if (!p || p->first != key || p->second >= d.items.size() || !d.items[p->second].alive)
      bad("drive_ops: field '" + std::string(field) + "': no live item '" + ref + "' in that drive");
    return p->second;
  };
  auto add = [&](std::uint32_t parent, std::string name, bool folder, std::uint64_t size) {
    if (name_taken(d, static_cast<std::int32_t>(parent), name)) bad("drive_ops: name '" + name + "' is taken");
    DriveEntry e;
    e.parent = static_cast<std::int32_t>(parent);
    e.folder = folder;
    e.name = std::move(name);
    e.created = e.modified = now;
    e.seq = ++d.seq;
    const auto idx = static_cast<std::uint32_t>(d.items.size());
    if (!folder) e.blob = {Blob::binary, mix(mix(mix(t.spec.seed, 0x6f707366), key), idx), size, 0, nullptr, nullptr};
    d.items.push_back(std::move(e));
    return drive_item_id(t, key, idx);
  };
  json results = json::array();
  for (auto& op : req["ops"]) {
    const std::string kind = op.value("op", std::string());
    json r = json::object();
    if (kind == "folder") {
      r["id"] = add(item(op, "parent"), op.value("name", std::string("folder")), true, 0);
    } else if (kind == "files") {
      const auto parent = item(op, "parent");
      const int count = op.value("count", 1);
      const auto size = op.value("size", std::uint64_t{1000});
      const std::string prefix = op.value("prefix", std::string("file"));
      if (count < 1 || count > 100000) bad("drive_ops: 'count' must be 1..100000");
      r["ids"] = json::array();
      for (int n = 0; n < count; ++n) r["ids"].push_back(add(parent, prefix + " " + std::to_string(n) + ".bin", false, size));
    } else if (kind == "move") {
      const auto i = item(op, "id"), to = item(op, "to");
      if (!d.items[to].folder) bad("drive_ops: 'to' is not a folder");
      d.items[i].parent = static_cast<std::int32_t>(to);
      touch(d, i, now);
    } else if (kind == "rename") {
      const auto i = item(op, "id");
      d.items[i].name = op.value("name", d.items[i].name);
      touch(d, i, now);
    } else if (kind == "delete") {
      remove_drive_item(d, item(op, "id"), now);
    } else if (kind == "overwrite") {
      // New pseudo-random bytes over [offset, offset + length): the file is kept
      // whole in memory afterwards.
      const auto i = item(op, "id");
      auto& e = d.items[i];
      if (e.folder || e.package) bad("drive_ops: overwrite needs a file");
      const auto offset = op.value("offset", std::uint64_t{0}), length = op.value("length", std::uint64_t{0});
      if (offset + length > e.blob.size) bad("drive_ops: overwrite past the end of the file");
      auto bytes = std::make_shared<std::string>(e.blob.all());
      Rng r2(mix(mix(t.spec.seed, 0x6f766572), e.seq));
      for (std::uint64_t k = 0; k < length; k += 8) {
        const auto v = r2.next();
        for (std::uint64_t b = 0; b < 8 && k + b < length; ++b)
          (*bytes)[offset + k + b] = static_cast<char>((v >> (8 * b)) & 0xff);
      }
      e.blob = {Blob::supplied, 0, bytes->size(), 0, bytes, nullptr};
      ++e.content_version;
      touch(d, i, now);
    } else {
      bad("drive_ops: unknown op '" + kind + "' (folder, files, move, rename, delete, overwrite)");
    }
    results.push_back(std::move(r));
  }
  out["drive_ops"] = std::move(results);
}

void apply_list_activity(Tenant& t, Rng& r, int creates, int updates, int deletes, json& out) {
  const auto n = site_count(t.spec);
  if (n == 0) return;
  auto rec = [&](const char* what, std::uint32_t s, std::uint32_t i) {
    out[what].push_back({{"category", "lists"}, {"owner", site_id(t, s)}, {"id", std::to_string(i + 1)}});
  };
  const std::int64_t now = kBaseEpoch + static_cast<std::int64_t>(r.below(86400));
  for (int k = 0; k < creates; ++k) {
    auto s = static_cast<std::uint32_t>(r.below(n));
    auto& st = site_state(t, s);
    ListEntry e;
    e.seq = ++st.seq;
    e.modified = now;
    st.items.push_back(e);
    rec("created", s, static_cast<std::uint32_t>(st.items.size() - 1));
  }
  auto pick = [&](SiteState& st) -> std::optional<std::uint32_t> {
    for (int tries = 0; tries < 64 && !st.items.empty(); ++tries) {
      auto i = static_cast<std::uint32_t>(r.below(st.items.size()));
      if (st.items[i].alive) return i;
    }
    return std::nullopt;
  };
  for (int k = 0; k < updates; ++k) {
    auto s = static_cast<std::uint32_t>(r.below(n));
    auto& st = site_state(t, s);
    auto i = pick(st);
    if (!i) continue;
    ++st.items[*i].version;
    st.items[*i].seq = ++st.seq;
    st.items[*i].modified = now;
    rec("updated", s, *i);
  }
  for (int k = 0; k < deletes; ++k) {
    auto s = static_cast<std::uint32_t>(r.below(n));
    auto& st = site_state(t, s);
    auto i = pick(st);
    if (!i) continue;
    st.items[*i].alive = false;
    st.items[*i].seq = ++st.seq;
    st.items[*i].modified = now;
    rec("deleted", s, *i);
  }
}

}  // namespace m365vault::emulator
