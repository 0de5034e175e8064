#include "m365vault/scheduler/worker.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <set>

namespace m365vault::scheduler {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;

struct WorkerState : std::enable_shared_from_this<WorkerState> {
  asio::any_io_executor ex;
  asio::strand<asio::any_io_executor> strand;  // the loops and the set of running runs
  storage::Database& db;
  Queue queue;
  std::map<std::string, std::shared_ptr<JobKind>> kinds;
  std::vector<std::string> kind_names;
  WorkerOptions opts;
  std::string id;
  std::shared_ptr<spdlog::logger> log;
  bool stopping = false;
  std::set<std::shared_ptr<RunContext>> running;
  std::function<void()> on_stopped;
  asio::steady_timer wake;
  asio::steady_timer tick_timer;
  std::atomic<std::size_t> running_count{0};
  int loops = 0;

  WorkerState(asio::any_io_executor e, storage::Database& d, Queue q, std::map<std::string, std::shared_ptr<JobKind>> k,
              WorkerOptions o, std::string i, std::shared_ptr<spdlog::logger> l)
      : ex(e), strand(asio::make_strand(e)), db(d), queue(q), kinds(std::move(k)), opts(o), id(std::move(i)),
        log(std::move(l)), wake(strand), tick_timer(strand) {
    for (auto& [name, _] : kinds) kind_names.push_back(name);
  }

  void maybe_done() {
    if (stopping && running.empty() && loops == 0 && on_stopped) std::exchange(on_stopped, nullptr)();
  }

  awaitable<void> tick_loop() {
    auto self = shared_from_this();
    while (!stopping) {
      try {
        auto fire = [this](storage::PgConnection& c) {
          return queue.fire_due(c, std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
        };
        auto fired = co_await db.run(fire);
        if (!fired.empty()) {
          log->info("worker={} queued {} scheduled run(s)", id, fired.size());
          wake.cancel();
        }
      } catch (const std::exception& e) {
        log->warn("worker={} schedule tick: {}", id, e.what());
      }
      tick_timer.expires_after(opts.tick_interval);
      boost::system::error_code ec;
      co_await tick_timer.async_wait(asio::redirect_error(use_awaitable, ec));
    }
  }

  awaitable<void> claim_loop() {
    auto self = shared_from_this();
    while (!stopping) {
      if (running.size() >= opts.concurrency || kind_names.empty()) {
        wake.expires_after(opts.poll_interval);
        boost::system::error_code ec;
        co_await wake.async_wait(asio::redirect_error(use_awaitable, ec));
        continue;
      }
      std::optional<ClaimedRun> got;
      try {
        auto claim = [this](storage::PgConnection& c) { return queue.claim(c, id, kind_names, opts.only_run); };
        got = co_await db.run(claim);
      } catch (const std::exception& e) {
        log->warn("worker={} claim: {}", id, e.what());
      }
      if (stopping && got) {
        // Claimed while stopping: hand it straight back to the queue.
        try {
          auto give_back = [this, run_id = got->id](storage::PgConnection& c) { return queue.release(c, run_id, id); };
          co_await db.run(give_back);
        } catch (const std::exception& e) {
          log->warn("worker={} run={} could not be given back ({}); its lease will hand it on", id, got->id, e.what());
        }
        break;
      }
      if (!got) {
        wake.expires_after(opts.poll_interval);
        boost::system::error_code ec;
        co_await wake.async_wait(asio::redirect_error(use_awaitable, ec));
        continue;
      }
      auto ctx = std::make_shared<RunContext>(*got, log);
      running.insert(ctx);
      ++running_count;
      log->info("worker={} run={} job={} kind={} attempt={}{} started", id, got->id, got->job_id, got->kind,
                got->attempt, got->taken_over ? " (taken over)" : "");
      asio::co_spawn(asio::make_strand(ex), execute(ctx), [self, ctx](std::exception_ptr) {
        asio::post(self->strand, [self, ctx] {
          self->running.erase(ctx);
          --self->running_count;
          self->wake.cancel();
          self->maybe_done();
        });
      });
    }
  }

  awaitable<void> heartbeat_loop(std::shared_ptr<RunContext> ctx, std::shared_ptr<std::atomic<bool>> done,
                                 std::shared_ptr<std::atomic<bool>> lost) {
    auto self = shared_from_this();
    auto exec = co_await asio::this_coro::executor;
    while (!*done) {
      asio::steady_timer t(exec, opts.heartbeat_interval);
      boost::system::error_code ec;
      co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
      if (*done) break;
      try {
        auto beat = [this, ctx](storage::PgConnection& c) {
          return queue.heartbeat(c, ctx->run().id, id, ctx->progress());
        };
        auto hb = co_await db.run(beat);
        if (!hb.lease_held) {
          log->error("worker={} run={} lease lost: another worker owns it now; stopping it here", id, ctx->run().id);
          *lost = true;
          ctx->cancel();
          break;
        }
        if (hb.cancel_requested && !ctx->cancelled()) {
          log->info("worker={} run={} cancel requested", id, ctx->run().id);
          ctx->cancel();
        }
      } catch (const std::exception& e) {
        log->warn("worker={} run={} heartbeat: {}", id, ctx->run().id, e.what());
      }
    }
  }

  awaitable<void> execute(std::shared_ptr<RunContext> ctx) {
    auto self = shared_from_this();
    auto done = std::make_shared<std::atomic<bool>>(false);
    auto lost = std::make_shared<std::atomic<bool>>(false);
    auto exec = co_await asio::this_coro::executor;
    asio::co_spawn(exec, heartbeat_loop(ctx, done, lost), [](std::exception_ptr) {});
    RunOutcome out{RunState::failed, std::nullopt};
    try {
      auto kind = kinds.at(ctx->run().kind);
      out = co_await kind->execute(*ctx);
    } catch (const std::exception& e) {
      out = {RunState::failed, std::string(e.what())};
    }
    *done = true;
    if (*lost) co_return;
    if (out.state == RunState::failed && ctx->cancelled()) out.state = RunState::cancelled;
    auto backoff = std::min<std::chrono::seconds>(opts.retry_base * (1 << std::min(ctx->run().attempt - 1, 10)),
                                                  std::chrono::hours(1));
    try {
      auto finish = [this, ctx, out, backoff](storage::PgConnection& c) {
        c.exec("UPDATE runs SET progress = $2::jsonb WHERE id = $1::uuid", {ctx->run().id, ctx->progress().dump()});
        if (out.error) queue.add_event(c, ctx->run().id, out.state == RunState::failed ? "error" : "warn", *out.error);
        return queue.finish(c, ctx->run().id, id, out.state, out.error, backoff);
      };
      bool ok = co_await db.run(finish);
      log->info("worker={} run={} ended {}{}{}", id, ctx->run().id, to_string(out.state),
                out.error ? ": " + *out.error : "", ok ? "" : " (lease was lost: result not recorded)");
    } catch (const std::exception& e) {
      log->error("worker={} run={} could not record its end ({}); its lease will hand it on", id, ctx->run().id,
                 e.what());
    }
  }
};

Worker::Worker(asio::any_io_executor ex, storage::Database& db, Queue queue,
               std::map<std::string, std::shared_ptr<JobKind>> kinds, WorkerOptions opts, std::string worker_id,
               std::shared_ptr<spdlog::logger> log)
    : s_(std::make_shared<WorkerState>(ex, db, queue, std::move(kinds), opts, std::move(worker_id), std::move(log))) {}

Worker::~Worker() = default;

void Worker::start() {
  auto s = s_;
  asio::post(s->strand, [s] {
    s->loops = s->opts.fire_schedules ? 2 : 1;
    auto end = [s](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          s->log->error("worker={} loop ended: {}", s->id, ex.what());
        }
      }
      asio::post(s->strand, [s] {
        --s->loops;
        s->maybe_done();
      });
    };
    if (s->opts.fire_schedules) asio::co_spawn(s->strand, s->tick_loop(), end);
    asio::co_spawn(s->strand, s->claim_loop(), end);
  });
}

void Worker::stop(std::function<void()> done) {
  auto s = s_;
  asio::post(s->strand, [s, done = std::move(done)] {
    s->stopping = true;
    s->on_stopped = done;
    s->wake.cancel();
    s->tick_timer.cancel();
    for (auto& ctx : s->running) ctx->cancel();
    s->maybe_done();
  });
}

std::size_t Worker::running() const { return s_->running_count.load(); }

const std::string& Worker::id() const { return s_->id; }

}  // namespace m365vault::scheduler
