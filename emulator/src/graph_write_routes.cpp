// Restore-side Graph writes: mail folders, messages by JSON and by MIME, attachments
// (direct and by upload session), move, delete, contact folders, contacts,
// calendars and events. Every write is journaled so --state-dir replays it.
#include <fstream>

#include "internal.hpp"
#include "m365vault/core/error.hpp"

namespace m365vault::emulator {

namespace {
constexpr std::size_t kDirectAttachmentLimit = 3 * 1024 * 1024;
constexpr std::uint64_t kUploadMin = 3ull * 1024 * 1024, kUploadMax = 150ull * 1024 * 1024;
constexpr std::size_t kUploadChunkMax = 4 * 1024 * 1024;
constexpr std::size_t kFragmentUnit = 320 * 1024, kFragmentMax = 60ull * 1024 * 1024;
}  // namespace

std::optional<net::Response> EmulatorImpl::write_op(const net::Request& req, Tenant& t, const json& op, json& result) {
  try {
    std::lock_guard lk(t.mu);
    result = apply_write(t, op);
  } catch (const Error& e) {
    return refused_write(req, e);
  }
  if (auto raw = op.find("raw"); raw != op.end() && !state_dir.empty()) {
    // Uploaded bytes travel raw (no base64 there and back per file); the journal
    // is JSON text, so it keeps them as base64, which replay reads.
    json j = op;
    j.erase("raw");
    j["base64"] = base64(raw->get_ref<const std::string&>());
    journal({{"op", "write"}, {"tenant", t.spec.tenant_id}, {"write", j}});
  } else {
    journal({{"op", "write"}, {"tenant", t.spec.tenant_id}, {"write", op}});
  }
  return std::nullopt;
}

net::Response EmulatorImpl::refused_write(const net::Request& req, const Error& e) {
  std::string what = e.what();
  auto colon = what.find(": ");
  int status = e.code() == Errc::conflict ? 409 : e.code() == Errc::not_found ? 404 : 400;
  return graph_error(req, status, what.substr(0, colon), what.substr(colon + 2), status != 400);
}

std::uint64_t EmulatorImpl::UploadSession::received() const {
  if (kind == attachment) return data.size();
  std::uint64_t n = 0;
  for (auto& [off, f] : frags) n += f.size();
  return n;
}

json EmulatorImpl::UploadSession::missing_ranges() const {
  json out = json::array();
  std::uint64_t pos = 0;
  for (auto& [off, f] : frags) {
    if (off > pos) out.push_back(std::to_string(pos) + "-" + std::to_string(off - 1));
    pos = off + f.size();
  }
  if (size == 0 || pos < size) out.push_back(std::to_string(pos) + "-");
  return out;
}

void EmulatorImpl::store_upload(const std::string& id, UploadSession s) {
  const double now_s = now_precise();
  std::lock_guard lk(umu);
  std::erase_if(uploads, [&](const auto& kv) {  // abandoned sessions hold bytes
    if (kv.second.expires >= now_s) return false;
    forget_session(kv.first);
    return true;
  });
  persist_session_meta(id, s);
  uploads[id] = std::move(s);
}

namespace {
std::filesystem::path session_dir(const std::filesystem::path& state, const std::string& id) {
  return state / "uploads" / id;
}
}  // namespace

void EmulatorImpl::persist_session_meta(const std::string& id, const UploadSession& s) {
  if (state_dir.empty()) return;
  const auto dir = session_dir(state_dir, id);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  json meta = {{"kind", s.kind == UploadSession::drive_item ? "drive_item" : "attachment"},
               {"tenant", s.tenant}, {"user", s.user}, {"message", s.message}, {"name", s.name},
               {"content_type", s.content_type}, {"size", s.size}, {"expires", s.expires},
               {"target", s.target}, {"conflicted", s.conflicted}};
  // Written aside and renamed, so a crash leaves the old meta or the new one.
  std::ofstream out(dir / "meta.json.tmp", std::ios::trunc);
  out << meta.dump();
  out.close();
  if (!out) {
    log->error("cannot write upload session '{}' to the state dir", id);
    return;
  }
  std::filesystem::rename(dir / "meta.json.tmp", dir / "meta.json", ec);
  if (ec) log->error("cannot write upload session '{}' to the state dir: {}", id, ec.message());
}

void EmulatorImpl::persist_session_bytes(const std::string& id, std::uint64_t offset, const std::string& bytes) {
  if (state_dir.empty()) return;
  const auto dir = session_dir(state_dir, id);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const bool attachment = id.rfind(kDriveSessionPrefix, 0) != 0;
  // Attachment bytes arrive in order and append; a drive fragment is its own file,
  // named once complete so a torn write is never taken for a fragment.
  const auto file = attachment ? dir / "data" : dir / ("frag-" + std::to_string(offset));
  const auto tmp = attachment ? file : dir / ("tmp-" + std::to_string(offset));
  std::ofstream out(tmp, attachment ? std::ios::app | std::ios::binary : std::ios::trunc | std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (out && !attachment) std::filesystem::rename(tmp, file, ec);
  if (!out || ec) log->error("cannot write upload session '{}' bytes to the state dir", id);
}

void EmulatorImpl::forget_session(const std::string& id) {
  if (state_dir.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(session_dir(state_dir, id), ec);
}

void EmulatorImpl::load_sessions() {
  std::error_code ec;
  const auto root = state_dir / "uploads";
  if (!std::filesystem::is_directory(root, ec)) return;
  std::size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
    const std::string id = entry.path().filename().string();
    std::ifstream in(entry.path() / "meta.json");
    auto meta = json::parse(in, nullptr, false);
    if (meta.is_discarded() || !meta.is_object()) {
      log->warn("upload session '{}' in the state dir has no readable meta.json; dropped", id);
      forget_session(id);
      continue;
    }
    UploadSession s;
    s.kind = meta.value("kind", "") == "drive_item" ? UploadSession::drive_item : UploadSession::attachment;
    s.tenant = meta.value("tenant", "");
    s.user = meta.value("user", 0u);
    s.message = meta.value("message", 0u);
    s.name = meta.value("name", "");
    s.content_type = meta.value("content_type", "");
    s.size = meta.value("size", std::uint64_t{0});
    s.expires = meta.value("expires", 0.0);
    s.target = meta.value("target", json());
    s.conflicted = meta.value("conflicted", false);
    auto read_all = [](const std::filesystem::path& p) {
      std::ifstream f(p, std::ios::binary);
      return std::string(std::istreambuf_iterator<char>(f), {});
    };
    if (s.kind == UploadSession::attachment) {
      s.data = read_all(entry.path() / "data");
    } else {
      for (const auto& f : std::filesystem::directory_iterator(entry.path(), ec)) {
        const auto name = f.path().filename().string();
        if (name.rfind("frag-", 0) != 0) continue;
        s.frags.emplace(std::stoull(name.substr(5)), read_all(f.path()));
      }
      if (s.conflicted) {  // a finished session waiting for its redirect holds the whole file
        for (auto& [off, frag] : s.frags) s.data += frag;
        s.frags.clear();
      }
    }
    std::lock_guard lk(umu);
    uploads[id] = std::move(s);
    ++n;
  }
  if (n) log->info("restored {} unfinished upload sessions from the state dir", n);
}

void EmulatorImpl::register_writes() {
  // Applies a write for the addressed user under the tenant lock and journals it.
  auto write = [this](GraphCtx& c, json op, json& result) -> std::optional<net::Response> {
    op["user"] = *c.user;
    op["now"] = now();
    return write_op(c.req, *c.tenant, op, result);
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
    add_graph("PATCH", prefix, "Mail.ReadWrite", true, [=, this](GraphCtx& c) {
      auto b = body_json(c);
      if (!b || !b->is_object()) return bad_body(c);
      auto m = message_of(c, c.req.params["msg"]);
      if (!m) return not_found(c);
      json result;
      if (auto err = write(c, {{"kind", "patch_message"}, {"message", *m}, {"changes", *b}}, result)) return *err;
      return render_message(c, *m, 200);
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
      double expires = now_precise() + kUploadSessionLifetime;
      store_upload(id, {UploadSession::attachment, c.tenant->spec.tenant_id, *c.user, *m, item.value("name", "attachment"),
                        item.value("contentType", "application/octet-stream"), size, {}, {}, expires, nullptr});
      json j = {{"@odata.context", base_url + "/" + c.version + "/$metadata#microsoft.graph.uploadSession"},
                {"uploadUrl", base_url + "/_upload/" + id},
                {"expirationDateTime", iso_time(static_cast<std::int64_t>(expires))},
                {"nextExpectedRanges", json::array({"0-"})}};
      return graph_json(c, 201, j);
    });
  }

  // Upload session chunks: no Authorization (the URL is the credential). Attachment
  // sessions follow Outlook (≤ 4 MB per PUT, 200 with PascalCase, last → 201 and a
  // Location); drive sessions follow OneDrive (fragments in multiples of 320 KiB under
  // 60 MiB, 202 with camelCase, last → the driveItem with 201, or 200 when replacing).
  auto upload = [this](net::Request& req) -> boost::asio::awaitable<net::Response> {
    const std::string id = req.params["session"];
    const bool drive_url = id.rfind(kDriveSessionPrefix, 0) == 0;
    auto err = [&](int status, const std::string& code, const std::string& msg, const std::string& inner_code = "") {
      return graph_error(req, status, code, msg, true, inner_code);
    };
    if (req.headers.get("Authorization"))
      co_return err(401, "InvalidAuthenticationToken", "The upload URL carries its own credentials: do not send an Authorization header.");
    std::unique_lock lk(umu);
    auto it = uploads.find(id);
    if (it != uploads.end() && it->second.expires < now_precise()) {
      forget_session(id);
      uploads.erase(it);
      it = uploads.end();
    }
    if (it == uploads.end())
      co_return err(404, drive_url ? "itemNotFound" : "ErrorItemNotFound", "The upload session was not found or has expired.");
    auto& s = it->second;
    const bool drive_session = s.kind == UploadSession::drive_item;
    const auto received = s.received();
    auto status_body = [&] {
      const std::string expires = iso_time(static_cast<std::int64_t>(s.expires));
      const json ranges = drive_session ? s.missing_ranges() : json::array({std::to_string(s.data.size())});
      return drive_session ? json{{"expirationDateTime", expires}, {"nextExpectedRanges", ranges}}
                           : json{{"ExpirationDateTime", expires}, {"NextExpectedRanges", ranges}};
    };
    if (req.method == "DELETE") {
      forget_session(id);
      uploads.erase(it);
      net::Response r;
      r.status = 204;
      co_return r;
    }
    if (req.method == "GET") co_return net::Response::json(200, status_body());
    auto range = std::string(req.headers.get("Content-Range").value_or(""));
    unsigned long long a = 0, b = 0, total = 0;
    const bool well_formed = std::sscanf(range.c_str(), "bytes %llu-%llu/%llu", &a, &b, &total) == 3 && b >= a &&
                             b - a + 1 == req.body.size();
    if (!drive_session) {
      if (!well_formed || total != s.size)
        co_return err(400, "ErrorInvalidRequest", "Content-Range is missing or does not match the body.");
      if (req.body.size() > kUploadChunkMax) co_return err(413, "ErrorRequestEntityTooLarge", "A chunk may hold at most 4 MB.");
      if (a != received)
        co_return err(416, "invalidRange", "The uploaded fragment does not start at the next expected byte " +
                                               std::to_string(received) + ".");
    } else {
      if (!well_formed || total == 0 || b >= total)
        co_return err(400, "invalidRequest", "Content-Range is missing, malformed or does not match the body.");
      if (s.size != 0 && total != s.size)
        co_return err(400, "invalidRequest", "The declared file size does not match earlier fragments.",
                      "fragmentLengthMismatch");
      if (req.body.size() > kFragmentMax)
        co_return err(413, "invalidRequest", "A fragment must be smaller than 60 MiB.");
      // Any order is accepted (the fixture's 202 lists several missing ranges), but a
      // fragment must not touch bytes already received.
      auto next = s.frags.lower_bound(a);
      const bool overlaps = (next != s.frags.end() && next->first <= b) ||
                            (next != s.frags.begin() && std::prev(next)->first + std::prev(next)->second.size() > a);
      if (overlaps || s.conflicted)
        co_return err(416, "invalidRange", "Uploaded fragment overlaps with existing data.", "fragmentOverlap");
      if (b + 1 < total && req.body.size() % kFragmentUnit != 0)
        co_return err(400, "invalidRequest",
                      "Fragments other than the last must be a multiple of 320 KiB (327,680 bytes).");
      s.size = total;
    }
    persist_session_bytes(id, a, req.body);
    if (drive_session) s.frags.emplace(a, req.body);
    else s.data += req.body;
    if (s.received() < s.size) {
      s.expires = std::max(s.expires, now_precise() + kUploadSessionLifetime);  // progress keeps it alive
      persist_session_meta(id, s);
      co_return net::Response::json(drive_session ? 202 : 200, status_body());
    }
    if (drive_session) {  // complete: join the fragments in order
      for (auto& [off, f] : s.frags) s.data += f;
      s.frags.clear();
    }
    auto session = std::move(s);
    uploads.erase(it);
    lk.unlock();
    auto t = find_tenant(session.tenant);
    if (!t) co_return err(404, "ErrorItemNotFound", "The tenant is gone.");
    if (drive_session) {
      json op = session.target;
      op["raw"] = std::move(session.data);  // the bytes as they are (write_op journals them as base64)
      op["now"] = now();
      json result;
      auto refused = write_op(req, *t, op, result);
      if (!refused || refused->status != 409) forget_session(id);  // written, or refused for good
      if (refused) {
        if (refused->status != 409) co_return std::move(*refused);
        session.data = std::move(op["raw"].get_ref<std::string&>());
        // The name was taken while the bytes came in: the session stays, so the client
        // can still redirect it with @microsoft.graph.sourceUrl (contract 11); the error
        // has no innerError.
        session.conflicted = true;
        store_upload(id, std::move(session));
        co_return graph_error(req, 409, "upload_name_conflict",
                              "Another file exists with the same name as the uploaded session. You can redirect the "
                              "upload session to use a new filename by calling PUT with the new metadata and "
                              "@microsoft.graph.sourceUrl attribute.",
                              false);
      }
      json item;
      {
        std::lock_guard tl(t->mu);
        item = drive_item_json_fn(*t, op["drive"].get<std::uint32_t>(), result["index"].get<std::uint32_t>());
      }
      auto r = net::Response::json(result["status"].get<int>(), item);
      r.headers.set("Content-Type", "application/json");
      co_return r;
    }
    json op = {{"kind", "add_attachment"}, {"user", session.user}, {"message", session.message}, {"name", session.name},
               {"contentType", session.content_type}, {"contentBytes", base64(session.data)}, {"now", now()}};
    json result;
    std::uint32_t moves = 0;
    forget_session(id);  // the session ends here whatever the outcome
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
  router.add("GET", "/_upload/{session}", upload);
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
  // POST /contactFolders creates under the root Contacts folder (index 0), POST
  // /contactFolders/{id}/childFolders under that folder.
  auto create_container = [=, this](bool contacts, bool child) {
    return [=, this](GraphCtx& c) {
      auto b = body_json(c);
      if (!b) return bad_body(c);
      std::uint32_t parent = 0;
      if (child) {
        auto p = pim_container(c, true, c.req.params["container"]);
        if (!p) return not_found(c);
        parent = *p;
      }
      json result;
      std::string name = b->value(contacts ? "displayName" : "name", "");
      if (auto err = write(c, {{"kind", contacts ? "create_contact_folder" : "create_calendar"}, {"name", name}, {"parent", parent}},
                           result))
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
  add_graph("POST", "/users/{user}/contactFolders", "Contacts.ReadWrite", true, create_container(true, false));
  add_graph("POST", "/users/{user}/contactFolders/{container}/childFolders", "Contacts.ReadWrite", true,
            create_container(true, true));
  add_graph("POST", "/users/{user}/calendars", "Calendars.ReadWrite", true, create_container(false, false));
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
  // DELETE a contact or an event (a restore's "replace" removes the current one).
  auto delete_item = [=, this](bool contacts) {
    return [=, this](GraphCtx& c) {
      std::optional<std::uint32_t> idx;
      std::uint32_t occurrence = 0;
      {
        auto& t = *c.tenant;
        std::lock_guard lk(t.mu);
        auto k = parse_outlook_id(t, c.req.params["item"]);
        if (k && k->kind == (contacts ? OutlookKey::contact : OutlookKey::event) && k->user == *c.user) {
          idx = k->index;
          occurrence = k->moves;
        }
      }
      if (!idx) return not_found(c);
      json result;
      // An instance of a series (its id carries the occurrence number) is cancelled, not the series.
      if (auto err = write(c, {{"kind", contacts ? "delete_contact" : "delete_event"}, {"item", *idx}, {"occurrence", occurrence}},
                           result))
        return *err;
      net::Response r;
      r.status = 204;
      return r;
    };
  };
  // PATCH an instance of a series: it becomes an exception with those properties (a
  // restore re-applies a series' exceptions so). Masters and single events are not
  // patched here (400).
  auto patch_event = [=, this](GraphCtx& c) {
    auto b = body_json(c);
    if (!b) return bad_body(c);
    std::optional<OutlookKey> k;
    {
      std::lock_guard lk(c.tenant->mu);
      k = parse_outlook_id(*c.tenant, c.req.params["item"]);
    }
    if (!k || k->kind != OutlookKey::event || k->user != *c.user) return not_found(c);
    if (!k->moves)
      return graph_error(c.req, 400, "ErrorInvalidRequest", "The emulator patches instances of a series only.");
    for (auto key : {"id", "@odata.type", "@odata.etag", "@odata.context", "changeKey", "type", "seriesMasterId", "originalStart",
                     "recurrence", "cancelledOccurrences", "exceptionOccurrences", "iCalUId", "webLink"})
      b->erase(key);
    json result;
    if (auto err = write(c, {{"kind", "patch_occurrence"}, {"item", k->index}, {"occurrence", k->moves}, {"changes", *b}}, result))
      return *err;
    return get_event_fn(c);
  };
  for (std::string p : {"/users/{user}/events/{item}", "/users/{user}/calendars/{container}/events/{item}"})
    add_graph("PATCH", p, "Calendars.ReadWrite", true, patch_event);
  for (std::string p : {"/users/{user}/contacts/{item}", "/users/{user}/contactFolders/{container}/contacts/{item}"})
    add_graph("DELETE", p, "Contacts.ReadWrite", true, delete_item(true));
  for (std::string p : {"/users/{user}/events/{item}", "/users/{user}/calendars/{container}/events/{item}"})
    add_graph("DELETE", p, "Calendars.ReadWrite", true, delete_item(false));
  add_graph("POST", "/users/{user}/contacts", "Contacts.ReadWrite", true, create_item(true, "contacts"));
  add_graph("POST", "/users/{user}/contactFolders/{container}/contacts", "Contacts.ReadWrite", true, create_item(true, ""));
  add_graph("POST", "/users/{user}/events", "Calendars.ReadWrite", true, create_item(false, "calendar"));
  add_graph("POST", "/users/{user}/calendars/{container}/events", "Calendars.ReadWrite", true, create_item(false, ""));
}

}  // namespace m365vault::emulator
