// Graph contacts and calendars: contact folders and per-folder contacts delta,
// calendars, per-calendar events delta (beta), calendarView delta with its window
// rules, series with an exception and a cancelled occurrence.
#include <algorithm>

#include "internal.hpp"
#include "m365vault/core/error.hpp"

namespace m365vault::emulator {

namespace {

struct PimKind {
  bool contacts;
  OutlookKey::Kind container_kind, item_kind;
  const char* type;       // "contact" / "event"
  const char* container;  // "contactFolders" / "calendars"
};
const PimKind kContacts{true, OutlookKey::contact_folder, OutlookKey::contact, "contact", "contactFolders"};
const PimKind kEvents{false, OutlookKey::calendar, OutlookKey::event, "event", "calendars"};

PimStore& store(Tenant& t, std::uint32_t u, const PimKind& k) {
  auto& mb = mailbox(t, u);
  return k.contacts ? mb.contacts : mb.calendars;
}

// A container by well-known name ("contacts", "calendar") or id; nullopt when absent.
std::optional<std::uint32_t> resolve_container(Tenant& t, std::uint32_t u, const PimKind& k, const std::string& ref) {
  auto& s = store(t, u, k);
  for (auto& c : s.containers)
    if (!c.well_known.empty() && strcasecmp(c.well_known.c_str(), ref.c_str()) == 0 && !c.deleted) return c.index;
  auto key = parse_outlook_id(t, ref);
  if (!key || key->kind != k.container_kind || key->user != u || key->index >= s.containers.size() ||
      s.containers[key->index].deleted)
    return std::nullopt;
  return key->index;
}

// The live item an id names (of this kind and user), copied out under the tenant's
// lock with its parsed key; nullopt when there is none.
std::optional<std::pair<OutlookKey, PimItem>> live_item(Tenant& t, std::uint32_t u, const PimKind& k,
                                                       const std::string& ref) {
  auto key = parse_outlook_id(t, ref);
  std::lock_guard lk(t.mu);
  auto& s = store(t, u, k);
  if (!key || key->kind != k.item_kind || key->user != u || key->index >= s.items.size() || !s.items[key->index].alive)
    return std::nullopt;
  return std::pair{*key, s.items[key->index]};
}

std::vector<std::string> csv(const std::string& s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i <= s.size()) {
    auto j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    auto p = s.substr(i, j - i);
    if (!p.empty()) out.push_back(p);
    i = j + 1;
  }
  return out;
}

json select(const json& full, const std::vector<std::string>& sel) {
  if (sel.empty()) return full;
  json out = json::object();
  for (auto& [k, v] : full.items()) {
    bool keep = k == "id" || k.rfind("@odata.", 0) == 0;
    for (auto& s : sel) keep |= strcasecmp(s.c_str(), k.c_str()) == 0;
    if (keep) out[k] = v;
  }
  return out;
}

}  // namespace

void EmulatorImpl::register_pim() {
  // The full JSON of an item: content plus id, changeKey, etag and container.
  auto render = [](Tenant& t, std::uint32_t u, const PimKind& k, std::uint32_t i, const PimItem& it) {
    json c = k.contacts ? contact_content(t, u, i, it) : event_content(t, u, i, it);
    std::string id = outlook_id(t, {k.item_kind, u, i, 0, 0});
    std::string ck = base64(sha1(id + ":" + std::to_string(it.seq)).substr(0, 15));
    json j = {{"@odata.type", std::string("#microsoft.graph.") + k.type}, {"@odata.etag", "W/\"" + ck + "\""}, {"id", id}};
    j.update(c);
    j["changeKey"] = ck;
    if (k.contacts) {
      j["parentFolderId"] = outlook_id(t, {OutlookKey::contact_folder, u, it.container, 0, 0});
    } else {
      j["webLink"] = "https://outlook.office365.com/owa/?itemid=" + id + "&exvsurl=1&path=/calendar/item";
    }
    return j;
  };
  // One instance of a series as calendarView shows it.
  auto instance = [render](Tenant& t, std::uint32_t u, std::uint32_t i, const PimItem& it, const Occurrence& o) {
    json j = render(t, u, kEvents, i, it);
    std::string master = j["id"];
    j["id"] = outlook_id(t, {OutlookKey::event, u, i, o.number, 0});
    j["seriesMasterId"] = master;
    j["type"] = o.exception ? "exception" : "occurrence";
    j["recurrence"] = nullptr;
    j["cancelledOccurrences"] = json::array();
    j["start"] = {{"dateTime", graph_datetime(o.start)}, {"timeZone", "UTC"}};
    j["end"] = {{"dateTime", graph_datetime(o.end)}, {"timeZone", "UTC"}};
    j["originalStart"] = iso_time(o.original_start);
    j["subject"] = occurrence_subject(j, it, o);
    if (o.patch.is_object())
      for (auto& [k, v] : o.patch.items())
        if (k != "start" && k != "end") j[k] = v;  // start and end are already the occurrence's
    return j;
  };
  // The series' instances (occurrences and exceptions) inside [from, to).
  auto instances_in = [instance](Tenant& t, std::uint32_t u, std::uint32_t i, const PimItem& it, std::int64_t from,
                                 std::int64_t to) {
    json value = json::array();
    for (auto& o : occurrences(t, u, i, it))
      if (o.start < to && o.end > from) value.push_back(instance(t, u, i, it, o));
    return value;
  };
  auto container_json = [](Tenant& t, std::uint32_t u, const PimKind& k, const PimStore& s, const Folder& f) {
    std::string id = outlook_id(t, {k.container_kind, u, f.index, 0, 0});
    if (k.contacts) {
      return json{{"id", id},
                  {"displayName", f.name},
                  {"parentFolderId", outlook_id(t, {OutlookKey::contact_folder, u,
                                                    f.parent < 0 ? 0xffffffffu : static_cast<std::uint32_t>(f.parent), 0, 0})}};
    }
    Person owner = user_person(t, u);
    (void)s;
    return json{{"id", id},
                {"name", f.name},
                {"color", f.index == 0 ? "auto" : "lightGreen"},
                {"hexColor", f.index == 0 ? "" : "#87d28e"},
                {"isDefaultCalendar", f.index == 0},
                {"changeKey", base64(sha1(id).substr(0, 15))},
                {"canShare", true},
                {"canViewPrivateItems", true},
                {"canEdit", true},
                {"allowedOnlineMeetingProviders", json::array({"teamsForBusiness"})},
                {"defaultOnlineMeetingProvider", "teamsForBusiness"},
                {"isTallyingResponses", true},
                {"isRemovable", f.index != 0},
                {"owner", {{"name", owner.name}, {"address", owner.address}}}};
  };
  pim_json_fn = [render](Tenant& t, std::uint32_t u, bool contacts, std::uint32_t i, const PimItem& it) {
    return render(t, u, contacts ? kContacts : kEvents, i, it);
  };
  container_json_fn = [container_json](Tenant& t, std::uint32_t u, bool contacts, const PimStore& s, const Folder& f) {
    return container_json(t, u, contacts ? kContacts : kEvents, s, f);
  };
  auto ctx_url = [this](GraphCtx& c, const std::string& rest) {
    return base_url + "/" + c.version + "/$metadata#users('" + c.tenant->users[*c.user].id + "')/" + rest;
  };

  // ---- containers (the folder delta before "{container}" so that "delta" is not taken for an id)
  add_graph("GET", "/users/{user}/contactFolders/delta", "Contacts.ReadWrite", true, [=, this](GraphCtx& c) {
    // Contact folders change rarely here (writes only): every round reports them all.
    auto& t = *c.tenant;
    std::lock_guard lk(t.mu);
    auto& s = store(t, *c.user, kContacts);
    if (auto dt = c.req.query_param("$deltatoken")) {
      auto tok = unseal(*dt);
      if (!tok || tok->value("k", "") != "cfd")
        return graph_error(c.req, 400, "SyncStateInvalid", "The sync state is invalid or malformed.");
      std::uint64_t base = tok->value("base", std::uint64_t{0});
      json value = json::array();
      for (auto& f : s.containers)
        if (f.seq > base) value.push_back(container_json(t, *c.user, kContacts, s, f));
      return graph_json(c, 200, {{"@odata.context", base_url + "/" + c.version + "/$metadata#Collection(contactFolder)"},
                                 {"@odata.deltaLink", base_url + "/" + c.version + "/users/" + t.users[*c.user].id +
                                                          "/contactFolders/delta?$deltatoken=" + seal({{"k", "cfd"}, {"base", s.seq}})},
                                 {"value", value}});
    }
    json value = json::array();
    for (auto& f : s.containers)
      if (!f.deleted) value.push_back(container_json(t, *c.user, kContacts, s, f));
    return graph_json(c, 200, {{"@odata.context", base_url + "/" + c.version + "/$metadata#Collection(contactFolder)"},
                               {"@odata.deltaLink", base_url + "/" + c.version + "/users/" + t.users[*c.user].id +
                                                        "/contactFolders/delta?$deltatoken=" + seal({{"k", "cfd"}, {"base", s.seq}})},
                               {"value", value}});
  });

  for (const PimKind* kp : {&kContacts, &kEvents}) {
    const PimKind k = *kp;
    const std::string perm = k.contacts ? "Contacts.ReadWrite" : "Calendars.ReadWrite";
    add_graph("GET", std::string("/users/{user}/") + k.container, perm, true, [=, this](GraphCtx& c) {
      auto& t = *c.tenant;
      std::lock_guard lk(t.mu);
      auto& s = store(t, *c.user, k);
      json value = json::array();
      for (auto& f : s.containers)
        if (!f.deleted && (!k.contacts || f.parent < 0)) value.push_back(container_json(t, *c.user, k, s, f));
      return graph_json(c, 200, {{"@odata.context", ctx_url(c, k.container)}, {"value", value}});
    });
    add_graph("GET", std::string("/users/{user}/") + k.container + "/{container}", perm, true, [=, this](GraphCtx& c) {
      auto& t = *c.tenant;
      std::lock_guard lk(t.mu);
      auto idx = resolve_container(t, *c.user, k, c.req.params["container"]);
      if (!idx) return graph_error(c.req, 404, "ErrorItemNotFound", "The specified object was not found in the store.");
      auto& s = store(t, *c.user, k);
      auto j = container_json(t, *c.user, k, s, s.containers[*idx]);
      j["@odata.context"] = ctx_url(c, std::string(k.container) + "/$entity");
      return graph_json(c, 200, j);
    });
  }
  add_graph("GET", "/users/{user}/calendar", "Calendars.ReadWrite", true, [=, this](GraphCtx& c) {
    auto& t = *c.tenant;
    std::lock_guard lk(t.mu);
    auto& s = store(t, *c.user, kEvents);
    auto j = container_json(t, *c.user, kEvents, s, s.containers[0]);
    j["@odata.context"] = ctx_url(c, "calendar/$entity");
    return graph_json(c, 200, j);
  });
  add_graph("GET", "/users/{user}/contactFolders/{container}/childFolders", "Contacts.ReadWrite", true, [=, this](GraphCtx& c) {
    auto& t = *c.tenant;
    std::lock_guard lk(t.mu);
    auto idx = resolve_container(t, *c.user, kContacts, c.req.params["container"]);
    if (!idx) return graph_error(c.req, 404, "ErrorItemNotFound", "The specified object was not found in the store.");
    auto& s = store(t, *c.user, kContacts);
    json value = json::array();
    for (auto& f : s.containers)
      if (!f.deleted && f.parent == static_cast<std::int32_t>(*idx)) value.push_back(container_json(t, *c.user, kContacts, s, f));
    return graph_json(c, 200, {{"@odata.context", ctx_url(c, "contactFolders('" + c.req.params["container"] + "')/childFolders")},
                               {"value", value}});
  });
  // ---- item delta (contacts per folder, events per calendar, calendarView on the primary calendar)
  struct DeltaSpec {
    const PimKind* kind;
    bool view;           // calendarView: occurrences inside a window
    bool beta_only;      // events delta outside calendarView is a beta API
    std::string fixed;   // container when the path names none ("calendar", "contacts")
  };
  auto item_delta = [=, this](DeltaSpec spec) {
    return [=, this](GraphCtx& c) {
      const PimKind& k = *spec.kind;
      if (spec.beta_only && c.version != "beta")
        return graph_error(c.req, 400, "BadRequest", "Resource not found for the segment 'delta'.");
      auto& t = *c.tenant;
      const auto u = *c.user;
      std::vector<std::string> sel;
      std::uint64_t base = 0, gen = 0, snap = 0;
      std::uint32_t phase = 1, pos = 0;
      std::int64_t win_start = 0, win_end = 0;
      struct Pick {
        std::uint32_t index;
        PimItem item;
        bool removed;
      };
      std::vector<Pick> picked;
      bool finished = false;
      std::uint32_t cidx = 0;
      std::uint64_t new_gen = 0;
      {
        std::lock_guard lk(t.mu);
        auto ref = spec.fixed.empty() ? c.req.params["container"] : spec.fixed;
        auto idx = resolve_container(t, u, k, ref);
        if (!idx) return graph_error(c.req, 404, "ErrorSyncFolderNotFound", "The sync folder was not found.");
        cidx = *idx;
        auto& s = store(t, u, k);
        auto& f = s.containers[cidx];
        const auto dt = c.req.query_param("$deltatoken"), st = c.req.query_param("$skiptoken");
        if (dt || st) {
          auto tok = unseal(dt ? *dt : *st);
          if (!tok || tok->value("k", "") != std::string("pim-") + k.type || tok->value("tid", "") != t.spec.tenant_id ||
              tok->value("u", 0u) != u || tok->value("f", 0u) != cidx || tok->value("v", false) != spec.view)
            return graph_error(c.req, 400, "SyncStateInvalid", "The sync state is invalid or malformed.");
          base = tok->value("base", std::uint64_t{0});
          gen = tok->value("gen", std::uint64_t{0});
          snap = tok->value("snap", std::uint64_t{0});
          sel = tok->value("sel", sel);
          phase = tok->value("ph", 0u);
          pos = tok->value("pos", 0u);
          win_start = tok->value("ws", std::int64_t{0});
          win_end = tok->value("we", std::int64_t{0});
          if (dt) {
            snap = 0;
            phase = 0;
            pos = 0;
          }
        } else {
          if (spec.view) {
            auto a = c.req.query_param("startDateTime"), b = c.req.query_param("endDateTime");
            if (!a || !b)
              return graph_error(c.req, 400, "ErrorInvalidParameter",
                                 "This request requires a time window specified by the query string parameters "
                                 "StartDateTime and EndDateTime.");
            auto pa = parse_iso_time(*a), pb = parse_iso_time(*b);
            if (!pa || !pb || *pb <= *pa)
              return graph_error(c.req, 400, "ErrorInvalidParameter", "The time window is not valid.");
            win_start = *pa;
            win_end = *pb;
            if (c.req.query_param("$select") || c.req.query_param("$filter") || c.req.query_param("$orderby"))
              return graph_error(c.req, 400, "ErrorInvalidParameter",
                                 "$select, $filter and $orderby are not supported with calendarView delta.");
          } else {
            sel = csv(c.req.query_param("$select").value_or(""));
          }
        }
        if (gen && std::find(f.generations.begin(), f.generations.end(), gen) == f.generations.end()) {
          std::string kept;
          for (auto it = f.generations.rbegin(); it != f.generations.rend(); ++it) kept += "[" + std::to_string(*it) + "]";
          return graph_error(c.req, 410, "SyncStateNotFound",
                             "The sync state generation is not found; generation=" + std::to_string(gen) + ";[highest=" +
                                 std::to_string(f.next_generation - 1) + "]" + kept + ".");
        }
        if (auto reset = maybe_reset(c, dt || st)) return *reset;
        if (snap == 0) snap = s.seq;
        const int page = std::clamp(c.prefer.maxpagesize.value_or(10), 1, 1000);
        const auto dfaults = current_faults();
      // An empty page with a nextLink, as Exchange sends now and then.
      int budget = chance() < dfaults.delta_empty_page_rate ? 0 : std::max(page * 4, 200);
        if (phase == 0) {
          for (; pos < f.tombs.size() && budget > 0 && static_cast<int>(picked.size()) < page; ++pos, --budget) {
            auto& tb = f.tombs[pos];
            if (tb.seq > base) picked.push_back({tb.msg, s.items[tb.msg], true});
          }
          if (pos >= f.tombs.size()) {
            phase = 1;
            pos = 0;
          }
        }
        if (phase == 1 && budget > 0 && static_cast<int>(picked.size()) < page) {
          auto it = std::lower_bound(f.messages.begin(), f.messages.end(), pos);
          for (; it != f.messages.end() && budget > 0 && static_cast<int>(picked.size()) < page; ++it, --budget) {
            const auto& item = s.items[*it];
            if (base && item.seq <= base) continue;
            picked.push_back({*it, item, false});
          }
          if (it == f.messages.end()) finished = true;
          else pos = *it;
        }
        if (finished) {
          new_gen = f.next_generation++;
          f.generations.push_back(new_gen);
          while (static_cast<int>(f.generations.size()) > current_faults().generations_kept) f.generations.pop_front();
        }
      }
      json value = json::array();
      auto removed = [&](const std::string& id) {
        value.push_back({{"@odata.type", std::string("#microsoft.graph.") + k.type}, {"id", id}, {"@removed", {{"reason", "deleted"}}}});
      };
      for (auto& p : picked) {
        const std::string id = outlook_id(t, {k.item_kind, u, p.index, 0, 0});
        if (!spec.view) {
          if (p.removed) removed(id);
          else value.push_back(select(render(t, u, k, p.index, p.item), sel));
          continue;
        }
        // calendarView: instances inside the window; changes outside it come as @removed.
        auto occ = occurrences(t, u, p.index, p.item);
        std::vector<json> inside;
        if (occ.empty()) {
          json e = render(t, u, k, p.index, p.item);
          auto s0 = parse_iso_time(e["start"]["dateTime"].get<std::string>()), e0 = parse_iso_time(e["end"]["dateTime"].get<std::string>());
          if (s0 && e0 && *s0 < win_end && *e0 > win_start) inside.push_back(e);
        } else {
          for (auto& o : occ)
            if (o.start < win_end && o.end > win_start) inside.push_back(instance(t, u, p.index, p.item, o));
        }
        if (p.removed || inside.empty()) {
          if (base == 0) continue;  // the initial round shows the window's current state only
          if (occ.empty()) removed(id);
          else
            for (auto& o : occ) removed(outlook_id(t, {OutlookKey::event, u, p.index, o.number, 0}));
          continue;
        }
        for (auto& e : inside) value.push_back(e);
      }
      if (spec.view && base == 0) c.applied.push_back("odata.track-changes");
      if (c.prefer.maxpagesize) c.applied.push_back("odata.maxpagesize=" + std::to_string(*c.prefer.maxpagesize));
      json body = {{"@odata.context", base_url + "/" + c.version + "/$metadata#Collection(" + k.type + ")"}};
      std::string path = c.req.path.substr(c.req.path.find('/', 1));  // without the version
      std::string link = base_url + "/" + c.version + path.replace(path.find("/users/") + 7, path.find('/', 7) - 7,
                                                                   t.users[u].id) + "?";
      json common = {{"k", std::string("pim-") + k.type}, {"tid", t.spec.tenant_id}, {"u", u}, {"f", cidx},
                     {"v", spec.view}, {"sel", sel}, {"ws", win_start}, {"we", win_end}};
      if (!finished) {
        common.update({{"base", base}, {"gen", gen}, {"snap", snap}, {"ph", phase}, {"pos", pos}});
        body["@odata.nextLink"] = link + "$skiptoken=" + seal(common);
      } else {
        common.update({{"base", snap}, {"gen", new_gen}});
        body["@odata.deltaLink"] = link + "$deltatoken=" + seal(common);
      }
      body["value"] = value;
      return graph_json(c, 200, body);
    };
  };
  add_graph("GET", "/users/{user}/contactFolders/{container}/contacts/delta", "Contacts.ReadWrite", true,
            item_delta({&kContacts, false, false, ""}));
  add_graph("GET", "/users/{user}/calendars/{container}/events/delta", "Calendars.ReadWrite", true,
            item_delta({&kEvents, false, true, ""}));
  add_graph("GET", "/users/{user}/calendar/events/delta", "Calendars.ReadWrite", true, item_delta({&kEvents, false, true, "calendar"}));
  add_graph("GET", "/users/{user}/events/delta", "Calendars.ReadWrite", true, item_delta({&kEvents, false, true, "calendar"}));
  add_graph("GET", "/users/{user}/calendarView/delta", "Calendars.ReadWrite", true, item_delta({&kEvents, true, false, "calendar"}));

  // ---- single items and plain lists
  auto get_item = [=, this](const PimKind* kp) {
    return [=, this](GraphCtx& c) {
      const PimKind& k = *kp;
      auto& t = *c.tenant;
      const auto u = *c.user;
      auto found = live_item(t, u, k, c.req.params["item"]);
      if (!found) return graph_error(c.req, 404, "ErrorItemNotFound", "The specified object was not found in the store.");
      const auto& key = found->first;
      const auto& item = found->second;
      json j;
      if (!k.contacts && key.moves) {
        auto occ = occurrences(t, u, key.index, item);
        auto it = std::find_if(occ.begin(), occ.end(), [&](auto& o) { return o.number == key.moves; });
        if (it == occ.end()) return graph_error(c.req, 404, "ErrorItemNotFound", "The specified object was not found in the store.");
        j = instance(t, u, key.index, item, *it);
      } else {
        j = render(t, u, k, key.index, item);
        if (!k.contacts && c.req.query_param("$expand").value_or("") == "exceptionOccurrences") {
          json ex = json::array();
          for (auto& o : occurrences(t, u, key.index, item))
            if (o.exception) ex.push_back(instance(t, u, key.index, item, o));
          j["exceptionOccurrences"] = ex;
        }
      }
      j.erase("@odata.type");
      j = select(j, csv(c.req.query_param("$select").value_or("")));
      j["@odata.context"] = ctx_url(c, std::string(k.contacts ? "contacts" : "events") + "/$entity");
      return graph_json(c, 200, j);
    };
  };
  add_graph("GET", "/users/{user}/contacts/{item}", "Contacts.ReadWrite", true, get_item(&kContacts));
  add_graph("GET", "/users/{user}/contactFolders/{container}/contacts/{item}", "Contacts.ReadWrite", true, get_item(&kContacts));
  // A series' instances in a window: GET .../events/{id}/instances?startDateTime=&endDateTime=
  // (both required); a single event or an instance has none.
  auto list_instances = [=, this](GraphCtx& c) {
    auto& t = *c.tenant;
    const auto u = *c.user;
    auto from = parse_iso_time(c.req.query_param("startDateTime").value_or(""));
    auto to = parse_iso_time(c.req.query_param("endDateTime").value_or(""));
    if (!from || !to)
      return graph_error(c.req, 400, "ErrorInvalidParameter",
                         "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.");
    auto found = live_item(t, u, kEvents, c.req.params["item"]);
    if (!found) return graph_error(c.req, 404, "ErrorItemNotFound", "The specified object was not found in the store.");
    const auto& key = found->first;
    const auto& item = found->second;
    json value = key.moves ? json::array() : instances_in(t, u, key.index, item, *from, *to);
    for (auto& e : value) e.erase("@odata.type");
    return graph_json(c, 200, {{"@odata.context", ctx_url(c, "events('" + c.req.params["item"] + "')/instances")}, {"value", value}});
  };
  add_graph("GET", "/users/{user}/events/{item}/instances", "Calendars.ReadWrite", true, list_instances);
  add_graph("GET", "/users/{user}/calendars/{container}/events/{item}/instances", "Calendars.ReadWrite", true, list_instances);
  add_graph("GET", "/users/{user}/events/{item}", "Calendars.ReadWrite", true, get_item(&kEvents));
  get_event_fn = get_item(&kEvents);
  add_graph("GET", "/users/{user}/calendars/{container}/events/{item}", "Calendars.ReadWrite", true, get_item(&kEvents));
  auto list_items = [=, this](const PimKind* kp, std::string fixed) {
    return [=, this](GraphCtx& c) {
      const PimKind& k = *kp;
      auto& t = *c.tenant;
      const auto u = *c.user;
      std::size_t top = 10, skip = 0;
      try {
        if (auto v = c.req.query_param("$top")) top = static_cast<std::size_t>(std::clamp(std::stoi(*v), 1, 1000));
        if (auto v = c.req.query_param("$skip")) skip = static_cast<std::size_t>(std::max(0, std::stoi(*v)));
      } catch (...) {
        return graph_error(c.req, 400, "BadRequest", "Invalid $top or $skip.");
      }
      std::vector<std::pair<std::uint32_t, PimItem>> rows;
      std::size_t total;
      {
        std::lock_guard lk(t.mu);
        auto idx = resolve_container(t, u, k, fixed.empty() ? c.req.params["container"] : fixed);
        if (!idx) return graph_error(c.req, 404, "ErrorItemNotFound", "The specified object was not found in the store.");
        auto& s = store(t, u, k);
        auto& f = s.containers[*idx];
        total = f.messages.size();
        for (std::size_t n = skip; n < f.messages.size() && rows.size() < top; ++n) rows.emplace_back(f.messages[n], s.items[f.messages[n]]);
      }
      auto sel = csv(c.req.query_param("$select").value_or(""));
      json value = json::array();
      for (auto& [i, it] : rows) {
        auto j = render(t, u, k, i, it);
        j.erase("@odata.type");
        value.push_back(select(j, sel));
      }
      json body = {{"@odata.context", ctx_url(c, k.contacts ? "contacts" : "events")}, {"value", value}};
      if (skip + rows.size() < total) {
        std::string path = c.req.path.substr(c.req.path.find('/', 1));
        body["@odata.nextLink"] = base_url + "/" + c.version + path + "?$top=" + std::to_string(top) +
                                  "&$skip=" + std::to_string(skip + rows.size());
      }
      return graph_json(c, 200, body);
    };
  };
  add_graph("GET", "/users/{user}/contacts", "Contacts.ReadWrite", true, list_items(&kContacts, "contacts"));
  add_graph("GET", "/users/{user}/contactFolders/{container}/contacts", "Contacts.ReadWrite", true, list_items(&kContacts, ""));
  add_graph("GET", "/users/{user}/events", "Calendars.ReadWrite", true, list_items(&kEvents, "calendar"));
  add_graph("GET", "/users/{user}/calendars/{container}/events", "Calendars.ReadWrite", true, list_items(&kEvents, ""));
}

}  // namespace m365vault::emulator
