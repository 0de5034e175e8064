#include <catch2/catch.hpp>

#include "m365vault/api/auth.hpp"
#include "m365vault/storage/migrate.hpp"
#include "support/pg.hpp"
#include "support/log.hpp"

using namespace m365vault;
using namespace m365vault::api;
using storage::PgConnection;
using m365vault::test::ScratchDatabase;

namespace {
PgConnection migrated(const ScratchDatabase& db) {
  auto c = PgConnection::connect(db.conninfo());
  spdlog::logger quiet = *test::quiet_logger();
  storage::migrate(c, storage::builtin_migrations(), quiet);
  return c;
}
}  // namespace

TEST_CASE("tokens: only a hash is stored, expired and revoked tokens do not authenticate", "[pg]") {
  ScratchDatabase db;
  auto c = migrated(db);
  auto t = TokenStore::create(c, "ops", Role::operator_, std::nullopt, std::nullopt, "test");
  CHECK(t.secret.rfind("m365v_", 0) == 0);
  CHECK(t.secret.size() == 6 + 43);  // 256 bits in base64url
  // The secret appears in no column; its SHA-256 is what is kept.
  CHECK(c.exec("SELECT count(*) FROM api_tokens t WHERE strpos(row_to_json(t)::text, $1) > 0", {t.secret})
            .get_int(0, 0) == 0);
  CHECK(c.exec("SELECT count(*) FROM api_tokens WHERE hash = sha256(convert_to($1, 'UTF8'))", {t.secret}).get_int(0, 0) ==
        1);
  auto p = TokenStore::authenticate(c, t.secret);
  REQUIRE(p);
  CHECK(p->role == Role::operator_);
  CHECK(p->name == "ops");
  CHECK_FALSE(TokenStore::authenticate(c, t.secret + "x"));

  auto old = TokenStore::create(c, "old", Role::viewer, std::nullopt, std::string("2020-01-01T00:00:00Z"), "test");
  CHECK_FALSE(TokenStore::authenticate(c, old.secret));
  REQUIRE(TokenStore::revoke(c, t.info.id));
  CHECK_FALSE(TokenStore::authenticate(c, t.secret));
  CHECK_FALSE(TokenStore::revoke(c, t.info.id));
}

TEST_CASE("tokens: last_used_at is written on first use and then at most once a minute", "[pg]") {
  ScratchDatabase db;
  auto c = migrated(db);
  auto t = TokenStore::create(c, "reader", Role::viewer, std::nullopt, std::nullopt, "test");
  auto last_used = [&] {
    auto r = c.exec("SELECT last_used_at::text FROM api_tokens WHERE id = $1::uuid", {t.info.id});
    return r.is_null(0, 0) ? std::string() : std::string(r.get(0, 0));
  };
  CHECK(last_used().empty());
  REQUIRE(TokenStore::authenticate(c, t.secret));
  const auto first = last_used();
  CHECK_FALSE(first.empty());
  // Within the minute: read only (same value, and no new row version).
  const auto xmin = std::string(c.exec("SELECT xmin::text FROM api_tokens WHERE id = $1::uuid", {t.info.id}).get(0, 0));
  REQUIRE(TokenStore::authenticate(c, t.secret));
  CHECK(last_used() == first);
  CHECK(std::string(c.exec("SELECT xmin::text FROM api_tokens WHERE id = $1::uuid", {t.info.id}).get(0, 0)) == xmin);
  // Older than a minute: written again.
  c.exec("UPDATE api_tokens SET last_used_at = now() - interval '2 minutes' WHERE id = $1::uuid", {t.info.id});
  const auto aged = last_used();
  REQUIRE(TokenStore::authenticate(c, t.secret));
  CHECK(last_used() > aged);
  // A revoked token neither authenticates nor has its last use moved.
  REQUIRE(TokenStore::revoke(c, t.info.id));
  c.exec("UPDATE api_tokens SET last_used_at = now() - interval '2 minutes' WHERE id = $1::uuid", {t.info.id});
  const auto revoked = last_used();
  CHECK_FALSE(TokenStore::authenticate(c, t.secret));
  CHECK(last_used() == revoked);
}

TEST_CASE("the audit log refuses UPDATE, DELETE and TRUNCATE", "[pg]") {
  ScratchDatabase db;
  auto c = migrated(db);
  AuditLog::record(c, {std::nullopt, "cli", std::nullopt, "local", "r1", "token create", std::nullopt, "token:x", 201,
                       nlohmann::json::object()});
  CHECK_THROWS_WITH(c.exec("UPDATE audit_log SET actor = 'someone else'"), Catch::Contains("append-only"));
  CHECK_THROWS_WITH(c.exec("DELETE FROM audit_log"), Catch::Contains("append-only"));
  CHECK_THROWS_WITH(c.exec("TRUNCATE audit_log"), Catch::Contains("append-only"));
  auto items = AuditLog::list(c, std::nullopt, 10);
  REQUIRE(items.size() == 1);
  CHECK(items[0]["actor"] == "cli");
}
