#include "demo_emulator.hpp"

#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "m365vault/core/error.hpp"
#include "m365vault/net/client.hpp"

namespace m365vault::daemon {

namespace fs = std::filesystem;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1)
    throw Error(Errc::internal, "no randomness for the demo tenant's secret");
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

// The demo tenant's identity and secret, made once and kept (0600) so the
// tenant registered in the index keeps working across demo restarts.
DemoTenant load_or_make_identity(const fs::path& file) {
  DemoTenant t;
  if (fs::exists(file)) {
    auto j = nlohmann::json::parse(read_file(file.string()));
    t.tenant_id = j.at("tenant_id");
    t.client_id = j.at("client_id");
    t.client_secret = j.at("client_secret");
    return t;
  }
  auto uuid = [] {
    auto h = random_hex(16);
    return h.substr(0, 8) + "-" + h.substr(8, 4) + "-4" + h.substr(13, 3) + "-a" + h.substr(17, 3) + "-" + h.substr(20);
  };
  t.tenant_id = uuid();
  t.client_id = uuid();
  t.client_secret = random_hex(24);
  auto tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << nlohmann::json{{"tenant_id", t.tenant_id}, {"client_id", t.client_id}, {"client_secret", t.client_secret}}
               .dump(2)
        << "\n";
    if (!out) throw Error(Errc::storage, "cannot write '" + tmp + "'");
  }
  ::chmod(tmp.c_str(), 0600);
  fs::rename(tmp, file);
  return t;
}

}  // namespace

std::string find_emulator_binary(const std::string& self) {
  auto dir = fs::path(self).parent_path();
  for (auto p : {dir / "graph-emulator", dir / ".." / "emulator" / "graph-emulator"})
    if (::access(p.c_str(), X_OK) == 0) return fs::weakly_canonical(p).string();
  return "graph-emulator";
}

DemoEmulator::DemoEmulator(const std::string& dir) {
  fs::create_directories(fs::path(dir) / "state");
  log_file_ = (fs::path(dir) / "emulator.log").string();
  std::ofstream(log_file_, std::ios::trunc).close();
  ProcessOptions o;
  o.argv = {find_emulator_binary(fs::read_symlink("/proc/self/exe").string()), "--listen", "127.0.0.1:0", "--tls-dir",
            (fs::path(dir) / "tls").string(), "--state-dir", (fs::path(dir) / "state").string()};
  o.output_file = log_file_;
  o.new_session = true;  // Ctrl-C reaches the daemon, which then stops the emulator in order
  proc_ = std::make_unique<ChildProcess>(o);

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::string url;
  for (;;) {
    auto text = read_file(log_file_);
    auto at = text.find("listening on ");
    if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
      url = text.substr(at + 13, text.find('\n', at) - at - 13);
      break;
    }
    if (!proc_->running())
      throw Error(Errc::unavailable, "the graph emulator '" + o.argv[0] + "' exited at start: " + text);
    if (std::chrono::steady_clock::now() > deadline)
      throw Error(Errc::timeout, "the graph emulator did not start within 20 s (see '" + log_file_ + "')");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  tenant_ = load_or_make_identity(fs::path(dir) / "tenant.json");
  tenant_.graph_url = url;
  tenant_.ca_file = (fs::path(dir) / "tls" / "ca.pem").string();

  // A small tenant that backs up in about a minute on two cores; 409 when the
  // state directory already holds it from an earlier demo.
  nlohmann::json spec{{"tenant_id", tenant_.tenant_id},
                      {"client_id", tenant_.client_id},
                      {"client_secret", tenant_.client_secret},
                      {"domain", "contoso-demo.onmicrosoft.com"},
                      {"seed", 365},
                      {"users", 10},
                      {"mail_folders_per_user", 8},
                      {"messages_per_user", 200},
                      {"contacts_per_user", 40},
                      {"events_per_user", 60},
                      {"max_attachment_bytes", 2000000},
                      {"drive_files_per_user", 12},
                      {"sites", 2},
                      {"teams", 1},
                      {"channels_per_team", 3},
                      {"messages_per_channel", 20},
                      {"chats", 6},
                      {"messages_per_chat", 20},
                      {"unlicensed_users", 1}};
  boost::asio::io_context ioc;
  net::ClientOptions co;
  co.ca_file = tenant_.ca_file;
  net::HttpClient http(ioc.get_executor(), co);
  net::ClientRequest req;
  req.method = "POST";
  req.url = url + "/_emulator/tenants";
  req.headers.set("Content-Type", "application/json");
  req.body = spec.dump();
  auto fut = boost::asio::co_spawn(ioc, http.request(std::move(req)), boost::asio::use_future);
  ioc.run();
  auto res = fut.get();
  if (res.status != 201 && res.status != 409)
    throw Error(Errc::unavailable, "the graph emulator refused the demo tenant: HTTP " + std::to_string(res.status) +
                                       " " + res.body);
}

DemoEmulator::~DemoEmulator() {
  if (!proc_ || !proc_->running()) return;
  proc_->signal(SIGTERM);
  if (!proc_->wait(std::chrono::seconds(5))) proc_->signal(SIGKILL), proc_->wait(std::chrono::seconds(5));
}

}  // namespace m365vault::daemon
