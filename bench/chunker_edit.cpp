// What a chunker setting costs and saves, on the real Chunker:
//
//   chunker_edit [file MiB] [repositories]
//
// For each candidate (min / avg / max), over `repositories` chunker secrets (chunk
// boundaries depend on the repository's secret): a file of random bytes is cut,
// then four 1 MiB overwrites far apart (at 15, 40, 65 and 90 % of the file, as
// tests/backup's drive test does) are cut again, and the bytes of chunks the
// repository does not hold yet are counted — what the edits add to the
// repository, per secret (the mean of the four edits): their mean, largest,
// median, 90th and 99th percentiles. Also printed: chunks per GiB (rows in repo_blobs, 32-byte ids in
// each file version's content_blobs) and the chunker's CPU throughput (median of
// the repositories; CPU time, so a loaded machine does not skew it).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "m365vault/storage/chunker.hpp"

using m365vault::storage::Chunker;
using m365vault::storage::ChunkerParams;

namespace {

double cpu_now() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// The chunks of `data` as (offset, length), fed like ContentSink does.
std::vector<std::pair<std::size_t, std::size_t>> cut_all(const Chunker& c, std::string_view data) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  std::size_t pos = 0;
  while (pos < data.size()) {
    auto n = c.next_cut(data.substr(pos), true);
    out.emplace_back(pos, n);
    pos += n;
  }
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// The value below which a share `q` of `v` lies (nearest rank).
double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100;
  const int repos = argc > 2 ? std::atoi(argv[2]) : 16;
  std::mt19937_64 rng(42);
  std::string file(mib << 20, '\0');
  for (std::size_t i = 0; i + 8 <= file.size(); i += 8) {
    auto v = rng();
    std::memcpy(&file[i], &v, 8);
  }
  std::string edited = file;
  for (int pct : {15, 40, 65, 90})
    for (std::size_t i = 0; i < (1u << 20); ++i) edited[file.size() * static_cast<std::size_t>(pct) / 100 + i] ^= 0x5a;

  const std::vector<ChunkerParams> candidates = {
      {512u << 10, 1u << 20, 8u << 20},    // the defaults until now
      {256u << 10, 512u << 10, 4u << 20},  // half
      {128u << 10, 256u << 10, 2u << 20},  // a quarter
  };
  std::printf("%zu MiB of random bytes, four 1 MiB edits, %d repository secrets\n", mib, repos);
  std::printf("%-22s %14s %14s %8s %8s %8s %12s %10s\n", "min / avg / max KiB", "added/edit MB", "max/edit MB", "median",
              "p90", "p99", "chunks/GiB", "MB/CPU-s");
  for (auto& p : candidates) {
    std::vector<double> per_edit, speed;
    double chunks = 0;
    for (int r = 0; r < repos; ++r) {
      std::string secret(32, static_cast<char>('a' + r));
      Chunker c(p, secret);
      const double t0 = cpu_now();
      auto before = cut_all(c, file);
      const double t1 = cpu_now();
      speed.push_back(static_cast<double>(file.size()) / 1e6 / (t1 - t0));
      chunks += static_cast<double>(before.size());
      std::set<std::string_view> held;
      for (auto [o, n] : before) held.insert(std::string_view(file).substr(o, n));
      std::size_t added = 0;
      for (auto [o, n] : cut_all(c, edited))
        if (!held.count(std::string_view(edited).substr(o, n))) added += n;
      per_edit.push_back(static_cast<double>(added) / 4 / 1e6);
    }
    char label[64];
    std::snprintf(label, sizeof label, "%zu / %zu / %zu", p.min_size >> 10, p.avg_size >> 10, p.max_size >> 10);
    double mean = 0;
    for (double v : per_edit) mean += v;
    mean /= static_cast<double>(per_edit.size());
    std::printf("%-22s %14.2f %14.2f %8.2f %8.2f %8.2f %12.0f %10.0f\n", label, mean,
                *std::max_element(per_edit.begin(), per_edit.end()), median(per_edit), quantile(per_edit, 0.9),
                quantile(per_edit, 0.99), chunks / repos * 1024.0 / static_cast<double>(mib), median(speed));
  }
}
