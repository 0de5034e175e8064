#pragma once
// PostgreSQL access through libpq. Every statement is parameterised
// (PQsendQueryParams); every network wait has a deadline, so a frozen or
// unreachable server costs a caller at most its timeout, never a hang.
#include <libpq-fe.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/logger.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "m365vault/core/error.hpp"

namespace m365vault::storage {

struct PgResultDeleter {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
struct PgConnDeleter {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
using PgResultPtr = std::unique_ptr<PGresult, PgResultDeleter>;

// A parameter: text value or SQL NULL.
using PgParam = std::optional<std::string>;

// A query result (tuples or command status).
class PgResult {
 public:
  explicit PgResult(PgResultPtr r) : r_(std::move(r)) {}
  int rows() const { return PQntuples(r_.get()); }
  int cols() const { return PQnfields(r_.get()); }
  bool is_null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  std::string_view get(int row, int col) const {
    return {PQgetvalue(r_.get(), row, col), static_cast<size_t>(PQgetlength(r_.get(), row, col))};
  }
  long long get_int(int row, int col) const;
  // Rows affected by INSERT/UPDATE/DELETE.
  long long affected() const;
  PGresult* raw() const { return r_.get(); }

 private:
  PgResultPtr r_;
};

struct PgTimeouts {
  std::chrono::milliseconds connect{5000};
  std::chrono::milliseconds statement{30000};  // client-side deadline per statement, also set server-side
};

// One connection. Not thread-safe: one user at a time.
class PgConnection {
 public:
  // Connects within timeouts.connect. Throws Error(Errc::database) naming the
  // server (never the password) and libpq's reason.
  static PgConnection connect(const std::string& conninfo, PgTimeouts timeouts = {});

  // Runs one parameterised statement. Throws Error(Errc::database) on a server
  // error (with SQLSTATE in sqlstate()) and Error(Errc::timeout) past the deadline
  // (the connection is then unusable).
  PgResult exec(std::string_view sql, const std::vector<PgParam>& params = {});
  // The same, with an explicit deadline for this statement.
  PgResult exec(std::string_view sql, const std::vector<PgParam>& params, std::chrono::milliseconds deadline);

  bool healthy() const { return conn_ && PQstatus(conn_.get()) == CONNECTION_OK && !broken_; }
  PGconn* raw() const { return conn_.get(); }

 private:
  explicit PgConnection(PGconn* c, PgTimeouts t) : conn_(c), timeouts_(t) {}
  std::unique_ptr<PGconn, PgConnDeleter> conn_;
  PgTimeouts timeouts_;
  bool broken_ = false;
};

// The SQLSTATE of a failed statement carried by a PgError.
class PgError : public Error {
 public:
  PgError(std::string sqlstate, std::string message) : Error(Errc::database, std::move(message)), sqlstate_(std::move(sqlstate)) {}
  const std::string& sqlstate() const { return sqlstate_; }

 private:
  std::string sqlstate_;
};

// Validates a conninfo string or URL; returns libpq's complaint, or nullopt when fine.
std::optional<std::string> conninfo_problem(const std::string& conninfo);
// The conninfo with any password replaced by "***" (for messages and logs).
std::string redact_conninfo(const std::string& conninfo);

// A pool of connections used from a small dedicated thread pool, behind an
// awaitable interface: `co_await db.run([](PgConnection& c) { return ...; })`.
// Broken connections are dropped and replaced on the next use. Thread-safe.
// A transaction on a connection: BEGIN now, COMMIT by commit(), ROLLBACK when
// destroyed without it (an exception on the way out leaves nothing half-written).
class PgTransaction {
 public:
  explicit PgTransaction(PgConnection& c) : c_(c) { c_.exec("BEGIN"); }
  PgTransaction(const PgTransaction&) = delete;
  PgTransaction& operator=(const PgTransaction&) = delete;
  void commit() {
    c_.exec("COMMIT");
    done_ = true;
  }
  ~PgTransaction() {
    if (done_) return;
    try {
      if (c_.healthy()) c_.exec("ROLLBACK");
    } catch (...) {
    }
  }

 private:
  PgConnection& c_;
  bool done_ = false;
};

class Database {
 public:
  Database(std::string conninfo, std::size_t pool_size, PgTimeouts timeouts, std::shared_ptr<spdlog::logger> log);
  ~Database();

  // Runs f(PgConnection&) on a database thread; resumes on the caller's executor.
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F, PgConnection&>> run(F f) {
    using R = std::invoke_result_t<F, PgConnection&>;
    // The spawned operation is a named local, not a temporary inside the co_await
    // expression: GCC 12 destroys such temporaries twice (a double free seen here).
    auto op = boost::asio::co_spawn(
        threads_,
        [this, f = std::move(f)]() mutable -> boost::asio::awaitable<R> { co_return with_connection<R>(f); },
        boost::asio::use_awaitable);
    co_return co_await std::move(op);
  }

  // Blocking use from a non-async caller (CLI commands, start-up).
  template <class R, class F>
  R with_connection(F& f) {
    auto lease = acquire();
    try {
      if constexpr (std::is_void_v<R>) {
        f(*lease.conn);
        release(std::move(lease));
      } else {
        R r = f(*lease.conn);
        release(std::move(lease));
        return r;
      }
    } catch (...) {
      release(std::move(lease));
      throw;
    }
  }

  // "Does the database answer a query within `within`?" Never throws: returns
  // the reason when it does not. Uses its own short-lived connection so a full
  // pool cannot make the service look down.
  boost::asio::awaitable<std::optional<std::string>> ping(std::chrono::milliseconds within);

  const std::string& conninfo() const { return conninfo_; }

 private:
  struct Lease {
    std::unique_ptr<PgConnection> conn;
  };
  Lease acquire();
  void release(Lease lease);

  std::string conninfo_;
  std::size_t pool_size_;
  PgTimeouts timeouts_;
  std::shared_ptr<spdlog::logger> log_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  std::size_t out_ = 0;
  boost::asio::thread_pool threads_;
  boost::asio::thread_pool ping_threads_{1};  // readiness never queues behind slow queries
};

}  // namespace m365vault::storage
