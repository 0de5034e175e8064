#include "drive.hpp"
#include "lists.hpp"
#include "pass.hpp"

#include <boost/beast/core/string.hpp>
#include <openssl/evp.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>

#include "m365vault/backup/concurrent.hpp"
#include "m365vault/backup/quickxor.hpp"
#include "m365vault/core/text.hpp"
#include "m365vault/graph/errors.hpp"
#include "m365vault/graph/pager.hpp"
#include "m365vault/scheduler/queue.hpp"
#include "m365vault/storage/crypto.hpp"

namespace m365vault::backup {

namespace asio = boost::asio;
using asio::awaitable;
using nlohmann::json;
using storage::Category;
using storage::PgConnection;

namespace {

constexpr int kDownloadAttempts = 3;  // a hash mismatch is downloaded again twice, then a fault
constexpr int kMaxResyncs = 8;        // 410s in one pass before the pass gives up

bool has(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && !it->is_null();
}

std::string parent_of(const json& item) {
  auto p = item.find("parentReference");
  return p != item.end() && p->is_object() ? json_str(*p, "id") : std::string();
}

std::string hash_of(const json& item, const char* which) {
  auto f = item.find("file");
  if (f == item.end() || !f->is_object()) return {};
  auto h = f->find("hashes");
  return h != f->end() && h->is_object() ? json_str(*h, which) : std::string();
}

// Whether a Content-Range ("bytes a-b/n") starts at `offset`.
bool starts_at(std::string_view content_range, long long offset) {
  const std::string want = "bytes " + std::to_string(offset) + "-";
  return content_range.substr(0, want.size()) == want;
}

// SHA-1, only for drives that give sha1Hash without sha256Hash.
class Sha1 {
 public:
  Sha1() : ctx_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) { reset(); }
  void reset() { EVP_DigestInit_ex(ctx_.get(), EVP_sha1(), nullptr); }
  void update(std::string_view d) { EVP_DigestUpdate(ctx_.get(), d.data(), d.size()); }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_.get(), md, &n);
    return storage::crypto::to_hex(md, n);
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

// What the index holds for a drive item now: enough to decide whether its
// content must be downloaded, and to reuse it when not.
struct StoredFile {
  std::string change_key, container, ctag, quick_xor;
  std::vector<std::string> blobs;  // raw ids
  std::optional<std::string> sha256;  // raw
  std::optional<long long> content_size;
};

// Open versions of these items with their content references. (Catalog::known_items
// gives the change key only; a move or rename of a file reuses its blobs, so the
// pass needs them too. Candidate for a Catalog method.)
std::unordered_map<std::string, StoredFile> stored_files(PgConnection& c, const std::string& owner_id, Category cat,
                                                         const std::vector<std::string>& ids) {
  std::unordered_map<std::string, StoredFile> out;
  if (ids.empty()) return out;
  auto r = c.exec(
      "SELECT i.graph_id, coalesce(v.change_key, ''), coalesce(k.graph_id, ''), coalesce(v.meta->>'cTag', ''),"
      " coalesce(v.meta#>>'{file,hashes,quickXorHash}', ''), encode(v.content_sha256, 'hex'), v.content_size,"
      " array_to_string(ARRAY(SELECT encode(b, 'hex') FROM unnest(v.content_blobs) WITH ORDINALITY AS u(b, n)"
      "   ORDER BY n), ',')"
      " FROM items i JOIN item_versions v ON v.item_id = i.id AND v.to_at IS NULL"
      " LEFT JOIN containers k ON k.id = v.container_id"
      " WHERE i.owner_id = $1::uuid AND i.category = $2 AND i.graph_id IN (SELECT jsonb_array_elements_text($3::jsonb))",
      {owner_id, std::string(storage::to_string(cat)), json(ids).dump()});
  for (int i = 0; i < r.rows(); ++i) {
    StoredFile f;
    f.change_key = r.get(i, 1);
    f.container = r.get(i, 2);
    f.ctag = r.get(i, 3);
    f.quick_xor = r.get(i, 4);
    if (!r.is_null(i, 5)) f.sha256 = storage::crypto::from_hex(r.get(i, 5));
    if (!r.is_null(i, 6)) f.content_size = std::stoll(std::string(r.get(i, 6)));
    std::string_view list = r.get(i, 7);
    while (!list.empty()) {
      auto comma = list.find(',');
      if (auto raw = storage::crypto::from_hex(list.substr(0, comma))) f.blobs.push_back(std::move(*raw));
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    }
    out[std::string(r.get(i, 0))] = std::move(f);
  }
  return out;
}

// A driveItem's metadata as a catalog version (content filled by the caller).
storage::ItemChange drive_item_change(const json& it) {
  storage::ItemChange ch;
  ch.graph_id = json_str(it, "id");
  ch.kind = has(it, "file") ? "file" : has(it, "package") ? "package" : has(it, "remoteItem") ? "remote" : "item";
  if (auto p = parent_of(it); !p.empty()) ch.container_graph_id = p;
  ch.change_key = json_str(it, "eTag");
  if (ch.change_key.empty()) ch.change_key = json_str(it, "cTag");
  ch.name = json_str(it, "name");
  if (auto s = it.find("size"); s != it.end() && s->is_number_integer()) ch.size = s->get<long long>();
  if (auto m = json_str(it, "lastModifiedDateTime"); !m.empty()) ch.modified_at = m;
  if (ch.kind == "file") {
    auto mt = it["file"].is_object() ? json_str(it["file"], "mimeType") : std::string();
    ch.content_type = mt.empty() ? std::string("application/octet-stream") : mt;
  }
  if (ch.kind == "package") ch.flags.push_back("package");
  // Lossless metadata, without the pre-authenticated download URL (a short-lived
  // credential for the bytes: it never belongs in the index).
  ch.meta = it;
  ch.meta.erase("@microsoft.graph.downloadUrl");
  ch.meta.erase("@odata.context");
  return ch;
}

class DrivePass {
 public:
  DrivePass(DriveEnv& env, storage::Owner owner, Category cat, std::string drive_id, std::string who)
      : env_(env), pass_(env, std::move(owner), cat, who), cat_(cat), drive_(std::move(drive_id)), who_(std::move(who)) {}

  awaitable<void> run() {
    co_await pass_.begin();
    co_await walk();
    if (env_.ctx.cancelled()) co_return;
    co_await retry_faults();
    if (env_.ctx.cancelled()) co_return;
    co_await pass_.finish();
  }

 private:
  using Faults = OwnerPass::Faults;
  const std::string& owner_id() const { return pass_.owner().id; }

  std::string delta_start() const { return "/v1.0/drives/" + drive_ + "/root/delta"; }

  awaitable<void> walk() {
    auto q_state = [&](PgConnection& c) { return catalog_.delta_state(c, owner_id(), cat_, std::nullopt); };
    auto state = co_await env_.svc.db.run(q_state);
    std::string expected = state.cursor.value_or("");
    graph::RequestOptions opts;
    std::optional<graph::DeltaPager> pager;
    pager.emplace(env_.client, state.cursor.value_or(delta_start()), opts);
    int resyncs = 0;
    for (;;) {
      if (env_.ctx.cancelled()) co_return;
      std::optional<graph::Page> page;
      std::optional<std::string> resync;  // where the new round starts
      std::string why;
      try {
        page = co_await pager->next();
      } catch (const graph::GraphError& e) {
        if (!graph::is_invalid_delta(e) || graph::is_not_found(e) || ++resyncs > kMaxResyncs) throw;
        resync = e.location().empty() ? delta_start() : e.location();
        why = e.inner_code().empty() ? (e.code().empty() ? std::to_string(e.status()) : e.code()) : e.inner_code();
      }
      if (resync) {
        // The service lost our place: enumerate the drive again in a round that
        // downloads only what differs and closes only what it no longer reports.
        const std::string msg = "drive delta of '" + who_ + "' (" + std::string(storage::to_string(cat_)) +
                                ") needs a resync (" + why + "): enumerating the drive again";
        co_await pass_.event("warn", msg);
        auto q_round = [&](PgConnection& c) {
          return catalog_.start_round(c, owner_id(), cat_, std::nullopt, storage::RoundCovers::both);
        };
        co_await env_.svc.db.run(q_round);
        expected.clear();
        deferred_folders_.clear();  // the new round closes what it does not report
        pager.emplace(env_.client, *resync, opts);
        continue;
      }
      if (!page) break;
      std::string cursor = page->delta_link ? *page->delta_link : page->next_link.value_or("");
      expected = co_await apply(page->items, cursor, page->delta_link.has_value(), expected);
    }
  }

  // One page (or one re-read item): folders, files, deletions, committed with the
  // cursor that follows them once their content is durable. Returns the cursor the
  // catalog holds afterwards.
  //
  // Folder deletions wait for the end of the round (the page with the deltaLink):
  // a child moved out of a deleted folder may be reported on a later page, and
  // closing the folder's subtree first would close the child and everything under
  // it. While deletions wait, pages commit without moving the cursor, so a crash
  // replays the round from the first of them (replayed items are met unchanged).
  awaitable<std::string> apply(const std::vector<json>& items, const std::string& cursor, bool delta_link,
                               const std::string& expected) {
    // The last report of an item wins.
    std::vector<const json*> latest;
    std::unordered_map<std::string, std::size_t> at;
    for (auto& it : items) {
      auto id = json_str(it, "id");
      if (id.empty()) continue;
      if (auto a = at.find(id); a != at.end()) {
        latest[a->second] = &it;
      } else {
        at[id] = latest.size();
        latest.push_back(&it);
      }
    }

    storage::PageCommit pc = pass_.new_page(std::nullopt);
    std::vector<storage::ContainerChange> removed_folders;
    std::vector<const json*> files;
    for (auto* p : latest) {
      const json& it = *p;
      const auto id = json_str(it, "id");
      if (has(it, "deleted")) {
        // Business drives keep the facet on deletions; without one, the id may be
        // either, and closing a missing one is a no-op.
        const bool folder = has(it, "folder"), file = has(it, "file") || has(it, "package");
        if (folder || !file) {
          storage::ContainerChange gone;
          gone.graph_id = id;
          gone.removed = true;
          removed_folders.push_back(std::move(gone));
        }
        if (file || !folder) pc.removed_items.push_back(id);
        continue;
      }
      if (has(it, "root") || has(it, "folder")) {
        storage::ContainerChange ch;
        ch.graph_id = id;
        ch.display_name = json_str(it, "name");
        if (has(it, "root")) {
          ch.well_known = "root";
          if (ch.display_name.empty()) ch.display_name = "root";
        } else if (auto parent = parent_of(it); !parent.empty()) {
          ch.parent_graph_id = parent;
        }
        std::erase_if(deferred_folders_, [&](const storage::ContainerChange& c) { return c.graph_id == id; });
        pc.containers.push_back(std::move(ch));
        continue;
      }
      files.push_back(p);
    }

    std::vector<std::string> ids;
    for (auto* f : files) ids.push_back(json_str(*f, "id"));
    std::unordered_map<std::string, StoredFile> stored;
    if (!ids.empty()) {
      auto q_known = [&](PgConnection& c) { return stored_files(c, owner_id(), cat_, ids); };
      stored = co_await env_.svc.db.run(q_known);
    }

    // Each file's outcome, decided side by side (at most downloads_per_drive
    // downloads at once, each with bounded memory), assembled in page order.
    struct Outcome {
      std::optional<storage::ItemChange> change;
      bool unchanged = false;
      std::string fault;
    };
    std::vector<Outcome> outcomes(files.size());
    std::function<awaitable<void>(std::size_t)> decide = [&](std::size_t k) -> awaitable<void> {
      if (env_.ctx.cancelled()) co_return;
      const json& f = *files[k];
      Outcome& out = outcomes[k];
      auto ch = drive_item_change(f);
      auto s = stored.find(ch.graph_id);
      const std::string parent = ch.container_graph_id.value_or("");
      if (s != stored.end() && !ch.change_key.empty() && s->second.change_key == ch.change_key &&
          s->second.container == parent) {
        out.unchanged = true;  // a replay, or a resync round meeting what is stored
        co_return;
      }
      if (ch.kind == "file") {
        const std::string ctag = json_str(f, "cTag"), qx = hash_of(f, "quickXorHash");
        const bool same_content = s != stored.end() && !s->second.blobs.empty() && s->second.sha256 &&
                                  !ctag.empty() && s->second.ctag == ctag &&
                                  (qx.empty() || s->second.quick_xor.empty() || qx == s->second.quick_xor);
        if (same_content) {
          // Renamed, moved or touched, not edited: the new version points at the stored bytes.
          ch.content_blobs = s->second.blobs;
          ch.content_sha256 = s->second.sha256;
          ch.content_size = s->second.content_size;
        } else {
          // One of the run's download slots: drives side by side share them, so the
          // bytes held in flight stay bounded whatever the number of owners.
          auto permit = co_await env_.downloads.acquire();
          auto got = co_await download(ch, f, out.fault);
          if (!got) co_return;
          ch = std::move(*got);
        }
      }
      out.change = std::move(ch);
    };
    const auto parallel = static_cast<std::size_t>(std::max(1, env_.svc.opts.downloads_per_drive));
    co_await for_each_concurrent(parallel, files.size(), decide);
    if (env_.ctx.cancelled()) co_return expected;  // nothing of this page is committed

    Faults faults;
    for (std::size_t k = 0; k < files.size(); ++k) {
      auto& out = outcomes[k];
      const auto id = json_str(*files[k], "id");
      if (out.unchanged) {
        pc.unchanged_items.push_back(id);
      } else if (!out.change) {
        faults.emplace_back(id, out.fault);
        pc.unchanged_items.push_back(id);  // keeps a stored version open through a resync round
      } else {
        pc.items.push_back(std::move(*out.change));
      }
    }

    deferred_folders_.insert(deferred_folders_.end(), removed_folders.begin(), removed_folders.end());
    removed_folders.clear();
    const bool hold = !deferred_folders_.empty() && !delta_link;
    pc.cursor = hold ? expected : cursor;
    pc.delta_link = delta_link;
    pc.expected_cursor = expected;
    if (!hold) removed_folders = std::exchange(deferred_folders_, {});
    std::vector<storage::PageCommit> pages;
    if (!removed_folders.empty() && (!pc.containers.empty() || !pc.items.empty())) {
      // Folder deletions after the rest of the page: a folder moved out of a
      // deleted one (or a file) must land in its new parent before the deleted
      // subtree is closed. The first part leaves the cursor where it was, so a
      // crash between the two replays the round's last page.
      storage::PageCommit first = pc;
      first.removed_items.clear();
      first.cursor = expected;
      first.delta_link = false;
      pc.containers.clear();
      pc.items.clear();
      pc.unchanged_items.clear();
      pages.push_back(std::move(first));
    }
    pc.containers.insert(pc.containers.end(), removed_folders.begin(), removed_folders.end());
    std::string now_at = pc.cursor;
    pages.push_back(std::move(pc));
    co_await pass_.commit(pages, faults);
    co_return now_at;
  }

  // Streams one file into the repository and checks it against the hash Graph
  // gave. A connection cut mid-body resumes with Range from the byte where it
  // stopped (If-Range with the ETag of the bytes already fed, so a file changed in
  // between is never spliced); an answer that ignores the range (200) or does not
  // start there restarts the file from byte 0. nullopt: the item could not be read
  // (the reason is in `fault`).
  awaitable<std::optional<storage::ItemChange>> download(const storage::ItemChange& meta, const json& item,
                                                         std::string& fault) {
    storage::ItemChange ch = meta;
    const std::string want_qx = hash_of(item, "quickXorHash");
    const std::string want_sha256 = ascii_lower(hash_of(item, "sha256Hash"));
    const std::string want_sha1 = ascii_lower(hash_of(item, "sha1Hash"));
    const std::string url = "/v1.0/drives/" + drive_ + "/items/" + ch.graph_id + "/content";
    std::string mismatch;
    for (int attempt = 1; attempt <= kDownloadAttempts; ++attempt) {
      ContentSink sink(env_.writer);
      QuickXorHash qx;
      Sha1 sha1;
      long long offset = 0;   // bytes fed to the sink and the hashes
      std::string validator;  // ETag of the answer those bytes came from
      bool discard = false;   // this answer's bytes are not the ones asked for
      // The hashes read the bytes where the sink's SHA-256 does, off the network
      // thread; a restart forgets the sink's unhashed bytes with the hashes.
      sink.also_hash([&](std::string_view data) {
        qx.update(data);
        if (!want_sha1.empty()) sha1.update(data);
      });
      auto restart = [&] {
        sink.reset();
        qx = QuickXorHash();
        sha1.reset();
        offset = 0;
      };
      graph::ChunkFn on_chunk = [&](std::string_view data) -> awaitable<void> {
        if (discard) co_return;
        env_.progress.bytes_read(data.size());
        offset += static_cast<long long>(data.size());
        co_await sink.write(data);
      };
      graph::StreamHeadFn on_head = [&](int status, const net::Headers& h) {
        discard = false;
        if (offset > 0 && (status != 206 || !starts_at(h.get("Content-Range").value_or(""), offset))) {
          // The server ignored the range, or the file changed (If-Range): start over.
          if (status == 206) {
            discard = true;  // a 206 elsewhere than asked: its bytes fit nowhere
            return;
          }
          restart();
        }
        if (offset == 0) validator = std::string(h.get("ETag").value_or(""));
      };
      std::function<void()> no_restart;  // a cut is resumed here, not restarted by the client
      bool again = false;
      int stalled = 0;  // cuts in a row that brought nothing
      for (;;) {
        graph::RequestOptions opts;
        if (offset > 0) {
          opts.headers.emplace_back("Range", "bytes=" + std::to_string(offset) + "-");
          if (!validator.empty()) opts.headers.emplace_back("If-Range", validator);
          ++resumes_;
        }
        const long long before = offset;
        std::string cut;
        try {
          co_await env_.client.get_stream(url, on_chunk, opts, no_restart, on_head);
        } catch (const graph::GraphError& e) {
          if (graph::is_not_found(e) || graph::is_corrupt_item(e) || graph::is_malware(e) ||
              graph::is_access_denied(e)) {
            fault = e.what();
            co_return std::nullopt;
          }
          // An expired download URL answers 401: /content gives a fresh one. A 416
          // to a resume (the file shrank) starts over.
          if ((e.status() != 401 && !(e.status() == 416 && offset > 0)) || attempt == kDownloadAttempts) throw;
          again = true;
        } catch (const Error& e) {
          // Connection lost mid-body (the client retried those that delivered nothing).
          if ((e.code() != Errc::unavailable && e.code() != Errc::timeout) || offset == 0) throw;
          cut = e.what();
        }
        if (again || discard) break;
        if (cut.empty()) break;  // the whole body
        stalled = offset > before ? 0 : stalled + 1;
        if (stalled >= kDownloadAttempts) throw Error(Errc::unavailable, cut);
        env_.svc.log->info("run={} drive item '{}' of '{}': {}; resuming at byte {}", env_.ctx.run().id, ch.graph_id,
                           who_, cut, offset);
      }
      if (again || discard) continue;
      auto stored = co_await sink.finish();
      const std::string sha256 = storage::crypto::to_hex(stored.sha256);
      if (!want_qx.empty() && qx.base64() != want_qx)
        mismatch = "quickXorHash " + qx.base64() + ", expected " + want_qx;
      else if (want_qx.empty() && !want_sha256.empty() && sha256 != want_sha256)
        mismatch = "sha256 " + sha256 + ", expected " + want_sha256;
      else if (want_qx.empty() && want_sha256.empty() && !want_sha1.empty() && sha1.hex() != want_sha1)
        mismatch = "sha1 mismatch, expected " + want_sha1;
      else
        mismatch.clear();
      if (!mismatch.empty()) {
        env_.svc.log->warn("run={} drive item '{}' of '{}': {} (download {} of {})", env_.ctx.run().id, ch.graph_id,
                           who_, mismatch, attempt, kDownloadAttempts);
        continue;
      }
      ch.content_blobs = std::move(stored.blobs);
      ch.content_sha256 = std::move(stored.sha256);
      ch.content_size = stored.size;
      co_return ch;
    }
    fault = "get '" + url + "': content does not match its hash after " + std::to_string(kDownloadAttempts) +
            " downloads (" + mismatch + ")";
    co_return std::nullopt;
  }

  // Files that faulted in earlier runs: the delta will not report them again
  // until they change, so each is read by id and applied as a page of its own
  // that leaves the cursor where it is.
  awaitable<void> retry_faults() {
    auto q_open = [&](PgConnection& c) { return catalog_.open_faults(c, owner_id(), cat_); };
    auto open = co_await env_.svc.db.run(q_open);
    for (auto& f : open) {
      if (env_.ctx.cancelled()) co_return;
      if (f.run_id == env_.ctx.run().id) continue;  // failed in this very run: next time
      std::optional<json> item;
      try {
        const std::string url = "/v1.0/drives/" + drive_ + "/items/" + f.item_graph_id;
        graph::RequestOptions opts;  // named: a defaulted argument is a temporary inside co_await (GCC 12)
        auto r = co_await env_.client.get(url, opts);
        item = r.parse();
      } catch (const graph::GraphError& e) {
        if (!graph::is_not_found(e)) throw;
      }
      if (!item) {
        auto q_gone = [&](PgConnection& c) {
          return catalog_.resolve_faults(c, owner_id(), cat_, {f.item_graph_id});
        };
        co_await env_.svc.db.run(q_gone);
        continue;
      }
      auto q_state = [&](PgConnection& c) { return catalog_.delta_state(c, owner_id(), cat_, std::nullopt); };
      auto state = co_await env_.svc.db.run(q_state);
      if (!state.cursor) continue;  // a round is under way: it meets the item itself
      std::vector<json> one{std::move(*item)};
      co_await apply(one, *state.cursor, false, *state.cursor);
    }
  }

  DriveEnv& env_;
  OwnerPass pass_;  // the snapshot, its commits and events
  Category cat_;
  std::string drive_, who_;
  const storage::Catalog& catalog_ = pass_.catalog();
  long long resumes_ = 0;  // Range requests after a cut
  std::vector<storage::ContainerChange> deferred_folders_;  // deleted folders, closed at the round's end
};

std::string owner_label(const storage::Owner& o) {
  return o.spec.upn.value_or(o.spec.display_name.value_or(o.spec.graph_id));
}

}  // namespace

awaitable<void> backup_onedrive(DriveEnv& env, const storage::Owner& user) {
  std::string drive_id, skip;
  try {
    const std::string url = "/v1.0/users/" + user.spec.graph_id + "/drive";
    graph::RequestOptions opts;  // named: a defaulted argument is a temporary inside co_await (GCC 12)
    auto r = co_await env.client.get(url, opts);
    drive_id = json_str(r.parse(), "id");
  } catch (const graph::GraphError& e) {
    // Unlicensed, or OneDrive never provisioned: "User's mysite not found".
    if (!graph::is_not_found(e) && !graph::is_mailbox_not_enabled(e)) throw;
    skip = "no OneDrive provisioned (" + std::to_string(e.status()) + " " + e.code() + ": " + e.graph_message() + ")";
  }
  if (!skip.empty()) throw CategorySkipped(skip);
  if (drive_id.empty()) throw Error(Errc::unavailable, "get '/users/" + user.spec.graph_id + "/drive': no drive id");
  DrivePass pass(env, user, Category::onedrive, drive_id, owner_label(user));
  co_await pass.run();
}

namespace {
// An owner of the selection that could not be backed up: a problem of the run and an
// error event.
awaitable<void> owner_failed(DriveEnv& env, const std::string& problem) {
  env.summary.problems.push_back(problem);
  ++env.summary.owners_failed;
  auto q_event = [&](PgConnection& c) { scheduler::Queue{}.add_event(c, env.ctx.run().id, "error", problem); };
  co_await env.svc.db.run(q_event);
}
}  // namespace

awaitable<void> backup_sharepoint(DriveEnv& env, const std::vector<std::string>& wanted,
                                  const std::vector<std::string>& must_name_site) {
  env.progress.set_phase("sharepoint");
  // Sites: the search lists collections (and usually subsites); subsites of each
  // are listed too, so none is missed whichever way the tenant answers.
  std::vector<json> sites;
  std::set<std::string> seen;
  std::vector<json> unvisited;  // sites whose subsites are not listed yet
  {
    const std::string url = "/v1.0/sites?search=*";
    graph::RequestOptions opts;  // named: a defaulted argument is a temporary inside co_await (GCC 12)
    unvisited = co_await list_all(env.client, url, opts);
  }
  while (!unvisited.empty()) {
    json s = std::move(unvisited.back());
    unvisited.pop_back();
    auto id = json_str(s, "id");
    if (id.empty() || !seen.insert(id).second) continue;
    const std::string url = "/v1.0/sites/" + id + "/sites";
    graph::RequestOptions opts;
    auto subs = co_await list_all(env.client, url, opts);
    for (auto& sub : subs) unvisited.push_back(std::move(sub));
    sites.push_back(std::move(s));
  }
  auto names = [](const json& s, const std::string& w) {
    using boost::beast::iequals;
    return iequals(w, json_str(s, "id")) || iequals(w, json_str(s, "displayName")) || iequals(w, json_str(s, "webUrl"));
  };
  for (auto& w : must_name_site) {
    if (std::any_of(sites.begin(), sites.end(), [&](const json& s) { return names(s, w); })) continue;
    const std::string problem = "no user or site '" + w + "' in tenant '" + env.tenant.spec.name + "'";
    co_await owner_failed(env, problem);
  }
  if (!wanted.empty()) {
    std::vector<json> kept;
    for (auto& s : sites)
      if (std::any_of(wanted.begin(), wanted.end(), [&](const std::string& w) { return names(s, w); }))
        kept.push_back(s);
    sites = std::move(kept);
  }

  storage::Catalog catalog;
  std::vector<storage::OwnerSpec> specs;
  for (auto& s : sites) {
    storage::OwnerSpec o;
    o.kind = storage::OwnerKind::site;
    o.graph_id = json_str(s, "id");
    if (auto n = json_str(s, "displayName"); !n.empty()) o.display_name = n;
    if (auto u = json_str(s, "webUrl"); !u.empty()) o.upn = u;  // the site's address, what people search by
    specs.push_back(std::move(o));
  }
  if (specs.empty()) co_return;
  auto q_sites = [&](PgConnection& c) { return catalog.upsert_owners(c, env.tenant.id, specs); };
  auto site_owners = co_await env.svc.db.run(q_sites);

  for (auto& site : site_owners) {
    if (env.ctx.cancelled()) co_return;
    const std::string site_name = site.spec.display_name.value_or(site.spec.graph_id);
    std::optional<std::string> failed;
    try {
      co_await backup_site_lists(env, site);  // lists.cpp: the site's lists and their items
      const std::string url = "/v1.0/sites/" + site.spec.graph_id + "/drives";
      graph::RequestOptions opts;
      auto drives = co_await list_all(env.client, url, opts);
      std::vector<storage::OwnerSpec> dspecs;
      for (auto& d : drives) {
        storage::OwnerSpec o;
        o.kind = storage::OwnerKind::drive;
        o.graph_id = json_str(d, "id");
        if (o.graph_id.empty()) continue;
        o.display_name = site_name + " / " + json_str(d, "name");
        if (auto u = json_str(d, "webUrl"); !u.empty()) o.upn = u;
        dspecs.push_back(std::move(o));
      }
      if (dspecs.empty()) continue;
      auto q_drives = [&](PgConnection& c) { return catalog.upsert_owners(c, env.tenant.id, dspecs); };
      auto drive_owners = co_await env.svc.db.run(q_drives);
      for (auto& d : drive_owners) {
        if (env.ctx.cancelled()) co_return;
        DrivePass pass(env, d, Category::sharepoint, d.spec.graph_id, d.spec.display_name.value_or(d.spec.graph_id));
        co_await pass.run();
      }
      ++env.summary.owners;
    } catch (const graph::GraphError& e) {
      if (graph::is_auth_failure(e)) throw;
      failed = e.what();
    } catch (const graph::TokenError&) {
      throw;
    } catch (const std::exception& e) {
      failed = e.what();
    }
    if (failed) {
      if (env.ctx.cancelled()) co_return;
      const std::string problem = "site '" + site_name + "' sharepoint: " + *failed;
      co_await owner_failed(env, problem);
    }
  }
}

}  // namespace m365vault::backup
