#include "m365vault/scheduler/notifier.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include "m365vault/scheduler/queue.hpp"

namespace m365vault::scheduler {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;

std::string hmac_sha256_hex(const std::string& key, const std::string& body) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(body.data()),
       body.size(), md, &n);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

int queue_overdue_notifications(storage::PgConnection& c, sys_seconds now, std::chrono::seconds grace) {
  auto jobs = c.exec(
      "SELECT j.id, j.schedule, j.timezone, extract(epoch from coalesce(s.last_success, j.created_at))::bigint,"
      " s.last_success IS NOT NULL,"
      " extract(epoch from j.overdue_notified_at)::bigint"
      " FROM jobs j LEFT JOIN LATERAL (SELECT max(finished_at) AS last_success FROM runs r"
      "   WHERE r.job_id = j.id AND r.state = 'succeeded') s ON true"
      " WHERE j.enabled AND j.schedule IS NOT NULL");
  int queued = 0;
  for (int i = 0; i < jobs.rows(); ++i) {
    std::string id(jobs.get(i, 0));
    std::optional<CronSchedule> cron;
    try {
      cron = CronSchedule::parse(jobs.get(i, 1), jobs.get(i, 2));
    } catch (const Error&) {
      continue;
    }
    sys_seconds since{std::chrono::seconds{jobs.get_int(i, 3)}};
    // The expected interval: the gap between the schedule's next two fires after `since`.
    auto f1 = cron->next_after(since);
    if (!f1) continue;
    auto f2 = cron->next_after(*f1);
    if (!f2) continue;
    auto deadline = since + 2 * (*f2 - *f1) + grace;
    if (now <= deadline) continue;
    if (!jobs.is_null(i, 5) && sys_seconds{std::chrono::seconds{jobs.get_int(i, 5)}} >= since) continue;
    // Claim the notice: one daemon wins per overdue spell.
    c.exec("BEGIN");
    try {
      auto claimed = c.exec(
          "UPDATE jobs SET overdue_notified_at = $2::timestamptz WHERE id = $1::uuid"
          " AND (overdue_notified_at IS NULL OR overdue_notified_at < $3::timestamptz) RETURNING name",
          {id, format_rfc3339(now), format_rfc3339(since)});
      if (claimed.rows() == 1) {
        auto job = Queue{}.get_job(c, id);
        nlohmann::json payload = {{"event", "job.overdue"},
                                  {"job", job ? job->to_json() : nlohmann::json(nullptr)},
                                  {"last_success", jobs.get(i, 4) == "t" ? nlohmann::json(format_rfc3339(since)) : nlohmann::json(nullptr)},
                                  {"expected_by", format_rfc3339(deadline)}};
        c.exec("INSERT INTO notifications (event, payload) VALUES ('job.overdue', $1::jsonb)", {payload.dump()});
        ++queued;
      }
      c.exec("COMMIT");
    } catch (...) {
      try {
        c.exec("ROLLBACK");
      } catch (...) {
      }
      throw;
    }
  }
  return queued;
}

struct NotifierState : std::enable_shared_from_this<NotifierState> {
  asio::strand<asio::any_io_executor> strand;
  storage::Database& db;
  net::HttpClient& http;
  NotifierOptions opts;
  std::shared_ptr<spdlog::logger> log;
  asio::steady_timer timer;
  bool stopping = false;
  bool running = false;
  std::function<void()> on_stopped;
  std::chrono::steady_clock::time_point next_overdue_check{};

  NotifierState(asio::any_io_executor ex, storage::Database& d, net::HttpClient& h, NotifierOptions o,
                std::shared_ptr<spdlog::logger> l)
      : strand(asio::make_strand(ex)), db(d), http(h), opts(std::move(o)), log(std::move(l)), timer(strand) {}

  struct Due {
    long long id;
    std::string event;
    std::string payload;
    int attempts;
  };

  awaitable<void> deliver(const Due& n) {
    net::ClientRequest req;
    req.method = "POST";
    req.url = opts.url;
    req.headers.set("Content-Type", "application/json");
    req.headers.set("X-M365Vault-Event", n.event);
    req.headers.set("X-M365Vault-Delivery", std::to_string(n.id));
    if (!opts.secret.empty()) req.headers.set("X-M365Vault-Signature", "sha256=" + hmac_sha256_hex(opts.secret, n.payload));
    req.body = n.payload;
    std::optional<std::string> error;
    try {
      auto res = co_await http.request(req);
      if (res.status < 200 || res.status > 299) error = "webhook answered " + std::to_string(res.status);
    } catch (const std::exception& e) {
      error = e.what();
    }
    const int attempts = n.attempts + 1;
    auto record = [&](storage::PgConnection& c) {
      if (!error) {
        c.exec("UPDATE notifications SET sent_at = now(), attempts = $2::int, last_error = NULL WHERE id = $1::bigint",
               {std::to_string(n.id), std::to_string(attempts)});
      } else if (attempts >= opts.max_attempts) {
        c.exec("UPDATE notifications SET gave_up_at = now(), attempts = $2::int, last_error = $3 WHERE id = $1::bigint",
               {std::to_string(n.id), std::to_string(attempts), *error});
      } else {
        auto delay = std::min<long long>(opts.retry_base.count() << std::min(attempts - 1, 16), 3600);
        c.exec(
            "UPDATE notifications SET attempts = $2::int, last_error = $3,"
            " next_attempt_at = now() + make_interval(secs => $4::int) WHERE id = $1::bigint",
            {std::to_string(n.id), std::to_string(attempts), *error, std::to_string(delay)});
      }
      return 0;
    };
    co_await db.run(record);
    if (error) log->warn("webhook {} #{} attempt {}: {}", n.event, n.id, attempts, *error);
    else log->info("webhook {} #{} delivered", n.event, n.id);
  }

  awaitable<void> loop() {
    auto self = shared_from_this();
    while (!stopping) {
      try {
        if (std::chrono::steady_clock::now() >= next_overdue_check) {
          next_overdue_check = std::chrono::steady_clock::now() + opts.overdue_check_interval;
          auto check = [this](storage::PgConnection& c) {
            return queue_overdue_notifications(
                c, std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()), opts.overdue_grace);
          };
          co_await db.run(check);
        }
        // Lease due rows for a minute: another daemon will not send them meanwhile.
        auto lease = [](storage::PgConnection& c) {
          auto r = c.exec(
              "UPDATE notifications n SET next_attempt_at = now() + interval '60 seconds'"
              " WHERE n.id IN (SELECT id FROM notifications WHERE sent_at IS NULL AND gave_up_at IS NULL"
              "   AND next_attempt_at <= now() ORDER BY id LIMIT 20 FOR UPDATE SKIP LOCKED)"
              " RETURNING n.id, n.event, n.payload::text, n.attempts");
          std::vector<Due> out;
          for (int i = 0; i < r.rows(); ++i)
            out.push_back({r.get_int(i, 0), std::string(r.get(i, 1)), std::string(r.get(i, 2)),
                           static_cast<int>(r.get_int(i, 3))});
          return out;
        };
        auto due = co_await db.run(lease);
        for (auto& n : due) co_await deliver(n);
      } catch (const std::exception& e) {
        log->warn("notifier: {}", e.what());
      }
      timer.expires_after(opts.poll_interval);
      boost::system::error_code ec;
      co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    }
  }
};

Notifier::Notifier(asio::any_io_executor ex, storage::Database& db, net::HttpClient& http, NotifierOptions opts,
                   std::shared_ptr<spdlog::logger> log)
    : s_(std::make_shared<NotifierState>(ex, db, http, std::move(opts), std::move(log))) {}

Notifier::~Notifier() = default;

void Notifier::start() {
  auto s = s_;
  if (s->opts.url.empty()) return;
  asio::post(s->strand, [s] {
    s->running = true;
    asio::co_spawn(s->strand, s->loop(), [s](std::exception_ptr) {
      asio::post(s->strand, [s] {
        s->running = false;
        if (s->on_stopped) std::exchange(s->on_stopped, nullptr)();
      });
    });
  });
}

void Notifier::stop(std::function<void()> done) {
  auto s = s_;
  asio::post(s->strand, [s, done = std::move(done)] {
    s->stopping = true;
    s->timer.cancel();
    if (!s->running) {
      done();
      return;
    }
    s->on_stopped = done;
  });
}

}  // namespace m365vault::scheduler
