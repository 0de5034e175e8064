#pragma once
// Five-field cron expressions (minute hour day-of-month month day-of-week) in a
// time zone, with the next fire time computed across daylight-saving changes:
//  - a local time that does not exist (spring forward) fires at the first instant
//    after the gap, once;
//  - a local time that happens twice (fall back) fires once, at its first occurrence.
// Fields take *, numbers, ranges a-b, lists a,b, steps */n and a-b/n, month and
// weekday names (JAN..DEC, SUN..SAT; 0 and 7 are Sunday). As in Vixie cron, when
// both day-of-month and day-of-week are restricted, a day matching either fires.
// Macros: @hourly @daily @midnight @weekly @monthly @yearly @annually.
#include <bitset>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace m365vault::scheduler {

using sys_seconds = std::chrono::time_point<std::chrono::system_clock, std::chrono::seconds>;

class CronSchedule {
 public:
  // Throws Error(Errc::bad_request) naming the field and what is wrong, or the
  // unknown time zone.
  static CronSchedule parse(std::string_view expression, std::string_view time_zone = "UTC");

  // The first fire time strictly after `after`; nullopt when none comes within
  // about five years (e.g. "0 0 31 2 *").
  std::optional<sys_seconds> next_after(sys_seconds after) const;

  const std::string& expression() const { return expr_; }
  const std::string& time_zone() const { return tz_name_; }

 private:
  std::string expr_;
  std::string tz_name_;
  const void* tz_ = nullptr;  // const date::time_zone*, kept out of this header
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> dom_;     // 1..31
  std::bitset<13> months_;  // 1..12
  std::bitset<7> dow_;      // 0..6, Sunday = 0
  bool dom_star_ = true;
  bool dow_star_ = true;
};

// Formats an instant as RFC 3339 UTC ("2026-03-08T10:00:00Z").
std::string format_rfc3339(sys_seconds t);
// Parses RFC 3339 ("...Z" or "...+01:00", optional fraction, truncated to seconds).
std::optional<sys_seconds> parse_rfc3339(std::string_view s);

}  // namespace m365vault::scheduler
