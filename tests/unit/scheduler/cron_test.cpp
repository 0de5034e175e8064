#include <catch2/catch.hpp>

#include "m365vault/core/error.hpp"
#include "m365vault/scheduler/cron.hpp"

using namespace m365vault;
using namespace m365vault::scheduler;

namespace {
sys_seconds at(const char* rfc3339) {
  auto t = parse_rfc3339(rfc3339);
  REQUIRE(t.has_value());
  return *t;
}
std::string next(const CronSchedule& c, const char* after) {
  auto t = c.next_after(at(after));
  return t ? format_rfc3339(*t) : "none";
}
// The fire times in (from, to].
std::vector<std::string> fires(const CronSchedule& c, const char* from, const char* to) {
  std::vector<std::string> out;
  auto t = at(from);
  auto end = at(to);
  while (auto n = c.next_after(t)) {
    if (*n > end) break;
    out.push_back(format_rfc3339(*n));
    t = *n;
  }
  return out;
}
}  // namespace

TEST_CASE("cron: fields, lists, ranges, steps and names", "[unit]") {
  auto c = CronSchedule::parse("*/15 9-17 * * MON-FRI");
  CHECK(next(c, "2026-11-27T17:50:00Z") == "2026-11-30T09:00:00Z");  // Friday evening -> Monday
  CHECK(next(c, "2026-11-30T09:00:00Z") == "2026-11-30T09:15:00Z");
  CHECK(next(CronSchedule::parse("0 0 1 jan,jul *"), "2026-02-01T00:00:00Z") == "2026-07-01T00:00:00Z");
  CHECK(next(CronSchedule::parse("5 4 * * 7"), "2026-11-29T04:05:00Z") == "2026-12-06T04:05:00Z");  // 7 = Sunday
  CHECK(next(CronSchedule::parse("@daily"), "2026-11-29T12:00:00Z") == "2026-11-30T00:00:00Z");
  CHECK(next(CronSchedule::parse("0 12 */10 * *"), "2026-11-01T12:00:00Z") == "2026-11-11T12:00:00Z");
  CHECK(next(CronSchedule::parse("0 0 31 2 *"), "2026-01-01T00:00:00Z") == "none");
}

TEST_CASE("cron: day-of-month and day-of-week both restricted means either", "[unit]") {
  auto c = CronSchedule::parse("0 0 13 * FRI");
  // 2026-12-04 is a Friday, 2026-12-13 a Sunday.
  CHECK(next(c, "2026-12-01T00:00:00Z") == "2026-12-04T00:00:00Z");
  CHECK(next(c, "2026-12-11T00:00:00Z") == "2026-12-13T00:00:00Z");
}

TEST_CASE("cron: bad expressions and zones are named", "[unit]") {
  CHECK_THROWS_WITH(CronSchedule::parse("* * * *"), Catch::Contains("expected 5 fields"));
  CHECK_THROWS_WITH(CronSchedule::parse("60 * * * *"), Catch::Contains("minute: 60 is outside 0-59"));
  CHECK_THROWS_WITH(CronSchedule::parse("* 5-2 * * *"), Catch::Contains("hour: range '5-2' runs backwards"));
  CHECK_THROWS_WITH(CronSchedule::parse("* * * FOO *"), Catch::Contains("month: unknown value 'FOO'"));
  CHECK_THROWS_WITH(CronSchedule::parse("*/0 * * * *"), Catch::Contains("minute: step 0"));
  CHECK_THROWS_WITH(CronSchedule::parse("@often"), Catch::Contains("unknown macro"));
  CHECK_THROWS_WITH(CronSchedule::parse("* * * * *", "Mars/Olympus"), Catch::Contains("time zone 'Mars/Olympus'"));
}

TEST_CASE("cron: New York spring forward runs a skipped time once, at the end of the gap", "[unit]") {
  // 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z).
  auto c = CronSchedule::parse("30 2 * * *", "America/New_York");
  CHECK(fires(c, "2026-03-07T00:00:00Z", "2026-03-10T00:00:00Z") ==
        std::vector<std::string>{"2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"});
  // Every 15 minutes of a chosen hour inside the gap: one fire, not four.
  auto q = CronSchedule::parse("*/15 2 * * *", "America/New_York");
  CHECK(fires(q, "2026-03-08T06:00:00Z", "2026-03-08T12:00:00Z") == std::vector<std::string>{"2026-03-08T07:00:00Z"});
}

TEST_CASE("cron: New York fall back runs a repeated time once, hourly jobs every real hour", "[unit]") {
  // 2026-11-01 02:00 EDT -> 01:00 EST: 01:xx happens twice (05:xxZ and 06:xxZ).
  auto c = CronSchedule::parse("30 1 * * *", "America/New_York");
  CHECK(fires(c, "2026-10-31T12:00:00Z", "2026-11-02T12:00:00Z") ==
        std::vector<std::string>{"2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"});
  auto hourly = CronSchedule::parse("0 * * * *", "America/New_York");
  CHECK(fires(hourly, "2026-11-01T03:30:00Z", "2026-11-01T08:00:00Z") ==
        std::vector<std::string>{"2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z",
                                 "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z"});
}

TEST_CASE("cron: Berlin DST changes, both directions", "[unit]") {
  // 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z).
  auto c = CronSchedule::parse("0 2 * * *", "Europe/Berlin");
  CHECK(fires(c, "2026-03-28T00:00:00Z", "2026-03-30T12:00:00Z") ==
        std::vector<std::string>{"2026-03-28T01:00:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"});
  // 2026-10-25 03:00 CEST -> 02:00 CET: 02:xx happens twice (00:xxZ and 01:xxZ).
  auto h = CronSchedule::parse("*/30 2 * * *", "Europe/Berlin");
  CHECK(fires(h, "2026-10-24T23:00:00Z", "2026-10-26T02:00:00Z") ==
        std::vector<std::string>{"2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:00:00Z",
                                 "2026-10-26T01:30:00Z"});
  auto every30 = CronSchedule::parse("*/30 * * * *", "Europe/Berlin");
  CHECK(fires(every30, "2026-10-24T23:45:00Z", "2026-10-25T02:00:00Z") ==
        std::vector<std::string>{"2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z",
                                 "2026-10-25T01:30:00Z", "2026-10-25T02:00:00Z"});
}

TEST_CASE("RFC 3339 instants parse and format", "[unit]") {
  CHECK(format_rfc3339(at("2026-03-08T02:30:00-05:00")) == "2026-03-08T07:30:00Z");
  CHECK(format_rfc3339(at("2026-03-08T07:30:00.123456Z")) == "2026-03-08T07:30:00Z");
  CHECK_FALSE(parse_rfc3339("2026-02-30T00:00:00Z").has_value());
  CHECK_FALSE(parse_rfc3339("2026-03-08 07:30").has_value());
  CHECK_FALSE(parse_rfc3339("2026-03-08T07:30:00").has_value());
}
