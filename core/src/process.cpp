#include "m365vault/core/process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "m365vault/core/error.hpp"

extern char** environ;

namespace m365vault {

std::optional<UserIds> lookup_user(const std::string& name) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* res = nullptr;
  if (getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &res) != 0 || !res) return std::nullopt;
  return UserIds{pw.pw_uid, pw.pw_gid, pw.pw_name};
}

namespace {

struct Prepared {
  std::vector<std::string> env_storage;
  std::vector<char*> argv;
  std::vector<char*> envp;
  int out_fd = -1;
};

void prepare(const ProcessOptions& o, Prepared& p, std::vector<std::string>& argv_storage) {
  if (o.argv.empty()) throw Error(Errc::internal, "run_process: empty argv");
  argv_storage = o.argv;
  for (auto& a : argv_storage) p.argv.push_back(a.data());
  p.argv.push_back(nullptr);
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    auto name = kv.substr(0, kv.find('='));
    bool replaced = false;
    for (auto& add : o.env)
      if (std::string_view(add).substr(0, add.find('=')) == name) replaced = true;
    if (!replaced) p.env_storage.emplace_back(kv);
  }
  for (auto& add : o.env) p.env_storage.push_back(add);
  for (auto& e : p.env_storage) p.envp.push_back(e.data());
  p.envp.push_back(nullptr);
  if (!o.output_file.empty()) {
    p.out_fd = ::open(o.output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (p.out_fd < 0)
      throw Error(Errc::internal, "cannot open '" + o.output_file + "': " + std::strerror(errno));
  }
}

// Forks and execs; in the child only async-signal-safe calls are made.
pid_t spawn(const ProcessOptions& o, Prepared& p, int pipe_w) {
  pid_t pid = ::fork();
  if (pid < 0) throw Error(Errc::internal, std::string("fork: ") + std::strerror(errno));
  if (pid > 0) return pid;
  // child
  if (o.new_session) ::setsid();
  int devnull = ::open("/dev/null", O_RDONLY);
  if (devnull >= 0) ::dup2(devnull, 0);
  int out = pipe_w >= 0 ? pipe_w : p.out_fd;
  if (out >= 0) {
    ::dup2(out, 1);
    ::dup2(out, 2);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (o.user) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(o.user->gid) != 0 || ::setuid(o.user->uid) != 0) _exit(126);
  }
  const char* file = p.argv[0];
  if (std::strchr(file, '/')) ::execve(file, p.argv.data(), p.envp.data());
  else ::execvpe(file, p.argv.data(), p.envp.data());
  _exit(127);
}

int decode_status(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

}  // namespace

ProcessResult run_process(const ProcessOptions& opts) {
  Prepared p;
  std::vector<std::string> argv;
  prepare(opts, p, argv);
  int fds[2] = {-1, -1};
  if (opts.capture_output && ::pipe2(fds, O_CLOEXEC) != 0)
    throw Error(Errc::internal, std::string("pipe: ") + std::strerror(errno));
  pid_t pid;
  try {
    pid = spawn(opts, p, fds[1]);
  } catch (...) {
    if (fds[0] >= 0) ::close(fds[0]), ::close(fds[1]);
    if (p.out_fd >= 0) ::close(p.out_fd);
    throw;
  }
  if (p.out_fd >= 0) ::close(p.out_fd);
  ProcessResult r{0, {}};
  if (fds[0] >= 0) {
    ::close(fds[1]);
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n > 0) r.output.append(buf, static_cast<size_t>(n));
      else if (n < 0 && errno == EINTR) continue;
      else break;
    }
    ::close(fds[0]);
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = decode_status(st);
  if (r.exit_code == 127 && !opts.capture_output)
    throw Error(Errc::internal, "cannot run '" + opts.argv[0] + "'");
  return r;
}

ChildProcess::ChildProcess(const ProcessOptions& opts) {
  Prepared p;
  std::vector<std::string> argv;
  prepare(opts, p, argv);
  try {
    pid_ = spawn(opts, p, -1);
  } catch (...) {
    if (p.out_fd >= 0) ::close(p.out_fd);
    throw;
  }
  if (p.out_fd >= 0) ::close(p.out_fd);
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int st;
    ::waitpid(pid_, &st, 0);
  }
}

void ChildProcess::signal(int sig) const {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

bool ChildProcess::running() { return !wait(std::chrono::milliseconds(0)).has_value(); }

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = decode_status(st);
      return status_;
    }
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace m365vault
