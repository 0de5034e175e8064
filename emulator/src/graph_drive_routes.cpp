// OneDrive and SharePoint: drives, driveItems, children, drive delta (tokens, latest,
// timestamps, resync), content through pre-authenticated download URLs with ranges,
// sites, subsites, document libraries, lists, list items and their delta, and the
// SharePoint resource-unit throttle.
#include <boost/asio/awaitable.hpp>

#include <algorithm>
#include <cmath>

#include "internal.hpp"
#include "m365vault/core/error.hpp"

namespace m365vault::emulator {

namespace asio = boost::asio;

namespace {

std::string upper_guid(std::uint64_t a, std::uint64_t b) {
  auto g = guid_from(a, b);
  for (auto& c : g) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return g;
}

std::string hex_upper(std::string_view raw) {
  auto h = to_hex(raw);
  for (auto& c : h) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return h;
}

constexpr std::size_t kSimpleUploadMax = 250ull * 1024 * 1024;  // current docs (older ones: 4 MB)

const std::string kResyncMessage =
    "Resync required. Replace any local items with the server's version (including deletes) if you're sure that the "
    "service was up to date with your local changes when you last sync'd. Upload any local changes that the server "
    "doesn't know about.";

// Streams [offset, offset + len) of a blob in 256 KiB writes; `corrupt` flips the
// first byte sent (the download_corrupt fault).
asio::awaitable<void> stream_blob(Blob b, std::uint64_t offset, std::uint64_t len, net::BodySink& sink,
                                  bool corrupt = false) {
  constexpr std::uint64_t kChunk = 256 * 1024;
  if (b.kind == Blob::office) {  // small; built whole
    auto all = std::make_shared<const std::string>(b.all());
    b = {Blob::supplied, 0, all->size(), 0, all, nullptr};
  }
  std::string buf;
  buf.reserve(kChunk);
  for (std::uint64_t at = offset; at < offset + len; at += kChunk) {
    buf.clear();
    b.read(at, std::min(kChunk, offset + len - at), buf);
    if (corrupt && at == offset && !buf.empty()) buf[0] = static_cast<char>(~buf[0]);
    co_await sink.write(buf);
  }
}

// The first `len` bytes of [offset, ...), then a dropped connection (download_cut_at).
asio::awaitable<void> cut_blob(Blob b, std::uint64_t offset, std::uint64_t len, net::BodySink& sink) {
  auto part = stream_blob(std::move(b), offset, len, sink);  // named: GCC 12 and temporaries in co_await
  co_await std::move(part);
  throw std::runtime_error("injected fault: download cut");
}

// A file's cTag: it changes with the content only (also the ETag of its download).
std::string content_tag(bool personal_drive, const std::string& id, const std::string& guid,
                        std::uint32_t content_version) {
  return personal_drive ? "aYzp" + base64(id + "." + std::to_string(content_version), true, false)
                        : "\"c:{" + guid + "}," + std::to_string(content_version + 1) + "\"";
}

// "bytes=a-b", "bytes=a-", "bytes=-n" → [first, last]; nullopt when unsatisfiable or
// not a single range.
std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_range(std::string_view v, std::uint64_t size) {
  if (v.rfind("bytes=", 0) != 0 || v.find(',') != std::string_view::npos) return std::nullopt;
  v.remove_prefix(6);
  auto dash = v.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  try {
    std::string a(v.substr(0, dash)), b(v.substr(dash + 1));
    if (a.empty()) {
      if (b.empty()) return std::nullopt;
      std::uint64_t n = std::stoull(b);
      if (n == 0 || size == 0) return std::nullopt;
      n = std::min(n, size);
      return std::make_pair(size - n, size - 1);
    }
    std::uint64_t first = std::stoull(a);
    if (first >= size) return std::nullopt;
    auto last = b.empty() ? size - 1 : std::min<std::uint64_t>(std::stoull(b), size - 1);
    if (last < first) return std::nullopt;
    return std::make_pair(first, last);
  } catch (...) {
    return std::nullopt;
  }
}

}  // namespace

void EmulatorImpl::add_sp(const std::string& method, const std::string& tmpl, const std::string& permission, int cost,
                          GraphFn fn) {
  add_graph(method, tmpl, permission, false, [this, cost, fn](GraphCtx& c) -> net::Response {
    int units = cost;
    if (units == 0) units = c.req.query_param("token") ? 1 : 2;
    if (c.req.query_param("$expand").value_or("").find("permissions") != std::string::npos) units = 5;
    const auto f = current_faults();
    long budget = f.sharepoint_ru_per_minute;
    if (budget == 0) {
      const auto n = c.tenant->spec.users;  // licences ~ users
      budget = n < 1000 ? 1200 : n < 5000 ? 2400 : n < 15000 ? 3600 : n < 50000 ? 4800 : 6000;
    }
    const double now_s = now_precise();
    long used, reset;
    bool refused = false;
    {
      std::lock_guard lk(rumu);
      auto& w = ru[c.app + "|" + c.tenant->spec.tenant_id];
      if (now_s - w.start >= 60) {
        w.start = now_s;
        w.used = 0;
      }
      reset = std::max<long>(1, static_cast<long>(std::ceil(w.start + 60 - now_s)));
      if (w.used + units > budget) refused = true;
      else w.used += units;
      used = w.used;
    }
    auto add_headers = [&](net::Response& r, long remaining) {
      r.headers.set("RateLimit-Limit", std::to_string(budget));
      r.headers.set("RateLimit-Remaining", std::to_string(std::max(0L, remaining)));
      r.headers.set("RateLimit-Reset", std::to_string(reset));
    };
    if (refused) {
      auto r = graph_error(c.req, 429, "activityLimitReached", "The request has been throttled.");
      r.headers.set("Retry-After", std::to_string(reset));  // equal to RateLimit-Reset (contract 9)
      add_headers(r, 0);
      return r;
    }
    auto r = fn(c);
    if (used * 10 > budget * 8) add_headers(r, budget - used);
    return r;
  });
}

namespace {
constexpr int kMaxPathDepth = 8;  // folders between a parent and a name in a path-addressed write
}  // namespace

void EmulatorImpl::register_drive() {
  // ------------------------------------------------------------ renderers
  // The driveItem JSON. `delta`: no parentReference.path; deleted items keep only
  // what the contract says they keep.
  struct ItemView {
    bool delta = false;
    bool download_url = false;
  };
  auto item_json = [this](Tenant& t, const DriveStore& d, std::uint32_t i, std::uint32_t child_count,
                          const ItemView& view) {
    const auto& e = d.items[i];
    const bool pers = personal(t.spec);
    const std::string id = drive_item_id(t, d.key, i);
    const std::string did = drive_id(t, d.key);
    const std::string guid = upper_guid(mix(t.hash, d.key), i);
    json j;
    j["id"] = id;
    j["eTag"] = pers ? "a" + base64(id + "." + std::to_string(e.version), true, false)
                     : "\"{" + guid + "}," + std::to_string(e.version + 1) + "\"";
    json parent = {{"driveId", did}, {"driveType", pers ? "personal" : (d.key & 3) == 0 ? "business" : "documentLibrary"}};
    if (e.parent >= 0) {
      parent["id"] = drive_item_id(t, d.key, static_cast<std::uint32_t>(e.parent));
      if (!view.delta && e.alive) {
        auto p = drive_parent_path(d, i);
        parent["path"] = "/drive/root:" + p;
      }
    }
    j["parentReference"] = parent;
    j["lastModifiedDateTime"] = iso_time(e.modified);
    if (!e.alive) {
      j["deleted"] = {{"state", "deleted"}};
      if (e.folder) j["folder"] = {{"childCount", 0}};
      else if (!e.package) j["file"] = json::object();
      if (pers) j["name"] = e.name;  // consumer keeps the name, drops cTag and size
      else j["size"] = 0;            // ODB drops name and cTag
      return j;
    }
    const auto person = [&](std::uint32_t salt) -> json {
      if ((d.key & 3) == 0) {
        auto u = d.key >> 2;
        return {{"user", {{"id", t.users[u].id}, {"displayName", user_person(t, u).name}}}};
      }
      auto u = static_cast<std::uint32_t>(mix(d.key, salt) % t.users.size());
      return {{"user", {{"id", t.users[u].id}, {"displayName", user_person(t, u).name}}}};
    };
    j["name"] = e.parent < 0 ? (pers ? std::string("root") : std::string("root")) : e.name;
    j["cTag"] = content_tag(pers, id, guid, e.content_version);
    j["createdDateTime"] = iso_time(e.created);
    j["createdBy"] = person(1);
    j["lastModifiedBy"] = person(e.version + 2);
    j["fileSystemInfo"] = {{"createdDateTime", iso_time(e.fs_created ? e.fs_created : e.created)},
                           {"lastModifiedDateTime", iso_time(e.fs_modified ? e.fs_modified : e.modified)}};
    const std::string host = (d.key & 3) == 0
                                 ? "https://" + t.spec.domain.substr(0, t.spec.domain.find('.')) + "-my.sharepoint.com/personal/" +
                                       user_person(t, d.key >> 2).address.substr(0, user_person(t, d.key >> 2).address.find('@')) +
                                       "/Documents"
                                 : "https://" + site_host(t) + "/sites/site" + std::to_string(d.key >> 2) + "/Shared%20Documents";
    j["webUrl"] = host + (e.parent < 0 ? "" : drive_parent_path(d, i) + "/" + e.name);
    if (e.parent < 0) {
      j["root"] = json::object();
      j["folder"] = {{"childCount", child_count}};
      std::uint64_t total = 0;
      for (auto& x : d.items)
        if (x.alive && !x.folder && !x.package) total += x.blob.size;
      j["size"] = total;
    } else if (e.folder) {
      j["folder"] = {{"childCount", child_count}};
      j["size"] = 0;
    } else if (e.package) {
      j["package"] = {{"type", "oneNote"}};
      j["size"] = 0;
    } else {
      auto h = blob_hashes(e.blob);
      json hashes = pers ? json{{"sha1Hash", hex_upper(h.sha1)}, {"sha256Hash", hex_upper(h.sha256)}}
                         : json{{"quickXorHash", base64(h.quick_xor)}};
      j["file"] = {{"mimeType", mime_type_of(e.name)}, {"hashes", hashes}};
      j["size"] = e.blob.size;
      if (view.download_url)
        j["@microsoft.graph.downloadUrl"] =
            base_url + "/_download/" +
            seal({{"k", "dl"}, {"tid", t.spec.tenant_id}, {"d", d.key}, {"i", i}, {"exp", now() + current_faults().download_url_lifetime_s}});
    }
    return j;
  };
  auto child_counts = [](const DriveStore& d) {
    std::vector<std::uint32_t> n(d.items.size(), 0);
    for (auto& e : d.items)
      if (e.alive && e.parent >= 0) ++n[static_cast<std::size_t>(e.parent)];
    return n;
  };
  auto wants_download_url = [](GraphCtx& c) {
    auto sel = c.req.query_param("$select").value_or("");
    return sel.find("downloadUrl") != std::string::npos;
  };
  auto select = [](json j, GraphCtx& c) {
    auto sel = split_csv(c.req.query_param("$select").value_or(""));
    if (sel.empty()) return j;
    json out = json::object();
    for (auto& [k, v] : j.items()) {
      bool keep = k == "id" || k.find('@') != std::string::npos;
      for (auto& s : sel)
        if (strcasecmp(s.c_str(), k.c_str()) == 0 || (s == "content.downloadUrl" && k == "@microsoft.graph.downloadUrl"))
          keep = true;
      if (keep) out[k] = v;
    }
    return out;
  };
  auto not_found = [this](GraphCtx& c) {
    return graph_error(c.req, 404, "itemNotFound", "The resource could not be found.");
  };

  // Which drive a route addresses: {drive}, {user}'s OneDrive or {site}'s default library.
  auto resolve_drive = [this](GraphCtx& c) -> std::variant<std::uint32_t, net::Response> {
    auto& t = *c.tenant;
    if (auto it = c.req.params.find("drive"); it != c.req.params.end()) {
      auto k = parse_drive_id(t, it->second);
      if (!k) return graph_error(c.req, 404, "itemNotFound", "The resource could not be found.");
      return *k;
    }
    if (c.user) {
      if (!has_mailbox(t.spec, *c.user))
        return graph_error(c.req, 404, "ResourceNotFound", "User's mysite not found.");
      return user_drive_key(*c.user);
    }
    if (auto it = c.req.params.find("site"); it != c.req.params.end()) {
      std::lock_guard lk(t.mu);
      auto s = parse_site_id(t, it->second);
      if (!s) return graph_error(c.req, 404, "itemNotFound", "Requested site could not be found");
      return site_drive_key(*s, 0);
    }
    return graph_error(c.req, 400, "invalidRequest", "Invalid API or resource.");
  };

  auto drive_json = [this](Tenant& t, std::uint32_t key) {
    const bool pers = personal(t.spec);
    const bool user = (key & 3) == 0;
    auto& d = drive(t, key);
    std::uint64_t used = 0;
    for (auto& e : d.items)
      if (e.alive && !e.folder && !e.package) used += e.blob.size;
    auto owner_u = user ? key >> 2 : static_cast<std::uint32_t>(mix(key, 3) % t.users.size());
    json j = {{"id", drive_id(t, key)},
              {"driveType", pers ? "personal" : user ? "business" : "documentLibrary"},
              {"name", user ? "OneDrive" : (key & 3) == 1 ? "Documents" : "Projektdateien"},
              {"createdDateTime", iso_time(kBaseEpoch - 400 * 86400)},
              {"lastModifiedDateTime", iso_time(kBaseEpoch - 86400)},
              {"owner", {{"user", {{"id", t.users[owner_u].id}, {"displayName", user_person(t, owner_u).name}}}}},
              {"quota", {{"deleted", 0}, {"remaining", (1ull << 40) - used}, {"state", "normal"}, {"total", 1ull << 40}, {"used", used}}}};
    j["webUrl"] = user ? "https://" + t.spec.domain.substr(0, t.spec.domain.find('.')) + "-my.sharepoint.com/personal/" +
                             user_person(t, key >> 2).address.substr(0, user_person(t, key >> 2).address.find('@')) + "/Documents"
                       : "https://" + site_host(t) + "/sites/site" + std::to_string(key >> 2) + "/Shared%20Documents";
    return j;
  };

  // ------------------------------------------------------------ drives
  auto get_drive = [this, resolve_drive, drive_json](GraphCtx& c) {
    auto r = resolve_drive(c);
    if (auto* e = std::get_if<net::Response>(&r)) return std::move(*e);
    auto key = std::get<std::uint32_t>(r);
    auto& t = *c.tenant;
    json j;
    {
      std::lock_guard lk(t.mu);
      if ((key & 3) != 0 && (key >> 2) >= site_count(t.spec))
        return graph_error(c.req, 404, "itemNotFound", "The resource could not be found.");
      j = drive_json(t, key);
    }
    j["@odata.context"] = base_url + "/" + c.version + "/$metadata#drives/$entity";
    return graph_json(c, 200, j);
  };
  add_sp("GET", "/users/{user}/drive", "Files.ReadWrite.All", 1, get_drive);
  add_sp("GET", "/drives/{drive}", "Files.ReadWrite.All", 1, get_drive);
  add_sp("GET", "/sites/{site}/drive", "Sites.ReadWrite.All", 1, get_drive);

  // ------------------------------------------------------------ delta
  auto delta = [this, resolve_drive, item_json, child_counts, wants_download_url, select](GraphCtx& c) -> net::Response {
    auto r = resolve_drive(c);
    if (auto* e = std::get_if<net::Response>(&r)) return std::move(*e);
    const auto key = std::get<std::uint32_t>(r);
    auto& t = *c.tenant;
    const bool pers = personal(t.spec);
    auto malformed = [&] {
      return graph_error(c.req, 400, "invalidRequest", "Provided sync token is malformed", false);
    };
    std::uint64_t base = 0, snap = 0;
    std::size_t cursor = 0;
    std::optional<std::int64_t> since;
    bool latest = false, dl = wants_download_url(c);
    std::string sel = c.req.query_param("$select").value_or("");
    int top = 200;
    if (auto tp = c.req.query_param("$top")) {
      try {
        top = std::clamp(std::stoi(*tp), 1, 1000);
      } catch (...) {
        return graph_error(c.req, 400, "invalidRequest", "Invalid value for $top.");
      }
    }
    const auto tok = c.req.query_param("token");
    if (tok && *tok == "latest") {
      latest = true;
    } else if (tok) {
      if (auto sealed = unseal(*tok)) {
        if (sealed->value("k", "") != "drv" || sealed->value("tid", "") != t.spec.tenant_id ||
            sealed->value("d", std::uint32_t{0}) != key)
          return malformed();
        base = sealed->value("base", std::uint64_t{0});
        snap = sealed->value("snap", std::uint64_t{0});
        cursor = sealed->value("cur", std::size_t{0});
        sel = sealed->value("sel", sel);
        top = sealed->value("top", top);
        dl = sel.find("downloadUrl") != std::string::npos;
        if (sealed->contains("since")) since = (*sealed)["since"].get<std::int64_t>();
      } else {
        // OneDrive for Business and SharePoint also take a timestamp (or a date).
        std::string ts = *tok;
        if (ts.size() == 10) ts += "T00:00:00Z";
        auto when = parse_iso_time(ts);
        if (!when || pers) return malformed();
        since = *when;
        base = 1;  // a later round: deletions are reported
      }
      // Resync on demand (contract 8.1): 410 with a fresh token-less delta URL.
      const auto f = current_faults();
      if (!latest && f.drive_resync_rate > 0 && chance() < f.drive_resync_rate) {
        auto res = graph_error(c.req, 410, "resyncRequired", kResyncMessage, true, f.drive_resync_code);
        res.headers.set("Location", base_url + "/" + c.version + "/drives/" + drive_id(t, key) + "/root/delta");
        return res;
      }
    }
    c.req.query = "$select=" + sel;  // what select() reads
    json value = json::array();
    bool more = false;
    std::uint64_t current;
    {
      std::lock_guard lk(t.mu);
      if ((key & 3) != 0 && (key >> 2) >= site_count(t.spec)) return graph_error(c.req, 404, "itemNotFound", "The resource could not be found.");
      auto& d = drive(t, key);
      current = d.seq;
      if (snap == 0) snap = current;
      if (!latest) {
        auto counts = child_counts(d);
        std::size_t i = cursor;
        for (; i < d.items.size() && static_cast<int>(value.size()) < top; ++i) {
          const auto& e = d.items[i];
          bool include;
          if (since) include = e.modified > *since;
          else if (base == 0) include = e.alive;
          else include = e.seq > base;
          if (!include) continue;
          if (!e.alive && base == 0 && !since) continue;
          value.push_back(select(item_json(t, d, static_cast<std::uint32_t>(i), counts[i], {true, dl}), c));
        }
        more = i < d.items.size();
        cursor = i;
      }
    }
    json body = {{"@odata.context", base_url + "/" + c.version + "/$metadata#Collection(driveItem)"}, {"value", value}};
    const std::string link = base_url + "/" + c.version + "/drives/" + drive_id(t, key) + "/root/delta?token=";
    json common = {{"k", "drv"}, {"tid", t.spec.tenant_id}, {"d", key}, {"sel", sel}, {"top", top}};
    if (more) {
      json n = common;
      n["base"] = base;
      n["snap"] = snap;
      n["cur"] = cursor;
      if (since) n["since"] = *since;
      body["@odata.nextLink"] = link + seal(n);
    } else {
      json n = common;
      n["base"] = latest ? current : snap;
      body["@odata.deltaLink"] = link + seal(n);
    }
    return graph_json(c, 200, body);
  };
  add_sp("GET", "/drives/{drive}/root/delta", "Files.ReadWrite.All", 0, delta);
  add_sp("GET", "/users/{user}/drive/root/delta", "Files.ReadWrite.All", 0, delta);
  add_sp("GET", "/sites/{site}/drive/root/delta", "Sites.ReadWrite.All", 0, delta);
  // The function-call form some old docs show is refused (contract 8.1).
  add_graph("GET", "/drives/{drive}/root/delta(token={tok})", "Files.ReadWrite.All", false, [this](GraphCtx& c) {
    return graph_error(c.req, 400, "invalidRequest", "Invalid API or resource.");
  });

  // ------------------------------------------------------------ items
  // {item} is an item id or "root".
  auto resolve_item = [](Tenant& t, std::uint32_t key, const std::string& ref) -> std::optional<std::uint32_t> {
    if (ref == "root") return 0u;
    auto p = parse_drive_item_id(t, ref);
    if (!p || p->first != key) return std::nullopt;
    auto& d = drive(t, key);
    if (p->second >= d.items.size() || !d.items[p->second].alive) return std::nullopt;
    return p->second;
  };
  auto get_item = [this, resolve_drive, resolve_item, item_json, child_counts, select, not_found](GraphCtx& c) {
    auto r = resolve_drive(c);
    if (auto* e = std::get_if<net::Response>(&r)) return std::move(*e);
    const auto key = std::get<std::uint32_t>(r);
    auto& t = *c.tenant;
    json j;
    {
      std::lock_guard lk(t.mu);
      auto i = resolve_item(t, key, c.req.params.count("item") ? c.req.params["item"] : "root");
      if (!i) return not_found(c);
      auto& d = drive(t, key);
      j = select(item_json(t, d, *i, child_counts(d)[*i], {false, true}), c);
    }
    j["@odata.context"] = base_url + "/" + c.version + "/$metadata#drives('" + drive_id(t, key) + "')/items/$entity";
    return graph_json(c, 200, j);
  };
  add_sp("GET", "/drives/{drive}/root", "Files.ReadWrite.All", 1, get_item);
  add_sp("GET", "/users/{user}/drive/root", "Files.ReadWrite.All", 1, get_item);
  add_sp("GET", "/drives/{drive}/items/{item}", "Files.ReadWrite.All", 1, get_item);
  add_sp("GET", "/users/{user}/drive/items/{item}", "Files.ReadWrite.All", 1, get_item);

  auto children = [this, resolve_drive, resolve_item, item_json, child_counts, select, wants_download_url,
                   not_found](GraphCtx& c) {
    auto r = resolve_drive(c);
    if (auto* e = std::get_if<net::Response>(&r)) return std::move(*e);
    const auto key = std::get<std::uint32_t>(r);
    auto& t = *c.tenant;
    std::size_t top = 200, skip = 0;
    try {
      if (auto v = c.req.query_param("$top")) top = static_cast<std::size_t>(std::clamp(std::stoi(*v), 1, 1000));
      if (auto v = c.req.query_param("$skiptoken")) skip = static_cast<std::size_t>(std::stoul(*v));
    } catch (...) {
      return graph_error(c.req, 400, "invalidRequest", "Invalid $top or $skiptoken.");
    }
    json value = json::array();
    bool more = false;
    std::string parent_ref = c.req.params.count("item") ? c.req.params["item"] : "root";
    {
      std::lock_guard lk(t.mu);
      auto p = resolve_item(t, key, parent_ref);
      if (!p) return not_found(c);
      auto& d = drive(t, key);
      auto counts = child_counts(d);
      std::size_t seen = 0;
      for (std::uint32_t i = 0; i < d.items.size(); ++i) {
        if (!d.items[i].alive || d.items[i].parent != static_cast<std::int32_t>(*p)) continue;
        if (seen++ < skip) continue;
        if (value.size() == top) {
          more = true;
          break;
        }
        value.push_back(select(item_json(t, d, i, counts[i], {false, wants_download_url(c)}), c));
      }
    }
    json body = {{"@odata.context", base_url + "/" + c.version + "/$metadata#drives('" + drive_id(t, key) + "')/items('" +
                                        parent_ref + "')/children"},
                 {"value", value}};
    if (more) {
      std::string q = "?$top=" + std::to_string(top) + "&$skiptoken=" + std::to_string(skip + top);
      if (auto s = c.req.query_param("$select")) q += "&$select=" + *s;
      body["@odata.nextLink"] = base_url + "/" + c.version + "/drives/" + drive_id(t, key) + "/items/" + parent_ref + "/children" + q;
    }
    return graph_json(c, 200, body);
  };
  add_sp("GET", "/drives/{drive}/root/children", "Files.ReadWrite.All", 2, children);
  add_sp("GET", "/drives/{drive}/items/{item}/children", "Files.ReadWrite.All", 2, children);
  add_sp("GET", "/users/{user}/drive/root/children", "Files.ReadWrite.All", 2, children);

  // ------------------------------------------------------------ content
  auto content = [this, resolve_drive, resolve_item, not_found](GraphCtx& c) {
    auto r = resolve_drive(c);
    if (auto* e = std::get_if<net::Response>(&r)) return std::move(*e);
    const auto key = std::get<std::uint32_t>(r);
    auto& t = *c.tenant;
    std::string etag, ctag;
    std::uint32_t idx;
    {
      std::lock_guard lk(t.mu);
      auto i = resolve_item(t, key, c.req.params["item"]);
      if (!i) return not_found(c);
      auto& d = drive(t, key);
      const auto& e = d.items[*i];
      if (e.folder || e.package)  // only file items have content (contract 8.2)
        return graph_error(c.req, 404, "itemNotFound", "The item does not have content.");
      idx = *i;
      const std::string id = drive_item_id(t, key, idx);
      const std::string guid = upper_guid(mix(t.hash, key), idx);
      const bool pers = personal(t.spec);
      etag = pers ? "a" + base64(id + "." + std::to_string(e.version), true, false)
                  : "\"{" + guid + "}," + std::to_string(e.version + 1) + "\"";
      ctag = content_tag(pers, id, guid, e.content_version);
    }
    if (auto inm = c.req.headers.get("If-None-Match"); inm && (*inm == etag || *inm == ctag || *inm == "*")) {
      net::Response res;
      res.status = 304;
      res.headers.set("ETag", etag);
      return res;
    }
    net::Response res;
    res.status = 302;
    res.headers.set("Location", base_url + "/_download/" +
                                    seal({{"k", "dl"}, {"tid", t.spec.tenant_id}, {"d", key}, {"i", idx},
                                          {"exp", now() + current_faults().download_url_lifetime_s}}));
    res.headers.set("Cache-Control", "no-cache");
    return res;
  };
  add_sp("GET", "/drives/{drive}/items/{item}/content", "Files.ReadWrite.All", 1, content);
  add_sp("GET", "/users/{user}/drive/items/{item}/content", "Files.ReadWrite.All", 1, content);

  // The pre-authenticated URL: no bearer token; one sent anyway is refused.
  router.add("GET", "/_download/{token}", [this](net::Request& req) -> asio::awaitable<net::Response> {
    if (req.headers.get("Authorization"))
      co_return graph_error(req, 401, "unauthenticated",
                            "Pre-authenticated download URLs must be fetched without an Authorization header.");
    auto tok = unseal(req.params["token"]);
    if (!tok || tok->value("k", "") != "dl") co_return graph_error(req, 401, "unauthenticated", "Invalid download URL.");
    if (tok->value("exp", std::int64_t{0}) <= now())
      co_return graph_error(req, 401, "unauthenticated", "The download URL has expired.");
    auto t = find_tenant(tok->value("tid", ""));
    if (!t) co_return graph_error(req, 404, "itemNotFound", "The resource could not be found.");
    Blob blob;
    std::string name, ctag;
    {
      std::lock_guard lk(t->mu);
      const auto key = tok->value("d", std::uint32_t{0});
      auto& d = drive(*t, key);
      auto i = tok->value("i", std::uint32_t{0});
      if (i >= d.items.size() || !d.items[i].alive) co_return graph_error(req, 404, "itemNotFound", "The resource could not be found.");
      blob = d.items[i].blob;
      name = d.items[i].name;
      ctag = content_tag(personal(t->spec), drive_item_id(*t, key, i), upper_guid(mix(t->hash, key), i),
                         d.items[i].content_version);
    }
    net::Response res;
    res.headers.set("Content-Type", mime_type_of(name));
    res.headers.set("Accept-Ranges", "bytes");
    res.headers.set("ETag", ctag);
    std::uint64_t first = 0, len = blob.size;
    res.status = 200;
    const auto faults = current_faults();
    // If-Range naming other content: the whole (new) body, as HTTP says.
    const auto if_range = req.headers.get("If-Range");
    const bool range_valid = !if_range || *if_range == ctag;
    if (auto range = req.headers.get("Range"); range && range_valid && !faults.download_ignore_range) {
      auto rg = parse_range(*range, blob.size);
      if (!rg) {
        net::Response bad;
        bad.status = 416;
        bad.headers.set("Content-Range", "bytes */" + std::to_string(blob.size));
        co_return bad;
      }
      first = rg->first;
      len = rg->second - rg->first + 1;
      res.status = 206;
      res.headers.set("Content-Range", "bytes " + std::to_string(rg->first) + "-" + std::to_string(rg->second) + "/" +
                                           std::to_string(blob.size));
    }
    res.content_length = len;
    // download_cut_at: a download without Range is closed at that fraction of the file
    // (a resume, which has one, goes through).
    const auto cut = static_cast<std::uint64_t>(faults.download_cut_at * static_cast<double>(blob.size));
    if (faults.download_cut_at > 0 && !req.headers.get("Range") && first < cut && cut < first + len) {
      res.stream = [blob, first, cut](net::BodySink& sink) { return cut_blob(blob, first, cut - first, sink); };
      co_return res;
    }
    const bool corrupt = faults.download_corrupt;
    res.stream = [blob, first, len, corrupt](net::BodySink& sink) { return stream_blob(blob, first, len, sink, corrupt); };
    co_return res;
  });

  // ------------------------------------------------------------ writes (restore)
  // Folder create, simple upload and upload sessions (contract 11). Writes are
  // operations for apply_write, journaled like the mail writes; uploaded bytes are
  // kept whole in memory (and base64 in the journal).
  drive_item_json_fn = [item_json, child_counts](Tenant& t, std::uint32_t key, std::uint32_t i) {
    auto& d = drive(t, key);
    return item_json(t, d, i, child_counts(d)[i], {false, true});
  };
  // Where a write lands: an existing item ({item}, "root" for .../root/...) or a parent
  // and a name ("{parent-id}:/{name}:" or "root:/{name}:", with up to kMaxPathDepth
  // folders between: "root:/A/B/{name}:"). `missing`: the folders of that path that do
  // not exist yet, in order (the parent is then the deepest one that does).
  struct Target {
    std::uint32_t key = 0;
    std::uint32_t item = 0;  // the existing item, or the parent when `name` is set
    std::string name;
    std::vector<std::string> missing;
  };
  auto target_of = [this, resolve_drive, resolve_item, not_found](GraphCtx& c) -> std::variant<Target, net::Response> {
    auto r = resolve_drive(c);
    if (auto* e = std::get_if<net::Response>(&r)) return std::move(*e);
    Target tg;
    tg.key = std::get<std::uint32_t>(r);
    auto unquote = [](const std::string& seg) -> std::optional<std::string> {
      if (seg.size() < 2 || seg.back() != ':') return std::nullopt;
      return seg.substr(0, seg.size() - 1);
    };
    std::string ref = c.req.params.count("item") ? c.req.params["item"] : "root";
    std::vector<std::string> folders;
    for (int k = 1; c.req.params.count("d" + std::to_string(k)); ++k) folders.push_back(c.req.params["d" + std::to_string(k)]);
    if (auto nc = c.req.params.find("nc"); nc != c.req.params.end()) {
      auto name = unquote(nc->second);
      auto parent = c.req.params.count("pc") ? unquote(c.req.params["pc"]) : std::optional<std::string>("root");
      if (!name || !parent) return graph_error(c.req, 400, "invalidRequest", "Invalid API or resource.");
      ref = *parent;
      tg.name = *name;
    } else if (auto pn = c.req.params.find("pn"); pn != c.req.params.end()) {  // root:/{path} without the colon
      tg.name = pn->second;
    }
    auto& t = *c.tenant;
    std::lock_guard lk(t.mu);
    auto i = resolve_item(t, tg.key, ref);
    if (!i) return not_found(c);
    const auto& d = drive(t, tg.key);
    for (std::size_t k = 0; k < folders.size(); ++k) {
      auto child = child_named(d, *i, folders[k]);
      if (!child) {
        tg.missing.assign(folders.begin() + static_cast<std::ptrdiff_t>(k), folders.end());
        break;
      }
      if (!d.items[*child].folder)
        return graph_error(c.req, 409, "nameAlreadyExists", "'" + folders[k] + "' in the path is a file, not a folder.");
      i = child;
    }
    tg.item = *i;
    return tg;
  };
  // The operation for a target: by id (existing file) or by parent and name.
  auto target_op = [](const Target& tg, const char* kind, const std::string& conflict) {
    json op = {{"kind", kind}, {"drive", tg.key}};
    if (tg.name.empty() && std::string(kind) == "drive_put_file") {
      op["item"] = tg.item;
    } else {
      op["parent"] = tg.item;
      op["name"] = tg.name;
      op["conflict"] = conflict;
    }
    return op;
  };
  const std::string kConflictKey = "@microsoft.graph.conflictBehavior";
  auto conflict_of = [kConflictKey](GraphCtx& c, const json& body, const char* fallback) {
    if (body.contains(kConflictKey) && body[kConflictKey].is_string()) return body[kConflictKey].get<std::string>();
    return c.req.query_param(kConflictKey).value_or(fallback);
  };
  // fileSystemInfo as the client sets it; false when a timestamp is not ISO 8601.
  auto file_system_info = [](const json& item, json& op) {
    if (!item.contains("fileSystemInfo")) return true;
    const auto& f = item["fileSystemInfo"];
    if (!f.is_object()) return false;
    for (auto [from, to] : {std::pair{"createdDateTime", "fs_created"}, std::pair{"lastModifiedDateTime", "fs_modified"}}) {
      if (!f.contains(from)) continue;
      auto when = f[from].is_string() ? parse_iso_time(f[from].get<std::string>()) : std::nullopt;
      if (!when) return false;
      op[to] = *when;
    }
    return true;
  };
  auto written = [this](GraphCtx& c, std::uint32_t key, const json& result) {
    auto& t = *c.tenant;
    json j;
    {
      std::lock_guard lk(t.mu);
      j = drive_item_json_fn(t, key, result["index"].get<std::uint32_t>());
      j["@odata.context"] = base_url + "/" + c.version + "/$metadata#drives('" + drive_id(t, key) + "')/items/$entity";
    }
    return graph_json(c, result["status"].get<int>(), j);
  };
  auto bad_request = [this](GraphCtx& c, const std::string& message) {
    return graph_error(c.req, 400, "invalidRequest", message);
  };

  auto create_folder = [this, target_of, target_op, conflict_of, file_system_info, written, bad_request](GraphCtx& c) {
    auto body = json::parse(c.req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object() || !body.contains("name") || !body["name"].is_string())
      return bad_request(c, "The request body must be a driveItem with a name.");
    if (!body.contains("folder")) return bad_request(c, "Only folders can be created here: add \"folder\": {}.");
    auto tr = target_of(c);
    if (auto* e = std::get_if<net::Response>(&tr)) return std::move(*e);
    auto tg = std::get<Target>(tr);
    tg.name = body["name"].get<std::string>();
    json op = target_op(tg, "drive_create_folder", conflict_of(c, body, "fail"));
    if (!file_system_info(body, op)) return bad_request(c, "fileSystemInfo timestamps must be ISO 8601.");
    op["now"] = now();
    json result;
    if (auto refused = write_op(c.req, *c.tenant, op, result)) return std::move(*refused);
    return written(c, tg.key, result);
  };
  auto put_content = [this, target_of, target_op, conflict_of, written](GraphCtx& c) {
    if (c.req.body.size() > kSimpleUploadMax)
      return graph_error(c.req, 413, "invalidRequest", "Simple upload takes at most 250 MiB: use an upload session.");
    auto tr = target_of(c);
    if (auto* e = std::get_if<net::Response>(&tr)) return std::move(*e);
    auto tg = std::get<Target>(tr);
    // A simple upload by path creates the folders it names (OneDrive "upserts" the path;
    // inferred from OneDrive/onedrive-api-docs#83 and #364, the contract is silent).
    for (const auto& folder : tg.missing) {
      json fop = {{"kind", "drive_create_folder"}, {"drive", tg.key}, {"parent", tg.item}, {"name", folder},
                  {"conflict", "fail"}, {"now", now()}};
      json made;
      if (auto refused = write_op(c.req, *c.tenant, fop, made)) return std::move(*refused);
      tg.item = made["index"].get<std::uint32_t>();
    }
    json op = target_op(tg, "drive_put_file", conflict_of(c, json::object(), "replace"));
    op["now"] = now();
    op["base64"] = base64(c.req.body);
    json result;
    if (auto refused = write_op(c.req, *c.tenant, op, result)) return std::move(*refused);
    return written(c, tg.key, result);
  };
  auto create_session = [this, target_of, target_op, conflict_of, file_system_info, bad_request](GraphCtx& c) {
    auto body = c.req.body.empty() ? json::object() : json::parse(c.req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) return bad_request(c, "The request body must be a JSON object.");
    const json item = body.contains("item") && body["item"].is_object() ? body["item"] : json::object();
    auto tr = target_of(c);
    if (auto* e = std::get_if<net::Response>(&tr)) return std::move(*e);
    const auto tg = std::get<Target>(tr);
    // "The parent folder must exist before you call createSession" (OneDrive docs, quoted
    // in OneDrive/onedrive-api-docs#364; the contract is silent): sessions create no folders.
    if (!tg.missing.empty())
      return graph_error(c.req, 404, "itemNotFound",
                         "The folder '" + tg.missing.front() + "' does not exist: create it before the upload session.");
    json op = target_op(tg, "drive_put_file", conflict_of(c, item, "replace"));
    if (!file_system_info(item, op)) return bad_request(c, "fileSystemInfo timestamps must be ISO 8601.");
    try {  // refuse now what the commit would refuse (a taken name with "fail", a missing parent)
      std::lock_guard lk(c.tenant->mu);
      check_drive_write(*c.tenant, op);
    } catch (const Error& e) {
      return refused_write(c.req, e);
    }
    const std::string id = std::string(kDriveSessionPrefix) + base64(random_bytes(24), true, false);
    const double expires = now_precise() + kUploadSessionLifetime;
    UploadSession s;
    s.kind = UploadSession::drive_item;
    s.tenant = c.tenant->spec.tenant_id;
    s.size = item.contains("fileSize") && item["fileSize"].is_number_unsigned() ? item["fileSize"].get<std::uint64_t>() : 0;
    s.expires = expires;
    s.target = op;
    store_upload(id, std::move(s));
    json j = {{"@odata.context", base_url + "/" + c.version + "/$metadata#microsoft.graph.uploadSession"},
              {"uploadUrl", base_url + "/_upload/" + id},
              {"expirationDateTime", iso_time(static_cast<std::int64_t>(expires))},
              {"nextExpectedRanges", json::array({"0-"})}};
    return graph_json(c, 200, j);
  };
  // After 409 upload_name_conflict at commit, the finished session can be redirected to
  // another path: PUT .../root:/{path} {"@microsoft.graph.sourceUrl": uploadUrl, "name"?,
  // "@microsoft.graph.conflictBehavior"?} (contract 11). The session must be this
  // tenant's and complete; it is consumed when the write succeeds.
  auto redirect_session = [this, target_of, target_op, conflict_of, written, bad_request](GraphCtx& c) -> net::Response {
    auto body = json::parse(c.req.body, nullptr, false);
    const std::string kSource = "@microsoft.graph.sourceUrl";
    if (body.is_discarded() || !body.is_object() || !body.contains(kSource) || !body[kSource].is_string())
      return bad_request(c, "The request body must be a JSON object with @microsoft.graph.sourceUrl.");
    const std::string url = body[kSource], prefix = base_url + "/_upload/";
    if (url.rfind(prefix, 0) != 0) return bad_request(c, "@microsoft.graph.sourceUrl must be an upload session URL.");
    const std::string id = url.substr(prefix.size());
    auto tr = target_of(c);
    if (auto* e = std::get_if<net::Response>(&tr)) return std::move(*e);
    auto tg = std::get<Target>(tr);
    if (!tg.missing.empty())
      return graph_error(c.req, 404, "itemNotFound", "The folder '" + tg.missing.front() + "' does not exist.");
    if (body.contains("name") && body["name"].is_string()) tg.name = body["name"];
    if (tg.name.empty()) return bad_request(c, "The target needs a name.");
    UploadSession session;
    {
      std::lock_guard lk(umu);
      auto it = uploads.find(id);
      if (it == uploads.end() || it->second.expires < now_precise() || it->second.kind != UploadSession::drive_item ||
          it->second.tenant != c.tenant->spec.tenant_id)
        return graph_error(c.req, 404, "itemNotFound", "The upload session was not found or has expired.");
      if (!it->second.conflicted)
        return graph_error(c.req, 409, "invalidRequest", "The upload session is not complete: send the missing ranges first.");
      session = it->second;
    }
    json op = target_op(tg, "drive_put_file", conflict_of(c, body, "replace"));
    for (auto k : {"fs_created", "fs_modified"})
      if (session.target.contains(k)) op[k] = session.target[k];
    op["now"] = now();
    op["base64"] = base64(session.data);
    json result;
    if (auto refused = write_op(c.req, *c.tenant, op, result)) return std::move(*refused);
    {
      std::lock_guard lk(umu);
      uploads.erase(id);
      forget_session(id);
    }
    return written(c, tg.key, result);
  };
  for (auto [prefix, permission] : {std::pair{"/drives/{drive}", "Files.ReadWrite.All"},
                                    std::pair{"/users/{user}/drive", "Files.ReadWrite.All"},
                                    std::pair{"/sites/{site}/drive", "Sites.ReadWrite.All"}}) {
    const std::string p = prefix;
    add_sp("POST", p + "/root/children", permission, 2, create_folder);
    add_sp("POST", p + "/items/{item}/children", permission, 2, create_folder);
    add_sp("PUT", p + "/items/{item}/content", permission, 2, put_content);
    add_sp("PUT", p + "/items/{pc}/{nc}/content", permission, 2, put_content);
    add_sp("PUT", p + "/root:/{nc}/content", permission, 2, put_content);
    add_sp("POST", p + "/items/{item}/createUploadSession", permission, 2, create_session);
    add_sp("POST", p + "/items/{pc}/{nc}/createUploadSession", permission, 2, create_session);
    add_sp("POST", p + "/root:/{nc}/createUploadSession", permission, 2, create_session);
    add_sp("PUT", p + "/root:/{pn}", permission, 2, redirect_session);
    // Paths with folders between the parent and the name: {d1}/.../{dN}.
    std::string mid;
    for (int k = 1; k <= kMaxPathDepth; ++k) {
      mid += "/{d" + std::to_string(k) + "}";
      add_sp("PUT", p + "/items/{pc}" + mid + "/{nc}/content", permission, 2, put_content);
      add_sp("PUT", p + "/root:" + mid + "/{nc}/content", permission, 2, put_content);
      add_sp("POST", p + "/items/{pc}" + mid + "/{nc}/createUploadSession", permission, 2, create_session);
      add_sp("POST", p + "/root:" + mid + "/{nc}/createUploadSession", permission, 2, create_session);
      add_sp("PUT", p + "/root:" + mid + "/{pn}", permission, 2, redirect_session);
    }
  }

  // ------------------------------------------------------------ sites
  auto site_of = [this](GraphCtx& c) -> std::variant<std::uint32_t, net::Response> {
    auto& t = *c.tenant;
    std::lock_guard lk(t.mu);
    const auto& ref = c.req.params["site"];
    if (ref == "root") {
      if (site_count(t.spec) == 0) return graph_error(c.req, 404, "itemNotFound", "Requested site could not be found");
      return 0u;
    }
    auto s = parse_site_id(t, ref);
    if (!s) return graph_error(c.req, 404, "itemNotFound", "Requested site could not be found");
    return *s;
  };
  add_sp("GET", "/sites", "Sites.ReadWrite.All", 2, [this](GraphCtx& c) {
    auto& t = *c.tenant;
    const auto search = c.req.query_param("search");
    json value = json::array();
    {
      std::lock_guard lk(t.mu);
      for (std::uint32_t s = 0; s < site_count(t.spec); ++s) {
        auto j = site_json(t, s);
        if (search && *search != "*" && !search->empty()) {
          std::string hay = j["displayName"].get<std::string>(), needle = *search;
          for (auto& ch : hay) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          for (auto& ch : needle) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          if (hay.find(needle) == std::string::npos) continue;
        }
        value.push_back(j);
      }
    }
    return graph_json(c, 200, {{"@odata.context", base_url + "/" + c.version + "/$metadata#sites"}, {"value", value}});
  });
  add_sp("GET", "/sites/{site}", "Sites.ReadWrite.All", 1, [this, site_of](GraphCtx& c) {
    auto r = site_of(c);
    if (auto* e = std::get_if<net::Response>(&r)) return std::move(*e);
    json j;
    {
      std::lock_guard lk(c.tenant->mu);
      j = site_json(*c.tenant, std::get<std::uint32_t>(r));
    }
    j["@odata.context"] = base_url + "/" + c.version + "/$metadata#sites/$entity";
    return graph_json(c, 200, j);
  });
  add_sp("GET", "/sites/{site}/sites", "Sites.ReadWrite.All", 2, [this, site_of](GraphCtx& c) {
    auto r = site_of(c);
    if (auto* e = std::get_if<net::Response>(&r)) return std::move(*e);
    const auto s = std::get<std::uint32_t>(r);
    json value = json::array();
    {
      std::lock_guard lk(c.tenant->mu);
      for (std::uint32_t k = 0; k < site_count(c.tenant->spec); ++k)
        if (site_parent(c.tenant->spec, k) == s) value.push_back(site_json(*c.tenant, k));
    }
    return graph_json(c, 200, {{"@odata.context", base_url + "/" + c.version + "/$metadata#sites"}, {"value", value}});
  });
  add_sp("GET", "/sites/{site}/drives", "Sites.ReadWrite.All", 2, [this, site_of, drive_json](GraphCtx& c) {
    auto r = site_of(c);
    if (auto* e = std::get_if<net::Response>(&r)) return std::move(*e);
    const auto s = std::get<std::uint32_t>(r);
    json value = json::array();
    {
      std::lock_guard lk(c.tenant->mu);
      for (std::uint32_t l = 0; l < site_libraries(s); ++l) {
        auto j = drive_json(*c.tenant, site_drive_key(s, l));
        j.erase("quota");
        value.push_back(j);
      }
    }
    return graph_json(c, 200, {{"@odata.context", base_url + "/" + c.version + "/$metadata#drives"}, {"value", value}});
  });

  // Lists: the document library ("Documents") and a generic list ("Issue tracker").
  auto list_json = [this](Tenant& t, std::uint32_t s, int which) {
    json j = {{"id", list_id(t, s, which)},
              {"name", which == 0 ? "Shared Documents" : "Issue tracker"},
              {"displayName", which == 0 ? "Documents" : "Issue tracker"},
              {"createdDateTime", iso_time(kBaseEpoch - 500 * 86400 + s * 86400)},
              {"lastModifiedDateTime", iso_time(kBaseEpoch - 86400)},
              {"list", {{"hidden", false}, {"template", which == 0 ? "documentLibrary" : "genericList"}, {"contentTypesEnabled", false}}}};
    j["webUrl"] = site_json(t, s)["webUrl"].get<std::string>() + (which == 0 ? "/Shared%20Documents" : "/Lists/IssueTracker");
    (void)this;
    return j;
  };
  auto list_of = [](Tenant& t, std::uint32_t s, const std::string& ref) { return parse_list_id(t, s, ref); };
  add_sp("GET", "/sites/{site}/lists", "Sites.ReadWrite.All", 2, [this, site_of, list_json](GraphCtx& c) {
    auto r = site_of(c);
    if (auto* e = std::get_if<net::Response>(&r)) return std::move(*e);
    const auto s = std::get<std::uint32_t>(r);
    json value = json::array();
    {
      std::lock_guard lk(c.tenant->mu);
      for (int w = 0; w < 2; ++w) value.push_back(list_json(*c.tenant, s, w));
    }
    return graph_json(c, 200, {{"@odata.context", base_url + "/" + c.version + "/$metadata#sites('" + c.req.params["site"] + "')/lists"},
                               {"value", value}});
  });
  add_sp("GET", "/sites/{site}/lists/{list}", "Sites.ReadWrite.All", 1, [this, site_of, list_json, list_of](GraphCtx& c) {
    auto r = site_of(c);
    if (auto* e = std::get_if<net::Response>(&r)) return std::move(*e);
    const auto s = std::get<std::uint32_t>(r);
    json j;
    {
      std::lock_guard lk(c.tenant->mu);
      auto w = list_of(*c.tenant, s, c.req.params["list"]);
      if (!w) return graph_error(c.req, 404, "itemNotFound", "The list could not be found.");
      j = list_json(*c.tenant, s, *w);
    }
    j["@odata.context"] = base_url + "/" + c.version + "/$metadata#sites('" + c.req.params["site"] + "')/lists/$entity";
    return graph_json(c, 200, j);
  });

  // List items of the generic list (the library's items are its files: use the drive).
  auto list_item_json = [](Tenant& t, std::uint32_t s, std::uint32_t i, const ListEntry& e, bool fields) {
    const std::string guid = guid_from(mix(mix(t.spec.seed, 0x6c69), s), i);
    json j = {{"@odata.etag", "\"" + guid + "," + std::to_string(e.version + 1) + "\""},
              {"id", std::to_string(i + 1)},
              {"eTag", "\"" + guid + "," + std::to_string(e.version + 1) + "\""},
              {"createdDateTime", iso_time(kBaseEpoch - 200 * 86400 + static_cast<std::int64_t>(i) * 3600)},
              {"lastModifiedDateTime", iso_time(e.modified)},
              {"webUrl", site_json(t, s)["webUrl"].get<std::string>() + "/Lists/IssueTracker/DispForm.aspx?ID=" + std::to_string(i + 1)},
              {"contentType", {{"id", "0x0100" + to_hex(sha1(guid)).substr(0, 32)}, {"name", "Item"}}}};
    if (!e.alive) {
      j = {{"id", std::to_string(i + 1)}, {"@removed", {{"reason", "deleted"}}}};
      return j;
    }
    if (fields) {
      auto f = list_item_fields(t, s, i, e);
      f["@odata.etag"] = j["eTag"];
      f["id"] = std::to_string(i + 1);
      j["fields"] = f;
    }
    return j;
  };
  auto expands_fields = [](GraphCtx& c) {
    auto x = c.req.query_param("$expand").value_or(c.req.query_param("expand").value_or(""));
    return x.find("fields") != std::string::npos;
  };
  add_sp("GET", "/sites/{site}/lists/{list}/items/delta", "Sites.ReadWrite.All", 0,
         [this, site_of, list_of, list_item_json](GraphCtx& c) {
    auto r = site_of(c);
    if (auto* e = std::get_if<net::Response>(&r)) return std::move(*e);
    const auto s = std::get<std::uint32_t>(r);
    auto& t = *c.tenant;
    std::uint64_t base = 0, snap = 0;
    std::size_t cursor = 0;
    bool latest = false;
    std::optional<std::uint32_t> token_epoch;
    if (auto tok = c.req.query_param("token")) {
      if (*tok == "latest") {
        latest = true;
      } else {
        auto sealed = unseal(*tok);
        if (!sealed || sealed->value("k", "") != "li" || sealed->value("s", std::uint32_t{0}) != s)
          return graph_error(c.req, 400, "invalidRequest", "Provided sync token is malformed", false);
        base = sealed->value("base", std::uint64_t{0});
        snap = sealed->value("snap", std::uint64_t{0});
        cursor = sealed->value("cur", std::size_t{0});
        token_epoch = sealed->value("ep", std::uint32_t{0});
      }
    }
    const std::string link = base_url + "/" + c.version + "/sites/" + c.req.params["site"] + "/lists/" + c.req.params["list"] +
                             "/items/delta";
    json value = json::array();
    bool more = false;
    std::uint64_t current;
    std::uint32_t epoch;
    {
      std::lock_guard lk(t.mu);
      auto w = list_of(t, s, c.req.params["list"]);
      if (!w) return graph_error(c.req, 404, "itemNotFound", "The list could not be found.");
      auto& st = site_state(t, s);
      epoch = st.delta_epoch[static_cast<std::size_t>(*w)];
      if (token_epoch && *token_epoch != epoch) {
        // The sync state was dropped (expire_delta): as a drive delta does (contract 8.1).
        auto res = graph_error(c.req, 410, "resyncRequired", kResyncMessage, true, "resyncChangesApplyDifferences");
        res.headers.set("Location", link);
        return res;
      }
      current = st.seq;
      if (snap == 0) snap = current;
      if (*w == 1 && !latest) {
        std::size_t i = cursor;
        for (; i < st.items.size() && value.size() < 200; ++i) {
          const auto& e = st.items[i];
          if (base == 0 ? !e.alive : e.seq <= base) continue;
          value.push_back(list_item_json(t, s, static_cast<std::uint32_t>(i), e, true));
        }
        more = i < st.items.size();
        cursor = i;
      }
    }
    json body = {{"@odata.context", base_url + "/" + c.version + "/$metadata#Collection(listItem)"}, {"value", value}};
    if (more)
      body["@odata.nextLink"] =
          link + "?token=" + seal({{"k", "li"}, {"s", s}, {"base", base}, {"snap", snap}, {"cur", cursor}, {"ep", epoch}});
    else
      body["@odata.deltaLink"] = link + "?token=" + seal({{"k", "li"}, {"s", s}, {"base", latest ? current : snap}, {"ep", epoch}});
    return graph_json(c, 200, body);
  });
  add_sp("GET", "/sites/{site}/lists/{list}/items", "Sites.ReadWrite.All", 2,
         [this, site_of, list_of, list_item_json, expands_fields](GraphCtx& c) {
    auto r = site_of(c);
    if (auto* e = std::get_if<net::Response>(&r)) return std::move(*e);
    const auto s = std::get<std::uint32_t>(r);
    auto& t = *c.tenant;
    json value = json::array();
    {
      std::lock_guard lk(t.mu);
      auto w = list_of(t, s, c.req.params["list"]);
      if (!w) return graph_error(c.req, 404, "itemNotFound", "The list could not be found.");
      if (*w == 1) {
        auto& st = site_state(t, s);
        for (std::uint32_t i = 0; i < st.items.size(); ++i)
          if (st.items[i].alive) value.push_back(list_item_json(t, s, i, st.items[i], expands_fields(c)));
      }
    }
    return graph_json(c, 200, {{"@odata.context", base_url + "/" + c.version + "/$metadata#sites('" + c.req.params["site"] +
                                                      "')/lists('" + c.req.params["list"] + "')/items"},
                               {"value", value}});
  });
  add_sp("GET", "/sites/{site}/lists/{list}/items/{li}", "Sites.ReadWrite.All", 1,
         [this, site_of, list_of, list_item_json, expands_fields](GraphCtx& c) {
    auto r = site_of(c);
    if (auto* e = std::get_if<net::Response>(&r)) return std::move(*e);
    const auto s = std::get<std::uint32_t>(r);
    auto& t = *c.tenant;
    json j;
    {
      std::lock_guard lk(t.mu);
      auto w = list_of(t, s, c.req.params["list"]);
      if (!w || *w != 1) return graph_error(c.req, 404, "itemNotFound", "The list item could not be found.");
      auto& st = site_state(t, s);
      std::size_t i = 0;
      try {
        i = std::stoul(c.req.params["li"]) - 1;
      } catch (...) {
        i = st.items.size();
      }
      if (i >= st.items.size() || !st.items[i].alive)
        return graph_error(c.req, 404, "itemNotFound", "The list item could not be found.");
      j = list_item_json(t, s, static_cast<std::uint32_t>(i), st.items[i], expands_fields(c));
    }
    j["@odata.context"] = base_url + "/" + c.version + "/$metadata#sites('" + c.req.params["site"] + "')/lists('" +
                          c.req.params["list"] + "')/items/$entity";
    return graph_json(c, 200, j);
  });
}

}  // namespace m365vault::emulator
