#include "m365vault/backup/backup.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/string.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <map>
#include <set>
#include <unordered_map>

#include "m365vault/backup/concurrent.hpp"
#include "content.hpp"
#include "drive.hpp"
#include "items.hpp"
#include "m365vault/backup/mime_names.hpp"
#include "pass.hpp"
#include "teams.hpp"
#include "m365vault/core/error.hpp"
#include "m365vault/core/text.hpp"
#include "m365vault/graph/errors.hpp"
#include "m365vault/graph/pager.hpp"
#include "m365vault/scheduler/queue.hpp"

namespace m365vault::backup {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using nlohmann::json;
using storage::Category;
using storage::PgConnection;

// ------------------------------------------------------------------ params

BackupParams BackupParams::from_json(const json& j) {
  if (!j.is_object()) throw Error(Errc::bad_request, "backup params: expected a JSON object");
  BackupParams p;
  for (auto& [k, v] : j.items()) {
    if (k == "tenant") {
      if (!v.is_string()) throw Error(Errc::bad_request, "backup params 'tenant': expected a string");
      p.tenant = v.get<std::string>();
    } else if (k == "owners") {
      if (!v.is_array()) throw Error(Errc::bad_request, "backup params 'owners': expected an array of strings");
      for (auto& o : v) {
        if (!o.is_string() || o.get_ref<const std::string&>().empty())
          throw Error(Errc::bad_request, "backup params 'owners': expected non-empty strings (user ids or UPNs)");
        p.owners.push_back(o.get<std::string>());
      }
    } else if (k == "categories") {
      if (!v.is_array() || v.empty())
        throw Error(Errc::bad_request, "backup params 'categories': expected a non-empty array");
      p.categories.clear();
      for (auto& c : v) {
        auto cat = c.is_string() ? storage::parse_category(c.get<std::string>()) : std::nullopt;
        if (!cat)
          throw Error(Errc::bad_request, "backup params 'categories': unknown category " + c.dump() +
                                             " (mail, contacts, calendar, onedrive, sharepoint or teams)");
        if (std::find(p.categories.begin(), p.categories.end(), *cat) == p.categories.end()) p.categories.push_back(*cat);
      }
    } else {
      throw Error(Errc::bad_request, "backup params: unknown key '" + k + "' (tenant, owners, categories)");
    }
  }
  return p;
}

json BackupParams::to_json() const {
  json cats = json::array();
  for (auto c : categories) cats.push_back(std::string(storage::to_string(c)));
  json j{{"categories", cats}};
  if (!tenant.empty()) j["tenant"] = tenant;
  if (!owners.empty()) j["owners"] = owners;
  return j;
}

graph::TenantEndpoint tenant_endpoint(const storage::Tenant& t, const storage::SealedSecret& secret,
                                      storage::SecretSealer& sealer) {
  graph::TenantEndpoint ep;
  ep.tenant_id = t.spec.directory_id;
  ep.client_id = t.spec.client_id;
  if (t.spec.graph_url) ep.graph_url = *t.spec.graph_url;
  if (t.spec.login_url) ep.login_url = *t.spec.login_url;
  if (t.spec.ca_file) ep.ca_file = *t.spec.ca_file;
  auto plain = sealer.open(secret.context, secret.sealed);
  if (t.spec.auth == storage::AuthKind::secret) {
    ep.client_secret = std::move(plain);
  } else {
    ep.certificate_pem = t.spec.certificate_pem;
    ep.private_key_pem = std::move(plain);
  }
  return ep;
}

namespace {

// Whether a selection's entry names this owner: its graph id, UPN or mail address,
// or (groups and teams, which have no UPN) its display name. Case-insensitive.
bool named(const storage::Owner& o, const std::string& want) {
  using boost::beast::iequals;
  return iequals(o.spec.graph_id, want) || (o.spec.upn && iequals(*o.spec.upn, want)) ||
         (o.spec.mail && iequals(*o.spec.mail, want)) ||
         (o.spec.kind != storage::OwnerKind::user && o.spec.display_name && iequals(*o.spec.display_name, want));
}

// A Teams chat id as Graph writes them: "19:{...}@thread.v2" (group, meeting) or
// "19:{user}_{user}@unq.gbl.spaces" (1:1), of URL-path-safe characters.
bool is_chat_id(const std::string& s) {
  if (!s.starts_with("19:") || !(s.ends_with("@thread.v2") || s.ends_with("@unq.gbl.spaces"))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == ':' || c == '@' || c == '.' || c == '_' || c == '-';
  });
}

// One run of one tenant.
class TenantRun {
 public:
  TenantRun(BackupServices& svc, const BackupParams& params, scheduler::RunContext& ctx, storage::Tenant tenant,
            graph::GraphClient& client, RepoWriter& writer, scheduler::ProgressTracker& progress)
      : svc_(svc), params_(params), ctx_(ctx), tenant_(std::move(tenant)), client_(client), writer_(writer),
        progress_(progress) {}

  awaitable<scheduler::RunOutcome> run();
  BackupSummary summary;

 private:
  // What one (owner, category) pass works with.
  struct Pass {
    storage::Owner owner;
    Category cat;
    std::string snapshot_id;
    std::string uid;  // the user's Graph id
    long long faults = 0;
  };

  template <class F>
  auto db(F f) -> awaitable<std::invoke_result_t<F, PgConnection&>> {
    co_return co_await svc_.db.run(std::move(f));
  }

  awaitable<void> event(const char* level, const std::string& message) {
    try {
      auto q1_ = [&](PgConnection& c) { scheduler::Queue{}.add_event(c, ctx_.run().id, level, message); };
      co_await db(q1_);
    } catch (const std::exception& e) {
      svc_.log->warn("run={} event not recorded: {}", ctx_.run().id, e.what());
    }
  }

  using OwnersOf = std::function<std::vector<storage::OwnerSpec>(const json&)>;
  awaitable<void> directory_delta(const std::string& scope, const std::string& start,
                                  const std::vector<storage::OwnerKind>& kinds, const OwnersOf& owners_of);
  awaitable<std::vector<storage::Owner>> discover();
  // Selected names that are no user, team or chat, in a run with sharepoint: the
  // sites pass reports those that name no site either.
  std::vector<std::string> site_names_;
  awaitable<std::vector<storage::Owner>> live_owners(storage::OwnerKind kind);
  awaitable<void> backup_teams();
  awaitable<void> backup_chats();
  std::vector<storage::Owner> selected(std::vector<storage::Owner> owners) const;
  using OwnerFn = std::function<awaitable<void>(DriveEnv&, const storage::Owner&)>;
  awaitable<void> each_owner(const char* category, const std::vector<storage::Owner>& owners, const OwnerFn& pass);
  awaitable<void> backup_owner(storage::Owner owner);
  awaitable<void> backup_category(Pass& pass);
  awaitable<std::vector<storage::ContainerChange>> walk_hierarchy(Pass& pass, const std::string& start_url,
                                                                  const char* parent_field);
  awaitable<void> resolve_well_known(const Pass& pass, const std::map<std::string, json>& by_id,
                                     const std::set<std::string>& known_ids,
                                     std::map<std::string, std::string>& well_known);
  awaitable<void> sync_calendars(Pass& pass);
  awaitable<void> sync_container(Pass& pass, const std::string& container_id);
  awaitable<void> retry_faults(Pass& pass);
  // An item whose content is read; a small one's single blob id comes from the
  // page's BlobBatch once it is submitted (settle()).
  struct Fetched {
    storage::ItemChange change;
    std::optional<std::size_t> batch_slot;
  };
  awaitable<std::optional<Fetched>> fetch_item(Pass& pass, const json& item, const std::string& container,
                                               std::vector<std::pair<std::string, std::string>>& faults,
                                               BlobBatch& batch);
  static storage::ItemChange settle(const BlobBatch& batch, Fetched& f) {
    if (f.batch_slot) f.change.content_blobs = {batch.id(*f.batch_slot)};
    return std::move(f.change);
  }
  awaitable<void> commit(Pass& pass, std::vector<storage::PageCommit>& pending,
                         std::vector<std::tuple<std::string, std::string, std::string>>& faults);

  std::string item_delta_url(const Pass& p, const std::string& container) const {
    switch (p.cat) {
      case Category::mail:
        return "/v1.0/users/" + p.uid + "/mailFolders/" + container + "/messages/delta?$select=" + kMessageSelect;
      case Category::contacts:
        return "/v1.0/users/" + p.uid + "/contactFolders/" + container + "/contacts/delta";
      default:
        // v1.0 only has a date-windowed calendarView delta; the whole calendar,
        // series masters included, needs beta (CONTRACT.md 7.2).
        return "/beta/users/" + p.uid + "/calendars/" + container + "/events/delta";
    }
  }
  std::string item_url(const Pass& p, const std::string& id) const {
    switch (p.cat) {
      case Category::mail:
        return "/v1.0/users/" + p.uid + "/messages/" + id;
      case Category::contacts:
        return "/v1.0/users/" + p.uid + "/contacts/" + id;
      default:
        return "/beta/users/" + p.uid + "/events/" + id;
    }
  }
  graph::RequestOptions outlook_opts(const Pass& p) const {
    graph::RequestOptions o;
    o.mailbox = ascii_lower(p.uid);
    o.outlook = true;
    o.max_page_size = svc_.opts.page_size;
    return o;
  }

  BackupServices& svc_;
  const BackupParams& params_;
  scheduler::RunContext& ctx_;
  storage::Tenant tenant_;
  graph::GraphClient& client_;
  RepoWriter& writer_;
  scheduler::ProgressTracker& progress_;
  storage::Catalog cat_;
  long long faults_ = 0;
  AsyncSemaphore downloads_{std::max(1, svc_.opts.downloads_per_run)};  // shared by every drive of the run
};

// ------------------------------------------------------------------ discovery

// Owners from a directory delta ("users" or "groups") and its tenant cursor. Each
// reported object gives owner specs (a group with a team gives the group and the
// team: they share the graph id); a removed object marks its owners of `kinds`
// deleted (their backups stay).
awaitable<void> TenantRun::directory_delta(const std::string& scope, const std::string& start,
                                           const std::vector<storage::OwnerKind>& kinds, const OwnersOf& owners_of) {
  auto q2_ = [&](PgConnection& c) { return cat_.tenant_cursor(c, tenant_.id, scope); };
  auto saved = co_await db(q2_);
  std::optional<graph::DeltaPager> pager;
  pager.emplace(client_, saved.value_or(start));
  std::string expired;
  int restarts = 0;
  for (;;) {
    auto page = co_await next_page(*pager, expired, restarts);
    if (!expired.empty()) {
      // An expired directory token: enumerate again; owners are upserted, so a
      // full round only refreshes them.
      {
        const std::string msg_ = scope + " delta token expired; enumerating the directory again";
        co_await event("warn", msg_);
      }
      pager.emplace(client_, start);
      continue;
    }
    if (!page) break;
    std::map<storage::OwnerKind, std::vector<storage::OwnerSpec>> specs;
    std::vector<std::string> removed;  // graph ids
    for (auto& u : page->items) {
      if (!u.contains("id") || !u["id"].is_string()) continue;
      if (graph::is_removed(u)) {
        removed.push_back(u["id"].get<std::string>());
        continue;
      }
      for (auto& s : owners_of(u)) specs[s.kind].push_back(std::move(s));
    }
    std::string cursor = page->delta_link ? *page->delta_link : page->next_link.value_or("");
    auto q3_ = [&](PgConnection& c) {
      // The cursor goes with the last kind: a crash before it replays the page,
      // and upserts and removals are idempotent.
      for (std::size_t k = 0; k < kinds.size(); ++k)
        cat_.commit_directory_page(c, tenant_.id, scope, kinds[k], specs[kinds[k]], removed,
                                   k + 1 == kinds.size() ? cursor : std::string());
    };
    co_await db(q3_);
  }
}

awaitable<std::vector<storage::Owner>> TenantRun::live_owners(storage::OwnerKind kind) {
  std::vector<storage::Owner> all;
  storage::OwnerFilter f;
  f.kind = kind;
  f.limit = 500;
  for (;;) {
    auto q4_ = [&](PgConnection& c) { return cat_.list_owners(c, tenant_.id, f); };
    auto page = co_await db(q4_);
    for (auto& o : page.owners)
      if (o.state != storage::OwnerState::deleted) all.push_back(std::move(o));
    if (!page.next_cursor) break;
    f.cursor = page.next_cursor;
  }
  co_return all;
}

awaitable<std::vector<storage::Owner>> TenantRun::discover() {
  progress_.set_phase("discovery");
  auto get = [](const json& u, const char* k) -> std::optional<std::string> {
    auto it = u.find(k);
    return it != u.end() && it->is_string() ? std::optional<std::string>(it->get<std::string>()) : std::nullopt;
  };
  const OwnersOf user_owner = [&](const json& u) {
    storage::OwnerSpec s;
    s.kind = storage::OwnerKind::user;
    s.graph_id = u["id"].get<std::string>();
    s.display_name = get(u, "displayName");
    s.upn = get(u, "userPrincipalName");
    s.mail = get(u, "mail");
    return std::vector<storage::OwnerSpec>{std::move(s)};
  };
  {
    const std::string scope = "users", start = "/v1.0/users/delta?$select=id,displayName,userPrincipalName,mail";
    const std::vector<storage::OwnerKind> kinds{storage::OwnerKind::user};
    co_await directory_delta(scope, start, kinds, user_owner);
  }
  // ---- groups, and the teams among them (teams.cpp backs those up)
  {
    // Teams are groups whose resourceProvisioningOptions holds "Team" (CONTRACT.md 5).
    const OwnersOf group_owners = [&](const json& g) {
      storage::OwnerSpec s;
      s.kind = storage::OwnerKind::group;
      s.graph_id = g["id"].get<std::string>();
      s.display_name = get(g, "displayName");
      s.mail = get(g, "mail");
      std::vector<storage::OwnerSpec> out{s};
      auto rpo = g.find("resourceProvisioningOptions");
      if (rpo != g.end() && rpo->is_array())
        for (auto& o : *rpo)
          if (o.is_string() && ascii_lower(o.get<std::string>()) == "team") {
            s.kind = storage::OwnerKind::team;
            out.push_back(s);
            break;
          }
      return out;
    };
    const std::string scope = "groups",
                      start = "/v1.0/groups/delta?$select=id,displayName,mail,groupTypes,resourceProvisioningOptions";
    // Teams after groups would leave a group's team unrecorded on a crash between
    // them; teams first, then groups with the cursor.
    const std::vector<storage::OwnerKind> kinds{storage::OwnerKind::team, storage::OwnerKind::group};
    const bool needed = std::find(params_.categories.begin(), params_.categories.end(), Category::teams) !=
                        params_.categories.end();
    std::optional<std::string> refused;
    try {
      co_await directory_delta(scope, start, kinds, group_owners);
    } catch (const graph::GraphError& e) {
      // Without Group.Read.All only teams suffer: mail and files go on.
      if (needed || !graph::is_access_denied(e)) throw;
      refused = e.what();
    }
    if (refused) {
      const std::string msg_ = "groups not discovered (" + *refused + ")";
      co_await event("warn", msg_);
    }
  }
  // ---- end groups

  // Every user not deleted; the selection narrows it.
  auto all = co_await live_owners(storage::OwnerKind::user);
  if (params_.owners.empty()) co_return all;
  // A selection may name teams and chats (backup_teams and backup_chats pick them).
  const bool with_teams =
      std::find(params_.categories.begin(), params_.categories.end(), Category::teams) != params_.categories.end();
  const bool with_sites =
      std::find(params_.categories.begin(), params_.categories.end(), Category::sharepoint) != params_.categories.end();
  std::vector<storage::Owner> teams, chats;
  if (with_teams) {
    teams = co_await live_owners(storage::OwnerKind::team);
    chats = co_await live_owners(storage::OwnerKind::chat);
  }
  std::vector<storage::Owner> chosen;
  for (auto& want : params_.owners) {
    auto it = std::find_if(all.begin(), all.end(), [&](const storage::Owner& o) { return named(o, want); });
    auto is_named = [&](const std::vector<storage::Owner>& os) {
      return std::any_of(os.begin(), os.end(), [&](const storage::Owner& o) { return named(o, want); });
    };
    if (it == all.end() && (is_named(teams) || is_named(chats) || (with_teams && is_chat_id(want)))) continue;
    if (it == all.end() && with_sites && !is_chat_id(want)) {
      // Maybe a site (id, name or URL): the sites pass lists them and says so if not.
      site_names_.push_back(want);
      continue;
    }
    if (it == all.end()) {
      std::string problem = "no user '" + want + "' in tenant '" + tenant_.spec.name + "'";
      if (is_chat_id(want))
        problem = "'" + want + "' is a Teams chat: chats are backed up with category teams (--category teams)";
      else if (want.starts_with("19:") && want.find("@thread.") != std::string::npos)
        problem = "'" + want + "' is a Teams channel: select its team (by id or name) with category teams";
      else if (!with_teams)
        problem += " (with category teams, a selection also names teams and chats by id or name)";
      summary.problems.push_back(problem);
      ++summary.owners_failed;
      co_await event("error", summary.problems.back());
      continue;
    }
    chosen.push_back(*it);
  }
  co_return chosen;
}

// ------------------------------------------------------------------ per owner

awaitable<void> TenantRun::backup_owner(storage::Owner owner) {
  const std::string who = owner.spec.upn.value_or(owner.spec.graph_id);
  for (auto cat : params_.categories) {
    if (ctx_.cancelled()) co_return;
    if (cat == Category::sharepoint || cat == Category::teams) continue;  // owners of their own (run())
    Pass pass{owner, cat, {}, owner.spec.graph_id};
    std::optional<std::string> skipped, failed, category_skipped;
    try {
      co_await backup_category(pass);
    } catch (const CategorySkipped& e) {
      category_skipped = e.what();
    } catch (const graph::GraphError& e) {
      if (graph::is_auth_failure(e)) throw;
      if (graph::is_mailbox_not_enabled(e))
        // Unlicensed, on-premises or REST-disabled: not a failure of the backup.
        skipped = "mailbox not enabled for the Graph API (" + e.code() + ")";
      else
        failed = e.what();
    } catch (const graph::TokenError&) {
      throw;
    } catch (const std::exception& e) {
      failed = e.what();
    }
    if (category_skipped) {
      const std::string msg_ = "owner '" + who + "' " + std::string(storage::to_string(cat)) +
                               " skipped: " + *category_skipped;
      co_await event("info", msg_);
      ++summary.categories_skipped;
      continue;
    }
    if (skipped) {
      auto q5_ = [&](PgConnection& c) {
        cat_.set_owner_state(c, owner.id, storage::OwnerState::skipped, *skipped);
      };
      co_await db(q5_);
      {
        const std::string msg_ = "owner '" + who + "' skipped: " + *skipped;
        co_await event("info", msg_);
      }
      ++summary.owners_skipped;
      progress_.owner_skipped();
      co_return;
    }
    if (failed) {
      if (ctx_.cancelled()) co_return;
      summary.problems.push_back("owner '" + who + "' " + std::string(storage::to_string(cat)) + ": " + *failed);
      ++summary.owners_failed;
      co_await event("error", summary.problems.back());
      progress_.owner_done();
      co_return;
    }
  }
  if (owner.state == storage::OwnerState::skipped) {
    auto q6_ = [&](PgConnection& c) { cat_.set_owner_state(c, owner.id, storage::OwnerState::active, std::nullopt); };
    co_await db(q6_);
  }
  ++summary.owners;
  progress_.owner_done();
}

awaitable<void> TenantRun::backup_category(Pass& pass) {
  if (pass.cat == Category::onedrive) {  // drive.cpp
    DriveEnv env{svc_, ctx_, client_, writer_, progress_, summary, tenant_, downloads_};
    co_await backup_onedrive(env, pass.owner);
    co_return;
  }
  progress_.set_phase(std::string(storage::to_string(pass.cat)));
  // Named: a lambda temporary inside co_await is destroyed twice by GCC 12.
  auto begin_ = [&](PgConnection& c) { return cat_.begin_snapshot(c, pass.owner.id, pass.cat, ctx_.run().id); };
  auto snap = co_await db(begin_);
  pass.snapshot_id = snap.id;

  // The container tree first, then every live container's items.
  // (Every argument of a co_await is a named object: GCC 12 destroys temporaries
  // inside co_await expressions twice.)
  if (pass.cat == Category::mail || pass.cat == Category::contacts) {
    const std::string url = "/v1.0/users/" + pass.uid +
                            (pass.cat == Category::mail ? "/mailFolders/delta" : "/contactFolders/delta");
    co_await walk_hierarchy(pass, url, "parentFolderId");
  } else {
    co_await sync_calendars(pass);
  }

  auto q7_ = [&](PgConnection& c) { return cat_.open_containers(c, pass.owner.id, pass.cat); };
  auto containers = co_await db(q7_);
  for (auto& ct : containers) {
    if (ctx_.cancelled()) co_return;
    co_await sync_container(pass, ct.graph_id);
  }
  if (ctx_.cancelled()) co_return;
  co_await retry_faults(pass);
  if (ctx_.cancelled()) co_return;
  auto state = pass.faults > 0 ? storage::SnapshotState::partial : storage::SnapshotState::complete;
  auto q8_ = [&](PgConnection& c) { cat_.complete_snapshot(c, pass.snapshot_id, state); };
  co_await db(q8_);
}

// The folder tree through its delta: one commit per round (trees are small), with
// parents before children. An invalid token starts a resync round that closes
// the folders the completed round no longer reports.
awaitable<std::vector<storage::ContainerChange>> TenantRun::walk_hierarchy(Pass& pass, const std::string& start_url,
                                                                            const char* parent_field) {
  auto q9_ = [&](PgConnection& c) { return cat_.delta_state(c, pass.owner.id, pass.cat, std::nullopt); };
  auto state = co_await db(q9_);
  std::string expected = state.cursor.value_or("");
  auto opts = outlook_opts(pass);
  std::optional<graph::DeltaPager> pager;
  pager.emplace(client_, state.cursor.value_or(start_url), opts);
  std::vector<json> folders;
  std::string delta_link;
  std::string expired;
  int restarts = 0;
  for (;;) {
    auto page = co_await next_page(*pager, expired, restarts);
    if (!expired.empty()) {
      {
        const std::string msg_ = "folder delta of '" + pass.owner.spec.upn.value_or(pass.uid) + "' " +
                                 std::string(storage::to_string(pass.cat)) + " expired: enumerating again";
        co_await event("warn", msg_);
      }
      auto q10_ = [&](PgConnection& c) {
        return cat_.start_round(c, pass.owner.id, pass.cat, std::nullopt, storage::RoundCovers::containers);
      };
      co_await db(q10_);
      expected.clear();
      folders.clear();
      pager.emplace(client_, start_url, opts);
      continue;
    }
    if (!page) break;
    for (auto& f : page->items) folders.push_back(std::move(f));
    if (page->delta_link) delta_link = *page->delta_link;
  }

  // The last report of a folder wins; parents before children.
  std::map<std::string, json> by_id;
  std::vector<std::string> order;
  for (auto& f : folders) {
    if (!f.contains("id") || !f["id"].is_string()) continue;
    // Search folders are views over other folders: their messages are backed up
    // where they live (CONTRACT.md 6.1), never twice.
    if (f.value("@odata.type", "") == "#microsoft.graph.mailSearchFolder") continue;
    auto id = f["id"].get<std::string>();
    if (!by_id.count(id)) order.push_back(id);
    by_id[id] = f;
  }
  auto q11_ = [&](PgConnection& c) { return cat_.open_containers(c, pass.owner.id, pass.cat); };
  auto known = co_await db(q11_);
  std::set<std::string> known_ids;
  std::map<std::string, std::string> well_known;  // graph id -> inbox, sentitems...
  for (auto& k : known) {
    known_ids.insert(k.graph_id);
    if (k.well_known) well_known[k.graph_id] = *k.well_known;
  }
  if (pass.cat == Category::mail) co_await resolve_well_known(pass, by_id, known_ids, well_known);
  std::vector<storage::ContainerChange> changes;
  std::set<std::string> placed;
  std::function<void(const std::string&, int)> place = [&](const std::string& id, int depth) {
    if (placed.count(id) || depth > 64) return;
    auto& f = by_id[id];
    storage::ContainerChange ch;
    ch.graph_id = id;
    if (graph::is_removed(f)) {
      ch.removed = true;
    } else {
      if (auto p = f.find(parent_field); p != f.end() && p->is_string()) {
        auto pid = p->get<std::string>();
        if (by_id.count(pid) && !graph::is_removed(by_id[pid])) place(pid, depth + 1);
        if (by_id.count(pid) || known_ids.count(pid)) ch.parent_graph_id = pid;  // else: under the root
      }
      ch.display_name = f.value("displayName", std::string());
      if (auto w = well_known.find(id); w != well_known.end()) ch.well_known = w->second;
    }
    placed.insert(id);
    changes.push_back(std::move(ch));
  };
  for (auto& id : order) place(id, 0);

  storage::PageCommit pc;
  pc.owner_id = pass.owner.id;
  pc.category = pass.cat;
  pc.containers = changes;
  pc.cursor = delta_link;
  pc.delta_link = true;
  pc.expected_cursor = expected;
  pc.snapshot_id = pass.snapshot_id;
  auto q12_ = [&](PgConnection& c) { return cat_.commit_page(c, pc); };
  auto r = co_await db(q12_);
  progress_.count(0, 0, static_cast<std::uint64_t>(r.items_closed), 0);
  co_return changes;
}

// The mail folder delta does not say which folder is the Inbox: Graph answers
// that only through the well-known aliases (CONTRACT.md 6.1). They are asked,
// one GET each, when the mailbox gains a folder (its first run included) or has
// none known yet; otherwise the stored names are carried, so a renamed Inbox
// stays the inbox without a request. An alias the mailbox lacks (no archive) is
// skipped; any other failure keeps what is known and says so in the run's events.
awaitable<void> TenantRun::resolve_well_known(const Pass& pass, const std::map<std::string, json>& by_id,
                                              const std::set<std::string>& known_ids,
                                              std::map<std::string, std::string>& well_known) {
  bool grows = well_known.empty();
  for (auto& [id, f] : by_id)
    if (!known_ids.count(id) && !graph::is_removed(f)) grows = true;
  if (!grows) co_return;
  static const char* const kAliases[] = {"inbox",       "drafts",    "sentitems", "deleteditems",
                                         "archive",     "junkemail", "outbox",    "conversationhistory"};
  auto opts = outlook_opts(pass);
  opts.max_page_size.reset();
  std::string failed;
  for (const char* alias : kAliases) {
    const std::string url = "/v1.0/users/" + pass.uid + "/mailFolders/" + alias + "?$select=id";
    try {
      auto r = co_await client_.get(url, opts);
      auto j = r.parse();
      if (j.contains("id") && j["id"].is_string()) well_known[j["id"].get<std::string>()] = alias;
    } catch (const graph::GraphError& e) {
      if (!graph::is_not_found(e)) failed = std::string(alias) + ": " + e.what();
    }
    if (!failed.empty()) break;
  }
  if (!failed.empty()) {
    const std::string msg_ = "well-known mail folders of '" + pass.owner.spec.upn.value_or(pass.uid) +
                             "' not resolved (" + failed + "): they show without their well-known name until a later run";
    co_await event("warn", msg_);
  }
}

// Calendars have no delta of their own: list them and compare with what is stored.
awaitable<void> TenantRun::sync_calendars(Pass& pass) {
  auto opts = outlook_opts(pass);
  opts.max_page_size.reset();
  graph::DeltaPager pager(client_, "/v1.0/users/" + pass.uid + "/calendars", opts);
  std::vector<storage::ContainerChange> changes;
  std::set<std::string> seen;
  while (auto page = co_await pager.next()) {
    for (auto& cal : page->items) {
      if (!cal.contains("id") || !cal["id"].is_string()) continue;
      storage::ContainerChange ch;
      ch.graph_id = cal["id"].get<std::string>();
      ch.display_name = cal.value("name", std::string());
      if (cal.value("isDefaultCalendar", false)) ch.well_known = "calendar";
      seen.insert(ch.graph_id);
      changes.push_back(std::move(ch));
    }
  }
  auto q13_ = [&](PgConnection& c) { return cat_.open_containers(c, pass.owner.id, pass.cat); };
  auto known = co_await db(q13_);
  for (auto& k : known)
    if (!seen.count(k.graph_id)) {
      storage::ContainerChange gone;
      gone.graph_id = k.graph_id;
      gone.removed = true;
      changes.push_back(std::move(gone));
    }
  auto q14_ = [&](PgConnection& c) { return cat_.delta_state(c, pass.owner.id, pass.cat, std::nullopt); };
  auto state = co_await db(q14_);
  storage::PageCommit pc;
  pc.owner_id = pass.owner.id;
  pc.category = pass.cat;
  pc.containers = std::move(changes);
  pc.cursor = "listed";  // a listing has no token; the scope's cursor only records that it ran
  pc.expected_cursor = state.cursor.value_or("");
  pc.snapshot_id = pass.snapshot_id;
  auto q15_ = [&](PgConnection& c) { return cat_.commit_page(c, pc); };
  auto r = co_await db(q15_);
  progress_.count(0, 0, static_cast<std::uint64_t>(r.items_closed), 0);
}

// Downloads one item's content (MIME for mail; the JSON itself otherwise) into
// the repository; small content goes into `batch`. For mail, the attachment names
// are read from the MIME as it passes. nullopt: the item could not be read; the
// reason is in `faults`.
awaitable<std::optional<TenantRun::Fetched>> TenantRun::fetch_item(
    Pass& pass, const json& item, const std::string& container,
    std::vector<std::pair<std::string, std::string>>& faults, BlobBatch& batch) {
  storage::ItemChange ch = pass.cat == Category::mail       ? message_change(item, container)
                           : pass.cat == Category::contacts ? contact_change(item, container)
                                                            : event_change(item, container);
  ContentSink sink(writer_, &batch);
  if (pass.cat == Category::mail) {
    MimeNameScanner names;
    try {
      auto opts = outlook_opts(pass);
      opts.max_page_size.reset();
      const std::string url = item_url(pass, ch.graph_id) + "/$value";
      graph::ChunkFn on_chunk = [&](std::string_view data) -> awaitable<void> {
        progress_.bytes_read(data.size());
        names.feed(data);
        co_await sink.write(data);
      };
      std::function<void()> on_restart = [&] {
        sink.reset();
        names.reset();
      };
      graph::StreamHeadFn on_head = [&](int, const net::Headers& h) {
        if (auto n = h.get("Content-Length")) sink.expect(std::atoll(std::string(*n).c_str()));
      };
      co_await client_.get_stream(url, on_chunk, opts, on_restart, on_head);
    } catch (const graph::GraphError& e) {
      if (graph::is_not_found(e) || graph::is_corrupt_item(e) || graph::is_malware(e) ||
          graph::is_access_denied(e)) {
        faults.emplace_back(ch.graph_id, e.what());
        co_return std::nullopt;
      }
      throw;
    }
    if (auto found = names.finish(); !found.empty()) ch.meta["attachmentNames"] = std::move(found);
  } else {
    // Lossless: the item exactly as Graph sent it. A series' changed occurrences are
    // not in the delta: they are read with the master and kept in it, so a restore
    // can re-apply them (the cancelled ones are the master's cancelledOccurrences).
    json full = item;
    if (pass.cat == Category::calendar && item.value("type", "") == "seriesMaster") {
      auto opts = outlook_opts(pass);
      opts.max_page_size.reset();
      const std::string url = item_url(pass, ch.graph_id) + "?$expand=exceptionOccurrences";
      std::optional<std::string> fault;
      try {
        auto r = co_await client_.get(url, opts);
        full["exceptionOccurrences"] = r.parse().value("exceptionOccurrences", json::array());
      } catch (const graph::GraphError& e) {
        if (!graph::is_not_found(e) && !graph::is_corrupt_item(e) && !graph::is_access_denied(e)) throw;
        fault = e.what();
      }
      if (fault) {
        faults.emplace_back(ch.graph_id, *fault);
        co_return std::nullopt;
      }
    }
    auto text = full.dump();
    progress_.bytes_read(text.size());
    co_await sink.write(text);
  }
  auto stored = co_await sink.finish();
  ch.content_blobs = std::move(stored.blobs);
  ch.content_sha256 = std::move(stored.sha256);
  ch.content_size = stored.size;
  ch.size = stored.size;
  co_return Fetched{std::move(ch), stored.batch_slot};
}

// Flushes the repository (the pages' content becomes durable), then records the
// pages' faults and commits the pages in order, each with its cursor.
awaitable<void> TenantRun::commit(Pass& pass, std::vector<storage::PageCommit>& pending,
                                  std::vector<std::tuple<std::string, std::string, std::string>>& faults) {
  if (pending.empty()) co_return;
  bool content = false;
  for (auto& p : pending)
    for (auto& i : p.items) content = content || !i.content_blobs.empty();
  if (content) co_await writer_.flush();
  // Faults before the pages that skip their items: a crash in between replays the
  // page and records the fault again, never loses it.
  if (!faults.empty()) {
    auto q16_ = [&](PgConnection& c) {
      for (auto& [container, gid, reason] : faults)
        cat_.record_fault(c, ctx_.run().id, pass.owner.id, pass.cat, gid, reason, std::nullopt, pass.snapshot_id);
    };
    co_await db(q16_);
    pass.faults += static_cast<long long>(faults.size());
    summary.items_faulted += static_cast<long long>(faults.size());
    for (std::size_t i = 0; i < faults.size(); ++i) progress_.item_faulted();
  }
  for (auto& pc : pending) {
    auto q17_ = [&](PgConnection& c) { return cat_.commit_page(c, pc); };
    auto r = co_await db(q17_);
    progress_.count(static_cast<std::uint64_t>(r.items_added), static_cast<std::uint64_t>(r.items_changed),
                    static_cast<std::uint64_t>(r.items_closed), static_cast<std::uint64_t>(r.bytes_added));
    summary.items_new += r.items_added;
    summary.items_changed += r.items_changed;
    summary.items_deleted += r.items_closed;
  }
  pending.clear();
  faults.clear();
}

awaitable<void> TenantRun::sync_container(Pass& pass, const std::string& container) {
  auto q18_ = [&](PgConnection& c) { return cat_.delta_state(c, pass.owner.id, pass.cat, container); };
  auto state = co_await db(q18_);
  const std::string start = item_delta_url(pass, container);
  std::string expected = state.cursor.value_or("");
  auto opts = outlook_opts(pass);
  std::optional<graph::DeltaPager> pager;
  pager.emplace(client_, state.cursor.value_or(start), opts);

  std::vector<storage::PageCommit> pending;
  std::vector<std::tuple<std::string, std::string, std::string>> faults;
  std::size_t pending_bytes = 0;
  auto last_commit = std::chrono::steady_clock::now();

  std::string expired;  // the code of an invalid-delta answer
  int restarts = 0;
  for (;;) {
    if (ctx_.cancelled()) break;
    auto page = co_await next_page(*pager, expired, restarts);
    if (!expired.empty()) {
      // The sync state is gone: keep what was fetched, then enumerate the folder
      // again in a round that fetches only what differs and closes only what the
      // completed round no longer reports.
      co_await commit(pass, pending, faults);
      pending_bytes = 0;
      {
        const std::string msg_ = "delta of a " + std::string(storage::to_string(pass.cat)) + " folder of '" +
                                 pass.owner.spec.upn.value_or(pass.uid) + "' is no longer valid (" + expired +
                                 "): resynchronising it";
        co_await event("warn", msg_);
      }
      auto q19_ = [&](PgConnection& c) {
        return cat_.start_round(c, pass.owner.id, pass.cat, container, storage::RoundCovers::items);
      };
      co_await db(q19_);
      expected.clear();
      pager.emplace(client_, start, opts);
      continue;
    }
    if (!page) break;

    // The last report of an item in a page wins (Graph may repeat items).
    std::vector<std::string> removed;
    std::vector<const json*> live;
    std::unordered_map<std::string, std::size_t> at;
    for (auto& it : page->items) {
      auto idp = it.find("id");
      if (idp == it.end() || !idp->is_string()) continue;
      const auto& id = idp->get_ref<const std::string&>();
      if (graph::is_removed(it)) {
        removed.push_back(id);
        if (auto a = at.find(id); a != at.end()) live[a->second] = nullptr;
        at.erase(id);
        continue;
      }
      if (auto a = at.find(id); a != at.end()) {
        live[a->second] = &it;
      } else {
        at[id] = live.size();
        live.push_back(&it);
      }
    }
    std::vector<std::string> ids;
    for (auto* p : live)
      if (p) ids.push_back((*p)["id"].get<std::string>());
    std::unordered_map<std::string, storage::KnownItem> known;
    if (!ids.empty()) {
      auto q20_ = [&](PgConnection& c) { return cat_.known_items(c, pass.owner.id, pass.cat, ids); };
      known = co_await db(q20_);
    }

    storage::PageCommit pc;
    pc.owner_id = pass.owner.id;
    pc.category = pass.cat;
    pc.container_graph_id = container;
    pc.removed_items = std::move(removed);
    std::vector<const json*> fetch;
    for (auto* p : live) {
      if (!p) continue;
      auto id = (*p)["id"].get<std::string>();
      auto k = known.find(id);
      if (k != known.end() && k->second.change_key == change_key_of(*p) && k->second.container_graph_id == container) {
        pc.unchanged_items.push_back(id);  // a replay, or a resync round meeting what is stored
        continue;
      }
      fetch.push_back(p);
    }
    std::vector<std::optional<Fetched>> got(fetch.size());
    std::vector<std::pair<std::string, std::string>> page_faults;
    BlobBatch batch(writer_);
    std::function<awaitable<void>(std::size_t)> fetch_one = [&](std::size_t i) -> awaitable<void> {
      got[i] = co_await fetch_item(pass, *fetch[i], container, page_faults, batch);
    };
    const auto fetchers = static_cast<std::size_t>(std::max(1, svc_.opts.fetches_per_owner));
    co_await for_each_concurrent(fetchers, fetch.size(), fetch_one);
    co_await batch.submit();
    for (auto& g : got)
      if (g) {
        pending_bytes += static_cast<std::size_t>(g->change.content_size.value_or(0));
        pc.items.push_back(settle(batch, *g));
      }
    for (auto& [gid, reason] : page_faults) {
      faults.emplace_back(container, gid, reason);
      pc.unchanged_items.push_back(gid);  // keeps a stored version open through a resync round
    }
    pc.cursor = page->delta_link ? *page->delta_link : page->next_link.value_or("");
    pc.delta_link = page->delta_link.has_value();
    pc.expected_cursor = expected;
    pc.snapshot_id = pass.snapshot_id;
    expected = pc.cursor;
    pending.push_back(std::move(pc));

    if (pending.back().delta_link || pending_bytes >= svc_.opts.commit_bytes ||
        std::chrono::steady_clock::now() - last_commit >= svc_.opts.commit_interval) {
      co_await commit(pass, pending, faults);
      pending_bytes = 0;
      last_commit = std::chrono::steady_clock::now();
    }
  }
  co_await commit(pass, pending, faults);
}

// Items that faulted in earlier runs: the delta will not report them again until
// they change, so read each by id.
awaitable<void> TenantRun::retry_faults(Pass& pass) {
  auto q21_ = [&](PgConnection& c) { return cat_.open_faults(c, pass.owner.id, pass.cat); };
  auto open = co_await db(q21_);
  for (auto& f : open) {
    if (ctx_.cancelled()) co_return;
    if (f.run_id == ctx_.run().id) continue;  // failed in this very run: next time
    auto opts = outlook_opts(pass);
    opts.max_page_size.reset();
    json item;
    bool gone = false;
    try {
      auto url = item_url(pass, f.item_graph_id);
      if (pass.cat == Category::mail) url += std::string("?$select=") + kMessageSelect;
      auto r = co_await client_.get(url, opts);
      item = r.parse();
    } catch (const graph::GraphError& e) {
      if (!graph::is_not_found(e)) throw;
      gone = true;
    }
    if (gone) {
      // Gone since: nothing left to back up.
      auto q22_ = [&](PgConnection& c) {
        return cat_.resolve_faults(c, pass.owner.id, pass.cat, {f.item_graph_id});
      };
      co_await db(q22_);
      continue;
    }
    std::string container = pass.cat == Category::calendar ? item.value("calendarId", std::string())
                                                           : item.value("parentFolderId", std::string());
    if (container.empty()) continue;  // cannot place it; it stays open
    std::vector<std::pair<std::string, std::string>> page_faults;
    BlobBatch batch(writer_);
    auto got = co_await fetch_item(pass, item, container, page_faults, batch);
    co_await batch.submit();
    std::vector<std::tuple<std::string, std::string, std::string>> faults;
    for (auto& [gid, reason] : page_faults) faults.emplace_back(container, gid, reason);
    auto q23_ = [&](PgConnection& c) { return cat_.delta_state(c, pass.owner.id, pass.cat, container); };
    auto state = co_await db(q23_);
    if (!state.cursor) continue;  // the folder has not been walked: its round will meet it
    storage::PageCommit pc;
    pc.owner_id = pass.owner.id;
    pc.category = pass.cat;
    pc.container_graph_id = container;
    if (got) pc.items.push_back(settle(batch, *got));
    pc.cursor = *state.cursor;  // unchanged: this page is outside the delta
    pc.expected_cursor = *state.cursor;
    pc.snapshot_id = pass.snapshot_id;
    std::vector<storage::PageCommit> pending{std::move(pc)};
    co_await commit(pass, pending, faults);
  }
}

// ------------------------------------------------------------------ teams

// Owners of their own (teams, chats), as many at once as users; a worker takes a
// new owner only once its current one is done. An owner that fails is a problem
// of the run; credentials refused end it.
awaitable<void> TenantRun::each_owner(const char* category, const std::vector<storage::Owner>& owners,
                                      const OwnerFn& pass) {
  progress_.set_owners_total(progress_.snapshot().value("owners_total", std::uint64_t{0}) + owners.size());
  std::exception_ptr fatal;
  std::function<awaitable<void>(std::size_t)> one = [&](std::size_t i) -> awaitable<void> {
    if (ctx_.cancelled() || fatal) co_return;
    const auto& owner = owners[i];
    std::optional<std::string> failed;
    try {
      DriveEnv env{svc_, ctx_, client_, writer_, progress_, summary, tenant_, downloads_};
      co_await pass(env, owner);
    } catch (const graph::GraphError& e) {
      if (graph::is_auth_failure(e)) fatal = std::current_exception();
      else failed = e.what();
    } catch (const graph::TokenError&) {
      fatal = std::current_exception();
    } catch (const std::exception& e) {
      failed = e.what();
    }
    if (fatal || ctx_.cancelled()) co_return;
    if (failed) {
      summary.problems.push_back(std::string(storage::to_string(owner.spec.kind)) + " '" +
                                 owner.spec.display_name.value_or(owner.spec.graph_id) + "' " + category + ": " +
                                 *failed);
      ++summary.owners_failed;
      co_await event("error", summary.problems.back());
    } else {
      ++summary.owners;
    }
    progress_.owner_done();
  };
  const auto parallel = static_cast<std::size_t>(std::max(1, svc_.opts.parallel_owners));
  co_await for_each_concurrent(parallel, owners.size(), one);
  if (fatal) std::rethrow_exception(fatal);
}

// The owners the run's selection names (all when it names none).
std::vector<storage::Owner> TenantRun::selected(std::vector<storage::Owner> owners) const {
  if (params_.owners.empty()) return owners;
  std::vector<storage::Owner> kept;
  for (auto& o : owners)
    if (std::any_of(params_.owners.begin(), params_.owners.end(), [&](const std::string& w) { return named(o, w); }))
      kept.push_back(std::move(o));
  return kept;
}

// Every team discovery found (narrowed by the selection: id or display name).
awaitable<void> TenantRun::backup_teams() {
  auto teams = co_await live_owners(storage::OwnerKind::team);
  teams = selected(std::move(teams));
  const OwnerFn pass = [](DriveEnv& env, const storage::Owner& team) -> awaitable<void> {
    co_await backup_team(env, team);
  };
  co_await each_owner("teams", teams, pass);
}

// The chats of every user (narrowed by the selection), each chat once however many
// of them are members, and the chats the selection names (by id, or by the name
// of a chat known from an earlier run), read by id. A tenant that does not let the
// app read chats (403: Chat.Read.All not granted, or the protected API not
// approved) has its chats skipped with the reason; a user without Teams has no
// chats. A run over the whole tenant whose every listing completed closes the
// chats no member listed (close_chat); a narrowed or partial run closes none.
awaitable<void> TenantRun::backup_chats() {
  progress_.set_phase("chats discovery");
  auto all_users = co_await live_owners(storage::OwnerKind::user);
  auto users = selected(all_users);
  auto known_chats = co_await live_owners(storage::OwnerKind::chat);
  // Chats the selection names: a known chat's id or name, or any well-formed chat id.
  std::vector<std::string> named_chats;
  for (auto& want : params_.owners) {
    if (std::any_of(all_users.begin(), all_users.end(), [&](const storage::Owner& o) { return named(o, want); }))
      continue;
    auto k = std::find_if(known_chats.begin(), known_chats.end(),
                          [&](const storage::Owner& o) { return named(o, want); });
    if (k != known_chats.end()) named_chats.push_back(k->spec.graph_id);
    else if (is_chat_id(want)) named_chats.push_back(want);
  }
  std::map<std::string, json> chats;  // by id, in the order of ids
  std::optional<std::string> refused;
  bool listing_failed = false;
  std::exception_ptr fatal;
  std::function<awaitable<void>(std::size_t)> one = [&](std::size_t i) -> awaitable<void> {
    if (ctx_.cancelled() || fatal || refused) co_return;
    std::optional<std::string> failed;
    std::vector<json> listed;
    try {
      DriveEnv env{svc_, ctx_, client_, writer_, progress_, summary, tenant_, downloads_};
      listed = co_await list_chats(env, users[i]);
    } catch (const graph::GraphError& e) {
      if (graph::is_auth_failure(e)) fatal = std::current_exception();
      else if (graph::is_access_denied(e)) refused = e.what();
      else if (!graph::is_not_found(e) && !graph::is_mailbox_not_enabled(e)) failed = e.what();
    } catch (const graph::TokenError&) {
      fatal = std::current_exception();
    }
    for (auto& c : listed)
      if (auto id = c.find("id"); id != c.end() && id->is_string()) chats.emplace(id->get<std::string>(), c);
    if (failed) {
      // Chats only this user is in would be missed: the run must not look complete.
      listing_failed = true;
      summary.problems.push_back("user '" + users[i].spec.upn.value_or(users[i].spec.graph_id) +
                                 "' chats not listed: " + *failed);
      ++summary.owners_failed;
      co_await event("error", summary.problems.back());
    }
  };
  const auto parallel = static_cast<std::size_t>(std::max(1, svc_.opts.parallel_owners));
  co_await for_each_concurrent(parallel, users.size(), one);
  if (fatal) std::rethrow_exception(fatal);
  if (refused) {
    const std::string msg_ = "chats of tenant '" + tenant_.spec.name + "' skipped: the app may not read them (" +
                             *refused + "; grant Chat.Read.All)";
    co_await event("warn", msg_);
    ++summary.categories_skipped;
    co_return;
  }
  for (auto& id : named_chats) {
    if (ctx_.cancelled() || chats.count(id)) continue;
    std::optional<json> got;
    std::optional<std::string> failed;
    try {
      DriveEnv env{svc_, ctx_, client_, writer_, progress_, summary, tenant_, downloads_};
      got = co_await get_chat(env, id);
      if (!got) failed = "Graph does not know it (404)";
    } catch (const graph::GraphError& e) {
      if (graph::is_auth_failure(e)) throw;
      failed = e.what();
    }
    if (failed) {
      summary.problems.push_back("chat '" + id + "' not backed up: " + *failed);
      ++summary.owners_failed;
      co_await event("error", summary.problems.back());
      continue;
    }
    chats.emplace(id, std::move(*got));
  }
  // Chats no member listed: only a run over the whole tenant whose every listing
  // completed may say so (a user without Teams, 404, lists none).
  std::vector<storage::Owner> vanished;
  if (params_.owners.empty() && !users.empty() && !listing_failed && !ctx_.cancelled())
    for (auto& o : known_chats)
      if (!chats.count(o.spec.graph_id)) vanished.push_back(o);
  std::vector<storage::OwnerSpec> specs;
  std::vector<const json*> listed;
  for (auto& [id, c] : chats) {
    storage::OwnerSpec s;
    s.kind = storage::OwnerKind::chat;
    s.graph_id = id;
    // A topic, or the members' names (1:1 chats have no topic).
    std::string name;
    if (auto t = c.find("topic"); t != c.end() && t->is_string()) name = t->get<std::string>();
    if (auto m = c.find("members"); name.empty() && m != c.end() && m->is_array())
      for (auto& member : *m)
        if (auto n = member.find("displayName"); n != member.end() && n->is_string())
          name += (name.empty() ? "" : ", ") + n->get<std::string>();
    s.display_name = name.empty() ? id : name;
    specs.push_back(std::move(s));
    listed.push_back(&c);
  }
  std::vector<storage::Owner> owners;
  if (!specs.empty()) {
    auto q_up = [&](PgConnection& c) { return cat_.upsert_owners(c, tenant_.id, specs); };
    owners = co_await db(q_up);
  }
  owners.insert(owners.end(), vanished.begin(), vanished.end());
  const OwnerFn pass = [&](DriveEnv& env, const storage::Owner& chat) -> awaitable<void> {
    auto c = chats.find(chat.spec.graph_id);
    if (c == chats.end()) {
      co_await close_chat(env, chat);
      co_return;
    }
    co_await backup_chat(env, chat, c->second);
  };
  co_await each_owner("teams", owners, pass);
}

// ------------------------------------------------------------------ the run

awaitable<scheduler::RunOutcome> TenantRun::run() {
  std::vector<storage::Owner> owners;
  owners = co_await discover();
  // Sites and teams are owners of their own: a run of only those backs up no user.
  if (std::none_of(params_.categories.begin(), params_.categories.end(),
                   [](Category c) { return c != Category::sharepoint && c != Category::teams; }))
    owners.clear();
  progress_.set_owners_total(owners.size());
  {
    const std::string msg_ = "backing up " + std::to_string(owners.size()) + " user(s) of tenant '" + tenant_.spec.name +
                             "'";
    co_await event("info", msg_);
  }
  std::exception_ptr fatal;
  std::function<awaitable<void>(std::size_t)> one_owner = [&](std::size_t i) -> awaitable<void> {
    if (ctx_.cancelled() || fatal) co_return;
    try {
      co_await backup_owner(owners[i]);
    } catch (...) {
      fatal = std::current_exception();
    }
  };
  const auto parallel = static_cast<std::size_t>(std::max(1, svc_.opts.parallel_owners));
  co_await for_each_concurrent(parallel, owners.size(), one_owner);
  if (fatal) std::rethrow_exception(fatal);
  if (!ctx_.cancelled() &&
      std::find(params_.categories.begin(), params_.categories.end(), Category::sharepoint) != params_.categories.end()) {
    DriveEnv env{svc_, ctx_, client_, writer_, progress_, summary, tenant_, downloads_};  // drive.cpp
    co_await backup_sharepoint(env, params_.owners, site_names_);
  }
  if (!ctx_.cancelled() &&
      std::find(params_.categories.begin(), params_.categories.end(), Category::teams) != params_.categories.end())
  {
    co_await backup_teams();
    if (!ctx_.cancelled()) co_await backup_chats();
  }
  progress_.set_phase("done");
  if (ctx_.cancelled()) co_return scheduler::RunOutcome{scheduler::RunState::cancelled, std::string("cancelled")};
  if (summary.owners_failed > 0) {
    std::string msg = std::to_string(summary.owners_failed) + " owner(s) failed: " + summary.problems.front();
    // Nothing at all done: a failure to retry. Some owners done: partial.
    co_return scheduler::RunOutcome{summary.owners == 0 && summary.owners_skipped == 0 ? scheduler::RunState::failed
                                                                                        : scheduler::RunState::partial,
                                    msg};
  }
  if (summary.items_faulted > 0)
    co_return scheduler::RunOutcome{scheduler::RunState::partial,
                                    std::to_string(summary.items_faulted) + " item(s) could not be read (see faults)"};
  co_return scheduler::RunOutcome{scheduler::RunState::succeeded, std::nullopt};
}

}  // namespace

awaitable<scheduler::RunOutcome> run_backup(BackupServices& svc, const BackupParams& params,
                                            scheduler::RunContext& ctx, BackupSummary* summary) {
  storage::Catalog cat;
  std::string tenant_ref = !params.tenant.empty() ? params.tenant : ctx.run().tenant_id.value_or("");
  if (tenant_ref.empty())
    co_return scheduler::RunOutcome{scheduler::RunState::failed,
                                    std::string("the backup names no tenant (job tenant or params 'tenant')")};
  auto q24_ = [&](PgConnection& c) {
    auto t = cat.get_tenant(c, tenant_ref);
    std::optional<storage::SealedSecret> s;
    if (t) s = cat.tenant_secret(c, t->id);
    return std::make_pair(t, s);
  };
  auto found = co_await svc.db.run(q24_);
  if (!found.first || !found.second)
    co_return scheduler::RunOutcome{scheduler::RunState::failed, "no tenant '" + tenant_ref + "'"};
  auto tenant = *found.first;
  if (tenant.spec.disabled)
    co_return scheduler::RunOutcome{scheduler::RunState::failed, "tenant '" + tenant.spec.name + "' is disabled"};

  auto ex = co_await asio::this_coro::executor;
  graph::GraphClient client(ex, tenant_endpoint(tenant, *found.second, svc.sealer), svc.opts.graph, svc.log);
  RepoWriter writer(svc.repo);
  scheduler::ProgressTracker progress;
  TenantRun run(svc, params, ctx, tenant, client, writer, progress);

  // Progress for the heartbeat (and so the API and the CLI) every two seconds.
  auto ticking = std::make_shared<bool>(true);
  asio::co_spawn(
      ex,
      [&ctx, &progress, ticking]() -> awaitable<void> {
        asio::steady_timer t(co_await asio::this_coro::executor);
        while (*ticking) {
          ctx.set_progress(progress.snapshot());
          t.expires_after(std::chrono::seconds(2));
          co_await t.async_wait(use_awaitable);
        }
      },
      [](std::exception_ptr) {});

  scheduler::RunOutcome out{scheduler::RunState::failed, std::nullopt};
  try {
    out = co_await run.run();
  } catch (const graph::TokenError& e) {
    out = {scheduler::RunState::failed, "tenant '" + tenant.spec.name + "': credentials refused: " + e.what()};
  } catch (const graph::GraphError& e) {
    out = {scheduler::RunState::failed,
           graph::is_auth_failure(e) || graph::is_access_denied(e)
               ? "tenant '" + tenant.spec.name + "': access refused: " + std::string(e.what())
               : std::string(e.what())};
  } catch (const std::exception& e) {
    out = {scheduler::RunState::failed, std::string(e.what())};
  }
  *ticking = false;
  // Whatever happened, nothing queued in the repository is left unflushed: blobs
  // of pages that were not committed become garbage for prune, never a lie.
  ctx.set_progress(progress.snapshot());
  if (summary) {
    *summary = run.summary;
    summary->bytes_read = progress.snapshot().value("bytes_read", 0LL);
    summary->graph = client.stats();
  }
  co_return out;
}

awaitable<scheduler::RunOutcome> BackupKind::execute(scheduler::RunContext& ctx) {
  BackupParams params;
  try {
    params = BackupParams::from_json(ctx.run().params);
  } catch (const Error& e) {
    co_return scheduler::RunOutcome{scheduler::RunState::failed, std::string(e.what())};
  }
  co_return co_await run_backup(services_, params, ctx);
}

}  // namespace m365vault::backup
