#pragma once
// Versioned SQL migrations (storage/migrations/NNNN_name.sql, embedded in the
// binary), applied in order, each in its own transaction, under a PostgreSQL
// advisory lock so that daemons starting together apply each one exactly once.
// Applied versions are recorded with a checksum in schema_migrations.
#include <spdlog/logger.h>

#include <string>
#include <vector>

#include "m365vault/storage/pg.hpp"

namespace m365vault::storage {

struct Migration {
  int version;
  std::string name;
  std::string sql;
};

// The migrations built into this binary, in version order.
const std::vector<Migration>& builtin_migrations();

struct MigrateResult {
  int from_version = 0;
  int to_version = 0;
  std::vector<int> applied;
};

// Applies what is missing. Throws Error(Errc::conflict) when the database holds a
// version this binary does not know (a newer release ran against it) or an
// applied migration whose text has changed; Error(Errc::database) when a
// migration fails (its transaction is rolled back; earlier ones stay).
MigrateResult migrate(PgConnection& conn, const std::vector<Migration>& migrations, spdlog::logger& log);

}  // namespace m365vault::storage
