// `m365vaultd backup run` killed with SIGKILL at random moments, as a power cut
// or the OOM killer would, and run again each time: the final run must leave an
// index equal to the emulator's manifest, with no item open twice, no version
// stored twice, and a repository that `repo verify` finds clean once the packs
// written before a kill (but never indexed) are adopted.
#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <functional>
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

// What one kill test backs up, how the tenant changes between runs, and what
// the final index must equal.
struct KillCase {
  json tenant;                        // make_tenant's spec (users, messages_per_user, ...)
  std::vector<std::string> run_args;  // after "backup run --tenant contoso"
  json activity;                      // the tenant's activity after a run that ended by itself (seed added)
  int rounds = 20;
  std::uint64_t seed = 1717;
  std::function<void(const EmulatorProcess&, const TestTenant&, const IndexReader&)> check_manifest;
};

void kill_and_rerun(const KillCase& k) {
  EmulatorProcess emu;
  auto tenant = make_tenant(emu, k.seed, k.tenant.value("users", 4), k.tenant.value("messages_per_user", 80), k.tenant);
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
  backup.argv.insert(backup.argv.end(), k.run_args.begin(), k.run_args.end());
  backup.output_file = cli.log.string();

  // Kill moments spread over a typical run's work: from the moment its run is
  // `running` in the queue (start-up before that — configuration, repository,
  // migrations — can take a second on a loaded machine, and a kill there leaves
  // nothing to take over) to the length of the last run's work that got to its
  // end (a guess before the first), drawn over its first four fifths: over the
  // whole length about half the kills came after the next run had ended by itself
  // (runs vary about that length), and "at least half killed" failed 8 of 20 on a
  // fast machine where an incremental files run takes 50-80 ms. Runs longer than
  // the last still get kills near their end. Each run that ends before its kill is
  // followed by activity in the tenant, so the next runs have work to be killed in.
  std::mt19937 rng(Catch::rngSeed() ? Catch::rngSeed() : 20240607u);
  auto typical = std::chrono::milliseconds(3000);
  int killed = 0, finished = 0;
  std::string history;
  auto queue_db = storage::PgConnection::connect(db.conninfo());
  for (int i = 0; i < k.rounds; ++i) {
    std::uniform_int_distribution<long> pick(0, static_cast<long>(typical.count()) * 4 / 5);
    auto delay = std::chrono::milliseconds(pick(rng));
    // A run left `running` by the previous kill counts once this process holds it
    // (its worker id changes when it takes it over).
    const std::string before(queue_db.exec(
        "SELECT coalesce(string_agg(id || '/' || coalesce(worker_id::text, ''), ','), '') FROM runs"
        " WHERE state = 'running'").get(0, 0));
    ChildProcess p(backup);
    std::optional<int> code;
    const auto launched = std::chrono::steady_clock::now();
    while (!(code = p.wait(20ms)) &&
           queue_db.exec("SELECT count(*) FROM runs WHERE state = 'running' AND NOT"
                         " (id || '/' || coalesce(worker_id::text, '') = ANY (string_to_array($1, ',')))",
                         {before}).get_int(0, 0) == 0)
      REQUIRE(std::chrono::steady_clock::now() - launched < 120s);
    const auto running = std::chrono::steady_clock::now();
    if (!code) code = p.wait(delay);
    if (!code) {
      p.signal(SIGKILL);
      code = p.wait(10s);
      REQUIRE(code);
      CHECK(*code == 128 + SIGKILL);
      // Killed in its work: the run is left running, for the next one to take
      // over. (A kill after the run ended, while the process was closing, is a
      // run that ended by itself.)
      if (queue_db.exec("SELECT count(*) FROM runs WHERE state = 'running'").get_int(0, 0) > 0) {
        ++killed;
        history += " kill@" + std::to_string(delay.count());
        continue;
      }
    } else {
      INFO("run " << i << " ended by itself with " << *code << ":\n" << read_text(cli.log));
      REQUIRE(*code == 0);
    }
    // The work of the run that just ended: the next kills land in a run of that
    // length (incremental runs are far shorter than the first).
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - running);
    ++finished;
    history += " done(" + std::to_string(took.count()) + ")";
    typical = std::max(took, std::chrono::milliseconds(20));
    json body = k.activity;
    body["seed"] = 100 + i;
    emu.admin("POST", "/_emulator/tenants/" + tenant.tenant + "/activity", body);
  }
  INFO(killed << " run(s) killed, " << finished << " ended first:" << history);
  CHECK(killed >= k.rounds / 2);

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

  k.check_manifest(emu, tenant, index);
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
  KillCase k;
  k.tenant = {{"users", 4},           {"messages_per_user", 80}, {"mail_folders_per_user", 4},
              {"contacts_per_user", 15}, {"events_per_user", 20},   {"max_attachment_bytes", 200000}};
  k.activity = {{"creates", 40}, {"updates", 20}, {"deletes", 8}, {"moves", 8},
                {"categories", {"mail", "contacts", "calendar"}}};
  k.check_manifest = [](const EmulatorProcess& emu, const TestTenant& tenant, const IndexReader& index) {
    for (auto category : {"mail", "contacts", "calendar"}) {
      INFO(category);
      check_index_matches(manifest_of(emu, tenant.tenant, category), index, category);
    }
  };
  kill_and_rerun(k);
}

TEST_CASE("backup: a OneDrive backup killed with SIGKILL at 20 random moments ends with the files manifest",
          "[graph][pg]") {
  // Files large enough that kills land mid-download and mid-page.
  KillCase k;
  k.seed = 1818;
  k.tenant = {{"users", 3},           {"messages_per_user", 0},        {"contacts_per_user", 0},
              {"events_per_user", 0}, {"drive_files_per_user", 60},   {"drive_bytes_per_user", 24 << 20},
              {"sites", 0}};
  k.run_args = {"--category", "onedrive"};
  k.activity = {{"creates", 10}, {"updates", 6}, {"deletes", 3}, {"moves", 4}, {"renames", 3},
                {"categories", {"files"}}};
  k.check_manifest = [](const EmulatorProcess& emu, const TestTenant& tenant, const IndexReader& index) {
    check_index_matches(manifest_of(emu, tenant.tenant, "files"), index, "onedrive");
  };
  kill_and_rerun(k);
}

TEST_CASE("backup: Teams channels and SharePoint lists killed with SIGKILL at 12 random moments end as the manifest",
          "[graph][pg]") {
  KillCase k;
  k.tenant = {{"users", 4},  {"messages_per_user", 1}, {"mail_folders_per_user", 1}, {"contacts_per_user", 1},
              {"events_per_user", 1}, {"drive_files_per_user", 1}, {"sites", 2}, {"files_per_site", 30},
              {"teams", 2},  {"channels_per_team", 3},  {"messages_per_channel", 120}};
  k.run_args = {"--category", "teams,sharepoint"};
  k.activity = {{"creates", 10}, {"updates", 6}, {"deletes", 4}, {"categories", {"teams", "lists"}}};
  k.rounds = 12;
  k.check_manifest = [](const EmulatorProcess& emu, const TestTenant& tenant, const IndexReader& index) {
    check_same_hashes(keyed_manifest(emu, tenant.tenant, "teams"), indexed_canonical(index, "message"), "teams");
    check_same_hashes(keyed_manifest(emu, tenant.tenant, "lists"), indexed_canonical(index, "list_item"), "lists");
  };
  kill_and_rerun(k);
}

TEST_CASE("backup: Teams chats killed with SIGKILL at 12 random moments end as the chats manifest", "[graph][pg]") {
  // 8 chats of 120 messages: three pages each, and an inline image in about one
  // message in five, so kills land mid-listing and mid-page.
  KillCase k;
  k.seed = 1919;
  k.tenant = {{"users", 5},           {"messages_per_user", 1},    {"mail_folders_per_user", 1}, {"contacts_per_user", 1},
              {"events_per_user", 1}, {"drive_files_per_user", 1}, {"sites", 0},                 {"teams", 1},
              {"channels_per_team", 1}, {"messages_per_channel", 3}, {"chats", 8},               {"messages_per_chat", 120}};
  k.run_args = {"--category", "teams"};
  k.activity = {{"creates", 10}, {"updates", 6}, {"deletes", 4}, {"categories", {"chats"}}};
  k.rounds = 12;
  k.check_manifest = [](const EmulatorProcess& emu, const TestTenant& tenant, const IndexReader& index) {
    check_same_hashes(keyed_manifest(emu, tenant.tenant, "chats"), indexed_canonical(index, "message", "chat"), "chats");
    // Each chat is stored once, whichever member's listing found it first.
    CHECK(index.query("SELECT count(*) FROM owners WHERE kind = 'chat'")[0][0] == "8");
  };
  kill_and_rerun(k);
}
