#include "teams.hpp"

#include <cctype>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>
#include <unordered_map>

#include "m365vault/graph/errors.hpp"
#include "pass.hpp"

namespace m365vault::backup {

namespace asio = boost::asio;
using asio::awaitable;
using nlohmann::json;
using storage::Category;
using storage::PgConnection;

namespace {

constexpr const char* kPageOptions = "?$top=50&$expand=replies";  // 50: the most Graph allows

bool is_null_or_missing(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null();
}

// Deleted per CONTRACT.md 13: deletedDateTime set, or (reported in the wild) an
// empty body with deletedDateTime null and no sender.
bool deleted_message(const json& m) {
  if (!is_null_or_missing(m, "deletedDateTime")) return true;
  auto b = m.find("body");
  const bool empty_body = b == m.end() || !b->is_object() || json_str(*b, "content").empty();
  auto a = m.find("attachments");
  const bool no_attachments = a == m.end() || !a->is_array() || a->empty();
  return empty_body && no_attachments && is_null_or_missing(m, "from");
}

// The message as stored: Graph's JSON without the replies expanded into it (they
// are items of their own) and without the response's context.
json stored_message(const json& m) {
  json j = m;
  j.erase("replies");
  j.erase("replies@odata.context");
  j.erase("replies@odata.nextLink");
  j.erase("@odata.context");
  return j;
}

std::string sender_of(const json& m) {
  auto f = m.find("from");
  if (f == m.end() || !f->is_object()) return {};
  for (const char* who : {"user", "application", "device"}) {
    auto w = f->find(who);
    if (w != f->end() && w->is_object()) {
      auto name = json_str(*w, "displayName");
      if (!name.empty()) return name;
      if (auto id = json_str(*w, "id"); !id.empty()) return id;
    }
  }
  return {};
}

// Inline images: (hosted content id, the path its $value is read from), from the
// body's <img src=".../hostedContents/{id}/$value">. The path is taken from the
// reference when it is a Graph path of this message's team; else built from ids.
std::vector<std::pair<std::string, std::string>> hosted_refs(const json& m, const std::string& message_base) {
  std::vector<std::pair<std::string, std::string>> out;
  auto b = m.find("body");
  if (b == m.end() || !b->is_object()) return out;
  const std::string html = json_str(*b, "content");
  const std::string marker = "/hostedContents/";
  std::set<std::string> seen;
  for (auto at = html.find(marker); at != std::string::npos; at = html.find(marker, at + 1)) {
    auto start = at + marker.size();
    auto end = html.find_first_of("/\"' >", start);
    if (end == std::string::npos || end == start) continue;
    auto id = html.substr(start, end - start);
    if (!seen.insert(id).second) continue;
    std::string path = message_base + "/hostedContents/" + id + "/$value";
    auto q = html.rfind('"', at);
    auto close = html.find('"', at);
    if (q != std::string::npos && close != std::string::npos) {
      auto url = html.substr(q + 1, close - q - 1);
      for (const char* v : {"/v1.0/teams/", "/beta/teams/"})
        if (auto p = url.find(v); p != std::string::npos) {
          auto candidate = url.substr(p);
          if (candidate.find("..") == std::string::npos && candidate.ends_with("/$value") &&
              candidate.find("/hostedContents/" + id + "/") != std::string::npos)
            path = candidate;
          break;
        }
    }
    out.emplace_back(std::move(id), std::move(path));
  }
  return out;
}

storage::ItemChange message_item(const json& m, const std::string& path, const std::string& channel) {
  storage::ItemChange ch;
  ch.graph_id = path;
  ch.kind = "message";
  ch.container_graph_id = channel;
  ch.change_key = json_str(m, "etag");
  if (ch.change_key.empty()) ch.change_key = json_str(m, "lastModifiedDateTime");
  if (auto s = json_str(m, "subject"); !s.empty()) ch.subject = s;
  if (auto s = sender_of(m); !s.empty()) ch.sender = s;
  auto b = m.find("body");
  std::string text;
  if (b != m.end() && b->is_object()) {
    auto content = json_str(*b, "content");
    text = json_str(*b, "contentType") == "text" ? content.substr(0, 1000) : html_text(content, 1000);
  }
  if (!text.empty()) ch.body_preview = text;
  ch.name = ch.subject ? *ch.subject : html_text(text, 80);
  if (ch.name.empty()) ch.name = "(no text)";
  if (auto c = json_str(m, "createdDateTime"); !c.empty()) ch.sent_at = c;
  if (auto c = json_str(m, "lastModifiedDateTime"); !c.empty()) ch.modified_at = c;
  if (!is_null_or_missing(m, "replyToId")) ch.flags.push_back("reply");
  if (!is_null_or_missing(m, "lastEditedDateTime")) ch.flags.push_back("edited");
  if (auto a = m.find("attachments"); a != m.end() && a->is_array() && !a->empty()) ch.flags.push_back("has_attachments");
  // Metadata without the body (the stored JSON has it whole).
  ch.meta = stored_message(m);
  ch.meta.erase("body");
  ch.content_type = "application/json";
  return ch;
}

// An inline image: its item's graph id, where its bytes are read, its message's
// graph id and its hosted content id.
struct Hosted {
  std::string path, url, message, id;
};

// Milliseconds since the epoch of an RFC 3339 UTC instant as Graph writes them
// ("2026-08-01T10:00:00.123Z", "...:00Z"); nullopt when it is not one.
std::optional<std::int64_t> instant_ms(const std::string& s) {
  std::tm tm{};
  int frac_at = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &frac_at) != 6)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::int64_t ms = static_cast<std::int64_t>(timegm(&tm)) * 1000;
  if (static_cast<std::size_t>(frac_at) < s.size() && s[static_cast<std::size_t>(frac_at)] == '.') {
    int scale = 100;
    for (auto i = static_cast<std::size_t>(frac_at) + 1; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) &&
                                                       scale > 0;
         ++i, scale /= 10)
      ms += (s[i] - '0') * scale;
  }
  return ms;
}

// "YYYY-MM-DDThh:mm:ssZ" of a millisecond instant, rounded down to the second.
std::string instant_text(std::int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// What channel posts and chat messages share: a page of messages into a page
// commit (new or changed ones stored, their inline images fetched once, deleted
// ones closed with everything under them), and faulted images read again.
// Graph ids: {container}/{message}[/{reply}][/hc/{hosted content}].
class MessagePass : public OwnerPass {
 public:
  // `key` is the throttling key of every request of the pass: at most 4 in
  // flight, and a Retry-After pauses this key only.
  MessagePass(DriveEnv& env, const storage::Owner& owner, std::string key)
      : OwnerPass(env, owner, Category::teams, owner.spec.display_name.value_or(owner.spec.graph_id)) {
    opts_.mailbox = std::move(key);
    opts_.outlook = false;
  }
  virtual ~MessagePass() = default;

 protected:
  // Where the container's messages are read: ".../channels/{c}/messages", "/v1.0/chats/{c}/messages".
  virtual std::string messages_base(const std::string& container) const = 0;
  // Channel posts have replies; chat messages do not.
  virtual bool with_replies() const = 0;

  // Only inline images fault (messages come whole in the pages): read the
  // message again for the image's reference, then the image.
  awaitable<void> retry_images() {
    const Retry retry = [this](const std::string& gid, storage::PageCommit& pc, Faults& faults) -> awaitable<bool> {
      const auto hc_at = gid.find("/hc/");
      if (hc_at == std::string::npos) co_return false;
      const std::string mpath = gid.substr(0, hc_at), hc = gid.substr(hc_at + 4);
      const auto a = mpath.find('/');
      if (a == std::string::npos) co_return false;
      const std::string container = mpath.substr(0, a);
      const auto b = mpath.find('/', a + 1);
      const std::string post = mpath.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1);
      std::string addr = messages_base(container) + "/" + post;
      if (b != std::string::npos) addr += "/replies/" + mpath.substr(b + 1);
      std::optional<json> msg;
      try {
        auto r = co_await env().client.get(addr, opts_);
        msg = r.parse();
      } catch (const graph::GraphError& e) {
        if (!graph::is_not_found(e)) throw;
      }
      if (!msg || deleted_message(*msg)) co_return false;
      for (auto& [id, url] : hosted_refs(*msg, addr)) {
        if (id != hc) continue;
        const Hosted h{gid, url, mpath, hc};
        std::string fault;
        auto ch = co_await fetch_hosted(h, container, fault);
        if (ch)
          pc.items.push_back(std::move(*ch));
        else
          faults.emplace_back(gid, fault);
        co_return true;
      }
      co_return false;  // the message no longer shows that image
    };
    co_await retry_faults(retry);
  }

  // One page of top-level messages into `pc`: messages (and replies) stored when
  // new or changed, their inline images fetched once, deletions closing the
  // message with its replies and images.
  awaitable<void> apply(const std::string& container, const std::vector<json>& posts, storage::PageCommit& pc,
                        Faults& faults) {
    // The last report of a post wins.
    std::vector<const json*> latest;
    std::unordered_map<std::string, std::size_t> at;
    for (auto& p : posts) {
      auto id = json_str(p, "id");
      if (id.empty()) continue;
      if (auto a = at.find(id); a != at.end())
        latest[a->second] = &p;
      else {
        at[id] = latest.size();
        latest.push_back(&p);
      }
    }
    struct Msg {
      json j;
      std::string path;
    };
    std::vector<Msg> msgs;
    std::vector<Hosted> hosted;
    std::map<std::string, std::set<std::string>> reported;  // live post path -> the paths under it reported now
    std::vector<std::string> gone_prefixes;                  // deleted messages: everything under them closes
    const std::string base = messages_base(container);
    auto add_live = [&](const json& m, const std::string& path, const std::string& addr, const std::string& post) {
      msgs.push_back({stored_message(m), path});
      if (path != post) reported[post].insert(path);
      for (auto& [hc, url] : hosted_refs(m, addr)) {
        auto hpath = path + "/hc/" + hc;
        hosted.push_back({hpath, url, path, hc});
        reported[post].insert(hpath);
      }
    };
    for (auto* p : latest) {
      const json& post = *p;
      const auto pid = json_str(post, "id");
      const auto ppath = container + "/" + pid;
      if (deleted_message(post)) {
        pc.removed_items.push_back(ppath);
        gone_prefixes.push_back(ppath + "/");
        continue;
      }
      reported[ppath];
      add_live(post, ppath, base + "/" + pid, ppath);
      if (!with_replies()) continue;
      // Replies: inline when Graph expanded them whole, else from /replies.
      std::vector<json> replies;
      auto r = post.find("replies");
      if (r != post.end() && r->is_array() && !post.contains("replies@odata.nextLink")) {
        replies = *r;
      } else {
        const std::string url = base + "/" + pid + "/replies";
        replies = co_await list_all(env().client, url, opts_);
      }
      for (auto& reply : replies) {
        auto rid = json_str(reply, "id");
        if (rid.empty()) continue;
        auto rpath = ppath + "/" + rid;
        if (deleted_message(reply)) {
          pc.removed_items.push_back(rpath);
          gone_prefixes.push_back(rpath + "/");
          continue;
        }
        add_live(reply, rpath, base + "/" + pid + "/replies/" + rid, ppath);
      }
    }

    std::vector<std::string> ids;
    for (auto& m : msgs) ids.push_back(m.path);
    for (auto& h : hosted) ids.push_back(h.path);
    std::unordered_map<std::string, storage::KnownItem> known;
    if (!ids.empty()) {
      auto q_known = [&](PgConnection& c) { return catalog().known_items(c, owner().id, category(), ids); };
      known = co_await db(q_known);
    }
    // Posts stored before and changed now: what was under them and is no longer
    // reported closes (a reply list is complete once read).
    std::vector<std::string> changed_posts;
    for (auto& m : msgs) {
      auto k = known.find(m.path);
      auto ch = message_item(m.j, m.path, container);
      if (k != known.end() && k->second.change_key == ch.change_key && k->second.container_graph_id == container) {
        pc.unchanged_items.push_back(m.path);
        continue;
      }
      if (k != known.end() && reported.count(m.path)) changed_posts.push_back(m.path);
      const std::string text = m.j.dump();  // named: a temporary inside co_await is destroyed twice (GCC 12)
      co_await store(ch, text);
      pc.items.push_back(std::move(ch));
    }
    for (auto& h : hosted) {
      if (known.count(h.path)) {  // a hosted content never changes under its id
        pc.unchanged_items.push_back(h.path);
        continue;
      }
      std::string fault;
      auto ch = co_await fetch_hosted(h, container, fault);
      if (!ch) {
        faults.emplace_back(h.path, fault);
        pc.unchanged_items.push_back(h.path);
        continue;
      }
      pc.items.push_back(std::move(*ch));
    }
    std::vector<std::string> prefixes = gone_prefixes;
    for (auto& p : changed_posts) prefixes.push_back(p + "/");
    if (!prefixes.empty()) {
      auto q_under = [&](PgConnection& c) { return catalog().open_items_under(c, owner().id, category(), prefixes); };
      auto under = co_await db(q_under);
      for (auto& gid : under) {
        bool drop = false;
        for (auto& g : gone_prefixes) drop = drop || gid.starts_with(g);
        if (!drop) {
          auto post = gid.substr(0, gid.find('/', container.size() + 1));
          drop = !reported[post].count(gid);
        }
        if (drop) pc.removed_items.push_back(gid);
      }
    }
    // The container's own item stays seen through a resync round of its messages.
    pc.unchanged_items.push_back(container);
  }

  // One inline image into the repository. nullopt: it could not be read (`fault`).
  awaitable<std::optional<storage::ItemChange>> fetch_hosted(const Hosted& h, const std::string& container,
                                                             std::string& fault) {
    storage::ItemChange ch;
    ch.graph_id = h.path;
    ch.kind = "hosted_content";
    ch.container_graph_id = container;
    ch.change_key = h.id;  // a hosted content never changes under its id
    ch.name = "image " + h.id.substr(0, 16);
    ch.meta = {{"message", h.message}, {"hostedContentId", h.id}};
    const std::string& url = h.url;
    ContentSink sink(env().writer);
    graph::ChunkFn on_chunk = [&](std::string_view data) -> awaitable<void> {
      env().progress.bytes_read(data.size());
      co_await sink.write(data);
    };
    std::function<void()> on_restart = [&] { sink.reset(); };
    graph::GraphResponse res;
    try {
      res = co_await env().client.get_stream(url, on_chunk, opts_, on_restart);
    } catch (const graph::GraphError& e) {
      if (graph::is_not_found(e) || graph::is_access_denied(e) || graph::is_corrupt_item(e)) {
        fault = e.what();
        co_return std::nullopt;
      }
      throw;
    }
    auto stored = co_await sink.finish();
    auto type = res.headers.get("Content-Type");
    ch.content_type = type && !type->empty() ? std::string(*type) : std::string("application/octet-stream");
    ch.size = stored.size;
    ch.content_blobs = std::move(stored.blobs);
    ch.content_sha256 = std::move(stored.sha256);
    ch.content_size = stored.size;
    co_return ch;
  }

  graph::RequestOptions opts_;
};

class TeamPass : public MessagePass {
 public:
  // Graph allows an app 4 requests per second on one team or channel: the team
  // is the throttling key.
  TeamPass(DriveEnv& env, const storage::Owner& team) : MessagePass(env, team, "team:" + team.spec.graph_id) {}

  awaitable<void> run() {
    co_await begin();
    const std::string url = "/v1.0/teams/" + owner().spec.graph_id + "/channels";
    auto channels = co_await list_all(env().client, url, opts_);
    co_await sync_listed(channels, "channel");
    for (auto& c : channels) {
      if (env().ctx.cancelled()) co_return;
      auto id = json_str(c, "id");
      if (id.empty()) continue;
      co_await sync_channel(id);
    }
    if (env().ctx.cancelled()) co_return;
    co_await retry_images();
    if (env().ctx.cancelled()) co_return;
    co_await finish();
  }

 private:
  std::string messages_base(const std::string& channel) const override {
    return "/v1.0/teams/" + owner().spec.graph_id + "/channels/" + channel + "/messages";
  }
  bool with_replies() const override { return true; }

  // Listing (first run, or a resync): cursor "" then "list:{nextLink}", ending as
  // "listed"; then the delta from scratch, whose nextLinks and deltaLink follow.
  awaitable<void> sync_channel(const std::string& channel) {
    auto q_state = [&](PgConnection& c) { return catalog().delta_state(c, owner().id, category(), channel); };
    auto state = co_await db(q_state);
    const std::string base = messages_base(channel);
    const std::string list_start = base + kPageOptions;
    const std::string delta_start = base + "/delta" + kPageOptions;
    std::string expected = state.cursor.value_or("");
    bool listing = expected.empty() || expected.starts_with("list:");
    std::string from = expected.empty()            ? list_start
                       : expected.starts_with("list:") ? expected.substr(5)
                       : expected == "listed"      ? delta_start
                                                   : expected;
    std::optional<graph::DeltaPager> pager;
    pager.emplace(env().client, from, opts_);
    Pending pending;
    std::string expired;
    int restarts = 0;
    for (;;) {
      if (env().ctx.cancelled()) break;
      auto page = co_await next_page(*pager, expired, restarts);
      if (!expired.empty()) {
        // The delta state is gone: list the channel again in a round that closes,
        // once it completes, what neither the listing nor the delta reported.
        const std::string why = "message delta of channel " + channel + " of team '" + who() +
                                "' is no longer valid (" + expired + "): listing the channel again";
        co_await restart_round(pending, channel, why);
        expected.clear();
        listing = true;
        pager.emplace(env().client, list_start, opts_);
        continue;
      }
      if (!page) {
        if (!listing) break;
        listing = false;  // the listing is committed as "listed": the delta takes over
        pager.emplace(env().client, delta_start, opts_);
        continue;
      }
      auto pc = new_page(channel);
      co_await apply(channel, page->items, pc, pending.faults);
      if (listing)
        pc.cursor = page->next_link ? "list:" + *page->next_link : std::string("listed");
      else
        pc.cursor = page->delta_link ? *page->delta_link : page->next_link.value_or("");
      pc.delta_link = !listing && page->delta_link.has_value();
      pc.expected_cursor = expected;
      expected = pc.cursor;
      const bool end = pc.delta_link || pc.cursor == "listed";
      co_await queue(pending, pc, end);
    }
    co_await commit(pending);
  }
};

// How far back of the last walk's newest modification the next walk starts:
// lastModifiedDateTime is stamped by many servers, not one clock. What comes back
// unchanged is recognised by its etag and only marked seen.
constexpr std::int64_t kChatOverlapMs = 5 * 60 * 1000;

class ChatPass : public MessagePass {
 public:
  // The chat is the throttling key: at most 4 of its requests in flight.
  ChatPass(DriveEnv& env, const storage::Owner& chat) : MessagePass(env, chat, "chat:" + chat.spec.graph_id) {
    // System events come back as unknownFutureValue without it (CONTRACT.md 13).
    opts_.prefer.push_back("include-unknown-enum-members");
  }

  // See close_chat (teams.hpp).
  awaitable<void> close() {
    co_await begin();
    const std::string chat = owner().spec.graph_id;
    auto q_state = [&](PgConnection& c) { return catalog().delta_state(c, owner().id, category(), chat); };
    auto state = co_await db(q_state);
    if (state.cursor && !state.cursor->empty()) {
      auto pc = new_page(chat);
      pc.cursor = "";
      pc.expected_cursor = state.cursor;
      std::vector<storage::PageCommit> pages{std::move(pc)};
      Faults none;
      co_await commit(pages, none);
    }
    const std::vector<json> listed;  // listed by no one: the container closes with its items
    co_await sync_listed(listed, "chat");
    {
      const std::string msg = "chat '" + who() + "' is listed by none of its members any more (deleted, or every "
                              "member left): closed, its versions kept";
      co_await event("info", msg);
    }
    co_await finish();
    auto q_gone = [&](PgConnection& c) {
      catalog().set_owner_state(c, owner().id, storage::OwnerState::deleted, "listed by none of its members");
    };
    co_await db(q_gone);
  }

  awaitable<void> run(const json& chat) {
    co_await begin();
    // The chat's JSON (type, topic, members) as the item of its container;
    // lastUpdatedDateTime moves with every message and would add a version each run.
    json info = chat;
    info.erase("lastUpdatedDateTime");
    info.erase("members@odata.context");
    const std::vector<json> listed{info};
    co_await sync_listed(listed, "chat");
    co_await sync_messages(owner().spec.graph_id);
    if (env().ctx.cancelled()) co_return;
    co_await retry_images();
    if (env().ctx.cancelled()) co_return;
    co_await finish();
  }

 private:
  std::string messages_base(const std::string& chat) const override { return "/v1.0/chats/" + chat + "/messages"; }
  bool with_replies() const override { return false; }

  std::string start_url(const std::string& chat, const std::string& mark) const {
    std::string url = messages_base(chat) + "?$top=50";  // 50: the most Graph allows
    if (auto ms = instant_ms(mark))
      url += "&$filter=lastModifiedDateTime%20gt%20" + instant_text(*ms - kChatOverlapMs);
    return url;
  }

  // Chat messages have no delta in v1.0 (CONTRACT.md 13): they are listed newest
  // first, from the high-water mark of the last completed walk (less
  // kChatOverlapMs) on. A message edited during a walk moves ahead of it and is in
  // the next one. The cursor, saved with each page:
  //   ""                        no walk completed yet: everything is listed;
  //   "walk:{mark}|{newest}|{nextLink}"  a walk under way ({mark}: where it started,
  //                                      {newest}: the newest modification it has seen);
  //   "mark:{newest}"           the last walk completed.
  // A saved nextLink the service no longer accepts starts the walk over from {mark}.
  awaitable<void> sync_messages(const std::string& chat) {
    auto q_state = [&](PgConnection& c) { return catalog().delta_state(c, owner().id, category(), chat); };
    auto state = co_await db(q_state);
    std::string expected = state.cursor.value_or("");
    std::string mark, newest, from;
    bool resumed = false;
    if (expected.starts_with("walk:")) {
      const auto bar1 = expected.find('|', 5), bar2 = expected.find('|', bar1 == std::string::npos ? 5 : bar1 + 1);
      if (bar1 != std::string::npos && bar2 != std::string::npos) {
        mark = expected.substr(5, bar1 - 5);
        newest = expected.substr(bar1 + 1, bar2 - bar1 - 1);
        from = expected.substr(bar2 + 1);
        resumed = true;
      }
    } else if (expected.starts_with("mark:")) {
      mark = expected.substr(5);
    }
    if (!resumed) from = start_url(chat, mark);
    std::optional<std::int64_t> newest_ms = instant_ms(newest);
    std::optional<graph::DeltaPager> pager;
    pager.emplace(env().client, from, opts_);
    Pending pending;
    for (;;) {
      if (env().ctx.cancelled()) break;
      std::optional<graph::Page> page;
      std::string stale;
      try {
        page = co_await pager->next();
      } catch (const graph::GraphError& e) {
        // Only a saved nextLink can be stale; anything else (throttling, 5xx after
        // retries, a chat gone) is the pass's failure.
        const bool link_refused = e.status() == 400 || e.status() == 404 || e.status() == 410;
        if (!resumed || !link_refused || graph::is_auth_failure(e)) throw;
        stale = e.what();
      }
      resumed = false;
      if (!stale.empty()) {
        const std::string msg = "saved listing of chat '" + who() + "' was refused (" + stale + "): listing it again";
        co_await event("warn", msg);
        newest.clear();
        newest_ms.reset();
        pager.emplace(env().client, start_url(chat, mark), opts_);
        continue;
      }
      if (!page) break;
      for (auto& m : page->items) {
        const auto text = json_str(m, "lastModifiedDateTime");
        const auto ms = instant_ms(text);
        if (ms && (!newest_ms || *ms > *newest_ms)) {
          newest_ms = ms;
          newest = text;
        }
      }
      auto pc = new_page(chat);
      co_await apply(chat, page->items, pc, pending.faults);
      const bool end = !page->next_link;
      pc.cursor = end ? "mark:" + (newest.empty() ? mark : newest) : "walk:" + mark + "|" + newest + "|" + *page->next_link;
      pc.expected_cursor = expected;
      expected = pc.cursor;
      co_await queue(pending, pc, end);
    }
    co_await commit(pending);
  }
};

}  // namespace

awaitable<void> backup_team(DriveEnv& env, const storage::Owner& team) {
  TeamPass pass(env, team);
  co_await pass.run();
}

awaitable<std::vector<json>> list_chats(DriveEnv& env, const storage::Owner& user) {
  graph::RequestOptions opts;
  opts.mailbox = user.spec.graph_id;
  opts.outlook = false;
  const std::string url = "/v1.0/users/" + user.spec.graph_id + "/chats?$expand=members&$top=50";
  co_return co_await list_all(env.client, url, opts);
}

awaitable<void> backup_chat(DriveEnv& env, const storage::Owner& chat, const json& listed) {
  ChatPass pass(env, chat);
  co_await pass.run(listed);
}

awaitable<std::optional<json>> get_chat(DriveEnv& env, const std::string& chat_id) {
  graph::RequestOptions opts;
  opts.mailbox = "chat:" + chat_id;
  opts.outlook = false;
  const std::string url = "/v1.0/chats/" + chat_id + "?$expand=members";
  try {
    auto r = co_await env.client.get(url, opts);
    auto j = r.parse();
    j.erase("@odata.context");
    co_return j;
  } catch (const graph::GraphError& e) {
    if (!graph::is_not_found(e)) throw;
  }
  co_return std::nullopt;
}

awaitable<void> close_chat(DriveEnv& env, const storage::Owner& chat) {
  ChatPass pass(env, chat);
  co_await pass.close();
}

}  // namespace m365vault::backup
