#include "lists.hpp"

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

std::string template_of(const json& list) {
  auto l = list.find("list");
  return l != list.end() && l->is_object() ? json_str(*l, "template") : std::string();
}

// A field value as search text ("Title: ...", lookups and people by their label).
std::string fields_text(const json& fields, std::size_t max) {
  std::string out;
  for (auto& [k, v] : fields.items()) {
    if (k.find('@') != std::string::npos || k == "id" || k == "ContentType" || k.starts_with("_")) continue;
    std::string s;
    if (v.is_string())
      s = v.get<std::string>();
    else if (v.is_number() || v.is_boolean())
      s = v.dump();
    else if (v.is_object())
      s = json_str(v, "LookupValue").empty() ? json_str(v, "Email") : json_str(v, "LookupValue");
    if (s.empty()) continue;
    if (!out.empty()) out += " · ";
    out += k + ": " + s;
    if (out.size() >= max) break;
  }
  return html_text(out, max);  // some columns are rich text
}

storage::ItemChange list_item(const json& it, const std::string& path, const std::string& list) {
  storage::ItemChange ch;
  ch.graph_id = path;
  ch.kind = "list_item";
  ch.container_graph_id = list;
  ch.change_key = json_str(it, "eTag");
  if (ch.change_key.empty()) ch.change_key = json_str(it, "lastModifiedDateTime");
  const json empty = json::object();
  auto f = it.find("fields");
  const json& fields = f != it.end() && f->is_object() ? *f : empty;
  ch.name = json_str(fields, "Title");
  if (ch.name.empty()) ch.name = json_str(fields, "FileLeafRef");
  if (ch.name.empty()) ch.name = "item " + json_str(it, "id");
  if (auto t = json_str(fields, "Title"); !t.empty()) ch.subject = t;
  for (const char* who : {"lastModifiedBy", "createdBy"}) {
    auto w = it.find(who);
    if (w != it.end() && w->is_object() && w->contains("user")) {
      auto name = json_str((*w)["user"], "displayName");
      if (!name.empty()) {
        ch.sender = name;
        break;
      }
    }
  }
  if (auto c = json_str(it, "createdDateTime"); !c.empty()) ch.sent_at = c;
  if (auto m = json_str(it, "lastModifiedDateTime"); !m.empty()) ch.modified_at = m;
  if (auto text = fields_text(fields, 1000); !text.empty()) ch.body_preview = text;
  ch.meta = it;
  ch.meta.erase("@odata.context");
  ch.content_type = "application/json";
  return ch;
}

class ListsPass : public OwnerPass {
 public:
  ListsPass(DriveEnv& env, const storage::Owner& site)
      : OwnerPass(env, site, Category::sharepoint, site.spec.display_name.value_or(site.spec.graph_id)) {}

  awaitable<void> run() {
    co_await begin();
    const std::string url = "/v1.0/sites/" + owner().spec.graph_id + "/lists";
    auto all = co_await list_all(env().client, url, opts_);
    std::vector<json> lists;
    for (auto& l : all)
      if (template_of(l) != "documentLibrary") lists.push_back(std::move(l));  // libraries are drives
    co_await sync_listed(lists, "list");
    for (auto& l : lists) {
      if (env().ctx.cancelled()) co_return;
      auto id = json_str(l, "id");
      if (!id.empty()) co_await sync_list(id);
    }
    if (env().ctx.cancelled()) co_return;
    const Retry retry = [this](const std::string& gid, storage::PageCommit& pc, Faults& faults) -> awaitable<bool> {
      const auto slash = gid.find('/');
      if (slash == std::string::npos) co_return false;  // not a list item's id
      const std::string list = gid.substr(0, slash), id = gid.substr(slash + 1);
      const std::string url = list_base(list) + "/" + id + "?$expand=fields";
      std::vector<json> one;
      try {
        auto r = co_await env().client.get(url, opts_);
        one.push_back(r.parse());
      } catch (const graph::GraphError& e) {
        if (!graph::is_not_found(e)) throw;
      }
      if (one.empty()) co_return false;
      co_await apply(list, one, pc, faults);
      co_return true;
    };
    co_await retry_faults(retry);
    if (env().ctx.cancelled()) co_return;
    co_await finish();
  }

 private:
  std::string list_base(const std::string& list) const {
    return "/v1.0/sites/" + owner().spec.graph_id + "/lists/" + list + "/items";
  }

  awaitable<void> sync_list(const std::string& list) {
    auto q_state = [&](PgConnection& c) { return catalog().delta_state(c, owner().id, category(), list); };
    auto state = co_await db(q_state);
    const std::string start = list_base(list) + "/delta?$expand=fields";
    std::string expected = state.cursor.value_or("");
    std::optional<graph::DeltaPager> pager;
    pager.emplace(env().client, expected.empty() ? start : expected, opts_);
    Pending pending;
    std::string expired;
    int restarts = 0;
    for (;;) {
      if (env().ctx.cancelled()) break;
      auto got = co_await next_page(*pager, expired, restarts);
      if (!expired.empty()) {
        const std::string why = "item delta of list " + list + " of site '" + who() + "' is no longer valid (" +
                                expired + "): enumerating the list again";
        co_await restart_round(pending, list, why);
        expected.clear();
        pager.emplace(env().client, start, opts_);
        continue;
      }
      if (!got) break;
      auto pc = new_page(list);
      co_await apply(list, got->items, pc, pending.faults);
      pc.cursor = got->delta_link ? *got->delta_link : got->next_link.value_or("");
      pc.delta_link = got->delta_link.has_value();
      pc.expected_cursor = expected;
      expected = pc.cursor;
      const bool end = pc.delta_link;
      co_await queue(pending, pc, end);
    }
    co_await commit(pending);
  }

  awaitable<void> apply(const std::string& list, const std::vector<json>& items, storage::PageCommit& pc,
                        Faults& faults) {
    std::vector<const json*> latest;
    std::unordered_map<std::string, std::size_t> at;
    for (auto& it : items) {
      auto id = json_str(it, "id");
      if (id.empty()) continue;
      if (graph::is_removed(it)) {
        pc.removed_items.push_back(list + "/" + id);
        if (auto a = at.find(id); a != at.end()) latest[a->second] = nullptr;
        at.erase(id);
        continue;
      }
      if (auto a = at.find(id); a != at.end())
        latest[a->second] = &it;
      else {
        at[id] = latest.size();
        latest.push_back(&it);
      }
    }
    std::vector<std::string> ids;
    for (auto* p : latest)
      if (p) ids.push_back(list + "/" + json_str(*p, "id"));
    std::unordered_map<std::string, storage::KnownItem> known;
    if (!ids.empty()) {
      auto q_known = [&](PgConnection& c) { return catalog().known_items(c, owner().id, category(), ids); };
      known = co_await db(q_known);
    }
    for (auto* p : latest) {
      if (!p) continue;
      json it = *p;
      const auto id = json_str(it, "id");
      const auto path = list + "/" + id;
      auto k = known.find(path);
      const auto etag = json_str(it, "eTag");
      if (k != known.end() && !etag.empty() && k->second.change_key == etag && k->second.container_graph_id == list) {
        pc.unchanged_items.push_back(path);
        continue;
      }
      if (!it.contains("fields") || !it["fields"].is_object()) {
        // The delta gave the item without its columns: read it whole.
        const std::string url = list_base(list) + "/" + id + "?$expand=fields";
        try {
          auto r = co_await env().client.get(url, opts_);
          it = r.parse();
        } catch (const graph::GraphError& e) {
          if (!graph::is_not_found(e) && !graph::is_access_denied(e)) throw;
          faults.emplace_back(path, e.what());
          pc.unchanged_items.push_back(path);
          continue;
        }
      }
      it.erase("@odata.context");
      auto ch = list_item(it, path, list);
      const std::string text = it.dump();  // named: a temporary inside co_await is destroyed twice (GCC 12)
      co_await store(ch, text);
      pc.items.push_back(std::move(ch));
    }
    pc.unchanged_items.push_back(list);  // the list's own item stays seen through a resync round
  }

  graph::RequestOptions opts_;
};

}  // namespace

awaitable<void> backup_site_lists(DriveEnv& env, const storage::Owner& site) {
  ListsPass pass(env, site);
  co_await pass.run();
}

}  // namespace m365vault::backup
