#include "m365vault/export/zip_export.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "m365vault/core/error.hpp"
#include "m365vault/export/conversation.hpp"
#include "m365vault/scheduler/cron.hpp"
#include "spool.hpp"

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

struct ZipExport::Conversation {
  ConversationHtml html;
  ConversationJson js;
  Spool spool;  // messages.json, while messages.html is the open entry
  std::string json_path;
  json refs = json::array();
  std::int64_t mtime = 0;
};

// Streams a large item's bytes into the open file.
class ZipExport::EntrySink : public net::BodySink {
 public:
  explicit EntrySink(ZipExport& z) : z_(z) {}
  awaitable<void> write(std::string_view bytes) override { co_await z_.put(bytes); }

 private:
  ZipExport& z_;
};

ZipExport::ZipExport(ExportOptions opts, net::BodySink& out)
    : opts_(opts), out_(out), files_(std::make_unique<Spool>()) {}
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
  const std::string line = (summary_.files > 1 ? ",\n  " : "\n  ") + row.dump();
  files_->append(line);
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
  } else if (conv_) {
    const std::string page_end = conv_->html.end();
    co_await put(page_end);
    co_await close_file(nullptr);
    conv_->spool.append(conv_->js.end());
    conv_->spool.rewind();
    open_file(conv_->json_path, conv_->mtime, true);
    file_->items = std::move(conv_->refs);
    for (;;) {
      const std::string chunk = conv_->spool.next(1 << 16);
      if (chunk.empty()) break;
      co_await put(chunk);
    }
    co_await close_file(nullptr);
    conv_.reset();
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
  if (v.kind != "hosted_content") return ".json";  // a channel's own item (messages go to its page)
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
  const bool teams_message = v.kind == "message" && v.category == storage::Category::teams;
  std::string key = (to_mbox ? "mbox:" : to_ics ? "ics:" : teams_message ? "teams:" : "") + folder;
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

  if (size > kWholeItemLimit && !to_ics && v.kind != "contact" && !teams_message) {
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
      note_image(folder, e, path);
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

  if (teams_message) {
    co_await add_message(e, folder, key, whole.data, mtime);
    co_return;
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
  note_image(folder, e, path);
}

// An inline image written: its page links to it by its path beside the page.
void ZipExport::note_image(const std::string& folder, const ExportEntry& e, const std::string& path) {
  if (e.version.kind != "hosted_content" || e.version.category != storage::Category::teams) return;
  if (folder != images_folder_) {
    images_.clear();
    images_folder_ = folder;
  }
  images_[e.version.graph_id] = path.substr(folder.size() + 1);
}

// One Teams post or reply onto its channel's page and into its JSON file. Its
// graph id is "<channel>/<post>" or "<channel>/<post>/<reply>".
awaitable<void> ZipExport::add_message(const ExportEntry& e, const std::string& folder, const std::string& key,
                                       const std::string& stored, std::int64_t mtime) {
  const auto& v = e.version;
  json m;
  std::optional<std::string> error;
  try {
    m = json::parse(stored);
    if (!m.is_object()) error = std::string("message: stored JSON is a ") + m.type_name() + ", not an object";
  } catch (const json::exception& err) {
    error = std::string("message: stored JSON does not parse: ") + err.what();
  }
  if (error) {
    fault(e, std::nullopt, *error);
    co_return;
  }
  const bool reply = std::count(v.graph_id.begin(), v.graph_id.end(), '/') >= 2;
  if (!conv_) {
    conv_ = std::make_unique<Conversation>();
    group_key_ = key;
    open_file(names_.unique(folder, "messages", ".html"), mtime, true);
    conv_->json_path = names_.unique(folder, "messages", ".json");
    const std::string channel = split_last(e.container_path.value_or("")).second;
    const std::string head = conv_->html.begin(channel.empty() ? "(channel)" : channel, e.owner_label);
    co_await put(head);
    conv_->spool.append(conv_->js.begin());
  }
  if (folder != images_folder_) images_.clear();
  // <img src=".../hostedContents/<id>/$value"> -> the image exported beside the page.
  const ImageLink link = [&](std::string_view src) -> std::optional<std::string> {
    static constexpr std::string_view kHosted = "/hostedContents/";
    auto at = src.find(kHosted);
    if (at == std::string_view::npos) return std::nullopt;
    auto id = src.substr(at + kHosted.size());
    id = id.substr(0, id.find('/'));
    auto it = images_.find(v.graph_id + "/hc/" + std::string(id));
    if (it == images_.end()) return std::nullopt;
    return it->second;
  };
  std::string piece;
  try {
    piece = conv_->html.message(m, reply, link);
  } catch (const Error& err) {
    error = std::string("message: ") + err.what();
  }
  if (error) {
    fault(e, std::nullopt, *error);
    co_return;
  }
  co_await put(piece);
  conv_->spool.append(conv_->js.message(stored, reply, v.item_id, v.version_id));
  auto ref = item_ref(e);
  file_->items.push_back(ref);
  conv_->refs.push_back(std::move(ref));
  conv_->mtime = std::max(conv_->mtime, mtime);
  ++summary_.items;
}

awaitable<void> ZipExport::finish(const json& about) {
  co_await close_group();
  // The file rows wait in a temporary file (one line each), so the manifest is
  // written from there rather than held: its head, the rows, then the faults and
  // the skipped items (a few, normally).
  json head = {{"format", "m365vault-export/1"},
               {"export", about},
               {"summary", {{"items", summary_.items}, {"files", summary_.files}, {"faults", summary_.faults},
                            {"skipped", summary_.skipped}, {"bytes", summary_.content_bytes}}}};
  std::string text = head.dump(1);
  text.pop_back();  // the closing '}'
  text += ",\n \"files\": [";
  zip_.begin(names_.unique("", "manifest", ".json"), 0, true);
  zip_.write(text);
  co_await drain();
  files_->rewind();
  for (;;) {
    const std::string chunk = files_->next(1 << 16);
    if (chunk.empty()) break;
    zip_.write(chunk);
    co_await drain();
  }
  text = "\n ],\n \"faults\": " + faults_.dump() + ",\n \"skipped\": " + skipped_.dump() + "\n}\n";
  zip_.write(text);
  zip_.end();
  zip_.finish();
  co_await drain();
}

}  // namespace m365vault::exporting
