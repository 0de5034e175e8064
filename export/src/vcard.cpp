// vCard 3.0 (RFC 2426) from a Graph contact. Small enough to write here: a
// property per Graph field that has a vCard home, values escaped (\\ \, \; \n)
// and lines folded at 75 octets without splitting a UTF-8 character.
#include <nlohmann/json.hpp>

#include "export_json.hpp"
#include "m365vault/export/formats.hpp"

namespace m365vault::exporting {

namespace {

using nlohmann::json;

std::string escape(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    switch (c) {
      case '\\': out += "\\\\"; break;
      case ',': out += "\\,"; break;
      case ';': out += "\\;"; break;
      case '\r':
        if (i + 1 < v.size() && v[i + 1] == '\n') ++i;
        out += "\\n";
        break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

class Card {
 public:
  void line(std::string_view name_and_params, std::string_view raw_value) {
    std::string l(name_and_params);
    l += ':';
    l += raw_value;
    fold(l);
  }
  void text(std::string_view name, const std::string& value) {
    if (!value.empty()) line(name, escape(value));
  }
  std::string take() { return std::move(out_); }

 private:
  // RFC 2426 2.6: lines longer than 75 octets continue after CRLF and a space.
  void fold(const std::string& l) {
    std::size_t pos = 0, width = 75;
    while (l.size() - pos > width) {
      std::size_t cut = pos + width;
      while (cut > pos && (static_cast<unsigned char>(l[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
      out_.append(l, pos, cut - pos);
      out_ += "\r\n ";
      pos = cut;
      width = 74;  // the leading space counts
    }
    out_.append(l, pos);
    out_ += "\r\n";
  }
  std::string out_;
};

void address(Card& card, const json& c, const char* field, const char* type) {
  auto it = c.find(field);
  if (it == c.end() || !it->is_object()) return;
  auto part = [&](const char* k) { return escape(json_string(*it, k, field)); };
  std::string v = ";;" + part("street") + ";" + part("city") + ";" + part("state") + ";" + part("postalCode") + ";" +
                  part("countryOrRegion");
  if (v != ";;;;;;") card.line(std::string("ADR;TYPE=") + type, v);
}

void phones(Card& card, const json& c, const char* field, const char* type) {
  for (auto& p : json_strings(c, field)) card.text(std::string("TEL;TYPE=") + type, p);
}

}  // namespace

std::string vcard_from_graph(const json& c) {
  if (!c.is_object()) throw Error(Errc::bad_request, "contact: not a JSON object");
  Card card;
  card.line("BEGIN", "VCARD");
  card.line("VERSION", "3.0");
  auto given = json_string(c, "givenName"), surname = json_string(c, "surname"), middle = json_string(c, "middleName");
  auto display = json_string(c, "displayName");
  if (display.empty()) display = (given + (given.empty() || surname.empty() ? "" : " ") + surname);
  if (display.empty()) display = json_string(c, "companyName");
  card.line("FN", escape(display));  // required by 3.0, even when empty
  card.line("N", escape(surname) + ";" + escape(given) + ";" + escape(middle) + ";" + escape(json_string(c, "title")) +
                     ";" + escape(json_string(c, "generation")));
  card.text("NICKNAME", json_string(c, "nickName"));
  auto company = json_string(c, "companyName"), department = json_string(c, "department");
  if (!company.empty() || !department.empty()) card.line("ORG", escape(company) + ";" + escape(department));
  card.text("TITLE", json_string(c, "jobTitle"));
  card.text("ROLE", json_string(c, "profession"));
  if (auto it = c.find("emailAddresses"); it != c.end() && it->is_array()) {
    for (auto& e : *it) {
      if (!e.is_object()) continue;
      card.text("EMAIL;TYPE=INTERNET", json_string(e, "address", "emailAddresses"));
    }
  }
  phones(card, c, "businessPhones", "WORK,VOICE");
  phones(card, c, "homePhones", "HOME,VOICE");
  card.text("TEL;TYPE=CELL,VOICE", json_string(c, "mobilePhone"));
  address(card, c, "businessAddress", "WORK");
  address(card, c, "homeAddress", "HOME");
  address(card, c, "otherAddress", "POSTAL");
  for (auto& im : json_strings(c, "imAddresses")) card.text("X-MS-IMADDRESS", im);
  card.text("URL", json_string(c, "businessHomePage"));
  if (auto b = json_string(c, "birthday"); b.size() >= 10) card.line("BDAY", b.substr(0, 10));
  card.text("X-ASSISTANT", json_string(c, "assistantName"));
  card.text("X-MANAGER", json_string(c, "manager"));
  card.text("X-SPOUSE", json_string(c, "spouseName"));
  for (auto& ch : json_strings(c, "children")) card.text("X-CHILD", ch);
  card.text("X-OFFICE-LOCATION", json_string(c, "officeLocation"));
  card.text("NOTE", json_string(c, "personalNotes"));
  auto cats = json_strings(c, "categories");
  if (!cats.empty()) {
    std::string v;
    for (auto& x : cats) v += (v.empty() ? "" : ",") + escape(x);
    card.line("CATEGORIES", v);
  }
  card.text("UID", json_string(c, "id"));
  card.text("REV", json_string(c, "lastModifiedDateTime"));
  card.line("END", "VCARD");
  return card.take();
}

}  // namespace m365vault::exporting
