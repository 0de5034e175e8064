// `m365vaultd backup run` killed with SIGKILL at random moments, as a power cut
// or the OOM killer would, and run again each time: the final run must leave an
// index equal to the emulator's manifest, with no item open twice, no version
// stored twice, and a repository that `repo verify` finds clean once the packs
// written before a kill (but never indexed) are adopted.
#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <random>
#include <thread>

#include "backup_support.hpp"
#include "m365vault/storage/crypto.hpp"
#include "support/daemon.hpp"

using namespace m365vault;
using namespace m365vault::test;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// A TOML basic string.
std::string toml_str(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

struct Cli {
  fs::path config;
  fs::path log;
  ProcessResult run(std::vector<std::string> args) const {
    args.insert(args.begin(), {"--config", config.string()});
    return run_daemon_command(args);
  }
};

// What a kill test backs up: the tenant, the `backup run` arguments, the activity
// between runs that finished before their kill, and the manifest categories to
// compare with the index (manifest category, index category).
struct KillScenario {
  std::uint64_t seed;
  int users, messages;
  json spec;
  std::vector<std::string> run_args;
  json activity;  // without "seed"
  std::vector<std::pair<std::string, std::string>> checks;
};

// `backup run` killed with SIGKILL at 20 random moments, then run to its end.
void kill_20_times(const KillScenario& sc) {
  EmulatorProcess emu;
  auto tenant = make_tenant(emu, sc.seed, sc.users, sc.messages, sc.spec);
  ScratchDatabase db;
  TempDir dir{"backup-kill"};
  const std::string passphrase = "kill -9 horse battery";
  write_file(dir / "passphrase", passphrase + "\n");
  write_file(dir / "client-secret", tenant.secret + "\n");
  Cli cli{dir / "m365vault.toml", dir / "backup.log"};
  write_file(cli.config, "[database]\nurl = " + toml_str(db.conninfo()) + "\n\n[storage]\ndata_dir = " +
                             toml_str((dir / "data").string()) + "\nrepository = " +
                             toml_str("file://" + (dir / "repo").string()) + "\npassphrase_file = " +
                             toml_str((dir / "passphrase").string()) + "\n\n[log]\nlevel = \"warn\"\n");

  auto init = cli.run({"repo", "init"});
  INFO(init.output);
  REQUIRE(init.exit_code == 0);
  auto add = cli.run({"tenant", "add", "--name", "contoso", "--tenant-id", tenant.tenant, "--client-id", tenant.client,
                      "--client-secret-file", (dir / "client-secret").string(), "--graph-url", emu.base(),
                      "--login-url", emu.base(), "--ca-file", emu.ca()});
  INFO(add.output);
  REQUIRE(add.exit_code == 0);

  ProcessOptions backup;
  backup.argv = {daemon_path(), "--config", cli.config.string(), "backup", "run", "--tenant", "contoso"};
  backup.argv.insert(backup.argv.end(), sc.run_args.begin(), sc.run_args.end());
  backup.output_file = cli.log.string();

  // Kill moments spread over a typical run: the length of the last run that got
  // to its end (a guess before the first). Each run that ends before its kill is
  // followed by activity in the tenant, so the next runs have work to be killed in.
  std::mt19937 rng(Catch::rngSeed() ? Catch::rngSeed() : 20240607u);
  auto typical = std::chrono::milliseconds(3000);
  int killed = 0, finished = 0;
  std::string history;
  for (int i = 0; i < 20; ++i) {
    std::uniform_int_distribution<long> pick(50, static_cast<long>(typical.count()));
    auto delay = std::chrono::milliseconds(pick(rng));
    auto started = std::chrono::steady_clock::now();
    ChildProcess p(backup);
    auto code = p.wait(delay);
    if (!code) {
      p.signal(SIGKILL);
      code = p.wait(10s);
      REQUIRE(code);
      CHECK(*code == 128 + SIGKILL);
      ++killed;
      history += " kill@" + std::to_string(delay.count());
      continue;
    }
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    INFO("run " << i << " ended by itself with " << *code << ":\n" << read_text(cli.log));
    REQUIRE(*code == 0);
    ++finished;
    history += " done(" + std::to_string(took.count()) + ")";
    typical = took;
    json body = sc.activity;
    body["seed"] = 100 + i;
    emu.admin("POST", "/_emulator/tenants/" + tenant.tenant + "/activity", body);
  }
  INFO(killed << " run(s) killed, " << finished << " ended first:" << history);
  CHECK(killed >= 10);

  // The last run, to its end: it takes over whatever the last kill left running.
  ChildProcess last(backup);
  auto code = last.wait(300s);
  auto log_text = read_text(cli.log);
  INFO(log_text);
  REQUIRE(code);
  REQUIRE(*code == 0);

  // A killed run was taken over and ended; nothing is left running.
  storage::FsStore store(dir / "repo");
  storage::PgBlobIndex blob_index(db.conninfo());
  storage::Repository repo(store, storage::KeySource{passphrase, std::nullopt}, blob_index);
  IndexReader index(db.conninfo(), repo);
  CHECK(index.query("SELECT count(*) FROM runs WHERE state IN ('running', 'queued')")[0][0] == "0");
  if (killed > 0) CHECK(std::stoi(index.query("SELECT coalesce(sum(takeovers), 0) FROM runs")[0][0]) > 0);
  CHECK(std::stoi(index.query("SELECT count(*) FROM runs WHERE state = 'succeeded'")[0][0]) >= 1);

  for (auto& [manifest, category] : sc.checks) {
    INFO(category);
    check_index_matches(manifest_of(emu, tenant.tenant, manifest), index, category);
  }
  check_index_consistent(index);

  // Packs written before a kill but never indexed are adopted; then the
  // repository is clean and every blob the index references is there.
  auto repair = cli.run({"repo", "verify", "--repair"});
  INFO(repair.output);
  CHECK(repair.exit_code == 0);
  auto verify = cli.run({"repo", "verify", "--deep"});
  INFO(verify.output);
  CHECK(verify.exit_code == 0);
  CHECK_THAT(verify.output, Catch::Contains("repository ok") && !Catch::Contains("unindexed") &&
                                !Catch::Contains("MISSING") && !Catch::Contains("DAMAGED"));
  check_index_consistent(index);
}

}  // namespace

TEST_CASE("backup: killed with SIGKILL at 20 random moments, the rerun ends with the manifest and nothing twice",
          "[graph][pg]") {
  kill_20_times({1717, 4, 80,
                 {{"mail_folders_per_user", 4}, {"contacts_per_user", 15}, {"events_per_user", 20},
                  {"max_attachment_bytes", 200000}},
                 {},
                 {{"creates", 40}, {"updates", 20}, {"deletes", 8}, {"moves", 8},
                  {"categories", {"mail", "contacts", "calendar"}}},
                 {{"mail", "mail"}, {"contacts", "contacts"}, {"calendar", "calendar"}}});
}

TEST_CASE("backup: a OneDrive backup killed with SIGKILL at 20 random moments ends with the files manifest",
          "[graph][pg]") {
  // Files large enough that kills land mid-download and mid-page.
  kill_20_times({1818, 3, 0,
                 {{"contacts_per_user", 0}, {"events_per_user", 0}, {"drive_files_per_user", 60},
                  {"drive_bytes_per_user", 24 << 20}, {"sites", 0}},
                 {"--category", "onedrive"},
                 {{"creates", 10}, {"updates", 6}, {"deletes", 3}, {"moves", 4}, {"renames", 3},
                  {"categories", {"files"}}},
                 {{"files", "onedrive"}}});
}

