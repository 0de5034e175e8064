#include "m365vault/backup/concurrent.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <exception>
#include <memory>

namespace m365vault::backup {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;

awaitable<void> for_each_concurrent(std::size_t n, std::size_t count, std::function<awaitable<void>(std::size_t)> fn) {
  if (count == 0) co_return;
  auto ex = co_await asio::this_coro::executor;
  struct Shared {
    std::size_t next = 0, running = 0;
    std::exception_ptr error;
    asio::steady_timer done;
    explicit Shared(asio::any_io_executor e) : done(e, asio::steady_timer::time_point::max()) {}
  };
  auto s = std::make_shared<Shared>(ex);
  const std::size_t workers = std::min(n, count);
  s->running = workers;
  for (std::size_t w = 0; w < workers; ++w) {
    asio::co_spawn(
        ex,
        [s, count, fn]() -> awaitable<void> {
          for (;;) {
            if (s->error) co_return;
            std::size_t k = s->next++;
            if (k >= count) co_return;
            co_await fn(k);
          }
        },
        [s](std::exception_ptr e) {
          if (e && !s->error) s->error = e;
          if (--s->running == 0) s->done.expires_at(asio::steady_timer::time_point::min());
        });
  }
  while (s->running > 0) {
    boost::system::error_code ec;
    co_await s->done.async_wait(asio::redirect_error(use_awaitable, ec));
  }
  if (s->error) std::rethrow_exception(s->error);
}


}  // namespace m365vault::backup
