#include "support/daemon.hpp"

#include <fstream>
#include <sstream>
#include <thread>

namespace m365vault::test {

std::string daemon_path() { return M365VAULTD_PATH; }

std::string read_text(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Daemon::Daemon(DaemonRun run) : run_(std::move(run)) {
  ProcessOptions o;
  o.argv = {daemon_path()};
  o.argv.insert(o.argv.end(), run_.args.begin(), run_.args.end());
  o.env = run_.env;
  o.output_file = run_.log_file.string();
  proc_ = std::make_unique<ChildProcess>(o);
}

std::string Daemon::output() const { return read_text(run_.log_file); }

bool Daemon::wait_for_output(const std::string& needle, std::chrono::milliseconds within) const {
  auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (output().find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return output().find(needle) != std::string::npos;
}

ProcessResult run_daemon_command(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  ProcessOptions o;
  o.argv = {daemon_path()};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.env = env;
  o.capture_output = true;
  return run_process(o);
}

std::vector<int> processes_matching(const std::string& needle) {
  std::vector<int> out;
  for (auto& e : std::filesystem::directory_iterator("/proc")) {
    auto name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto cmd = read_text(e.path() / "cmdline");
    for (auto& ch : cmd)
      if (ch == '\0') ch = ' ';
    if (cmd.find(needle) != std::string::npos) out.push_back(std::stoi(name));
  }
  return out;
}

}  // namespace m365vault::test
