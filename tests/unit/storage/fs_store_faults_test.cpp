// The filesystem store and the repository when the disk says no: a write that
// runs out of space (simulated with the process file-size limit, which fails the
// write the way a full disk does) and a directory the daemon may not write (the
// unprivileged service user against a root-owned repository). Each case runs in
// a forked child so limits and identities do not leak; the child reports through
// its exit status and stderr.
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <functional>
#include <iostream>

#include "m365vault/core/error.hpp"
#include "m365vault/core/process.hpp"
#include "m365vault/storage/fs_store.hpp"
#include "m365vault/storage/repository.hpp"
#include "support/temp_dir.hpp"

using namespace m365vault;
using namespace m365vault::storage;
namespace fs = std::filesystem;

namespace {

// Runs `body` in a child; returns its exit status (0: every expectation held).
int in_child(const std::function<int()>& body) {
  std::cout.flush();
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int rc = 99;
    try {
      rc = body();
    } catch (const std::exception& e) {
      std::cerr << "child: unexpected exception: " << e.what() << "\n";
    }
    std::_Exit(rc);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::size_t files_under(const fs::path& p) {
  std::size_t n = 0;
  for (auto& e : fs::recursive_directory_iterator(p))
    if (e.is_regular_file()) ++n;
  return n;
}

std::string noise(std::size_t n) {
  std::string s(n, '\0');
  std::uint64_t x = 88172645463325252ull;
  for (auto& c : s) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>(x);
  }
  return s;
}

}  // namespace

TEST_CASE("fs store: a write that runs out of space fails clearly and leaves nothing behind", "[unit]") {
  test::TempDir dir("fs-full");
  int rc = in_child([&] {
    ::signal(SIGXFSZ, SIG_IGN);  // the write fails with EFBIG instead of killing us
    rlimit lim{64 * 1024, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) return 10;
    FsStore store(dir.path());
    try {
      store.put("packs/aa/big", noise(1 << 20));
      return 11;  // must not succeed
    } catch (const Error& e) {
      std::string msg = e.what();
      if (e.code() != Errc::storage || msg.find("packs/aa/") == std::string::npos ||
          msg.find("limit allows") == std::string::npos) {
        std::cerr << "child: unclear error: " << msg << "\n";
        return 12;
      }
    }
    if (store.stat("packs/aa/big")) return 13;  // no partial object
    if (files_under(dir.path()) != 0) return 14;  // no temporary left
    // Space again: the same put succeeds.
    lim.rlim_cur = RLIM_INFINITY;
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) return 15;
    store.put("packs/aa/big", noise(1 << 20));
    return store.get("packs/aa/big") == noise(1 << 20) ? 0 : 16;
  });
  CHECK(rc == 0);
}

TEST_CASE("repository: a full disk fails the flush clearly, the index never points at a lost pack", "[unit]") {
  test::TempDir dir("repo-full");
  int rc = in_child([&] {
    ::signal(SIGXFSZ, SIG_IGN);
    FsStore store(dir.path());
    InitOptions init;
    init.keys.passphrase = "pw";
    init.kdf.n = 1u << 10;
    Repository::init(store, init);  // `config` is small: written before the limit bites
    rlimit lim{256 * 1024, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) return 20;
    MemoryIndex index;
    {
      Repository repo(store, init.keys, index);
      repo.add_blob(BlobType::data, noise(2 << 20));  // incompressible: a pack over the limit
      try {
        repo.flush();
        return 21;
      } catch (const Error& e) {
        if (e.code() != Errc::storage) {
          std::cerr << "child: " << e.what() << "\n";
          return 22;
        }
      }
    }
    if (index.pack_count() != 0) return 23;  // nothing indexed that is not in the store
    lim.rlim_cur = RLIM_INFINITY;
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) return 24;
    // The writer retries (as the backup's next attempt does): stored and readable.
    Repository repo(store, init.keys, index);
    auto data = noise(2 << 20);
    auto id = repo.add_blob(BlobType::data, data);
    repo.flush();
    return repo.read_blob(id) == data && index.pack_count() == 1 ? 0 : 25;
  });
  CHECK(rc == 0);
}

TEST_CASE("fs store: a repository the service user may not write gives a clear, actionable error", "[unit]") {
  if (::geteuid() != 0) {
    // As non-root there is no second identity to switch to; the directory mode
    // alone is the test then.
    test::TempDir dir("fs-ro");
    fs::permissions(dir.path(), fs::perms::owner_read | fs::perms::owner_exec);
    FsStore store(dir.path());
    CHECK_THROWS_WITH(store.put("config", "x"), Catch::Contains("check the directory's owner and mode"));
    fs::permissions(dir.path(), fs::perms::owner_all);
    return;
  }
  auto user = lookup_user("m365vault");
  REQUIRE(user);  // scripts/deps.sh creates it
  test::TempDir dir("fs-ro");
  fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec);
  int rc = in_child([&] {
    if (::setgid(user->gid) != 0 || ::setuid(user->uid) != 0) return 30;
    FsStore store(dir.path());
    try {
      store.put("config", "x");
      return 31;
    } catch (const Error& e) {
      std::string msg = e.what();
      if (e.code() != Errc::storage_denied || msg.find("check the directory's owner and mode") == std::string::npos) {
        std::cerr << "child: unclear error: " << msg << "\n";
        return 32;
      }
    }
    return 0;
  });
  CHECK(rc == 0);
  CHECK(files_under(dir.path()) == 0);
}
