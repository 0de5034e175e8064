#pragma once
// A daemon's share of the scheduler: it fires due schedules, claims runs of the
// kinds it can execute (up to its concurrency), renews their leases by
// heartbeat (saving progress), and ends them with their outcome. A failed run
// is retried with exponential backoff up to its job's max_attempts.
// Cancellation: a run's context reports cancelled() once the operator asked (or
// the worker stops); the run is expected to return promptly with what it has
// committed. Runs on the executor it is given (one strand per run).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "m365vault/scheduler/queue.hpp"
#include "m365vault/storage/pg.hpp"

namespace m365vault::scheduler {

// What a job kind sees of the run it executes. Thread-safe.
class RunContext {
 public:
  RunContext(ClaimedRun run, std::shared_ptr<spdlog::logger> log) : run_(std::move(run)), log_(std::move(log)) {}
  const ClaimedRun& run() const { return run_; }
  spdlog::logger& log() { return *log_; }
  // Progress to persist with the next heartbeat (items, bytes, owners, rate...).
  void set_progress(nlohmann::json p) {
    std::lock_guard lk(mu_);
    progress_ = std::move(p);
  }
  nlohmann::json progress() const {
    std::lock_guard lk(mu_);
    return progress_;
  }
  bool cancelled() const { return cancelled_.load(); }
  void cancel() { cancelled_ = true; }

 private:
  ClaimedRun run_;
  std::shared_ptr<spdlog::logger> log_;
  mutable std::mutex mu_;
  nlohmann::json progress_ = nlohmann::json::object();
  std::atomic<bool> cancelled_{false};
};

struct RunOutcome {
  RunState state;  // succeeded, partial, failed or cancelled
  std::optional<std::string> error;
};

// A kind of work (backup, restore, export, verify, prune...).
class JobKind {
 public:
  virtual ~JobKind() = default;
  // Executes one run; exceptions end it as failed with their message.
  virtual boost::asio::awaitable<RunOutcome> execute(RunContext& ctx) = 0;
};

struct WorkerOptions {
  std::size_t concurrency = 2;                      // runs at once in this daemon
  std::chrono::milliseconds poll_interval{2000};    // look for work this often when idle
  std::chrono::milliseconds heartbeat_interval{10000};
  std::chrono::milliseconds tick_interval{15000};   // fire due schedules this often
  std::chrono::seconds retry_base{30};              // backoff: base * 2^(attempt-1), at most an hour
  bool fire_schedules = true;                       // false: leave schedules to the daemons
  std::optional<std::string> only_run;              // claim this run and nothing else (CLI commands)
};

class Worker {
 public:
  Worker(boost::asio::any_io_executor ex, storage::Database& db, Queue queue,
         std::map<std::string, std::shared_ptr<JobKind>> kinds, WorkerOptions opts, std::string worker_id,
         std::shared_ptr<spdlog::logger> log);
  ~Worker();

  void start();
  // Stops claiming, asks running runs to cancel, and calls done() once they
  // have ended (their leases released or left to expire).
  void stop(std::function<void()> done);
  std::size_t running() const;
  const std::string& id() const;

 private:
  std::shared_ptr<struct WorkerState> s_;
};

}  // namespace m365vault::scheduler
