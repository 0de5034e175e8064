// mboxrd: messages separated by "From " lines; inside a message every line that
// starts with ">*From " gets one more '>' so that the reader can tell it from a
// separator and give the message back byte for byte.
#include <cstring>
#include <ctime>

#include "m365vault/export/formats.hpp"
#include "m365vault/scheduler/cron.hpp"

namespace m365vault::exporting {

std::string mbox_from_line(std::optional<std::string_view> sender, std::optional<std::string_view> rfc3339) {
  std::string who = "MAILER-DAEMON";
  if (sender) {
    // "Name <a@b>" or "a@b": the address, without spaces (the line is space separated).
    auto s = *sender;
    auto lt = s.rfind('<'), gt = s.rfind('>');
    if (lt != std::string_view::npos && gt != std::string_view::npos && gt > lt) s = s.substr(lt + 1, gt - lt - 1);
    if (!s.empty() && s.find_first_of(" \t\r\n") == std::string_view::npos) who = std::string(s);
  }
  std::time_t t = 0;
  if (rfc3339)
    if (auto p = scheduler::parse_rfc3339(*rfc3339)) t = static_cast<std::time_t>(p->time_since_epoch().count());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char date[64];
  std::strftime(date, sizeof date, "%a %b %e %H:%M:%S %Y", &tm);
  return "From " + who + " " + date + "\n";
}

void MboxQuoter::feed(std::string_view in, std::string& out) {
  static constexpr std::string_view kFrom = "From ";
  while (!in.empty()) {
    if (!at_line_start_) {
      // Copy to the end of the line in one piece.
      const void* nl = std::memchr(in.data(), '\n', in.size());
      std::size_t n = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - in.data()) + 1 : in.size();
      out.append(in.substr(0, n));
      last_ = in[n - 1];
      at_line_start_ = nl != nullptr;
      in.remove_prefix(n);
      continue;
    }
    char c = in.front();
    held_ += c;
    in.remove_prefix(1);
    if (c == '>') continue;
    std::string_view rest = std::string_view(held_).substr(held_.find_first_not_of('>'));
    if (kFrom.starts_with(rest)) {
      if (rest.size() < kFrom.size()) continue;  // may still become ">*From "
      out += '>';
    }
    out += held_;
    last_ = held_.back();
    held_.clear();
    at_line_start_ = c == '\n';
  }
}

void MboxQuoter::finish(std::string& out) {
  if (!held_.empty()) {
    out += held_;
    last_ = held_.back();
    held_.clear();
  }
  if (last_ != '\n') out += '\n';
  out += '\n';
  at_line_start_ = true;
  last_ = '\n';
}

}  // namespace m365vault::exporting
