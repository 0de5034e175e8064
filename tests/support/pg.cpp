#include "support/pg.hpp"

#include <random>

#include "m365vault/storage/pg.hpp"
#include "support/env.hpp"

namespace m365vault::test {

ScratchDatabase::ScratchDatabase() : admin_(require_service("M365VAULT_TEST_PG_URL")) {
  std::mt19937_64 rng{std::random_device{}()};
  name_ = "t_" + std::to_string(rng() % 1000000000000ULL);
  auto c = storage::PgConnection::connect(admin_);
  // A database name cannot be a parameter; this one is made of digits by us.
  c.exec("CREATE DATABASE " + name_);
  conninfo_ = admin_ + " dbname=" + name_;
}

ScratchDatabase::~ScratchDatabase() {
  try {
    auto c = storage::PgConnection::connect(admin_);
    c.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (...) {
  }
}

}  // namespace m365vault::test
