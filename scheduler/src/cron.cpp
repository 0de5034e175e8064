#include "m365vault/scheduler/cron.hpp"

#include <date/date.h>
#include <date/tz.h>

#include <cctype>
#include <vector>

#include "m365vault/core/error.hpp"

namespace m365vault::scheduler {

namespace {

struct FieldSpec {
  const char* name;
  int lo, hi;
  const char* const* names;  // names[i] is value lo+i... (nullptr: none)
  int names_base;
};

const char* const kMonths[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", nullptr};
const char* const kDays[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", nullptr};

[[noreturn]] void bad(const std::string& expr, const std::string& what) {
  throw Error(Errc::bad_request, "cron expression '" + expr + "': " + what);
}

int parse_value(const std::string& expr, const FieldSpec& f, std::string_view tok) {
  if (tok.empty()) bad(expr, std::string(f.name) + ": empty value");
  if (std::isdigit(static_cast<unsigned char>(tok[0]))) {
    int v = 0;
    for (char c : tok) {
      if (!std::isdigit(static_cast<unsigned char>(c))) bad(expr, std::string(f.name) + ": '" + std::string(tok) + "' is not a number");
      v = v * 10 + (c - '0');
      if (v > 1000) break;
    }
    if (v < f.lo || v > f.hi)
      bad(expr, std::string(f.name) + ": " + std::to_string(v) + " is outside " + std::to_string(f.lo) + "-" + std::to_string(f.hi));
    return v;
  }
  if (f.names) {
    std::string up;
    for (char c : tok) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    for (int i = 0; f.names[i]; ++i)
      if (up == f.names[i]) return f.names_base + i;
  }
  bad(expr, std::string(f.name) + ": unknown value '" + std::string(tok) + "'");
}

// Parses one field into `bits` (indexed by value); returns whether it was '*'.
template <size_t N>
bool parse_field(const std::string& expr, const FieldSpec& f, std::string_view text, std::bitset<N>& bits) {
  bool star = text == "*" || text == "?";
  size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    auto part = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    int step = 1;
    auto slash = part.find('/');
    if (slash != std::string_view::npos) {
      auto s = part.substr(slash + 1);
      if (s.empty() || s.find_first_not_of("0123456789") != std::string_view::npos || s.size() > 3)
        bad(expr, std::string(f.name) + ": bad step '" + std::string(s) + "'");
      step = std::stoi(std::string(s));
      if (step < 1 || step > f.hi) bad(expr, std::string(f.name) + ": step " + std::to_string(step) + " is out of range");
      part = part.substr(0, slash);
    }
    int a, b;
    if (part == "*" || part == "?") {
      a = f.lo;
      b = f.hi;
    } else {
      auto dash = part.find('-');
      if (dash != std::string_view::npos) {
        a = parse_value(expr, f, part.substr(0, dash));
        b = parse_value(expr, f, part.substr(dash + 1));
        if (b < a) bad(expr, std::string(f.name) + ": range '" + std::string(part) + "' runs backwards");
      } else {
        a = parse_value(expr, f, part);
        b = slash != std::string_view::npos ? f.hi : a;
      }
    }
    for (int v = a; v <= b; v += step) bits.set(static_cast<size_t>(v));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return star;
}

std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

CronSchedule CronSchedule::parse(std::string_view expression, std::string_view time_zone) {
  CronSchedule c;
  c.expr_ = std::string(expression);
  c.tz_name_ = std::string(time_zone.empty() ? "UTC" : time_zone);
  try {
    c.tz_ = date::locate_zone(c.tz_name_);
  } catch (const std::exception&) {
    throw Error(Errc::bad_request, "time zone '" + c.tz_name_ + "': unknown (use an IANA name such as Europe/Berlin)");
  }
  std::string_view e = expression;
  static const std::pair<std::string_view, std::string_view> kMacros[] = {
      {"@hourly", "0 * * * *"},  {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
      {"@weekly", "0 0 * * 0"},  {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
      {"@annually", "0 0 1 1 *"}};
  auto trimmed = split_ws(e);
  if (trimmed.size() == 1 && !trimmed[0].empty() && trimmed[0][0] == '@') {
    bool found = false;
    for (auto& [m, x] : kMacros)
      if (m == trimmed[0]) {
        e = x;
        found = true;
      }
    if (!found) bad(c.expr_, "unknown macro '" + std::string(trimmed[0]) + "'");
  }
  auto fields = split_ws(e);
  if (fields.size() != 5)
    bad(c.expr_, "expected 5 fields (minute hour day-of-month month day-of-week), got " + std::to_string(fields.size()));
  parse_field(c.expr_, {"minute", 0, 59, nullptr, 0}, fields[0], c.minutes_);
  parse_field(c.expr_, {"hour", 0, 23, nullptr, 0}, fields[1], c.hours_);
  c.dom_star_ = parse_field(c.expr_, {"day-of-month", 1, 31, nullptr, 0}, fields[2], c.dom_);
  parse_field(c.expr_, {"month", 1, 12, kMonths, 1}, fields[3], c.months_);
  std::bitset<8> dow8;
  c.dow_star_ = parse_field(c.expr_, {"day-of-week", 0, 7, kDays, 0}, fields[4], dow8);
  for (int d = 0; d < 7; ++d) c.dow_[static_cast<size_t>(d)] = dow8[static_cast<size_t>(d)];
  if (dow8[7]) c.dow_.set(0);
  return c;
}

std::optional<sys_seconds> CronSchedule::next_after(sys_seconds after) const {
  using namespace std::chrono;
  auto* tz = static_cast<const date::time_zone*>(tz_);
  // With every hour selected the job means "every real hour": in a repeated hour
  // both occurrences fire and times skipped by a gap are simply not there. With
  // chosen hours, a skipped time fires at the end of the gap and a repeated one
  // fires once.
  const bool every_hour = hours_.all();
  // Walk local minutes forward from the local time of `after`. Because of
  // repeated hours the first match in local order need not be the first in real
  // time, so keep looking for up to 3 local hours past the first match.
  auto local_after = tz->to_local(after);
  auto start_day = date::floor<date::days>(local_after);
  std::optional<sys_seconds> best;
  std::optional<date::local_seconds> found_at;
  for (int d = 0; d < 5 * 366 + 1; ++d) {
    auto day = start_day + date::days(d);
    if (found_at && date::local_seconds{day} > *found_at + hours(3)) break;
    date::year_month_day ymd{day};
    unsigned mon = static_cast<unsigned>(ymd.month());
    if (!months_[mon]) continue;
    unsigned dom = static_cast<unsigned>(ymd.day());
    unsigned dow = date::weekday{day}.c_encoding();
    bool dom_ok = dom_[dom], dow_ok = dow_[dow];
    bool day_ok = (dom_star_ || dow_star_) ? (dom_ok && dow_ok) : (dom_ok || dow_ok);
    if (!day_ok) continue;
    for (int h = 0; h < 24; ++h) {
      if (!hours_[static_cast<size_t>(h)]) continue;
      for (int m = 0; m < 60; ++m) {
        if (!minutes_[static_cast<size_t>(m)]) continue;
        auto lt = date::local_seconds{day} + hours(h) + minutes(m);
        if (lt + hours(26) < local_after) continue;  // far before: skip the zone lookup
        if (found_at && lt > *found_at + hours(3)) break;
        auto info = tz->get_info(lt);
        auto consider = [&](sys_seconds t) {
          if (t > after && (!best || t < *best)) {
            best = t;
            if (!found_at) found_at = lt;
          }
        };
        if (info.result == date::local_info::unique) {
          consider(sys_seconds{lt.time_since_epoch() - info.first.offset});
        } else if (info.result == date::local_info::nonexistent) {
          if (!every_hour) consider(date::floor<seconds>(info.first.end));
        } else {
          consider(sys_seconds{lt.time_since_epoch() - info.first.offset});
          if (every_hour) consider(sys_seconds{lt.time_since_epoch() - info.second.offset});
        }
      }
    }
  }
  return best;
}

std::string format_rfc3339(sys_seconds t) { return date::format("%Y-%m-%dT%H:%M:%SZ", t); }

std::optional<sys_seconds> parse_rfc3339(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  auto digits = [&](size_t pos, size_t n) -> std::optional<int> {
    if (pos + n > s.size()) return std::nullopt;
    int v = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  auto Y = digits(0, 4), M = digits(5, 2), D = digits(8, 2), h = digits(11, 2), m = digits(14, 2), sec = digits(17, 2);
  if (!Y || !M || !D || !h || !m || !sec || s.size() < 20 || s[4] != '-' || s[7] != '-' ||
      (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
    return std::nullopt;
  size_t i = 19;
  if (s[i] == '.') {
    ++i;
    size_t start = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    if (i == start) return std::nullopt;
  }
  int offset_min = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    auto oh = digits(i + 1, 2), om = digits(i + 4, 2);
    if (!oh || !om || i + 3 >= s.size() || s[i + 3] != ':' || *oh > 23 || *om > 59) return std::nullopt;
    offset_min = (*oh * 60 + *om) * (s[i] == '-' ? -1 : 1);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  date::year_month_day ymd{date::year{*Y}, date::month{static_cast<unsigned>(*M)}, date::day{static_cast<unsigned>(*D)}};
  if (!ymd.ok() || *h > 23 || *m > 59 || *sec > 60) return std::nullopt;
  auto t = sys_seconds{date::sys_days{ymd}} + std::chrono::hours(*h) + std::chrono::minutes(*m) +
           std::chrono::seconds(std::min(*sec, 59)) - std::chrono::minutes(offset_min);
  return t;
}

}  // namespace m365vault::scheduler
