// Microsoft Graph resources: directory (users, groups and their deltas), mail
// (folders, folder delta, per-folder message delta, message JSON, MIME, attachments,
// restore-side writes) and JSON batching.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

#include "internal.hpp"
#include "m365vault/core/error.hpp"

namespace m365vault::emulator {

std::vector<std::string> split_csv(const std::string& s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i <= s.size()) {
    auto j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    std::string part = s.substr(i, j - i);
    while (!part.empty() && part.front() == ' ') part.erase(part.begin());
    while (!part.empty() && part.back() == ' ') part.pop_back();
    if (!part.empty()) out.push_back(part);
    i = j + 1;
  }
  return out;
}

namespace {


std::string url_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string o;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') o += static_cast<char>(c);
    else o += std::string{'%', hex[c >> 4], hex[c & 15]};
  }
  return o;
}

std::string utf8_prefix(const std::string& s, std::size_t max) {
  if (s.size() <= max) return s;
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

json select_props(const json& full, const std::vector<std::string>& sel, bool keep_annotations) {
  if (sel.empty()) return full;
  json out = json::object();
  for (auto& [k, v] : full.items()) {
    bool keep = k == "id" || (keep_annotations && k.rfind("@odata.", 0) == 0);
    for (auto& s : sel)
      if (strcasecmp(s.c_str(), k.c_str()) == 0) keep = true;
    if (keep) out[k] = v;
  }
  return out;
}

// $expand=singleValueExtendedProperties($filter=id eq '...'): the message's
// extended properties with that id (case-insensitive), added after $select as
// Graph does; the key is absent when none matches.
void expand_extended(const net::Request& req, const MessageContent& mc, json& j) {
  auto x = req.query_param("$expand").value_or("");
  const std::string head = "singleValueExtendedProperties(";
  auto at = x.find(head);
  if (at == std::string::npos) return;
  auto q1 = x.find('\'', at), q2 = q1 == std::string::npos ? q1 : x.find('\'', q1 + 1);
  if (q2 == std::string::npos) return;
  const std::string want = x.substr(q1 + 1, q2 - q1 - 1);
  json props = json::array();
  for (auto& [id, value] : mc.extended)
    if (strcasecmp(id.c_str(), want.c_str()) == 0) props.push_back({{"id", id}, {"value", value}});
  if (!props.empty()) j["singleValueExtendedProperties"] = props;
}

const std::set<std::string> kUnsupportedUserProps = {"skills", "aboutMe", "birthday", "hireDate", "interests",
                                                     "mySite", "pastProjects", "preferredName", "responsibilities",
                                                     "schools"};

constexpr std::int64_t kDirectoryTokenLifetime = 7 * 24 * 3600;
// A group object carries at most this many members@delta entries; a larger group is
// repeated on the following pages with the next slices (contract 5).
constexpr std::size_t kMembersPerObject = 20;

// "$filter=id eq 'a' or id eq 'b'" (at most 50 ids); nullopt when it is anything else.
std::optional<std::vector<std::string>> parse_id_filter(const std::string& f) {
  std::vector<std::string> ids;
  std::size_t p = 0;
  while (p < f.size()) {
    while (p < f.size() && f[p] == ' ') ++p;
    if (f.compare(p, 8, "id eq '") != 0 && f.compare(p, 7, "id eq '") != 0) return std::nullopt;
    p += 7;
    auto q = f.find('\'', p);
    if (q == std::string::npos) return std::nullopt;
    ids.push_back(f.substr(p, q - p));
    p = q + 1;
    while (p < f.size() && f[p] == ' ') ++p;
    if (p >= f.size()) break;
    if (f.compare(p, 3, "or ") != 0) return std::nullopt;
    p += 3;
  }
  if (ids.empty() || ids.size() > 50) return std::nullopt;
  return ids;
}

}  // namespace

void EmulatorImpl::register_graph() {
  // ---------------------------------------------------------------- directory
  auto check_select = [](const std::vector<std::string>& sel, const json& sample, const std::string& type) {
    for (auto& s : sel) {
      if (s == "members" && type == "group") continue;
      if (type == "user" && kUnsupportedUserProps.count(s)) throw Error(Errc::internal, "501");
      bool found = false;
      for (auto& [k, v] : sample.items())
        if (strcasecmp(k.c_str(), s.c_str()) == 0) found = true;
      if (!found)
        throw Error(Errc::bad_request, "Could not find a property named '" + s + "' on type 'microsoft.graph." + type + "'.");
    }
  };

  auto directory_list = [this, check_select](const std::string& kind) {
    return [this, kind, check_select](GraphCtx& c) -> net::Response {
      auto& t = *c.tenant;
      auto sel = split_csv(c.req.query_param("$select").value_or(""));
      std::size_t top = 100;
      if (auto tp = c.req.query_param("$top")) {
        try {
          top = static_cast<std::size_t>(std::clamp(std::stoi(*tp), 1, 999));
        } catch (...) {
          return graph_error(c.req, 400, "Request_BadRequest", "Invalid value '" + *tp + "' for query parameter $top.");
        }
      }
      std::size_t offset = 0;
      if (auto sk = c.req.query_param("$skiptoken")) {
        auto tok = unseal(*sk);
        if (!tok || tok->value("k", "") != "list" + kind)
          return graph_error(c.req, 400, "Request_BadRequest", "The specified page token value has expired or is invalid.");
        offset = tok->value("o", std::size_t{0});
        sel = tok->value("sel", sel);
        top = tok->value("top", top);
      }
      json value = json::array();
      std::size_t next = 0;
      {
        std::lock_guard lk(t.mu);
        std::size_t n = kind == "users" ? t.users.size() : t.groups.size();
        if (n) {
          json sample = kind == "users" ? user_json(t, 0) : group_json(t, 0);
          try {
            check_select(sel, sample, kind == "users" ? "user" : "group");
          } catch (const Error& e) {
            if (e.code() == Errc::internal)
              return graph_error(c.req, 501, "NotImplemented", "This operation target is not yet supported.");
            throw;
          }
        }
        std::size_t i = offset;
        for (; i < n && value.size() < top; ++i) {
          auto removed = kind == "users" ? t.users[i].removed : t.groups[i].removed;
          if (removed != Removed::none) continue;
          auto j = kind == "users" ? user_json(t, static_cast<std::uint32_t>(i)) : group_json(t, static_cast<std::uint32_t>(i));
          value.push_back(select_props(j, sel, false));
        }
        if (i < n) next = i;
      }
      std::string ctx_sel;
      for (auto& s : sel) ctx_sel += (ctx_sel.empty() ? "" : ",") + s;
      json body = {{"@odata.context", base_url + "/" + c.version + "/$metadata#" + kind + (ctx_sel.empty() ? "" : "(" + ctx_sel + ")")},
                   {"value", value}};
      if (next)
        body["@odata.nextLink"] = base_url + "/" + c.version + "/" + kind + "?$skiptoken=" +
                                  seal({{"k", "list" + kind}, {"o", next}, {"sel", sel}, {"top", top}});
      return graph_json(c, 200, body);
    };
  };

  auto directory_delta = [this, check_select](const std::string& kind) {
    return [this, kind, check_select](GraphCtx& c) -> net::Response {
      auto& t = *c.tenant;
      const std::int64_t t_now = now();
      std::vector<std::string> sel;
      std::uint64_t base = 0, snap = 0;
      std::size_t cursor = 0, member_offset = 0;
      std::int64_t issued = t_now;
      bool latest = false;
      std::vector<std::string> only_ids;
      auto bad_token = [&] {
        return graph_error(c.req, 400, "badRequest", "The delta token is malformed or is not valid for this resource.");
      };
      const auto dt = c.req.query_param("$deltatoken"), st = c.req.query_param("$skiptoken");
      if (dt && *dt == "latest") {
        latest = true;
        sel = split_csv(c.req.query_param("$select").value_or(""));
      } else if (dt || st) {
        auto tok = unseal(dt ? *dt : *st);
        if (!tok || tok->value("k", "") != "dir" || tok->value("r", "") != kind || tok->value("tid", "") != t.spec.tenant_id)
          return bad_token();
        sel = tok->value("sel", sel);
        base = tok->value("base", std::uint64_t{0});
        snap = tok->value("snap", std::uint64_t{0});
        cursor = tok->value("cur", std::size_t{0});
        member_offset = tok->value("mo", std::size_t{0});
        only_ids = tok->value("ids", only_ids);
        issued = tok->value("iat", t_now);
        if (t_now - issued > kDirectoryTokenLifetime)
          return graph_error(c.req, 400, "syncStateNotFound",
                             "The sync state generation is not found. The delta token is expired and data must be "
                             "synchronized again.");
        if (dt) snap = 0;  // a new round starts from the deltaLink's point
      } else {
        sel = split_csv(c.req.query_param("$select").value_or(""));
        if (auto f = c.req.query_param("$filter")) {
          auto ids = parse_id_filter(*f);
          if (!ids)
            return graph_error(c.req, 400, "Request_UnsupportedQuery",
                               "Unsupported query: delta accepts only $filter=id eq '...' [or id eq '...'], at most 50 ids.");
          only_ids = *ids;
        }
        if (c.req.query_param("$expand") || c.req.query_param("$top") || c.req.query_param("$orderby"))
          return graph_error(c.req, 400, "Request_UnsupportedQuery", "$expand, $top and $orderby are not supported with delta.");
      }
      if (auto reset = maybe_reset(c, (dt && *dt != "latest") || st)) return *reset;
      const int page = std::clamp(c.prefer.maxpagesize.value_or(100), 1, 999);
      json value = json::array();
      bool more = false;
      std::uint64_t current = 0;
      {
        std::lock_guard lk(t.mu);
        current = t.dir_seq;
        if (snap == 0) snap = current;
        std::size_t n = kind == "users" ? t.users.size() : t.groups.size();
        if (n) {
          json sample = kind == "users" ? user_json(t, 0) : group_json(t, 0);
          try {
            check_select(sel, sample, kind == "users" ? "user" : "group");
          } catch (const Error& e) {
            if (e.code() == Errc::internal)
              return graph_error(c.req, 501, "NotImplemented", "This operation target is not yet supported.");
            throw;
          }
        }
        if (latest) {
          cursor = n;
        }
        const bool minimal = c.prefer.return_minimal && base > 0;
        if (minimal) c.applied.push_back("return=minimal");
        std::size_t i = cursor;
        std::size_t next_member_offset = 0;
        bool split_group = false;
        for (; i < n && static_cast<int>(value.size()) < page; ++i) {
          const auto idx = static_cast<std::uint32_t>(i);
          if (!only_ids.empty()) {
            const std::string& cid = kind == "users" ? t.users[i].id : t.groups[i].id;
            if (std::find(only_ids.begin(), only_ids.end(), cid) == only_ids.end()) continue;
          }
          std::uint64_t seq = kind == "users" ? t.users[i].seq : t.groups[i].seq;
          Removed removed = kind == "users" ? t.users[i].removed : t.groups[i].removed;
          const std::string& id = kind == "users" ? t.users[i].id : t.groups[i].id;
          if (seq <= base) continue;
          if (removed != Removed::none) {
            if (base == 0) continue;  // created and deleted before the first sync: never reported
            value.push_back({{"id", id}, {"@removed", {{"reason", removed == Removed::soft ? "changed" : "deleted"}}}});
            continue;
          }
          json full = kind == "users" ? user_json(t, idx) : group_json(t, idx);
          json item = select_props(full, sel, false);
          if (kind == "users" && minimal && !t.users[i].changed.empty()) {
            item = json{{"id", id}};
            for (auto& p : t.users[i].changed)
              if (sel.empty() || std::find(sel.begin(), sel.end(), p) != sel.end()) item[p] = full[p];
          }
          if (kind == "groups" && (sel.empty() || std::find(sel.begin(), sel.end(), "members") != sel.end())) {
            const auto& g = t.groups[i];
            json md = json::array();
            if (base == 0) {
              for (auto m : g.members) md.push_back({{"@odata.type", "#microsoft.graph.user"}, {"id", t.users[m].id}});
            } else {
              for (auto& ch : g.member_log) {
                if (ch.seq <= base) continue;
                json e = {{"@odata.type", "#microsoft.graph.user"}, {"id", t.users[ch.user].id}};
                if (ch.removed) e["@removed"] = {{"reason", "deleted"}};
                md.push_back(e);
              }
            }
            if (md.size() > kMembersPerObject) {
              const std::size_t from = i == cursor ? member_offset : 0;
              json slice = json::array();
              for (std::size_t k = from; k < md.size() && k < from + kMembersPerObject; ++k) slice.push_back(md[k]);
              if (from + kMembersPerObject < md.size()) {
                split_group = true;
                next_member_offset = from + kMembersPerObject;
              }
              md = slice;
            }
            if (!md.empty()) item["members@delta"] = md;
          }
          value.push_back(item);
          if (split_group) break;  // the same group comes again on the next page
        }
        more = i < n;
        cursor = i;
        member_offset = split_group ? next_member_offset : 0;
      }
      std::string ctx_sel;
      for (auto& s : sel) ctx_sel += (ctx_sel.empty() ? "" : ",") + s;
      json body = {{"@odata.context",
                    base_url + "/" + c.version + "/$metadata#" + kind + (ctx_sel.empty() ? "" : "(" + ctx_sel + ")")}};
      const std::string link = base_url + "/" + c.version + "/" + kind + "/delta?";
      if (more) {
        body["@odata.nextLink"] = link + "$skiptoken=" + seal({{"k", "dir"}, {"r", kind}, {"tid", t.spec.tenant_id},
                                                               {"sel", sel}, {"base", base}, {"snap", snap},
                                                               {"cur", cursor}, {"mo", member_offset},
                                                               {"ids", only_ids}, {"iat", issued}});
      } else {
        body["@odata.deltaLink"] = link + "$deltatoken=" + seal({{"k", "dir"}, {"r", kind}, {"tid", t.spec.tenant_id},
                                                                 {"sel", sel}, {"ids", only_ids}, {"base", snap},
                                                                 {"iat", t_now}});
      }
      body["value"] = value;
      return graph_json(c, 200, body);
    };
  };

  add_graph("GET", "/users/delta", "User.Read.All", false, directory_delta("users"));
  add_graph("GET", "/users", "User.Read.All", false, directory_list("users"));
  add_graph("GET", "/users/{user}", "User.Read.All", false, [this, check_select](GraphCtx& c) {
    auto sel = split_csv(c.req.query_param("$select").value_or(""));
    json j;
    {
      std::lock_guard lk(c.tenant->mu);
      j = user_json(*c.tenant, *c.user);
    }
    try {
      check_select(sel, j, "user");
    } catch (const Error& e) {
      if (e.code() == Errc::internal)
        return graph_error(c.req, 501, "NotImplemented", "This operation target is not yet supported.");
      throw;
    }
    j = select_props(j, sel, false);
    j["@odata.context"] = base_url + "/" + c.version + "/$metadata#users/$entity";
    return graph_json(c, 200, j);
  });
  add_graph("GET", "/groups/delta", "Group.Read.All", false, directory_delta("groups"));
  add_graph("GET", "/groups", "Group.Read.All", false, directory_list("groups"));
  add_graph("GET", "/groups/{group}", "Group.Read.All", false, [this](GraphCtx& c) {
    const auto& gid = c.req.params["group"];
    std::lock_guard lk(c.tenant->mu);
    for (std::uint32_t i = 0; i < c.tenant->groups.size(); ++i) {
      if (c.tenant->groups[i].id != gid || c.tenant->groups[i].removed != Removed::none) continue;
      auto j = select_props(group_json(*c.tenant, i), split_csv(c.req.query_param("$select").value_or("")), false);
      j["@odata.context"] = base_url + "/" + c.version + "/$metadata#groups/$entity";
      return graph_json(c, 200, j);
    }
    return graph_error(c.req, 404, "Request_ResourceNotFound",
                       "Resource '" + gid + "' does not exist or one of its queried reference-property objects are not "
                       "present.");
  });

  // ---------------------------------------------------------------- mail
  struct FolderRef {
    std::uint32_t index;
  };
  // Resolves {folder} (a well-known name or an id) in the user's mailbox. Caller holds t.mu.
  auto resolve_folder = [](Tenant& t, std::uint32_t u, const std::string& ref) -> std::variant<FolderRef, std::pair<int, std::string>> {
    auto& mb = mailbox(t, u);
    for (auto& f : mb.folders)
      if (!f.well_known.empty() && strcasecmp(f.well_known.c_str(), ref.c_str()) == 0 && !f.deleted)
        return FolderRef{f.index};
    auto k = parse_outlook_id(t, ref);
    if (!k || k->kind != OutlookKey::folder) return std::pair<int, std::string>(400, "ErrorInvalidIdMalformed");
    if (k->user != u || k->index >= mb.folders.size() || mb.folders[k->index].deleted)
      return std::pair<int, std::string>(404, "ErrorItemNotFound");
    return FolderRef{k->index};
  };
  auto folder_error = [this](GraphCtx& c, const std::pair<int, std::string>& e) {
    if (e.first == 400) return graph_error(c.req, 400, "ErrorInvalidIdMalformed", "Id is malformed.");
    return graph_error(c.req, 404, "ErrorItemNotFound", "The specified object was not found in the store.");
  };
  auto folder_json = [](Tenant& t, std::uint32_t u, const Mailbox& mb, const Folder& f) {
    std::uint32_t children = 0, unread = 0;
    for (auto& o : mb.folders)
      if (!o.deleted && o.parent == static_cast<std::int32_t>(f.index)) ++children;
    for (auto i : f.messages)
      if (!mb.msgs[i].read) ++unread;
    json j = json::object();
    if (f.search) j["@odata.type"] = "#microsoft.graph.mailSearchFolder";
    j["id"] = outlook_id(t, {OutlookKey::folder, u, f.index, 0, 0});
    j["displayName"] = f.name;
    j["parentFolderId"] = outlook_id(t, {OutlookKey::folder, u, f.parent < 0 ? 0xffffffffu : static_cast<std::uint32_t>(f.parent), 0, 0});
    j["childFolderCount"] = children;
    j["unreadItemCount"] = f.search ? 0 : unread;
    j["totalItemCount"] = f.search ? 0 : f.messages.size();
    j["isHidden"] = f.hidden;
    if (f.search) {
      j["isSupported"] = true;
      j["filterQuery"] = "contains(subject, 'weekly digest')";
    }
    return j;
  };

  // The JSON of a message as Graph renders it (full property set, before $select).
  auto message_json = [this](GraphCtx& c, const Tenant& t, std::uint32_t u, std::uint32_t i, const Msg& m,
                             const MessageContent& mc) {
    const bool imm = c.prefer.immutable_ids;
    std::string id = imm ? outlook_id(t, {OutlookKey::immutable, u, i, 0, 0})
                         : outlook_id(t, {OutlookKey::message, u, i, m.moves, 0});
    std::string ck = base64(sha1(id + ":" + std::to_string(m.seq)).substr(0, 15));
    auto person = [](const Person& p) { return json{{"emailAddress", {{"name", p.name}, {"address", p.address}}}}; };
    json to = json::array(), cc = json::array();
    for (auto& p : mc.to) to.push_back(person(p));
    for (auto& p : mc.cc) cc.push_back(person(p));
    std::string preview;
    for (char ch : mc.text_body) {
      if (ch == '\r' || ch == '\n') {
        if (!preview.empty() && preview.back() != ' ') preview += ' ';
      } else {
        preview += ch;
      }
    }
    while (!preview.empty() && preview.back() == ' ') preview.pop_back();
    preview = utf8_prefix(preview, 255);
    bool has_att = std::any_of(mc.attachments.begin(), mc.attachments.end(), [](auto& a) { return !a.is_inline; });
    json body;
    if (c.prefer.text_body || !mc.html) {
      body = {{"contentType", "text"}, {"content", mc.text_body}};
    } else {
      body = {{"contentType", "html"}, {"content", mc.html_body}};
    }
    return json{{"@odata.type", "#microsoft.graph.message"},
                {"@odata.etag", "W/\"" + ck + "\""},
                {"id", id},
                {"createdDateTime", iso_time(mc.created)},
                {"lastModifiedDateTime", iso_time(mc.modified)},
                {"changeKey", ck},
                {"categories", mc.categories},
                {"receivedDateTime", iso_time(mc.received)},
                {"sentDateTime", iso_time(mc.sent)},
                {"hasAttachments", has_att},
                {"internetMessageId", mc.internet_message_id},
                {"subject", mc.subject},
                {"bodyPreview", preview},
                {"importance", mc.importance},
                {"parentFolderId", outlook_id(t, {OutlookKey::folder, u, m.folder, 0, 0})},
                {"conversationId", "AAQkA" + base64(sha1(mc.conversation_key), true, true)},
                {"conversationIndex", base64(sha1(mc.conversation_key).substr(0, 16))},
                {"isDeliveryReceiptRequested", false},
                {"isReadReceiptRequested", false},
                {"isRead", m.read},
                {"isDraft", m.draft},
                {"webLink", "https://outlook.office365.com/owa/?ItemID=" + url_encode(id) +
                                "&exvsurl=1&viewmodel=ReadMessageItem"},
                {"inferenceClassification", "focused"},
                {"body", body},
                {"sender", person(mc.from)},
                {"from", person(mc.from)},
                {"toRecipients", to},
                {"ccRecipients", cc},
                {"bccRecipients", json::array()},
                {"replyTo", json::array()},
                {"flag", {{"flagStatus", m.flagged ? "flagged" : "notFlagged"}}}};
  };

  add_graph("GET", "/users/{user}/mailFolders/delta", "Mail.ReadWrite", true, [this, folder_json](GraphCtx& c) {
    auto& t = *c.tenant;
    const auto u = *c.user;
    std::lock_guard lk(t.mu);
    auto& mb = mailbox(t, u);
    auto& root = mb.folders[0];
    std::uint64_t base = 0, gen = 0;
    std::size_t cursor = 1;
    std::vector<std::string> sel = split_csv(c.req.query_param("$select").value_or(""));
    const auto dt = c.req.query_param("$deltatoken"), st = c.req.query_param("$skiptoken");
    if (dt || st) {
      auto tok = unseal(dt ? *dt : *st);
      if (!tok || tok->value("k", "") != "fld" || tok->value("tid", "") != t.spec.tenant_id || tok->value("u", 0u) != u)
        return graph_error(c.req, 400, "SyncStateInvalid", "The sync state is invalid or malformed.");
      base = tok->value("base", std::uint64_t{0});
      gen = tok->value("gen", std::uint64_t{0});
      cursor = tok->value("cur", std::size_t{1});
      sel = tok->value("sel", sel);
      if (dt) cursor = 1;
    }
    if (gen && std::find(root.generations.begin(), root.generations.end(), gen) == root.generations.end()) {
      std::string kept;
      for (auto it = root.generations.rbegin(); it != root.generations.rend(); ++it) kept += "[" + std::to_string(*it) + "]";
      return graph_error(c.req, 410, "SyncStateNotFound",
                         "The sync state generation is not found; generation=" + std::to_string(gen) + ";[highest=" +
                             std::to_string(root.next_generation - 1) + "]" + kept + ".");
    }
    const std::uint64_t snap = mb.seq;
    const int page = std::clamp(c.prefer.maxpagesize.value_or(10), 1, 1000);
    json value = json::array();
    std::size_t i = cursor;
    for (; i < mb.folders.size() && static_cast<int>(value.size()) < page; ++i) {
      auto& f = mb.folders[i];
      if (f.seq <= base) continue;
      std::string id = outlook_id(t, {OutlookKey::folder, u, f.index, 0, 0});
      if (f.deleted) {
        if (base) value.push_back({{"id", id}, {"@removed", {{"reason", "deleted"}}}});
        continue;
      }
      value.push_back(select_props(folder_json(t, u, mb, f), sel, true));
    }
    json body = {{"@odata.context", base_url + "/" + c.version + "/$metadata#Collection(mailFolder)"}};
    const std::string link = base_url + "/" + c.version + "/users/" + t.users[u].id + "/mailFolders/delta?";
    if (i < mb.folders.size()) {
      body["@odata.nextLink"] = link + "$skiptoken=" + seal({{"k", "fld"}, {"tid", t.spec.tenant_id}, {"u", u},
                                                             {"base", base}, {"gen", gen}, {"cur", i}, {"sel", sel}});
    } else {
      auto g = root.next_generation++;
      root.generations.push_back(g);
      while (static_cast<int>(root.generations.size()) > current_faults().generations_kept) root.generations.pop_front();
      body["@odata.deltaLink"] = link + "$deltatoken=" + seal({{"k", "fld"}, {"tid", t.spec.tenant_id}, {"u", u},
                                                               {"base", snap}, {"gen", g}, {"sel", sel}});
    }
    body["value"] = value;
    return graph_json(c, 200, body);
  });

  auto list_folders = [this, folder_json, resolve_folder, folder_error](bool children) {
    return [this, children, folder_json, resolve_folder, folder_error](GraphCtx& c) {
      auto& t = *c.tenant;
      const auto u = *c.user;
      std::lock_guard lk(t.mu);
      auto& mb = mailbox(t, u);
      std::uint32_t parent = 0;
      if (children) {
        auto r = resolve_folder(t, u, c.req.params["folder"]);
        if (auto* e = std::get_if<std::pair<int, std::string>>(&r)) return folder_error(c, *e);
        parent = std::get<FolderRef>(r).index;
      }
      const bool hidden = c.req.query_param("includeHiddenFolders").value_or("") == "true";
      json value = json::array();
      for (auto& f : mb.folders) {
        if (f.deleted || f.parent != static_cast<std::int32_t>(parent) || (f.hidden && !hidden)) continue;
        value.push_back(folder_json(t, u, mb, f));
      }
      return graph_json(c, 200, {{"@odata.context", base_url + "/" + c.version + "/$metadata#users('" + t.users[u].id +
                                                        "')/mailFolders" + (children ? "('" + c.req.params["folder"] + "')/childFolders" : "")},
                                 {"value", value}});
    };
  };
  add_graph("GET", "/users/{user}/mailFolders", "Mail.ReadWrite", true, list_folders(false));
  add_graph("GET", "/users/{user}/mailFolders/{folder}/childFolders", "Mail.ReadWrite", true, list_folders(true));
  add_graph("GET", "/users/{user}/mailFolders/{folder}", "Mail.ReadWrite", true,
            [this, folder_json, resolve_folder, folder_error](GraphCtx& c) {
              auto& t = *c.tenant;
              std::lock_guard lk(t.mu);
              auto r = resolve_folder(t, *c.user, c.req.params["folder"]);
              if (auto* e = std::get_if<std::pair<int, std::string>>(&r)) return folder_error(c, *e);
              auto& mb = mailbox(t, *c.user);
              auto j = folder_json(t, *c.user, mb, mb.folders[std::get<FolderRef>(r).index]);
              j["@odata.context"] = base_url + "/" + c.version + "/$metadata#users('" + t.users[*c.user].id + "')/mailFolders/$entity";
              return graph_json(c, 200, j);
            });

  message_json_fn = message_json;
  folder_json_fn = folder_json;

  // Per-folder message delta.
  add_graph("GET", "/users/{user}/mailFolders/{folder}/messages/delta", "Mail.ReadWrite", true,
            [this, resolve_folder, folder_error, message_json](GraphCtx& c) {
    auto& t = *c.tenant;
    const auto u = *c.user;
    struct Out {
      std::uint32_t index;
      Msg m;
      bool removed;
      std::uint32_t moves;
    };
    std::vector<Out> picked;
    std::vector<std::string> sel;
    std::string change_type;
    std::uint64_t base = 0, gen = 0, snap = 0;
    std::uint32_t phase = 1, pos = 0;
    bool finished = false;
    std::uint32_t fidx;
    std::uint64_t new_gen = 0;
    {
      std::lock_guard lk(t.mu);
      auto r = resolve_folder(t, u, c.req.params["folder"]);
      if (auto* e = std::get_if<std::pair<int, std::string>>(&r)) {
        if (e->first == 404) return graph_error(c.req, 404, "ErrorSyncFolderNotFound", "The sync folder was not found.");
        return folder_error(c, *e);
      }
      fidx = std::get<FolderRef>(r).index;
      auto& mb = mailbox(t, u);
      auto& f = mb.folders[fidx];
      const auto dt = c.req.query_param("$deltatoken"), st = c.req.query_param("$skiptoken");
      if (dt || st) {
        auto tok = unseal(dt ? *dt : *st);
        if (!tok || tok->value("k", "") != "msg" || tok->value("tid", "") != t.spec.tenant_id ||
            tok->value("u", 0u) != u || tok->value("f", 0u) != fidx)
          return graph_error(c.req, 400, "SyncStateInvalid", "The sync state is invalid or malformed.");
        base = tok->value("base", std::uint64_t{0});
        gen = tok->value("gen", std::uint64_t{0});
        snap = tok->value("snap", std::uint64_t{0});
        sel = tok->value("sel", sel);
        change_type = tok->value("ct", std::string());
        phase = tok->value("ph", 0u);
        pos = tok->value("pos", 0u);
        if (dt) {
          snap = 0;
          phase = 0;
          pos = 0;
        }
      } else {
        sel = split_csv(c.req.query_param("$select").value_or(""));
        change_type = c.req.query_param("changeType").value_or("");
        if (!change_type.empty() && change_type != "created" && change_type != "updated" && change_type != "deleted")
          return graph_error(c.req, 400, "ErrorInvalidParameter", "The value of changeType is not valid.");
        phase = 1;  // an initial round reports the current state only
      }
      if (gen && std::find(f.generations.begin(), f.generations.end(), gen) == f.generations.end()) {
        std::string kept;
        for (auto it = f.generations.rbegin(); it != f.generations.rend(); ++it) kept += "[" + std::to_string(*it) + "]";
        return graph_error(c.req, 410, "SyncStateNotFound",
                           "The sync state generation is not found; generation=" + std::to_string(gen) + ";[highest=" +
                               std::to_string(f.next_generation - 1) + "]" + kept + ".");
      }
      if (auto reset = maybe_reset(c, dt || st)) return *reset;
      if (snap == 0) snap = mb.seq;
      const int page = std::clamp(c.prefer.maxpagesize.value_or(10), 1, 1000);
      const auto dfaults = current_faults();
      // An empty page with a nextLink, as Exchange sends now and then.
      int budget = chance() < dfaults.delta_empty_page_rate ? 0 : std::max(page * 4, 200);
      if (phase == 0) {
        for (; pos < f.tombs.size() && budget > 0 && static_cast<int>(picked.size()) < page; ++pos, --budget) {
          auto& tb = f.tombs[pos];
          if (tb.seq <= base || (change_type != "" && change_type != "deleted")) continue;
          picked.push_back({tb.msg, mb.msgs[tb.msg], true, tb.moves});
        }
        if (pos >= f.tombs.size()) {
          phase = 1;
          pos = 0;
        }
      }
      if (phase == 1 && budget > 0 && static_cast<int>(picked.size()) < page) {
        auto it = std::lower_bound(f.messages.begin(), f.messages.end(), pos);
        for (; it != f.messages.end() && budget > 0 && static_cast<int>(picked.size()) < page; ++it, --budget) {
          const auto& m = mb.msgs[*it];
          if (base && m.seq <= base) continue;
          if (change_type == "deleted") continue;
          picked.push_back({*it, m, false, m.moves});
        }
        if (it == f.messages.end()) finished = true;
        else pos = *it;
        // An item may come again on the next page of the same round.
        if (!finished && !picked.empty() && !picked.back().removed && chance() < dfaults.delta_repeat_rate)
          pos = picked.back().index;
      }
      if (finished) {
        new_gen = f.next_generation++;
        f.generations.push_back(new_gen);
        while (static_cast<int>(f.generations.size()) > current_faults().generations_kept) f.generations.pop_front();
      }
    }
    if (c.prefer.immutable_ids) c.applied.push_back("IdType=\"ImmutableId\"");
    if (c.prefer.maxpagesize) c.applied.push_back("odata.maxpagesize=" + std::to_string(*c.prefer.maxpagesize));
    if (c.prefer.track_changes) c.applied.push_back("odata.track-changes");
    json value = json::array();
    for (auto& o : picked) {
      if (o.removed) {
        std::string id = c.prefer.immutable_ids ? outlook_id(t, {OutlookKey::immutable, u, o.index, 0, 0})
                                                : outlook_id(t, {OutlookKey::message, u, o.index, o.moves, 0});
        value.push_back({{"@odata.type", "#microsoft.graph.message"}, {"id", id}, {"@removed", {{"reason", "deleted"}}}});
        continue;
      }
      auto mc = message_content(t, u, o.index, o.m);
      value.push_back(select_props(message_json(c, t, u, o.index, o.m, mc), sel, true));
    }
    json body = {{"@odata.context", base_url + "/" + c.version + "/$metadata#Collection(message)"}};
    const std::string link = base_url + "/" + c.version + "/users/" + t.users[u].id + "/mailFolders/" +
                             outlook_id(t, {OutlookKey::folder, u, fidx, 0, 0}) + "/messages/delta?";
    json common = {{"k", "msg"}, {"tid", t.spec.tenant_id}, {"u", u}, {"f", fidx}, {"sel", sel}, {"ct", change_type}};
    if (!finished) {
      json tok = common;
      tok.update({{"base", base}, {"gen", gen}, {"snap", snap}, {"ph", phase}, {"pos", pos}});
      body["@odata.nextLink"] = link + "$skiptoken=" + seal(tok);
    } else {
      json tok = common;
      tok.update({{"base", snap}, {"gen", new_gen}});
      body["@odata.deltaLink"] = link + "$deltatoken=" + seal(tok);
    }
    body["value"] = value;
    return graph_json(c, 200, body);
  });

  // Finds a message by a REST or immutable id (and optionally its folder). Caller holds t.mu.
  struct MsgRef {
    std::uint32_t index;
  };
  auto resolve_message = [](Tenant& t, std::uint32_t u, const std::string& id) -> std::optional<MsgRef> {
    auto k = parse_outlook_id(t, id);
    if (!k || k->user != u || (k->kind != OutlookKey::message && k->kind != OutlookKey::immutable)) return std::nullopt;
    auto& mb = mailbox(t, u);
    if (k->index >= mb.msgs.size() || !mb.msgs[k->index].alive) return std::nullopt;
    if (k->kind == OutlookKey::message && k->moves != mb.msgs[k->index].moves) return std::nullopt;
    return MsgRef{k->index};
  };
  auto not_found = [this](GraphCtx& c) {
    return graph_error(c.req, 404, "ErrorItemNotFound", "The specified object was not found in the store.");
  };

  auto get_message = [this, resolve_message, not_found, message_json](GraphCtx& c) {
    auto& t = *c.tenant;
    const auto u = *c.user;
    Msg m;
    std::uint32_t idx;
    {
      std::lock_guard lk(t.mu);
      auto r = resolve_message(t, u, c.req.params["msg"]);
      if (!r) return not_found(c);
      idx = r->index;
      m = mailbox(t, u).msgs[idx];
    }
    auto mc = message_content(t, u, idx, m);
    auto sel = split_csv(c.req.query_param("$select").value_or(""));
    if (c.prefer.text_body) c.applied.push_back("outlook.body-content-type=\"text\"");
    if (c.prefer.immutable_ids) c.applied.push_back("IdType=\"ImmutableId\"");
    json j = message_json(c, t, u, idx, m, mc);
    j.erase("@odata.type");
    if (std::find(sel.begin(), sel.end(), "internetMessageHeaders") != sel.end()) {
      auto mime = message_mime(t, u, idx, m);
      json hs = json::array();
      auto end = mime.find("\r\n\r\n");
      std::string_view head(mime.data(), end == std::string::npos ? mime.size() : end);
      std::size_t p = 0;
      while (p < head.size()) {
        auto e = head.find("\r\n", p);
        if (e == std::string_view::npos) e = head.size();
        auto line = head.substr(p, e - p);
        if (!line.empty() && (line[0] == ' ' || line[0] == '\t') && !hs.empty()) {
          hs.back()["value"] = hs.back()["value"].get<std::string>() + " " + std::string(line.substr(1));
        } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
          auto v = line.substr(colon + 1);
          while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
          hs.push_back({{"name", std::string(line.substr(0, colon))}, {"value", std::string(v)}});
        }
        p = e + 2;
      }
      j["internetMessageHeaders"] = hs;
    }
    j = select_props(j, sel, true);
    expand_extended(c.req, mc, j);
    j["@odata.context"] = base_url + "/" + c.version + "/$metadata#users('" + t.users[u].id + "')/messages/$entity";
    return graph_json(c, 200, j);
  };
  auto get_mime = [this, resolve_message, not_found](GraphCtx& c) {
    auto& t = *c.tenant;
    const auto u = *c.user;
    Msg m;
    std::uint32_t idx;
    {
      std::lock_guard lk(t.mu);
      auto r = resolve_message(t, u, c.req.params["msg"]);
      if (!r) return not_found(c);
      idx = r->index;
      m = mailbox(t, u).msgs[idx];
    }
    net::Response res;
    res.status = 200;
    res.body = message_mime(t, u, idx, m);
    res.headers.set("Content-Type", "text/plain");
    return res;
  };
  auto attachments = [this, resolve_message, not_found](int mode) {
    // mode 0: list, 1: one, 2: one's $value
    return [this, mode, resolve_message, not_found](GraphCtx& c) {
      auto& t = *c.tenant;
      const auto u = *c.user;
      Msg m;
      std::uint32_t idx;
      {
        std::lock_guard lk(t.mu);
        auto r = resolve_message(t, u, c.req.params["msg"]);
        if (!r) return not_found(c);
        idx = r->index;
        m = mailbox(t, u).msgs[idx];
      }
      auto mc = message_content(t, u, idx, m);
      std::optional<std::uint32_t> want;
      if (mode > 0) {
        auto k = parse_outlook_id(t, c.req.params["att"]);
        if (!k || k->kind != OutlookKey::attachment || k->user != u || k->index != idx || k->sub >= mc.attachments.size())
          return not_found(c);
        want = k->sub;
      }
      const bool expand = c.req.query_param("$expand").value_or("").find("item") != std::string::npos;
      auto render = [&](std::uint32_t n) {
        const auto& a = mc.attachments[n];
        json j;
        j["@odata.type"] = a.kind == Attachment::item        ? "#microsoft.graph.itemAttachment"
                           : a.kind == Attachment::reference ? "#microsoft.graph.referenceAttachment"
                                                             : "#microsoft.graph.fileAttachment";
        if (a.kind != Attachment::reference)
          j["@odata.mediaContentType"] = a.kind == Attachment::item ? "message/rfc822" : a.content_type;
        j["id"] = outlook_id(t, {OutlookKey::attachment, u, idx, m.moves, n});
        j["lastModifiedDateTime"] = iso_time(mc.sent);
        j["name"] = a.name;
        j["contentType"] = a.kind == Attachment::item ? json(nullptr) : json(a.content_type);
        j["size"] = a.size;
        j["isInline"] = a.is_inline;
        if (a.kind == Attachment::file) {
          j["contentId"] = a.content_id.empty() ? json(nullptr) : json(a.content_id);
          j["contentLocation"] = nullptr;
          j["contentBytes"] = base64(a.bytes());
        } else if (expand && a.kind == Attachment::item) {
          j["item@odata.context"] = base_url + "/" + c.version + "/$metadata#users('" + t.users[u].id +
                                    "')/messages('" + c.req.params["msg"] + "')/attachments('" + j["id"].get<std::string>() +
                                    "')/microsoft.graph.itemAttachment/item/$entity";
          j["item"] = {{"@odata.type", "#microsoft.graph.message"}, {"id", ""}, {"subject", a.name.substr(a.name.rfind("Fwd: ", 0) == 0 ? 5 : 0)}};
        }
        return j;
      };
      if (mode == 2) {
        const auto& a = mc.attachments[*want];
        if (a.kind == Attachment::reference)  // inferred: a link has no content to stream
          return graph_error(c.req, 400, "ErrorInvalidRequest", "Reference attachments have no content.");
        net::Response res;
        res.status = 200;
        res.body = a.bytes();
        res.headers.set("Content-Type", a.kind == Attachment::item ? "message/rfc822" : a.content_type);
        return res;
      }
      if (mode == 1) {
        auto j = render(*want);
        j["@odata.context"] = base_url + "/" + c.version + "/$metadata#users('" + t.users[u].id + "')/messages('" +
                              c.req.params["msg"] + "')/attachments/$entity";
        return graph_json(c, 200, j);
      }
      json value = json::array();
      for (std::uint32_t n = 0; n < mc.attachments.size(); ++n) value.push_back(render(n));
      return graph_json(c, 200, {{"@odata.context", base_url + "/" + c.version + "/$metadata#users('" + t.users[u].id +
                                                        "')/messages('" + c.req.params["msg"] + "')/attachments"},
                                 {"value", value}});
    };
  };
  for (std::string prefix : {"/users/{user}/messages/{msg}", "/users/{user}/mailFolders/{folder}/messages/{msg}"}) {
    add_graph("GET", prefix, "Mail.ReadWrite", true, get_message);
    add_graph("GET", prefix + "/$value", "Mail.ReadWrite", true, get_mime);
    add_graph("GET", prefix + "/attachments", "Mail.ReadWrite", true, attachments(0));
    add_graph("GET", prefix + "/attachments/{att}", "Mail.ReadWrite", true, attachments(1));
    add_graph("GET", prefix + "/attachments/{att}/$value", "Mail.ReadWrite", true, attachments(2));
  }

  // Plain folder listing (not delta).
  add_graph("GET", "/users/{user}/mailFolders/{folder}/messages", "Mail.ReadWrite", true,
            [this, resolve_folder, folder_error, message_json](GraphCtx& c) {
    auto& t = *c.tenant;
    const auto u = *c.user;
    std::size_t top = 10, skip = 0;
    try {
      if (auto v = c.req.query_param("$top")) top = static_cast<std::size_t>(std::clamp(std::stoi(*v), 1, 1000));
      if (auto v = c.req.query_param("$skip")) skip = static_cast<std::size_t>(std::max(0, std::stoi(*v)));
    } catch (...) {
      return graph_error(c.req, 400, "BadRequest", "Invalid $top or $skip.");
    }
    std::vector<std::pair<std::uint32_t, Msg>> rows;
    std::uint32_t fidx;
    std::size_t total;
    {
      std::lock_guard lk(t.mu);
      auto r = resolve_folder(t, u, c.req.params["folder"]);
      if (auto* e = std::get_if<std::pair<int, std::string>>(&r)) return folder_error(c, *e);
      fidx = std::get<FolderRef>(r).index;
      auto& mb = mailbox(t, u);
      auto& f = mb.folders[fidx];
      total = f.messages.size();
      for (std::size_t k = skip; k < f.messages.size() && rows.size() < top; ++k)
        rows.emplace_back(f.messages[k], mb.msgs[f.messages[k]]);
    }
    auto sel = split_csv(c.req.query_param("$select").value_or(""));
    json value = json::array();
    for (auto& [i, m] : rows) {
      auto mc = message_content(t, u, i, m);
      auto j = message_json(c, t, u, i, m, mc);
      j.erase("@odata.type");
      j = select_props(j, sel, true);
      expand_extended(c.req, mc, j);
      value.push_back(std::move(j));
    }
    json body = {{"@odata.context", base_url + "/" + c.version + "/$metadata#users('" + t.users[u].id + "')/mailFolders('" +
                                        c.req.params["folder"] + "')/messages"},
                 {"value", value}};
    if (skip + rows.size() < total) {
      std::string q = "?$top=" + std::to_string(top) + "&$skip=" + std::to_string(skip + rows.size());
      if (!sel.empty()) q += "&$select=" + c.req.query_param("$select").value_or("");
      if (auto x = c.req.query_param("$expand")) q += "&$expand=" + url_encode(*x);  // kept on every page, as Graph
      body["@odata.nextLink"] = base_url + "/" + c.version + "/users/" + t.users[u].id + "/mailFolders/" +
                                outlook_id(t, {OutlookKey::folder, u, fidx, 0, 0}) + "/messages" + q;
    }
    return graph_json(c, 200, body);
  });

  // ---------------------------------------------------------------- $batch
  router.add("POST", "/v1.0/$batch", [this](net::Request& req) { return run_batch(req, "v1.0"); });
  router.add("POST", "/beta/$batch", [this](net::Request& req) { return run_batch(req, "beta"); });
}

boost::asio::awaitable<net::Response> EmulatorImpl::run_batch(net::Request& req, std::string version) {
  auto body = json::parse(req.body, nullptr, false);
  auto bad = [&](const std::string& m) { return graph_error(req, 400, "BadRequest", m); };
  if (body.is_discarded() || !body.is_object() || !body.contains("requests") || !body["requests"].is_array())
    co_return bad("Invalid batch payload format.");
  auto& reqs = body["requests"];
  if (reqs.size() > 20) co_return bad("The number of batch requests exceeds the allowed limit of 20.");
  std::set<std::string> ids;
  for (auto& r : reqs) {
    if (!r.is_object() || !r.contains("id") || !r["id"].is_string() || !r.contains("method") || !r.contains("url"))
      co_return bad("Invalid batch payload format.");
    std::string id = r["id"].get<std::string>();
    for (auto& ch : id) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (!ids.insert(id).second) co_return bad("Request id '" + r["id"].get<std::string>() + "' is duplicated.");
    if (r.contains("body") && !(r.contains("headers") && r["headers"].is_object() &&
                                std::any_of(r["headers"].items().begin(), r["headers"].items().end(), [](auto&& kv) {
                                  return strcasecmp(kv.key().c_str(), "content-type") == 0;
                                })))
      co_return bad("Content-Type header is required when a body is given (request '" + r["id"].get<std::string>() + "').");
  }
  std::map<std::string, int> status_of;
  json responses = json::array();
  // Runs in order; a request whose dependency has not run yet waits for the next pass.
  std::vector<bool> done(reqs.size(), false);
  for (std::size_t pass = 0; pass <= reqs.size(); ++pass) {
    for (std::size_t k = 0; k < reqs.size(); ++k) {
      if (done[k]) continue;
      auto& r = reqs[k];
      const std::string id = r["id"].get<std::string>();
      bool ready = true, failed_dep = false;
      if (r.contains("dependsOn")) {
        for (auto& d : r["dependsOn"]) {
          auto it = status_of.find(d.get<std::string>());
          if (it == status_of.end()) ready = false;
          else if (it->second >= 400) failed_dep = true;
        }
      }
      if (!ready && pass < reqs.size()) continue;
      done[k] = true;
      if (failed_dep || !ready) {
        status_of[id] = 424;
        responses.push_back({{"id", id}, {"status", 424}, {"headers", {{"Content-Type", "application/json"}}},
                             {"body", {{"error", {{"code", "FailedDependency"}, {"message", "A dependency of this request failed."}}}}}});
        continue;
      }
      net::Request sub;
      std::string url = r["url"].get<std::string>();
      if (url.rfind("http", 0) == 0) {
        status_of[id] = 400;
        responses.push_back({{"id", id}, {"status", 400}, {"headers", {{"Content-Type", "application/json"}}},
                             {"body", {{"error", {{"code", "BadRequest"}, {"message", "Absolute URLs are not allowed in batch requests."}}}}}});
        continue;
      }
      if (url.empty() || url[0] != '/') url = "/" + url;
      if (url.rfind("/$batch", 0) == 0) {  // batches do not nest
        status_of[id] = 400;
        responses.push_back({{"id", id}, {"status", 400}, {"headers", {{"Content-Type", "application/json"}}},
                             {"body", {{"error", {{"code", "BadRequest"}, {"message", "Nested batch requests are not supported."}}}}}});
        continue;
      }
      sub.method = r["method"].get<std::string>();
      for (auto& ch : sub.method) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      sub.target = "/" + version + url;
      auto q = sub.target.find('?');
      sub.path = net::percent_decode(sub.target.substr(0, q)).value_or(sub.target.substr(0, q));
      if (q != std::string::npos) sub.query = sub.target.substr(q + 1);
      sub.remote = req.remote;
      sub.request_id = req.request_id;
      for (auto& [k2, v] : req.headers.all())
        if (strcasecmp(k2.c_str(), "authorization") == 0 || strcasecmp(k2.c_str(), "prefer") == 0) sub.headers.add(k2, v);
      if (r.contains("headers") && r["headers"].is_object())
        for (auto& [k2, v] : r["headers"].items()) sub.headers.set(k2, v.is_string() ? v.get<std::string>() : v.dump());
      if (r.contains("body")) sub.body = r["body"].is_string() ? r["body"].get<std::string>() : r["body"].dump();
      auto res = co_await handle(sub);
      status_of[id] = res.status;
      json headers = json::object();
      for (auto& [hk, hv] : res.headers.all()) {
        if (strcasecmp(hk.c_str(), "request-id") == 0 || strcasecmp(hk.c_str(), "client-request-id") == 0) continue;
        headers[hk] = hv;
      }
      json rb = nullptr;
      if (res.status != 204 && !res.body.empty()) {
        auto parsed = json::parse(res.body, nullptr, false);
        rb = parsed.is_discarded() ? json(base64(res.body)) : parsed;
      }
      responses.push_back({{"id", id}, {"status", res.status}, {"headers", headers}, {"body", rb}});
    }
  }
  auto out = net::Response::json(200, json{{"responses", responses}});
  out.headers.set("Content-Type",
                  "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8");
  out.headers.set("OData-Version", "4.0");
  co_return out;
}

}  // namespace m365vault::emulator
