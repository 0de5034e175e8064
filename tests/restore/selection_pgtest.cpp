// The selection against the real PostgreSQL: containers with everything under
// them, whole owners, categories, a query, items; paths as they were at the
// instant; pages that resume; tenant scope.
#include <catch2/catch.hpp>

#include <functional>
#include <map>
#include <set>

#include "m365vault/core/error.hpp"
#include "m365vault/restore/selection.hpp"
#include "m365vault/storage/catalog.hpp"
#include "m365vault/storage/migrate.hpp"
#include "support/pg.hpp"
#include "support/log.hpp"

using namespace m365vault;
using namespace m365vault::storage;
using m365vault::restore::Selection;
using m365vault::restore::SelectionEnumerator;
using m365vault::test::ScratchDatabase;
using json = nlohmann::json;

namespace {

spdlog::logger& quiet() {
  static spdlog::logger l = *test::quiet_logger();
  return l;
}

ItemChange item(const std::string& id, const std::string& folder, const std::string& subject) {
  ItemChange m;
  m.graph_id = id;
  m.kind = "message";
  m.container_graph_id = folder;
  m.change_key = "ck-" + subject;
  m.name = subject;
  m.subject = subject;
  m.content_type = "message/rfc822";
  m.content_blobs = {std::string(32, 'a')};
  m.content_sha256 = std::string(32, 'b');
  m.content_size = 10;
  return m;
}

PageCommit page(const std::string& owner, Category cat, std::vector<ContainerChange> cs, std::vector<ItemChange> items,
                std::vector<std::string> removed = {}) {
  PageCommit p;
  p.owner_id = owner;
  p.category = cat;
  p.containers = std::move(cs);
  p.items = std::move(items);
  p.removed_items = std::move(removed);
  p.cursor = "c";
  return p;
}

// A tenant with two users; Adele's mail is Inbox/Projects/2024 and Archive, her
// contacts one folder. `t1` is the instant after that; afterwards Projects is
// renamed Work, the 2024 message deleted and a message added to the Inbox.
struct Fixture {
  ScratchDatabase db;
  PgConnection c;
  Catalog cat;
  std::string tenant, other_tenant, adele, megan, stranger, t1;
  std::map<std::string, std::string> item_ids, container_ids;  // by graph id

  Fixture() : c(PgConnection::connect(db.conninfo())) {
    migrate(c, builtin_migrations(), quiet());
    tenant = make_tenant("contoso");
    other_tenant = make_tenant("fabrikam");
    auto owners = cat.upsert_owners(c, tenant,
                                    {{OwnerKind::user, "u-adele", "Adele Vance", "adele@contoso.com", "adele@contoso.com"},
                                     {OwnerKind::user, "u-megan", "Megan Bowen", "megan@contoso.com", "megan@contoso.com"}});
    adele = owners[0].id;
    megan = owners[1].id;
    stranger = cat.upsert_owners(c, other_tenant, {{OwnerKind::user, "u-x", "X", "x@fabrikam.com", "x@fabrikam.com"}})[0].id;
    cat.commit_page(c, page(adele, Category::mail,
                            {{"inbox", "root", "Inbox", "inbox", false},
                             {"projects", "inbox", "Projects", std::nullopt, false},
                             {"y2024", "projects", "2024", std::nullopt, false},
                             {"archive", "root", "Archive", "archive", false},
                             {"empty", "projects", "Empty", std::nullopt, false}},
                            {item("m1", "inbox", "hello"), item("m2", "projects", "plan"),
                             item("m3", "y2024", "invoice march"), item("m4", "archive", "old news")}));
    cat.commit_page(c, page(adele, Category::contacts, {{"cf", std::nullopt, "Contacts", "contacts", false}},
                            {item("k1", "cf", "Alex Wilber")}));
    cat.commit_page(c, page(megan, Category::mail, {{"minbox", "root", "Inbox", "inbox", false}},
                            {item("n1", "minbox", "invoice april")}));
    cat.commit_page(c, page(stranger, Category::mail, {{"xinbox", "root", "Inbox", "inbox", false}},
                            {item("x1", "xinbox", "invoice secret")}));
    for (auto& [k, v] : ids("SELECT graph_id, id::text FROM items")) item_ids[k] = v;
    for (auto& [k, v] : ids("SELECT graph_id, id::text FROM containers")) container_ids[k] = v;
    t1 = cat.resolve_at(c, std::nullopt);
    cat.commit_page(c, page(adele, Category::mail, {{"projects", "inbox", "Work", std::nullopt, false}},
                            {item("m5", "inbox", "later")}, {"m3"}));
    item_ids["m5"] = ids("SELECT graph_id, id::text FROM items WHERE graph_id = 'm5'").at("m5");
  }
  std::map<std::string, std::string> ids(const std::string& sql) {
    std::map<std::string, std::string> out;
    auto r = c.exec(sql);
    for (int i = 0; i < r.rows(); ++i) out[std::string(r.get(i, 0))] = std::string(r.get(i, 1));
    return out;
  }
  std::string make_tenant(const std::string& name) {
    auto id = Catalog::new_tenant_id();
    TenantSpec s;
    s.name = name;
    s.directory_id = name + ".onmicrosoft.com";
    s.client_id = "client-" + name;
    return cat.create_tenant(c, id, s, {Catalog::secret_context(id), "sealed"}).id;
  }
  SelectionSpec spec(const json& j, const Scope& scope = {}) {
    return restore::resolve(c, cat, Selection::from_json(j), scope);
  }
};

// Everything an enumeration yields: "path/" for containers (in order), and
// "container path : item name" for items (sorted).
struct Walk {
  std::vector<std::string> containers;
  std::set<std::string> items;
  int pages = 0;
};

Walk walk(Fixture& f, const SelectionSpec& s, int page_size = 500) {
  SelectionEnumerator e(f.cat, s, page_size);
  Walk w;
  while (auto p = e.next(f.c)) {
    ++w.pages;
    CHECK((p->containers.empty() != p->items.empty()));
    CHECK(static_cast<int>(p->containers.size() + p->items.size()) <= page_size);
    for (auto& c : p->containers) w.containers.push_back(std::string(to_string(p->scope.category)) + ":" + c.container.path + "/");
    for (auto& i : p->items) w.items.insert(i.container_path.value_or("-") + " : " + i.version.name);
  }
  return w;
}

std::set<std::string> as_set(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

// Every container's parent (its path minus the last name) comes before it.
bool parents_first(const std::vector<std::string>& paths) {
  std::set<std::string> seen;
  for (auto& p : paths) {
    auto parent = p.substr(0, p.rfind('/', p.size() - 2) + 1);
    if (parent.find('/') != std::string::npos && !seen.count(parent)) return false;
    seen.insert(p);
  }
  return true;
}

Errc code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return Errc::internal;
}

}  // namespace

TEST_CASE("selection: a container selects everything under it, with its paths as they were", "[pg]") {
  Fixture f;
  auto then = walk(f, f.spec({{"tenant", "contoso"}, {"at", f.t1}, {"containers", {f.container_ids["projects"]}}}));
  // Parents before children: the Inbox (to recreate the path), Projects, its subfolders.
  CHECK(parents_first(then.containers));
  CHECK(as_set(then.containers) ==
        std::set<std::string>{"mail:Inbox/", "mail:Inbox/Projects/", "mail:Inbox/Projects/2024/", "mail:Inbox/Projects/Empty/"});
  CHECK(then.items == std::set<std::string>{"Inbox/Projects : plan", "Inbox/Projects/2024 : invoice march"});

  // Now: renamed, and the 2024 message gone.
  auto now = walk(f, f.spec({{"tenant", "contoso"}, {"containers", {f.container_ids["projects"]}}}));
  CHECK(parents_first(now.containers));
  CHECK(as_set(now.containers) ==
        std::set<std::string>{"mail:Inbox/", "mail:Inbox/Work/", "mail:Inbox/Work/2024/", "mail:Inbox/Work/Empty/"});
  CHECK(now.items == std::set<std::string>{"Inbox/Work : plan"});
}

TEST_CASE("selection: owners, categories, a query and listed items narrow as documented", "[pg]") {
  Fixture f;
  auto adele_at_t1 = walk(f, f.spec({{"tenant", "contoso"}, {"at", f.t1}, {"owners", {"ADELE@contoso.com"}}}));
  CHECK(adele_at_t1.items == std::set<std::string>{"Inbox : hello", "Inbox/Projects : plan",
                                                   "Inbox/Projects/2024 : invoice march", "Archive : old news",
                                                   "Contacts : Alex Wilber"});
  CHECK(adele_at_t1.containers.size() == 6);  // 5 mail folders + the contact folder
  CHECK(parents_first(adele_at_t1.containers));

  auto mail_now = walk(f, f.spec({{"tenant", "contoso"}, {"categories", {"mail"}}}));
  CHECK(mail_now.items == std::set<std::string>{"Inbox : hello", "Inbox/Work : plan", "Archive : old news",
                                                "Inbox : later", "Inbox : invoice april"});

  // A query keeps matching items and only the folders on their way.
  auto invoices = walk(f, f.spec({{"tenant", "contoso"}, {"at", f.t1}, {"categories", {"mail"}}, {"query", "invoice"}}));
  CHECK(invoices.items == std::set<std::string>{"Inbox/Projects/2024 : invoice march", "Inbox : invoice april"});
  // (two owners: their order is their ids', so compare as a set of four)
  CHECK(std::multiset<std::string>(invoices.containers.begin(), invoices.containers.end()) ==
        std::multiset<std::string>{"mail:Inbox/", "mail:Inbox/Projects/", "mail:Inbox/Projects/2024/", "mail:Inbox/"});

  auto one = walk(f, f.spec({{"tenant", "contoso"}, {"items", {f.item_ids["m1"]}}}));
  CHECK(one.items == std::set<std::string>{"Inbox : hello"});
  CHECK(one.containers == std::vector<std::string>{"mail:Inbox/"});
}

TEST_CASE("selection: pages stay within their size and a position resumes after the last page", "[pg]") {
  Fixture f;
  auto s = f.spec({{"tenant", "contoso"}, {"at", f.t1}, {"categories", {"mail", "contacts"}}});
  auto whole = walk(f, s);
  auto paged = walk(f, s, 1);
  CHECK(paged.items == whole.items);
  CHECK(paged.containers == whole.containers);
  CHECK(paged.pages == static_cast<int>(whole.items.size() + whole.containers.size()));

  // Stop after 4 pages, resume in a fresh enumerator: the rest, nothing twice.
  SelectionEnumerator first(f.cat, s, 1);
  std::vector<std::string> seen;
  auto key = [](const restore::SelectionPage& p) {
    return p.items.empty() ? "c" + p.containers[0].container.id : "i" + p.items[0].version.version_id;
  };
  for (int i = 0; i < 4; ++i) seen.push_back(key(*first.next(f.c)));
  SelectionEnumerator second(f.cat, s, 1);
  second.resume(json::parse(first.position().dump()));
  while (auto p = second.next(f.c)) seen.push_back(key(*p));
  CHECK(static_cast<int>(seen.size()) == paged.pages);
  CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == seen.size());
  CHECK(code_of([&] { second.resume(json{{"scope", -1}}); }) == Errc::bad_request);

  // The pinned form reads the same thing later.
  auto pinned = Selection::from_spec(s);
  CHECK(pinned.at == std::optional<std::string>(s.at));
  CHECK(walk(f, restore::resolve(f.c, f.cat, Selection::from_json(pinned.to_json()), {})).items == whole.items);
}

TEST_CASE("selection: scope by scope, each walked alone from its start, gives the whole walk", "[pg]") {
  Fixture f;
  auto s = f.spec({{"tenant", "contoso"}, {"at", f.t1}, {"categories", {"mail", "contacts"}}});
  for (int page_size : {1, 500}) {
    INFO(page_size);
    auto whole = walk(f, s, page_size);
    SelectionEnumerator scopes(f.cat, s, page_size);
    Walk w;
    int n = 0;
    while (auto sc = scopes.next_scope(f.c)) {
      ++n;
      SelectionEnumerator one(f.cat, s, page_size);
      one.only_scope(json::parse(sc->second.dump()));
      while (auto p = one.next(f.c)) {
        ++w.pages;
        CHECK(p->scope == sc->first);
        for (auto& c : p->containers)
          w.containers.push_back(std::string(to_string(p->scope.category)) + ":" + c.container.path + "/");
        for (auto& i : p->items) w.items.insert(i.container_path.value_or("-") + " : " + i.version.name);
      }
      // The scope's start resumes the whole walk from that scope on.
      SelectionEnumerator rest(f.cat, s, page_size);
      rest.resume(sc->second);
      auto first = rest.next(f.c);
      CHECK(first);
      if (first) CHECK(first->scope == sc->first);
    }
    CHECK(n >= 2);
    CHECK(w.pages == whole.pages);
    CHECK(w.containers == whole.containers);
    CHECK(w.items == whole.items);
  }
}

TEST_CASE("selection: referents are checked against the tenant, the narrowing and the instant", "[pg]") {
  Fixture f;
  // A token restricted to the other tenant sees nothing of this one.
  Scope fabrikam{f.other_tenant};
  CHECK(code_of([&] { f.spec({{"tenant", "contoso"}, {"categories", {"mail"}}}, fabrikam); }) == Errc::not_found);
  CHECK(code_of([&] { f.spec({{"tenant", "fabrikam"}, {"items", {f.item_ids["m1"]}}}, fabrikam); }) == Errc::not_found);
  CHECK(code_of([&] { f.spec({{"tenant", "contoso"}, {"owners", {"x@fabrikam.com"}}}); }) == Errc::not_found);
  CHECK_THROWS_WITH(f.spec({{"tenant", "contoso"}, {"items", {f.item_ids["x1"]}}}),
                    Catch::Contains("item '" + f.item_ids["x1"] + "' does not exist in this tenant"));
  // Outside the narrowing, or not there at the instant: said so.
  CHECK_THROWS_WITH(f.spec({{"tenant", "contoso"}, {"owners", {"megan@contoso.com"}}, {"items", {f.item_ids["m1"]}}}),
                    Catch::Contains("outside the selected owners or categories"));
  CHECK_THROWS_WITH(f.spec({{"tenant", "contoso"}, {"items", {f.item_ids["m3"]}}}), Catch::Contains("did not exist at"));
  CHECK_THROWS_WITH(f.spec({{"tenant", "contoso"}, {"at", f.t1}, {"items", {f.item_ids["m5"]}}}),
                    Catch::Contains("did not exist at"));
  CHECK(code_of([&] { f.spec({{"tenant", "contoso"}, {"at", "yesterday"}, {"categories", {"mail"}}}); }) ==
        Errc::bad_request);
  // The restricted token's own tenant works, and holds only its own.
  auto own = walk(f, f.spec({{"tenant", "fabrikam"}, {"categories", {"mail"}}}, fabrikam));
  CHECK(own.items == std::set<std::string>{"Inbox : invoice secret"});
  // A scope from elsewhere cannot be read through a spec of this tenant.
  auto s = f.spec({{"tenant", "contoso"}, {"categories", {"mail"}}});
  CHECK(code_of([&] { f.cat.selected_items(f.c, s, {f.stranger, Category::mail}, std::nullopt, 10); }) ==
        Errc::not_found);
}
