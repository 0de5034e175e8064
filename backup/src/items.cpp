#include "items.hpp"

namespace m365vault::backup {

using nlohmann::json;

const char* const kMessageSelect =
    "subject,from,sender,toRecipients,ccRecipients,bccRecipients,sentDateTime,receivedDateTime,isRead,flag,"
    "importance,categories,internetMessageId,hasAttachments,changeKey,parentFolderId,conversationId,bodyPreview,"
    "isDraft,lastModifiedDateTime";

namespace {

std::optional<std::string> str(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) return std::nullopt;
  return it->get<std::string>();
}

bool truthy(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return false;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_string()) return it->get_ref<const std::string&>() == "true";  // seen in Graph samples
  return false;
}

void add_recipients(std::vector<std::string>& out, const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return;
  for (auto& r : *it) {
    auto s = format_address(r);
    if (!s.empty()) out.push_back(std::move(s));
  }
}

// Properties that are metadata worth keeping verbatim beside the columns.
void keep(json& meta, const json& src, std::initializer_list<const char*> keys) {
  for (auto k : keys)
    if (auto it = src.find(k); it != src.end() && !it->is_null()) meta[k] = *it;
}

std::string graph_id(const json& item) {
  auto it = item.find("id");
  return it != item.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::string format_address(const json& r) {
  const json* ea = &r;
  if (auto it = r.find("emailAddress"); it != r.end() && it->is_object()) ea = &*it;
  auto name = str(*ea, "name"), addr = str(*ea, "address");
  if (name && addr && *name != *addr) return *name + " <" + *addr + ">";
  if (addr) return *addr;
  return name.value_or("");
}

std::string change_key_of(const json& item) {
  if (auto ck = str(item, "changeKey")) return *ck;
  if (auto tag = str(item, "@odata.etag")) {
    // W/"CQAAABYAAA..." -> CQAAABYAAA...
    auto a = tag->find('"'), b = tag->rfind('"');
    if (a != std::string::npos && b > a) return tag->substr(a + 1, b - a - 1);
    return *tag;
  }
  if (auto ck = str(item, "lastModifiedDateTime")) return *ck;
  return "";
}

storage::ItemChange message_change(const json& m, const std::string& folder_id) {
  storage::ItemChange c;
  c.graph_id = graph_id(m);
  c.kind = "message";
  c.container_graph_id = folder_id;
  c.change_key = change_key_of(m);
  c.subject = str(m, "subject");
  c.name = c.subject.value_or("(no subject)");
  if (auto it = m.find("from"); it != m.end() && it->is_object())
    c.sender = format_address(*it);
  else if (auto s = m.find("sender"); s != m.end() && s->is_object())
    c.sender = format_address(*s);
  if (c.sender && c.sender->empty()) c.sender.reset();
  add_recipients(c.recipients, m, "toRecipients");
  add_recipients(c.recipients, m, "ccRecipients");
  add_recipients(c.recipients, m, "bccRecipients");
  c.sent_at = str(m, "sentDateTime");
  c.received_at = str(m, "receivedDateTime");
  c.modified_at = str(m, "lastModifiedDateTime");
  if (truthy(m, "isRead")) c.flags.push_back("read");
  if (truthy(m, "hasAttachments")) c.flags.push_back("has_attachments");
  if (truthy(m, "isDraft")) c.flags.push_back("draft");
  if (auto f = m.find("flag"); f != m.end() && f->is_object() && f->value("flagStatus", "") == "flagged")
    c.flags.push_back("flagged");
  c.body_preview = str(m, "bodyPreview");
  keep(c.meta, m, {"importance", "categories", "internetMessageId", "conversationId", "flag", "from", "sender",
                   "toRecipients", "ccRecipients", "bccRecipients"});
  c.content_type = "message/rfc822";
  return c;
}

storage::ItemChange contact_change(const json& j, const std::string& folder_id) {
  storage::ItemChange c;
  c.graph_id = graph_id(j);
  c.kind = "contact";
  c.container_graph_id = folder_id;
  c.change_key = change_key_of(j);
  c.name = str(j, "displayName").value_or(str(j, "companyName").value_or("(no name)"));
  if (auto it = j.find("emailAddresses"); it != j.end() && it->is_array())
    for (auto& e : *it) {
      auto s = format_address(e);
      if (!s.empty()) c.recipients.push_back(std::move(s));
    }
  c.modified_at = str(j, "lastModifiedDateTime");
  c.body_preview = str(j, "personalNotes");
  keep(c.meta, j, {"givenName", "surname", "companyName", "jobTitle", "businessPhones", "mobilePhone", "categories"});
  c.content_type = "application/json";
  return c;
}

storage::ItemChange event_change(const json& e, const std::string& calendar_id) {
  storage::ItemChange c;
  c.graph_id = graph_id(e);
  c.kind = "event";
  c.container_graph_id = calendar_id;
  c.change_key = change_key_of(e);
  c.subject = str(e, "subject");
  c.name = c.subject.value_or("(no subject)");
  if (auto it = e.find("organizer"); it != e.end() && it->is_object()) {
    auto s = format_address(*it);
    if (!s.empty()) c.sender = s;
  }
  add_recipients(c.recipients, e, "attendees");
  if (auto s = e.find("start"); s != e.end() && s->is_object()) c.sent_at = str(*s, "dateTime");
  c.modified_at = str(e, "lastModifiedDateTime");
  if (truthy(e, "isCancelled")) c.flags.push_back("cancelled");
  if (truthy(e, "isAllDay")) c.flags.push_back("all_day");
  c.body_preview = str(e, "bodyPreview");
  keep(c.meta, e, {"type", "start", "end", "location", "recurrence", "cancelledOccurrences", "showAs", "importance",
                   "categories", "seriesMasterId", "iCalUId"});
  c.content_type = "application/json";
  return c;
}

}  // namespace m365vault::backup
