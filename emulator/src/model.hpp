#pragma once
// The emulated tenant: a directory and mailboxes generated deterministically from a
// seed. Only compact per-item state (folder, version, flags, change sequence) lives in
// memory; subjects, bodies, attachments and MIME bytes are regenerated from
// (seed, user, item index, version) whenever they are asked for.
#include <array>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "crypto.hpp"

namespace m365vault::emulator {

using json = nlohmann::json;

// splitmix64: fast, deterministic, good enough for content generation.
struct Rng {
  std::uint64_t s;
  explicit Rng(std::uint64_t seed) : s(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::uint64_t below(std::uint64_t n) { return n ? next() % n : 0; }
  double unit() { return static_cast<double>(next() >> 11) / 9007199254740992.0; }
  template <class T>
  const T& pick(const std::vector<T>& v) { return v[below(v.size())]; }
};
std::uint64_t mix(std::uint64_t a, std::uint64_t b);
std::uint64_t hash_str(std::string_view s);
// A GUID string derived from a key.
std::string guid_from(std::uint64_t a, std::uint64_t b);
// Big-endian 32-bit fields inside binary ids.
void put32(std::string& s, std::uint32_t v);
std::uint32_t get32(std::string_view s, std::size_t at);
// ISO 8601 UTC with a Z suffix, seconds precision.
std::string iso_time(std::int64_t epoch_s);
// RFC 5322 date ("Mon, 4 Sep 2017 10:00:00 +0000").
std::string rfc5322_time(std::int64_t epoch_s);
// An epoch from ISO 8601 ("2023-05-01T09:59:58Z", fractional seconds ignored); nullopt when malformed.
std::optional<std::int64_t> parse_iso_time(std::string_view s);

constexpr std::int64_t kBaseEpoch = 1767225600;  // 2026-01-01T00:00:00Z: generated mail ends here

struct TenantSpec {
  std::string tenant_id;
  std::string client_id;
  std::string client_secret;
  std::string domain;  // "<name>.onmicrosoft.com"
  std::uint64_t seed = 1;
  int users = 5;
  int mail_folders_per_user = 3;
  int messages_per_user = 20;
  int contacts_per_user = 0;
  int events_per_user = 0;
  int unlicensed_users = 0;  // the last N generated users have no Exchange mailbox
  std::uint64_t max_attachment_bytes = 40ull << 20;
  // OneDrive, SharePoint and Teams (docs/emulator.md, "Files, sites and teams").
  int drive_files_per_user = 12;
  std::uint64_t drive_bytes_per_user = 4ull << 20;
  std::string drive_type = "business";  // "business" (quickXorHash) or "personal" (sha1Hash, sha256Hash)
  int sites = 2;
  int files_per_site = 8;
  int teams = 0;
  int channels_per_team = 3;
  int messages_per_channel = 10;
  // Posts older than the 8-month window of channel delta (contract 13): the first N of
  // each channel. from_json resolves the default (a quarter of messages_per_channel).
  int old_messages_per_channel = -1;
  int chats = 0;               // oneOnOne, group and meeting chats in turn
  int messages_per_chat = 10;
  // The emulated time the tenant was created (epoch s): Teams timestamps are laid out
  // relative to it so the 8-month window means something. Set by the admin API when
  // absent, then journaled with the spec; 0 means kBaseEpoch.
  std::int64_t created_at = 0;
  std::vector<std::string> permissions;   // application roles granted
  std::vector<std::string> certificates;  // PEM certificates registered for the app
  json to_json() const;
  // Throws Error(bad_request) naming the bad field.
  static TenantSpec from_json(const json& j);
};

enum class Removed : std::uint8_t { none, soft, hard };

struct Person {
  std::string name;
  std::string address;
};

struct DirUser {
  std::string id;
  std::uint32_t version = 0;
  std::uint64_t seq = 1;
  Removed removed = Removed::none;
  std::vector<std::string> changed;  // properties changed by the last update (return=minimal)
};

struct MemberChange {
  std::uint32_t user;
  bool removed;
  std::uint64_t seq;
};

struct DirGroup {
  std::string id;
  std::uint32_t version = 0;
  std::uint64_t seq = 1;
  Removed removed = Removed::none;
  std::vector<std::uint32_t> members;
  std::vector<MemberChange> member_log;  // after creation
};

struct Tomb {
  std::uint32_t msg;
  std::uint32_t moves;  // the rest id that vanished
  std::uint64_t seq;
};

struct Folder {
  std::uint32_t index = 0;
  std::int32_t parent = -1;  // -1: the mailbox root above msgfolderroot
  std::string name;
  std::string well_known;  // "inbox", ... or empty
  bool hidden = false;
  bool search = false;
  bool deleted = false;
  std::uint64_t seq = 1;
  std::vector<std::uint32_t> messages;  // sorted message indices
  std::vector<Tomb> tombs;
  std::deque<std::uint64_t> generations;  // sync generations still known (newest last)
  std::uint64_t next_generation = 1;
};

// Content supplied through Graph writes (restore), kept whole: these are few.
struct Attachment;
struct MessageContent;

struct Msg {
  std::uint32_t folder = 0;
  std::uint32_t moves = 0;
  std::uint32_t version = 0;  // content version (categories are part of the MIME)
  std::uint64_t seq = 1;
  bool alive = true;
  bool read = false;
  bool flagged = false;
  bool draft = false;
  std::uint32_t categories = 0;  // bit mask over kCategories
  std::shared_ptr<const MessageContent> custom;  // API-created content
  std::shared_ptr<const std::string> custom_mime;  // MIME-created content
};

// Contacts and events: a container tree (contact folders, calendars) of items whose
// content is generated from (seed, user, index, version) or supplied by a write.
struct PimItem {
  std::uint32_t container = 0;
  std::uint32_t version = 0;
  std::uint64_t seq = 1;
  bool alive = true;
  std::shared_ptr<const json> custom;  // API-created content (properties as posted)
  // Series edits made through Graph, by occurrence number (1-based): instances deleted
  // (cancelled) and properties patched onto an instance (it becomes an exception).
  std::vector<std::uint32_t> cancelled;
  std::map<std::uint32_t, json> patched;
};

struct PimStore {
  std::vector<Folder> containers;  // Folder.messages holds item indices
  std::vector<PimItem> items;
  std::uint64_t seq = 1;
};

struct Mailbox {
  std::vector<Folder> folders;
  std::vector<Msg> msgs;
  std::uint64_t seq = 1;
  std::uint64_t created_messages = 0;
  PimStore contacts;
  PimStore calendars;
  std::uint64_t invitations_sent = 0;  // attendee invitations created events would have sent
};

// --- files ---------------------------------------------------------------------

struct FileHashes {
  std::string quick_xor, sha1, sha256;  // raw digests
};
// The bytes of a file: generated from (kind, seed, size, edit) on every read, so a
// tenant of hundreds of GB costs no memory, or supplied by an upload.
struct Blob {
  enum Kind : std::uint8_t { binary, text, office, supplied } kind = binary;
  std::uint64_t seed = 0;
  std::uint64_t size = 0;
  std::uint32_t edit = 0;  // small edits laid over the generated bytes (1, 2, ...)
  std::shared_ptr<const std::string> data;  // supplied bytes
  // Supplied bytes: their hashes, computed once when stored (reset when data changes).
  std::shared_ptr<const FileHashes> hashes;
  // Appends bytes [offset, offset + len) clamped to size.
  void read(std::uint64_t offset, std::uint64_t len, std::string& out) const;
  std::string all() const;
};
// Computed by reading the whole blob once; cached for generated blobs. Thread-safe;
// call without holding a tenant lock (large files take a while).
FileHashes blob_hashes(const Blob& b);
// An office-like file: a stored (uncompressed) zip whose total size is `size` when
// size is at least the fixed overhead; returns the bytes.
std::string office_zip(std::uint64_t seed, std::uint64_t size, std::uint32_t edit, const std::string& name);
std::uint64_t office_zip_min_size();

struct DriveEntry {
  std::int32_t parent = -1;  // -1: the root itself
  bool folder = false;
  bool package = false;  // a OneNote notebook: neither file nor folder
  bool alive = true;
  std::uint32_t version = 0;          // every change (eTag)
  std::uint32_t content_version = 0;  // content changes (cTag)
  std::uint64_t seq = 1;
  std::int64_t created = 0, modified = 0;
  // fileSystemInfo as a client set it (upload sessions, folder create); 0: created/modified.
  std::int64_t fs_created = 0, fs_modified = 0;
  std::string name;
  Blob blob;
};

// A drive: a user's OneDrive (key user << 2) or a site's document library
// (key site << 2 | 1 + library).
struct DriveStore {
  std::uint32_t key = 0;
  std::vector<DriveEntry> items;  // items[0] is the root
  std::uint64_t seq = 1;
};

struct ListEntry {
  std::uint32_t version = 0;
  std::uint64_t seq = 1;
  bool alive = true;
  std::int64_t modified = 0;
};
// The generic list of a site (list items with fields).
struct SiteState {
  std::vector<ListEntry> items;
  std::uint64_t seq = 1;
  // Raised by the "expire_delta" activity: item delta tokens of list w issued under
  // an older value are refused (contract 8.1, 410 resyncRequired with Location).
  std::array<std::uint32_t, 2> delta_epoch{};
};

// A team's channels: top-level posts with their state; content, replies and hosted
// contents are generated.
struct PostEntry {
  std::uint32_t version = 0;  // edits
  std::string text;           // set by the "teams_body" activity: the post's own HTML, in place of the generated text
  std::uint64_t seq = 1;
  bool deleted = false;
  std::int64_t modified = 0;
};
struct ChannelState {
  std::vector<PostEntry> posts;
  std::uint64_t seq = 1;
  // Raised by the "expire_delta" activity: message delta tokens issued under an
  // older value are refused (contract 3, 400 syncStateNotFound).
  std::uint32_t delta_epoch = 0;
};
struct TeamState {
  std::vector<ChannelState> channels;
};
// A chat's messages (PostEntry: edits and soft deletions); members and content are generated.
struct ChatState {
  std::vector<PostEntry> msgs;
  std::uint64_t seq = 1;
  bool deleted = false;              // "chat_ops" delete: gone for everyone (404)
  std::vector<std::uint32_t> left;   // "chat_ops" leave: members no longer in the chat
};

struct Tenant {
  TenantSpec spec;
  std::uint32_t hash = 0;  // the tenant's tag inside Outlook ids
  std::vector<CertInfo> certs;
  std::vector<DirUser> users;
  std::vector<DirGroup> groups;
  std::uint64_t dir_seq = 1;
  std::map<std::uint32_t, std::unique_ptr<Mailbox>> mailboxes;  // created on first use
  std::set<std::string> used_jti;
  std::map<std::uint32_t, std::unique_ptr<DriveStore>> drives;  // created on first use
  std::map<std::uint32_t, std::unique_ptr<SiteState>> sites;
  std::map<std::uint32_t, std::unique_ptr<TeamState>> teams;  // by group index
  std::map<std::uint32_t, std::unique_ptr<ChatState>> chats;  // by chat index, created on first use
  std::mutex mu;  // guards everything above but spec/hash/certs
};

// --- content ---------------------------------------------------------------

extern const std::vector<std::string> kCategories;

struct Attachment {
  enum Kind { file, item, reference } kind = file;
  std::string name;
  std::string content_type;
  std::uint64_t size = 0;  // bytes of content (for item: the attached MIME)
  bool is_inline = false;
  std::string content_id;
  std::string url;  // reference attachments: the link
  std::uint64_t seed = 0;
  std::shared_ptr<const std::string> data;  // API-supplied bytes
  std::string bytes() const;                // the content (generated or supplied)
  void append_base64(std::string& out) const;  // base64 of bytes() in 76-character lines
};

struct MessageContent {
  std::string subject;
  Person from;
  std::vector<Person> to, cc;
  std::string text_body;
  std::string html_body;
  bool html = true;  // the original body type
  std::int64_t sent = 0, received = 0, created = 0, modified = 0;
  std::string internet_message_id;
  std::string in_reply_to;
  std::string references;
  std::string conversation_key;
  std::string importance = "normal";
  std::vector<std::string> categories;
  std::vector<Attachment> attachments;
  bool is_draft = false;
  // singleValueExtendedProperties as written (id as given, value), for $expand.
  std::vector<std::pair<std::string, std::string>> extended;
};

// False for the generated users the spec leaves without a mailbox.
inline bool has_mailbox(const TenantSpec& s, std::uint32_t u) {
  return static_cast<int>(u) >= s.users || static_cast<int>(u) < s.users - s.unlicensed_users;
}

// The user's directory content for a version.
json user_json(const Tenant& t, std::uint32_t index);
json group_json(const Tenant& t, std::uint32_t index);
Person user_person(const Tenant& t, std::uint32_t index);

// Builds the tenant's directory (not the mailboxes).
std::unique_ptr<Tenant> make_tenant(const TenantSpec& spec);
// The mailbox of user `u`, generated on first use. Caller holds t.mu.
Mailbox& mailbox(Tenant& t, std::uint32_t u);

MessageContent message_content(const Tenant& t, std::uint32_t user, std::uint32_t index, const Msg& m);
std::string build_mime(const MessageContent& c, const std::string& owner_address);
// The MIME bytes of a stored message (custom MIME verbatim).
std::string message_mime(const Tenant& t, std::uint32_t user, std::uint32_t index, const Msg& m);

// Applies user activity; returns what changed. Throws Error(bad_request).
json apply_activity(Tenant& t, const json& req);

// Outlook ids: url-safe base64 of a tagged binary key.
struct OutlookKey {
  enum Kind { folder, message, immutable, attachment, contact_folder, contact, calendar, event } kind;
  std::uint32_t user = 0, index = 0, moves = 0, sub = 0;
};
std::string outlook_id(const Tenant& t, OutlookKey k);
std::optional<OutlookKey> parse_outlook_id(const Tenant& t, std::string_view id);

std::string folder_path(const Mailbox& mb, std::uint32_t f);
std::string container_path(const PimStore& s, std::uint32_t c);

// Contacts and events (model_pim.cpp). The JSON is the full v1.0 rendering without
// id, parentFolderId/calendar, changeKey and the @odata annotations, which the
// routes add.
json contact_content(const Tenant& t, std::uint32_t user, std::uint32_t index, const PimItem& it);
json event_content(const Tenant& t, std::uint32_t user, std::uint32_t index, const PimItem& it);
// The properties a manifest hash covers: content with server-assigned fields removed,
// serialized with sorted keys and no whitespace (docs/emulator.md).
std::string canonical_json(const json& content);

constexpr std::uint32_t kGeneratedException = 3;  // a generated series' third instance is moved and renamed
struct Occurrence {
  std::uint32_t number;  // 1-based within the series
  std::int64_t start, end;
  bool exception;  // moved and renamed (generated), or patched through Graph
  std::int64_t original_start = 0;  // where the recurrence puts it
  json patch;                        // properties patched through Graph (null: none)
};
// The instances of a series master (cancelled ones left out); empty for single events.
// Generated series: weekly, one moved exception and one cancelled occurrence. Series
// written through Graph: expanded from their `recurrence` (daily or weekly patterns;
// endDate, numbered or noEnd ranges, at most kMaxOccurrences); other patterns have no
// instances here.
std::vector<Occurrence> occurrences(const Tenant& t, std::uint32_t user, std::uint32_t index, const PimItem& it);
// An instance's subject: the master's, renamed for the generated exception, or as patched.
std::string occurrence_subject(const json& master, const PimItem& it, const Occurrence& o);
// Where the recurrence put the series' cancelled occurrences (sorted).
std::vector<std::int64_t> cancelled_starts(const Tenant& t, std::uint32_t user, std::uint32_t index, const PimItem& it);
std::string graph_datetime(std::int64_t epoch_s);
void init_pim(const Tenant& t, std::uint32_t user, Mailbox& mb);

// Drives and sites (model_drive.cpp). Caller holds t.mu for the ones taking Tenant&.
DriveStore& drive(Tenant& t, std::uint32_t key);
inline std::uint32_t user_drive_key(std::uint32_t user) { return user << 2; }
inline std::uint32_t site_drive_key(std::uint32_t site, std::uint32_t library) { return (site << 2) | (1 + library); }
inline bool personal(const TenantSpec& s) { return s.drive_type == "personal"; }
std::string drive_id(const Tenant& t, std::uint32_t key);
std::optional<std::uint32_t> parse_drive_id(const Tenant& t, std::string_view id);
std::string drive_item_id(const Tenant& t, std::uint32_t key, std::uint32_t index);
// {drive key, item index}; nullopt when the id is not one of this tenant's.
std::optional<std::pair<std::uint32_t, std::uint32_t>> parse_drive_item_id(const Tenant& t, std::string_view id);
// "/Documents/Projects" for an item's parent folder chain ("" for the root's children).
std::string drive_parent_path(const DriveStore& d, std::uint32_t index);
std::string mime_type_of(const std::string& name);
// Sites: `sites` site collections, then one subsite under every even one.
std::uint32_t site_count(const TenantSpec& s);
std::optional<std::uint32_t> site_parent(const TenantSpec& s, std::uint32_t site);
std::uint32_t site_libraries(std::uint32_t site);  // 1 or 2 document libraries
std::string site_id(const Tenant& t, std::uint32_t site);
std::optional<std::uint32_t> parse_site_id(const Tenant& t, std::string_view id);
std::string site_host(const Tenant& t);
json site_json(const Tenant& t, std::uint32_t site);
SiteState& site_state(Tenant& t, std::uint32_t site);
// The id of a site's list `which` (0: its document library "Documents", 1: the
// generic list "Issue tracker"); the inverse is nullopt for an id of neither.
std::string list_id(const Tenant& t, std::uint32_t site, int which);
std::optional<int> parse_list_id(const Tenant& t, std::uint32_t site, std::string_view id);
// The fields of a list item (Title, Status, ... with non-ASCII text).
json list_item_fields(const Tenant& t, std::uint32_t site, std::uint32_t index, const ListEntry& e);
// Activity on files and list items; appends to out. `mass` is {"owner","fraction","suffix"}.
void apply_drive_activity(Tenant& t, Rng& r, int creates, int updates, int deletes, int moves, int renames, json& out);
void apply_mass_rewrite(Tenant& t, const json& mass, json& out);
void apply_drive_ops(Tenant& t, const json& req, json& out);
void apply_list_activity(Tenant& t, Rng& r, int creates, int updates, int deletes, json& out);
// Marks an item and everything below it deleted (one change sequence for all).
void remove_drive_item(DriveStore& d, std::uint32_t index, std::int64_t now);
// Restore-side file writes (model_drive_write.cpp), replayable like apply_write:
// {"kind":"drive_create_folder"|"drive_put_file","drive":key,"parent":index,"name",
// "conflict":"fail|replace|rename","now", ...}. Returns {"index","status":201|200};
// throws Error("code: text") as apply_write does. Caller holds t.mu.
json apply_drive_write(Tenant& t, const json& op);
// The live child of `parent` with that name (case-insensitive, as OneDrive compares).
std::optional<std::uint32_t> child_named(const DriveStore& d, std::uint32_t parent, const std::string& name);
// Throws what apply_drive_write would refuse, changing nothing (an upload session
// checks its target when it is created, and again at commit).
void check_drive_write(Tenant& t, const json& op);

// Teams (graph_teams_routes.cpp): groups whose resourceProvisioningOptions hold "Team".
bool is_team(const Tenant& t, std::uint32_t group);
TeamState& team_state(Tenant& t, std::uint32_t group);
std::string channel_id(const Tenant& t, std::uint32_t group, std::uint32_t channel);
// A channel message as GET returns it (no @odata annotations, no replies).
json channel_message_json(const Tenant& t, const std::string& base_url, std::uint32_t group, std::uint32_t channel,
                          std::uint32_t post, std::int32_t reply, const PostEntry& e);
std::uint32_t reply_count(const Tenant& t, std::uint32_t group, std::uint32_t channel, std::uint32_t post);
// `now_ms`: the emulated time of the activity (edits and deletions carry it); -1: a
// time drawn from `r` on the day after kBaseEpoch.
void apply_teams_activity(Tenant& t, Rng& r, int creates, int updates, int deletes, std::int64_t now_ms, json& out);
// {"owner": team id, "channel": channel id, "id": post id, "html": "..."}: an edit of
// that post whose body becomes `html`, as it is (hostile bodies for export tests).
void apply_teams_body(Tenant& t, const json& req, std::int64_t now_ms, json& out);
// [{"owner": team id, "channel": channel id} | {"owner": site id, "list": list id}, ...]:
// the delta tokens (deltaLinks and nextLinks) issued so far for those channels'
// messages and lists' items stop being accepted, as when the service drops a sync
// state; a delta without a token starts afresh. Appends {owner, channel|list} to
// out["expired"].
void apply_expire_delta(Tenant& t, const json& req, json& out);
// Channel delta returns only posts modified within this window of the emulated clock
// (contract 13: "the last 8 months"; 8 × 30.44 days is our reading).
inline constexpr std::int64_t kChannelDeltaWindowMs = 243LL * 86400 * 1000;
// Milliseconds ISO 8601 ("2026-01-01T00:00:00.123Z").
std::string iso_ms(std::int64_t ms);

// An aadUserConversationMember (team or chat member); `since`: visibleHistoryStartDateTime (0: all history).
json conversation_member_json(const Tenant& t, std::uint32_t user, bool owner, std::int64_t since);

// Chats (graph_chat_routes.cpp). Chat k: oneOnOne, group, meeting in turn.
enum class ChatType { one_on_one, group, meeting };
ChatType chat_type(std::uint32_t chat);
std::string chat_id(const Tenant& t, std::uint32_t chat);
std::optional<std::uint32_t> parse_chat_id(const Tenant& t, std::string_view id);
// Member user indices (the first one owns/organizes the chat); distinct.
std::vector<std::uint32_t> chat_members(const Tenant& t, std::uint32_t chat);
ChatState& chat_state(Tenant& t, std::uint32_t chat);
// The members now: chat_members less those who left; none once the chat is deleted.
// A chat lists under /users/{id}/chats, and is in the manifest, only while it has some.
std::vector<std::uint32_t> current_members(Tenant& t, std::uint32_t chat);
// [{"op":"delete","chat":id} | {"op":"leave","chat":id,"user":user id}, ...]: the
// chat is deleted, or the user leaves it (its messages stay); appends to out["chat_ops"].
void apply_chat_ops(Tenant& t, const json& req, json& out);
// A chat message as GET /chats/{id}/messages/{id} returns it (no @odata annotations).
// `unknown_enums`: Prefer include-unknown-enum-members (system events keep their type).
json chat_message_json(const Tenant& t, const std::string& base_url, std::uint32_t chat, std::uint32_t index,
                       const PostEntry& e, bool unknown_enums);
std::optional<std::uint32_t> chat_message_index(const Tenant& t, std::uint32_t chat, std::string_view id);
void apply_chat_activity(Tenant& t, Rng& r, int creates, int updates, int deletes, std::int64_t now_ms, json& out);

// Restore-side writes (model_write.cpp). Each is a journal-able operation
// {"kind": ..., "user": n, ...}; applying the same operations to the same state
// gives the same ids, so the journal replays them after a restart. Caller holds
// t.mu. Returns {"index": n, ...}; throws Error(bad_request) / Error(conflict) /
// Error(not_found) with Graph's code in the message prefix "Code: text".
json apply_write(Tenant& t, const json& op);
// Creates, updates and deletes contacts or events ("contacts" / "calendar"); appends to out.
void apply_pim_activity(Tenant& t, const std::string& category, Rng& r, int creates, int updates, int deletes, json& out);  // "2016-12-09T20:30:00.0000000"

}  // namespace m365vault::emulator
