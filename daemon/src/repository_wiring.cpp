// Opening the repository from the configuration (serve, demo, the repo commands).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "m365vault/core/error.hpp"
#include "m365vault/storage/crypto.hpp"
#include "m365vault/storage/fs_store.hpp"
#include "m365vault/storage/s3_store.hpp"
#include "wiring.hpp"

namespace m365vault::daemon {

namespace {

std::optional<std::string> read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  auto s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

std::unique_ptr<storage::ObjectStore> open_store(const Config& cfg, Logging& logging, bool create) {
  const std::string url = cfg.repository_url();
  if (url.rfind("file://", 0) == 0) {
    std::filesystem::path root = url.substr(7);
    if (create) std::filesystem::create_directories(root);
    return std::make_unique<storage::FsStore>(root);
  }
  if (url.rfind("s3://", 0) == 0) {
    auto rest = url.substr(5);
    auto slash = rest.find('/');
    storage::S3Config s3;
    s3.bucket = rest.substr(0, slash);
    if (slash != std::string::npos) s3.prefix = rest.substr(slash + 1);
    while (!s3.prefix.empty() && s3.prefix.back() == '/') s3.prefix.pop_back();
    if (s3.bucket.empty())
      throw Error(Errc::invalid_config, "config key 'storage.repository': no bucket in '" + url + "' (use s3://bucket/prefix)");
    if (cfg.storage.s3_endpoint.empty())
      throw Error(Errc::invalid_config, "config key 'storage.s3_endpoint': needed for '" + url +
                                            "' (for example https://s3.eu-west-1.amazonaws.com)");
    s3.endpoint = cfg.storage.s3_endpoint;
    s3.region = cfg.storage.s3_region;
    s3.access_key = cfg.storage.s3_access_key;
    s3.secret_key = cfg.storage.s3_secret_key;
    s3.path_style = cfg.storage.s3_path_style;
    s3.ca_file = cfg.storage.s3_ca_file;
    return std::make_unique<storage::S3Store>(std::move(s3), logging.get("s3"));
  }
  throw Error(Errc::invalid_config, "config key 'storage.repository': unknown scheme in '" + url +
                                        "' (use file:///path or s3://bucket/prefix)");
}

storage::KeySource repository_keys(const Config& cfg) {
  storage::KeySource k;
  if (!cfg.storage.passphrase.empty()) k.passphrase = cfg.storage.passphrase;
  if (!cfg.storage.key.empty()) k.key_file = cfg.storage.key;
  if (k.passphrase || k.key_file) return k;
  // systemd: LoadCredential=repository-passphrase:/etc/m365vault/... (or -key).
  if (const char* dir = std::getenv("CREDENTIALS_DIRECTORY"); dir && *dir) {
    k.passphrase = read_file(std::filesystem::path(dir) / "repository-passphrase");
    k.key_file = read_file(std::filesystem::path(dir) / "repository-key");
    if (k.passphrase && k.passphrase->empty()) k.passphrase.reset();
    if (k.passphrase || k.key_file) return k;
  }
  throw Error(Errc::invalid_config,
              "config key 'storage.passphrase': no repository passphrase or key (set storage.passphrase_file, "
              "storage.key_file, M365VAULT_REPOSITORY_PASSPHRASE, or the systemd credential 'repository-passphrase')");
}

RepositoryHandle open_repository(const Config& cfg, const std::string& conninfo, Logging& logging) {
  RepositoryHandle h;
  auto keys = repository_keys(cfg);
  h.store = open_store(cfg, logging);
  storage::PgBlobIndexOptions io;
  io.timeouts = timeouts_of(cfg);
  io.log = logging.get("repo");
  h.index = std::make_unique<storage::PgBlobIndex>(conninfo, io);
  storage::RepositoryOptions ro;
  ro.log = logging.get("repo");
  h.repo = std::make_unique<storage::Repository>(*h.store, keys, *h.index, ro);
  return h;
}

void ensure_demo_repository(Config& cfg, Logging& logging) {
  auto log = logging.get("repo");
  auto store = open_store(cfg, logging, true);
  const auto pass_file = std::filesystem::path(cfg.storage.data_dir) / "repository-passphrase";
  bool configured = !cfg.storage.passphrase.empty() || !cfg.storage.key.empty();
  if (store->stat("config")) {
    if (!configured) {
      auto p = read_file(pass_file);
      if (!p)
        throw Error(Errc::invalid_config, "the demo repository at '" + store->describe() + "' exists but '" +
                                              pass_file.string() + "' (its passphrase) is gone");
      cfg.storage.passphrase = *p;
    }
    return;
  }
  if (!configured) {
    // 32 random bytes, base64: typed by nobody, kept in a file only we can read.
    cfg.storage.passphrase = storage::crypto::base64_encode(storage::crypto::random_bytes(32));
    int fd = ::open(pass_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw Error(Errc::storage, "cannot write '" + pass_file.string() + "'");
    std::string line = cfg.storage.passphrase + "\n";
    bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) throw Error(Errc::storage, "cannot write '" + pass_file.string() + "'");
  }
  storage::InitOptions init;
  init.keys = repository_keys(cfg);
  auto rc = storage::Repository::init(*store, init);
  log->warn("demo: created repository {} at '{}'; its passphrase is in '{}' (mode 0600). {}", rc.id,
            store->describe(), configured ? std::string("your configuration") : pass_file.string(),
            storage::kLostKeyWarning);
}

}  // namespace m365vault::daemon
