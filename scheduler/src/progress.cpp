#include "m365vault/scheduler/progress.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace m365vault::scheduler {

namespace {
constexpr auto kRateWindow = std::chrono::seconds(30);

std::uint64_t get_u(const nlohmann::json& p, const char* k) {
  auto it = p.find(k);
  return it != p.end() && it->is_number() ? it->get<std::uint64_t>() : 0;
}
double get_d(const nlohmann::json& p, const char* k) {
  auto it = p.find(k);
  return it != p.end() && it->is_number() ? it->get<double>() : 0.0;
}
}  // namespace

void ProgressTracker::set_phase(std::string phase) {
  std::lock_guard lk(mu_);
  phase_ = std::move(phase);
}

nlohmann::json ProgressTracker::snapshot(clock::time_point now) {
  const std::uint64_t items = items_total();
  const std::uint64_t bytes = bytes_read_.load();
  const auto elapsed = std::chrono::duration_cast<std::chrono::seconds>(now - start_).count();
  nlohmann::json j{{"owners_done", owners_done_.load()},   {"owners_total", owners_total_.load()},
                   {"owners_skipped", owners_skipped_.load()},
                   {"items_new", items_new_.load()},       {"items_changed", items_changed_.load()},
                   {"items_deleted", items_deleted_.load()}, {"items_faulted", items_faulted_.load()},
                   {"bytes_new", bytes_new_.load()},       {"bytes_read", bytes},
                   {"elapsed_s", elapsed}};
  std::lock_guard lk(mu_);
  if (!phase_.empty()) j["phase"] = phase_;
  // Rate over the last window: the oldest sample still inside it against now.
  samples_.push_back({now, items, bytes});
  while (samples_.size() > 2 && now - samples_[1].at >= kRateWindow) samples_.pop_front();
  const Sample& from = samples_.size() > 1 ? samples_.front() : Sample{start_, 0, 0};
  const double secs = std::chrono::duration<double>(now - from.at).count();
  if (secs > 0.5) {
    j["items_per_s"] = std::round(double(items - from.items) / secs * 10) / 10;
    j["bytes_per_s"] = std::round(double(bytes - from.bytes) / secs);
  }
  // ETA from the share of owners done: crude on skewed tenants, but it only
  // claims what it knows and says nothing before the first owner is finished.
  const auto total = owners_total_.load(), done = owners_done_.load();
  if (total > 0 && done > 0 && done < total && elapsed > 0)
    j["eta_s"] = std::int64_t(std::ceil(double(elapsed) * double(total - done) / double(done)));
  return j;
}

std::string human_bytes(double bytes) {
  static const char* units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  int u = 0;
  while (bytes >= 1000 && u < 5) {
    bytes /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

std::string human_duration(std::int64_t s) {
  char buf[32];
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%llds", (long long)s);
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", (long long)(s / 3600), (long long)(s / 60 % 60));
  return buf;
}

std::string render_progress(std::string_view state, const nlohmann::json& p, bool tty, int width) {
  const auto owners_done = get_u(p, "owners_done"), owners_total = get_u(p, "owners_total");
  const auto items = get_u(p, "items_new") + get_u(p, "items_changed");
  const auto deleted = get_u(p, "items_deleted"), faulted = get_u(p, "items_faulted");
  std::string counts = std::string(state);
  if (auto ph = p.find("phase"); ph != p.end() && ph->is_string()) counts += " " + ph->get<std::string>();
  counts += "  owners " + std::to_string(owners_done) + "/" + std::to_string(owners_total);
  counts += "  items " + std::to_string(items);
  if (deleted) counts += " (-" + std::to_string(deleted) + ")";
  if (faulted) counts += "  faults " + std::to_string(faulted);
  counts += "  " + human_bytes(double(get_u(p, "bytes_read")));
  if (p.contains("items_per_s"))
    counts += "  " + std::to_string(std::llround(get_d(p, "items_per_s"))) + " items/s " +
              human_bytes(get_d(p, "bytes_per_s")) + "/s";
  if (p.contains("eta_s")) counts += "  eta " + human_duration(std::int64_t(get_d(p, "eta_s")));
  if (!tty) return counts;
  // [#####.....] 40% then the counts, cut to the terminal's width.
  const int bar = 20;
  const double frac = owners_total ? std::min(1.0, double(owners_done) / double(owners_total)) : 0.0;
  const int fill = int(frac * bar);
  std::string line = "[" + std::string(fill, '#') + std::string(bar - fill, '.') + "] ";
  char pct[8];
  std::snprintf(pct, sizeof pct, "%3d%% ", int(frac * 100));
  line += pct + counts;
  if (width > 0 && int(line.size()) > width) line.resize(std::size_t(width));
  return line;
}

}  // namespace m365vault::scheduler
