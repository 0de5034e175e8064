#include "m365vault/storage/migrate.hpp"

#include <openssl/evp.h>

#include <map>

namespace m365vault::storage {

namespace {

// pg_advisory_lock key: "m365vlt" as a number, fixed for all releases.
constexpr const char* kLockKey = "7301580129483551860";

std::string sha256_hex(const std::string& s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), md, &n, EVP_sha256(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

// Unlocks on every path out of migrate(), including exceptions.
struct AdvisoryLock {
  PgConnection& c;
  explicit AdvisoryLock(PgConnection& conn) : c(conn) { c.exec("SELECT pg_advisory_lock($1::bigint)", {kLockKey}); }
  ~AdvisoryLock() {
    try {
      if (c.healthy()) c.exec("SELECT pg_advisory_unlock($1::bigint)", {kLockKey});
    } catch (...) {
      // The lock dies with the session anyway.
    }
  }
};

}  // namespace

MigrateResult migrate(PgConnection& conn, const std::vector<Migration>& migrations, spdlog::logger& log) {
  AdvisoryLock lock(conn);
  conn.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
      " applied_at timestamptz NOT NULL DEFAULT now())");
  std::map<int, std::pair<std::string, std::string>> applied;
  auto rows = conn.exec("SELECT version, name, checksum FROM schema_migrations ORDER BY version");
  for (int i = 0; i < rows.rows(); ++i)
    applied[static_cast<int>(rows.get_int(i, 0))] = {std::string(rows.get(i, 1)), std::string(rows.get(i, 2))};

  MigrateResult result;
  result.from_version = applied.empty() ? 0 : applied.rbegin()->first;
  int known_max = migrations.empty() ? 0 : migrations.back().version;
  if (result.from_version > known_max)
    throw Error(Errc::conflict, "database schema is at version " + std::to_string(result.from_version) +
                                    " but this binary knows only up to " + std::to_string(known_max) +
                                    ": a newer m365vault release has used this database (upgrade this one)");
  for (auto& m : migrations) {
    auto sum = sha256_hex(m.sql);
    if (auto it = applied.find(m.version); it != applied.end()) {
      if (it->second.second != sum)
        throw Error(Errc::conflict, "migration " + std::to_string(m.version) + " '" + m.name +
                                        "' differs from the one applied to this database (checksum mismatch)");
      continue;
    }
    log.info("applying migration {} '{}'", m.version, m.name);
    conn.exec("BEGIN");
    try {
      // A migration file may hold several statements: send it as a simple query
      // (no parameters), the only statement here not built from constants and
      // parameters alone — its text is compiled into the binary.
      PgResultPtr r(PQexec(conn.raw(), m.sql.c_str()));
      auto st = PQresultStatus(r.get());
      if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        throw Error(Errc::database, "migration " + std::to_string(m.version) + " '" + m.name +
                                        "' failed: " + PQresultErrorMessage(r.get()));
      conn.exec("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                {std::to_string(m.version), m.name, sum});
      conn.exec("COMMIT");
    } catch (...) {
      try {
        conn.exec("ROLLBACK");
      } catch (...) {
      }
      throw;
    }
    result.applied.push_back(m.version);
  }
  result.to_version = known_max > result.from_version ? known_max : result.from_version;
  return result;
}

}  // namespace m365vault::storage
