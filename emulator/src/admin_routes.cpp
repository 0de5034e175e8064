// The identity platform token endpoint (client credentials with a secret or a
// certificate assertion) and the admin API under /_emulator/.
#include "internal.hpp"
#include "m365vault/core/error.hpp"

namespace m365vault::emulator {

namespace {

std::map<std::string, std::string> parse_form(std::string_view body) {
  std::map<std::string, std::string> out;
  while (!body.empty()) {
    auto amp = body.find('&');
    auto part = body.substr(0, amp);
    auto eq = part.find('=');
    auto k = net::percent_decode(part.substr(0, eq), true);
    auto v = eq == std::string_view::npos ? std::optional<std::string>("") : net::percent_decode(part.substr(eq + 1), true);
    if (k && v && !k->empty()) out.emplace(*k, *v);
    if (amp == std::string_view::npos) break;
    body.remove_prefix(amp + 1);
  }
  return out;
}

std::string aad_timestamp(std::int64_t t) {
  auto s = iso_time(t);  // 2026-01-01T00:00:00Z
  s[10] = ' ';
  return s;
}

bool loopback(const net::Request& req) {
  return req.remote == "127.0.0.1" || req.remote == "::1" || req.remote == "::ffff:127.0.0.1";
}

json parse_body(const net::Request& req) {
  auto j = json::parse(req.body, nullptr, false);
  if (j.is_discarded()) throw Error(Errc::bad_request, "request body is not valid JSON");
  return j;
}

net::Response admin_json(int status, const json& j) { return net::Response::json(status, j); }

}  // namespace

void EmulatorImpl::register_identity() {
  router.add("POST", "/{tenant}/oauth2/v2.0/token", [this](net::Request& req) -> boost::asio::awaitable<net::Response> {
    const std::int64_t t_now = now();
    const std::string trace = new_guid(), corr = new_guid();
    auto fail = [&](int status, const std::string& error, long code, const std::string& text) {
      std::string ts = aad_timestamp(t_now);
      json j = {{"error", error},
                {"error_description", "AADSTS" + std::to_string(code) + ": " + text + "\r\nTrace ID: " + trace +
                                          "\r\nCorrelation ID: " + corr + "\r\nTimestamp: " + ts},
                {"error_codes", json::array({code})},
                {"timestamp", ts},
                {"trace_id", trace},
                {"correlation_id", corr},
                {"error_uri", "https://login.microsoftonline.com/error?code=" + std::to_string(code)}};
      auto r = net::Response::json(status, j);
      r.headers.set("Content-Type", "application/json; charset=utf-8");
      r.headers.set("Cache-Control", "no-cache, no-store");
      r.headers.set("Pragma", "no-cache");
      r.headers.set("Expires", "-1");
      r.headers.set("x-ms-request-id", trace);
      return r;
    };
    const std::string tenant_ref = req.params["tenant"];
    if (tenant_ref == "common" || tenant_ref == "consumers" || tenant_ref == "organizations")
      co_return fail(400, "invalid_request", 9001023,
                     "The grant type isn't supported over the /common or /consumers endpoints. Please use the "
                     "/organizations or tenant-specific endpoint.");
    auto tenant = find_tenant(tenant_ref);
    if (!tenant)
      co_return fail(400, "invalid_request", 90002,
                     "Tenant '" + tenant_ref + "' not found. Check to make sure you have the correct tenant ID and are "
                     "signing into the correct cloud.");
    auto ctype = std::string(req.headers.get("Content-Type").value_or(""));
    if (ctype.find("application/x-www-form-urlencoded") == std::string::npos)
      co_return fail(400, "invalid_request", 900144,
                     "The request body must contain the following parameter: 'grant_type'.");
    auto form = parse_form(req.body);
    auto field = [&](const char* k) { return form.count(k) ? form[k] : std::string(); };
    std::string basic_id, basic_secret;
    if (auto a = req.headers.get("Authorization"); a && a->size() > 6 && strncasecmp(a->data(), "Basic ", 6) == 0) {
      auto raw = unbase64(a->substr(6));
      if (raw) {
        auto colon = raw->find(':');
        basic_id = net::percent_decode(raw->substr(0, colon), true).value_or("");
        if (colon != std::string::npos) basic_secret = net::percent_decode(raw->substr(colon + 1), true).value_or("");
      }
    }
    if (field("grant_type").empty())
      co_return fail(400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.");
    if (field("grant_type") != "client_credentials")
      co_return fail(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '" +
                                                                field("grant_type") + "'.");
    std::string client_id = field("client_id").empty() ? basic_id : field("client_id");
    if (client_id.empty())
      co_return fail(400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.");
    std::string scope = field("scope");
    if (scope.empty())
      co_return fail(400, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'.");
    if (client_id != tenant->spec.client_id)
      co_return fail(400, "unauthorized_client", 700016,
                     "Application with identifier '" + client_id + "' was not found in the directory '" +
                         tenant->spec.tenant_id +
                         "'. This can happen if the application has not been installed by the administrator of the tenant "
                         "or consented to by any user in the tenant.");
    if (scope.find(' ') != std::string::npos)
      co_return fail(400, "invalid_scope", 700022,
                     "The provided value for the input parameter scope is not valid because it contains more than one "
                     "resource. Scope " + scope + " is not valid.");
    if (scope == ".default" || scope.find('/') == std::string::npos)
      co_return fail(400, "invalid_scope", 700023,
                     "The provided value for the input parameter scope is not valid because it contains no resource. "
                     "Scope " + scope + " is not valid.");
    if (scope != "https://graph.microsoft.com/.default" && scope != "00000003-0000-0000-c000-000000000000/.default")
      co_return fail(400, "invalid_scope", 70011,
                     "The provided value for the input parameter 'scope' isn't valid. The scope " + scope +
                         " isn't valid.");
    const std::string secret = field("client_secret").empty() ? basic_secret : field("client_secret");
    const std::string assertion = field("client_assertion");
    if (!secret.empty()) {
      if (tenant->spec.client_secret.empty() || secret != tenant->spec.client_secret)
        co_return fail(401, "invalid_client", 7000215,
                       "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                       "secret value, not the client secret ID, for a secret added to app '" + client_id + "'.");
    } else if (!assertion.empty()) {
      if (field("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        co_return fail(400, "invalid_request", 50027,
                       "Invalid JWT token. The client_assertion_type must be "
                       "'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.");
      auto d1 = assertion.find('.'), d2 = assertion.rfind('.');
      std::optional<json> header, claims;
      std::optional<std::string> sig;
      if (d1 != std::string::npos && d2 != d1) {
        auto h = unbase64(assertion.substr(0, d1));
        auto c = unbase64(assertion.substr(d1 + 1, d2 - d1 - 1));
        sig = unbase64(assertion.substr(d2 + 1));
        if (h && c) {
          auto hj = json::parse(*h, nullptr, false), cj = json::parse(*c, nullptr, false);
          if (hj.is_object()) header = hj;
          if (cj.is_object()) claims = cj;
        }
      }
      if (!header || !claims || !sig)
        co_return fail(401, "invalid_client", 50027, "JWT token is invalid or malformed.");
      const std::string alg = header->value("alg", "");
      const std::string x5t = header->value("x5t", ""), x5t256 = header->value("x5t#S256", ""),
                        kid = header->value("kid", "");
      const CertInfo* cert = nullptr;
      for (auto& c : tenant->certs) {
        if ((!x5t.empty() && c.x5t == x5t) || (!x5t256.empty() && c.x5t_s256 == x5t256) ||
            (!kid.empty() && (c.x5t == kid || c.x5t_s256 == kid)))
          cert = &c;
      }
      if (!cert)
        co_return fail(401, "invalid_client", 700027,
                       "The certificate with identifier used to sign the client assertion is not registered on "
                       "application. [Reason - The key was not found., Thumbprint of key used by client: '" +
                           (x5t.empty() ? x5t256 : x5t) + "']");
      if (!verify_jwt_signature(alg, cert->public_key_pem, std::string_view(assertion).substr(0, d2), *sig))
        co_return fail(401, "invalid_client", 700027, "Client assertion failed signature validation.");
      auto str = [&](const char* k) {
        return claims->contains(k) && (*claims)[k].is_string() ? (*claims)[k].get<std::string>() : std::string();
      };
      const std::string aud = str("aud");
      std::vector<std::string> audiences;
      for (const std::string& who : {tenant->spec.tenant_id, tenant->spec.domain}) {
        audiences.push_back("https://login.microsoftonline.com/" + who + "/oauth2/v2.0/token");
        audiences.push_back(base_url + "/" + who + "/oauth2/v2.0/token");
      }
      if (std::find(audiences.begin(), audiences.end(), aud) == audiences.end())
        co_return fail(401, "invalid_client", 50027,
                       "Invalid JWT token. Token audience '" + aud + "' is not valid for this endpoint.");
      if (str("iss") != client_id || str("sub") != client_id)
        co_return fail(401, "invalid_client", 50027, "Invalid JWT token. The iss and sub claims must be the client id.");
      if (!claims->contains("exp") || !(*claims)["exp"].is_number() || !claims->contains("nbf") ||
          !(*claims)["nbf"].is_number())
        co_return fail(401, "invalid_client", 50027, "Invalid JWT token. The nbf and exp claims are required.");
      auto nbf = (*claims)["nbf"].get<std::int64_t>(), exp = (*claims)["exp"].get<std::int64_t>();
      if (exp <= t_now || nbf > t_now + 300)
        co_return fail(401, "invalid_client", 500133,
                       "Assertion is not within its valid time range. Ensure that the access token is not expired "
                       "before using it for user assertion, or request a new token. Current time: " +
                           aad_timestamp(t_now) + ", expiry time of assertion " + aad_timestamp(exp) + ".");
      const std::string jti = str("jti");
      if (jti.empty())
        co_return fail(401, "invalid_client", 50027, "Invalid JWT token. The jti claim is required.");
      {
        std::lock_guard lk(tenant->mu);
        if (!tenant->used_jti.insert(jti).second)
          co_return fail(401, "invalid_client", 50027,
                         "Invalid JWT token. The assertion with jti '" + jti + "' has already been used.");
      }
    } else {
      co_return fail(401, "invalid_client", 7000218,
                     "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
    }
    const int life = current_faults().token_lifetime_s;
    json head = {{"typ", "JWT"}, {"alg", "HS256"}, {"kid", "graph-emulator"}};
    json claims = {{"aud", "https://graph.microsoft.com"},
                   {"iss", "https://sts.windows.net/" + tenant->spec.tenant_id + "/"},
                   {"iat", t_now},
                   {"nbf", t_now},
                   {"exp", t_now + life},
                   {"appid", client_id},
                   {"tid", tenant->spec.tenant_id},
                   {"roles", tenant->spec.permissions},
                   {"uti", base64(random_bytes(16), true, false)}};
    std::string signing = base64(head.dump(), true, false) + "." + base64(claims.dump(), true, false);
    std::string token = signing + "." + base64(hmac_sha256(key, signing), true, false);
    auto r = net::Response::json(200, json{{"token_type", "Bearer"},
                                           {"expires_in", life},
                                           {"ext_expires_in", life},
                                           {"access_token", token}});
    r.headers.set("Content-Type", "application/json; charset=utf-8");
    r.headers.set("Cache-Control", "no-cache, no-store");
    r.headers.set("Pragma", "no-cache");
    r.headers.set("Expires", "-1");
    r.headers.set("x-ms-request-id", trace);
    co_return r;
  });
}

void EmulatorImpl::register_admin() {
  auto admin = [this](std::string method, std::string tmpl, std::function<net::Response(net::Request&)> fn) {
    router.add(std::move(method), std::move(tmpl), [fn](net::Request& req) -> boost::asio::awaitable<net::Response> {
      if (!loopback(req)) throw Error(Errc::forbidden, "the admin API answers loopback clients only");
      co_return fn(req);
    });
  };
  admin("POST", "/_emulator/tenants", [this](net::Request& req) {
    json op = {{"op", "create_tenant"}, {"spec", parse_body(req)}};
    // Teams timestamps hang off the creation time on the emulated clock (journaled).
    if (op["spec"].is_object() && !op["spec"].contains("created_at")) op["spec"]["created_at"] = now();
    auto spec = apply_op(op);
    op["spec"] = spec;
    journal(op);
    auto out = spec;
    out.erase("client_secret");
    out.erase("certificates");
    return admin_json(201, out);
  });
  admin("GET", "/_emulator/tenants", [this](net::Request&) {
    json arr = json::array();
    std::lock_guard lk(mu);
    for (auto& [id, t] : tenants) {
      auto s = t->spec.to_json();
      s.erase("client_secret");
      s.erase("certificates");
      arr.push_back(s);
    }
    return admin_json(200, json{{"tenants", arr}});
  });
  admin("POST", "/_emulator/tenants/{tid}/activity", [this](net::Request& req) {
    json op = {{"op", "activity"}, {"tenant", req.params["tid"]}, {"request", parse_body(req)}};
    // Edits of posts and chat messages carry the emulated time; journaled, so replays agree.
    if (op["request"].is_object() && !op["request"].contains("now")) op["request"]["now"] = now();
    auto out = apply_op(op);
    journal(op);
    return admin_json(200, out);
  });
  admin("GET", "/_emulator/faults", [this](net::Request&) { return admin_json(200, current_faults().to_json()); });
  admin("PUT", "/_emulator/faults", [this](net::Request& req) {
    auto f = Faults::from_json(parse_body(req));
    {
      std::lock_guard lk(fmu);
      faults = f;
    }
    {
      // New limits start a fresh window; requests in flight keep their slots.
      std::lock_guard lk(tmu);
      for (auto& [k, th] : throttles) {
        th.window_start = 0;
        th.count = 0;
      }
    }
    {
      std::lock_guard lk(rumu);
      ru.clear();
    }
    return admin_json(200, f.to_json());
  });
  admin("GET", "/_emulator/stats", [this](net::Request&) {
    // Invitations that created events would have sent (attendees), so a restore can
    // be shown to send none.
    std::uint64_t invitations = 0;
    std::vector<std::shared_ptr<Tenant>> all;
    {
      std::lock_guard lk(mu);
      for (auto& [id, t] : tenants) all.push_back(t);
    }
    for (auto& t : all) {
      std::lock_guard lk(t->mu);
      for (auto& [u, mb] : t->mailboxes) invitations += mb->invitations_sent;
    }
    std::lock_guard lk(smu);
    return admin_json(200, json{{"requests", stat_requests}, {"status", stat_status}, {"invitations_sent", invitations}});
  });
  admin("DELETE", "/_emulator/stats", [this](net::Request&) {
    std::lock_guard lk(smu);
    stat_requests.clear();
    stat_status.clear();
    net::Response r;
    r.status = 204;
    return r;
  });
  admin("GET", "/_emulator/tenants/{tid}/manifest", [this](net::Request& req) {
    auto t = find_tenant(req.params["tid"]);
    if (!t) throw Error(Errc::not_found, "no tenant '" + req.params["tid"] + "'");
    auto owner = req.query_param("owner").value_or("");
    auto category = req.query_param("category").value_or("");
    if (!category.empty() && category != "mail" && category != "contacts" && category != "calendar" &&
        category != "files" && category != "lists" && category != "teams" && category != "chats")
      throw Error(Errc::bad_request,
                  "unknown category '" + category + "' (use mail, contacts, calendar, files, lists, teams or chats)");
    struct Row {
      std::uint32_t user, index;
      Msg m;
      std::string owner, path, id, immutable;
    };
    std::vector<Row> rows;
    if (category.empty() || category == "mail") {
      std::lock_guard lk(t->mu);
      for (std::uint32_t u = 0; u < t->users.size(); ++u) {
        if (t->users[u].removed != Removed::none || !has_mailbox(t->spec, u)) continue;
        const auto& uid = t->users[u].id;
        if (!owner.empty() && owner != uid && owner != user_person(*t, u).address) continue;
        auto& mb = mailbox(*t, u);
        for (auto& f : mb.folders) {
          if (f.deleted || f.search) continue;
          for (auto i : f.messages) {
            const auto& m = mb.msgs[i];
            rows.push_back({u, i, m, uid, folder_path(mb, f.index),
                            outlook_id(*t, {OutlookKey::message, u, i, m.moves, 0}),
                            outlook_id(*t, {OutlookKey::immutable, u, i, 0, 0})});
          }
        }
      }
    }
    json items = json::array();
    for (auto& r : rows) {
      auto mime = message_mime(*t, r.user, r.index, r.m);
      auto c = message_content(*t, r.user, r.index, r.m);
      items.push_back({{"owner", r.owner},
                       {"category", "mail"},
                       {"id", r.id},
                       {"immutable_id", r.immutable},
                       {"container_path", r.path},
                       {"name", c.subject},
                       {"size", mime.size()},
                       {"sha256", to_hex(sha256(mime))}});
    }
    // Contacts and events: sha256 of the canonical JSON (docs/emulator.md).
    for (const std::string cat : {"contacts", "calendar"}) {
      if (!category.empty() && category != cat) continue;
      struct PimRow {
        std::uint32_t user, index;
        PimItem item;
        std::string owner, path, id;
      };
      std::vector<PimRow> prow;
      {
        std::lock_guard lk(t->mu);
        for (std::uint32_t u = 0; u < t->users.size(); ++u) {
          if (t->users[u].removed != Removed::none || !has_mailbox(t->spec, u)) continue;
          const auto& uid = t->users[u].id;
          if (!owner.empty() && owner != uid && owner != user_person(*t, u).address) continue;
          auto& s = cat == "contacts" ? mailbox(*t, u).contacts : mailbox(*t, u).calendars;
          for (auto& f : s.containers) {
            if (f.deleted) continue;
            for (auto i : f.messages)
              prow.push_back({u, i, s.items[i], uid, container_path(s, f.index),
                              outlook_id(*t, {cat == "contacts" ? OutlookKey::contact : OutlookKey::event, u, i, 0, 0})});
          }
        }
      }
      for (auto& r : prow) {
        json content = cat == "contacts" ? contact_content(*t, r.user, r.index, r.item) : event_content(*t, r.user, r.index, r.item);
        auto canon = canonical_json(content);
        items.push_back({{"owner", r.owner},
                         {"category", cat},
                         {"id", r.id},
                         {"immutable_id", r.id},
                         {"container_path", r.path},
                         {"name", content.value(cat == "contacts" ? "displayName" : "subject", "")},
                         {"size", canon.size()},
                         {"sha256", to_hex(sha256(canon))}});
        if (cat == "calendar" && content.value("type", "") == "seriesMaster") {
          // What a user sees of the series beyond the master, free of ids: the
          // cancelled occurrences and the exceptions, by where the recurrence put them.
          json cancelled = json::array(), exceptions = json::array();
          for (auto s : cancelled_starts(*t, r.user, r.index, r.item)) cancelled.push_back(iso_time(s));
          for (auto& o : occurrences(*t, r.user, r.index, r.item)) {
            if (!o.exception) continue;
            exceptions.push_back({{"original_start", iso_time(o.original_start)}, {"start", iso_time(o.start)},
                                  {"end", iso_time(o.end)}, {"subject", occurrence_subject(content, r.item, o)}});
          }
          items.back()["series"] = {{"cancelled", cancelled}, {"exceptions", exceptions}};
        }
      }
    }
    // Files: sha256 and quickXorHash of the bytes the download URL serves.
    if (category.empty() || category == "files") {
      struct FileRow {
        std::string owner, drive, id, path, name;
        Blob blob;
      };
      std::vector<FileRow> frows;
      {
        std::lock_guard lk(t->mu);
        std::vector<std::pair<std::uint32_t, std::string>> keys;
        for (std::uint32_t u = 0; u < t->users.size(); ++u) {
          if (t->users[u].removed != Removed::none || !has_mailbox(t->spec, u)) continue;
          if (!owner.empty() && owner != t->users[u].id && owner != user_person(*t, u).address) continue;
          keys.emplace_back(user_drive_key(u), t->users[u].id);
        }
        for (std::uint32_t s = 0; s < site_count(t->spec); ++s) {
          auto sid = site_id(*t, s);
          if (!owner.empty() && owner != sid) continue;
          for (std::uint32_t l = 0; l < site_libraries(s); ++l) keys.emplace_back(site_drive_key(s, l), sid);
        }
        for (auto& [key, who] : keys) {
          auto& d = drive(*t, key);
          for (std::uint32_t i = 1; i < d.items.size(); ++i) {
            const auto& e = d.items[i];
            if (!e.alive || e.folder || e.package) continue;
            auto p = drive_parent_path(d, i);
            frows.push_back({who, drive_id(*t, key), drive_item_id(*t, key, i), p.empty() ? "/" : p, e.name, e.blob});
          }
        }
      }
      for (auto& r : frows) {
        auto h = blob_hashes(r.blob);
        items.push_back({{"owner", r.owner},
                         {"category", "files"},
                         {"drive_id", r.drive},
                         {"id", r.id},
                         {"container_path", r.path},
                         {"name", r.name},
                         {"size", r.blob.size},
                         {"sha256", to_hex(h.sha256)},
                         {"quickXorHash", base64(h.quick_xor)}});
      }
    }
    // List items of each site's generic list: sha256 of the canonical JSON of `fields`.
    if (category.empty() || category == "lists") {
      std::lock_guard lk(t->mu);
      for (std::uint32_t s = 0; s < site_count(t->spec); ++s) {
        auto sid = site_id(*t, s);
        if (!owner.empty() && owner != sid) continue;
        auto& st = site_state(*t, s);
        for (std::uint32_t i = 0; i < st.items.size(); ++i) {
          if (!st.items[i].alive) continue;
          auto fields = list_item_fields(*t, s, i, st.items[i]);
          auto canon = canonical_json(fields);
          items.push_back({{"owner", sid},
                           {"category", "lists"},
                           {"list_id", guid_from(mix(t->spec.seed, 0x6c69737402ULL), s)},
                           {"id", std::to_string(i + 1)},
                           {"container_path", "/Issue tracker"},
                           {"name", fields["Title"]},
                           {"size", canon.size()},
                           {"sha256", to_hex(sha256(canon))}});
        }
      }
    }
    // Channel messages (posts and replies): sha256 of the canonical JSON of the message.
    if (category.empty() || category == "teams") {
      std::lock_guard lk(t->mu);
      for (std::uint32_t g = 0; g < t->groups.size(); ++g) {
        if (!is_team(*t, g)) continue;
        if (!owner.empty() && owner != t->groups[g].id) continue;
        auto& ts = team_state(*t, g);
        for (std::uint32_t k = 0; k < ts.channels.size(); ++k) {
          auto& ch = ts.channels[k];
          for (std::uint32_t p = 0; p < ch.posts.size(); ++p) {
            if (ch.posts[p].deleted) continue;
            for (std::int32_t rep = -1; rep < static_cast<std::int32_t>(reply_count(*t, g, k, p)); ++rep) {
              auto m = channel_message_json(*t, base_url, g, k, p, rep, ch.posts[p]);
              auto canon = canonical_json(m);
              items.push_back({{"owner", t->groups[g].id},
                               {"category", "teams"},
                               {"channel_id", channel_id(*t, g, k)},
                               {"id", m["id"]},
                               {"reply_to", m["replyToId"]},
                               {"name", m["subject"].is_string() ? m["subject"] : json("")},
                               {"size", canon.size()},
                               {"sha256", to_hex(sha256(canon))}});
            }
          }
        }
      }
    }
    // Chat messages not deleted, system events included: one row per message, owned by
    // the chat (a chat is stored once, whoever's backup finds it); `members` lists the
    // user ids, and ?owner= matches the chat id or a member's user id.
    if (category.empty() || category == "chats") {
      std::lock_guard lk(t->mu);
      for (std::uint32_t k = 0; k < static_cast<std::uint32_t>(t->spec.chats); ++k) {
        const auto cid = chat_id(*t, k);
        json members = json::array();
        bool wanted = owner.empty() || owner == cid;
        const auto now_members = current_members(*t, k);
        if (now_members.empty()) continue;  // deleted, or every member left: no one reaches it
        for (auto u : now_members) {
          members.push_back(t->users[u].id);
          wanted |= owner == t->users[u].id;
        }
        if (!wanted) continue;
        auto& cs = chat_state(*t, k);
        for (std::uint32_t i = 0; i < cs.msgs.size(); ++i) {
          if (cs.msgs[i].deleted) continue;
          auto m = chat_message_json(*t, base_url, k, i, cs.msgs[i], true);
          auto canon = canonical_json(m);
          items.push_back({{"owner", cid},
                           {"category", "chats"},
                           {"chat_id", cid},
                           {"members", members},
                           {"id", m["id"]},
                           {"name", ""},
                           {"size", canon.size()},
                           {"sha256", to_hex(sha256(canon))}});
        }
      }
    }
    return admin_json(200, json{{"items", items}});
  });
}

}  // namespace m365vault::emulator
