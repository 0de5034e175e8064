#include "m365vault/export/zip_export.hpp"

#include <array>
#include <cctype>

#include "m365vault/core/error.hpp"
#include "m365vault/scheduler/cron.hpp"

namespace m365vault::exporting {

using boost::asio::awaitable;
using nlohmann::json;

namespace {

std::string_view category_folder(storage::Category c) {
  switch (c) {
    case storage::Category::mail: return "Mail";
    case storage::Category::contacts: return "Contacts";
    case storage::Category::calendar: return "Calendar";
    case storage::Category::onedrive: return "OneDrive";
    case storage::Category::sharepoint: return "SharePoint";
    case storage::Category::teams: return "Teams";
  }
  return "Other";
}

std::int64_t mtime_of(const storage::ItemVersion& v) {
  for (auto* t : {&v.modified_at, &v.received_at, &v.sent_at})
    if (*t)
      if (auto p = scheduler::parse_rfc3339(**t)) return p->time_since_epoch().count();
  return 0;
}

// Content that deflate cannot shrink is stored as it is (faster, same size).
bool worth_deflating(std::string_view name) {
  auto dot = name.rfind('.');
  if (dot == std::string_view::npos) return true;
  std::string ext(name.substr(dot + 1));
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::array<std::string_view, 26> packed = {
      "zip", "gz", "tgz", "bz2", "xz", "zst", "7z", "rar", "jpg", "jpeg", "png", "gif", "webp", "heic",
      "mp3", "mp4", "m4a", "m4v", "mov", "avi", "mkv", "docx", "xlsx", "pptx", "one", "pdf"};
  for (auto p : packed)
    if (ext == p) return false;
  return true;
}

std::pair<std::string, std::string> split_last(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return {"", path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

// Collects a whole item (small items are read before their file is begun).
class StringSink : public net::BodySink {
 public:
  explicit StringSink(std::uint64_t reserve) { data.reserve(reserve); }
  awaitable<void> write(std::string_view bytes) override {
    data.append(bytes);
    co_return;
  }
  std::string data;
};

}  // namespace

struct ZipExport::OpenFile {
  std::string path;
  storage::crypto::Sha256 sha;
  std::uint64_t size = 0;
  json items = json::array();
};

// Streams a large item's bytes into the open file.
class ZipExport::EntrySink : public net::BodySink {
 public:
  explicit EntrySink(ZipExport& z) : z_(z) {}
  awaitable<void> write(std::string_view bytes) override { co_await z_.put(bytes); }

 private:
  ZipExport& z_;
};

ZipExport::ZipExport(ExportOptions opts, net::BodySink& out) : opts_(opts), out_(out) {}
ZipExport::~ZipExport() = default;

json ZipExport::item_ref(const ExportEntry& e) {
  const auto& v = e.version;
  return {{"item_id", v.item_id}, {"version_id", v.version_id}, {"owner_id", v.owner_id},
          {"category", std::string(storage::to_string(v.category))}, {"kind", v.kind}, {"name", v.name}};
}

std::string ZipExport::folder_of(const ExportEntry& e) {
  std::string f = safe_component(e.owner_label);
  f += '/';
  f += category_folder(e.version.category);
  if (e.container_path) {
    auto p = safe_path(*e.container_path);
    if (!p.empty()) f += "/" + p;
  }
  return f;
}

awaitable<void> ZipExport::drain() {
  auto bytes = zip_.take();
  summary_.zip_bytes += bytes.size();
  if (!bytes.empty()) co_await out_.write(bytes);
}

awaitable<void> ZipExport::put(std::string_view bytes, bool quote) {
  if (quoter_ && quote) {
    std::string quoted;
    quoted.reserve(bytes.size() + 16);
    quoter_->feed(bytes, quoted);
    file_->sha.update(quoted);
    file_->size += quoted.size();
    zip_.write(quoted);
  } else {
    file_->sha.update(bytes);
    file_->size += bytes.size();
    zip_.write(bytes);
  }
  co_await drain();
}

void ZipExport::open_file(const std::string& path, std::int64_t mtime, bool deflate) {
  zip_.begin(path, mtime, deflate);
  file_ = std::make_unique<OpenFile>();
  file_->path = path;
}

awaitable<void> ZipExport::close_file(const std::string* error) {
  if (!file_) co_return;
  zip_.end();
  json row = {{"path", file_->path}, {"size", file_->size}, {"sha256", storage::crypto::to_hex(file_->sha.finish())},
              {"items", std::move(file_->items)}};
  if (error) {
    row["complete"] = false;
    row["error"] = *error;
  }
  summary_.content_bytes += file_->size;
  ++summary_.files;
  files_.push_back(std::move(row));
  file_.reset();
  co_await drain();
}

void ZipExport::fault(const ExportEntry& e, const std::optional<std::string>& path, const std::string& error) {
  json f = item_ref(e);
  f["error"] = error;
  if (path) f["path"] = *path;
  faults_.push_back(std::move(f));
  ++summary_.faults;
}

awaitable<void> ZipExport::add_whole(const std::string& path, std::int64_t mtime, bool deflate, std::string_view bytes,
                                     const ExportEntry& e) {
  open_file(path, mtime, deflate);
  file_->items.push_back(item_ref(e));
  co_await put(bytes);
  co_await close_file(nullptr);
  ++summary_.items;
}

// Ends the mbox being written, or writes the .ics of the calendar whose events
// were gathered.
awaitable<void> ZipExport::close_group() {
  if (quoter_) {
    quoter_.reset();  // each message was finished as it ended
    co_await close_file(nullptr);
  } else if (!group_events_.empty()) {
    auto [parent, base] = split_last(group_folder_);
    auto path = names_.unique(parent, base, ".ics");
    std::string ics;
    std::optional<std::string> error;
    try {
      ics = icalendar_from_graph(group_events_);
    } catch (const Error& err) {
      error = err.what();
    }
    if (error) {
      // One bad event: the others still go out, each alone, so only it is lost.
      std::vector<json> ok, ok_refs;
      for (std::size_t i = 0; i < group_events_.size(); ++i) {
        try {
          (void)icalendar_from_graph({group_events_[i]});
          ok.push_back(std::move(group_events_[i]));
          ok_refs.push_back(std::move(group_event_refs_[i]));
        } catch (const Error& err) {
          json f = group_event_refs_[i];
          f["error"] = std::string("event: ") + err.what();
          faults_.push_back(std::move(f));
          ++summary_.faults;
        }
      }
      group_events_ = std::move(ok);
      group_event_refs_ = std::move(ok_refs);
      ics = group_events_.empty() ? std::string() : icalendar_from_graph(group_events_);
    }
    if (!group_events_.empty()) {
      open_file(path, group_mtime_, true);
      for (auto& r : group_event_refs_) file_->items.push_back(std::move(r));
      summary_.items += group_events_.size();
      co_await put(ics);
      co_await close_file(nullptr);
    }
  }
  group_events_.clear();
  group_event_refs_.clear();
  group_key_.clear();
  group_mtime_ = 0;
}

namespace {

// The suffix an item's stored bytes take in the zip: mail is its MIME (.eml);
// a Teams post, reply or channel is Graph's JSON as backed up (.json), its inline
// images are themselves; contacts and events are converted elsewhere (.vcf, .ics);
// files keep their own names.
std::string stored_suffix(const storage::ItemVersion& v) {
  if (v.category == storage::Category::mail && v.kind == "message") return ".eml";
  if (v.category != storage::Category::teams) return "";
  if (v.kind != "hosted_content") return ".json";
  const auto type = v.content_type.value_or("");
  if (type == "image/png") return ".png";
  if (type == "image/jpeg") return ".jpg";
  if (type == "image/gif") return ".gif";
  return "";
}

}  // namespace

awaitable<void> ZipExport::add(const ExportEntry& e, ContentSource& source) {
  const auto& v = e.version;
  auto folder = folder_of(e);
  const bool mail = v.kind == "message" && v.category == storage::Category::mail;
  const bool to_mbox = opts_.mbox && mail;
  const std::string suffix = stored_suffix(v);
  const bool deflate = mail || suffix == ".json" || worth_deflating(v.name);
  const bool to_ics = v.kind == "event";
  std::string key = (to_mbox ? "mbox:" : to_ics ? "ics:" : "") + folder;
  if (!group_key_.empty() && key != group_key_) co_await close_group();

  if (v.content_blobs.empty() && v.content_size.value_or(0) > 0) {
    fault(e, std::nullopt, "no stored content (the item's content was not backed up)");
    co_return;
  }
  if (v.kind == "missing") {
    fault(e, std::nullopt, "the version is no longer in the catalog (pruned since the export was listed)");
    co_return;
  }
  if (v.content_blobs.empty() && v.kind != "file") {
    // A OneNote notebook (package), a shared item (remote): nothing of its own to export.
    json s = item_ref(e);
    s["reason"] = "a '" + v.kind + "' has no content of its own in the backup";
    skipped_.push_back(std::move(s));
    ++summary_.skipped;
    co_return;
  }
  const std::uint64_t size = static_cast<std::uint64_t>(v.content_size.value_or(0));
  const std::int64_t mtime = mtime_of(v);

  if (size > kWholeItemLimit && !to_ics && v.kind != "contact") {
    // Large: streamed. A read that fails midway leaves the file short, marked so.
    std::string path;
    if (to_mbox) {
      if (!quoter_) {
        auto [parent, base] = split_last(folder);
        open_file(names_.unique(parent, base, ".mbox"), mtime, true);
        quoter_ = std::make_unique<MboxQuoter>();
        group_key_ = key;
      }
      path = file_->path;
      auto from = mbox_from_line(v.sender, v.received_at ? v.received_at : v.sent_at);
      co_await put(from, false);
    } else {
      path = names_.unique(folder, mail ? v.subject.value_or(v.name) : v.name, suffix);
      open_file(path, mtime, deflate);
    }
    file_->items.push_back(item_ref(e));
    std::optional<std::string> error;
    EntrySink sink(*this);
    try {
      co_await source.read(v, sink);
    } catch (const Error& err) {
      error = err.what();
    }
    if (error) {
      fault(e, path, *error);
      if (quoter_) {
        // The mbox goes on; this message is cut short and the manifest says so.
        file_->items.back()["complete"] = false;
        std::string tail;
        quoter_->finish(tail);
        quoter_ = std::make_unique<MboxQuoter>();
        co_await put(tail, false);
      } else {
        co_await close_file(&*error);
      }
      co_return;
    }
    ++summary_.items;
    if (quoter_) {
      std::string tail;
      quoter_->finish(tail);
      quoter_ = std::make_unique<MboxQuoter>();
      co_await put(tail, false);
    } else {
      co_await close_file(nullptr);
    }
    co_return;
  }

  // Small: read whole first, so a damaged item is only a fault.
  StringSink whole(size);
  std::optional<std::string> error;
  try {
    co_await source.read(v, whole);
  } catch (const Error& err) {
    error = err.what();
  }
  if (error) {
    fault(e, std::nullopt, *error);
    co_return;
  }
  if (v.content_sha256) {
    auto got = storage::crypto::to_hex(storage::crypto::sha256(whole.data));
    if (got != storage::crypto::to_hex(*v.content_sha256)) {
      fault(e, std::nullopt, "content does not match its stored SHA-256");
      co_return;
    }
  }

  if (to_ics) {
    json event;
    try {
      event = json::parse(whole.data);
    } catch (const json::exception& err) {
      fault(e, std::nullopt, std::string("event: stored JSON does not parse: ") + err.what());
      co_return;
    }
    if (group_key_ != key) {
      group_key_ = key;
      group_folder_ = folder;
    }
    group_mtime_ = std::max(group_mtime_, mtime);
    group_events_.push_back(std::move(event));
    group_event_refs_.push_back(item_ref(e));
    co_return;
  }
  if (v.kind == "contact") {
    std::string card;
    try {
      card = vcard_from_graph(json::parse(whole.data));
    } catch (const json::exception& err) {
      error = std::string("contact: stored JSON does not parse: ") + err.what();
    } catch (const Error& err) {
      error = std::string("contact: ") + err.what();
    }
    if (error) {
      fault(e, std::nullopt, *error);
      co_return;
    }
    auto path = names_.unique(folder, v.name, ".vcf");
    co_await add_whole(path, mtime, true, card, e);
    co_return;
  }
  if (to_mbox) {
    if (!quoter_) {
      auto [parent, base] = split_last(folder);
      open_file(names_.unique(parent, base, ".mbox"), mtime, true);
      quoter_ = std::make_unique<MboxQuoter>();
      group_key_ = key;
    }
    file_->items.push_back(item_ref(e));
    auto from = mbox_from_line(v.sender, v.received_at ? v.received_at : v.sent_at);
    co_await put(from, false);
    co_await put(whole.data);
    std::string tail;
    quoter_->finish(tail);
    quoter_ = std::make_unique<MboxQuoter>();
    co_await put(tail, false);
    ++summary_.items;
    co_return;
  }
  auto path = names_.unique(folder, mail ? v.subject.value_or(v.name) : v.name, suffix);
  co_await add_whole(path, mtime, deflate, whole.data, e);
}

awaitable<void> ZipExport::finish(const json& about) {
  co_await close_group();
  json manifest = {{"format", "m365vault-export/1"},
                   {"export", about},
                   {"summary", {{"items", summary_.items}, {"files", summary_.files}, {"faults", summary_.faults},
                                {"skipped", summary_.skipped}, {"bytes", summary_.content_bytes}}},
                   {"files", std::move(files_)},
                   {"faults", std::move(faults_)},
                   {"skipped", std::move(skipped_)}};
  auto text = manifest.dump(1);
  zip_.begin(names_.unique("", "manifest", ".json"), 0, true);
  zip_.write(text);
  zip_.end();
  zip_.finish();
  co_await drain();
}

}  // namespace m365vault::exporting
