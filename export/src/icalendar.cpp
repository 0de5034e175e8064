// iCalendar from stored Graph events, through libical (properties, escaping,
// folding and the VTIMEZONE definitions are libical's).
#include <libical/ical.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "export_json.hpp"
#include "m365vault/export/formats.hpp"

namespace m365vault::exporting {

namespace {

using nlohmann::json;

struct ComponentDeleter {
  void operator()(icalcomponent* c) const { icalcomponent_free(c); }
};
using Component = std::unique_ptr<icalcomponent, ComponentDeleter>;

// "2016-12-09T20:30:00.0000000" -> "20161209T203000"; empty when it is not one.
std::string basic_datetime(std::string_view s) {
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':') return {};
  std::string out;
  for (std::size_t i = 0; i < 19; ++i)
    if (s[i] != '-' && s[i] != ':') out += s[i];
  return out;
}

class Calendar {
 public:
  Calendar() : cal_(icalcomponent_new_vcalendar()) {
    icalcomponent_add_property(cal_.get(), icalproperty_new_version("2.0"));
    icalcomponent_add_property(cal_.get(), icalproperty_new_prodid("-//m365vault//export//EN"));
    icalcomponent_add_property(cal_.get(), icalproperty_new_calscale("GREGORIAN"));
  }

  // A Graph dateTimeTimeZone ({dateTime, timeZone}) as an iCalendar time; the
  // zone's TZID goes on `prop` and its VTIMEZONE into the calendar.
  struct Time {
    icaltimetype t;
    std::string tzid;  // empty: UTC or a date
  };
  Time time_of(const json& dtz, const char* field, bool all_day) {
    if (!dtz.is_object()) throw Error(Errc::bad_request, std::string("field '") + field + "': expected an object");
    auto text = basic_datetime(json_string(dtz, "dateTime", field));
    if (text.empty()) throw Error(Errc::bad_request, std::string("field '") + field + ".dateTime': not a date and time");
    auto zone = json_string(dtz, "timeZone", field);
    if (all_day) return {icaltime_from_string(text.substr(0, 8).c_str()), {}};
    if (zone.empty() || zone == "UTC" || zone == "Etc/UTC" || zone == "tzone://Microsoft/Utc")
      return {icaltime_from_string((text + "Z").c_str()), {}};
    Time out{icaltime_from_string(text.c_str()), zone};
    if (icaltimezone* tz = icaltimezone_get_builtin_timezone(zone.c_str())) {
      out.t = icaltime_set_timezone(&out.t, tz);
      if (zones_.insert(zone).second) {
        // libical's definition goes back to 1893 under a prefixed TZID; readers
        // (Outlook, Python's icalendar) want the plain name and rules from 1970 on.
        icalcomponent* vtz = icalcomponent_new_clone(icaltimezone_get_component(tz));
        icaltimezone_truncate_vtimezone(vtz, icaltime_from_string("19700101T000000Z"), icaltime_null_time(), 1);
        if (icalproperty* id = icalcomponent_get_first_property(vtz, ICAL_TZID_PROPERTY)) icalproperty_set_tzid(id, zone.c_str());
        icalcomponent_add_component(cal_.get(), vtz);
      }
    }
    // A Windows zone name ("Pacific Standard Time") stays a TZID without a
    // VTIMEZONE: Outlook reads it; backups ask Graph for UTC, so this is rare.
    return out;
  }

  void add(Component ev) { icalcomponent_add_component(cal_.get(), ev.release()); }

  std::string text() {
    char* s = icalcomponent_as_ical_string_r(cal_.get());
    if (!s) throw Error(Errc::internal, "icalendar: serialisation failed");
    std::string out(s);
    icalmemory_free_buffer(s);
    return out;
  }

 private:
  Component cal_;
  std::set<std::string> zones_;
};

void add_time(icalcomponent* ev, icalproperty* p, const Calendar::Time& t) {
  if (!t.tzid.empty()) icalproperty_add_parameter(p, icalparameter_new_tzid(t.tzid.c_str()));
  icalcomponent_add_property(ev, p);
}

void add_text(icalcomponent* ev, icalproperty* (*make)(const char*), const std::string& v) {
  if (!v.empty()) icalcomponent_add_property(ev, make(v.c_str()));
}

icaltimetype utc_of(std::string_view rfc3339) {
  auto text = basic_datetime(rfc3339);
  if (text.empty()) return icaltime_null_time();
  return icaltime_from_string((text + "Z").c_str());
}

// Rough text of an HTML body for DESCRIPTION (the HTML itself goes in X-ALT-DESC).
std::string html_to_text(std::string_view html) {
  std::string out;
  bool in_tag = false;
  for (char c : html) {
    if (c == '<') in_tag = true;
    else if (c == '>') in_tag = false;
    else if (!in_tag) out += c;
  }
  static const std::pair<std::string_view, std::string_view> entities[] = {
      {"&nbsp;", " "}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}, {"&amp;", "&"}};
  for (auto& [from, to] : entities)
    for (auto pos = out.find(from); pos != std::string::npos; pos = out.find(from, pos + to.size()))
      out.replace(pos, from.size(), to);
  auto first = out.find_first_not_of(" \r\n\t"), last = out.find_last_not_of(" \r\n\t");
  return first == std::string::npos ? std::string() : out.substr(first, last - first + 1);
}

std::string rrule_of(const json& rec, bool all_day) {
  auto pattern = rec.find("pattern"), range = rec.find("range");
  if (pattern == rec.end() || !pattern->is_object())
    throw Error(Errc::bad_request, "field 'recurrence.pattern': expected an object");
  auto type = json_string(*pattern, "type", "recurrence.pattern");
  auto num = [&](const json& j, const char* k) { return j.contains(k) && j[k].is_number_integer() ? j[k].get<int>() : 0; };
  std::string days;
  for (auto& d : json_strings(*pattern, "daysOfWeek")) days += (days.empty() ? "" : ",") + d.substr(0, 2);
  for (auto& ch : days) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  static const std::map<std::string, std::string> index = {
      {"first", "1"}, {"second", "2"}, {"third", "3"}, {"fourth", "4"}, {"last", "-1"}};
  auto setpos = [&] {
    auto it = index.find(json_string(*pattern, "index", "recurrence.pattern"));
    return it == index.end() ? std::string("1") : it->second;
  };
  std::string r;
  if (type == "daily") r = "FREQ=DAILY";
  else if (type == "weekly") r = "FREQ=WEEKLY" + (days.empty() ? "" : ";BYDAY=" + days);
  else if (type == "absoluteMonthly") r = "FREQ=MONTHLY;BYMONTHDAY=" + std::to_string(num(*pattern, "dayOfMonth"));
  else if (type == "relativeMonthly") r = "FREQ=MONTHLY;BYDAY=" + days + ";BYSETPOS=" + setpos();
  else if (type == "absoluteYearly")
    r = "FREQ=YEARLY;BYMONTH=" + std::to_string(num(*pattern, "month")) + ";BYMONTHDAY=" + std::to_string(num(*pattern, "dayOfMonth"));
  else if (type == "relativeYearly")
    r = "FREQ=YEARLY;BYMONTH=" + std::to_string(num(*pattern, "month")) + ";BYDAY=" + days + ";BYSETPOS=" + setpos();
  else throw Error(Errc::bad_request, "field 'recurrence.pattern.type': unknown pattern '" + type + "'");
  if (int interval = num(*pattern, "interval"); interval > 1) r += ";INTERVAL=" + std::to_string(interval);
  if (auto wkst = json_string(*pattern, "firstDayOfWeek", "recurrence.pattern"); wkst.size() >= 2 && type == "weekly") {
    std::string w = wkst.substr(0, 2);
    for (auto& ch : w) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    r += ";WKST=" + w;
  }
  if (range != rec.end() && range->is_object()) {
    auto rtype = json_string(*range, "type", "recurrence.range");
    if (rtype == "endDate") {
      auto end = json_string(*range, "endDate", "recurrence.range");
      if (end.size() != 10) throw Error(Errc::bad_request, "field 'recurrence.range.endDate': not a date");
      std::string d = end.substr(0, 4) + end.substr(5, 2) + end.substr(8, 2);
      r += all_day ? ";UNTIL=" + d : ";UNTIL=" + d + "T235959Z";
    } else if (rtype == "numbered") {
      r += ";COUNT=" + std::to_string(num(*range, "numberOfOccurrences"));
    }
  }
  auto parsed = icalrecurrencetype_from_string(r.c_str());
  if (parsed.freq == ICAL_NO_RECURRENCE) throw Error(Errc::bad_request, "recurrence: libical refused '" + r + "'");
  return r;
}

icalparameter_partstat partstat_of(const std::string& response) {
  if (response == "accepted" || response == "organizer") return ICAL_PARTSTAT_ACCEPTED;
  if (response == "declined") return ICAL_PARTSTAT_DECLINED;
  if (response == "tentativelyAccepted") return ICAL_PARTSTAT_TENTATIVE;
  return ICAL_PARTSTAT_NEEDSACTION;
}

void add_people(icalcomponent* ev, const json& e) {
  if (auto o = e.find("organizer"); o != e.end() && o->is_object() && o->contains("emailAddress")) {
    const json& ea = (*o)["emailAddress"];
    auto address = json_string(ea, "address", "organizer.emailAddress");
    if (!address.empty()) {
      auto* p = icalproperty_new_organizer(("mailto:" + address).c_str());
      if (auto name = json_string(ea, "name", "organizer.emailAddress"); !name.empty())
        icalproperty_add_parameter(p, icalparameter_new_cn(name.c_str()));
      icalcomponent_add_property(ev, p);
    }
  }
  auto attendees = e.find("attendees");
  if (attendees == e.end() || !attendees->is_array()) return;
  for (auto& a : *attendees) {
    if (!a.is_object() || !a.contains("emailAddress") || !a["emailAddress"].is_object()) continue;
    const json& ea = a["emailAddress"];
    auto address = json_string(ea, "address", "attendees.emailAddress");
    if (address.empty()) continue;
    auto* p = icalproperty_new_attendee(("mailto:" + address).c_str());
    if (auto name = json_string(ea, "name", "attendees.emailAddress"); !name.empty())
      icalproperty_add_parameter(p, icalparameter_new_cn(name.c_str()));
    auto type = json_string(a, "type", "attendees");
    if (type == "resource") {
      icalproperty_add_parameter(p, icalparameter_new_cutype(ICAL_CUTYPE_RESOURCE));
      icalproperty_add_parameter(p, icalparameter_new_role(ICAL_ROLE_NONPARTICIPANT));
    } else {
      icalproperty_add_parameter(p, icalparameter_new_role(type == "optional" ? ICAL_ROLE_OPTPARTICIPANT : ICAL_ROLE_REQPARTICIPANT));
    }
    std::string response;
    if (auto st = a.find("status"); st != a.end() && st->is_object()) response = json_string(*st, "response", "attendees.status");
    icalproperty_add_parameter(p, icalparameter_new_partstat(partstat_of(response)));
    icalcomponent_add_property(ev, p);
  }
}

bool truthy(const json& e, const char* k) { return e.contains(k) && e[k].is_boolean() && e[k].get<bool>(); }

Component vevent(Calendar& cal, const json& e, const std::string& uid, const json* master) {
  Component ev(icalcomponent_new_vevent());
  icalcomponent* c = ev.get();
  bool all_day = truthy(e, "isAllDay");
  icalcomponent_add_property(c, icalproperty_new_uid(uid.c_str()));
  auto modified = utc_of(json_string(e, "lastModifiedDateTime"));
  icalcomponent_add_property(c, icalproperty_new_dtstamp(icaltime_is_null_time(modified) ? icaltime_current_time_with_zone(icaltimezone_get_utc_timezone()) : modified));
  if (!icaltime_is_null_time(modified)) icalcomponent_add_property(c, icalproperty_new_lastmodified(modified));
  if (auto created = utc_of(json_string(e, "createdDateTime")); !icaltime_is_null_time(created))
    icalcomponent_add_property(c, icalproperty_new_created(created));
  if (!e.contains("start")) throw Error(Errc::bad_request, "field 'start': missing");
  auto start = cal.time_of(e["start"], "start", all_day);
  add_time(c, icalproperty_new_dtstart(start.t), start);
  if (e.contains("end") && !e["end"].is_null()) {
    auto end = cal.time_of(e["end"], "end", all_day);
    add_time(c, icalproperty_new_dtend(end.t), end);
  }
  add_text(c, icalproperty_new_summary, json_string(e, "subject"));
  if (auto body = e.find("body"); body != e.end() && body->is_object()) {
    auto content = json_string(*body, "content", "body");
    if (json_string(*body, "contentType", "body") == "html") {
      add_text(c, icalproperty_new_description, html_to_text(content));
      if (!content.empty()) {
        auto* alt = icalproperty_new_x(content.c_str());
        icalproperty_set_x_name(alt, "X-ALT-DESC");
        icalproperty_add_parameter(alt, icalparameter_new_fmttype("text/html"));
        icalcomponent_add_property(c, alt);
      }
    } else {
      add_text(c, icalproperty_new_description, content);
    }
  }
  if (auto loc = e.find("location"); loc != e.end() && loc->is_object())
    add_text(c, icalproperty_new_location, json_string(*loc, "displayName", "location"));
  auto cats = json_strings(e, "categories");
  for (auto& cat : cats) icalcomponent_add_property(c, icalproperty_new_categories(cat.c_str()));
  if (truthy(e, "isCancelled")) icalcomponent_add_property(c, icalproperty_new_status(ICAL_STATUS_CANCELLED));
  if (json_string(e, "showAs") == "free") icalcomponent_add_property(c, icalproperty_new_transp(ICAL_TRANSP_TRANSPARENT));
  auto importance = json_string(e, "importance");
  if (importance == "high") icalcomponent_add_property(c, icalproperty_new_priority(1));
  else if (importance == "low") icalcomponent_add_property(c, icalproperty_new_priority(9));
  auto sensitivity = json_string(e, "sensitivity");
  if (sensitivity == "private" || sensitivity == "personal") icalcomponent_add_property(c, icalproperty_new_class(ICAL_CLASS_PRIVATE));
  else if (sensitivity == "confidential") icalcomponent_add_property(c, icalproperty_new_class(ICAL_CLASS_CONFIDENTIAL));
  add_people(c, e);

  if (master) {
    // An exception: the occurrence it replaces, as the master's series knows it.
    auto original = json_string(e, "originalStart");
    Calendar::Time rid = original.empty() ? start : Calendar::Time{utc_of(original), {}};
    add_time(c, icalproperty_new_recurrenceid(rid.t), rid);
  } else if (auto rec = e.find("recurrence"); rec != e.end() && rec->is_object()) {
    auto rule = rrule_of(*rec, all_day);
    icalcomponent_add_property(c, icalproperty_new_rrule(icalrecurrencetype_from_string(rule.c_str())));
    // Cancelled occurrences ("OID.<...>.2016-12-20"): that day at the series' time.
    for (auto& oid : json_strings(e, "cancelledOccurrences")) {
      if (oid.size() < 10) continue;
      auto day = oid.substr(oid.size() - 10);
      if (day[4] != '-' || day[7] != '-') continue;
      Calendar::Time ex = start;
      ex.t.year = std::stoi(day.substr(0, 4));
      ex.t.month = std::stoi(day.substr(5, 2));
      ex.t.day = std::stoi(day.substr(8, 2));
      add_time(c, icalproperty_new_exdate(ex.t), ex);
    }
  }
  if (truthy(e, "isReminderOn") && e.contains("reminderMinutesBeforeStart") && e["reminderMinutesBeforeStart"].is_number_integer()) {
    Component alarm(icalcomponent_new_valarm());
    icalcomponent_add_property(alarm.get(), icalproperty_new_action(ICAL_ACTION_DISPLAY));
    icalcomponent_add_property(alarm.get(), icalproperty_new_description("Reminder"));
    icaltriggertype trigger{};
    trigger.time = icaltime_null_time();
    trigger.duration = icaldurationtype_from_int(-60 * e["reminderMinutesBeforeStart"].get<int>());
    icalcomponent_add_property(alarm.get(), icalproperty_new_trigger(trigger));
    icalcomponent_add_component(c, alarm.release());
  }
  return ev;
}

}  // namespace

std::string icalendar_from_graph(const std::vector<json>& events) {
  Calendar cal;
  std::map<std::string, const json*> by_id;
  for (auto& e : events)
    if (e.is_object()) by_id.emplace(json_string(e, "id"), &e);
  auto uid_of = [](const json& e) {
    auto uid = json_string(e, "iCalUId");
    return uid.empty() ? json_string(e, "id") : uid;
  };
  for (auto& e : events) {
    if (!e.is_object()) throw Error(Errc::bad_request, "event: not a JSON object");
    auto type = json_string(e, "type");
    if (type == "occurrence") continue;  // the master's RRULE yields it
    const json* master = nullptr;
    if (type == "exception") {
      auto it = by_id.find(json_string(e, "seriesMasterId"));
      if (it != by_id.end()) master = it->second;
    }
    // An exception whose master is not exported stands alone under its own UID.
    cal.add(vevent(cal, e, uid_of(master ? *master : e), master));
    // The exceptions a backup keeps inside their master (the calendar delta never
    // lists them), unless one is also exported as an item of its own.
    if (type == "seriesMaster")
      if (auto it = e.find("exceptionOccurrences"); it != e.end() && it->is_array())
        for (auto& x : *it)
          if (x.is_object() && !by_id.count(json_string(x, "id"))) cal.add(vevent(cal, x, uid_of(e), &e));
  }
  return cal.text();
}

}  // namespace m365vault::exporting
