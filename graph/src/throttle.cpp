#include "m365vault/graph/throttle.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <random>
#include <string>

namespace m365vault::graph {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view v) {
  // RFC 9110 §5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms.
  static const char* const kFormats[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                                         "%a %b %e %H:%M:%S %Y"};
  const std::string s(v);
  for (const char* f : kFormats) {
    std::tm tm{};
    const char* end = strptime(s.c_str(), f, &tm);
    if (!end || *end != '\0') continue;
    const std::time_t t = timegm(&tm);
    if (t == static_cast<std::time_t>(-1)) continue;
    return std::chrono::system_clock::from_time_t(t);
  }
  return std::nullopt;
}

double uniform(double lo, double hi) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value,
                                                           std::chrono::system_clock::time_point now) {
  using namespace std::chrono;
  auto v = trim(value);
  if (v.empty()) return std::nullopt;
  if ((v.front() >= '0' && v.front() <= '9') || v.front() == '.') {
    double secs = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), secs, std::chars_format::fixed);
    if (ec != std::errc() || p != v.data() + v.size() || !std::isfinite(secs) || secs < 0) return std::nullopt;
    secs = std::min(secs, 86400.0 * 365);  // absurd values still mean "wait", not overflow
    return milliseconds(static_cast<std::int64_t>(std::ceil(secs * 1000.0)));
  }
  auto at = parse_http_date(v);
  if (!at) return std::nullopt;
  if (*at <= now) return milliseconds(0);
  return ceil<milliseconds>(*at - now);
}

std::chrono::milliseconds BackoffPolicy::delay(int attempt) const {
  const double b = static_cast<double>(base.count()), c = static_cast<double>(cap.count());
  const double d = std::min(c, b * std::pow(2.0, std::clamp(attempt, 0, 30)));
  return std::chrono::milliseconds(static_cast<std::int64_t>(uniform(d / 2, d)));
}

AimdRate::AimdRate(AimdOptions o, Clock::time_point now)
    : o_(o), base_rate_(std::clamp(o.initial_rate, o.min_rate, o.max_rate)), base_time_(now), next_slot_(now) {}

double AimdRate::rate_locked(Clock::time_point now) const {
  const double secs = std::chrono::duration<double>(now - base_time_).count();
  return std::min(o_.max_rate, base_rate_ + o_.increase_per_second * std::max(0.0, secs));
}

void AimdRate::on_throttled(Clock::time_point now) {
  std::lock_guard lk(mu_);
  if (cut_once_ && now - last_cut_ < o_.cooldown) return;
  base_rate_ = std::max(o_.min_rate, rate_locked(now) * o_.decrease_factor);
  base_time_ = now;
  last_cut_ = now;
  cut_once_ = true;
  ++cuts_;
}

double AimdRate::rate(Clock::time_point now) const {
  std::lock_guard lk(mu_);
  return rate_locked(now);
}

AimdRate::Clock::time_point AimdRate::pace(Clock::time_point now) {
  std::lock_guard lk(mu_);
  const auto gap = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate_locked(now)));
  // A slot not used in the past is not saved up: no bursts after an idle spell.
  const auto slot = std::max(now, next_slot_);
  next_slot_ = slot + gap;
  return slot;
}

std::uint64_t AimdRate::cuts() const {
  std::lock_guard lk(mu_);
  return cuts_;
}

}  // namespace m365vault::graph
