#include "pass.hpp"

#include <set>

#include "m365vault/graph/errors.hpp"
#include "m365vault/scheduler/queue.hpp"
#include "m365vault/storage/crypto.hpp"

namespace m365vault::backup {

namespace asio = boost::asio;
using asio::awaitable;
using nlohmann::json;
using storage::PgConnection;

awaitable<std::optional<graph::Page>> next_page(graph::DeltaPager& pager, std::string& expired, int& restarts) {
  expired.clear();
  std::optional<graph::Page> page;
  try {
    page = co_await pager.next();
  } catch (const graph::GraphError& e) {
    // A folder that vanished is not a sync-state problem (ErrorSyncFolderNotFound).
    if (!graph::is_invalid_delta(e) || graph::is_not_found(e) || ++restarts > 3) throw;
    expired = e.code().empty() ? std::to_string(e.status()) : e.code();
  }
  co_return page;
}

awaitable<std::vector<json>> list_all(graph::GraphClient& client, const std::string& url, graph::RequestOptions opts) {
  graph::DeltaPager pager(client, url, opts);
  std::vector<json> out;
  while (auto page = co_await pager.next())
    for (auto& it : page->items) out.push_back(std::move(it));
  co_return out;
}

std::string json_str(const json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string html_text(const std::string& html, std::size_t max) {
  static const std::pair<const char*, const char*> kEntities[] = {
      {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}, {"&nbsp;", " "}};
  std::string out;
  bool space = false;
  auto put = [&](std::string_view s) {
    for (char ch : s) {
      if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') {
        space = !out.empty();
        continue;
      }
      if (space) out += ' ';
      space = false;
      out += ch;
    }
  };
  for (std::size_t i = 0; i < html.size() && out.size() < max;) {
    if (html[i] == '<') {
      auto end = html.find('>', i);
      if (end == std::string::npos) break;
      space = !out.empty();  // a tag separates words (<p>a</p><p>b</p>)
      i = end + 1;
      continue;
    }
    if (html[i] == '&') {
      bool done = false;
      for (auto& [name, text] : kEntities)
        if (html.compare(i, std::char_traits<char>::length(name), name) == 0) {
          put(text);
          i += std::char_traits<char>::length(name);
          done = true;
          break;
        }
      if (done) continue;
    }
    put(std::string_view(&html[i], 1));
    ++i;
  }
  if (out.size() > max) {
    out.resize(max);
    while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();
    if (!out.empty() && (static_cast<unsigned char>(out.back()) & 0x80)) out.pop_back();  // a cut lead byte
  }
  return out;
}

awaitable<void> OwnerPass::begin() {
  env_.progress.set_phase(std::string(storage::to_string(cat_)));
  auto q = [&](PgConnection& c) { return catalog_.begin_snapshot(c, owner_.id, cat_, env_.ctx.run().id); };
  auto snap = co_await db(q);
  snapshot_ = snap.id;
}

awaitable<void> OwnerPass::finish() {
  auto state = faults_ > 0 ? storage::SnapshotState::partial : storage::SnapshotState::complete;
  auto q = [&](PgConnection& c) { catalog_.complete_snapshot(c, snapshot_, state); };
  co_await db(q);
}

awaitable<void> OwnerPass::event(const char* level, const std::string& message) {
  try {
    auto q = [&](PgConnection& c) { scheduler::Queue{}.add_event(c, env_.ctx.run().id, level, message); };
    co_await db(q);
  } catch (const std::exception& e) {
    env_.svc.log->warn("run={} event not recorded: {}", env_.ctx.run().id, e.what());
  }
}

storage::PageCommit OwnerPass::new_page(std::optional<std::string> container) const {
  storage::PageCommit pc;
  pc.owner_id = owner_.id;
  pc.category = cat_;
  pc.container_graph_id = std::move(container);
  pc.snapshot_id = snapshot_;
  return pc;
}

awaitable<void> OwnerPass::store(storage::ItemChange& ch, const std::string& bytes) {
  ContentSink sink(env_.writer);
  env_.progress.bytes_read(bytes.size());
  co_await sink.write(bytes);
  auto stored = co_await sink.finish();
  ch.content_blobs = std::move(stored.blobs);
  ch.content_sha256 = std::move(stored.sha256);
  ch.content_size = stored.size;
}

awaitable<void> OwnerPass::commit(std::vector<storage::PageCommit>& pages, Faults& faults) {
  bool content = false;
  for (auto& p : pages)
    for (auto& i : p.items) content = content || !i.content_blobs.empty();
  if (content) co_await env_.writer.flush();
  // Faults before the pages that skip their items: a crash in between replays the
  // page and records the fault again, never loses it.
  if (!faults.empty()) {
    auto q = [&](PgConnection& c) {
      for (auto& [gid, reason] : faults)
        catalog_.record_fault(c, env_.ctx.run().id, owner_.id, cat_, gid, reason, std::nullopt, snapshot_);
    };
    co_await db(q);
    faults_ += static_cast<long long>(faults.size());
    env_.summary.items_faulted += static_cast<long long>(faults.size());
    for (std::size_t i = 0; i < faults.size(); ++i) env_.progress.item_faulted();
  }
  for (auto& pc : pages) {
    auto q = [&](PgConnection& c) { return catalog_.commit_page(c, pc); };
    auto r = co_await db(q);
    env_.progress.count(static_cast<std::uint64_t>(r.items_added), static_cast<std::uint64_t>(r.items_changed),
                        static_cast<std::uint64_t>(r.items_closed), static_cast<std::uint64_t>(r.bytes_added));
    env_.summary.items_new += r.items_added;
    env_.summary.items_changed += r.items_changed;
    env_.summary.items_deleted += r.items_closed;
  }
  pages.clear();
  faults.clear();
}

awaitable<void> OwnerPass::queue(Pending& p, storage::PageCommit& pc, bool end) {
  for (auto& i : pc.items) p.bytes += static_cast<std::size_t>(i.content_size.value_or(0));
  p.pages.push_back(std::move(pc));
  if (end || p.bytes >= env_.svc.opts.commit_bytes ||
      std::chrono::steady_clock::now() - p.since >= env_.svc.opts.commit_interval)
    co_await commit(p);
}

awaitable<void> OwnerPass::commit(Pending& p) {
  co_await commit(p.pages, p.faults);
  p.bytes = 0;
  p.since = std::chrono::steady_clock::now();
}

awaitable<void> OwnerPass::restart_round(Pending& p, const std::string& container, const std::string& why) {
  co_await commit(p);
  co_await event("warn", why);
  auto q_round = [&](PgConnection& c) {
    return catalog_.start_round(c, owner_.id, cat_, container, storage::RoundCovers::items);
  };
  co_await db(q_round);
}

awaitable<void> OwnerPass::retry_faults(const Retry& retry) {
  auto q_open = [&](PgConnection& c) { return catalog_.open_faults(c, owner_.id, cat_); };
  auto open = co_await db(q_open);
  for (auto& f : open) {
    if (env_.ctx.cancelled()) co_return;
    if (f.run_id == env_.ctx.run().id) continue;  // failed in this very run: next time
    const std::string container = f.item_graph_id.substr(0, f.item_graph_id.find('/'));
    auto q_state = [&](PgConnection& c) { return catalog_.delta_state(c, owner_.id, cat_, container); };
    auto state = co_await db(q_state);
    if (!state.cursor || state.round_id) continue;  // a round under way meets the item itself
    auto pc = new_page(container);
    Faults faults;
    const bool there = co_await retry(f.item_graph_id, pc, faults);
    const std::vector<std::string> ids{f.item_graph_id};
    if (!there) {
      auto q_gone = [&](PgConnection& c) { return catalog_.resolve_faults(c, owner_.id, cat_, ids); };
      co_await db(q_gone);
      continue;
    }
    pc.cursor = *state.cursor;  // unchanged: this page is outside the delta
    pc.expected_cursor = *state.cursor;
    const bool ok = faults.empty();
    std::vector<storage::PageCommit> pages{std::move(pc)};
    co_await commit(pages, faults);
    if (ok) {
      auto q_done = [&](PgConnection& c) { return catalog_.resolve_faults(c, owner_.id, cat_, ids); };
      co_await db(q_done);
    }
  }
}

std::string OwnerPass::listed_name(const json& l) const {
  // Channels and lists have a displayName, chats a topic or, one-on-one, none: their
  // owner's name then (the members').
  for (const char* key : {"displayName", "name", "topic"})
    if (auto n = json_str(l, key); !n.empty()) return n;
  return owner_.spec.display_name.value_or(json_str(l, "id"));
}

awaitable<void> OwnerPass::sync_listed(const std::vector<json>& listed, const char* info_kind) {
  auto pc = new_page(std::nullopt);
  std::set<std::string> seen;
  std::vector<std::string> ids;
  for (auto& l : listed) {
    auto id = json_str(l, "id");
    if (id.empty() || !seen.insert(id).second) continue;
    storage::ContainerChange ch;
    ch.graph_id = id;
    ch.display_name = listed_name(l);
    pc.containers.push_back(std::move(ch));
    ids.push_back(id);
  }
  auto q_open = [&](PgConnection& c) { return catalog_.open_containers(c, owner_.id, cat_); };
  auto open = co_await db(q_open);
  for (auto& k : open)
    if (!seen.count(k.graph_id)) {
      storage::ContainerChange gone;
      gone.graph_id = k.graph_id;
      gone.removed = true;
      pc.containers.push_back(std::move(gone));
    }
  // The containers' own JSON as items, stored again only when it changed.
  auto q_known = [&](PgConnection& c) { return catalog_.known_items(c, owner_.id, cat_, ids); };
  auto known = co_await db(q_known);
  for (auto& l : listed) {
    auto id = json_str(l, "id");
    if (id.empty() || !seen.erase(id)) continue;
    json j = l;
    j.erase("@odata.context");
    j.erase("@odata.etag");
    const std::string text = j.dump();
    const std::string key = storage::crypto::to_hex(storage::crypto::sha256(text));
    if (auto k = known.find(id); k != known.end() && k->second.change_key == key) continue;
    storage::ItemChange ch;
    ch.graph_id = id;
    ch.kind = info_kind;
    ch.container_graph_id = id;
    ch.change_key = key;
    ch.name = listed_name(l);
    if (auto m = json_str(l, "lastModifiedDateTime"); !m.empty()) ch.modified_at = m;
    if (auto d = json_str(l, "description"); !d.empty()) ch.body_preview = d;
    ch.meta = j;
    ch.content_type = "application/json";
    co_await store(ch, text);
    pc.items.push_back(std::move(ch));
  }
  auto q_state = [&](PgConnection& c) { return catalog_.delta_state(c, owner_.id, cat_, std::nullopt); };
  auto state = co_await db(q_state);
  pc.cursor = "listed";  // a listing has no token; the scope's cursor only records that it ran
  pc.expected_cursor = state.cursor.value_or("");
  std::vector<storage::PageCommit> pages{std::move(pc)};
  Faults none;
  co_await commit(pages, none);
}

}  // namespace m365vault::backup
