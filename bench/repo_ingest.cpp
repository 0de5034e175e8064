// bench/repo_ingest: one command that generates a deterministic corpus, ingests it
// into a fresh m365vault repository and into a fresh restic repository (restic
// from Debian), twice each, and prints throughput, CPU per GB, peak RSS and
// repository size side by side.
//
//   repo_ingest [--dir DIR] [--scale S] [--restic PATH] [--pg CONNINFO]
//
// With --pg the ingests use the PostgreSQL blob index (PgBlobIndex) in that
// database (migrated, its repo_* tables emptied first), as the daemon does;
// without it an in-memory index rebuilt from the pack tables.
//
// Each ingest runs in a child process (this binary with --ingest, or restic), so
// CPU time and peak RSS come from wait4() and cover that ingest alone.
#include <malloc.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "m365vault/core/error.hpp"
#include "m365vault/storage/fs_store.hpp"
#include "m365vault/storage/migrate.hpp"
#include "m365vault/storage/pg_index.hpp"
#include "m365vault/storage/repository.hpp"

namespace fs = std::filesystem;
using namespace m365vault;

namespace {

constexpr std::uint64_t kSeed = 20240601;
constexpr const char* kPassphrase = "bench passphrase";

// ---- corpus ----

const char* const kWords[] = {
    "the", "meeting", "invoice", "quarterly", "report", "please", "find", "attached", "regards", "thanks",
    "project", "deadline", "budget", "review", "customer", "contract", "update", "schedule", "team", "office",
    "tomorrow", "agenda", "minutes", "draft", "final", "approval", "request", "support", "ticket", "release",
    "backup", "server", "tenant", "mailbox", "calendar", "holiday", "training", "security", "policy", "access",
    "we", "will", "be", "to", "and", "of", "for", "on", "with", "in", "a", "is", "it", "that", "this", "as"};

struct Gen {
  std::mt19937_64 rng;
  explicit Gen(std::uint64_t seed) : rng(seed) {}
  std::uint64_t below(std::uint64_t n) { return rng() % n; }
  std::size_t log_uniform(double lo, double hi) {
    std::uniform_real_distribution<double> d(std::log(lo), std::log(hi));
    return static_cast<std::size_t>(std::exp(d(rng)));
  }
  void text(std::string& out, std::size_t n) {
    std::size_t end = out.size() + n, col = 0;
    while (out.size() < end) {
      const char* w = kWords[below(std::size(kWords))];
      out += w;
      col += std::strlen(w) + 1;
      if (col > 70) {
        out += "\r\n";
        col = 0;
      } else {
        out += ' ';
      }
    }
    out.resize(end);
  }
  void noise(std::string& out, std::size_t n) {
    std::size_t at = out.size();
    out.resize(at + n);
    for (std::size_t i = 0; i < n; i += 8) {
      auto v = rng();
      std::memcpy(out.data() + at + i, &v, std::min<std::size_t>(8, n - i));
    }
  }
  void base64_noise(std::string& out, std::size_t n) {
    static const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (std::size_t i = 0; i < n; ++i) {
      out += kB64[below(64)];
      if (i % 76 == 75) out += "\r\n";
    }
  }
};

std::string message(Gen& g, std::size_t index) {
  std::size_t target = g.log_uniform(2'000, 100'000);
  std::string m;
  m += "From: user" + std::to_string(g.below(500)) + "@contoso.example\r\n";
  m += "To: user" + std::to_string(g.below(500)) + "@contoso.example\r\n";
  m += "Subject: ";
  g.text(m, 30 + g.below(40));
  m += "\r\nDate: Mon, " + std::to_string(1 + g.below(28)) + " Jan 2024 10:00:00 +0000\r\n";
  m += "Message-ID: <" + std::to_string(index) + "." + std::to_string(g.rng()) + "@contoso.example>\r\n";
  m += "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n";
  m += "Content-Type: text/plain; charset=utf-8\r\n\r\n";
  bool attachment = g.below(10) < 4 && target > 8'000;
  std::size_t body = attachment ? target / 3 : target - m.size();
  g.text(m, std::min(body, target));
  if (attachment) {
    m += "\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n";
    std::size_t left = target > m.size() ? target - m.size() : 1'000;
    g.base64_noise(m, left);
  }
  m += "\r\n--b1--\r\n";
  return m;
}

std::string document(Gen& g) {
  std::size_t target = g.log_uniform(100'000, 20'000'000);
  std::string d;
  d.reserve(target);
  bool media = g.below(10) < 4;  // photos, archives: incompressible
  while (d.size() < target) {
    std::size_t piece = std::min<std::size_t>(target - d.size(), 4'096 + g.below(60'000));
    if (media || g.below(4) == 0)
      g.noise(d, piece);
    else
      g.text(d, piece);
  }
  return d;
}

void write(const fs::path& p, const std::string& data) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!f) throw std::runtime_error("cannot write " + p.string());
}

std::uint64_t tree_size(const fs::path& dir) {
  std::uint64_t n = 0;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) n += e.file_size();
  return n;
}

void generate(const fs::path& dir, double scale) {
  auto stamp = dir / ".complete";
  std::string tag = "seed=" + std::to_string(kSeed) + " scale=" + std::to_string(scale);
  if (fs::exists(stamp)) {
    std::ifstream f(stamp);
    std::string have;
    std::getline(f, have);
    if (have == tag) return;
  }
  fs::remove_all(dir);
  Gen g(kSeed);
  auto messages = static_cast<std::size_t>(20'000 * scale);
  auto files = std::max<std::size_t>(1, static_cast<std::size_t>(200 * scale));
  std::vector<std::string> recent;  // a window of earlier messages to duplicate
  for (std::size_t i = 0; i < messages; ++i) {
    std::string m;
    if (i > 100 && g.below(10) == 0) {
      m = recent[g.below(recent.size())];  // the same message in another folder
    } else {
      m = message(g, i);
      if (recent.size() < 256) recent.push_back(m);
      else recent[g.below(256)] = m;
    }
    write(dir / "mail" / ("user" + std::to_string(i % 40)) / (std::to_string(i) + ".eml"), m);
  }
  std::vector<fs::path> written;
  for (std::size_t i = 0; i < files; ++i) {
    std::string d;
    if (i > 5 && g.below(10) == 0) {
      // A lightly edited copy: a few bytes changed and a line inserted mid-file.
      std::ifstream f(written[g.below(written.size())], std::ios::binary);
      d.assign(std::istreambuf_iterator<char>(f), {});
      d.insert(d.size() / 2, "edited by someone\r\n");
      for (int k = 0; k < 3 && !d.empty(); ++k) d[g.below(d.size())] ^= 0x5a;
    } else {
      d = document(g);
    }
    auto p = dir / "files" / ("doc" + std::to_string(i) + ".bin");
    write(p, d);
    written.push_back(p);
  }
  std::ofstream(stamp) << tag << "\n";
}

// ---- our ingest (child process) ----

int ingest(const fs::path& repo_dir, const fs::path& corpus, const std::string& conninfo) {
  // Pack-sized buffers are allocated and freed on several threads. glibc's dynamic
  // mmap threshold would move them into per-thread heap arenas that never shrink;
  // a fixed threshold keeps them mmapped and returned on free (the daemon does
  // the same at start-up).
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  fs::create_directories(repo_dir);
  storage::FsStore store(repo_dir);
  if (!store.stat("config")) {
    storage::InitOptions o;
    o.keys.passphrase = kPassphrase;
    storage::Repository::init(store, o);
  }
  std::unique_ptr<storage::BlobIndex> index;
  if (!conninfo.empty()) {
    index = std::make_unique<storage::PgBlobIndex>(conninfo);
  } else {
    index = std::make_unique<storage::MemoryIndex>();
  }
  storage::Repository repo(store, storage::KeySource{kPassphrase, std::nullopt}, *index);
  // Without PostgreSQL, the index is rebuilt from pack tables.
  if (conninfo.empty())
    for (auto& p : repo.list_packs()) index->add_pack(p, 0, repo.read_pack_table(p));

  std::vector<fs::path> paths;
  for (auto& e : fs::recursive_directory_iterator(corpus))
    if (e.is_regular_file() && e.path().filename().string()[0] != '.') paths.push_back(e.path());
  std::sort(paths.begin(), paths.end());
  // Small items go in pages (as a Graph page of messages would), large ones streamed.
  std::string page;
  page.reserve(5u << 20);
  std::vector<std::pair<std::size_t, std::size_t>> items;
  auto flush_page = [&] {
    std::vector<std::string_view> views;
    for (auto [at, n] : items) views.emplace_back(page.data() + at, n);
    repo.add_blobs(storage::BlobType::data, views);
    page.clear();
    items.clear();
  };
  std::size_t small_limit = repo.config().chunker.min_size;
  for (auto& p : paths) {
    std::FILE* f = std::fopen(p.c_str(), "rb");
    if (!f) throw std::runtime_error("cannot open " + p.string());
    auto size = fs::file_size(p);
    if (size <= small_limit) {
      std::size_t at = page.size();
      page.resize(at + size);
      if (size && std::fread(page.data() + at, 1, size, f) != size) throw std::runtime_error("short read " + p.string());
      items.emplace_back(at, size);
      if (items.size() >= 100 || page.size() >= (4u << 20)) flush_page();
    } else {
      repo.add_stream([&](char* out, std::size_t n) { return std::fread(out, 1, n, f); });
    }
    std::fclose(f);
  }
  flush_page();
  repo.flush();
  auto s = repo.stats();
  std::printf("blobs %llu new %llu bytes %llu new %llu packs %llu\n", (unsigned long long)s.blobs_added,
              (unsigned long long)s.blobs_new, (unsigned long long)s.bytes_added, (unsigned long long)s.bytes_new,
              (unsigned long long)s.packs_written);
  return 0;
}

// ---- measuring children ----

struct Run {
  double wall = 0, cpu = 0;
  long max_rss_kb = 0;
  int status = 0;
};

Run measure(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& log) {
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    for (auto& e : env) putenv(const_cast<char*>(e.c_str()));
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  Run r;
  r.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
          static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  r.max_rss_kb = ru.ru_maxrss;
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

void row(const char* name, const Run& r, double gb, std::uint64_t repo_bytes) {
  std::printf("%-22s %9.1f %9.2f %10.1f %9.0f %12.1f\n", name, gb * 1024 / r.wall, r.wall, r.cpu / gb,
              static_cast<double>(r.max_rss_kb) / 1024, static_cast<double>(repo_bytes) / (1 << 20));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    if ((args.size() == 3 || args.size() == 4) && args[0] == "--ingest")
      return ingest(args[1], args[2], args.size() == 4 ? args[3] : std::string());
    const char* tmp = std::getenv("TMPDIR");
    fs::path dir = fs::path(tmp && *tmp ? tmp : "/tmp") / "m365vault-bench";
    double scale = 1.0;
    std::string restic = "restic";
    std::string conninfo;
    for (std::size_t i = 0; i + 1 < args.size(); i += 2) {
      if (args[i] == "--dir") dir = args[i + 1];
      else if (args[i] == "--scale") scale = std::stod(args[i + 1]);
      else if (args[i] == "--restic") restic = args[i + 1];
      else if (args[i] == "--pg") conninfo = args[i + 1];
      else throw std::runtime_error("unknown option " + args[i]);
    }
    fs::path corpus = dir / "corpus", ours = dir / "m365vault-repo", theirs = dir / "restic-repo";
    std::string log = (dir / "bench.log").string();
    fs::create_directories(dir);
    std::printf("generating corpus in %s (scale %.2f)...\n", corpus.c_str(), scale);
    generate(corpus, scale);
    std::uint64_t bytes = tree_size(corpus);
    double gb = static_cast<double>(bytes) / (1ull << 30);
    std::printf("corpus: %.1f MiB\n", static_cast<double>(bytes) / (1 << 20));
    fs::remove_all(ours);
    fs::remove_all(theirs);
    std::string self = fs::read_symlink("/proc/self/exe").string();
    std::vector<std::string> ingest_args = {self, "--ingest", ours.string(), corpus.string()};
    if (!conninfo.empty()) {
      auto c = storage::PgConnection::connect(conninfo);
      spdlog::logger quiet("bench");
      quiet.set_level(spdlog::level::warn);
      storage::migrate(c, storage::builtin_migrations(), quiet);
      c.exec("TRUNCATE repo_packs, repo_blobs");
      ingest_args.push_back(conninfo);
      std::printf("index: PostgreSQL (PgBlobIndex)\n");
    }
    auto o1 = measure(ingest_args, {}, log);
    auto o2 = measure(ingest_args, {}, log);
    auto ours_size = tree_size(ours);
    std::vector<std::string> env = {"RESTIC_PASSWORD=" + std::string(kPassphrase), "RESTIC_CACHE_DIR=" + (dir / "restic-cache").string()};
    fs::remove_all(dir / "restic-cache");
    auto init = measure({restic, "init", "--repo", theirs.string()}, env, log);
    Run r1, r2;
    std::uint64_t theirs_size = 0;
    bool have_restic = init.status == 0;
    if (have_restic) {
      r1 = measure({restic, "backup", "--repo", theirs.string(), "--no-scan", corpus.string()}, env, log);
      r2 = measure({restic, "backup", "--repo", theirs.string(), "--no-scan", corpus.string()}, env, log);
      if (r1.status != 0) {  // --no-scan is newer than some restic versions
        fs::remove_all(theirs);
        measure({restic, "init", "--repo", theirs.string()}, env, log);
        r1 = measure({restic, "backup", "--repo", theirs.string(), corpus.string()}, env, log);
        r2 = measure({restic, "backup", "--repo", theirs.string(), corpus.string()}, env, log);
      }
      theirs_size = tree_size(theirs);
    }
    if (o1.status || o2.status) throw std::runtime_error("m365vault ingest failed; see " + log);
    std::printf("\n%-22s %9s %9s %10s %9s %12s\n", "run", "MiB/s", "wall s", "CPU s/GiB", "RSS MiB", "repo MiB");
    row("m365vault first", o1, gb, ours_size);
    row("m365vault second", o2, gb, ours_size);
    if (have_restic && r1.status == 0) {
      row("restic first", r1, gb, theirs_size);
      row("restic second", r2, gb, theirs_size);
      std::printf("\nratios m365vault/restic: throughput %.2f, CPU per GiB %.2f, peak RSS %.2f, repo size %.3f\n",
                  r1.wall / o1.wall, o1.cpu / r1.cpu, static_cast<double>(o1.max_rss_kb) / static_cast<double>(r1.max_rss_kb),
                  static_cast<double>(ours_size) / static_cast<double>(theirs_size));
    } else {
      std::printf("\nrestic did not run (install it: apt-get install restic); see %s\n", log.c_str());
    }
    std::printf("m365vault second ingest %.1fx faster than the first; corpus/repo %.2f\n", o1.wall / o2.wall,
                static_cast<double>(bytes) / static_cast<double>(ours_size));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "repo_ingest: %s\n", e.what());
    return 1;
  }
}
