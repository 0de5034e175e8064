#pragma once
// The exported forms of stored items that are not exported as they are:
// contacts (stored as Graph contact JSON) as vCard 3.0, events (stored as Graph
// event JSON) as iCalendar, and mail folders as mboxrd. Each function is pure and
// thread-safe; bad input (a field of the wrong type) throws Error(Errc::bad_request)
// naming the field, so one odd item becomes a fault of the export, not a crash.
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace m365vault::exporting {

// One vCard 3.0 (RFC 2426) for a Graph contact: CRLF lines folded at 75 octets.
std::string vcard_from_graph(const nlohmann::json& contact);

// One VCALENDAR (RFC 5545, through libical) holding `events`, Graph event JSON as
// stored: single events; series masters with RRULE and EXDATE for cancelled
// occurrences; exceptions as overrides with the master's UID and a RECURRENCE-ID.
// Plain occurrences are left out (the RRULE yields them). Times in UTC stay UTC;
// an IANA zone gets a TZID and its VTIMEZONE.
std::string icalendar_from_graph(const std::vector<nlohmann::json>& events);

// The "From " line that opens a message in an mbox, with its newline: the sender's
// address (or MAILER-DAEMON) and the date in asctime form, from an RFC 3339 time.
std::string mbox_from_line(std::optional<std::string_view> sender, std::optional<std::string_view> rfc3339);

// mboxrd quoting of a message fed in pieces: every line that starts with zero or
// more '>' and then "From " gets one more '>'. Reading the mbox back removes one
// '>' from such lines and gives the message byte for byte.
class MboxQuoter {
 public:
  void feed(std::string_view in, std::string& out);
  // Ends the message: what was held back, a newline if it did not end with one,
  // and the empty line that separates messages.
  void finish(std::string& out);

 private:
  bool at_line_start_ = true;
  std::string held_;  // the start of a line that may still turn out to be ">*From "
  char last_ = '\n';
};

}  // namespace m365vault::exporting
