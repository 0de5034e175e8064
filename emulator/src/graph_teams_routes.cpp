// Microsoft Teams: teams (groups provisioned with a team), channels (standard, private,
// shared), channel messages with replies and hosted contents (inline images), their
// delta (top-level posts; edits and deletions as lastEditedDateTime/deletedDateTime).
#include <algorithm>

#include "internal.hpp"
#include "m365vault/core/error.hpp"

namespace m365vault::emulator {

namespace {
const std::vector<std::string> kChannelNames = {"General", "Projekt Nordlicht", "Équipe support", "営業", "Random 🎲",
                                                "Releases"};
const std::vector<std::string> kPosts = {"Can someone review the draft?", "Le déploiement est terminé ✅",
                                         "Meeting moved to 3 pm", "新しいバージョンをリリースしました",
                                         "Who has the keys to room 2.14?", "Bitte bis Freitag eintragen"};
constexpr std::int64_t kHourMs = 3600000LL, kDayMs = 86400000LL;

std::int64_t anchor_ms(const Tenant& t) { return (t.spec.created_at ? t.spec.created_at : kBaseEpoch) * 1000; }
std::uint32_t old_posts(const TenantSpec& s) {
  return static_cast<std::uint32_t>(s.old_messages_per_channel >= 0 ? s.old_messages_per_channel
                                                                    : std::min(s.messages_per_channel / 4, 2000));
}
// Post p of channel c: the first old_messages_per_channel posts sit hourly from 330 days
// before the tenant's creation (outside the delta window), the rest hourly from 60 days
// before it. Ids are these creation times in ms; a reply n is the post + (n + 1) minutes.
std::int64_t post_ms(const Tenant& t, std::uint32_t channel, std::uint32_t post) {
  const auto old = old_posts(t.spec);
  if (post < old) return anchor_ms(t) - 330 * kDayMs + post * kHourMs + channel * 1000LL;
  return anchor_ms(t) - 60 * kDayMs + static_cast<std::int64_t>(post - old) * kHourMs + channel * 1000LL;
}
// The inverse: {post, ms past it}; nullopt when ms is before both ranges.
std::optional<std::pair<std::size_t, std::int64_t>> post_at(const Tenant& t, std::uint32_t channel, std::int64_t ms) {
  const auto old = old_posts(t.spec);
  std::int64_t off = ms - post_ms(t, channel, old);
  if (off >= 0) return std::make_pair(static_cast<std::size_t>(old + off / kHourMs), off % kHourMs);
  off = ms - post_ms(t, channel, 0);
  if (off >= 0 && off / kHourMs < old) return std::make_pair(static_cast<std::size_t>(off / kHourMs), off % kHourMs);
  return std::nullopt;
}
Rng post_rng(const Tenant& t, std::uint32_t g, std::uint32_t c, std::uint32_t p) {
  return Rng(mix(mix(mix(mix(t.spec.seed, 0x7465616d), g), c), p));
}
}  // namespace

std::string iso_ms(std::int64_t ms) {
  auto s = iso_time(ms / 1000);
  s.pop_back();
  char b[8];
  std::snprintf(b, sizeof b, ".%03dZ", static_cast<int>(ms % 1000));
  return s + b;
}

bool is_team(const Tenant& t, std::uint32_t group) {
  return group < t.groups.size() && t.groups[group].removed == Removed::none &&
         !group_json(t, group)["resourceProvisioningOptions"].empty();
}

TeamState& team_state(Tenant& t, std::uint32_t group) {
  auto& slot = t.teams[group];
  if (slot) return *slot;
  slot = std::make_unique<TeamState>();
  slot->channels.resize(static_cast<std::size_t>(t.spec.channels_per_team));
  for (std::uint32_t c = 0; c < slot->channels.size(); ++c) {
    auto& ch = slot->channels[c];
    ch.posts.resize(static_cast<std::size_t>(t.spec.messages_per_channel));
    for (std::uint32_t p = 0; p < ch.posts.size(); ++p) ch.posts[p].modified = post_ms(t, c, p);
  }
  return *slot;
}

std::string channel_id(const Tenant& t, std::uint32_t group, std::uint32_t channel) {
  auto g = guid_from(mix(mix(t.spec.seed, 0x6368616e), group), channel);
  g.erase(std::remove(g.begin(), g.end(), '-'), g.end());
  return "19:" + g + "@thread.tacv2";
}

std::uint32_t reply_count(const Tenant& t, std::uint32_t group, std::uint32_t channel, std::uint32_t post) {
  auto r = post_rng(t, group, channel, post);
  r.next();
  return static_cast<std::uint32_t>(r.below(4));
}

json channel_message_json(const Tenant& t, const std::string& base_url, std::uint32_t g, std::uint32_t c,
                          std::uint32_t p, std::int32_t reply, const PostEntry& e) {
  auto r = post_rng(t, g, c, p);
  r.next();
  r.next();
  Rng rr(mix(r.next(), static_cast<std::uint64_t>(reply + 1)));
  const std::int64_t created = post_ms(t, c, p) + (reply >= 0 ? (reply + 1) * 60000LL : 0);
  const std::string id = std::to_string(created);
  const std::string parent_id = std::to_string(post_ms(t, c, p));
  const std::string team_id = t.groups[g].id, chan = channel_id(t, g, c);
  auto u = static_cast<std::uint32_t>(rr.below(t.users.size()));
  std::string text = rr.pick(kPosts);
  const bool edited = reply < 0 && e.version > 0;
  const bool deleted = reply < 0 && e.deleted;
  if (edited) text += " (edited " + std::to_string(e.version) + ")";
  std::string html = reply < 0 && !e.text.empty() ? e.text : "<p>" + text + "</p>";
  const bool image = rr.below(4) == 0;
  if (image)
    html += "<p><img src=\"" + base_url + "/v1.0/teams/" + team_id + "/channels/" + chan + "/messages/" + id +
            "/hostedContents/" + base64("id=x_0-wus-d1-" + id, true, false) + "/$value\" width=\"250\" height=\"141\" alt=\"image\"></p>";
  const std::int64_t modified = reply < 0 ? std::max(created, e.modified) : created;
  json j = {{"id", id},
            {"replyToId", reply >= 0 ? json(parent_id) : json(nullptr)},
            {"etag", std::to_string(modified)},
            {"messageType", "message"},
            {"createdDateTime", iso_ms(created)},
            {"lastModifiedDateTime", iso_ms(modified)},
            {"lastEditedDateTime", edited ? json(iso_ms(modified)) : json(nullptr)},
            {"deletedDateTime", deleted ? json(iso_ms(modified)) : json(nullptr)},
            {"subject", reply < 0 && rr.below(3) == 0 ? json("Update " + std::to_string(p + 1)) : json(nullptr)},
            {"summary", nullptr},
            {"chatId", nullptr},
            {"importance", "normal"},
            {"locale", "en-us"},
            {"webUrl", "https://teams.microsoft.com/l/message/" + chan + "/" + id + "?groupId=" + team_id +
                           "&tenantId=" + t.spec.tenant_id + "&createdTime=" + id + "&parentMessageId=" + parent_id},
            {"policyViolation", nullptr},
            {"from", {{"application", nullptr}, {"device", nullptr},
                      {"user", {{"id", t.users[u].id}, {"displayName", user_person(t, u).name}, {"userIdentityType", "aadUser"}}}}},
            {"body", {{"contentType", "html"}, {"content", deleted ? std::string() : html}}},
            {"channelIdentity", {{"teamId", team_id}, {"channelId", chan}}},
            {"attachments", json::array()},
            {"mentions", json::array()},
            {"reactions", json::array()}};
  if (deleted) j["from"] = nullptr;
  return j;
}

void apply_teams_activity(Tenant& t, Rng& r, int creates, int updates, int deletes, std::int64_t now_ms, json& out) {
  std::vector<std::uint32_t> teams;
  for (std::uint32_t g = 0; g < t.groups.size(); ++g)
    if (is_team(t, g)) teams.push_back(g);
  if (teams.empty() || t.spec.channels_per_team < 1) return;
  if (now_ms < 0) now_ms = (kBaseEpoch + static_cast<std::int64_t>(r.below(86400))) * 1000;
  auto rec = [&](const char* what, std::uint32_t g, std::uint32_t c, std::uint32_t p) {
    out[what].push_back({{"category", "teams"}, {"owner", t.groups[g].id}, {"channel", channel_id(t, g, c)},
                         {"id", std::to_string(post_ms(t, c, p))}});
  };
  auto pick = [&](std::uint32_t& g, std::uint32_t& c) -> ChannelState& {
    g = teams[r.below(teams.size())];
    auto& ts = team_state(t, g);
    c = static_cast<std::uint32_t>(r.below(ts.channels.size()));
    return ts.channels[c];
  };
  for (int k = 0; k < creates; ++k) {
    std::uint32_t g, c;
    auto& ch = pick(g, c);
    PostEntry e;
    e.seq = ++ch.seq;
    // A new post's id comes from its position (post_ms); it was modified now at the latest.
    e.modified = std::max(now_ms, post_ms(t, c, static_cast<std::uint32_t>(ch.posts.size())));
    ch.posts.push_back(e);
    rec("created", g, c, static_cast<std::uint32_t>(ch.posts.size() - 1));
  }
  for (int k = 0; k < updates + deletes; ++k) {
    std::uint32_t g, c;
    auto& ch = pick(g, c);
    std::vector<std::uint32_t> live;
    for (std::uint32_t p = 0; p < ch.posts.size(); ++p)
      if (!ch.posts[p].deleted) live.push_back(p);
    if (live.empty()) continue;
    auto p = live[r.below(live.size())];
    auto& e = ch.posts[p];
    e.seq = ++ch.seq;
    e.modified = std::max(now_ms, post_ms(t, c, p) + 1000);
    if (k < updates) ++e.version;
    else e.deleted = true;
    rec(k < updates ? "updated" : "deleted", g, c, p);
  }
}

void apply_teams_body(Tenant& t, const json& req, std::int64_t now_ms, json& out) {
  auto bad = [](const std::string& m) { throw Error(Errc::bad_request, m); };
  const char* shape = "field 'teams_body' must be {\"owner\": team id, \"channel\": channel id, \"id\": post id, \"html\": string}";
  if (!req.is_object()) bad(shape);
  for (const char* k : {"owner", "channel", "id", "html"})
    if (!req.contains(k) || !req[k].is_string()) bad(shape);
  const auto owner = req["owner"].get<std::string>(), channel = req["channel"].get<std::string>(), id = req["id"].get<std::string>();
  if (now_ms < 0) now_ms = (kBaseEpoch + 86400) * 1000;
  for (std::uint32_t g = 0; g < t.groups.size(); ++g) {
    if (!is_team(t, g) || t.groups[g].id != owner) continue;
    auto& ts = team_state(t, g);
    for (std::uint32_t c = 0; c < ts.channels.size(); ++c) {
      if (channel_id(t, g, c) != channel) continue;
      auto& ch = ts.channels[c];
      for (std::uint32_t p = 0; p < ch.posts.size(); ++p) {
        if (std::to_string(post_ms(t, c, p)) != id) continue;
        auto& e = ch.posts[p];
        if (e.deleted) bad("teams_body: post '" + id + "' is deleted");
        e.text = req["html"].get<std::string>();
        ++e.version;
        e.seq = ++ch.seq;
        e.modified = std::max(now_ms, post_ms(t, c, p) + 1000);
        out["updated"].push_back({{"category", "teams"}, {"owner", owner}, {"channel", channel}, {"id", id}});
        return;
      }
      bad("teams_body: no post '" + id + "' in channel '" + channel + "'");
    }
    bad("teams_body: no channel '" + channel + "' in team '" + owner + "'");
  }
  bad("teams_body: no team '" + owner + "'");
}

void apply_expire_delta(Tenant& t, const json& req, json& out) {
  auto bad = [](const std::string& m) { throw Error(Errc::bad_request, m); };
  const char* shape = "field 'expire_delta' must be a list of {\"owner\": team id, \"channel\": channel id} or "
                      "{\"owner\": site id, \"list\": list id}";
  if (!req.is_array()) bad(shape);
  for (auto& e : req) {
    if (!e.is_object() || !e.contains("owner") || !e["owner"].is_string() ||
        (e.contains("channel") == e.contains("list")))
      bad(shape);
    const auto owner = e["owner"].get<std::string>();
    if (e.contains("channel")) {
      if (!e["channel"].is_string()) bad(shape);
      const auto channel = e["channel"].get<std::string>();
      bool done = false;
      for (std::uint32_t g = 0; g < t.groups.size() && !done; ++g) {
        if (!is_team(t, g) || t.groups[g].id != owner) continue;
        auto& ts = team_state(t, g);
        for (std::uint32_t c = 0; c < ts.channels.size() && !done; ++c)
          if (channel_id(t, g, c) == channel) {
            ++ts.channels[c].delta_epoch;
            done = true;
          }
        if (!done) bad("expire_delta: no channel '" + channel + "' in team '" + owner + "'");
      }
      if (!done) bad("expire_delta: no team '" + owner + "'");
      out["expired"].push_back({{"owner", owner}, {"channel", channel}});
    } else {
      if (!e["list"].is_string()) bad(shape);
      const auto list = e["list"].get<std::string>();
      auto s = parse_site_id(t, owner);
      if (!s) bad("expire_delta: no site '" + owner + "'");
      auto w = parse_list_id(t, *s, list);
      if (!w) bad("expire_delta: no list '" + list + "' in site '" + owner + "'");
      ++site_state(t, *s).delta_epoch[static_cast<std::size_t>(*w)];
      out["expired"].push_back({{"owner", owner}, {"list", list}});
    }
  }
}

json conversation_member_json(const Tenant& t, std::uint32_t user, bool owner, std::int64_t since) {
  const auto& id = t.users[user].id;
  auto uj = user_json(t, user);
  return {{"@odata.type", "#microsoft.graph.aadUserConversationMember"},
          {"id", base64("MCMj" + id + "#" + t.spec.tenant_id, true, false)},
          {"roles", owner ? json::array({"owner"}) : json::array()},
          {"displayName", uj["displayName"]},
          {"visibleHistoryStartDateTime", since ? json(iso_time(since)) : json("0001-01-01T00:00:00Z")},
          {"userId", id},
          {"email", uj["mail"]},
          {"tenantId", t.spec.tenant_id}};
}

void EmulatorImpl::add_teams(const std::string& method, const std::string& tmpl, const std::string& permission,
                             const std::string& kind, GraphFn fn) {
  add_graph(method, tmpl, permission, false, [this, kind, fn](GraphCtx& c) -> net::Response {
    const auto f = current_faults();
    const std::string app = c.app + "|" + c.tenant->spec.tenant_id + "|";
    // Checked in this order; the first one over its budget answers. Refused requests
    // count too, as they do for the mailbox limits.
    std::vector<std::pair<std::string, long>> budgets = {{app + kind, f.teams_rps_for(kind)}};
    if (c.req.params.count("team")) {
      const auto& res = c.req.params.count("channel") ? c.req.params["channel"] : c.req.params["team"];
      budgets.emplace_back(app + "res|" + res, f.teams_rps_for("per_team_or_channel"));
    }
    const double now_s = now_precise();
    std::optional<double> wait;
    {
      std::lock_guard lk(rpsmu);
      for (auto& [key, limit] : budgets) {
        auto& w = rps[key];
        if (now_s - w.start >= 1) {
          w.start = now_s;
          w.count = 0;
        }
        ++w.count;
        if (limit > 0 && w.count > limit && !wait) wait = w.start + 1 - now_s;
      }
    }
    if (wait) {
      auto r = graph_error(c.req, 429, "TooManyRequests", "Please retry again later.");
      r.headers.set("Retry-After", retry_after_value(*wait));
      return r;
    }
    return fn(c);
  });
}

net::Response EmulatorImpl::hosted_contents(GraphCtx& c, const json& msg, const std::string& hc, bool value) {
  // The inline images the body's <img> tags point at.
  const std::string content = msg["body"]["content"];
  std::vector<std::string> ids;
  for (std::size_t at = content.find("/hostedContents/"); at != std::string::npos;
       at = content.find("/hostedContents/", at + 1)) {
    auto start = at + 16;
    ids.push_back(content.substr(start, content.find('/', start) - start));
  }
  auto bytes = [&](const std::string& h) {
    std::string png("\x89PNG\r\n\x1a\n", 8);
    Blob b{Blob::binary, hash_str(h), 1800, 0, nullptr, nullptr};
    b.read(0, b.size, png);
    return png;
  };
  if (hc.empty()) {
    json list = json::array();
    for (auto& h : ids) list.push_back({{"id", h}, {"contentBytes", nullptr}, {"contentType", nullptr}});
    return graph_json(c, 200, {{"@odata.context", base_url + "/" + c.version + "/$metadata#Collection(chatMessageHostedContent)"},
                               {"value", list}});
  }
  if (std::find(ids.begin(), ids.end(), hc) == ids.end())
    return graph_error(c.req, 404, "NotFound", "Hosted content not found.");
  if (!value)
    return graph_json(c, 200, {{"@odata.context", base_url + "/" + c.version + "/$metadata#chatMessageHostedContent/$entity"},
                               {"id", hc}, {"contentBytes", base64(bytes(hc))}, {"contentType", "image/png"}});
  net::Response res;
  res.status = 200;
  res.body = bytes(hc);
  res.headers.set("Content-Type", "image/png");
  return res;
}

void EmulatorImpl::register_teams() {
  auto team_of = [this](GraphCtx& c) -> std::variant<std::uint32_t, net::Response> {
    auto& t = *c.tenant;
    std::lock_guard lk(t.mu);
    for (std::uint32_t g = 0; g < t.groups.size(); ++g)
      if (strcasecmp(t.groups[g].id.c_str(), c.req.params["team"].c_str()) == 0 && is_team(t, g)) return g;
    return graph_error(c.req, 404, "NotFound", "No team found with Group Id " + c.req.params["team"]);
  };
  auto channel_of = [this](GraphCtx& c, std::uint32_t g) -> std::optional<std::uint32_t> {
    auto& t = *c.tenant;
    for (std::uint32_t k = 0; k < static_cast<std::uint32_t>(t.spec.channels_per_team); ++k)
      if (channel_id(t, g, k) == c.req.params["channel"]) return k;
    (void)this;
    return std::nullopt;
  };
  auto channel_json = [](const Tenant& t, std::uint32_t g, std::uint32_t k) {
    static const char* kinds[] = {"standard", "private", "shared"};
    const std::string id = channel_id(t, g, k);
    return json{{"id", id},
                {"createdDateTime", iso_time(kBaseEpoch - 300 * 86400 + k * 86400)},
                {"displayName", kChannelNames[k % kChannelNames.size()] + (k >= kChannelNames.size() ? " " + std::to_string(k) : "")},
                {"description", k == 0 ? json("General channel") : json("Channel " + std::to_string(k))},
                {"email", ""},
                {"isFavoriteByDefault", k == 0},
                {"membershipType", k == 0 ? "standard" : kinds[k % 3]},
                {"tenantId", t.spec.tenant_id},
                {"webUrl", "https://teams.microsoft.com/l/channel/" + id + "/General?groupId=" + t.groups[g].id +
                               "&tenantId=" + t.spec.tenant_id}};
  };
  const std::string perm = "ChannelMessage.Read.All";
  add_teams("GET", "/teams/{team}", perm, "team_channel", [this, team_of](GraphCtx& c) {
    auto r = team_of(c);
    if (auto* e = std::get_if<net::Response>(&r)) return std::move(*e);
    auto g = std::get<std::uint32_t>(r);
    json gj;
    {
      std::lock_guard lk(c.tenant->mu);
      gj = group_json(*c.tenant, g);
    }
    json j = {{"@odata.context", base_url + "/" + c.version + "/$metadata#teams/$entity"},
              {"id", gj["id"]},
              {"createdDateTime", gj["createdDateTime"]},
              {"displayName", gj["displayName"]},
              {"description", gj["description"]},
              {"internalId", "19:" + to_hex(sha1(gj["id"].get<std::string>())).substr(0, 32) + "@thread.tacv2"},
              {"classification", nullptr},
              {"specialization", "none"},
              {"visibility", "private"},
              {"webUrl", "https://teams.microsoft.com/l/team/19%3a" + to_hex(sha1(gj["id"].get<std::string>())).substr(0, 32) +
                             "%40thread.tacv2/conversations?groupId=" + gj["id"].get<std::string>() + "&tenantId=" +
                             c.tenant->spec.tenant_id},
              {"isArchived", false},
              {"tenantId", c.tenant->spec.tenant_id}};
    return graph_json(c, 200, j);
  });
  add_teams("GET", "/teams/{team}/channels", perm, "channels_list", [this, team_of, channel_json](GraphCtx& c) {
    auto r = team_of(c);
    if (auto* e = std::get_if<net::Response>(&r)) return std::move(*e);
    auto g = std::get<std::uint32_t>(r);
    json value = json::array();
    for (std::uint32_t k = 0; k < static_cast<std::uint32_t>(c.tenant->spec.channels_per_team); ++k)
      value.push_back(channel_json(*c.tenant, g, k));
    return graph_json(c, 200, {{"@odata.context", base_url + "/" + c.version + "/$metadata#teams('" + c.req.params["team"] + "')/channels"},
                               {"@odata.count", value.size()},
                               {"value", value}});
  });
  add_teams("GET", "/teams/{team}/channels/{channel}", perm, "team_channel", [this, team_of, channel_of, channel_json](GraphCtx& c) {
    auto r = team_of(c);
    if (auto* e = std::get_if<net::Response>(&r)) return std::move(*e);
    auto g = std::get<std::uint32_t>(r);
    auto k = channel_of(c, g);
    if (!k) return graph_error(c.req, 404, "NotFound", "Channel not found.");
    auto j = channel_json(*c.tenant, g, *k);
    j["@odata.context"] = base_url + "/" + c.version + "/$metadata#teams('" + c.req.params["team"] + "')/channels/$entity";
    return graph_json(c, 200, j);
  });

  // Renders a post, with its replies when asked.
  auto render_post = [this](GraphCtx& c, Tenant& t, std::uint32_t g, std::uint32_t k, std::uint32_t p, bool replies) {
    auto& ch = team_state(t, g).channels[k];
    json j = channel_message_json(t, base_url, g, k, p, -1, ch.posts[p]);
    json merged = {{"@odata.type", "#microsoft.graph.chatMessage"}};
    merged.update(j);
    if (replies) {
      json rs = json::array();
      if (!ch.posts[p].deleted)
        for (std::uint32_t n = 0; n < reply_count(t, g, k, p); ++n)
          rs.push_back(channel_message_json(t, base_url, g, k, p, static_cast<std::int32_t>(n), ch.posts[p]));
      merged["replies@odata.context"] = base_url + "/" + c.version + "/$metadata#teams('" + c.req.params["team"] +
                                        "')/channels('" + c.req.params["channel"] + "')/messages('" + j["id"].get<std::string>() + "')/replies";
      merged["replies"] = rs;
    }
    return merged;
  };
  auto list_or_delta = [this, team_of, channel_of, render_post](bool delta) {
    return [this, team_of, channel_of, render_post, delta](GraphCtx& c) -> net::Response {
      auto r = team_of(c);
      if (auto* e = std::get_if<net::Response>(&r)) return std::move(*e);
      auto g = std::get<std::uint32_t>(r);
      auto k = channel_of(c, g);
      if (!k) return graph_error(c.req, 404, "NotFound", "Channel not found.");
      auto& t = *c.tenant;
      int top = 20;
      bool replies = c.req.query_param("$expand").value_or("") == "replies";
      std::uint64_t base = 0, snap = 0;
      std::size_t cursor = 0;
      std::optional<std::uint32_t> token_epoch;
      auto tok = c.req.query_param(delta ? "$deltatoken" : "$skiptoken");
      if (!tok && delta) tok = c.req.query_param("$skiptoken");
      if (tok) {
        auto s = unseal(*tok);
        if (!s || s->value("k", "") != "chm" || s->value("ch", "") != c.req.params["channel"])
          return graph_error(c.req, 400, "BadRequest", "Invalid delta or skip token.");
        base = s->value("base", std::uint64_t{0});
        snap = s->value("snap", std::uint64_t{0});
        cursor = s->value("cur", std::size_t{0});
        top = s->value("top", top);
        replies = s->value("rep", replies);
        if (delta) token_epoch = s->value("ep", std::uint32_t{0});
        if (c.req.query_param("$deltatoken")) {
          cursor = 0;
          snap = 0;
        }
      } else if (auto tp = c.req.query_param("$top")) {
        try {
          top = std::stoi(*tp);
        } catch (...) {
          top = 0;
        }
        if (top < 1 || top > 50) return graph_error(c.req, 400, "BadRequest", "$top must be between 1 and 50.");
      }
      json value = json::array();
      bool more = false;
      const std::int64_t window_start = now() * 1000 - kChannelDeltaWindowMs;
      std::uint32_t epoch;
      {
        std::lock_guard lk(t.mu);
        auto& ch = team_state(t, g).channels[*k];
        epoch = ch.delta_epoch;
        if (token_epoch && *token_epoch != epoch)
          // The sync state was dropped (expire_delta). Contract 3: an expired token
          // that brings no reset is a 40x syncStateNotFound, without Location.
          return graph_error(c.req, 400, "syncStateNotFound",
                             "The sync state generation is not found. The delta token is expired and data must be "
                             "synchronized again.");
        if (snap == 0) snap = ch.seq;
        std::size_t i = cursor;
        for (; i < ch.posts.size() && static_cast<int>(value.size()) < top; ++i) {
          const auto& e = ch.posts[i];
          if (base == 0 ? (e.deleted && delta) : e.seq <= base) continue;
          // Delta sees the last 8 months only; older posts are in the plain listing.
          if (delta && e.modified < window_start) continue;
          value.push_back(render_post(c, t, g, *k, static_cast<std::uint32_t>(i), replies));
        }
        more = i < ch.posts.size();
        cursor = i;
      }
      const std::string link = base_url + "/" + c.version + "/teams/" + c.req.params["team"] + "/channels/" +
                               c.req.params["channel"] + "/messages" + (delta ? "/delta" : "");
      json body = {{"@odata.context", base_url + "/" + c.version + "/$metadata#Collection(chatMessage)"}};
      json common = {{"k", "chm"}, {"ch", c.req.params["channel"]}, {"top", top}, {"rep", replies}, {"ep", epoch}};
      if (more) {
        json n = common;
        n["base"] = base;
        n["snap"] = snap;
        n["cur"] = cursor;
        body["@odata.nextLink"] = link + "?$skiptoken=" + seal(n);
      } else if (delta) {
        json n = common;
        n["base"] = snap;
        body["@odata.deltaLink"] = link + "?$deltatoken=" + seal(n);
      }
      body["value"] = value;
      return graph_json(c, 200, body);
    };
  };
  add_teams("GET", "/teams/{team}/channels/{channel}/messages/delta", perm, "channel_message", list_or_delta(true));
  add_teams("GET", "/teams/{team}/channels/{channel}/messages", perm, "channel_message", list_or_delta(false));

  auto one = [this, team_of, channel_of, render_post](int mode) {
    // 0: the post, 1: its replies, 2: hosted contents list, 3: one hosted content, 4: its $value
    return [this, team_of, channel_of, render_post, mode](GraphCtx& c) -> net::Response {
      auto r = team_of(c);
      if (auto* e = std::get_if<net::Response>(&r)) return std::move(*e);
      auto g = std::get<std::uint32_t>(r);
      auto k = channel_of(c, g);
      if (!k) return graph_error(c.req, 404, "NotFound", "Channel not found.");
      auto& t = *c.tenant;
      std::lock_guard lk(t.mu);
      auto& ch = team_state(t, g).channels[*k];
      // A reply id also addresses its message (post + n minutes).
      std::optional<std::uint32_t> p;
      std::int32_t reply = -1;
      try {
        auto ms = std::stoll(c.req.params.count("reply") ? c.req.params["reply"] : c.req.params["msg"]);
        if (auto at = post_at(t, *k, ms)) {
          auto [pi, rem] = *at;
          if (pi < ch.posts.size() && rem % 60000 == 0 &&
              (rem == 0 || rem / 60000 <= reply_count(t, g, *k, static_cast<std::uint32_t>(pi)))) {
            p = static_cast<std::uint32_t>(pi);
            reply = rem == 0 ? -1 : static_cast<std::int32_t>(rem / 60000 - 1);
          }
        }
      } catch (...) {
      }
      if (!p) return graph_error(c.req, 404, "NotFound", "Message not found.");
      if (mode == 0) {
        json j = reply < 0 ? render_post(c, t, g, *k, *p, false)
                           : channel_message_json(t, base_url, g, *k, *p, reply, ch.posts[*p]);
        j["@odata.context"] = base_url + "/" + c.version + "/$metadata#teams('" + c.req.params["team"] + "')/channels('" +
                              c.req.params["channel"] + "')/messages/$entity";
        return graph_json(c, 200, j);
      }
      if (mode == 1) {
        json rs = json::array();
        if (reply < 0 && !ch.posts[*p].deleted)
          for (std::uint32_t n = 0; n < reply_count(t, g, *k, *p); ++n)
            rs.push_back(channel_message_json(t, base_url, g, *k, *p, static_cast<std::int32_t>(n), ch.posts[*p]));
        return graph_json(c, 200, {{"@odata.context", base_url + "/" + c.version + "/$metadata#Collection(chatMessage)"},
                                   {"@odata.count", rs.size()},
                                   {"value", rs}});
      }
      auto msg = channel_message_json(t, base_url, g, *k, *p, reply, ch.posts[*p]);
      return hosted_contents(c, msg, mode == 2 ? "" : c.req.params["hc"], mode == 4);
    };
  };
  // Who is in which team: the group's members; the first one is the owner (inferred).
  add_teams("GET", "/users/{user}/joinedTeams", "Team.ReadBasic.All", "other", [this](GraphCtx& c) {
    auto& t = *c.tenant;
    json value = json::array();
    std::lock_guard lk(t.mu);
    for (std::uint32_t g = 0; g < t.groups.size(); ++g) {
      const auto& mem = t.groups[g].members;
      if (!is_team(t, g) || std::find(mem.begin(), mem.end(), *c.user) == mem.end()) continue;
      auto gj = group_json(t, g);
      value.push_back({{"id", gj["id"]}, {"createdDateTime", gj["createdDateTime"]}, {"displayName", gj["displayName"]},
                       {"description", gj["description"]}, {"isArchived", false}, {"tenantId", t.spec.tenant_id}});
    }
    return graph_json(c, 200, {{"@odata.context", base_url + "/" + c.version + "/$metadata#teams"},
                               {"@odata.count", value.size()},
                               {"value", value}});
  });
  add_teams("GET", "/teams/{team}/members", "TeamMember.Read.All", "other", [this, team_of](GraphCtx& c) {
    auto r = team_of(c);
    if (auto* e = std::get_if<net::Response>(&r)) return std::move(*e);
    auto g = std::get<std::uint32_t>(r);
    auto& t = *c.tenant;
    json value = json::array();
    std::lock_guard lk(t.mu);
    const auto& mem = t.groups[g].members;
    for (std::size_t n = 0; n < mem.size(); ++n)
      value.push_back(conversation_member_json(t, mem[n], n == 0, 0));
    return graph_json(c, 200, {{"@odata.context", base_url + "/" + c.version + "/$metadata#teams('" + c.req.params["team"] + "')/members"},
                               {"@odata.count", value.size()},
                               {"value", value}});
  });

  const std::string m = "/teams/{team}/channels/{channel}/messages/{msg}";
  add_teams("GET", m, perm, "channel_message", one(0));
  add_teams("GET", m + "/replies", perm, "channel_message", one(1));
  add_teams("GET", m + "/hostedContents", perm, "channel_message", one(2));
  add_teams("GET", m + "/hostedContents/{hc}", perm, "channel_message", one(3));
  add_teams("GET", m + "/hostedContents/{hc}/$value", perm, "channel_message", one(4));
  add_teams("GET", m + "/replies/{reply}", perm, "channel_message", one(0));
}

}  // namespace m365vault::emulator
