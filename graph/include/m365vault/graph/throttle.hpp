#pragma once
// The pieces of "good Graph citizen" that are pure logic, so tests can drive them
// with a fake clock: Retry-After parsing, the backoff schedule and the adaptive
// (AIMD) per-tenant request rate. GraphClient combines them with the per-mailbox
// concurrency cap.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>

namespace m365vault::graph {

// Retry-After as a wait from `now`: delta-seconds ("31"), fractional seconds
// ("2.128", seen from Graph) or an HTTP-date (IMF-fixdate, RFC 850 or asctime; a
// date in the past gives 0). nullopt when absent or unparsable.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

struct BackoffPolicy {
  std::chrono::milliseconds base{500};
  std::chrono::milliseconds cap{60'000};
  // The wait before retry `attempt` (0 = first retry): d = min(cap, base * 2^attempt),
  // then a uniform draw from [d/2, d] ("equal jitter": never zero, never in step).
  std::chrono::milliseconds delay(int attempt) const;
};

struct AimdOptions {
  double initial_rate = 1000;       // requests per second before any throttling
  double min_rate = 0.5;
  double max_rate = 5000;
  double decrease_factor = 0.5;     // multiplicative cut on a 429
  double increase_per_second = 20;  // additive climb per second without a 429
  std::chrono::milliseconds cooldown{1000};  // 429s closer than this to the last cut do not cut again
};

// Additive-increase / multiplicative-decrease request rate. Thread-safe.
// on_throttled() cuts the rate (once per cooldown: a burst of 429s from one
// overloaded moment is one signal); the rate climbs linearly with the time since
// the last cut, up to max_rate. pace() hands out send times spaced 1/rate apart.
class AimdRate {
 public:
  using Clock = std::chrono::steady_clock;
  explicit AimdRate(AimdOptions o = {}, Clock::time_point now = Clock::now());

  void on_throttled(Clock::time_point now = Clock::now());
  // The current rate (requests per second) at `now`.
  double rate(Clock::time_point now = Clock::now()) const;
  // Reserves the next send slot; the caller waits until the returned time.
  Clock::time_point pace(Clock::time_point now = Clock::now());
  std::uint64_t cuts() const;

 private:
  double rate_locked(Clock::time_point now) const;
  AimdOptions o_;
  mutable std::mutex mu_;
  double base_rate_;             // the rate right after the last cut (or the initial rate)
  Clock::time_point base_time_;  // when base_rate_ was set
  Clock::time_point last_cut_;
  bool cut_once_ = false;
  Clock::time_point next_slot_;
  std::uint64_t cuts_ = 0;
};

}  // namespace m365vault::graph
