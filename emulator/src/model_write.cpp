// Restore-side writes as replayable operations: mail folders, messages (JSON and
// MIME), attachments, moves, deletes, contact folders, contacts, calendars, events.
#include <algorithm>

#include "m365vault/core/error.hpp"
#include "model.hpp"

namespace m365vault::emulator {

namespace {

[[noreturn]] void fail(Errc e, const std::string& code, const std::string& text) { throw Error(e, code + ": " + text); }

Person person_of(const json& r) {
  const json& e = r.contains("emailAddress") ? r["emailAddress"] : r;
  return {e.value("name", ""), e.value("address", "")};
}

std::vector<Person> people(const json& j, const char* key) {
  std::vector<Person> out;
  if (j.contains(key) && j[key].is_array())
    for (auto& r : j[key]) out.push_back(person_of(r));
  return out;
}

std::string strip_html(const std::string& html) {
  std::string out;
  bool tag = false;
  for (char c : html) {
    if (c == '<') tag = true;
    else if (c == '>') tag = false;
    else if (!tag) out += c;
  }
  return out;
}

// Header value of a raw MIME message (unfolded, not decoded).
std::string mime_header(const std::string& mime, const std::string& name) {
  auto end = mime.find("\r\n\r\n");
  if (end == std::string::npos) end = mime.find("\n\n");
  std::string head = mime.substr(0, end);
  std::size_t p = 0;
  while (p < head.size()) {
    auto e = head.find('\n', p);
    if (e == std::string::npos) e = head.size();
    std::string line = head.substr(p, e - p);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (colon != std::string::npos && strcasecmp(line.substr(0, colon).c_str(), name.c_str()) == 0) {
      std::string v = line.substr(colon + 1);
      // Continuation lines.
      std::size_t q = e + 1;
      while (q < head.size() && (head[q] == ' ' || head[q] == '\t')) {
        auto qe = head.find('\n', q);
        if (qe == std::string::npos) qe = head.size();
        std::string cont = head.substr(q, qe - q);
        if (!cont.empty() && cont.back() == '\r') cont.pop_back();
        v += cont;
        q = qe + 1;
      }
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.erase(v.begin());
      return v;
    }
    p = e + 1;
  }
  return "";
}

Person parse_address(const std::string& v) {
  auto lt = v.find('<');
  if (lt == std::string::npos) return {"", v};
  std::string name = v.substr(0, lt);
  while (!name.empty() && (name.back() == ' ' || name.back() == '"')) name.pop_back();
  while (!name.empty() && name.front() == '"') name.erase(name.begin());
  return {name, v.substr(lt + 1, v.find('>', lt) - lt - 1)};
}

std::uint32_t well_known_folder(const Mailbox& mb, const char* wk) {
  for (auto& f : mb.folders)
    if (f.well_known == wk) return f.index;
  return 1;
}

void insert_sorted(std::vector<std::uint32_t>& v, std::uint32_t x) { v.insert(std::upper_bound(v.begin(), v.end(), x), x); }

std::uint32_t add_message(Mailbox& mb, std::uint32_t folder, Msg m) {
  m.folder = folder;
  m.seq = ++mb.seq;
  auto idx = static_cast<std::uint32_t>(mb.msgs.size());
  mb.msgs.push_back(std::move(m));
  insert_sorted(mb.folders[folder].messages, idx);
  return idx;
}

Msg& live_message(Mailbox& mb, std::uint32_t idx) {
  if (idx >= mb.msgs.size() || !mb.msgs[idx].alive)
    fail(Errc::not_found, "ErrorItemNotFound", "The specified object was not found in the store.");
  return mb.msgs[idx];
}

}  // namespace

json apply_write(Tenant& t, const json& op) {
  const std::string kind = op.value("kind", "");
  if (kind.rfind("drive_", 0) == 0) return apply_drive_write(t, op);  // no mailbox involved
  const auto u = op.value("user", 0u);
  if (u >= t.users.size()) fail(Errc::not_found, "ErrorInvalidUser", "The requested user is invalid.");
  auto& mb = mailbox(t, u);

  if (kind == "create_mail_folder") {
    const auto parent = op.value("parent", 0u);
    const std::string name = op.value("displayName", "");
    if (name.empty()) fail(Errc::bad_request, "ErrorInvalidRequest", "The folder name cannot be empty.");
    for (auto& f : mb.folders)
      if (!f.deleted && f.parent == static_cast<std::int32_t>(parent) && strcasecmp(f.name.c_str(), name.c_str()) == 0)
        fail(Errc::conflict, "ErrorFolderExists", "A folder with the specified name already exists.");
    Folder f;
    f.index = static_cast<std::uint32_t>(mb.folders.size());
    f.parent = static_cast<std::int32_t>(parent);
    f.name = name;
    f.hidden = op.value("isHidden", false);
    f.seq = ++mb.seq;
    mb.folders.push_back(std::move(f));
    return {{"index", mb.folders.size() - 1}};
  }
  if (kind == "create_message") {
    const json& b = op["message"];
    auto c = std::make_shared<MessageContent>();
    c->subject = b.value("subject", "");
    if (b.contains("body") && b["body"].is_object()) {
      auto type = b["body"].value("contentType", "text");
      auto content = b["body"].value("content", "");
      c->html = strcasecmp(type.c_str(), "html") == 0;
      if (c->html) {
        c->html_body = content;
        c->text_body = strip_html(content);
      } else {
        c->text_body = content;
      }
    }
    c->from = b.contains("from") ? person_of(b["from"]) : (b.contains("sender") ? person_of(b["sender"]) : user_person(t, u));
    c->to = people(b, "toRecipients");
    c->cc = people(b, "ccRecipients");
    if (b.contains("categories")) c->categories = b["categories"].get<std::vector<std::string>>();
    c->importance = b.value("importance", "normal");
    const std::int64_t now = op.value("now", kBaseEpoch);
    c->created = c->modified = c->sent = c->received = now;
    c->internet_message_id = b.value("internetMessageId", "<" + to_hex(sha1(op.dump())).substr(0, 32) + "@" + t.spec.domain + ">");
    c->conversation_key = "restored:" + c->internet_message_id;
    Msg m;
    m.draft = true;
    m.read = b.value("isRead", true);
    if (b.contains("flag") && b["flag"].is_object()) m.flagged = b["flag"].value("flagStatus", "") == "flagged";
    if (b.contains("singleValueExtendedProperties") && b["singleValueExtendedProperties"].is_array()) {
      for (auto& p : b["singleValueExtendedProperties"]) {
        std::string id = p.value("id", ""), value = p.value("value", "");
        c->extended.emplace_back(id, value);
        for (auto& ch : id) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (id == "integer 0x0e07") {
          long flags = 0;
          try {
            flags = std::stol(value);
          } catch (...) {
            fail(Errc::bad_request, "ErrorInvalidExtendedPropertyValue", "The extended property value is invalid.");
          }
          m.draft = (flags & 0x8) != 0;  // MSGFLAG_UNSENT
        } else if (id == "systemtime 0x0039" || id == "systemtime 0x0e06") {
          auto tv = parse_iso_time(value);
          if (!tv) fail(Errc::bad_request, "ErrorInvalidExtendedPropertyValue", "The extended property value is invalid.");
          (id == "systemtime 0x0039" ? c->sent : c->received) = *tv;
        }
      }
    }
    c->is_draft = m.draft;
    m.custom = c;
    auto folder = op.value("folder", well_known_folder(mb, "drafts"));
    return {{"index", add_message(mb, folder, std::move(m))}};
  }
  if (kind == "create_mime_message") {
    auto raw = unbase64(op.value("base64", ""));
    if (!raw || raw->empty() || raw->find(':') == std::string::npos)
      fail(Errc::bad_request, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.");
    auto c = std::make_shared<MessageContent>();
    c->subject = mime_header(*raw, "Subject");
    c->from = parse_address(mime_header(*raw, "From"));
    if (auto to = mime_header(*raw, "To"); !to.empty()) c->to.push_back(parse_address(to));
    c->internet_message_id = mime_header(*raw, "Message-ID");
    c->conversation_key = "mime:" + c->internet_message_id;
    c->html = false;
    const std::int64_t now = op.value("now", kBaseEpoch);
    c->created = c->modified = c->sent = c->received = now;
    c->is_draft = true;
    Msg m;
    m.draft = true;  // MIME imports always land as drafts
    m.read = true;
    m.custom = c;
    m.custom_mime = std::make_shared<const std::string>(std::move(*raw));
    return {{"index", add_message(mb, well_known_folder(mb, "drafts"), std::move(m))}};
  }
  if (kind == "add_attachment") {
    auto& m = live_message(mb, op.value("message", 0u));
    auto data = unbase64(op.value("contentBytes", ""));
    if (!data) fail(Errc::bad_request, "ErrorInvalidRequest", "contentBytes is not valid base64.");
    if (!m.custom) m.custom = std::make_shared<MessageContent>(message_content(t, u, op.value("message", 0u), m));
    auto c = std::make_shared<MessageContent>(*m.custom);
    Attachment a;
    a.name = op.value("name", "attachment");
    a.content_type = op.value("contentType", "application/octet-stream");
    a.is_inline = op.value("isInline", false);
    a.content_id = op.value("contentId", "");
    a.size = data->size();
    a.data = std::make_shared<const std::string>(std::move(*data));
    c->attachments.push_back(std::move(a));
    m.custom = c;
    m.custom_mime.reset();  // the MIME now follows the content
    ++m.version;
    m.seq = ++mb.seq;
    return {{"index", op.value("message", 0u)}, {"attachment", c->attachments.size() - 1}};
  }
  if (kind == "patch_message") {
    // The properties the restore changes after creation: read state and named
    // extended properties (set or replaced by id, case-insensitive).
    const auto idx = op.value("message", 0u);
    auto& m = live_message(mb, idx);
    const json& b = op["changes"];
    for (auto& [k, v] : b.items())
      if (k != "isRead" && k != "singleValueExtendedProperties")
        fail(Errc::bad_request, "ErrorInvalidRequest", "The emulator patches isRead and singleValueExtendedProperties only.");
    if (b.contains("isRead")) m.read = b["isRead"].get<bool>();
    if (b.contains("singleValueExtendedProperties")) {
      if (!b["singleValueExtendedProperties"].is_array())
        fail(Errc::bad_request, "ErrorInvalidRequest", "singleValueExtendedProperties must be an array.");
      if (!m.custom) m.custom = std::make_shared<MessageContent>(message_content(t, u, idx, m));
      auto c = std::make_shared<MessageContent>(*m.custom);
      for (auto& p : b["singleValueExtendedProperties"]) {
        std::string id = p.value("id", ""), value = p.value("value", "");
        if (id.empty()) fail(Errc::bad_request, "ErrorInvalidExtendedPropertyValue", "An extended property has no id.");
        auto same = std::find_if(c->extended.begin(), c->extended.end(),
                                 [&](auto& e) { return strcasecmp(e.first.c_str(), id.c_str()) == 0; });
        if (same != c->extended.end()) same->second = value;
        else c->extended.emplace_back(id, value);
      }
      m.custom = c;
    }
    m.seq = ++mb.seq;
    return {{"index", idx}};
  }
  if (kind == "move_message") {
    const auto idx = op.value("message", 0u);
    auto& m = live_message(mb, idx);
    const auto to = op.value("destination", 0u);
    auto& src = mb.folders[m.folder];
    std::erase(src.messages, idx);
    m.seq = ++mb.seq;
    src.tombs.push_back({idx, m.moves, m.seq});
    ++m.moves;
    m.folder = to;
    insert_sorted(mb.folders[to].messages, idx);
    return {{"index", idx}};
  }
  if (kind == "delete_message") {
    const auto idx = op.value("message", 0u);
    auto& m = live_message(mb, idx);
    auto& f = mb.folders[m.folder];
    std::erase(f.messages, idx);
    m.alive = false;
    m.seq = ++mb.seq;
    f.tombs.push_back({idx, m.moves, m.seq});
    return {{"index", idx}};
  }
  if (kind == "create_contact_folder" || kind == "create_calendar") {
    auto& s = kind == "create_calendar" ? mb.calendars : mb.contacts;
    const std::string name = op.value("name", "");
    if (name.empty()) fail(Errc::bad_request, "ErrorInvalidRequest", "The name cannot be empty.");
    const std::int32_t parent = kind == "create_calendar" ? -1 : static_cast<std::int32_t>(op.value("parent", 0u));
    for (auto& f : s.containers)
      if (!f.deleted && f.parent == parent && strcasecmp(f.name.c_str(), name.c_str()) == 0)
        fail(Errc::conflict, "ErrorFolderExists", "A folder with the specified name already exists.");
    Folder f;
    f.index = static_cast<std::uint32_t>(s.containers.size());
    f.parent = parent;
    f.name = name;
    f.seq = ++s.seq;
    s.containers.push_back(std::move(f));
    return {{"index", s.containers.size() - 1}};
  }
  if (kind == "delete_contact" || kind == "delete_event" || kind == "patch_occurrence") {
    auto& s = kind == "delete_contact" ? mb.contacts : mb.calendars;
    const auto idx = op.value("item", 0u);
    if (idx >= s.items.size() || !s.items[idx].alive)
      fail(Errc::not_found, "ErrorItemNotFound", "The specified object was not found in the store.");
    auto& it = s.items[idx];
    if (const auto number = op.value("occurrence", 0u)) {
      // One instance of a series: deleting cancels it, patching makes it an exception.
      auto occ = occurrences(t, u, idx, it);
      if (std::none_of(occ.begin(), occ.end(), [&](const Occurrence& o) { return o.number == number; }))
        fail(Errc::not_found, "ErrorItemNotFound", "The specified object was not found in the store.");
      if (kind == "delete_event") {
        it.cancelled.push_back(number);
        it.patched.erase(number);
      } else {
        json patch = it.patched.count(number) ? it.patched[number] : json::object();
        for (auto& [k, v] : op["changes"].items()) patch[k] = v;
        if (patch.contains("attendees") && patch["attendees"].is_array()) mb.invitations_sent += patch["attendees"].size();
        it.patched[number] = patch;
      }
      it.seq = ++s.seq;
      return {{"index", idx}, {"occurrence", number}};
    }
    if (kind == "patch_occurrence") fail(Errc::bad_request, "ErrorInvalidRequest", "not an occurrence of a series");
    it.alive = false;
    it.seq = ++s.seq;
    auto& c = s.containers[it.container];
    std::erase(c.messages, idx);
    c.tombs.push_back({idx, 0, it.seq});
    return {{"index", idx}};
  }
  if (kind == "create_contact" || kind == "create_event") {
    const bool ev = kind == "create_event";
    auto& s = ev ? mb.calendars : mb.contacts;
    json body = op["item"];
    for (auto k : {"id", "@odata.type", "@odata.etag", "@odata.context", "changeKey", "parentFolderId", "calendar", "webLink",
                   "iCalUId", "seriesMasterId", "transactionId", "cancelledOccurrences", "exceptionOccurrences"})
      body.erase(k);  // server-assigned or read-only (a series' exceptions are written instance by instance)
    const std::int64_t now = op.value("now", kBaseEpoch);
    body["createdDateTime"] = iso_time(now);
    body["lastModifiedDateTime"] = iso_time(now);
    if (ev) {
      if (!body.contains("type")) body["type"] = body.contains("recurrence") && !body["recurrence"].is_null() ? "seriesMaster" : "singleInstance";
      if (!body.contains("isOrganizer")) body["isOrganizer"] = true;
      if (!body.contains("attendees")) body["attendees"] = json::array();
      if (!body.contains("iCalUId")) body["iCalUId"] = "040000008200E00074C5B7101A82E008" + to_hex(sha1(op.dump())).substr(0, 32);
      for (auto& a : body["attendees"])
        if (!a.contains("status")) a["status"] = {{"response", "none"}, {"time", "0001-01-01T00:00:00Z"}};
      mb.invitations_sent += body["attendees"].size();  // each attendee would get an invitation
    }
    PimItem it;
    it.container = op.value("container", 0u);
    it.seq = ++s.seq;
    it.custom = std::make_shared<const json>(std::move(body));
    auto idx = static_cast<std::uint32_t>(s.items.size());
    s.items.push_back(it);
    insert_sorted(s.containers[it.container].messages, idx);
    return {{"index", idx}};
  }
  fail(Errc::bad_request, "ErrorInvalidRequest", "unknown write '" + kind + "'");
}

}  // namespace m365vault::emulator
