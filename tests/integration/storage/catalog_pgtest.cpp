// The catalog against the real PostgreSQL of the test command: tenants, owners,
// the page commit (replay, moves, deletions, resync rounds), snapshots, faults,
// point-in-time browsing and ranked search.
#include <catch2/catch.hpp>

#include <set>

#include "m365vault/core/error.hpp"
#include "m365vault/storage/catalog.hpp"
#include "m365vault/storage/migrate.hpp"
#include "support/pg.hpp"
#include "support/log.hpp"

using namespace m365vault;
using namespace m365vault::storage;
using m365vault::test::ScratchDatabase;

namespace {

spdlog::logger& quiet() {
  static spdlog::logger l = *test::quiet_logger();
  return l;
}

struct Fixture {
  ScratchDatabase db;
  PgConnection c;
  Catalog cat;
  std::string tenant, owner;
  Fixture() : c(PgConnection::connect(db.conninfo())) {
    migrate(c, builtin_migrations(), quiet());
    tenant = make_tenant("contoso");
    owner = cat.upsert_owners(c, tenant, {{OwnerKind::user, "u-1", "Adele Vance", "adele@contoso.com", "adele@contoso.com"}})
                .at(0)
                .id;
  }
  std::string make_tenant(const std::string& name) {
    auto id = Catalog::new_tenant_id();
    TenantSpec s;
    s.name = name;
    s.directory_id = name + ".onmicrosoft.com";
    s.client_id = "client-" + name;
    return cat.create_tenant(c, id, s, {Catalog::secret_context(id), "sealed:" + name}).id;
  }
  long long count(const std::string& sql) { return c.exec(sql).get_int(0, 0); }
  std::string now() { return cat.resolve_at(c, std::nullopt); }
};

std::string blob(char fill) { return std::string(32, fill); }

ItemChange message(const std::string& id, const std::string& folder, const std::string& subject,
                   const std::string& change_key, char content = 'a') {
  ItemChange m;
  m.graph_id = id;
  m.kind = "message";
  m.container_graph_id = folder;
  m.change_key = change_key;
  m.name = subject;
  m.subject = subject;
  m.sender = "Megan Bowen <megan@contoso.com>";
  m.recipients = {"adele@contoso.com"};
  m.received_at = "2024-03-01T10:00:00Z";
  m.size = 1000;
  m.content_type = "message/rfc822";
  m.content_blobs = {blob(content)};
  m.content_sha256 = blob(static_cast<char>(content + 1));
  m.content_size = 1000;
  return m;
}

PageCommit page_of(const std::string& owner, const std::string& folder, std::vector<ItemChange> items,
                   const std::string& cursor) {
  PageCommit p;
  p.owner_id = owner;
  p.category = Category::mail;
  p.container_graph_id = folder;
  p.items = std::move(items);
  p.cursor = cursor;
  return p;
}

PageCommit folders(const std::string& owner, std::vector<ContainerChange> cs, const std::string& cursor) {
  PageCommit p;
  p.owner_id = owner;
  p.category = Category::mail;
  p.containers = std::move(cs);
  p.cursor = cursor;
  return p;
}

std::vector<std::string> names(const BrowsePage& p) {
  std::vector<std::string> out;
  for (auto& c : p.containers) out.push_back(c.display_name + "/");
  for (auto& i : p.items) out.push_back(i.name);
  return out;
}

}  // namespace

TEST_CASE("catalog: tenants keep sealed credentials and never show them", "[pg]") {
  Fixture f;
  auto t = f.cat.get_tenant(f.c, "contoso");
  REQUIRE(t);
  auto j = t->to_json();
  CHECK(j["auth"] == "secret");
  CHECK(j["tenant_id"] == "contoso.onmicrosoft.com");
  CHECK(j.dump().find("sealed") == std::string::npos);
  auto secret = f.cat.tenant_secret(f.c, t->id);
  REQUIRE(secret);
  CHECK(secret->sealed == "sealed:contoso");
  CHECK(secret->context == Catalog::secret_context(t->id));

  TenantSpec dup = t->spec;
  CHECK_THROWS_MATCHES(f.cat.create_tenant(f.c, Catalog::new_tenant_id(), dup, {"x", "y"}), Error,
                       Catch::Predicate<Error>([](const Error& e) { return e.code() == Errc::conflict; }));
  TenantSpec cert = t->spec;
  cert.name = "fabrikam";
  cert.auth = AuthKind::certificate;
  CHECK_THROWS_WITH(f.cat.create_tenant(f.c, Catalog::new_tenant_id(), cert, {"x", "y"}), Catch::Contains("certificate"));

  auto spec = t->spec;
  spec.graph_url = "https://127.0.0.1:8443";
  spec.disabled = true;
  auto u = f.cat.update_tenant(f.c, t->id, spec, std::nullopt);
  CHECK(u.spec.graph_url == std::optional<std::string>("https://127.0.0.1:8443"));
  CHECK(f.cat.tenant_secret(f.c, t->id)->sealed == "sealed:contoso");  // kept when not replaced
  f.cat.update_tenant(f.c, t->id, spec, SealedSecret{"ctx2", "sealed:new"});
  CHECK(f.cat.tenant_secret(f.c, t->id)->sealed == "sealed:new");

  auto other = f.make_tenant("fabrikam");
  CHECK(f.cat.list_tenants(f.c).size() == 2);
  CHECK(f.cat.list_tenants(f.c, Scope{other}).size() == 1);
  CHECK_FALSE(f.cat.get_tenant(f.c, t->id, Scope{other}));
  CHECK(f.cat.delete_tenant(f.c, other));
  CHECK_FALSE(f.cat.delete_tenant(f.c, other));
}

TEST_CASE("catalog: owners are upserted in bulk, skipped with a reason, listed by pages", "[pg]") {
  Fixture f;
  std::vector<OwnerSpec> many;
  for (int i = 0; i < 25; ++i)
    many.push_back({OwnerKind::user, "g-" + std::to_string(i), "User " + std::to_string(100 + i), std::nullopt, std::nullopt});
  many.push_back({OwnerKind::group, "g-0", "Group zero", std::nullopt, std::nullopt});  // same graph id, other kind
  auto first = f.cat.upsert_owners(f.c, f.tenant, many);
  REQUIRE(first.size() == 26);
  auto again = f.cat.upsert_owners(f.c, f.tenant, many);
  CHECK(again[3].id == first[3].id);
  CHECK(f.count("SELECT count(*) FROM owners") == 27);

  f.cat.set_owner_state(f.c, first[0].id, OwnerState::skipped, std::string("mailbox not enabled"));
  f.cat.upsert_owners(f.c, f.tenant, {many[0]});
  auto o = f.cat.get_owner(f.c, first[0].id);
  CHECK(o->state == OwnerState::skipped);  // rediscovery does not undo a skip
  CHECK(o->skip_reason == std::optional<std::string>("mailbox not enabled"));

  std::set<std::string> seen;
  OwnerFilter filter;
  filter.limit = 10;
  int pages = 0;
  for (;;) {
    auto page = f.cat.list_owners(f.c, f.tenant, filter);
    for (auto& x : page.owners) CHECK(seen.insert(x.id).second);
    ++pages;
    if (!page.next_cursor) break;
    filter.cursor = page.next_cursor;
  }
  CHECK(seen.size() == 27);
  CHECK(pages == 3);
  filter = {};
  filter.state = OwnerState::skipped;
  CHECK(f.cat.list_owners(f.c, f.tenant, filter).owners.size() == 1);
}

TEST_CASE("catalog: a page commits items and its cursor at once, and a replay adds nothing", "[pg]") {
  Fixture f;
  auto snap = f.cat.begin_snapshot(f.c, f.owner, Category::mail, "99999999-0000-4000-8000-000000000001");
  f.cat.commit_page(f.c, folders(f.owner, {{"inbox", "root", "Inbox", "inbox", false}}, "hier-delta-1"));
  auto p = page_of(f.owner, "inbox", {message("m1", "inbox", "hello", "ck1"), message("m2", "inbox", "world", "ck1")},
                   "next-1");
  p.snapshot_id = snap.id;
  auto r = f.cat.commit_page(f.c, p);
  CHECK(r.items_added == 2);
  CHECK(r.bytes_added == 2000);
  CHECK(f.cat.delta_state(f.c, f.owner, Category::mail, std::string("inbox")).cursor ==
        std::optional<std::string>("next-1"));

  auto replay = f.cat.commit_page(f.c, p);  // a crash after commit, before acknowledging
  CHECK(replay.items_added == 0);
  CHECK(replay.items_unchanged == 2);
  CHECK(f.count("SELECT count(*) FROM item_versions") == 2);
  CHECK(f.count("SELECT count(*) FROM items") == 2);

  // The same item twice in one page (Graph repeats items): the last one wins.
  auto dup = page_of(f.owner, "inbox", {message("m3", "inbox", "first", "a"), message("m3", "inbox", "second", "b")},
                     "next-2");
  dup.snapshot_id = snap.id;
  CHECK(f.cat.commit_page(f.c, dup).items_added == 1);
  CHECK(f.count("SELECT count(*) FROM item_versions WHERE name = 'second'") == 1);
  CHECK(f.count("SELECT count(*) FROM item_versions WHERE name = 'first'") == 0);

  auto done = f.cat.complete_snapshot(f.c, snap.id, SnapshotState::complete);
  CHECK(done.items_added == 3);
  CHECK(done.items_total == std::optional<long long>(3));
  CHECK(done.completed_at);
  // A resumed run gets its snapshot back.
  CHECK(f.cat.begin_snapshot(f.c, f.owner, Category::mail, "99999999-0000-4000-8000-000000000001").id == snap.id);

  // The blobs every version refers to, for prune.
  CHECK(f.count("SELECT count(*) FROM blob_refs") == 1);  // every test message has the same content
}

TEST_CASE("catalog: a page fails whole, leaving the cursor where it was", "[pg]") {
  Fixture f;
  f.cat.commit_page(f.c, page_of(f.owner, "inbox", {message("m1", "inbox", "hello", "ck1")}, "next-1"));
  auto bad = page_of(f.owner, "inbox", {message("m2", "inbox", "ok", "ck1"), message("m3", "inbox", "bad", "ck1")},
                     "next-2");
  bad.items[1].received_at = "not a time";
  CHECK_THROWS_MATCHES(f.cat.commit_page(f.c, bad), Error,
                       Catch::Predicate<Error>([](const Error& e) { return e.code() == Errc::bad_request; }));
  CHECK(f.count("SELECT count(*) FROM item_versions") == 1);
  CHECK(f.cat.delta_state(f.c, f.owner, Category::mail, std::string("inbox")).cursor ==
        std::optional<std::string>("next-1"));

  // A worker whose lease was taken over cannot commit over its successor's progress.
  auto stale = page_of(f.owner, "inbox", {message("m2", "inbox", "ok", "ck1")}, "next-2");
  stale.expected_cursor = "next-0";
  CHECK_THROWS_MATCHES(f.cat.commit_page(f.c, stale), Error,
                       Catch::Predicate<Error>([](const Error& e) { return e.code() == Errc::conflict; }));
  stale.expected_cursor = "next-1";
  CHECK(f.cat.commit_page(f.c, stale).items_added == 1);
}

TEST_CASE("catalog: a move keeps the item and the old folder's removal does not delete it", "[pg]") {
  Fixture f;
  f.cat.commit_page(f.c, folders(f.owner, {{"inbox", "root", "Inbox", "inbox", false},
                                           {"archive", "root", "Archive", std::nullopt, false}},
                                 "h1"));
  f.cat.commit_page(f.c, page_of(f.owner, "inbox", {message("m1", "inbox", "report", "ck1")}, "i1"));
  auto item_id = f.cat.known_items(f.c, f.owner, Category::mail, {"m1"}).at("m1").item_id;
  auto before_move = f.now();

  // Graph: the archive's delta reports it, then the inbox's delta reports it removed.
  f.cat.commit_page(f.c, page_of(f.owner, "archive", {message("m1", "archive", "report", "ck2")}, "a1"));
  auto removal = page_of(f.owner, "inbox", {}, "i2");
  removal.removed_items = {"m1"};
  CHECK(f.cat.commit_page(f.c, removal).items_closed == 0);

  auto known = f.cat.known_items(f.c, f.owner, Category::mail, {"m1"});
  REQUIRE(known.count("m1"));
  CHECK(known.at("m1").item_id == item_id);
  CHECK(known.at("m1").container_graph_id == std::optional<std::string>("archive"));
  auto versions = f.cat.item_versions(f.c, item_id, std::nullopt, 10);
  REQUIRE(versions.versions.size() == 2);
  CHECK(versions.versions[0].valid_to == std::nullopt);  // newest first
  CHECK(versions.versions[1].valid_to == std::optional<std::string>(versions.versions[0].valid_from));

  // The item was in the inbox then, and is in the archive now.
  auto then = f.cat.get_item(f.c, item_id, before_move);
  auto now = f.cat.get_item(f.c, item_id, std::nullopt);
  REQUIRE(then);
  REQUIRE(now);
  CHECK(then->container_id != now->container_id);
}

TEST_CASE("catalog: a deletion closes the item, and the view before it still shows it", "[pg]") {
  Fixture f;
  f.cat.commit_page(f.c, folders(f.owner, {{"inbox", "root", "Inbox", "inbox", false}}, "h1"));
  f.cat.commit_page(f.c, page_of(f.owner, "inbox", {message("m1", "inbox", "alpha", "ck"), message("m2", "inbox", "beta", "ck")},
                                 "i1"));
  auto before = f.now();
  auto del = page_of(f.owner, "inbox", {}, "i2");
  del.removed_items = {"m2"};
  CHECK(f.cat.commit_page(f.c, del).items_closed == 1);
  CHECK(f.cat.commit_page(f.c, del).items_closed == 0);  // replayed: nothing more

  auto roots = f.cat.browse(f.c, {f.owner, Category::mail, std::nullopt, std::nullopt, std::nullopt, 100, {}});
  REQUIRE(roots.containers.size() == 1);
  auto inbox = roots.containers[0].id;
  CHECK(roots.containers[0].path == "Inbox");
  auto now = f.cat.browse(f.c, {f.owner, Category::mail, inbox, std::nullopt, std::nullopt, 100, {}});
  auto then = f.cat.browse(f.c, {f.owner, Category::mail, inbox, before, std::nullopt, 100, {}});
  CHECK(names(now) == std::vector<std::string>{"alpha"});
  CHECK(names(then) == std::vector<std::string>{"alpha", "beta"});

  // A snapshot id is an instant too: its completed_at.
  auto snap = f.cat.begin_snapshot(f.c, f.owner, Category::mail, "99999999-0000-4000-8000-000000000002");
  f.cat.complete_snapshot(f.c, snap.id, SnapshotState::complete);
  auto deleted_again = page_of(f.owner, "inbox", {}, "i3");
  deleted_again.removed_items = {"m1"};
  f.cat.commit_page(f.c, deleted_again);
  CHECK(names(f.cat.browse(f.c, {f.owner, Category::mail, inbox, snap.id, std::nullopt, 100, {}})) ==
        std::vector<std::string>{"alpha"});
  CHECK(f.cat.browse(f.c, {f.owner, Category::mail, inbox, std::nullopt, std::nullopt, 100, {}}).items.empty());
}

TEST_CASE("catalog: browse pages through folders then items with a keyset cursor", "[pg]") {
  Fixture f;
  std::vector<ContainerChange> tree = {{"inbox", "root", "Inbox", "inbox", false}};
  for (int i = 0; i < 3; ++i) tree.push_back({"sub" + std::to_string(i), "inbox", "Sub " + std::to_string(i), std::nullopt, false});
  f.cat.commit_page(f.c, folders(f.owner, tree, "h1"));
  std::vector<ItemChange> ms;
  for (int i = 0; i < 7; ++i) ms.push_back(message("m" + std::to_string(i), "inbox", "msg " + std::to_string(i), "ck"));
  f.cat.commit_page(f.c, page_of(f.owner, "inbox", ms, "i1"));
  auto inbox = f.cat.browse(f.c, {f.owner, Category::mail, std::nullopt, std::nullopt, std::nullopt, 10, {}}).containers.at(0);
  std::vector<std::string> all;
  std::optional<std::string> cursor;
  int pages = 0;
  do {
    auto p = f.cat.browse(f.c, {f.owner, Category::mail, inbox.id, std::nullopt, cursor, 3, {}});
    for (auto& n : names(p)) all.push_back(n);
    cursor = p.next_cursor;
    ++pages;
  } while (cursor && pages < 10);
  CHECK(all == std::vector<std::string>{"Sub 0/", "Sub 1/", "Sub 2/", "msg 0", "msg 1", "msg 2", "msg 3", "msg 4",
                                        "msg 5", "msg 6"});
  auto subs = f.cat.browse(f.c, {f.owner, Category::mail, inbox.id, std::nullopt, std::nullopt, 10, {}}).containers;
  CHECK(subs.at(0).path == "Inbox/Sub 0");

  // A rename is a new container version; the path follows.
  f.cat.commit_page(f.c, folders(f.owner, {{"inbox", "root", "Posteingang", "inbox", false}}, "h2"));
  subs = f.cat.browse(f.c, {f.owner, Category::mail, inbox.id, std::nullopt, std::nullopt, 10, {}}).containers;
  CHECK(subs.at(0).path == "Posteingang/Sub 0");

  // Removing a folder closes its subtree and everything in it.
  auto r = f.cat.commit_page(f.c, folders(f.owner, {{"inbox", std::nullopt, "", std::nullopt, true}}, "h3"));
  CHECK(r.items_closed == 7);
  CHECK(f.cat.browse(f.c, {f.owner, Category::mail, std::nullopt, std::nullopt, std::nullopt, 10, {}}).containers.empty());

  CHECK_THROWS_MATCHES(f.cat.browse(f.c, {f.owner, Category::mail, inbox.id, std::nullopt, std::string("garbage!"), 3, {}}),
                       Error, Catch::Predicate<Error>([](const Error& e) { return e.code() == Errc::bad_request; }));
  // An unknown owner, and a folder asked for under another category or as another
  // owner's, are not found, each named (one statement checks both).
  auto not_found_naming = [](const std::string& what) {
    return Catch::Predicate<Error>([what](const Error& e) {
      return e.code() == Errc::not_found && std::string(e.what()).find(what) != std::string::npos;
    });
  };
  const std::string nobody = "00000000-0000-4000-8000-00000000beef";
  CHECK_THROWS_MATCHES(f.cat.browse(f.c, {nobody, Category::mail, std::nullopt, std::nullopt, std::nullopt, 3, {}}),
                       Error, not_found_naming("owner '" + nobody + "'"));
  CHECK_THROWS_MATCHES(f.cat.browse(f.c, {f.owner, Category::contacts, inbox.id, std::nullopt, std::nullopt, 3, {}}),
                       Error, not_found_naming("container '" + inbox.id + "'"));
  CHECK_THROWS_MATCHES(f.cat.browse(f.c, {nobody, Category::mail, inbox.id, std::nullopt, std::nullopt, 3, {}}),
                       Error, not_found_naming("owner '" + nobody + "'"));
  // Another tenant's scope sees nothing of this owner.
  auto other = f.make_tenant("fabrikam");
  CHECK_THROWS_MATCHES(f.cat.browse(f.c, {f.owner, Category::mail, inbox.id, std::nullopt, std::nullopt, 3, Scope{other}}),
                       Error, Catch::Predicate<Error>([](const Error& e) { return e.code() == Errc::not_found; }));
}

TEST_CASE("catalog: a resync round closes only what the completed round did not report", "[pg]") {
  Fixture f;
  f.cat.commit_page(f.c, page_of(f.owner, "inbox",
                                 {message("a", "inbox", "a", "1"), message("b", "inbox", "b", "1"),
                                  message("c", "inbox", "c", "1"), message("d", "inbox", "d", "1")},
                                 "delta-1"));
  auto round = f.cat.start_round(f.c, f.owner, Category::mail, std::string("inbox"), RoundCovers::items);
  auto st = f.cat.delta_state(f.c, f.owner, Category::mail, std::string("inbox"));
  CHECK(st.round_id == std::optional<long long>(round));
  CHECK_FALSE(st.cursor);

  // Page 1 of the round: a changed, b unchanged (the pipeline did not download it).
  auto p1 = page_of(f.owner, "inbox", {message("a", "inbox", "a2", "2")}, "next-1");
  p1.unchanged_items = {"b"};
  auto r1 = f.cat.commit_page(f.c, p1);
  CHECK(r1.items_changed == 1);
  CHECK_FALSE(r1.round_completed);
  // A crash here: nothing is closed yet, the round resumes from next-1.
  CHECK(f.count("SELECT count(*) FROM item_versions WHERE to_at IS NULL") == 4);
  CHECK(f.cat.delta_state(f.c, f.owner, Category::mail, std::string("inbox")).cursor ==
        std::optional<std::string>("next-1"));

  // The last page (deltaLink) reports c (same change key); d is gone.
  auto p2 = page_of(f.owner, "inbox", {message("c", "inbox", "c", "1")}, "delta-2");
  p2.delta_link = true;
  auto r2 = f.cat.commit_page(f.c, p2);
  CHECK(r2.round_completed);
  CHECK(r2.items_unchanged == 1);
  CHECK(r2.items_closed == 1);
  auto open = f.cat.known_items(f.c, f.owner, Category::mail, {"a", "b", "c", "d"});
  CHECK(open.size() == 3);
  CHECK_FALSE(open.count("d"));
  CHECK_FALSE(f.cat.delta_state(f.c, f.owner, Category::mail, std::string("inbox")).round_id);

  // An ordinary deltaLink page afterwards closes nothing.
  auto p3 = page_of(f.owner, "inbox", {}, "delta-3");
  p3.delta_link = true;
  CHECK(f.cat.commit_page(f.c, p3).items_closed == 0);
}

TEST_CASE("catalog: a hierarchy round closes unseen folders, not the items of seen ones", "[pg]") {
  Fixture f;
  f.cat.commit_page(f.c, folders(f.owner, {{"inbox", "root", "Inbox", "inbox", false},
                                           {"old", "root", "Old", std::nullopt, false}},
                                 "h1"));
  f.cat.commit_page(f.c, page_of(f.owner, "inbox", {message("a", "inbox", "a", "1")}, "i1"));
  f.cat.commit_page(f.c, page_of(f.owner, "old", {message("b", "old", "b", "1")}, "o1"));
  f.cat.start_round(f.c, f.owner, Category::mail, std::nullopt, RoundCovers::containers);
  auto p = folders(f.owner, {{"inbox", "root", "Inbox", "inbox", false}}, "h2");
  p.delta_link = true;
  auto r = f.cat.commit_page(f.c, p);
  CHECK(r.round_completed);
  CHECK(r.items_closed == 1);  // b, in the vanished folder
  CHECK(f.cat.known_items(f.c, f.owner, Category::mail, {"a", "b"}).size() == 1);
}

TEST_CASE("catalog: faults are recorded per item and run, and resolved when the item is stored", "[pg]") {
  Fixture f;
  const std::string run1 = "99999999-0000-4000-8000-00000000000a", run2 = "99999999-0000-4000-8000-00000000000b";
  auto snap = f.cat.begin_snapshot(f.c, f.owner, Category::mail, run1);
  f.cat.record_fault(f.c, run1, f.owner, Category::mail, "bad-1", "ErrorCorruptData", std::string("ErrorCorruptData"), snap.id);
  f.cat.record_fault(f.c, run1, f.owner, Category::mail, "bad-1", "ErrorCorruptData", std::string("ErrorCorruptData"), snap.id);
  f.cat.record_fault(f.c, run1, f.owner, Category::mail, "bad-2", "404 after listing", std::nullopt, snap.id);
  auto faults = f.cat.list_faults(f.c, run1, std::nullopt, 10);
  REQUIRE(faults.size() == 2);
  CHECK(faults[0].attempts == 2);
  CHECK(f.cat.complete_snapshot(f.c, snap.id, SnapshotState::partial).faults == 2);
  CHECK(f.cat.list_faults(f.c, run1, faults[0].id, 10).size() == 1);
  CHECK(f.cat.open_faults(f.c, f.owner, Category::mail).size() == 2);

  // The next run retries bad-1 and succeeds.
  f.cat.commit_page(f.c, page_of(f.owner, "inbox", {message("bad-1", "inbox", "recovered", "1")}, "i1"));
  auto open = f.cat.open_faults(f.c, f.owner, Category::mail);
  REQUIRE(open.size() == 1);
  CHECK(open[0].item_graph_id == "bad-2");
  f.cat.record_fault(f.c, run2, f.owner, Category::mail, "bad-2", "404 after listing");
  CHECK(f.cat.list_faults(f.c, run2, std::nullopt, 10).size() == 1);
  CHECK(f.cat.resolve_faults(f.c, f.owner, Category::mail, {"bad-2"}) == 2);  // both runs' records
  CHECK(f.cat.open_faults(f.c, f.owner, Category::mail).empty());
}

TEST_CASE("catalog: snapshots list newest first by pages, scoped to a tenant", "[pg]") {
  Fixture f;
  for (int i = 0; i < 5; ++i) {
    auto s = f.cat.begin_snapshot(f.c, f.owner, Category::mail, "99999999-0000-4000-8000-00000000010" + std::to_string(i));
    f.cat.complete_snapshot(f.c, s.id, SnapshotState::complete);
  }
  SnapshotFilter filter;
  filter.limit = 2;
  std::vector<std::string> started;
  for (int guard = 0; guard < 10; ++guard) {
    auto page = f.cat.list_snapshots(f.c, filter);
    for (auto& s : page.snapshots) started.push_back(s.started_at);
    if (!page.next_cursor) break;
    filter.cursor = page.next_cursor;
  }
  REQUIRE(started.size() == 5);
  CHECK(std::is_sorted(started.rbegin(), started.rend()));
  auto other = f.make_tenant("fabrikam");
  CHECK(f.cat.list_snapshots(f.c, {}, Scope{other}).snapshots.empty());
  SnapshotFilter by_owner;
  by_owner.owner_id = f.owner;
  by_owner.category = Category::mail;
  CHECK(f.cat.list_snapshots(f.c, by_owner).snapshots.size() == 5);
}

TEST_CASE("catalog: search ranks subject matches first, pages, and stays in its tenant", "[pg]") {
  Fixture f;
  auto in_subject = message("s1", "inbox", "quarterly budget review", "1");
  auto in_preview = message("s2", "inbox", "lunch", "1");
  in_preview.body_preview = "we should talk about the budget at some point";
  auto by_sender = message("s3", "inbox", "hello", "1");
  by_sender.sender = "Budget Office <budget@contoso.com>";
  auto unrelated = message("s4", "inbox", "holiday photos", "1");
  f.cat.commit_page(f.c, page_of(f.owner, "inbox", {in_preview, unrelated, by_sender, in_subject}, "i1"));

  SearchQuery q;
  q.q = "budget";
  auto r = f.cat.search(f.c, q);
  REQUIRE(r.items.size() == 3);
  CHECK(r.items[0].graph_id == "s1");
  CHECK(r.items[2].graph_id == "s2");
  CHECK(*r.items[0].rank >= *r.items[1].rank);

  // Pages of one: the same order, no repeats.
  q.limit = 1;
  std::vector<std::string> order;
  for (int guard = 0; guard < 10; ++guard) {
    auto p = f.cat.search(f.c, q);
    for (auto& i : p.items) order.push_back(i.graph_id);
    if (!p.next_cursor) break;
    q.cursor = p.next_cursor;
  }
  CHECK(order == std::vector<std::string>{"s1", "s3", "s2"});

  SearchQuery by_address;
  by_address.q = "megan";  // part of an address
  CHECK(f.cat.search(f.c, by_address).items.size() == 3);  // all but the budget office's
  SearchQuery phrase;
  phrase.q = "\"budget review\"";
  CHECK(f.cat.search(f.c, phrase).items.size() == 1);
  SearchQuery dated;
  dated.q = "budget";
  dated.after = "2024-04-01T00:00:00Z";
  CHECK(f.cat.search(f.c, dated).items.empty());

  auto other = f.make_tenant("fabrikam");
  SearchQuery scoped;
  scoped.q = "budget";
  scoped.scope = Scope{other};
  CHECK(f.cat.search(f.c, scoped).items.empty());
  SearchQuery hostile;
  hostile.q = "'); DROP TABLE items; -- & | !";
  CHECK_NOTHROW(f.cat.search(f.c, hostile));
  CHECK(f.count("SELECT count(*) FROM items") == 4);
}

TEST_CASE("catalog: search ranks the newest 2,000 matches, says so, pages through exactly them, and narrows to older ones",
          "[pg]") {
  Fixture f;
  // The oldest versions (received a year earlier): a rare word among them, then 2,000 newer "pile" messages.
  std::vector<ItemChange> old;
  for (int i = 0; i < 50; ++i) {
    old.push_back(message("old-" + std::to_string(i), "inbox", "pile number " + std::to_string(i), "1"));
    old.back().received_at = "2023-03-01T10:00:00Z";
  }
  old[7].subject = old[7].name = "pile needle";
  f.cat.commit_page(f.c, page_of(f.owner, "inbox", old, "p0"));
  std::vector<ItemChange> fresh;
  for (int i = 0; i < 2000; ++i) fresh.push_back(message("new-" + std::to_string(i), "inbox", "pile " + std::to_string(i), "1"));
  f.cat.commit_page(f.c, page_of(f.owner, "inbox", std::move(fresh), "p1"));
  REQUIRE(f.count("SELECT count(*) FROM item_versions WHERE subject LIKE 'pile%'") == 2050);

  SearchQuery q;
  q.q = "pile";
  q.limit = 500;
  std::set<std::string> seen;
  double last_rank = 1e9;
  int pages = 0;
  for (; pages < 100; ++pages) {
    auto p = f.cat.search(f.c, q);
    CHECK(p.ranked_among == 2000);  // every page tells that older matches were left out
    CHECK(p.truncated);
    for (auto& i : p.items) {
      CHECK(seen.insert(i.version_id).second);  // no repeats across pages
      CHECK(*i.rank <= last_rank);              // one order across pages
      last_rank = *i.rank;
    }
    if (!p.next_cursor) break;
    q.cursor = p.next_cursor;
  }
  CHECK(pages == 3);  // 4 pages of 500, the last without a cursor
  REQUIRE(seen.size() == 2000);
  // Exactly the newest: every "new-" message, none of the 50 older ones.
  auto newest = f.c.exec("SELECT v.id::text FROM item_versions v ORDER BY v.id DESC LIMIT 2000");
  std::set<std::string> expected;
  for (int i = 0; i < newest.rows(); ++i) expected.insert(std::string(newest.get(i, 0)));
  CHECK(seen == expected);

  SearchQuery rare;
  rare.q = "needle";
  auto r = f.cat.search(f.c, rare);
  REQUIRE(r.items.size() == 1);
  CHECK(r.items[0].graph_id == "old-7");
  CHECK(r.ranked_among == 1);
  CHECK_FALSE(r.truncated);

  // The date filter narrows before the cap: the 50 older "pile" messages, all of them.
  SearchQuery narrowed = q;
  narrowed.cursor.reset();
  narrowed.before = "2024-01-01T00:00:00Z";
  auto older = f.cat.search(f.c, narrowed);
  CHECK(older.ranked_among == 50);
  CHECK_FALSE(older.truncated);
  std::set<std::string> older_ids;
  for (auto& i : older.items) older_ids.insert(i.graph_id);
  CHECK(older_ids.size() == 50);
  CHECK(older_ids.count("old-7") == 1);

  // A page past the last one and a query matching nothing still report the count.
  SearchQuery past = narrowed;
  past.cursor = page_cursor(nlohmann::json::array({"0.0000001", "1"}));
  auto beyond = f.cat.search(f.c, past);
  CHECK(beyond.items.empty());
  CHECK(beyond.ranked_among == 50);
  SearchQuery nothing;
  nothing.q = "nowhere-to-be-found";
  auto none = f.cat.search(f.c, nothing);
  CHECK(none.items.empty());
  CHECK(none.ranked_among == 0);
  CHECK_FALSE(none.truncated);
}
