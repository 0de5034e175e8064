#pragma once
// A fresh, empty database on the test cluster (M365VAULT_TEST_PG_URL, started by
// scripts/test.sh), dropped at the end of the test.
#include <string>

namespace m365vault::test {

class ScratchDatabase {
 public:
  ScratchDatabase();
  ~ScratchDatabase();
  ScratchDatabase(const ScratchDatabase&) = delete;
  ScratchDatabase& operator=(const ScratchDatabase&) = delete;
  // libpq conninfo for the scratch database.
  const std::string& conninfo() const { return conninfo_; }
  const std::string& name() const { return name_; }

 private:
  std::string admin_;
  std::string name_;
  std::string conninfo_;
};

}  // namespace m365vault::test
