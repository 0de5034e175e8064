#pragma once
// The catalog: the PostgreSQL index of tenants, owners, containers, items and
// their versions, snapshots (restore points), delta cursors and per-item faults
// (migration 0006_catalog.sql). The backup pipeline writes through it; the API,
// restore and export read it.
//
// Model. An item is one source identity (owner, category, Graph immutable id); a
// move keeps it. Each change appends an item version valid over backup time
// [valid_from, valid_to); a deletion closes the open version. Containers (mail,
// contact and calendar folders, drive folders, channels) are versioned the same
// way, so the tree at any instant can be browsed. "At T" means: versions with
// valid_from <= T < valid_to (or still open). A snapshot's view is its state at
// its completed_at.
//
// Writing (invariant 1, durable before acknowledged). The pipeline stores a page's
// content blobs first (fsync'd / S3 200), then calls commit_page() with the page's
// items and the cursor that follows it: one transaction upserts containers, adds
// versions, closes deleted items, counts into the snapshot, resolves faults and
// saves the cursor. Killed before COMMIT, nothing of the page exists and the saved
// cursor still points before it; killed after, the page is whole and the cursor is
// past it. Replaying a page (a crash between commit and acknowledgement, Graph
// repeating items, a resync) adds nothing: an item whose change key and container
// equal its open version's is "unchanged".
//
// Resync (an invalid delta token): start_round() clears the scope's cursor and
// numbers a round; every page committed while the round runs marks the items and
// containers it reports as seen; the page whose cursor is the deltaLink
// (PageCommit::delta_link) completes the round and, in the same transaction, closes
// what the completed round did not report. A crash mid-round resumes the round from
// its saved nextLink; nothing is closed until the round completes.
//
// Conventions. Every method is blocking and takes the connection to use: call it
// through Database::run on the database threads. Catalog holds no state and is
// thread-compatible; a PgConnection is used by one caller at a time. Methods that
// need a transaction open and end it themselves: do not call them inside one.
// Times are RFC 3339 strings (UTC, microseconds) in and out. Ids: tenants, owners
// and snapshots are UUIDs; containers, items and versions are decimal integers as
// strings. Blob ids and SHA-256 sums are raw 32-byte strings. Errors: Error(
// Errc::bad_request) for bad input (message names the field), Errc::not_found for
// an unknown or out-of-scope referent, Errc::conflict for a duplicate or a stale
// cursor, PgError(Errc::database) from PostgreSQL. Every statement is parameterised.
//
// Tenant scope: read methods take a `Scope`; when its tenant is set (a
// tenant-restricted API token), objects of other tenants are "not found".
#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "m365vault/storage/pg.hpp"

namespace m365vault::storage {

// Opaque page cursors (base64url of a small JSON array): what every listing of
// the API returns as next_cursor. read_page_cursor gives null for no cursor and
// throws Error(bad_request) naming parameter 'cursor' for one it did not make.
std::string page_cursor(const nlohmann::json& position);
nlohmann::json read_page_cursor(const std::optional<std::string>& cursor);

enum class Category { mail, contacts, calendar, onedrive, sharepoint, teams };
std::string_view to_string(Category c);
std::optional<Category> parse_category(std::string_view s);

enum class OwnerKind { user, group, site, team, drive, chat };
std::string_view to_string(OwnerKind k);
std::optional<OwnerKind> parse_owner_kind(std::string_view s);

enum class OwnerState { active, skipped, deleted };
std::string_view to_string(OwnerState s);

enum class AuthKind { secret, certificate };
std::string_view to_string(AuthKind k);
std::optional<AuthKind> parse_auth_kind(std::string_view s);

enum class SnapshotState { running, complete, partial };
std::string_view to_string(SnapshotState s);

// Who may see what: nullopt tenant = every tenant.
struct Scope {
  std::optional<std::string> tenant_id;
};

// ---------------------------------------------------------------- tenants

// A credential sealed by a SecretSealer (sealer.hpp) under `context`.
struct SealedSecret {
  std::string context;
  std::string sealed;
};

struct TenantSpec {
  std::string name;          // unique, 1..200 characters
  std::string directory_id;  // the Entra tenant id (GUID or domain)
  std::string client_id;
  AuthKind auth = AuthKind::secret;
  std::optional<std::string> certificate_pem;  // required for AuthKind::certificate
  std::optional<std::string> graph_url;        // nullopt: the public cloud
  std::optional<std::string> login_url;
  std::optional<std::string> ca_file;
  bool disabled = false;
};

struct Tenant {
  std::string id;
  TenantSpec spec;
  std::string created_at, updated_at;
  // Never includes the secret or the certificate's private key; says only which
  // kind of credential is held.
  nlohmann::json to_json() const;
};

// ---------------------------------------------------------------- owners

struct OwnerSpec {
  OwnerKind kind = OwnerKind::user;
  std::string graph_id;
  std::optional<std::string> display_name, upn, mail;
};

struct Owner {
  std::string id;
  std::string tenant_id;
  OwnerSpec spec;
  OwnerState state = OwnerState::active;
  std::optional<std::string> skip_reason;
  std::string discovered_at, updated_at;
  nlohmann::json to_json() const;
};

struct OwnerFilter {
  std::optional<OwnerKind> kind;
  std::optional<OwnerState> state;
  std::optional<std::string> cursor;  // next_cursor of the previous page
  int limit = 100;
};

struct OwnerPage {
  std::vector<Owner> owners;
  std::optional<std::string> next_cursor;
};

// ---------------------------------------------------------------- the page commit

// A container reported by a hierarchy delta (mail folders, drive folders...).
struct ContainerChange {
  std::string graph_id;
  std::optional<std::string> parent_graph_id;  // nullopt: a root
  std::string display_name;
  std::optional<std::string> well_known;  // "inbox", "root"...
  bool removed = false;                   // @removed: closes it, its subtree and their items
};

// A new or changed item, whose content blobs are already durable.
struct ItemChange {
  std::string graph_id;  // immutable id
  std::string kind;      // "message", "contact", "event", "file"...
  std::optional<std::string> container_graph_id;
  std::string change_key;  // changeKey / eTag / cTag: equal to the open version's => unchanged
  std::string name;        // what browse shows and sorts by (subject, file name, display name)
  std::optional<std::string> path;
  std::optional<std::string> subject, sender;
  std::vector<std::string> recipients;
  std::optional<std::string> sent_at, received_at, modified_at;  // RFC 3339
  std::optional<long long> size;
  std::vector<std::string> flags;  // "read", "flagged", "has_attachments"...
  std::optional<std::string> body_preview;
  nlohmann::json meta = nlohmann::json::object();  // everything else (lossless metadata)
  std::optional<std::string> content_type;         // "message/rfc822", "application/json"...
  std::vector<std::string> content_blobs;          // ordered raw 32-byte blob ids
  std::optional<std::string> content_sha256;       // raw 32 bytes, of the whole content
  std::optional<long long> content_size;
};

struct PageCommit {
  std::string owner_id;
  Category category = Category::mail;
  // The delta this page belongs to: a container's (a mail folder's messages) or,
  // nullopt, the owner's (the folder hierarchy, a drive). Its cursor is saved, and
  // its removals close items only inside this container.
  std::optional<std::string> container_graph_id;
  std::vector<ContainerChange> containers;
  std::vector<ItemChange> items;
  // Graph ids the delta reported as removed from this scope.
  std::vector<std::string> removed_items;
  // Graph ids reported with a change key equal to what is stored, so not fetched:
  // marked seen for a running resync round, nothing else.
  std::vector<std::string> unchanged_items;
  // The cursor that follows this page (nextLink, or deltaLink at the end of a round).
  std::string cursor;
  bool delta_link = false;  // `cursor` is a deltaLink: a running resync round completes here
  // Compare-and-set: when set, the commit fails with Errc::conflict unless the saved
  // cursor still equals *expected_cursor ("" = none saved). A worker whose lease was
  // taken over cannot then overwrite its successor's progress.
  std::optional<std::string> expected_cursor;
  std::optional<std::string> snapshot_id;  // counts go to this snapshot
};

struct PageResult {
  int items_added = 0;      // first version of an item
  int items_changed = 0;    // a new version of a known item (content, metadata or a move)
  int items_unchanged = 0;  // replayed or repeated: nothing written
  int items_closed = 0;     // removals, removed containers' items, and a completed round's unseen items
  int containers_changed = 0;
  long long bytes_added = 0;  // content_size of the versions added
  bool round_completed = false;
};

// What is stored for an item now, so the pipeline can skip downloading unchanged ones.
struct KnownItem {
  std::string item_id;
  std::string change_key;
  std::optional<std::string> container_graph_id;
};

enum class RoundCovers { items, containers, both };

struct DeltaState {
  std::optional<std::string> cursor;
  std::optional<long long> round_id;  // set while a resync round runs
};

// ---------------------------------------------------------------- snapshots and faults

struct Snapshot {
  std::string id, tenant_id, owner_id;
  Category category = Category::mail;
  std::optional<std::string> run_id;
  SnapshotState state = SnapshotState::running;
  std::string started_at;
  std::optional<std::string> completed_at;
  long long items_added = 0, items_changed = 0, items_deleted = 0, bytes_added = 0, faults = 0;
  std::optional<long long> items_total;
  nlohmann::json to_json() const;
};

struct SnapshotFilter {
  std::optional<std::string> tenant_id, owner_id;
  std::optional<Category> category;
  std::optional<std::string> cursor;
  int limit = 100;
};

struct SnapshotPage {
  std::vector<Snapshot> snapshots;
  std::optional<std::string> next_cursor;
};

struct Fault {
  std::string id, run_id, owner_id;
  Category category = Category::mail;
  std::string item_graph_id, reason;
  std::optional<std::string> code;
  std::string first_seen_at, last_seen_at;
  int attempts = 1;
  std::optional<std::string> resolved_at;
  nlohmann::json to_json() const;
};

// ---------------------------------------------------------------- reads

struct ItemVersion {
  std::string item_id, version_id, owner_id, graph_id, kind;
  Category category = Category::mail;
  std::optional<std::string> container_id;
  std::string valid_from;
  std::optional<std::string> valid_to;
  std::string name;
  std::optional<std::string> path, subject, sender;
  std::vector<std::string> recipients;
  std::optional<std::string> sent_at, received_at, modified_at;
  std::optional<long long> size;
  std::string change_key;
  std::vector<std::string> flags;
  std::optional<std::string> body_preview;
  nlohmann::json meta = nlohmann::json::object();
  std::optional<std::string> content_type;
  std::vector<std::string> content_blobs;  // raw
  std::optional<std::string> content_sha256;  // raw
  std::optional<long long> content_size;
  std::optional<double> rank;  // search only
  // Metadata for API clients: ids as strings, sha256 as hex, the blob count (not ids).
  nlohmann::json to_json() const;
};

struct ContainerEntry {
  std::string id;  // catalog container id
  std::string graph_id, display_name, path;
  std::optional<std::string> parent_id, well_known;
  std::string valid_from;
  std::optional<std::string> valid_to;
  nlohmann::json to_json() const;
};

struct BrowseQuery {
  std::string owner_id;
  Category category = Category::mail;
  std::optional<std::string> container_id;  // catalog id; nullopt: the roots
  std::optional<std::string> at;            // RFC 3339 or a snapshot id; nullopt: now
  std::optional<std::string> cursor;
  int limit = 100;
  Scope scope;
};

// Child containers first (by name), then items (by name), keyset-paginated.
struct BrowsePage {
  std::string at;  // the instant resolved
  std::vector<ContainerEntry> containers;
  std::vector<ItemVersion> items;
  std::optional<std::string> next_cursor;
};

struct SearchQuery {
  std::string q;  // websearch syntax: words, "phrases", -exclusions, or
  std::optional<std::string> tenant_id, owner_id;
  std::optional<Category> category;
  std::optional<std::string> after, before;  // on the item's own date (received, sent or modified)
  std::optional<std::string> at;             // versions visible then; nullopt: now
  std::optional<std::string> cursor;
  int limit = 50;
  Scope scope;
};

struct SearchPage {
  std::vector<ItemVersion> items;  // best first (ts_rank), rank set
  std::optional<std::string> next_cursor;
  // Only the newest matches (by storing order, at most 10,000; docs/catalog.md)
  // are ranked and paged through: how many were (all the matches when not truncated),
  // and whether older matches exist that no page of this query will return.
  long long ranked_among = 0;
  bool truncated = false;
};

struct VersionPage {
  std::vector<ItemVersion> versions;  // newest first
  std::optional<std::string> next_cursor;
};

// ---------------------------------------------------------------- selections (restore, export)

// What a restore or an export reads, resolved: one tenant at one instant.
// Narrowing: owner_ids and categories keep only those (empty: all of them);
// item_ids and container_ids (catalog ids) select those items and everything
// under those containers, recursively (both empty: every item of the narrowed
// scope); query (Catalog::search syntax) keeps only matching items.
struct SelectionSpec {
  std::string tenant_id;  // a UUID
  std::string at;         // an instant, as resolve_at returns it
  std::vector<std::string> owner_ids;
  std::vector<Category> categories;
  std::vector<std::string> item_ids, container_ids;
  std::optional<std::string> query;
  Scope scope;
};

// One (owner, category) holding part of a selection.
struct SelectionScope {
  std::string owner_id;
  Category category = Category::mail;
  bool operator==(const SelectionScope&) const = default;
};

struct SelectionScopePage {
  std::vector<SelectionScope> scopes;  // ordered by owner id, then category
  std::optional<std::string> next_cursor;
};

// A container as it was at the selection's instant: `path` is its path then
// (names from the root, '/'-separated) and depth its distance from the root.
struct SelectedContainer {
  ContainerEntry container;
  int depth = 0;
};

struct SelectedContainerPage {
  std::vector<SelectedContainer> containers;  // parents before children (depth, then id)
  std::optional<std::string> next_cursor;
};

// An item version of the selection with its container's path at the instant
// (nullopt: an item outside any container visible then).
struct SelectedItem {
  ItemVersion version;
  std::optional<std::string> container_path;
};

struct SelectedItemPage {
  std::vector<SelectedItem> items;  // by version id
  std::optional<std::string> next_cursor;
};

class Catalog {
 public:
  // --- tenants. Secrets arrive sealed; nothing here sees a plaintext credential.
  // The context to seal a tenant's credential under (binds it to the tenant id).
  static std::string secret_context(const std::string& tenant_id);
  // A fresh tenant id, to seal the credential under before create_tenant.
  static std::string new_tenant_id();
  // Throws Errc::conflict for a duplicate name, Errc::bad_request for a missing
  // field or a certificate tenant without certificate_pem.
  Tenant create_tenant(PgConnection& c, const std::string& id, const TenantSpec& spec, const SealedSecret& secret) const;
  // By id or by name.
  std::optional<Tenant> get_tenant(PgConnection& c, const std::string& id_or_name, const Scope& scope = {}) const;
  std::vector<Tenant> list_tenants(PgConnection& c, const Scope& scope = {}) const;
  // Replaces the settings; a new secret when `secret` is set. Same errors as create.
  Tenant update_tenant(PgConnection& c, const std::string& id, const TenantSpec& spec,
                       const std::optional<SealedSecret>& secret) const;
  // Deletes the tenant and, by cascade, its owners, catalog and snapshots
  // (the blobs stay until prune). false: no such tenant.
  bool delete_tenant(PgConnection& c, const std::string& id) const;
  // The sealed credential, for the Graph client to open. nullopt: no such tenant.
  std::optional<SealedSecret> tenant_secret(PgConnection& c, const std::string& tenant_id) const;

  // --- owners (discovery)
  // Inserts or refreshes owners in one statement; a rediscovered deleted owner is
  // active again, a skipped one stays skipped. Returns them in input order.
  std::vector<Owner> upsert_owners(PgConnection& c, const std::string& tenant_id,
                                   const std::vector<OwnerSpec>& owners) const;
  // Skipped (with a reason: "mailbox not enabled") or deleted (gone from the directory).
  void set_owner_state(PgConnection& c, const std::string& owner_id, OwnerState state,
                       const std::optional<std::string>& reason) const;
  std::optional<Owner> get_owner(PgConnection& c, const std::string& owner_id, const Scope& scope = {}) const;
  OwnerPage list_owners(PgConnection& c, const std::string& tenant_id, const OwnerFilter& f) const;

  // --- the backup write path
  // See the header comment. Throws Errc::not_found for an unknown owner,
  // Errc::conflict when expected_cursor does not match, Errc::bad_request for a
  // malformed blob id or sha256.
  PageResult commit_page(PgConnection& c, const PageCommit& page) const;
  // The saved cursor and round of a delta scope.
  DeltaState delta_state(PgConnection& c, const std::string& owner_id, Category category,
                         const std::optional<std::string>& container_graph_id) const;
  // Starts (or restarts) a resync round on a scope: clears its cursor. Items and
  // containers are marked seen by the pages that follow; the deltaLink page closes
  // the rest of what the round `covers` within the scope (a mail folder hierarchy
  // delta covers containers only, a folder's message delta items, a drive delta
  // both). Returns the round id.
  long long start_round(PgConnection& c, const std::string& owner_id, Category category,
                        const std::optional<std::string>& container_graph_id, RoundCovers covers) const;
  // Open versions for these graph ids (missing: not stored or deleted).
  std::unordered_map<std::string, KnownItem> known_items(PgConnection& c, const std::string& owner_id,
                                                         Category category,
                                                         const std::vector<std::string>& graph_ids) const;
  // Graph ids of the open items whose graph id starts with one of `prefixes`
  // (the replies and inline images of a channel post are stored under the post's
  // id: "{channel}/{post}/..."). Scans the owner's items of the category: call it
  // for the few items that changed, not for every page.
  std::vector<std::string> open_items_under(PgConnection& c, const std::string& owner_id, Category category,
                                            const std::vector<std::string>& prefixes) const;

  // --- snapshots
  // Begins the snapshot of (owner, category) for a run; calling it again for the
  // same run (a resumed or taken-over run) returns the same running snapshot.
  Snapshot begin_snapshot(PgConnection& c, const std::string& owner_id, Category category,
                          const std::string& run_id) const;
  // Ends it as complete or partial (some items faulted), recording items_total.
  Snapshot complete_snapshot(PgConnection& c, const std::string& snapshot_id, SnapshotState state) const;
  std::optional<Snapshot> get_snapshot(PgConnection& c, const std::string& snapshot_id, const Scope& scope = {}) const;
  // Newest first.
  SnapshotPage list_snapshots(PgConnection& c, const SnapshotFilter& f, const Scope& scope = {}) const;

  // --- per-item faults
  // Records (or, again in the same run, counts) a fault; adds to the snapshot's count.
  void record_fault(PgConnection& c, const std::string& run_id, const std::string& owner_id, Category category,
                    const std::string& item_graph_id, const std::string& reason,
                    const std::optional<std::string>& code = std::nullopt,
                    const std::optional<std::string>& snapshot_id = std::nullopt) const;
  // Marks open faults of these items resolved (commit_page does this for the items
  // it stores). Returns how many.
  int resolve_faults(PgConnection& c, const std::string& owner_id, Category category,
                     const std::vector<std::string>& item_graph_ids) const;
  // A run's faults, oldest first, keyset by id.
  std::vector<Fault> list_faults(PgConnection& c, const std::string& run_id, const std::optional<std::string>& after_id,
                                 int limit) const;
  // Unresolved faults of (owner, category), to retry.
  std::vector<Fault> open_faults(PgConnection& c, const std::string& owner_id, Category category) const;

  // --- discovery (tenant-wide deltas: users, groups)
  // The saved cursor of a tenant's `scope` delta ("users" or "groups").
  std::optional<std::string> tenant_cursor(PgConnection& c, const std::string& tenant_id,
                                           const std::string& scope) const;
  // One page of a directory delta in one transaction: upserts `owners`, marks the
  // owners of `removed` graph ids deleted (gone from the directory; their backups
  // stay), and saves `cursor` when it is not empty.
  void commit_directory_page(PgConnection& c, const std::string& tenant_id, const std::string& scope, OwnerKind kind,
                             const std::vector<OwnerSpec>& owners, const std::vector<std::string>& removed,
                             const std::string& cursor) const;
  // The containers of (owner, category) that exist now, parents before children.
  std::vector<ContainerEntry> open_containers(PgConnection& c, const std::string& owner_id, Category category) const;

  // --- reads (tenant-scoped)
  // "now" | RFC 3339 | snapshot id -> the instant, RFC 3339. Throws bad_request
  // (not a time nor a snapshot) or not_found (no such snapshot in scope).
  std::string resolve_at(PgConnection& c, const std::optional<std::string>& at, const Scope& scope = {}) const;
  BrowsePage browse(PgConnection& c, const BrowseQuery& q) const;
  // The item's version visible at `at` (nullopt: now). nullopt: no such item in
  // scope, or it did not exist then.
  std::optional<ItemVersion> get_item(PgConnection& c, const std::string& item_id, const std::optional<std::string>& at,
                                      const Scope& scope = {}) const;
  std::optional<ItemVersion> get_version(PgConnection& c, const std::string& version_id, const Scope& scope = {}) const;
  // Several versions by id in one query (an export's page): version id -> version;
  // an id not in scope or no longer in the catalog is absent from the map. Throws
  // bad_request for an id that is not a version id.
  std::map<std::string, ItemVersion> get_versions(PgConnection& c, const std::vector<std::string>& version_ids,
                                                  const Scope& scope = {}) const;
  // Throws Errc::not_found when the item is not in scope.
  VersionPage item_versions(PgConnection& c, const std::string& item_id, const std::optional<std::string>& cursor,
                            int limit, const Scope& scope = {}) const;
  // Full text over subject, sender, recipients, names, paths and body preview.
  SearchPage search(PgConnection& c, const SearchQuery& q) const;

  // --- selections (catalog_select.cpp): read in pages so memory stays bounded
  // for millions of items. A spec is checked by check_selection: throws
  // Errc::not_found when the tenant, an owner, an item or a container is not in
  // scope, Errc::bad_request when a listed item or container is outside the
  // narrowed owners/categories or did not exist at the instant.
  void check_selection(PgConnection& c, const SelectionSpec& s) const;
  // The (owner, category) pairs the selection may touch (those with a snapshot
  // begun by the instant, or holding a listed item or container).
  SelectionScopePage selection_scopes(PgConnection& c, const SelectionSpec& s, const std::optional<std::string>& cursor,
                                      int limit) const;
  // The containers of one scope a consumer must (re)create: the selected ones,
  // everything under them, and the ancestors of every selected item's container.
  // With a query, only the ancestors-or-self of matching items' containers.
  SelectedContainerPage selected_containers(PgConnection& c, const SelectionSpec& s, const SelectionScope& scope,
                                            const std::optional<std::string>& cursor, int limit) const;
  // The selected item versions of one scope, with their container paths then.
  SelectedItemPage selected_items(PgConnection& c, const SelectionSpec& s, const SelectionScope& scope,
                                  const std::optional<std::string>& cursor, int limit) const;
};

}  // namespace m365vault::storage
