// The restore's place in the scheduler, against the real PostgreSQL: a restore
// does not wait behind a running backup of its tenant (backups still exclude each
// other), and creating one checks and pins the request.
#include <catch2/catch.hpp>

#include "m365vault/core/error.hpp"
#include "m365vault/restore/restore.hpp"
#include "m365vault/scheduler/queue.hpp"
#include "m365vault/storage/catalog.hpp"
#include "m365vault/storage/migrate.hpp"
#include "support/pg.hpp"
#include "support/log.hpp"

using namespace m365vault;
using json = nlohmann::json;

namespace {
spdlog::logger& quiet() {
  static spdlog::logger l = *test::quiet_logger();
  return l;
}
}  // namespace

TEST_CASE("restore: runs beside a running backup of the same tenant, backups still one at a time", "[pg]") {
  test::ScratchDatabase db;
  auto c = storage::PgConnection::connect(db.conninfo());
  storage::migrate(c, storage::builtin_migrations(), quiet());
  storage::Catalog cat;
  auto tid = storage::Catalog::new_tenant_id();
  storage::TenantSpec ts;
  ts.name = "contoso";
  ts.directory_id = "contoso.onmicrosoft.com";
  ts.client_id = "app";
  cat.create_tenant(c, tid, ts, {storage::Catalog::secret_context(tid), "sealed"});
  auto owner = cat.upsert_owners(c, tid, {{storage::OwnerKind::user, "u-1", "Adele", "adele@contoso.com", "adele@contoso.com"}})[0];
  storage::PageCommit p;
  p.owner_id = owner.id;
  p.category = storage::Category::mail;
  p.containers = {{"inbox", std::nullopt, "Inbox", std::nullopt, false}};
  p.cursor = "c";
  cat.commit_page(c, p);

  scheduler::Queue q;
  const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  auto job = [&](const std::string& name) {
    scheduler::JobSpec js;
    js.name = name;
    js.kind = "backup";
    js.tenant_id = tid;
    return q.create_job(c, js, now).id;
  };
  const std::string w = "00000000-0000-4000-8000-00000000000a";
  auto nightly = q.enqueue(c, job("nightly"));
  REQUIRE(q.claim(c, w, {"backup"}, nightly));

  auto info = restore::create_restore(
      c, restore::RestoreRequest::from_json({{"selection", {{"tenant", "contoso"}, {"owners", {"adele@contoso.com"}}}}}),
      {}, std::string("test"));
  REQUIRE(info.run_id);
  CHECK(info.state == std::optional<std::string>("queued"));
  // Pinned: the tenant and the owner by id, the instant resolved, Teams left out.
  CHECK(info.request["selection"]["tenant"] == tid);
  CHECK(info.request["selection"]["owners"] == json::array({owner.id}));
  CHECK(info.request["selection"]["at"].get<std::string>().size() >= 20);
  CHECK(info.request["selection"]["categories"].size() == 5);
  auto claimed = q.claim(c, w, {"restore"}, *info.run_id);
  REQUIRE(claimed);  // not behind the running backup
  CHECK(claimed->params.value("restore", "") == info.id);

  auto hourly = q.enqueue(c, job("hourly"));
  CHECK_FALSE(q.claim(c, w, {"backup"}, hourly));  // a second backup of the tenant waits

  // Refusals name the problem.
  auto refused = [&](const json& j) {
    try {
      restore::create_restore(c, restore::RestoreRequest::from_json(j), {}, std::nullopt);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK_THAT(refused({{"selection", {{"tenant", "contoso"}, {"categories", {"teams"}}}}}),
             Catch::Contains("Teams messages cannot be restored") && Catch::Contains("export"));
  // A chat (as a team) holds only Teams messages: named as an owner, refused the same way.
  cat.upsert_owners(c, tid, {{storage::OwnerKind::chat, "19:u-1_u-2@unq.gbl.spaces", "Adele, Megan", std::nullopt,
                              std::nullopt}});
  CHECK_THAT(refused({{"selection", {{"tenant", "contoso"}, {"owners", {"19:u-1_u-2@unq.gbl.spaces"}}}}}),
             Catch::Contains("field 'selection.owners'") && Catch::Contains("Teams messages cannot be restored"));
  CHECK_THAT(refused({{"selection", {{"tenant", "contoso"}, {"owners", {"nobody@contoso.com"}}}}}),
             Catch::Contains("owner 'nobody@contoso.com' does not exist"));
  CHECK_THAT(refused({{"selection", {{"tenant", "contoso"}, {"owners", {"adele@contoso.com"}}}},
                      {"target", {{"owner", "megan@contoso.com"}}}}),
             Catch::Contains("owner 'megan@contoso.com' does not exist"));
  CHECK_THAT(refused({{"selection", {{"tenant", "contoso"}, {"categories", {"mail"}}}}, {"conflict", "overwrite"}}),
             Catch::Contains("field 'conflict'"));
  CHECK_THAT(refused({{"selection", {{"tenant", "contoso"}, {"categories", {"mail"}}}}, {"target", {{"path", "x"}}}}),
             Catch::Contains("field 'target.path'"));
  CHECK_THAT(refused({{"selection", {{"tenant", "contoso"}, {"categories", {"mail"}}}}, {"target", {{"folder", "a/b"}}}}),
             Catch::Contains("field 'target.folder'"));
  CHECK_THAT(refused({{"dry_run", true}}), Catch::Contains("field 'selection': required"));
  // A tenant-restricted caller cannot restore another tenant.
  CHECK_THAT(refused({{"selection", {{"tenant", "contoso"}, {"categories", {"mail"}}}}}), Catch::Contains("accepted"));
  try {
    restore::create_restore(c, restore::RestoreRequest::from_json({{"selection", {{"tenant", "contoso"}, {"categories", {"mail"}}}}}),
                            storage::Scope{"33333333-3333-4333-8333-333333333333"}, std::nullopt);
    FAIL("a restricted token restored another tenant");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::not_found);
  }
  // Listed newest first, and pages.
  auto page = restore::list_restores(c, {}, std::nullopt, std::nullopt, 1);
  REQUIRE(page.restores.size() == 1);
  REQUIRE(page.next_cursor);
  auto rest = restore::list_restores(c, {}, std::nullopt, page.next_cursor, 10);
  CHECK(rest.restores.size() == 1);
  CHECK_FALSE(rest.next_cursor);
  CHECK(restore::list_restores(c, {"33333333-3333-4333-8333-333333333333"}, std::nullopt, std::nullopt, 10).restores.empty());
}
