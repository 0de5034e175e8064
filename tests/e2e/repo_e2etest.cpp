// `m365vaultd repo ...` and the daemon's repository start-up, as an operator runs
// them: exit statuses, the lost-key warning, refusals, and a wrong passphrase that
// stops everything with one line and writes nothing.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>

#include "m365vault/core/process.hpp"
#include "support/daemon.hpp"
#include "support/pg.hpp"
#include "support/temp_dir.hpp"

using namespace m365vault;
using namespace m365vault::test;
namespace fs = std::filesystem;

namespace {
// Every file under `root` with its size and modification time.
std::map<std::string, std::pair<std::uintmax_t, fs::file_time_type>> snapshot(const fs::path& root) {
  std::map<std::string, std::pair<std::uintmax_t, fs::file_time_type>> out;
  for (auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) out[e.path().string()] = {e.file_size(), e.last_write_time()};
  return out;
}
}  // namespace

TEST_CASE("repo commands from the command line and a wrong passphrase that stops them and serve writing nothing", "[e2e]") {
  TempDir dir;
  ScratchDatabase db;
  const auto repo = dir / "repo";
  std::vector<std::string> env{"M365VAULT_DATA_DIR=" + (dir / "data").string(),
                               "M365VAULT_DATABASE_URL=" + db.conninfo(),
                               "M365VAULT_STORAGE_REPOSITORY=file://" + repo.string(),
                               "M365VAULT_REPOSITORY_PASSPHRASE=correct horse battery"};
  auto key_file = (dir / "repo.key").string();

  auto init = run_daemon_command({"repo", "init", "--key-file-out", key_file}, env);
  INFO(init.output);
  REQUIRE(init.exit_code == 0);
  CHECK_THAT(init.output, Catch::Contains("created repository") && Catch::Contains("nobody") &&
                              Catch::Contains("keep the passphrase and the key file safe"));
  CHECK((fs::status(key_file).permissions() & fs::perms::group_all) == fs::perms::none);

  auto again = run_daemon_command({"repo", "init"}, env);
  CHECK(again.exit_code == 1);
  CHECK_THAT(again.output, Catch::Contains("refusing to create a repository over existing data"));

  auto verify = run_daemon_command({"repo", "verify", "--deep"}, env);
  INFO(verify.output);
  CHECK(verify.exit_code == 0);
  CHECK_THAT(verify.output, Catch::Contains("repository ok (deep check)"));
  CHECK(run_daemon_command({"repo", "prune", "--grace", "1h", "--dry-run"}, env).exit_code == 0);
  CHECK(run_daemon_command({"repo", "rebuild-index"}, env).exit_code == 0);
  CHECK(run_daemon_command({"repo", "prune", "--grace", "soon"}, env).exit_code == 2);
  CHECK(run_daemon_command({"repo", "frobnicate"}, env).exit_code == 2);

  // The key file alone opens it too.
  auto by_key = env;
  by_key.back() = "M365VAULT_STORAGE_KEY_FILE=" + key_file;
  CHECK(run_daemon_command({"repo", "verify"}, by_key).exit_code == 0);

  auto before = snapshot(repo);
  auto wrong = env;
  wrong.back() = "M365VAULT_REPOSITORY_PASSPHRASE=wrong horse";
  auto v = run_daemon_command({"repo", "verify"}, wrong);
  CHECK(v.exit_code == 1);
  CHECK_THAT(v.output, Catch::Contains("wrong passphrase or key file"));
  wrong.push_back("M365VAULT_LISTEN=127.0.0.1:0");
  auto serve = run_daemon_command({"serve"}, wrong);
  INFO(serve.output);
  CHECK(serve.exit_code == 1);
  CHECK_THAT(serve.output, Catch::Contains("m365vaultd: repository at") && Catch::Contains("wrong passphrase"));
  CHECK(snapshot(repo) == before);  // nothing written
}
