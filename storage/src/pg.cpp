#include "m365vault/storage/pg.hpp"

#include <poll.h>

#include <cerrno>
#include <cstring>

namespace m365vault::storage {

using clock = std::chrono::steady_clock;

namespace {

struct ConninfoOptionsDeleter {
  void operator()(PQconninfoOption* o) const noexcept { PQconninfoFree(o); }
};

// Waits until the connection's socket is readable/writable or the deadline passes.
bool wait_socket(PGconn* c, bool for_write, clock::time_point deadline) {
  int fd = PQsocket(c);
  if (fd < 0) return false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string describe_target(PGconn* c) {
  const char* host = PQhost(c);
  const char* db = PQdb(c);
  return std::string("'") + (db ? db : "?") + "' on '" + (host ? host : "?") + "'";
}

}  // namespace

long long PgResult::get_int(int row, int col) const { return std::stoll(std::string(get(row, col))); }

long long PgResult::affected() const {
  const char* s = PQcmdTuples(r_.get());
  return s && *s ? std::stoll(s) : 0;
}

std::optional<std::string> conninfo_problem(const std::string& conninfo) {
  char* err = nullptr;
  std::unique_ptr<PQconninfoOption, ConninfoOptionsDeleter> opts(PQconninfoParse(conninfo.c_str(), &err));
  if (!opts) {
    std::string msg = err ? trim(err) : "cannot parse";
    PQfreemem(err);
    return msg;
  }
  return std::nullopt;
}

std::string redact_conninfo(const std::string& conninfo) {
  // URL form: postgresql://user:password@host/db
  auto scheme = conninfo.find("://");
  if (scheme != std::string::npos) {
    auto at = conninfo.find('@', scheme + 3);
    auto colon = conninfo.find(':', scheme + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at)
      return conninfo.substr(0, colon + 1) + "***" + conninfo.substr(at);
    return conninfo;
  }
  // key=value form
  std::string out = conninfo;
  auto p = out.find("password");
  if (p != std::string::npos) {
    auto eq = out.find('=', p);
    if (eq != std::string::npos) {
      auto end = eq + 1;
      while (end < out.size() && out[end] == ' ') ++end;
      if (end < out.size() && out[end] == '\'') {
        auto close = out.find('\'', end + 1);
        end = close == std::string::npos ? out.size() : close + 1;
      } else {
        while (end < out.size() && out[end] != ' ') ++end;
      }
      out.replace(eq + 1, end - eq - 1, "***");
    }
  }
  return out;
}

PgConnection PgConnection::connect(const std::string& conninfo, PgTimeouts t) {
  if (auto problem = conninfo_problem(conninfo))
    throw Error(Errc::invalid_config, "database url '" + redact_conninfo(conninfo) + "': " + *problem);
  auto deadline = clock::now() + t.connect;
  PGconn* raw = PQconnectStart(conninfo.c_str());
  if (!raw) throw Error(Errc::database, "database: out of memory");
  std::unique_ptr<PGconn, PgConnDeleter> c(raw);
  if (PQstatus(raw) == CONNECTION_BAD)
    throw Error(Errc::database, "cannot connect to the database: " + trim(PQerrorMessage(raw)));
  for (;;) {
    auto st = PQconnectPoll(raw);
    if (st == PGRES_POLLING_OK) break;
    if (st == PGRES_POLLING_FAILED)
      throw Error(Errc::database, "cannot connect to the database " + describe_target(raw) + ": " +
                                      trim(PQerrorMessage(raw)));
    if (!wait_socket(raw, st == PGRES_POLLING_WRITING, deadline))
      throw Error(Errc::database, "cannot connect to the database " + describe_target(raw) + ": no answer within " +
                                      std::to_string(t.connect.count()) + " ms");
  }
  PgConnection conn(c.release(), t);
  conn.exec("SELECT set_config('statement_timeout', $1, false), set_config('client_min_messages', 'warning', false)",
            {std::to_string(t.statement.count())});
  return conn;
}

PgResult PgConnection::exec(std::string_view sql, const std::vector<PgParam>& params) {
  return exec(sql, params, timeouts_.statement + std::chrono::milliseconds(2000));
}

PgResult PgConnection::exec(std::string_view sql, const std::vector<PgParam>& params,
                            std::chrono::milliseconds within) {
  if (!conn_ || broken_) throw Error(Errc::database, "database connection is closed");
  PGconn* c = conn_.get();
  auto deadline = clock::now() + within;
  std::vector<const char*> values;
  values.reserve(params.size());
  for (auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  std::string q(sql);
  if (!PQsendQueryParams(c, q.c_str(), static_cast<int>(params.size()), nullptr, values.data(), nullptr, nullptr, 0)) {
    broken_ = PQstatus(c) != CONNECTION_OK;
    throw Error(Errc::database, "database: cannot send statement: " + trim(PQerrorMessage(c)));
  }
  // Flush (non-blocking connections may need it; ours is blocking, so this is quick).
  while (PQflush(c) == 1) {
    if (!wait_socket(c, true, deadline)) {
      broken_ = true;
      throw Error(Errc::timeout, "database: statement not sent within " + std::to_string(within.count()) + " ms");
    }
  }
  PgResultPtr last;
  std::string error;
  std::string sqlstate;
  for (;;) {
    while (PQisBusy(c)) {
      if (!wait_socket(c, false, deadline)) {
        broken_ = true;
        throw Error(Errc::timeout, "database: no answer within " + std::to_string(within.count()) + " ms");
      }
      if (!PQconsumeInput(c)) {
        broken_ = true;
        throw Error(Errc::database, "database connection lost: " + trim(PQerrorMessage(c)));
      }
    }
    PGresult* r = PQgetResult(c);
    if (!r) break;  // drained
    PgResultPtr res(r);
    auto st = PQresultStatus(r);
    if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR) {
      if (error.empty()) {
        error = trim(PQresultErrorMessage(r));
        const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        sqlstate = s ? s : "";
      }
    } else {
      last = std::move(res);
    }
  }
  if (PQstatus(c) != CONNECTION_OK) broken_ = true;
  if (!error.empty()) throw PgError(sqlstate, "database: " + error);
  if (!last) throw Error(Errc::database, "database: no result");
  return PgResult(std::move(last));
}

Database::Database(std::string conninfo, std::size_t pool_size, PgTimeouts timeouts,
                   std::shared_ptr<spdlog::logger> log)
    : conninfo_(std::move(conninfo)), pool_size_(pool_size ? pool_size : 1), timeouts_(timeouts),
      log_(std::move(log)), threads_(pool_size_) {}

Database::~Database() {
  ping_threads_.join();
  threads_.join();
}

Database::Lease Database::acquire() {
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return !idle_.empty() || out_ < pool_size_; });
  ++out_;
  if (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    return Lease{std::move(c)};
  }
  lk.unlock();
  try {
    return Lease{std::make_unique<PgConnection>(PgConnection::connect(conninfo_, timeouts_))};
  } catch (...) {
    std::lock_guard g(mu_);
    --out_;
    cv_.notify_one();
    throw;
  }
}

void Database::release(Lease lease) {
  std::lock_guard lk(mu_);
  --out_;
  if (lease.conn && lease.conn->healthy()) idle_.push_back(std::move(lease.conn));
  cv_.notify_one();
}

boost::asio::awaitable<std::optional<std::string>> Database::ping(std::chrono::milliseconds within) {
  auto conninfo = conninfo_;
  // A named operation, not a temporary in the co_await expression (see run()).
  auto op = boost::asio::co_spawn(
      ping_threads_,
      [conninfo, within]() -> boost::asio::awaitable<std::optional<std::string>> {
        try {
          auto start = clock::now();
          PgTimeouts t{within, within};
          auto c = PgConnection::connect(conninfo, t);
          auto left = within - std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start);
          c.exec("SELECT 1", {}, std::max(left, std::chrono::milliseconds(1)));
          co_return std::nullopt;
        } catch (const std::exception& e) {
          co_return std::string(e.what());
        }
      },
      boost::asio::use_awaitable);
  co_return co_await std::move(op);
}

}  // namespace m365vault::storage
