#pragma once
// An awaitable counting semaphore, safe across the threads of an io_context
// (requests in flight per mailbox in graph/, file downloads in flight per run in
// backup/):
// waiters queue FIFO on one-slot concurrent channels; release() hands the permit
// straight to the oldest waiter. A waiter cancelled while queued withdraws (or, if
// the permit reached it meanwhile, passes it on), so no permit is ever lost.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <deque>
#include <memory>
#include <mutex>
#include <utility>

namespace m365vault {

class AsyncSemaphore {
 public:
  explicit AsyncSemaphore(int limit) : limit_(limit) {}

  // RAII: releases on destruction.
  class Permit {
   public:
    Permit() = default;
    explicit Permit(AsyncSemaphore* s) : s_(s) {}
    Permit(Permit&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    Permit& operator=(Permit&& o) noexcept {
      reset();
      s_ = std::exchange(o.s_, nullptr);
      return *this;
    }
    ~Permit() { reset(); }
    void reset() {
      if (s_) std::exchange(s_, nullptr)->release();
    }

   private:
    AsyncSemaphore* s_ = nullptr;
  };

  boost::asio::awaitable<Permit> acquire() {
    std::shared_ptr<Chan> ch;
    {
      std::lock_guard lk(mu_);
      if (used_ < limit_) {
        ++used_;
        co_return Permit(this);
      }
      ch = std::make_shared<Chan>(co_await boost::asio::this_coro::executor, 1);
      waiters_.push_back(ch);
    }
    auto [ec] = co_await ch->async_receive(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (!ec) co_return Permit(this);
    bool withdrawn = false;
    {
      std::lock_guard lk(mu_);
      auto it = std::find(waiters_.begin(), waiters_.end(), ch);
      if (it != waiters_.end()) {
        waiters_.erase(it);
        withdrawn = true;
      }
    }
    if (!withdrawn) release();  // the permit was handed over as we were cancelled
    throw boost::system::system_error(ec);
  }

  int in_use() const {
    std::lock_guard lk(mu_);
    return used_;
  }

 private:
  using Chan = boost::asio::experimental::concurrent_channel<void(boost::system::error_code)>;

  void release() {
    std::lock_guard lk(mu_);
    while (!waiters_.empty()) {
      auto ch = std::move(waiters_.front());
      waiters_.pop_front();
      if (ch->try_send(boost::system::error_code{})) return;  // handed over; used_ unchanged
    }
    --used_;
  }

  mutable std::mutex mu_;
  int limit_;
  int used_ = 0;
  std::deque<std::shared_ptr<Chan>> waiters_;
};

}  // namespace m365vault
