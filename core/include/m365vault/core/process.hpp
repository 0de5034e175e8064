#pragma once
// Child processes: run a program to completion (initdb, pg_ctl), or start one in
// the background and signal/wait for it (the demo's emulator, tests' daemons).
// Programs run without a shell; arguments are passed as they are.
#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace m365vault {

struct UserIds {
  uid_t uid;
  gid_t gid;
  std::string name;
};

// Looks a user up in the password database.
std::optional<UserIds> lookup_user(const std::string& name);

struct ProcessOptions {
  std::vector<std::string> argv;        // argv[0] is looked up in PATH when it has no '/'
  std::vector<std::string> env;         // "NAME=value" added to (or replacing in) the inherited environment
  std::optional<UserIds> user;          // drop to this user before exec (needs root)
  std::string output_file;              // stdout+stderr go here (appended) when set
  bool capture_output = false;          // or are captured into ProcessResult::output
  bool new_session = false;             // setsid(): signals to our group do not reach it
};

struct ProcessResult {
  int exit_code;       // 128+signal when killed by a signal
  std::string output;  // when capture_output
};

// Runs to completion. Throws Error(Errc::internal) when the program cannot be started.
ProcessResult run_process(const ProcessOptions& opts);

// A background child. The destructor kills (SIGKILL) and reaps a child still running.
class ChildProcess {
 public:
  explicit ChildProcess(const ProcessOptions& opts);
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  void signal(int sig) const;
  // The exit code (128+signal when killed), or nullopt when still running after `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  bool running();

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

}  // namespace m365vault
