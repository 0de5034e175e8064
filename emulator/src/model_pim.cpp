// Contacts and calendars: generated contact folders, contacts, calendars and events
// (single events, weekly series with a moved exception and a cancelled occurrence).
#include <algorithm>

#include "m365vault/core/error.hpp"
#include "model.hpp"

namespace m365vault::emulator {

namespace {

constexpr std::int64_t kDay = 86400;
constexpr std::uint32_t kSeriesLength = 8;
constexpr std::uint32_t kCancelledNumber = 5;  // the fifth is cancelled
constexpr std::size_t kMaxOccurrences = 520;   // a series written without an end stops here

Rng item_rng(const Tenant& t, std::uint64_t kind, std::uint32_t user, std::uint32_t index, std::uint32_t version) {
  return Rng(mix(mix(mix(mix(t.spec.seed, kind), user), index), version));
}

Folder container(std::uint32_t index, std::int32_t parent, std::string name, std::string wk) {
  Folder f;
  f.index = index;
  f.parent = parent;
  f.name = std::move(name);
  f.well_known = std::move(wk);
  return f;
}

const std::vector<std::string> kCompanies = {"Contoso", "Fabrikam", "Northwind Traders", "Ærø Shipping", "株式会社サンプル",
                                             "Adatum"};
const std::vector<std::string> kCities = {"Redmond", "München", "Lyon", "São Paulo", "東京", "Dublin"};
const std::vector<std::string> kEventTopics = {"Weekly sync", "1:1 Ravi / Zoë", "Budget review", "Déjeuner d'équipe",
                                               "Kundentermin", "Sprint planning", "Dentist 🦷", "設計レビュー"};
const std::vector<std::string> kRooms = {"Room 18/2111", "Salle Lumière", "Besprechungsraum 3", "Teams", "Café"};

}  // namespace

std::string graph_datetime(std::int64_t t) {
  auto s = iso_time(t);  // 2026-01-01T00:00:00Z
  s.pop_back();
  return s + ".0000000";
}

std::string container_path(const PimStore& s, std::uint32_t c) {
  std::string p;
  std::int32_t cur = static_cast<std::int32_t>(c);
  while (cur >= 0) {
    p = "/" + s.containers[static_cast<std::size_t>(cur)].name + p;
    cur = s.containers[static_cast<std::size_t>(cur)].parent;
  }
  return p;
}

void init_pim(const Tenant& t, std::uint32_t u, Mailbox& mb) {
  auto& c = mb.contacts;
  c.containers.push_back(container(0, -1, "Contacts", "contacts"));
  c.containers.push_back(container(1, 0, "Kunden & Partner", ""));
  c.containers.push_back(container(2, 0, "Family", ""));
  for (int i = 0; i < t.spec.contacts_per_user; ++i) {
    Rng r = item_rng(t, 0x63747073, u, static_cast<std::uint32_t>(i), 0);
    PimItem it;
    double x = r.unit();
    it.container = x < 0.7 ? 0 : (x < 0.9 ? 1 : 2);
    c.containers[it.container].messages.push_back(static_cast<std::uint32_t>(c.items.size()));
    c.items.push_back(it);
  }
  auto& k = mb.calendars;
  k.containers.push_back(container(0, -1, "Calendar", "calendar"));
  k.containers.push_back(container(1, -1, "Team Übersicht", ""));
  for (int i = 0; i < t.spec.events_per_user; ++i) {
    Rng r = item_rng(t, 0x65767473, u, static_cast<std::uint32_t>(i), 0);
    PimItem it;
    it.container = r.below(5) == 0 ? 1 : 0;
    k.containers[it.container].messages.push_back(static_cast<std::uint32_t>(k.items.size()));
    k.items.push_back(it);
  }
}

json contact_content(const Tenant& t, std::uint32_t u, std::uint32_t i, const PimItem& it) {
  if (it.custom) return *it.custom;
  Rng r = item_rng(t, 0x63747073, u, i, 0);
  Rng v = item_rng(t, 0x63747076, u, i, it.version);
  Person p = user_person(t, static_cast<std::uint32_t>(r.below(static_cast<std::uint64_t>(t.spec.users))));
  static const std::vector<std::string> given = {"Anna", "Björn", "Chloé", "Dmitri", "Eun-ji", "François", "Giulia", "Hiroshi"};
  static const std::vector<std::string> sur = {"Lindqvist", "Østergaard", "Moreau", "Ivanova", "Kim", "Nakamura", "Rossi"};
  std::string g = r.pick(given), s = r.pick(sur);
  std::string company = r.pick(kCompanies);
  std::string mail = g.substr(0, 1) + "." + std::to_string(i) + "@" + (r.below(2) ? "partner.example" : "mail.example");
  for (auto& ch : mail)
    if (static_cast<unsigned char>(ch) >= 0x80) ch = 'x';
  json phones = json::array();
  if (r.below(2)) phones.push_back("+49 89 " + std::to_string(100000 + r.below(899999)));
  const std::int64_t created = kBaseEpoch - 400 * kDay + static_cast<std::int64_t>(i) * 3600;
  json c = {{"categories", it.version % 3 == 1 ? json::array({"Kunde"}) : json::array()},
            {"createdDateTime", iso_time(created)},
            {"lastModifiedDateTime", iso_time(created + static_cast<std::int64_t>(it.version) * kDay)},
            {"assistantName", ""},
            {"birthday", r.below(3) ? json(iso_time(kBaseEpoch - static_cast<std::int64_t>(9000 + r.below(15000)) * kDay)) : json(nullptr)},
            {"businessAddress", {{"city", r.pick(kCities)}, {"countryOrRegion", "DE"}, {"postalCode", std::to_string(10000 + r.below(89999))},
                                 {"state", ""}, {"street", "Hauptstraße " + std::to_string(1 + r.below(200))}}},
            {"businessHomePage", nullptr},
            {"businessPhones", phones},
            {"children", json::array()},
            {"companyName", company},
            {"department", it.version ? "Einkauf " + std::to_string(it.version) : "Einkauf"},
            {"displayName", g + " " + s},
            {"emailAddresses", json::array({{{"name", g + " " + s}, {"address", mail}}})},
            {"fileAs", s + ", " + g},
            {"generation", nullptr},
            {"givenName", g},
            {"homeAddress", json::object()},
            {"homePhones", json::array()},
            {"imAddresses", json::array()},
            {"initials", g.substr(0, 1) + "."},
            {"jobTitle", v.pick(std::vector<std::string>{"Buyer", "CTO", "Consultant", "Einkäuferin"})},
            {"manager", ""},
            {"middleName", nullptr},
            {"mobilePhone", r.below(2) ? json("+1 555 0" + std::to_string(100 + r.below(899))) : json(nullptr)},
            {"nickName", nullptr},
            {"officeLocation", nullptr},
            {"otherAddress", json::object()},
            {"personalNotes", r.below(4) == 0 ? "Met at the fair — prefers email. Owner: " + p.name : ""},
            {"profession", nullptr},
            {"spouseName", nullptr},
            {"surname", s},
            {"title", nullptr},
            {"yomiCompanyName", nullptr},
            {"yomiGivenName", nullptr},
            {"yomiSurname", nullptr}};
  return c;
}

namespace {
struct EventShape {
  std::int64_t start, end;
  bool recurring, all_day;
};
EventShape event_shape(const Tenant& t, std::uint32_t u, std::uint32_t i) {
  Rng r = item_rng(t, 0x65767473, u, i, 0);
  r.next();
  std::int64_t n = std::max(1, t.spec.events_per_user);
  std::int64_t span = 180 * kDay;
  std::int64_t start = kBaseEpoch - 90 * kDay + (static_cast<std::int64_t>(i % static_cast<std::uint32_t>(n)) * span) / n;
  if (i >= static_cast<std::uint32_t>(t.spec.events_per_user)) start = kBaseEpoch + static_cast<std::int64_t>(i) * 3600;
  start -= start % 1800;
  start += static_cast<std::int64_t>(r.below(16)) * 1800;
  bool all_day = r.below(15) == 0;
  if (all_day) start -= start % kDay;
  std::int64_t dur = all_day ? kDay : 1800 * static_cast<std::int64_t>(1 + r.below(4));
  return {start, start + dur, r.below(5) == 0, all_day};
}
}  // namespace

namespace {
// Midnight UTC of an RFC 3339 date (YYYY-MM-DD), if it is one.
std::optional<std::int64_t> date_epoch(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return std::nullopt;
  auto s = j[key].get<std::string>();
  if (s.size() < 10) return std::nullopt;
  return parse_iso_time(s.substr(0, 10) + "T00:00:00Z");
}

// The regular starts of a series written through Graph: daily or weekly patterns, in
// UTC (the emulator keeps every event in UTC).
std::vector<std::int64_t> recurrence_starts(const json& master) {
  std::vector<std::int64_t> out;
  const json& rec = master.contains("recurrence") ? master["recurrence"] : json();
  if (!rec.is_object() || !master.contains("start") || !master["start"].is_object()) return out;
  auto first = parse_iso_time(master["start"].value("dateTime", "").substr(0, 19) + "Z");
  if (!first) return out;
  const json pattern = rec.value("pattern", json::object());
  const json range = rec.value("range", json::object());
  const std::string type = pattern.value("type", "");
  const std::int64_t interval = std::max<std::int64_t>(1, pattern.value("interval", 1));
  const std::string range_type = range.value("type", "noEnd");
  std::int64_t last = *first + 5 * 365 * kDay;
  if (range_type == "endDate")
    if (auto e = date_epoch(range, "endDate")) last = *e + kDay - 1;
  std::size_t count = kMaxOccurrences;
  if (range_type == "numbered") count = std::min<std::size_t>(count, range.value("numberOfOccurrences", 0u));
  const std::int64_t time_of_day = ((*first % kDay) + kDay) % kDay;
  std::int64_t day0 = *first - time_of_day;
  if (auto d = date_epoch(range, "startDate")) day0 = *d;
  if (type == "daily") {
    for (std::int64_t d = day0; d + time_of_day <= last && out.size() < count; d += interval * kDay) out.push_back(d + time_of_day);
  } else if (type == "weekly") {
    static const char* names[] = {"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"};
    std::set<int> days;
    for (auto& d : pattern.value("daysOfWeek", json::array()))
      for (int k = 0; k < 7; ++k)
        if (d.is_string() && d.get<std::string>() == names[k]) days.insert(k);
    if (days.empty()) return out;
    const std::int64_t week0 = day0 - ((day0 / kDay + 4) % 7) * kDay;  // the Sunday on or before (1970-01-01 was a Thursday)
    for (std::int64_t w = week0; w <= last && out.size() < count; w += interval * 7 * kDay)
      for (int k : days) {
        std::int64_t s = w + k * kDay + time_of_day;
        if (s < day0 + time_of_day || s > last || out.size() >= count) continue;
        out.push_back(s);
      }
  }
  return out;
}
}  // namespace

json cancelled_ids(const Tenant& t, std::uint32_t u, std::uint32_t i, const PimItem& it);

std::vector<Occurrence> occurrences(const Tenant& t, std::uint32_t u, std::uint32_t i, const PimItem& it) {
  std::vector<Occurrence> out;
  auto apply = [&](std::uint32_t k, std::int64_t original, std::int64_t s, std::int64_t length, bool ex) {
    if (std::find(it.cancelled.begin(), it.cancelled.end(), k) != it.cancelled.end()) return;
    Occurrence o{k, s, s + length, ex, original, json()};
    if (auto p = it.patched.find(k); p != it.patched.end()) {
      o.exception = true;
      o.patch = p->second;
      auto ps = parse_iso_time(o.patch.value("/start/dateTime"_json_pointer, std::string()).substr(0, 19) + "Z");
      auto pe = parse_iso_time(o.patch.value("/end/dateTime"_json_pointer, std::string()).substr(0, 19) + "Z");
      if (ps) o.start = *ps;
      o.end = pe ? *pe : o.start + length;
    }
    out.push_back(std::move(o));
  };
  if (it.custom) {
    const json& m = *it.custom;
    if (m.value("type", "") != "seriesMaster") return out;
    auto s0 = parse_iso_time(m.value("/start/dateTime"_json_pointer, std::string()).substr(0, 19) + "Z");
    auto e0 = parse_iso_time(m.value("/end/dateTime"_json_pointer, std::string()).substr(0, 19) + "Z");
    const std::int64_t length = s0 && e0 ? *e0 - *s0 : 0;
    auto starts = recurrence_starts(m);
    for (std::uint32_t k = 1; k <= starts.size(); ++k) apply(k, starts[k - 1], starts[k - 1], length, false);
    return out;
  }
  auto sh = event_shape(t, u, i);
  if (!sh.recurring) return out;
  for (std::uint32_t k = 1; k <= kSeriesLength; ++k) {
    if (k == kCancelledNumber) continue;
    std::int64_t original = sh.start + static_cast<std::int64_t>(k - 1) * 7 * kDay;
    bool ex = k == kGeneratedException;
    apply(k, original, ex ? original + 3600 : original, sh.end - sh.start, ex);
  }
  return out;
}

std::string occurrence_subject(const json& master, const PimItem& it, const Occurrence& o) {
  std::string subject = master.value("subject", "");
  if (!it.custom && o.number == kGeneratedException) subject += " (moved)";
  if (o.patch.is_object() && o.patch.contains("subject") && o.patch["subject"].is_string()) subject = o.patch["subject"];
  return subject;
}

std::vector<std::int64_t> cancelled_starts(const Tenant& t, std::uint32_t u, std::uint32_t i, const PimItem& it) {
  std::vector<std::int64_t> out;
  std::vector<std::int64_t> starts;
  if (it.custom) {
    if (it.custom->value("type", "") == "seriesMaster") starts = recurrence_starts(*it.custom);
  } else if (auto sh = event_shape(t, u, i); sh.recurring) {
    for (std::uint32_t k = 1; k <= kSeriesLength; ++k) starts.push_back(sh.start + static_cast<std::int64_t>(k - 1) * 7 * kDay);
    out.push_back(starts[kCancelledNumber - 1]);
  }
  for (auto k : it.cancelled)
    if (k >= 1 && k <= starts.size()) out.push_back(starts[k - 1]);
  std::sort(out.begin(), out.end());
  return out;
}

// Graph names a cancelled occurrence "OID.{master}.{date}"; here the master is its index.
json cancelled_ids(const Tenant& t, std::uint32_t u, std::uint32_t i, const PimItem& it) {
  json out = json::array();
  for (auto s : cancelled_starts(t, u, i, it)) out.push_back("OID." + std::to_string(i) + "." + iso_time(s).substr(0, 10));
  return out;
}

json event_content(const Tenant& t, std::uint32_t u, std::uint32_t i, const PimItem& it) {
  if (it.custom) {
    json c = *it.custom;
    if (c.value("type", "") == "seriesMaster") c["cancelledOccurrences"] = cancelled_ids(t, u, i, it);
    return c;
  }
  Rng r = item_rng(t, 0x65767474, u, i, 0);
  auto sh = event_shape(t, u, i);
  Person owner = user_person(t, u);
  std::string subject = r.pick(kEventTopics);
  if (it.version) subject += " (v" + std::to_string(it.version + 1) + ")";
  bool organizer_is_owner = r.below(3) != 0;
  Person organizer = organizer_is_owner ? owner : user_person(t, static_cast<std::uint32_t>(r.below(static_cast<std::uint64_t>(t.spec.users))));
  json attendees = json::array();
  int n = static_cast<int>(r.below(4));
  for (int k = 0; k < n; ++k) {
    Person a = user_person(t, static_cast<std::uint32_t>(r.below(static_cast<std::uint64_t>(t.spec.users))));
    attendees.push_back({{"type", k == 0 ? "required" : "optional"},
                         {"status", {{"response", k % 2 ? "accepted" : "none"}, {"time", "0001-01-01T00:00:00Z"}}},
                         {"emailAddress", {{"name", a.name}, {"address", a.address}}}});
  }
  std::string room = r.pick(kRooms);
  std::string text = "Agenda: " + subject + ". Bitte pünktlich sein 🙂";
  const std::int64_t created = sh.start - 14 * kDay;
  json recurrence = nullptr;
  json cancelled = json::array();
  if (sh.recurring) {
    static const char* days[] = {"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"};
    std::time_t tt = static_cast<std::time_t>(sh.start);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    auto start_date = iso_time(sh.start).substr(0, 10);
    auto end_date = iso_time(sh.start + static_cast<std::int64_t>(kSeriesLength - 1) * 7 * kDay).substr(0, 10);
    recurrence = {{"pattern", {{"type", "weekly"}, {"interval", 1}, {"month", 0}, {"dayOfMonth", 0},
                               {"daysOfWeek", json::array({days[tm.tm_wday]})}, {"firstDayOfWeek", "sunday"}, {"index", "first"}}},
                  {"range", {{"type", "endDate"}, {"startDate", start_date}, {"endDate", end_date},
                             {"recurrenceTimeZone", "UTC"}, {"numberOfOccurrences", 0}}}};
    cancelled = cancelled_ids(t, u, i, it);
  }
  return {{"createdDateTime", iso_time(created)},
          {"lastModifiedDateTime", iso_time(created + static_cast<std::int64_t>(it.version) * kDay + 60)},
          {"categories", json::array()},
          {"transactionId", nullptr},
          {"originalStartTimeZone", "UTC"},
          {"originalEndTimeZone", "UTC"},
          {"iCalUId", "040000008200E00074C5B7101A82E008" + to_hex(sha1(std::to_string(t.spec.seed) + ":" + std::to_string(u) + ":" + std::to_string(i))).substr(0, 32)},
          {"reminderMinutesBeforeStart", 15},
          {"isReminderOn", !sh.all_day},
          {"hasAttachments", false},
          {"subject", subject},
          {"bodyPreview", text},
          {"importance", "normal"},
          {"sensitivity", "normal"},
          {"isAllDay", sh.all_day},
          {"isCancelled", false},
          {"isOrganizer", organizer_is_owner},
          {"responseRequested", true},
          {"seriesMasterId", nullptr},
          {"showAs", "busy"},
          {"type", sh.recurring ? "seriesMaster" : "singleInstance"},
          {"onlineMeetingUrl", nullptr},
          {"isOnlineMeeting", room == "Teams"},
          {"onlineMeetingProvider", room == "Teams" ? "teamsForBusiness" : "unknown"},
          {"allowNewTimeProposals", true},
          {"isDraft", false},
          {"hideAttendees", false},
          {"responseStatus", {{"response", organizer_is_owner ? "organizer" : "accepted"}, {"time", "0001-01-01T00:00:00Z"}}},
          {"body", {{"contentType", "html"}, {"content", "<html><body><p>" + text + "</p></body></html>"}}},
          {"start", {{"dateTime", graph_datetime(sh.start)}, {"timeZone", "UTC"}}},
          {"end", {{"dateTime", graph_datetime(sh.end)}, {"timeZone", "UTC"}}},
          {"location", {{"displayName", room}, {"locationType", "default"}, {"uniqueIdType", "unknown"}}},
          {"locations", room.empty() ? json::array() : json::array({{{"displayName", room}, {"locationType", "default"}, {"uniqueIdType", "unknown"}}})},
          {"recurrence", recurrence},
          {"cancelledOccurrences", cancelled},
          {"attendees", attendees},
          {"organizer", {{"emailAddress", {{"name", organizer.name}, {"address", organizer.address}}}}},
          {"onlineMeeting", nullptr}};
}

std::string canonical_json(const json& content) {
  static const std::vector<std::string> server_fields = {"id", "changeKey", "createdDateTime", "lastModifiedDateTime",
                                                         "parentFolderId", "calendar", "webLink", "iCalUId",
                                                         "seriesMasterId", "transactionId"};
  json c = json::object();
  for (auto& [k, v] : content.items()) {
    if (k.find('@') != std::string::npos) continue;
    if (std::find(server_fields.begin(), server_fields.end(), k) != server_fields.end()) continue;
    c[k] = v;
  }
  return c.dump(-1, ' ', false, json::error_handler_t::strict);
}

void apply_pim_activity(Tenant& t, const std::string& category, Rng& r, int creates, int updates, int deletes, json& out) {
  const bool contacts = category == "contacts";
  auto kind = contacts ? OutlookKey::contact : OutlookKey::event;
  auto user = [&] {
    for (int tries = 0; tries < 64; ++tries) {
      auto u = static_cast<std::uint32_t>(r.below(t.users.size()));
      if (has_mailbox(t.spec, u)) return u;
    }
    return 0u;
  };
  auto id_of = [&](std::uint32_t u, std::uint32_t i) { return outlook_id(t, {kind, u, i, 0, 0}); };
  for (int n = 0; n < creates; ++n) {
    auto u = user();
    if (t.users[u].removed != Removed::none) continue;
    auto& s = contacts ? mailbox(t, u).contacts : mailbox(t, u).calendars;
    PimItem it;
    it.container = 0;
    it.seq = ++s.seq;
    auto idx = static_cast<std::uint32_t>(s.items.size());
    s.items.push_back(it);
    s.containers[0].messages.push_back(idx);
    out["created"].push_back({{"owner", t.users[u].id}, {"category", category}, {"id", id_of(u, idx)}});
  }
  auto pick = [&](PimStore& s) -> std::optional<std::uint32_t> {
    for (int tries = 0; tries < 64 && !s.items.empty(); ++tries) {
      auto i = static_cast<std::uint32_t>(r.below(s.items.size()));
      if (s.items[i].alive) return i;
    }
    return std::nullopt;
  };
  for (int n = 0; n < updates; ++n) {
    auto u = user();
    auto& s = contacts ? mailbox(t, u).contacts : mailbox(t, u).calendars;
    auto i = pick(s);
    if (!i) continue;
    ++s.items[*i].version;
    s.items[*i].seq = ++s.seq;
    out["updated"].push_back({{"owner", t.users[u].id}, {"category", category}, {"id", id_of(u, *i)}});
  }
  for (int n = 0; n < deletes; ++n) {
    auto u = user();
    auto& s = contacts ? mailbox(t, u).contacts : mailbox(t, u).calendars;
    auto i = pick(s);
    if (!i) continue;
    auto& it = s.items[*i];
    it.alive = false;
    it.seq = ++s.seq;
    auto& c = s.containers[it.container];
    std::erase(c.messages, *i);
    c.tombs.push_back({*i, 0, it.seq});
    out["deleted"].push_back({{"owner", t.users[u].id}, {"category", category}, {"id", id_of(u, *i)}});
  }
}

}  // namespace m365vault::emulator
