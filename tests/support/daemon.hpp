#pragma once
// Runs the built m365vaultd as a user would: a child process with its own config
// and environment, output to a log file the test can read.
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "m365vault/core/process.hpp"

namespace m365vault::test {

struct DaemonRun {
  std::vector<std::string> args;  // after the binary, e.g. {"serve"}
  std::vector<std::string> env;   // NAME=value
  std::filesystem::path log_file;
};

class Daemon {
 public:
  explicit Daemon(DaemonRun run);
  ChildProcess& process() { return *proc_; }
  // The whole output so far.
  std::string output() const;
  // Waits until the output contains `needle`; false after `within`.
  bool wait_for_output(const std::string& needle, std::chrono::milliseconds within) const;

 private:
  DaemonRun run_;
  std::unique_ptr<ChildProcess> proc_;
};

// Runs m365vaultd to completion; returns {exit code, output}.
ProcessResult run_daemon_command(const std::vector<std::string>& args, const std::vector<std::string>& env = {});

// The path of the built m365vaultd.
std::string daemon_path();

// Pids of processes whose command line contains `needle`.
std::vector<int> processes_matching(const std::string& needle);

std::string read_text(const std::filesystem::path& p);

}  // namespace m365vault::test
