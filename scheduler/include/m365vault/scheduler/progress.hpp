#pragma once
// A run's progress as people and the API see it: owners done of total, items
// and bytes new/changed/deleted, faults, a current rate and an ETA. Job kinds
// count into a ProgressTracker (thread-safe, cheap: atomics); the worker
// persists snapshot() with each heartbeat into runs.progress, and the CLI and
// the dashboard render that JSON. One schema for every kind of work:
//
//   { "phase": "mail", "owners_done": 3, "owners_total": 20, "owners_skipped": 1,
//     "items_new": 1200, "items_changed": 4, "items_deleted": 2, "items_faulted": 0,
//     "bytes_new": 9123456, "bytes_read": 10234567,
//     "items_per_s": 812.5, "bytes_per_s": 6.1e6,     (over the last ~30 s)
//     "elapsed_s": 12, "eta_s": 48 }                  (eta absent until it means something)
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>

namespace m365vault::scheduler {

class ProgressTracker {
 public:
  using clock = std::chrono::steady_clock;
  explicit ProgressTracker(clock::time_point start = clock::now()) : start_(start) {}

  void set_phase(std::string phase);
  void set_owners_total(std::uint64_t n) { owners_total_ = n; }
  void owner_done() { ++owners_done_; }
  void owner_skipped() { ++owners_skipped_; ++owners_done_; }
  void item_new(std::uint64_t bytes_stored) { ++items_new_; bytes_new_ += bytes_stored; }
  void item_changed(std::uint64_t bytes_stored) { ++items_changed_; bytes_new_ += bytes_stored; }
  void item_deleted() { ++items_deleted_; }
  // Many at once (a committed page).
  void count(std::uint64_t added, std::uint64_t changed, std::uint64_t deleted, std::uint64_t bytes_stored) {
    items_new_ += added;
    items_changed_ += changed;
    items_deleted_ += deleted;
    bytes_new_ += bytes_stored;
  }
  void item_faulted() { ++items_faulted_; }
  // Bytes received from the source (before deduplication).
  void bytes_read(std::uint64_t n) { bytes_read_ += n; }

  std::uint64_t items_total() const { return items_new_ + items_changed_ + items_deleted_; }
  std::uint64_t faulted() const { return items_faulted_; }

  // The JSON above. Rates come from samples taken by snapshot() itself, so call
  // it at the persistence cadence (every heartbeat), not in a tight loop.
  nlohmann::json snapshot(clock::time_point now = clock::now());

 private:
  clock::time_point start_;
  std::atomic<std::uint64_t> owners_total_{0}, owners_done_{0}, owners_skipped_{0};
  std::atomic<std::uint64_t> items_new_{0}, items_changed_{0}, items_deleted_{0}, items_faulted_{0};
  std::atomic<std::uint64_t> bytes_new_{0}, bytes_read_{0};
  std::mutex mu_;
  std::string phase_;
  struct Sample {
    clock::time_point at;
    std::uint64_t items, bytes;
  };
  std::deque<Sample> samples_;
};

// One line for people. With `tty`, a bar sized to `width` columns, meant to be
// redrawn in place ("\r"); otherwise a plain line for logs and pipes. `state`
// is the run's state (queued, running, ...).
std::string render_progress(std::string_view state, const nlohmann::json& progress, bool tty, int width = 80);

// "1.2 MB", "3.4 GB" (decimal units, as disks and networks are sold).
std::string human_bytes(double bytes);
// "42s", "3m05s", "2h01m".
std::string human_duration(std::int64_t seconds);

}  // namespace m365vault::scheduler
