// The restore run: the selection walked page by page, containers mapped to the
// target (found or created), items written through Graph (contract §11), each
// outcome recorded. See restore.hpp and docs/restore.md.
#include "m365vault/restore/restore.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>

#include "m365vault/backup/backup.hpp"
#include "m365vault/backup/concurrent.hpp"
#include "m365vault/core/error.hpp"
#include "m365vault/core/semaphore.hpp"
#include "m365vault/core/text.hpp"
#include "m365vault/graph/errors.hpp"
#include "m365vault/graph/pager.hpp"
#include "m365vault/scheduler/progress.hpp"
#include "m365vault/storage/crypto.hpp"
#include "mime.hpp"

namespace m365vault::restore {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using json = nlohmann::json;
using storage::Category;
using storage::PgConnection;

namespace {

// A path segment for Graph URLs (drive item names).
std::string segment(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// Properties Graph assigns (or that would point at the old item), dropped before a
// create and before comparing: the emulator manifest's list (docs/emulator.md).
json clean_pim(json j) {
  if (!j.is_object()) return json::object();
  for (auto it = j.begin(); it != j.end();) {
    if (it.key().find('@') != std::string::npos) it = j.erase(it);
    else ++it;
  }
  for (auto k : {"id", "changeKey", "createdDateTime", "lastModifiedDateTime", "parentFolderId", "calendar", "webLink",
                 "iCalUId", "seriesMasterId", "transactionId"})
    j.erase(k);
  return j;
}

// An event as written: attendees moved into the body so that creating it sends no
// invitation (contract §11), the body otherwise unchanged.
json without_attendees(json e) {
  auto it = e.find("attendees");
  if (it == e.end() || !it->is_array() || it->empty()) {
    e.erase("attendees");
    return e;
  }
  std::string list;
  for (auto& a : *it) {
    const json& ea = a.contains("emailAddress") ? a["emailAddress"] : a;
    std::string who = ea.value("name", "");
    std::string addr = ea.value("address", "");
    if (!addr.empty()) who += (who.empty() ? "" : " ") + ("<" + addr + ">");
    std::string type = a.value("type", "");
    list += (list.empty() ? "" : ", ") + who + (type.empty() ? "" : " (" + type + ")");
  }
  e.erase("attendees");
  json body = e.value("body", json{{"contentType", "text"}, {"content", ""}});
  const bool html = ascii_lower(body.value("contentType", "text")) == "html";
  std::string content = body.value("content", "");
  const std::string note = "Attendees (restored by m365vault; no invitations were sent): " + list;
  content += html ? "<p>" + note + "</p>" : "\n\n" + note;
  body["content"] = content;
  e["body"] = body;
  return e;
}

// Every property of `want` has the same value in `have` (the server may add more).
bool subset_equal(const json& want, const json& have) {
  if (!want.is_object()) return want == have;
  if (!have.is_object()) return false;
  for (auto it = want.begin(); it != want.end(); ++it) {
    auto h = have.find(it.key());
    if (h == have.end()) {
      if (it.value().is_null() || (it.value().is_array() && it.value().empty())) continue;
      return false;
    }
    if (!subset_equal(it.value(), *h)) return false;
  }
  return true;
}

// A series master's edits beyond its recurrence, taken out of its stored JSON (they
// are read-only on the master and written occurrence by occurrence after it): the
// exceptions the backup read with it (`exceptionOccurrences`, each with its
// `originalStart`) and the dates of the cancelled occurrences ("OID.{master}.{date}").
struct SeriesEdits {
  json exceptions = json::array();
  std::vector<std::string> cancelled_dates;  // YYYY-MM-DD, sorted
  bool has_cancelled = false;                // the JSON listed them (possibly none)
  bool empty() const { return exceptions.empty() && cancelled_dates.empty(); }
};

SeriesEdits take_series_edits(json& e) {
  SeriesEdits out;
  if (auto it = e.find("exceptionOccurrences"); it != e.end()) {
    if (it->is_array()) out.exceptions = *it;
    e.erase(it);
  }
  if (auto it = e.find("cancelledOccurrences"); it != e.end()) {
    out.has_cancelled = true;
    if (it->is_array())
      for (auto& oid : *it)
        if (oid.is_string() && oid.get<std::string>().size() >= 10) out.cancelled_dates.push_back(oid.get<std::string>().substr(oid.get<std::string>().size() - 10));
    std::sort(out.cancelled_dates.begin(), out.cancelled_dates.end());
    e.erase(it);
  }
  return out;
}

// "YYYY-MM-DD" moved by `days`, or nullopt when it is not a date.
std::optional<std::string> shift_date(const std::string& ymd, int days) {
  namespace chr = std::chrono;
  int y = 0;
  unsigned m = 0, d = 0;
  if (ymd.size() < 10 || std::sscanf(ymd.c_str(), "%4d-%2u-%2u", &y, &m, &d) != 3) return std::nullopt;
  chr::year_month_day date{chr::year{y}, chr::month{m}, chr::day{d}};
  if (!date.ok()) return std::nullopt;
  chr::year_month_day moved{chr::sys_days{date} + chr::days{days}};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(moved.year()), static_cast<unsigned>(moved.month()),
                static_cast<unsigned>(moved.day()));
  return std::string(buf);
}

// What an exception changes on its occurrence: its properties that differ from the
// master as written (attendees stay in the body, so patching sends no invitation
// either), without those Graph sets on an instance itself.
json exception_patch(const json& exception, const json& master_written) {
  json ex = without_attendees(clean_pim(exception));
  json patch = json::object();
  for (auto& [k, v] : ex.items()) {
    static const std::set<std::string> own = {"type", "originalStart", "recurrence", "cancelledOccurrences",
                                              "exceptionOccurrences", "occurrenceId", "bodyPreview", "hasAttachments",
                                              "isOrganizer", "responseStatus", "organizer", "isCancelled", "isDraft"};
    if (own.count(k)) continue;
    auto m = master_written.find(k);
    if (m == master_written.end() || *m != v) patch[k] = v;
  }
  return patch;
}

// Whether a series' exceptions now (`current`, read with `$expand=exceptionOccurrences`
// beside their master `current_master`) are the stored ones (`stored`, beside the
// master as it would be written, `master_written`): the same original starts, and
// for each what the one changes on its occurrence the other holds too, both ways
// (a moved occurrence moved again, or only renamed, is a change).
bool same_exceptions(const json& stored, const json& master_written, const json& current, const json& current_master) {
  using Edits = std::map<std::string, std::pair<json, json>>;  // original start -> (patch, as written)
  auto edits = [](const json& list, const json& master) {
    Edits out;
    if (!list.is_array()) return out;
    for (auto& ex : list) {
      const std::string os = ex.value("originalStart", "").substr(0, 19);
      out[os] = {exception_patch(ex, master), without_attendees(clean_pim(ex))};
    }
    return out;
  };
  const auto was = edits(stored, master_written);
  const auto now = edits(current, without_attendees(clean_pim(current_master)));
  if (was.size() != now.size()) return false;
  for (auto& [os, w] : was) {
    auto n = now.find(os);
    if (n == now.end()) return false;
    if (!subset_equal(w.first, n->second.second) || !subset_equal(n->second.first, w.second)) return false;
  }
  return true;
}

bool has_flag(const storage::ItemVersion& v, const char* f) {
  return std::find(v.flags.begin(), v.flags.end(), f) != v.flags.end();
}

struct Outcome {
  std::string outcome;  // restored, replaced, copied, skipped, failed, would_*
  std::string detail, code, target_id;
  long long bytes = 0;
};

// A message with attachments is written in several requests (create, then one per
// attachment); a daemon killed in between leaves half a message that the existence
// check would take for a restored one. So such a message is created carrying this
// named property (value "pending <restore id>") and PATCHed to "complete" after its
// last attachment; a message found still pending is our unfinished write, never
// the user's data, and is written again. (Named properties: contract section 11,
// Graph singleValueExtendedProperties; the GUID is ours alone.)
const char* kPendingProp = "String {6f1d3c52-8a0e-4e7b-9c41-2d5b7a90e3f4} Name m365vaultRestorePending";
// Adds the property to a message GET or listing (percent-encoded for the query).
const char* kPendingExpand =
    "&$expand=singleValueExtendedProperties($filter=id%20eq%20%27String%20%7B6f1d3c52-8a0e-4e7b-9c41-2d5b7a90e3f4%7D"
    "%20Name%20m365vaultRestorePending%27)";

// True when a listed/fetched message carries our pending marker.
bool restore_pending(const json& item) {
  if (!item.contains("singleValueExtendedProperties") || !item["singleValueExtendedProperties"].is_array()) return false;
  for (auto& p : item["singleValueExtendedProperties"])
    if (ascii_lower(p.value("id", "")) == ascii_lower(kPendingProp) && p.value("value", "") != "complete") return true;
  return false;
}

// What a target folder holds already, to tell "exists unchanged" from "exists changed".
struct Existing {
  std::string id;
  json item;  // as listed (mail: the compared properties; pim: the item; files: the driveItem)
};
// What a target folder holds, found by the category's key (mail: Internet
// message id; files: lower-cased name; contacts: display name; events: subject
// and start) in constant time: a folder of 50,000 messages is not scanned once
// per message restored into it.
class FolderIndex {
 public:
  explicit FolderIndex(Category c) : category_(c) {}
  void add(Existing e) {
    if (category_ == Category::mail && restore_pending(e.item)) {  // never "exists": our unfinished write
      if (auto k = key(e.item); !k.empty()) pending_.emplace(k, e.id);
      return;
    }
    if (auto k = key(e.item); !k.empty()) by_key_[k] = items_.size();
    items_.push_back(std::move(e));
  }
  // The last item added with that key.
  std::optional<Existing> find(const json& like) const {
    auto k = key(like);
    if (k.empty()) return std::nullopt;
    auto it = by_key_.find(k);
    if (it == by_key_.end()) return std::nullopt;
    return items_[it->second];
  }
  // The ids of messages with that key a restore left unfinished (pending), taken out.
  std::vector<std::string> take_pending(const json& like) {
    std::vector<std::string> ids;
    auto [b, e] = pending_.equal_range(key(like));
    for (auto it = b; it != e; ++it) ids.push_back(it->second);
    pending_.erase(b, e);
    return ids;
  }

 private:
  std::string key(const json& j) const {
    switch (category_) {
      case Category::mail: return j.value("internetMessageId", "");
      case Category::contacts: return "n:" + j.value("displayName", "");
      case Category::calendar: return "s:" + j.value("subject", "") + "\n" + j.value("start", json()).dump();
      default: return j.contains("folder") ? std::string() : ascii_lower(j.value("name", ""));
    }
  }
  Category category_;
  std::vector<Existing> items_;
  std::unordered_map<std::string, std::size_t> by_key_;
  std::unordered_multimap<std::string, std::string> pending_;
};

const char* kMailSelect = "id,internetMessageId,isRead,flag,categories,subject,importance";

}  // namespace

// ---------------------------------------------------------------- the run

class RestoreRun {
 public:
  RestoreRun(RestoreServices& svc, scheduler::RunContext& ctx, graph::GraphClient& g,
             scheduler::ProgressTracker& progress, std::string restore_id, RestoreRequest req,
             storage::SelectionSpec spec, std::optional<std::string> root_name, std::optional<json> position)
      : svc_(svc), ctx_(ctx), g_(g), progress_(progress), restore_id_(std::move(restore_id)), req_(std::move(req)),
        spec_(std::move(spec)), root_name_(std::move(root_name)), position_(std::move(position)), pool_(2) {}
  ~RestoreRun() { pool_.join(); }

  awaitable<scheduler::RunOutcome> run();
  std::atomic<long long> skipped{0}, failed{0}, done{0};

 private:
  struct ScopeState {
    storage::SelectionScope scope;
    storage::Owner source, target;
    std::string user;   // the target's Graph id (Outlook paths)
    std::string drive;  // "/users/{id}/drive" or "/drives/{id}"
    std::map<std::string, std::string> folders;  // catalog container id -> target Graph id
    std::optional<std::string> root;              // the target root's Graph id (not the original place)
    std::map<std::string, std::shared_ptr<FolderIndex>> indexes;  // target folder Graph id -> what it holds
  };

  template <class F>
  auto db(F f) -> awaitable<std::invoke_result_t<F, PgConnection&>> {
    co_return co_await svc_.db.run(std::move(f));
  }

  awaitable<void> begin_scope(ScopeState& s);
  awaitable<void> map_containers(ScopeState& s, const std::vector<storage::SelectedContainer>& cs);
  awaitable<std::string> default_folder(ScopeState& s);
  awaitable<std::optional<std::string>> find_child(ScopeState& s, const std::optional<std::string>& parent,
                                                   const std::string& name);
  awaitable<std::string> create_child(ScopeState& s, const std::optional<std::string>& parent, const std::string& name);
  awaitable<std::optional<std::string>> exists_by_id(ScopeState& s, const std::string& graph_id);
  awaitable<std::shared_ptr<FolderIndex>> index_of(ScopeState& s, const std::string& folder);
  // The item at `url` (original place, by its id), or nullopt when Graph says 404.
  awaitable<std::optional<Existing>> get_if_exists(const std::string& url, const std::string& graph_id);
  awaitable<Outcome> restore_item(ScopeState& s, const storage::SelectedItem& it);
  awaitable<Outcome> restore_message(ScopeState& s, const storage::ItemVersion& v, const std::string& folder);
  awaitable<Outcome> restore_pim(ScopeState& s, const storage::ItemVersion& v, const std::string& folder);
  // Re-applies a restored series' exceptions and cancelled occurrences on its new
  // instances, matched by originalStart; returns what could not be re-applied.
  awaitable<std::vector<std::string>> reapply_series(ScopeState& s, const std::string& master_id,
                                                     const json& master_written, const SeriesEdits& edits);
  awaitable<Outcome> restore_file(ScopeState& s, const storage::ItemVersion& v, const std::string& folder);
  awaitable<std::string> read_content(const storage::ItemVersion& v);
  std::string content_of(const storage::ItemVersion& v);
  awaitable<void> read_blobs(const storage::ItemVersion& v, std::function<awaitable<void>(std::string)> on_blob);
  awaitable<void> record(const std::vector<std::pair<const storage::SelectedItem*, Outcome>>& outs);
  awaitable<void> save_position(const json& p);
  awaitable<void> run_scope(const storage::SelectionScope& scope, const json& start);

  // The decision for an item that may exist: nullopt = write it (with `replace_id`
  // to remove afterwards when replacing), else the final outcome.
  std::optional<Outcome> decide(const std::optional<Existing>& found, bool unchanged, std::string& replace_id) const;
  std::string written(bool replaced_something) const {
    if (replaced_something) return "replaced";
    return "restored";
  }

  RestoreServices& svc_;
  scheduler::RunContext& ctx_;
  graph::GraphClient& g_;
  scheduler::ProgressTracker& progress_;
  std::string restore_id_;
  RestoreRequest req_;
  storage::SelectionSpec spec_;
  std::optional<std::string> root_name_;
  std::optional<json> position_;
  storage::Catalog cat_;
  asio::thread_pool pool_;
  AsyncSemaphore items_in_flight_{svc_.opts.run_items};
  AsyncSemaphore uploads_in_flight_{svc_.opts.file_uploads};
  std::optional<storage::Owner> to_owner_;
};

std::optional<Outcome> RestoreRun::decide(const std::optional<Existing>& found, bool unchanged,
                                          std::string& replace_id) const {
  const bool dry = req_.dry_run;
  if (!found) {
    if (dry) return Outcome{"would_restore", "", "", "", 0};
    return std::nullopt;
  }
  if (unchanged) return Outcome{"skipped", "exists unchanged", "", found->id, 0};
  switch (req_.conflict) {
    case Conflict::skip:
      return Outcome{"skipped", "exists, changed since the backup (conflict replace or copy restores it)", "", found->id, 0};
    case Conflict::replace:
      if (dry) return Outcome{"would_replace", "exists, changed since the backup", "", found->id, 0};
      replace_id = found->id;
      return std::nullopt;
    case Conflict::copy:
      if (dry) return Outcome{"would_copy", "exists, changed since the backup", "", found->id, 0};
      return std::nullopt;
  }
  return std::nullopt;
}

awaitable<void> RestoreRun::save_position(const json& p) {
  auto f = [&](PgConnection& c) {
    c.exec("UPDATE restores SET position = $2::jsonb WHERE id = $1::uuid", {restore_id_, p.dump()});
  };
  co_await db(f);
}

awaitable<void> RestoreRun::begin_scope(ScopeState& s) {
  auto f = [&](PgConnection& c) {
    auto src = cat_.get_owner(c, s.scope.owner_id);
    std::optional<storage::Owner> dst;
    if (req_.to_owner) dst = cat_.get_owner(c, *req_.to_owner);
    return std::make_pair(src, dst);
  };
  auto [src, dst] = co_await db(f);
  if (!src) throw Error(Errc::not_found, "owner '" + s.scope.owner_id + "' is gone from the catalog");
  s.source = *src;
  s.target = dst ? *dst : *src;
  s.user = s.target.spec.graph_id;
  s.drive = s.target.spec.kind == storage::OwnerKind::drive ? "/v1.0/drives/" + s.target.spec.graph_id
                                                            : "/v1.0/users/" + s.target.spec.graph_id + "/drive";
  if (s.scope.category == Category::onedrive || s.scope.category == Category::sharepoint) {
    // Every drive route exists under /drives/{id}; not all under /users/{id}/drive.
    graph::RequestOptions opts;
    auto d = co_await g_.get(s.drive, opts);
    s.drive = "/v1.0/drives/" + d.parse().value("id", "");
  }
  if (root_name_) {
    // The safe place: one folder (a calendar for events) under the target's root.
    const std::optional<std::string> top;  // named: no temporary inside co_await (GCC 12)
    auto existing = co_await find_child(s, top, *root_name_);
    if (existing) {
      s.root = *existing;
    } else if (!req_.dry_run) {
      auto created = co_await create_child(s, top, *root_name_);
      s.root = created;
    } else {
      s.root = "(dry run: " + *root_name_ + ")";
    }
  }
}

// The Graph collection of a container's children: where to list and create them.
awaitable<std::optional<std::string>> RestoreRun::find_child(ScopeState& s, const std::optional<std::string>& parent,
                                                             const std::string& name) {
  std::string url;
  std::string key = "displayName";
  switch (s.scope.category) {
    case Category::mail:
      url = parent ? "/v1.0/users/" + s.user + "/mailFolders/" + *parent + "/childFolders?$top=250"
                   : "/v1.0/users/" + s.user + "/mailFolders?$top=250&includeHiddenFolders=true";
      break;
    case Category::contacts:
      url = parent ? "/v1.0/users/" + s.user + "/contactFolders/" + *parent + "/childFolders?$top=250"
                   : "/v1.0/users/" + s.user + "/contactFolders?$top=250";
      break;
    case Category::calendar:
      url = "/v1.0/users/" + s.user + "/calendars?$top=250";
      key = "name";
      break;
    default: {
      std::string pid = parent ? *parent : std::string("root");
      url = s.drive + "/items/" + pid + "/children?$top=1000&$select=id,name,folder";
      key = "name";
    }
  }
  if (parent && req_.dry_run && parent->rfind("(dry run", 0) == 0) co_return std::nullopt;
  graph::RequestOptions opts;
  graph::DeltaPager pager(g_, url, opts);
  const std::string want = ascii_lower(name);
  while (auto page = co_await pager.next())
    for (auto& f : page->items)
      if (ascii_lower(f.value(key, "")) == want && f.contains("id")) co_return f["id"].get<std::string>();
  co_return std::nullopt;
}

awaitable<std::string> RestoreRun::create_child(ScopeState& s, const std::optional<std::string>& parent,
                                                const std::string& name) {
  std::string url;
  json body;
  switch (s.scope.category) {
    case Category::mail:
      url = parent ? "/v1.0/users/" + s.user + "/mailFolders/" + *parent + "/childFolders"
                   : "/v1.0/users/" + s.user + "/mailFolders";
      body = {{"displayName", name}, {"isHidden", false}};
      break;
    case Category::contacts:
      url = parent ? "/v1.0/users/" + s.user + "/contactFolders/" + *parent + "/childFolders"
                   : "/v1.0/users/" + s.user + "/contactFolders";
      body = {{"displayName", name}};
      break;
    case Category::calendar:
      url = "/v1.0/users/" + s.user + "/calendars";
      body = {{"name", name}};
      break;
    default: {
      std::string pid = parent ? *parent : std::string("root");
      url = s.drive + "/items/" + pid + "/children";
      body = {{"name", name}, {"folder", json::object()}, {"@microsoft.graph.conflictBehavior", "fail"}};
    }
  }
  graph::RequestOptions opts;
  try {
    auto r = co_await g_.post(url, body, opts);
    co_return r.parse().value("id", "");
  } catch (const graph::GraphError& e) {
    if (e.status() != 409) throw;  // another attempt created it first: use that one
  }
  auto again = co_await find_child(s, parent, name);
  if (!again) throw Error(Errc::conflict, "folder '" + name + "' exists and does not exist");
  co_return *again;
}

// Where items of a container that no longer maps go: the default folder.
awaitable<std::string> RestoreRun::default_folder(ScopeState& s) {
  if (s.root) co_return *s.root;
  std::string url;
  switch (s.scope.category) {
    case Category::mail: url = "/v1.0/users/" + s.user + "/mailFolders/inbox"; break;
    case Category::contacts: url = "/v1.0/users/" + s.user + "/contactFolders/contacts"; break;
    case Category::calendar: url = "/v1.0/users/" + s.user + "/calendar"; break;
    default: url = s.drive + "/root";
  }
  graph::RequestOptions opts;
  auto r = co_await g_.get(url, opts);
  co_return r.parse().value("id", "");
}

// Containers come parents first: each maps to a target folder found by id (the
// original place, still there), else by name under its mapped parent, else created.
awaitable<void> RestoreRun::map_containers(ScopeState& s, const std::vector<storage::SelectedContainer>& cs) {
  for (auto& sc : cs) {
    if (ctx_.cancelled()) co_return;
    const auto& c = sc.container;
    if (s.root && s.scope.category == Category::calendar) {
      // Calendars do not nest: the default calendar's events go into the target
      // calendar, another calendar's into a calendar beside it named after both.
      if (c.well_known == std::optional<std::string>("calendar") || !root_name_) {
        s.folders[c.id] = *s.root;
        continue;
      }
      const std::string name = *root_name_ + " - " + c.display_name;
      const std::optional<std::string> top;  // named: no temporary inside co_await (GCC 12)
      auto existing = co_await find_child(s, top, name);
      if (existing) {
        s.folders[c.id] = *existing;
      } else if (req_.dry_run) {
        s.folders[c.id] = "(dry run: " + name + ")";
      } else {
        auto created = co_await create_child(s, top, name);
        s.folders[c.id] = created;
      }
      continue;
    }
    // Mail, contact folders and drive folders: the tree recreated (under the target
    // folder when there is one).
    const bool drive = s.scope.category == Category::onedrive || s.scope.category == Category::sharepoint;
    if (drive && c.well_known == std::optional<std::string>("root")) {
      std::string target;
      if (s.root) {
        target = *s.root;
      } else {
        auto dflt = co_await default_folder(s);
        target = dflt;
      }
      s.folders[c.id] = target;
      continue;
    }
    std::optional<std::string> parent;
    if (c.parent_id && s.folders.count(*c.parent_id)) parent = s.folders[*c.parent_id];
    else if (s.root) parent = s.root;
    else if (drive) {
      auto dflt = co_await default_folder(s);
      parent = dflt;
    }
    std::optional<std::string> found;
    if (!s.root && s.target.id == s.source.id) {
      auto by_id = co_await exists_by_id(s, c.graph_id);
      found = by_id;
    }
    if (!found) {
      auto by_name = co_await find_child(s, parent, c.display_name);
      found = by_name;
    }
    if (!found) {
      if (req_.dry_run) {
        found = "(dry run: " + c.path + ")";
      } else {
        auto created = co_await create_child(s, parent, c.display_name);
        found = created;
      }
    }
    s.folders[c.id] = *found;
  }
}

// A container still in its place, by its Graph id (original place only).
awaitable<std::optional<std::string>> RestoreRun::exists_by_id(ScopeState& s, const std::string& graph_id) {
  std::string url;
  switch (s.scope.category) {
    case Category::mail: url = "/v1.0/users/" + s.user + "/mailFolders/" + graph_id; break;
    case Category::contacts: url = "/v1.0/users/" + s.user + "/contactFolders/" + graph_id; break;
    case Category::calendar: url = "/v1.0/users/" + s.user + "/calendars/" + graph_id; break;
    default: url = s.drive + "/items/" + graph_id + "?$select=id,name,folder,deleted";
  }
  auto e = co_await get_if_exists(url, graph_id);
  if (!e || e->item.contains("deleted")) co_return std::nullopt;
  co_return e->id;
}

awaitable<std::optional<Existing>> RestoreRun::get_if_exists(const std::string& url, const std::string& graph_id) {
  graph::RequestOptions opts;
  try {
    auto r = co_await g_.get(url, opts);
    auto j = r.parse();
    co_return Existing{j.value("id", graph_id), j};
  } catch (const graph::GraphError& e) {
    if (!graph::is_not_found(e)) throw;
  }
  co_return std::nullopt;
}

awaitable<std::shared_ptr<FolderIndex>> RestoreRun::index_of(ScopeState& s, const std::string& folder) {
  if (auto it = s.indexes.find(folder); it != s.indexes.end()) co_return it->second;
  auto idx = std::make_shared<FolderIndex>(s.scope.category);
  if (folder.rfind("(dry run", 0) != 0) {
    std::string url;
    switch (s.scope.category) {
      case Category::mail:
        url = "/v1.0/users/" + s.user + "/mailFolders/" + folder + "/messages?$top=1000&$select=" + kMailSelect + kPendingExpand;
        break;
      case Category::contacts: url = "/v1.0/users/" + s.user + "/contactFolders/" + folder + "/contacts?$top=1000"; break;
      case Category::calendar: url = "/v1.0/users/" + s.user + "/calendars/" + folder + "/events?$top=1000"; break;
      default: url = s.drive + "/items/" + folder + "/children?$top=1000";
    }
    graph::RequestOptions opts;
    graph::DeltaPager pager(g_, url, opts);
    while (auto page = co_await pager.next())
      for (auto& it : page->items)
        if (it.contains("id")) idx->add({it["id"].get<std::string>(), it});
  }
  s.indexes[folder] = idx;
  co_return idx;
}

namespace {
// A blob id as stored in a version's content_blobs.
storage::BlobId blob_id(const storage::ItemVersion& v, const std::string& raw) {
  if (raw.size() != 32) throw Error(Errc::data_corrupt, "item version " + v.version_id + " names a malformed blob id");
  storage::BlobId id;
  std::memcpy(id.bytes.data(), raw.data(), 32);
  return id;
}
}  // namespace

awaitable<void> RestoreRun::read_blobs(const storage::ItemVersion& v, std::function<awaitable<void>(std::string)> on_blob) {
  for (const auto& raw : v.content_blobs) {
    const storage::BlobId id = blob_id(v, raw);
    auto& repo = svc_.repo;
    auto op = asio::co_spawn(
        pool_, [&repo, id]() -> awaitable<std::string> { co_return repo.read_blob(id); }, use_awaitable);
    std::string blob = co_await std::move(op);
    co_await on_blob(std::move(blob));
  }
}

// Blocking, on a pool thread: a small item's whole content, checked against its
// recorded SHA-256.
std::string RestoreRun::content_of(const storage::ItemVersion& v) {
  std::string all;
  if (v.content_size) all.reserve(static_cast<size_t>(*v.content_size));
  for (const auto& raw : v.content_blobs) all += svc_.repo.read_blob(blob_id(v, raw));
  if (v.content_sha256) {
    const auto digest = storage::crypto::sha256(all);
    if (std::string(storage::crypto::as_view(digest)) != *v.content_sha256)
      throw Error(Errc::data_corrupt, "item version " + v.version_id + ": content does not match its recorded SHA-256");
  }
  return all;
}

awaitable<std::string> RestoreRun::read_content(const storage::ItemVersion& v) {
  auto op = asio::co_spawn(
      pool_, [this, &v]() -> awaitable<std::string> { co_return content_of(v); }, use_awaitable);
  std::string all = co_await std::move(op);
  co_return all;
}

// ---- mail (contract §11: the JSON route, not drafts; attachments after)

awaitable<Outcome> RestoreRun::restore_message(ScopeState& s, const storage::ItemVersion& v, const std::string& folder) {
  const auto& meta = v.meta;
  const std::string imid = meta.value("internetMessageId", "");
  const bool read = has_flag(v, "read");
  const std::string flag_status = has_flag(v, "flagged") ? "flagged" : meta.value("/flag/flagStatus"_json_pointer, "notFlagged");
  const json categories = meta.value("categories", json::array());

  // Exists: the same Internet message id in the target folder, or (original place)
  // the message itself still in the mailbox, wherever it is now.
  std::optional<Existing> found;
  auto idx = co_await index_of(s, folder);
  // Our own half-written copies (a daemon died between a create and its last
  // attachment): never "exists"; removed whatever the conflict policy.
  std::vector<std::string> unfinished;
  if (!imid.empty()) {
    unfinished = idx->take_pending(json{{"internetMessageId", imid}});
    found = idx->find(json{{"internetMessageId", imid}});
  }
  if (!found && !s.root && s.target.id == s.source.id) {
    std::string url = "/v1.0/users/" + s.user + "/messages/" + v.graph_id + "?$select=" + kMailSelect + kPendingExpand;
    auto still = co_await get_if_exists(url, v.graph_id);
    if (still && restore_pending(still->item)) unfinished.push_back(still->id);
    else found = still;
  }
  graph::RequestOptions opts;
  std::string cleaned;
  if (!unfinished.empty()) {
    if (req_.dry_run) {
      cleaned = "an unfinished restore of it (attachments missing) is in the mailbox and would be removed";
    } else {
      for (const auto& id : unfinished) {
        std::string half = "/v1.0/users/" + s.user + "/messages/" + id;
        try {
          co_await g_.del(half, opts);
        } catch (const graph::GraphError& e) {
          if (!graph::is_not_found(e)) throw;  // already gone: another daemon cleaned it
        }
      }
      cleaned = "an unfinished restore of it (attachments missing) was removed";
    }
  }
  bool unchanged = false;
  if (found) {
    const auto& j = found->item;
    std::string fs = j.contains("flag") && j["flag"].is_object() ? j["flag"].value("flagStatus", "notFlagged") : "notFlagged";
    unchanged = j.value("isRead", false) == read && fs == flag_status &&
                j.value("categories", json::array()) == categories;
  }
  std::string replace_id;
  if (auto d = decide(found, unchanged, replace_id)) {
    if (!cleaned.empty()) d->detail = d->detail.empty() ? cleaned : d->detail + "; " + cleaned;
    co_return *d;
  }

  // Read (blobs, decryption, zstd, SHA-256) and parsed (GMime) on the pool: the
  // I/O thread, which every request of the run goes through, is not held for it
  // (it was a fifth of that thread's time).
  struct Read {
    MimeMessage mime;
    std::size_t size = 0;
  };
  auto reading = asio::co_spawn(
      pool_,
      [this, &v]() -> awaitable<Read> {
        const std::string bytes = content_of(v);
        co_return Read{parse_mime(bytes), bytes.size()};
      },
      use_awaitable);
  const Read got = co_await std::move(reading);
  const MimeMessage& mime = got.mime;
  json m;
  m["subject"] = v.subject.value_or("");
  if (!mime.html.empty()) m["body"] = {{"contentType", "html"}, {"content", mime.html}};
  else m["body"] = {{"contentType", "text"}, {"content", mime.text}};
  for (auto k : {"from", "sender", "toRecipients", "ccRecipients", "bccRecipients", "importance"})
    if (meta.contains(k) && !meta[k].is_null()) m[k] = meta[k];
  m["categories"] = categories;
  m["isRead"] = read;
  m["flag"] = {{"flagStatus", flag_status}};
  if (!imid.empty()) m["internetMessageId"] = imid;
  // PR_MESSAGE_FLAGS without the unsent bit: not a draft (a draft stays one).
  const int flags = (has_flag(v, "draft") ? 0x8 : 0x4) | (read ? 0x1 : 0);
  json props = json::array({{{"id", "Integer 0x0E07"}, {"value", std::to_string(flags)}}});
  if (v.sent_at) props.push_back({{"id", "SystemTime 0x0039"}, {"value", *v.sent_at}});
  if (v.received_at) props.push_back({{"id", "SystemTime 0x0E06"}, {"value", *v.received_at}});
  if (!mime.attachments.empty()) props.push_back({{"id", kPendingProp}, {"value", "pending " + restore_id_}});
  m["singleValueExtendedProperties"] = props;

  std::string url = "/v1.0/users/" + s.user + "/mailFolders/" + folder + "/messages";
  auto created = co_await g_.post(url, m, opts);
  const std::string new_id = created.parse().value("id", "");
  const std::string base = "/v1.0/users/" + s.user + "/messages/" + new_id;
  std::string failure;
  try {
    for (auto& a : mime.attachments) {
      const std::string name = a.is_message && a.name.find('.') == std::string::npos ? a.name + ".eml" : a.name;
      if (a.bytes.size() <= svc_.opts.attachment_direct_max) {
        json att = {{"@odata.type", "#microsoft.graph.fileAttachment"},
                    {"name", name},
                    {"contentType", a.content_type},
                    {"isInline", a.is_inline},
                    {"contentBytes", storage::crypto::base64_encode(a.bytes)}};
        if (!a.content_id.empty()) att["contentId"] = a.content_id;
        std::string aurl = base + "/attachments";
        co_await g_.post(aurl, att, opts);
        continue;
      }
      json sess = {{"AttachmentItem",
                    {{"attachmentType", "file"},
                     {"name", name},
                     {"contentType", a.content_type},
                     {"size", a.bytes.size()},
                     {"isInline", a.is_inline}}}};
      if (!a.content_id.empty()) sess["AttachmentItem"]["contentId"] = a.content_id;
      std::string surl = base + "/attachments/createUploadSession";
      auto sr = co_await g_.post(surl, sess, opts);
      const std::string upload = sr.parse().value("uploadUrl", "");
      graph::RequestOptions up;
      up.pre_authenticated = true;
      for (size_t off = 0; off < a.bytes.size(); off += svc_.opts.attachment_chunk) {
        const size_t n = std::min(svc_.opts.attachment_chunk, a.bytes.size() - off);
        up.headers = {{"Content-Range", "bytes " + std::to_string(off) + "-" + std::to_string(off + n - 1) + "/" +
                                            std::to_string(a.bytes.size())}};
        std::string chunk = a.bytes.substr(off, n);
        std::string method = "PUT";
        std::string ctype = "application/octet-stream";
        co_await g_.send(method, upload, chunk, ctype, up);
      }
    }
    if (!mime.attachments.empty()) {
      json done_mark = {{"singleValueExtendedProperties", json::array({{{"id", kPendingProp}, {"value", "complete"}}})}};
      co_await g_.patch(base, done_mark, opts);
    }
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!failure.empty()) {
    // Half a message would later look like "exists": remove it, report the item.
    graph::RequestOptions dopts;
    try {
      co_await g_.del(base, dopts);
    } catch (const std::exception&) {
    }
    throw Error(Errc::unavailable, "attachments: " + failure);
  }
  if (!replace_id.empty()) {
    std::string old = "/v1.0/users/" + s.user + "/messages/" + replace_id;
    co_await g_.del(old, opts);
  }
  idx->add({new_id, {{"id", new_id}, {"internetMessageId", imid}}});
  Outcome o{replace_id.empty() ? (found ? "copied" : "restored") : "replaced", "", "", new_id,
            static_cast<long long>(got.size)};
  if (!cleaned.empty()) o.detail = cleaned + " and the message written again";
  if (!mime.problems.empty()) o.detail += (o.detail.empty() ? "MIME: " : "; MIME: ") + mime.problems.front();
  co_return o;
}

// ---- contacts and events: their stored Graph JSON, cleaned

awaitable<Outcome> RestoreRun::restore_pim(ScopeState& s, const storage::ItemVersion& v, const std::string& folder) {
  const bool event = s.scope.category == Category::calendar;
  auto raw = co_await read_content(v);
  auto stored = json::parse(raw, nullptr, false);
  if (stored.is_discarded()) throw Error(Errc::data_corrupt, "stored " + v.kind + " is not JSON");
  json original = clean_pim(stored);
  SeriesEdits series;
  if (event) series = take_series_edits(original);
  json body = event ? without_attendees(original) : original;

  std::optional<Existing> found;
  if (!s.root && s.target.id == s.source.id) {
    std::string url = "/v1.0/users/" + s.user + (event ? "/events/" : "/contacts/") + v.graph_id;
    auto still = co_await get_if_exists(url, v.graph_id);
    found = still;
  }
  if (!found) {
    auto idx = co_await index_of(s, folder);
    auto same = idx->find(original);  // display name (contacts), subject and start (events)
    found = same;
  }
  bool unchanged = false;
  if (found) {
    json have = clean_pim(found->item);
    SeriesEdits now;
    if (event) now = take_series_edits(have);
    unchanged = subset_equal(original, have) || subset_equal(body, have);
    // The cancelled occurrences by date (their ids name the master, new on a restored one).
    if (event && now.has_cancelled) unchanged = unchanged && now.cancelled_dates == series.cancelled_dates;
    // Its exceptions too: an occurrence moved or renamed since the backup leaves the
    // master as it was. Listings do not carry them: one more read, of a series only.
    if (event && unchanged && original.value("type", "") == "seriesMaster") {
      const std::string url = "/v1.0/users/" + s.user + "/events/" + found->id + "?$expand=exceptionOccurrences";
      auto full = co_await get_if_exists(url, found->id);
      unchanged = full && same_exceptions(series.exceptions, body, full->item.value("exceptionOccurrences", json::array()),
                                          full->item);
    }
  }
  std::string replace_id;
  if (auto d = decide(found, unchanged, replace_id)) co_return *d;

  std::string url = "/v1.0/users/" + s.user + (event ? "/calendars/" : "/contactFolders/") + folder +
                    (event ? "/events" : "/contacts");
  graph::RequestOptions opts;
  auto created = co_await g_.post(url, body, opts);
  const std::string new_id = created.parse().value("id", "");
  std::string series_note;
  if (event && !series.empty()) {
    auto problems = co_await reapply_series(s, new_id, body, series);
    if (!problems.empty()) {
      // Half a series is not the series: remove it (a retry must not take it for
      // "exists") and leave any current one alone.
      std::string half = "/v1.0/users/" + s.user + "/events/" + new_id;
      co_await g_.del(half, opts);
      std::string why = "series not restored: " + problems.front();
      if (problems.size() > 1) why += " (and " + std::to_string(problems.size() - 1) + " more)";
      co_return Outcome{"failed", why, "seriesEditsNotApplied", "", 0};
    }
    series_note = "series with " + std::to_string(series.exceptions.size()) + " exception(s) and " +
                  std::to_string(series.cancelled_dates.size()) + " cancelled occurrence(s) re-applied";
  }
  if (!replace_id.empty()) {
    std::string old = "/v1.0/users/" + s.user + (event ? "/events/" : "/contacts/") + replace_id;
    co_await g_.del(old, opts);
  }
  Outcome o{replace_id.empty() ? (found ? "copied" : "restored") : "replaced", "", "", new_id,
            static_cast<long long>(raw.size())};
  if (event && original.contains("attendees") && original["attendees"].is_array() && !original["attendees"].empty())
    o.detail = "attendees kept in the body, no invitations sent";
  if (!series_note.empty()) o.detail += (o.detail.empty() ? "" : "; ") + series_note;
  co_return o;
}

awaitable<std::vector<std::string>> RestoreRun::reapply_series(ScopeState& s, const std::string& master_id,
                                                               const json& master_written, const SeriesEdits& edits) {
  std::vector<std::string> problems;
  std::vector<std::string> dates = edits.cancelled_dates;
  for (auto& ex : edits.exceptions) {
    const std::string os = ex.value("originalStart", "");
    if (os.size() < 19) problems.push_back("an exception has no originalStart");
    else dates.push_back(os.substr(0, 10));
  }
  if (dates.empty() || !problems.empty()) co_return problems;
  auto [lo, hi] = std::minmax_element(dates.begin(), dates.end());
  // A day of margin each side: a cancelled occurrence's date is the series' local one.
  auto from = shift_date(*lo, -1), to = shift_date(*hi, 2);
  if (!from || !to) {
    problems.push_back("an occurrence date is not a date ('" + *lo + "' .. '" + *hi + "')");
    co_return problems;
  }
  std::string url = "/v1.0/users/" + s.user + "/events/" + master_id + "/instances?startDateTime=" + *from +
                    "T00:00:00Z&endDateTime=" + *to + "T00:00:00Z";
  graph::RequestOptions opts;
  graph::DeltaPager pager(g_, url, opts);
  std::map<std::string, std::string> by_start;  // originalStart to the second (UTC) -> instance id
  while (auto page = co_await pager.next())
    for (auto& i : page->items) {
      const std::string os = i.value("originalStart", "");
      if (os.size() >= 19 && i.contains("id")) by_start[os.substr(0, 19)] = i["id"].get<std::string>();
    }
  for (auto& ex : edits.exceptions) {
    const std::string os = ex.value("originalStart", "").substr(0, 19);
    auto at = by_start.find(os);
    if (at == by_start.end()) {
      problems.push_back("no occurrence at " + os + "Z to re-apply its exception on");
      continue;
    }
    json patch = exception_patch(ex, master_written);
    if (!patch.empty()) {
      std::string target = "/v1.0/users/" + s.user + "/events/" + at->second;
      try {
        co_await g_.patch(target, patch, opts);
      } catch (const graph::GraphError& e) {
        problems.push_back("the exception at " + os + "Z: " + e.what());
      }
    }
    by_start.erase(at);  // an exception is not also a cancelled occurrence
  }
  for (auto& date : edits.cancelled_dates) {
    auto at = std::find_if(by_start.begin(), by_start.end(), [&](auto& kv) { return kv.first.compare(0, 10, date) == 0; });
    if (at == by_start.end()) {
      problems.push_back("no occurrence on " + date + " to cancel");
      continue;
    }
    std::string target = "/v1.0/users/" + s.user + "/events/" + at->second;
    try {
      co_await g_.del(target, opts);
    } catch (const graph::GraphError& e) {
      problems.push_back("cancelling the occurrence on " + date + ": " + e.what());
    }
    by_start.erase(at);
  }
  co_return problems;
}

// ---- files: upload sessions (fragments of multiples of 320 KiB) carrying the
// file's timestamps; an empty file in one PUT.

awaitable<Outcome> RestoreRun::restore_file(ScopeState& s, const storage::ItemVersion& v, const std::string& folder) {
  const auto& meta = v.meta;
  if (v.kind != "file" || !v.content_size)
    co_return Outcome{"skipped", "no content in the backup (a " + v.kind + ": notebooks and remote items are not stored)",
                      "", "", 0};
  const std::string name = meta.value("name", v.name);
  const std::string qxh = meta.value("/file/hashes/quickXorHash"_json_pointer, "");
  std::optional<Existing> found;
  auto idx = co_await index_of(s, folder);
  found = idx->find(json{{"name", name}});
  bool unchanged = false;
  if (found) {
    const auto& j = found->item;
    const std::string have_qxh = j.value("/file/hashes/quickXorHash"_json_pointer, "");
    unchanged = j.value("size", -1LL) == *v.content_size && (qxh.empty() || have_qxh.empty() || qxh == have_qxh);
    if (!have_qxh.empty() && !qxh.empty() && qxh != have_qxh) unchanged = false;
  }
  std::string replace_id;
  if (auto d = decide(found, unchanged, replace_id)) co_return *d;
  // The conflict behaviour carries the policy: nothing there -> fail (never
  // overwrite by surprise); replace -> replace; copy -> rename ("name 1.txt").
  const std::string behaviour = !found ? "fail" : (req_.conflict == Conflict::replace ? "replace" : "rename");
  const std::string item_path = s.drive + "/items/" + folder + ":/" + segment(name) + ":";
  const long long size = *v.content_size;
  json result;
  if (size == 0) {
    std::string url = item_path + "/content?@microsoft.graph.conflictBehavior=" + behaviour;
    std::string method = "PUT", empty, ctype = "application/octet-stream";
    graph::RequestOptions opts;
    auto r = co_await g_.send(method, url, empty, ctype, opts);
    result = r.parse();
  } else {
    json item = {{"@microsoft.graph.conflictBehavior", behaviour}, {"name", name}};
    if (meta.contains("fileSystemInfo") && meta["fileSystemInfo"].is_object()) {
      json fsi = json::object();
      for (auto k : {"createdDateTime", "lastModifiedDateTime"})
        if (meta["fileSystemInfo"].contains(k)) fsi[k] = meta["fileSystemInfo"][k];
      item["fileSystemInfo"] = fsi;
    }
    // At most file_uploads files hold a fragment in memory at once, run-wide.
    auto upload_permit = co_await uploads_in_flight_.acquire();
    json sbody = {{"item", item}};
    std::string url = item_path + "/createUploadSession";
    graph::RequestOptions opts;
    auto sr = co_await g_.post(url, sbody, opts);
    const std::string upload = sr.parse().value("uploadUrl", "");
    graph::RequestOptions up;
    up.pre_authenticated = true;
    std::string buf;
    long long sent = 0;
    const size_t frag = svc_.opts.file_fragment;
    // A fragment is cut from the blobs as they come and handed over whole (no copy
    // of it is kept): at most one fragment plus one blob in memory per file.
    // (Reserved for a fragment and a blob past it: pages never written stay unmapped.)
    const auto fresh = [&] {
      std::string b;
      b.reserve(static_cast<size_t>(std::min<long long>(size - sent, static_cast<long long>(frag + (8u << 20)))));
      return b;
    };
    buf = fresh();
    auto put = [&](std::string bytes) -> awaitable<void> {
      const long long n = static_cast<long long>(bytes.size());
      up.headers = {{"Content-Range", "bytes " + std::to_string(sent) + "-" + std::to_string(sent + n - 1) + "/" +
                                          std::to_string(size)}};
      std::string method = "PUT", ctype = "application/octet-stream";
      auto r = co_await g_.send(method, upload, std::move(bytes), ctype, up);
      sent += n;
      if (sent == size) result = r.parse();
    };
    // Sends buf's first `n` bytes as the next fragment; buf keeps the rest.
    auto cut = [&](size_t n) -> awaitable<void> {
      std::string rest(buf, n);
      buf.resize(n);
      std::string piece = std::move(buf);
      buf = fresh();
      buf += rest;
      co_await put(std::move(piece));
    };
    std::function<awaitable<void>(std::string)> on_blob = [&](std::string b) -> awaitable<void> {
      buf += b;
      while (buf.size() >= frag && sent + static_cast<long long>(frag) < size) co_await cut(frag);
    };
    co_await read_blobs(v, on_blob);
    if (sent + static_cast<long long>(buf.size()) != size)
      throw Error(Errc::data_corrupt, "item version " + v.version_id + ": content is not its recorded size");
    while (!buf.empty()) co_await cut(std::min(buf.size(), frag));
  }
  const std::string new_id = result.value("id", "");
  idx->add({new_id, result});
  co_return Outcome{replace_id.empty() ? (found ? "copied" : "restored") : "replaced", "", "", new_id, size};
}

awaitable<Outcome> RestoreRun::restore_item(ScopeState& s, const storage::SelectedItem& it) {
  const auto& v = it.version;
  std::string folder;
  if (v.container_id && s.folders.count(*v.container_id)) {
    folder = s.folders[*v.container_id];
  } else {
    auto dflt = co_await default_folder(s);
    folder = dflt;
  }
  switch (s.scope.category) {
    case Category::mail: co_return co_await restore_message(s, v, folder);
    case Category::contacts:
    case Category::calendar: co_return co_await restore_pim(s, v, folder);
    case Category::onedrive:
    case Category::sharepoint: co_return co_await restore_file(s, v, folder);
    default: break;
  }
  co_return Outcome{"skipped", "teams messages cannot be restored through Graph (export them)", "", "", 0};
}

awaitable<void> RestoreRun::record(const std::vector<std::pair<const storage::SelectedItem*, Outcome>>& outs) {
  if (outs.empty()) co_return;
  json rows = json::array();
  for (auto& [it, o] : outs) {
    const auto& v = it->version;
    rows.push_back({{"version_id", v.version_id},
                    {"item_id", v.item_id},
                    {"category", std::string(storage::to_string(v.category))},
                    {"kind", v.kind},
                    {"name", v.name},
                    {"path", it->container_path ? json(*it->container_path) : json(nullptr)},
                    {"outcome", o.outcome},
                    {"detail", o.detail.empty() ? json(nullptr) : json(o.detail)},
                    {"code", o.code.empty() ? json(nullptr) : json(o.code)},
                    {"target_id", o.target_id.empty() ? json(nullptr) : json(o.target_id)}});
  }
  auto f = [&](PgConnection& c) {
    c.exec(
        "INSERT INTO restore_items (restore_id, version_id, item_id, category, kind, name, path, outcome, detail, code,"
        " target_id)"
        " SELECT $1::uuid, (r->>'version_id')::bigint, (r->>'item_id')::bigint, r->>'category', r->>'kind', r->>'name',"
        " r->>'path', r->>'outcome', r->>'detail', r->>'code', r->>'target_id' FROM jsonb_array_elements($2::jsonb) r"
        " ON CONFLICT (restore_id, version_id) DO UPDATE SET outcome = EXCLUDED.outcome, detail = EXCLUDED.detail,"
        " code = EXCLUDED.code, target_id = EXCLUDED.target_id, at = now()",
        {restore_id_, rows.dump()});
  };
  co_await db(f);
}

// One scope, alone: its containers mapped, then its items written page by page,
// parallel_items at once, each also holding a permit of the run's cap.
awaitable<void> RestoreRun::run_scope(const storage::SelectionScope& scope, const json& start) {
  SelectionEnumerator walk(cat_, spec_, svc_.opts.page_size);
  walk.only_scope(start);
  ScopeState st;
  st.scope = scope;
  bool begun = false;
  for (;;) {
    if (ctx_.cancelled()) co_return;
    auto next = [&](PgConnection& c) { return walk.next(c); };
    auto page = co_await db(next);
    if (!page) co_return;
    if (!begun) {
      begun = true;
      progress_.set_phase(std::string(storage::to_string(scope.category)));
      try {
        co_await begin_scope(st);
      } catch (const std::exception& e) {
        // The whole scope cannot be written (no mailbox, no drive): each item fails.
        svc_.log->warn("restore {}: owner {} {}: {}", restore_id_, scope.owner_id, storage::to_string(scope.category),
                       e.what());
        st.folders.clear();
        st.user.clear();
      }
    }
    if (!page->containers.empty()) {
      if (!st.user.empty()) co_await map_containers(st, page->containers);
      continue;
    }
    // Items already handled by an earlier attempt are not written again.
    std::vector<std::string> ids;
    for (auto& it : page->items) ids.push_back(it.version.version_id);
    auto q = [&](PgConnection& c) {
      std::string arr = "{";
      for (auto& i : ids) arr += (arr.size() > 1 ? "," : "") + i;
      auto r = c.exec("SELECT version_id::text FROM restore_items WHERE restore_id = $1::uuid"
                      " AND version_id = ANY($2::bigint[]) AND outcome <> 'failed'",
                      {restore_id_, arr + "}"});
      std::set<std::string> out;
      for (int i = 0; i < r.rows(); ++i) out.insert(std::string(r.get(i, 0)));
      return out;
    };
    auto already = co_await db(q);
    // This page's items without a recorded outcome (a retried or taken-over run
    // skips what it already restored).
    std::vector<const storage::SelectedItem*> pending;
    for (auto& it : page->items)
      if (!already.count(it.version.version_id)) pending.push_back(&it);
    done += static_cast<long long>(page->items.size() - pending.size());
    std::vector<std::pair<const storage::SelectedItem*, Outcome>> outs(pending.size());
    std::function<awaitable<void>(std::size_t)> one = [&](std::size_t k) -> awaitable<void> {
      if (ctx_.cancelled()) co_return;
      auto permit = co_await items_in_flight_.acquire();
      if (ctx_.cancelled()) co_return;
      const auto* it = pending[k];
      Outcome o;
      std::string error, code;
      try {
        if (st.user.empty()) throw Error(Errc::not_found, "the target owner cannot be written to (see the run's events)");
        o = co_await restore_item(st, *it);
      } catch (const graph::GraphError& e) {
        error = e.what();
        code = e.code().empty() ? std::to_string(e.status()) : e.code();
      } catch (const std::exception& e) {
        error = e.what();
      }
      if (!error.empty()) o = Outcome{"failed", error, code, "", 0};
      outs[k] = {it, o};
      if (o.outcome == "restored" || o.outcome == "copied") progress_.item_new(static_cast<std::uint64_t>(o.bytes));
      else if (o.outcome == "replaced") progress_.item_changed(static_cast<std::uint64_t>(o.bytes));
      else if (o.outcome == "failed") {
        progress_.item_faulted();
        ++failed;
      } else if (o.outcome == "skipped") {
        ++skipped;
      }
      ++done;
    };
    co_await backup::for_each_concurrent(static_cast<std::size_t>(svc_.opts.parallel_items), pending.size(), one);
    std::erase_if(outs, [](auto& p) { return p.first == nullptr; });  // cancelled before their turn
    co_await record(outs);
  }
}

// Scopes run parallel_scopes at once (a mailbox takes only 4 requests at a time:
// one scope alone leaves Graph idle). The checkpoint is the start of the oldest
// scope not finished, so a retried or taken-over run starts there again: what
// the scopes after it recorded is skipped, what they wrote but did not record is
// found as "exists unchanged".
awaitable<scheduler::RunOutcome> RestoreRun::run() {
  SelectionEnumerator walk(cat_, spec_, svc_.opts.page_size);
  if (position_) walk.resume(*position_);
  // The scopes are listed first (an owner and a category each: a few per owner,
  // small beside the items, which stay paged).
  std::vector<std::pair<storage::SelectionScope, json>> scopes;
  for (;;) {
    auto next = [&](PgConnection& c) { return walk.next_scope(c); };
    auto sc = co_await db(next);
    if (!sc) break;
    scopes.push_back(std::move(*sc));
  }
  std::vector<char> finished(scopes.size(), 0);
  std::size_t oldest = 0;
  std::function<awaitable<void>(std::size_t)> scope = [&](std::size_t k) -> awaitable<void> {
    if (ctx_.cancelled()) co_return;
    co_await run_scope(scopes[k].first, scopes[k].second);
    finished[k] = 1;
    const std::size_t was = oldest;
    while (oldest < scopes.size() && finished[oldest]) ++oldest;
    if (oldest != was && oldest < scopes.size() && !ctx_.cancelled()) co_await save_position(scopes[oldest].second);
  };
  // Scopes restored into another owner share its folders (and "exists" is judged
  // from what the folder holds): they run one after another.
  const int at_once = req_.to_owner ? 1 : svc_.opts.parallel_scopes;
  co_await backup::for_each_concurrent(static_cast<std::size_t>(at_once), scopes.size(), scope);
  if (ctx_.cancelled()) co_return scheduler::RunOutcome{scheduler::RunState::cancelled, std::string("cancelled")};
  auto clear = [&](PgConnection& c) {
    c.exec("UPDATE restores SET position = NULL WHERE id = $1::uuid", {restore_id_});
  };
  co_await db(clear);
  if (failed > 0)
    co_return scheduler::RunOutcome{scheduler::RunState::partial,
                                    std::to_string(failed.load()) + " item(s) could not be restored (GET /api/v1/restores/" +
                                        restore_id_ + "/items?outcome=failed)"};
  co_return scheduler::RunOutcome{scheduler::RunState::succeeded, std::nullopt};
}

// ---------------------------------------------------------------- the job kind

awaitable<scheduler::RunOutcome> RestoreKind::execute(scheduler::RunContext& ctx) {
  auto& svc = services_;
  const std::string restore_id = ctx.run().params.value("restore", "");
  struct Loaded {
    std::optional<json> request, position;
    std::optional<std::string> root;
    std::optional<storage::Tenant> tenant;
    std::optional<storage::SealedSecret> secret;
  };
  auto load = [&](PgConnection& c) {
    Loaded l;
    auto r = c.exec("SELECT request::text, position::text, target_root, tenant_id FROM restores WHERE id::text = $1",
                    {restore_id});
    if (r.rows() == 0) return l;
    l.request = json::parse(r.get(0, 0));
    if (!r.is_null(0, 1)) l.position = json::parse(r.get(0, 1));
    if (!r.is_null(0, 2)) l.root = std::string(r.get(0, 2));
    storage::Catalog cat;
    l.tenant = cat.get_tenant(c, std::string(r.get(0, 3)));
    if (l.tenant) l.secret = cat.tenant_secret(c, l.tenant->id);
    return l;
  };
  auto l = co_await svc.db.run(load);
  if (!l.request) co_return scheduler::RunOutcome{scheduler::RunState::failed, "no restore '" + restore_id + "'"};
  if (!l.tenant || !l.secret) co_return scheduler::RunOutcome{scheduler::RunState::failed, std::string("the tenant is gone")};
  RestoreRequest req;
  storage::SelectionSpec spec;
  try {
    req = RestoreRequest::from_json(*l.request);
    auto res = [&](PgConnection& c) { return resolve(c, storage::Catalog{}, req.selection, storage::Scope{}); };
    spec = co_await svc.db.run(res);
  } catch (const Error& e) {
    co_return scheduler::RunOutcome{scheduler::RunState::failed, std::string(e.what())};
  }
  auto ex = co_await asio::this_coro::executor;
  graph::GraphClient client(ex, backup::tenant_endpoint(*l.tenant, *l.secret, svc.sealer), svc.opts.graph, svc.log);
  scheduler::ProgressTracker progress;
  RestoreRun run(svc, ctx, client, progress, restore_id, req, spec, l.root, l.position);

  auto ticking = std::make_shared<bool>(true);
  auto snapshot = [&run, &progress] {
    auto p = progress.snapshot();
    p["items_skipped"] = run.skipped.load();
    p["items_done"] = run.done.load();
    return p;
  };
  asio::co_spawn(
      ex,
      [&ctx, snapshot, ticking]() -> awaitable<void> {
        asio::steady_timer t(co_await asio::this_coro::executor);
        while (*ticking) {
          ctx.set_progress(snapshot());
          t.expires_after(std::chrono::seconds(2));
          co_await t.async_wait(use_awaitable);
        }
      },
      [](std::exception_ptr) {});
  scheduler::RunOutcome out{scheduler::RunState::failed, std::nullopt};
  try {
    out = co_await run.run();
  } catch (const graph::TokenError& e) {
    out = {scheduler::RunState::failed, "tenant '" + l.tenant->spec.name + "': credentials refused: " + e.what()};
  } catch (const std::exception& e) {
    out = {scheduler::RunState::failed, std::string(e.what())};
  }
  *ticking = false;
  ctx.set_progress(snapshot());
  co_return out;
}

}  // namespace m365vault::restore
