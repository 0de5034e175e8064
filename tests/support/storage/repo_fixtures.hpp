#pragma once
// Helpers shared by the repository tests (unit and PostgreSQL): deterministic
// content, a fast-KDF init, the code of a thrown Error, a backup-like write loop and
// the crash writer's acknowledgements.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <fstream>
#include <thread>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "m365vault/core/error.hpp"
#include "m365vault/core/process.hpp"
#include "m365vault/storage/repository.hpp"
#include "support/storage/crash_content.hpp"

namespace m365vault::test {

// Compressible, mail-like text, the same for the same seed.
inline std::string text_data(std::size_t n, std::uint64_t seed) {
  static const char* words[] = {"mailbox ", "the ", "backup ", "retention ", "invoice ", "meeting ", "\r\n", "Subject: "};
  std::mt19937_64 rng(seed);
  std::string s;
  while (s.size() < n) s += words[rng() % 8];
  s.resize(n);
  return s;
}

inline storage::InitOptions fast_init(std::string passphrase = "correct horse") {
  storage::InitOptions o;
  o.keys.passphrase = std::move(passphrase);
  o.kdf = {1024, 8, 1};  // fast for tests; production uses the default
  o.pack_size = 1u << 20;
  return o;
}

inline Errc code_of(const std::function<void()>& f, std::string* what = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (what) *what = e.what();
    return e.code();
  }
  FAIL("expected an Error");
  return Errc::internal;
}

using Acked = std::vector<std::pair<storage::BlobId, std::string>>;

// A backup-like sequence on a repository opened with "correct horse": `batches`
// batches of `per_batch` 150 kB blobs, each batch acknowledged (appended to
// `acked`) only once flush() returns. Throws what the store or index throws.
inline void backup_like(storage::ObjectStore& store, storage::BlobIndex& index, int batches, int per_batch,
                        Acked& acked) {
  storage::Repository repo(store, storage::KeySource{"correct horse", std::nullopt}, index);
  for (int batch = 0; batch < batches; ++batch) {
    Acked pending;
    for (int i = 0; i < per_batch; ++i) {
      auto data = text_data(150'000, static_cast<unsigned>(batch * 100 + i));
      pending.emplace_back(repo.add_blob(storage::BlobType::data, data), data);
    }
    repo.flush();
    acked.insert(acked.end(), pending.begin(), pending.end());
  }
}

// Reads back every blob the crash writer acknowledged in `ack_file` (one
// "<content number> <blob id>" line per blob; a last line without its newline was
// never acknowledged) and checks it against its content. Returns how many.
inline std::size_t check_acknowledged(storage::Repository& repo, const std::string& ack_file) {
  std::ifstream acks(ack_file);
  std::string line;
  std::size_t n = 0;
  while (std::getline(acks, line)) {
    if (acks.eof()) break;
    std::istringstream in(line);
    std::uint64_t content;
    std::string hex;
    in >> content >> hex;
    auto id = storage::BlobId::from_hex(hex);
    REQUIRE(id.has_value());
    CHECK(repo.read_blob(*id) == crash_content(content));
    ++n;
  }
  return n;
}

// A repository for the crash writer (tests/unit/storage/crash_writer.cpp), which
// opens it with "crash passphrase".
inline void init_crash_repository(storage::ObjectStore& store) {
  auto init = fast_init("crash passphrase");
  storage::Repository::init(store, init);
}

// Runs `argv`, kills it with SIGKILL after `after`, and returns its exit status
// (128 + SIGKILL when the kill landed while it was still writing).
inline int run_and_kill(const std::vector<std::string>& argv, const std::string& output_file,
                        std::chrono::milliseconds after) {
  ProcessOptions o;
  o.argv = argv;
  o.output_file = output_file;
  ChildProcess child(o);
  std::this_thread::sleep_for(after);
  child.signal(SIGKILL);
  auto code = child.wait(std::chrono::milliseconds(10'000));
  REQUIRE(code.has_value());
  return *code;
}

}  // namespace m365vault::test
