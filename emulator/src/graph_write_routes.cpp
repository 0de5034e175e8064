// Restore-side Graph writes: mail folders, messages by JSON and by MIME, attachments
// (direct and by upload session), move, delete, contact folders, contacts,
// calendars and events. Every write is journaled so --state-dir replays it.
#include "internal.hpp"
#include "m365vault/core/error.hpp"

namespace m365vault::emulator {

namespace {
constexpr std::size_t kDirectAttachmentLimit = 3 * 1024 * 1024;
constexpr std::uint64_t kUploadMin = 3ull * 1024 * 1024, kUploadMax = 150ull * 1024 * 1024;
constexpr std::size_t kUploadChunkMax = 4 * 1024 * 1024;
}  // namespace

void EmulatorImpl::register_writes() {
  // Applies a write under the tenant lock and journals it; Graph errors come back as
  // Error("Code: text").
  auto write = [this](GraphCtx& c, json op, json& result) -> std::optional<net::Response> {
    op["user"] = *c.user;
    op["now"] = now();
    try {
      std::lock_guard lk(c.tenant->mu);
      result = apply_write(*c.tenant, op);
    } catch (const Error& e) {
      std::string what = e.what();
      auto colon = what.find(": ");
      int status = e.code() == Errc::conflict ? 409 : e.code() == Errc::not_found ? 404 : 400;
      return graph_error(c.req, status, what.substr(0, colon), what.substr(colon + 2), status != 400);
    }
    journal({{"op", "write"}, {"tenant", c.tenant->spec.tenant_id}, {"write", op}});
    return std::nullopt;
  };
  auto body_json = [](GraphCtx& c) -> std::optional<json> {
    auto j = json::parse(c.req.body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return std::nullopt;
    return j;
  };
  auto bad_body = [this](GraphCtx& c) {
    return graph_error(c.req, 400, "UnableToDeserializePostBody", "were unable to deserialize ");
  };
  auto folder_of = [](GraphCtx& c, const std::string& ref) -> std::optional<std::uint32_t> {
    auto& t = *c.tenant;
    std::lock_guard lk(t.mu);
    auto& mb = mailbox(t, *c.user);
    for (auto& f : mb.folders)
      if (!f.deleted && !f.well_known.empty() && strcasecmp(f.well_known.c_str(), ref.c_str()) == 0) return f.index;
    auto k = parse_outlook_id(t, ref);
    if (!k || k->kind != OutlookKey::folder || k->user != *c.user || k->index >= mb.folders.size() ||
        mb.folders[k->index].deleted)
      return std::nullopt;
    return k->index;
  };
  auto message_of = [](GraphCtx& c, const std::string& ref) -> std::optional<std::uint32_t> {
    auto& t = *c.tenant;
    std::lock_guard lk(t.mu);
    auto& mb = mailbox(t, *c.user);
    auto k = parse_outlook_id(t, ref);
    if (!k || k->user != *c.user || (k->kind != OutlookKey::message && k->kind != OutlookKey::immutable) ||
        k->index >= mb.msgs.size() || !mb.msgs[k->index].alive)
      return std::nullopt;
    if (k->kind == OutlookKey::message && k->moves != mb.msgs[k->index].moves) return std::nullopt;
    return k->index;
  };
  auto not_found = [this](GraphCtx& c) {
    return graph_error(c.req, 404, "ErrorItemNotFound", "The specified object was not found in the store.");
  };
  auto render_message = [this](GraphCtx& c, std::uint32_t idx, int status) {
    auto& t = *c.tenant;
    Msg m;
    {
      std::lock_guard lk(t.mu);
      m = mailbox(t, *c.user).msgs[idx];
    }
    auto j = message_json_fn(c, t, *c.user, idx, m, message_content(t, *c.user, idx, m));
    j.erase("@odata.type");
    j["@odata.context"] = base_url + "/" + c.version + "/$metadata#users('" + t.users[*c.user].id + "')/messages/$entity";
    return graph_json(c, status, j);
  };

  // ---- mail folders
  auto create_folder = [=, this](bool child) {
    return [=, this](GraphCtx& c) {
      auto b = body_json(c);
      if (!b) return bad_body(c);
      std::uint32_t parent = 0;
      if (child) {
        auto f = folder_of(c, c.req.params["folder"]);
        if (!f) return not_found(c);
        parent = *f;
      }
      json result;
      if (auto err = write(c, {{"kind", "create_mail_folder"}, {"parent", parent}, {"displayName", b->value("displayName", "")},
                               {"isHidden", b->value("isHidden", false)}},
                           result))
        return *err;
      auto& t = *c.tenant;
      std::lock_guard lk(t.mu);
      auto& mb = mailbox(t, *c.user);
      auto j = folder_json_fn(t, *c.user, mb, mb.folders[result["index"].get<std::uint32_t>()]);
      j["@odata.context"] = base_url + "/" + c.version + "/$metadata#users('" + t.users[*c.user].id + "')/mailFolders/$entity";
      return graph_json(c, 201, j);
    };
  };
  add_graph("POST", "/users/{user}/mailFolders", "Mail.ReadWrite", true, create_folder(false));
  add_graph("POST", "/users/{user}/mailFolders/{folder}/childFolders", "Mail.ReadWrite", true, create_folder(true));

  // ---- messages
  auto is_text = [](GraphCtx& c) {
    auto ct = std::string(c.req.headers.get("Content-Type").value_or(""));
    return ct.rfind("text/plain", 0) == 0;
  };
  add_graph("POST", "/users/{user}/mailFolders/{folder}/messages", "Mail.ReadWrite", true, [=, this](GraphCtx& c) {
    if (is_text(c)) return bad_body(c);  // MIME into a folder is refused (contract 11)
    auto b = body_json(c);
    if (!b) return bad_body(c);
    auto f = folder_of(c, c.req.params["folder"]);
    if (!f) return not_found(c);
    json result;
    if (auto err = write(c, {{"kind", "create_message"}, {"folder", *f}, {"message", *b}}, result)) return *err;
    return render_message(c, result["index"].get<std::uint32_t>(), 201);
  });
  add_graph("POST", "/users/{user}/messages", "Mail.ReadWrite", true, [=, this](GraphCtx& c) {
    json result;
    if (is_text(c)) {
      std::string b64;
      for (char ch : c.req.body)
        if (ch != '\r' && ch != '\n') b64 += ch;
      if (auto err = write(c, {{"kind", "create_mime_message"}, {"base64", b64}}, result)) {
        if (err->status == 400) {  // this error comes without innerError
          auto r = net::Response::json(400, json{{"error", {{"code", "ErrorMimeContentInvalidBase64String"},
                                                            {"message", "Invalid base64 string for MIME content."}}}});
          return r;
        }
        return *err;
      }
    } else {
      auto b = body_json(c);
      if (!b) return bad_body(c);
      if (auto err = write(c, {{"kind", "create_message"}, {"message", *b}}, result)) return *err;
    }
    return render_message(c, result["index"].get<std::uint32_t>(), 201);
  });
  for (std::string prefix : {"/users/{user}/messages/{msg}", "/users/{user}/mailFolders/{folder}/messages/{msg}"}) {
    add_graph("DELETE", prefix, "Mail.ReadWrite", true, [=](GraphCtx& c) {
      auto m = message_of(c, c.req.params["msg"]);
      if (!m) return not_found(c);
      json result;
      if (auto err = write(c, {{"kind", "delete_message"}, {"message", *m}}, result)) return *err;
      net::Response r;
      r.status = 204;
      return r;
    });
    add_graph("POST", prefix + "/move", "Mail.ReadWrite", true, [=, this](GraphCtx& c) {
      auto b = body_json(c);
      if (!b || !b->contains("destinationId")) return bad_body(c);
      auto m = message_of(c, c.req.params["msg"]);
      if (!m) return not_found(c);
      auto f = folder_of(c, (*b)["destinationId"].get<std::string>());
      if (!f) return graph_error(c.req, 404, "ErrorItemNotFound", "The destination folder was not found.");
      json result;
      if (auto err = write(c, {{"kind", "move_message"}, {"message", *m}, {"destination", *f}}, result)) return *err;
      return render_message(c, *m, 201);
    });
    add_graph("POST", prefix + "/attachments", "Mail.ReadWrite", true, [=, this](GraphCtx& c) {
      auto b = body_json(c);
      if (!b) return bad_body(c);
      auto m = message_of(c, c.req.params["msg"]);
      if (!m) return not_found(c);
      if (b->value("@odata.type", "") != "#microsoft.graph.fileAttachment")
        return graph_error(c.req, 400, "ErrorInvalidRequest", "Only file attachments can be added here.");
      auto bytes = b->value("contentBytes", "");
      if (bytes.size() / 4 * 3 > kDirectAttachmentLimit + 3)
        return graph_error(c.req, 413, "ErrorRequestEntityTooLarge",
                           "The attachment is larger than 3 MB: use an upload session.");
      json result;
      if (auto err = write(c, {{"kind", "add_attachment"}, {"message", *m}, {"name", b->value("name", "attachment")},
                               {"contentType", b->value("contentType", "application/octet-stream")},
                               {"isInline", b->value("isInline", false)}, {"contentId", b->value("contentId", "")},
                               {"contentBytes", bytes}},
                           result))
        return *err;
      auto& t = *c.tenant;
      auto n = result["attachment"].get<std::uint32_t>();
      Msg msg;
      {
        std::lock_guard lk(t.mu);
        msg = mailbox(t, *c.user).msgs[*m];
      }
      auto& a = msg.custom->attachments[n];
      json j = {{"@odata.context", base_url + "/" + c.version + "/$metadata#users('" + t.users[*c.user].id + "')/messages('" +
                                       c.req.params["msg"] + "')/attachments/$entity"},
                {"@odata.type", "#microsoft.graph.fileAttachment"},
                {"id", outlook_id(t, {OutlookKey::attachment, *c.user, *m, msg.moves, n})},
                {"lastModifiedDateTime", iso_time(now())},
                {"name", a.name},
                {"contentType", a.content_type},
                {"size", a.size},
                {"isInline", a.is_inline},
                {"contentId", a.content_id.empty() ? json(nullptr) : json(a.content_id)},
                {"contentLocation", nullptr},
                {"contentBytes", bytes}};
      return graph_json(c, 201, j);
    });
    add_graph("POST", prefix + "/attachments/createUploadSession", "Mail.ReadWrite", true, [=, this](GraphCtx& c) {
      auto b = body_json(c);
      if (!b || !b->contains("AttachmentItem")) return bad_body(c);
      auto m = message_of(c, c.req.params["msg"]);
      if (!m) return not_found(c);
      auto& item = (*b)["AttachmentItem"];
      auto size = item.value("size", std::uint64_t{0});
      if (item.value("attachmentType", "file") != "file" || size < kUploadMin || size > kUploadMax)
        return graph_error(c.req, 400, "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize",
                           "Attachment size must be between 3 MB and 150 MB for an upload session.");
      std::string id = base64(random_bytes(24), true, false);
      double expires = now_precise() + 6 * 3600;
      {
        std::lock_guard lk(umu);
        uploads[id] = {c.tenant->spec.tenant_id, *c.user, *m, item.value("name", "attachment"),
                       item.value("contentType", "application/octet-stream"), size, {}, expires};
      }
      json j = {{"@odata.context", base_url + "/" + c.version + "/$metadata#microsoft.graph.uploadSession"},
                {"uploadUrl", base_url + "/_upload/" + id},
                {"expirationDateTime", iso_time(static_cast<std::int64_t>(expires))},
                {"nextExpectedRanges", json::array({"0-"})}};
      return graph_json(c, 201, j);
    });
  }

  // Upload session chunks: no Authorization (the URL is the credential).
  auto upload = [this](net::Request& req) -> boost::asio::awaitable<net::Response> {
    auto err = [&](int status, const std::string& code, const std::string& msg) { return graph_error(req, status, code, msg); };
    const std::string id = req.params["session"];
    if (req.headers.get("Authorization"))
      co_return err(401, "InvalidAuthenticationToken", "The upload URL carries its own credentials: do not send an Authorization header.");
    std::unique_lock lk(umu);
    auto it = uploads.find(id);
    if (it == uploads.end() || it->second.expires < now_precise())
      co_return err(404, "ErrorItemNotFound", "The upload session was not found or has expired.");
    auto& s = it->second;
    if (req.method == "DELETE") {
      uploads.erase(it);
      net::Response r;
      r.status = 204;
      co_return r;
    }
    auto range = std::string(req.headers.get("Content-Range").value_or(""));
    unsigned long long a = 0, b = 0, total = 0;
    if (std::sscanf(range.c_str(), "bytes %llu-%llu/%llu", &a, &b, &total) != 3 || b < a || total != s.size ||
        b - a + 1 != req.body.size())
      co_return err(400, "ErrorInvalidRequest", "Content-Range is missing or does not match the body.");
    if (req.body.size() > kUploadChunkMax) co_return err(413, "ErrorRequestEntityTooLarge", "A chunk may hold at most 4 MB.");
    if (a != s.data.size())
      co_return err(416, "invalidRange", "The uploaded fragment does not start at the next expected byte " +
                                             std::to_string(s.data.size()) + ".");
    s.data += req.body;
    if (s.data.size() < s.size) {
      auto r = net::Response::json(200, json{{"ExpirationDateTime", iso_time(static_cast<std::int64_t>(s.expires))},
                                            {"NextExpectedRanges", json::array({std::to_string(s.data.size())})}});
      co_return r;
    }
    auto session = std::move(s);
    uploads.erase(it);
    lk.unlock();
    auto t = find_tenant(session.tenant);
    if (!t) co_return err(404, "ErrorItemNotFound", "The tenant is gone.");
    json op = {{"kind", "add_attachment"}, {"user", session.user}, {"message", session.message}, {"name", session.name},
               {"contentType", session.content_type}, {"contentBytes", base64(session.data)}, {"now", now()}};
    json result;
    std::uint32_t moves = 0;
    try {
      std::lock_guard tl(t->mu);
      result = apply_write(*t, op);
      moves = mailbox(*t, session.user).msgs[session.message].moves;
    } catch (const Error& e) {
      co_return err(404, "ErrorItemNotFound", e.what());
    }
    journal({{"op", "write"}, {"tenant", session.tenant}, {"write", op}});
    net::Response r;
    r.status = 201;
    r.headers.set("Location", base_url + "/v1.0/users('" + t->users[session.user].id + "')/messages('" +
                                  outlook_id(*t, {OutlookKey::message, session.user, session.message, moves, 0}) +
                                  "')/attachments('" +
                                  outlook_id(*t, {OutlookKey::attachment, session.user, session.message, moves,
                                                  result["attachment"].get<std::uint32_t>()}) +
                                  "')");
    co_return r;
  };
  router.add("PUT", "/_upload/{session}", upload);
  router.add("DELETE", "/_upload/{session}", upload);

  // ---- contacts and calendars
  auto pim_container = [](GraphCtx& c, bool contacts, const std::string& ref) -> std::optional<std::uint32_t> {
    auto& t = *c.tenant;
    std::lock_guard lk(t.mu);
    auto& s = contacts ? mailbox(t, *c.user).contacts : mailbox(t, *c.user).calendars;
    for (auto& f : s.containers)
      if (!f.deleted && !f.well_known.empty() && strcasecmp(f.well_known.c_str(), ref.c_str()) == 0) return f.index;
    auto k = parse_outlook_id(t, ref);
    if (!k || k->kind != (contacts ? OutlookKey::contact_folder : OutlookKey::calendar) || k->user != *c.user ||
        k->index >= s.containers.size() || s.containers[k->index].deleted)
      return std::nullopt;
    return k->index;
  };
  auto create_container = [=, this](bool contacts) {
    return [=, this](GraphCtx& c) {
      auto b = body_json(c);
      if (!b) return bad_body(c);
      json result;
      std::string name = b->value(contacts ? "displayName" : "name", "");
      if (auto err = write(c, {{"kind", contacts ? "create_contact_folder" : "create_calendar"}, {"name", name}, {"parent", 0}}, result))
        return *err;
      auto& t = *c.tenant;
      std::lock_guard lk(t.mu);
      auto& s = contacts ? mailbox(t, *c.user).contacts : mailbox(t, *c.user).calendars;
      auto j = container_json_fn(t, *c.user, contacts, s, s.containers[result["index"].get<std::uint32_t>()]);
      j["@odata.context"] = base_url + "/" + c.version + "/$metadata#users('" + t.users[*c.user].id + "')/" +
                            (contacts ? "contactFolders" : "calendars") + "/$entity";
      return graph_json(c, 201, j);
    };
  };
  add_graph("POST", "/users/{user}/contactFolders", "Contacts.ReadWrite", true, create_container(true));
  add_graph("POST", "/users/{user}/calendars", "Calendars.ReadWrite", true, create_container(false));
  auto create_item = [=, this](bool contacts, std::string fixed) {
    return [=, this](GraphCtx& c) {
      auto b = body_json(c);
      if (!b) return bad_body(c);
      auto container = pim_container(c, contacts, fixed.empty() ? c.req.params["container"] : fixed);
      if (!container) return not_found(c);
      json result;
      if (auto err = write(c, {{"kind", contacts ? "create_contact" : "create_event"}, {"container", *container}, {"item", *b}}, result))
        return *err;
      auto& t = *c.tenant;
      PimItem it;
      {
        std::lock_guard lk(t.mu);
        auto& s = contacts ? mailbox(t, *c.user).contacts : mailbox(t, *c.user).calendars;
        it = s.items[result["index"].get<std::uint32_t>()];
      }
      auto j = pim_json_fn(t, *c.user, contacts, result["index"].get<std::uint32_t>(), it);
      j.erase("@odata.type");
      j["@odata.context"] = base_url + "/" + c.version + "/$metadata#users('" + t.users[*c.user].id + "')/" +
                            (contacts ? "contacts" : "events") + "/$entity";
      return graph_json(c, 201, j);
    };
  };
  add_graph("POST", "/users/{user}/contacts", "Contacts.ReadWrite", true, create_item(true, "contacts"));
  add_graph("POST", "/users/{user}/contactFolders/{container}/contacts", "Contacts.ReadWrite", true, create_item(true, ""));
  add_graph("POST", "/users/{user}/events", "Calendars.ReadWrite", true, create_item(false, "calendar"));
  add_graph("POST", "/users/{user}/calendars/{container}/events", "Calendars.ReadWrite", true, create_item(false, ""));
}

}  // namespace m365vault::emulator
