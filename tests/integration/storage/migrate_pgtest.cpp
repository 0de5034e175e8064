// Migrations and the libpq layer against the real PostgreSQL of the test command.
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <future>
#include <set>

#include "m365vault/storage/migrate.hpp"
#include "m365vault/storage/pg.hpp"
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
int count_rows(PgConnection& c, const std::string& sql) { return static_cast<int>(c.exec(sql).get_int(0, 0)); }
}  // namespace

TEST_CASE("migrations apply in order once and record their versions", "[pg]") {
  ScratchDatabase db;
  auto c = PgConnection::connect(db.conninfo());
  auto& all = builtin_migrations();
  REQUIRE_FALSE(all.empty());
  auto r = migrate(c, all, quiet());
  CHECK(r.from_version == 0);
  CHECK(r.to_version == all.back().version);
  CHECK(r.applied.size() == all.size());
  CHECK(count_rows(c, "SELECT count(*) FROM schema_migrations") == static_cast<int>(all.size()));
  CHECK(count_rows(c, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'instances'") == 1);

  auto again = migrate(c, all, quiet());
  CHECK(again.applied.empty());
  CHECK(again.from_version == all.back().version);
}

TEST_CASE("concurrent migrators apply each migration exactly once", "[pg]") {
  ScratchDatabase db;
  std::vector<Migration> ms = {
      {1, "a", "CREATE TABLE a (x int); INSERT INTO a VALUES (1);"},
      {2, "b", "CREATE TABLE b (x int); SELECT pg_sleep(0.2); INSERT INTO b VALUES (1);"},
      {3, "c", "INSERT INTO a VALUES (3);"},
  };
  std::vector<std::future<MigrateResult>> runs;
  for (int i = 0; i < 4; ++i)
    runs.push_back(std::async(std::launch::async, [&] {
      auto c = PgConnection::connect(db.conninfo());
      return migrate(c, ms, quiet());
    }));
  size_t applied = 0;
  for (auto& f : runs) applied += f.get().applied.size();
  CHECK(applied == ms.size());
  auto c = PgConnection::connect(db.conninfo());
  CHECK(count_rows(c, "SELECT count(*) FROM schema_migrations") == 3);
  CHECK(count_rows(c, "SELECT count(*) FROM a") == 2);  // 1 from migration 1, 3 from migration 3: once each
  CHECK(count_rows(c, "SELECT count(*) FROM b") == 1);
}

TEST_CASE("a failed migration rolls back alone and names itself", "[pg]") {
  ScratchDatabase db;
  auto c = PgConnection::connect(db.conninfo());
  std::vector<Migration> ms = {{1, "good", "CREATE TABLE good (x int);"},
                               {2, "bad", "CREATE TABLE half (x int); SELECT no_such_function();"}};
  CHECK_THROWS_WITH(migrate(c, ms, quiet()), Catch::Contains("migration 2 'bad' failed"));
  CHECK(count_rows(c, "SELECT count(*) FROM schema_migrations") == 1);
  CHECK(count_rows(c, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'half'") == 0);
  CHECK(count_rows(c, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'good'") == 1);
}

TEST_CASE("an edited or unknown newer migration stops the migrator", "[pg]") {
  ScratchDatabase db;
  auto c = PgConnection::connect(db.conninfo());
  migrate(c, {{1, "one", "CREATE TABLE one (x int);"}, {2, "two", "CREATE TABLE two (x int);"}}, quiet());
  try {
    migrate(c, {{1, "one", "CREATE TABLE one (x bigint);"}, {2, "two", "CREATE TABLE two (x int);"}}, quiet());
    FAIL("an edited migration was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::conflict);
    CHECK_THAT(e.what(), Catch::Contains("migration 1 'one' differs"));
  }
  try {
    migrate(c, {{1, "one", "CREATE TABLE one (x int);"}}, quiet());
    FAIL("a database newer than the binary was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::conflict);
    CHECK_THAT(e.what(), Catch::Contains("schema is at version 2"));
  }
}

TEST_CASE("statements are parameterised and SQL metacharacters stay data", "[pg]") {
  ScratchDatabase db;
  auto c = PgConnection::connect(db.conninfo());
  c.exec("CREATE TABLE t (v text)");
  const std::string hostile = "x'); DROP TABLE t; --";
  c.exec("INSERT INTO t (v) VALUES ($1)", {hostile});
  c.exec("INSERT INTO t (v) VALUES ($1)", {std::nullopt});
  auto r = c.exec("SELECT v FROM t ORDER BY v NULLS LAST");
  REQUIRE(r.rows() == 2);
  CHECK(r.get(0, 0) == hostile);
  CHECK(r.is_null(1, 0));
  try {
    c.exec("INSERT INTO t (v) VALUES ($1::int)", {std::string("nope")});
    FAIL("bad cast accepted");
  } catch (const PgError& e) {
    CHECK(e.sqlstate() == "22P02");
  }
}

TEST_CASE("a statement past its deadline fails with timeout instead of hanging", "[pg]") {
  ScratchDatabase db;
  auto c = PgConnection::connect(db.conninfo());
  auto t0 = std::chrono::steady_clock::now();
  try {
    c.exec("SELECT pg_sleep(10)", {}, std::chrono::milliseconds(300));
    FAIL("no timeout");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::timeout);
  }
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3));
  CHECK_FALSE(c.healthy());
}

TEST_CASE("Database runs statements on its pool and ping reports an unreachable server", "[pg]") {
  ScratchDatabase db;
  auto log = test::quiet_logger("db");
  Database good(db.conninfo(), 2, {}, log);
  auto f = [](PgConnection& c) { return c.exec("SELECT 40 + $1::int", {std::string("2")}).get_int(0, 0); };
  CHECK(good.with_connection<long long>(f) == 42);

  boost::asio::io_context ioc;
  std::optional<std::string> ok_reason = std::string("unset"), bad_reason;
  Database bad("host=/nonexistent-socket-dir dbname=x", 1, {}, log);
  boost::asio::co_spawn(ioc, [&]() -> boost::asio::awaitable<void> {
    ok_reason = co_await good.ping(std::chrono::milliseconds(2000));
    bad_reason = co_await bad.ping(std::chrono::milliseconds(2000));
  }, boost::asio::detached);
  ioc.run();
  CHECK_FALSE(ok_reason.has_value());
  REQUIRE(bad_reason.has_value());
  CHECK_THAT(*bad_reason, Catch::Contains("cannot connect"));
}
