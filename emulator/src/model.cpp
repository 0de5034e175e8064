#include "model.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "m365vault/core/error.hpp"

namespace m365vault::emulator {

const std::vector<std::string> kCategories = {"Red category", "Blue category", "Projekt Überblick", "客户", "Follow up"};

std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  Rng r(a * 0x9e3779b97f4a7c15ULL ^ (b + 0x632be59bd9b4e019ULL));
  r.next();
  return r.next();
}

std::uint64_t hash_str(std::string_view s) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return mix(h, s.size());
}

std::string guid_from(std::uint64_t a, std::uint64_t b) {
  std::uint64_t x = mix(a, b), y = mix(b ^ 0x5bd1e995, a);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(x >> 32),
                static_cast<unsigned>((x >> 16) & 0xffff), static_cast<unsigned>(x & 0xfff),
                static_cast<unsigned>(0x8000 | ((y >> 48) & 0x3fff)),
                static_cast<unsigned long long>(y & 0xffffffffffffULL));
  return buf;
}

std::string iso_time(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string rfc5322_time(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  static const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* mons[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s, %d %s %d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday, mons[tm.tm_mon],
                tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::optional<std::int64_t> parse_iso_time(std::string_view s) {
  int y, mo, d, h, mi, se;
  std::string str(s.substr(0, 19));
  if (str.size() != 19 || std::sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &se) != 6)
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = se;
  return static_cast<std::int64_t>(timegm(&tm));
}

// --- spec --------------------------------------------------------------------

json TenantSpec::to_json() const {
  return {{"tenant_id", tenant_id},
          {"client_id", client_id},
          {"client_secret", client_secret},
          {"domain", domain},
          {"seed", seed},
          {"users", users},
          {"mail_folders_per_user", mail_folders_per_user},
          {"messages_per_user", messages_per_user},
          {"contacts_per_user", contacts_per_user},
          {"events_per_user", events_per_user},
          {"unlicensed_users", unlicensed_users},
          {"max_attachment_bytes", max_attachment_bytes},
          {"drive_files_per_user", drive_files_per_user},
          {"drive_bytes_per_user", drive_bytes_per_user},
          {"drive_type", drive_type},
          {"sites", sites},
          {"files_per_site", files_per_site},
          {"teams", teams},
          {"channels_per_team", channels_per_team},
          {"messages_per_channel", messages_per_channel},
          {"old_messages_per_channel", old_messages_per_channel},
          {"chats", chats},
          {"messages_per_chat", messages_per_chat},
          {"created_at", created_at},
          {"permissions", permissions},
          {"certificates", certificates}};
}

namespace {
[[noreturn]] void bad(const std::string& m) { throw Error(Errc::bad_request, m); }

template <class T>
void opt_int(const json& j, const char* key, T& out, long long lo, long long hi) {
  if (!j.contains(key)) return;
  const auto& v = j[key];
  if (!v.is_number_integer()) bad(std::string("field '") + key + "' must be an integer");
  auto x = v.get<long long>();
  if (x < lo || x > hi)
    bad(std::string("field '") + key + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  out = static_cast<T>(x);
}
std::string req_str(const json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_string() || j[key].get<std::string>().empty())
    bad(std::string("field '") + key + "' is required (a non-empty string)");
  return j[key].get<std::string>();
}

const std::vector<std::string> kAllPermissions = {"User.Read.All",       "Group.Read.All",      "Mail.ReadWrite",
                                                  "Contacts.ReadWrite",  "Calendars.ReadWrite", "Files.ReadWrite.All",
                                                  "Sites.ReadWrite.All", "ChannelMessage.Read.All", "Chat.Read.All",
                                                  "Team.ReadBasic.All", "TeamMember.Read.All"};
}  // namespace

TenantSpec TenantSpec::from_json(const json& j) {
  if (!j.is_object()) bad("body must be a JSON object");
  TenantSpec s;
  s.tenant_id = req_str(j, "tenant_id");
  s.client_id = req_str(j, "client_id");
  s.client_secret = j.value("client_secret", std::string());
  if (j.contains("seed")) {
    if (!j["seed"].is_number_integer()) bad("field 'seed' must be an integer");
    s.seed = j["seed"].get<std::uint64_t>();
  }
  opt_int(j, "users", s.users, 1, 100000);
  opt_int(j, "mail_folders_per_user", s.mail_folders_per_user, 0, 1000);
  opt_int(j, "messages_per_user", s.messages_per_user, 0, 10000000);
  opt_int(j, "contacts_per_user", s.contacts_per_user, 0, 1000000);
  opt_int(j, "events_per_user", s.events_per_user, 0, 1000000);
  opt_int(j, "unlicensed_users", s.unlicensed_users, 0, s.users);
  opt_int(j, "max_attachment_bytes", s.max_attachment_bytes, 1024, 150ll << 20);
  opt_int(j, "drive_files_per_user", s.drive_files_per_user, 0, 10000000);
  opt_int(j, "drive_bytes_per_user", s.drive_bytes_per_user, 0, 1ll << 50);
  opt_int(j, "sites", s.sites, 0, 100000);
  opt_int(j, "files_per_site", s.files_per_site, 0, 10000000);
  opt_int(j, "teams", s.teams, 0, 100000);
  opt_int(j, "channels_per_team", s.channels_per_team, 1, 200);
  opt_int(j, "messages_per_channel", s.messages_per_channel, 0, 1000000);
  // Old posts sit hourly in the months before the window; 2000 keeps them there.
  s.old_messages_per_channel = std::min(s.messages_per_channel / 4, 2000);
  opt_int(j, "old_messages_per_channel", s.old_messages_per_channel, 0, std::min(s.messages_per_channel, 2000));
  opt_int(j, "chats", s.chats, 0, 1000000);
  opt_int(j, "messages_per_chat", s.messages_per_chat, 0, 100000);
  opt_int(j, "created_at", s.created_at, 0, 32503680000LL);
  s.drive_type = j.value("drive_type", s.drive_type);
  if (s.drive_type != "business" && s.drive_type != "personal") bad("field 'drive_type' must be 'business' or 'personal'");
  s.domain = j.value("domain", std::string());
  if (s.domain.empty()) {
    std::string label = "tenant" + std::to_string(hash_str(s.tenant_id) % 100000);
    s.domain = label + ".onmicrosoft.com";
  }
  if (j.contains("permissions")) {
    if (!j["permissions"].is_array()) bad("field 'permissions' must be an array of strings");
    for (auto& p : j["permissions"]) s.permissions.push_back(p.get<std::string>());
  } else {
    s.permissions = kAllPermissions;
  }
  if (j.contains("certificates")) {
    if (!j["certificates"].is_array()) bad("field 'certificates' must be an array of PEM strings");
    for (auto& p : j["certificates"]) s.certificates.push_back(p.get<std::string>());
  }
  return s;
}

// --- directory ---------------------------------------------------------------

namespace {
struct Name {
  const char* display;
  const char* ascii;
};
const std::vector<Name> kGiven = {{"Adele", "adele"},   {"Alex", "alex"},     {"Zoë", "zoe"},       {"José", "jose"},
                                  {"Søren", "soren"},   {"Łukasz", "lukasz"}, {"Aiko", "aiko"},     {"Émilie", "emilie"},
                                  {"Nuno", "nuno"},     {"Grace", "grace"},   {"Mateo", "mateo"},   {"Olga", "olga"},
                                  {"Ravi", "ravi"},     {"Siobhán", "siobhan"}, {"Jürgen", "jurgen"}, {"Megan", "megan"}};
const std::vector<Name> kSurname = {{"Vance", "vance"},     {"Wilber", "wilber"}, {"Müller", "muller"},
                                    {"García", "garcia"},   {"Nguyễn", "nguyen"}, {"O'Brien", "obrien"},
                                    {"Kowalski", "kowalski"}, {"Tanaka", "tanaka"}, {"Dubois", "dubois"},
                                    {"Silva", "silva"},     {"Ng", "ng"},         {"Patel", "patel"}};
const std::vector<std::string> kJobs = {"Retail Manager", "Marketing Assistant", "Developer", "Product Manager",
                                        "Paralegal", "Chef de projet", "Accountant", "Sales Lead"};
const std::vector<std::string> kOffices = {"18/2111", "19/3123", "Berlin-2", "131/1104", "Lyon 3B", "Remote"};
const std::vector<std::string> kLangs = {"en-US", "de-DE", "fr-FR", "ja-JP", "pt-BR"};

Rng user_rng(const Tenant& t, std::uint32_t i) { return Rng(mix(mix(t.spec.seed, 0x75736572), i)); }
}  // namespace

Person user_person(const Tenant& t, std::uint32_t i) {
  Rng r = user_rng(t, i);
  const auto& g = kGiven[r.below(kGiven.size())];
  const auto& s = kSurname[r.below(kSurname.size())];
  return {std::string(g.display) + " " + s.display,
          std::string(g.ascii) + "." + s.ascii + std::to_string(i) + "@" + t.spec.domain};
}

json user_json(const Tenant& t, std::uint32_t i) {
  Rng r = user_rng(t, i);
  const auto& g = kGiven[r.below(kGiven.size())];
  const auto& s = kSurname[r.below(kSurname.size())];
  const auto& du = t.users[i];
  Rng v(mix(r.next(), du.version));
  std::string upn = std::string(g.ascii) + "." + s.ascii + std::to_string(i) + "@" + t.spec.domain;
  json phones = json::array();
  if (r.below(3)) phones.push_back("+1 425 555 0" + std::to_string(100 + i % 900));
  json mobile = r.below(2) ? json("+1 425 555 0" + std::to_string(100 + (i * 7) % 900)) : json(nullptr);
  return {{"businessPhones", phones},
          {"displayName", std::string(g.display) + " " + s.display + (du.version ? " (" + std::to_string(du.version) + ")" : "")},
          {"givenName", g.display},
          {"jobTitle", v.pick(kJobs)},
          {"mail", upn},
          {"mobilePhone", mobile},
          {"officeLocation", du.version ? json(v.pick(kOffices)) : json(kOffices[i % kOffices.size()])},
          {"preferredLanguage", kLangs[r.below(kLangs.size())]},
          {"surname", s.display},
          {"userPrincipalName", upn},
          {"id", du.id}};
}

json group_json(const Tenant& t, std::uint32_t i) {
  const auto& g = t.groups[i];
  static const std::vector<std::string> names = {"Marketing", "Ventes Europe", "Engineering", "経理", "Legal",
                                                 "All Company", "Projekt Nordlicht", "Support"};
  Rng r(mix(mix(t.spec.seed, 0x67726f7570), i));
  std::string name = r.pick(names) + " " + std::to_string(i + 1);
  std::string nick = "group" + std::to_string(i + 1);
  bool unified = r.below(3) != 0;
  bool team = unified && r.below(2);
  if (t.spec.teams > 0) {  // the first `teams` groups are Microsoft 365 groups with a team
    team = static_cast<int>(i) < t.spec.teams;
    unified = unified || team;
  }
  return {{"classification", nullptr},
          {"createdDateTime", iso_time(kBaseEpoch - 86400 * 400 + static_cast<std::int64_t>(i) * 3600)},
          {"description", g.version ? "Updated description " + std::to_string(g.version) : "Group for " + name},
          {"displayName", name},
          {"groupTypes", unified ? json::array({"Unified"}) : json::array()},
          {"mail", nick + "@" + t.spec.domain},
          {"mailEnabled", unified},
          {"mailNickname", nick},
          {"securityEnabled", !unified},
          {"visibility", unified ? json("Private") : json(nullptr)},
          {"resourceProvisioningOptions", team ? json::array({"Team"}) : json::array()},
          {"id", g.id}};
}

std::unique_ptr<Tenant> make_tenant(const TenantSpec& spec) {
  auto t = std::make_unique<Tenant>();
  t->spec = spec;
  t->hash = static_cast<std::uint32_t>(hash_str(spec.tenant_id) ^ spec.seed);
  for (auto& pem : spec.certificates) {
    auto c = parse_certificate(pem);
    if (!c) throw Error(Errc::bad_request, "field 'certificates': an entry is not a PEM certificate");
    t->certs.push_back(*c);
  }
  for (int i = 0; i < spec.users; ++i) {
    DirUser u;
    u.id = guid_from(mix(spec.seed, 0x75736572), static_cast<std::uint64_t>(i));
    t->users.push_back(std::move(u));
  }
  int ngroups = std::max(spec.users / 4 + 1, spec.teams);
  for (int i = 0; i < ngroups; ++i) {
    DirGroup g;
    g.id = guid_from(mix(spec.seed, 0x67726f7570), static_cast<std::uint64_t>(i));
    Rng r(mix(mix(spec.seed, 0x6d656d), i));
    std::set<std::uint32_t> m;
    // Most groups are small; every seventh is large enough to page its members.
    int n = 1 + static_cast<int>(r.below(std::min(spec.users, i % 7 == 0 ? 60 : 12)));
    for (int k = 0; k < n; ++k) m.insert(static_cast<std::uint32_t>(r.below(spec.users)));
    g.members.assign(m.begin(), m.end());
    t->groups.push_back(std::move(g));
  }
  return t;
}

// --- mailboxes ---------------------------------------------------------------

namespace {
struct WellKnown {
  const char* name;
  const char* wk;
  bool hidden;
};
const std::vector<WellKnown> kWellKnown = {
    {"Top of Information Store", "msgfolderroot", false},
    {"Inbox", "inbox", false},
    {"Drafts", "drafts", false},
    {"Sent Items", "sentitems", false},
    {"Deleted Items", "deleteditems", false},
    {"Archive", "archive", false},
    {"Junk Email", "junkemail", false},
    {"Outbox", "outbox", false},
    {"Conversation History", "conversationhistory", false},
    {"Social Activity Notifications", "", true},
};
constexpr std::uint32_t kInbox = 1, kDrafts = 2, kSent = 3, kDeleted = 4, kArchive = 5;
const std::vector<std::string> kFolderNames = {"Projects", "Receipts", "Ünïcode Ordner", "客户往来", "Travel",
                                               "Newsletters", "Team ✨", "Old stuff", "Legal", "Family"};
}  // namespace

Mailbox& mailbox(Tenant& t, std::uint32_t u) {
  auto& slot = t.mailboxes[u];
  if (slot) return *slot;
  slot = std::make_unique<Mailbox>();
  auto& mb = *slot;
  for (std::uint32_t i = 0; i < kWellKnown.size(); ++i) {
    Folder f;
    f.index = i;
    f.parent = i == 0 ? -1 : 0;
    f.name = kWellKnown[i].name;
    f.well_known = kWellKnown[i].wk;
    f.hidden = kWellKnown[i].hidden;
    mb.folders.push_back(std::move(f));
  }
  {
    Folder sf;
    sf.index = static_cast<std::uint32_t>(mb.folders.size());
    sf.parent = kInbox;
    sf.name = "Weekly digests";
    sf.search = true;
    mb.folders.push_back(std::move(sf));
  }
  Rng r(mix(mix(t.spec.seed, 0x6d626f78), u));
  std::vector<std::uint32_t> user_folders;
  for (int i = 0; i < t.spec.mail_folders_per_user; ++i) {
    Folder f;
    f.index = static_cast<std::uint32_t>(mb.folders.size());
    f.parent = (!user_folders.empty() && r.below(3) == 0) ? static_cast<std::int32_t>(r.pick(user_folders))
                                                          : static_cast<std::int32_t>(r.below(4) ? kInbox : 0);
    f.name = kFolderNames[static_cast<std::size_t>(i) % kFolderNames.size()];
    if (i >= static_cast<int>(kFolderNames.size())) f.name += " " + std::to_string(i / kFolderNames.size() + 1);
    user_folders.push_back(f.index);
    mb.folders.push_back(std::move(f));
  }
  mb.msgs.resize(static_cast<std::size_t>(t.spec.messages_per_user));
  for (std::uint32_t i = 0; i < mb.msgs.size(); ++i) {
    Rng mr(mix(mix(mix(t.spec.seed, 0x6d7367), u), i));
    double x = mr.unit();
    std::uint32_t f = kInbox;
    if (x < 0.45) f = kInbox;
    else if (x < 0.65) f = kSent;
    else if (x < 0.72) f = kArchive;
    else if (x < 0.75) f = kDeleted;
    else if (x < 0.77) f = kDrafts;
    else if (!user_folders.empty()) f = user_folders[mr.below(user_folders.size())];
    auto& m = mb.msgs[i];
    m.folder = f;
    m.draft = f == kDrafts;
    m.read = f != kInbox || mr.below(3) == 0;
    m.flagged = mr.below(10) == 0;
    m.categories = mr.below(5) == 0 ? (1u << mr.below(kCategories.size())) : 0;
    mb.folders[f].messages.push_back(i);
  }
  init_pim(t, u, mb);
  return mb;
}

std::string folder_path(const Mailbox& mb, std::uint32_t f) {
  std::string p;
  std::int32_t cur = static_cast<std::int32_t>(f);
  while (cur > 0) {
    p = "/" + mb.folders[static_cast<std::size_t>(cur)].name + p;
    cur = mb.folders[static_cast<std::size_t>(cur)].parent;
  }
  return p.empty() ? "/" : p;
}

// --- message content -----------------------------------------------------------

namespace {
const std::vector<std::string> kTopics = {"Quarterly report",      "Holiday hours update",  "Budget review",
                                          "Réunion de lancement",  "Angebot für Projekt",   "会議の議事録",
                                          "Team offsite 🎉",        "Invoice INV-2291",      "Contract renewal",
                                          "Weekly digest",          "Lunch on Friday?",      "Server maintenance window",
                                          "Résumé & cover letter", "Design review: v2",     "Ça marche — merci !"};
const std::vector<std::string> kWords = {"the",    "project", "deadline", "budget", "review", "client",  "team",
                                         "update", "meeting", "schedule", "report", "draft",  "thanks",  "please",
                                         "naïve",  "café",    "Größe",    "東京",   "déjà",   "numbers", "plan",
                                         "next",   "week",    "attached", "see",    "notes",  "🙂",      "résumé"};
const std::vector<Person> kExternal = {{"Dana Swope", "danas@fabrikam.example"},
                                       {"Samantha Booth", "samanthab@contoso.example"},
                                       {"Jodie Sharp", "jodie.sharp@northwind.example"},
                                       {"Ærøskøbing Ferries", "booking@aeroe.example"},
                                       {"Newsletter", "news@lists.example"}};

std::string paragraph(Rng& r, int words) {
  std::string s;
  for (int i = 0; i < words; ++i) {
    if (i) s += ' ';
    std::string w = r.pick(kWords);
    if (i == 0) w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
    s += w;
  }
  return s + ".";
}

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else o += c;
  }
  return o;
}

std::uint64_t attachment_size(Rng& r, std::uint64_t cap) {
  double x = r.unit();
  std::uint64_t n;
  // Mostly small, a long tail to tens of MB (mean about 200 KB per attachment).
  if (x < 0.80) n = 2000 + r.below(60000);
  else if (x < 0.97) n = 60000 + r.below(540000);
  else if (x < 0.997) n = 600000 + r.below(4400000);
  else n = 8000000 + r.below(30000000);
  return std::min(n, cap);
}
}  // namespace

MessageContent message_content(const Tenant& t, std::uint32_t user, std::uint32_t index, const Msg& m) {
  if (m.custom) {
    MessageContent c = *m.custom;
    c.is_draft = m.draft;
    return c;
  }
  MessageContent c;
  const std::uint32_t thread = index / 3;
  Rng tr(mix(mix(mix(t.spec.seed, 0x746872), user), thread));
  Rng r(mix(mix(mix(t.spec.seed, 0x636f6e74), user), index));
  std::string topic = tr.pick(kTopics);
  const bool reply = index % 3 != 0 && r.below(4) != 0;
  c.subject = reply ? "RE: " + topic : topic;
  Person owner = user_person(t, user);
  Person other = r.below(2) ? r.pick(kExternal)
                            : user_person(t, static_cast<std::uint32_t>(r.below(static_cast<std::uint64_t>(t.spec.users))));
  // Direction comes from the draw that placed the message at generation time, so a
  // later move does not change its content.
  Rng placement(mix(mix(mix(t.spec.seed, 0x6d7367), user), index));
  double px = placement.unit();
  const bool outgoing = index < static_cast<std::uint32_t>(t.spec.messages_per_user) &&
                        ((px >= 0.45 && px < 0.65) || (px >= 0.75 && px < 0.77));
  c.from = outgoing ? owner : other;
  c.to.push_back(outgoing ? other : owner);
  if (r.below(3) == 0) c.cc.push_back(r.pick(kExternal));
  std::int64_t span = 3600 * 24 * 365;
  std::int64_t n = std::max(1, t.spec.messages_per_user);
  c.received = kBaseEpoch - span + (static_cast<std::int64_t>(index % static_cast<std::uint32_t>(n)) * span) / n +
               static_cast<std::int64_t>(r.below(3000));
  if (index >= static_cast<std::uint32_t>(t.spec.messages_per_user))
    c.received = kBaseEpoch + static_cast<std::int64_t>(index) * 60;  // created by activity
  c.sent = c.received - 2 - static_cast<std::int64_t>(r.below(60));
  c.created = c.received;
  c.modified = c.received + (m.version ? static_cast<std::int64_t>(m.version) * 3600 : 1);
  auto msgid = [&](std::uint32_t i) {
    return "<" + to_hex(sha256(std::to_string(t.spec.seed) + ":" + std::to_string(user) + ":" + std::to_string(i)))
                     .substr(0, 32) +
           "@" + t.spec.domain + ">";
  };
  c.internet_message_id = msgid(index);
  if (reply) {
    c.in_reply_to = msgid(index - 1);
    c.references = msgid(thread * 3) + (index - 1 != thread * 3 ? " " + msgid(index - 1) : "");
  }
  c.conversation_key = std::to_string(user) + ":" + std::to_string(thread);
  c.importance = r.below(12) == 0 ? "high" : "normal";
  int paras = 1 + static_cast<int>(r.below(5));
  std::vector<std::string> ps;
  for (int i = 0; i < paras; ++i) ps.push_back(paragraph(r, 8 + static_cast<int>(r.below(40))));
  c.html = r.below(5) != 0;
  std::string greet = "Hi " + c.to[0].name.substr(0, c.to[0].name.find(' ')) + ",";
  c.text_body = greet + "\r\n\r\n";
  c.html_body = "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"></head><body><p>" +
                html_escape(greet) + "</p>";
  for (auto& p : ps) {
    c.text_body += p + "\r\n\r\n";
    c.html_body += "<p>" + html_escape(p) + "</p>";
  }
  c.text_body += "-- \r\n" + c.from.name + "\r\n";
  // Attachments.
  int natt = 0;
  double ax = r.unit();
  if (ax < 0.55) natt = 0;
  else if (ax < 0.85) natt = 1;
  else natt = 2 + static_cast<int>(r.below(3));
  static const std::vector<std::pair<std::string, std::string>> kinds = {
      {"report.pdf", "application/pdf"},
      {"notes.txt", "text/plain"},
      {"Übersicht Q3.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
      {"photo.jpg", "image/jpeg"},
      {"契約書.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
      {"archive.zip", "application/zip"}};
  for (int i = 0; i < natt; ++i) {
    Attachment a;
    a.seed = r.next();
    if (r.below(12) == 0) {
      a.kind = Attachment::item;
      a.name = "Fwd: " + r.pick(kTopics);
      a.content_type = "message/rfc822";
      a.size = 0;  // computed from the generated MIME
    } else {
      const auto& k = r.pick(kinds);
      a.name = k.first;
      a.content_type = k.second;
      a.size = attachment_size(r, t.spec.max_attachment_bytes);
    }
    c.attachments.push_back(std::move(a));
  }
  if (r.below(25) == 0) {
    // A cloud file shared as a link: listed as a referenceAttachment, not a MIME part.
    Attachment ref;
    ref.kind = Attachment::reference;
    ref.name = "Sales Invoice Template.docx";
    ref.content_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
    ref.size = 1060;
    ref.is_inline = true;
    ref.url = "https://" + t.spec.domain.substr(0, t.spec.domain.find('.')) + ".sharepoint.com/personal/shared/" +
              to_hex(sha1(std::to_string(r.next()))).substr(0, 12) + ".docx";
    c.html_body += "<p><a href=\"" + ref.url + "\">" + ref.name + "</a></p>";
    c.text_body += ref.url + "\r\n";
    c.attachments.push_back(std::move(ref));
  }
  if (c.html && r.below(8) == 0) {
    Attachment img;
    img.seed = r.next();
    img.name = "image001.png";
    img.content_type = "image/png";
    img.size = 1500 + r.below(20000);
    img.is_inline = true;
    img.content_id = "image001.png@" + to_hex(sha1(std::to_string(img.seed))).substr(0, 16);
    c.html_body += "<p><img src=\"cid:" + img.content_id + "\" alt=\"logo\"></p>";
    c.attachments.push_back(std::move(img));
  }
  c.html_body += "</body></html>";
  for (auto& a : c.attachments)
    if (a.kind == Attachment::item) a.size = a.bytes().size();
  for (std::size_t k = 0; k < kCategories.size(); ++k)
    if (m.categories & (1u << k)) c.categories.push_back(kCategories[k]);
  c.is_draft = m.draft;
  return c;
}

// --- ids ------------------------------------------------------------------------

void put32(std::string& s, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) s += static_cast<char>((v >> (i * 8)) & 0xff);
}
std::uint32_t get32(std::string_view s, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

std::string outlook_id(const Tenant& t, OutlookKey k) {
  std::string b;
  switch (k.kind) {
    case OutlookKey::folder: b = std::string("\x01\x03\x24\x00\x41\x51", 6); break;
    case OutlookKey::message: b = std::string("\x00\x03\x24\x00\x44\x4d", 6); break;
    case OutlookKey::immutable: b = std::string("\x00\x09\x00\x2e\x41\x49", 6); break;
    case OutlookKey::attachment: b = std::string("\x00\x03\x24\x00\x41\x54", 6); break;
    case OutlookKey::contact_folder: b = std::string("\x01\x03\x24\x00\x43\x46", 6); break;
    case OutlookKey::contact: b = std::string("\x00\x03\x24\x00\x43\x54", 6); break;
    case OutlookKey::calendar: b = std::string("\x01\x03\x24\x00\x43\x4c", 6); break;
    case OutlookKey::event: b = std::string("\x00\x03\x24\x00\x45\x56", 6); break;
  }
  put32(b, t.hash);
  put32(b, k.user);
  put32(b, k.index);
  if (k.kind == OutlookKey::message || k.kind == OutlookKey::attachment || k.kind == OutlookKey::contact ||
      k.kind == OutlookKey::event)
    put32(b, k.moves);
  if (k.kind == OutlookKey::attachment) put32(b, k.sub);
  b += std::string(3, '\0');
  return base64(b, true, true);
}

std::optional<OutlookKey> parse_outlook_id(const Tenant& t, std::string_view id) {
  auto raw = unbase64(id);
  if (!raw || raw->size() < 21) return std::nullopt;
  auto tag = raw->substr(0, 6);
  OutlookKey k{};
  std::size_t want;
  if (tag == std::string("\x01\x03\x24\x00\x41\x51", 6)) k.kind = OutlookKey::folder, want = 21;
  else if (tag == std::string("\x00\x03\x24\x00\x44\x4d", 6)) k.kind = OutlookKey::message, want = 25;
  else if (tag == std::string("\x00\x09\x00\x2e\x41\x49", 6)) k.kind = OutlookKey::immutable, want = 21;
  else if (tag == std::string("\x00\x03\x24\x00\x41\x54", 6)) k.kind = OutlookKey::attachment, want = 29;
  else if (tag == std::string("\x01\x03\x24\x00\x43\x46", 6)) k.kind = OutlookKey::contact_folder, want = 21;
  else if (tag == std::string("\x00\x03\x24\x00\x43\x54", 6)) k.kind = OutlookKey::contact, want = 25;
  else if (tag == std::string("\x01\x03\x24\x00\x43\x4c", 6)) k.kind = OutlookKey::calendar, want = 21;
  else if (tag == std::string("\x00\x03\x24\x00\x45\x56", 6)) k.kind = OutlookKey::event, want = 25;
  else return std::nullopt;
  if (raw->size() != want || get32(*raw, 6) != t.hash) return std::nullopt;
  k.user = get32(*raw, 10);
  k.index = get32(*raw, 14);
  if (want >= 25) k.moves = get32(*raw, 18);
  if (want == 29) k.sub = get32(*raw, 22);
  return k;
}

// --- activity ---------------------------------------------------------------------

json apply_activity(Tenant& t, const json& req) {
  if (!req.is_object()) bad("body must be a JSON object");
  std::uint64_t seed = req.value("seed", static_cast<std::uint64_t>(1));
  int creates = req.value("creates", 0), updates = req.value("updates", 0), deletes = req.value("deletes", 0),
      moves = req.value("moves", 0), renames = req.value("renames", 0);
  if (creates < 0 || updates < 0 || deletes < 0 || moves < 0 || renames < 0) bad("counts must not be negative");
  std::vector<std::string> cats = {"mail"};
  if (req.contains("categories")) cats = req["categories"].get<std::vector<std::string>>();
  else if (req.contains("mass_rewrite") || req.contains("drive_ops") || req.contains("teams_body") ||
           req.contains("expire_delta") || req.contains("chat_ops"))
    cats.clear();
  json out = {{"created", json::array()}, {"updated", json::array()}, {"deleted", json::array()}, {"moved", json::array()},
              {"renamed", json::array()}};
  Rng r(mix(seed, t.spec.seed));
  // Teams and chats stamp edits with the emulated time of the call (the admin API adds
  // "now" before journaling, so a replay gives the same state); -1: a day after kBaseEpoch.
  std::int64_t now_ms = -1;
  if (req.contains("now")) {
    if (!req["now"].is_number_integer()) bad("field 'now' must be an integer (epoch seconds)");
    now_ms = req["now"].get<std::int64_t>() * 1000;
  }
  for (auto& cat : cats) {
    if (cat == "mail") {
      auto pick_msg = [&](Mailbox& mb) -> std::optional<std::uint32_t> {
        if (mb.msgs.empty()) return std::nullopt;
        for (int tries = 0; tries < 64; ++tries) {
          auto i = static_cast<std::uint32_t>(r.below(mb.msgs.size()));
          if (mb.msgs[i].alive) return i;
        }
        return std::nullopt;
      };
      auto user = [&] {
        for (int tries = 0; tries < 64; ++tries) {
          auto u = static_cast<std::uint32_t>(r.below(t.users.size()));
          if (has_mailbox(t.spec, u)) return u;
        }
        return 0u;
      };
      auto owner_id = [&](std::uint32_t u) { return t.users[u].id; };
      for (int i = 0; i < creates; ++i) {
        auto u = user();
        if (t.users[u].removed != Removed::none) continue;
        auto& mb = mailbox(t, u);
        Msg m;
        m.folder = r.below(4) ? kInbox : kArchive;
        m.seq = ++mb.seq;
        auto idx = static_cast<std::uint32_t>(mb.msgs.size());
        mb.msgs.push_back(m);
        mb.folders[m.folder].messages.push_back(idx);
        out["created"].push_back({{"owner", owner_id(u)}, {"id", outlook_id(t, {OutlookKey::message, u, idx, 0, 0})},
                                  {"folder", folder_path(mb, m.folder)}});
      }
      for (int i = 0; i < updates; ++i) {
        auto u = user();
        auto& mb = mailbox(t, u);
        auto idx = pick_msg(mb);
        if (!idx) continue;
        auto& m = mb.msgs[*idx];
        m.read = !m.read;
        m.categories ^= 1u << r.below(kCategories.size());
        ++m.version;
        m.seq = ++mb.seq;
        out["updated"].push_back({{"owner", owner_id(u)}, {"id", outlook_id(t, {OutlookKey::message, u, *idx, m.moves, 0})}});
      }
      for (int i = 0; i < deletes; ++i) {
        auto u = user();
        auto& mb = mailbox(t, u);
        auto idx = pick_msg(mb);
        if (!idx) continue;
        auto& m = mb.msgs[*idx];
        auto& f = mb.folders[m.folder];
        std::erase(f.messages, *idx);
        m.alive = false;
        m.seq = ++mb.seq;
        f.tombs.push_back({*idx, m.moves, m.seq});
        out["deleted"].push_back({{"owner", owner_id(u)}, {"id", outlook_id(t, {OutlookKey::message, u, *idx, m.moves, 0})}});
      }
      for (int i = 0; i < moves; ++i) {
        auto u = user();
        auto& mb = mailbox(t, u);
        auto idx = pick_msg(mb);
        if (!idx) continue;
        auto& m = mb.msgs[*idx];
        std::vector<std::uint32_t> dests;
        for (auto& f : mb.folders)
          if (!f.deleted && !f.search && f.index != 0 && f.index != m.folder && f.index != kDrafts && !f.hidden)
            dests.push_back(f.index);
        auto to = dests[r.below(dests.size())];
        std::string old_id = outlook_id(t, {OutlookKey::message, u, *idx, m.moves, 0});
        auto from = m.folder;
        auto& src = mb.folders[from];
        std::erase(src.messages, *idx);
        m.seq = ++mb.seq;
        src.tombs.push_back({*idx, m.moves, m.seq});
        ++m.moves;
        m.folder = to;
        auto& dst = mb.folders[to].messages;
        dst.insert(std::upper_bound(dst.begin(), dst.end(), *idx), *idx);
        out["moved"].push_back({{"owner", owner_id(u)},
                                {"old_id", old_id},
                                {"id", outlook_id(t, {OutlookKey::message, u, *idx, m.moves, 0})},
                                {"immutable_id", outlook_id(t, {OutlookKey::immutable, u, *idx, 0, 0})},
                                {"from", folder_path(mb, from)},
                                {"to", folder_path(mb, to)}});
      }
    } else if (cat == "directory") {
      for (int i = 0; i < creates; ++i) {
        DirUser u;
        auto idx = static_cast<std::uint32_t>(t.users.size());
        u.id = guid_from(mix(t.spec.seed, 0x75736572), idx);
        u.seq = ++t.dir_seq;
        t.users.push_back(u);
        out["created"].push_back({{"category", "directory"}, {"id", u.id}});
      }
      for (int i = 0; i < updates && !t.users.empty(); ++i) {
        auto& u = t.users[r.below(t.users.size())];
        if (u.removed != Removed::none) continue;
        ++u.version;
        u.seq = ++t.dir_seq;
        u.changed = {"displayName", "jobTitle", "officeLocation"};
        out["updated"].push_back({{"category", "directory"}, {"id", u.id}});
      }
      for (int i = 0; i < deletes && !t.users.empty(); ++i) {
        auto ui = static_cast<std::uint32_t>(r.below(t.users.size()));
        auto& u = t.users[ui];
        if (u.removed == Removed::hard) continue;
        u.removed = u.removed == Removed::none ? Removed::soft : Removed::hard;
        u.seq = ++t.dir_seq;
        if (u.removed == Removed::hard) {
          for (auto& g : t.groups) {
            if (std::find(g.members.begin(), g.members.end(), ui) == g.members.end()) continue;
            std::erase(g.members, ui);
            g.member_log.push_back({ui, true, t.dir_seq});
            g.seq = t.dir_seq;
          }
        }
        out["deleted"].push_back({{"category", "directory"}, {"id", u.id},
                                  {"reason", u.removed == Removed::soft ? "changed" : "deleted"}});
      }
    } else if (cat == "contacts" || cat == "calendar") {
      apply_pim_activity(t, cat, r, creates, updates, deletes, out);
    } else if (cat == "files") {
      apply_drive_activity(t, r, creates, updates, deletes, moves, renames, out);
    } else if (cat == "lists") {
      apply_list_activity(t, r, creates, updates, deletes, out);
    } else if (cat == "teams") {
      apply_teams_activity(t, r, creates, updates, deletes, now_ms, out);
    } else if (cat == "chats") {
      apply_chat_activity(t, r, creates, updates, deletes, now_ms, out);
    } else {
      bad("unknown category '" + cat + "' (use mail, contacts, calendar, directory, files, lists, teams or chats)");
    }
  }
  if (req.contains("mass_rewrite")) apply_mass_rewrite(t, req["mass_rewrite"], out);
  if (req.contains("drive_ops")) apply_drive_ops(t, req["drive_ops"], out);
  if (req.contains("teams_body")) apply_teams_body(t, req["teams_body"], now_ms, out);
  if (req.contains("expire_delta")) apply_expire_delta(t, req["expire_delta"], out);
  if (req.contains("chat_ops")) apply_chat_ops(t, req["chat_ops"], out);
  return out;
}

}  // namespace m365vault::emulator
